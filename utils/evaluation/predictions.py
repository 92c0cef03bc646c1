"""Saved predictions: what each model ranked or scored on the test set, so a metric can be checked.

One compressed ``.npz`` file per (model, seed), written next to the results
JSON (``<results>.predictions/<model>-seed<N>.<run>.npz``) and named in it with its
sha256. ``<run>`` is new for every run, so a run never overwrites the files the
current results name: they stay valid until the new results JSON replaces the
old one, and only then are the old files removed (:func:`remove_superseded`).
Each file written is listed in the folder's manifest (:data:`MANIFEST`, name ->
sha256), and cleanup deletes only listed files still holding what was written:
a file of the user's in that folder survives whatever its name.
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

import hashlib
import io
import json
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from utils.runtime.errors import DataError
from utils.runtime.io import atomic_write_bytes, atomic_write_json, read_json, sha256_file

FORMAT = "semantic-ids-predictions/1"
KINDS = ("ranking", "pointwise")
# The list of the files this toolkit wrote into a predictions folder: {"format", "files": {name:
# sha256}}. Only what it lists is ever deleted there.
MANIFEST = ".semantic-ids-written.json"
MANIFEST_FORMAT = "semantic-ids-written/1"
log = logging.getLogger(__name__)


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


def read_manifest(folder: str | Path) -> dict[str, str]:
    """The files this toolkit wrote into ``folder`` (name -> sha256; {} before the first). A
    file at the manifest's name that is not one is refused (DataError), never overwritten."""
    path = Path(folder) / MANIFEST
    if not os.path.lexists(path):
        return {}
    fix = f"it is not this toolkit's list of its files; move it out of {folder}"
    data = read_json(path, fix)
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or data.get("format") != MANIFEST_FORMAT:
        raise DataError(f"{path}: {fix}")
    return {  # plain names only: nothing outside the folder is ever listed
        name: sha
        for name, sha in files.items()
        if isinstance(sha, str) and name == Path(name).name and name not in (".", "..")
    }


def _write_manifest(folder: Path, files: dict[str, str]) -> None:
    manifest = {"format": MANIFEST_FORMAT, "files": files}
    atomic_write_json(folder / MANIFEST, manifest, sort_keys=True)


def remove_superseded(results_path: str | Path, previous: Any, current: Any) -> list[Path]:
    """After ``current`` replaced ``previous`` as the results at ``results_path``: delete the
    predictions files this toolkit wrote into the results' folder (its manifest) that the new
    results do not name: the old results' and those of runs that never finished. A listed file
    that no longer holds what was written (the user's now), a symbolic link or another user's
    file is only dropped from the list; an unlisted file is never touched, whatever its name or
    a results file says (a folder from before the manifest keeps its old files: one log line)."""
    folder = predictions_dir(results_path)
    if not folder.is_dir():
        return []
    try:
        written = read_manifest(folder)
    except DataError as exc:
        log.warning("%s; no old predictions removed", exc)
        return []
    keep = {Path(f).resolve() for f in named_files(current)}
    removed: list[Path] = []
    listed: dict[str, str] = {}
    for name, sha in written.items():
        entry = folder / name
        if folder.resolve() / name in keep:
            listed[name] = sha
        elif _still_ours(entry, sha):
            entry.unlink()
            removed.append(entry)
    if listed != written:
        _write_manifest(folder, listed)
    _log_unlisted(folder, previous, keep, written)
    return removed


def _still_ours(entry: Path, sha256: str) -> bool:
    """A regular file of this user that still holds what this toolkit wrote there."""
    try:
        info = entry.lstat()
    except OSError:
        return False
    return (
        stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and sha256_file(entry) == sha256
    )


def _log_unlisted(folder: Path, previous: Any, keep: set[Path], written: dict[str, str]) -> None:
    """One line when the old results name files that the manifest does not list (a folder written
    before it existed): they are left in place for the user to delete."""
    names = {Path(f).name for f in named_files(previous)} - {p.name for p in keep} - set(written)
    left = [name for name in names if (folder / name).is_file()]
    if left:
        log.info(
            "%s: %d predictions files of the old results are not in its %s (written before it "
            "existed); left in place, delete them by hand if unwanted",
            folder,
            len(left),
            MANIFEST,
        )


def id_strings(ids: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Original IDs (fixed-width unicode) for an index array; index -1 (no item) gives ''."""
    names = np.asarray([str(i) for i in ids] + [""])
    return names[np.where(np.asarray(index) < 0, len(ids), index)]


def save_predictions(
    path: str | Path, meta: dict[str, Any], **arrays: np.ndarray
) -> dict[str, str]:
    """Write one predictions file atomically and list it in its folder's manifest (so a later
    cleanup may remove it); returns ``{"file", "sha256"}`` for the results."""
    if meta.get("kind") not in KINDS:
        raise ValueError(f"predictions kind must be one of {KINDS}, got {meta.get('kind')!r}")
    for name, values in arrays.items():
        if np.asarray(values).dtype == object:
            raise ValueError(
                f"column {name!r} holds Python objects; store str IDs as a unicode array"
            )
    header = np.array(json.dumps({"format": FORMAT, **meta}, sort_keys=True))
    path = Path(path)
    written = read_manifest(path.parent)  # a foreign file at its name: refused before writing
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=header, **arrays)
    sha256 = hashlib.sha256(buffer.getvalue()).hexdigest()
    atomic_write_bytes(path, buffer.getvalue())
    _write_manifest(path.parent, {**written, path.name: sha256})
    return {"file": str(path), "sha256": sha256}


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
