"""What semantic IDs mean on real data: similarity by shared prefix, cluster purity, examples.

All figures are exact (no pair sampling): the mean cosine similarity over
all pairs inside a group follows from the group's vector sum, since
sum_{i<j} x_i.x_j = (|sum x|^2 - sum |x|^2) / 2, applied to unit vectors. Only the
random-assignment purity baseline is sampled, and it is labelled as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from src.semantic_ids.config import Quantizer
from src.semantic_ids.new_items import load_quantizer
from src.semantic_ids.random_ids import RandomCodes, code_means
from utils.data.dataset import Dataset
from utils.data.semantic import (
    GENERATE_HINT,
    STATS_FILE,
    SemanticIds,
    check_stats,
    load_semantic_ids,
)
from utils.runtime.io import read_json


def _group_ids(codes: np.ndarray, length: int) -> np.ndarray:
    """Dense group index per item for its first `length` codes (one group when length is 0)."""
    if length == 0:
        return np.zeros(len(codes), dtype=np.int64)
    return np.unique(codes[:, :length], axis=0, return_inverse=True)[1].reshape(-1)


def _pair_sums(unit: np.ndarray, groups: np.ndarray) -> tuple[float, int]:
    """(sum of cosine similarities, number of pairs) over all pairs inside the same group."""
    n_groups = int(groups.max()) + 1
    sums = np.zeros((n_groups, unit.shape[1]))
    np.add.at(sums, groups, unit)
    sizes = np.bincount(groups, minlength=n_groups)
    sim = float(((sums**2).sum() - (unit**2).sum()) / 2.0)
    return sim, int((sizes * (sizes - 1) // 2).sum())


def prefix_similarity(embeddings: np.ndarray, codes: np.ndarray) -> list[dict]:
    """Mean cosine similarity of item pairs sharing at least / exactly the first l codes,
    l = 0..levels.

    l = 0 is every pair of the catalogue (the baseline); "exactly l" pairs
    share l codes and differ at code l + 1.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    levels = codes.shape[1]
    at_least = [_pair_sums(unit, _group_ids(codes, length)) for length in range(levels + 1)]
    rows = []
    for length in range(levels + 1):
        s, n = at_least[length]
        s_next, n_next = at_least[length + 1] if length < levels else (0.0, 0)
        rows.append(
            {
                "prefix_length": length,
                "pairs_at_least": n,
                "mean_cosine_at_least": s / n if n else None,
                "pairs_exactly": n - n_next,
                "mean_cosine_exactly": (s - s_next) / (n - n_next) if n - n_next else None,
            }
        )
    return rows


def purity(clusters: np.ndarray, labels: Sequence[str]) -> tuple[float, int]:
    """Share of labelled items whose label is their cluster's most common one, and how many were
    labelled.

    Items with an empty label are left out.
    """
    labels = np.asarray(labels, dtype=object)
    keep = labels != ""
    if not keep.any():
        return float("nan"), 0
    _, lab = np.unique(labels[keep].astype(str), return_inverse=True)
    cl = clusters[keep]
    pairs, counts = np.unique(np.stack([cl, lab]), axis=1, return_counts=True)
    best = np.zeros(int(cl.max()) + 1, dtype=np.int64)
    np.maximum.at(best, pairs[0], counts)
    return float(best.sum() / keep.sum()), int(keep.sum())


def purity_report(
    clusters: np.ndarray, labels: Sequence[str], rng: np.random.Generator, shuffles: int = 20
) -> dict:
    """Purity of `clusters` against a random assignment with the same cluster sizes (shuffled,
    sampled)."""
    value, n = purity(clusters, labels)
    if not n:  # e.g. brands on MovieLens
        return {
            "purity": None,
            "labelled_items": 0,
            "random_assignment_mean": None,
            "random_assignment_std": None,
            "random_shuffles": 0,
            "lift": None,
        }
    random = [purity(rng.permutation(clusters), labels)[0] for _ in range(shuffles)]
    return {
        "purity": value,
        "labelled_items": n,
        "random_assignment_mean": float(np.mean(random)),
        "random_assignment_std": float(np.std(random)),
        "random_shuffles": shuffles,
        "lift": value / float(np.mean(random)),
    }


def representative_items(
    embeddings: np.ndarray, codes: np.ndarray, centroids: np.ndarray, code: int, n: int
) -> np.ndarray:
    """Up to n item indices with level-1 code `code`, closest to that code's centroid first."""
    members = np.flatnonzero(codes[:, 0] == code)
    d = ((embeddings[members] - centroids[code]) ** 2).sum(1)
    return members[np.argsort(d, kind="stable")[:n]]


