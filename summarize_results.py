"""Print the headline tables of every results file in results/ as Markdown (what the README shows).

  python summarize_results.py                        # every results file found in results/
  python summarize_results.py --results-dir other/   # another results folder
  python summarize_results.py --compare runs/X/      # a run's headline metrics beside the study's
  python summarize_results.py --compare-committed    # results/ beside git's copy: what moved
  python summarize_results.py --verify               # recompute the metrics from saved predictions
  python summarize_results.py --winners              # who won each task, in words
  python summarize_results.py --paired 'A_seed*.json:tiger_item' 'B_seed*.json:sasrec'
                                                     # is A's lead real? (paired per user)
  python summarize_results.py --plots                # redraw the plots from the results files
  python summarize_results.py --plots sequential     # the sequential ones (make sequential-seed)

A results file is recognised by its content (the script its run record names), not its name, so
a renamed file or a run folder's results read the same. The tables come from
utils/reporting/tables.py and sequential_tables.py, the same functions the scripts log their tables
with.

--verify exit codes: 0 every checked number matches; 1 a mismatch (or a damaged results file);
2 nothing was checked at all; 3 predictions missing (not a failure with --allow-missing, but
each such file is listed with the command that writes its predictions).
"""

from __future__ import annotations

import utils.runtime.preflight  # noqa: F401  (first: a missing package is one line)

# isort: split

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from src.pointwise.ctr_experiment import plot_ctr_results
from src.semantic_ids.plots import plot_report
from src.sequential.reporting import plot_results, plot_slices
from utils.evaluation.paired import Side, paired_table
from utils.evaluation.verify import FolderReport, verify_found
from utils.reporting.catalog import Found, find_results, read_documents
from utils.reporting.compare import committed_results, compare_runs
from utils.reporting.figures import plot_mf_results, plot_quantizers
from utils.reporting.sequential_tables import (
    in_protocol_tables,
    next_item_table,
    protocol_tables,
    row_key,
    says_more_than_protocol_tables,
    tiger_seeds_table,
    tiger_table,
)
from utils.reporting.story import winners
from utils.reporting.sweep_tables import (
    COLD_SCRIPT,
    cold_ensemble_tables,
    decoding_tables,
    is_decoding_sweep,
    written_by,
)
from utils.reporting.tables import ctr_table, mf_table, semantic_ids_table
from utils.runtime.cli import HelpFormatter
from utils.runtime.errors import DataError, add_debug_flag, run_script
from utils.runtime.io import read_json

EXIT_OK, EXIT_MISMATCH, EXIT_NOTHING_CHECKED, EXIT_MISSING = 0, 1, 2, 3

RENDER: dict[str, Callable[[dict[str, Any], Path], str]] = {
    "semantic_ids": lambda r, p: semantic_ids_table(r),
    "mf": lambda r, p: mf_table(r),
    "neural": lambda r, p: ctr_table(r),
    "tiger": lambda r, p: tiger_table(r, p.name),
    "sequential": lambda r, p: tiger_table(r, p.name),
}


def section(f: Found) -> str:
    """One file's section; a file whose layout differs from its kind's is refused by name."""
    try:
        return RENDER[f.kind](f.result, f.path)
    except (KeyError, TypeError, IndexError, AttributeError, StopIteration) as exc:
        raise DataError(
            f"{f.path}: not a results file in the expected layout ({type(exc).__name__}: {exc}); "
            "re-run the script that writes it, or move it out of the results folder"
        ) from exc


