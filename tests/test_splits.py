"""Split sizes, leakage, determinism, cold hold-out and negative sampling."""

from __future__ import annotations

import numpy as np
import pytest

from tests.synthetic import dataset_from_sequences, write_movielens, write_p5
from utils.data.examples import TrainSampler, eval_examples, resolve_objective
from utils.data.load import load_dataset
from utils.data.slices import popularity_groups, row_slices, slice_report
from utils.data.splits import (
    InteractionSet,
    Split,
    cold_item_holdout,
    get_split,
    make_split,
    sample_negatives,
)


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return load_dataset(write_p5(tmp_path_factory.mktemp("p5") / "beauty", n_users=60, n_items=40))


def _partition_ok(ds, split):
    rows = np.concatenate([split.train, split.val, split.test])
    assert len(rows) == len(np.unique(rows)) == ds.n_interactions  # disjoint and complete


def test_temporal_split_cuts_each_history(ds):
    split = make_split(ds, "temporal", seed=0, cold_fraction=0.0)
    _partition_ok(ds, split)
    for u in range(ds.n_users):
        n = ds.user_offsets[u + 1] - ds.user_offsets[u]
        rows = np.arange(ds.user_offsets[u], ds.user_offsets[u + 1])
        n_train = max(1, int(np.floor(0.8 * n)))
        n_val = max(n_train, int(np.floor(0.9 * n))) - n_train
        assert np.isin(rows[:n_train], split.train).all()
        assert np.isin(rows[n_train : n_train + n_val], split.val).all()
        assert np.isin(rows[n_train + n_val :], split.test).all()


def test_cold_items_never_train(ds):
    split = make_split(ds, "temporal", seed=3, cold_fraction=0.1)
    assert len(split.cold_items) == 4
    assert not np.isin(ds.items[split.train], split.cold_items).any()
    assert not np.isin(ds.items[split.val], split.cold_items).any()
    cold_rows = np.flatnonzero(np.isin(ds.items, split.cold_items))
    assert np.isin(cold_rows, split.test).all()
    _partition_ok(ds, split)


def test_leave_one_out(ds):
    split = make_split(ds, "leave_one_out", seed=0, cold_fraction=0.0)
    _partition_ok(ds, split)
    assert np.array_equal(split.test, ds.user_offsets[1:] - 1)
    assert np.array_equal(split.val, ds.user_offsets[1:] - 2)
    loo_cold = make_split(ds, "leave_one_out", seed=0, cold_fraction=0.1)
    assert np.array_equal(loo_cold.test, split.test)  # targets stay; cold items only leave training
    assert not np.isin(ds.items[loo_cold.train], loo_cold.cold_items).any()


def test_random_split_keeps_a_training_row_per_user(ds):
    split = make_split(ds, "random", seed=1, cold_fraction=0.0)
    _partition_ok(ds, split)
    assert (np.bincount(ds.users[split.train], minlength=ds.n_users) > 0).all()


def test_determinism_and_cache(ds, tmp_path):
    a = get_split(ds, "temporal", seed=7, cache_dir=tmp_path)
    b = get_split(ds, "temporal", seed=7, cache_dir=tmp_path)  # from the cache file
    c = make_split(ds, "temporal", seed=7)
    d = make_split(ds, "temporal", seed=8)
    for x in (b, c):
        assert np.array_equal(a.test_negatives, x.test_negatives) and np.array_equal(
            a.cold_items, x.cold_items
        )
    assert not np.array_equal(a.cold_items, d.cold_items)
    assert len(list(tmp_path.glob("split-temporal-seed7-*.npz"))) == 1
    assert cold_item_holdout(100, 0.05, 3).tolist() == cold_item_holdout(100, 0.05, 3).tolist()


def test_negatives_exclude_observed_items(ds):
    split = make_split(ds, "temporal", seed=0, n_eval_negatives=5)
    observed = InteractionSet(ds.users, ds.items, ds.n_items)
    for part in ("val", "test"):
        rows, negs = getattr(split, part), getattr(split, f"{part}_negatives")
        assert negs.shape == (len(rows), 5)
        assert not observed.contains(np.repeat(ds.users[rows], 5), negs.ravel()).any()
    rng = np.random.default_rng(0)
    excluded = np.zeros(ds.n_items, dtype=bool)
    excluded[:20] = True
    negs = sample_negatives(observed, np.arange(ds.n_users), 3, rng, excluded)
    assert (negs >= 20).all()


def test_train_sampler_and_eval_examples(ds):
    split = make_split(ds, "temporal", seed=0, cold_fraction=0.1, n_eval_negatives=2)
    objective = resolve_objective(ds)
    assert objective == "implicit"
    sampler = TrainSampler(ds, split, objective, negatives=3, seed=0)
    ex = sampler.epoch(0)
    assert len(ex) == 4 * len(split.train) and ex.labels.sum() == len(split.train)
    negs = ex.labels == 0
    assert not np.isin(ex.items[negs], split.cold_items).any()
    assert (
        not InteractionSet(ds.users[split.train], ds.items[split.train], ds.n_items)
        .contains(ex.users[negs], ex.items[negs])
        .any()
    )
    assert not np.array_equal(sampler.epoch(1).items, ex.items)
    ev = eval_examples(ds, split, "test", objective)
    assert len(ev) == 3 * len(split.test) and np.array_equal(
        ev.users[ev.labels == 0], np.repeat(ds.users[split.test], 2)
    )
    with pytest.raises(ValueError, match="no star ratings"):
        resolve_objective(ds, "explicit")


def test_explicit_examples_carry_ratings(tmp_path):
    ml = load_dataset(write_movielens(tmp_path / "ml"))
    split = make_split(ml, "temporal")
    ev = eval_examples(ml, split, "val", resolve_objective(ml))
    assert np.array_equal(ev.labels, ml.ratings[split.val])


def test_popularity_groups_and_slice_report():
    counts = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    labels = popularity_groups(counts)  # quantiles of 1..10: 20% -> 2.8, 80% -> 8.2
    assert labels.tolist() == [
        "tail",
        "tail",
        "tail",
        "mid",
        "mid",
        "mid",
        "mid",
        "mid",
        "mid",
        "head",
        "head",
    ]
    report = slice_report(
        lambda m: {"share": float(m.mean())}, {"all": np.ones(4, bool), "none": np.zeros(4, bool)}
    )
    assert report == {"all": {"n": 4, "share": 1.0}, "none": {"n": 0}}


def test_row_slices_by_hand():
    """Slices of six test rows, one per item 0..5, worked out by hand: the cold mask is exactly the
    held-out item's row; the item groups split the warm rows by *training* counts (an unseen warm
    item is tail) and never hold a cold row; user groups come from training counts too.

    Training counts: items 0..3 -> 5, 3, 2, 1 (item 4 warm but unseen, item 5 cold): quantiles of
    [1, 2, 3, 5] are 1.6 and 3.8. Users 0..5 -> 4, 3, 2, 1, 1, 0: quantiles of [1, 1, 2, 3, 4] are
    1.0 and 3.2.
    """
    ds = dataset_from_sequences(
        [[0, 1, 2, 3, 4], [0, 1, 2, 5], [0, 1, 2], [0, 3], [0, 1], [0]], n_items=6
    )
    train = np.array([0, 1, 2, 3, 5, 6, 7, 9, 10, 12, 14])
    test = np.array([4, 8, 11, 13, 15, 16])  # items 4, 5, 2, 3, 1, 0 of users 0..5
    empty = np.zeros((0, 0), dtype=np.int64)
    split = Split(
        "temporal", train, np.array([], dtype=np.int64), test, np.array([5]), empty, empty, 0
    )
    masks = {name: mask.tolist() for name, mask in row_slices(ds, split, test).items()}
    f, t = False, True
    assert masks == {
        "item_head": [f, f, f, f, f, t],
        "item_mid": [f, f, t, f, t, f],
        "item_tail": [t, f, f, t, f, f],
        "user_head": [t, f, f, f, f, f],
        "user_mid": [f, t, t, f, f, f],
        "user_tail": [f, f, f, t, t, t],
        "cold_items": [f, t, f, f, f, f],
        "warm_items": [t, f, t, t, t, t],
    }
