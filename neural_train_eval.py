"""Train and evaluate Wide&Deep, DeepFM and DLRM with item-ID vs semantic-ID features.

Feature modes: baseline (item ID + content), semantic (semantic codes instead
of the item ID), hybrid (both), semantic-ngram (code prefixes instead of the
item ID). Labels: on rated data (MovieLens) a rating >= --positive-threshold is
a positive; on implicit data (Beauty) an observed interaction is a positive
and --negatives sampled unobserved items are negatives (evaluation uses the
split's saved negatives, the same as the MF script's).

Examples:
    python neural_train_eval.py --data-dir data/ml-100k
    python neural_train_eval.py --data-dir beauty --models deepfm --modes baseline semantic \\
        --seeds 0 1 2

Writes neural_results_<dataset>.json (every model x mode x seed: test
metrics overall and per slice with sizes, parameter counts, training time and
curve; mean and std over seeds; the run record) and neural_<dataset>_auc.png into a new
runs/<script>-<dataset>-<time>/ (or --run-dir); --reference writes the study's results/ and
plots/ (make neural).
"""

from __future__ import annotations

import utils.runtime.preflight  # noqa: F401  (first: a missing package is one line)

# isort: split

import argparse
import logging
from dataclasses import asdict

from src.pointwise.ctr import MODELS, CTRConfig
from src.pointwise.ctr_experiment import (
    ctr_objective,
    labelling,
    plot_ctr_results,
    run_ctr,
    summary_rows,
)
from src.pointwise.evaluation import PointwiseEvaluator
from src.pointwise.experiment import prediction_saver, weights_keeper
from src.pointwise.features import BAG_LAYOUTS, MODES, NGRAM_BUCKETS, TITLE_BUCKETS
from src.training import TrainConfig
from utils.data.examples import resolve_objective
from utils.reporting.results import write_results
from utils.reporting.tables import ctr_table
from utils.runtime import argtypes
from utils.runtime.cli import HelpFormatter, add_common_args
from utils.runtime.errors import run_script
from utils.runtime.experiment import (
    add_checkpoint_arg,
    add_experiment_args,
    add_pointwise_args,
    setup_experiment,
)