def summarize(results_dir: Path) -> str:
    """Every section for the results files in ``results_dir``, then TIGER's mean ± std over
    seeds and its full metric set by slice, then the protocols' tables (which hold the
    sequential runs whose own tables would only repeat them)."""
    documents = read_documents(results_dir)
    found = find_results(results_dir, documents)
    # a sequential run whose every number is in the protocol tables below is not printed twice
    sections = [
        section(f)
        for f in found
        if f.kind != "sequential" or says_more_than_protocol_tables(f.result)
    ]
    tiger_runs = [f.result for f in found if f.kind == "tiger"]
    sections += [t for t in (tiger_seeds_table(tiger_runs), next_item_table(tiger_runs)) if t]
    sections += protocol_tables([f.result for f in found if f.kind == "sequential"])
    sections += decoding_tables([d for _, d in documents if is_decoding_sweep(d)])
    sections += cold_ensemble_tables([d for _, d in documents if written_by(d, COLD_SCRIPT)])
    if not sections:
        raise DataError(
            f"no results files in {results_dir}/: run `make all` (or the *_train_eval.py scripts) "
            "first"
        )
    return "\n\n".join(sections)


def print_report(report: FolderReport) -> None:
    """One line per file (ok / FAIL / MISSING), every mismatch, then the totals."""
    for path, checks in report.checked.items():
        bad = [c for c in checks if not c.ok]
        status = "FAIL" if bad else "ok  "
        print(f"{status} {path}: {len(checks) - len(bad)}/{len(checks)} metrics match, recomputed")
        for c in bad:
            print(
                f"     {c.model}, {c.metric}: reported {c.reported!r}, recomputed {c.recomputed!r}"
            )
    for path, why in report.refused.items():
        print(f"FAIL {path}: {why}")
    for path, (why, command) in report.missing.items():
        extent = "partly checked (above)" if path in report.checked else "not checked"
        print(f"MISSING {path}: {extent}, {why}; its predictions come from: {command}")
    print(
        f"{report.n_checked} metrics checked in {len(report.checked)} file(s), "
        f"{len(report.mismatches)} mismatch(es), {len(report.refused)} damaged file(s), "
        f"{len(report.missing)} file(s) without predictions here"
    )


def verify(results_dir: Path, allow_missing: bool = False, require: list[str] | None = None) -> int:
    """Recompute every headline metric of the results files in ``results_dir`` from their saved
    predictions; returns the exit code (module docstring). ``require``: results files that must
    be checked even with ``allow_missing`` (what the main job has just written)."""
    found = find_results(results_dir)
    report = verify_found(found)
    print_report(report)
    done = {Path(p).resolve() for p in report.checked if p not in report.missing}
    unchecked = [r for r in require or [] if Path(r).resolve() not in done]
    for r in unchecked:
        print(
            f"FAIL {r}: required but not checked (missing, not a results file, or its "
            "predictions are not here)"
        )
    if report.mismatches or report.refused:
        return EXIT_MISMATCH
    if not report.n_checked:
        print(f"FAIL {results_dir}: no results file with saved predictions, nothing was verified")
        return EXIT_NOTHING_CHECKED
    if unchecked or (report.missing and not allow_missing):
        return EXIT_MISSING
    return EXIT_OK


# What --plots redraws, from the results files alone (the semantic-ID usage plot needs
# semantic_id_stats.json, so it is redrawn by analyze_semantic_ids.py only).
PLOT_KINDS = ("mf", "ctr", "semantic_ids", "sequential", "quantizers")


def _main_job_run(result: dict[str, Any]) -> bool:
    """A run the joint slices plot holds: its protocol's table row (no overrides) on the data
    set's own IDs; other experiments' models of the same name would take their bars."""
    return in_protocol_tables(result) and all(
        row_key(model, result)[2] is None for model in result["models"]
    )


