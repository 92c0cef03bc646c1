"""Fixtures shared by the whole suite, and the rules every test runs under.

* No bytecode in the checkout: nothing imported after this file writes ``__pycache__``, and child
  Pythons inherit PYTHONDONTWRITEBYTECODE. Only this file and ``tests/__init__.py`` are compiled
  before it can say so; their two cache files are removed right away.
* No test writes checkpoints or run folders into the checkout (temporary folders stand in).
* No test leaves process state behind: the environment (the scripts' seeding sets PYTHONHASHSEED),
  ``sys.argv`` and torch's thread count are restored after each test, and a test that replaces a
  function of the standard library without undoing it fails.
"""

from __future__ import annotations

import builtins
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

sys.dont_write_bytecode = True
os.environ["PYTHONDONTWRITEBYTECODE"] = "1"


def _remove_own_bytecode() -> None:
    """Delete the cache files of the two modules compiled before the line above ran."""
    cache = Path(__file__).resolve().parent / "__pycache__"
    for pyc in [*cache.glob("conftest.*.pyc"), *cache.glob("__init__.*.pyc")]:
        pyc.unlink(missing_ok=True)
    try:
        cache.rmdir()
    except OSError:  # absent, or holds files of another run
        pass


_remove_own_bytecode()

# Modules whose functions no test may leave replaced (pytest's per-test hooks, *hook, are skipped).
GUARDED_MODULES = (builtins, os, os.path, sys, time, json, pickle, shutil, subprocess, tempfile)


def _stdlib_functions() -> dict[tuple[str, str], object]:
    return {
        (m.__name__, name): value
        for m in GUARDED_MODULES
        for name, value in vars(m).items()
        if callable(value) and not name.endswith("hook")
    }


@pytest.fixture(scope="session", autouse=True)
def checkpoints_and_runs_outside_the_checkout(tmp_path_factory):
    """The study's checkpoints/ (where --reference runs keep their weights) and runs/ (where a
    run without --run-dir writes) are temporary folders during the tests (in-process runs and
    child Pythons alike), so no test writes into the checkout or overwrites a real run's files."""
    from utils.runtime.rundir import CHECKPOINT_ENV, RUNS_ENV

    os.environ[CHECKPOINT_ENV] = str(tmp_path_factory.mktemp("checkpoints"))
    os.environ[RUNS_ENV] = str(tmp_path_factory.mktemp("runs"))
    yield
    os.environ.pop(CHECKPOINT_ENV, None)
    os.environ.pop(RUNS_ENV, None)


@pytest.fixture(autouse=True)
def clean_process_state():
    """One torch thread during the test (tiny models gain nothing from threads on a shared CPU);
    afterwards the environment, argv and thread count as before, and the stdlib unpatched."""
    environ, argv, threads = dict(os.environ), list(sys.argv), torch.get_num_threads()
    functions = _stdlib_functions()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    sys.argv[:] = argv
    for key in set(os.environ) - set(environ) - {"PYTEST_CURRENT_TEST"}:
        del os.environ[key]
    for key, value in environ.items():
        if key != "PYTEST_CURRENT_TEST" and os.environ.get(key) != value:
            os.environ[key] = value
    modules = {m.__name__: m for m in GUARDED_MODULES}
    replaced = []
    for (module, name), value in _stdlib_functions().items():
        if (module, name) in functions and functions[module, name] is not value:
            setattr(modules[module], name, functions[module, name])  # so later tests run unpatched
            replaced.append(f"{module}.{name}")
    assert not replaced, f"the test left standard-library functions replaced: {', '.join(replaced)}"


@pytest.fixture
def encoder(monkeypatch):
    """A counting stand-in for the sentence encoder inside the semantic-ID generator."""
    from src.semantic_ids import generator as gen
    from tests.helpers import CountingEncoder

    enc = CountingEncoder()
    monkeypatch.setattr(gen, "load_sentence_encoder", enc.load)
    return enc


@pytest.fixture(scope="module")
def p5_split(tmp_path_factory):
    """A small P5-format data set (50 users, 30 items) and its temporal split (10% cold items)."""
    from tests.synthetic import write_p5
    from utils.data.load import load_dataset
    from utils.data.splits import make_split

    ds = load_dataset(write_p5(tmp_path_factory.mktemp("p5") / "beauty", n_users=50, n_items=30))
    return ds, make_split(ds, "temporal", seed=0, cold_fraction=0.1)
