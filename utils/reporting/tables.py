"""The Markdown tables of every stage: what each script logs and what ``summarize_results.py``
prints for the README, from the same functions (``*_table``), so a README table and the test of
the summary run the same code.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from utils.reporting.results import RUN_RECORD, aggregate_seeds, dig, published_rows


def fmt(cell: Any, digits: int = 4) -> str:
    """A number, or a {'mean', 'std'} dict as 'mean ± std' (std omitted for a single run); None as
    '–'."""
    if isinstance(cell, dict) and "mean" in cell:
        values = cell.get("values", [])
        return f"{cell['mean']:.{digits}f}" + (
            f" ± {cell['std']:.{digits}f}" if len(values) > 1 else ""
        )
    if isinstance(cell, float):
        return f"{cell:.{digits}f}"
    return "–" if cell is None else str(cell)


def markdown_table(header: list[str], rows: Iterable[list[Any]]) -> str:
    """A Markdown table; string cells are printed as they are, anything else through :func:`fmt`."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(c if isinstance(c, str) else fmt(c) for c in row) + " |" for row in rows
    ]
    return "\n".join(lines)


def semantic_ids_table(analysis: dict[str, Any]) -> str:
    """The analysis report of one set of semantic IDs (analyze_semantic_ids.py)."""
    a = analysis
    usage, col = a["usage"], a["collisions"]
    sim = [f"{s['mean_cosine_at_least']:.3f}" for s in a["similarity_by_prefix"]]
    purity = "; ".join(
        f"{k.replace('_', ' ')} {v['purity']:.3f} vs random {v['random_assignment_mean']:.3f}"
        for k, v in a["purity_level1"].items()
        if isinstance(v, dict) and v.get("purity") is not None
    )
    qe = dig(a, "quantization_error", "fit_items", "per_level") or []
    rows = [
        ["codebook sizes", " / ".join(map(str, a["codebook_sizes"]))],
        [
            "codes used per level",
            " / ".join(f"{u['used_codes']}/{u['codebook_size']}" for u in usage),
        ],
        [
            "normalized entropy per level",
            " / ".join(f"{u['normalized_entropy']:.2f}" for u in usage),
        ],
        [
            "colliding items / groups / largest group",
            f"{col['colliding_items']} / {col['colliding_groups']} / {col['largest_group']}",
        ],
        ["quantization error per level (fit items)", " / ".join(f"{q:.3f}" for q in qe)],
        ["mean cosine of pairs sharing >= 0/1/2/3 codes", " / ".join(sim)],
        ["level-1 purity", purity or "–"],
    ]
    return (
        f"**Semantic IDs, {a['dataset']}** ({a['items']} items, fitted on {a['fit_on']} items)\n\n"
        + markdown_table(["", ""], rows)
    )


# Columns of the MF table per objective: (header, path in a model's mean/std test report).
MF_COLUMNS = {
    "explicit": [
        ("RMSE", ("overall", "rmse")),
        ("MAE", ("overall", "mae")),
        ("AUC (liked)", ("overall", "auc")),
        ("warm RMSE", ("slices", "warm_items", "rmse")),
        ("cold RMSE", ("slices", "cold_items", "rmse")),
        ("tail-item RMSE", ("slices", "item_tail", "rmse")),
    ],
    "implicit": [
        ("AUC", ("overall", "auc")),
        ("Recall@20", ("ranking", "overall", "recall@20")),
        ("NDCG@20", ("ranking", "overall", "ndcg@20")),
        ("cold AUC", ("slices", "cold_items", "auc")),
        ("cold Recall@20", ("ranking", "slices", "cold_items", "recall@20")),
        ("cold-catalogue Recall@20", ("ranking", "cold_catalogue", "recall@20")),
    ],
}


def mf_table(result: dict[str, Any]) -> str:
    """MF models, mean ± std over seeds (mf_train_eval.py)."""
    cols = MF_COLUMNS[result["objective"]]
    rows = [
        [name] + [dig(m, "mean_std", "test", *p) for _, p in cols]
        for name, m in result["models"].items()
    ]
    seeds = len(next(iter(result["models"].values()))["seeds"])
    return (
        f"**MF, {result['dataset']}** "
        f"({result['objective']}, {result['split']['kind']} split, test set, "
        f"{seeds} seed(s), {result[RUN_RECORD]['wall_seconds']:.0f} s)\n\n"
        + markdown_table(["model"] + [c for c, _ in cols], rows)
    )


