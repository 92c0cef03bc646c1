"""TIGER (Rajput et al., NeurIPS 2023): an encoder-decoder that reads a user's
history as semantic-ID tokens and emits the semantic ID of the next item.

Vocabulary: ``PAD``, ``BOS``, then one token range per code level (level l's
code c is token ``N_SPECIAL + offsets[l] + c``), then ``user_tokens`` hashed
user buckets (optional; off by default). The decoder reads ``[BOS, c0, .., c_{L-2}]``
and predicts ``c0 .. c_{L-1}``; step l's logits are restricted to level l's
range (the model never has to learn which range a level uses).

Two encoders:

* ``token`` (the paper's): one position per code token, up to 20 items x L tokens;
* ``item`` (a variant, reported beside the paper's): one position per history
  item, the sum of its L code-token embeddings, so the encoder input is L times
  shorter.

Positions are learned and counted backwards from the most recent token, so a
history truncated to the current batch's longest one keeps the same positions.
(The paper's T5 uses relative position biases; learned absolute positions are
the simpler, readable choice at these lengths.)

Initialisation matters here: token and position tables start at the same
scale, N(0, 1) as in T5 and the public TIGER reproductions. An earlier version
drew tokens from N(0, 0.02) while positions kept torch's N(0, 1); after the
pre-LayerNorm the history and the previous code were then ~2% of every block's
input, and the model could not even memorise 512 training windows
(``tests/test_tiger.py::test_memorises_a_small_training_set`` guards this).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.sequential.transformer import DecoderLayer, EncoderLayer, KVCache

PAD, BOS = 0, 1
N_SPECIAL = 2
EMBED_STD = 1.0  # one scale for token and position tables (see the module docstring)


@dataclass
class TigerConfig:
    """Model size; the defaults are the paper's (4+4 layers, d 128, 6 heads of 64, FF 1024)."""

    codebook_sizes: list[int] = field(default_factory=lambda: [256, 256, 256, 256])
    d_model: int = 128
    n_heads: int = 6
    head_dim: int = 64
    d_ff: int = 1024
    enc_layers: int = 4
    dec_layers: int = 4
    dropout: float = 0.1
    max_items: int = 20
    user_tokens: int = 0
    encoder: str = "token"
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if self.encoder not in ("token", "item"):
            raise ValueError(f"encoder must be 'token' or 'item', got {self.encoder!r}")
        if not self.codebook_sizes or min(self.codebook_sizes) < 1:
            raise ValueError(f"codebook_sizes must be positive, got {self.codebook_sizes}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")

    def to_dict(self) -> dict:
        return asdict(self)


