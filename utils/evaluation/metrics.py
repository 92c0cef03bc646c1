"""Evaluation metrics in plain numpy, each checked against hand-computed values in tests.

Ranking conventions: a rank is 0-based (0 = top of the list) and ties are
broken pessimistically (an item tied with the target counts as ranked above
it), so a model that scores many items equally - MF-ID on cold items, say -
cannot profit from the tie.

Scores must be finite: NaN compares false with everything, so a diverged
model would otherwise get AUC 1.0 or a top-1 hit. Every scoring metric refuses
them (:func:`require_finite`), and :func:`naming_model` adds the model's name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from utils.runtime.errors import NonFiniteScoresError


def require_finite(scores: Any, what: str = "scores") -> None:
    """Refuse NaN or infinite scores (numpy arrays, lists or torch tensors) with a count and the
    fix."""
    if hasattr(scores, "isfinite"):  # a torch tensor, possibly on a GPU
        finite, total = scores.isfinite(), scores.numel()
    else:
        finite = np.isfinite(np.asarray(scores, dtype=float))
        total = finite.size
    n_bad = int((~finite).sum())
    if n_bad:
        raise NonFiniteScoresError(
            f"{what}: {n_bad} of {total} "
            "are NaN or infinite, the model diverged and no metric of it is reported; "
            "lower --lr or check the inputs"
        )


@contextmanager
def naming_model(name: str) -> Iterator[None]:
    """Prefix a non-finite-score refusal raised inside the block with the model's name."""
    try:
        yield
    except NonFiniteScoresError as exc:
        raise NonFiniteScoresError(f"{name}: {exc}") from exc


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    require_finite(p, "predictions")
    return float(np.sqrt(np.mean((np.asarray(y, float) - np.asarray(p, float)) ** 2)))


