"""Most-popular and transition baselines against hand-computed scores on a toy sequence set."""

from __future__ import annotations

import numpy as np
import torch

from src.sequential.baselines import MostPopular, Transition
from tests.synthetic import dataset_from_sequences

# Training sequences (items 0..5): 0 1 2 | 1 2 3 | 1 2 0 | 4
SEQUENCES = [[0, 1, 2], [1, 2, 3], [1, 2, 0], [4]]


def toy():
    ds = dataset_from_sequences(SEQUENCES, n_items=6)
    return ds, np.arange(ds.n_interactions)


def test_most_popular_scores_are_training_counts():
    ds, rows = toy()
    scores = MostPopular(ds, rows).scores(torch.tensor([[0, 1], [-1, 4]]))
    # counts: item0 2, item1 3, item2 3, item3 1, item4 1, item5 0 — the same for every user
    assert scores.tolist() == [[2, 3, 3, 1, 1, 0]] * 2


def test_transition_counts_follow_the_last_item_with_popularity_breaking_ties():
    ds, rows = toy()
    model = Transition(ds, rows)
    # transitions: 0->1, 1->2 (x3), 2->3, 2->0; never across users (2 | 1, 3 | 1, 0 | 4)
    assert model.counts.toarray()[1].tolist() == [0, 0, 3, 0, 0, 0]
    assert model.counts.toarray()[2].tolist() == [1, 0, 0, 1, 0, 0]
    assert model.counts.toarray()[3].sum() == 0
    scores = model.scores(torch.tensor([[0, 2], [-1, 3], [-1, -1]])).numpy()
    tie = np.array([2, 3, 3, 1, 1, 0]) / 4.0  # popularity / (max + 1)
    np.testing.assert_allclose(scores[0], np.array([1, 0, 0, 1, 0, 0]) + tie, rtol=1e-6)
    # last item 3 was never followed: popularity alone; an empty history likewise
    np.testing.assert_allclose(scores[1], tie, rtol=1e-6)
    np.testing.assert_allclose(scores[2], tie, rtol=1e-6)
    # after item 2: item 0 (count 1, popularity 2) ranks above item 3 (count 1, popularity 1)
    assert list(np.argsort(-scores[0])[:2]) == [0, 3]


def test_training_rows_only():
    ds, rows = toy()
    # without the first user's rows, its transitions 0->1 and 1->2 are not counted
    model = Transition(ds, rows[3:])
    assert model.counts.toarray()[0].sum() == 0
    assert model.counts.toarray()[1].tolist() == [0, 0, 2, 0, 0, 0]
