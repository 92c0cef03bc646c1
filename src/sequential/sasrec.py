"""SASRec (Kang & McAuley, ICDM 2018): causal self-attention over item IDs.

Scores every catalogue item by the dot product of the last position's state
with the (shared) item embedding table, trained with softmax cross-entropy:
over all items (``loss="softmax"``), or over the target and ``n_negatives``
items drawn uniformly for the whole batch (``loss="sampled"``, the eSASRec
benchmark's SASRec: Petrov et al., RecSys 2025). The original paper used one
sampled negative per positive with binary cross-entropy, which the field has
since left behind (the TIGER paper's SASRec row is that model). Training is all-position, as in the
original: a chunk of up to 21 consecutive training items predicts each item
from the ones before it (:func:`src.sequential.sequence_data.build_sequence_data` cuts
the chunks), so every training target is predicted once per epoch at a
twentieth of the cost of one window per target.

Items that never occur in training (the cold hold-out) have no trained
vector: their rows start at zero and are masked out of the training softmax,
so they are not even pushed down as negatives. They score exactly 0 at
evaluation, as an item the model knows nothing about should.

Histories are (B, H) item indices, right-aligned, -1 = padding. Positions
count from the oldest item shown, as in a causal language model: under
all-position training each prediction then sees the same position codes as
an evaluation history of the same length. (Counting back from the newest
item, as the original's left-padded sequences do, gave the same validation
curve here to within 0.0005 NDCG@10 over 10 epochs.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.sequential.transformer import EncoderLayer

LOSSES = ("softmax", "sampled")
# "sequences": each user's training items once, every position a target (the original's);
# "prefixes": every prefix of a user's training items is a sequence of its own, every position a
# target (the sliding windows of GenRec's SASRec: early targets are seen once per later item).
EXAMPLES = ("sequences", "prefixes")
# Fields added after checkpoints were written, with the value those checkpoints had: left out of
# to_dict at that value, so the recorded configurations (checkpoint identities) still match.
LATER_FIELDS = {"examples": "sequences", "ff_mult": 1}


@dataclass
class SASRecConfig:
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 1
    dropout: float = 0.3
    max_items: int = 20
    loss: str = "softmax"  # "softmax" over all items, or "sampled" (n_negatives shared per batch)
    n_negatives: int = 256
    examples: str = "sequences"  # see EXAMPLES
    ff_mult: int = 1  # feed-forward width = ff_mult x d_model

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.examples not in EXAMPLES:
            raise ValueError(f"examples must be one of {EXAMPLES}, got {self.examples!r}")
        if self.loss == "sampled" and self.n_negatives < 1:
            raise ValueError(f"n_negatives must be >= 1, got {self.n_negatives}")

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if LATER_FIELDS.get(k, object()) != v}


class SASRec(nn.Module):
    """ID-based next-item model; item i is embedding row i + 1 (row 0 = padding)."""

    def __init__(
        self, n_items: int, cfg: SASRecConfig, trained_items: Tensor | None = None
    ) -> None:
        """``trained_items``: bool (n_items,), the items that occur in training (default: all)."""
        super().__init__()
        if cfg.d_model % cfg.n_heads:
            raise ValueError(f"d_model {cfg.d_model} is not divisible by n_heads {cfg.n_heads}")
        self.cfg, self.n_items = cfg, n_items
        d = cfg.d_model
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.pos_emb = nn.Embedding(cfg.max_items, d)
        self.layers = nn.ModuleList(
            EncoderLayer(d, cfg.n_heads, d // cfg.n_heads, d * cfg.ff_mult, cfg.dropout)
            for _ in range(cfg.n_layers)
        )
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(cfg.dropout)
        trained = (
            torch.ones(n_items, dtype=torch.bool)
            if trained_items is None
            else trained_items.bool().cpu()
        )
        if trained.shape != (n_items,):
            raise ValueError(
                f"trained_items must have shape ({n_items},), got {tuple(trained.shape)}"
            )
        self.register_buffer(
            "untrained_mask", torch.where(trained, 0.0, float("-inf")), persistent=False
        )
        self.register_buffer("trained_items", torch.nonzero(trained).flatten(), persistent=False)
        nn.init.normal_(self.item_emb.weight, std=d**-0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
            self.item_emb.weight[1:][~trained] = 0.0

    def states(self, hist: Tensor) -> Tensor:
        """Every position's output (B, H, d) after causal attention over the history."""
        h = hist.shape[1]
        x = self.item_emb(hist + 1) * self.cfg.d_model**0.5
        real = hist >= 0
        # Position 0 = the oldest item shown (padding gets 0 too; it is masked below).
        pos = (torch.arange(h, device=hist.device) - (h - real.sum(1, keepdim=True))).clamp(min=0)
        x = self.drop(x + self.pos_emb(pos))
        # Causal, and real items never attend to padding; a padding position attends
        # only to itself so no softmax row is empty (an empty row would give NaN).
        causal = torch.ones(h, h, dtype=torch.bool, device=hist.device).tril()
        mask = (causal & real[:, None, :]) | torch.eye(h, dtype=torch.bool, device=hist.device)
        mask = mask[:, None]  # (B, 1, H, H)
        for layer in self.layers:
            x = layer(x, mask=mask)
        return self.norm(x)

    def scores(self, hist: Tensor) -> Tensor:
        """Scores (B, n_items) of the whole catalogue after the last history item."""
        return self.states(hist)[:, -1] @ self.item_emb.weight[1:].T

    @staticmethod
    def loss_terms(seq: Tensor) -> int:
        """How many positions :meth:`loss` averages over (a real input followed by a real
        target): what a data-parallel step weights each rank's slice by."""
        return int(((seq[:, :-1] >= 0) & (seq[:, 1:] >= 0)).sum())

    def loss(self, seq: Tensor) -> Tensor:
        """All-position softmax cross-entropy over right-aligned chunks ``seq`` (B, H+1),
        -1 = padding.

        Position t of ``seq[:, :-1]`` predicts ``seq[:, t+1]``; positions whose input is
        padding predict nothing. Items outside training never compete: they are masked out
        of the full softmax and never drawn as sampled negatives. A sampled negative that
        equals the position's target is masked, so the target never competes with itself.
        """
        hist, nxt = seq[:, :-1], seq[:, 1:]
        target = torch.where(hist >= 0, nxt, -1)
        keep = target >= 0
        states, target = self.states(hist)[keep], target[keep]
        items = self.item_emb.weight[1:]
        if self.cfg.loss == "softmax":
            return F.cross_entropy(states @ items.T + self.untrained_mask, target)
        pool = self.trained_items
        draw = torch.randint(len(pool), (self.cfg.n_negatives,), device=seq.device)
        negatives = pool[draw]
        positive = (states * items[target]).sum(-1, keepdim=True)
        negative = (states @ items[negatives].T).masked_fill(
            negatives[None, :] == target[:, None], float("-inf")
        )
        logits = torch.cat([positive, negative], 1)
        return F.cross_entropy(
            logits, torch.zeros(len(target), dtype=torch.long, device=seq.device)
        )
