"""The verdicts of a results folder in words: per task, which model won on its headline metric
and by how much, as one table a reader takes in at a glance (the demo ends with it; the detailed
tables stay in summarize_results.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utils.reporting.catalog import Found, find_results, read_documents
from utils.reporting.labels import model_label
from utils.reporting.results import dig
from utils.reporting.sequential_tables import row_key, row_label
from utils.reporting.tables import markdown_table
from utils.runtime.errors import DataError


@dataclass(frozen=True)
class Verdict:
    """One task's contest: (readable model name, score) pairs and which way is better."""

    task: str
    metric: str
    scores: list[tuple[str, float]]
    lower_is_better: bool = False

    def ranked(self) -> list[tuple[str, float]]:
        return sorted(self.scores, key=lambda s: s[1], reverse=not self.lower_is_better)

    def row(self) -> list[str]:
        (winner, best), *rest = self.ranked()
        others = ", ".join(f"{name} {score:.4f}" for name, score in rest) or "–"
        return [self.task, self.metric, f"**{winner}** {best:.4f}", others]


def _sequential(found: list[Found]) -> list[Verdict]:
    """Next-item prediction: every model of the same data set, protocol and ranking (TIGER and
    the ID models come from two files), by test Recall@10; the seeds of one row of the protocol
    tables (same preset and IDs) are averaged, runs with overrides left out as those tables do."""
    scores: dict[tuple[str, str, str], dict[tuple, tuple[str, list[float]]]] = {}
    for f in found:
        r = f.result
        if r.get("overrides"):
            continue
        for model, m in r["models"].items():
            label = row_label(model, r, readable=True)
            for position, ranking in enumerate(r.get("rankings", [m.get("ranking", "paper")])):
                block = m if position == 0 else m[ranking]
                contest = scores.setdefault((r["dataset"], r.get("protocol", "cold"), ranking), {})
                contest.setdefault(row_key(model, r), (label, []))[1].append(
                    block["test"]["recall@10"]
                )
    return [
        Verdict(
            f"next item, {dataset} (`{protocol}` protocol, {ranking} ranking)",
            "test Recall@10",
            [(label, sum(v) / len(v)) for label, v in rows.values()],
        )
        for (dataset, protocol, ranking), rows in scores.items()
    ]


def _mf(result: dict[str, Any]) -> Verdict:
    """Ratings: RMSE (lower is better) on explicit data, AUC of the implicit ranking otherwise."""
    explicit = result["objective"] == "explicit"
    metric = "rmse" if explicit else "auc"
    scores = [
        (model_label(name), dig(m, "mean_std", "test", "overall", metric, "mean"))
        for name, m in result["models"].items()
        if name != "global_mean"  # a constant: a floor, not a contender
    ]
    task = f"{'ratings' if explicit else 'preference'} (MF), {result['dataset']}"
    return Verdict(task, f"test {metric.upper()}", scores, lower_is_better=explicit)


def _ctr(result: dict[str, Any]) -> Verdict:
    """Click-through (liked or not): test AUC of every model and item-feature mode."""
    scores = [
        (
            f"{model_label(model)} on {model_label(mode)}",
            dig(m, "mean_std", "test", "overall", "auc", "mean"),
        )
        for mode, block in result["modes"].items()
        for model, m in block["models"].items()
    ]
    objective = result["labelling"]["objective"]
    return Verdict(f"CTR ({objective}), {result['dataset']}", "test AUC", scores)


def verdicts(found: list[Found]) -> list[Verdict]:
    """The contests of a results folder, in the pipeline's order."""
    out = _sequential([f for f in found if f.kind == "sequential"])  # not the pre-protocol files
    out += [_mf(f.result) for f in found if f.kind == "mf"]
    out += [_ctr(f.result) for f in found if f.kind == "neural"]
    return out


def winners_table(found: list[Found]) -> str | None:
    """One row per task: the winner in words with its score, then the others, best first."""
    rows = [v.row() for v in verdicts(found) if v.scores]
    if not rows:
        return None
    return "**Who won** (each task's headline test metric)\n\n" + markdown_table(
        ["task", "measured by", "winner", "the others, best first"], rows
    )


def winners(results_dir: Path, only: list[Path] | None = None) -> str:
    """The winners table of the results files in ``results_dir`` (``only``: of these files, so
    an earlier run's files in the folder never count as more seeds)."""
    found = find_results(results_dir, read_documents(results_dir))
    if only is not None:
        found = [f for f in found if f.path.resolve() in {p.resolve() for p in only}]
    table = winners_table(found)
    if table is None:
        raise DataError(f"no results files in {results_dir}/: nothing won anything yet")
    return table
