"""Train one model and rank every validation and test user under each ranking rule: TIGER
(token- or item-level encoder) and SASRec through the shared loop (:func:`src.training.fit`),
with their training batches and timing, and the counting baselines."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from src.sequential.baselines import BASELINES
from src.sequential.beam_search import PrefixTrie
from src.sequential.presets import Preset
from src.sequential.protocols import RankingRule
from src.sequential.ranking import (
    ColdStart,
    RuleRanks,
    TigerRanking,
    rank_scorer,
    score_rank,
    tiger_rank,
    user_buckets,
)
from src.sequential.sasrec import SASRec
from src.sequential.sequence_data import (
    Chunks,
    SequenceData,
    SequenceExamples,
    bucketed_batches,
    n_bucketed_batches,
    prefix_chunks,
)
from src.sequential.tiger import Tiger
from src.training import TrainResult, count_parameters, epoch_generator, fit
from utils.data.dataset import Dataset
from utils.evaluation.metrics import by_target_coldness, next_item_metrics, ranking_metrics

log = logging.getLogger(__name__)


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
    """What one model's training and evaluation produced: ranks per ranking rule, the first
    rule being the protocol's headline."""

    name: str
    train: TrainResult
    ranks: dict[str, RuleRanks]
    timing: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # The test ranking as lists of item indices (best first) with scores, for saved predictions:
    # "items", "scores" under the headline rule, "filtered_items", "filtered_scores" when the
    # filtered rule is not the headline, and for TIGER's cold-start ranking "cold_share_items".
    test_lists: dict[str, np.ndarray] = field(default_factory=dict)


def with_model(
    spec: dict[str, Any] | None, model_class: str, name: str, config: dict[str, Any]
) -> dict[str, Any] | None:
    """What a checkpoint needs to rebuild its model: the run's ``spec`` with the model's class,
    name and configuration."""
    return None if spec is None else {**spec, "class": model_class, "name": name, "config": config}


