"""Small pre-LayerNorm transformer blocks shared by TIGER and SASRec.

Why not ``nn.MultiheadAttention``: TIGER's published size is d_model 128 with
6 heads of 64 (an attention inner width of 384), and ``nn.MultiheadAttention``
ties the head width to ``d_model / heads`` (its ``kdim``/``vdim`` only change
the *input* widths of keys and values). So :class:`Attention` projects
``d_model -> heads * head_dim`` itself and calls
``F.scaled_dot_product_attention``, which picks the fused kernel for the
device. The decoder layer also supports an incremental key/value cache so
beam search feeds one new token per step instead of re-running the prefix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

KVCache = tuple[Tensor, Tensor]


class Attention(nn.Module):
    """Multi-head attention with an inner width independent of ``d_model``."""

    def __init__(self, d_model: int, n_heads: int, head_dim: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.head_dim, self.dropout = n_heads, head_dim, dropout
        inner = n_heads * head_dim
        self.q = nn.Linear(d_model, inner, bias=False)
        self.kv = nn.Linear(d_model, 2 * inner, bias=False)
        self.out = nn.Linear(inner, d_model, bias=False)

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        mask: Tensor | None = None,
        causal: bool = False,
        past: KVCache | None = None,
    ) -> tuple[Tensor, KVCache]:
        """x: (B, T, d) queries; context: (B, S, d) keys/values (default: x).

        mask: bool, broadcastable to (B, heads, T, S), True = may attend.
        past: cached (k, v) of earlier positions, prepended to this call's.
        Returns the output and the (k, v) to cache.
        """
        if causal and mask is not None:
            raise ValueError("pass either causal=True or an explicit mask, not both")
        context = x if context is None else context
        b, t, _ = x.shape
        s = context.shape[1]
        q = self.q(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k, v = self.kv(context).view(b, s, 2, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            is_causal=causal,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.out(y.transpose(1, 2).reshape(b, t, -1)), (k, v)


class FeedForward(nn.Sequential):
    """Position-wise two-layer ReLU network."""

    def __init__(self, d_model: int, d_ff: int, dropout: float) -> None:
        super().__init__(
            nn.Linear(d_model, d_ff), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model)
        )


class EncoderLayer(nn.Module):
    """Pre-LN self-attention + feed-forward block."""

    def __init__(
        self, d_model: int, n_heads: int, head_dim: int, d_ff: int, dropout: float
    ) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = Attention(d_model, n_heads, head_dim, dropout)
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None, causal: bool = False) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x), mask=mask, causal=causal)[0])
        return x + self.drop(self.ff(self.norm2(x)))


class DecoderLayer(nn.Module):
    """Pre-LN causal self-attention, cross-attention and feed-forward block.

    Hypotheses are grouped per user: ``y`` is (B*G, T, d) for G hypotheses
    (beams) per user while ``memory`` stays (B, S, d). Cross-attention treats
    each query independently, so the G*T queries of one user are attended
    against that user's memory in one call, without copying the memory G times.
    """

    def __init__(
        self, d_model: int, n_heads: int, head_dim: int, d_ff: int, dropout: float
    ) -> None:
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.self_attn = Attention(d_model, n_heads, head_dim, dropout)
        self.cross_attn = Attention(d_model, n_heads, head_dim, dropout)
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(
        self, y: Tensor, memory: Tensor, memory_mask: Tensor, past: KVCache | None = None
    ) -> tuple[Tensor, KVCache]:
        bg, t, d = y.shape
        b = memory.shape[0]
        h, cache = self.self_attn(self.norm1(y), causal=past is None and t > 1, past=past)
        y = y + self.drop(h)
        h, _ = self.cross_attn(self.norm2(y).reshape(b, -1, d), memory, mask=memory_mask)
        y = y + self.drop(h.reshape(bg, t, d))
        return y + self.drop(self.ff(self.norm3(y))), cache
