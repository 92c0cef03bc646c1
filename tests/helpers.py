"""Helpers several test modules share (not tests; fixtures live in tests/conftest.py)."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import semantic_id_generator
from src.training import TrainConfig, TrainResult, epoch_generator, fit, index_batches

REPO = Path(__file__).resolve().parents[1]

# Environment for every child Python a test starts: no bytecode written into the checkout.
CHILD_ENV = {"PYTHONDONTWRITEBYTECODE": "1"}


# ---------------------------------------------------------------- models


def assert_steps_lower_loss(
    model: torch.nn.Module, hist: torch.Tensor, target: torch.Tensor, steps: int
) -> None:
    """A few AdamW steps on one fixed batch must cut the (eval-mode) loss by at least 20%."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.eval()
    before = model.loss(hist, target).item()
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model.loss(hist, target).backward()
        opt.step()
    model.eval()
    assert model.loss(hist, target).item() < 0.8 * before


def fit_linear(
    cfg: TrainConfig, init_seed: int = 0, seed: int = 0
) -> tuple[torch.nn.Linear, TrainResult]:
    """src.training.fit on a small noisy linear regression (256 rows, 4 features, 8 batches)."""
    torch.manual_seed(0)
    x = torch.randn(256, 4)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(256)
    torch.manual_seed(init_seed)
    model = torch.nn.Linear(4, 1)

    def batches(epoch):
        for idx in index_batches(len(x), 32, epoch_generator(seed, epoch)):
            yield x[idx], y[idx]

    def loss_fn(m, batch):
        return torch.nn.functional.mse_loss(m(batch[0]).squeeze(-1), batch[1])

    def evaluate(m):
        return {"mse": float(torch.nn.functional.mse_loss(m(x).squeeze(-1), y))}

    return model, fit(model, batches, loss_fn, evaluate, cfg, steps_per_epoch=8)


class PairTable(torch.nn.Module):
    """Scores come from a fixed (n_users, n_items) table, one (user, item) pair at a time."""

    def __init__(self, table: np.ndarray):
        super().__init__()
        self.register_buffer("table", torch.as_tensor(table, dtype=torch.float32))
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, users, items):
        return self.table[users, items] + self.dummy


class TableModel(PairTable):
    """The same, with the fast all-items path."""

    def score_all(self, users):
        return self.table[users]


# ---------------------------------------------------------------- semantic-ID generator

FAKE_DIM = 16

# a 3-epoch RQ-VAE may put most items on one prefix; the collision level must still number them all
RQVAE_ARGS = (
    "--quantizer",
    "rqvae",
    "--rqvae-epochs",
    "3",
    "--rqvae-batch-size",
    "16",
    "--reseed-dead-codes",
    "--collision-size",
    "64",
)


def fake_vectors(texts: list[str]) -> np.ndarray:
    """Deterministic unit vectors per text; texts sharing their second word land close together."""
    out = []
    for t in texts:
        word_seed = int.from_bytes(hashlib.sha256(t.split()[1].encode()).digest()[:8], "little")
        text_seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
        v = np.random.default_rng(word_seed).normal(size=FAKE_DIM) * 3 + np.random.default_rng(
            text_seed
        ).normal(size=FAKE_DIM)
        out.append(v / np.linalg.norm(v))
    return np.array(out, dtype=np.float32)


class CountingEncoder:
    """A stand-in for load_sentence_encoder that counts loads and encoded texts."""

    def __init__(self):
        self.loads = 0
        self.texts = 0

    def load(self, *args, **kwargs):
        self.loads += 1

        def encode(texts):
            self.texts += len(texts)
            return fake_vectors(texts)

        return encode


def run_generator(data_dir, cache_dir, *extra: str) -> int:
    """semantic_id_generator.main with a small codebook (4 codes, 2 items per code), on CPU."""
    return semantic_id_generator.main(
        [
            "--data-dir",
            str(data_dir),
            "--cache-dir",
            str(cache_dir),
            "--quiet",
            "--device",
            "cpu",
            "--codebook-size",
            "4",
            "--min-items-per-code",
            "2",
            *extra,
        ]
    )


# ---------------------------------------------------------------- scripts as a user runs them


