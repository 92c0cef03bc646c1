"""The Markdown tables of every stage: what each script logs and what ``summarize_results.py``
prints for the README, from the same functions (``*_table``), so a README table and the test of
the summary run the same code.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from utils.reporting.results import RUN_RECORD, dig


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
