"""Aggregating repeated runs and drawing the comparison plots the result scripts share."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from utils.io import atomic_path


def aggregate_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation of every numeric leaf across runs with the same structure.

    ``[{'auc': .8, 'slices': {'cold': {'n': 5, 'auc': .6}}}, ...]`` becomes
    ``{'auc': {'mean': .., 'std': .., 'values': [..]}, 'slices': {'cold': {'n': {...}, 'auc': {...}}}}``.
    Standard deviation is the sample one (ddof=1) and 0 for a single run.
    """
    first = runs[0]
    out: dict[str, Any] = {}
    for key, value in first.items():
        values = [r.get(key) for r in runs]
        if isinstance(value, dict):
            out[key] = aggregate_seeds([v for v in values if isinstance(v, dict)])
        elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            arr = np.array([float(v) for v in values if v is not None], dtype=float)
            finite = arr[~np.isnan(arr)]
            mean = float(finite.mean()) if len(finite) else float("nan")
            std = float(finite.std(ddof=1)) if len(finite) > 1 else 0.0
            out[key] = {"mean": mean, "std": std, "values": arr.tolist()}
    return out


def grouped_bar_plot(
    path: str | Path,
    groups: list[str],
    series: dict[str, tuple[list[float], list[float] | None]],
    title: str,
    ylabel: str,
    reference: dict[str, list[float]] | None = None,
    ylim: tuple[float, float] | None = None,
) -> None:
    """Bars per group (x axis) and series (colours), with error bars; optional reference markers.

    ``series`` maps a label to (means, stds) aligned with ``groups``; stds None (a single
    run or a published number) draws no error bar, rather than a misleading zero one; ``ylim``
    zooms the value axis when all values sit in a narrow band (say so in the title).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(1, len(series))
    width = 0.8 / n
    x = np.arange(len(groups))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(groups) * math.sqrt(n)), 4.0))
    for k, (label, (means, stds)) in enumerate(series.items()):
        ax.bar(x + (k - (n - 1) / 2) * width, means, width, yerr=stds, capsize=3 if stds else 0, label=label)
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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