log = logging.getLogger("neural_train_eval")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    add_common_args(
        p, default_out="results/neural_results_{dataset}.json", threads=1, plots=True, runs=True
    )
    p.add_argument(
        "--models", nargs="+", choices=list(MODELS), default=list(MODELS), help="models to train"
    )
    p.add_argument(
        "--modes", nargs="+", choices=MODES, default=list(MODES), help="feature modes to compare"
    )
    add_experiment_args(p)
    add_checkpoint_arg(p)
    add_pointwise_args(p, negatives=2, threshold_help="rated data: a rating >= this is a positive")
    g = p.add_argument_group("model")
    g.add_argument("--dim", type=argtypes.dim, default=16, help="embedding size of every field")
    g.add_argument(
        "--hidden",
        nargs="+",
        type=argtypes.layer_size,
        default=[128, 64],
        help="deep / top MLP hidden sizes",
    )
    g.add_argument(
        "--bottom",
        nargs="+",
        type=argtypes.layer_size,
        default=[32],
        help="DLRM-style bottom MLP for dense features",
    )
    g.add_argument("--dropout", type=argtypes.fraction, default=0.0, help="dropout of the MLPs")
    g.add_argument(
        "--cross-buckets",
        type=argtypes.buckets,
        default=2**18,
        help="hash buckets of the wide part's user x item crosses",
    )
    g.add_argument(
        "--title-buckets",
        type=argtypes.buckets,
        default=TITLE_BUCKETS,
        help="hash buckets of title tokens",
    )
    g.add_argument(
        "--ngram-buckets",
        type=argtypes.buckets,
        default=NGRAM_BUCKETS,
        help="hash buckets of each semantic-ID prefix n-gram",
    )
    g.add_argument(
        "--bag-layout",
        choices=BAG_LAYOUTS,
        default="offsets",
        help="how multi-hot bags reach EmbeddingBag",
    )
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=argtypes.epochs, default=5, help="most epochs to train")
    g.add_argument(
        "--patience",
        type=argtypes.patience,
        default=2,
        help="epochs without validation AUC improvement before stopping",
    )
    g.add_argument(
        "--batch-size", type=argtypes.batch_size, default=2048, help="training rows per step"
    )
    g.add_argument("--lr", type=argtypes.learning_rate, default=5e-3, help="AdamW learning rate")
    g.add_argument("--weight-decay", type=argtypes.penalty, default=0.0, help="AdamW weight decay")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    exp = setup_experiment(
        args,
        "neural_train_eval.py",
        needs_ids=any(mode != "baseline" for mode in args.modes),
        outputs={"--checkpoint-dir": args.checkpoint_dir},
    )
    ds, split, seeds = exp.ds, exp.split, exp.seeds
    objective = ctr_objective(resolve_objective(ds, args.objective))
    exp.record.config.update(objective=objective)
    with exp.record.stage("evaluation set-up"):
        evaluator = PointwiseEvaluator(
            ds, split, objective, exp.device, args.positive_threshold, progress=exp.progress
        )
    # The early-stopping metric follows the objective (train_pointwise sets it).
    train_cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        patience=args.patience,
    )
    model_cfg = CTRConfig(
        dim=args.dim,
        hidden=tuple(args.hidden),
        bottom=tuple(args.bottom),
        dropout=args.dropout,
        cross_buckets=args.cross_buckets,
    )
    features = {
        "title_buckets": args.title_buckets,
        "ngram_buckets": args.ngram_buckets,
        "bag_layout": args.bag_layout,
    }
    codes = exp.sids.codes if exp.sids else None
    # what recommend.py rebuilds each model from (src/serving/checkpoint.py)
    config = {"objective": objective, "model": asdict(model_cfg), "features": features}
    keep = weights_keeper(
        args.checkpoint_dir,
        f"ctr-{{name}}-{{mode}}-{ds.name}-{split.kind}{exp.ids_tag()}",
        exp.checkpoint_spec(
            "neural_train_eval.py",
            {"--models": "{name}", "--modes": "{mode}", "--seed": "{seed}"},
            config,
        ),
        exp.checkpoint_identity(),
    )
    results = run_ctr(
        ds,
        split,
        evaluator,
        args.models,
        args.modes,
        seeds,
        codes,
        model_cfg,
        train_cfg,
        args.negatives,
        args.positive_threshold,
        features,
        exp.record.stage,
        exp.progress,
        save=prediction_saver(exp, evaluator, args.top_k, ranking=False),
        keep=keep,
    )

    rows = summary_rows(results)
    plot = plot_ctr_results({"dataset": ds.name, "summary": rows, "seeds": seeds}, args.plot_dir)
    out = write_results(
        exp.out_path,
        {
            "task": "neural CTR models: item-ID vs semantic-ID features",
            "dataset": ds.name,
            "protocol": split.kind,
            "labelling": labelling(objective, args.positive_threshold, args.negatives, split),
            "seeds": seeds,
            "seeds_note": "mean and std over these model seeds (the split is fixed by "
            "--split-seed); the default is the single --seed, to keep the main job within its time "
            "budget: pass --seeds 0 1 2 for spreads",
            "split": exp.split_record(),
            "semantic_ids": exp.ids_info,
            "cold_start_rule": "item-side values never seen on a training item (cold item "
            "IDs first of all) map to a shared zero row that is never trained; see "
            "src/pointwise/features.py",
            "summary": rows,
            "modes": results,
            "plots": [str(plot)],
        },
        exp.record,
    )
    log.info("test metrics:\n%s", ctr_table(out))
    log.info("wrote %s and %s", exp.out_path, plot)
    return out


if __name__ == "__main__":
    run_script(main)
