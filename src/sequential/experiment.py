"""Train and evaluate TIGER (token- and item-level encoders) and SASRec on one split.

The pieces ``tiger_train_eval.py`` strings together: presets, training through
the shared loop (:func:`src.training.fit`), full-catalogue ranking of every
validation/test user, popularity and cold-item slices, and timing.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from src.sequential.beam_search import PrefixTrie, beam_search, build_trie, merge_cold_share
from src.sequential.sasrec import SASRec, SASRecConfig
from src.sequential.sequence_data import (
    Chunks,
    SequenceData,
    SequenceExamples,
    bucketed_batches,
    n_bucketed_batches,
)
from src.sequential.tiger import Tiger, TigerConfig, TigerStepper
from src.training import TrainConfig, TrainResult, count_parameters, epoch_generator, fit
from utils.data.slices import slice_report
from utils.evaluation.metrics import next_item_metrics, ranking_metrics, require_finite
from utils.evaluation.predictions import id_strings
from utils.reporting.figures import grouped_bar_plot, pyplot, save_figure
from utils.runtime.distributed import map_shared
from utils.runtime.hashing import stable_hash_array

log = logging.getLogger(__name__)

MODELS = ("tiger", "tiger_item", "sasrec")
PUBLISHED = {  # Rajput et al. 2023, Table 2, Amazon Beauty (test set)
    "tiger": {"recall@5": 0.0454, "ndcg@5": 0.0321, "recall@10": 0.0648, "ndcg@10": 0.0384},
    "sasrec": {"recall@5": 0.0387, "ndcg@5": 0.0249, "recall@10": 0.0605, "ndcg@10": 0.0318},
}


@dataclass
class Preset:
    """Everything a preset fixes: model sizes, schedules (``train`` per model name), evaluation
    sizes."""

    tiger: TigerConfig
    sasrec: SASRecConfig
    train: dict[str, TrainConfig]
    models: tuple[str, ...] = MODELS  # what the preset runs unless --models says otherwise
    beam: int = 20
    val_users_during_training: int = 0  # 0 = all users
    unconstrained_users: int = 0  # 0 = all test users
    cold_share: float = 0.1  # share of the top 10 reserved for cold items (cold-start ranking)
    eval_batch: int = 256
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "tiger": self.tiger.to_dict(),
            "sasrec": self.sasrec.to_dict(),
            "train": {k: asdict(v) for k, v in self.train.items()},
            "models": list(self.models),
            "beam": self.beam,
            "val_users_during_training": self.val_users_during_training,
            "unconstrained_users": self.unconstrained_users,
            "cold_share": self.cold_share,
            "eval_batch": self.eval_batch,
            "note": self.note,
        }

    def with_epochs(self, epochs: int) -> Preset:
        return replace(self, train={k: replace(v, epochs=epochs) for k, v in self.train.items()})


def _train(**kw: Any) -> TrainConfig:
    base = dict(
        batch_size=256,
        lr=1e-3,
        weight_decay=0.01,
        grad_clip=1.0,
        schedule="inverse_sqrt",
        monitor="ndcg@10",
        mode="max",
    )
    return TrainConfig(**{**base, **kw})


QUICK_TIGER = TigerConfig(n_heads=4, head_dim=32, d_ff=512, enc_layers=2, dec_layers=2)
# A fixed 20 epochs, lr 5e-3 with 300 warm-up steps and cosine decay to zero; the best validation
# epoch is tested (patience larger than the budget: no early stop).
CPU_TIGER = _train(epochs=20, lr=5e-3, warmup_steps=300, schedule="cosine", patience=100)
# SASRec, all-position: a fixed 30 epochs of cosine decay (validation NDCG@10 levels off at ~0.040
# from epoch ~12 with a constant or a decaying rate; ~16 s per epoch on one core).
CPU_SASREC = _train(
    epochs=30,
    batch_size=64,
    lr=2e-3,
    warmup_steps=100,
    schedule="cosine",
    weight_decay=0.0,
    patience=100,
)

PRESETS: dict[str, Preset] = {
    # The main job on a 2-core CPU (TIGER with the item-level encoder and SASRec
    # in ~40 minutes): the narrower TIGER (2+2 layers, 4 heads of 32, FF 512) for
    # a fixed 20 epochs (~9,800 steps) with warm-up and cosine decay to zero (CPU_TIGER), the
    # recipe chosen on validation by benchmarks/sweep_tiger.py (results/tiger_sweep.json).
    "quick": Preset(
        tiger=QUICK_TIGER,
        sasrec=SASRecConfig(),
        train={"tiger": CPU_TIGER, "tiger_item": CPU_TIGER, "sasrec": CPU_SASREC},
        models=("tiger_item", "sasrec"),
        val_users_during_training=5000,
        note="CPU main job: TIGER 2+2 layers (4x32 heads, FF 512) with the item-level encoder, a "
        "fixed budget of epochs with cosine decay (the best validation epoch is tested), and "
        "SASRec (all-position training, 30 epochs of cosine decay); validation curves on 5,000 "
        "fixed users, final val/test metrics on all users",
    ),
    # The paper's size (4+4 layers, d 128, 6x64 heads, FF 1024) and schedule
    # length (~200k steps of 256 = ~400 epochs of Beauty's ~124k windows), for a GPU.
    "paper": Preset(
        tiger=TigerConfig(),
        sasrec=SASRecConfig(),
        train={
            "tiger": _train(epochs=400, warmup_steps=10_000, patience=20),
            "tiger_item": _train(epochs=400, warmup_steps=10_000, patience=20),
            "sasrec": _train(
                epochs=200,
                batch_size=128,
                warmup_steps=100,
                schedule="constant",
                weight_decay=0.0,
                patience=10,
            ),
        },
        models=("tiger", "tiger_item", "sasrec"),
        note="the paper's TIGER size and schedule length (~200k steps of 256, inverse-sqrt decay), "
        "early stopping on all validation users; meant for a GPU",
    ),
}
# The paper's token-level encoder at the quick size and recipe: ~3x the item-level
# encoder's cost per step, so about 1.5-2 hours on this CPU.
PRESETS["long"] = replace(
    PRESETS["quick"],
    models=("tiger",),
    note="the paper's token-level encoder at the quick size and recipe (20 epochs, cosine "
    "decay); 1.5-2 hours on a 2-core CPU",
)


# ---------------------------------------------------------------- ranking


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


# ---------------------------------------------------------------- training


def bucketed_epochs(
    length: Tensor, batch_size: int, seed: int, take: Callable[[Tensor, int], Any]
) -> Callable[[int], Any]:
    """``batches(epoch)`` for :func:`src.training.fit`: length buckets shuffled by (seed, epoch),
    ``take(idx, width)``."""

    def epoch(e: int):
        for idx, width in bucketed_batches(length, batch_size, epoch_generator(seed, e)):
            yield take(idx.to(length.device), width)

    return epoch


def window_batches(
    train: SequenceExamples, batch_size: int, seed: int, user_tok: Tensor | None
) -> Callable[[int], Any]:
    """TIGER's training batches: (history, target codes' item, user token) per window."""
    return bucketed_epochs(
        train.length,
        batch_size,
        seed,
        lambda idx, width: (
            train.hist[idx, -width:],
            train.target[idx],
            None if user_tok is None else user_tok[idx],
        ),
    )


def chunk_batches(chunks: Chunks, batch_size: int, seed: int) -> Callable[[int], Any]:
    """SASRec's training batches: runs of training items, every position a target."""
    return bucketed_epochs(
        chunks.length, batch_size, seed, lambda idx, width: chunks.seq[idx, -width:]
    )


