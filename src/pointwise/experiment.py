"""Training pointwise models and repeating them over seeds: the loop MF and the CTR family share."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import nn

from src.pointwise.batches import MONITOR, epoch_batches, pointwise_loss
from src.pointwise.evaluation import PointwiseEvaluator
from src.training import TrainConfig, TrainResult, fit
from utils.data.examples import TrainSampler
from utils.evaluation.metrics import naming_model
from utils.reporting.results import aggregate_seeds
from utils.runtime import distributed
from utils.runtime.checkpoints import save_weights
from utils.runtime.environment import seed_everything

log = logging.getLogger(__name__)


def train_pointwise(
    model: nn.Module,
    sampler: TrainSampler,
    evaluator: PointwiseEvaluator,
    cfg: TrainConfig,
    seed: int,
    reg: float = 0.0,
    desc: str = "train",
    progress: bool = False,
) -> TrainResult:
    """Train with :func:`src.training.fit`, early-stopping on the objective's validation metric.

    ``cfg.monitor``/``cfg.mode`` are set by the objective (RMSE, lower
    is better, for explicit; AUC for implicit). Returns fit's result; the model
    holds the best epoch's weights.
    """
    monitor, mode = MONITOR[evaluator.objective]
    cfg = replace(cfg, monitor=monitor, mode=mode)
    steps = math.ceil(len(sampler) / cfg.batch_size)
    return fit(
        model,
        epoch_batches(sampler, cfg.batch_size, seed, evaluator.device),
        pointwise_loss(evaluator.objective, reg),
        evaluator.validate,
        cfg,
        steps_per_epoch=steps,
        desc=desc,
        progress=progress,
    )


def has_trainable(model: nn.Module) -> bool:
    return any(p.requires_grad for p in model.parameters())


def run_models(
    names: list[str],
    seeds: list[int],
    build: Callable[[str], nn.Module],
    evaluator: PointwiseEvaluator,
    sampler: Callable[[int], TrainSampler],
    cfg: TrainConfig,
    reg: float = 0.0,
    describe: Callable[[nn.Module], dict[str, Any]] | None = None,
    stage: Callable[[str], Any] | None = None,
    ranking: bool = True,
    tune_threshold: bool = False,
    progress: bool = False,
    save: Callable[[str, int, nn.Module], dict[str, Any]] | None = None,
    keep: Callable[[str, int, nn.Module], Any] | None = None,
) -> dict[str, Any]:
    """Train and test every model under every seed; per-seed results plus their mean and std.

    ``build(name)`` returns a fresh model (called right after seeding, so the
    seed fixes its initialisation); ``sampler(seed)`` the seed's training
    sampler; ``describe(model)`` adds model facts to each seed's record
    (e.g. learned level weights); ``stage(label)`` is a timing context such as
    ``RunRecord.stage``. A model without trainable parameters (a fixed
    baseline) is evaluated without training. ``ranking=False`` skips the
    full-catalogue ranking (costly for models without ``score_all``);
    ``tune_threshold`` adds test metrics at the best-F1 validation threshold;
    ``save(name, seed, model)`` saves the test predictions and returns what the results file
    records of them (file names and checksums); ``keep(name, seed, model)`` saves the trained
    weights (:func:`weights_keeper`).
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
                    result = train_pointwise(
                        model,
                        sampler(seed),
                        evaluator,
                        cfg,
                        seed,
                        reg,
                        desc=f"{name} s{seed}",
                        progress=progress,
                    )
                entry.update(
                    best_epoch=result.best_epoch,
                    stopped_early=result.stopped_early,
                    train_seconds=round(result.train_seconds, 3),
                    examples_per_second=round(result.examples_per_second, 1),
                    history=result.history,
                )
            with stage(f"test {name} seed {seed}"), naming_model(f"{name} seed {seed}"):
                threshold = evaluator.val_threshold(model) if tune_threshold else None
                if threshold is not None:
                    entry["val_threshold"] = threshold
                entry["test"] = evaluator.evaluate(model, "test", ranking, threshold)
                if save is not None:
                    entry["predictions"] = save(name, seed, model)
            if keep is not None:
                keep(name, seed, model)
            entry.update(describe(model) if describe else {})
            per_seed[str(seed)] = entry
            log.info(
                "%s seed %d test: %s",
                name,
                seed,
                {k: round(v, 4) for k, v in entry["test"]["overall"].items()},
            )
        runs = [
            {k: v for k, v in e.items() if k not in ("history", "best_epoch", "stopped_early")}
            for e in per_seed.values()
        ]
        out[name] = {"seeds": per_seed, "mean_std": aggregate_seeds(runs)}
    return out


def prediction_saver(
    exp: Any, evaluator: PointwiseEvaluator, top_k: int, ranking: bool = True
) -> Callable[[str, int, nn.Module], dict[str, Any]] | None:
    """``save`` for :func:`run_models` when the run saves predictions (``exp``: an
    :class:`utils.runtime.experiment.Experiment`), else None: each model's test scores and, with
    ``ranking``, its top ``top_k`` lists."""
    if not exp.save_predictions:
        return None

    def save(name: str, seed: int, model: nn.Module) -> dict[str, Any]:
        content = evaluator.predictions(model, "test", top_k, ranking)
        return {
            kind: exp.save(name, seed, kind, meta, **cols) for kind, (meta, cols) in content.items()
        }

    return save


def weights_keeper(
    folder: str | Path, stem: str, spec: dict[str, Any], identity: dict[str, Any]
) -> Callable[..., Path]:
    """``keep`` for :func:`run_models`: each trained model's weights as
    ``<folder>/<stem>-seed<seed>.pt`` with what rebuilds it (``spec``: its name, class and seed
    added, ``config`` extended by ``extra`` such as a CTR feature mode) and what it was trained on
    (``identity``), so recommend.py can load it and refuse it on other data. ``{name}``,
    ``{seed}`` and ``extra``'s keys in ``stem`` and the spec's command are filled in."""

    def fill(text: str, values: dict[str, Any]) -> str:
        for key, value in values.items():
            text = text.replace(f"{{{key}}}", str(value))
        return text

    def keep(name: str, seed: int, model: nn.Module, extra: dict[str, Any] | None = None) -> Path:
        values = {"name": name, "seed": seed, **(extra or {})}
        path = Path(folder) / f"{fill(stem, values)}-seed{seed}.pt"
        config = {**spec.get("config", {}), **(extra or {})}
        own = {"name": name, "class": type(model).__name__, "seed": seed, "config": config}
        meta = {
            "spec": {**spec, **own, "command": fill(spec["command"], values)},
            "identity": {**identity, "model": {"name": name, **config}},
        }
        if distributed.is_main():
            save_weights(path, model.state_dict(), meta)
            log.info("saved %s", path)
        return path

    return keep
