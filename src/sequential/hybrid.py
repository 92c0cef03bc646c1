"""Evaluation-only hybrids of two trained sequential models: one proposes a ranked candidate list
per user, the other re-scores it, and the two scores are interpolated with a weight chosen on
the validation fold; plus the merge of two ranked lists by score (an ensemble).

Why these exist: the tuned SASRec and TIGER get close Recall@10 on Beauty, but from different
signals (item IDs against semantic IDs); re-ranking one's candidates with the other asks whether
the two are complementary without training anything new.

Scores are made comparable by per-user standardisation over the candidate list (z-scores).
TIGER's score is a summed log-probability, SASRec's a logit of a sampled-softmax model, whose
scale carries no calibrated meaning; a log-softmax over the candidates would only shift each
list by a constant, so it would interpolate the raw scores and let whichever model has the wider
spread dominate. After z-scoring, ``w`` is the share of each model's own within-user spread.

At ``w = 1`` the combined score is an increasing function of the proposer's own score and ties
keep the proposer's order (stable sorts), so the list is exactly the proposer's ranking.
Under the ``filtered`` rule the candidates come from the proposer's filtered ranking (TIGER bans
history items inside the beam search, SASRec scores them -inf before its top-k). A filtered beam
can still come out short: its surviving prefixes may lead mostly to history items (Beauty,
seed 0: 203 of 22,363 test users get under 20 items from a beam of 20, one gets 9), so
``ranking.tiger_rank`` tops such a list up to 10 from a wider beam. Re-ranking keeps the
candidate set, and :func:`check_filtered` refuses a list with a history item or under 10 items.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from src.sequential.protocols import Histories
from src.sequential.ranking import Scorer, ranks_from_topk
from src.sequential.sequence_data import SequenceExamples
from src.sequential.tiger import Tiger
from utils.evaluation.metrics import next_item_metrics, require_finite

W_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)  # weight of the proposer's score; 1 = the proposer alone
SELECT_BY = "ndcg@10"  # the validation metric that picks w (the project's model-selection one)


def standardise(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per-row z-scores of ``scores`` (n, K) over the ``valid`` entries; 0 elsewhere, and 0 for a
    row without spread (a constant or one-item list carries no preference)."""
    scores = np.where(valid, scores, 0.0).astype(np.float64)
    n = np.maximum(valid.sum(1, keepdims=True), 1)
    mean = scores.sum(1, keepdims=True) / n
    dev = np.where(valid, scores - mean, 0.0)
    std = np.sqrt((dev**2).sum(1, keepdims=True) / n)
    return np.where(std > 0, dev / np.where(std > 0, std, 1.0), 0.0)


def ordered(items: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``items`` sorted by ``score`` descending, ties in list order; -inf entries -> -1."""
    order = np.argsort(-score, axis=1, kind="stable")
    score = np.take_along_axis(score, order, 1)
    return np.where(np.isfinite(score), np.take_along_axis(items, order, 1), -1), score


def interpolate(
    items: np.ndarray, proposer: np.ndarray, rescorer: np.ndarray, w: float
) -> np.ndarray:
    """Re-rank each row of the proposer's list ``items`` (n, K; -1 = none) by
    ``w * z(proposer) + (1 - w) * z(rescorer)``: the same items, reordered (-1 entries last)."""
    valid = items >= 0
    require_finite(rescorer[valid], "re-scorer scores of the candidates")
    combined = w * standardise(proposer, valid) + (1 - w) * standardise(rescorer, valid)
    return ordered(items, np.where(valid, combined, -np.inf))[0]


def merge_lists(
    items_a: np.ndarray,
    scores_a: np.ndarray,
    items_b: np.ndarray,
    scores_b: np.ndarray,
    w: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """One list per row from two ranked lists: the union of their items, ranked by
    ``w * z_a + (1 - w) * z_b`` (per-list z-scores; an item missing from a list gets that list's
    lowest z-score, as if ranked last there). Ties keep list a's order, then list b's. Returns
    (items, scores), (n, Ka + Kb), -1 / -inf past the union."""
    valid_a, valid_b = items_a >= 0, items_b >= 0
    za, zb = standardise(scores_a, valid_a), standardise(scores_b, valid_b)
    floor_a, floor_b = _lowest(za, valid_a), _lowest(zb, valid_b)
    same = (items_a[:, :, None] == items_b[:, None, :]) & valid_a[:, :, None] & valid_b[:, None, :]
    in_b = same.any(2)
    zb_of_a = np.where(in_b, (same * zb[:, None, :]).sum(2), floor_b)
    total_a = np.where(valid_a, w * za + (1 - w) * zb_of_a, -np.inf)
    only_b = valid_b & ~same.any(1)
    total_b = np.where(only_b, w * floor_a + (1 - w) * zb, -np.inf)
    return ordered(np.concatenate([items_a, items_b], 1), np.concatenate([total_a, total_b], 1))


def _lowest(z: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Each row's lowest valid z-score (n, 1); 0 for an empty list."""
    low = np.where(valid, z, np.inf).min(1, keepdims=True)
    return np.where(np.isfinite(low), low, 0.0)


def _batches(ex: SequenceExamples, batch_size: int) -> Iterator[tuple[Tensor, int]]:
    """Consecutive (indices, width) batches; both models are invariant to extra left padding."""
    for start in range(0, len(ex), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(ex)), device=ex.target.device)
        yield idx, max(int(ex.length[idx].max()), 1)


