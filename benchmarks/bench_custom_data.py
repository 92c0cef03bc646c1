"""Benchmark: preparing your own catalogue (prepare_data.py --dataset custom) at 1M and 10M
synthetic interaction rows (wall time and peak memory of the preparing process), and the Beauty
bundle converted to the generic format checked against its dedicated loader.

nice -n 19 python benchmarks/bench_custom_data.py --rows 1000000 10000000 \
    --beauty beauty --out results/bench_custom_data.json

Each preparation runs in a fresh child Python, which reports its own peak RSS
(``resource.getrusage``), so one size's memory never hides in another's. The synthetic data
(string user and item IDs, Unix times, 1-5 stars, ~20 rows per user, ~100 per item with skewed
popularity, so some pairs repeat and some items fall to the 5-core; a metadata
CSV with title, brand, categories and price) is written to a temporary folder and removed.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.semantic_ids.item_text import build_item_texts  # noqa: E402
from utils.data.custom import CleaningRules, InteractionColumns  # noqa: E402
from utils.data.load import load_dataset  # noqa: E402
from utils.data.prepare_custom import CustomSource, prepare_custom  # noqa: E402
from utils.reporting.runinfo import RunRecord  # noqa: E402
from utils.runtime.cli import setup_logging  # noqa: E402
from utils.runtime.errors import run_script  # noqa: E402
from utils.runtime.io import atomic_write_json  # noqa: E402

# The child: prepare, then report wall seconds and its own peak RSS as one JSON line.
CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from utils.data.custom import CleaningRules, InteractionColumns
from utils.data.prepare_custom import CustomSource, prepare_custom
t0 = time.perf_counter()
s = prepare_custom(
    CustomSource(Path(sys.argv[2]), Path(sys.argv[3]), InteractionColumns(rating="rating")),
    Path(sys.argv[4]),
    CleaningRules(k_core=5),
)
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": round(wall, 2), "peak_rss_mib": round(peak, 1),
                  "users": s["users"], "items": s["items"], "interactions": s["interactions"],
                  "preparation": s["preparation"]}))
"""


def write_synthetic(folder: Path, rows: int, seed: int = 0) -> tuple[Path, Path, float]:
    """interactions.csv and items.csv of ``rows`` rows; returns them and the input size in MiB."""
    rng = np.random.default_rng(seed)
    n_users, n_items = max(rows // 20, 10), max(rows // 100, 10)
    inter = folder / "interactions.csv"
    chunk = 1_000_000
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        frame = pd.DataFrame(
            {
                "user_id": np.char.add("user", rng.integers(0, n_users, n).astype(str)),
                # skewed popularity: item k drawn with density ~ 1/sqrt(k)
                "item_id": np.char.add(
                    "B0", (1 + n_items * rng.random(n) ** 2).astype(int).astype(str)
                ),
                "timestamp": rng.integers(1_400_000_000, 1_700_000_000, n),
                "rating": rng.integers(1, 6, n),
            }
        )
        frame.to_csv(inter, mode="a", header=start == 0, index=False)
    ids = np.char.add("B0", np.arange(1, n_items + 1).astype(str))
    pd.DataFrame(
        {
            "item_id": ids,
            "title": np.char.add("Product ", ids),
            "brand": np.char.add("Brand", (np.arange(n_items) % 500).astype(str)),
            "categories": np.char.add("Beauty|Kind", (np.arange(n_items) % 40).astype(str)),
            "price": (np.arange(n_items) % 100) + 0.99,
        }
    ).to_csv(folder / "items.csv", index=False)
    size = (inter.stat().st_size + (folder / "items.csv").stat().st_size) / 2**20
    return inter, folder / "items.csv", size


def measure(rows: int, work: Path) -> dict:
    folder = work / f"rows{rows}"
    folder.mkdir()
    t0 = time.perf_counter()
    inter, items, size = write_synthetic(folder, rows)
    made = time.perf_counter() - t0
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), str(inter), str(items), str(folder / "prepared")],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    t0 = time.perf_counter()
    ds = load_dataset(folder / "prepared")
    load_seconds = time.perf_counter() - t0
    assert ds.n_interactions == result["interactions"]
    return {
        "rows": rows,
        "input_mib": round(size, 1),
        "synthetic_data_seconds": round(made, 1),
        "prepare_seconds": result["seconds"],
        "prepare_peak_rss_mib": result["peak_rss_mib"],
        "load_prepared_seconds": round(load_seconds, 2),
        **{k: result[k] for k in ("users", "items", "interactions", "preparation")},
    }


