"""Training and evaluation glue for pointwise models: anything that scores (user, item) pairs.

MF (issue 4) and the neural CTR models (issue 5) share this module, so every
pointwise model is trained on the same batches and scored on the same
examples, slices and full-catalogue ranking.

The model contract is small:

* ``model(users, items) -> scores``: ``users`` and ``items`` are int64 index
  tensors of equal length on the model's device; the score is the predicted
  rating (explicit objective) or a logit (implicit and liked objectives). Side features
  (semantic codes, categories, ...) are looked up *inside* the model from
  buffers indexed by item or user, so the glue never needs to know them.
* optional ``model.score_and_penalty(users, items) -> (scores, penalty)``:
  the scores plus an L2 term on the parameters the batch touched (as in
  classic SGD matrix factorization), from one lookup; with ``reg > 0`` the
  loss adds ``reg * penalty``.
* optional ``model.score_all(users) -> (len(users), n_items)``: scores of every
  catalogue item, for fast full-catalogue ranking; without it ranking falls
  back to calling the model on every (user, item) pair in chunks.

Batches are built by index slicing of tensors that are moved to the device
once per epoch (implicit training draws fresh negatives every epoch), never by
a per-example Python collate.
"""
from __future__ import annotations

import logging
import math
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from src.training import TrainConfig, TrainResult, epoch_generator, fit, index_batches
from utils.cli import quiet, seed_everything
from utils.data import Dataset
from utils.examples import Examples, TrainSampler, eval_examples
from utils.metrics import (auc, best_f1_threshold, binary_report, classification_metrics, mae,
                           multi_target_ranking, naming_model, pr_auc, require_finite, rmse)
from utils.report import aggregate_seeds, grouped_bar_plot
from utils.slices import row_slices, slice_report
from utils.splits import Split

log = logging.getLogger(__name__)

# Validation metric used for early stopping, and whether larger is better.
# "liked" (the CTR models on rated data): explicit ratings turned into 0/1 labels (rating >= positive_threshold),
# trained with BCE and scored like implicit feedback, on the rated examples only (no sampled negatives).
MONITOR = {"explicit": ("rmse", "min"), "implicit": ("auc", "max"), "liked": ("auc", "max")}
# Largest number of (user, item) scores materialised at once during ranking.
RANKING_CHUNK = 1 << 24


@dataclass
class ExampleTensors:
    """An :class:`Examples` set as device tensors; ``batch(idx)`` slices every field at once."""

    users: Tensor
    items: Tensor
    labels: Tensor

    @classmethod
    def from_examples(cls, ex: Examples, device: str | torch.device) -> "ExampleTensors":
        return cls(torch.as_tensor(ex.users, dtype=torch.long).to(device),
                   torch.as_tensor(ex.items, dtype=torch.long).to(device),
                   torch.as_tensor(ex.labels, dtype=torch.float32).to(device))

    def __len__(self) -> int:
        return len(self.users)

    def batch(self, idx: Tensor) -> dict[str, Tensor]:
        return {"users": self.users[idx], "items": self.items[idx], "labels": self.labels[idx]}


def binarize(ex: Examples, positive_threshold: float) -> Examples:
    """The same examples with label 1 where the rating is >= ``positive_threshold``, else 0."""
    return replace(ex, labels=(ex.labels >= positive_threshold).astype(np.float32))


def train_sampler(ds: Dataset, split: Split, objective: str, negatives: int, seed: int,
                  positive_threshold: float = 4.0) -> TrainSampler:
    """The training sampler of ``objective``; "liked" binarises the explicit ratings."""
    if objective != "liked":
        return TrainSampler(ds, split, objective, negatives, seed)
    sampler = TrainSampler(ds, split, "explicit", 0, seed)
    sampler.pos = binarize(sampler.pos, positive_threshold)
    return sampler


def epoch_size(sampler: TrainSampler) -> int:
    """Training examples per epoch: the positives plus their sampled negatives."""
    return len(sampler.pos) * (1 + sampler.negatives)


def epoch_batches(sampler: TrainSampler, batch_size: int, seed: int, device: str | torch.device) -> Callable[[int], Iterator[dict]]:
    """``batches(epoch)`` for :func:`src.training.fit`: the epoch's examples, shuffled by (seed, epoch)."""

    def batches(epoch: int) -> Iterator[dict[str, Tensor]]:
        data = ExampleTensors.from_examples(sampler.epoch(epoch), device)
        for idx in index_batches(len(data), batch_size, epoch_generator(seed, epoch)):
            yield data.batch(idx.to(device))

    return batches