@torch.no_grad()
def scorer_candidate_scores(
    scorer: Scorer, ex: SequenceExamples, items: np.ndarray, batch_size: int
) -> np.ndarray:
    """A full-catalogue scorer's (SASRec's) scores of each example's candidates (n, K); -inf for
    -1."""
    if isinstance(scorer, torch.nn.Module):
        scorer.eval()
    out = np.full(items.shape, -np.inf)
    for idx, width in _batches(ex, batch_size):
        rows = idx.cpu().numpy()
        cand = torch.as_tensor(items[rows], device=ex.hist.device)
        scores = scorer.scores(ex.hist[idx, -width:]).gather(1, cand.clamp(min=0))
        out[rows] = torch.where(cand >= 0, scores, -torch.inf).double().cpu().numpy()
    return out


@torch.no_grad()
def tiger_candidate_scores(
    model: Tiger,
    ex: SequenceExamples,
    items: np.ndarray,
    batch_size: int,
    user_tok: Tensor | None = None,
) -> np.ndarray:
    """TIGER's teacher-forced log-probability of each candidate's full semantic ID (n, K), one
    batched decode per batch of users (:meth:`Tiger.id_log_probs`); -inf for -1."""
    model.eval()
    out = np.full(items.shape, -np.inf)
    for idx, width in _batches(ex, batch_size):
        rows = idx.cpu().numpy()
        cand = torch.as_tensor(items[rows], device=ex.hist.device)
        tok = None if user_tok is None else user_tok[idx]
        logp = model.id_log_probs(ex.hist[idx, -width:], cand, tok)
        out[rows] = logp.double().cpu().numpy()
    return out


def list_ranks(items: np.ndarray, targets: Tensor | np.ndarray) -> np.ndarray:
    """0-based rank of each target in its ranked list, inf when absent."""
    return ranks_from_topk(torch.as_tensor(items), torch.as_tensor(targets).cpu())


@dataclass
class Rescored:
    """One fold's candidate lists (n, K) with the proposer's and the re-scorer's scores, and the
    targets."""

    items: np.ndarray
    proposer: np.ndarray
    rescorer: np.ndarray
    targets: np.ndarray

    def ranks(self, w: float) -> np.ndarray:
        return list_ranks(interpolate(self.items, self.proposer, self.rescorer, w), self.targets)


@dataclass
class Merged:
    """One fold's ranked lists from two models (an ensemble, e.g. TIGER on two ID sets) and the
    targets; ``ranks(w)`` merges them by :func:`merge_lists` with list a's weight ``w``, so the
    ensemble's weight is chosen on validation exactly like a hybrid's."""

    items_a: np.ndarray
    scores_a: np.ndarray
    items_b: np.ndarray
    scores_b: np.ndarray
    targets: np.ndarray

    def ranks(self, w: float) -> np.ndarray:
        merged = merge_lists(self.items_a, self.scores_a, self.items_b, self.scores_b, w)[0]
        return list_ranks(merged, self.targets)


def choose_weight(val_metric: dict[float, float]) -> float:
    """The weight with the best validation metric; a tie goes to the larger weight (nearer the
    proposer alone, which needs no second model)."""
    return max(val_metric, key=lambda w: (val_metric[w], w))


@dataclass
class WeightChoice:
    """The weight chosen on validation, the validation metrics of every grid weight, and the
    chosen weight's ranks of the validation and test targets."""

    w: float
    val_by_w: dict[float, dict[str, float]]
    val_ranks: np.ndarray
    test_ranks: np.ndarray


def select_weight(
    val: Rescored | Merged,
    test: Rescored | Merged,
    grid: tuple[float, ...] = W_GRID,
    metric: str = SELECT_BY,
) -> WeightChoice:
    """Pick ``w`` from ``grid`` on ``val`` by ``metric``, then rank ``test`` once with it."""
    val_ranks = {w: val.ranks(w) for w in grid}
    val_by_w = {w: next_item_metrics(r) for w, r in val_ranks.items()}
    w = choose_weight({w: m[metric] for w, m in val_by_w.items()})
    return WeightChoice(w, val_by_w, val_ranks[w], test.ranks(w))


def check_filtered(items: np.ndarray, history: Histories, k: int = 10) -> None:
    """Refuse a filtered ranking with a history item in a list or fewer than ``k`` items in one."""
    valid = items >= 0
    n_items = int(max(items.max(initial=0), history.items.max(initial=0))) + 1
    banned = history.mask(np.arange(len(items)), n_items).numpy()
    hit = np.take_along_axis(banned, np.clip(items, 0, None), 1) & valid
    if hit.any():
        raise ValueError(f"filtered ranking: {int(hit.any(1).sum())} lists hold a history item")
    short = valid.sum(1) < k
    if short.any():
        raise ValueError(f"filtered ranking: {int(short.sum())} lists hold fewer than {k} items")