def run_cli(
    script: str,
    *args: str,
    env: dict[str, str] | None = None,
    memory: int | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """A script through its command line, as a user runs it (one thread, quiet, no bytecode);
    ``memory`` caps its address space in bytes (an allocation beyond it fails); a run past
    ``timeout`` seconds is killed (subprocess.TimeoutExpired)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **CHILD_ENV, **(env or {})}

    def cap() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run(
        [sys.executable, str(REPO / script), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=timeout,
        preexec_fn=cap if memory else None,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str, code: int = 1) -> str:
    """Exit ``code``, no traceback, and the last stderr line is the ``error:`` line holding every
    fragment."""
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: " if code == 1 else "interrupted"), proc.stderr
    for fragment in fragments:
        assert fragment in last, last
    return last


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name -> bytes), to prove a folder unchanged."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


class Payload:
    """Pickles as a call to os.system: what a planted file would carry."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def dead_pid() -> int:
    """The process id of a child that has already exited (a writer killed mid-run)."""
    code = "import os; print(os.getpid())"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(child.stdout)


# ---------------------------------------------------------------- hostile edits of real formats


def edit_json(path: Path, edit: Callable[[Any], Any]) -> None:
    """Change a JSON file in place, as a hand edit would."""
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def edit_u_data(folder: Path, edit: Callable[[list[str]], list[str]]) -> None:
    lines = (folder / "u.data").read_text().splitlines()
    (folder / "u.data").write_text("\n".join(edit(lines)) + "\n")


def set_field(lines: list[str], column: int, value: str) -> list[str]:
    """The lines with one field of the first replaced."""
    parts = lines[0].split("\t")
    parts[column] = value
    return ["\t".join(parts), *lines[1:]]


def edit_rating_pickle(folder: Path, field: str, value: Any) -> None:
    """Set one field of the first training review in P5's rating pickle."""
    path = folder / "rating_splits_augmented.pkl"
    splits = pickle.loads(path.read_bytes())
    splits["train"][0][field] = value
    path.write_bytes(pickle.dumps(splits))


def append_meta_line(folder: Path, line: str) -> None:
    with gzip.open(folder / "meta.json.gz", "at") as f:
        f.write(line + "\n")


# Odd or hostile values in real data files: name -> (layout "p5" (with its rating pickle) or
# "ml", the damage done to a folder, what the one error line must say).
HOSTILE_DATA: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "datamaps value a non-ASCII digit": (
        "p5",
        lambda d: edit_json(d / "datamaps.json", lambda m: m["item2id"].update(B000000000="²")),
        "numeric id string",
    ),
    "datamaps nested a million deep": (
        "p5",
        lambda d: (d / "datamaps.json").write_text("[" * 10**6 + "]" * 10**6),
        "datamaps.json: JSON nested too deeply",
    ),
    "metadata asin a list": (
        "p5",
        lambda d: append_meta_line(d, '{"asin": ["B000000001"], "title": "x"}'),
        "meta.json.gz: 1 of",
    ),
    "u.data user id beyond 64 bits": (
        "ml",
        lambda d: edit_u_data(d, lambda ls: set_field(ls, 0, str(2**64))),
        "u.data: 1 of",
    ),
    "u.data timestamp beyond 64 bits": (
        "ml",
        lambda d: edit_u_data(d, lambda ls: set_field(ls, 3, str(2**70))),
        "u.data: 1 of",
    ),
    "rating pickle: NaN rating": (
        "p5",
        lambda d: edit_rating_pickle(d, "overall", float("nan")),
        "rating nan outside [1.0, 5.0]",
    ),
    "rating pickle: rating 99": ("p5", lambda d: edit_rating_pickle(d, "overall", 99), "rating 99"),
    "rating pickle: rating 1e30": ("p5", lambda d: edit_rating_pickle(d, "overall", 1e30), "1e+30"),
    "rating pickle: time beyond 64 bits": (
        "p5",
        lambda d: edit_rating_pickle(d, "unixReviewTime", 2**70),
        "outside [0, 2^63)",
    ),
}


def benchmark_script(name: str) -> Any:
    """benchmarks/<name>.py as a module (benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
