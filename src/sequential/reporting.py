"""What a sequential run reports per model: metrics on all users and per test slice under each
ranking rule, the saved test ranking (utils/evaluation/predictions.py), and the plots."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from src.sequential.presets import PUBLISHED
from src.sequential.ranking import RuleRanks
from src.sequential.runs import ModelRun
from utils.data.slices import slice_report
from utils.evaluation.metrics import next_item_metrics
from utils.evaluation.predictions import id_strings
from utils.reporting.figures import bar_panels, grouped_bar_plot, pyplot, save_figure
from utils.reporting.labels import model_label


def test_predictions(
    run: ModelRun, user_ids: np.ndarray, item_ids: np.ndarray, test_users: Tensor
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, columns) of a model's saved test ranking (utils/predictions.py), in original IDs."""
    lists, beam = run.test_lists, run.name.startswith("tiger")
    columns = {
        "users": id_strings(user_ids, test_users.cpu().numpy()),
        **{k: id_strings(item_ids, v) for k, v in lists.items() if k.endswith("items")},
        **{k: v for k, v in lists.items() if k.endswith("scores")},
    }
    rules = list(run.ranks)
    meta = {
        "tie_rule": "list order" if beam else "pessimistic",
        "ranking_rules": rules,
        "note": (
            "beam search output, best first; scores: summed log-probabilities"
            if beam
            else "top-k of the full-catalogue scores; ties count against the target"
        )
        + f"; items: the {rules[0]} ranking"
        + "".join(f"; {r}_items: the {r} ranking" for r in rules[1:])
        + (
            "; cold_share_items: the cold-start ranking's top 10"
            if "cold_share_items" in lists
            else ""
        ),
    }
    return meta, columns


def _rule_report(rule: RuleRanks, test_masks: dict[str, np.ndarray]) -> dict[str, Any]:
    """Validation and test metrics and the test slices of one ranking rule."""
    cold = test_masks["cold_items"]
    return {
        "val": next_item_metrics(rule.val) if len(rule.val) else None,
        "test": next_item_metrics(rule.test),
        "test_slices": slice_report(lambda m: next_item_metrics(rule.test[m]), test_masks),
        "cold_start_test_recall@10": float(np.mean(rule.test[cold] < 10)) if cold.any() else None,
    }


def run_report(run: ModelRun, test_masks: dict[str, np.ndarray]) -> dict[str, Any]:
    """Metrics on all validation and test users, test slices, curves and timing for one model.

    The headline rule's metrics sit at the top (``val``, ``test``, ``test_slices``); every other
    rule's under its own name (``filtered``)."""
    (headline, first), *others = run.ranks.items()
    return {
        "ranking": headline,
        **_rule_report(first, test_masks),
        **{name: _rule_report(r, test_masks) for name, r in others},
        "n_val_users": len(first.val),
        "n_test_users": len(first.test),
        "best_epoch": run.train.best_epoch,
        "stopped_early": run.train.stopped_early,
        "epochs_run": len(run.train.history),
        "curve": run.train.history,
        "timing": run.timing,
        **run.extra,
    }


def plot_results(results: dict[str, Any], plot_dir: str, name: str) -> list[str]:
    """Validation curves of the trained models, test metrics beside the published numbers
    of the same protocol (Beauty only) and test metrics by item popularity, as
    ``<plot_dir>/<name>_val_curve.png``, ``<name>_test.png`` and ``<name>_slices.png``: named
    after the results file (and its data set, where the name lacks it), so two runs never
    overwrite each other's plots."""
    plt = pyplot()
    models, protocol = results["models"], results["protocol"]
    dataset = results["dataset"]
    stem = f"{plot_dir}/{name}" if dataset in name else f"{plot_dir}/{name}_{dataset}"
    paths = []
    curves = {n: rep for n, rep in models.items() if any("val_ndcg@10" in h for h in rep["curve"])}
    if curves:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, rep in curves.items():
            ax.plot(
                [h["epoch"] for h in rep["curve"]],
                [h.get("val_ndcg@10", np.nan) for h in rep["curve"]],
                marker="o",
                label=f"{model_label(name)} ({rep['curve_val_users']} val users)",
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation NDCG@10")
        ax.set_title(f"{results['dataset']}: validation NDCG@10 per epoch ({protocol} protocol)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        paths.append(str(save_figure(fig, f"{stem}_val_curve.png")))

    published = PUBLISHED.get(protocol, {}) if dataset == "beauty" else {}
    metrics = ["recall@5", "ndcg@5", "recall@10", "ndcg@10"]
    if published:
        metrics = [m for m in metrics if all(m in p for p in published.values())]
    series = {
        f"{model_label(n)} (ours, {rep['ranking']}, seed {results['seed']})": (
            [rep["test"][m] for m in metrics],
            None,
        )
        for n, rep in models.items()
    }
    series.update(
        {f"{n} (published)": ([p[m] for m in metrics], None) for n, p in published.items()}
    )
    path = f"{stem}_test.png"
    grouped_bar_plot(
        path,
        metrics,
        series,
        f"{results['dataset']} test, full-catalogue ranking ({protocol} protocol)",
        "value",
    )
    paths.append(path)
    paths.append(str(plot_slices([results], f"{stem}_slices.png")))
    return paths


ITEM_SLICES = ("item_head", "item_mid", "item_tail")


def _contenders(models: list[str]) -> str:
    """What a figure compares, from the models it holds: TIGER only where TIGER is in it."""
    tigers = [m for m in models if m.startswith("tiger")]
    if not tigers:
        return "item-ID models"
    return "TIGER vs item-ID models" if len(tigers) < len(models) else "TIGER"


def plot_slices(results: list[dict[str, Any]], path: str) -> Path:
    """Test Recall@10 and NDCG@10 of every model by the target item's popularity (head, mid,
    tail of the training counts), from the results files of one data set, protocol and seed
    (TIGER and the ID-based models are run in two processes, so in two files): where TIGER's
    semantic IDs win and where they lose against item IDs. One run each: no error bars."""
    first = results[0]
    reports = {name: rep for r in results for name, rep in r["models"].items()}
    sizes = next(iter(reports.values()))["test_slices"]
    groups = [f"{s.removeprefix('item_')} (n={sizes[s]['n']})" for s in ITEM_SLICES]
    panels = [
        (
            groups,
            {
                # a slice without test users (small data) has no metrics: no bar
                model_label(name): (
                    [rep["test_slices"][s].get(metric, math.nan) for s in ITEM_SLICES],
                    None,
                )
                for name, rep in reports.items()
            },
            f"test {metric}",
            None,
            metric,
        )
        for metric in ("recall@10", "ndcg@10")
    ]
    ranking = next(iter(reports.values()))["ranking"]
    title = (
        f"{first['dataset']} test by the target item's popularity ({first['protocol']} "
        f"protocol, {ranking} ranking, seed {first['seed']}): {_contenders(list(reports))}"
    )
    return bar_panels(path, panels, title)
