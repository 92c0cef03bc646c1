"""The flags every script shares, and the set-up they imply (seed, logging, device)."""
from __future__ import annotations

import argparse
import logging
import os
import random
from pathlib import Path

import numpy as np

from utils.argtypes import device_name, non_negative_int
from utils.errors import add_debug_flag

_QUIET = False
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def add_common_args(
    parser: argparse.ArgumentParser, default_out: str | None, threads: int | None = None, plots: bool = False
) -> argparse.ArgumentParser:
    """Add --data-dir, --seed, --split-seed, --device, --out and --quiet to ``parser``.

    ``threads`` adds --threads with that default (0 = torch's own choice); ``plots`` adds --plot-dir.
    """
    g = parser.add_argument_group("common options")
    g.add_argument("--data-dir", default="beauty", help="prepared data folder (default: beauty; MovieLens: data/ml-100k)")
    g.add_argument("--seed", type=int, default=0, help="seed for python, numpy and torch (model init, sampling)")
    g.add_argument(
        "--split-seed", type=int, default=0, help="seed of the data split and the cold-item hold-out (kept fixed across --seed)"
    )
    g.add_argument("--device", type=device_name, default="auto",
                   help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    g.add_argument("--out", default=default_out, help=f"results JSON to write (default: {default_out})")
    g.add_argument("--quiet", action="store_true", help="only warnings and errors; no progress bars")
    add_debug_flag(g)
    if threads is not None:
        g.add_argument(
            "--threads", type=non_negative_int, default=threads,
            help=f"torch CPU threads (default {threads}; 0 = torch's choice). Small models train fastest on one "
            "thread, and extra spinning threads slow down badly when other jobs share the cores",
        )
    if plots:
        g.add_argument("--plot-dir", default="plots", help="where the PNG plots go (default: plots)")
    return parser


def quiet() -> bool:
    """True when --quiet was given: progress bars pass ``disable=quiet()``."""
    return _QUIET


def setup_logging(quiet_mode: bool = False) -> None:
    global _QUIET
    _QUIET = quiet_mode
    logging.basicConfig(level=logging.WARNING if quiet_mode else logging.INFO, format=LOG_FORMAT, force=True)
    # Third-party libraries are chatty at INFO; keep our own messages readable.
    for noisy in ("sentence_transformers", "transformers", "httpx", "urllib3", "matplotlib", "faiss"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch so the same seed gives the same numbers on the same machine."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import torch
    except ImportError:  # the data layer works without torch
        return
    torch.manual_seed(seed)


def resolve_device(name: str = "auto") -> str:
    """Map 'auto' to cuda, then mps, then cpu; check that an explicit choice exists."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: CUDA is not available on this machine; use --device auto or cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SystemExit("--device mps: MPS is not available on this machine; use --device auto or cpu")
    return name


def setup(args: argparse.Namespace, needs_torch: bool = True) -> str:
    """Configure logging, seed everything and resolve the device; returns the device string."""
    setup_logging(getattr(args, "quiet", False))
    seed_everything(args.seed)
    device = resolve_device(args.device) if needs_torch else "cpu"
    if getattr(args, "threads", 0):
        import torch

        torch.set_num_threads(args.threads)
    logging.getLogger(__name__).info("seed=%d split_seed=%d device=%s", args.seed, args.split_seed, device)
    return device


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
