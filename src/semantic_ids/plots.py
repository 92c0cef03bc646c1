"""The analysis figures of one set of semantic IDs: code usage, collisions, similarity by prefix,
purity."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from utils.reporting.figures import pyplot, save_figure


def plot_usage(stats: dict, path: Path, name: str) -> Path:
    plt = pyplot()
    usage = stats["usage"]
    fig, axes = plt.subplots(1, len(usage), figsize=(4.2 * len(usage), 3.4), squeeze=False)
    for ax, level in zip(axes[0], usage):
        counts = np.sort(np.array(level["counts"]))[::-1]
        ax.bar(np.arange(len(counts)), counts, width=1.0, color="tab:blue")
        ax.axhline(counts.sum() / len(counts), color="k", ls="--", lw=1, label="uniform")
        ax.set_title(
            f"level {level['level']}: {level['used_codes']}/{level['codebook_size']} codes used, "
            f"H={level['normalized_entropy']:.2f}",
            fontsize=9,
        )
        ax.set_xlabel("code (sorted by use)")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("items")  # one label: the panels' own tick labels leave no room for more
    fig.suptitle(f"{name}: items per code")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_collisions(stats: dict, path: Path, name: str) -> Path:
    """How many items share each k-means prefix (all levels but the collision one): a group of
    one is an item whose codes alone name it; the items of a larger group are told apart only by
    the collision level."""
    plt = pyplot()
    hist = {int(k): v for k, v in stats["collisions"]["group_size_histogram"].items()}
    sizes = sorted(hist)
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.bar([str(s) for s in sizes], [hist[s] for s in sizes], color="tab:orange")
    ax.set_yscale("log")
    ax.set_xlabel("items sharing one k-means prefix (1 = no collision)")
    ax.set_ylabel("prefixes (log scale)")
    c = stats["collisions"]
    ax.set_title(
        f"{name}: prefixes by how many items share them\n{c['colliding_items']} items in "
        f"{c['colliding_groups']} shared prefixes need the collision level",
        fontsize=10,
    )
    return save_figure(fig, path)


def plot_report(report: dict, plot_dir: Path, name: str) -> list[Path]:
    """The figures an analysis results file holds the data of (collisions, similarity, purity;
    the usage counts are in semantic_id_stats.json only), to redraw them from it."""
    return [
        plot_collisions(report, plot_dir / f"semantic_ids_{name}_collisions.png", name),
        plot_similarity(
            report["similarity_by_prefix"], plot_dir / f"semantic_ids_{name}_similarity.png", name
        ),
        plot_purity(report["purity_level1"], plot_dir / f"semantic_ids_{name}_purity.png", name),
    ]


def plot_similarity(rows: list[dict], path: Path, name: str) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    lengths = [r["prefix_length"] for r in rows]
    for key, label, marker in (
        ("mean_cosine_at_least", "share at least l codes", "o"),
        ("mean_cosine_exactly", "share exactly l codes", "s"),
    ):
        ax.plot(
            lengths,
            [np.nan if r[key] is None else r[key] for r in rows],
            marker=marker,
            label=label,
        )
    ax.set_xticks(lengths)
    ax.set_xlabel("shared prefix length l")
    ax.set_ylabel("mean cosine similarity of item pairs")
    ax.set_title(f"{name}: similarity by shared prefix (exact, all pairs)", fontsize=10)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_purity(purities: dict[str, dict], path: Path, name: str) -> Path:
    plt = pyplot()
    keys = [k for k, v in purities.items() if v["labelled_items"]]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    pos = np.arange(len(keys))
    ax.bar(pos - 0.2, [purities[k]["purity"] for k in keys], 0.4, label="level-1 codes")
    ax.bar(
        pos + 0.2,
        [purities[k]["random_assignment_mean"] for k in keys],
        0.4,
        yerr=[purities[k]["random_assignment_std"] for k in keys],
        label="random assignment (same sizes)",
    )
    ax.set_xticks(pos, [k.replace("_", " ") for k in keys])
    ax.set_ylim(0, 1)
    ax.set_ylabel("purity")
    ax.set_title(f"{name}: purity of level-1 clusters", fontsize=10)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
