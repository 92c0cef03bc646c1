"""Full-catalogue ranking of validation and test users: TIGER by trie-constrained beam search
(plus the paper's cold-start ranking), SASRec and the baselines by scoring every item; each under
the protocol's ranking rules (a filtered ranking removes the user's earlier items).

Evaluation batches group histories of similar length and are shared out over torchrun's ranks;
the results come back in batch order, so every rank count gives the single-process ranking.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace
from functools import partial
from typing import Protocol as Interface

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from src.sequential.beam_search import PrefixTrie, beam_search, build_trie, merge_cold_share
from src.sequential.protocols import Histories, RankingRule
from src.sequential.sequence_data import SequenceData, SequenceExamples
from src.sequential.tiger import Tiger, TigerStepper
from utils.evaluation.metrics import require_finite
from utils.runtime.distributed import map_shared
from utils.runtime.hashing import stable_hash_array


def _length_sorted_batches(ex: SequenceExamples, batch_size: int) -> list[tuple[Tensor, int]]:
    """Evaluation batches of similar history length (width = longest in the batch); none for no
    examples (holdout has no validation fold)."""
    if not len(ex):
        return []
    order = torch.argsort(ex.length.cpu(), stable=True).to(ex.length.device)
    return [(idx, int(ex.length[idx].max())) for idx in order.split(batch_size)]


def ranks_from_topk(topk: Tensor, targets: Tensor) -> np.ndarray:
    """0-based rank of each target in its row of ``topk`` (B, K), np.inf when absent."""
    hit = topk == targets[:, None]
    pos = torch.where(
        hit.any(1), hit.float().argmax(1).float(), torch.tensor(float("inf"), device=topk.device)
    )
    return pos.cpu().numpy()


def user_buckets(users: Tensor, user_ids: np.ndarray, n_buckets: int) -> Tensor | None:
    """Hashed user-token bucket per example (None when user tokens are off)."""
    if not n_buckets:
        return None
    table = torch.as_tensor(stable_hash_array(user_ids, n_buckets), device=users.device)
    return table[users]


FULL_LIST = 10  # a filtered top list holds this many items (the metrics' cut-off)


@dataclass
class TigerRanking:
    """Beam-search output: the targets' ranks, and the ranked lists (item indices, -1 = none)."""

    ranks: np.ndarray
    seconds: float
    invalid_top1: float = 0.0
    invalid_top10: float = 0.0
    items: np.ndarray | None = None  # (n, beam) best first
    scores: np.ndarray | None = None  # (n, beam) summed log-probabilities; None for a merged list
    topped_up: int = 0  # filtered lists under 10 items topped up from a wider beam (_top_up)


@dataclass
class ColdStart:
    """Two tries for the paper's cold-start ranking: warm items and cold items, and the cold
    share."""

    warm: PrefixTrie
    cold: PrefixTrie
    share: float

    @classmethod
    def build(
        cls, codes: np.ndarray, sizes: list[int], is_cold: np.ndarray, share: float
    ) -> ColdStart:
        return cls(
            build_trie(codes, sizes, np.flatnonzero(~is_cold)),
            build_trie(codes, sizes, np.flatnonzero(is_cold)),
            share,
        )

    def to(self, device: str | torch.device) -> ColdStart:
        return ColdStart(self.warm.to(device), self.cold.to(device), self.share)


