"""Train TIGER (generative retrieval over semantic IDs) and SASRec on a leave-one-out split.

Protocol (Rajput et al. 2023): last item per user = test, second-to-last =
validation, history = the 20 most recent items, every prefix of a training
sequence is a training window, full-catalogue Recall/NDCG@5/10. Writes
results/tiger_results.json and plots/tiger_*.png.

    python tiger_train_eval.py                    # quick preset: item-level TIGER + SASRec (2-core CPU, ~40 min)
    python tiger_train_eval.py --preset long      # the paper's token-level encoder, longer (CPU: hours)
    python tiger_train_eval.py --preset paper     # the paper's size and schedule (GPU)
    python tiger_train_eval.py --semantic-dir /tmp/beauty_rqvae   # TIGER on IDs generated into another folder

--threads defaults to 1: with other jobs on a 2-core machine, one item-level TIGER
training step took 0.17-0.18 s (median) on one thread against 0.34-0.41 s on two.
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from src.beam_search import build_trie
from src.sequence_data import build_sequence_data
from src.tiger_experiment import MODELS, PRESETS, PUBLISHED, plot_results, run_report, run_sasrec, run_tiger
from utils.argtypes import fraction, non_negative_int, positive_int
from utils.cli import add_common_args, setup
from utils.data import Dataset, load_dataset
from utils.errors import run_script
from utils.io import atomic_write_json, check_writable
from utils.runinfo import RunRecord
from utils.semantic import SemanticIds, ids_digest, load_semantic_ids, quantizer_name
from utils.slices import row_slices
from utils.splits import get_split

log = logging.getLogger("tiger_train_eval")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, "results/tiger_results.json", threads=1, plots=True)
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick", help="model size and schedule (default: quick)")
    p.add_argument("--models", help=f"comma-separated subset of {', '.join(MODELS)} (tiger_item = item-level "
                                    "encoder variant; default: the preset's models)")
    p.add_argument("--epochs", type=positive_int, help="override the preset's epochs for every model")
    p.add_argument("--beam", type=positive_int, help="beam width (preset default 20; top 10 are ranked)")
    p.add_argument("--user-tokens", type=non_negative_int, default=0,
                   help="hashed user-token buckets for TIGER (default 0 = off)")
    p.add_argument("--cold-share", type=fraction,
                   help="cold-start ranking: this share of the top 10 (rounded up) is reserved for the best "
                        "cold items (preset default 0.1; 0 = plain beam search only)")
    p.add_argument("--compile", action="store_true", help="torch.compile the training step (worth it on a GPU)")
    p.add_argument("--cold-fraction", type=fraction, default=0.05,
                   help="share of items held out of training (cold items)")
    p.add_argument("--semantic-dir", help="folder holding semantic_ids.json (default: --data-dir), e.g. "
                                          "IDs from --quantizer rqvae or random written to --output-dir")
    p.add_argument("--checkpoint-dir", default="checkpoints",
                   help="per-epoch checkpoints (default: checkpoints/); TIGER's file names carry a digest "
                        "of the semantic IDs, so runs on other IDs never resume each other")
    p.add_argument("--resume", action="store_true", help="continue each model from its last checkpoint")
    return p.parse_args(argv)


def load_ids(args: argparse.Namespace, ds: Dataset) -> SemanticIds:
    """The semantic IDs TIGER trains on, from --semantic-dir (checked against this data's checksum)."""
    return load_semantic_ids(args.semantic_dir or args.data_dir, ds)


def ids_record(args: argparse.Namespace, sem: SemanticIds) -> dict[str, Any]:
    """Which IDs the TIGER models used: folder, quantizer, codebook sizes and digests."""
    return {"dir": str(args.semantic_dir or args.data_dir), "quantizer": quantizer_name(sem.meta),
            "codebook_sizes": list(sem.codebook_sizes), "codebooks_sha256": sem.meta.get("codebooks_sha256"),
            "ids_digest": ids_digest(sem)}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = setup(args)
    preset = PRESETS[args.preset]
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else list(preset.models)
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise SystemExit(f"--models: unknown {unknown}; choose from {', '.join(MODELS)}")
    if args.epochs is not None:
        preset = preset.with_epochs(args.epochs)
    if args.compile:
        preset = replace(preset, train={k: replace(v, compile=True) for k, v in preset.train.items()})
    preset = replace(preset, beam=args.beam or preset.beam,
                     tiger=replace(preset.tiger, user_tokens=args.user_tokens),
                     cold_share=preset.cold_share if args.cold_share is None else args.cold_share)
    record = RunRecord("tiger_train_eval.py", {**vars(args), "preset_config": preset.to_dict(),
                                               "torch_threads": torch.get_num_threads()}, seed=args.seed)

    with record.stage("load"):
        ds = load_dataset(args.data_dir)
        check_writable({"--out": args.out},
                       {"--plot-dir": args.plot_dir, "--checkpoint-dir": args.checkpoint_dir,
                        "split cache": Path(args.data_dir) / "splits"})
        record.data_checksum = ds.checksum
        split = get_split(ds, "leave_one_out", seed=args.split_seed, cold_fraction=args.cold_fraction,
                          cache_dir=Path(args.data_dir) / "splits")
        data = build_sequence_data(ds, split, preset.tiger.max_items)
        log.info("sequence data: %s", data.summary())
        sem = load_ids(args, ds) if any(m != "sasrec" for m in models) else None
    test_masks = row_slices(ds, split, data.test.rows.numpy())

    results = {
        "dataset": ds.name, "preset": args.preset, "seed": args.seed, "preset_note": preset.note, "device": device,
        "protocol": "leave-one-out (last item test, second-to-last validation), history = 20 most recent items, "
                    "full-catalogue ranking; val/test metrics on ALL users (curves during training use "
                    f"{preset.val_users_during_training or 'all'} fixed validation users)",
        "data": data.summary(), "split": {**split.sizes(), **split.info},
        "semantic_ids": None if sem is None else ids_record(args, sem),
        "models": {}, "published_beauty_test": PUBLISHED, "complete": False,
    }
    ckpt = Path(args.checkpoint_dir)
    for name in models:
        stem = f"tiger-{name}-{ds.name}-{args.preset}-seed{args.seed}"
        with record.stage(name):
            if name == "sasrec":
                run = run_sasrec(data, ds.n_items, preset, args.seed, device, str(ckpt / f"{stem}.pt"),
                                 args.resume)
            else:
                path = str(ckpt / f"{stem}-ids{ids_digest(sem)}.pt")
                preset = replace(preset, tiger=replace(preset.tiger, codebook_sizes=list(sem.codebook_sizes)))
                trie = build_trie(sem.codes, sem.codebook_sizes)
                run = run_tiger(name, data, sem.codes, trie, preset, ds.user_ids, args.seed, device, path,
                                args.resume, is_cold=split.is_cold(np.arange(ds.n_items)))
        results["models"][name] = run_report(run, test_masks)
        log.info("%s test %s (%s)", name, results["models"][name]["test"], results["models"][name]["timing"])
        # Written after every model, so a long run that is stopped keeps what it finished.
        atomic_write_json(args.out, {**results, "run": record.to_dict()})

    results["plots"] = plot_results(results, args.plot_dir)
    results["complete"] = True
    results["run"] = record.to_dict()
    atomic_write_json(args.out, results)
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    run_script(main)
