"""What a sequential run reports per model: metrics on all users and per test slice, the saved
test ranking (utils/evaluation/predictions.py), and the plots."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from src.sequential.presets import PUBLISHED
from src.sequential.runs import ModelRun
from utils.data.slices import slice_report
from utils.evaluation.metrics import next_item_metrics
from utils.evaluation.predictions import id_strings
from utils.reporting.figures import grouped_bar_plot, pyplot, save_figure


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
