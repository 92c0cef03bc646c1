"""Beam search over semantic IDs, constrained by a prefix trie of the catalogue.

The trie is stored as one dense table per level: ``children[l][p, c]`` is the
id of the prefix reached from prefix ``p`` by code ``c`` (or -1 when no item
has that prefix); at the last level the "child" is the item index itself. So
masking a batch of beams is one gather, ``children[l][prefix]``, with no
per-beam Python. Prefix ids at level l number at most ``n_items``, so the
tables hold at most ``n_items * max(codebook_sizes)`` entries per level.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

# step(level, prefix_codes (B, G, level), parents (B, G) or None) -> log-probs (B, G, size_level)
StepFn = Callable[[int, Tensor, "Tensor | None"], Tensor]


@dataclass
class PrefixTrie:
    """Dense per-level child tables of the catalogue's semantic IDs."""

    children: list[Tensor]
    codebook_sizes: list[int]

    @property
    def n_items(self) -> int:
        return int((self.children[-1] >= 0).sum())

    def to(self, device: str | torch.device) -> PrefixTrie:
        return PrefixTrie([c.to(device) for c in self.children], self.codebook_sizes)

    def _renamed(self, items: np.ndarray) -> PrefixTrie:
        """The same trie with leaf i renamed to ``items[i]``."""
        leaves = self.children[-1]
        renamed = torch.where(leaves >= 0, torch.from_numpy(items)[leaves.clamp(min=0)], -1)
        return PrefixTrie([*self.children[:-1], renamed], self.codebook_sizes)


def build_trie(
    codes: np.ndarray, codebook_sizes: list[int], items: np.ndarray | None = None
) -> PrefixTrie:
    """Build the trie of ``codes`` (n_items, L); row i's ID decodes to ``items[i]`` (default i).

    ``items`` lets a trie hold part of the catalogue (the cold items, say) while
    decoding to catalogue indices. Raises ValueError when codes fall outside
    ``codebook_sizes`` or two items share an ID (a decoded ID must name exactly one item).
    """
    if items is not None:
        return build_trie(np.asarray(codes)[items], codebook_sizes)._renamed(
            np.asarray(items, dtype=np.int64)
        )
    codes = np.asarray(codes, dtype=np.int64)
    n, levels = codes.shape
    if levels != len(codebook_sizes):
        raise ValueError(f"codes have {levels} levels but codebook_sizes has {len(codebook_sizes)}")
    if (codes < 0).any() or (codes >= np.asarray(codebook_sizes)).any():
        raise ValueError("codes out of range of codebook_sizes")
    n_unique = len(np.unique(codes, axis=0))
    if n_unique != n:
        raise ValueError(
            f"{n - n_unique} items share a semantic ID with another item; generate IDs with a "
            "de-duplication level (semantic_id_generator.py adds one) so every ID names one item"
        )
    parent = np.zeros(n, dtype=np.int64)  # every item starts at the root prefix 0
    n_parents = 1
    children = []
    for level, size in enumerate(codebook_sizes):
        if level == levels - 1:
            child, n_child = np.arange(n), n
        else:
            _, child = np.unique(codes[:, : level + 1], axis=0, return_inverse=True)
            child = child.reshape(-1)
            n_child = int(child.max()) + 1
        table = np.full((n_parents, size), -1, dtype=np.int64)
        table[parent, codes[:, level]] = child
        children.append(torch.from_numpy(table))
        parent, n_parents = child, n_child
    return PrefixTrie(children, list(codebook_sizes))


@dataclass
class BeamResult:
    """Decoded hypotheses, best first: ``items`` (B, beam) item index or -1 for an invalid
    or empty hypothesis; ``codes`` (B, beam, L); ``scores`` (B, beam) summed log-probs."""

    items: Tensor
    codes: Tensor
    scores: Tensor


@torch.no_grad()
def beam_search(
    step: StepFn,
    batch: int,
    trie: PrefixTrie,
    beam: int,
    constrained: bool = True,
    device: str | torch.device = "cpu",
    banned: Tensor | None = None,
) -> BeamResult:
    """Decode the ``beam`` most likely IDs for each of ``batch`` users at once.

    constrained=True masks every code that leaves the trie, so each finished
    hypothesis is a catalogue item (fewer than ``beam`` only if the catalogue
    is smaller; the remainder get item -1 and score -inf). constrained=False
    decodes freely; hypotheses that are not catalogue IDs get item -1.

    ``banned`` (batch, n_items) bool removes items inside the decoding: the last level's
    codes that would complete a banned item are masked, so the beam is filled with the
    best-scoring allowed items. The list is then exactly the unbanned list with the banned
    items taken out and the next candidates moved up, and never runs short of ``beam``
    items while the catalogue has enough allowed ones.
    """
    scores = torch.zeros(batch, 1, device=device)
    prefix = torch.zeros(batch, 1, dtype=torch.long, device=device)  # trie node, -1 = left the trie
    codes = torch.zeros(batch, 1, 0, dtype=torch.long, device=device)
    parents = None
    for level, table in enumerate(trie.children):
        logp = step(level, codes, parents)  # (B, G, V)
        g, v = logp.shape[1:]
        child = table[prefix.clamp(min=0)]
        child = torch.where(prefix[..., None] >= 0, child, -1)
        if constrained:
            logp = logp.masked_fill(child < 0, float("-inf"))
        if banned is not None and level == len(trie.children) - 1:
            leaf = banned.gather(1, child.clamp(min=0).view(batch, -1)).view(child.shape)
            logp = logp.masked_fill(leaf & (child >= 0), float("-inf"))
        cand = (scores[..., None] + logp).view(batch, g * v)
        scores, idx = cand.topk(min(beam, g * v), dim=1)
        parents, tok = idx // v, idx % v
        prefix = child.view(batch, -1).gather(1, idx)
        codes = torch.cat(
            [codes.gather(1, parents[..., None].expand(-1, -1, level)), tok[..., None]], 2
        )
    items = torch.where(torch.isfinite(scores), prefix, -1)
    return BeamResult(items, codes, scores)


def merge_cold_share(warm: BeamResult, cold: BeamResult, share: float, k: int = 10) -> Tensor:
    """One ranked list (B, beam) from a beam over warm items and one over cold items.

    The paper's cold-start mechanism (Rajput et al. 2023, Sec. 4.3): a share of
    the top-``k`` goes to cold items. The top-``k`` holds the best
    ``m = ceil(share * k)`` cold hypotheses and the best ``k - m`` warm ones,
    ordered by generation score; the rest of the warm beam follows. Without the
    reserved places, cold items would almost never enter the list: the model
    never generated their IDs as training targets, so they lose every
    comparison by score. ``share`` 0 returns the warm beam.
    """
    m = min(math.ceil(share * k - 1e-9), cold.items.shape[1], k)
    if m == 0:
        return warm.items
    head_items = torch.cat([warm.items[:, : k - m], cold.items[:, :m]], 1)
    head_scores = torch.cat([warm.scores[:, : k - m], cold.scores[:, :m]], 1)
    order = torch.sort(head_scores, dim=1, descending=True, stable=True).indices
    return torch.cat([head_items.gather(1, order), warm.items[:, k - m :]], 1)[
        :, : warm.items.shape[1]
    ]
