"""The set-up every train/eval script shares: flags, data set, split, semantic IDs and run record.

A script parses its flags (common ones from :func:`add_experiment_args`), calls
:func:`setup_experiment`, hands the returned :class:`Experiment` to library
code and writes the results with :func:`utils.reporting.results.write_results`.
"""

from __future__ import annotations

import argparse
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from utils.data.dataset import Dataset
from utils.data.examples import OBJECTIVES
from utils.data.load import data_files, load_dataset
from utils.data.semantic import (
    IDS_FILE,
    SemanticIds,
    ids_digest,
    load_semantic_ids,
    semantic_ids_record,
)
from utils.data.splits import SPLIT_KINDS, Split, get_split
from utils.evaluation.predictions import (
    predictions_dir,
    predictions_file,
    read_manifest,
    save_predictions,
)
from utils.reporting.runinfo import RunRecord
from utils.runtime import argtypes, distributed
from utils.runtime.checkpoints import run_spec, split_identity
from utils.runtime.cli import add_semantic_dir_arg, resolve_out, setup, show_progress
from utils.runtime.errors import UsageError
from utils.runtime.io import check_writable, lock_output
from utils.runtime.rundir import log_to_file, resolve_run_outputs

# Repeats of a whole training run: more would run for weeks on 2 cores.
MAX_SEEDS = 100


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
        type=argtypes.list_length,
        default=100,
        help="length of the saved ranked lists (default 100; TIGER: the beam width)",
    )
    if repeat_seeds:
        g.add_argument(
            "--seeds",
            nargs="+",
            type=argtypes.seed,
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
        type=argtypes.fraction,
        default=0.05,
        help="share of items held out of training (cold items)",
    )
    g.add_argument("--split-cache", help="folder for the cached split (default: <data-dir>/splits)")
    add_semantic_dir_arg(
        g,
        "folder holding semantic_ids.json (default: --data-dir), e.g. IDs that "
        "semantic_id_generator.py --quantizer rqvae wrote to its --semantic-dir",
    )


