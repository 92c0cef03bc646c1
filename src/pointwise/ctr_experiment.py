"""Every CTR model x feature mode x seed on one split: training, test report, summary rows and plot.

The pointwise modules (:mod:`src.pointwise.experiment`, ``.evaluation``, ``.batches``) do the
batching, early stopping, metrics and slices, so MF and the CTR models are scored on the same
examples.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from src.pointwise.ctr import CTRConfig, build_ctr_model
from src.pointwise.evaluation import PointwiseEvaluator
from src.pointwise.experiment import run_models
from src.pointwise.features import build_features
from src.training import TrainConfig, count_parameters
from utils.data.dataset import Dataset
from utils.data.examples import TrainSampler
from utils.data.splits import Split
from utils.reporting.figures import grouped_bar_plot, zoomed_ylim
from utils.reporting.labels import model_label

log = logging.getLogger(__name__)

TABLE_METRICS = ("auc", "logloss", "pr_auc", "f1", "f1_at_val_threshold")


def ctr_objective(objective: str) -> str:
    """The CTR models predict a click/like probability: explicit ratings become 'liked' 0/1
    labels."""
    return "liked" if objective == "explicit" else objective


def labelling(
    objective: str, positive_threshold: float, negatives: int, split: Split
) -> dict[str, Any]:
    """What a label means in this run, for the results file."""
    if objective == "liked":
        return {
            "objective": "liked",
            "positive": f"rating >= {positive_threshold:g}",
            "negative": f"rating < {positive_threshold:g}",
            "sampled_negatives": False,
        }
    return {
        "objective": "implicit",
        "positive": "observed interaction",
        "negative": "sampled unobserved item",
        "train_negatives_per_positive": negatives,
        "eval_negatives_per_positive": int(split.val_negatives.shape[1]),
        "eval_negatives": "fixed, saved with the split (the same as the MF script's)",
    }


def ctr_model_facts(model: Any) -> dict[str, Any]:
    """Parameter counts: total, and the share in embedding tables (incl. the wide part's cross
    weights)."""
    embedding = sum(
        p.numel()
        for n, p in model.named_parameters()
        if any(k in n for k in ("table", "bags", "crosses")) and p.requires_grad
    )
    return {"parameters": count_parameters(model), "embedding_parameters": embedding}


def run_ctr(
    ds: Dataset,
    split: Split,
    evaluator: PointwiseEvaluator,
    models: Sequence[str],
    modes: Sequence[str],
    seeds: Sequence[int],
    codes: np.ndarray | None,
    model_cfg: CTRConfig,
    train_cfg: TrainConfig,
    negatives: int,
    positive_threshold: float,
    feature_options: dict[str, Any],
    stage: Callable[[str], Any],
    progress: bool = False,
    save: Callable[[str, int, Any], dict[str, Any]] | None = None,
    keep: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """``{mode: {model: {'seeds': {...}, 'mean_std': {...}}, 'features': {...}}}`` for every
    mode; ``save(label, seed, model)`` saves test predictions under the label "<model>-<mode>";
    ``keep`` (:func:`src.pointwise.experiment.weights_keeper`) the trained weights, with the
    mode."""
    out: dict[str, Any] = {}
    for mode in modes:
        with stage(f"features {mode}"):
            features = build_features(ds, split, mode, codes, **feature_options).to(
                evaluator.device
            )
        spec = features.spec
        log.info(
            "mode %s: sparse fields %s, bags %s, dense %s", mode, spec.sparse, spec.bags, spec.dense
        )
        results = run_models(
            list(models),
            list(seeds),
            lambda name, features=features: build_ctr_model(name, features, model_cfg),
            evaluator,
            lambda seed: TrainSampler(
                ds, split, evaluator.objective, negatives, seed, positive_threshold
            ),
            train_cfg,
            describe=ctr_model_facts,
            stage=lambda label, mode=mode: stage(f"{mode}: {label}"),
            ranking=False,
            tune_threshold=True,
            progress=progress,
            save=None
            if save is None
            else (lambda name, seed, model, mode=mode: save(f"{name}-{mode}", seed, model)),
            keep=None
            if keep is None
            else (lambda name, seed, model, mode=mode: keep(name, seed, model, {"mode": mode})),
        )
        out[mode] = {
            "features": {
                "sparse_fields": spec.sparse,
                "bags": spec.bags,
                "dense": list(spec.dense),
                "wide_crosses": [f"user x {c}" for c in spec.cross],
            },
            "models": results,
        }
    return out


def _stat(block: dict[str, Any], key: str) -> dict[str, Any]:
    """The ``{mean, std, values}`` spread of ``key`` (NaN with no values where it is absent)."""
    return block.get(key) or {"mean": float("nan"), "std": 0.0, "values": []}


def summary_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (model, mode): test metrics overall and on cold items (``{mean, std, values}``
    over seeds, the layout of every spread in a results file), size and speed."""
    rows = []
    for mode, by_mode in results.items():
        for model, res in by_mode["models"].items():
            agg = res["mean_std"]
            test = agg["test"]
            row: dict[str, Any] = {"model": model, "mode": mode}
            for metric in TABLE_METRICS:
                row[metric] = _stat(test["overall"], metric)
                row[f"cold_{metric}"] = _stat(test["slices"]["cold_items"], metric)
            row["cold_n"] = int(_stat(test["slices"]["cold_items"], "n")["mean"])
            row["parameters"] = int(_stat(agg, "parameters")["mean"])
            row["train_seconds"] = _stat(agg, "train_seconds")
            rows.append(row)
    return rows


def plot_modes(path: Path, rows: list[dict[str, Any]], title: str, metric: str = "auc") -> Path:
    """Bars of test ``metric`` per model, overall and on cold items, one colour per feature mode."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    by_key = {(r["model"], r["mode"]): r for r in rows}
    groups = [
        f"{model_label(model)}\n{where}" for model in models for where in ("overall", "cold items")
    ]
    series = {}
    for mode in modes:
        values = [
            by_key[(model, mode)][key] for model in models for key in (metric, f"cold_{metric}")
        ]
        series[model_label(mode)] = ([v["mean"] for v in values], [v["std"] for v in values])
    ylim = zoomed_ylim(series)  # AUCs of these models sit in a narrow band
    zoom = "\n(axis zoomed to the range of the values)" if ylim else ""
    return grouped_bar_plot(path, groups, series, f"{title}{zoom}", f"test {metric}", ylim=ylim)


def plot_ctr_results(result: dict[str, Any], plot_dir: str | Path) -> Path:
    """The CTR plot of a results file (neural_train_eval.py's, or one read back to redraw it)."""
    name = result["dataset"]
    return plot_modes(
        Path(plot_dir) / f"neural_{name}_auc.png",
        result["summary"],
        f"CTR models on {name}: test AUC by feature mode ({len(result['seeds'])} seed(s))",
    )
