"""Pointwise evaluation (src/pointwise/evaluation.py): metric families, pessimistic full-catalogue
ranking and its slices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from src.pointwise.evaluation import PointwiseEvaluator, score_items, score_metrics, top_k_items
from tests.helpers import PairTable, TableModel
from utils.data.examples import eval_examples
from utils.evaluation.metrics import rmse


def test_score_metrics_clip_and_threshold():
    y = np.array([5.0, 4.0, 2.0, 1.0])
    s = np.array([7.0, 3.0, 4.5, 0.0])  # clipped to 5, 3, 4.5, 1
    m = score_metrics("explicit", y, s, positive_threshold=4.0, rating_range=(1.0, 5.0))
    assert m["rmse"] == pytest.approx(rmse(y, [5.0, 3.0, 4.5, 1.0]))
    assert m["mae"] == pytest.approx((0 + 1 + 2.5 + 0) / 4)
    # liked = [1, 1, 0, 0]; predicted liked = [1, 0, 1, 0]
    assert (m["precision"], m["recall"], m["accuracy"]) == (0.5, 0.5, 0.5)
    assert m["auc"] == pytest.approx(0.75)
    imp = score_metrics("implicit", np.array([1.0, 0.0]), np.array([0.0, -1000.0]))
    assert imp["logloss"] == pytest.approx(np.log(2) / 2, rel=1e-4) and imp["auc"] == 1.0


def test_top_k_masks_excluded_items_and_breaks_ties_against_targets():
    table = np.array([[0.5, 0.9, 0.5, 0.1, 0.5], [0.0, 0.1, 0.2, 0.3, 0.4]])
    model = TableModel(table)
    exclude = (np.array([0, 1, 1]), np.array([1]))  # user 0 has consumed item 1
    targets = (
        np.array([0, 1, 2]),
        np.array([2, 4]),
    )  # user 0's target 2 is tied with items 0 and 4
    top = top_k_items(
        model, np.array([0, 1]), 5, 5, exclude, targets, {"all": None, "some": np.array([2, 3])}
    )
    assert (
        set(top["all"][0][:2]) == {0, 4} and top["all"][0][2] == 2
    )  # tied items first, then the target
    assert top["all"][0][-1] == 1
    assert top["all"][1].tolist()[:2] == [4, 3]
    assert top["some"].shape == (2, 2) and set(top["some"][0]) == {2, 3}
    # Without score_all, every pair goes through forward and gives the same scores.
    users = torch.tensor([1, 0])
    assert torch.equal(score_items(PairTable(table), users, 5), score_items(model, users, 5))


def _brute_force_recall(ds, split, table, k, keep_rows=None):
    """Recall@k per user, straight from the definition, over users with relevant rows."""
    earlier = np.concatenate([split.train, split.val])
    rows = split.test if keep_rows is None else split.test[keep_rows]
    recalls = []
    for u in np.unique(ds.users[rows]):
        seen = set(ds.items[earlier][ds.users[earlier] == u].tolist())
        relevant = set(ds.items[rows][ds.users[rows] == u].tolist())
        candidates = [i for i in range(ds.n_items) if i not in seen]
        # Pessimistic ties: non-relevant items first among equal scores.
        order = sorted(candidates, key=lambda i: (-table[u, i], i in relevant))
        recalls.append(len(relevant & set(order[:k])) / len(relevant))
    return float(np.mean(recalls))


def test_ranking_matches_a_brute_force_count_overall_and_on_cold_items(p5_split):
    ds, split = p5_split
    rng = np.random.default_rng(0)
    table = np.round(rng.random((ds.n_users, ds.n_items)), 1)  # coarse scores: many ties
    ev = PointwiseEvaluator(ds, split, "implicit", ks=(5, 10))
    rep = ev.ranking(TableModel(table), "test")
    assert rep["overall"]["users"] == len(np.unique(ds.users[split.test]))
    cold = split.is_cold(ds.items[split.test])
    for k in (5, 10):
        # A test item the user also consumed earlier is excluded and counts as a miss, as in the
        # brute force.
        assert rep["overall"][f"recall@{k}"] == pytest.approx(
            _brute_force_recall(ds, split, table, k)
        )
        assert rep["slices"]["cold_items"][f"recall@{k}"] == pytest.approx(
            _brute_force_recall(ds, split, table, k, cold)
        )
    assert rep["slices"]["cold_items"]["n"] == int(cold.sum()) > 0
    assert rep["cold_catalogue"]["candidates"] == len(split.cold_items)
    assert rep["cold_catalogue"]["chance_recall@5"] == pytest.approx(
        min(1.0, 5 / len(split.cold_items))
    )


def test_evaluate_reports_every_slice_with_its_size(p5_split):
    """Each slice reports its own size; an example (sampled negatives too) belongs to the slices
    of its positive's row, so the cold slice holds every example of a cold target."""
    ds, split = p5_split
    ev = PointwiseEvaluator(ds, split, "implicit", ks=(5,))
    model = TableModel(np.random.default_rng(1).random((ds.n_users, ds.n_items)))
    report = ev.evaluate(model, "test")
    ex = eval_examples(ds, split, "test", "implicit")
    cold = split.is_cold(ds.items[ex.group_row])
    assert report["slices"]["cold_items"]["n"] == int(cold.sum()) > 0
    assert report["slices"]["warm_items"]["n"] == int((~cold).sum())
    assert {"auc", "logloss"} <= set(report["overall"]) and "ranking" in report
