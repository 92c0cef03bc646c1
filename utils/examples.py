"""Pointwise (user, item, label) examples for the rating models (MF and the CTR family).

Explicit data (real star ratings) gives labels = ratings. Implicit data (no
ratings, e.g. the shared Beauty set) gives label 1 for an observed
interaction and 0 for sampled unobserved items. Evaluation negatives come from
the saved split, so every model is scored on exactly the same examples.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from utils.data import Dataset
from utils.splits import InteractionSet, Split, sample_negatives

log = logging.getLogger(__name__)

OBJECTIVES = ("auto", "explicit", "implicit")


@dataclass
class Examples:
    """Parallel arrays; ``group_row`` is the interaction row each example belongs to (for slicing)."""

    users: np.ndarray
    items: np.ndarray
    labels: np.ndarray
    group_row: np.ndarray

    def __len__(self) -> int:
        return len(self.users)


def resolve_objective(ds: Dataset, requested: str = "auto") -> str:
    """'explicit' when the data has star ratings, else 'implicit'; an explicit request needs ratings."""
    if requested not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {requested!r}")
    if requested == "explicit" and not ds.has_ratings:
        raise ValueError(f"{ds.name} has no star ratings; use --objective implicit (or auto)")
    objective = requested if requested != "auto" else ("explicit" if ds.has_ratings else "implicit")
    if objective == "implicit":
        log.info("%s: implicit feedback (observed interaction = 1, sampled unobserved items = 0)", ds.name)
    return objective


def _concat(*parts: Examples) -> Examples:
    return Examples(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("users", "items", "labels", "group_row")))


def positives(ds: Dataset, rows: np.ndarray, objective: str) -> Examples:
    labels = ds.ratings[rows] if objective == "explicit" else np.ones(len(rows), dtype=np.float32)
    return Examples(ds.users[rows], ds.items[rows], labels.astype(np.float32), rows)


def eval_examples(ds: Dataset, split: Split, part: str, objective: str) -> Examples:
    """The validation or test examples; implicit adds the split's fixed negatives for each positive."""
    rows = getattr(split, part)
    pos = positives(ds, rows, objective)
    if objective == "explicit":
        return pos
    negs = getattr(split, f"{part}_negatives")
    k = negs.shape[1]
    neg = Examples(np.repeat(ds.users[rows], k), negs.ravel(), np.zeros(len(rows) * k, dtype=np.float32), np.repeat(rows, k))
    return _concat(pos, neg)


class TrainSampler:
    """Training examples per epoch: positives, plus fresh negatives for implicit data.

    Negatives exclude each user's training interactions only, so the sampler
    never sees which items are held out for evaluation.
    """

    def __init__(self, ds: Dataset, split: Split, objective: str, negatives: int, seed: int):
        self.objective = objective
        self.negatives = negatives if objective == "implicit" else 0
        self.pos = positives(ds, split.train, objective)
        self.observed = InteractionSet(ds.users[split.train], ds.items[split.train], ds.n_items)
        self.cold_mask = np.zeros(ds.n_items, dtype=bool)
        self.cold_mask[split.cold_items] = True
        self.seed = seed

    def epoch(self, epoch: int) -> Examples:
        if not self.negatives:
            return self.pos
        rng = np.random.default_rng([self.seed, epoch, 0x7E6])
        # Cold items never appear in training, not even as negatives.
        neg_items = sample_negatives(self.observed, self.pos.users, self.negatives, rng, self.cold_mask)
        k = self.negatives
        neg = Examples(np.repeat(self.pos.users, k), neg_items.ravel(), np.zeros(len(self.pos) * k, dtype=np.float32), np.repeat(self.pos.group_row, k))
        return _concat(self.pos, neg)
