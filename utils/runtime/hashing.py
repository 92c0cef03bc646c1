"""Stable hashing for features: the same string maps to the same bucket in every process.

The built-in string hash of Python is salted per process, so features hashed with it
change between runs; blake2b is fast, keyed by nothing and stable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np


def rows_digest(rows: np.ndarray) -> str:
    """A short digest of the interaction rows a model trains on (which split, which protocol):
    what a checkpoint records so that one of another split is refused."""
    data = np.ascontiguousarray(rows, dtype=np.int64).tobytes()
    return f"{len(rows)}:{hashlib.sha256(data).hexdigest()[:16]}"


def strings_digest(values: Iterable[str]) -> str:
    """A short digest of a list of strings in order (a checkpoint's item map: original item IDs
    by index)."""
    h = hashlib.sha256()
    n = 0
    for value in values:
        h.update(str(value).encode("utf-8") + b"\0")
        n += 1
    return f"{n}:{h.hexdigest()[:16]}"


def stable_hash(value: str | bytes | int, n_buckets: int | None = None) -> int:
    """64-bit stable hash of ``value``; modulo ``n_buckets`` when given."""
    data = value if isinstance(value, bytes) else str(value).encode("utf-8")
    h = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")
    return h % n_buckets if n_buckets else h


def stable_hash_array(values: Iterable[str | bytes | int], n_buckets: int) -> np.ndarray:
    """Vector form of :func:`stable_hash`, returned as int64 bucket indices."""
    return np.fromiter((stable_hash(v, n_buckets) for v in values), dtype=np.int64)


_MASK32 = 0xFFFFFFFF


def _mul32(x, c: int):
    """(x * c) mod 2**32 for 0 <= x < 2**32, split in 16-bit halves so no int64 product can
    overflow."""
    return ((x & 0xFFFF) * c + ((((x >> 16) * c) & 0xFFFF) << 16)) & _MASK32


def _fmix32(h):
    """MurmurHash3's 32-bit finaliser: every input bit affects every output bit."""
    h = h ^ (h >> 16)
    h = _mul32(h, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = _mul32(h, 0xC2B2AE35)
    return h ^ (h >> 16)


def hash_pairs(a, b, salt: int, n_buckets: int):
    """Stable bucket of each (a, b) pair, vectorised over numpy int64 arrays or torch int64 tensors.

    For features hashed inside the training loop (e.g. user x item crosses),
    where a per-value :func:`stable_hash` call would be a Python loop per row.
    Pure integer arithmetic on non-negative values below 2**32, so numpy, torch
    on any device and plain Python ints give the same buckets in every process.
    """
    h = _fmix32((a & _MASK32) ^ _fmix32(_mul32(salt & _MASK32, 0x9E3779B1) ^ 0x5BD1E995))
    h = _fmix32(h ^ _mul32(b & _MASK32, 0xCC9E2D51))
    return h % n_buckets
