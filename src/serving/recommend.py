"""Top-k recommendations of a trained model for one user or one history, ranked by the same code
that evaluates it: TIGER's trie-constrained beam search (with the paper's cold-start share when
asked), SASRec's full-catalogue scores, and MF's and the CTR models' scores of every item.

The history's items are removed by default, inside the beam search for TIGER (so the list stays
full) and as -inf scores for the others: the filtered ranking of the evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from src.pointwise.evaluation import top_k_items
from src.sequential.presets import PRESETS
from src.sequential.protocols import Histories
from src.sequential.ranking import ColdStart, score_top_k, tiger_rank, user_buckets
from src.sequential.sequence_data import SequenceExamples
from src.serving.catalogue import item_row
from src.serving.checkpoint import Trained
from utils.runtime.errors import DataError

NO_ITEMS = np.empty(0, dtype=np.int64)


@dataclass
class Request:
    """What to recommend for: ``history`` (item indices, oldest first) and, when known, the
    user's index; ``cold_share`` (TIGER) reserves that share of the top 10 for untrained items."""

    history: np.ndarray
    user: int | None = None
    k: int = 10
    include_history: bool = False
    cold_share: float = 0.0


BATCH = 64  # requests ranked together: one beam search or forward pass per batch


def _examples(reqs: list[Request], max_items: int) -> SequenceExamples:
    """Each request's last ``max_items`` history items as a right-aligned evaluation example."""
    hist = np.full((len(reqs), max_items), -1, dtype=np.int64)
    lengths = np.zeros(len(reqs), dtype=np.int64)
    for r, req in enumerate(reqs):
        recent = req.history[-max_items:]
        hist[r, max_items - len(recent) :] = recent
        lengths[r] = len(recent)
    users = torch.tensor([req.user or 0 for req in reqs], dtype=torch.long)
    no_target = torch.zeros(len(reqs), dtype=torch.long)  # nothing is evaluated
    no_row = torch.full((len(reqs),), -1, dtype=torch.long)
    return SequenceExamples(
        torch.from_numpy(hist), torch.from_numpy(lengths), no_target, users, no_row
    )


def _tiger(trained: Trained, reqs: list[Request], banned: Histories | None) -> tuple[Any, Any]:
    model, sids, first = trained.model, trained.sids, reqs[0]
    beam = max(first.k, PRESETS[trained.spec.get("preset", "quick")].beam)
    ex = _examples(reqs, model.cfg.max_items)
    tok = None
    if all(req.user is not None for req in reqs):
        tok = user_buckets(ex.user, trained.ds.user_ids, model.cfg.user_tokens)
    cold = None
    if first.cold_share:
        is_cold = ~trained.trained_items()
        if not is_cold.any():
            raise DataError(
                f"--cold-share: every item of {trained.ds.name} was trained on under this "
                "checkpoint's split, so no item is cold (the cold protocol holds items out)"
            )
        cold = ColdStart.build(sids.codes, sids.codebook_sizes, is_cold, first.cold_share)
    ranked = tiger_rank(model, ex, trained.trie, beam, BATCH, tok, cold=cold, history=banned)
    return ranked.items, ranked.scores


def _ranked(trained: Trained, reqs: list[Request]) -> tuple[np.ndarray, np.ndarray | None]:
    """(items, scores) per request, best first: the model's own ranking of the whole catalogue
    with each request's history removed unless it asks to keep it."""
    first = reqs[0]
    ds = trained.ds
    lengths = np.array([len(req.history) for req in reqs], dtype=np.int64)
    ptr = np.concatenate([[0], np.cumsum(lengths)])
    items = np.concatenate([req.history for req in reqs]).astype(np.int64)
    banned = None if first.include_history else Histories(ptr, items)
    if trained.kind == "tiger":
        return _tiger(trained, reqs, banned)
    if trained.kind == "sasrec":
        ex = _examples(reqs, trained.model.cfg.max_items)
        return score_top_k(trained.model, ex, BATCH, first.k, banned)
    if any(req.user is None for req in reqs):
        raise DataError(
            f"{trained.spec['name']} scores the users it was trained on: give --user (a "
            "history alone needs a sequential model, TIGER or SASRec)"
        )
    nothing = (np.zeros(len(reqs) + 1, dtype=np.int64), NO_ITEMS)
    exclude = nothing if banned is None else (banned.ptr, banned.items)
    top = top_k_items(
        trained.model,
        np.array([req.user for req in reqs]),
        first.k,
        ds.n_items,
        exclude=exclude,
        targets=nothing,
        device=trained.device,
        with_scores=True,
    )
    return top["all"], top["all_scores"]


def recommend_many(trained: Trained, reqs: list[Request]) -> list[list[dict[str, Any]]]:
    """The top ``k`` items (rank, item ID, title, semantic ID, score) of each request, best first,
    ranked ``BATCH`` requests at a time; the requests share ``k``, ``include_history`` and
    ``cold_share``.

    Scores are the model's own: TIGER's summed log-probability of the ID, SASRec's logit, MF's
    predicted rating or logit, a CTR model's logit; None in a cold-share list (two beams merged
    by their own scores)."""
    if not reqs:
        return []
    first = reqs[0]
    shared = {(r.k, r.include_history, r.cold_share) for r in reqs}
    if len(shared) > 1:
        raise ValueError("the requests of one batch must share k, include_history, cold_share")
    if any(not len(req.history) for req in reqs):
        raise DataError("the history is empty: give at least one item (or a user who has one)")
    codes = None if trained.sids is None else trained.sids.codes
    out = []
    for start in range(0, len(reqs), BATCH):
        chunk = reqs[start : start + BATCH]
        items, scores = _ranked(trained, chunk)
        for r in range(len(chunk)):
            row_scores = [None] * items.shape[1] if scores is None else scores[r]
            rows = []
            for item, score in zip(items[r], row_scores):
                if item < 0 or score == -math.inf:
                    continue  # an exhausted beam or a removed history item
                score = None if score is None else float(score)
                row = item_row(trained.ds, codes, int(item))
                rows.append({"rank": len(rows) + 1, **row, "score": score})
            out.append(rows[: first.k])
    return out


def recommend(trained: Trained, req: Request) -> list[dict[str, Any]]:
    """The top ``req.k`` items of one request (see :func:`recommend_many`)."""
    return recommend_many(trained, [req])[0]
