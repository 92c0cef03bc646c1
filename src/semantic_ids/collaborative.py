"""Collaborative signal in the IDs: quantize each item's text embedding joined with the item
embedding a trained ID model (SASRec) learned from the interactions.

Text-only IDs put items that read alike under one prefix; items bought in the same sessions
may read nothing alike. LETTER (Wang et al., CIKM 2024) aligns the codes with SASRec's item
embeddings for this reason. The simplest form of that, kept here: both vectors made unit
length, the collaborative one scaled by ``weight``, concatenated and scaled back to unit length,
then quantized as usual. An item the ID model never trained on (a cold or new item) gets zeros
in the collaborative half, so it is placed by its text alone, as a new item must be.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from src.semantic_ids.embeddings import canonical_embeddings
from utils.data.dataset import Dataset


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def join_embeddings(
    text: np.ndarray, collaborative: np.ndarray, weight: float, known: np.ndarray | None
) -> np.ndarray:
    """[text / |text|, weight * c / |c|] / sqrt(1 + weight^2) per item, canonical float64 (unit
    length where both halves are known); rows where ``known`` is False get zeros in the
    collaborative half."""
    if len(collaborative) != len(text):
        raise ValueError("one collaborative vector per text embedding is needed")
    c = weight * _unit(collaborative.astype(np.float64))
    if known is not None:
        c[~known] = 0.0
    joined = np.hstack([_unit(text.astype(np.float64)), c]) / np.sqrt(1.0 + weight**2)
    return canonical_embeddings(joined)


def pad_text_only(text: np.ndarray, weight: float, width: int) -> np.ndarray:
    """A new item's vector in the joined space: its text half, zeros for the ``width``
    collaborative dimensions (it has no interactions yet)."""
    zeros = np.zeros((len(text), width))
    return join_embeddings(text, zeros, weight, np.zeros(len(text), dtype=bool))


def sasrec_item_vectors(
    checkpoint: str | Path, ds: Dataset, data_dir: str
) -> tuple[np.ndarray, np.ndarray]:
    """The item embeddings (n_items, d) of a trained SASRec checkpoint of ``ds`` and which items
    it trained on (bool per item); another data set's checkpoint is refused in one line."""
    from src.serving.checkpoint import load_trained  # the serving layer loads checkpoints

    trained = load_trained(checkpoint, data_dir=data_dir)
    if trained.kind != "sasrec":
        raise ValueError(
            f"--collaborative {checkpoint}: a {trained.spec['class']} checkpoint; give a SASRec "
            "checkpoint of tiger_train_eval.py (checkpoints/tiger-sasrec-<data>-...pt)"
        )
    if trained.ds.checksum != ds.checksum:
        raise ValueError(
            f"--collaborative {checkpoint}: trained on other data than {ds.name}; give a SASRec "
            "checkpoint of this data set"
        )
    weights = trained.model.item_emb.weight.detach().cpu().numpy()[1:]  # row 0 is padding
    return weights.astype(np.float32), trained.trained_items()


def collaborative_record(checkpoint: str | Path, weight: float, width: int) -> dict[str, Any]:
    """What semantic_ids.json says about the collaborative half (and what encodes new items)."""
    digest = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
    return {"checkpoint": str(checkpoint), "sha256": digest, "weight": weight, "width": width}


def collaborative_embeddings(
    text: np.ndarray, ds: Dataset, checkpoint: str, weight: float, fitted: np.ndarray, data_dir: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """The joined vectors of every item and their record for semantic_ids.json: the items the
    codebooks are fitted on (``fitted``) that the ID model trained on keep their collaborative
    half; the cold hold-out is placed by its text alone, like a new item."""
    vectors, trained = sasrec_item_vectors(checkpoint, ds, data_dir)
    known = fitted & trained
    record = collaborative_record(checkpoint, weight, int(vectors.shape[1]))
    record["items_with_collaborative_half"] = int(known.sum())
    return join_embeddings(text, vectors, weight, known), record
