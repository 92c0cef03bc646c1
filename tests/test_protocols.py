"""The sequential protocols: what trains, what is ranked, which items a filtered ranking drops."""

from __future__ import annotations

import numpy as np
import torch

from src.sequential.presets import PRESETS
from src.sequential.protocols import PROTOCOLS, Histories, protocol_split
from tests.synthetic import dataset_from_sequences
from tiger_train_eval import holdout_epochs
from utils.data.splits import get_split
from utils.runtime.io import atomic_write_json


def toy():
    # user 0: 3 1 4 1 5 (item 1 repeats), user 1: 2 7 1, user 2: 6 0
    return dataset_from_sequences([[3, 1, 4, 1, 5], [2, 7, 1], [6, 0]], n_items=8)


def test_histories_hold_every_earlier_item_of_the_target_row():
    ds = toy()
    test_rows = np.array([4, 7, 9])  # each user's last interaction
    h = Histories.of_rows(ds, test_rows)
    assert h.ptr.tolist() == [0, 4, 6, 7]
    assert h.items.tolist() == [3, 1, 4, 1, 2, 7, 6]
    mask = h.mask(torch.tensor([2, 0]), ds.n_items)
    assert mask.tolist() == [
        [False, False, False, False, False, False, True, False],
        [False, True, False, True, True, False, False, False],
    ]


def test_paper_protocol_has_no_cold_item_and_holdout_trains_on_validation():
    ds = dataset_from_sequences([list(range(i, i + 6)) for i in range(20)], n_items=30)
    paper = get_split(ds, "leave_one_out", 0, PROTOCOLS["paper"].cold_fraction)
    assert len(paper.cold_items) == 0
    assert protocol_split(paper, PROTOCOLS["paper"]) is paper
    holdout = protocol_split(paper, PROTOCOLS["holdout"])
    assert holdout.train.tolist() == sorted(paper.train.tolist() + paper.val.tolist())
    assert len(holdout.val) == 0 and holdout.test.tolist() == paper.test.tolist()
    cold = get_split(ds, "leave_one_out", 0, PROTOCOLS["cold"].cold_fraction)
    assert len(cold.cold_items) == round(0.05 * ds.n_items)


def test_holdout_takes_the_epoch_its_filtered_ranking_preferred_on_validation(tmp_path):
    """The holdout protocol reports the filtered ranking, so its epoch count comes from the
    filtered validation curve of the paper run; a curve without it falls back on the best epoch."""
    curve = [{"epoch": e, "val_filtered_ndcg@10": v} for e, v in enumerate([0.1, 0.3, 0.2, 0.25])]
    paper = {
        "protocol": "paper",
        "preset": "quick",
        "models": {
            "sasrec": {"best_epoch": 3, "curve": curve},
            "tiger_item": {"best_epoch": 6, "curve": [{"epoch": 6, "val_ndcg@10": 0.1}]},
        },
    }
    atomic_write_json(tmp_path / "paper.json", paper)
    preset = holdout_epochs(
        PRESETS["quick"], "quick", ["sasrec", "tiger_item"], str(tmp_path / "paper.json")
    )
    assert preset.train["sasrec"].epochs == 2  # epoch 1 (0-based) was the filtered best
    assert preset.train["tiger_item"].epochs == 7
