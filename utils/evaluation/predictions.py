"""Saved predictions: what each model ranked or scored on the test set, so a metric can be checked.

One compressed ``.npz`` file per (model, seed), written next to the results
JSON (``<results>.predictions/<model>-seed<N>.<run>.npz``) and named in it with its
sha256. ``<run>`` is new for every run, so a run never overwrites the files the
current results name: they stay valid until the new results JSON replaces the
old one, and only then are the old files removed (:func:`remove_superseded`).
``.npz`` because it needs nothing beyond numpy, stores columns compactly, and
loads with ``allow_pickle=False`` (no code can hide in it); item and user IDs
are stored as fixed-width unicode arrays, never as Python objects.

Two kinds:

* ``ranking``: per test user (``users``, original user IDs) the top-K list
  ``items`` (original item IDs, best first; '' where the list is shorter) with
  ``scores`` (the model's score of each listed item; TIGER: the beam's summed
  log-probability). Extra lists (``cold_items``, ``cold_share_items``) share the layout.
* ``pointwise``: per evaluation example ``users``, ``items``, ``labels`` and
  ``scores`` (the raw model output: a rating, or a logit).

``meta`` says which model, seed, data set, split and tie rule produced it.

    from utils.evaluation.predictions import load_predictions
    p = load_predictions(result["models"]["tiger_item"]["predictions"]["file"])
    p.meta["model"], p["users"][0], p["items"][0, :10]
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from utils.runtime.errors import DataError
from utils.runtime.io import atomic_path, sha256_file

FORMAT = "semantic-ids-predictions/1"
KINDS = ("ranking", "pointwise")
# A predictions file of some run: "<model>-seed<N>[-<kind>].<run tag>.npz".
_RUN_FILE = re.compile(r"^.+-seed-?\d+(?:-[a-z]+)?\.[0-9a-f]{12}\.npz$")


@dataclass
class Predictions:
    """A loaded predictions file: ``meta`` (dict) and its named columns (``p["items"]``)."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __contains__(self, name: str) -> bool:
        return name in self.arrays


class MissingPredictions(DataError):
    """A results file whose predictions are not here (never saved, or not on this machine: they are
    git-ignored): its numbers cannot be checked, which is not the same as a wrong number."""


class PartlyMissing(MissingPredictions):
    """Some predictions of a results file are missing: ``checks`` holds what the present ones
    recomputed, so an edited metric beside a missing file is still caught."""

    def __init__(self, message: str, checks: list) -> None:
        super().__init__(message)
        self.checks = checks


def collect(parts: list, run, checks: list, missing: list[str]) -> None:
    """``checks += run(part)`` for each part; a part whose predictions are missing adds its
    message to ``missing`` (and whatever it did check) instead of ending the file's checks."""
    for part in parts:
        try:
            checks += run(part)
        except MissingPredictions as exc:
            checks += getattr(exc, "checks", [])
            missing.append(str(exc))


def partial(checks: list, missing: list[str]) -> list:
    """``checks``, or PartlyMissing carrying them when some predictions were missing."""
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise PartlyMissing(missing[0] + more, checks)
    return checks


def predictions_dir(results_path: str | Path) -> Path:
    """Where a results file's predictions go: ``results/x.json`` -> ``results/x.predictions/``."""
    path = Path(results_path)
    return path.with_name(path.stem + ".predictions")


def predictions_file(
    results_path: str | Path, model: str, seed: int, kind: str, run_tag: str
) -> Path:
    """A run's file for one model and seed; ``run_tag`` (12 hex digits) is new for every run."""
    suffix = "" if kind == "ranking" else f"-{kind}"
    return predictions_dir(results_path) / f"{model}-seed{seed}{suffix}.{run_tag}.npz"


def named_files(result: Any) -> Iterator[str]:
    """Every predictions file a results dict names (``{"file", "sha256"}`` records, any depth)."""
    if isinstance(result, dict):
        if isinstance(result.get("file"), str) and "sha256" in result:
            yield result["file"]
        for value in result.values():
            yield from named_files(value)
    elif isinstance(result, list):
        for value in result:
            yield from named_files(value)


def remove_superseded(results_path: str | Path, previous: Any, current: Any) -> list[Path]:
    """After ``current`` replaced ``previous`` as the results at ``results_path``: delete the
    predictions files the old results named and the new ones do not, and those of runs that never
    finished (a run-tagged name nobody names). Only regular files of this user inside the results'
    own predictions folder are touched, whatever a results file says."""
    folder = predictions_dir(results_path)
    if not folder.is_dir():
        return []
    keep = {Path(f).resolve() for f in named_files(current)}
    named_before = {Path(f).resolve() for f in named_files(previous)}
    removed = []
    for entry in folder.iterdir():
        path = entry.resolve()
        if path in keep or path.parent != folder.resolve():
            continue
        if path not in named_before and not _RUN_FILE.match(entry.name):
            continue
        info = entry.lstat()
        if stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid():
            entry.unlink()
            removed.append(entry)
    return removed


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
        raise MissingPredictions(f"{path}: no such predictions file; {fix}")
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