def _no_validation(model: torch.nn.Module) -> dict[str, float]:
    """Holdout training has no validation fold: every epoch runs and the last one is kept."""
    return {}


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
    rules: list[RankingRule],
    is_cold: np.ndarray | None = None,
    progress: bool = False,
    identity: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
) -> ModelRun:
    """Train one TIGER variant and rank every validation and test user with beam search, under
    each ranking rule.

    ``is_cold`` (bool per item) adds the paper's cold-start ranking of the test
    users (:class:`ColdStart` with ``preset.cold_share``) beside plain beam search.
    ``identity`` (data checksum, semantic-ID digest, protocol, split) goes into each checkpoint
    with the model's configuration; ``resume`` refuses a checkpoint of anything else. ``spec``
    (preset, item map, the command) goes in with the model's class and configuration, so
    recommend.py can rebuild the model (:func:`with_model`).
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

    tcfg = replace(
        preset.train[name],
        checkpoint=checkpoint,
        resume=resume,
        identity={**(identity or {}), "model": cfg.to_dict()},
        spec=with_model(spec, "Tiger", name, cfg.to_dict()),
    )
    steps = n_bucketed_batches(train.length, tcfg.batch_size)
    result = fit(
        model,
        window_batches(train, tcfg.batch_size, seed, buckets["train"]),
        lambda m, b: m.loss(*b),
        evaluate if len(val) else _no_validation,
        tcfg,
        steps_per_epoch=steps,
        desc=name,
        progress=progress,
    )
    ranks, lists, seconds = {}, {}, 0.0
    for rule in rules:
        v = rank(model, val, buckets["val"], f"val ({rule.name})", history=rule.val)
        t = rank(model, test, buckets["test"], f"test ({rule.name})", history=rule.test)
        ranks[rule.name] = RuleRanks(v.ranks, t.ranks)
        seconds += v.seconds + t.seconds
        prefix = f"{rule.name}_" if lists else ""
        lists.update({f"{prefix}items": t.items, f"{prefix}scores": t.scores})
    headline = ranks[rules[0].name].test
    sub_idx = subset_index(len(test), preset.unconstrained_users, seed, 0xF7EE)
    free = rank(
        model,
        test.subset(sub_idx),
        _pick(buckets["test"], sub_idx),
        "unconstrained",
        constrained=False,
    )
    n_eval = (len(val) + len(test)) * len(rules)
    log.info(
        "%s: beam search %.1f users/s; unconstrained decoding: %.2f%% of top-10 IDs invalid",
        name,
        n_eval / seconds,
        100 * free.invalid_top10,
    )
    cold_start = {}
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
                **by_target_coldness(shared.ranks, target_cold),
                "plain_beam_cold_target_users": next_item_metrics(headline[target_cold]),
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
        ranks,
        timing={
            "train_seconds": round(result.train_seconds, 2),
            "train_examples_per_second": _per_second(len(train), result),
            "eval_seconds_val_test": round(seconds, 2),
            "beam_search_users_per_second": round(n_eval / seconds, 1),
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
                "constrained_same_users": ranking_metrics(headline[sub_idx]),
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
    rules: list[RankingRule],
    progress: bool = False,
    top_k: int = 100,
    identity: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
) -> ModelRun:
    """Train SASRec (all-position) and rank the whole catalogue for every validation and test
    user under each rule; ``top_k``: length of the saved test lists; ``identity`` and ``spec`` as
    for :func:`run_tiger`."""
    prefixes = preset.sasrec.examples == "prefixes"
    chunks = (prefix_chunks(data.train) if prefixes else data.train_chunks).to(device)
    trained = torch.zeros(n_items, dtype=torch.bool)
    trained[chunks.seq[chunks.seq >= 0].unique().cpu()] = True
    model = SASRec(n_items, preset.sasrec, trained_items=trained).to(device)
    data = replace(data, val=data.val.to(device), test=data.test.to(device))

    def evaluate(m: SASRec) -> dict[str, float]:
        """Validation metrics of every ranking rule: the headline's as they are, the others'
        prefixed by their name (``filtered_ndcg@10``), so a holdout run can take its epochs from
        the rule it reports."""
        out = {}
        for i, rule in enumerate(rules):
            ranks = score_rank(m, data.val, preset.eval_batch, rule.val, "sasrec val", progress)
            prefix = f"{rule.name}_" if i else ""
            out.update({prefix + k: v for k, v in ranking_metrics(ranks[0]).items()})
        return out

    tcfg = replace(
        preset.train["sasrec"],
        checkpoint=checkpoint,
        resume=resume,
        identity={**(identity or {}), "model": preset.sasrec.to_dict()},
        spec=with_model(spec, "SASRec", "sasrec", preset.sasrec.to_dict()),
    )
    steps = n_bucketed_batches(chunks.length, tcfg.batch_size)
    result = fit(
        model,
        chunk_batches(chunks, tcfg.batch_size, seed),
        lambda m, b: m.loss(b),
        evaluate if len(data.val) else _no_validation,
        tcfg,
        steps_per_epoch=steps,
        desc="sasrec",
        progress=progress,
        weight=SASRec.loss_terms,
    )
    k = min(top_k, n_items)
    ranks, lists, seconds = rank_scorer(
        "sasrec", model, data, rules, preset.eval_batch, k, progress
    )
    n_eval = (len(data.val) + len(data.test)) * len(rules)
    return ModelRun(
        "sasrec",
        result,
        ranks,
        timing={
            "train_seconds": round(result.train_seconds, 2),
            "train_chunks_per_second": _per_second(len(chunks), result),
            "eval_seconds_val_test": round(seconds, 2),
            "scoring_users_per_second": round(n_eval / seconds, 1),
        },
        extra={
            "parameters": count_parameters(model),
            "config": preset.sasrec.to_dict(),
            "curve_val_users": len(data.val),
            "untrained_items": int((~trained).sum()),
            "training": "all-position: each chunk of up to max_items + 1 training items predicts "
            "every item from the ones before it; untrained (cold) items are masked out of the "
            f"softmax; loss: {preset.sasrec.loss}",
        },
        test_lists=lists,
    )


def run_baseline(
    name: str,
    ds: Dataset,
    train_rows: np.ndarray,
    data: SequenceData,
    rules: list[RankingRule],
    batch_size: int,
    top_k: int = 100,
) -> ModelRun:
    """Fit a counting baseline (:mod:`src.sequential.baselines`) on ``train_rows`` and rank."""
    t0 = time.perf_counter()
    scorer = BASELINES[name](ds, train_rows)
    fit_seconds = time.perf_counter() - t0
    ranks, lists, seconds = rank_scorer(
        name, scorer, data, rules, batch_size, min(top_k, ds.n_items)
    )
    return ModelRun(
        name,
        TrainResult(best_epoch=-1, best_metrics={}, train_seconds=fit_seconds),
        ranks,
        timing={"train_seconds": round(fit_seconds, 2), "eval_seconds_val_test": round(seconds, 2)},
        extra={"parameters": 0, "config": {"model": name}, "curve_val_users": 0},
        test_lists=lists,
    )
