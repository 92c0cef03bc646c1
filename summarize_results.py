"""Print the headline tables of every results file in results/ as Markdown (what the README shows).

  python summarize_results.py                        # every results file found in results/
  python summarize_results.py --results-dir other/   # another results folder
  python summarize_results.py --verify               # recompute the metrics from saved predictions
  python summarize_results.py --plots                # redraw the plots from the results files
  python summarize_results.py --plots sequential     # the sequential ones (make sequential-seed)

The tables come from utils/reporting/tables.py, the same functions the scripts log their tables
with.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from src.pointwise.ctr_experiment import plot_ctr_results
from src.semantic_ids.plots import plot_report
from src.sequential.reporting import plot_results, plot_slices
from utils.evaluation.verify import verify_results_file
from utils.reporting.figures import plot_mf_results, plot_quantizers
from utils.reporting.tables import (
    ctr_table,
    mf_table,
    next_item_table,
    protocol_tables,
    semantic_ids_table,
    tiger_seeds_table,
    tiger_table,
)
from utils.runtime.errors import DataError, add_debug_flag, run_script
from utils.runtime.io import read_json

SECTIONS: tuple[tuple[str, Callable[[dict[str, Any], Path], str]], ...] = (
    ("semantic_id_analysis_*.json", lambda r, p: semantic_ids_table(r)),
    ("mf_results_*.json", lambda r, p: mf_table(r)),
    ("neural_results_*.json", lambda r, p: ctr_table(r)),
    ("tiger_results*.json", lambda r, p: tiger_table(r, p.name)),
    ("sequential_*.json", lambda r, p: tiger_table(r, p.name)),
)


def section(render: Callable[[dict[str, Any], Path], str], path: Path) -> str:
    """One file's section; a file whose layout differs from its name's promise is refused by
    name."""
    try:
        return render(read_json(path), path)
    except (KeyError, TypeError, IndexError, AttributeError, StopIteration) as exc:
        raise DataError(
            f"{path}: not a results file in the expected layout ({type(exc).__name__}: {exc}); "
            "re-run the script that writes it, or move it out of the results folder"
        ) from exc


def summarize(results_dir: Path) -> str:
    """Every section for the results files in ``results_dir``, then TIGER's mean ± std over
    seeds and its full metric set by slice."""
    sections = [
        section(render, p)
        for pattern, render in SECTIONS
        for p in sorted(results_dir.glob(pattern))
    ]
    tiger_runs = [read_json(p) for p in sorted(results_dir.glob("tiger_results*.json"))]
    sections += [t for t in (tiger_seeds_table(tiger_runs), next_item_table(tiger_runs)) if t]
    sections += protocol_tables(
        [read_json(p) for p in sorted(results_dir.glob("sequential_*.json"))]
    )
    if not sections:
        raise DataError(
            f"no results files in {results_dir}/: run `make all` (or the *_train_eval.py scripts) "
            "first"
        )
    return "\n\n".join(sections)


def verify(results_dir: Path) -> int:
    """Recompute every headline metric of the results files that have saved predictions.

    Prints one line per file and every mismatch; returns the number of mismatches (a results
    file of a trainer without predictions, or of another layout, counts as one: it cannot be
    checked), and 1 when there was nothing to check at all.
    """
    failures, checked = 0, 0
    patterns = (
        "mf_results_*.json",
        "neural_results_*.json",
        "tiger_results*.json",
        "sequential_*.json",
    )
    for path in sorted(p for pattern in patterns for p in results_dir.glob(pattern)):
        try:
            checks = verify_results_file(path, read_json(path))
        except ValueError as exc:
            print(f"FAIL {path}: {exc}")
            failures += 1
            continue
        bad = [c for c in checks if not c.ok]
        checked += len(checks)
        failures += len(bad)
        status = "FAIL" if bad else "ok  "
        matched = len(checks) - len(bad)
        print(f"{status} {path}: {matched}/{len(checks)} metrics match, recomputed")
        for c in bad:
            print(
                f"     {c.model}, {c.metric}: reported {c.reported!r}, recomputed {c.recomputed!r}"
            )
    print(f"{checked} metrics checked, {failures} mismatch(es)")
    if not checked and not failures:
        print(f"FAIL {results_dir}: no results file with saved predictions, nothing was verified")
        return 1
    return failures


# What --plots redraws, from the results files alone (the semantic-ID usage plot needs
# semantic_id_stats.json, so it is redrawn by analyze_semantic_ids.py only).
PLOT_KINDS = ("mf", "ctr", "semantic_ids", "sequential", "quantizers")


def redraw(results_dir: Path, plot_dir: Path, kinds: list[str]) -> list[Path]:
    """Every plot of ``kinds`` that the results files in ``results_dir`` hold the data of, with
    the functions the stages draw them with; the sequential runs of one data set, protocol and
    seed (TIGER's file and the ID models' file) also get their joint plot by popularity slice,
    ``sequential_<data>_<protocol>_seed<N>_slices.png``."""
    files = {
        "mf": "mf_results_*.json",
        "ctr": "neural_results_*.json",
        "semantic_ids": "semantic_id_analysis_*.json",
        "sequential": "sequential_*.json",
        "quantizers": "quantizer_comparison.json",
    }
    plots: list[Path] = []
    runs: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for kind in kinds:
        for path in sorted(results_dir.glob(files[kind])):
            result = read_json(path)
            if kind == "mf":
                plots += plot_mf_results(result, plot_dir)
            elif kind == "ctr":
                plots.append(plot_ctr_results(result, plot_dir))
            elif kind == "semantic_ids":
                plots += plot_report(result, plot_dir, result["dataset"])
            elif kind == "quantizers":
                plots.append(plot_quantizers(result, plot_dir / "quantizer_comparison.png"))
            elif result.get("complete"):
                plots += map(Path, plot_results(result, str(plot_dir), path.stem))
                key = (result["dataset"], result["protocol"], result["seed"])
                runs.setdefault(key, []).append(result)
    for (dataset, protocol, seed), results in runs.items():
        if len(results) > 1:
            name = f"sequential_{dataset}_{protocol}_seed{seed}_slices.png"
            plots.append(plot_slices(results, str(plot_dir / name)))
    return plots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--results-dir", default="results", help="folder of results JSON files (default: results)"
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="recompute every headline metric from the saved predictions (exit 1 on a mismatch)",
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
        return 1 if verify(Path(args.results_dir)) else 0
    print(summarize(Path(args.results_dir)))
    return 0


if __name__ == "__main__":
    run_script(main)
