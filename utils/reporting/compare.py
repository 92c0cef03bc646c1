"""A run's headline metrics beside the study's (``summarize_results.py --compare RUN_DIR``).

A run is only compared with reference files of the same kind, data set and (sequential runs)
protocol, model by model: an ML-100K run is never set beside Beauty's numbers.
"""

from __future__ import annotations

from typing import Any

from utils.reporting.catalog import Found
from utils.reporting.results import dig
from utils.reporting.tables import markdown_table

POINTWISE = ("rmse", "mae", "auc", "logloss", "pr_auc")
RANKING = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")
SEQUENTIAL = ("recall@10", "ndcg@10", "mrr@20")


def _means(block: Any, metrics: tuple[str, ...]) -> dict[str, float]:
    """``{metric: mean}`` of a mean ± std block (``{metric: {mean, std, values}}``)."""
    out = {}
    for m in metrics:
        mean = dig(block, m, "mean")
        if isinstance(mean, (int, float)):
            out[m] = float(mean)
    return out


def headline(f: Found) -> dict[str, dict[str, float]]:
    """``{model: {metric: value}}``: the numbers a results file leads with (means over seeds)."""
    r = f.result
    if f.kind == "mf":
        return {
            name: {
                **_means(dig(m, "mean_std", "test", "overall"), POINTWISE),
                **_means(dig(m, "mean_std", "test", "ranking", "overall"), RANKING),
            }
            for name, m in r["models"].items()
        }
    if f.kind == "neural":
        return {
            f"{name} ({mode})": _means(dig(m, "mean_std", "test", "overall"), POINTWISE)
            for mode, block in r["modes"].items()
            for name, m in block["models"].items()
        }
    if f.kind in ("tiger", "sequential"):
        return {
            name: {k: float(m["test"][k]) for k in SEQUENTIAL if k in m["test"]}
            for name, m in r["models"].items()
        }
    return {}


def same_task(a: Found, b: Found) -> bool:
    """Comparable: the same kind of run on the same data set (and protocol, for sequential)."""
    return a.kind == b.kind and a.dataset == b.dataset and a.protocol == b.protocol


def compare_runs(run: list[Found], reference: list[Found]) -> str:
    """Markdown: for each results file of the run, its models' headline metrics beside the first
    reference file of the same task that has the model, and the difference."""
    if not run:
        return "no results file in the run folder"
    sections = []
    for f in run:
        refs = [r for r in reference if same_task(f, r)]
        rows = []
        for model, metrics in headline(f).items():
            ref = next((r for r in refs if model in headline(r)), None)
            theirs = headline(ref)[model] if ref else {}
            for metric, value in metrics.items():
                before = theirs.get(metric)
                delta = None if before is None else f"{value - before:+.4f}"
                source = ref.path.name if ref else "no reference"
                rows.append([model, metric, before, value, delta, source])
        title = f"**{f.path}** ({f.kind}, {f.dataset}" + (
            f", {f.protocol} protocol)**" if f.protocol else ")**"
        )
        header = ["model", "metric", "reference", "this run", "Δ", "reference file"]
        sections.append(title + "\n\n" + markdown_table(header, rows))
    return "\n\n".join(sections)
