"""src/sequential/reproduction.py: a re-ranking against the training run's saved lists and
metrics, on hand-built lists."""

from __future__ import annotations

import numpy as np
import pytest

from src.sequential.reproduction import compare, reported, same_lists

ITEMS = np.array([[3, 1, 2], [0, 4, 5]])
SCORES = np.array([[-1.0, -2.0, -3.0], [-0.5, -0.50005, -4.0]])


def test_identical_lists_reproduce():
    got = same_lists(ITEMS, SCORES, ITEMS.copy(), SCORES.copy())
    assert got["ok"] and got["rows_identical"] == 1.0 and got["max_score_diff"] == 0.0


def test_a_swap_of_near_tied_items_is_float_noise_but_a_real_swap_is_not():
    near = ITEMS.copy()
    near[1, :2] = near[1, 1::-1]  # items 0 and 4 scored -0.5 and -0.50005 change places
    got = same_lists(ITEMS, SCORES, near, SCORES)
    assert got["ok"] and got["rows_near_tie_swaps"] == 1 and got["rows_identical"] == 0.5
    far = ITEMS.copy()
    far[0, :2] = far[0, 1::-1]  # items 3 and 1, a whole point apart
    got = same_lists(ITEMS, SCORES, far, SCORES)
    assert not got["ok"] and got["rows_near_tie_swaps"] == 0


def test_the_same_items_with_other_scores_do_not_reproduce():
    got = same_lists(ITEMS, SCORES + np.array([[0, 0, 1e-3], [0, 0, 0]]), ITEMS, SCORES)
    assert not got["ok"] and got["max_score_diff"] == pytest.approx(1e-3)


def test_items_topped_up_past_a_short_saved_list_are_counted_not_compared():
    saved = ITEMS.copy()
    saved[0, 2] = -1  # the training run's list held two items
    got = same_lists(ITEMS, SCORES, saved, np.where(saved >= 0, SCORES, -np.inf))
    assert got["ok"] and got["rows_refilled_here"] == 1 and got["rows_identical"] == 1.0


def test_a_paper_run_keeps_its_filtered_metrics_apart_a_holdout_run_does_not():
    rep = {"test": {"ndcg@10": 0.1}, "filtered": {"test": {"ndcg@10": 0.2}}}
    assert reported(rep, "paper", "test", "paper") == ({"ndcg@10": 0.1}, "")
    assert reported(rep, "paper", "test", "filtered") == ({"ndcg@10": 0.2}, "filtered_")
    assert reported(rep, "holdout", "test", "filtered") == ({"ndcg@10": 0.1}, "")


def test_every_metric_is_compared_on_all_users():
    rep = {"test": {"recall@10": 0.3, "ndcg@10": 0.1}, "filtered": {"test": {"ndcg@10": 0.2}}}
    ours = {"folds": ("test",), "test": {"paper": {"recall@10": 0.3, "ndcg@10": 0.1}}}
    assert compare(ours, rep, "paper", None, None, None, 5)["match"]
    ours["test"]["filtered"] = {"ndcg@10": 0.2 + 2e-6}
    got = compare(ours, rep, "paper", None, None, None, 5)
    assert not got["match"] and got["max_abs_diff"] == pytest.approx(2e-6)
