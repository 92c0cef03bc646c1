"""Deterministic train/validation/test splits, the cold-item hold-out and negative sampling.

A split is a set of interaction indices (rows of the Dataset arrays), so any
model can gather its inputs from the same arrays. Splits, with their fixed
evaluation negatives, are cached as .npz so every model and script sees the
same ones.
"""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from utils.data.dataset import Dataset
from utils.runtime.errors import DataError
from utils.runtime.io import atomic_write_bytes

log = logging.getLogger(__name__)

SPLIT_KINDS = ("temporal", "random", "leave_one_out")
ROW_ARRAYS = ("train", "val", "test")
SPLIT_ARRAYS = (*ROW_ARRAYS, "cold_items", "val_negatives", "test_negatives")


@dataclass
class Split:
    kind: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    cold_items: np.ndarray
    val_negatives: np.ndarray
    test_negatives: np.ndarray
    seed: int
    info: dict[str, Any] = field(default_factory=dict)

    def is_cold(self, items: np.ndarray) -> np.ndarray:
        return np.isin(items, self.cold_items)

    def sizes(self) -> dict[str, int]:
        return {
            "train": len(self.train),
            "val": len(self.val),
            "test": len(self.test),
            "cold_items": len(self.cold_items),
        }


class InteractionSet:
    """Vectorised membership test for (user, item) pairs, via sorted int64 keys."""

    def __init__(self, users: np.ndarray, items: np.ndarray, n_items: int):
        self.n_items = n_items
        self.keys = np.unique(users.astype(np.int64) * n_items + items)

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = np.asarray(users, dtype=np.int64) * self.n_items + items
        pos = np.searchsorted(self.keys, keys)
        pos = np.minimum(pos, len(self.keys) - 1)
        return self.keys[pos] == keys


