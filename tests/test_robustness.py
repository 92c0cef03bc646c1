"""Issue 10: every bad input and every fault ends in one clear message, with nothing lost and nothing executed.

One section per numbered item of the issue; tests/test_hostile_inputs.py runs the scripts end to end.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from src.training import TrainConfig
from tests.test_training import _run
from utils.errors import CheckpointError


class _Payload:
    """Pickles as a call to os.system: what a planted file would carry."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# ---------------------------------------------------------------- 1. checkpoints load with weights_only


def test_a_planted_checkpoint_is_refused_and_never_executed(tmp_path):
    marker, ckpt = tmp_path / "pwned", tmp_path / "model.pt"
    torch.save({"model": {}, "optimizer": {}, "epoch": 0, "payload": _Payload(marker)}, ckpt)
    cfg = TrainConfig(epochs=2, lr=0.02, monitor="mse", mode="min", checkpoint=str(ckpt), resume=True)
    with pytest.raises(CheckpointError, match=f"{ckpt}: refused to load.*run without --resume"):
        _run(cfg)
    assert not marker.exists()


def test_a_damaged_checkpoint_is_refused_with_its_name(tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"PK\x03\x04 truncated")
    cfg = TrainConfig(epochs=2, lr=0.02, monitor="mse", mode="min", checkpoint=str(ckpt), resume=True)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        _run(cfg)


def test_own_checkpoints_load_with_weights_only(tmp_path):
    ckpt = str(tmp_path / "model.pt")
    _run(TrainConfig(epochs=2, lr=0.02, monitor="mse", mode="min", patience=100, checkpoint=ckpt))
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 1 and isinstance(state["result"]["history"], list)