@torch.no_grad()
def tiger_rank(
    model: Tiger,
    ex: SequenceExamples,
    trie: PrefixTrie,
    beam: int,
    batch_size: int,
    user_tok: Tensor | None = None,
    constrained: bool = True,
    cold: ColdStart | None = None,
    history: Histories | None = None,
    desc: str = "beam search",
    progress: bool = False,
    top_up: bool = True,
) -> TigerRanking:
    """Beam-search the top ``beam`` items for each example; ranks of the targets (inf = not in the
    beam).

    With ``cold`` the top 10 reserves ``cold.share`` of its places for the best
    hypotheses of a beam over cold items (:func:`merge_cold_share`). ``history`` removes each
    example's earlier items inside the decoding (a filtered ranking); a list that still comes out
    under 10 items (its surviving prefixes led mostly to history items) is topped up from a wider
    beam (``top_up``, :func:`_top_up`), so every filtered top 10 is full.
    """
    model.eval()
    t0 = time.perf_counter()

    def rank_batch(batch: tuple[Tensor, int]) -> tuple[np.ndarray, np.ndarray | None]:
        idx, width = batch
        hist, tok = ex.hist[idx, -width:], None if user_tok is None else user_tok[idx]
        stepper = TigerStepper(model, hist, tok)
        # A diverged model's NaN states would still decode to some items: refuse it instead.
        require_finite(stepper.memory, "TIGER encoder states")
        device = ex.hist.device
        banned = (
            None if history is None else history.mask(idx, len(model.item_tokens) - 1).to(device)
        )
        if cold is None:
            res = beam_search(
                stepper, len(idx), trie, beam, constrained, device=device, banned=banned
            )
            return res.items.cpu().numpy(), res.scores.float().cpu().numpy()
        # Both searches decode from the same encoder memory; each keeps its own decoder caches.
        cold_stepper = copy.copy(stepper)
        warm = beam_search(stepper, len(idx), cold.warm, beam, device=device, banned=banned)
        new = beam_search(cold_stepper, len(idx), cold.cold, beam, device=device, banned=banned)
        return merge_cold_share(warm, new, cold.share).cpu().numpy(), None

    batches = _length_sorted_batches(ex, batch_size)
    bar = partial(tqdm, desc=desc, disable=not progress, leave=False)
    ranks = np.full(len(ex), np.inf)
    lists = np.full((len(ex), beam), -1, dtype=np.int64)
    list_scores = np.full((len(ex), beam), -np.inf) if cold is None else None
    invalid1 = invalid10 = 0.0
    # Each rank searches its share of the batches; the results come back in batch order.
    for (idx, _), (items, scores) in zip(batches, map_shared(rank_batch, batches, bar)):
        rows = idx.cpu().numpy()
        ranks[rows] = ranks_from_topk(torch.from_numpy(items), ex.target[idx].cpu())
        lists[rows, : items.shape[1]] = items
        if list_scores is not None:
            list_scores[rows, : items.shape[1]] = scores
        invalid1 += float((items[:, 0] < 0).sum())
        invalid10 += float(torch.from_numpy(items[:, :10] < 0).float().mean(1).sum())
    n = max(len(ex), 1)
    ranked = TigerRanking(
        ranks, time.perf_counter() - t0, invalid1 / n, invalid10 / n, lists, list_scores
    )
    if top_up and history is not None and cold is None and constrained:
        ranked = _top_up(model, ex, trie, beam, batch_size, user_tok, history, ranked)
    return ranked


def _top_up(
    model: Tiger,
    ex: SequenceExamples,
    trie: PrefixTrie,
    beam: int,
    batch_size: int,
    user_tok: Tensor | None,
    history: Histories,
    ranked: TigerRanking,
) -> TigerRanking:
    """``ranked`` with every filtered list under 10 items (or under ``beam``, when smaller) topped
    up (:func:`refill`) from a beam twice as wide over those examples, widened again up to 8
    times the beam while any stays short; every other list and rank is unchanged (Beauty, seed 0:
    one of 22,363 test users, with 9 items from a beam of 20)."""
    k = min(FULL_LIST, beam)
    items, scores = ranked.items, ranked.scores
    short = np.flatnonzero((items >= 0).sum(1) < k)
    n_short, wide = len(short), beam
    while len(short) and wide < 8 * beam:
        wide *= 2
        rows = torch.as_tensor(short, device=ex.target.device)
        tok = None if user_tok is None else user_tok[rows]
        more = tiger_rank(
            model,
            ex.subset(rows),
            trie,
            wide,
            batch_size,
            tok,
            history=history_rows(history, short),
            top_up=False,
        )
        items[short], scores[short] = refill(
            items[short], scores[short], more.items, more.scores, k
        )
        short = np.flatnonzero((items >= 0).sum(1) < k)
    if not n_short:
        return ranked
    ranks = ranks_from_topk(torch.from_numpy(items), ex.target.cpu())
    return replace(ranked, ranks=ranks, items=items, scores=scores, topped_up=n_short)


