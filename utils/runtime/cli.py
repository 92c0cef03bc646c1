"""The flags every script shares, and the set-up they imply (seed, logging, device)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from utils.runtime import argtypes
from utils.runtime.environment import resolve_device, seed_everything
from utils.runtime.errors import add_debug_flag

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def add_common_args(
    parser: argparse.ArgumentParser,
    default_out: str | None,
    threads: int | None = None,
    plots: bool = False,
) -> argparse.ArgumentParser:
    """Add --data-dir, --seed, --split-seed, --device, --out and --quiet to ``parser``.

    ``threads`` adds --threads with that default (0 = torch's own choice); ``plots`` adds
    --plot-dir.
    """
    g = parser.add_argument_group("common options")
    g.add_argument(
        "--data-dir",
        default="beauty",
        help="prepared data folder (default: beauty; MovieLens: data/ml-100k)",
    )
    g.add_argument(
        "--seed",
        type=argtypes.seed,
        default=0,
        help="seed for python, numpy and torch (model init, sampling)",
    )
    g.add_argument(
        "--split-seed",
        type=argtypes.seed,
        default=0,
        help="seed of the data split and the cold-item hold-out (kept fixed across --seed)",
    )
    g.add_argument(
        "--device",
        type=argtypes.device_name,
        default="auto",
        help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps",
    )
    g.add_argument(
        "--out", default=default_out, help=f"results JSON to write (default: {default_out})"
    )
    g.add_argument(
        "--quiet", action="store_true", help="only warnings and errors; no progress bars"
    )
    add_debug_flag(g)
    if threads is not None:
        g.add_argument(
            "--threads",
            type=argtypes.threads,
            default=threads,
            help=f"torch CPU threads (default {threads}; 0 = torch's choice). "
            "Small models train fastest on one thread, and extra spinning threads slow down badly "
            "when other jobs share the cores",
        )
    if plots:
        g.add_argument(
            "--plot-dir", default="plots", help="where the PNG plots go (default: plots)"
        )
    return parser


def resolve_out(template: str, dataset: str) -> Path:
    """``--out`` with ``{dataset}`` filled in. Only that placeholder: any other brace is part of the
    user's file name (``str.format`` would fail on it, or fill it from the arguments)."""
    return Path(template.replace("{dataset}", dataset))


def setup_logging(quiet: bool = False) -> None:
    """INFO logging (WARNING with --quiet) in one format for every script."""
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO, format=LOG_FORMAT, force=True
    )
    # Third-party libraries are chatty at INFO; keep our own messages readable.
    for noisy in (
        "sentence_transformers",
        "transformers",
        "httpx",
        "urllib3",
        "matplotlib",
        "faiss",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def setup(args: argparse.Namespace, needs_torch: bool = True) -> str:
    """Configure logging, seed everything and resolve the device; returns the device string."""
    setup_logging(getattr(args, "quiet", False))
    seed_everything(args.seed)
    device = resolve_device(args.device) if needs_torch else "cpu"
    if getattr(args, "threads", 0):
        import torch

        torch.set_num_threads(args.threads)
    logging.getLogger(__name__).info(
        "seed=%d split_seed=%d device=%s", args.seed, args.split_seed, device
    )
    return device
