"""Describe generated semantic IDs: code usage, collisions, similarity by shared prefix, purity, examples.

Reads <data-dir>/semantic_ids.json, semantic_id_stats.json, the saved quantizer
(codebooks.npz, rqvae.pt or random_codes.npz) and the cached item embeddings (the encoder is only
loaded if the cache lacks them), and writes PNG plots to --plot-dir plus a
JSON report to --out.

Examples:
  python analyze_semantic_ids.py --data-dir beauty
  python analyze_semantic_ids.py --data-dir data/ml-100k
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import semantic_id_generator as gen  # noqa: E402
from src.random_ids import RandomCodes, code_means  # noqa: E402
from src.semantic_analysis import prefix_similarity, purity_report, representative_items  # noqa: E402
from utils.argtypes import positive_int  # noqa: E402
from utils.cli import add_common_args, setup  # noqa: E402
from utils.data import Dataset, load_dataset  # noqa: E402
from utils.errors import run_script  # noqa: E402
from utils.io import atomic_path, atomic_write_json, check_writable, read_json  # noqa: E402
from utils.runinfo import RunRecord  # noqa: E402
from utils.semantic import (  # noqa: E402
    GENERATE_HINT, STATS_FILE, SemanticIds, check_stats, load_semantic_ids)

log = logging.getLogger("analyze_semantic_ids")


def item_labels(ds: Dataset) -> dict[str, list[str]]:
    """Per item: its first (top) category, its last (leaf) category and its brand ('' when absent)."""
    cats = ds.meta.categories
    unknown_brand = {"", "unknown", "n/a", "na"}
    return {
        "top_category": [c[0] if c else "" for c in cats],
        "leaf_category": [c[-1] if c else "" for c in cats],
        "brand": ["" if str(b).strip().lower() in unknown_brand else str(b) for b in ds.meta.brand],
    }


def level1_centres(q: gen.Quantizer, x: np.ndarray, sids: SemanticIds) -> np.ndarray:
    """Each level-1 code's centre in embedding space; random codes have none, so their members' mean."""
    if isinstance(q, RandomCodes):
        return code_means(x, sids.codes[:, 0], sids.codebook_sizes[0])
    return q.first_level_centres()


def examples(ds: Dataset, sids: SemanticIds, x: np.ndarray, q: gen.Quantizer, n_codes: int, per_code: int
             ) -> dict[str, Any]:
    """The most used level-1 codes with their most central items, and the largest collision group."""
    labels = item_labels(ds)
    counts = np.bincount(sids.codes[:, 0], minlength=sids.codebook_sizes[0])
    centres = level1_centres(q, x, sids)
    by_code = []
    for code in np.argsort(-counts, kind="stable")[:n_codes]:
        members = np.flatnonzero(sids.codes[:, 0] == code)
        tops, top_counts = np.unique([labels["top_category"][i] for i in members], return_counts=True)
        by_code.append({
            "code": int(code), "items": int(counts[code]),
            "most_common_top_category": str(tops[np.argmax(top_counts)]),
            "share_with_it": float(top_counts.max() / len(members)),
            "central_items": [{"id": str(ds.item_ids[i]), "title": str(ds.meta.title[i]),
                               "semantic_id": sids.codes[i].tolist()}
                              for i in representative_items(x, sids.codes, centres, int(code), per_code)],
        })
    prefixes, inverse, sizes = np.unique(sids.codes[:, :-1], axis=0, return_inverse=True, return_counts=True)
    biggest = int(np.argmax(sizes))
    group = np.flatnonzero(inverse.reshape(-1) == biggest)
    members = [{"id": str(ds.item_ids[i]), "title": str(ds.meta.title[i]), "collision_code": int(sids.codes[i, -1])}
               for i in group[:per_code]]
    return {"level1_codes": by_code,
            "largest_collision_group": {"prefix": prefixes[biggest].tolist(), "size": int(sizes[biggest]),
                                        "items": members}}


# ------------------------------------------------------------------ plots


def _save(fig: plt.Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_usage(stats: dict, path: Path, name: str) -> Path:
    usage = stats["usage"]
    fig, axes = plt.subplots(1, len(usage), figsize=(4.2 * len(usage), 3.4), squeeze=False)
    for ax, level in zip(axes[0], usage):
        counts = np.sort(np.array(level["counts"]))[::-1]
        ax.bar(np.arange(len(counts)), counts, width=1.0, color="tab:blue")
        ax.axhline(counts.sum() / len(counts), color="k", ls="--", lw=1, label="uniform")
        ax.set_title(f"level {level['level']}: {level['used_codes']}/{level['codebook_size']} codes used, "
                     f"H={level['normalized_entropy']:.2f}", fontsize=9)
        ax.set_xlabel("code (sorted by use)")
        ax.set_ylabel("items")
        ax.legend(fontsize=8)
    fig.suptitle(f"{name}: items per code")
    return _save(fig, path)


def plot_collisions(stats: dict, path: Path, name: str) -> Path:
    hist = {int(k): v for k, v in stats["collisions"]["group_size_histogram"].items()}
    sizes = sorted(hist)
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.bar([str(s) for s in sizes], [hist[s] for s in sizes], color="tab:orange")
    ax.set_yscale("log")
    ax.set_xlabel("items sharing the same first codes (group size)")
    ax.set_ylabel("groups (log)")
    c = stats["collisions"]
    ax.set_title(f"{name}: {c['colliding_items']} colliding items in {c['colliding_groups']} groups", fontsize=10)
    return _save(fig, path)


def plot_similarity(rows: list[dict], path: Path, name: str) -> Path:
    fig, ax = plt.subplots(figsize=(5, 3.4))
    lengths = [r["prefix_length"] for r in rows]
    for key, label, marker in (("mean_cosine_at_least", "share at least l codes", "o"),
                               ("mean_cosine_exactly", "share exactly l codes", "s")):
        ax.plot(lengths, [np.nan if r[key] is None else r[key] for r in rows], marker=marker, label=label)
    ax.set_xticks(lengths)
    ax.set_xlabel("shared prefix length l")
    ax.set_ylabel("mean cosine similarity of item pairs")
    ax.set_title(f"{name}: similarity by shared prefix (exact, all pairs)", fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_purity(purities: dict[str, dict], path: Path, name: str) -> Path:
    keys = [k for k, v in purities.items() if v["labelled_items"]]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    pos = np.arange(len(keys))
    ax.bar(pos - 0.2, [purities[k]["purity"] for k in keys], 0.4, label="level-1 codes")
    ax.bar(pos + 0.2, [purities[k]["random_assignment_mean"] for k in keys], 0.4,
           yerr=[purities[k]["random_assignment_std"] for k in keys], label="random assignment (same sizes)")
    ax.set_xticks(pos, [k.replace("_", " ") for k in keys])
    ax.set_ylim(0, 1)
    ax.set_ylabel("purity")
    ax.set_title(f"{name}: purity of level-1 clusters", fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


# ------------------------------------------------------------------ script


def load_generated(ids_dir: Path, ds: Dataset) -> tuple[SemanticIds, dict[str, Any], gen.Quantizer]:
    """The generator's three files, refused unless they come from one run on this data."""
    sids = load_semantic_ids(ids_dir, ds)
    stats = read_json(ids_dir / STATS_FILE, fix=GENERATE_HINT.format(data_dir=ids_dir))
    check_stats(ids_dir / STATS_FILE, stats, sids.meta)
    return sids, stats, gen.load_quantizer(ids_dir, sids.meta)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, default_out="results/semantic_id_analysis_{dataset}.json", plots=True)
    p.add_argument("--ids-dir", help="folder holding the semantic-ID files (default: --data-dir)")
    p.add_argument("--cache-dir", default=str(gen.DEFAULT_CACHE_DIR), help="embedding cache folder")
    p.add_argument("--example-codes", type=positive_int, default=8,
                   help="level-1 codes to show example items for")
    p.add_argument("--examples-per-code", type=positive_int, default=5)
    p.add_argument("--shuffles", type=positive_int, default=20,
                   help="random assignments for the purity baseline")
    args = p.parse_args(argv)
    device = setup(args)
    record = RunRecord("analyze_semantic_ids.py", {k: v for k, v in vars(args).items()}, args.seed)
    ids_dir = Path(args.ids_dir or args.data_dir)
    with record.stage("load"):
        ds = load_dataset(args.data_dir)
        record.data_checksum = ds.checksum
        out = Path(args.out.format(dataset=ds.name))
        check_writable({"--out": out}, {"--plot-dir": args.plot_dir})
        sids, stats, q = load_generated(ids_dir, ds)
        cfg = gen.GeneratorConfig.from_dict(sids.meta["run"]["config"])
    with record.stage("embeddings"):
        x, _, embed_report = gen.item_embeddings(ds, cfg, args.cache_dir, device)
    with record.stage("similarity"):
        similarity = prefix_similarity(x, sids.codes[:, :-1])
    with record.stage("purity"):
        rng = np.random.default_rng(args.seed)
        purities = {k: purity_report(sids.codes[:, 0], v, rng, args.shuffles) for k, v in item_labels(ds).items()}
    with record.stage("examples"):
        ex = examples(ds, sids, x, q, args.example_codes, args.examples_per_code)
    with record.stage("plots"):
        plot_dir, name = Path(args.plot_dir), ds.name
        plots = [plot_usage(stats, plot_dir / f"semantic_ids_{name}_usage.png", name),
                 plot_collisions(stats, plot_dir / f"semantic_ids_{name}_collisions.png", name),
                 plot_similarity(similarity, plot_dir / f"semantic_ids_{name}_similarity.png", name),
                 plot_purity(purities, plot_dir / f"semantic_ids_{name}_purity.png", name)]
    report = {
        "dataset": name, "items": ds.n_items, "model": sids.model, "codebook_sizes": sids.codebook_sizes,
        "quantizer": sids.meta.get("quantizer", "rqkmeans"),
        "fit_on": sids.meta.get("fit_on"), "embeddings_from_cache": embed_report.n_encoded == 0,
        "usage": [{k: v for k, v in u.items() if k != "counts"} for u in stats["usage"]],
        "collisions": stats["collisions"], "quantization_error": stats["quantization_error"],
        "similarity_by_prefix": similarity,
        "similarity_note": "exact mean over all item pairs (per-group vector sums), cosine of the embeddings",
        "purity_level1": purities,
        "purity_note": "share of labelled items whose label is the most common one of their level-1 code; "
                       "baseline: the same codes randomly reassigned (sampled shuffles, mean and std)",
        "examples": ex, "plots": [str(pth) for pth in plots], "run": record.to_dict(),
    }
    atomic_write_json(out, report)
    sim = ", ".join(f"l={r['prefix_length']}: {r['mean_cosine_at_least']:.3f}" for r in similarity
                    if r["mean_cosine_at_least"] is not None)
    log.info("similarity of pairs sharing >= l codes: %s", sim)
    log.info("level-1 purity: %s", ", ".join(f"{k} {v['purity']:.3f} (random {v['random_assignment_mean']:.3f})"
                                               for k, v in purities.items() if v["labelled_items"]))
    log.info("wrote %s and %d plots in %s", out, len(plots), plot_dir)
    return 0


if __name__ == "__main__":
    run_script(main, user_errors=(ValueError,))  # the quantizer's ValueErrors name the damaged file
