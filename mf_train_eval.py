"""Train and evaluate matrix factorization with item IDs vs semantic IDs (explicit ratings or implicit feedback).

Examples:
    python mf_train_eval.py --data-dir data/ml-100k            # explicit: RMSE/MAE + liked (rating >= 4)
    python mf_train_eval.py --data-dir beauty                  # implicit: AUC/logloss + full-catalogue Recall/NDCG
    python mf_train_eval.py --data-dir beauty --models mf_id mf_semantic --seeds 0 1 2 --split random

Writes results/mf_results_<dataset>.json (per model and seed: overall and sliced
test metrics, training curve, learned level weights; mean and std over seeds;
the run record) and plots/mf_<dataset>_<metric>.png.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path


from src.mf import DEFAULTS, MODEL_NAMES, SEMANTIC_MODELS, describe, model_factory
from src.pointwise import MONITOR, PointwiseEvaluator, markdown_table, plot_overall_vs_cold, run_models, semantic_ids_record
from src.training import TrainConfig
from utils.argtypes import finite_float, fraction, non_negative_float, positive_float, positive_int
from utils.cli import add_common_args, setup
from utils.data import load_dataset
from utils.errors import run_script
from utils.examples import OBJECTIVES, TrainSampler, resolve_objective
from utils.io import atomic_write_json, check_writable
from utils.runinfo import RunRecord
from utils.semantic import load_semantic_ids
from utils.splits import SPLIT_KINDS, get_split

log = logging.getLogger("mf_train_eval")
PLOT_METRICS = {"explicit": ("rmse", "auc"), "implicit": ("auc", "recall@20")}
TABLE_COLUMNS = {
    "explicit": {"RMSE": ("overall", "rmse"), "MAE": ("overall", "mae"), "AUC (liked)": ("overall", "auc"),
                 "F1 (liked)": ("overall", "f1"), "warm RMSE": ("slices", "warm_items", "rmse"),
                 "cold RMSE": ("slices", "cold_items", "rmse"), "tail-item RMSE": ("slices", "item_tail", "rmse")},
    "implicit": {"AUC": ("overall", "auc"), "logloss": ("overall", "logloss"),
                 "Recall@10": ("ranking", "overall", "recall@10"), "NDCG@10": ("ranking", "overall", "ndcg@10"),
                 "Recall@20": ("ranking", "overall", "recall@20"), "NDCG@20": ("ranking", "overall", "ndcg@20"),
                 "cold AUC": ("slices", "cold_items", "auc"),
                 "cold Recall@20": ("ranking", "slices", "cold_items", "recall@20"),
                 "cold-catalogue Recall@20": ("ranking", "cold_catalogue", "recall@20")},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, default_out="results/mf_results_{dataset}.json", threads=1, plots=True)
    p.add_argument("--objective", choices=OBJECTIVES, default="auto",
                   help="auto: explicit when the data has star ratings")
    p.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(MODEL_NAMES))
    p.add_argument("--seeds", nargs="+", type=int,
                   help="model seeds to repeat (default: --seed only); the split stays fixed")
    p.add_argument("--split", choices=SPLIT_KINDS, default="temporal",
                   help="temporal per-user 80/10/10 (default) or random")
    p.add_argument("--cold-fraction", type=fraction, default=0.05,
                   help="share of items held out of training (cold items)")
    p.add_argument("--split-cache", help="folder for the cached split (default: <data-dir>/splits)")
    p.add_argument("--semantic-dir", help="folder holding semantic_ids.json (default: --data-dir)")
    p.add_argument("--negatives", type=positive_int, default=4,
                   help="implicit: sampled negatives per training positive")
    p.add_argument("--positive-threshold", type=finite_float, default=4.0,
                   help="explicit: a rating >= this counts as liked")
    p.add_argument("--ks", nargs="+", type=positive_int, default=[10, 20],
                   help="implicit: cut-offs of Recall@k and NDCG@k")
    g = p.add_argument_group("training (defaults depend on the objective; see src/mf.py DEFAULTS)")
    for name, kind in (("dim", positive_int), ("lr", positive_float), ("reg", non_negative_float),
                       ("batch_size", positive_int), ("epochs", positive_int)):
        g.add_argument(f"--{name.replace('_', '-')}", type=kind,
                       help=f"explicit {DEFAULTS['explicit'][name]}, implicit {DEFAULTS['implicit'][name]}")
    g.add_argument("--patience", type=positive_int, default=3,
                   help="epochs without validation improvement before stopping")
    g.add_argument("--init-std", type=non_negative_float, default=0.01,
                   help="standard deviation of the initial factors")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    device = setup(args)
    ds = load_dataset(args.data_dir)
    out_path = Path(args.out.format(dataset=ds.name))
    split_cache = args.split_cache or Path(args.data_dir) / "splits"
    check_writable({"--out": out_path}, {"--plot-dir": args.plot_dir, "--split-cache": split_cache})
    objective = resolve_objective(ds, args.objective)
    for name, value in DEFAULTS[objective].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    seeds = args.seeds or [args.seed]
    record = RunRecord("mf_train_eval.py", {**vars(args), "objective": objective, "seeds": seeds}, seeds[0], ds.checksum)

    with record.stage("split"):
        split = get_split(ds, args.split, args.split_seed, args.cold_fraction,
                          cache_dir=split_cache)
    codes = sizes = sid_info = None
    if any(m in SEMANTIC_MODELS for m in args.models):
        with record.stage("semantic ids"):
            sids = load_semantic_ids(args.semantic_dir or args.data_dir, ds)
        codes, sizes = sids.codes, list(sids.codebook_sizes)
        sid_info = semantic_ids_record(sids, args.cold_fraction, args.split_seed)
    with record.stage("evaluation set-up"):
        evaluator = PointwiseEvaluator(ds, split, objective, device, args.positive_threshold, tuple(args.ks))
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                      monitor=MONITOR[objective][0], mode=MONITOR[objective][1])
    build = model_factory(ds, split, objective, args.dim, args.negatives, codes, sizes, args.init_std)
    models = run_models(args.models, seeds, build, evaluator,
                        lambda seed: TrainSampler(ds, split, objective, args.negatives, seed),
                        cfg, args.reg, describe, record.stage)

    plots = [plot_overall_vs_cold(Path(args.plot_dir) / f"mf_{ds.name}_{m.replace('@', '_at_')}.png", models, m,
                                  f"MF on {ds.name} ({objective}, {args.split} split, {len(seeds)} seed(s))")
             for m in PLOT_METRICS[objective]]
    result = {
        "task": "matrix factorization: item IDs vs semantic IDs", "dataset": ds.name, "objective": objective,
        "split": {"kind": split.kind, "seed": split.seed, "sizes": split.sizes(), "info": split.info},
        "semantic_ids": sid_info,
        "models": models, "plots": [str(p) for p in plots], "run_record": record.to_dict(),
    }
    atomic_write_json(out_path, result)
    log.info("test metrics, mean ± std over %d seed(s):\n%s", len(seeds), markdown_table(models, TABLE_COLUMNS[objective]))
    log.info("wrote %s and %s", out_path, ", ".join(map(str, plots)))
    return result


if __name__ == "__main__":
    run_script(main)
