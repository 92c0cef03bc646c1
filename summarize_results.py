"""Print the headline tables of every results file in results/ as Markdown (what the README shows).

  python summarize_results.py                 # all data sets found in results/
  python summarize_results.py --results-dir results --datasets beauty ml-100k
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable, Iterable

from utils.errors import DataError, add_debug_flag, run_script
from utils.io import read_json


def fmt(cell: Any, digits: int = 4) -> str:
    """A number, or a {'mean', 'std'} dict as 'mean ± std' (std omitted for a single run)."""
    if isinstance(cell, dict) and "mean" in cell:
        values = cell.get("values", [])
        return f"{cell['mean']:.{digits}f}" + (f" ± {cell['std']:.{digits}f}" if len(values) > 1 else "")
    if isinstance(cell, float):
        return f"{cell:.{digits}f}"
    return "–" if cell is None else str(cell)


def dig(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def table(header: list[str], rows: Iterable[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return "\n".join(lines)


def semantic_section(path: Path) -> str:
    a = read_json(path)
    usage = a["usage"]
    col = a["collisions"]
    sim = [f"{s['mean_cosine_at_least']:.3f}" for s in a["similarity_by_prefix"]]
    pur = a["purity_level1"]
    purity = "; ".join(f"{k.replace('_', ' ')} {v['purity']:.3f} vs random {v['random_assignment_mean']:.3f}"
                       for k, v in pur.items() if isinstance(v, dict) and v.get("purity") is not None)
    qe = dig(a, "quantization_error", "fit_items", "per_level") or []
    rows = [
        ["codebook sizes", " / ".join(map(str, a["codebook_sizes"]))],
        ["codes used per level", " / ".join(f"{u['used_codes']}/{u['codebook_size']}" for u in usage)],
        ["normalized entropy per level", " / ".join(f"{u['normalized_entropy']:.2f}" for u in usage)],
        ["colliding items / groups / largest group", f"{col['colliding_items']} / {col['colliding_groups']} / {col['largest_group']}"],
        ["quantization error per level (fit items)", " / ".join(f"{q:.3f}" for q in qe)],
        ["mean cosine of pairs sharing >= 0/1/2/3 codes", " / ".join(sim)],
        ["level-1 purity", purity or "–"],
    ]
    return f"**Semantic IDs, {a['dataset']}** ({a['items']} items, fitted on {a['fit_on']} items)\n\n" + table(["", ""], rows)


MF_COLUMNS = {
    "explicit": [("RMSE", ("overall", "rmse")), ("MAE", ("overall", "mae")), ("AUC (liked)", ("overall", "auc")),
                 ("warm RMSE", ("slices", "warm_items", "rmse")), ("cold RMSE", ("slices", "cold_items", "rmse")),
                 ("tail-item RMSE", ("slices", "item_tail", "rmse"))],
    "implicit": [("AUC", ("overall", "auc")), ("Recall@20", ("ranking", "overall", "recall@20")),
                 ("NDCG@20", ("ranking", "overall", "ndcg@20")), ("cold AUC", ("slices", "cold_items", "auc")),
                 ("cold Recall@20", ("ranking", "slices", "cold_items", "recall@20")),
                 ("cold-catalogue Recall@20", ("ranking", "cold_catalogue", "recall@20"))],
}


def mf_section(path: Path) -> str:
    r = read_json(path)
    cols = MF_COLUMNS[r["objective"]]
    rows = [[name] + [dig(m, "mean_std", "test", *p) for _, p in cols] for name, m in r["models"].items()]
    seeds = len(next(iter(r["models"].values()))["seeds"])
    return (f"**MF, {r['dataset']}** ({r['objective']}, {r['split']['kind']} split, test set, {seeds} seed(s), "
            f"{r['run_record']['wall_seconds']:.0f} s)\n\n" + table(["model"] + [c for c, _ in cols], rows))


def neural_section(path: Path) -> str:
    r = read_json(path)
    cols = [("AUC", ("overall", "auc")), ("logloss", ("overall", "logloss")), ("PR-AUC", ("overall", "pr_auc")),
            ("cold AUC", ("slices", "cold_items", "auc")), ("tail-item AUC", ("slices", "item_tail", "auc"))]
    rows = []
    for mode, block in r["modes"].items():
        for model, m in block["models"].items():
            rows.append([model, mode] + [dig(m, "mean_std", "test", *p) for _, p in cols]
                        + [f"{dig(m, 'mean_std', 'parameters', 'mean'):,.0f}", fmt(dig(m, "mean_std", "train_seconds"), 1)])
    rows.sort(key=lambda row: row[0])
    return (f"**Neural CTR, {r['dataset']}** ({r['labelling']['objective']}, test set, seeds {r['seeds']}, "
            f"{r['run_record']['wall_seconds']:.0f} s)\n\n"
            + table(["model", "mode"] + [c for c, _ in cols] + ["parameters", "train s"], rows))


def tiger_section(path: Path) -> str:
    r = read_json(path)
    metrics = ["recall@5", "ndcg@5", "recall@10", "ndcg@10"]
    rows = [[name] + [m["test"][k] for k in metrics]
            + [m["cold_start_test_recall@10"], dig(m, "cold_start", "cold_target_users", "recall@10"),
               m["epochs_run"], f"{m['timing']['train_seconds']:.0f}"]
            for name, m in r["models"].items()]
    rows += [[f"{name} (published)"] + [p[k] for k in metrics] + [None, None, None, None]
             for name, p in r["published_beauty_test"].items()]
    return (f"**TIGER and SASRec, {r['dataset']}** (`{path.name}`: leave-one-out, full-catalogue ranking, test set, "
            f"{r['preset']} preset, `{r['run']['command']}`, {r['run']['wall_seconds']:.0f} s)\n\n"
            + table(["model"] + [m.replace("recall", "Recall").replace("ndcg", "NDCG") for m in metrics]
                    + ["cold Recall@10 (plain beam)", "cold Recall@10 (cold share)", "epochs", "train s"], rows))


TIGER_METRICS = ["recall@5", "ndcg@5", "recall@10", "ndcg@10"]


def tiger_seeds_section(paths: list[Path]) -> str | None:
    """Mean ± std over the runs of one preset that differ only in --seed (None when there is one run)."""
    from utils.report import aggregate_seeds

    runs = [r for r in map(read_json, paths) if r.get("complete") and r.get("preset") == "quick"]
    # Seeds of one experiment: the same semantic IDs (runs on other IDs are other experiments).
    ids = [dig(r, "semantic_ids", "ids_digest") for r in runs]
    runs = [r for r, digest in zip(runs, ids) if ids and digest == ids[0]]
    seeds = sorted({r.get("seed") for r in runs})
    if len(seeds) < 2:
        return None
    models = [m for m in runs[0]["models"] if all(m in r["models"] for r in runs)]
    rows = []
    for name in models:
        reps = [r["models"][name] for r in runs]
        agg = aggregate_seeds([{"test": rep["test"], "cold": {"plain": rep["cold_start_test_recall@10"],
                                                               "share": dig(rep, "cold_start", "cold_target_users",
                                                                            "recall@10")},
                                "train": rep["timing"]["train_seconds"]} for rep in reps])
        rows.append([name] + [agg["test"][k] for k in TIGER_METRICS]
                    + [agg["cold"].get("plain"), agg["cold"].get("share"), fmt(agg["train"], 0)])
    rows += [[f"{name} (published)"] + [p[k] for k in TIGER_METRICS] + [None, None, None]
             for name, p in runs[0]["published_beauty_test"].items()]
    return (f"**TIGER and SASRec, {runs[0]['dataset']}, mean ± std over seeds {seeds}** (quick preset, "
            "`tiger_train_eval.py --seed N`, one results file per seed; leave-one-out, full-catalogue "
            "ranking, test set)\n\n"
            + table(["model"] + [m.replace("recall", "Recall").replace("ndcg", "NDCG") for m in TIGER_METRICS]
                    + ["cold Recall@10 (plain beam)", "cold Recall@10 (cold share)", "train s"], rows))


def section(render: Callable[[Path], str], path: Path) -> str:
    """One file's section; a file whose layout differs from its name's promise is refused by name."""
    try:
        return render(path)
    except (KeyError, TypeError, IndexError, AttributeError, StopIteration) as exc:
        raise DataError(f"{path}: not a results file in the expected layout ({type(exc).__name__}: {exc}); "
                        "re-run the script that writes it, or move it out of the results folder") from exc


RENDERERS: tuple[tuple[str, Callable[[Path], str]], ...] = (
    ("semantic_id_analysis_*.json", semantic_section), ("mf_results_*.json", mf_section),
    ("neural_results_*.json", neural_section), ("tiger_results*.json", tiger_section),
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results-dir", default="results")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    d = Path(args.results_dir)
    sections = [section(render, p) for pattern, render in RENDERERS for p in sorted(d.glob(pattern))]
    seeds = tiger_seeds_section(sorted(d.glob("tiger_results*.json")))
    sections += [seeds] if seeds else []
    if not sections:
        raise SystemExit(f"no results files in {d}/: run `make all` (or the *_train_eval.py scripts) first")
    print("\n\n".join(sections))


if __name__ == "__main__":
    run_script(main)
