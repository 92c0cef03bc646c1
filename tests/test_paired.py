"""The paired per-user test by hand: per-user metrics from ranks, the difference's standard
error, and the refusals (other users, a spec without a model, no matching file)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from utils.evaluation.paired import Side, paired, per_user
from utils.runtime.errors import DataError


def test_per_user_metrics_from_ranks_by_hand():
    ranks = np.array([0, 5, 12, np.inf])
    assert per_user(ranks, "recall@10").tolist() == [1.0, 1.0, 0.0, 0.0]
    assert per_user(ranks, "ndcg@10").tolist() == pytest.approx([1.0, 1 / math.log2(7), 0, 0])


def test_paired_difference_and_its_standard_error_by_hand():
    """Differences 1, 0, 1: mean 2/3, sample std 0.57735, standard error 0.57735 / sqrt(3)."""
    r = paired({"a": 1.0, "b": 0.0, "c": 1.0}, {"a": 0.0, "b": 0.0, "c": 0.0}, "recall@10")
    assert (r.n_users, r.mean_a, r.mean_b) == (3, pytest.approx(2 / 3), 0.0)
    assert r.diff == pytest.approx(2 / 3) and r.se == pytest.approx(1 / 3)
    assert r.z == pytest.approx(2.0)
    with pytest.raises(DataError, match="rank other test users"):
        paired({"a": 1.0}, {"b": 1.0}, "recall@10")


def test_a_side_names_files_a_model_and_maybe_a_rule(tmp_path):
    (tmp_path / "r_seed0.json").write_text("{}")
    (tmp_path / "r_seed1.json").write_text("{}")
    side = Side.parse(f"{tmp_path}/r_seed*.json:sasrec:filtered")
    assert (len(side.files), side.model, side.rule) == (2, "sasrec", "filtered")
    assert Side.parse(f"{tmp_path}/r_seed0.json:tiger_item").rule == ""
    with pytest.raises(DataError, match="give FILES:MODEL"):
        Side.parse(f"{tmp_path}/r_seed0.json")
    with pytest.raises(DataError, match="no results file matches"):
        Side.parse(f"{tmp_path}/none*.json:sasrec")