def subset_index(n_total: int, n: int, seed: int, salt: int) -> np.ndarray:
    """Sorted indices of a fixed random subset of ``n`` of ``n_total`` (all when
    n is 0 or >= n_total)."""
    if not n or n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng([seed, salt]).choice(n_total, n, replace=False))


def _pick(tok: Tensor | None, idx: np.ndarray) -> Tensor | None:
    return None if tok is None else tok[torch.as_tensor(idx, device=tok.device)]


@dataclass
class ModelRun:
    """What one model's training and evaluation produced."""

    name: str
    train: TrainResult
    val_ranks: np.ndarray
    test_ranks: np.ndarray
    timing: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # The test ranking as lists of item indices (best first) with scores, for saved predictions:
    # "items", "scores", and for TIGER's cold-start ranking "cold_share_items" (top 10).
    test_lists: dict[str, np.ndarray] = field(default_factory=dict)


def run_tiger(
    name: str,
    data: SequenceData,
    codes: np.ndarray,
    trie: PrefixTrie,
    preset: Preset,
    user_ids: np.ndarray,
    seed: int,
    device: str,
    checkpoint: str | None,
    resume: bool,
    is_cold: np.ndarray | None = None,
    progress: bool = False,
) -> ModelRun:
    """Train one TIGER variant and rank every validation and test user with beam search.

    ``is_cold`` (bool per item) adds the paper's cold-start ranking of the test
    users (:class:`ColdStart` with ``preset.cold_share``) beside plain beam search.
    """
    cfg = replace(preset.tiger, encoder="item" if name == "tiger_item" else "token")
    model = Tiger(cfg, codes).to(device)
    train, val, test = data.train.to(device), data.val.to(device), data.test.to(device)
    buckets = {
        k: user_buckets(ex.user, user_ids, cfg.user_tokens)
        for k, ex in (("train", train), ("val", val), ("test", test))
    }
    trie = trie.to(device)
    val_idx = subset_index(len(val), preset.val_users_during_training, seed, 0x7A1)
    val_sub, val_sub_tok = val.subset(val_idx), _pick(buckets["val"], val_idx)

    def rank(
        net: Tiger, ex: SequenceExamples, tok: Tensor | None, what: str, **options: Any
    ) -> TigerRanking:
        """Beam search of ``net`` over ``ex`` at the preset's beam and batch size."""
        return tiger_rank(
            net,
            ex,
            trie,
            preset.beam,
            preset.eval_batch,
            tok,
            desc=f"{name} {what}",
            progress=progress,
            **options,
        )

    def evaluate(m: Tiger) -> dict[str, float]:
        return ranking_metrics(rank(m, val_sub, val_sub_tok, "val").ranks)

    tcfg = replace(preset.train[name], checkpoint=checkpoint, resume=resume)
    steps = n_bucketed_batches(train.length, tcfg.batch_size)
    result = fit(
        model,
        window_batches(train, tcfg.batch_size, seed, buckets["train"]),
        lambda m, b: m.loss(*b),
        evaluate,
        tcfg,
        steps_per_epoch=steps,
        desc=name,
        progress=progress,
    )
    v = rank(model, val, buckets["val"], "val (all)")
    t = rank(model, test, buckets["test"], "test")
    sub_idx = subset_index(len(test), preset.unconstrained_users, seed, 0xF7EE)
    free = rank(
        model,
        test.subset(sub_idx),
        _pick(buckets["test"], sub_idx),
        "unconstrained",
        constrained=False,
    )
    n_eval = len(val) + len(test)
    log.info(
        "%s: beam search %.1f users/s; unconstrained decoding: %.2f%% of top-10 IDs invalid",
        name,
        n_eval / (v.seconds + t.seconds),
        100 * free.invalid_top10,
    )
    cold_start = {}
    lists = {"items": t.items, "scores": t.scores}
    if is_cold is not None and is_cold.any() and preset.cold_share > 0:
        cs = ColdStart.build(codes, cfg.codebook_sizes, is_cold, preset.cold_share).to(device)
        shared = rank(model, test, buckets["test"], "test (cold share)", cold=cs)
        target_cold = is_cold[test.target.cpu().numpy()]
        lists["cold_share_items"] = shared.items[:, :10]
        cold_start = {
            "cold_start": {
                "what": f"test ranking with {preset.cold_share:.0%} of the top 10 (rounded up) "
                "reserved for the best cold items of a beam over cold items, the rest from a beam "
                "over warm items, ordered by score (Rajput et al. 2023, cold-start retrieval)",
                "cold_share": preset.cold_share,
                "all_users": next_item_metrics(shared.ranks),
                "cold_target_users": {
                    "n": int(target_cold.sum()),
                    **next_item_metrics(shared.ranks[target_cold]),
                },
                "warm_target_users": {
                    "n": int((~target_cold).sum()),
                    **next_item_metrics(shared.ranks[~target_cold]),
                },
                "plain_beam_cold_target_users": next_item_metrics(t.ranks[target_cold]),
            }
        }
        log.info(
            "%s: cold-target Recall@10 %.4f with a %.0f%% cold share (plain beam %.4f)",
            name,
            cold_start["cold_start"]["cold_target_users"]["recall@10"],
            100 * preset.cold_share,
            cold_start["cold_start"]["plain_beam_cold_target_users"]["recall@10"],
        )
    return ModelRun(
        name,
        result,
        v.ranks,
        t.ranks,
        timing={
            "train_seconds": round(result.train_seconds, 2),
            "train_examples_per_second": _per_second(len(train), result),
            "eval_seconds_val_test": round(v.seconds + t.seconds, 2),
            "beam_search_users_per_second": round(n_eval / (v.seconds + t.seconds), 1),
        },
        extra={
            "parameters": count_parameters(model),
            "config": cfg.to_dict(),
            "curve_val_users": len(val_idx),
            "unconstrained": {
                "what": "decoding without the trie (each step still chooses among its own level's "
                "codes); invalid = the decoded code tuple names no catalogue item",
                "users": len(sub_idx),
                "all_test_users": len(sub_idx) == len(test),
                "invalid_share_top1": round(free.invalid_top1, 4),
                "invalid_share_top10": round(free.invalid_top10, 4),
                **ranking_metrics(free.ranks),
                "constrained_same_users": ranking_metrics(t.ranks[sub_idx]),
            },
            **cold_start,
        },
        test_lists=lists,
    )