def refill(
    items: np.ndarray,
    scores: np.ndarray,
    extra_items: np.ndarray,
    extra_scores: np.ndarray,
    k: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a ranked list (items valid first, then -1) holding fewer than ``k`` items, filled
    up to ``k`` with the items of a wider list not yet in them, in its order. Their scores are
    capped at the row's last one, so the list stays best first and its own items keep their
    places (the short rows are few: a loop over them only)."""
    if items.shape[1] < k:
        raise ValueError(f"lists of {items.shape[1]} cannot hold {k} items; widen them first")
    items, scores = items.copy(), scores.copy()
    for r in np.flatnonzero((items >= 0).sum(1) < k):
        n = int((items[r] >= 0).sum())
        last = scores[r, n - 1] if n else np.inf
        new = ~np.isin(extra_items[r], items[r, :n]) & (extra_items[r] >= 0)
        take = np.flatnonzero(new)[: k - n]
        items[r, n : n + len(take)] = extra_items[r, take]
        scores[r, n : n + len(take)] = np.minimum(extra_scores[r, take], last)
    return items, scores


def history_rows(history: Histories, rows: np.ndarray) -> Histories:
    """The histories of examples ``rows`` only, in that order."""
    parts = [history.items[history.ptr[r] : history.ptr[r + 1]] for r in rows]
    ptr = np.r_[0, np.cumsum([len(p) for p in parts])].astype(np.int64)
    return Histories(ptr, np.concatenate(parts) if parts else history.items[:0])


class Scorer(Interface):
    """A model that scores the whole catalogue after each history (SASRec, the baselines)."""

    def scores(self, hist: Tensor) -> Tensor: ...


def _catalogue_scores(
    scorer: Scorer, ex: SequenceExamples, idx: Tensor, width: int, history: Histories | None
) -> Tensor:
    """(len(idx), n_items) scores; the example's earlier items at -inf when ``history`` is
    given (a filtered ranking)."""
    scores = scorer.scores(ex.hist[idx, -width:])
    # A NaN target compares false with every item: a false top-1 hit.
    require_finite(scores, type(scorer).__name__)
    if history is not None:
        scores = scores.masked_fill(
            history.mask(idx, scores.shape[1]).to(scores.device), -torch.inf
        )
    return scores


@torch.no_grad()
def score_rank(
    scorer: Scorer,
    ex: SequenceExamples,
    batch_size: int,
    history: Histories | None = None,
    desc: str = "score",
    progress: bool = False,
) -> tuple[np.ndarray, float]:
    """Full-catalogue rank of each target (ties count against it); returns ranks and seconds.

    ``history`` removes each example's earlier items from its ranking (a target that is
    itself an earlier item then counts as a miss)."""
    if isinstance(scorer, torch.nn.Module):
        scorer.eval()
    ranks = np.empty(len(ex))
    t0 = time.perf_counter()

    def rank_batch(batch: tuple[Tensor, int]) -> np.ndarray:
        idx, width = batch
        scores = _catalogue_scores(scorer, ex, idx, width, history)
        target = scores.gather(1, ex.target[idx, None])
        return ((scores >= target).sum(1) - 1).cpu().numpy()

    batches = _length_sorted_batches(ex, batch_size)
    bar = partial(tqdm, desc=desc, disable=not progress, leave=False)
    for (idx, _), batch_ranks in zip(batches, map_shared(rank_batch, batches, bar)):
        ranks[idx.cpu().numpy()] = batch_ranks
    return ranks, time.perf_counter() - t0


@torch.no_grad()
def score_top_k(
    scorer: Scorer,
    ex: SequenceExamples,
    batch_size: int,
    k: int,
    history: Histories | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each example's ``k`` best-scoring items (indices, best first) and their scores."""
    if isinstance(scorer, torch.nn.Module):
        scorer.eval()
    items = np.empty((len(ex), k), dtype=np.int64)
    scores = np.empty((len(ex), k))

    def top_batch(batch: tuple[Tensor, int]) -> tuple[np.ndarray, np.ndarray]:
        idx, width = batch
        top = _catalogue_scores(scorer, ex, idx, width, history).topk(k, dim=1)
        # A removed (history) item is no recommendation: -1, as an exhausted beam.
        listed = torch.where(torch.isfinite(top.values), top.indices, -1)
        return listed.cpu().numpy(), top.values.double().cpu().numpy()

    batches = _length_sorted_batches(ex, batch_size)
    for (idx, _), (top_items, top_scores) in zip(batches, map_shared(top_batch, batches)):
        items[idx.cpu().numpy()] = top_items
        scores[idx.cpu().numpy()] = top_scores
    return items, scores


@dataclass
class RuleRanks:
    """The targets' ranks under one ranking rule; ``val`` is empty when the protocol trains on
    the validation items (holdout)."""

    val: np.ndarray
    test: np.ndarray


def rank_scorer(
    name: str,
    scorer: Scorer,
    data: SequenceData,
    rules: list[RankingRule],
    batch_size: int,
    top_k: int,
    progress: bool = False,
) -> tuple[dict[str, RuleRanks], dict[str, np.ndarray], float]:
    """Full-catalogue ranks of every validation and test target under each rule, the test top-k
    lists (headline rule; the others' as ``<rule>_items``, ``<rule>_scores``), and the seconds."""
    ranks, lists, seconds = {}, {}, 0.0
    for rule in rules:
        v, vs = score_rank(scorer, data.val, batch_size, rule.val, f"{name} val", progress)
        t, ts = score_rank(scorer, data.test, batch_size, rule.test, f"{name} test", progress)
        ranks[rule.name], seconds = RuleRanks(v, t), seconds + vs + ts
        items, scores = score_top_k(scorer, data.test, batch_size, top_k, rule.test)
        prefix = f"{rule.name}_" if lists else ""
        lists.update({f"{prefix}items": items, f"{prefix}scores": scores})
    return ranks, lists, seconds
