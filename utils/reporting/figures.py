"""Figures: matplotlib without a display, PNGs written atomically by rank 0 only, and the bar plots
the scripts draw.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from utils.runtime import distributed
from utils.runtime.io import atomic_path


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write ``fig`` as a PNG atomically (no half-written image on failure) and close it; under
    torchrun only rank 0 writes."""
    if distributed.is_main():
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, format="png", bbox_inches="tight")
    pyplot().close(fig)
    return Path(path)


def grouped_bar_plot(
    path: str | Path,
    groups: list[str],
    series: dict[str, tuple[list[float], list[float] | None]],
    title: str,
    ylabel: str,
    reference: dict[str, list[float]] | None = None,
    ylim: tuple[float, float] | None = None,
) -> Path:
    """Bars per group (x axis) and series (colours), with error bars; optional reference markers.

    ``series`` maps a label to (means, stds) aligned with ``groups``; stds None (a single
    run or a published number) draws no error bar, rather than a misleading zero one; ``ylim``
    zooms the value axis when all values sit in a narrow band (say so in the title).
    """
    plt = pyplot()
    n = max(1, len(series))
    width = 0.8 / n
    x = np.arange(len(groups))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(groups) * math.sqrt(n)), 4.0))
    for k, (label, (means, stds)) in enumerate(series.items()):
        ax.bar(
            x + (k - (n - 1) / 2) * width,
            means,
            width,
            yerr=stds,
            capsize=3 if stds else 0,
            label=label,
        )
    for label, values in (reference or {}).items():
        ax.scatter(x, values, marker="_", s=900, color="black", zorder=3, label=label)
    ax.set_xticks(x, groups, rotation=20 if len(groups) > 4 else 0)
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_overall_vs_cold(path: str | Path, models: dict[str, Any], metric: str, title: str) -> Path:
    """Bar plot of ``metric`` per model, overall and on cold items, mean and std over seeds."""
    series: dict[str, tuple[list[float], list[float]]] = {
        "overall": ([], []),
        "cold items": ([], []),
    }
    for name in models:
        test = models[name]["mean_std"]["test"]
        # Ranking metrics sit in the test report's "ranking" block, pointwise ones at its top.
        block = test["ranking"] if metric not in test["overall"] and "ranking" in test else test
        for label, stats in (
            ("overall", block["overall"]),
            ("cold items", block["slices"]["cold_items"]),
        ):
            value = stats.get(metric, {"mean": float("nan"), "std": 0.0})
            series[label][0].append(value["mean"])
            series[label][1].append(value["std"])
    return grouped_bar_plot(path, list(models), series, title, f"test {metric}")
