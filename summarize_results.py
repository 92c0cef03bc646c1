"""Print the headline tables of every results file in results/ as Markdown (what the README shows).

  python summarize_results.py                        # every results file found in results/
  python summarize_results.py --results-dir other/   # another results folder

The tables come from utils/report.py, the same functions the scripts log their tables with.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from utils.errors import DataError, add_debug_flag, run_script
from utils.io import read_json
from utils.report import ctr_table, mf_table, semantic_ids_table, tiger_seeds_table, tiger_table

SECTIONS: tuple[tuple[str, Callable[[dict[str, Any], Path], str]], ...] = (
    ("semantic_id_analysis_*.json", lambda r, p: semantic_ids_table(r)),
    ("mf_results_*.json", lambda r, p: mf_table(r)),
    ("neural_results_*.json", lambda r, p: ctr_table(r)),
    ("tiger_results*.json", lambda r, p: tiger_table(r, p.name)),
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
    seeds."""
    sections = [
        section(render, p)
        for pattern, render in SECTIONS
        for p in sorted(results_dir.glob(pattern))
    ]
    seeds = tiger_seeds_table(
        [read_json(p) for p in sorted(results_dir.glob("tiger_results*.json"))]
    )
    sections += [seeds] if seeds else []
    if not sections:
        raise DataError(
            f"no results files in {results_dir}/: run `make all` (or the *_train_eval.py scripts) "
            "first"
        )
    return "\n\n".join(sections)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--results-dir", default="results", help="folder of results JSON files (default: results)"
    )
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    print(summarize(Path(args.results_dir)))


if __name__ == "__main__":
    run_script(main)