def beauty_to_generic(src: Path, out: Path) -> tuple[Path, Path]:
    """The P5 bundle as generic files: one row per (reviewerID, asin) in sequence order (no time
    column: file order is the order), and items.jsonl with the raw metadata fields."""
    maps = json.loads((src / "datamaps.json").read_text())
    users, items = maps["id2user"], maps["id2item"]
    rows = []
    for line in (src / "sequential_data.txt").read_text().splitlines():
        tokens = line.split()
        rows += [(users[tokens[0]], items[t]) for t in tokens[1:]]
    pd.DataFrame(rows, columns=["user_id", "item_id"]).to_csv(out / "reviews.csv", index=False)
    with gzip.open(src / "meta.json.gz", "rt") as f, open(out / "meta.jsonl", "w") as g:
        for line in f:
            rec = ast.literal_eval(line)  # the bundle's lines are Python literals, never eval'd
            keep = {k: rec.get(k) for k in ("title", "brand", "categories")}
            g.write(json.dumps({"item_id": rec["asin"], **keep}) + "\n")
    return out / "reviews.csv", out / "meta.jsonl"


def beauty_check(src: Path, work: Path) -> dict:
    reviews, meta = beauty_to_generic(src, work)
    t0 = time.perf_counter()
    prepare_custom(
        CustomSource(reviews, meta, InteractionColumns(time=None)),
        work / "beauty",
        CleaningRules(k_core=5, order="first-seen"),
    )
    seconds = time.perf_counter() - t0
    a, b = load_dataset(src), load_dataset(work / "beauty")
    arrays = ("user_ids", "item_ids", "users", "items", "positions", "user_offsets")
    same = {name: bool(np.array_equal(getattr(a, name), getattr(b, name))) for name in arrays}
    same["timestamps_and_ratings_absent"] = a.timestamps is b.timestamps is b.ratings is None
    for name in ("title", "brand", "description", "categories"):
        same[f"meta.{name}"] = list(getattr(a.meta, name)) == list(getattr(b.meta, name))
    ta = build_item_texts(a.meta, list(a.item_ids)).texts
    tb = build_item_texts(b.meta, list(b.item_ids)).texts
    same["item_texts"] = ta == tb
    return {
        "source": str(src),
        "options": "--time-col none --order first-seen --k-core 5 (defaults otherwise)",
        "users_items_interactions": [b.n_users, b.n_items, b.n_interactions],
        "prepare_seconds": round(seconds, 2),
        "equal_to_dedicated_loader": same,
        "all_equal": all(same.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--beauty", help="a prepared Beauty folder to check (P5 layout)")
    parser.add_argument("--out", default="results/bench_custom_data.json")
    args = parser.parse_args()
    setup_logging(True)
    record = RunRecord("benchmarks/bench_custom_data.py", vars(args))
    report: dict = {"cpu": platform.processor() or platform.machine(), "sizes": []}
    with tempfile.TemporaryDirectory(prefix="bench-custom-") as tmp:
        for rows in args.rows:
            with record.stage(f"{rows} rows"):
                report["sizes"].append(measure(rows, Path(tmp)))
            print(json.dumps(report["sizes"][-1]), flush=True)
        if args.beauty:
            work = Path(tmp) / "beauty-generic"
            work.mkdir()
            with record.stage("beauty check"):
                report["beauty"] = beauty_check(Path(args.beauty), work)
            print(json.dumps(report["beauty"]), flush=True)
    report["run_record"] = record.to_dict()
    atomic_write_json(args.out, report)


if __name__ == "__main__":
    run_script(main)
