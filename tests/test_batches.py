"""Pointwise batching (src/pointwise/batches.py): epochs of examples, losses, batched prediction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from src.pointwise.batches import ExampleTensors, epoch_batches, pointwise_loss, predict
from tests.helpers import TableModel
from utils.data.examples import TrainSampler, eval_examples


def test_epoch_batches_cover_each_example_once_and_repeat_by_seed(p5_split):
    ds, split = p5_split
    sampler = TrainSampler(ds, split, "implicit", 2, seed=1)
    batches = epoch_batches(sampler, 16, seed=1, device="cpu")
    first = list(batches(0))
    assert sum(len(b["users"]) for b in first) == len(sampler) == 3 * len(split.train)
    ex = sampler.epoch(0)
    keys = np.sort(
        np.concatenate(
            [
                (b["users"] * ds.n_items + b["items"]).numpy() * 2 + b["labels"].long().numpy()
                for b in first
            ]
        )
    )
    assert np.array_equal(
        keys, np.sort((ex.users * ds.n_items + ex.items) * 2 + ex.labels.astype(int))
    )
    again = list(batches(0))
    assert all(torch.equal(a["items"], b["items"]) for a, b in zip(first, again))
    assert not torch.equal(first[0]["items"], next(iter(batches(1)))["items"])


def test_loss_rejects_unknown_objective():
    with pytest.raises(ValueError, match="objective"):
        pointwise_loss("ranking")


def test_predict_in_batches_gives_every_example_its_score(p5_split):
    """Batches of 7 (the last one short) return each example's own score, in example order."""
    ds, split = p5_split
    model = TableModel(np.random.default_rng(1).random((ds.n_users, ds.n_items)))
    ex = eval_examples(ds, split, "test", "implicit")
    assert len(ex) % 7
    scores = predict(model, ExampleTensors.from_examples(ex, "cpu"), batch_size=7)
    np.testing.assert_array_equal(scores, model.table[ex.users, ex.items].numpy())