def _per_second(per_epoch: int, result: TrainResult) -> float:
    """Training throughput from whole epochs (also right for a run resumed only to re-evaluate)."""
    return (
        round(per_epoch * len(result.history) / result.train_seconds, 1)
        if result.train_seconds
        else 0.0
    )


def run_sasrec(
    data: SequenceData,
    n_items: int,
    preset: Preset,
    seed: int,
    device: str,
    checkpoint: str | None,
    resume: bool,
    progress: bool = False,
    top_k: int = 100,
) -> ModelRun:
    """Train SASRec (all-position) and rank the whole catalogue for every validation and test
    user; ``top_k``: length of the saved test lists."""
    chunks = data.train_chunks.to(device)
    trained = torch.zeros(n_items, dtype=torch.bool)
    trained[chunks.seq[chunks.seq >= 0].unique().cpu()] = True
    model = SASRec(n_items, preset.sasrec, trained_items=trained).to(device)
    val, test = data.val.to(device), data.test.to(device)

    def evaluate(m: SASRec) -> dict[str, float]:
        return ranking_metrics(
            sasrec_rank(m, val, preset.eval_batch, desc="sasrec val", progress=progress)[0]
        )

    tcfg = replace(preset.train["sasrec"], checkpoint=checkpoint, resume=resume)
    steps = n_bucketed_batches(chunks.length, tcfg.batch_size)
    result = fit(
        model,
        chunk_batches(chunks, tcfg.batch_size, seed),
        lambda m, b: m.loss(b),
        evaluate,
        tcfg,
        steps_per_epoch=steps,
        desc="sasrec",
        progress=progress,
        weight=SASRec.loss_terms,
    )
    v, vs = sasrec_rank(model, val, preset.eval_batch, "sasrec val (all)", progress)
    t, ts = sasrec_rank(model, test, preset.eval_batch, "sasrec test", progress)
    top_items, top_scores = sasrec_top_k(model, test, preset.eval_batch, min(top_k, n_items))
    return ModelRun(
        "sasrec",
        result,
        v,
        t,
        timing={
            "train_seconds": round(result.train_seconds, 2),
            "train_chunks_per_second": _per_second(len(chunks), result),
            "eval_seconds_val_test": round(vs + ts, 2),
            "scoring_users_per_second": round((len(val) + len(test)) / (vs + ts), 1),
        },
        extra={
            "parameters": count_parameters(model),
            "config": preset.sasrec.to_dict(),
            "curve_val_users": len(val),
            "untrained_items": int((~trained).sum()),
            "training": "all-position: each chunk of up to max_items + 1 training items predicts "
            "every item from the ones before it; untrained (cold) items are masked out of the "
            "softmax",
        },
        test_lists={"items": top_items, "scores": top_scores},
    )