class Tiger(nn.Module):
    """TIGER encoder-decoder over semantic-ID tokens.

    ``codes``: int64 (n_items, L), each item's semantic ID (cold items included:
    their IDs come from the saved codebooks, so they can be encoded and decoded).
    Histories are (B, H) item indices, right-aligned, ``-1`` = padding.
    """

    def __init__(self, cfg: TigerConfig, codes: np.ndarray | Tensor) -> None:
        super().__init__()
        codes = torch.as_tensor(np.asarray(codes), dtype=torch.long)
        sizes = torch.tensor(cfg.codebook_sizes)
        if codes.ndim != 2 or codes.shape[1] != len(cfg.codebook_sizes):
            raise ValueError(
                f"codes must be (n_items, {len(cfg.codebook_sizes)}), got {tuple(codes.shape)}"
            )
        if (codes < 0).any() or (codes >= sizes).any():
            raise ValueError("codes out of range of codebook_sizes")
        self.cfg = cfg
        self.levels = len(cfg.codebook_sizes)
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)[:-1]])
        self.n_item_tokens = int(sizes.sum())
        self.user_token0 = N_SPECIAL + self.n_item_tokens
        vocab = self.user_token0 + cfg.user_tokens
        # Row 0 is padding (history index -1 + 1), item i is row i + 1.
        item_tokens = torch.cat([torch.full((1, self.levels), PAD), codes + offsets + N_SPECIAL])
        self.register_buffer("item_tokens", item_tokens, persistent=False)
        self.register_buffer("offsets", offsets, persistent=False)
        # Additive mask restricting decoder step l to level l's token range.
        level_of = torch.repeat_interleave(torch.arange(self.levels), sizes)
        level_mask = torch.where(
            level_of[None, :] == torch.arange(self.levels)[:, None], 0.0, float("-inf")
        )
        self.register_buffer("level_mask", level_mask, persistent=False)

        d = cfg.d_model
        self.embed = nn.Embedding(vocab, d, padding_idx=PAD)
        enc_positions = cfg.max_items * (self.levels if cfg.encoder == "token" else 1) + 1
        self.enc_pos = nn.Embedding(enc_positions, d)
        self.dec_pos = nn.Embedding(self.levels, d)
        block = (d, cfg.n_heads, cfg.head_dim, cfg.d_ff, cfg.dropout)
        self.encoder = nn.ModuleList(EncoderLayer(*block) for _ in range(cfg.enc_layers))
        self.decoder = nn.ModuleList(DecoderLayer(*block) for _ in range(cfg.dec_layers))
        self.enc_norm, self.dec_norm = nn.LayerNorm(d), nn.LayerNorm(d)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(d, self.n_item_tokens, bias=False)
        for table in (self.embed, self.enc_pos, self.dec_pos):
            nn.init.normal_(table.weight, std=EMBED_STD)
        with torch.no_grad():
            self.embed.weight[PAD].zero_()

    # ------------------------------------------------------------ encoder

    def encode(self, hist: Tensor, user_tok: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Encode histories (B, H) -> memory (B, S, d) and its mask (B, 1, 1, S), True = real."""
        toks = self.item_tokens[hist + 1]  # (B, H, L)
        if self.cfg.encoder == "token":
            x_tok = toks.flatten(1)  # (B, H*L), oldest first
            real = x_tok != PAD
            x = self.embed(x_tok)
        else:
            real = hist >= 0
            x = self.embed(toks).sum(2)
        s = x.shape[1]
        pos = torch.arange(s - 1, -1, -1, device=x.device)  # 0 = most recent
        x = x + self.enc_pos(pos)
        if self.cfg.user_tokens:
            if user_tok is None:
                raise ValueError(
                    "this model was built with user_tokens > 0: pass the hashed user buckets"
                )
            u = self.embed(self.user_token0 + user_tok)[:, None] + self.enc_pos.weight[-1]
            x = torch.cat([u, x], 1)
            real = torch.cat([torch.ones_like(real[:, :1]), real], 1)
        x = self.drop(x)
        mask = real[:, None, None, :]
        for layer in self.encoder:
            x = layer(x, mask=mask)
        return self.enc_norm(x), mask

    # ------------------------------------------------------------ decoder

    def _decode(
        self, tokens: Tensor, start: int, memory: Tensor, mask: Tensor, past: list[KVCache] | None
    ) -> tuple[Tensor, list[KVCache]]:
        """Run decoder tokens (B*G, T) at positions start.. ; returns hidden states and caches."""
        pos = torch.arange(start, start + tokens.shape[1], device=tokens.device)
        y = self.drop(self.embed(tokens) + self.dec_pos(pos))
        caches = []
        for i, layer in enumerate(self.decoder):
            y, cache = layer(y, memory, mask, None if past is None else past[i])
            caches.append(cache)
        return self.dec_norm(y), caches

    def forward(self, hist: Tensor, target_codes: Tensor, user_tok: Tensor | None = None) -> Tensor:
        """Teacher-forced logits (B, L, n_item_tokens), each level restricted to its own range."""
        memory, mask = self.encode(hist, user_tok)
        target_tokens = target_codes + self.offsets + N_SPECIAL
        bos = torch.full_like(target_tokens[:, :1], BOS)
        y, _ = self._decode(torch.cat([bos, target_tokens[:, :-1]], 1), 0, memory, mask, None)
        return self.head(y) + self.level_mask

    def loss(self, hist: Tensor, target_items: Tensor, user_tok: Tensor | None = None) -> Tensor:
        """Mean cross-entropy over the L code tokens of each target item."""
        codes = self.item_tokens[target_items + 1] - N_SPECIAL - self.offsets  # (B, L)
        logits = self.forward(hist, codes, user_tok)
        # Smoothing spreads mass over the step's own level only: other levels' logits are -inf.
        logits = logits.flatten(0, 1)
        target = (codes + self.offsets).flatten()
        loss = F.cross_entropy(logits, target)
        if self.cfg.label_smoothing:
            logp = F.log_softmax(logits, -1)
            own_level = torch.isfinite(logits)
            uniform = -(logp.masked_fill(~own_level, 0).sum(-1) / own_level.sum(-1)).mean()
            loss = (1 - self.cfg.label_smoothing) * loss + self.cfg.label_smoothing * uniform
        return loss

    def id_log_probs(self, hist: Tensor, items: Tensor, user_tok: Tensor | None = None) -> Tensor:
        """Teacher-forced log-probability of whole semantic IDs: ``items`` (B, C) candidate items
        per history (-1 = none, scored -inf) -> (B, C), each code's log-probability given the
        history and the codes before it, summed over the L levels: the score beam search gives
        the same ID (the trie only masks other IDs, it does not renormalise).

        The encoder runs once per history and the C candidates share its memory (the decoder's
        cross-attention groups them per user), so re-scoring a list costs C short decodes."""
        b, c = items.shape
        memory, mask = self.encode(hist, user_tok)
        tokens = self.item_tokens[items + 1]  # (B, C, L), PAD tokens for -1
        inputs = torch.cat([torch.full_like(tokens[..., :1], BOS), tokens[..., :-1]], -1)
        y, _ = self._decode(inputs.flatten(0, 1), 0, memory, mask, None)
        codes = (tokens - N_SPECIAL - self.offsets).clamp(min=0).flatten(0, 1)
        total = torch.zeros(b * c, device=y.device)
        for level in range(self.levels):
            logp = self.level_log_probs(y[:, level], level)
            total = total + logp.gather(1, codes[:, level : level + 1]).squeeze(1)
        return total.view(b, c).masked_fill(items < 0, float("-inf"))

    def level_log_probs(self, hidden: Tensor, level: int) -> Tensor:
        """Log-probabilities over level ``level``'s codes from decoder states (..., d)."""
        lo = int(self.offsets[level])
        w = self.head.weight[lo : lo + self.cfg.codebook_sizes[level]]
        return F.log_softmax(hidden @ w.T, dim=-1)


class TigerStepper:
    """Adapts a :class:`Tiger` to :func:`src.sequential.beam_search.beam_search`'s step function.

    Holds the encoder memory and the decoder's key/value caches, reordering the
    caches to follow the surviving beams, so each step feeds one new token.
    """

    def __init__(self, model: Tiger, hist: Tensor, user_tok: Tensor | None = None) -> None:
        self.model = model
        self.memory, self.mask = model.encode(hist, user_tok)
        self.past: list[KVCache] | None = None

    def __call__(self, level: int, prefix: Tensor, parents: Tensor | None) -> Tensor:
        """prefix: (B, G, level) codes so far; parents: (B, G) beam each came from."""
        m = self.model
        b, g = prefix.shape[:2]
        if level == 0:
            tok = torch.full((b * g, 1), BOS, dtype=torch.long, device=prefix.device)
        else:
            tok = (prefix[:, :, -1] + m.offsets[level - 1] + N_SPECIAL).reshape(b * g, 1)
        if self.past is not None and parents is not None:
            g_prev = self.past[0][0].shape[0] // b
            flat = (parents + torch.arange(b, device=parents.device)[:, None] * g_prev).flatten()
            self.past = [(k[flat], v[flat]) for k, v in self.past]
        y, self.past = m._decode(tok, level, self.memory, self.mask, self.past)
        return m.level_log_probs(y[:, -1], level).view(b, g, -1)
