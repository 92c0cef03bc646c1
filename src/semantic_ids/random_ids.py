"""Random semantic IDs: a control with the shape of the real IDs and none of their content.

Each item gets `levels` codes drawn uniformly at random from the same codebook
sizes the fitted quantizers use; the collision level is added afterwards as for
them. A model that does as well on these IDs as on RQ-KMeans or RQ-VAE IDs
gains nothing from the content the real codes carry. The "quantizer" is the
drawn code table itself (plain int64 arrays in an .npz), so the files keep the
generator's checksum links; it cannot encode a new item, since no rule maps
content to a code.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.semantic_ids.rqkmeans import mean_squared_norm

RANDOM_FILE = "random_codes.npz"
NO_NEW_ITEMS = (
    "--encode-texts cannot encode new items with random semantic IDs (--quantizer random): "
    "they carry no content, so no rule maps an item to a code; use --quantizer rqkmeans or rqvae"
)


@dataclass
class RandomCodes:
    """The drawn codes of every item, int64 (n_items, levels), row i = item index i."""

    codes: np.ndarray
    sizes: list[int]

    @property
    def levels(self) -> int:
        return int(self.codes.shape[1])

    @property
    def codebook_sizes(self) -> list[int]:
        return [int(k) for k in self.sizes]

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Refused: a random assignment has no rule for an item it has not drawn a code for."""
        raise ValueError(NO_NEW_ITEMS)

    def arrays(self) -> list[np.ndarray]:
        """What the generator's codebooks checksum covers: the code table, then the codebook
        sizes."""
        return [self.codes, np.asarray(self.sizes, dtype=np.int64)]

    def to_bytes(self) -> bytes:
        """An uncompressed .npz of two plain int64 arrays, 'codes' and 'sizes'."""
        buf = io.BytesIO()
        np.savez(
            buf, codes=self.codes.astype(np.int64), sizes=np.asarray(self.sizes, dtype=np.int64)
        )
        return buf.getvalue()

    @classmethod
    def load(cls, path: str | Path) -> RandomCodes:
        """Read a table written by `to_bytes`; refuses pickled content."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no random code table; run `python semantic_id_generator.py "
                "--quantizer random` first"
            )
        with np.load(path, allow_pickle=False) as npz:
            if set(npz.files) != {"codes", "sizes"}:
                raise ValueError(f"{path}: expected arrays 'codes' and 'sizes', found {npz.files}")
            codes, sizes = (
                np.asarray(npz["codes"], dtype=np.int64),
                np.asarray(npz["sizes"], dtype=np.int64),
            )
        if (
            codes.ndim != 2
            or sizes.shape != (codes.shape[1],)
            or (codes < 0).any()
            or (codes >= sizes).any()
        ):
            raise ValueError(
                f"{path}: the codes do not fit their codebook sizes; regenerate the semantic IDs"
            )
        return cls(codes, sizes.tolist())


def draw_random_codes(n_items: int, levels: int, codebook_size: int, seed: int) -> RandomCodes:
    """Codes drawn independently and uniformly per item and level (numpy default_rng(seed))."""
    rng = np.random.default_rng(seed)
    return RandomCodes(
        rng.integers(0, codebook_size, size=(n_items, levels), dtype=np.int64),
        [codebook_size] * levels,
    )


def code_means(x: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """Mean row of x per code (k, dim), float32; zero for a code no item has."""
    x = np.asarray(x, dtype=np.float64)
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, codes, x)
    counts = np.bincount(codes, minlength=k)
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)


def assignment_errors(x: np.ndarray, codes: np.ndarray, sizes: list[int]) -> list[float]:
    """Mean squared residual norm after each level when each code is replaced by the mean of its
    residuals.

    The best any centroids can do for these fixed code assignments, so it is comparable with
    residual k-means' error per level: random codes leave almost all of the norm unexplained.
    """
    residual = np.asarray(x, dtype=np.float32).copy()
    errors = []
    for level, k in enumerate(sizes):
        residual -= code_means(residual, codes[:, level], k)[codes[:, level]]
        errors.append(mean_squared_norm(residual))
    return errors