def cold_item_holdout(n_items: int, fraction: float, split_seed: int) -> np.ndarray:
    """Sorted indices of the items kept out of training; a pure function of its arguments."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"cold fraction must be in [0, 1), got {fraction}")
    rng = np.random.default_rng([split_seed, 0xC01D])
    n_cold = int(round(fraction * n_items))
    return np.sort(rng.choice(n_items, size=n_cold, replace=False)).astype(np.int64)


def sample_negatives(
    observed: InteractionSet,
    users: np.ndarray,
    n: int,
    rng: np.random.Generator,
    excluded_items: np.ndarray | None = None,
) -> np.ndarray:
    """(len(users), n) items drawn uniformly among those each user has not interacted with.

    ``excluded_items`` (a boolean mask over items) removes items for everyone,
    e.g. the cold hold-out during training. Rejection sampling redraws only the
    collisions, so the cost stays vectorised even for heavy users.
    """
    users = np.asarray(users, dtype=np.int64)
    flat_users = np.repeat(users, n)
    out = rng.integers(0, observed.n_items, size=len(flat_users))

    def rejected(idx: np.ndarray) -> np.ndarray:
        bad = observed.contains(flat_users[idx], out[idx])
        return bad | excluded_items[out[idx]] if excluded_items is not None else bad

    idx = np.flatnonzero(rejected(np.arange(len(out))))
    for _ in range(1000):
        if not len(idx):
            return out.reshape(len(users), n)
        out[idx] = rng.integers(0, observed.n_items, size=len(idx))
        idx = idx[rejected(idx)]
    stuck = np.unique(flat_users[idx])
    raise DataError(
        f"no negative items to sample for {len(stuck)} user(s) (user index "
        f"{', '.join(map(str, stuck[:3].tolist()))}): they have interacted with every item a "
        "negative may be drawn from; remove such users from the data, or lower --cold-fraction "
        "if the cold hold-out takes the rest"
    )


def _temporal_rows(ds: Dataset, ratios: tuple[float, float, float]) -> tuple[np.ndarray, ...]:
    """Per user, the first 80% of the chronological sequence trains, the next 10% validates, the
    rest tests.

    Cut points are floors of the cumulative ratios, and every user keeps at
    least one training interaction (a 5-item history gives 4 train, 0 val, 1 test).
    """
    lengths = np.diff(ds.user_offsets)
    n = np.repeat(lengths, lengths)
    train_end = np.maximum(1, np.floor(n * ratios[0] + 1e-9)).astype(np.int64)
    val_end = np.maximum(train_end, np.floor(n * (ratios[0] + ratios[1]) + 1e-9)).astype(np.int64)
    pos = ds.positions
    rows = np.arange(ds.n_interactions)
    return rows[pos < train_end], rows[(pos >= train_end) & (pos < val_end)], rows[pos >= val_end]


def _random_rows(
    ds: Dataset, ratios: tuple[float, float, float], rng: np.random.Generator
) -> tuple[np.ndarray, ...]:
    """Uniformly random rows per split; a user left without training rows gets one back."""
    part = rng.choice(3, size=ds.n_interactions, p=np.asarray(ratios) / sum(ratios))
    has_train = np.bincount(ds.users[part == 0], minlength=ds.n_users) > 0
    part[ds.user_offsets[:-1][~has_train & (np.diff(ds.user_offsets) > 0)]] = 0
    rows = np.arange(ds.n_interactions)
    return rows[part == 0], rows[part == 1], rows[part == 2]


def _leave_one_out_rows(ds: Dataset) -> tuple[np.ndarray, ...]:
    """Last interaction tests, second-to-last validates, the rest trains (users with >= 3 items)."""
    lengths = np.repeat(np.diff(ds.user_offsets), np.diff(ds.user_offsets))
    from_end = lengths - ds.positions  # 1 for the last interaction
    rows = np.arange(ds.n_interactions)
    test = (from_end == 1) & (lengths >= 2)
    val = (from_end == 2) & (lengths >= 3)
    return rows[~test & ~val], rows[val], rows[test]


def make_split(
    ds: Dataset,
    kind: str = "temporal",
    seed: int = 0,
    cold_fraction: float = 0.05,
    n_eval_negatives: int = 4,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> Split:
    """Build a split; see :func:`get_split` for the cached version every script uses."""
    if kind not in SPLIT_KINDS:
        raise ValueError(f"unknown split kind {kind!r}; choose one of {', '.join(SPLIT_KINDS)}")
    rng = np.random.default_rng([seed, 0x5B17])
    if kind == "temporal":
        train, val, test = _temporal_rows(ds, ratios)
    elif kind == "random":
        train, val, test = _random_rows(ds, ratios, rng)
    else:
        train, val, test = _leave_one_out_rows(ds)

    cold = cold_item_holdout(ds.n_items, cold_fraction, seed)
    cold_mask = np.zeros(ds.n_items, dtype=bool)
    cold_mask[cold] = True
    info: dict[str, Any] = {
        "ratios": list(ratios),
        "cold_fraction": cold_fraction,
        "n_eval_negatives": n_eval_negatives,
    }
    if kind == "leave_one_out":
        # Sequential protocol: targets stay where they are; cold items just never train.
        info["cold_rows_dropped_from_train"] = int(cold_mask[ds.items[train]].sum())
        train = train[~cold_mask[ds.items[train]]]
    else:
        # Every interaction with a cold item is evaluated in test, so the cold slice has real mass.
        moved = np.concatenate([train[cold_mask[ds.items[train]]], val[cold_mask[ds.items[val]]]])
        train = train[~cold_mask[ds.items[train]]]
        val = val[~cold_mask[ds.items[val]]]
        test = np.sort(np.concatenate([test, moved]))
        info["cold_rows_moved_to_test"] = int(len(moved))
    info["users_without_train_rows"] = int(
        (np.bincount(ds.users[train], minlength=ds.n_users) == 0).sum()
    )

    observed = InteractionSet(ds.users, ds.items, ds.n_items)
    neg_rng = np.random.default_rng([seed, 0x4E36])
    val_neg = sample_negatives(observed, ds.users[val], n_eval_negatives, neg_rng)
    test_neg = sample_negatives(observed, ds.users[test], n_eval_negatives, neg_rng)
    split = Split(
        kind,
        train.astype(np.int64),
        val.astype(np.int64),
        test.astype(np.int64),
        cold,
        val_neg,
        test_neg,
        seed,
        info,
    )
    log.info("split %s (seed %d): %s; %s", kind, seed, split.sizes(), info)
    return split


def load_cached_split(path: Path, ds: Dataset, kind: str, seed: int) -> Split:
    """A saved split, checked against the data set; a damaged or foreign file is refused with the
    fix."""
    fix = "delete it and run again: the split is rebuilt, identical, from its seed"
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in SPLIT_ARRAYS}
            info = {
                k[5:]: z[k].item() if z[k].ndim == 0 else z[k].tolist()
                for k in z.files
                if k.startswith("info_")
            }
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as exc:
        raise DataError(
            f"{path}: the cached split is damaged ({type(exc).__name__}: {exc}); {fix}"
        ) from exc
    problem = _split_problem(arrays, ds)
    if problem:
        raise DataError(f"{path}: the cached split does not fit {ds.name} ({problem}); {fix}")
    return Split(kind, *(arrays[k] for k in SPLIT_ARRAYS), seed, info)


def _split_problem(arrays: dict[str, np.ndarray], ds: Dataset) -> str | None:
    """What is wrong with saved split arrays for this data set, or None."""
    bounds = {
        **{k: ds.n_interactions for k in ROW_ARRAYS},
        "cold_items": ds.n_items,
        "val_negatives": ds.n_items,
        "test_negatives": ds.n_items,
    }
    for name, a in arrays.items():
        if a.dtype.kind not in "iu" or a.ndim != (2 if name.endswith("negatives") else 1):
            return f"{name} is {a.dtype} of shape {a.shape}"
        if a.size and (a.min() < 0 or a.max() >= bounds[name]):
            return f"{name} holds values outside 0..{bounds[name] - 1}"
    for part in ("val", "test"):
        if len(arrays[f"{part}_negatives"]) != len(arrays[part]):
            n_rows = len(arrays[f"{part}_negatives"])
            return f"{part}_negatives has {n_rows} rows for {len(arrays[part])} examples"
    return None


def get_split(
    ds: Dataset,
    kind: str = "temporal",
    seed: int = 0,
    cold_fraction: float = 0.05,
    n_eval_negatives: int = 4,
    cache_dir: str | Path | None = None,
) -> Split:
    """The split for these parameters, loaded from ``cache_dir`` when saved before, else built and
    saved.

    Saving matters for more than speed: the evaluation negatives are drawn
    once, so every model and script is scored against the same ones.
    """
    if cache_dir is None:
        return make_split(ds, kind, seed, cold_fraction, n_eval_negatives)
    name = (
        f"split-{kind}-seed{seed}-cold{cold_fraction:g}-neg{n_eval_negatives}"
        f"-{ds.checksum[:12]}.npz"
    )
    path = Path(cache_dir) / name
    if path.exists():
        split = load_cached_split(path, ds, kind, seed)
        log.info("loaded split %s from %s: %s", kind, path, split.sizes())
        return split
    split = make_split(ds, kind, seed, cold_fraction, n_eval_negatives)
    arrays = {k: getattr(split, k) for k in SPLIT_ARRAYS}
    arrays.update({f"info_{k}": np.asarray(v) for k, v in split.info.items()})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return split
