"""Does a re-ranking reproduce a training run? A tiger_train_eval.py results file against the
same checkpoint ranked again (benchmarks/sweep_decoding.py checks each plain model this way before
it trusts the lists it combines).

With every user the metrics are compared; with a subset of users, the saved test lists
(``--save-predictions``) are compared row by row, allowing only swaps among near-tied scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from src.sequential.hybrid import list_ranks
from utils.evaluation.checks import index_of, list_indices
from utils.evaluation.metrics import next_item_metrics

SCORE_TOLERANCE = 1e-4  # batches of other users give float noise of this order
METRIC_TOLERANCE = 1e-6


def same_lists(items: np.ndarray, scores: np.ndarray, saved: np.ndarray, saved_scores: Any) -> dict:
    """Our lists against saved ones (item indices) where the saved list has items: rows equal,
    rows differing only among near-tied saved scores (within SCORE_TOLERANCE), rows we topped up
    past the saved list, and the largest score difference."""
    k = min(items.shape[1], saved.shape[1])
    items, scores, saved = items[:, :k], scores[:, :k], saved[:, :k]
    saved_scores = np.asarray(saved_scores)[:, :k]
    both = (saved >= 0) & (items >= 0)
    diff = np.abs(np.where(both, scores, 0.0) - np.where(both, saved_scores, 0.0)).max()
    wrong = (items != saved) & (saved >= 0)
    highest = np.where(wrong, saved_scores, -np.inf).max(1)
    span = highest + np.where(wrong, -saved_scores, -np.inf).max(1)  # max - min where they differ
    swaps = wrong.any(1) & (span < SCORE_TOLERANCE)
    return {
        "rows_identical": float(1 - wrong.any(1).mean()),
        "rows_near_tie_swaps": int(swaps.sum()),
        "rows_refilled_here": int(((items >= 0).sum(1) > (saved >= 0).sum(1)).sum()),
        "max_score_diff": float(diff),
        "ok": bool(diff < SCORE_TOLERANCE and (wrong.any(1) == swaps).all()),
    }


def reported(rep: dict, protocol: str, fold: str, rule: str) -> tuple[dict, str]:
    """A tiger_train_eval.py model report's metrics of (fold, rule), and the prefix of that rule's
    saved lists: a paper run keeps its filtered rule apart, a holdout run ranks filtered only."""
    if protocol == "paper" and rule == "filtered":
        return rep["filtered"][fold], "filtered_"
    return rep[fold], ""


def compare(variant: dict, rep: dict, protocol: str, saved: Any, ex: Any, ds: Any, n: int) -> dict:
    """A plain model against its tiger_train_eval.py report: every metric (all users), or with a
    user subset the saved test lists and the metrics they give on those users."""
    ours = {(f, r): m for f in variant["folds"] for r, m in variant[f].items()}
    if saved is None:
        theirs = {k: reported(rep, protocol, *k)[0] for k in ours}
        diff = max(abs(ours[k][m] - theirs[k][m]) for k in ours for m in ours[k])
        return {
            "what": "every metric, all users",
            "max_abs_diff": diff,
            "match": diff <= METRIC_TOLERANCE,
        }
    users_here = ds.user_ids[ex.user.cpu().numpy()].astype(str)
    if not np.array_equal(saved["users"][:n].astype(str), users_here):
        return {"what": "saved test lists", "match": False, "note": "other users"}
    out: dict[str, Any] = {"what": f"saved test lists of the first {n} users"}
    index = index_of(ds.item_ids)
    for rule in variant["test"]:
        key = reported(rep, protocol, "test", rule)[1]
        theirs = list_indices(saved[f"{key}items"][:n], index)
        out[rule] = same_lists(*variant["lists"][rule], theirs, saved[f"{key}scores"][:n])
        t_m = next_item_metrics(list_ranks(theirs, ex.target))
        o_m = ours["test", rule]
        out[rule]["max_test_metric_diff"] = max(abs(t_m[m] - o_m[m]) for m in t_m)
    out["match"] = all(
        out[r]["ok"] and out[r]["max_test_metric_diff"] <= METRIC_TOLERANCE for r in variant["test"]
    )
    return out
