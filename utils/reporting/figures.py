"""Figures: matplotlib without a display, PNGs written atomically by rank 0 only, and the bar plots
the scripts draw.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from utils.reporting.labels import model_label
from utils.reporting.results import dig
from utils.runtime import distributed
from utils.runtime.io import atomic_write_bytes


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
        png = io.BytesIO()
        fig.savefig(png, dpi=120, format="png", bbox_inches="tight")
        atomic_write_bytes(path, png.getvalue())
    pyplot().close(fig)
    return Path(path)


Series = dict[str, tuple[list[float], list[float] | None]]


def zoomed_ylim(series: Series, share: float = 0.25) -> tuple[float, float] | None:
    """A value axis that does not start at 0 when every bar is positive and the bars differ by
    less than ``share`` of the largest (RMSE 0.93 vs 0.95: from 0 the difference is invisible);
    None otherwise, where a zero-based axis is the honest one."""
    values = np.array(
        [
            v + sign * (s or 0.0)
            for means, stds in series.values()
            for v, s in zip(means, stds or [0.0] * len(means))
            for sign in (-1, 1)
        ],
        dtype=float,
    )
    values = values[np.isfinite(values)]
    if not len(values) or values.min() <= 0:
        return None
    lo, hi = float(values.min()), float(values.max())
    if hi - lo >= share * hi:
        return None
    pad = max(hi - lo, 1e-3 * hi) * 0.3
    return max(0.0, lo - pad), hi + pad


def _spread(stds: list[float] | None) -> list[float] | None:
    """Error bars only where there is a spread: none for a single run (a std None, zero or NaN;
    NaN draws no bar), never a misleading zero-length one."""
    if stds is None or not any(s is not None and np.isfinite(s) and s > 0 for s in stds):
        return None
    return [s if s is not None and np.isfinite(s) and s > 0 else np.nan for s in stds]


def _bars(
    ax: Any,
    groups: list[str],
    series: Series,
    ylabel: str,
    reference: dict[str, list[float]] | None = None,
    ylim: tuple[float, float] | None = None,
) -> None:
    """One axis of grouped bars: a group per x position, a colour per series."""
    n = max(1, len(series))
    width = 0.8 / n
    x = np.arange(len(groups))
    for k, (label, (means, stds)) in enumerate(series.items()):
        spread = _spread(stds)
        ax.bar(
            x + (k - (n - 1) / 2) * width,
            means,
            width,
            yerr=spread,
            capsize=3 if spread else 0,
            label=label,
        )
    for label, values in (reference or {}).items():
        ax.scatter(x, values, marker="_", s=900, color="black", zorder=3, label=label)
    ax.set_xticks(x, groups, rotation=20 if len(groups) > 4 else 0)
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def grouped_bar_plot(
    path: str | Path,
    groups: list[str],
    series: Series,
    title: str,
    ylabel: str,
    reference: dict[str, list[float]] | None = None,
    ylim: tuple[float, float] | None = None,
) -> Path:
    """Bars per group (x axis) and series (colours), with error bars; optional reference markers.

    ``series`` maps a label to (means, stds) aligned with ``groups``; stds None, all zero (a
    single run) or a published number draws no error bar, rather than a misleading zero one;
    ``ylim`` zooms the value axis when all values sit in a narrow band (say so in the title).
    """
    return bar_panels(path, [(groups, series, ylabel, ylim, "")], title, reference)


Panel = tuple[list[str], Series, str, tuple[float, float] | None, str]


def bar_panels(
    path: str | Path,
    panels: list[Panel],
    title: str,
    reference: dict[str, list[float]] | None = None,
) -> Path:
    """Grouped bars in side-by-side panels, one per (groups, series, ylabel, ylim, panel title):
    metrics of different scales (recall ~0.05, AUC ~0.8) each on their own axis."""
    plt = pyplot()
    widths = [max(1, len(groups)) * math.sqrt(max(1, len(series))) for groups, series, *_ in panels]
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(max(6.0, 1.2 * sum(widths)), 4.0),
        squeeze=False,
        gridspec_kw={"width_ratios": widths},
    )
    for ax, (groups, series, ylabel, ylim, panel_title) in zip(axes[0], panels):
        _bars(ax, groups, series, ylabel, reference, ylim)
        if panel_title:
            ax.set_title(panel_title, fontsize=10)
    if len(panels) == 1:
        axes[0][0].set_title(title)
    else:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


# MF's plotted metrics by objective: one file each (mf_<data>_<metric>.png).
MF_PLOT_METRICS = {"explicit": ("rmse", "auc"), "implicit": ("auc", "recall@20")}


def plot_overall_vs_cold(path: str | Path, models: dict[str, Any], metric: str, title: str) -> Path:
    """Bar plot of ``metric`` per model, overall and on cold items, mean and std over seeds (no
    error bars for one seed); the axis is zoomed when the bars differ little (RMSE, MAE)."""
    series: dict[str, tuple[list[float], list[float] | None]] = {
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
    if all(len(m.get("seeds", {})) <= 1 for m in models.values()):
        series = {label: (means, None) for label, (means, _) in series.items()}
    ylim = zoomed_ylim(series)
    if ylim is not None:
        title += "\n(axis zoomed to the range of the values)"
    groups = [model_label(name) for name in models]
    return grouped_bar_plot(path, groups, series, title, f"test {metric}", ylim=ylim)


def plot_mf_results(result: dict[str, Any], plot_dir: str | Path) -> list[Path]:
    """The MF plots of a results file (mf_train_eval.py's, or one read back to redraw them)."""
    models, objective = result["models"], result["objective"]
    seeds = max(len(m.get("seeds", {})) for m in models.values())
    title = (
        f"MF on {result['dataset']} ({objective}, {result['split']['kind']} split, {seeds} seed(s))"
    )
    return [
        plot_overall_vs_cold(
            Path(plot_dir) / f"mf_{result['dataset']}_{m.replace('@', '_at_')}.png",
            models,
            m,
            title,
        )
        for m in MF_PLOT_METRICS[objective]
    ]


# The quantizer comparison's bars: recall panel and AUC panel (their scales differ tenfold).
QUANTIZER_PANELS = (
    (
        "Recall",
        (
            ("TIGER R@10", ("tiger", "mean_std", "test", "recall@10")),
            (
                "TIGER cold R@10",
                ("tiger", "mean_std", "cold_share", "cold_target_users", "recall@10"),
            ),
            ("MF R@20", ("mf_semantic", "mean_std", "ranking", "overall", "recall@20")),
            (
                "MF cold R@20",
                ("mf_semantic", "mean_std", "ranking", "slices", "cold_items", "recall@20"),
            ),
        ),
    ),
    (
        "AUC",
        (
            ("DeepFM AUC", ("deepfm_semantic", "mean_std", "overall", "auc")),
            ("DeepFM cold AUC", ("deepfm_semantic", "mean_std", "slices", "cold_items", "auc")),
        ),
    ),
)


def plot_quantizers(comparison: dict[str, Any], path: str | Path) -> Path:
    """benchmarks/compare_quantizers.py's figure: per headline metric (overall and cold) a bar per
    quantizer, ± the seed std where there are several seeds; recall and AUC in their own panels,
    the AUC axis zoomed to its narrow band."""
    panels: list[Panel] = []
    for ylabel, metrics in QUANTIZER_PANELS:
        series: Series = {}
        for q, block in comparison["quantizers"].items():
            cells = [dig(block, *where) for _, where in metrics]
            series[q] = ([c["mean"] for c in cells], [c.get("std", 0.0) for c in cells])
        panels.append(([m for m, _ in metrics], series, ylabel, zoomed_ylim(series), ""))
    return bar_panels(
        path,
        panels,
        "Beauty test: semantic IDs from each quantizer (mean ± std over seeds; one seed: no bar)",
    )
