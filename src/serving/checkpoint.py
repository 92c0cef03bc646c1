"""A trained model back from its checkpoint, for the data it is asked about, or one clear refusal.

Every checkpoint records what rebuilds its model (``spec``: class, name, configuration, preset,
item map, the command that re-creates it) and what it was trained on (``identity``: data
checksum, split and its training rows, semantic-ID digest, protocol). Loading rebuilds the data
set, the split and the model from them, and refuses a checkpoint of other data, other semantic
IDs or another configuration in one line naming what differs and the command that re-creates it.
Checkpoints written before they carried a spec go through :mod:`src.serving.legacy`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from src.pointwise.ctr import CTRConfig, build_ctr_model
from src.pointwise.features import build_features
from src.pointwise.mf import model_factory
from src.sequential.beam_search import build_trie
from src.sequential.overrides import in_range
from src.sequential.protocols import PROTOCOLS, protocol_split
from src.sequential.sasrec import SASRec, SASRecConfig
from src.sequential.tiger import Tiger, TigerConfig
from src.serving.legacy import legacy_spec
from utils.data.dataset import Dataset
from utils.data.load import load_dataset
from utils.data.semantic import SemanticIds, ids_digest, load_semantic_ids
from utils.data.splits import Split, get_split
from utils.runtime.checkpoints import check_identity, check_layout, load_checkpoint, split_identity
from utils.runtime.errors import CheckpointError, DataError
from utils.runtime.hashing import strings_digest

log = logging.getLogger(__name__)

TRAINERS = ("tiger_train_eval.py", "mf_train_eval.py", "neural_train_eval.py")
SCRIPTS = f"{', '.join(TRAINERS[:-1])} or {TRAINERS[-1]}"
SEQUENTIAL = ("Tiger", "SASRec")


@dataclass
class Trained:
    """A model rebuilt from its checkpoint, with the data set, split and semantic IDs it was
    trained on (``sids`` is None for a model without semantic IDs when none are at hand)."""

    path: Path
    spec: dict[str, Any]
    model: nn.Module
    ds: Dataset
    split: Split
    sids: SemanticIds | None
    device: str = "cpu"

    @property
    def kind(self) -> str:
        """'tiger', 'sasrec' or 'pointwise' (MF and the CTR models): how it ranks."""
        return {"Tiger": "tiger", "SASRec": "sasrec"}.get(self.spec["class"], "pointwise")

    @cached_property
    def trie(self) -> Any:
        """TIGER's prefix trie of the catalogue's IDs, built once per loaded model: a batch of
        requests shares it."""
        return build_trie(self.sids.codes, self.sids.codebook_sizes)

    def trained_items(self) -> np.ndarray:
        """bool per item: True where a training row of the split holds it (not a cold item)."""
        rows = self.split.train
        seen = np.zeros(self.ds.n_items, dtype=bool)
        seen[self.ds.items[rows]] = True
        return seen & ~self.split.is_cold(np.arange(self.ds.n_items))


def _semantic_ids(ids_dir: str, ds: Dataset, needed: bool) -> SemanticIds | None:
    """The IDs of ``ds`` (refused with the generator command when needed and not there)."""
    try:
        return load_semantic_ids(ids_dir, ds)
    except DataError:
        if needed:
            raise
        return None


def _build(spec: dict[str, Any], ds: Dataset, split: Split, sids: SemanticIds | None) -> nn.Module:
    """The untrained model the spec describes, on the data set and split it was trained on; a
    recorded size out of its flag's range is refused before anything is allocated."""
    cls, config = spec["class"], dict(spec["config"])
    for key, value in config.items():
        if not isinstance(value, bool):
            in_range(key, value)
    codes = None if sids is None else sids.codes
    sizes = None if sids is None else list(sids.codebook_sizes)
    if cls == "Tiger":
        if spec.get("legacy"):
            config["codebook_sizes"] = sizes
        return Tiger(TigerConfig(**config), codes)
    if cls == "SASRec":
        # The trained-item mask only shapes training (untrained rows stay zero in the weights).
        return SASRec(ds.n_items, SASRecConfig(**config))
    if cls == "MatrixFactorization":
        build = model_factory(
            ds,
            split,
            config["objective"],
            config["dim"],
            config["negatives"],
            codes,
            sizes,
            config["init_std"],
        )
        return build(spec["name"])
    model_cfg = dict(config["model"])
    model_cfg.update(hidden=tuple(model_cfg["hidden"]), bottom=tuple(model_cfg["bottom"]))
    features = build_features(ds, split, config["mode"], codes, **config["features"])
    return build_ctr_model(spec["name"], features, CTRConfig(**model_cfg))


