"""New items after the fact: the saved quantizer and the configuration a semantic-ID file was
generated with, read back and used to encode items it has never seen, without refitting; the
existing IDs never change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from src.semantic_ids.config import QUANTIZERS, GeneratorConfig, Quantizer
from src.semantic_ids.embeddings import require_finite
from src.semantic_ids.generator import embed
from src.semantic_ids.random_ids import NO_NEW_ITEMS, RandomCodes
from src.semantic_ids.rqkmeans import collision_codes
from utils.data.semantic import IDS_FILE, check_codebooks, read_semantic_ids_file
from utils.reporting.results import RUN_RECORD
from utils.runtime.errors import DataError


def load_quantizer(out_dir: Path, header: dict[str, Any]) -> Quantizer:
    """The quantizer a semantic-ID file was encoded with, refused unless its checksum matches."""
    kind = header.get("quantizer", "rqkmeans")
    if kind not in QUANTIZERS:
        raise DataError(
            f"{out_dir / IDS_FILE}: unknown quantizer {kind!r}; regenerate the semantic IDs"
        )
    cls, name = QUANTIZERS[kind]
    q = cls.load(out_dir / name)
    check_codebooks(out_dir / name, q.arrays(), header)
    return q


def encode_new_items(
    q: Quantizer, existing: np.ndarray, embeddings: np.ndarray, collision_size: int
) -> np.ndarray:
    """Full IDs (m, levels + 1) for new items with the saved codebooks, no refitting.

    New items take the next free collision numbers after the items already
    holding their codes, so existing IDs never change.
    """
    new = q.encode(embeddings)
    prefix = np.vstack([existing[:, :-1], new])
    order = np.concatenate([existing[:, -1], np.full(len(new), np.iinfo(np.int64).max)])
    collisions = collision_codes(prefix, collision_size, order)
    if not np.array_equal(collisions[: len(existing)], existing[:, -1]):
        raise ValueError(
            "the saved collision codes are not numbered 0..n-1 per group; "
            "regenerate the semantic IDs"
        )
    return np.column_stack([new, collisions[len(existing) :]])


def read_new_items(path: Path) -> tuple[list[str], list[str] | None, np.ndarray | None]:
    """(ids, texts, embeddings) from .txt (one text per line), .jsonl ({"id", "text"}) or .npy
    (embeddings)."""
    if not path.is_file():
        raise DataError(
            f"{path}: no such file; give one text per line (.txt), JSON lines with 'text' (.jsonl) "
            "or .npy"
        )
    if path.suffix == ".npy":
        x = np.load(path, allow_pickle=False)
        if x.ndim != 2:
            raise DataError(
                f"{path}: expected a 2-d array of embeddings (n, dim), got shape {x.shape}"
            )
        x = require_finite(x.astype(np.float32), str(path), "give finite embeddings")
        return [str(i) for i in range(len(x))], None, x
    ids, texts = [], []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            try:
                rec = json.loads(line)
                text = rec["text"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(
                    f"{path}, line {lineno}: expected a JSON object with a 'text' field "
                    f"(and optionally 'id'): {exc}"
                ) from exc
            ids.append(str(rec.get("id", lineno)))
            texts.append(str(text))
        else:
            ids.append(str(lineno))
            texts.append(line.strip())
    if not texts:
        raise DataError(f"{path}: no texts found")
    return ids, texts, None


def generator_config(ids_dir: Path, header: dict[str, Any]) -> GeneratorConfig:
    """The configuration a semantic-ID file was generated with (from its run record)."""
    if RUN_RECORD not in header:
        raise DataError(
            f"{ids_dir / IDS_FILE}: no '{RUN_RECORD}' in its header (written by an older version); "
            f"regenerate it with `python semantic_id_generator.py --data-dir ...`"
        )
    return GeneratorConfig.from_dict(header[RUN_RECORD]["config"])


def encode_new_texts(
    ids_dir: Path, new_items: Path, cache_dir: str | Path, device: str, encode_processes: int = 0
) -> dict[str, Any]:
    """IDs for the items in ``new_items``, with the saved quantizer and the saved embedding
    model."""
    header, _, existing = read_semantic_ids_file(ids_dir / IDS_FILE)
    q = load_quantizer(ids_dir, header)
    if isinstance(q, RandomCodes):
        raise ValueError(NO_NEW_ITEMS)  # before any text is embedded
    cfg = generator_config(ids_dir, header)
    ids, texts, x = read_new_items(new_items)
    if x is None:
        x, _ = embed(texts, cfg, cache_dir, device, encode_processes=encode_processes)
    codes = encode_new_items(q, existing, x, int(header["collision_size"]))
    return {
        "model": cfg.model,
        "codebooks_sha256": header["codebooks_sha256"],
        "items": {i: [int(c) for c in row] for i, row in zip(ids, codes)},
    }