def load_generated(ids_dir: Path, ds: Dataset) -> tuple[SemanticIds, dict[str, Any], Quantizer]:
    """The generator's three files, refused unless they come from one run on this data."""
    sids = load_semantic_ids(ids_dir, ds)
    stats = read_json(ids_dir / STATS_FILE, fix=GENERATE_HINT.format(data_dir=ids_dir))
    check_stats(ids_dir / STATS_FILE, stats, sids.meta)
    return sids, stats, load_quantizer(ids_dir, sids.meta)


def item_labels(ds: Dataset) -> dict[str, list[str]]:
    """Per item: its first (top) category, its last (leaf) category and its brand ('' when
    absent)."""
    cats = ds.meta.categories
    unknown_brand = {"", "unknown", "n/a", "na"}
    return {
        "top_category": [c[0] if c else "" for c in cats],
        "leaf_category": [c[-1] if c else "" for c in cats],
        "brand": ["" if str(b).strip().lower() in unknown_brand else str(b) for b in ds.meta.brand],
    }


def level1_centres(q: Quantizer, x: np.ndarray, sids: SemanticIds) -> np.ndarray:
    """Each level-1 code's centre in embedding space; random codes have none, so their members'
    mean."""
    if isinstance(q, RandomCodes):
        return code_means(x, sids.codes[:, 0], sids.codebook_sizes[0])
    return q.first_level_centres()


def example_items(
    ds: Dataset, sids: SemanticIds, x: np.ndarray, q: Quantizer, n_codes: int, per_code: int
) -> dict[str, Any]:
    """The most used level-1 codes with their most central items, and the largest collision
    group."""
    labels = item_labels(ds)
    counts = np.bincount(sids.codes[:, 0], minlength=sids.codebook_sizes[0])
    centres = level1_centres(q, x, sids)
    by_code = []
    for code in np.argsort(-counts, kind="stable")[:n_codes]:
        members = np.flatnonzero(sids.codes[:, 0] == code)
        tops, top_counts = np.unique(
            [labels["top_category"][i] for i in members], return_counts=True
        )
        by_code.append(
            {
                "code": int(code),
                "items": int(counts[code]),
                "most_common_top_category": str(tops[np.argmax(top_counts)]),
                "share_with_it": float(top_counts.max() / len(members)),
                "central_items": [
                    {
                        "id": str(ds.item_ids[i]),
                        "title": str(ds.meta.title[i]),
                        "semantic_id": sids.codes[i].tolist(),
                    }
                    for i in representative_items(x, sids.codes, centres, int(code), per_code)
                ],
            }
        )
    prefixes, inverse, sizes = np.unique(
        sids.codes[:, :-1], axis=0, return_inverse=True, return_counts=True
    )
    biggest = int(np.argmax(sizes))
    group = np.flatnonzero(inverse.reshape(-1) == biggest)
    members = [
        {
            "id": str(ds.item_ids[i]),
            "title": str(ds.meta.title[i]),
            "collision_code": int(sids.codes[i, -1]),
        }
        for i in group[:per_code]
    ]
    return {
        "level1_codes": by_code,
        "largest_collision_group": {
            "prefix": prefixes[biggest].tolist(),
            "size": int(sizes[biggest]),
            "items": members,
        },
    }


def analyse(
    ds: Dataset,
    sids: SemanticIds,
    stats: dict[str, Any],
    q: Quantizer,
    x: np.ndarray,
    record: Any,
    seed: int,
    shuffles: int,
    example_codes: int,
    per_code: int,
) -> dict[str, Any]:
    """The analysis report of one set of IDs (usage and collisions from the generator's statistics,
    similarity by shared prefix, level-1 purity against random assignments, example items)."""
    with record.stage("similarity"):
        similarity = prefix_similarity(x, sids.codes[:, :-1])
    with record.stage("purity"):
        rng = np.random.default_rng(seed)
        purities = {
            k: purity_report(sids.codes[:, 0], v, rng, shuffles) for k, v in item_labels(ds).items()
        }
    with record.stage("examples"):
        examples = example_items(ds, sids, x, q, example_codes, per_code)
    return {
        "dataset": ds.name,
        "items": ds.n_items,
        "model": sids.model,
        "codebook_sizes": sids.codebook_sizes,
        "quantizer": sids.meta.get("quantizer", "rqkmeans"),
        "fit_on": sids.meta.get("fit_on"),
        "usage": [{k: v for k, v in u.items() if k != "counts"} for u in stats["usage"]],
        "collisions": stats["collisions"],
        "quantization_error": stats["quantization_error"],
        "similarity_by_prefix": similarity,
        "similarity_note": "exact mean over all item pairs (per-group vector sums), cosine of the "
        "embeddings",
        "purity_level1": purities,
        "purity_note": "share of labelled items whose label is the most common one of their "
        "level-1 code; baseline: the same codes randomly reassigned (sampled shuffles, mean and "
        "std)",
        "examples": examples,
    }
