"""Next-item training windows and evaluation examples for sequential models.

Built once per run as int64 tensors, so training batches are slices:

* training windows: every prefix of each user's training sequence (predict
  item t from the up to ``max_items`` items before it). Cold items never enter
  a training window, as history or as target: they are dropped from the
  training sequences (the split already keeps them out of ``train``; the
  filter here makes that a property of this module too).
* training chunks (SASRec's all-position training): each user's training
  sequence cut from its end into runs of up to ``max_items + 1`` items that
  overlap by one, so every window target is predicted exactly once per epoch;
* validation / test examples: one per user, with the user's *real* history
  (every interaction before the target, cold items included, last
  ``max_items``), as a deployed model would see it.

Histories are right-aligned and left-padded with -1, so the most recent item
is always the last column and a batch can be cut to its longest history by
slicing the last columns (see :func:`bucketed_batches`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from utils.data.dataset import Dataset
from utils.data.splits import Split

PAD_ITEM = -1
# Histories are grouped by length into these buckets (upper bounds) so a batch
# pads only to the longest history in its bucket, not to max_items.
BUCKET_BOUNDS = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20)


@dataclass
class SequenceExamples:
    """Aligned tensors: ``hist`` (N, max_items), ``length`` (N,), ``target`` (N,), ``user`` (N,),
    and ``rows`` (N,) the target's interaction index (-1 for training windows)."""

    hist: Tensor
    length: Tensor
    target: Tensor
    user: Tensor
    rows: Tensor

    def __len__(self) -> int:
        return len(self.target)

    def to(self, device: str | torch.device) -> SequenceExamples:
        return SequenceExamples(
            *(t.to(device) for t in (self.hist, self.length, self.target, self.user, self.rows))
        )

    def subset(self, idx: Tensor | np.ndarray) -> SequenceExamples:
        idx = torch.as_tensor(idx, device=self.target.device)
        return SequenceExamples(
            self.hist[idx], self.length[idx], self.target[idx], self.user[idx], self.rows[idx]
        )


@dataclass
class Chunks:
    """Right-aligned runs of consecutive training items ``seq`` (N, max_items + 1), -1 padded,
    and ``length`` (N,) the real items in each."""

    seq: Tensor
    length: Tensor

    def __len__(self) -> int:
        return len(self.length)

    def to(self, device: str | torch.device) -> Chunks:
        return Chunks(self.seq.to(device), self.length.to(device))


@dataclass
class SequenceData:
    train: SequenceExamples
    val: SequenceExamples
    test: SequenceExamples
    max_items: int
    train_chunks: Chunks

    def summary(self) -> dict[str, float]:
        return {
            "train_windows": len(self.train),
            "train_chunks": len(self.train_chunks),
            "val_users": len(self.val),
            "test_users": len(self.test),
            "max_items": self.max_items,
            "mean_train_history": round(float(self.train.length.float().mean()), 3)
            if len(self.train)
            else 0.0,
        }


def _histories(
    items: np.ndarray, ends: np.ndarray, starts: np.ndarray, max_items: int
) -> np.ndarray:
    """(len(ends), max_items): items[max(start, end-max_items):end], right-aligned, -1 padded."""
    idx = ends[:, None] + np.arange(-max_items, 0)[None, :]
    valid = idx >= starts[:, None]
    return np.where(valid, items[np.clip(idx, 0, None)], PAD_ITEM)


def _long(a: np.ndarray) -> Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.long)


def _examples(
    hist: np.ndarray, target: np.ndarray, user: np.ndarray, rows: np.ndarray
) -> SequenceExamples:
    return SequenceExamples(
        _long(hist), _long((hist != PAD_ITEM).sum(1)), _long(target), _long(user), _long(rows)
    )


