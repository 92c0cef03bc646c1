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


def _one_example(history: np.ndarray, max_items: int, user: int | None) -> SequenceExamples:
    """The history's last ``max_items`` items as one right-aligned evaluation example."""
    recent = history[-max_items:]
    hist = np.full((1, max_items), -1, dtype=np.int64)
    hist[0, max_items - len(recent) :] = recent
    one = torch.ones(1, dtype=torch.long)
    return SequenceExamples(
        torch.from_numpy(hist), one * len(recent), one * 0, one * (user or 0), one * -1
    )


def _tiger(trained: Trained, req: Request, banned: Histories | None) -> tuple[Any, Any]:
    model, sids = trained.model, trained.sids
    beam = max(req.k, PRESETS[trained.spec.get("preset", "quick")].beam)
    ex = _one_example(req.history, model.cfg.max_items, req.user)
    tok = None
    if req.user is not None:
        tok = user_buckets(ex.user, trained.ds.user_ids, model.cfg.user_tokens)
    cold = None
    if req.cold_share:
        is_cold = ~trained.trained_items()
        if not is_cold.any():
            raise DataError(
                f"--cold-share: every item of {trained.ds.name} was trained on under this "
                "checkpoint's split, so no item is cold (the cold protocol holds items out)"
            )
        cold = ColdStart.build(sids.codes, sids.codebook_sizes, is_cold, req.cold_share)
    ranked = tiger_rank(model, ex, trained.trie, beam, 1, tok, cold=cold, history=banned)
    scores = None if ranked.scores is None else ranked.scores[0]
    return ranked.items[0], scores


def recommend(trained: Trained, req: Request) -> list[dict[str, Any]]:
    """The top ``req.k`` items (rank, item ID, title, semantic ID, score), best first.

    Scores are the model's own: TIGER's summed log-probability of the ID, SASRec's logit, MF's
    predicted rating or logit, a CTR model's logit; None in a cold-share list (two beams merged
    by their own scores)."""
    if not len(req.history):
        raise DataError("the history is empty: give at least one item (or a user who has one)")
    ds = trained.ds
    banned = (
        None if req.include_history else Histories(np.array([0, len(req.history)]), req.history)
    )
    if trained.kind == "tiger":
        items, scores = _tiger(trained, req, banned)
    elif trained.kind == "sasrec":
        ex = _one_example(req.history, trained.model.cfg.max_items, req.user)
        items, scores = (a[0] for a in score_top_k(trained.model, ex, 1, req.k, banned))
    else:
        if req.user is None:
            raise DataError(
                f"{trained.spec['name']} scores the users it was trained on: give --user (a "
                "history alone needs a sequential model, TIGER or SASRec)"
            )
        exclude = NO_ITEMS if req.include_history else req.history
        top = top_k_items(
            trained.model,
            np.array([req.user]),
            req.k,
            ds.n_items,
            exclude=(np.array([0, len(exclude)]), exclude),
            targets=(np.array([0, 0]), NO_ITEMS),
            device=trained.device,
            with_scores=True,
        )
        items, scores = top["all"][0], top["all_scores"][0]
    codes = None if trained.sids is None else trained.sids.codes
    rows = []
    for item, score in zip(items, scores if scores is not None else [None] * len(items)):
        if item < 0 or score == -math.inf:
            continue  # an exhausted beam or a removed history item
        score = None if score is None else float(score)
        rows.append({"rank": len(rows) + 1, **item_row(ds, codes, int(item)), "score": score})
    return rows[: req.k]
