"""What semantic IDs mean on real data: similarity by shared prefix, cluster purity, examples.

All figures are exact (no pair sampling): the mean cosine similarity over
all pairs inside a group follows from the group's vector sum, since
sum_{i<j} x_i.x_j = (|sum x|^2 - sum |x|^2) / 2, applied to unit vectors. Only the
random-assignment purity baseline is sampled, and it is labelled as such.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


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
    sim = float(((sums ** 2).sum() - (unit ** 2).sum()) / 2.0)
    return sim, int((sizes * (sizes - 1) // 2).sum())


def prefix_similarity(embeddings: np.ndarray, codes: np.ndarray) -> list[dict]:
    """Mean cosine similarity of item pairs sharing at least / exactly the first l codes, l = 0..levels.

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
        rows.append({
            "prefix_length": length,
            "pairs_at_least": n, "mean_cosine_at_least": s / n if n else None,
            "pairs_exactly": n - n_next, "mean_cosine_exactly": (s - s_next) / (n - n_next) if n - n_next else None,
        })
    return rows


def purity(clusters: np.ndarray, labels: Sequence[str]) -> tuple[float, int]:
    """Share of labelled items whose label is their cluster's most common one, and how many were labelled.

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


def purity_report(clusters: np.ndarray, labels: Sequence[str], rng: np.random.Generator, shuffles: int = 20) -> dict:
    """Purity of `clusters` against a random assignment with the same cluster sizes (shuffled, sampled)."""
    value, n = purity(clusters, labels)
    if not n:  # e.g. brands on MovieLens
        return {"purity": None, "labelled_items": 0, "random_assignment_mean": None, "random_assignment_std": None,
                "random_shuffles": 0, "lift": None}
    random = [purity(rng.permutation(clusters), labels)[0] for _ in range(shuffles)]
    return {"purity": value, "labelled_items": n, "random_assignment_mean": float(np.mean(random)),
            "random_assignment_std": float(np.std(random)), "random_shuffles": shuffles,
            "lift": value / float(np.mean(random))}


def representative_items(embeddings: np.ndarray, codes: np.ndarray, centroids: np.ndarray, code: int,
                         n: int) -> np.ndarray:
    """Up to n item indices with level-1 code `code`, closest to that code's centroid first."""
    members = np.flatnonzero(codes[:, 0] == code)
    d = ((embeddings[members] - centroids[code]) ** 2).sum(1)
    return members[np.argsort(d, kind="stable")[:n]]
