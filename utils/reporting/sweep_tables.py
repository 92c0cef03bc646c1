"""The decoding sweep's Markdown tables (benchmarks/sweep_decoding.py: TIGER's beam widths, the
hybrids of TIGER and SASRec, the ensemble of TIGER on two ID sets): per protocol and set of
models, each variant's test Recall@10 and NDCG@10 under every ranking rule as mean ± std over
the seeds' sweep files, with the weights validation chose. Printed by ``summarize_results.py``;
the README's section 5 tables are these."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from utils.reporting.results import RUN_RECORD, aggregate_seeds, dig
from utils.reporting.tables import markdown_table

SWEEP_SCRIPT = "sweep_decoding.py"
SWEEP_METRICS = ("recall@10", "ndcg@10")


def is_decoding_sweep(result: Any) -> bool:
    """Whether a JSON document is a benchmarks/sweep_decoding.py results file."""
    script = dig(result, RUN_RECORD, "script") if isinstance(result, dict) else None
    return isinstance(script, str) and Path(script).name == SWEEP_SCRIPT


def _chosen(runs: list[dict[str, Any]], variant: str, rule: str) -> str:
    """The distinct weights the seeds chose for ``variant`` under ``rule`` ('–' for none)."""
    ws = sorted({dig(r, "variants", variant, "chosen_w", rule) for r in runs} - {None})
    return ", ".join(f"{w:g}" for w in ws) or "–"


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
