"""Residual k-means quantization: item embeddings -> semantic-ID codes.

Level 1 clusters the embeddings; level l clusters what levels < l left
unexplained (the residuals), so each extra code refines the previous ones
(the RQ-KMeans scheme used for TIGER-style semantic IDs). Items that end up
with the same codes are told apart by a collision code (`collision_codes`).

k-means is scikit-learn's greedy k-means++ seeding followed by Lloyd
iterations in float64 (`kmeans`), with a fixed seed. The arithmetic is chosen
so that the IDs do not depend on the machine: the embeddings arrive rounded
to a grid far above float64 noise (`embeddings.canonical_embeddings`), and
every distance, mean and residual is float64, where two CPUs' rounding
differs by ~1e-16 while the closest assignment decisions on real catalogues
are ~1e-8 apart. (faiss' float32 Lloyd iterations, used before, let a
last-bit difference between CPUs flip an assignment and every later code.)
Codebooks are stored as plain float32 centroid arrays (.npz), never as
pickled library objects, and new items are encoded with exactly the
arithmetic used for the training items, so re-encoding reproduces their codes.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# (vectors float64 (n, d), number of clusters, seed) -> centroids (k, d)
KMeansFn = Callable[[np.ndarray, int, int], np.ndarray]

# A cap, not a count: Lloyd's iterations stop at the first one that changes no
# assignment. On Beauty level 1 converges in ~30 iterations and the residual
# levels need more.
DEFAULT_NITER = 100
_ASSIGN_CHUNK = 8192  # rows per distance block, bounds memory at chunk * k float64


def kmeans(x: np.ndarray, k: int, seed: int, niter: int = DEFAULT_NITER) -> np.ndarray:
    """k-means with greedy k-means++ seeding (scikit-learn) and float64 Lloyd iterations.

    Greedy k-means++ (several candidates per draw, keep the one that lowers
    the potential most) avoids spending centroids on outliers, which matters
    on the heavy-tailed residuals of levels 2+. Each iteration assigns every
    row to its nearest centroid (`nearest_centroid`) and moves each centroid
    to the mean of its rows, summed in row order; it stops when no assignment
    changes. A centroid left without rows moves to the row farthest from its
    own centroid (ties to the lowest row), so no code is wasted. Returns
    float64 centroids; deterministic for a fixed seed on any machine up to
    float64 rounding (see the module docstring).
    """
    from sklearn.cluster import kmeans_plusplus
    from threadpoolctl import threadpool_limits

    x = np.ascontiguousarray(x, dtype=np.float64)
    # each draw multiplies a handful of candidates by all items: too small for
    # BLAS threads, which only add synchronisation (10x slower on a busy machine)
    with threadpool_limits(1, user_api="blas"):
        centroids, _ = kmeans_plusplus(x, k, random_state=seed)
    labels = np.full(len(x), -1, dtype=np.int64)
    for _ in range(niter):
        new_labels = nearest_centroid(x, centroids)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        centroids = _cluster_means(x, labels, k)
        _fill_empty(x, labels, centroids)
    return centroids


def _cluster_means(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Mean row of each cluster (k, d); rows summed in index order (a sparse one-hot product), so
    the sums do not depend on the machine's SIMD width; NaN for an empty cluster."""
    from scipy.sparse import csr_matrix

    n = len(x)
    one_hot = csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(k, n))
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(one_hot @ x) / counts[:, None]


