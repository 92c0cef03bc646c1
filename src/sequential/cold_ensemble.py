"""The paper's cold-start ranking for an ensemble of two TIGERs (issue 20): a share of the top 10
kept for cold items, as one TIGER keeps it (:func:`beam_search.merge_cold_share`).

Merging two finished cold-start lists would not keep that promise: each list holds its cold
item at a place set by its own model's score, and a merge by z-scores can push both out of the
top 10. So the ensemble merges like with like first, the two beams over warm items and the two
beams over cold items (:func:`hybrid.merge_lists`), then fills the top 10 from the two merged
lists (:func:`reserve_cold`) and orders it by the two models' weighted log-probability of each
item's full semantic ID. Scoring the head by teacher forcing gives every head item both models'
scores, also an item only one beam found; unlike the per-list z-scores of the merge, these
scores compare warm and cold items. A TIGER merged with itself gets exactly its own ranking.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from src.sequential.hybrid import merge_lists, ordered, tiger_candidate_scores
from src.sequential.ranking import ColdStart, tiger_rank
from src.sequential.sequence_data import SequenceExamples
from src.sequential.tiger import Tiger

HeadScorer = Callable[[np.ndarray], np.ndarray]  # items (n, k) -> comparable scores (n, k)


@dataclass
class ColdBeams:
    """One TIGER's two beams for the cold-start ranking, best first: over the warm items and over
    the cold items (items (n, beam), -1 = none; scores: summed log-probabilities)."""

    warm_items: np.ndarray
    warm_scores: np.ndarray
    cold_items: np.ndarray
    cold_scores: np.ndarray


def cold_beams(
    model: Tiger,
    ex: SequenceExamples,
    cold: ColdStart,
    beam: int,
    batch_size: int,
    user_tok: Tensor | None = None,
) -> ColdBeams:
    """The beams that :func:`ranking.tiger_rank` with ``cold`` merges, kept apart with scores."""
    warm = tiger_rank(model, ex, cold.warm, beam, batch_size, user_tok)
    new = tiger_rank(model, ex, cold.cold, beam, batch_size, user_tok)
    return ColdBeams(warm.items, warm.scores, new.items, new.scores)


def reserve_cold(
    warm: np.ndarray, cold: np.ndarray, share: float, score_head: HeadScorer, k: int = 10
) -> np.ndarray:
    """One ranked list per row (as wide as ``warm``): the top ``k`` holds the best
    ``m = ceil(share * k)`` items of ``cold`` and the best ``k - m`` of ``warm``, ordered by
    ``score_head`` (ties: warm first, each list in its order); the rest of ``warm`` follows.
    Share 0 returns ``warm``."""
    m = min(math.ceil(share * k - 1e-9), cold.shape[1], k)
    if m == 0:
        return warm
    head = np.concatenate([warm[:, : k - m], cold[:, :m]], 1)
    scores = np.where(head >= 0, score_head(head), -np.inf)
    return np.concatenate([ordered(head, scores)[0], warm[:, k - m :]], 1)[:, : warm.shape[1]]


def ensemble_cold_share(
    a: ColdBeams, b: ColdBeams, w: float, share: float, score_head: HeadScorer, k: int = 10
) -> np.ndarray:
    """The cold-start ranking of two TIGERs (list a's weight ``w``): warm beams merged, cold beams
    merged, then :func:`reserve_cold`. ``score_head`` should give ``w * log p_a + (1 - w) *
    log p_b`` (:func:`weighted_log_probs`)."""
    warm = merge_lists(a.warm_items, a.warm_scores, b.warm_items, b.warm_scores, w)[0]
    cold = merge_lists(a.cold_items, a.cold_scores, b.cold_items, b.cold_scores, w)[0]
    return reserve_cold(warm, cold, share, score_head, k)


def weighted_log_probs(
    models: list[tuple[Tiger, SequenceExamples, Tensor | None, float]], batch_size: int
) -> HeadScorer:
    """A head scorer: the sum over (model, its examples, its user tokens, weight) of weight times
    the model's teacher-forced log-probability of each item's full ID."""

    def score(items: np.ndarray) -> np.ndarray:
        total = np.zeros(items.shape)
        for model, ex, tok, w in models:
            if w:  # a weight-0 model adds nothing (and 0 * -inf would be NaN)
                total += w * tiger_candidate_scores(model, ex, items, batch_size, tok)
        return total

    return score
