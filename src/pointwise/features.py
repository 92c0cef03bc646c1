"""Feature tensors for the CTR models, built once per (data set, split, mode) and gathered per
batch.

Every feature is a property of the user or of the item, so it is stored once
per user / per item and a batch of (user, item) pairs is turned into model
inputs by tensor indexing alone (``FeatureTensors.gather``): no per-row Python.

Feature modes (``neural_train_eval.py --modes``):

* ``baseline``: user ID, item ID, brand, categories (multi-hot bag; the genres
  on MovieLens), title tokens (stable-hashed bag of words) and the dense
  features the data has (log sales rank, log price, release year);
* ``semantic``: as baseline, but the item ID is replaced by the item's semantic
  codes, one field per level (no item-ID memorisation);
* ``hybrid``: item ID and the codes;
* ``semantic-ngram``: instead of the item ID, the code prefixes (level 1,
  levels 1-2, levels 1-3, full ID) as separate stable-hashed fields
  (Singh et al., 2023).

Cold-start rule: each item-side categorical value (item ID, brand, category,
title token bucket, code, n-gram) gets its own embedding row only if it occurs
on an item with a training interaction; every other value maps to index 0, a
shared row that the embedding layer keeps at zero and never trains
(``padding_idx=0``). So a held-out (cold) item's score is never influenced by
item-ID parameters - its ID is simply absent - while its content and semantic
codes, which it shares with warm items, still count. Users without training
rows are handled the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from utils.data.dataset import Dataset
from utils.data.splits import Split
from utils.runtime.hashing import stable_hash_array

MODES = ("baseline", "semantic", "hybrid", "semantic-ngram")
BAG_LAYOUTS = ("padded", "offsets")
OOV = 0
TITLE_BUCKETS = 2**18
NGRAM_BUCKETS = 2**20
MAX_TITLE_TOKENS = 24
_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class FieldSpec:
    """What the embedding layer allocates; every cardinality counts the shared OOV row 0.

    ``sparse`` lists the single-valued fields in column order (``user`` first);
    ``cross`` names the item-side identity fields the wide part crosses with the user.
    """

    sparse: dict[str, int]
    bags: dict[str, int]
    dense: tuple[str, ...]
    cross: tuple[str, ...]

    @property
    def n_fields(self) -> int:
        """Field vectors the embedding layer emits: sparse + bags + one for the dense block (if
        any)."""
        return len(self.sparse) + len(self.bags) + (1 if self.dense else 0)


@dataclass
class Batch:
    """Model inputs for a batch of (user, item) pairs.

    ``bags[name]`` is ``(indices, offsets)``: a padded (B, L) index matrix with
    offsets ``None`` in the padded layout, or flat indices with per-row offsets
    in the offsets layout - both are what ``nn.EmbeddingBag`` takes.
    """

    sparse: torch.Tensor
    bags: dict[str, tuple[torch.Tensor, torch.Tensor | None]]
    dense: torch.Tensor

    def __len__(self) -> int:
        return int(self.sparse.shape[0])


def vocab_index(
    values: np.ndarray, known: np.ndarray, missing: object = None
) -> tuple[np.ndarray, int]:
    """Map each value to 1..V by the sorted vocabulary of values on ``known`` rows; the rest (and
    ``missing``) to 0.

    Returns the indices and the cardinality V + 1 (row 0 is the shared OOV row).
    """
    values = np.asarray(values)
    seen = values[known]
    if missing is not None:
        seen = seen[seen != missing]
    vocab = np.unique(seen)
    if not len(vocab):
        return np.zeros(len(values), dtype=np.int64), 1
    pos = np.minimum(np.searchsorted(vocab, values), len(vocab) - 1)
    index = np.where(vocab[pos] == values, pos + 1, OOV).astype(np.int64)
    if missing is not None:
        index[values == missing] = OOV
    return index, len(vocab) + 1


def title_tokens(title: str, max_tokens: int) -> list[str]:
    """Lower-cased words (Unicode letters and digits), de-duplicated in order, at most
    ``max_tokens``."""
    return list(dict.fromkeys(_TOKEN.findall(title.lower())))[:max_tokens]


def code_ngrams(codes: np.ndarray, n_buckets: int) -> np.ndarray:
    """(n_items, levels) stable hashes of the code prefixes of length 1..levels ('2:17-4' = level-2
    prefix)."""
    levels = codes.shape[1]
    out = np.empty(codes.shape, dtype=np.int64)
    for n in range(1, levels + 1):
        keys = [f"{n}:" + "-".join(map(str, row)) for row in codes[:, :n].tolist()]
        out[:, n - 1] = stable_hash_array(keys, n_buckets)
    return out


class BagField:
    """A multi-valued item feature as CSR (values of item i:
    ``values[starts[i]:starts[i] + lengths[i]]``)."""

    def __init__(
        self, lists: Sequence[Sequence[object]], known: np.ndarray, max_len: int | None = None
    ):
        lists = [list(x)[:max_len] if max_len else list(x) for x in lists]
        lengths = np.array([len(x) for x in lists], dtype=np.int64)
        flat = (
            np.array([v for x in lists for v in x])
            if lengths.sum()
            else np.zeros(0, dtype=np.int64)
        )
        index, self.cardinality = vocab_index(flat, np.repeat(known, lengths))
        # Values without a row (never on a training item) are dropped from the bag.
        keep = index != OOV
        item_of = np.repeat(np.arange(len(lists)), lengths)[keep]
        self.values = index[keep]
        self.lengths = np.bincount(item_of, minlength=len(lists)).astype(np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)

    def padded(self) -> np.ndarray:
        """(n_items, max length) matrix, right-padded with the OOV index."""
        width = max(1, int(self.lengths.max(initial=0)))
        out = np.zeros((len(self.lengths), width), dtype=np.int64)
        col = np.arange(len(self.values)) - np.repeat(self.starts, self.lengths)
        out[np.repeat(np.arange(len(self.lengths)), self.lengths), col] = self.values
        return out


def dense_features(ds: Dataset, known: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Standardised numeric item features the data actually has, plus a missing flag where some are
    absent.

    Mean and standard deviation come from training items; absent values become
    0 (the mean) and the flag column tells the model they were absent.
    """
    candidates = {
        "log_sales_rank": np.log1p(ds.meta.sales_rank),
        "log_price": np.log1p(ds.meta.price),
        "year": ds.meta.year,
    }
    columns, names = [], []
    for name, raw in candidates.items():
        raw = np.asarray(raw, dtype=np.float64)
        present = np.isfinite(raw)
        if not (present & known).any():
            continue
        ref = raw[present & known]
        std = ref.std() or 1.0
        columns.append(np.where(present, (raw - ref.mean()) / std, 0.0))
        names.append(name)
        if not present.all():
            columns.append((~present).astype(np.float64))
            names.append(f"{name}_missing")
    matrix = np.stack(columns, axis=1) if columns else np.zeros((ds.n_items, 0))
    return matrix.astype(np.float32), tuple(names)


