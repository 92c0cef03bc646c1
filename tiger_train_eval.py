"""Train TIGER (generative retrieval over semantic IDs), SASRec and two counting baselines on a
leave-one-out split, under a named protocol (src/sequential/protocols.py):

  paper     no cold hold-out, trained on all but the last two items; reports the 'paper' ranking
            (every item, TIGER's table) and the 'filtered' one (the user's earlier items removed)
  holdout   the eSASRec benchmark's: retrained on all but the last item with the epochs chosen on
            validation (--epochs-from the paper run), tested with earlier items removed
  cold      the cold-start study: 5% of items held out of training and of the codebooks

Last item per user = test, second-to-last = validation, full-catalogue Recall/NDCG/Hit/MRR.
Writes sequential_<data>_<protocol>_seed<seed>.json, plots named after it
(sequential_<data>_<protocol>_seed<seed>_*.png) and checkpoints into a new
runs/<script>-<data>-<time>/ (or --run-dir); --reference writes the study's results/, plots/
and checkpoints/ (the Makefile's targets).

    # quick preset, paper + filtered rankings: item-level TIGER, SASRec, baselines (2-core CPU)
    python tiger_train_eval.py
    # the holdout protocol with the epochs the paper run chose on validation
    python tiger_train_eval.py --protocol holdout \\
        --epochs-from results/sequential_beauty_paper_seed0.json
    # three seeds, one results file each, then their mean ± std
    python tiger_train_eval.py --seeds 0 1 2
    # other hyperparameters (keys: tiger.*, sasrec.*, train.<model>.*, beam, ...; or --config FILE)
    python tiger_train_eval.py --models sasrec --set sasrec.dropout=0.2 train.sasrec.lr=2e-3
    # the cold-start study
    python tiger_train_eval.py --protocol cold --models tiger_item
    # the paper's token-level encoder, longer (CPU: hours)
    python tiger_train_eval.py --preset long
    # the paper's size and schedule (GPU)
    python tiger_train_eval.py --preset paper
    # the same on 8 GPUs, one process each (data-parallel; README "Scaling out")
    torchrun --standalone --nproc_per_node 8 tiger_train_eval.py --preset paper
    # TIGER on IDs generated into another folder
    python tiger_train_eval.py --semantic-dir /tmp/beauty_rqvae

--threads defaults to 1: with other jobs on a 2-core machine, one item-level TIGER
training step took 0.17-0.18 s (median) on one thread against 0.34-0.41 s on two.
"""

from __future__ import annotations

import utils.runtime.preflight  # noqa: F401  (first: a missing package is one line)

# isort: split

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from src.sequential.baselines import BASELINES
from src.sequential.beam_search import build_trie
from src.sequential.overrides import apply_overrides, flatten, overrides_tag, parse_assignments
from src.sequential.presets import MODELS, PRESETS, PUBLISHED, Preset
from src.sequential.protocols import PROTOCOLS, protocol_split, ranking_rules
from src.sequential.reporting import plot_results, run_report, test_predictions
from src.sequential.runs import run_baseline, run_sasrec, run_tiger
from src.sequential.sequence_data import SequenceData, build_sequence_data
from utils.data.semantic import ids_digest
from utils.data.slices import row_slices
from utils.reporting.examples_page import examples_page
from utils.reporting.results import dig, write_results
from utils.reporting.sequential_tables import protocol_tables, tiger_table
from utils.runtime import argtypes
from utils.runtime.checkpoints import run_spec, split_identity
from utils.runtime.cli import HelpFormatter, add_common_args
from utils.runtime.errors import UsageError, run_script
from utils.runtime.experiment import add_experiment_args, setup_experiment
from utils.runtime.io import read_json

