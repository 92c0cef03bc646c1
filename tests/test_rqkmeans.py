"""Residual k-means quantizer: arithmetic, collisions, new-item encoding, reproducibility."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from src.semantic_ids.rqkmeans import (
    ResidualQuantizer,
    _cluster_means,
    _fill_empty,
    code_usage,
    collision_codes,
    collision_report,
    effective_codebook_size,
    fit_residual_kmeans,
    kmeans,
    nearest_centroid,
)


def blobs(n_per: int = 40, dim: int = 8, centers: int = 6, seed: int = 0) -> np.ndarray:
    """A tiny deterministic embedding set: Gaussian blobs around fixed centres."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim)) * 4
    return (np.repeat(c, n_per, axis=0) + rng.normal(size=(centers * n_per, dim))).astype(
        np.float32
    )


def test_encode_residual_arithmetic_by_hand():
    # exactly representable numbers, so every step can be checked with ==
    q = ResidualQuantizer(
        [
            np.array([[0.0, 0.0], [4.0, 0.0]], dtype=np.float32),
            np.array([[0.0, 1.0], [0.0, -1.0], [0.5, 0.0]], dtype=np.float32),
        ]
    )
    x = np.array([[4.5, 0.25], [0.25, -1.0], [3.0, 2.0]], dtype=np.float32)
    codes, errors = q.encode_with_errors(x)
    # level 1: nearest of (0,0),(4,0); residuals (0.5,0.25), (0.25,-1), (-1,2)
    # level 2: nearest of (0,1),(0,-1),(0.5,0); residuals (0,0.25), (0.25,0), (-1,1)
    assert codes.tolist() == [[1, 2], [0, 1], [1, 0]]
    level1 = np.array([[0.5, 0.25], [0.25, -1.0], [-1.0, 2.0]])
    level2 = np.array([[0.0, 0.25], [0.25, 0.0], [-1.0, 1.0]])
    assert errors == [float((level1**2).sum(1).mean()), float((level2**2).sum(1).mean())]
    np.testing.assert_array_equal(x - q.reconstruct(codes), level2.astype(np.float32))


def test_fit_centroids_are_cluster_means_and_residuals_chain():
    # two tight pairs: level-1 k-means with k=2 must find the pair means exactly
    x = np.array([[0, 0], [0, 2], [10, 0], [10, 2]], dtype=np.float32)
    q, codes = fit_residual_kmeans(x, levels=2, codebook_size=2, seed=0)
    c1 = q.centroids[0][np.argsort(q.centroids[0][:, 0])]
    np.testing.assert_array_equal(c1, [[0, 1], [10, 1]])
    # level 2 sees residuals (0,-1),(0,1),(0,-1),(0,1) and must split them into (0,-1) and (0,1)
    np.testing.assert_array_equal(np.sort(q.centroids[1][:, 1]), [-1, 1])
    np.testing.assert_array_equal(q.reconstruct(codes), x)
    assert q.encode_with_errors(x)[1] == [1.0, 0.0]


def test_reencoding_training_items_reproduces_codes_and_save_load(tmp_path):
    x = blobs()
    q, codes = fit_residual_kmeans(x, levels=3, codebook_size=8, seed=3)
    np.testing.assert_array_equal(q.encode(x), codes)
    # one item at a time gives the same codes as the whole batch
    np.testing.assert_array_equal(
        np.vstack([q.encode(x[i : i + 1]) for i in range(0, len(x), 37)]), codes[::37]
    )
    path = tmp_path / "codebooks.npz"
    path.write_bytes(q.to_bytes())
    loaded = ResidualQuantizer.load(path)
    assert loaded.codebook_sizes == [8, 8, 8] and loaded.levels == 3
    np.testing.assert_array_equal(loaded.encode(x), codes)


def test_same_seed_same_codebooks_bitwise():
    x = blobs(seed=1)
    q1, c1 = fit_residual_kmeans(x, levels=3, codebook_size=8, seed=7)
    q2, c2 = fit_residual_kmeans(x, levels=3, codebook_size=8, seed=7)
    np.testing.assert_array_equal(c1, c2)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(q1.centroids, q2.centroids))


