"""Speed and memory of MF training and evaluation: epochs/s, examples/s, test time, peak memory.

Target (issue 4): one training epoch over Beauty's implicit set (~143k training
positives with 4 sampled negatives each, ~717k examples) in under 5 s on a
2-core CPU.

    python benchmarks/bench_mf.py                                  # beauty and data/ml-100k, mf_id
    python benchmarks/bench_mf.py --data-dirs beauty --models mf_id mf_semantic --epochs 3

Data sets run in the order given; peak RSS is the process peak so far, so
list the small data set first to read each figure separately.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.pointwise.evaluation import PointwiseEvaluator  # noqa: E402
from src.pointwise.experiment import train_pointwise  # noqa: E402
from src.pointwise.mf import DEFAULTS, MODEL_NAMES, SEMANTIC_MODELS, model_factory  # noqa: E402
from src.training import TrainConfig  # noqa: E402
from utils.data.examples import TrainSampler, resolve_objective  # noqa: E402
from utils.data.load import load_dataset  # noqa: E402
from utils.data.semantic import load_semantic_ids  # noqa: E402
from utils.data.splits import get_split  # noqa: E402
from utils.reporting.runinfo import RunRecord  # noqa: E402
from utils.runtime.cli import add_common_args, setup  # noqa: E402
from utils.runtime.errors import run_script  # noqa: E402
from utils.runtime.io import atomic_write_json  # noqa: E402

log = logging.getLogger("bench_mf")
TARGET_BEAUTY_EPOCH_SECONDS = 5.0


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def bench_one(data_dir: str, model_name: str, args: argparse.Namespace, device: str) -> dict:
    ds = load_dataset(data_dir)
    objective = resolve_objective(ds, "auto")
    defaults = DEFAULTS[objective]
    split = get_split(ds, "temporal", args.split_seed, cache_dir=Path(data_dir) / "splits")
    codes = sizes = None
    if model_name in SEMANTIC_MODELS:
        sids = load_semantic_ids(data_dir, ds)
        codes, sizes = sids.codes, list(sids.codebook_sizes)
    sampler = TrainSampler(ds, split, objective, args.negatives, args.seed)
    t0 = time.perf_counter()
    sampler.epoch(0)
    sample_seconds = time.perf_counter() - t0
    evaluator = PointwiseEvaluator(ds, split, objective, device)
    torch.manual_seed(args.seed)
    model = model_factory(ds, split, objective, defaults["dim"], args.negatives, codes, sizes)(
        model_name
    ).to(device)
    # Patience above the epoch count: every requested epoch runs.
    cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=defaults["batch_size"],
        lr=defaults["lr"],
        patience=args.epochs + 1,
    )
    result = train_pointwise(
        model, sampler, evaluator, cfg, args.seed, defaults["reg"], desc=f"bench {model_name}"
    )
    epoch_seconds = [h["train_seconds"] for h in result.history]
    t0 = time.perf_counter()
    evaluator.evaluate(model, "test")
    test_seconds = time.perf_counter() - t0
    mean_epoch = sum(epoch_seconds) / len(epoch_seconds)
    out = {
        "data": ds.name,
        "objective": objective,
        "model": model_name,
        "device": device,
        "threads": torch.get_num_threads(),
        "examples_per_epoch": len(sampler),
        "batch_size": defaults["batch_size"],
        "dim": defaults["dim"],
        "epoch_seconds": epoch_seconds,
        "mean_epoch_seconds": round(mean_epoch, 3),
        "epochs_per_second": round(1 / mean_epoch, 3),
        "examples_per_second": round(result.examples_per_second, 1),
        "negative_sampling_seconds_per_epoch": round(sample_seconds, 3),
        "test_evaluation_seconds": round(test_seconds, 3),
        "peak_rss_mb_so_far": round(peak_rss_mb(), 1),
    }
    if device.startswith("cuda"):
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / (1 << 20), 1)
    if objective == "implicit" and ds.name == "beauty":
        out["target_epoch_seconds"] = TARGET_BEAUTY_EPOCH_SECONDS
        out["meets_target"] = mean_epoch < TARGET_BEAUTY_EPOCH_SECONDS
    log.info("%s", out)
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_args(p, default_out="results/bench_mf.json", threads=1)
    p.add_argument("--data-dirs", nargs="+", default=["data/ml-100k", "beauty"])
    p.add_argument(
        "--models",
        nargs="+",
        choices=[m for m in MODEL_NAMES if m != "global_mean"],
        default=["mf_id", "mf_semantic"],
    )
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--negatives", type=int, default=4)
    args = p.parse_args(argv)
    device = setup(args)
    record = RunRecord("benchmarks/bench_mf.py", vars(args), args.seed)
    rows = []
    for data_dir in args.data_dirs:
        for model_name in args.models:
            with record.stage(f"{Path(data_dir).name} {model_name}"):
                rows.append(bench_one(data_dir, model_name, args, device))
    for r in rows:
        verdict = (
            ""
            if "meets_target" not in r
            else f"  target <{r['target_epoch_seconds']}s: "
            f"{'met' if r['meets_target'] else 'MISSED'}"
        )
        print(
            f"{r['data']:>10} {r['model']:>12} {r['objective']:>8}: "
            f"{r['mean_epoch_seconds']:6.2f} s/epoch, "
            f"{r['examples_per_second']:>10,.0f} examples/s, "
            f"test eval {r['test_evaluation_seconds']:.2f} s, "
            f"peak RSS {r['peak_rss_mb_so_far']:.0f} MB{verdict}"
        )
    atomic_write_json(args.out, {"benchmarks": rows, "run_record": record.to_dict()})
    return rows


if __name__ == "__main__":
    run_script(main)
