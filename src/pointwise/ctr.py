"""Wide&Deep, DeepFM and DLRM over one shared embedding layer.

All three read the same :class:`src.pointwise.features.Batch` through
:class:`FieldEmbedding`, which turns it into one vector per field; they differ
only in the head that turns those field vectors into a click logit. That keeps
the comparison between feature modes (item ID vs semantic codes) about the
features, not about model plumbing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from src.pointwise.features import Batch, FeatureTensors, FieldSpec
from utils.runtime.hashing import hash_pairs


@dataclass(frozen=True)
class CTRConfig:
    dim: int = 16
    hidden: tuple[int, ...] = (128, 64)
    bottom: tuple[int, ...] = (32,)
    dropout: float = 0.0
    cross_buckets: int = 2**18
    init_std: float = 0.01


def mlp(sizes: Sequence[int], dropout: float = 0.0) -> nn.Sequential:
    """Linear layers with ReLU (and dropout) between them; the last layer stays linear."""
    layers: list[nn.Module] = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if k < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


@dataclass
class Embedded:
    """The shared layer's output: field vectors (B, n_fields, dim) and, if asked for, first-order
    terms (B,)."""

    fields: torch.Tensor
    first_order: torch.Tensor | None


class FieldEmbedding(nn.Module):
    """Batch -> one vector per sparse field, one per mean-pooled bag, one for the dense block.

    The sparse fields share one table with per-field row offsets, so a batch
    costs one lookup; row 0 is the shared OOV row, zero and never trained (the
    cold-start rule in src.pointwise.features). The dense block goes through a bottom MLP
    (DLRM's). With ``first_order`` every row carries one extra column, the
    value's scalar weight of a linear model (Wide&Deep's wide part, DeepFM's
    first-order term), so the linear terms cost no second lookup.
    """

    def __init__(
        self,
        spec: FieldSpec,
        dim: int,
        bottom: Sequence[int] = (),
        init_std: float = 0.01,
        first_order: bool = False,
    ):
        super().__init__()
        self.dim, width = dim, dim + int(first_order)
        cards = list(spec.sparse.values())
        # Local index v > 0 of field f lives at global row offsets[f] + v; v = 0 stays at row 0.
        self.register_buffer(
            "offsets", torch.tensor(np.cumsum([0] + [c - 1 for c in cards[:-1]])), persistent=False
        )
        self.table = nn.Embedding(1 + sum(c - 1 for c in cards), width, padding_idx=0)
        self.bags = nn.ModuleDict(
            {
                name: nn.EmbeddingBag(card, width, mode="mean", padding_idx=0)
                for name, card in spec.bags.items()
            }
        )
        self.dense = mlp([len(spec.dense), *bottom, dim]) if spec.dense else None
        self.dense_linear = nn.Linear(len(spec.dense), 1) if spec.dense and first_order else None
        for weight in [self.table.weight, *(bag.weight for bag in self.bags.values())]:
            nn.init.normal_(weight, std=init_std)
            with torch.no_grad():
                weight[
                    :, dim:
                ].zero_()  # first-order weights start at zero, as in logistic regression
                weight[0].zero_()

    def forward(self, batch: Batch) -> Embedded:
        rows = torch.where(batch.sparse > 0, batch.sparse + self.offsets, 0)
        parts = [self.table(rows)]
        for name, bag in self.bags.items():
            indices, offsets = batch.bags[name]
            parts.append(bag(indices, offsets).unsqueeze(1))
        sparse = torch.cat(parts, dim=1)
        fields = sparse[..., : self.dim]
        if self.dense is not None:
            fields = torch.cat([fields, self.dense(batch.dense).unsqueeze(1)], dim=1)
        if sparse.shape[-1] == self.dim:
            return Embedded(fields, None)
        first = sparse[..., self.dim].sum(1)
        if self.dense_linear is not None:
            first = first + self.dense_linear(batch.dense).squeeze(1)
        return Embedded(fields, first)


class CrossFeatures(nn.Module):
    """Wide-part weights of user x item-identity crosses (item ID, code or n-gram), stable-hashed
    into buckets.

    A cross with an OOV side (unknown user, cold item ID) maps to row 0, which
    stays zero: a cold item gets no memorised user x item weight, but its
    user x code crosses, shared with warm items, still count.
    """

    def __init__(self, spec: FieldSpec, n_buckets: int):
        super().__init__()
        names = list(spec.sparse)
        self.register_buffer(
            "columns",
            torch.tensor([names.index(c) for c in spec.cross], dtype=torch.long),
            persistent=False,
        )
        self.n_buckets = n_buckets
        self.weight = nn.Embedding(n_buckets + 1, 1, padding_idx=0)
        nn.init.zeros_(self.weight.weight)

    def forward(self, batch: Batch) -> torch.Tensor:
        users = batch.sparse[:, :1]
        values = batch.sparse[:, self.columns]
        rows = hash_pairs(users, values, self.columns.unsqueeze(0), self.n_buckets) + 1
        rows = torch.where((users > 0) & (values > 0), rows, 0)
        return self.weight(rows).sum(dim=(1, 2))


class CTRModel(nn.Module):
    """Shared part: feature gather + embedding layer; subclasses add a ``head``."""

    first_order = False  # whether the head uses the linear (first-order) terms

    def __init__(self, features: FeatureTensors, cfg: CTRConfig):
        super().__init__()
        self.features, self.cfg, self.spec = features, cfg, features.spec
        self.embedding = FieldEmbedding(
            self.spec, cfg.dim, cfg.bottom, cfg.init_std, self.first_order
        )

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Click logits of the pairs (users[k], items[k])."""
        return self.score(self.features.gather(users, items))

    def score(self, batch: Batch) -> torch.Tensor:
        """Logits of an already gathered batch (the benchmark's slow path builds one by collating
        dicts)."""
        return self.head(batch, self.embedding(batch))

    def head(self, batch: Batch, emb: Embedded) -> torch.Tensor:
        raise NotImplementedError

    def deep(self) -> nn.Sequential:
        return mlp([self.spec.n_fields * self.cfg.dim, *self.cfg.hidden, 1], self.cfg.dropout)