class FeatureTensors(nn.Module):
    """Per-user and per-item feature tensors (buffers, so ``.to(device)`` moves them) and the batch
    gather."""

    def __init__(
        self,
        spec: FieldSpec,
        user_index: np.ndarray,
        item_sparse: np.ndarray,
        bags: dict[str, BagField],
        dense: np.ndarray,
        bag_layout: str = "offsets",
    ):
        super().__init__()
        if bag_layout not in BAG_LAYOUTS:
            raise ValueError(f"bag_layout must be one of {BAG_LAYOUTS}, got {bag_layout!r}")
        self.spec, self.bag_layout, self.bag_names = spec, bag_layout, tuple(bags)
        self.register_buffer(
            "user_index", torch.as_tensor(user_index, dtype=torch.long), persistent=False
        )
        self.register_buffer(
            "item_sparse", torch.as_tensor(item_sparse, dtype=torch.long), persistent=False
        )
        self.register_buffer("dense", torch.as_tensor(dense, dtype=torch.float32), persistent=False)
        for name, bag in bags.items():
            if bag_layout == "padded":
                self.register_buffer(
                    f"{name}_padded", torch.as_tensor(bag.padded()), persistent=False
                )
            else:
                for part in ("values", "starts", "lengths"):
                    self.register_buffer(
                        f"{name}_{part}", torch.as_tensor(getattr(bag, part)), persistent=False
                    )

    def gather(self, users: torch.Tensor, items: torch.Tensor) -> Batch:
        """Model inputs of the pairs (users[k], items[k]) by indexing the stored tensors."""
        sparse = torch.cat([self.user_index[users].unsqueeze(1), self.item_sparse[items]], dim=1)
        bags = {name: self._gather_bag(name, items) for name in self.bag_names}
        return Batch(sparse, bags, self.dense[items])

    def _gather_bag(
        self, name: str, items: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.bag_layout == "padded":
            return getattr(self, f"{name}_padded")[items], None
        lengths = getattr(self, f"{name}_lengths")[items]
        offsets = torch.cumsum(lengths, 0) - lengths
        total = int(lengths.sum())
        # Position k of the flat output reads values[starts[item] + (k - offset of its row)].
        shift = torch.repeat_interleave(
            getattr(self, f"{name}_starts")[items] - offsets, lengths, output_size=total
        )
        flat = getattr(self, f"{name}_values")[shift + torch.arange(total, device=items.device)]
        return flat, offsets


def build_features(
    ds: Dataset,
    split: Split,
    mode: str,
    codes: np.ndarray | None = None,
    title_buckets: int = TITLE_BUCKETS,
    ngram_buckets: int = NGRAM_BUCKETS,
    max_title_tokens: int = MAX_TITLE_TOKENS,
    bag_layout: str = "offsets",
) -> FeatureTensors:
    """All feature tensors for ``mode``; ``codes`` (n_items, levels) are the semantic IDs (needed by
    all but baseline).

    Vocabularies come from items with training interactions only (see the
    module docstring for why), so the result depends on the split.
    """
    if mode not in MODES:
        raise ValueError(f"feature mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode != "baseline":
        if codes is None:
            raise ValueError(
                f"feature mode {mode!r} needs semantic IDs; run semantic_id_generator.py for this "
                "data set first"
            )
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or codes.shape[0] != ds.n_items:
            raise ValueError(
                f"semantic codes must be (n_items={ds.n_items}, levels), got shape {codes.shape}"
            )

    known_items = np.zeros(ds.n_items, dtype=bool)
    known_items[ds.items[split.train]] = True
    known_users = np.zeros(ds.n_users, dtype=bool)
    known_users[ds.users[split.train]] = True
    user_index, n_user_rows = vocab_index(np.arange(ds.n_users), known_users)

    columns: dict[str, np.ndarray] = {}
    if mode in ("baseline", "hybrid"):
        columns["item"] = np.arange(ds.n_items)
    if mode in ("semantic", "hybrid"):
        columns.update({f"code_{level + 1}": codes[:, level] for level in range(codes.shape[1])})
    if mode == "semantic-ngram":
        ngrams = code_ngrams(codes, ngram_buckets)
        columns.update({f"ngram_{n + 1}": ngrams[:, n] for n in range(codes.shape[1])})
    cross = tuple(columns)
    if (ds.meta.brand[known_items] != "").any():
        columns["brand"] = ds.meta.brand.astype(str)

    sparse = {"user": n_user_rows}
    item_columns = []
    for name, values in columns.items():
        index, cardinality = vocab_index(
            values, known_items, missing="" if name == "brand" else None
        )
        sparse[name] = cardinality
        item_columns.append(index)
    item_sparse = np.stack(item_columns, axis=1)

    bags: dict[str, BagField] = {}
    if any(ds.meta.categories):
        bags["categories"] = BagField(ds.meta.categories, known_items)
    if (ds.meta.title != "").any():
        tokens = [title_tokens(t, max_title_tokens) for t in ds.meta.title]
        flat = stable_hash_array([w for ws in tokens for w in ws], title_buckets)
        split_at = np.cumsum([len(ws) for ws in tokens])[:-1]
        bags["title"] = BagField(np.split(flat, split_at), known_items)
    bags = {name: bag for name, bag in bags.items() if bag.cardinality > 1}

    dense, dense_names = dense_features(ds, known_items)
    spec = FieldSpec(
        sparse, {name: bag.cardinality for name, bag in bags.items()}, dense_names, cross
    )
    return FeatureTensors(spec, user_index, item_sparse, bags, dense, bag_layout)
