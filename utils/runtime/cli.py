"""The flags every script shares, and the set-up they imply (seed, logging, device)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from utils.runtime import argtypes
from utils.runtime.environment import resolve_device, seed_everything
from utils.runtime.errors import add_debug_flag
from utils.runtime.rundir import PlainFormatter, add_run_args


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every script's --help: the docstring as written, and each option's default shown (unless
    its help already names it, or there is none to show)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        shown = not any(default is hidden for hidden in (None, False, argparse.SUPPRESS))
        named = "%(default)" in text or ("default" in text and str(default) in text)
        if shown and not named:
            text += " (default: %(default)s)"
        return text


def add_common_args(
    parser: argparse.ArgumentParser,
    default_out: str | None,
    threads: int | None = None,
    plots: bool = False,
    runs: bool = False,
) -> argparse.ArgumentParser:
    """Add --data-dir, --seed, --split-seed, --device, --out and --quiet to ``parser``.

    ``threads`` adds --threads with that default (0 = torch's own choice); ``plots`` adds
    --plot-dir. ``runs`` adds --run-dir and --reference (utils/runtime/rundir.py): --out and
    --plot-dir then default to the run folder, and ``default_out`` is the reference's file.
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
    if runs:
        add_run_args(g, default_out)
        where = f"<run dir>/{Path(default_out or 'results.json').name}; --reference: {default_out}"
        g.add_argument("--out", help=f"results JSON to write (default: {where})")
    else:
        g.add_argument("--out", default=default_out, help="results JSON to write")
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
            "--plot-dir",
            default=None if runs else "plots",
            help="where the PNG plots go (default: the run folder; --reference: plots)"
            if runs
            else "where the PNG plots go",
        )
    return parser


def add_rerank_args(parser: argparse.ArgumentParser, out_help: str) -> None:
    """The flags of the evaluation-only benchmarks that re-rank trained checkpoints
    (benchmarks/sweep_decoding.py, benchmarks/cold_ensemble.py): the users, the batch size, the
    training runs to reproduce first, --out (``out_help`` names its default), threads, device,
    quiet and debug."""
    users = argtypes.bounded(int, 0, 10**7, why="no data set here has more users")
    p = parser
    p.add_argument("--users", type=users, default=0, help="evaluate the first N users (0 = all)")
    p.add_argument("--batch-size", type=argtypes.batch_size, default=256, help="users a batch")
    p.add_argument("--check-against", nargs="*", default=[], help="tiger_train_eval.py results")
    p.add_argument("--out", help=out_help)
    p.add_argument("--threads", type=argtypes.threads, default=1, help="torch threads (0: own)")
    p.add_argument("--device", type=argtypes.device_name, default="auto", help="or cpu, cuda")
    p.add_argument("--quiet", action="store_true", help="warnings and errors only")
    add_debug_flag(p)


class DeprecatedAlias(argparse.Action):
    """An old flag name that still works, with a one-line warning naming the new one."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        new = self.metavar
        logging.getLogger("cli").warning("%s is deprecated; use %s", option_string, new)
        setattr(namespace, self.dest, values)


def add_semantic_dir_arg(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    help_text: str,
    deprecated: tuple[str, ...] = (),
) -> None:
    """--semantic-dir, the one name of the semantic-ID folder in every script; ``deprecated``:
    the script's old names for it, still accepted (hidden from --help, a warning when used)."""
    parser.add_argument("--semantic-dir", help=help_text)
    for old in deprecated:
        parser.add_argument(
            old,
            dest="semantic_dir",
            action=DeprecatedAlias,
            metavar="--semantic-dir",
            help=argparse.SUPPRESS,
        )


def resolve_out(template: str, dataset: str) -> Path:
    """``--out`` with ``{dataset}`` filled in. Only that placeholder: any other brace is part of the
    user's file name (``str.format`` would fail on it, or fill it from the arguments)."""
    return Path(template.replace("{dataset}", dataset))


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars only for a person watching: not with --quiet, and not when stderr is a file
    or a pipe (a redirected bar is one endless line per epoch; the log has the epochs)."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def setup_logging(quiet: bool = False) -> None:
    """INFO logging (WARNING with --quiet) in one format for every script."""
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, force=True)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(PlainFormatter())
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
    split = getattr(args, "split_seed", None)  # the benchmarks that only re-rank have none
    logging.getLogger(__name__).info(
        "seed=%d%s device=%s", args.seed, "" if split is None else f" split_seed={split}", device
    )
    return device
