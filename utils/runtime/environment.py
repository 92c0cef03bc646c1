"""Process-wide set-up that library code may need: seeding, the compute device, the repository
root."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np

from utils.runtime.errors import UsageError


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

    mps_available = (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    )
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if mps_available else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(
            f"--device {name}: CUDA is not available on this machine; use --device auto or cpu"
        )
    if name == "mps" and not mps_available:
        raise UsageError(
            "--device mps: MPS is not available on this machine; use --device auto or cpu"
        )
    return name


def repo_root() -> Path:
    """The checkout's top folder (where the scripts live)."""
    return Path(__file__).resolve().parents[2]