def redraw(results_dir: Path, plot_dir: Path, kinds: list[str]) -> list[Path]:
    """Every plot of ``kinds`` that the results files in ``results_dir`` (found by content) hold
    the data of, with the functions the stages draw them with; the sequential runs of one data
    set, protocol and seed (TIGER's file and the ID models' file) also get their joint plot by
    popularity slice, ``sequential_<data>_<protocol>_seed<N>_slices.png`` (the main job's runs
    only: see :func:`_main_job_run`)."""
    plots: list[Path] = []
    runs: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for found in find_results(results_dir):
        result = found.result
        if found.kind == "mf" and "mf" in kinds:
            plots += plot_mf_results(result, plot_dir)
        elif found.kind == "neural" and "ctr" in kinds:
            plots.append(plot_ctr_results(result, plot_dir))
        elif found.kind == "semantic_ids" and "semantic_ids" in kinds:
            plots += plot_report(result, plot_dir, result["dataset"])
        elif found.kind == "sequential" and "sequential" in kinds and result.get("complete"):
            plots += map(Path, plot_results(result, str(plot_dir), found.path.stem))
            if _main_job_run(result):
                key = (result["dataset"], result["protocol"], result["seed"])
                runs.setdefault(key, []).append(result)
    for (dataset, protocol, seed), results in runs.items():
        if len(results) > 1:
            name = f"sequential_{dataset}_{protocol}_seed{seed}_slices.png"
            plots.append(plot_slices(results, str(plot_dir / name)))
    comparison = results_dir / "quantizer_comparison.json"
    if "quantizers" in kinds and comparison.exists():
        plots.append(plot_quantizers(read_json(comparison), plot_dir / "quantizer_comparison.png"))
    return plots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--results-dir", default="results", help="folder of results JSON files")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--verify",
        action="store_true",
        help="recompute every headline metric from the saved predictions (exit codes above)",
    )
    mode.add_argument(
        "--compare",
        metavar="RUN_DIR",
        help="print this run folder's headline metrics beside --results-dir's for the same data "
        "set, model and protocol",
    )
    mode.add_argument(
        "--paired",
        nargs=2,
        metavar=("A", "B"),
        help="paired per-user test of two models' saved test lists, each given as "
        "FILES:MODEL[:RULE] (FILES a glob: one results file per seed; RULE e.g. filtered): "
        "Recall@10 and NDCG@10 of both, A - B and its standard error",
    )
    mode.add_argument(
        "--winners",
        action="store_true",
        help="print only who won each task (headline test metric, models by readable name): the "
        "demo's closing table",
    )
    mode.add_argument(
        "--compare-committed",
        nargs="?",
        const="HEAD",
        metavar="REV",
        help="print the headline numbers of --results-dir that differ from the same files as "
        "commit REV (default HEAD) has them: what a run on this machine changed",
    )
    parser.add_argument(
        "--allow-missing",
        action="store_true",
        help="--verify: results files whose predictions are not here are listed, not failures",
    )
    parser.add_argument(
        "--require",
        nargs="+",
        metavar="FILE",
        help="--verify: results files that must be checked, even with --allow-missing",
    )
    parser.add_argument(
        "--plots",
        nargs="*",
        choices=PLOT_KINDS,
        help=f"redraw the plots from the results files (default: all of {', '.join(PLOT_KINDS)})",
    )
    parser.add_argument("--plot-dir", default="plots", help="where --plots writes (default: plots)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.plots is not None:
        for path in redraw(Path(args.results_dir), Path(args.plot_dir), args.plots or PLOT_KINDS):
            print(path)
        return 0
    if args.verify:
        return verify(Path(args.results_dir), args.allow_missing, args.require or [])
    if args.compare:
        print(compare_runs(find_results(args.compare), find_results(args.results_dir)))
        return 0
    if args.compare_committed:
        with tempfile.TemporaryDirectory() as tmp:
            committed = committed_results(Path(args.results_dir), Path(tmp), args.compare_committed)
            local = find_results(args.results_dir)
            print(compare_runs(local, find_results(committed), same_file=True))
        return 0
    if args.paired:
        print(paired_table(*(Side.parse(spec) for spec in args.paired)))
        return 0
    if args.winners:
        print(winners(Path(args.results_dir)))
        return 0
    print(summarize(Path(args.results_dir)))
    return 0


if __name__ == "__main__":
    run_script(main)
