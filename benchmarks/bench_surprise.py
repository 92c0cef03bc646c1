"""Peer baseline: scikit-surprise's SVD and BaselineOnly beside our MF on the same MovieLens split.

Both sides train on exactly the same training rows (ours also uses the
validation rows for early stopping; surprise runs its default epochs) and are
scored on the same test rows with the same metric code, overall and on warm
and cold items. Unknown (cold) items get ``mu + b_u`` from both.

scikit-surprise is not a project requirement. It publishes a cp311
manylinux wheel (1.1.5) that works with numpy 2; to try it without touching
the project environment:

    pip install --no-deps --target /tmp/surprise_pkgs scikit-surprise
    PYTHONPATH=/tmp/surprise_pkgs python benchmarks/bench_surprise.py --data-dir data/ml-100k
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.pointwise.batches import predict  # noqa: E402
from src.pointwise.evaluation import PointwiseEvaluator  # noqa: E402
from src.pointwise.experiment import train_pointwise  # noqa: E402
from src.pointwise.mf import DEFAULTS, model_factory  # noqa: E402
from src.training import TrainConfig  # noqa: E402
from utils.data.dataset import Dataset  # noqa: E402
from utils.data.examples import TrainSampler  # noqa: E402
from utils.data.load import load_dataset  # noqa: E402
from utils.data.splits import Split, get_split  # noqa: E402
from utils.evaluation.metrics import mae, rmse  # noqa: E402
from utils.reporting.runinfo import RunRecord  # noqa: E402
from utils.runtime.cli import add_common_args, setup  # noqa: E402
from utils.runtime.errors import run_script  # noqa: E402
from utils.runtime.io import atomic_write_json  # noqa: E402

log = logging.getLogger("bench_surprise")


def rating_report(
    ds: Dataset, split: Split, pred: np.ndarray, rating_range: tuple[float, float]
) -> dict[str, dict]:
    """RMSE/MAE of clipped test predictions, overall and on warm and cold items."""
    y = ds.ratings[split.test]
    pred = np.clip(pred, *rating_range)
    cold = split.is_cold(ds.items[split.test])
    return {
        name: {"n": int(m.sum()), "rmse": rmse(y[m], pred[m]), "mae": mae(y[m], pred[m])}
        for name, m in (
            ("overall", np.ones_like(cold)),
            ("warm_items", ~cold),
            ("cold_items", cold),
        )
    }


def run_surprise(
    ds: Dataset, split: Split, algo_name: str, seed: int, rating_range: tuple[float, float]
) -> dict:
    import pandas as pd
    from surprise import SVD, BaselineOnly, Reader
    from surprise import Dataset as SurpriseDataset

    frame = pd.DataFrame(
        {"u": ds.users[split.train], "i": ds.items[split.train], "r": ds.ratings[split.train]}
    )
    trainset = SurpriseDataset.load_from_df(
        frame, Reader(rating_scale=rating_range)
    ).build_full_trainset()
    algo = SVD(random_state=seed) if algo_name == "SVD" else BaselineOnly(verbose=False)
    t0 = time.perf_counter()
    algo.fit(trainset)
    fit_seconds = time.perf_counter() - t0
    pairs = [(int(u), int(i), 0.0) for u, i in zip(ds.users[split.test], ds.items[split.test])]
    pred = np.array([p.est for p in algo.test(pairs)])
    return {
        "model": f"surprise {algo_name}",
        "fit_seconds": round(fit_seconds, 3),
        **rating_report(ds, split, pred, rating_range),
    }


def run_ours(ds: Dataset, split: Split, name: str, seed: int, device: str) -> dict:
    d = DEFAULTS["explicit"]
    evaluator = PointwiseEvaluator(ds, split, "explicit", device)
    torch.manual_seed(seed)
    model = model_factory(ds, split, "explicit", d["dim"], 0)(name).to(device)
    cfg = TrainConfig(epochs=d["epochs"], batch_size=d["batch_size"], lr=d["lr"], patience=3)
    t0 = time.perf_counter()
    result = train_pointwise(
        model,
        TrainSampler(ds, split, "explicit", 0, seed),
        evaluator,
        cfg,
        seed,
        d["reg"],
        desc=name,
    )
    fit_seconds = time.perf_counter() - t0
    pred = predict(model, evaluator.tensors["test"])
    return {
        "model": f"ours {name}",
        "fit_seconds": round(fit_seconds, 3),
        "best_epoch": result.best_epoch,
        **rating_report(ds, split, pred, evaluator.rating_range),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_args(p, default_out="results/bench_surprise.json", threads=1)
    p.add_argument(
        "--splits", nargs="+", default=["temporal", "random"], choices=["temporal", "random"]
    )
    p.add_argument("--cold-fraction", type=float, default=0.05)
    args = p.parse_args(argv)
    device = setup(args)
    try:
        import surprise
    except ImportError as exc:
        raise SystemExit(
            f"scikit-surprise is not importable ({exc}); see `python {Path(__file__).name} --help` "
            "for installing it outside the project environment"
        ) from exc
    ds = load_dataset(args.data_dir)
    if not ds.has_ratings:
        raise SystemExit(
            f"{args.data_dir}: no star ratings; this benchmark compares rating prediction "
            "(use data/ml-100k)"
        )
    record = RunRecord(
        "benchmarks/bench_surprise.py",
        {**vars(args), "surprise": surprise.__version__},
        args.seed,
        ds.checksum,
    )
    rows = []
    for kind in args.splits:
        split = get_split(
            ds, kind, args.split_seed, args.cold_fraction, cache_dir=Path(args.data_dir) / "splits"
        )
        rating_range = (float(ds.ratings[split.train].min()), float(ds.ratings[split.train].max()))
        runs = {
            "ours bias": lambda split=split: run_ours(ds, split, "bias", args.seed, device),
            "ours mf_id": lambda split=split: run_ours(ds, split, "mf_id", args.seed, device),
            "surprise BaselineOnly": lambda split=split, rating_range=rating_range: run_surprise(
                ds, split, "BaselineOnly", args.seed, rating_range
            ),
            "surprise SVD": lambda split=split, rating_range=rating_range: run_surprise(
                ds, split, "SVD", args.seed, rating_range
            ),
        }
        for label, run in runs.items():
            with record.stage(f"{kind} {label}"):
                rows.append({"split": kind, **run()})
    print(
        f"{'split':>9} {'model':>22} {'RMSE':>7} {'MAE':>7} "
        f"{'warm RMSE':>9} {'cold RMSE':>9} {'fit s':>7}"
    )
    for r in rows:
        print(
            f"{r['split']:>9} {r['model']:>22} "
            f"{r['overall']['rmse']:7.4f} {r['overall']['mae']:7.4f} "
            f"{r['warm_items']['rmse']:9.4f} {r['cold_items']['rmse']:9.4f} {r['fit_seconds']:7.2f}"
        )
    atomic_write_json(args.out, {"rows": rows, "run_record": record.to_dict()})
    return rows


if __name__ == "__main__":
    run_script(main)
