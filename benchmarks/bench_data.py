"""Benchmark: loading a prepared data set and building its splits (target: Beauty loads in under
10 s).

python benchmarks/bench_data.py --data-dir beauty --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.data.load import load_dataset  # noqa: E402
from utils.data.splits import make_split  # noqa: E402
from utils.runtime.cli import setup_logging  # noqa: E402
from utils.runtime.errors import run_script  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default="beauty")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    setup_logging(quiet_mode=True)
    load_times, split_times = [], {}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ds = load_dataset(args.data_dir)
        load_times.append(time.perf_counter() - t0)
    for kind in ("temporal", "random", "leave_one_out"):
        t0 = time.perf_counter()
        make_split(ds, kind)
        split_times[kind] = round(time.perf_counter() - t0, 3)
    report = {
        "data_dir": args.data_dir,
        "users": ds.n_users,
        "items": ds.n_items,
        "interactions": ds.n_interactions,
        "load_seconds_median": round(statistics.median(load_times), 3),
        "load_seconds_all": [round(t, 3) for t in load_times],
        "split_seconds": split_times,
        "target_load_seconds": 10.0,
        "meets_target": statistics.median(load_times) < 10.0,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    run_script(main)