_PLAIN_WORD = re.compile(r"[A-Za-z0-9_.,/:=+@-]+")


def recreate_fix(spec: dict[str, Any]) -> str:
    """The refusal's remedy: the command recorded in ``spec`` only when it is one of the toolkit's
    trainers with plain words for arguments (a planted file must not choose what the user is told
    to run, nor smuggle terminal escapes into the message), else the trainers' names."""
    command = spec.get("command")
    words = command.split(" ") if isinstance(command, str) else []
    if (
        len(words) >= 2
        and words[0] == "python"
        and words[1] in TRAINERS
        and all(_PLAIN_WORD.fullmatch(w) for w in words[2:])
    ):
        return f"re-create it with `{command}`"
    return f"re-create it with the trainer that wrote it ({SCRIPTS})"


def load_trained(
    path: str | Path,
    data_dir: str | None = None,
    semantic_dir: str | None = None,
    device: str = "cpu",
) -> Trained:
    """The model of checkpoint ``path`` with its trained weights (the best epoch's), checked
    against the data in ``data_dir`` (default: the folder it was trained on) and the semantic IDs
    in ``semantic_dir`` (default: the folder it was trained with)."""
    path = Path(path)
    state = load_checkpoint(path, f"give a checkpoint written by {SCRIPTS}")
    spec = state.get("spec")
    identity = state.get("identity")
    if not isinstance(spec, dict):
        spec = legacy_spec(path, state, data_dir or "beauty")
        identity = spec.pop("identity")
        log.warning(
            "%s: written before checkpoints recorded their model; rebuilt from the %s preset "
            "(training settings, weight shapes and data checked)",
            path,
            spec["preset"],
        )
    fix = recreate_fix(spec)
    data_dir = data_dir or spec.get("data_dir") or spec["dataset"]
    ds = load_dataset(data_dir)
    if ds.name != spec["dataset"] or spec.get("items") not in (None, strings_digest(ds.item_ids)):
        raise CheckpointError(
            f"{path}: trained on the {spec['dataset']} data set, not on {data_dir} ({ds.name}, "
            f"another item map); give its --data-dir, or {fix}"
        )
    if not isinstance(identity, dict):
        raise CheckpointError(f"{path}: records no data, split or semantic IDs; {fix}")
    if "data_checksum" in identity:  # before the IDs: those of other data are refused as well
        saved = {"data_checksum": identity["data_checksum"]}
        check_identity(path, saved, {"data_checksum": ds.checksum}, fix)
    needs_ids = spec["class"] == "Tiger" or bool(identity.get("semantic_ids"))
    sids = _semantic_ids(semantic_dir or spec.get("semantic_dir") or data_dir, ds, needs_ids)
    split_args = identity.get("split") or spec["split"]
    split = get_split(ds, split_args["kind"], split_args["seed"], split_args["cold_fraction"])
    if "protocol" in spec:
        split = protocol_split(split, PROTOCOLS[spec["protocol"]])
    # what this data gives for each thing the checkpoint records (a legacy TIGER checkpoint
    # records only its IDs' digest, which stands for the data: see src/serving/legacy.py)
    here = dict(identity)
    if "data_checksum" in identity:
        here["data_checksum"] = ds.checksum
    if "split" in identity:
        here["split"] = split_identity(split, split_args["cold_fraction"])
    if identity.get("semantic_ids"):
        here["semantic_ids"] = ids_digest(sids)
    check_identity(path, identity, here, fix)
    try:
        model = _build(spec, ds, split, sids)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: its model configuration does not build ({type(exc).__name__}: "
            f"{str(exc)[:120]}); {fix}"
        ) from exc
    weights = state["best_state"] if state.get("best_state") is not None else state["model"]
    check_layout(path, model.state_dict(), weights, fix)
    model.load_state_dict(weights)
    model.to(torch.device(device)).eval()
    return Trained(path, spec, model, ds, split, sids, device)
