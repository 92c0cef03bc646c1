"""Atomic writes, stable hashing, CLI set-up and the run record."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.helpers import CHILD_ENV
from utils.reporting import runinfo
from utils.reporting.runinfo import RunRecord, cpu_model
from utils.runtime.cli import add_common_args, setup
from utils.runtime.environment import repo_root, resolve_device
from utils.runtime.errors import UsageError
from utils.runtime.hashing import stable_hash, stable_hash_array
from utils.runtime.io import atomic_path, atomic_write_json, read_json


def test_atomic_write_json_handles_numpy_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "out.json"
    atomic_write_json(
        path, {"a": np.int64(3), "b": np.float32(0.5), "c": np.arange(3), "d": np.bool_(True)}
    )
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


def test_cpu_model_names_vendor_family_and_model(monkeypatch, tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\n"
        "model name\t: AMD EPYC\n\nprocessor\t: 1\nmodel name\t: other\n"
    )
    real_path = runinfo.Path
    monkeypatch.setattr(runinfo, "Path", lambda p: real_path(info) if p == "/proc/cpuinfo" else p)
    assert cpu_model() == "AMD EPYC (AuthenticAMD family 26 model 2)"
    info.write_text("processor\t: 0\nmodel name\t: Apple M3\n")
    assert cpu_model() == "Apple M3"


def test_stable_hash_is_stable_across_processes():
    here = stable_hash("brand=OPI", 1000)
    code = "from utils.runtime.hashing import stable_hash; print(stable_hash('brand=OPI', 1000))"
    env = {"PYTHONHASHSEED": "123", "PYTHONPATH": ".", **CHILD_ENV}
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert int(other) == here
    assert stable_hash_array(["a", "b", "a"], 97).tolist()[0] == stable_hash_array(["a"], 97)[0]


def _machine(monkeypatch, cuda: bool, mps: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize(
    "cuda, mps, expected", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")]
)
def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    """--device auto picks the best device the machine has (a wrong order, or 'auto' passed on to
    torch, fails), and an explicit choice is kept as given when the machine has it."""
    _machine(monkeypatch, cuda, mps)
    assert resolve_device("auto") == expected
    assert resolve_device("cpu") == "cpu"
    if cuda:
        assert resolve_device("cuda:1") == "cuda:1"


def test_an_absent_device_is_refused_with_the_fix(monkeypatch):
    """--device cuda / cuda:N / mps on a machine without it fails at set-up, naming the flag and
    --device auto, instead of crashing deep inside the first tensor move."""
    _machine(monkeypatch, cuda=False, mps=False)
    for name in ("cuda", "cuda:1", "mps"):
        with pytest.raises(UsageError, match=f"--device {name}: .*not available.*--device auto"):
            resolve_device(name)
    parser = add_common_args(argparse.ArgumentParser(), "results/x.json")
    with pytest.raises(UsageError, match="--device cuda"):
        setup(parser.parse_args(["--device", "cuda", "--quiet"]))


def test_common_args_setup_and_run_record():
    """setup() seeds torch and resolves the device; the run record holds what ran; the timing-free
    record is plain JSON that reads back equal (a tuple, a NaN or a non-string key would not) and
    is the same for two identical runs (byte-reproducible outputs rely on that)."""
    parser = add_common_args(argparse.ArgumentParser(), "results/x.json")
    args = parser.parse_args(["--seed", "5", "--quiet", "--device", "cpu"])
    assert (args.out, args.data_dir, args.split_seed) == ("results/x.json", "beauty", 0)
    assert setup(args) == "cpu"
    first = torch.rand(3)
    setup(args)
    assert torch.equal(torch.rand(3), first)

    config = {"k": 1, "sizes": [4, 4]}
    record = RunRecord("x.py", config, seed=5, data_checksum="abc")
    for _ in range(2):
        with record.stage("load"):
            pass
    full, bare = record.to_dict(), record.to_dict(include_timing=False)
    assert set(full) - set(bare) == {"stage_seconds", "wall_seconds", "finished_at"}
    assert list(full["stage_seconds"]) == ["load"] and full["stage_seconds"]["load"] >= 0.0
    expected = {"script": "x.py", "config": config, "seed": 5, "data_checksum": "abc"}
    assert {key: bare[key] for key in expected} == expected
    assert bare["library_versions"]["torch"] == torch.__version__
    # the machine, so that a difference between two machines' numbers can be traced
    machine = bare["platform"]
    assert machine["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert machine["torch_threads"] == torch.get_num_threads() and machine["cpu_model"]
    assert json.loads(json.dumps(bare)) == bare
    twin = RunRecord("x.py", {}).to_dict(include_timing=False)
    assert RunRecord("x.py", {}).to_dict(include_timing=False) == twin


def test_run_records_store_repository_paths_relative(tmp_path):
    """A committed run record names no folder of the machine that made it: paths inside the
    repository become relative; paths elsewhere and other values stay as given."""
    config = {
        "cache_dir": str(repo_root() / ".cache" / "embeddings"),
        "elsewhere": str(tmp_path),
        "out": "results/x.json",
        "seed": 3,
    }
    stored = RunRecord("x.py", config).to_dict()["config"]
    assert stored == {**config, "cache_dir": ".cache/embeddings"}
