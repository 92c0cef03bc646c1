"""The Markdown tables of the evaluation-only benchmarks of section 5, printed by
``summarize_results.py``; the README's section 5 tables are these. The decoding sweep
(benchmarks/sweep_decoding.py: TIGER's beam widths, the hybrids of TIGER and SASRec, the ensemble
of TIGER on two ID sets): per protocol and set of models, each variant's test Recall@10 and
NDCG@10 under every ranking rule as mean ± std over the seeds' sweep files, with the weights
validation chose. The ensemble's cold start (benchmarks/cold_ensemble.py): Recall@10 with the cold
share on cold-target, warm-target and all test users, beside the plain ranking."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from utils.reporting.results import RUN_RECORD, aggregate_seeds, dig
from utils.reporting.tables import markdown_table

SWEEP_SCRIPT = "sweep_decoding.py"
COLD_SCRIPT = "cold_ensemble.py"
SWEEP_METRICS = ("recall@10", "ndcg@10")


def written_by(result: Any, script: str) -> bool:
    """Whether a JSON document is a results file of the script named ``script``."""
    name = dig(result, RUN_RECORD, "script") if isinstance(result, dict) else None
    return isinstance(name, str) and Path(name).name == script


def is_decoding_sweep(result: Any) -> bool:
    """Whether a JSON document is a benchmarks/sweep_decoding.py results file."""
    return written_by(result, SWEEP_SCRIPT)


def _distinct(weights: Iterable[float | None]) -> str:
    """The distinct weights, smallest first ('–' for none)."""
    return ", ".join(f"{w:g}" for w in sorted(set(weights) - {None})) or "–"


def _chosen(runs: list[dict[str, Any]], variant: str, rule: str) -> str:
    """The distinct weights the seeds chose for ``variant`` under ``rule``."""
    return _distinct(dig(r, "variants", variant, "chosen_w", rule) for r in runs)


def decoding_tables(sweeps: list[dict[str, Any]]) -> list[str]:
    """One table per (dataset, protocol, ID sets) group of complete sweeps (all users): a row per
    variant, its test metrics per ranking rule over the group's seeds, the chosen w per rule and
    the variant's seconds per seed."""
    groups: dict[tuple[str, str, tuple[str, ...]], list[dict[str, Any]]] = {}
    for s in sweeps:
        if s.get("users") != "all":
            continue
        ids = tuple(f"{k} {v}" for k, v in sorted((s.get("semantic_ids") or {}).items()))
        groups.setdefault((s["dataset"], s["protocol"], ids), []).append(s)
    tables = []
    for (dataset, protocol, ids), runs in groups.items():
        runs = sorted(runs, key=lambda r: r["seed"])
        rules = runs[0]["rankings"]
        variants = [v for v in runs[0]["variants"] if all(v in r["variants"] for r in runs)]
        header = ["variant"] + [
            f"`{rule}` {m.replace('recall', 'Recall').replace('ndcg', 'NDCG')}"
            for rule in rules
            for m in SWEEP_METRICS
        ]
        header += [f"w chosen ({' / '.join(rules)})", "s per seed"]
        rows = []
        for v in variants:
            agg = aggregate_seeds([{"test": r["variants"][v]["test"]} for r in runs])["test"]
            seconds = sum(r["variants"][v]["seconds"] for r in runs) / len(runs)
            rows.append(
                [v]
                + [agg[rule][m] for rule in rules for m in SWEEP_METRICS]
                + [" / ".join(_chosen(runs, v, rule) for rule in rules), f"{seconds:.0f}"]
            )
        seeds = ", ".join(str(r["seed"]) for r in runs)
        tables.append(
            f"**{dataset}, decoding sweep, `{protocol}` protocol** "
            f"(`benchmarks/sweep_decoding.py`, TIGER on IDs {'; '.join(ids) or 'of the data set'}; "
            f"test set, seeds {seeds}, mean ± std; "
            f"w: {runs[0].get('w_selection', '–')})\n\n" + markdown_table(header, rows)
        )
    return tables


def cold_ensemble_tables(runs: list[dict[str, Any]]) -> list[str]:
    """One table per data set of complete benchmarks/cold_ensemble.py runs (all users): a row per
    variant, test Recall@10 with the cold share on cold-target, warm-target and all users, and the
    plain ranking's Recall@10 and NDCG@10, mean ± std over the seeds."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        if r.get("users") == "all":
            groups.setdefault(r["dataset"], []).append(r)
    header = ["variant", "cold targets", "warm targets", "all targets", "plain Recall@10"]
    header += ["plain NDCG@10", "w"]
    tables = []
    for dataset, group in groups.items():
        group = sorted(group, key=lambda r: r["seed"])
        rows = []
        for v in group[0]["variants"]:
            agg = aggregate_seeds([r["variants"][v] for r in group if v in r["variants"]])
            shared, plain = agg["cold_share"], agg["plain"]["all_users"]
            rows.append(
                [v]
                + [shared[f"{who}_users"]["recall@10"] for who in ("cold_target", "warm_target")]
                + [shared["all_users"]["recall@10"], plain["recall@10"], plain["ndcg@10"]]
                + [_distinct(r["variants"][v].get("w") for r in group)]
            )
        first = group[0]
        tables.append(
            f"**{dataset}, cold start of the ensemble, `cold` protocol** "
            f"(`benchmarks/cold_ensemble.py`; test set, seeds "
            f"{', '.join(str(r['seed']) for r in group)}, mean ± std; Recall@10 with "
            f"{first['cold_share']:.0%} of the top 10 kept for cold items, "
            f"{first['n_cold_items']} cold items; w: {first.get('w_selection', '–')})\n\n"
            + markdown_table(header, rows)
        )
    return tables