def add_checkpoint_arg(parser: argparse.ArgumentParser) -> None:
    """--checkpoint-dir of the pointwise trainers: where each model's trained weights go (filled
    in by `resolve_run_outputs`: the run folder's checkpoints/, or the study's for --reference)."""
    parser.add_argument(
        "--checkpoint-dir",
        help="where each model's trained weights go, one file per model and seed with what "
        "rebuilds the model, for recommend.py (default: <run dir>/checkpoints; --reference: "
        "checkpoints)",
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
    g.add_argument(
        "--positive-threshold", type=argtypes.threshold, default=4.0, help=threshold_help
    )
    g.add_argument(
        "--negatives",
        type=argtypes.negatives,
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
    ids_dir: str | None = None  # the folder of the semantic IDs (None: the run uses none)
    # names this run's predictions files: new per run, so none of the current results' is
    # overwritten before the new results replace them (utils.reporting.results.write_results)
    run_tag: str = field(default_factory=lambda: secrets.token_hex(6))

    def split_record(self) -> dict[str, Any]:
        """What a results file says about the split it was scored on."""
        split = self.split
        return {"kind": split.kind, "seed": split.seed, "sizes": split.sizes(), "info": split.info}

    def ids_tag(self) -> str:
        """A checkpoint name's part for the semantic IDs (runs on other IDs never share a file)."""
        return f"-ids{ids_digest(self.sids)}" if self.sids is not None else ""

    def checkpoint_identity(self) -> dict[str, Any]:
        """What a checkpoint of this run was trained on: data, split, semantic IDs."""
        return {
            "data_checksum": self.ds.checksum,
            "split": split_identity(self.split, self.cold_fraction),
            "semantic_ids": ids_digest(self.sids) if self.sids is not None else None,
        }

    def checkpoint_spec(
        self, script: str, flags: dict[str, Any], config: dict[str, Any]
    ) -> dict[str, Any]:
        """What rebuilds a model of this run (:func:`utils.runtime.checkpoints.run_spec`):
        ``flags`` name the model, ``config`` is its configuration."""
        split = self.split
        common = {
            "--data-dir": self.data_dir,
            "--semantic-dir": self.ids_dir if self.ids_dir != self.data_dir else None,
            "--split": split.kind,
            "--split-seed": split.seed or None,
            "--cold-fraction": self.cold_fraction,
        }
        return run_spec(
            script,
            {**common, **flags},
            self.ds,
            split={"kind": split.kind, "seed": split.seed, "cold_fraction": self.cold_fraction},
            config=config,
        )

    def save(
        self, name: str, seed: int, kind: str, meta: dict[str, Any], **arrays: Any
    ) -> dict[str, str]:
        """Write one model's test predictions beside the results; returns {"file", "sha256"}.

        ``kind`` is "ranking" or "pointwise" (utils/evaluation/predictions.py); ``meta`` adds what
        the verifier needs beyond the data set and split (objective, tie rule, ...); its
        ``split`` entries join the split's (``train_on_validation``: the holdout protocol).
        """
        path = predictions_file(self.out_path, name, seed, kind, self.run_tag)
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
        split = {**common["split"], **meta.get("split", {})}
        return save_predictions(path, {**common, **meta, "split": split}, **arrays)


def setup_experiment(
    args: argparse.Namespace,
    script: str,
    split_kind: str | None = None,
    needs_ids: bool = True,
    outputs: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    inputs: list[str | Path] | None = None,
) -> Experiment:
    """Seed, log, pick the device, load the data, place the outputs (the run folder, or the
    study's files with --reference: utils/runtime/rundir.py), check them, then the split and the
    semantic IDs.

    ``split_kind`` overrides ``args.split`` (TIGER's leave-one-out); ``outputs``
    adds folders to probe for writing (flag -> path) besides --out, --plot-dir
    and the split cache; ``config`` adds entries to the run record's config; ``inputs`` adds
    files the run reads (besides the data and semantic IDs) that no output may overwrite.
    Every failure (bad data, unwritable output) happens here, before any training.

    Launched by torchrun, the process joins the process group here (gloo on CPU, nccl on CUDA
    with one GPU per LOCAL_RANK); ranks other than 0 log warnings only, show no progress and
    save no predictions, and :func:`utils.reporting.results.write_results` writes on rank 0 only.
    """
    seeds = list(getattr(args, "seeds", None) or [args.seed])
    if len(seeds) > MAX_SEEDS or len(set(seeds)) < len(seeds):
        raise UsageError(
            f"--seeds: {len(seeds)} seeds, {len(set(seeds))} distinct; give at most {MAX_SEEDS} "
            "distinct seeds (each is a full training run)"
        )
    device = distributed.init_from_env(setup(args))
    main = distributed.is_main()
    if not main:
        logging.getLogger().setLevel(logging.WARNING)
    ds = load_dataset(args.data_dir)
    run_dir = resolve_run_outputs(args, script, ds.name)
    out_path = resolve_out(args.out, ds.name)
    split_cache = Path(args.split_cache or Path(args.data_dir) / "splits")
    folders = {"--split-cache": split_cache, **(outputs or {})}
    if getattr(args, "plot_dir", None):
        folders["--plot-dir"] = args.plot_dir
    ids_dir = args.semantic_dir or args.data_dir
    inputs = [
        *data_files(args.data_dir),
        *([Path(ids_dir) / IDS_FILE] if needs_ids else []),
        *map(Path, inputs or []),
    ]
    check_writable({"--out": out_path}, folders, inputs)
    if main:
        lock_output("--out", out_path)
        log_to_file(run_dir)
    if main and args.save_predictions:  # a foreign file at the manifest's name: refused now
        read_manifest(predictions_dir(out_path))
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
        progress=show_progress(args) and main,
        data_dir=str(args.data_dir),
        split_cache=split_cache,
        cold_fraction=args.cold_fraction,
        save_predictions=args.save_predictions and main,
        ids_dir=str(ids_dir) if needs_ids else None,
    )