def build_sequence_data(ds: Dataset, split: Split, max_items: int = 20) -> SequenceData:
    """Training windows and evaluation examples for ``split`` (normally leave-one-out)."""
    if max_items < 1:
        raise ValueError(f"max_items must be >= 1, got {max_items}")
    # Training sequences: train rows in (user, position) order, cold items removed.
    rows = np.sort(split.train)
    rows = rows[~split.is_cold(ds.items[rows])]
    users, items = ds.users[rows], ds.items[rows]
    first = np.r_[True, users[1:] != users[:-1]]
    seq_start = np.maximum.accumulate(np.where(first, np.arange(len(rows)), 0))
    pos = np.flatnonzero(~first)  # each non-first train item is the target of one window
    train = _examples(
        _histories(items, pos, seq_start[pos], max_items),
        items[pos],
        users[pos],
        np.full(len(pos), -1),
    )
    chunks = _chunks(items, np.flatnonzero(first), max_items)

    def evaluation(eval_rows: np.ndarray) -> SequenceExamples:
        eval_rows = np.sort(eval_rows)
        u = ds.users[eval_rows]
        hist = _histories(ds.items, eval_rows, ds.user_offsets[u], max_items)
        return _examples(hist, ds.items[eval_rows], u, eval_rows)

    return SequenceData(train, evaluation(split.val), evaluation(split.test), max_items, chunks)


def _chunks(items: np.ndarray, starts: np.ndarray, max_items: int) -> Chunks:
    """Cut each sequence ``items[starts[u]:starts[u+1]]`` from its end into overlapping chunks.

    A chunk ends ``max_items`` items before the previous one and holds up to
    ``max_items + 1`` items, so the first item of one chunk is the last (a
    target) of the next; sequences of one item give no chunk.
    """
    ends = np.r_[starts[1:], len(items)]
    n_chunks = np.maximum(ends - starts - 1, 0)
    n_chunks = -(-n_chunks // max_items)
    user_start = np.repeat(starts, n_chunks)
    within = np.arange(int(n_chunks.sum())) - np.repeat(np.cumsum(n_chunks) - n_chunks, n_chunks)
    chunk_end = np.repeat(ends, n_chunks) - max_items * within
    seq = _histories(items, chunk_end, user_start, max_items + 1)
    return Chunks(_long(seq), _long((seq != PAD_ITEM).sum(1)))


def prefix_chunks(train: SequenceExamples) -> Chunks:
    """Every training window (a history and its target) as a chunk of its own: each prefix of a
    user's training items, right-aligned like :func:`_chunks`' chunks."""
    seq = torch.cat([train.hist, train.target[:, None]], 1)
    return Chunks(seq, train.length + 1)


def n_bucketed_batches(
    lengths: Tensor, batch_size: int, bounds: tuple[int, ...] = BUCKET_BOUNDS
) -> int:
    """How many batches :func:`bucketed_batches` yields per epoch."""
    sizes = torch.bincount(torch.bucketize(lengths.cpu(), torch.tensor(bounds)))
    return int((-(-sizes // batch_size)).sum())


def bucketed_batches(
    lengths: Tensor,
    batch_size: int,
    generator: torch.Generator,
    bounds: tuple[int, ...] = BUCKET_BOUNDS,
) -> Iterator[tuple[Tensor, int]]:
    """Shuffled (indices, width) batches whose histories have similar lengths.

    Each batch holds examples from one length bucket; ``width`` is the longest
    history in the batch, so ``hist[idx, -width:]`` drops only padding.
    Batches from all buckets come in a shuffled order.
    """
    lengths = lengths.cpu()
    bucket = torch.bucketize(lengths, torch.tensor(bounds))
    batches: list[Tensor] = []
    for b in torch.unique(bucket):
        members = torch.nonzero(bucket == b).flatten()
        batches.extend(members[torch.randperm(len(members), generator=generator)].split(batch_size))
    for k in torch.randperm(len(batches), generator=generator).tolist():
        idx = batches[k]
        yield idx, int(lengths[idx].max())
