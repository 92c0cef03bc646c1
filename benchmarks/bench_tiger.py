"""Speed of TIGER (token- and item-level encoders) and SASRec: where a training step's time goes,
training examples/s, and beam-search (or full-scoring) users/s.

Runs on the real Beauty windows (or any prepared folder). Uses the semantic
IDs in the folder when they exist; otherwise random 3-level codes plus a
collision level, which cost the same to train and decode (say so in the output).

    python benchmarks/bench_tiger.py --data-dir beauty --steps 30 --threads 1
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.sequential.beam_search import build_trie  # noqa: E402
from src.sequential.presets import PRESETS  # noqa: E402
from src.sequential.ranking import score_rank, tiger_rank  # noqa: E402
from src.sequential.runs import subset_index  # noqa: E402
from src.sequential.sasrec import SASRec  # noqa: E402
from src.sequential.sequence_data import bucketed_batches, build_sequence_data  # noqa: E402
from src.sequential.tiger import Tiger  # noqa: E402
from utils.data.load import load_dataset  # noqa: E402
from utils.data.semantic import load_semantic_ids  # noqa: E402
from utils.data.splits import get_split  # noqa: E402
from utils.reporting.results import RUN_RECORD  # noqa: E402
from utils.reporting.runinfo import RunRecord  # noqa: E402
from utils.runtime.cli import add_common_args, setup  # noqa: E402
from utils.runtime.errors import (
    DataError,  # noqa: E402
    run_script,  # noqa: E402
)
from utils.runtime.io import atomic_write_json  # noqa: E402

log = logging.getLogger("bench_tiger")


def random_codes(n_items: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """3 random 256-way levels + a collision level numbering items that share the first three."""
    rng = np.random.default_rng(seed)
    head = rng.integers(0, 256, (n_items, 3))
    _, inverse = np.unique(head, axis=0, return_inverse=True)
    order = np.argsort(inverse.ravel(), kind="stable")
    group = inverse.ravel()[order]
    starts = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
    rank = np.arange(n_items) - np.repeat(starts, np.diff(np.r_[starts, n_items]))
    collision = np.empty(n_items, dtype=np.int64)
    collision[order] = rank
    return np.c_[head, collision], [256, 256, 256, int(collision.max()) + 1]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_steps(
    model: torch.nn.Module,
    loss_fn,
    lengths: torch.Tensor,
    batch_of,
    steps: int,
    batch_size: int,
    device: str,
) -> dict[str, float]:
    """Mean seconds per step split into batch slicing, forward, backward and optimiser step.

    ``batch_of(idx, width)`` slices one batch; ``loss_fn(model, batch)`` returns its loss.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    parts = {"batch": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    n_ex, n = 0, 0
    model.train()
    batches = bucketed_batches(lengths, batch_size, torch.Generator().manual_seed(0))
    for k, (idx, width) in enumerate(batches):
        if k == steps + 2:
            break
        t0 = time.perf_counter()
        idx = idx.to(device)
        batch = batch_of(idx, width)
        sync(device)
        t1 = time.perf_counter()
        loss = loss_fn(model, batch)
        sync(device)
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        sync(device)
        t3 = time.perf_counter()
        opt.step()
        sync(device)
        t4 = time.perf_counter()
        if k >= 2:  # the first steps warm up allocators and kernels
            for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                parts[key] += dt
            n_ex += len(idx)
            n += 1
    total = sum(parts.values())
    return {
        "steps": n,
        "seconds_per_step": round(total / n, 4),
        "examples_per_second": round(n_ex / total, 1),
        **{f"{k}_share": round(v / total, 3) for k, v in parts.items()},
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_args(p, "results/bench_tiger.json", threads=0)
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument("--steps", type=int, default=30, help="timed training steps per model")
    p.add_argument(
        "--eval-users", type=int, default=1000, help="validation users to decode / score"
    )
    args = p.parse_args(argv)
    device = setup(args)
    preset = PRESETS[args.preset]
    record = RunRecord("benchmarks/bench_tiger.py", vars(args), seed=args.seed)
    ds = load_dataset(args.data_dir)
    record.data_checksum = ds.checksum
    split = get_split(
        ds, "leave_one_out", seed=args.split_seed, cache_dir=Path(args.data_dir) / "splits"
    )
    data = build_sequence_data(ds, split, preset.tiger.max_items)
    try:
        sem = load_semantic_ids(args.data_dir, ds)
        codes, sizes, code_source = sem.codes, sem.codebook_sizes, "semantic_ids.json"
    except DataError as exc:
        log.warning("%s; timing with random codes instead", exc)
        codes, sizes = random_codes(ds.n_items, args.seed)
        code_source = "random (no semantic_ids.json)"
    trie = build_trie(codes, sizes).to(device)
    train, val, chunks = data.train.to(device), data.val.to(device), data.train_chunks.to(device)
    val = val.subset(subset_index(len(val), args.eval_users, args.seed, 0xBE))
    out = {
        "device": device,
        "threads": torch.get_num_threads(),
        "codes": code_source,
        "preset": args.preset,
        "mean_train_history": data.summary()["mean_train_history"],
        "models": {},
    }
    for name in ("tiger", "tiger_item", "sasrec"):
        bs = preset.train[name].batch_size
        if name == "sasrec":
            model = SASRec(ds.n_items, preset.sasrec).to(device)
            step = time_steps(
                model,
                lambda m, b: m.loss(b),
                chunks.length,
                lambda i, w: chunks.seq[i, -w:],
                args.steps,
                bs,
                device,
            )
            ranks, secs = score_rank(model, val, preset.eval_batch)
            speed = {"scoring_users_per_second": round(len(val) / secs, 1)}
        else:
            cfg = replace(
                preset.tiger,
                codebook_sizes=sizes,
                encoder="item" if name == "tiger_item" else "token",
            )
            model = Tiger(cfg, codes).to(device)
            step = time_steps(
                model,
                lambda m, b: m.loss(*b),
                train.length,
                lambda i, w: (train.hist[i, -w:], train.target[i]),
                args.steps,
                bs,
                device,
            )
            r = tiger_rank(model, val, trie, preset.beam, preset.eval_batch)
            speed = {
                "beam_search_users_per_second": round(len(val) / r.seconds, 1),
                "beam": preset.beam,
            }
        epoch_min = len(chunks if name == "sasrec" else train) / step["examples_per_second"] / 60
        out["models"][name] = {
            **step,
            **speed,
            "estimated_epoch_minutes": round(epoch_min, 2),
            "batch_size": bs,
        }
        log.info("%s: %s", name, out["models"][name])
    out[RUN_RECORD] = record.to_dict()
    atomic_write_json(args.out, out)
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    run_script(main)
