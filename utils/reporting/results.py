"""The results-file layout every script writes: the run record under one key, written by rank 0
only, and mean ± std over seeds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from utils.evaluation.predictions import remove_superseded
from utils.runtime import distributed
from utils.runtime.io import atomic_path, atomic_write_json, unlock_output, write_fully

# The key under which every results file stores its run record
# (utils.reporting.runinfo.RunRecord.to_dict()).
RUN_RECORD = "run_record"


def write_results(
    path: str | Path,
    result: dict[str, Any],
    record: Any,
    page: tuple[Path, Callable[[dict[str, Any]], str]] | None = None,
) -> dict[str, Any]:
    """Commit a run's result set: ``result`` with the run record under :data:`RUN_RECORD`, and
    optionally a page rendered from it (``(path, render)``); returns what was written.

    The set changes together or not at all. Its predictions files carry a new name per run (so
    nothing the old results name is overwritten), the page is rendered to a temporary file
    first, the results JSON is renamed into place, the page right after it, and only then are
    the predictions of the old results removed. A failure before the JSON's rename leaves the
    previous set exactly as it was. Under torchrun only rank 0 writes (the others return the
    same dict).
    """
    result = {**result, RUN_RECORD: record.to_dict()}
    if not distributed.is_main():
        return result
    previous = _previous_results(Path(path))
    with ExitStack() as stack:
        if page is not None:
            staged = stack.enter_context(atomic_path(page[0]))
            write_fully(staged, page[1](result).encode("utf-8"))
        atomic_write_json(path, result)
    remove_superseded(path, previous, result)
    unlock_output(path)
    return result


def _previous_results(path: Path) -> Any:
    """The results now at ``path`` (None when absent or unreadable): whose predictions to retire."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def aggregate_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation of every numeric leaf across runs with the same structure.

    ``[{'auc': .8, 'slices': {'cold': {'n': 5, 'auc': .6}}}, ...]`` becomes
    ``{'auc': {'mean': .., 'std': .., 'values': [..]},
    'slices': {'cold': {'n': {...}, 'auc': {...}}}}``.
    Standard deviation is the sample one (ddof=1) and 0 for a single run; NaN values are left out of
    the mean and std but kept in ``values``; keys missing from the first run are ignored.
    """
    first = runs[0]
    out: dict[str, Any] = {}
    for key, value in first.items():
        values = [r.get(key) for r in runs]
        if isinstance(value, dict):
            out[key] = aggregate_seeds([v for v in values if isinstance(v, dict)])
        elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
            value, bool
        ):
            arr = np.array([float(v) for v in values if v is not None], dtype=float)
            finite = arr[~np.isnan(arr)]
            mean = float(finite.mean()) if len(finite) else float("nan")
            std = float(finite.std(ddof=1)) if len(finite) > 1 else 0.0
            out[key] = {"mean": mean, "std": std, "values": arr.tolist()}
    return out


def published_rows(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The published Beauty numbers a sequential results file carries, and only for Beauty: they
    are never printed or plotted beside another data set's."""
    if result.get("dataset") != "beauty":
        return {}
    return result.get("published_beauty_test") or {}


def dig(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...``, or None where a key is missing."""
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj
