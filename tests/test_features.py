"""CTR feature tensors: vocabularies and the cold-start rule, stable hashing, bag layouts, labels
and negatives."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from src.pointwise.evaluation import PointwiseEvaluator
from src.pointwise.features import (
    MODES,
    BagField,
    build_features,
    code_ngrams,
    dense_features,
    title_tokens,
    vocab_index,
)
from tests.helpers import CHILD_ENV
from tests.synthetic import write_movielens, write_p5
from utils.data.examples import TrainSampler
from utils.data.load import load_dataset
from utils.data.splits import make_split
from utils.runtime.environment import repo_root
from utils.runtime.hashing import hash_pairs, stable_hash


@pytest.fixture(scope="module")
def ml(tmp_path_factory):
    ds = load_dataset(
        write_movielens(tmp_path_factory.mktemp("ml") / "ml-100k", n_users=30, n_items=40)
    )
    split = make_split(ds, "temporal", seed=0, cold_fraction=0.1)
    return ds, split


def synthetic_codes(n_items: int, seed: int = 0) -> np.ndarray:
    """Four levels: a coarse first level shared by many items, finer levels below it."""
    rng = np.random.default_rng(seed)
    return np.stack(
        [
            np.arange(n_items) % 4,
            rng.integers(0, 3, n_items),
            rng.integers(0, 3, n_items),
            np.arange(n_items) % 2,
        ],
        axis=1,
    )


def test_vocab_index_maps_unseen_and_missing_to_oov():
    values = np.array(["b", "a", "c", "", "a", "d"], dtype=object)
    known = np.array([True, True, False, True, True, False])
    index, card = vocab_index(values, known, missing="")
    # Vocabulary from known rows without the missing value: a -> 1, b -> 2; c and d were never seen
    # on a known row.
    assert index.tolist() == [2, 1, 0, 0, 1, 0]
    assert card == 3
    empty, card = vocab_index(np.array([5, 6]), np.array([False, False]))
    assert empty.tolist() == [0, 0] and card == 1


def test_cold_items_have_no_item_id_row_but_keep_semantic_codes(ml):
    ds, split = ml
    codes = synthetic_codes(ds.n_items)
    cold = split.cold_items
    assert len(cold) > 0
    names = {}
    for mode in MODES:
        f = build_features(ds, split, mode, codes)
        names[mode] = list(f.spec.sparse)
        cols = {
            name: k - 1 for k, name in enumerate(f.spec.sparse) if name != "user"
        }  # item_sparse has no user column
        sparse = f.item_sparse.numpy()
        if "item" in cols:
            assert (sparse[cold, cols["item"]] == 0).all()
            warm = np.setdiff1d(np.unique(ds.items[split.train]), cold)
            assert (sparse[warm, cols["item"]] > 0).all()
            assert len(np.unique(sparse[warm, cols["item"]])) == len(warm)
        if "code_1" in cols:
            # The coarse code of a cold item is shared with warm items, so it keeps a trained row.
            assert (sparse[cold, cols["code_1"]] > 0).all()
        if "ngram_1" in cols:
            assert (sparse[cold, cols["ngram_1"]] > 0).all()
    assert names["baseline"][:2] == ["user", "item"] and not any(
        n.startswith(("code", "ngram")) for n in names["baseline"]
    )
    assert "item" not in names["semantic"] and [
        n for n in names["semantic"] if n.startswith("code")
    ] == [f"code_{i}" for i in range(1, 5)]
    assert "item" in names["hybrid"] and "code_4" in names["hybrid"]
    assert "item" not in names["semantic-ngram"] and "ngram_4" in names["semantic-ngram"]


def test_ngrams_follow_prefixes():
    codes = np.array([[1, 2, 3, 0], [1, 2, 4, 0], [1, 5, 3, 0], [2, 2, 3, 0]])
    g = code_ngrams(codes, 2**20)
    assert g[0, 0] == g[1, 0] == g[2, 0] != g[3, 0]  # level-1 prefix
    assert g[0, 1] == g[1, 1] and g[0, 1] != g[2, 1]  # levels 1-2
    assert g[0, 2] != g[1, 2]  # levels 1-3
    assert len(set(g[:, 3])) == 4  # the full ID
    # Same code values at a different depth are a different feature.
    assert g[0, 0] != code_ngrams(np.array([[1, 1, 1, 1]]), 2**20)[0, 1]


def test_modes_need_codes_and_validate_input(ml):
    ds, split = ml
    with pytest.raises(ValueError, match="semantic_id_generator"):
        build_features(ds, split, "semantic", None)
    with pytest.raises(ValueError, match="shape"):
        build_features(ds, split, "hybrid", np.zeros((3, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="feature mode must be one of"):
        build_features(ds, split, "ids", None)
    with pytest.raises(ValueError, match="bag_layout"):
        build_features(ds, split, "baseline", bag_layout="ragged")


def test_movielens_features_have_genres_title_and_year(ml):
    ds, split = ml
    f = build_features(ds, split, "baseline")
    assert set(f.spec.bags) == {"categories", "title"}
    assert f.spec.dense == ("year",)
    # Genres: the synthetic writer gives item i exactly one genre.
    assert (f.categories_lengths.numpy() == 1).all()
    assert title_tokens("Café Movie 3 (1993) Movie", 3) == ["café", "movie", "3"]


def test_dense_features_standardise_on_training_items_and_flag_missing(ml):
    ds, _ = ml
    year = np.arange(ds.n_items, dtype=float)
    year[0] = np.nan
    known = np.ones(ds.n_items, dtype=bool)
    known[-1] = False  # an item without training interactions does not shape the statistics
    matrix, names = dense_features(replace(ds, meta=replace(ds.meta, year=year)), known)
    assert names == ("year", "year_missing")
    assert matrix[0].tolist() == [0.0, 1.0]
    ref = year[1:-1]
    np.testing.assert_allclose(matrix[1:, 0], (year[1:] - ref.mean()) / ref.std(), rtol=1e-5)


def test_bag_layouts_give_the_same_pooled_vectors(ml):
    ds, split = ml
    padded = build_features(ds, split, "baseline", bag_layout="padded")
    offsets = build_features(ds, split, "baseline", bag_layout="offsets")
    bag = torch.nn.EmbeddingBag(padded.spec.bags["title"], 4, mode="mean", padding_idx=0)
    users, items = torch.as_tensor(ds.users[:50]), torch.as_tensor(ds.items[:50])
    a, b = padded.gather(users, items), offsets.gather(users, items)
    assert torch.equal(a.sparse, b.sparse) and torch.equal(a.dense, b.dense)
    torch.testing.assert_close(bag(*a.bags["title"]), bag(*b.bags["title"]))


def test_bag_field_drops_values_never_seen_on_known_items():
    bag = BagField([["x", "y"], ["y", "z"], []], np.array([True, False, True]))
    assert bag.cardinality == 3  # x, y (+ OOV)
    assert bag.lengths.tolist() == [2, 1, 0]  # z exists only on an unknown item
    assert bag.padded().tolist() == [[1, 2], [2, 0], [0, 0]]


def test_hash_pairs_matches_a_plain_python_reference_on_numpy_and_torch():
    def ref(a: int, b: int, salt: int, n: int) -> int:
        def fmix(h: int) -> int:
            h ^= h >> 16
            h = (h * 0x85EBCA6B) & 0xFFFFFFFF
            h ^= h >> 13
            h = (h * 0xC2B2AE35) & 0xFFFFFFFF
            return h ^ (h >> 16)

        h = fmix(a ^ fmix(((salt * 0x9E3779B1) & 0xFFFFFFFF) ^ 0x5BD1E995))
        return fmix(h ^ ((b * 0xCC9E2D51) & 0xFFFFFFFF)) % n

    a = np.array([0, 1, 7, 2**31, 2**32 - 1, 123456789], dtype=np.int64)
    b = np.array([0, 2, 7, 5, 2**32 - 1, 987654321], dtype=np.int64)
    expected = [ref(int(x), int(y), 3, 1000) for x, y in zip(a, b)]
    assert hash_pairs(a, b, 3, 1000).tolist() == expected
    assert hash_pairs(torch.as_tensor(a), torch.as_tensor(b), 3, 1000).tolist() == expected
    assert hash_pairs(a, b, 4, 1000).tolist() != expected  # the salt separates cross fields
    counts = np.bincount(hash_pairs(np.arange(20000), np.arange(20000) % 7, 0, 10), minlength=10)
    assert counts.min() > 1800 and counts.max() < 2200  # roughly uniform


def test_hashes_are_the_same_in_another_process():
    code = (
        "from utils.runtime.hashing import stable_hash, hash_pairs; import numpy as np; "
        "print(stable_hash('title:lipstick', 2**18), "
        "hash_pairs(np.arange(5), np.arange(5) * 3, 2, 2**18).tolist())"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=repo_root(),
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "", **CHILD_ENV},
        ).stdout
        for seed in ("1", "2")
    }
    pairs = hash_pairs(np.arange(5), np.arange(5) * 3, 2, 2**18).tolist()
    here = f"{stable_hash('title:lipstick', 2**18)} {pairs}\n"
    assert outputs == {here}


def test_labels_liked_and_implicit(ml, tmp_path):
    ds, split = ml
    sampler = TrainSampler(ds, split, "liked", negatives=4, seed=0, positive_threshold=4.0)
    ex = sampler.epoch(0)
    assert len(ex) == len(split.train)  # rated data: no sampled negatives
    assert np.array_equal(ex.labels, (ds.ratings[split.train] >= 4).astype(np.float32))
    evaluator = PointwiseEvaluator(ds, split, "liked", positive_threshold=4.0)
    val = evaluator.examples["val"]
    assert np.array_equal(val.labels, (ds.ratings[split.val] >= 4).astype(np.float32))

    p5 = load_dataset(write_p5(tmp_path / "beauty", n_users=40, n_items=30))
    p5_split = make_split(p5, "temporal", seed=0, cold_fraction=0.1)
    ex = TrainSampler(p5, p5_split, "implicit", negatives=3, seed=0).epoch(0)
    n_pos = len(p5_split.train)
    assert len(ex) == 4 * n_pos and ex.labels[:n_pos].all() and not ex.labels[n_pos:].any()


def test_training_negatives_exclude_observed_and_cold_items(tmp_path):
    ds = load_dataset(write_p5(tmp_path / "beauty", n_users=40, n_items=30))
    split = make_split(ds, "temporal", seed=0, cold_fraction=0.1)
    sampler = TrainSampler(ds, split, "implicit", negatives=4, seed=1)
    for epoch in range(3):
        ex = sampler.epoch(epoch)
        neg = ex.labels == 0
        train_pairs = set(zip(ds.users[split.train].tolist(), ds.items[split.train].tolist()))
        assert not any(
            pair in train_pairs for pair in zip(ex.users[neg].tolist(), ex.items[neg].tolist())
        )
        assert not np.isin(ex.items[neg], split.cold_items).any()
    assert not np.array_equal(
        sampler.epoch(0).items, sampler.epoch(1).items
    )  # fresh negatives per epoch
    assert np.array_equal(
        sampler.epoch(2).items, TrainSampler(ds, split, "implicit", 4, seed=1).epoch(2).items
    )


SHARED_ML = repo_root().parent / "shared" / "data" / "ml-100k"


@pytest.mark.skipif(not SHARED_ML.is_dir(), reason=f"real MovieLens 100K not found at {SHARED_ML}")
def test_real_movielens_features_and_forward():
    from src.pointwise.ctr import CTRConfig, build_ctr_model

    ds = load_dataset(SHARED_ML)
    split = make_split(ds, "temporal", seed=0, cold_fraction=0.05)
    f = build_features(ds, split, "baseline")
    assert f.spec.sparse["item"] <= ds.n_items + 1 and set(f.spec.bags) == {"categories", "title"}
    assert f.spec.dense[0] == "year"
    assert (f.item_sparse[torch.as_tensor(split.cold_items), 0] == 0).all()
    assert 18 <= f.spec.bags["categories"] - 1 <= 19  # the genres, 'unknown' dropped by the loader
    model = build_ctr_model("dlrm", f, CTRConfig())
    out = model(torch.as_tensor(ds.users[:256]), torch.as_tensor(ds.items[:256]))
    assert torch.isfinite(out).all()