CTR_COLUMNS = [
    ("AUC", ("overall", "auc")),
    ("logloss", ("overall", "logloss")),
    ("PR-AUC", ("overall", "pr_auc")),
    ("cold AUC", ("slices", "cold_items", "auc")),
    ("tail-item AUC", ("slices", "item_tail", "auc")),
]


def ctr_table(result: dict[str, Any]) -> str:
    """CTR models x feature modes, mean ± std over seeds (neural_train_eval.py)."""
    rows = []
    for mode, block in result["modes"].items():
        for model, m in block["models"].items():
            rows.append(
                [model, mode]
                + [dig(m, "mean_std", "test", *p) for _, p in CTR_COLUMNS]
                + [
                    f"{dig(m, 'mean_std', 'parameters', 'mean'):,.0f}",
                    fmt(dig(m, "mean_std", "train_seconds"), 1),
                ]
            )
    rows.sort(key=lambda row: row[0])
    return (
        f"**Neural CTR, {result['dataset']}** ({result['labelling']['objective']}, test set, "
        f"seeds {result['seeds']}, {result[RUN_RECORD]['wall_seconds']:.0f} s)\n\n"
        + markdown_table(
            ["model", "mode"] + [c for c, _ in CTR_COLUMNS] + ["parameters", "train s"], rows
        )
    )


TIGER_METRICS = ["recall@5", "ndcg@5", "recall@10", "ndcg@10"]
TIGER_HEADER = [m.replace("recall", "Recall").replace("ndcg", "NDCG") for m in TIGER_METRICS]


def tiger_table(result: dict[str, Any], name: str = "") -> str:
    """The models of one sequential run beside the published numbers of its protocol
    (tiger_train_eval.py): the headline ranking's row per model, then its other rankings' rows
    (filtered); ``name``: the file."""
    protocol = result.get("protocol", "cold")  # files from before the protocols were named

    def row(model: str, ranking: str, m: dict[str, Any], extra: list[Any]) -> list[Any]:
        return [model, ranking] + [m["test"].get(k) for k in TIGER_METRICS] + extra

    rows = []
    for model, m in result["models"].items():
        headline = m.get("ranking", "paper")
        rows.append(
            row(
                model,
                headline,
                m,
                [
                    m["cold_start_test_recall@10"],
                    dig(m, "cold_start", "cold_target_users", "recall@10"),
                    m["epochs_run"],
                    f"{m['timing']['train_seconds']:.0f}",
                ],
            )
        )
        rows += [
            row(model, rule, m[rule], [None] * 4) for rule in result.get("rankings", [headline])[1:]
        ]
    rows += [
        [f"{model} (published)", result.get("rankings", ["paper"])[0]]
        + [p.get(k) for k in TIGER_METRICS]
        + [None] * 4
        for model, p in published_rows(result).items()
    ]
    record = result[RUN_RECORD]
    where = f"`{name}`: " if name else ""
    return (
        f"**Sequential models, {result['dataset']}, `{protocol}` protocol** "
        f"({where}leave-one-out, full-catalogue ranking, test set, "
        f"{result['preset']} preset, `{record['command']}`, {record['wall_seconds']:.0f} s)\n\n"
        + markdown_table(
            ["model", "ranking"]
            + TIGER_HEADER
            + ["cold Recall@10 (plain beam)", "cold Recall@10 (cold share)", "epochs", "train s"],
            rows,
        )
    )


PROTOCOL_METRICS = [*TIGER_METRICS, "mrr@20"]


def _model_label(model: str, run: dict[str, Any]) -> str:
    """A row's name: the model, with the preset and its epochs when it is not the main job's."""
    if run.get("preset", "quick") == "quick":
        return model
    epochs = dig(run, "models", model, "epochs_run")
    return f"{model} ({run['preset']} preset{f', {epochs} epochs' if epochs else ''})"


