"""Describe generated semantic IDs: code usage, collisions, similarity by shared prefix, purity,
examples.

Reads <data-dir>/semantic_ids.json, semantic_id_stats.json, the saved quantizer
(codebooks.npz, rqvae.pt or random_codes.npz) and the cached item embeddings (the encoder is only
loaded if the cache lacks them), and writes PNG plots plus a JSON report into a new
runs/<script>-<dataset>-<time>/ (or --run-dir); --reference writes the study's
results/semantic_id_analysis_<dataset>.json and plots/ (make analysis).

Examples:
  python analyze_semantic_ids.py --data-dir beauty
  python analyze_semantic_ids.py --data-dir data/ml-100k
"""

from __future__ import annotations

import utils.runtime.preflight  # noqa: F401  (first: a missing package is one line)

# isort: split

import argparse
import logging
from pathlib import Path

from src.semantic_ids.analysis import analyse, load_generated
from src.semantic_ids.config import OUTPUT_FILES
from src.semantic_ids.generator import DEFAULT_CACHE_DIR, item_embeddings
from src.semantic_ids.new_items import generator_config
from src.semantic_ids.plots import plot_report, plot_usage
from utils.data.load import data_files, load_dataset
from utils.reporting.results import write_results
from utils.reporting.runinfo import RunRecord
from utils.reporting.tables import semantic_ids_table
from utils.runtime import argtypes
from utils.runtime.cli import (
    HelpFormatter,
    add_common_args,
    add_semantic_dir_arg,
    resolve_out,
    setup,
    show_progress,
)
from utils.runtime.errors import run_script
from utils.runtime.io import check_writable
from utils.runtime.rundir import log_to_file, resolve_run_outputs

log = logging.getLogger("analyze_semantic_ids")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    add_common_args(
        p, default_out="results/semantic_id_analysis_{dataset}.json", plots=True, runs=True
    )
    add_semantic_dir_arg(
        p, "folder holding the semantic-ID files (default: --data-dir)", deprecated=("--ids-dir",)
    )
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR), help="embedding cache folder")
    p.add_argument(
        "--example-codes",
        type=argtypes.list_length,
        default=8,
        help="level-1 codes to show example items for",
    )
    p.add_argument(
        "--examples-per-code",
        type=argtypes.list_length,
        default=5,
        help="example items shown per code",
    )
    p.add_argument(
        "--shuffles",
        type=argtypes.repeats,
        default=20,
        help="random assignments for the purity baseline",
    )
    args = p.parse_args(argv)
    device = setup(args)
    ids_dir = Path(args.semantic_dir or args.data_dir)
    ds = load_dataset(args.data_dir)
    run_dir = resolve_run_outputs(args, "analyze_semantic_ids.py", ds.name)
    record = RunRecord("analyze_semantic_ids.py", dict(vars(args)), args.seed, ds.checksum)
    with record.stage("load"):
        out = resolve_out(args.out, ds.name)
        inputs = data_files(args.data_dir) + [ids_dir / name for name in OUTPUT_FILES]
        check_writable({"--out": out}, {"--plot-dir": args.plot_dir}, inputs)
        sids, stats, q = load_generated(ids_dir, ds)
        cfg = generator_config(ids_dir, sids.meta)
    log_to_file(run_dir)
    with record.stage("embeddings"):
        x, _, embed_report = item_embeddings(
            ds, cfg, args.cache_dir, device, progress=show_progress(args)
        )
    report = analyse(
        ds,
        sids,
        stats,
        q,
        x,
        record,
        args.seed,
        args.shuffles,
        args.example_codes,
        args.examples_per_code,
    )
    with record.stage("plots"):
        plot_dir, name = Path(args.plot_dir), ds.name
        plots = [
            plot_usage(stats, plot_dir / f"semantic_ids_{name}_usage.png", name),
            *plot_report(report, plot_dir, name),
        ]
    report = write_results(
        out,
        {
            **report,
            "embeddings_from_cache": embed_report.n_encoded == 0,
            "plots": [str(pth) for pth in plots],
        },
        record,
    )
    log.info("%s", semantic_ids_table(report))
    log.info("wrote %s and %d plots in %s", out, len(plots), plot_dir)
    return 0


if __name__ == "__main__":
    run_script(main, user_errors=(ValueError,))  # the quantizer's ValueErrors name the damaged file
