"""Atomic writes, stable hashing, CLI set-up and the run record."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from utils.cli import add_common_args, resolve_device, setup
from utils.hashing import stable_hash, stable_hash_array
from utils.io import atomic_path, atomic_write_json, read_json
from utils.runinfo import RunRecord


def test_atomic_write_json_handles_numpy_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "out.json"
    atomic_write_json(path, {"a": np.int64(3), "b": np.float32(0.5), "c": np.arange(3), "d": np.bool_(True)})
    assert read_json(path) == {"a": 3, "b": 0.5, "c": [0, 1, 2], "d": True}
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]
    umask = os.umask(0o022)
    try:
        atomic_write_json(path, {})
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert path.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_stable_hash_is_stable_across_processes():
    here = stable_hash("brand=OPI", 1000)
    code = "from utils.hashing import stable_hash; print(stable_hash('brand=OPI', 1000))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "123", "PYTHONPATH": "."}).stdout
    assert int(other) == here
    assert stable_hash_array(["a", "b", "a"], 97).tolist()[0] == stable_hash_array(["a"], 97)[0]


def test_common_args_setup_and_run_record():
    parser = add_common_args(argparse.ArgumentParser(), "results/x.json")
    args = parser.parse_args(["--seed", "5", "--quiet", "--device", "cpu"])
    assert setup(args) == "cpu"
    assert resolve_device("auto") in ("cuda", "mps", "cpu")
    record = RunRecord("x.py", {"k": 1}, seed=5, data_checksum="abc")
    with record.stage("load"):
        pass
    full, bare = record.to_dict(), record.to_dict(include_timing=False)
    assert "load" in full["stage_seconds"] and "wall_seconds" in full and "torch" in full["library_versions"]
    assert "stage_seconds" not in bare and json.dumps(bare)