def pointwise_loss(objective: str, reg: float = 0.0) -> Callable[[nn.Module, dict], Tensor]:
    """MSE on ratings (explicit) or BCE on logits (implicit), plus ``reg * penalty`` when the model has one."""
    if objective not in MONITOR:
        raise ValueError(f"objective must be one of {', '.join(MONITOR)}, got {objective!r}")

    def loss(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        if reg and hasattr(model, "score_and_penalty"):
            scores, penalty = model.score_and_penalty(batch["users"], batch["items"])
        else:
            scores, penalty = model(batch["users"], batch["items"]), None
        if objective == "explicit":
            value = F.mse_loss(scores, batch["labels"])
        else:
            value = F.binary_cross_entropy_with_logits(scores, batch["labels"])
        return value if penalty is None else value + reg * penalty

    return loss


@torch.no_grad()
def predict(model: nn.Module, data: ExampleTensors, batch_size: int = 1 << 16) -> np.ndarray:
    """Scores of every example, in large batches, as a float64 numpy array."""
    model.eval()
    out = [model(data.users[s : s + batch_size], data.items[s : s + batch_size]).float().cpu()
           for s in range(0, len(data), batch_size)]
    return torch.cat(out).double().numpy() if out else np.zeros(0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function (no overflow warnings for large |x|)."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))


def score_metrics(objective: str, labels: np.ndarray, scores: np.ndarray, positive_threshold: float = 4.0,
                  rating_range: tuple[float, float] = (1.0, 5.0)) -> dict[str, float]:
    """The objective's metric family for one set of examples.

    Explicit: RMSE and MAE of predictions clipped to the rating range, and
    for "liked" (rating >= ``positive_threshold``) AUC and PR-AUC of the
    predicted rating plus precision/recall/F1/accuracy of "predicted rating >=
    threshold". Implicit: AUC, PR-AUC, logloss and the report at p >= 0.5.
    """
    require_finite(scores)  # before clipping, which would turn an infinite score into a plausible rating
    if objective == "explicit":
        pred = np.clip(scores, *rating_range)
        liked = labels >= positive_threshold
        return {"rmse": rmse(labels, pred), "mae": mae(labels, pred), "auc": auc(liked, pred),
                "pr_auc": pr_auc(liked, pred), **binary_report(liked, pred, positive_threshold)}
    return classification_metrics(labels, sigmoid(scores), 0.5)


def _csr(groups: np.ndarray, values: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, values) with the values of group g at values[offsets[g]:offsets[g+1]]."""
    order = np.argsort(groups, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(groups, minlength=n_groups))]).astype(np.int64)
    return offsets, np.asarray(values)[order]


@torch.no_grad()
def score_items(model: nn.Module, users: Tensor, n_items: int) -> Tensor:
    """(len(users), n_items) scores: ``model.score_all`` when it has one, else every pair through ``model``."""
    if hasattr(model, "score_all"):
        return model.score_all(users).float()
    items = torch.arange(n_items, device=users.device)
    pairs_u = users.repeat_interleave(n_items)
    return model(pairs_u, items.repeat(len(users))).float().view(len(users), n_items)


@torch.no_grad()
def top_k_items(model: nn.Module, users: np.ndarray, k: int, n_items: int, exclude: tuple[np.ndarray, np.ndarray],
                targets: tuple[np.ndarray, np.ndarray], candidates: dict[str, np.ndarray | None] | None = None,
                device: str | torch.device = "cpu", desc: str = "rank") -> dict[str, np.ndarray]:
    """Top-k item indices per user, for each candidate set (``None`` = the full catalogue).

    ``exclude`` and ``targets`` are CSR lists (offsets, items) aligned with
    ``users``. Excluded items (e.g. the user's training items) are masked to
    -inf. Targets (the held-out items) have their scores nudged down to the
    next float, so an item tied with a target ranks above it: the pessimistic
    tie rule of :mod:`utils.metrics`, under which a model that scores many
    items equally (MF-ID on cold items) cannot profit from the tie. Every user
    is scored once for all candidate sets.
    """
    model.eval()
    candidates = candidates or {"all": None}
    subsets = {name: torch.as_tensor(c, dtype=torch.long, device=device) for name, c in candidates.items() if c is not None}
    size = {name: min(k, n_items if cand is None else len(cand)) for name, cand in candidates.items()}
    out = {name: np.empty((len(users), size[name]), dtype=np.int64) for name in candidates}
    batch = max(1, RANKING_CHUNK // max(n_items, 1))
    minus_inf = torch.tensor(-float("inf"), device=device)
    for start in tqdm(range(0, len(users), batch), desc=desc, disable=quiet(), leave=False):
        end = min(start + batch, len(users))
        scores = score_items(model, torch.as_tensor(users[start:end], device=device), n_items)
        for (offsets, items), nudge in ((targets, True), (exclude, False)):
            r = torch.as_tensor(np.repeat(np.arange(end - start), np.diff(offsets[start : end + 1])), device=device)
            c = torch.as_tensor(items[offsets[start] : offsets[end]], dtype=torch.long, device=device)
            scores[r, c] = torch.nextafter(scores[r, c], minus_inf) if nudge else minus_inf
        for name in candidates:
            if name in subsets:
                top = subsets[name][scores.index_select(1, subsets[name]).topk(size[name], dim=1).indices]
            else:
                top = scores.topk(size[name], dim=1).indices
            out[name][start:end] = top.cpu().numpy()
    return out


class PointwiseEvaluator:
    """Scores a model on one split's validation and test examples, with slices and full-catalogue ranking.

    Built once per (data set, split, objective): the example tensors, slice
    masks and ranking targets are shared by every model and seed.
    """

    def __init__(self, ds: Dataset, split: Split, objective: str, device: str | torch.device = "cpu",
                 positive_threshold: float = 4.0, ks: tuple[int, ...] = (10, 20), batch_size: int = 1 << 16):
        self.ds, self.split, self.objective, self.device = ds, split, objective, device
        self.positive_threshold, self.ks, self.batch_size = positive_threshold, tuple(ks), batch_size
        self.examples = {part: eval_examples(ds, split, part, "explicit" if objective == "liked" else objective)
                         for part in ("val", "test")}
        if objective == "liked":
            self.examples = {part: binarize(ex, positive_threshold) for part, ex in self.examples.items()}
        self.tensors = {part: ExampleTensors.from_examples(ex, device) for part, ex in self.examples.items()}
        if objective == "explicit":
            train_ratings = ds.ratings[split.train]
            self.rating_range = (float(train_ratings.min()), float(train_ratings.max()))
        else:
            self.rating_range = (0.0, 1.0)

    def metrics(self, labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
        return score_metrics(self.objective, labels, scores, self.positive_threshold, self.rating_range)

    def validate(self, model: nn.Module) -> dict[str, float]:
        """Overall validation metrics: the ``evaluate`` callback for :func:`src.training.fit`."""
        return self.metrics(self.examples["val"].labels, predict(model, self.tensors["val"], self.batch_size))

    def val_threshold(self, model: nn.Module) -> float:
        """The probability threshold with the best validation F1 (binary objectives), to apply on test."""
        if self.objective == "explicit":
            raise ValueError("a decision threshold needs a binary objective (implicit or liked)")
        scores = predict(model, self.tensors["val"], self.batch_size)
        return best_f1_threshold(self.examples["val"].labels, sigmoid(scores))

    def evaluate(self, model: nn.Module, part: str = "test", ranking: bool = True,
                 threshold: float | None = None) -> dict[str, Any]:
        """Overall and per-slice metrics on ``part``; implicit adds full-catalogue ranking metrics.

        With ``threshold`` (e.g. :meth:`val_threshold`), binary objectives also
        report precision/recall/F1/accuracy of ``p >= threshold`` as ``*_at_val_threshold``.
        """
        ex = self.examples[part]
        scores = predict(model, self.tensors[part], self.batch_size)
        masks = row_slices(self.ds, self.split, ex.group_row)

        def metrics(labels: np.ndarray, s: np.ndarray) -> dict[str, float]:
            out = self.metrics(labels, s)
            if threshold is not None:
                out.update({f"{k}_at_val_threshold": v for k, v in binary_report(labels, sigmoid(s), threshold).items()})
            return out

        report: dict[str, Any] = {
            "overall": metrics(ex.labels, scores),
            "slices": slice_report(lambda m: metrics(ex.labels[m], scores[m]), masks),
        }
        if ranking and self.objective == "implicit":
            report["ranking"] = self.ranking(model, part)
        return report

    def ranking(self, model: nn.Module, part: str = "test") -> dict[str, Any]:
        """Recall@k / NDCG@k of each user's held-out items over the whole catalogue.

        Excluded from each user's candidates: the items of the user's earlier
        splits (training items; for test also validation items), which the
        user is known to have consumed already. A held-out item the user had
        also consumed earlier stays excluded, i.e. counts as a miss.

        Slices use the same row masks as the pointwise metrics, applied to the
        held-out (user, item) pairs: a user slice keeps all of its users'
        held-out items; an item slice (head/mid/tail, cold, warm) keeps only the
        held-out items in that slice as relevant, ranked against the full
        catalogue, so ``cold_items`` answers "does the new item reach the top k
        of the user who later consumed it". ``n`` counts held-out pairs and
        ``users`` the users averaged over. ``cold_catalogue`` ranks each user's
        held-out cold items among the cold items only (the classic
        new-item recommendation task), with the chance level k / n_cold.
        """
        ds, split = self.ds, self.split
        rows = getattr(split, part)
        earlier = split.train if part == "val" else np.concatenate([split.train, split.val])
        users = np.unique(ds.users[rows])
        user_pos = np.full(ds.n_users, -1, dtype=np.int64)
        user_pos[users] = np.arange(len(users))
        exclude = _csr(user_pos[ds.users[earlier]], ds.items[earlier], len(users))
        held_out = (user_pos[ds.users[rows]], ds.items[rows])
        targets = _csr(*held_out, len(users))
        cold_rows = split.is_cold(ds.items[rows])
        candidates = {"all": None, **({"cold": split.cold_items} if cold_rows.any() else {})}
        top = top_k_items(model, users, max(self.ks), ds.n_items, exclude, targets, candidates, self.device, f"rank {part}")

        def metric_fn(mask: np.ndarray, top: np.ndarray = top["all"]) -> dict[str, float]:
            present = np.unique(held_out[0][mask])
            local = np.full(len(users), -1, dtype=np.int64)
            local[present] = np.arange(len(present))
            offsets, items = _csr(local[held_out[0][mask]], held_out[1][mask], len(present))
            per_user = multi_target_ranking(top[present], offsets, items, self.ks)
            return {"users": int(len(present)), **{m: float(v.mean()) for m, v in per_user.items()}}

        report: dict[str, Any] = {"overall": metric_fn(np.ones(len(rows), dtype=bool)),
                                  "slices": slice_report(metric_fn, row_slices(ds, split, rows))}
        if "cold" in top:
            n_cold = len(split.cold_items)
            report["cold_catalogue"] = {"n": int(cold_rows.sum()), "candidates": n_cold, **metric_fn(cold_rows, top["cold"]),
                                        **{f"chance_recall@{k}": min(1.0, k / n_cold) for k in self.ks}}
        return report


def train_pointwise(model: nn.Module, sampler: TrainSampler, evaluator: PointwiseEvaluator, cfg: TrainConfig,
                    seed: int, reg: float = 0.0, desc: str = "train") -> TrainResult:
    """Train with :func:`src.training.fit`, early-stopping on the objective's validation metric.

    ``cfg.monitor``/``cfg.mode`` are set by the objective (RMSE, lower
    is better, for explicit; AUC for implicit). Returns fit's result; the model
    holds the best epoch's weights.
    """
    monitor, mode = MONITOR[evaluator.objective]
    cfg = replace(cfg, monitor=monitor, mode=mode)
    steps = math.ceil(epoch_size(sampler) / cfg.batch_size)
    return fit(model, epoch_batches(sampler, cfg.batch_size, seed, evaluator.device),
               pointwise_loss(evaluator.objective, reg), evaluator.validate, cfg, steps_per_epoch=steps, desc=desc)


def has_trainable(model: nn.Module) -> bool:
    return any(p.requires_grad for p in model.parameters())


def run_models(
    names: list[str], seeds: list[int], build: Callable[[str], nn.Module], evaluator: PointwiseEvaluator,
    sampler: Callable[[int], TrainSampler], cfg: TrainConfig, reg: float = 0.0,
    describe: Callable[[nn.Module], dict[str, Any]] | None = None, stage: Callable[[str], Any] | None = None,
    ranking: bool = True, tune_threshold: bool = False,
) -> dict[str, Any]:
    """Train and test every model under every seed; per-seed results plus their mean and std.

    ``build(name)`` returns a fresh model (called right after seeding, so the
    seed fixes its initialisation); ``sampler(seed)`` the seed's training
    sampler; ``describe(model)`` adds model facts to each seed's record
    (e.g. learned level weights); ``stage(label)`` is a timing context such as
    ``RunRecord.stage``. A model without trainable parameters (a fixed
    baseline) is evaluated without training. ``ranking=False`` skips the
    full-catalogue ranking (costly for models without ``score_all``);
    ``tune_threshold`` adds test metrics at the best-F1 validation threshold.
    """
    stage = stage or (lambda label: nullcontext())
    out: dict[str, Any] = {}
    for name in names:
        per_seed: dict[str, Any] = {}
        for seed in seeds:
            seed_everything(seed)
            model = build(name).to(evaluator.device)
            entry: dict[str, Any] = {}
            if has_trainable(model):
                with stage(f"train {name} seed {seed}"), naming_model(f"{name} seed {seed}"):
                    result = train_pointwise(model, sampler(seed), evaluator, cfg, seed, reg, desc=f"{name} s{seed}")
                entry.update(best_epoch=result.best_epoch, stopped_early=result.stopped_early,
                             train_seconds=round(result.train_seconds, 3),
                             examples_per_second=round(result.examples_per_second, 1), history=result.history)
            with stage(f"test {name} seed {seed}"), naming_model(f"{name} seed {seed}"):
                threshold = evaluator.val_threshold(model) if tune_threshold else None
                if threshold is not None:
                    entry["val_threshold"] = threshold
                entry["test"] = evaluator.evaluate(model, "test", ranking, threshold)
            entry.update(describe(model) if describe else {})
            per_seed[str(seed)] = entry
            log.info("%s seed %d test: %s", name, seed, {k: round(v, 4) for k, v in entry["test"]["overall"].items()})
        runs = [{k: v for k, v in e.items() if k not in ("history", "best_epoch", "stopped_early")} for e in per_seed.values()]
        out[name] = {"seeds": per_seed, "mean_std": aggregate_seeds(runs)}
    return out


def _metric_block(test: dict[str, Any], metric: str) -> dict[str, Any]:
    """The part of a (mean/std) test report that holds ``metric``: pointwise or ranking."""
    return test["ranking"] if metric not in test["overall"] and "ranking" in test else test


def plot_overall_vs_cold(path: Path, models: dict[str, Any], metric: str, title: str) -> Path:
    """Bar plot of ``metric`` per model, overall and on cold items, mean and std over seeds."""
    names = list(models)
    series: dict[str, tuple[list[float], list[float]]] = {"overall": ([], []), "cold items": ([], [])}
    for name in names:
        block = _metric_block(models[name]["mean_std"]["test"], metric)
        for label, stats in (("overall", block["overall"]), ("cold items", block["slices"]["cold_items"])):
            value = stats.get(metric, {"mean": float("nan"), "std": 0.0})
            series[label][0].append(value["mean"])
            series[label][1].append(value["std"])
    grouped_bar_plot(path, names, series, title, f"test {metric}")
    return path


def semantic_ids_record(sids: Any, cold_fraction: float, split_seed: int) -> dict[str, Any]:
    """What a results file should say about the semantic IDs a run used, with a hold-out consistency check.

    Codebooks fitted on warm items only must have held out the same cold items
    as this run's split; otherwise the cold items' embeddings shaped the
    codebooks (no label leak, but no longer the "brand-new item" setting), and
    a warning says so.
    """
    meta = sids.meta
    same_holdout = meta.get("fit_on") == "warm" and meta.get("cold_fraction") == cold_fraction and meta.get("split_seed") == split_seed
    if not same_holdout:
        log.warning("semantic IDs were fitted on %s items (cold fraction %s, split seed %s), not on the warm items of "
                    "this split (cold fraction %s, split seed %s): cold items are not brand-new to the codebooks",
                    meta.get("fit_on"), meta.get("cold_fraction"), meta.get("split_seed"), cold_fraction, split_seed)
    return {"levels": int(sids.levels), "code_columns": int(sids.codes.shape[1]), "codebook_sizes": list(sids.codebook_sizes),
            "model": meta.get("model"),
            "fit_on": meta.get("fit_on"), "codebooks_sha256": meta.get("codebooks_sha256"),
            "cold_holdout_matches_split": bool(same_holdout)}


def markdown_table(models: dict[str, Any], columns: dict[str, tuple[str, ...]]) -> str:
    """A mean ± std table of test metrics, one row per model; ``columns`` maps a header to a path in the test report.

    For example ``{"cold RMSE": ("slices", "cold_items", "rmse")}``; a missing entry prints as "-".
    """
    lines = ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, result in models.items():
        cells = []
        for path in columns.values():
            node: Any = result["mean_std"]["test"]
            for key in path:
                node = node.get(key, {}) if isinstance(node, dict) else {}
            cells.append(f"{node['mean']:.4f} ± {node['std']:.4f}" if "mean" in node else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
