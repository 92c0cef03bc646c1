"""Benchmark: how many semantic IDs a small catalogue change moves, refit against --extend.

Edits the titles of a share of the items (default 0.1%: 12 of Beauty's 12,101), then gives the
catalogue IDs twice: refitting the quantizer from scratch with the same seed, and extending the
saved codebooks (src/semantic_ids/extend.py). Counts, among the items whose text did not change,
how many got another full ID, and at which level the first code changed.

  python benchmarks/bench_id_stability.py --data-dir beauty
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.semantic_ids.config import GeneratorConfig  # noqa: E402
from src.semantic_ids.extend import extend_codes  # noqa: E402
from src.semantic_ids.generator import DEFAULT_CACHE_DIR, embed, generate, item_texts  # noqa: E402
from utils.data.load import load_dataset  # noqa: E402
from utils.reporting.results import RUN_RECORD  # noqa: E402
from utils.reporting.runinfo import RunRecord  # noqa: E402
from utils.runtime import argtypes  # noqa: E402
from utils.runtime.cli import HelpFormatter, add_common_args, resolve_out, setup  # noqa: E402
from utils.runtime.errors import run_script  # noqa: E402
from utils.runtime.io import atomic_write_json  # noqa: E402

log = logging.getLogger("bench_id_stability")


def moved(before: np.ndarray, after: np.ndarray, rows: np.ndarray) -> dict:
    """Among ``rows``: how many full IDs differ, and the first level that differs, counted."""
    diff = before[rows] != after[rows]
    changed = diff.any(1)
    first = np.argmax(diff[changed], axis=1)
    return {
        "items": int(len(rows)),
        "ids_changed": int(changed.sum()),
        "share_changed": round(float(changed.mean()), 4) if len(rows) else 0.0,
        "first_changed_level": {
            str(level + 1): int((first == level).sum()) for level in range(before.shape[1])
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    add_common_args(p, default_out="results/bench_id_stability_{dataset}.json")
    p.add_argument("--edit-share", type=argtypes.fraction, default=0.001, help="items edited")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR), help="embedding cache folder")
    args = p.parse_args(argv)
    device = setup(args)
    ds = load_dataset(args.data_dir)
    cfg = GeneratorConfig(seed=args.seed)
    record = RunRecord("benchmarks/bench_id_stability.py", vars(args), args.seed, ds.checksum)
    rng = np.random.default_rng(args.seed)
    edited = np.sort(rng.choice(ds.n_items, max(1, round(args.edit_share * ds.n_items)), False))
    unchanged = np.setdiff1d(np.arange(ds.n_items), edited)
    runs = {}
    for name in ("original", "edited"):
        if name == "edited":
            ds.meta.title[edited] = [f"{t} (new formula)" for t in ds.meta.title[edited]]
        x, _ = embed(item_texts(ds, cfg).texts, cfg, args.cache_dir, device)
        t0 = time.perf_counter()
        runs[name] = (generate(ds, cfg, x, RunRecord("-", {})), x)
        log.info("%s catalogue fitted in %.1f s", name, time.perf_counter() - t0)
    original, (refit, x_edited) = runs["original"][0], runs["edited"]
    ids = list(ds.item_ids)
    prefix = original.quantizer.encode(x_edited)
    extended, counts = extend_codes(ids, original.codes, ids, prefix, original.collision_size)
    report = {
        "dataset": ds.name,
        "edited_items": int(len(edited)),
        "edit": "title + ' (new formula)'",
        "refit": moved(original.codes, refit.codes, unchanged),
        "extend": {**moved(original.codes, extended, unchanged), **counts},
        RUN_RECORD: record.to_dict(),
    }
    out = resolve_out(args.out, ds.name)
    atomic_write_json(out, report)
    refit_moved, extend_moved = report["refit"]["ids_changed"], report["extend"]["ids_changed"]
    log.info(
        "refit moved %d of %d unchanged items' IDs; --extend moved %d; wrote %s",
        refit_moved,
        len(unchanged),
        extend_moved,
        out,
    )
    return 0


if __name__ == "__main__":
    run_script(main)