log = logging.getLogger("tiger_train_eval")
REFERENCE_OUT = "results/sequential_{dataset}_{protocol}_seed{seed}.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    add_common_args(p, REFERENCE_OUT, threads=1, plots=True, runs=True)
    p.add_argument(
        "--protocol",
        choices=sorted(PROTOCOLS),
        default="paper",
        help="evaluation protocol (default: paper, which also reports the filtered ranking)",
    )
    p.add_argument(
        "--epochs-from",
        help="holdout: a paper-protocol results file of the same preset; each model trains for "
        "the epoch count its validation chose there (best epoch + 1)",
    )
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="quick",
        help="model size and schedule (default: quick)",
    )
    p.add_argument(
        "--models",
        nargs="+",
        choices=MODELS,
        help="models to run (tiger_item = the item-level encoder variant; "
        "default: the preset's models)",
    )
    p.add_argument(
        "--epochs", type=argtypes.epochs, help="override the preset's epochs for every model"
    )
    p.add_argument(
        "--beam",
        type=argtypes.list_length,
        help="beam width (preset default 20; top 10 are ranked)",
    )
    p.add_argument(
        "--user-tokens",
        type=argtypes.optional_buckets,
        default=0,
        help="hashed user-token buckets for TIGER (default 0 = off)",
    )
    p.add_argument(
        "--cold-share",
        type=argtypes.fraction,
        help="cold-start ranking: this share of the top 10 (rounded up) is reserved for the best "
        "cold items (preset default 0.1; 0 = plain beam search only)",
    )
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the training step (worth it on a GPU)"
    )
    p.add_argument(
        "--config",
        help="JSON file of hyperparameters replacing the preset's, nested like --set's keys: "
        '{"sasrec": {"dropout": 0.2}, "train": {"sasrec": {"lr": 0.002}}}',
    )
    p.add_argument(
        "--set",
        nargs="+",
        metavar="KEY=VALUE",
        help="hyperparameters replacing the preset's (after --config): tiger.<field>, "
        "sasrec.<field>, train.<model>.<field> (epochs, lr, batch_size, schedule, patience, ...), "
        "beam, cold_share, ...; e.g. --set sasrec.dropout=0.2 train.sasrec.lr=2e-3",
    )
    add_experiment_args(p, split_choice=False)
    # The protocol decides the cold hold-out; --cold-fraction may only change the cold study's.
    p.set_defaults(cold_fraction=None)
    p.add_argument(
        "--checkpoint-dir",
        help="per-epoch checkpoints (default: <run dir>/checkpoints; --reference: checkpoints); "
        "a checkpoint records what it was trained on, so another run's is refused on --resume",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue each model from its last checkpoint"
    )
    return p.parse_args(argv)


def preset_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """--config's hyperparameters, then --set's, as dotted keys (src/sequential/overrides.py)."""
    updates: dict[str, Any] = {}
    if args.config:
        fix = 'give a JSON object such as {"sasrec": {"dropout": 0.2}}'
        try:
            updates.update(flatten(read_json(args.config, fix)))
        except OSError as exc:
            raise UsageError(f"--config {args.config}: cannot read it ({exc.strerror})") from None
        except ValueError as exc:
            raise UsageError(f"--config {args.config}: {exc}") from None
    try:
        updates.update(parse_assignments(args.set or []))
    except ValueError as exc:
        raise UsageError(f"--set: {exc}") from None
    return updates


def holdout_epochs(
    preset: Preset, name: str, models: list[str], path: str, overrides: dict[str, Any] | None = None
) -> Preset:
    """``preset`` with each model's epochs set to the count its validation chose in the
    paper-protocol results file ``path`` (best epoch + 1; the schedule is that run's): the
    epoch with the best filtered validation NDCG@10 where the curve records it (holdout ranks
    filtered), else the run's best epoch.

    The file is read like any other input: damaged JSON, another layout or an epoch count
    outside ``--epochs``' range is refused in one line naming the flag."""
    fix = f"give the paper-protocol results file of the same preset (models: {', '.join(models)})"
    try:
        paper = read_json(path, fix)
    except OSError as exc:
        raise UsageError(f"--epochs-from {path}: cannot read it ({exc.strerror}); {fix}") from None
    if not isinstance(paper, dict):
        raise UsageError(f"--epochs-from {path}: not a results file; {fix}")
    if paper.get("protocol") != "paper" or paper.get("preset") != name:
        raise UsageError(
            f"--epochs-from {path}: it is a {paper.get('protocol')!r} run of the "
            f"{paper.get('preset')!r} preset; give a 'paper' run of the same preset"
        )
    if (paper.get("overrides") or {}) != (overrides or {}):
        raise UsageError(
            f"--epochs-from {path}: it was trained with other hyperparameters "
            f"({paper.get('overrides') or 'the preset'}); give the paper run of the same --config "
            "and --set"
        )
    chosen = {}
    for m in models:
        best = dig(paper, "models", m, "best_epoch")
        curve = dig(paper, "models", m, "curve")
        filtered = [h.get("val_filtered_ndcg@10") for h in curve] if isinstance(curve, list) else []
        if filtered and all(isinstance(v, float) for v in filtered):
            # The epoch the holdout's own (filtered) ranking preferred on validation.
            best = curve[max(range(len(filtered)), key=filtered.__getitem__)].get("epoch")
        if isinstance(best, bool) or not isinstance(best, int):
            raise UsageError(f"--epochs-from {path}: no best epoch of {m} in it; {fix}")
        if not 0 <= best < argtypes.epochs.high:
            raise UsageError(
                f"--epochs-from {path}: {m}'s best epoch {best} is outside [0, "
                f"{argtypes.epochs.high}) (--epochs' range); {fix}"
            )
        chosen[m] = best + 1
    return replace(
        preset,
        train={k: replace(v, epochs=chosen.get(k, v.epochs)) for k, v in preset.train.items()},
    )