class WideAndDeep(CTRModel):
    """Cheng et al. 2016: linear model over features and user x item crosses + an MLP over the
    embeddings."""

    first_order = True

    def __init__(self, features: FeatureTensors, cfg: CTRConfig):
        super().__init__(features, cfg)
        self.crosses = CrossFeatures(self.spec, cfg.cross_buckets)
        self.mlp = self.deep()

    def head(self, batch: Batch, emb: Embedded) -> torch.Tensor:
        wide = emb.first_order + self.crosses(batch)
        return wide + self.mlp(emb.fields.flatten(1)).squeeze(1)


class DeepFM(CTRModel):
    """Guo et al. 2017: first-order terms + FM pairwise interactions + an MLP, all over the same
    embeddings."""

    first_order = True

    def __init__(self, features: FeatureTensors, cfg: CTRConfig):
        super().__init__(features, cfg)
        self.mlp = self.deep()

    def head(self, batch: Batch, emb: Embedded) -> torch.Tensor:
        fields = emb.fields
        # sum_{i<j} <v_i, v_j> = ((sum v)^2 - sum v^2) / 2, per embedding dimension.
        fm = 0.5 * (fields.sum(1).pow(2) - fields.pow(2).sum(1)).sum(1)
        return emb.first_order + fm + self.mlp(fields.flatten(1)).squeeze(1)


class DLRM(CTRModel):
    """Naumov et al. 2019: bottom MLP for dense features, dot products of all field pairs, top
    MLP."""

    def __init__(self, features: FeatureTensors, cfg: CTRConfig):
        super().__init__(features, cfg)
        n = self.spec.n_fields
        pairs = torch.triu_indices(n, n, offset=1)
        self.register_buffer("pairs", pairs, persistent=False)
        top_in = pairs.shape[1] + (cfg.dim if self.spec.dense else 0)
        self.top = mlp([top_in, *cfg.hidden, 1], cfg.dropout)

    def head(self, batch: Batch, emb: Embedded) -> torch.Tensor:
        fields = emb.fields
        dots = torch.bmm(fields, fields.transpose(1, 2))[:, self.pairs[0], self.pairs[1]]
        # The paper concatenates the bottom MLP's output (the last field) with the interactions.
        top_in = torch.cat([fields[:, -1], dots], dim=1) if self.spec.dense else dots
        return self.top(top_in).squeeze(1)


MODELS: dict[str, type[CTRModel]] = {"wide_deep": WideAndDeep, "deepfm": DeepFM, "dlrm": DLRM}


def build_ctr_model(name: str, features: FeatureTensors, cfg: CTRConfig) -> CTRModel:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name](features, cfg)
