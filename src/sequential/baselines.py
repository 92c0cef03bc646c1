"""The two sanity baselines every next-item table needs: most-popular and item-to-item transitions.

A learned model that does not clearly beat both is not learning from sequences. Both score the
whole catalogue from a history exactly like SASRec (``scores(hist) -> (B, n_items)``), so they are
ranked, filtered and sliced by the same code.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from utils.data.dataset import Dataset


def _popularity(ds: Dataset, train_rows: np.ndarray) -> np.ndarray:
    """Training interactions per item, as float64."""
    return ds.item_counts(np.asarray(train_rows)).astype(np.float64)


class MostPopular:
    """Every user gets the items with the most training interactions."""

    name = "most_popular"

    def __init__(self, ds: Dataset, train_rows: np.ndarray) -> None:
        self.popularity = torch.as_tensor(_popularity(ds, train_rows), dtype=torch.float32)

    def scores(self, hist: Tensor) -> Tensor:
        return self.popularity.to(hist.device).expand(len(hist), -1)


class Transition:
    """First-order item-to-item model: the items that most often followed the user's last item
    in training sequences; popularity breaks ties (and ranks everything for an item never
    followed by anything).

    Score = transition count + popularity / (max popularity + 1): the popularity term is below
    1, so it orders items only within one count.
    """

    name = "transition"

    def __init__(self, ds: Dataset, train_rows: np.ndarray) -> None:
        rows = np.sort(np.asarray(train_rows, dtype=np.int64))
        same_user = ds.users[rows[1:]] == ds.users[rows[:-1]]
        prev, nxt = ds.items[rows[:-1]][same_user], ds.items[rows[1:]][same_user]
        n = ds.n_items
        self.counts = sp.csr_matrix(
            (np.ones(len(prev), dtype=np.float32), (prev, nxt)), shape=(n, n)
        )  # duplicates are summed
        pop = _popularity(ds, rows)
        self.tie_break = torch.as_tensor(pop / (pop.max() + 1.0), dtype=torch.float32)

    def scores(self, hist: Tensor) -> Tensor:
        last = hist[:, -1].cpu().numpy()
        counts = torch.from_numpy(self.counts[np.maximum(last, 0)].toarray())
        counts[torch.from_numpy(last < 0)] = 0.0  # an empty history: popularity alone
        return (counts + self.tie_break).to(hist.device)


BASELINES = {"most_popular": MostPopular, "transition": Transition}