def protocol_tables(results: list[dict[str, Any]]) -> list[str]:
    """One table per protocol and ranking over the complete runs of each protocol (without
    hyperparameter overrides: those are other experiments): every model's test metrics as
    mean ± std over its seeds (the value alone for one seed), one row per model and preset
    (the main job's quick preset unnamed), with the published numbers of that protocol under
    its headline ranking."""
    by_protocol: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        if r.get("complete") and "protocol" in r and not r.get("overrides"):
            by_protocol.setdefault(r["protocol"], []).append(r)
    tables = []
    for protocol, runs in by_protocol.items():
        for position, ranking in enumerate(runs[0]["rankings"]):
            groups: dict[str, list[dict[str, Any]]] = {}
            for r in runs:
                for model in r["models"]:
                    groups.setdefault(_model_label(model, r), []).append(r)
            rows = []
            for label, group in groups.items():
                model = label.split(" (")[0]
                blocks = [
                    r["models"][model] if position == 0 else r["models"][model][ranking]
                    for r in group
                ]
                seeds = sorted(r["seed"] for r in group)
                agg = aggregate_seeds([{"test": b["test"]} for b in blocks])["test"]
                rows.append(
                    [label, ", ".join(map(str, seeds))] + [agg.get(k) for k in PROTOCOL_METRICS]
                )
            if position == 0:
                rows += [
                    [f"{model} (published)", "–"] + [p.get(k) for k in PROTOCOL_METRICS]
                    for model, p in published_rows(runs[0]).items()
                ]
            tables.append(
                f"**{runs[0]['dataset']}, `{protocol}` protocol, `{ranking}` ranking** "
                f"(`tiger_train_eval.py --protocol {protocol}`, quick preset unless named; test "
                "set, mean ± std over seeds)\n\n"
                + markdown_table(
                    ["model", "seeds"] + TIGER_HEADER + ["MRR@20"],
                    rows,
                )
            )
    return tables


