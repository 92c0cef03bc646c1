"""What every recomputation shares: one check (a reported number beside the recomputed one),
the task a predictions file was made on (data set by checksum, split rebuilt in memory), and
the refusals of a damaged predictions file (unknown IDs, short or missing columns).

:mod:`utils.evaluation.verify` (rankings, entry point) and
:mod:`utils.evaluation.verify_pointwise` (MF and CTR) build on these.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import numpy as np

from utils.data.dataset import Dataset
from utils.data.load import load_dataset
from utils.data.splits import Split, get_split
from utils.evaluation.predictions import Predictions
from utils.runtime.errors import DataError

TOLERANCE = 1e-9  # absolute; metrics are means of float64 terms summed in another order


@dataclass
class Check:
    """One recomputed number beside the reported one."""

    results: str
    model: str
    metric: str
    reported: float
    recomputed: float

    @property
    def ok(self) -> bool:
        """Equal within TOLERANCE (or both NaN); a reported value that is no number never is."""
        if not is_number(self.reported):
            return False
        both_nan = np.isnan(self.reported) and np.isnan(self.recomputed)
        return both_nan or abs(self.reported - self.recomputed) <= TOLERANCE


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


LAYOUT_FIX = "re-run the script that wrote it with --save-predictions"


@cache
def _task(data_dir: str, checksum: str, kind: str, seed: int, cold_fraction: float) -> tuple:
    ds = load_dataset(data_dir)
    if ds.checksum != checksum:
        raise DataError(
            f"{data_dir}: not the data the predictions were made on (checksum "
            f"{ds.checksum[:12]}..., the predictions say {str(checksum)[:12]}...); {LAYOUT_FIX}"
        )
    # Rebuilt in memory: the split is a pure function of these, and the verifier writes nothing
    # (a file's metadata never chooses a folder for it to write into).
    return ds, get_split(ds, kind, seed, cold_fraction, cache_dir=None)


def task(meta: dict[str, Any]) -> tuple[Dataset, Split]:
    """The data set a predictions file was made on (refused unless its checksum matches) and its
    split, rebuilt from the split's parameters (``train_on_validation``: the validation rows
    were trained on too, as under the sequential holdout protocol)."""
    s = meta["split"]
    ds, split = _task(
        str(meta["data_dir"]),
        str(meta["data_checksum"]),
        str(s["kind"]),
        int(s["seed"]),
        float(s["cold_fraction"]),
    )
    if s.get("train_on_validation", False) is True:
        split = replace(
            split, train=np.sort(np.concatenate([split.train, split.val])), val=split.val[:0]
        )
    return ds, split


def rows_of(ids: np.ndarray, index: dict[str, int], what: str, p: Predictions) -> np.ndarray:
    """Indices of saved original IDs; an ID the data set does not have is refused by name."""
    try:
        return np.array([index[str(x)] for x in ids], dtype=np.int64)
    except KeyError as exc:
        raise DataError(
            f"{p.meta.get('model')}: the predictions name {what} {exc.args[0]!r}, which the data "
            f"set does not have; {LAYOUT_FIX}"
        ) from None


def no_unchecked_metrics(
    path: str, label: str, reported: Any, got: dict[str, Any], allowed: tuple[str, ...] = ()
) -> None:
    """Refuse a reported number that nothing recomputes (a key outside ``got``, ``n`` and the
    ``allowed`` suffixes): a hand-added metric would otherwise pass --verify unchecked."""
    extra = [
        k
        for k, v in (reported.items() if isinstance(reported, dict) else ())
        if is_number(v) and k != "n" and k not in got and not k.endswith(allowed or ("\0",))
    ]
    if extra:
        raise DataError(
            f"{path}: {label}: reports {', '.join(extra)}, which no saved prediction recomputes "
            f"(a hand-edited file?); {LAYOUT_FIX}"
        )


def same_length(p: Predictions, columns: tuple[str, ...]) -> int:
    """The common length of the saved columns; short or missing arrays are refused."""
    lengths = {c: len(p[c]) if c in p else None for c in columns}
    if None in lengths.values() or len(set(lengths.values())) != 1:
        raise DataError(
            f"{p.meta.get('model')}: saved columns of unequal length or missing ({lengths}); "
            f"{LAYOUT_FIX}"
        )
    return next(iter(lengths.values()))


def index_of(ids: np.ndarray) -> dict[str, int]:
    return {str(x): i for i, x in enumerate(ids)}


def list_indices(saved: np.ndarray, index: dict[str, int]) -> np.ndarray:
    """Indices (``index`` of :func:`index_of`) of the item IDs in saved ranked lists, any shape;
    -1 for a list's padding ('') or an ID the data set does not have."""
    return np.vectorize(lambda s: index.get(str(s), -1), otypes=[np.int64])(saved)