# ---------------------------------------------------------------- reporting


def test_predictions(
    run: ModelRun, user_ids: np.ndarray, item_ids: np.ndarray, test_users: Tensor
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, columns) of a model's saved test ranking (utils/evaluation/predictions.py), in
    original IDs."""
    lists, beam = run.test_lists, run.name != "sasrec"
    columns = {
        "users": id_strings(user_ids, test_users.cpu().numpy()),
        "items": id_strings(item_ids, lists["items"]),
        "scores": lists["scores"],
    }
    if "cold_share_items" in lists:
        columns["cold_share_items"] = id_strings(item_ids, lists["cold_share_items"])
    meta = {
        "tie_rule": "list order" if beam else "pessimistic",
        "note": "beam search output, best first; scores: summed log-probabilities; "
        "cold_share_items: the cold-start ranking's top 10"
        if beam
        else "top-k of the full-catalogue scores; ties count against the target",
    }
    return meta, columns


def run_report(run: ModelRun, test_masks: dict[str, np.ndarray]) -> dict[str, Any]:
    """Metrics on all validation and test users, test slices, curves and timing for one model."""
    return {
        "val": next_item_metrics(run.val_ranks),
        "test": next_item_metrics(run.test_ranks),
        "n_val_users": len(run.val_ranks),
        "n_test_users": len(run.test_ranks),
        "test_slices": slice_report(lambda m: next_item_metrics(run.test_ranks[m]), test_masks),
        "cold_start_test_recall@10": (
            float(np.mean(run.test_ranks[test_masks["cold_items"]] < 10))
            if test_masks["cold_items"].any()
            else None
        ),
        "best_epoch": run.train.best_epoch,
        "stopped_early": run.train.stopped_early,
        "epochs_run": len(run.train.history),
        "curve": run.train.history,
        "timing": run.timing,
        **run.extra,
    }


def plot_results(results: dict[str, Any], plot_dir: str) -> list[str]:
    """Validation curves per model, and test metrics beside the published numbers."""
    plt = pyplot()
    models = results["models"]
    paths = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rep in models.items():
        ax.plot(
            [h["epoch"] for h in rep["curve"]],
            [h.get("val_ndcg@10", np.nan) for h in rep["curve"]],
            marker="o",
            label=f"{name} ({rep['curve_val_users']} val users)",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation NDCG@10")
    ax.set_title(f"{results['dataset']}: validation NDCG@10 per epoch ({results['preset']} preset)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = f"{plot_dir}/tiger_val_curve.png"
    save_figure(fig, path)
    paths.append(path)

    metrics = ["recall@5", "ndcg@5", "recall@10", "ndcg@10"]
    series = {
        f"{n} (ours, {results['preset']}, seed {results['seed']})": (
            [rep["test"][m] for m in metrics],
            None,
        )
        for n, rep in models.items()
    }
    series.update(
        {f"{n} (published)": ([PUBLISHED[n][m] for m in metrics], None) for n in PUBLISHED}
    )
    path = f"{plot_dir}/tiger_vs_published.png"
    grouped_bar_plot(
        path, metrics, series, f"{results['dataset']} test, full-catalogue ranking", "value"
    )
    paths.append(path)
    return paths