def sentence_like(n: int = 2000, dim: int = 64, topics: int = 40, seed: int = 0) -> np.ndarray:
    """Unit vectors clustered around topics with a heavy tail of spreads, shaped like sentence
    embeddings of a catalogue (values ~0.1, cosine to their topic 0.5-0.9)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(topics, dim))
    spread = rng.gamma(2.0, 0.3, size=topics)[rng.integers(0, topics, n)]
    x = centres[rng.integers(0, topics, n)] + rng.normal(size=(n, dim)) * spread[:, None]
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_codes_do_not_move_under_noise_far_above_float64_rounding():
    """Two CPUs' float64 rounding differs by ~1e-16; on a catalogue-shaped set noise of 1e-6
    leaves every ID where it was (1e-5 moves almost all of them). On the real Beauty embeddings
    the margin is smaller, between 1e-9 (no ID moves) and 1e-7 (most move, through one flipped
    assignment early in Lloyd's iterations): still seven orders above float64 rounding, and the
    reason the quantizer no longer runs in float32 (~1e-7)."""
    x = sentence_like()
    q, codes = fit_residual_kmeans(x, levels=3, codebook_size=32, seed=0)
    noise = np.random.default_rng(1).normal(size=x.shape) * 1e-6
    q_noisy, codes_noisy = fit_residual_kmeans(x + noise, levels=3, codebook_size=32, seed=0)
    np.testing.assert_array_equal(codes_noisy, codes)
    for a, b in zip(q.centroids, q_noisy.centroids):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)  # the noise, averaged


def test_kmeans_stops_at_a_fixed_point_of_lloyd():
    """The returned centroids are the means of the rows nearest to them: one more Lloyd step
    changes nothing."""
    x = sentence_like(n=600, dim=16, topics=12)
    c = kmeans(x, 10, seed=3)
    labels = nearest_centroid(x, c)
    np.testing.assert_allclose(_cluster_means(x, labels, 10), c, rtol=0, atol=1e-12)


def test_cluster_means_by_hand_and_empty_cluster_takes_the_farthest_row():
    x = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [10.0, 10.0], [9.0, 9.0]])
    labels = np.array([0, 0, 0, 2, 2])
    means = _cluster_means(x, labels, 3)
    np.testing.assert_array_equal(means[[0, 2]], [[2 / 3, 4 / 3], [9.5, 9.5]])
    assert np.isnan(means[1]).all()
    _fill_empty(x, labels, means)
    # squared distances to their centroid: 16/9+16/9, 16/9+16/9, 4/9+64/9, 0.5, 0.5
    np.testing.assert_array_equal(means[1], x[2])


def test_encode_rejects_wrong_width():
    q = ResidualQuantizer([np.zeros((2, 4), dtype=np.float32)])
    with pytest.raises(ValueError, match="shape"):
        q.encode(np.zeros((3, 5), dtype=np.float32))


def test_load_refuses_pickles_and_foreign_files(tmp_path):
    bad = tmp_path / "objects.npz"
    np.savez(bad, level_0=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError):
        ResidualQuantizer.load(bad)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="level_0"):
        ResidualQuantizer.load(foreign)
    with pytest.raises(FileNotFoundError, match="semantic_id_generator"):
        ResidualQuantizer.load(tmp_path / "missing.npz")


def test_nearest_centroid_ties_go_to_lowest_index():
    c = np.array([[1.0, 0.0], [-1.0, 0.0]], dtype=np.float32)
    assert nearest_centroid(np.zeros((1, 2), dtype=np.float32), c).tolist() == [0]


def test_collision_numbering():
    codes = np.array([[1, 2, 3], [1, 2, 3], [0, 0, 0], [1, 2, 3], [0, 0, 1], [0, 0, 0]])
    assert collision_codes(codes, max_size=4).tolist() == [0, 1, 0, 2, 0, 1]
    # `order` decides who is numbered first inside a group (e.g. warm items before cold ones)
    order = np.array([5, 5, 9, 0, 0, 1])
    assert collision_codes(codes, max_size=4, order=order).tolist() == [1, 2, 1, 0, 0, 0]
    # appending new items after existing ones keeps the existing numbers
    extended = np.vstack([codes, [[1, 2, 3], [7, 7, 7]]])
    existing_first = np.concatenate([collision_codes(codes, 4), [10**9, 10**9]])
    assert collision_codes(extended, 4, order=existing_first).tolist() == [0, 1, 0, 2, 0, 1, 3, 0]


def test_collision_overflow_is_a_clear_error():
    codes = np.array([[1, 1], [1, 1], [1, 1], [0, 0]])
    assert collision_codes(codes, max_size=3).tolist() == [0, 1, 2, 0]
    with pytest.raises(ValueError, match=r"3 items share the codes \(1, 1\).*only 2 values"):
        collision_codes(codes, max_size=2)


def test_codebook_size_reduction_warns(caplog):
    with caplog.at_level(logging.WARNING):
        assert effective_codebook_size(1000, 256, 39) == 25
    assert "reduced from 256 to 25" in caplog.text
    caplog.clear()
    assert effective_codebook_size(12101, 256, 39) == 256
    assert not caplog.text
    with pytest.raises(ValueError):
        effective_codebook_size(0, 256, 39)
    with pytest.raises(ValueError, match="codebook"):
        fit_residual_kmeans(blobs()[:5], levels=1, codebook_size=8, seed=0)


def test_usage_and_collision_figures_by_hand():
    codes = np.array([[0, 1], [0, 1], [1, 0], [1, 1]])
    usage = code_usage(codes, [4, 2])
    assert usage[0]["counts"] == [2, 2, 0, 0] and usage[0]["unused_codes"] == 2
    assert usage[0]["entropy_bits"] == pytest.approx(1.0) and usage[0][
        "normalized_entropy"
    ] == pytest.approx(0.5)
    # level 2: counts [1, 3] -> H = -(1/4 log 1/4 + 3/4 log 3/4)
    assert usage[1]["entropy_bits"] == pytest.approx(0.8112781245)
    rep = collision_report(codes)
    assert rep == {
        "distinct_prefixes": 3,
        "colliding_items": 2,
        "colliding_groups": 1,
        "largest_group": 2,
        "group_size_histogram": {"1": 2, "2": 1},
    }