def _fill_empty(x: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> None:
    """Move each empty cluster's centroid (a NaN row) to one of the rows farthest from their own
    centroid, in place, largest distance first; the next assignment picks the rows up."""
    empty = np.flatnonzero(np.isnan(centroids[:, 0]))
    if not len(empty):
        return
    gap = x - centroids[labels]  # labels name non-empty clusters only
    dist = np.einsum("nd,nd->n", gap, gap)
    farthest = np.lexsort((np.arange(len(x)), -dist))[: len(empty)]
    centroids[empty] = x[farthest]


def nearest_centroid(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (squared L2) for each row, ties to the lowest index.

    Distances are computed in float64 so that the same vector always gets the
    same code, whether it is encoded alone or in a batch.
    """
    c = centroids.astype(np.float64)
    c_sq = np.einsum("kd,kd->k", c, c)
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), _ASSIGN_CHUNK):
        block = x[start : start + _ASSIGN_CHUNK].astype(np.float64)
        # ||x||^2 is the same for every centroid, so it does not change the argmin
        out[start : start + len(block)] = np.argmin(c_sq[None, :] - 2.0 * block @ c.T, axis=1)
    return out


@dataclass
class ResidualQuantizer:
    """Fitted codebooks: one float32 (codebook_size, dim) centroid array per level."""

    centroids: list[np.ndarray]

    @property
    def levels(self) -> int:
        return len(self.centroids)

    @property
    def codebook_sizes(self) -> list[int]:
        return [int(len(c)) for c in self.centroids]

    @property
    def dim(self) -> int:
        return int(self.centroids[0].shape[1])

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Codes (n, levels) int64 for new or training vectors, using the saved centroids."""
        codes, _ = self.encode_with_errors(x)
        return codes

    def encode_with_errors(self, x: np.ndarray) -> tuple[np.ndarray, list[float]]:
        """Codes plus the mean squared residual norm left after each level (float64 residuals,
        as in `fit_residual_kmeans`)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"expected embeddings of shape (n, {self.dim}), got {x.shape}; "
                "were the codebooks fitted with a different embedding model?"
            )
        residual = x.copy()
        codes = np.empty((len(x), self.levels), dtype=np.int64)
        errors = []
        for level, centroids in enumerate(self.centroids):
            codes[:, level] = nearest_centroid(residual, centroids)
            residual -= centroids[codes[:, level]]
            errors.append(mean_squared_norm(residual))
        return codes, errors

    def reconstruct(self, codes: np.ndarray) -> np.ndarray:
        """Sum of the chosen centroids, accumulated in the same order as `encode` subtracts them."""
        out = np.zeros((len(codes), self.dim), dtype=np.float64)
        for level, centroids in enumerate(self.centroids):
            out += centroids[codes[:, level]]
        return out

    def arrays(self) -> list[np.ndarray]:
        """What the generator's codebooks checksum covers: the centroids, level by level."""
        return list(self.centroids)

    def first_level_centres(self) -> np.ndarray:
        """The level-1 centroids (k, dim), in embedding space like the RQ-VAE's decoded
        codewords."""
        return self.centroids[0]

    def to_bytes(self) -> bytes:
        """The codebooks as an uncompressed .npz of plain float32 arrays (level_0, level_1, ...)."""
        buf = io.BytesIO()
        np.savez(buf, **{f"level_{i}": c for i, c in enumerate(self.centroids)})
        return buf.getvalue()

    @classmethod
    def load(cls, path: str | Path) -> ResidualQuantizer:
        """Read codebooks written by `to_bytes`; refuses pickled content."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no codebooks; run `python semantic_id_generator.py` first"
            )
        with np.load(path, allow_pickle=False) as npz:
            names = sorted(
                (k for k in npz.files if k.startswith("level_")), key=lambda k: int(k[6:])
            )
            if not names or names != [f"level_{i}" for i in range(len(names))]:
                raise ValueError(f"{path}: expected arrays level_0..level_N, found {npz.files}")
            centroids = [np.asarray(npz[k], dtype=np.float32) for k in names]
        dims = {c.shape[1] for c in centroids if c.ndim == 2}
        if len(dims) != 1 or any(c.ndim != 2 for c in centroids):
            raise ValueError(f"{path}: every level must be a 2-d array with the same width")
        return cls(centroids)


def mean_squared_norm(x: np.ndarray) -> float:
    """Mean over rows of ||x||^2 (float64 accumulation): the quantization error once x is a
    residual."""
    x64 = x.astype(np.float64)
    return float(np.einsum("nd,nd->n", x64, x64).mean()) if len(x) else 0.0


def effective_codebook_size(n_items: int, requested: int, min_items_per_code: int) -> int:
    """Shrink the codebook so that every code can average `min_items_per_code` training items."""
    if n_items < 1 or requested < 1 or min_items_per_code < 1:
        raise ValueError(
            f"need n_items, codebook size and min items per code >= 1, "
            f"got {n_items}, {requested}, {min_items_per_code}"
        )
    allowed = max(1, n_items // min_items_per_code)
    if requested > allowed:
        log.warning(
            "codebook size reduced from %d to %d: only %d items to fit on (at least %d per code, "
            "see --min-items-per-code)",
            requested,
            allowed,
            n_items,
            min_items_per_code,
        )
        return allowed
    return requested


def fit_residual_kmeans(
    x: np.ndarray,
    levels: int,
    codebook_size: int,
    seed: int,
    kmeans: KMeansFn = kmeans,
    progress: Callable[[int], None] | None = None,
) -> tuple[ResidualQuantizer, np.ndarray]:
    """Fit `levels` codebooks, each on the residuals of the previous levels.

    Returns the quantizer and the training items' codes (n, levels), which
    `ResidualQuantizer.encode` reproduces exactly.

    Level l uses seed + l so levels do not share their k-means++ draws. Each
    level's centroids are rounded to float32 (what the codebooks file stores)
    before its rows are assigned, and residuals stay float64, as in `encode`.
    `kmeans` is swappable so the benchmark can run the reference scikit-learn
    configuration through the same residual arithmetic.
    """
    x = np.asarray(x, dtype=np.float64)
    if len(x) < codebook_size:
        raise ValueError(
            f"{len(x)} items cannot fill a codebook of {codebook_size}; "
            "lower --codebook-size (effective_codebook_size does this)"
        )
    residual = x.copy()
    centroids: list[np.ndarray] = []
    codes = np.empty((len(x), levels), dtype=np.int64)
    for level in range(levels):
        c = np.asarray(kmeans(residual, codebook_size, seed + level), dtype=np.float32)
        if c.shape != (codebook_size, x.shape[1]):
            raise ValueError(
                f"k-means returned centroids of shape {c.shape}, "
                f"expected {(codebook_size, x.shape[1])}"
            )
        centroids.append(c)
        codes[:, level] = nearest_centroid(residual, c)
        residual -= c[codes[:, level]]
        if progress is not None:
            progress(level)
    return ResidualQuantizer(centroids), codes


def collision_codes(
    codes: np.ndarray, max_size: int, order: np.ndarray | None = None
) -> np.ndarray:
    """Number the items that share all their codes: 0, 1, 2, ... within each group.

    A unique item gets 0. Within a group, items are numbered by ascending
    `order` (default: row index; ties broken by row index), so the numbering is
    deterministic. Raises ValueError when a group needs more than `max_size`
    numbers, since the collision token could not tell its items apart.
    """
    codes = np.asarray(codes, dtype=np.int64)
    n = len(codes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.arange(n) if order is None else np.asarray(order)
    # lexsort: last key is primary -> sort by codes (level 0 first), then order, then row
    perm = np.lexsort(
        (np.arange(n), order, *[codes[:, j] for j in range(codes.shape[1] - 1, -1, -1)])
    )
    s = codes[perm]
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = np.any(s[1:] != s[:-1], axis=1)
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    rank = np.arange(n) - group_start
    if rank.max() >= max_size:
        worst = int(np.argmax(rank))
        size = int(np.sum(np.all(s == s[worst], axis=1)))
        raise ValueError(
            f"{size} items share the codes {tuple(int(v) for v in s[worst])}, but the collision "
            f"level has only {max_size} values; raise --collision-size, --codebook-size or --levels"
        )
    out = np.empty(n, dtype=np.int64)
    out[perm] = rank
    return out


def code_usage(codes: np.ndarray, codebook_sizes: list[int]) -> list[dict]:
    """Per level: items per code, used/unused codes and the entropy of the code distribution."""
    report = []
    for level, k in enumerate(codebook_sizes):
        counts = np.bincount(codes[:, level], minlength=k)
        p = counts[counts > 0] / counts.sum()
        entropy = float(-(p * np.log2(p)).sum())
        report.append(
            {
                "level": level + 1,
                "codebook_size": int(k),
                "used_codes": int((counts > 0).sum()),
                "unused_codes": int((counts == 0).sum()),
                "entropy_bits": entropy,
                "normalized_entropy": entropy / np.log2(k) if k > 1 else 1.0,
                "max_items_per_code": int(counts.max()),
                "counts": counts.tolist(),
            }
        )
    return report


def collision_report(prefix_codes: np.ndarray) -> dict:
    """Colliding items (in groups of 2+), colliding groups, largest group and the group-size
    histogram."""
    _, sizes = np.unique(prefix_codes, axis=0, return_counts=True)
    multi = sizes[sizes > 1]
    hist_sizes, hist_counts = np.unique(sizes, return_counts=True)
    return {
        "distinct_prefixes": int(len(sizes)),
        "colliding_items": int(multi.sum()),
        "colliding_groups": int(len(multi)),
        "largest_group": int(sizes.max()) if len(sizes) else 0,
        "group_size_histogram": {str(int(s)): int(c) for s, c in zip(hist_sizes, hist_counts)},
    }
