"""The set-up every train/eval script shares: flags, data set, split, semantic IDs and run record.

A script parses its flags (common ones from :func:`add_experiment_args`), calls
:func:`setup_experiment`, hands the returned :class:`Experiment` to library
code and writes the results with :func:`utils.reporting.results.write_results`.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utils.data.dataset import Dataset
from utils.data.examples import OBJECTIVES
from utils.data.load import load_dataset
from utils.data.semantic import SemanticIds, load_semantic_ids, semantic_ids_record
from utils.data.splits import SPLIT_KINDS, Split, get_split
from utils.evaluation.predictions import predictions_dir, save_predictions
from utils.reporting.runinfo import RunRecord
from utils.runtime import distributed
from utils.runtime.argtypes import finite_float, fraction, positive_int
from utils.runtime.cli import setup
from utils.runtime.io import check_writable


def add_experiment_args(
    parser: argparse.ArgumentParser, split_choice: bool = True, repeat_seeds: bool = True
) -> None:
    """The flags of the data split, the cold-item hold-out, the semantic IDs and
    (optionally) --seeds."""
    g = parser.add_argument_group("experiment")
    g.add_argument(
        "--save-predictions",
        action="store_true",
        help="save each model's test predictions (top-k lists, per-example scores) as .npz beside "
        "--out, named with their sha256 in the results (see utils/evaluation/predictions.py)",
    )
    g.add_argument(
        "--top-k",
        type=positive_int,
        default=100,
        help="length of the saved ranked lists (default 100; TIGER: the beam width)",
    )
    if repeat_seeds:
        g.add_argument(
            "--seeds",
            nargs="+",
            type=int,
            help="model seeds to repeat (default: --seed only); the split stays fixed",
        )
    if split_choice:
        g.add_argument(
            "--split",
            choices=SPLIT_KINDS,
            default="temporal",
            help="temporal per-user 80/10/10 (default) or random",
        )
    g.add_argument(
        "--cold-fraction",
        type=fraction,
        default=0.05,
        help="share of items held out of training (cold items)",
    )
    g.add_argument("--split-cache", help="folder for the cached split (default: <data-dir>/splits)")
    g.add_argument(
        "--semantic-dir",
        help="folder holding semantic_ids.json (default: --data-dir), e.g. IDs from "
        "--quantizer rqvae or random written to --output-dir",
    )


def add_pointwise_args(
    parser: argparse.ArgumentParser, negatives: int, threshold_help: str
) -> None:
    """The labelling flags MF and the CTR models share."""
    g = parser.add_argument_group("labels")
    g.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default="auto",
        help="auto: explicit (rated data) when the data has star ratings, else implicit feedback",
    )
    g.add_argument("--positive-threshold", type=finite_float, default=4.0, help=threshold_help)
    g.add_argument(
        "--negatives",
        type=positive_int,
        default=negatives,
        help="implicit: sampled negatives per training positive",
    )


@dataclass
class Experiment:
    """What a train/eval script works on, loaded once."""

    ds: Dataset
    split: Split
    sids: SemanticIds | None  # None when no model of the run uses semantic IDs
    ids_info: dict[str, Any] | None  # semantic_ids_record(...) for the results file
    record: RunRecord
    device: str
    out_path: Path
    seeds: list[int]
    progress: bool
    data_dir: str
    split_cache: Path
    cold_fraction: float
    save_predictions: bool = False

    def split_record(self) -> dict[str, Any]:
        """What a results file says about the split it was scored on."""
        split = self.split
        return {"kind": split.kind, "seed": split.seed, "sizes": split.sizes(), "info": split.info}

    def save(
        self, name: str, seed: int, kind: str, meta: dict[str, Any], **arrays: Any
    ) -> dict[str, str]:
        """Write one model's test predictions beside the results; returns {"file", "sha256"}.

        ``kind`` is "ranking" or "pointwise" (utils/evaluation/predictions.py); ``meta`` adds what
        the verifier needs beyond the data set and split (objective, tie rule, ...).
        """
        suffix = "" if kind == "ranking" else f"-{kind}"
        path = predictions_dir(self.out_path) / f"{name}-seed{seed}{suffix}.npz"
        common = {
            "kind": kind,
            "model": name,
            "seed": seed,
            "part": "test",
            "dataset": self.ds.name,
            "data_checksum": self.ds.checksum,
            "data_dir": self.data_dir,
            "split": {
                "kind": self.split.kind,
                "seed": self.split.seed,
                "cold_fraction": self.cold_fraction,
                "cache_dir": str(self.split_cache),
            },
        }
        return save_predictions(path, {**common, **meta}, **arrays)


def setup_experiment(
    args: argparse.Namespace,
    script: str,
    split_kind: str | None = None,
    needs_ids: bool = True,
    outputs: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
) -> Experiment:
    """Seed, log, pick the device, load the data, check the outputs, then the split and the semantic
    IDs.

    ``split_kind`` overrides ``args.split`` (TIGER's leave-one-out); ``outputs``
    adds folders to probe for writing (flag -> path) besides --out, --plot-dir
    and the split cache; ``config`` adds entries to the run record's config.
    Every failure (bad data, unwritable output) happens here, before any training.

    Launched by torchrun, the process joins the process group here (gloo on CPU, nccl on CUDA
    with one GPU per LOCAL_RANK); ranks other than 0 log warnings only, show no progress and
    save no predictions, and :func:`utils.reporting.results.write_results` writes on rank 0 only.
    """
    device = distributed.init_from_env(setup(args))
    main = distributed.is_main()
    if not main:
        logging.getLogger().setLevel(logging.WARNING)
    seeds = list(getattr(args, "seeds", None) or [args.seed])
    ds = load_dataset(args.data_dir)
    out_path = Path(args.out.format(dataset=ds.name))
    split_cache = Path(args.split_cache or Path(args.data_dir) / "splits")
    folders = {"--split-cache": split_cache, **(outputs or {})}
    if getattr(args, "plot_dir", None):
        folders["--plot-dir"] = args.plot_dir
    check_writable({"--out": out_path}, folders)
    world = {"world_size": distributed.world_size()}
    record = RunRecord(
        script, {**vars(args), **(config or {}), "seeds": seeds, **world}, seeds[0], ds.checksum
    )
    with record.stage("split"):
        split = get_split(
            ds, split_kind or args.split, args.split_seed, args.cold_fraction, cache_dir=split_cache
        )
    sids = ids_info = None
    if needs_ids:
        ids_dir = args.semantic_dir or args.data_dir
        with record.stage("semantic ids"):
            sids = load_semantic_ids(ids_dir, ds)
        ids_info = semantic_ids_record(sids, ids_dir, args.cold_fraction, args.split_seed)
    return Experiment(
        ds,
        split,
        sids,
        ids_info,
        record,
        device,
        out_path,
        seeds,
        progress=not args.quiet and main,
        data_dir=str(args.data_dir),
        split_cache=split_cache,
        cold_fraction=args.cold_fraction,
        save_predictions=args.save_predictions and main,
    )
