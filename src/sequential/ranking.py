"""Full-catalogue ranking of validation and test users: TIGER by trie-constrained beam search
(plus the paper's cold-start ranking), SASRec by scoring every item.

Evaluation batches group histories of similar length and are shared out over torchrun's ranks;
the results come back in batch order, so every rank count gives the single-process ranking.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from src.sequential.beam_search import PrefixTrie, beam_search, build_trie, merge_cold_share
from src.sequential.sasrec import SASRec
from src.sequential.sequence_data import SequenceExamples
from src.sequential.tiger import Tiger, TigerStepper
from utils.evaluation.metrics import require_finite
from utils.runtime.distributed import map_shared
from utils.runtime.hashing import stable_hash_array


def _length_sorted_batches(ex: SequenceExamples, batch_size: int) -> list[tuple[Tensor, int]]:
    """Evaluation batches of similar history length (width = longest in the batch)."""
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


@dataclass
class TigerRanking:
    """Beam-search output: the targets' ranks, and the ranked lists (item indices, -1 = none)."""

    ranks: np.ndarray
    seconds: float
    invalid_top1: float = 0.0
    invalid_top10: float = 0.0
    items: np.ndarray | None = None  # (n, beam) best first
    scores: np.ndarray | None = None  # (n, beam) summed log-probabilities; None for a merged list


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
    desc: str = "beam search",
    progress: bool = False,
) -> TigerRanking:
    """Beam-search the top ``beam`` items for each example; ranks of the targets (inf = not in the
    beam).

    With ``cold`` the top 10 reserves ``cold.share`` of its places for the best
    hypotheses of a beam over cold items (:func:`merge_cold_share`).
    """
    model.eval()
    t0 = time.perf_counter()

    def rank_batch(batch: tuple[Tensor, int]) -> tuple[np.ndarray, np.ndarray | None]:
        idx, width = batch
        hist, tok = ex.hist[idx, -width:], None if user_tok is None else user_tok[idx]
        stepper = TigerStepper(model, hist, tok)
        # A diverged model's NaN states would still decode to some items: refuse it instead.
        require_finite(stepper.memory, "TIGER encoder states")
        if cold is None:
            res = beam_search(
                stepper, len(idx), trie, beam, constrained=constrained, device=ex.hist.device
            )
            return res.items.cpu().numpy(), res.scores.float().cpu().numpy()
        # Both searches decode from the same encoder memory; each keeps its own decoder caches.
        cold_stepper = copy.copy(stepper)
        warm = beam_search(stepper, len(idx), cold.warm, beam, device=ex.hist.device)
        new = beam_search(cold_stepper, len(idx), cold.cold, beam, device=ex.hist.device)
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
    return TigerRanking(
        ranks, time.perf_counter() - t0, invalid1 / n, invalid10 / n, lists, list_scores
    )


@torch.no_grad()
def sasrec_rank(
    model: SASRec,
    ex: SequenceExamples,
    batch_size: int,
    desc: str = "score",
    progress: bool = False,
) -> tuple[np.ndarray, float]:
    """Full-catalogue rank of each target (ties count against it); returns ranks and seconds."""
    model.eval()
    ranks = np.empty(len(ex))
    t0 = time.perf_counter()

    def rank_batch(batch: tuple[Tensor, int]) -> np.ndarray:
        idx, width = batch
        scores = model.scores(ex.hist[idx, -width:])
        # A NaN target compares false with every item: a false top-1 hit.
        require_finite(scores, "SASRec")
        target = scores.gather(1, ex.target[idx, None])
        return ((scores >= target).sum(1) - 1).cpu().numpy()

    batches = _length_sorted_batches(ex, batch_size)
    bar = partial(tqdm, desc=desc, disable=not progress, leave=False)
    for (idx, _), batch_ranks in zip(batches, map_shared(rank_batch, batches, bar)):
        ranks[idx.cpu().numpy()] = batch_ranks
    return ranks, time.perf_counter() - t0


@torch.no_grad()
def sasrec_top_k(
    model: SASRec, ex: SequenceExamples, batch_size: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each example's ``k`` best-scoring items (indices, best first) and their scores."""
    model.eval()
    items = np.empty((len(ex), k), dtype=np.int64)
    scores = np.empty((len(ex), k))

    def top_batch(batch: tuple[Tensor, int]) -> tuple[np.ndarray, np.ndarray]:
        idx, width = batch
        top = model.scores(ex.hist[idx, -width:]).topk(k, dim=1)
        return top.indices.cpu().numpy(), top.values.double().cpu().numpy()

    batches = _length_sorted_batches(ex, batch_size)
    for (idx, _), (top_items, top_scores) in zip(batches, map_shared(top_batch, batches)):
        items[idx.cpu().numpy()] = top_items
        scores[idx.cpu().numpy()] = top_scores
    return items, scores
