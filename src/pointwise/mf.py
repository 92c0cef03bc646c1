"""Biased matrix factorization with item-ID, semantic-ID or hybrid item representations.

Every model scores ``mu + b_u + b_i + p_u . q_i``; they differ only in where
the item row ``(q_i, b_i)`` comes from:

* ``mf_id``: one free row per item ID (classic biased MF);
* ``mf_semantic``: no item-ID parameters; the row is the sum over the code
  levels of per-level code rows, weighted by softmax-normalised learned level
  weights, so items sharing a code prefix share parameters;
* ``mf_hybrid``: the item-ID row plus the semantic composition;
* baselines ``global_mean`` (``mu`` only, never trained) and ``bias`` (user
  and item-ID biases: ``mf_id`` with zero factors).

Unreachable parameters are zero and masked, not just left alone. A row (user
ID, item ID or semantic code) that no training positive touches starts at
zero and is multiplied by zero in every forward pass: it contributes exactly
nothing and receives no gradient. So a cold item under ``mf_id`` scores
exactly ``mu + b_u`` (no random-init noise), while the semantic models score
it through the codes it shares with trained items. A row is stored as ``dim``
factors plus one bias column, so one lookup fetches both.

Reading the learned level weights: they say how the optimiser split the
item row across levels, but they are not identifiable on their own (a
level's code rows can grow to make up for a small weight, and the L2 penalty
acts on the composed row), so compare them between runs with care.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.training import count_parameters
from utils.data.dataset import Dataset
from utils.data.splits import Split
from utils.runtime.budget import check_product

MODEL_NAMES = ("global_mean", "bias", "mf_id", "mf_semantic", "mf_hybrid")
SEMANTIC_MODELS = ("mf_semantic", "mf_hybrid")


class MaskedTable(nn.Module):
    """Rows of ``dim`` factors + 1 bias for ``n`` ids; rows outside ``known`` are exactly zero.

    Used for user IDs, item IDs (the item representation of ``mf_id``) and semantic codes.
    """

    def __init__(self, n: int, dim: int, known: np.ndarray, init_std: float = 0.01):
        super().__init__()
        if len(known) != n:
            raise ValueError(f"known mask has {len(known)} entries for {n} rows")
        self.register_buffer(
            "known", torch.as_tensor(np.asarray(known, dtype=np.float32)).unsqueeze(1)
        )
        weight = torch.randn(n, dim + 1) * init_std
        weight[:, dim] = 0.0
        self.weight = nn.Parameter(
            weight * self.known
        )  # unknown rows start (and, masked, stay) at zero

    def forward(self, idx: Tensor) -> Tensor:
        return F.embedding(idx, self.all())

    def all(self) -> Tensor:
        return self.weight * self.known


class SemanticItems(nn.Module):
    """Item row = sum over levels of softmax(level_logits)[l] * row of the item's level-l code.

    ``codes`` is (n_items, levels) with level l's codes in ``0..codebook_sizes[l]-1``;
    the levels share one table, offset per level.
    """

    def __init__(
        self,
        codes: np.ndarray,
        codebook_sizes: list[int],
        dim: int,
        known_items: np.ndarray,
        init_std: float = 0.01,
    ):
        super().__init__()
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or codes.shape[1] != len(codebook_sizes):
            raise ValueError(
                f"codes must be (n_items, {len(codebook_sizes)}), got shape {codes.shape}"
            )
        sizes = np.asarray(codebook_sizes, dtype=np.int64)
        if (codes < 0).any() or (codes >= sizes).any():
            level = int(np.argwhere((codes < 0) | (codes >= sizes))[0, 1])
            raise ValueError(
                f"semantic codes of level {level + 1} (column {level}) fall outside "
                f"0..{sizes[level] - 1}"
            )
        flat = codes + np.concatenate([[0], np.cumsum(sizes)[:-1]])
        known_codes = np.zeros(int(sizes.sum()), dtype=bool)
        known_codes[np.unique(flat[np.asarray(known_items, dtype=bool)])] = True
        self.register_buffer("codes", torch.as_tensor(flat))
        self.register_buffer(
            "row_level", torch.repeat_interleave(torch.arange(len(sizes)), torch.as_tensor(sizes))
        )
        self.table = MaskedTable(int(sizes.sum()), dim, known_codes, init_std)
        self.level_logits = nn.Parameter(torch.zeros(len(sizes)))

    def level_weights(self) -> Tensor:
        return torch.softmax(self.level_logits, dim=0)

    def forward(self, items: Tensor) -> Tensor:
        # Weighting the (small) code table first turns the weighted sum into one fused
        # embedding_bag.
        weighted = self.table.all() * self.level_weights()[self.row_level].unsqueeze(1)
        return F.embedding_bag(self.codes[items], weighted, mode="sum")

    def all(self) -> Tensor:
        return self.forward(torch.arange(len(self.codes), device=self.codes.device))


class SumItems(nn.Module):
    """The hybrid: the sum of several item representations."""

    def __init__(self, *parts: nn.Module):
        super().__init__()
        self.parts = nn.ModuleList(parts)

    def forward(self, items: Tensor) -> Tensor:
        return sum(part(items) for part in self.parts)

    def all(self) -> Tensor:
        return sum(part.all() for part in self.parts)


class MatrixFactorization(nn.Module):
    """``mu + b_u + b_i + p_u . q_i``; ``items=None`` gives the global-mean model (``mu`` only).

    The score is a rating for the explicit objective and a logit for the
    implicit one; ``mu`` starts at the training mean (or the base-rate logit).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        items: nn.Module | None,
        dim: int,
        known_users: np.ndarray,
        mu: float,
        init_std: float = 0.01,
    ):
        super().__init__()
        self.dim, self.n_items = dim, n_items
        self.mu = nn.Parameter(torch.tensor(float(mu)), requires_grad=items is not None)
        self.users = MaskedTable(n_users, dim, known_users, init_std) if items is not None else None
        self.items = items

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        return self.score_and_penalty(users, items)[0]

    def score_and_penalty(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        """Scores and the batch L2 penalty (mean squared norm of the touched user and item rows,
        factors and biases) from one lookup of the rows."""
        if self.items is None:
            return self.mu.expand(len(users)), self.mu.new_zeros(())
        u, i = self.users(users), self.items(items)
        d = self.dim
        scores = self.mu + u[:, d] + i[:, d] + (u[:, :d] * i[:, :d]).sum(1)
        return scores, u.pow(2).sum(1).mean() + i.pow(2).sum(1).mean()

    def score_all(self, users: Tensor) -> Tensor:
        """(len(users), n_items) scores with one matrix product."""
        if self.items is None:
            return self.mu.expand(len(users), self.n_items).clone()
        u, i = self.users(users), self.items.all()
        d = self.dim
        return torch.addmm(i[:, d].unsqueeze(0), u[:, :d], i[:, :d].T).add_(
            u[:, d : d + 1] + self.mu
        )

    def level_weights(self) -> list[float] | None:
        """The learned softmax level weights of the semantic part, if any."""
        for module in self.modules():
            if isinstance(module, SemanticItems):
                return module.level_weights().detach().cpu().tolist()
        return None


def base_score(objective: str, labels: np.ndarray, negatives: int = 0) -> float:
    """The global mean: mean training rating (explicit) or the logit of the base rate
    1 / (1 + negatives) (implicit)."""
    if objective == "explicit":
        return float(np.mean(labels))
    if negatives < 1:
        raise ValueError("the implicit objective needs at least one negative per positive")
    return -math.log(negatives)


def build_mf_model(
    name: str,
    n_users: int,
    n_items: int,
    dim: int,
    known_users: np.ndarray,
    known_items: np.ndarray,
    mu: float,
    codes: np.ndarray | None = None,
    codebook_sizes: list[int] | None = None,
    init_std: float = 0.01,
) -> MatrixFactorization:
    """One of :data:`MODEL_NAMES`; the semantic models need ``codes`` and ``codebook_sizes``."""
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")
    if name in SEMANTIC_MODELS and (codes is None or codebook_sizes is None):
        raise ValueError(f"{name} needs semantic IDs (codes and codebook sizes)")
    if name == "global_mean":
        return MatrixFactorization(n_users, n_items, None, 0, known_users, mu)
    if name == "bias":
        dim = 0
    parts: list[nn.Module] = []
    if name in ("bias", "mf_id", "mf_hybrid"):
        parts.append(MaskedTable(n_items, dim, known_items, init_std))
    if name in SEMANTIC_MODELS:
        parts.append(SemanticItems(codes, codebook_sizes, dim, known_items, init_std))
    items = parts[0] if len(parts) == 1 else SumItems(*parts)
    return MatrixFactorization(n_users, n_items, items, dim, known_users, mu, init_std)


# Per-objective defaults, chosen on the validation split of the temporal split
# (validation RMSE on MovieLens 100K, validation AUC on Beauty) under a
# few-minutes budget on 2 CPU cores. Implicit runs use large batches because
# the dense optimiser step over the ID tables dominates an epoch; 10 epochs
# is a budget (validation AUC still creeps up after it), not convergence.
DEFAULTS = {
    "explicit": {"dim": 64, "lr": 0.005, "reg": 0.1, "batch_size": 1024, "epochs": 30},
    "implicit": {"dim": 32, "lr": 0.02, "reg": 0.03, "batch_size": 16384, "epochs": 10},
}


def check_memory(
    ds: Dataset, split: Split, objective: str, dim: int, negatives: int, batch: int
) -> None:
    """Refuse (UsageError) flags whose embedding tables or per-batch embeddings would not fit:
    rows x --dim (weights, gradient, two Adam moments) and a batch's examples x --dim (user and
    item vectors and their gradients), a batch being at most an epoch's examples."""
    per_epoch = len(split.train) * (1 + (negatives if objective == "implicit" else 0))
    rows = {"users + items": ds.n_users + ds.n_items, "--dim": dim}
    check_product(rows, 4, "the embedding tables")
    name = (
        "--batch-size" if batch <= per_epoch else "examples per epoch (train x (1 + --negatives))"
    )
    check_product({name: min(batch, per_epoch), "--dim": dim}, 4, "one batch's embeddings")


def model_factory(
    ds: Dataset,
    split: Split,
    objective: str,
    dim: int,
    negatives: int,
    codes: np.ndarray | None = None,
    codebook_sizes: list[int] | None = None,
    init_std: float = 0.01,
) -> Callable[[str], MatrixFactorization]:
    """``build(name)`` for one split: IDs and codes count as known when a training positive uses
    them."""
    known_users = ds.user_counts(split.train) > 0
    known_items = ds.item_counts(split.train) > 0
    labels = ds.ratings[split.train] if objective == "explicit" else np.ones(len(split.train))
    mu = base_score(objective, labels, negatives)

    def build(name: str) -> MatrixFactorization:
        return build_mf_model(
            name,
            ds.n_users,
            ds.n_items,
            dim,
            known_users,
            known_items,
            mu,
            codes,
            codebook_sizes,
            init_std,
        )

    return build


def mf_model_facts(model: MatrixFactorization) -> dict[str, Any]:
    """Facts recorded with each run: trainable parameter count and the learned level weights."""
    out: dict[str, Any] = {"n_parameters": count_parameters(model)}
    weights = model.level_weights()
    if weights is not None:
        out["level_weights"] = {f"level_{level + 1}": w for level, w in enumerate(weights)}
    return out
