"""Saved predictions: what each model ranked or scored on the test set, so a metric can be checked.

One compressed ``.npz`` file per (model, seed), written next to the results
JSON (``<results>.predictions/<model>-seed<N>.npz``) and named in it with its
sha256. ``.npz`` because it needs nothing beyond numpy, stores columns compactly,
and loads with ``allow_pickle=False`` (no code can hide in it); item and user
IDs are stored as fixed-width unicode arrays, never as Python objects.

Two kinds:

* ``ranking``: per test user (``users``, original user IDs) the top-K list
  ``items`` (original item IDs, best first; '' where the list is shorter) with
  ``scores`` (the model's score of each listed item; TIGER: the beam's summed
  log-probability). Extra lists (``cold_items``, ``cold_share_items``) share the layout.
* ``pointwise``: per evaluation example ``users``, ``items``, ``labels`` and
  ``scores`` (the raw model output: a rating, or a logit).

``meta`` says which model, seed, data set, split and tie rule produced it.

    from utils.evaluation.predictions import load_predictions
    p = load_predictions("results/tiger_results.predictions/tiger_item-seed0.npz")
    p.meta["model"], p["users"][0], p["items"][0, :10]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from utils.runtime.errors import DataError
from utils.runtime.io import atomic_path, sha256_file

FORMAT = "semantic-ids-predictions/1"
KINDS = ("ranking", "pointwise")


@dataclass
class Predictions:
    """A loaded predictions file: ``meta`` (dict) and its named columns (``p["items"]``)."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __contains__(self, name: str) -> bool:
        return name in self.arrays


def predictions_dir(results_path: str | Path) -> Path:
    """Where a results file's predictions go: ``results/x.json`` -> ``results/x.predictions/``."""
    path = Path(results_path)
    return path.with_name(path.stem + ".predictions")


def id_strings(ids: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Original IDs (fixed-width unicode) for an index array; index -1 (no item) gives ''."""
    names = np.asarray([str(i) for i in ids] + [""])
    return names[np.where(np.asarray(index) < 0, len(ids), index)]


def save_predictions(
    path: str | Path, meta: dict[str, Any], **arrays: np.ndarray
) -> dict[str, str]:
    """Write one predictions file atomically; returns ``{"file", "sha256"}`` for the results."""
    if meta.get("kind") not in KINDS:
        raise ValueError(f"predictions kind must be one of {KINDS}, got {meta.get('kind')!r}")
    for name, values in arrays.items():
        if np.asarray(values).dtype == object:
            raise ValueError(
                f"column {name!r} holds Python objects; store str IDs as a unicode array"
            )
    header = np.array(json.dumps({"format": FORMAT, **meta}, sort_keys=True))
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, meta=header, **arrays)
    return {"file": str(path), "sha256": sha256_file(path)}


def load_predictions(path: str | Path, sha256: str | None = None) -> Predictions:
    """Read a predictions file (no pickles); with ``sha256``, refuse a file changed since."""
    path = Path(path)
    fix = "re-run the script that wrote it with --save-predictions"
    if not path.is_file():
        raise DataError(f"{path}: no such predictions file; {fix}")
    if sha256 is not None and sha256_file(path) != sha256:
        raise DataError(f"{path}: its sha256 differs from the one its results file records; {fix}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        meta = json.loads(str(arrays.pop("meta")))
    except (ValueError, OSError, KeyError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a predictions file ({exc}); {fix}") from exc
    if meta.get("format") != FORMAT:
        raise DataError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}; {fix}")
    return Predictions(meta, arrays)