def seed_runs(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The complete quick-preset TIGER runs of the cold-start study (files from before the
    protocols were named) on the same semantic IDs as the first (other IDs: other experiments)."""
    runs = [
        r
        for r in results
        if r.get("complete") and r.get("preset") == "quick" and "protocol" not in r
    ]
    ids = [dig(r, "semantic_ids", "ids_digest") for r in runs]
    return [r for r, digest in zip(runs, ids) if digest == ids[0]]


def tiger_seeds_table(results: list[dict[str, Any]]) -> str | None:
    """Mean ± std over quick-preset runs that differ only in --seed (None with fewer than two
    seeds)."""
    runs = seed_runs(results)
    seeds = sorted({r.get("seed") for r in runs})
    if len(seeds) < 2:
        return None
    models = [m for m in runs[0]["models"] if all(m in r["models"] for r in runs)]
    rows = []
    for model in models:
        reps = [r["models"][model] for r in runs]
        agg = aggregate_seeds(
            [
                {
                    "test": rep["test"],
                    "cold": {
                        "plain": rep["cold_start_test_recall@10"],
                        "share": dig(rep, "cold_start", "cold_target_users", "recall@10"),
                    },
                    "train": rep["timing"]["train_seconds"],
                }
                for rep in reps
            ]
        )
        rows.append(
            [model]
            + [agg["test"][k] for k in TIGER_METRICS]
            + [agg["cold"].get("plain"), agg["cold"].get("share"), fmt(agg["train"], 0)]
        )
    rows += [
        [f"{model} (published)"] + [p[k] for k in TIGER_METRICS] + [None, None, None]
        for model, p in published_rows(runs[0]).items()
    ]
    return (
        f"**TIGER and SASRec, {runs[0]['dataset']}, mean ± std over seeds {seeds}** (quick preset, "
        "`tiger_train_eval.py --seed N`, one results file per seed; leave-one-out, full-catalogue "
        "ranking, test set)\n\n"
        + markdown_table(
            ["model"]
            + TIGER_HEADER
            + ["cold Recall@10 (plain beam)", "cold Recall@10 (cold share)", "train s"],
            rows,
        )
    )


QUANTIZERS = ("rqkmeans", "rqvae", "random")
QUANTIZER_NAMES = {
    "rqkmeans": "RQ-KMeans",
    "rqvae": "RQ-VAE (+ re-seeding)",
    "random": "random IDs",
}
# (row label, path in a quantizer's block of results/quantizer_comparison.json)
QUANTIZER_ROWS = [
    ("TIGER Recall@10", ("tiger", "mean_std", "test", "recall@10")),
    ("TIGER NDCG@10", ("tiger", "mean_std", "test", "ndcg@10")),
    ("TIGER tail-item Recall@10", ("tiger", "mean_std", "item_tail", "recall@10")),
    (
        "TIGER cold-target Recall@10 (cold share)",
        ("tiger", "mean_std", "cold_share", "cold_target_users", "recall@10"),
    ),
    ("MF-Semantic AUC", ("mf_semantic", "mean_std", "overall", "auc")),
    ("MF-Semantic Recall@20", ("mf_semantic", "mean_std", "ranking", "overall", "recall@20")),
    ("MF-Semantic cold AUC", ("mf_semantic", "mean_std", "slices", "cold_items", "auc")),
    (
        "MF-Semantic cold Recall@20",
        ("mf_semantic", "mean_std", "ranking", "slices", "cold_items", "recall@20"),
    ),
    (
        "MF-Semantic cold-catalogue Recall@20",
        ("mf_semantic", "mean_std", "ranking", "cold_catalogue", "recall@20"),
    ),
    ("DeepFM (semantic) AUC", ("deepfm_semantic", "mean_std", "overall", "auc")),
    ("DeepFM (semantic) cold AUC", ("deepfm_semantic", "mean_std", "slices", "cold_items", "auc")),
    (
        "DeepFM (semantic) tail-item AUC",
        ("deepfm_semantic", "mean_std", "slices", "item_tail", "auc"),
    ),
]


def quantizer_table(comparison: dict[str, Any]) -> str:
    """The downstream comparison of ID quantizers (benchmarks/compare_quantizers.py)."""
    blocks = comparison["quantizers"]
    names = [q for q in QUANTIZERS if q in blocks]
    rows = [[label] + [dig(blocks[q], *path) for q in names] for label, path in QUANTIZER_ROWS]
    rows.append(["TIGER seeds"] + [", ".join(map(str, blocks[q]["tiger"]["seeds"])) for q in names])
    rows.append(
        ["MF / DeepFM seeds"]
        + [", ".join(map(str, blocks[q]["mf_semantic"]["seeds"])) for q in names]
    )
    rows.append(
        ["colliding items before the 4th level"]
        + [str(blocks[q]["ids"]["colliding_items"]) for q in names]
    )
    rows.append(
        ["reconstruction error (fit items, final)"]
        + [f"{blocks[q]['ids']['final_error_fit_items']:.3f}" for q in names]
    )
    return markdown_table([""] + [QUANTIZER_NAMES[q] for q in names], rows)


NEXT_ITEM_COLUMNS = [
    ("Hit@1", "hit@1"),
    ("Hit@3", "hit@3"),
    ("NDCG@3", "ndcg@3"),
    ("Hit@5", "hit@5"),
    ("NDCG@5", "ndcg@5"),
    ("Hit@10", "hit@10"),
    ("NDCG@10", "ndcg@10"),
    ("MRR@20", "mrr@20"),
]
SLICE_ROWS = [
    ("all test users", None),
    ("head items", "item_head"),
    ("mid items", "item_mid"),
    ("tail items", "item_tail"),
    ("cold items", "cold_items"),
]


def next_item_table(results: list[dict[str, Any]]) -> str | None:
    """The seed's metric set (Hit/NDCG@1/3/5/10 = Recall, MRR@20) of TIGER and SASRec per test
    slice, mean ± std over the seeds (None without a run that reports it)."""
    runs = [
        r for r in seed_runs(results) if all("mrr@20" in m["test"] for m in r["models"].values())
    ]
    if not runs:
        return None
    models = [m for m in runs[0]["models"] if all(m in r["models"] for r in runs)]
    rows = []
    for model in models:
        per_seed = [
            {"all": r["models"][model]["test"], **r["models"][model]["test_slices"]} for r in runs
        ]
        agg = aggregate_seeds(per_seed)
        n_users = runs[0]["models"][model]["n_test_users"]
        for label, key in SLICE_ROWS:
            block = agg["all" if key is None else key]
            n = n_users if key is None else block["n"]["mean"]  # the same users in every seed
            rows.append([model, label, f"{n:,.0f}"] + [block[k] for _, k in NEXT_ITEM_COLUMNS])
    seeds = sorted({r.get("seed") for r in runs})
    return (
        f"**TIGER and SASRec, {runs[0]['dataset']}: the full metric set by test slice, mean ± std "
        f"over seeds {seeds}** (Recall@k = Hit@k with one target; MRR cut at 20, TIGER's beam)\n\n"
        + markdown_table(["model", "test slice", "users"] + [c for c, _ in NEXT_ITEM_COLUMNS], rows)
    )
