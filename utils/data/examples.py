"""Pointwise (user, item, label) examples for the rating models (MF and the CTR family).

Explicit data (real star ratings) gives labels = ratings. Implicit data (no
ratings, e.g. the shared Beauty set) gives label 1 for an observed
interaction and 0 for sampled unobserved items. "liked" (the CTR models on
rated data) gives label 1 where the rating is >= the positive threshold, else
0, on the rated examples only (no sampled negatives). Evaluation negatives come from
the saved split, so every model is scored on exactly the same examples.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from utils.data.dataset import Dataset
from utils.data.splits import InteractionSet, Split, sample_negatives
from utils.runtime.errors import DataError

log = logging.getLogger(__name__)

OBJECTIVES = ("auto", "explicit", "implicit")
# What a trainer can be asked to fit: the resolved objectives plus "liked" (binarised ratings).
LABELLINGS = ("explicit", "implicit", "liked")


@dataclass
class PointwiseExamples:
    """Parallel arrays; ``group_row`` is the interaction row each example belongs to (for
    slicing)."""

    users: np.ndarray
    items: np.ndarray
    labels: np.ndarray
    group_row: np.ndarray

    def __len__(self) -> int:
        return len(self.users)


def resolve_objective(ds: Dataset, requested: str = "auto") -> str:
    """'explicit' when the data has star ratings, else 'implicit'; an explicit request needs
    ratings."""
    if requested not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {requested!r}")
    if requested == "explicit" and not ds.has_ratings:
        raise DataError(
            f"--objective explicit: {ds.name} has no star ratings (interactions only); use "
            "--objective implicit (or auto, which picks it)"
        )
    objective = requested if requested != "auto" else ("explicit" if ds.has_ratings else "implicit")
    if objective == "implicit":
        log.info(
            "%s: implicit feedback (observed interaction = 1, sampled unobserved items = 0)",
            ds.name,
        )
    return objective


def _concat(*parts: PointwiseExamples) -> PointwiseExamples:
    return PointwiseExamples(
        *(
            np.concatenate([getattr(p, f) for p in parts])
            for f in ("users", "items", "labels", "group_row")
        )
    )


def positives(
    ds: Dataset, rows: np.ndarray, objective: str, positive_threshold: float = 4.0
) -> PointwiseExamples:
    """The observed interactions at ``rows``, labelled for ``objective`` (one of
    :data:`LABELLINGS`)."""
    if objective not in LABELLINGS:
        raise ValueError(f"objective must be one of {', '.join(LABELLINGS)}, got {objective!r}")
    if objective == "explicit":
        labels = ds.ratings[rows]
    elif objective == "liked":
        labels = ds.ratings[rows] >= positive_threshold
    else:
        labels = np.ones(len(rows), dtype=np.float32)
    return PointwiseExamples(ds.users[rows], ds.items[rows], labels.astype(np.float32), rows)


def eval_examples(
    ds: Dataset, split: Split, part: str, objective: str, positive_threshold: float = 4.0
) -> PointwiseExamples:
    """The validation or test examples; implicit adds the split's fixed negatives for each
    positive."""
    rows = getattr(split, part)
    pos = positives(ds, rows, objective, positive_threshold)
    if objective != "implicit":
        return pos
    negs = getattr(split, f"{part}_negatives")
    k = negs.shape[1]
    neg = PointwiseExamples(
        np.repeat(ds.users[rows], k),
        negs.ravel(),
        np.zeros(len(rows) * k, dtype=np.float32),
        np.repeat(rows, k),
    )
    return _concat(pos, neg)


class TrainSampler:
    """Training examples per epoch: positives, plus fresh negatives for implicit data.

    Negatives exclude each user's training interactions only, so the sampler
    never sees which items are held out for evaluation.
    """

    def __init__(
        self,
        ds: Dataset,
        split: Split,
        objective: str,
        negatives: int,
        seed: int,
        positive_threshold: float = 4.0,
    ):
        self.objective = objective
        self.negatives = negatives if objective == "implicit" else 0
        self.pos = positives(ds, split.train, objective, positive_threshold)
        self.observed = InteractionSet(ds.users[split.train], ds.items[split.train], ds.n_items)
        self.cold_mask = np.zeros(ds.n_items, dtype=bool)
        self.cold_mask[split.cold_items] = True
        self.seed = seed

    def __len__(self) -> int:
        """Training examples per epoch: the positives plus their sampled negatives."""
        return len(self.pos) * (1 + self.negatives)

    def epoch(self, epoch: int) -> PointwiseExamples:
        if not self.negatives:
            return self.pos
        rng = np.random.default_rng([self.seed, epoch, 0x7E6])
        # Cold items never appear in training, not even as negatives.
        neg_items = sample_negatives(
            self.observed, self.pos.users, self.negatives, rng, self.cold_mask
        )
        k = self.negatives
        neg = PointwiseExamples(
            np.repeat(self.pos.users, k),
            neg_items.ravel(),
            np.zeros(len(self.pos) * k, dtype=np.float32),
            np.repeat(self.pos.group_row, k),
        )
        return _concat(self.pos, neg)
