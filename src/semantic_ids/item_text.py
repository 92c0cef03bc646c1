"""The text a sentence encoder sees for each item, built from the dataset's ItemMeta.

One line per item of ``Label: value.`` parts, in a configurable field order.
The loader has already HTML-unescaped and trimmed every string, so nothing is
unescaped here again. Descriptions are cut by tokenizer tokens (not bytes or
characters), so the limit means the same thing as the encoder's own input
limit; by default they come last, so that the encoder's truncation can only
shorten the description, never drop a later field. Items with no text at all
get a fallback text naming their original ID (distinct per item, so they do
not all collapse onto one semantic ID); they are counted and reported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from utils.data.dataset import ItemMeta

# (descriptions, max_tokens) -> descriptions cut to at most max_tokens tokens each
Truncate = Callable[[list[str], int], list[str]]

FIELDS = ("title", "brand", "categories", "year", "price", "sales_rank", "description")
DEFAULT_FIELDS = FIELDS
LABELS = {
    "title": "Title",
    "brand": "Brand",
    "categories": "Categories",
    "year": "Year",
    "price": "Price",
    "sales_rank": "Sales rank",
    "description": "Description",
}
DEFAULT_MAX_DESCRIPTION_TOKENS = 128
FALLBACK_TEMPLATE = "Item {item_id}"


@dataclass
class ItemTexts:
    texts: list[str]
    fallback: np.ndarray  # bool per item: True where no metadata field had a value

    @property
    def n_fallback(self) -> int:
        return int(self.fallback.sum())


def parse_fields(spec: str | Sequence[str]) -> tuple[str, ...]:
    """Validate a field list ('title,brand,...' or a sequence); order is kept, repeats refused."""
    names = (
        [f.strip() for f in spec.split(",")]
        if isinstance(spec, str)
        else [str(f).strip() for f in spec]
    )
    names = [n for n in names if n]
    unknown = [n for n in names if n not in LABELS]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(
            f"--text-fields {','.join(names)!r}: choose distinct names among {', '.join(FIELDS)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    return tuple(names)


def token_truncator(tokenizer) -> Truncate:
    """Cut texts to a token budget using a Hugging Face fast tokenizer's character offsets.

    Cutting the original string at the last kept token's end keeps its
    casing and spacing (decoding tokens back would lowercase and re-space it).
    """

    def truncate(texts: list[str], max_tokens: int) -> list[str]:
        if not texts:
            return []
        enc = tokenizer(
            texts,
            add_special_tokens=False,
            truncation=True,
            max_length=max_tokens,
            return_offsets_mapping=True,
        )
        return [
            t[: offsets[-1][1]] if offsets else ""
            for t, offsets in zip(texts, enc["offset_mapping"])
        ]

    return truncate


def _field_values(meta: ItemMeta, field: str) -> list[str]:
    """The field as display strings, '' where absent."""
    if field in ("title", "brand", "description"):
        return [str(v) for v in getattr(meta, field)]
    if field == "categories":
        return [", ".join(c) for c in meta.categories]
    values = getattr(meta, field)
    if field == "price":
        return ["" if np.isnan(v) else f"${v:.2f}" for v in values]
    return ["" if np.isnan(v) else str(int(v)) for v in values]  # year, sales_rank: whole numbers


def build_item_texts(
    meta: ItemMeta,
    item_ids: Sequence[str],
    fields: Sequence[str] = DEFAULT_FIELDS,
    max_description_tokens: int = DEFAULT_MAX_DESCRIPTION_TOKENS,
    truncate: Truncate | None = None,
    fallback: str = FALLBACK_TEMPLATE,
) -> ItemTexts:
    """One text per item index; `truncate` is required when a description must be shortened.

    ``max_description_tokens=0`` keeps descriptions whole.
    """
    n = len(item_ids)
    fields = parse_fields(fields)
    columns = {f: _field_values(meta, f) for f in fields}
    if "description" in columns and max_description_tokens > 0:
        desc = columns["description"]
        nonempty = [i for i, d in enumerate(desc) if d]
        if nonempty:
            if truncate is None:
                raise ValueError(
                    "descriptions need a tokenizer to be truncated by tokens; pass truncate="
                )
            for i, cut in zip(
                nonempty, truncate([desc[i] for i in nonempty], max_description_tokens)
            ):
                desc[i] = cut
    texts: list[str] = []
    fell_back = np.zeros(n, dtype=bool)
    for i in range(n):
        parts = [f"{LABELS[f]}: {columns[f][i]}" for f in fields if columns[f][i]]
        if parts:
            texts.append(" ".join(p if p.endswith((".", "!", "?")) else p + "." for p in parts))
        else:
            texts.append(fallback.format(item_id=item_ids[i]))
            fell_back[i] = True
    return ItemTexts(texts, fell_back)
