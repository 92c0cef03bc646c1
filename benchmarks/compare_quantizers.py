"""Which semantic IDs help downstream: RQ-KMeans vs RQ-VAE vs random codes, same split and models.

Collects the runs of `make quantizers` (TIGER quick preset, MF-Semantic and DeepFM in semantic
mode, each trained on the IDs of one quantizer, written to results/quantizers/) with the IDs'
own statistics into results/quantizer_comparison.json and plots/quantizer_comparison.png.
RQ-KMeans TIGER numbers come from the main job's results/tiger_results*.json (same preset and
IDs, seeds 0-2); the other TIGER runs are one seed each (the CPU budget), so their comparison
is read against the RQ-KMeans seed spread.

  python benchmarks/compare_quantizers.py
  python benchmarks/compare_quantizers.py --results-dir results --plot plots/quantizers.png
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.reporting.figures import plot_quantizers  # noqa: E402
from utils.reporting.results import aggregate_seeds, dig  # noqa: E402
from utils.reporting.tables import QUANTIZERS, quantizer_table  # noqa: E402
from utils.runtime.cli import setup_logging  # noqa: E402
from utils.runtime.errors import (  # noqa: E402
    DataError,  # noqa: E402
    add_debug_flag,
    run_script,
)
from utils.runtime.io import atomic_write_json, read_json  # noqa: E402

log = logging.getLogger("compare_quantizers")


def tiger_runs(results_dir: Path, quantizer: str) -> list[dict[str, Any]]:
    """The TIGER (item-level, quick preset) runs on one quantizer's IDs, any number of seeds."""
    if quantizer == "rqkmeans":
        paths = sorted(results_dir.glob("tiger_results*.json"))
        runs = [
            r for r in map(read_json, paths) if r.get("preset") == "quick" and r.get("complete")
        ]
        return [r for r in runs if dig(r, "semantic_ids", "quantizer") in ("rqkmeans", None)]
    path = results_dir / "quantizers" / f"tiger_{quantizer}.json"
    return [read_json(path)] if path.exists() else []


def tiger_block(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """TIGER's test metrics (overall, cold-target with the cold share) over the runs' seeds."""
    per_seed = []
    for r in runs:
        m = r["models"]["tiger_item"]
        per_seed.append(
            {
                "test": m["test"],
                "item_tail": m["test_slices"]["item_tail"],
                "cold_share": {
                    "all_users": m["cold_start"]["all_users"],
                    "cold_target_users": m["cold_start"]["cold_target_users"],
                },
                "plain_beam_cold_recall@10": m["cold_start_test_recall@10"],
                "invalid_share_top10_unconstrained": m["unconstrained"]["invalid_share_top10"],
                "best_epoch": m["best_epoch"],
            }
        )
    return {
        "seeds": [r["seed"] for r in runs],
        "ids_digest": dig(runs[0], "semantic_ids", "ids_digest"),
        "commits": sorted({dig(r, "run_record", "git_commit") for r in runs}),
        "mean_std": aggregate_seeds(per_seed),
    }


def pointwise_block(path: Path, model: str, mode: str | None = None) -> dict[str, Any]:
    """MF-Semantic or DeepFM-semantic's mean ± std test report from one results file."""
    r = read_json(path)
    models = r["modes"][mode]["models"] if mode else r["models"]
    return {
        "seeds": sorted(int(s) for s in models[model]["seeds"]),
        "commit": dig(r, "run_record", "git_commit"),
        "ids_digest": dig(r, "semantic_ids", "ids_digest"),
        "mean_std": models[model]["mean_std"]["test"],
    }


def id_stats(ids_dir: Path) -> dict[str, Any]:
    """What the IDs look like: usage per level, collisions before the 4th level, reconstruction."""
    s = read_json(ids_dir / "semantic_id_stats.json")
    return {
        "dir": str(ids_dir),
        "used_codes": [u["used_codes"] for u in s["usage"]],
        "normalized_entropy": [round(u["normalized_entropy"], 4) for u in s["usage"]],
        "colliding_items": s["collisions"]["colliding_items"],
        "final_error_fit_items": s["quantization_error"]["fit_items"]["final"],
        "final_error_cold_items": s["quantization_error"]["held_out_items"].get("final"),
        "fit_seconds": dig(s, "run_record", "stage_seconds", "fit codebooks"),
    }


def compare(results_dir: Path, id_dirs: dict[str, Path]) -> dict[str, Any]:
    out: dict[str, Any] = {"quantizers": {}}
    for q in QUANTIZERS:
        runs = tiger_runs(results_dir, q)
        if not runs:
            raise DataError(
                f"no TIGER results for {q} IDs in {results_dir}; run `make quantizers` first"
            )
        qdir = results_dir / "quantizers"
        out["quantizers"][q] = {
            "ids": id_stats(id_dirs[q]),
            "tiger": tiger_block(runs),
            "mf_semantic": pointwise_block(qdir / f"mf_{q}.json", "mf_semantic"),
            "deepfm_semantic": pointwise_block(qdir / f"ctr_{q}.json", "deepfm", "semantic"),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--results-dir", default="results", help="folder with the runs (default: results)"
    )
    p.add_argument(
        "--ids",
        nargs=3,
        default=["beauty", "beauty/ids-rqvae", "beauty/ids-random"],
        metavar=("RQKMEANS", "RQVAE", "RANDOM"),
        help="the three ID folders",
    )
    p.add_argument("--out", default="results/quantizer_comparison.json")
    p.add_argument("--plot", default="plots/quantizer_comparison.png")
    p.add_argument("--quiet", action="store_true")
    add_debug_flag(p)
    args = p.parse_args(argv)
    setup_logging(args.quiet)
    comparison = compare(Path(args.results_dir), dict(zip(QUANTIZERS, map(Path, args.ids))))
    comparison["plot"] = str(plot_quantizers(comparison, Path(args.plot)))
    atomic_write_json(args.out, comparison)
    print(quantizer_table(comparison))
    log.info("wrote %s and %s", args.out, args.plot)
    return 0


if __name__ == "__main__":
    run_script(main)
