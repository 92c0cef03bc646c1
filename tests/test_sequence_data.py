"""Training windows, evaluation histories and length bucketing on hand-made sequences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from src.sequential.sequence_data import (
    PAD_ITEM,
    bucketed_batches,
    build_sequence_data,
    n_bucketed_batches,
)
from tests.synthetic import dataset_from_sequences
from utils.data.dataset import Dataset
from utils.data.splits import Split

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def leave_one_out(ds: Dataset, cold: list[int]) -> Split:
    """Last = test, second-to-last = val, the rest train; cold items' rows removed from train."""
    rows = np.arange(ds.n_interactions)
    end = ds.user_offsets[ds.users + 1]
    test, val = rows[rows == end - 1], rows[rows == end - 2]
    train = rows[(rows < end - 2) & ~np.isin(ds.items, cold)]
    empty = np.zeros((0, 0), dtype=np.int64)
    return Split("leave_one_out", train, val, test, np.array(cold, dtype=np.int64), empty, empty, 0)


def test_windows_are_every_prefix_right_aligned_and_padded():
    # user 0: train 10 11 12 13, val 14, test 15; user 1: train 20 21, val 22, test 23
    ds = dataset_from_sequences([[10, 11, 12, 13, 14, 15], [20, 21, 22, 23]], n_items=30)
    data = build_sequence_data(ds, leave_one_out(ds, cold=[]), max_items=3)
    P = PAD_ITEM
    assert data.train.hist.tolist() == [[P, P, 10], [P, 10, 11], [10, 11, 12], [P, P, 20]]
    assert data.train.target.tolist() == [11, 12, 13, 21]
    assert data.train.length.tolist() == [1, 2, 3, 1]
    assert data.train.user.tolist() == [0, 0, 0, 1]
    # Evaluation histories are the real ones: test sees the validation item.
    assert data.val.hist.tolist() == [[11, 12, 13], [P, 20, 21]]
    assert data.test.hist.tolist() == [[12, 13, 14], [20, 21, 22]]
    assert data.val.target.tolist() == [14, 22] and data.test.target.tolist() == [15, 23]
    assert data.test.rows.tolist() == [5, 9]
    assert data.summary()["train_windows"] == 4


def test_cold_items_never_enter_training_windows_but_stay_in_eval_histories():
    ds = dataset_from_sequences([[1, 2, 3, 4, 5, 6]], n_items=8)
    cold = [2]
    split = leave_one_out(ds, cold)
    split.train = np.arange(4)  # a split that forgot to drop the cold row: the builder still must
    data = build_sequence_data(ds, split, max_items=5)
    assert not torch.isin(data.train.hist, torch.tensor(cold)).any()
    assert not torch.isin(data.train.target, torch.tensor(cold)).any()
    assert not torch.isin(data.train_chunks.seq, torch.tensor(cold)).any()
    assert data.train.hist[:, -1].tolist() == [1, 3] and data.train.target.tolist() == [3, 4]
    assert data.val.hist.tolist() == [[PAD_ITEM, 1, 2, 3, 4]]


def test_chunks_cover_every_window_target_once():
    # user 0 trains on 10..16 (7 items), user 1 on 20 (one item: no target), user 2 on 30 31.
    ds = dataset_from_sequences(
        [[10, 11, 12, 13, 14, 15, 16, 17, 18], [20, 21, 22], [30, 31, 32, 33]], n_items=40
    )
    data = build_sequence_data(ds, leave_one_out(ds, cold=[]), max_items=3)
    P = PAD_ITEM
    assert data.train_chunks.seq.tolist() == [[13, 14, 15, 16], [10, 11, 12, 13], [P, P, 30, 31]]
    assert data.train_chunks.length.tolist() == [4, 4, 2]
    seq = data.train_chunks.seq
    targets = sorted(seq[:, 1:][(seq[:, :-1] >= 0)].tolist())
    assert targets == sorted(
        data.train.target.tolist()
    )  # the same targets as the windows, once each
    assert data.summary()["train_chunks"] == 3


def test_bucketed_batches_cover_each_example_once_with_tight_width():
    lengths = torch.tensor([1, 20, 3, 3, 7, 1, 12, 2, 20, 5])
    seen = []
    for idx, width in bucketed_batches(lengths, 2, torch.Generator().manual_seed(0)):
        assert width == int(lengths[idx].max())
        assert int(lengths[idx].min()) > width // 2  # one bucket: similar lengths
        seen += idx.tolist()
    assert sorted(seen) == list(range(len(lengths)))
    assert n_bucketed_batches(lengths, 2) == len(
        list(bucketed_batches(lengths, 2, torch.Generator()))
    )


def test_bad_max_items_is_refused():
    ds = dataset_from_sequences([[1, 2, 3]], n_items=4)
    with pytest.raises(ValueError, match="max_items"):
        build_sequence_data(ds, leave_one_out(ds, []), max_items=0)


@pytest.mark.skipif(
    not (SHARED / "beauty").is_dir(), reason=f"real data not found at {SHARED / 'beauty'}"
)
def test_real_beauty_windows():
    from utils.data.load import load_dataset
    from utils.data.splits import make_split

    ds = load_dataset(SHARED / "beauty")
    split = make_split(ds, "leave_one_out", seed=0)
    data = build_sequence_data(ds, split)
    train_users = np.unique(ds.users[split.train])
    assert len(data.train) == len(split.train) - len(train_users)
    assert len(data.val) == len(data.test) == ds.n_users
    # The last history item of a test example is the validation target.
    assert torch.equal(data.test.hist[:, -1], data.val.target)
    assert int(data.train.length.max()) == 20 and int(data.train.length.min()) == 1
