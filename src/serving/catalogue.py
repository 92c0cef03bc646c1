"""What a user types, resolved against the catalogue: original user IDs, items given by ID or by
title, and the rows a person reads (item ID, title, semantic ID).

Titles are matched exactly first, then as a case-insensitive part of one title; a text that
matches several titles is refused with a few of them, never resolved by a guess.
"""

from __future__ import annotations

import difflib

import numpy as np

from utils.data.dataset import Dataset
from utils.runtime.errors import DataError

SHOWN = 5  # candidates listed when a title is ambiguous


def user_index(ds: Dataset, user_id: str) -> int:
    """The index of an original user ID (a reviewerID, a MovieLens user id)."""
    hits = np.flatnonzero(ds.user_ids == str(user_id))
    if not len(hits):
        raise DataError(
            f"user {user_id!r} is not in the {ds.name} data set (its user IDs look like "
            f"{', '.join(map(str, ds.user_ids[:3]))})"
        )
    return int(hits[0])


def user_history(ds: Dataset, user: int) -> np.ndarray:
    """Every item of the user, oldest first: the history a recommendation continues."""
    return ds.items[ds.user_offsets[user] : ds.user_offsets[user + 1]]


def _described(ds: Dataset, items: np.ndarray) -> str:
    """A few items as 'ID (title)', titles cut to 40 characters."""
    return "; ".join(f"{ds.item_ids[i]} ({str(ds.meta.title[i])[:40]})" for i in items[:SHOWN])


def item_index(ds: Dataset, query: str) -> int:
    """The item a text names: an item ID, an exact title, or a case-insensitive part of exactly
    one title."""
    by_id = np.flatnonzero(ds.item_ids == query)
    if len(by_id):
        return int(by_id[0])
    titles = ds.meta.title.astype(str)
    for hits in (
        np.flatnonzero(titles == query),
        np.flatnonzero(np.char.find(np.char.lower(titles), query.lower()) >= 0),
    ):
        if len(hits) == 1:
            return int(hits[0])
        if len(hits) > 1:
            raise DataError(
                f"{query!r} matches {len(hits)} item titles, e.g. {_described(ds, hits)}; give "
                "an item ID or more of the title"
            )
    near = difflib.get_close_matches(query.lower(), np.char.lower(titles).tolist(), n=3, cutoff=0.6)
    rows = [int(np.flatnonzero(np.char.lower(titles) == t)[0]) for t in near]
    hint = f"; did you mean {_described(ds, np.array(rows))}?" if rows else ""
    raise DataError(f"{query!r} is no item ID or title of the {ds.name} data set{hint}")


def semantic_id_text(codes: np.ndarray | None, item: int) -> str:
    """An item's semantic ID as people read it ('12-201-7-0'), '-' without IDs."""
    return "-" if codes is None else "-".join(str(int(c)) for c in codes[item])


def item_row(ds: Dataset, codes: np.ndarray | None, item: int) -> dict[str, str]:
    """What a person reads of an item: its original ID, title (or, without one, its brand and
    categories, else '(no title)') and semantic ID."""
    known = [p for p in (str(ds.meta.brand[item]), *ds.meta.categories[item]) if p]
    title = str(ds.meta.title[item]) or ", ".join(known[:3])
    return {
        "item_id": str(ds.item_ids[item]),
        "title": title or "(no title)",
        "semantic_id": semantic_id_text(codes, item),
    }
