"""Train TIGER (generative retrieval over semantic IDs) and SASRec on a leave-one-out split.

Protocol (Rajput et al. 2023): last item per user = test, second-to-last =
validation, history = the 20 most recent items, every prefix of a training
sequence is a training window, full-catalogue Recall/NDCG@5/10. Writes
results/tiger_results.json and plots/tiger_*.png.

    # quick preset: item-level TIGER + SASRec (2-core CPU, ~40 min)
    python tiger_train_eval.py
    # the paper's token-level encoder, longer (CPU: hours)
    python tiger_train_eval.py --preset long
    # the paper's size and schedule (GPU)
    python tiger_train_eval.py --preset paper
    # the same on 8 GPUs, one process each (data-parallel; README "Scaling out")
    torchrun --standalone --nproc_per_node 8 tiger_train_eval.py --preset paper
    # TIGER on IDs generated into another folder
    python tiger_train_eval.py --semantic-dir /tmp/beauty_rqvae

--threads defaults to 1: with other jobs on a 2-core machine, one item-level TIGER
training step took 0.17-0.18 s (median) on one thread against 0.34-0.41 s on two.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from src.sequential.beam_search import build_trie
from src.sequential.presets import MODELS, PRESETS, PUBLISHED
from src.sequential.reporting import plot_results, run_report, test_predictions
from src.sequential.runs import run_sasrec, run_tiger
from src.sequential.sequence_data import build_sequence_data
from utils.data.semantic import ids_digest
from utils.data.slices import row_slices
from utils.reporting.examples_page import examples_page
from utils.reporting.results import write_results
from utils.reporting.tables import tiger_table
from utils.runtime.argtypes import fraction, non_negative_int, positive_int
from utils.runtime.cli import add_common_args
from utils.runtime.errors import run_script
from utils.runtime.experiment import add_experiment_args, setup_experiment
from utils.runtime.io import atomic_write_text

log = logging.getLogger("tiger_train_eval")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_args(p, "results/tiger_results.json", threads=1, plots=True)
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="quick",
        help="model size and schedule (default: quick)",
    )
    p.add_argument(
        "--models",
        nargs="+",
        choices=MODELS,
        help="models to run (tiger_item = the item-level encoder variant; "
        "default: the preset's models)",
    )
    p.add_argument(
        "--epochs", type=positive_int, help="override the preset's epochs for every model"
    )
    p.add_argument(
        "--beam", type=positive_int, help="beam width (preset default 20; top 10 are ranked)"
    )
    p.add_argument(
        "--user-tokens",
        type=non_negative_int,
        default=0,
        help="hashed user-token buckets for TIGER (default 0 = off)",
    )
    p.add_argument(
        "--cold-share",
        type=fraction,
        help="cold-start ranking: this share of the top 10 (rounded up) is reserved for the best "
        "cold items (preset default 0.1; 0 = plain beam search only)",
    )
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the training step (worth it on a GPU)"
    )
    add_experiment_args(p, split_choice=False, repeat_seeds=False)
    p.add_argument(
        "--checkpoint-dir",
        default="checkpoints",
        help="per-epoch checkpoints (default: checkpoints/); TIGER's file names carry a digest "
        "of the semantic IDs, so runs on other IDs never resume each other",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue each model from its last checkpoint"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    preset = PRESETS[args.preset]
    models = list(args.models or preset.models)
    if args.epochs is not None:
        preset = preset.with_epochs(args.epochs)
    if args.compile:
        preset = replace(
            preset, train={k: replace(v, compile=True) for k, v in preset.train.items()}
        )
    preset = replace(
        preset,
        beam=args.beam or preset.beam,
        tiger=replace(preset.tiger, user_tokens=args.user_tokens),
        cold_share=preset.cold_share if args.cold_share is None else args.cold_share,
    )
    exp = setup_experiment(
        args,
        "tiger_train_eval.py",
        split_kind="leave_one_out",
        needs_ids=any(m != "sasrec" for m in models),
        outputs={"--checkpoint-dir": args.checkpoint_dir},
    )
    exp.record.config.update(preset_config=preset.to_dict(), torch_threads=torch.get_num_threads())
    ds, split, sem = exp.ds, exp.split, exp.sids
    with exp.record.stage("sequence data"):
        data = build_sequence_data(ds, split, preset.tiger.max_items)
    log.info("sequence data: %s", data.summary())
    test_masks = row_slices(ds, split, data.test.rows.numpy())

    results = {
        "dataset": ds.name,
        "preset": args.preset,
        "seed": args.seed,
        "preset_note": preset.note,
        "device": exp.device,
        "protocol": "leave-one-out (last item test, second-to-last validation), "
        "history = 20 most recent items, full-catalogue ranking; val/test metrics on ALL users "
        "(curves during training use "
        f"{preset.val_users_during_training or 'all'} fixed validation users)",
        "data": data.summary(),
        "split": {**split.sizes(), **split.info},
        "semantic_ids": exp.ids_info,
        "models": {},
        "published_beauty_test": PUBLISHED,
        "complete": False,
    }
    ckpt = Path(args.checkpoint_dir)
    for name in models:
        stem = f"tiger-{name}-{ds.name}-{args.preset}-seed{args.seed}"
        with exp.record.stage(name):
            if name == "sasrec":
                run = run_sasrec(
                    data,
                    ds.n_items,
                    preset,
                    args.seed,
                    exp.device,
                    str(ckpt / f"{stem}.pt"),
                    args.resume,
                    progress=exp.progress,
                    top_k=args.top_k,
                )
            else:
                path = str(ckpt / f"{stem}-ids{ids_digest(sem)}.pt")
                preset = replace(
                    preset, tiger=replace(preset.tiger, codebook_sizes=list(sem.codebook_sizes))
                )
                trie = build_trie(sem.codes, sem.codebook_sizes)
                run = run_tiger(
                    name,
                    data,
                    sem.codes,
                    trie,
                    preset,
                    ds.user_ids,
                    args.seed,
                    exp.device,
                    path,
                    args.resume,
                    is_cold=split.is_cold(np.arange(ds.n_items)),
                    progress=exp.progress,
                )
        results["models"][name] = run_report(run, test_masks)
        if exp.save_predictions:
            meta, arrays = test_predictions(run, ds.user_ids, ds.item_ids, data.test.user)
            results["models"][name]["predictions"] = exp.save(
                name, args.seed, "ranking", meta, **arrays
            )
        log.info(
            "%s test %s (%s)",
            name,
            results["models"][name]["test"],
            results["models"][name]["timing"],
        )
        # Written after every model, so a long run that is stopped keeps what it finished.
        write_results(exp.out_path, results, exp.record)

    results["plots"] = plot_results(results, args.plot_dir)
    results["complete"] = True
    written = write_results(exp.out_path, results, exp.record)
    if exp.save_predictions and sem is not None:
        page = exp.out_path.with_name(exp.out_path.stem + "_examples.md")
        atomic_write_text(page, examples_page(written, ds, sem.codes, split.cold_items, args.seed))
        log.info("wrote %s", page)
    log.info("test metrics:\n%s", tiger_table(written, exp.out_path.name))
    log.info("wrote %s", exp.out_path)


if __name__ == "__main__":
    run_script(main)
