"""Where a run writes: its own folder under runs/, unless it is the study's reference command.

A plain ``python mf_train_eval.py ...`` must never replace the committed results and plots of the
study, so by default every output of a run (results JSON, saved predictions, plots, checkpoints
and ``run.log``) goes into one new folder ``runs/<script>-<dataset>-<time>/`` (git-ignored).
``--run-dir DIR`` names that folder; ``--reference`` writes the study's own files
(``results/<name>``, ``plots/``, ``checkpoints/``): the Makefile's targets pass it. An explicit
``--out``, ``--plot-dir`` or ``--checkpoint-dir`` still moves that one output.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from utils.runtime.errors import UsageError

RUNS_ROOT = Path("runs")
LOG_FILE = "run.log"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# the study's folders, written by --reference only
REFERENCE_PLOTS = Path("plots")
REFERENCE_CHECKPOINTS = Path("checkpoints")
# replace REFERENCE_CHECKPOINTS and RUNS_ROOT when set: the test suite's temporary folders
CHECKPOINT_ENV = "SEMANTIC_IDS_CHECKPOINT_DIR"
RUNS_ENV = "SEMANTIC_IDS_RUNS_DIR"
# the outputs a run folder holds, by their argparse names (a script has those it writes)
OUTPUT_FLAGS = ("out", "plot_dir", "checkpoint_dir")


def add_run_args(group: argparse._ArgumentGroup, reference_out: str | None) -> None:
    """--run-dir and --reference; ``reference_out`` is the results file the reference command
    writes (``{dataset}`` filled in later; None: the script sets ``args.reference_out`` itself)."""
    group.add_argument(
        "--run-dir",
        help="folder for everything this run writes (results JSON, predictions, plots, "
        "checkpoints, run.log) (default: a new runs/<script>-<dataset>-<time>/)",
    )
    group.add_argument(
        "--reference",
        action="store_true",
        help="write the study's reference files instead (results/, plots/, checkpoints/): what "
        "the Makefile's targets run",
    )
    group.set_defaults(reference_out=reference_out)


def new_run_dir(script: str, dataset: str, root: Path | None = None) -> Path:
    """A new ``<root>/<script>-<dataset>-<YYYYmmdd-HHMMSS>`` (``-2``, ``-3``, ... when that
    exists; root: $SEMANTIC_IDS_RUNS_DIR, else runs/). Not created here: the output check creates
    it, so a run refused before any work leaves no folder behind. Under torchrun every rank must
    name the same folder, so the job's id stands in for the time."""
    root = root or Path(os.environ.get(RUNS_ENV) or RUNS_ROOT)
    stem = f"{Path(script).stem}-{dataset}"
    job = os.environ.get("TORCHELASTIC_RUN_ID")
    if job:
        return root / f"{stem}-torchrun-{job}"
    base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1, 1000):
        folder = root / (base if n == 1 else f"{base}-{n}")
        if not folder.exists():
            return folder
    raise UsageError(f"{root}/{base}: 999 run folders of this second exist; give --run-dir")


STUDY_FOLDERS = (Path("results"), REFERENCE_PLOTS, REFERENCE_CHECKPOINTS)


def _check_run_dir(run_dir: Path, data_dir: str | None) -> None:
    """Refuse a --run-dir that is, or lies inside (a symlink followed), the study's results/,
    plots/ or checkpoints/ or the data folder: a run's files must never mix with those."""
    resolved = run_dir.resolve()
    guarded = [*STUDY_FOLDERS, *([Path(data_dir)] if data_dir else [])]
    for folder in guarded:
        root = folder.resolve()
        if resolved == root or root in resolved.parents:
            raise UsageError(
                f"--run-dir {run_dir}: is or lies inside {folder} (the study's outputs or the "
                "data); give a folder of its own, e.g. runs/my-run (only --reference writes the "
                "study's files)"
            )


def resolve_run_outputs(args: argparse.Namespace, script: str, dataset: str) -> Path | None:
    """Fill ``args.out``, ``args.plot_dir`` and ``args.checkpoint_dir`` (where the script has
    them and the user left them out) and ``args.run_dir``; returns the run folder: None for
    --reference (its outputs are the study's) and for a run that placed every output itself."""
    if args.reference and args.run_dir:
        raise UsageError("--reference writes the study's files; it cannot go with --run-dir")
    name = Path(args.reference_out.replace("{dataset}", dataset))
    flags = [f for f in OUTPUT_FLAGS if hasattr(args, f)]
    if args.reference:
        checkpoints = Path(os.environ.get(CHECKPOINT_ENV) or REFERENCE_CHECKPOINTS)
        run_dir, defaults = None, (name, REFERENCE_PLOTS, checkpoints)
    elif args.run_dir or any(getattr(args, f) is None for f in flags):
        run_dir = Path(args.run_dir) if args.run_dir else new_run_dir(script, dataset)
        _check_run_dir(run_dir, getattr(args, "data_dir", None))
        defaults = (run_dir / name.name, run_dir, run_dir / "checkpoints")
        args.run_dir = str(run_dir)
    else:  # every output placed by its own flag: nothing is left for a run folder
        return None
    for flag, default in zip(OUTPUT_FLAGS, defaults):
        if flag in flags and getattr(args, flag) is None:
            setattr(args, flag, str(default))
    return run_dir


def plain(value: Any, digits: int = 4) -> Any:
    """``value`` as a reader wants it in a log: numpy scalars as Python numbers, floats rounded to
    ``digits`` decimals, inside dicts, lists and tuples too (not ``np.float64(0.8)``)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: plain(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v, digits) for v in value)
    return value


class PlainFormatter(logging.Formatter):
    """The one log format, with every argument made :func:`plain` before it is formatted."""

    def __init__(self) -> None:
        super().__init__(LOG_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if record.args:
            record.args = plain(record.args)
        return super().format(record)


def log_to_file(run_dir: Path | None) -> None:
    """Copy the run's log (INFO and above, whatever --quiet says) into ``<run_dir>/run.log``."""
    if run_dir is None:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    path = os.path.abspath(run_dir / LOG_FILE)
    if any(getattr(h, "baseFilename", None) == path for h in root.handlers):
        return  # the next seed of the same run (tiger_train_eval.py --seeds)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(PlainFormatter())
    for console in root.handlers:  # --quiet keeps the console quiet, not the file
        console.setLevel(max(console.level, root.level))
    root.setLevel(min(root.level, logging.INFO))
    root.addHandler(handler)
