"""How each stage's time and peak memory grow with the data, on synthetic data shaped like the real.

Embeddings: unit vectors (dim 768, as sentence-t5) around 2,000 cluster centres whose sizes
follow a power law; interactions and histories: users' items drawn with Zipf popularity. Each
(stage, size) runs in a fresh process, so its peak RSS is its own. The growth exponent is the
least-squares slope of log(seconds) on log(size); the limit of this machine is extrapolated from
it (labelled as such): the size at which one run would take an hour, or the RAM would be full.

    python benchmarks/bench_scaling.py                    # everything (a few minutes on 2 cores)
    python benchmarks/bench_scaling.py --stages quantize  # one stage
    python benchmarks/bench_scaling.py --stages ctr_epoch --merge  # one stage into the saved file
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from utils.reporting.figures import pyplot, save_figure  # noqa: E402
from utils.reporting.results import RUN_RECORD  # noqa: E402
from utils.reporting.runinfo import RunRecord  # noqa: E402
from utils.runtime import argtypes  # noqa: E402
from utils.runtime.errors import run_script  # noqa: E402
from utils.runtime.io import atomic_write_json, read_json  # noqa: E402

DIM, NITER, LEVELS, CODES = 768, 10, 3, 256
# stage -> (sizes measured here, what the size counts, what one run is)
PLAN = {
    "quantize": ([10_000, 30_000, 100_000], "items", f"RQ-KMeans fit, 3x256, {NITER} Lloyd its"),
    "encode": ([10_000, 100_000, 300_000], "items", "new-item encoding with saved codebooks"),
    "mf_epoch": ([300_000, 1_000_000, 10_000_000], "interactions", "one MF epoch, batch 16384"),
    "ctr_epoch": ([300_000, 1_000_000], "interactions", "one DeepFM epoch (semantic), batch 2048"),
    "tiger_step": ([10_000, 100_000, 1_000_000], "items", "20 TIGER steps (item encoder), b 256"),
    "beam_search": ([10_000, 100_000, 1_000_000], "items", "beam search (beam 20), 256 users"),
}
HOUR = 3600.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


def clustered_embeddings(n: int, seed: int) -> np.ndarray:
    """Unit vectors around power-law-sized clusters (the shape of real item-text embeddings)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2000, DIM)).astype(np.float32)
    sizes = 1.0 / np.arange(1, 2001) ** 0.8
    x = centres[rng.choice(2000, n, p=sizes / sizes.sum())]
    x += 0.6 * rng.standard_normal((n, DIM), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def zipf_items(n: int, n_items: int, rng: np.random.Generator) -> np.ndarray:
    p = 1.0 / np.arange(1, n_items + 1)
    return rng.choice(n_items, n, p=p / p.sum())


def tiger_setup(n_items: int, seed: int):
    import torch

    from src.semantic_ids.random_ids import draw_random_codes
    from src.semantic_ids.rqkmeans import collision_codes
    from src.sequential.presets import QUICK_TIGER
    from src.sequential.tiger import Tiger

    head = draw_random_codes(n_items, LEVELS, CODES, seed).codes
    codes = np.c_[head, collision_codes(head, n_items)]
    sizes = [CODES] * LEVELS + [int(codes[:, -1].max()) + 1]
    cfg = replace(QUICK_TIGER, codebook_sizes=sizes, encoder="item")
    torch.manual_seed(seed)
    model = Tiger(cfg, codes)
    rng = np.random.default_rng(seed)
    hist = torch.as_tensor(zipf_items(256 * 20, n_items, rng).reshape(256, 20))
    return model, codes, sizes, hist, torch.as_tensor(zipf_items(256, n_items, rng))


def ctr_dataset(ex, n_users: int, n_items: int, seed: int):
    """The MF stage's interactions as a Dataset with Beauty-like item metadata (a brand, 1-3
    categories, a 6-word title, a price), all of it training data, and random 3x256 semantic IDs
    plus a collision level."""
    from src.semantic_ids.random_ids import draw_random_codes
    from src.semantic_ids.rqkmeans import collision_codes
    from utils.data.dataset import Dataset, ItemMeta
    from utils.data.splits import Split

    rng = np.random.default_rng(seed + 1)
    order = np.argsort(ex.users, kind="stable")
    users, items = ex.users[order], ex.items[order]
    counts = np.bincount(users, minlength=n_users)
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
    meta = ItemMeta.empty(n_items)
    meta.brand = np.array([f"b{b}" for b in zipf_items(n_items, 3000, rng)], dtype=object)
    cats = rng.integers(0, 400, (n_items, 3))
    meta.categories = [[f"c{c}" for c in row[: 1 + i % 3]] for i, row in enumerate(cats)]
    words = zipf_items(n_items * 6, 20_000, rng).reshape(n_items, 6)
    meta.title = np.array([" ".join(f"w{w}" for w in row) for row in words], dtype=object)
    meta.price = rng.lognormal(3.0, 1.0, n_items)
    ds = Dataset(
        "synthetic", "p5",
        np.array([f"U{u}" for u in range(n_users)], dtype=object),
        np.array([f"I{i}" for i in range(n_items)], dtype=object),
        users, items, np.arange(len(users)) - offsets[users], None, None, offsets, meta, "0" * 64,
    )  # fmt: skip
    empty = np.zeros(0, dtype=np.int64)
    split = Split("synthetic", np.arange(len(users)), empty, empty, empty, empty, empty, seed)
    head = draw_random_codes(n_items, LEVELS, CODES, seed).codes
    return ds, split, np.c_[head, collision_codes(head, n_items)]


def run_stage(stage: str, n: int, seed: int) -> dict:
    """One measurement in this process: seconds of the timed part, memory before and at peak."""
    import torch

    torch.set_num_threads(1)
    extra: dict = {}
    if stage in ("quantize", "encode"):
        from src.semantic_ids.rqkmeans import fit_residual_kmeans, kmeans

        fit = partial(fit_residual_kmeans, levels=LEVELS, codebook_size=CODES, seed=seed)
        x = clustered_embeddings(n if stage == "quantize" else 10_000, seed)
        if stage == "encode":
            q, _ = fit(x, kmeans=partial(kmeans, niter=NITER))
            x = clustered_embeddings(n, seed + 1)
            before, t0 = rss_mb(), time.perf_counter()
            q.encode(x)
        else:
            before, t0 = rss_mb(), time.perf_counter()
            fit(x, kmeans=partial(kmeans, niter=NITER))
    elif stage in ("mf_epoch", "ctr_epoch"):
        from src.pointwise.batches import ExampleTensors, pointwise_loss
        from src.training import TrainConfig, epoch_generator, fit, index_batches
        from utils.data.examples import PointwiseExamples

        rng = np.random.default_rng(seed)
        n_users, n_items = max(n // 10, 10), max(n // 20, 10)
        users = rng.integers(0, n_users, n)
        ex = PointwiseExamples(
            users, zipf_items(n, n_items, rng), (rng.random(n) < 0.2).astype(np.float32), users
        )
        data = ExampleTensors.from_examples(ex, "cpu")
        if stage == "mf_epoch":
            from src.pointwise.mf import build_mf_model

            model = build_mf_model(
                "mf_id", n_users, n_items, 32, np.ones(n_users, bool), np.ones(n_items, bool), 0.0
            )
            batch_size = 16384
        else:
            from src.pointwise.ctr import CTRConfig, build_ctr_model
            from src.pointwise.features import build_features

            ds, split, codes = ctr_dataset(ex, n_users, n_items, seed)
            model = build_ctr_model(
                "deepfm", build_features(ds, split, "semantic", codes), CTRConfig()
            )
            batch_size = 2048

        def batches(epoch: int):
            for idx in index_batches(len(data), batch_size, epoch_generator(seed, epoch)):
                yield data.batch(idx)

        before, t0 = rss_mb(), time.perf_counter()
        fit(model, batches, pointwise_loss("implicit", 0.03), lambda m: {}, TrainConfig(epochs=1))
    else:
        from src.sequential.beam_search import beam_search, build_trie
        from src.sequential.tiger import TigerStepper

        model, codes, sizes, hist, target = tiger_setup(n, seed)
        if stage == "tiger_step":
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
            before, t0 = rss_mb(), time.perf_counter()
            for _ in range(20):
                opt.zero_grad()
                model.loss(hist, target).backward()
                opt.step()
        else:
            t0 = time.perf_counter()
            trie = build_trie(codes, sizes)
            extra["trie_seconds"] = round(time.perf_counter() - t0, 3)
            model.eval()
            before, t0 = rss_mb(), time.perf_counter()
            with torch.no_grad():
                beam_search(TigerStepper(model, hist), len(hist), trie, 20)
            extra["users_per_second"] = round(len(hist) / (time.perf_counter() - t0), 1)
    seconds = time.perf_counter() - t0
    return {
        "size": n,
        "seconds": round(seconds, 3),
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        **extra,
    }


def measure(stage: str, n: int, seed: int, timeout: int) -> dict:
    """``run_stage`` in a fresh Python (its own peak memory); None-valued on a timeout."""
    cmd = [sys.executable, __file__, "--worker", stage, str(n), "--seed", str(seed)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"size": n, "seconds": None, "note": f"over the {timeout} s budget"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ddp_runs(timeout: int) -> dict:
    """mf_train_eval.py on MovieLens 100K (mf_id, 3 epochs) under torchrun with 1 and 2 CPU
    processes: training examples/s of the same global batches."""
    out = {}
    torchrun = Path(sys.executable).with_name("torchrun")
    with tempfile.TemporaryDirectory() as tmp:
        for procs in (1, 2):
            res = Path(tmp) / f"mf{procs}.json"
            cmd = [
                str(torchrun), "--standalone", "--nproc_per_node", str(procs),
                str(ROOT / "mf_train_eval.py"), "--data-dir", str(ROOT / "data/ml-100k"),
                "--models", "mf_id", "--epochs", "3", "--patience", "10", "--quiet",
                "--out", str(res), "--plot-dir", tmp, "--split-cache", str(Path(tmp) / "splits"),
            ]  # fmt: skip
            subprocess.run(cmd, capture_output=True, timeout=timeout, check=True)
            seed = read_json(res)["models"]["mf_id"]["seeds"]["0"]
            out[str(procs)] = {
                "train_seconds": seed["train_seconds"],
                "examples_per_second": seed["examples_per_second"],
                "epoch_losses": [h["loss"] for h in seed["history"]],
            }
    return out


def growth(points: list[dict]) -> dict:
    """Log-log slope of seconds and peak memory on size over the two largest sizes (fixed costs
    dominate the small ones), and where it meets the limits of this machine (extrapolated)."""
    done = [p for p in points if p.get("seconds")][-2:]
    if len(done) < 2:
        return {"note": "fewer than two sizes measured"}
    size = np.log([p["size"] for p in done])
    slope, icpt = np.polyfit(size, np.log([p["seconds"] for p in done]), 1)
    mem = [p["peak_rss_mb"] - p["rss_before_mb"] for p in done]
    mslope, micpt = np.polyfit(size, np.log(np.maximum(mem, 1.0)), 1)
    ram_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 20)
    at_hour = math.exp((math.log(HOUR) - icpt) / slope) if slope > 0.05 else None
    at_ram = math.exp((math.log(ram_mb) - micpt) / mslope) if mslope > 0.05 else None
    name = (
        "flat (fixed costs dominate)"
        if slope < 0.3
        else "sub-linear"
        if slope < 0.8
        else "linear"
        if slope < 1.25
        else "super-linear"
    )
    return {
        "time_exponent": round(float(slope), 2),
        "growth": name,
        "memory_exponent": round(float(mslope), 2),
        "extrapolated_size_at_one_hour": None if at_hour is None else float(f"{at_hour:.2g}"),
        "extrapolated_size_at_full_ram": None if at_ram is None else float(f"{at_ram:.2g}"),
    }


def plot(stages: dict, path: Path) -> None:
    plt = pyplot()
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4))
    for name, st in stages.items():
        done = [p for p in st["points"] if p.get("seconds")]
        label = f"{name} (slope {st['fit'].get('time_exponent', '?')})"
        ax_t.plot([p["size"] for p in done], [p["seconds"] for p in done], "o-", label=label)
        ax_m.plot(
            [p["size"] for p in done],
            [max(p["peak_rss_mb"] - p["rss_before_mb"], 1.0) for p in done],
            "o-",
            label=name,
        )
    for ax, ylabel in ((ax_t, "seconds per run"), (ax_m, "extra peak RSS (MB)")):
        ax.set(xscale="log", yscale="log", xlabel="size (items or interactions)", ylabel=ylabel)
        ax.grid(alpha=0.3, which="both")
    ax_t.legend(fontsize=7)
    ax_t.set_title("time per stage (2-core CPU, 1 thread, shared)")
    ax_m.set_title("peak memory above the inputs")
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--stages", nargs="+", choices=[*PLAN, "ddp"], default=[*PLAN, "ddp"])
    p.add_argument("--seed", type=argtypes.seed, default=0)
    p.add_argument("--timeout", type=argtypes.seconds, default=180, help="seconds per measurement")
    p.add_argument("--out", default="results/bench_scaling.json")
    p.add_argument("--plot", default="plots/bench_scaling.png")
    p.add_argument(
        "--merge",
        action="store_true",
        help="update only the measured stages in --out, keeping the others (and their run record)",
    )
    p.add_argument("--worker", nargs=2, metavar=("STAGE", "SIZE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(run_stage(args.worker[0], int(args.worker[1]), args.seed)))
        return
    record = RunRecord("benchmarks/bench_scaling.py", vars(args), seed=args.seed)
    out: dict = {"machine": f"{os.cpu_count()} CPU cores (shared), 1 torch thread", "stages": {}}
    if args.merge and Path(args.out).exists():
        out = read_json(args.out)
    for stage in [s for s in args.stages if s in PLAN]:
        sizes, unit, what = PLAN[stage]
        with record.stage(stage):
            points = [measure(stage, n, args.seed, args.timeout) for n in sizes]
        out["stages"][stage] = {"unit": unit, "what": what, "points": points, "fit": growth(points)}
        if args.merge:  # this stage's own run record; the top-level one is the earlier full run
            out["stages"][stage][RUN_RECORD] = record.to_dict()
        print(stage, json.dumps(out["stages"][stage]), flush=True)
    if "ddp" in args.stages:
        with record.stage("ddp"):
            out["ddp_cpu"] = ddp_runs(args.timeout * 2)
    plot(out["stages"], Path(args.plot))
    out["plot"] = args.plot
    if not args.merge or RUN_RECORD not in out:
        out[RUN_RECORD] = record.to_dict()
    atomic_write_json(args.out, out)


if __name__ == "__main__":
    run_script(main)
