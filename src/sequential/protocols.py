"""The evaluation protocols of the sequential stage, named after the tables they match.

A number means nothing without its protocol; each published table on this Beauty data sits
beside the one it was measured on:

* ``paper``: every item trains (no cold hold-out); the model trains on all but each user's last
  two items, validates on the second-to-last and tests on the last; the whole catalogue is
  ranked, items the user already has included (Rajput et al. 2023, TIGER's Table 2; GenRec's
  model zoo).
* ``filtered``: the same trained model, each user's earlier items removed from the ranking
  (RecBole and RecTools convention). In Beauty no test item repeats an earlier one, so this only
  stops a model from spending top places on items the user certainly does not want next.
  ``paper`` trained and ``filtered`` ranked is the eSASRec benchmark's protocol (Petrov et al.,
  RecSys 2025: the validation item stays out of training, early stopping on it).
* ``holdout``: retrained with the validation item: configuration and epoch count fixed on the
  validation fold, then the model retrained on all but each user's last item (the validation
  item becomes a training target) and tested on the last, history items removed. No published
  table uses it.
* ``cold``: the cold-start study: 5% of items held out of training entirely (and out of the
  semantic-ID codebooks), every other rule as ``paper``.

One training run serves ``paper`` and ``filtered`` together; ``holdout`` and ``cold`` each need a
run of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from utils.data.dataset import Dataset
from utils.data.splits import Split


@dataclass(frozen=True)
class Protocol:
    """How a sequential run splits, trains and ranks."""

    name: str
    cold_fraction: float  # share of items held out of training (0 = none)
    train_on_validation: bool  # the validation item is a training target (holdout)
    reports: tuple[str, ...]  # the ranking rules reported: "paper" (all items), "filtered"
    what: str


PROTOCOLS: dict[str, Protocol] = {
    "paper": Protocol(
        "paper",
        0.0,
        False,
        ("paper", "filtered"),
        "leave-one-out, no cold hold-out, trained on all but the last two items, full catalogue; "
        "'paper' ranks every item (TIGER's table), 'filtered' removes the user's earlier items",
    ),
    "holdout": Protocol(
        "holdout",
        0.0,
        True,
        ("filtered",),
        "retrained with the validation item: configuration and epochs fixed on validation, "
        "retrained on all but the last item, tested on the last with the user's earlier items "
        "removed (no published table uses it)",
    ),
    "cold": Protocol(
        "cold",
        0.05,
        False,
        ("paper",),
        "cold-start study: as 'paper' with 5% of items held out of training and of the "
        "semantic-ID codebooks; the cold-share ranking reserves top-10 places for cold items",
    ),
}
# The protocol names a results table can carry: the runs' protocols and the filtered view.
TABLE_PROTOCOLS = ("paper", "filtered", "holdout", "cold")


def protocol_split(split: Split, protocol: Protocol) -> Split:
    """``split`` as ``protocol`` trains on it: under holdout the validation rows join training and
    validation is empty (the epochs were fixed on the validation fold beforehand)."""
    if not protocol.train_on_validation:
        return split
    empty = np.zeros(0, dtype=np.int64)
    return replace(
        split,
        train=np.sort(np.concatenate([split.train, split.val])),
        val=empty,
        val_negatives=split.val_negatives[:0],
        info={**split.info, "protocol": protocol.name, "validation_rows_in_train": len(split.val)},
    )


@dataclass
class Histories:
    """Each evaluation example's earlier items (all of them, not only the model's window), as
    CSR arrays: example r's items are ``items[ptr[r]:ptr[r + 1]]``."""

    ptr: np.ndarray
    items: np.ndarray

    @classmethod
    def of_rows(cls, ds: Dataset, rows: np.ndarray) -> Histories:
        """The histories of the targets at interaction indices ``rows`` (sorted by user, time)."""
        rows = np.asarray(rows, dtype=np.int64)
        starts = ds.user_offsets[ds.users[rows]]
        lengths = rows - starts
        ptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)
        within = np.arange(ptr[-1]) - np.repeat(ptr[:-1], lengths)
        return cls(ptr, ds.items[np.repeat(starts, lengths) + within])

    def mask(self, idx: Tensor | np.ndarray, n_items: int) -> Tensor:
        """(len(idx), n_items) bool: True where the item is in that example's history."""
        idx = np.asarray(torch.as_tensor(idx).cpu(), dtype=np.int64)
        lengths = self.ptr[idx + 1] - self.ptr[idx]
        starts = np.repeat(self.ptr[idx], lengths)
        within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        out = torch.zeros(len(idx), n_items, dtype=torch.bool)
        out[
            torch.from_numpy(np.repeat(np.arange(len(idx)), lengths)),
            torch.from_numpy(self.items[starts + within]),
        ] = True
        return out


@dataclass
class RankingRule:
    """One way of ranking the evaluation examples: ``paper`` (every item) or ``filtered`` (each
    example's earlier items removed, given as :class:`Histories` of the val and test examples)."""

    name: str
    val: Histories | None = None
    test: Histories | None = None


def ranking_rules(
    protocol: Protocol, ds: Dataset, val_rows: np.ndarray, test_rows: np.ndarray
) -> list[RankingRule]:
    """The rules ``protocol`` reports, first the one its model selection and headline use."""
    return [
        RankingRule(rule)
        if rule == "paper"
        else RankingRule(rule, Histories.of_rows(ds, val_rows), Histories.of_rows(ds, test_rows))
        for rule in protocol.reports
    ]
