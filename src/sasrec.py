"""SASRec (Kang & McAuley, ICDM 2018): causal self-attention over item IDs.

Scores every catalogue item by the dot product of the last position's state
with the (shared) item embedding table, trained with full softmax
cross-entropy over all items, the objective under which published
reproductions reach about 0.05 Recall@5 on Beauty (the original paper used
one sampled negative per positive). It trains on the same windows as TIGER:
predict item t from the (up to) 20 items before it.

Histories are (B, H) item indices, right-aligned, -1 = padding; positions are
counted back from the most recent item, as in the original's left-padded
sequences.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.transformer import EncoderLayer


@dataclass
class SASRecConfig:
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 1
    dropout: float = 0.3
    max_items: int = 20

    def to_dict(self) -> dict:
        return asdict(self)


class SASRec(nn.Module):
    """ID-based next-item model; item i is embedding row i + 1 (row 0 = padding)."""

    def __init__(self, n_items: int, cfg: SASRecConfig) -> None:
        super().__init__()
        if cfg.d_model % cfg.n_heads:
            raise ValueError(f"d_model {cfg.d_model} is not divisible by n_heads {cfg.n_heads}")
        self.cfg, self.n_items = cfg, n_items
        d = cfg.d_model
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.pos_emb = nn.Embedding(cfg.max_items, d)
        self.layers = nn.ModuleList(
            EncoderLayer(d, cfg.n_heads, d // cfg.n_heads, d, cfg.dropout) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(cfg.dropout)
        nn.init.normal_(self.item_emb.weight, std=d ** -0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def user_state(self, hist: Tensor) -> Tensor:
        """The last position's output (B, d) after causal attention over the history."""
        h = hist.shape[1]
        x = self.item_emb(hist + 1) * self.cfg.d_model ** 0.5
        x = self.drop(x + self.pos_emb(torch.arange(h - 1, -1, -1, device=hist.device)))
        # Causal, and real items never attend to padding; a padding position attends
        # only to itself so no softmax row is empty (an empty row would give NaN).
        real = hist >= 0
        causal = torch.ones(h, h, dtype=torch.bool, device=hist.device).tril()
        mask = (causal & real[:, None, :]) | torch.eye(h, dtype=torch.bool, device=hist.device)
        mask = mask[:, None]  # (B, 1, H, H)
        for layer in self.layers:
            x = layer(x, mask=mask)
        return self.norm(x[:, -1])

    def scores(self, hist: Tensor) -> Tensor:
        """Scores (B, n_items) over the whole catalogue."""
        return self.user_state(hist) @ self.item_emb.weight[1:].T

    def loss(self, hist: Tensor, target_items: Tensor) -> Tensor:
        """Full softmax cross-entropy of the next item."""
        return F.cross_entropy(self.scores(hist), target_items)