def main(argv: list[str] | None = None) -> None:
    """One training run per seed (--seeds; default --seed), each written to its own results
    file (a seed is hours of training on a CPU: separate files can run as separate processes,
    one per core, and a stopped run keeps the seeds it finished); several seeds end with the
    mean ± std table."""
    args = parse_args(argv)
    seeds = list(args.seeds or [args.seed])
    if len(seeds) > 1 and args.out and "{seed}" not in args.out:
        raise UsageError(
            f"--out {args.out}: with several --seeds each seed writes its own file; put {{seed}} "
            "in the name (e.g. --out results/mine_seed{seed}.json)"
        )
    common = vars(args)
    written = []
    for seed in seeds:
        run = argparse.Namespace(**{**common, "seed": seed, "seeds": None})
        run.out = args.out.replace("{seed}", str(seed)) if args.out else None
        run.reference_out = REFERENCE_OUT.replace("{protocol}", args.protocol).replace(
            "{seed}", str(seed)
        )
        written.append(run_seed(run))
        if not args.reference:  # the seeds of one run share its run folder
            common["run_dir"] = run.run_dir
    if len(seeds) > 1:
        tables = protocol_tables(written)
        log.info("mean ± std over seeds %s:\n%s", seeds, "\n\n".join(tables))


def run_seed(args: argparse.Namespace) -> dict[str, Any]:
    """Train and test the models of one seed; returns the results as written."""
    protocol = PROTOCOLS[args.protocol]
    if args.cold_fraction is None:
        args.cold_fraction = protocol.cold_fraction
    elif args.protocol != "cold":
        raise UsageError(
            f"--cold-fraction applies to --protocol cold only ({args.protocol} holds no item out)"
        )
    preset = PRESETS[args.preset]
    models = list(args.models or preset.models)
    if args.epochs is not None:
        preset = preset.with_epochs(args.epochs)
    overrides = preset_overrides(args)
    try:
        preset = apply_overrides(preset, overrides)
    except ValueError as exc:
        raise UsageError(f"--config/--set: {exc}") from None
    if args.protocol == "holdout":
        if args.epochs_from is None and args.epochs is None:
            raise UsageError(
                "--protocol holdout trains for the epochs chosen on validation: give "
                "--epochs-from <the paper-protocol results file of this preset> (or --epochs N)"
            )
        if args.epochs_from is not None:
            trained = [m for m in models if m not in BASELINES]
            preset = holdout_epochs(preset, args.preset, trained, args.epochs_from, overrides)
    elif args.epochs_from is not None:
        raise UsageError("--epochs-from applies to --protocol holdout only")
    if args.compile:
        preset = replace(
            preset, train={k: replace(v, compile=True) for k, v in preset.train.items()}
        )
    preset = replace(
        preset,
        beam=args.beam or preset.beam,
        tiger=replace(preset.tiger, user_tokens=args.user_tokens),
        cold_share=preset.cold_share if args.cold_share is None else args.cold_share,
    )
    exp = setup_experiment(
        args,
        "tiger_train_eval.py",
        split_kind="leave_one_out",
        needs_ids=any(m.startswith("tiger") for m in models),
        outputs={"--checkpoint-dir": args.checkpoint_dir},
        inputs=[args.epochs_from] if args.epochs_from else None,
    )
    exp.record.config.update(preset_config=preset.to_dict(), torch_threads=torch.get_num_threads())
    ds, sem = exp.ds, exp.sids
    split = protocol_split(exp.split, protocol)
    sequence_data: dict[int, SequenceData] = {}

    def data_for(max_items: int) -> SequenceData:
        """The windows and examples at one history length (TIGER's and SASRec's can differ)."""
        if max_items not in sequence_data:
            with exp.record.stage(f"sequence data ({max_items} items)"):
                sequence_data[max_items] = build_sequence_data(ds, split, max_items)
            log.info("sequence data: %s", sequence_data[max_items].summary())
        return sequence_data[max_items]

    data = data_for(preset.tiger.max_items)
    test_masks = row_slices(ds, split, data.test.rows.numpy())
    rules = ranking_rules(protocol, ds, data.val.rows.numpy(), data.test.rows.numpy())

    results = {
        "task": "sequential recommendation: generative retrieval over semantic IDs vs item IDs",
        "dataset": ds.name,
        "seeds": [args.seed],
        "protocol": protocol.name,
        "protocol_what": protocol.what,
        "rankings": list(protocol.reports),
        "preset": args.preset,
        "overrides": overrides,
        "seed": args.seed,
        "preset_note": preset.note,
        "device": exp.device,
        "evaluation": "leave-one-out (last item test, second-to-last validation), full-catalogue "
        "ranking, ties count against the target; val/test metrics on ALL users (TIGER's curves "
        f"during training use {preset.val_users_during_training or 'all'} fixed validation users)",
        "data": data.summary(),
        "split": {**split.sizes(), **split.info},
        "semantic_ids": exp.ids_info,
        "models": {},
        "published_beauty_test": PUBLISHED.get(protocol.name, {}) if ds.name == "beauty" else {},
        "complete": False,
    }
    ckpt = Path(args.checkpoint_dir)
    partial = exp.out_path.with_name(exp.out_path.name + ".partial")
    # what a checkpoint must have been trained on to be resumed (utils/runtime/checkpoints.py)
    # (the protocol and the training rows too: holdout trains on the validation rows as well)
    identity = {
        "data_checksum": ds.checksum,
        "protocol": protocol.name,
        "split": split_identity(split, args.cold_fraction),
    }
    for name in models:
        stem = (
            f"tiger-{name}-{ds.name}-{args.preset}{overrides_tag(overrides)}-{protocol.name}"
            f"-seed{args.seed}"
        )
        # what recommend.py needs to rebuild the model (src/serving/checkpoint.py)
        spec = run_spec(
            "tiger_train_eval.py",
            {
                "--data-dir": args.data_dir,
                "--semantic-dir": args.semantic_dir,
                "--preset": args.preset,
                "--set": " ".join(f"{k}={json.dumps(v)}" for k, v in overrides.items()) or None,
                "--protocol": protocol.name,
                "--models": name,
                "--seed": args.seed,
                "--split-seed": args.split_seed or None,
            },
            ds,
            preset=args.preset,
            protocol=protocol.name,
            seed=args.seed,
        )
        with exp.record.stage(name):
            if name in BASELINES:
                run = run_baseline(
                    name, ds, split.train, data, rules, preset.eval_batch, top_k=args.top_k
                )
            elif name == "sasrec":
                run = run_sasrec(
                    data_for(preset.sasrec.max_items),
                    ds.n_items,
                    preset,
                    args.seed,
                    exp.device,
                    str(ckpt / f"{stem}.pt"),
                    args.resume,
                    rules,
                    progress=exp.progress,
                    top_k=args.top_k,
                    identity=identity,
                    spec=spec,
                )
            else:
                path = str(ckpt / f"{stem}-ids{ids_digest(sem)}.pt")
                preset = replace(
                    preset, tiger=replace(preset.tiger, codebook_sizes=list(sem.codebook_sizes))
                )
                trie = build_trie(sem.codes, sem.codebook_sizes)
                run = run_tiger(
                    name,
                    data,
                    sem.codes,
                    trie,
                    preset,
                    ds.user_ids,
                    args.seed,
                    exp.device,
                    path,
                    args.resume,
                    rules,
                    is_cold=split.is_cold(np.arange(ds.n_items)),
                    progress=exp.progress,
                    identity={**identity, "semantic_ids": ids_digest(sem)},
                    spec=spec,
                )
        results["models"][name] = run_report(run, test_masks)
        if exp.save_predictions:
            meta, arrays = test_predictions(run, ds.user_ids, ds.item_ids, data.test.user)
            # the verifier rebuilds the split the model trained on (holdout: validation rows too)
            meta["protocol"] = protocol.name
            meta["split"] = {"train_on_validation": protocol.train_on_validation}
            results["models"][name]["predictions"] = exp.save(
                name, args.seed, "ranking", meta, **arrays
            )
        log.info(
            "%s test (%s) %s (%s)",
            name,
            rules[0].name,
            fmt_metrics(results["models"][name]["test"]),
            results["models"][name]["timing"],
        )
        # Progress after every model, so a long run that is stopped keeps what it finished; the
        # result set at --out changes only when the run completes.
        write_results(partial, results, exp.record)

    results["plots"] = plot_results(results, args.plot_dir, exp.out_path.stem)
    results["complete"] = True
    page = None
    if exp.save_predictions and sem is not None:
        page = (
            exp.out_path.with_name(exp.out_path.stem + "_examples.md"),
            lambda written: examples_page(written, ds, sem.codes, split.cold_items, args.seed),
        )
    written = write_results(exp.out_path, results, exp.record, page)
    partial.unlink(missing_ok=True)
    if page:
        log.info("wrote %s", page[0])
    log.info("test metrics:\n%s", tiger_table(written, exp.out_path.name))
    log.info("wrote %s", exp.out_path)
    return written


def fmt_metrics(metrics: dict[str, float]) -> str:
    """Recall/NDCG@10 and MRR as plain numbers for the log."""
    return ", ".join(f"{k} {metrics[k]:.4f}" for k in ("recall@10", "ndcg@10", "mrr@20"))


if __name__ == "__main__":
    run_script(main)
