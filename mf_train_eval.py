"""Train and evaluate matrix factorization with item IDs vs semantic IDs (explicit ratings or
implicit feedback).

Examples:
    # explicit: RMSE/MAE + liked (rating >= 4)
    python mf_train_eval.py --data-dir data/ml-100k
    # implicit: AUC/logloss + full-catalogue Recall/NDCG
    python mf_train_eval.py --data-dir beauty
    python mf_train_eval.py --data-dir beauty --models mf_id mf_semantic --seeds 0 1 2 \\
        --split random

Writes mf_results_<dataset>.json (per model and seed: overall and sliced
test metrics, training curve, learned level weights; mean and std over seeds;
the run record) and mf_<dataset>_<metric>.png into a new runs/<script>-<dataset>-<time>/
(or --run-dir); --reference writes the study's results/ and plots/ (make mf).
"""

from __future__ import annotations

import utils.runtime.preflight  # noqa: F401  (first: a missing package is one line)

# isort: split

import argparse
import logging

from src.pointwise.evaluation import PointwiseEvaluator
from src.pointwise.experiment import prediction_saver, run_models, weights_keeper
from src.pointwise.mf import (
    DEFAULTS,
    MODEL_NAMES,
    SEMANTIC_MODELS,
    check_memory,
    mf_model_facts,
    model_factory,
)
from src.training import TrainConfig
from utils.data.examples import TrainSampler, resolve_objective
from utils.reporting.figures import plot_mf_results
from utils.reporting.results import write_results
from utils.reporting.tables import mf_table
from utils.runtime import argtypes
from utils.runtime.cli import HelpFormatter, add_common_args
from utils.runtime.errors import run_script
from utils.runtime.experiment import (
    add_checkpoint_arg,
    add_experiment_args,
    add_pointwise_args,
    setup_experiment,
)

log = logging.getLogger("mf_train_eval")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    add_common_args(
        p, default_out="results/mf_results_{dataset}.json", threads=1, plots=True, runs=True
    )
    p.add_argument(
        "--models",
        nargs="+",
        choices=MODEL_NAMES,
        default=list(MODEL_NAMES),
        help="models to train",
    )
    add_experiment_args(p)
    add_checkpoint_arg(p)
    add_pointwise_args(p, negatives=4, threshold_help="explicit: a rating >= this counts as liked")
    p.add_argument(
        "--ks",
        nargs="+",
        type=argtypes.list_length,
        default=[10, 20],
        help="implicit: cut-offs of Recall@k and NDCG@k",
    )
    g = p.add_argument_group(
        "training (defaults depend on the objective; see src/pointwise/mf.py DEFAULTS)"
    )
    for name, kind in (
        ("dim", argtypes.dim),
        ("lr", argtypes.learning_rate),
        ("reg", argtypes.penalty),
        ("batch_size", argtypes.batch_size),
        ("epochs", argtypes.epochs),
    ):
        g.add_argument(
            f"--{name.replace('_', '-')}",
            type=kind,
            help=f"explicit {DEFAULTS['explicit'][name]}, implicit {DEFAULTS['implicit'][name]}",
        )
    g.add_argument(
        "--patience",
        type=argtypes.patience,
        default=3,
        help="epochs without validation improvement before stopping",
    )
    g.add_argument(
        "--init-std",
        type=argtypes.scale,
        default=0.01,
        help="standard deviation of the initial factors",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    exp = setup_experiment(
        args,
        "mf_train_eval.py",
        needs_ids=any(m in SEMANTIC_MODELS for m in args.models),
        outputs={"--checkpoint-dir": args.checkpoint_dir},
    )
    ds, split = exp.ds, exp.split
    objective = resolve_objective(ds, args.objective)
    for name, value in DEFAULTS[objective].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    check_memory(ds, split, objective, args.dim, args.negatives, args.batch_size)
    exp.record.config.update(vars(args), objective=objective)
    codes, sizes = (exp.sids.codes, list(exp.sids.codebook_sizes)) if exp.sids else (None, None)
    with exp.record.stage("evaluation set-up"):
        evaluator = PointwiseEvaluator(
            ds,
            split,
            objective,
            exp.device,
            args.positive_threshold,
            tuple(args.ks),
            progress=exp.progress,
        )
    # The early-stopping metric follows the objective (train_pointwise sets it).
    cfg = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience
    )
    build = model_factory(
        ds, split, objective, args.dim, args.negatives, codes, sizes, args.init_std
    )
    # what recommend.py rebuilds each model from (src/serving/checkpoint.py)
    config = dict(
        objective=objective, dim=args.dim, negatives=args.negatives, init_std=args.init_std
    )
    keep = weights_keeper(
        args.checkpoint_dir,
        f"mf-{{name}}-{ds.name}-{split.kind}{exp.ids_tag()}",
        exp.checkpoint_spec("mf_train_eval.py", {"--models": "{name}", "--seed": "{seed}"}, config),
        exp.checkpoint_identity(),
    )
    models = run_models(
        args.models,
        exp.seeds,
        build,
        evaluator,
        lambda seed: TrainSampler(ds, split, objective, args.negatives, seed),
        cfg,
        args.reg,
        mf_model_facts,
        exp.record.stage,
        progress=exp.progress,
        save=prediction_saver(exp, evaluator, args.top_k),
        keep=keep,
    )

    split_record = exp.split_record()
    plots = plot_mf_results(
        {"models": models, "objective": objective, "dataset": ds.name, "split": split_record},
        args.plot_dir,
    )
    result = write_results(
        exp.out_path,
        {
            "task": "matrix factorization: item IDs vs semantic IDs",
            "dataset": ds.name,
            "protocol": split.kind,
            "seeds": exp.seeds,
            "objective": objective,
            "split": split_record,
            "semantic_ids": exp.ids_info,
            "models": models,
            "plots": [str(p) for p in plots],
        },
        exp.record,
    )
    log.info("test metrics:\n%s", mf_table(result))
    log.info("wrote %s and %s", exp.out_path, ", ".join(map(str, plots)))
    return result


if __name__ == "__main__":
    run_script(main)