def mae(y: np.ndarray, p: np.ndarray) -> float:
    require_finite(p, "predictions")
    return float(np.mean(np.abs(np.asarray(y, float) - np.asarray(p, float))))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank (as in the Mann-Whitney U statistic)."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    boundaries = np.flatnonzero(np.diff(sorted_x)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(x)]])
    avg = (starts + ends + 1) / 2.0  # mean of 1-based positions start+1..end
    ranks = np.empty(len(x), dtype=float)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC = P(score of a random positive > a random negative), ties counting one half."""
    require_finite(s)
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(np.asarray(s, dtype=float))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pr_auc(y: np.ndarray, s: np.ndarray) -> float:
    """Average precision: mean over positives of the precision at their score threshold (ties
    grouped)."""
    require_finite(s)
    y = np.asarray(y).astype(bool)
    if not y.any():
        return float("nan")
    s = np.asarray(s, dtype=float)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    # Evaluate precision/recall only at the last index of each run of tied scores.
    last = np.concatenate([np.flatnonzero(np.diff(s_sorted)), [len(s) - 1]])
    tp = np.cumsum(y_sorted)[last]
    precision = tp / (last + 1)
    recall = tp / y.sum()
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))


def logloss(y: np.ndarray, p: np.ndarray, eps: float = 1e-7) -> float:
    require_finite(p, "probabilities")
    y = np.asarray(y, dtype=float)
    p = np.clip(np.asarray(p, dtype=float), eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def binary_report(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Precision, recall, F1 and accuracy of ``p >= threshold``."""
    y = np.asarray(y).astype(bool)
    pred = np.asarray(p) >= threshold
    tp = float((pred & y).sum())
    precision = tp / pred.sum() if pred.any() else 0.0
    recall = tp / y.sum() if y.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": float((pred == y).mean()),
    }


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The score threshold that maximises F1 (chosen on validation, applied on test)."""
    require_finite(p)
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=float)
    order = np.argsort(-p, kind="mergesort")
    p_sorted, y_sorted = p[order], y[order]
    last = np.concatenate([np.flatnonzero(np.diff(p_sorted)), [len(p) - 1]])
    tp = np.cumsum(y_sorted)[last]
    f1 = 2 * tp / (last + 1 + y.sum())
    return float(p_sorted[last[int(np.argmax(f1))]])


def classification_metrics(
    y: np.ndarray, p: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """AUC, PR-AUC, logloss and the thresholded report for probabilities ``p``."""
    return {
        "auc": auc(y, p),
        "pr_auc": pr_auc(y, p),
        "logloss": logloss(y, p),
        **binary_report(y, p, threshold),
    }


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    """Share of examples whose single relevant item ranks in the top k."""
    return float(np.mean(np.asarray(ranks) < k)) if len(ranks) else float("nan")


def ndcg_at_k(ranks: np.ndarray, k: int) -> float:
    """NDCG@k with one relevant item: 1/log2(rank+2) inside the top k, else 0."""
    ranks = np.asarray(ranks, dtype=float)
    if not len(ranks):
        return float("nan")
    gains = np.where(ranks < k, 1.0 / np.log2(np.minimum(ranks, k) + 2.0), 0.0)
    return float(gains.mean())


def ranking_metrics(ranks: np.ndarray, ks: tuple[int, ...] = (5, 10)) -> dict[str, float]:
    """Recall@k and NDCG@k of single-target ranks (the paper's TIGER table)."""
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = recall_at_k(ranks, k)
        out[f"ndcg@{k}"] = ndcg_at_k(ranks, k)
    return out


def mrr(ranks: np.ndarray, k: int | None = None) -> float:
    """Mean reciprocal rank 1/(rank+1); a target ranked k or lower (or not at all: inf) counts 0."""
    ranks = np.asarray(ranks, dtype=float)
    if not len(ranks):
        return float("nan")
    inside = ranks < (np.inf if k is None else k)
    return float(np.where(inside, 1.0 / (np.where(inside, ranks, 0.0) + 1.0), 0.0).mean())


# MRR is cut at TIGER's beam width, the longest list both sequential models rank, so that
# TIGER (whose ranking ends with the beam) and SASRec (a full ranking) are scored alike and
# the saved top-k lists reproduce it.
MRR_CUTOFF = 20


def next_item_metrics(ranks: np.ndarray, ks: tuple[int, ...] = (1, 3, 5, 10)) -> dict[str, float]:
    """Recall@k (= Hit@k with one target) and NDCG@k at ``ks``, and MRR@20: the seed's set."""
    out = ranking_metrics(ranks, ks)
    out.update({f"hit@{k}": out[f"recall@{k}"] for k in ks})
    out[f"mrr@{MRR_CUTOFF}"] = mrr(ranks, MRR_CUTOFF)
    return out


def by_target_coldness(ranks: np.ndarray, target_cold: np.ndarray) -> dict[str, dict[str, Any]]:
    """:func:`next_item_metrics` over all users, over those whose target is a cold item and over
    the rest, each group with its size: how a cold-start ranking is reported."""
    return {
        "all_users": next_item_metrics(ranks),
        "cold_target_users": {"n": int(target_cold.sum()), **next_item_metrics(ranks[target_cold])},
        "warm_target_users": {
            "n": int((~target_cold).sum()),
            **next_item_metrics(ranks[~target_cold]),
        },
    }


def multi_target_ranking(
    topk: np.ndarray,
    relevant_offsets: np.ndarray,
    relevant_items: np.ndarray,
    ks: tuple[int, ...] = (10, 20),
) -> dict[str, np.ndarray]:
    """Per-user Recall@k and NDCG@k when each user has several held-out items.

    ``topk`` is (n_users, K) item indices, best first; user r's relevant items
    are ``relevant_items[relevant_offsets[r]:relevant_offsets[r+1]]``.
    Recall@k = hits / |relevant|; NDCG@k = DCG / ideal DCG over min(k, |relevant|) hits.
    A relevant item listed twice for a user counts once; k may exceed the width K of ``topk``
    (positions past K are misses, the ideal DCG still spans min(k, |relevant|) positions).
    Returns arrays per user so callers can slice them.
    """
    n_users = len(relevant_offsets) - 1
    rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(relevant_offsets))
    n_items = int(max(topk.max(initial=0), relevant_items.max(initial=0))) + 1
    relevant_keys = np.unique(rows * n_items + relevant_items)
    n_rel = np.bincount(relevant_keys // n_items, minlength=n_users)
    top_keys = np.arange(len(topk), dtype=np.int64)[:, None] * n_items + topk
    pos = np.minimum(np.searchsorted(relevant_keys, top_keys), max(len(relevant_keys) - 1, 0))
    hits = (
        relevant_keys[pos] == top_keys
        if len(relevant_keys)
        else np.zeros_like(top_keys, dtype=bool)
    )
    discounts = 1.0 / np.log2(np.arange(max(topk.shape[1], *ks)) + 2.0)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        h = hits[:, :k]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"recall@{k}"] = h.sum(1) / n_rel
            ideal = np.cumsum(discounts[:k])[np.minimum(n_rel, k) - 1]
            out[f"ndcg@{k}"] = (h * discounts[: h.shape[1]]).sum(1) / ideal
    return out
