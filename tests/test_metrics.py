"""Metrics against values computed by hand (the arithmetic is in each comment)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from utils.evaluation import metrics as M


def test_rmse_mae():
    assert M.rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))  # sqrt((0+0+4)/3)
    assert M.mae([1, 2, 3], [1, 2, 5]) == pytest.approx(2 / 3)


def test_auc_counts_pairs_and_half_ties():
    # positives 0.9, 0.4 vs negatives 0.8, 0.1: 0.9>0.8, 0.9>0.1, 0.4<0.8, 0.4>0.1 -> 3/4
    assert M.auc([1, 0, 1, 0], [0.9, 0.8, 0.4, 0.1]) == pytest.approx(0.75)
    assert M.auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    # one tie among four pairs: (1 + 1 + 0.5 + 0) / 4
    assert M.auc([1, 1, 0, 0], [0.7, 0.3, 0.3, 0.9]) == pytest.approx(0.375)
    assert math.isnan(M.auc([1, 1], [0.2, 0.3]))


def test_pr_auc_is_average_precision():
    # ranked: pos (P=1, R=.5), neg, pos (P=2/3, R=1) -> .5*1 + .5*2/3
    assert M.pr_auc([1, 0, 1, 0], [0.9, 0.8, 0.4, 0.1]) == pytest.approx(0.5 + 1 / 3)
    # tied scores are one threshold: both items at once, P=1/2, R=1
    assert M.pr_auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)


def test_logloss_and_binary_report():
    assert M.logloss([1, 0], [0.8, 0.4]) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    rep = M.binary_report([1, 0, 1, 0], [0.9, 0.8, 0.4, 0.1], 0.5)  # predicted 1,1,0,0: tp=1
    assert rep == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "accuracy": 0.5})


def test_best_f1_threshold():
    # thresholds .9 -> F1 2/3, .8 -> 1/2, .4 -> 4/5, .1 -> 2/3
    assert M.best_f1_threshold([1, 0, 1, 0], [0.9, 0.8, 0.4, 0.1]) == pytest.approx(0.4)


def test_recall_ndcg_single_target():
    ranks = np.array([0, 3, 10, np.inf])
    assert M.recall_at_k(ranks, 5) == pytest.approx(0.5)
    assert M.ndcg_at_k(ranks, 5) == pytest.approx((1 + 1 / math.log2(5)) / 4)
    assert M.ranking_metrics(ranks, (1,)) == pytest.approx({"recall@1": 0.25, "ndcg@1": 0.25})


def test_multi_target_recall_ndcg():
    topk = np.array([[3, 1, 2], [0, 4, 2]])
    offsets = np.array([0, 2, 3])
    relevant = np.array([1, 5, 2])  # user 0: {1, 5}; user 1: {2}
    out = M.multi_target_ranking(topk, offsets, relevant, ks=(3, 1))
    assert out["recall@3"] == pytest.approx([0.5, 1.0])
    # user 0: DCG 1/log2(3), ideal 1 + 1/log2(3); user 1: DCG 1/log2(4) = .5, ideal 1
    assert out["ndcg@3"] == pytest.approx([(1 / math.log2(3)) / (1 + 1 / math.log2(3)), 0.5])
    assert out["recall@1"] == pytest.approx([0.0, 0.0])


def test_next_item_metrics_by_hand():
    """Ranks 0, 2, miss, 9: Hit@1 1/4, Hit@3 2/4, Hit@10 3/4; NDCG@3 (1 + 1/2) / 4;
    MRR@20 (1 + 1/3 + 0 + 1/10) / 4; Recall@k is Hit@k with one target; a rank of 20 or more
    counts 0 in MRR@20."""
    from utils.evaluation.metrics import mrr, next_item_metrics

    m = next_item_metrics(np.array([0, 2, np.inf, 9]))
    assert m["hit@1"] == 0.25 and m["hit@3"] == 0.5 and m["hit@5"] == 0.5 and m["hit@10"] == 0.75
    assert m["recall@10"] == m["hit@10"]
    assert m["ndcg@3"] == pytest.approx((1 + 1 / np.log2(4)) / 4)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / np.log2(4) + 1 / np.log2(11)) / 4)
    assert m["mrr@20"] == pytest.approx((1 + 1 / 3 + 0 + 1 / 10) / 4)
    assert next_item_metrics(np.array([0, 25]))["mrr@20"] == 0.5
    assert mrr(np.array([0, 25])) == pytest.approx((1 + 1 / 26) / 2)
    assert mrr(np.array([np.inf, np.inf])) == 0.0 and np.isnan(mrr(np.array([])))
