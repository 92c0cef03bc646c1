"""Popularity and cold-start slices: every model's metrics are reported on the same groups."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from utils.data.dataset import Dataset
from utils.data.splits import Split

SLICE_QUANTILES = (0.2, 0.8)


def popularity_groups(counts: np.ndarray, q: tuple[float, float] = SLICE_QUANTILES) -> np.ndarray:
    """'tail' / 'mid' / 'head' per index by training-count quantiles of the indices seen in
    training.

    Thresholds come from the indices with a non-zero count, so unseen (cold)
    indices do not drag the quantiles down; they fall into 'tail'.
    """
    counts = np.asarray(counts)
    seen = counts[counts > 0]
    low, high = np.quantile(seen, q) if len(seen) else (0.0, 0.0)
    labels = np.full(len(counts), "mid", dtype=object)
    labels[counts <= low] = "tail"
    labels[counts > high] = "head"
    return labels


def row_slices(ds: Dataset, split: Split, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks over evaluation ``rows``: item and user popularity groups, cold and warm
    items."""
    train_items = popularity_groups(ds.item_counts(split.train))
    train_users = popularity_groups(ds.user_counts(split.train))
    items, users = ds.items[rows], ds.users[rows]
    cold = split.is_cold(items)
    masks: dict[str, np.ndarray] = {}
    for group in ("head", "mid", "tail"):
        masks[f"item_{group}"] = (train_items[items] == group) & ~cold
    for group in ("head", "mid", "tail"):
        masks[f"user_{group}"] = train_users[users] == group
    masks["cold_items"] = cold
    masks["warm_items"] = ~cold
    return masks


def slice_report(
    metric_fn: Callable[[np.ndarray], dict[str, float]], masks: dict[str, np.ndarray]
) -> dict[str, dict]:
    """Apply ``metric_fn`` to each non-empty slice; every slice reports its size ``n``."""
    report: dict[str, dict] = {}
    for name, mask in masks.items():
        n = int(mask.sum())
        report[name] = {"n": n, **(metric_fn(mask) if n else {})}
    return report
