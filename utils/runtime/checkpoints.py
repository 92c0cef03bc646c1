"""Checkpoint files: what a checkpoint may hold, what it must match to be resumed, and how it is
written.

A checkpoint is loaded as tensors and plain containers only (a planted file never runs code); it
records what it was trained on (data checksum, semantic-ID digest, split, model configuration),
and one of anything else, or of another size or layout, is refused by name before torch's own
error can. A save is serialised in memory and then written through a temporary file, so a full
disk ends in one error naming the file and leaves the previous checkpoint as it was.

torch is imported inside the functions that need it, so torch-free code may import this module.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
from pathlib import Path
from typing import Any

from utils.runtime.errors import CheckpointError
from utils.runtime.hashing import rows_digest, strings_digest
from utils.runtime.io import atomic_write_bytes, regular_file, to_json

RESUME_FIX = "delete it, or run without --resume"


def plain(obj: Any) -> Any:
    """Numpy scalars and the like as plain Python values, so the checkpoint loads with
    weights_only=True."""
    return json.loads(to_json(obj, indent=None))


CHECKPOINT_LIMIT = 8 * 2**30  # far above any model here; torch.load holds the whole file


def load_checkpoint(path: Path, fix: str = RESUME_FIX) -> dict[str, Any]:
    """A checkpoint as tensors and plain containers only: a planted file can never run code here;
    ``fix`` ends every refusal."""
    import torch

    regular_file(path, CHECKPOINT_LIMIT, fix)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused to load, it holds objects other than tensors and plain "
            f"data (not a checkpoint of this toolkit); {fix}"
        ) from exc
    except (RuntimeError, EOFError, OSError, struct.error) as exc:  # struct: a few junk bytes
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}); {fix}"
        ) from exc
    if not isinstance(state, dict) or not {"model", "optimizer", "epoch"} <= set(state):
        raise CheckpointError(f"{path}: not a training checkpoint of this toolkit; {fix}")
    return state


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Serialise in memory, then write through a temporary file: a full disk ends in one
    OSError naming ``path`` and leaves the previous checkpoint as it was."""
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A nested dict as {"a.b": leaf}, so a difference can be named by its path."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _short(value: Any) -> str:
    text = str(value)
    return text[:12] + "..." if len(text) > 15 else text


def split_identity(split: Any, cold_fraction: float) -> dict[str, Any]:
    """What a checkpoint records of its split (a :class:`utils.data.splits.Split`): kind, seed,
    cold hold-out and a digest of the training rows."""
    return {
        "kind": split.kind,
        "seed": split.seed,
        "cold_fraction": cold_fraction,
        "train_rows": rows_digest(split.train),
    }


def run_spec(script: str, flags: dict[str, Any], ds: Any, **fields: Any) -> dict[str, Any]:
    """What every checkpoint records for rebuilding its model outside training (the trainer adds
    the model's class, name and configuration): the command that re-creates it (``flags`` with a
    None value left out), the data folders and the item map of ``ds`` (a Dataset)."""
    command = " ".join(["python", script, *(f"{k} {v}" for k, v in flags.items() if v is not None)])
    return plain(
        {
            "command": command,
            "dataset": ds.name,
            "data_dir": flags.get("--data-dir"),
            "semantic_dir": flags.get("--semantic-dir") or flags.get("--data-dir"),
            "items": strings_digest(ds.item_ids),
            **fields,
        }
    )


def save_weights(path: Path, weights: dict[str, Any], meta: dict[str, Any]) -> None:
    """A final checkpoint of trained weights (MF, the CTR models): no optimiser state, the same
    ``identity`` and ``spec`` (in ``meta``) as a training checkpoint, loaded the same way."""
    save_checkpoint(
        path, {"model": weights, "optimizer": {}, "epoch": -1, "best_state": None, **plain(meta)}
    )


def check_identity(
    path: Path, saved: Any, wanted: dict[str, Any] | None, fix: str = RESUME_FIX
) -> None:
    """Refuse a checkpoint trained on other data, semantic IDs, split or model than this run's,
    naming what differs; ``fix`` says what to do instead."""
    if plain(saved) == plain(wanted):
        return
    if not isinstance(saved, dict):
        raise CheckpointError(
            f"{path}: records no data checksum, semantic IDs or model configuration (written by "
            f"an older version or another tool), so it cannot be checked against this run; "
            f"{fix}"
        )
    old, new = _flat(plain(saved)), _flat(plain(wanted or {}))
    differ = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    shown = "; ".join(f"{k}: {_short(old.get(k))} there, {_short(new.get(k))} here" for k in differ)
    raise CheckpointError(f"{path}: trained on something else than this run ({shown[:300]}); {fix}")


def check_layout(path: Path, own: dict[str, Any], weights: Any, fix: str = RESUME_FIX) -> None:
    """Refuse saved weights of another size or layout than ``own`` (a state dict of tensors), by
    name, before torch's size-mismatch error can."""
    import torch

    if not isinstance(weights, dict) or not all(
        isinstance(v, torch.Tensor) for v in weights.values()
    ):
        raise CheckpointError(f"{path}: its model weights are not a table of tensors; {fix}")
    differ = sorted(set(own) ^ set(weights)) + [
        f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in weights and weights[k].shape != v.shape
    ]
    if differ:
        raise CheckpointError(
            f"{path}: a model of another size or layout ({len(differ)} tensor(s) differ, e.g. "
            f"{', '.join(map(str, differ[:2]))}); {fix}"
        )
