"""The TIGER recipe sweep behind the quick preset: each variant trains on the same
fixed budget of epochs and is scored on validation only (the test set is never
touched here), so the choice is reproducible and cannot overfit the test.

Every variant changes one thing against ``base`` (the quick preset's item-level
TIGER with the budget given by --epochs). Results go into one JSON keyed by
variant, so several processes can each run a part of the grid (2 cores: two
processes with --threads 1 each) and add to the same file.

    python benchmarks/sweep_tiger.py --data-dir beauty --epochs 3 --variants base lr_2e-3 lr_1e-2
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.sequential.beam_search import build_trie  # noqa: E402
from src.sequential.presets import PRESETS, Preset  # noqa: E402
from src.sequential.ranking import tiger_rank  # noqa: E402
from src.sequential.runs import subset_index, window_batches  # noqa: E402
from src.sequential.sequence_data import build_sequence_data, n_bucketed_batches  # noqa: E402
from src.sequential.tiger import Tiger  # noqa: E402
from src.training import fit  # noqa: E402
from utils.data.load import load_dataset  # noqa: E402
from utils.data.semantic import load_semantic_ids  # noqa: E402
from utils.data.splits import get_split  # noqa: E402
from utils.evaluation.metrics import ranking_metrics  # noqa: E402
from utils.reporting.results import RUN_RECORD  # noqa: E402
from utils.reporting.runinfo import RunRecord  # noqa: E402
from utils.runtime.cli import add_common_args, setup  # noqa: E402
from utils.runtime.errors import run_script  # noqa: E402
from utils.runtime.io import atomic_write_json, locked, read_json  # noqa: E402

log = logging.getLogger("sweep_tiger")
MODEL = "tiger_item"


def _train_change(**kw: Any) -> Callable[[Preset], Preset]:
    return lambda p: replace(p, train={**p.train, MODEL: replace(p.train[MODEL], **kw)})


def _model_change(**kw: Any) -> Callable[[Preset], Preset]:
    return lambda p: replace(p, tiger=replace(p.tiger, **kw))


# name -> (what it changes, how). Each differs from ``base`` in one respect.
VARIANTS: dict[str, tuple[str, Callable[[Preset], Preset]]] = {
    "base": ("quick preset: lr 5e-3, warm-up then cosine decay, dropout 0.1", lambda p: p),
    "lr_2e-3": ("peak learning rate 2e-3", _train_change(lr=2e-3)),
    "lr_1e-2": ("peak learning rate 1e-2", _train_change(lr=1e-2)),
    "inverse_sqrt": (
        "inverse-sqrt decay after warm-up (the paper's schedule) instead of cosine",
        _train_change(schedule="inverse_sqrt"),
    ),
    "label_smoothing_0.1": (
        "label smoothing 0.1 within each level",
        _model_change(label_smoothing=0.1),
    ),
    "dropout_0.2": ("dropout 0.2", _model_change(dropout=0.2)),
    "batch_512": ("batch 512 (half the steps per epoch)", _train_change(batch_size=512)),
    "ff_1024": ("feed-forward width 1024", _model_change(d_ff=1024)),
    "base_4_epochs": (
        "base trained 4 epochs instead of 3: about the time ff_1024 takes for 3",
        _train_change(epochs=4),
    ),
    "history_50": (
        "the encoder reads the last 50 items of the history instead of 20 (SASRec's length)",
        _model_change(max_items=50),
    ),
    "old_init": (
        "token embeddings N(0, 0.02) against positions N(0, 1): the defect this sweep's "
        "recipe fixes",
        lambda p: p,
    ),
}


def run_variant(
    name: str, preset: Preset, data, codes: np.ndarray, sizes: list[int], seed: int, device: str
) -> dict[str, Any]:
    """Train one variant on the fixed budget; validation metrics of its best epoch on all users."""
    torch.manual_seed(seed)
    cfg = replace(preset.tiger, codebook_sizes=sizes, encoder="item")
    model = Tiger(cfg, codes).to(device)
    if name == "old_init":
        torch.nn.init.normal_(model.embed.weight, std=0.02)
        with torch.no_grad():
            model.embed.weight[0].zero_()
    train, val = data.train.to(device), data.val.to(device)
    trie = build_trie(codes, sizes).to(device)
    val_idx = subset_index(len(val), preset.val_users_during_training, seed, 0x7A1)
    val_sub = val.subset(val_idx)
    tcfg = preset.train[MODEL]
    t0 = time.perf_counter()
    result = fit(
        model,
        window_batches(train, tcfg.batch_size, seed, None),
        lambda m, b: m.loss(*b),
        lambda m: ranking_metrics(
            tiger_rank(m, val_sub, trie, preset.beam, preset.eval_batch).ranks
        ),
        tcfg,
        steps_per_epoch=n_bucketed_batches(train.length, tcfg.batch_size),
        desc=name,
    )
    final = tiger_rank(model, val, trie, preset.beam, preset.eval_batch, desc=f"{name} val (all)")
    return {
        "what": VARIANTS[name][0],
        "val_all_users": ranking_metrics(final.ranks),
        "n_val_users": len(val),
        "longest_history_read": int(train.length.max()),
        "best_epoch": result.best_epoch,
        "epochs": tcfg.epochs,
        "batch_size": tcfg.batch_size,
        "steps": tcfg.epochs * n_bucketed_batches(train.length, tcfg.batch_size),
        "train_seconds": round(result.train_seconds, 1),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "curve": result.history,
        "train_config": tcfg.__dict__,
        "model_config": cfg.to_dict(),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_args(p, "results/tiger_sweep.json", threads=1)
    p.add_argument(
        "--epochs",
        type=int,
        default=3,
        help="the fixed budget every variant trains for (default 3)",
    )
    p.add_argument(
        "--variants",
        nargs="+",
        default=list(VARIANTS),
        choices=list(VARIANTS),
        metavar="NAME",
        help=f"which variants to run (default: all of {', '.join(VARIANTS)})",
    )
    args = p.parse_args(argv)
    device = setup(args)
    record = RunRecord("benchmarks/sweep_tiger.py", vars(args), seed=args.seed)
    ds = load_dataset(args.data_dir)
    record.data_checksum = ds.checksum
    split = get_split(
        ds, "leave_one_out", seed=args.split_seed, cache_dir=Path(args.data_dir) / "splits"
    )
    base = PRESETS["quick"].with_epochs(args.epochs)
    windows: dict[int, Any] = {}  # the training windows per history length
    sem = load_semantic_ids(args.data_dir, ds)
    out = Path(args.out)
    for name in args.variants:
        preset = VARIANTS[name][1](base)
        length = preset.tiger.max_items
        if length not in windows:
            windows[length] = build_sequence_data(ds, split, length)
        with record.stage(name):
            rep = run_variant(
                name,
                preset,
                windows[length],
                sem.codes,
                list(sem.codebook_sizes),
                args.seed,
                device,
            )
        log.info("%s: val %s (%.0f s)", name, rep["val_all_users"], rep["wall_seconds"])
        with locked(out):
            results = read_json(out) if out.exists() else {"dataset": ds.name, "variants": {}}
            results["budget_epochs"] = args.epochs
            results["protocol"] = (
                "each variant of the quick preset's item-level TIGER trains for the same "
                "epochs; metrics = validation (all users) at the best epoch; test untouched"
            )
            results["variants"][name] = {
                **rep,
                RUN_RECORD: record.to_dict(),
                "torch_threads": torch.get_num_threads(),
            }
            atomic_write_json(out, results)


if __name__ == "__main__":
    run_script(main)
