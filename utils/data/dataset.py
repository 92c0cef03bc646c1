"""The in-memory data set every stage works on: interactions as numpy arrays plus item metadata.

Loading a folder into it is :func:`utils.data.load.load_dataset`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class ItemMeta:
    """Item metadata, one entry per item index; absent text is '' and absent numbers are nan."""

    title: np.ndarray
    brand: np.ndarray
    categories: list[list[str]]
    description: np.ndarray
    price: np.ndarray
    sales_rank: np.ndarray
    year: np.ndarray

    @classmethod
    def empty(cls, n: int) -> ItemMeta:
        def strings() -> np.ndarray:
            return np.full(n, "", dtype=object)

        return cls(
            strings(),
            strings(),
            [[] for _ in range(n)],
            strings(),
            np.full(n, np.nan),
            np.full(n, np.nan),
            np.full(n, np.nan),
        )

    def has_text(self) -> np.ndarray:
        """True for items with any text at all (title, brand, categories or description)."""
        cats = np.array([bool(c) for c in self.categories], dtype=bool)
        return (self.title != "") | (self.brand != "") | (self.description != "") | cats


@dataclass
class Dataset:
    """Interactions as parallel arrays sorted by (user, chronological position), plus item
    metadata."""

    name: str
    kind: str
    user_ids: np.ndarray
    item_ids: np.ndarray
    users: np.ndarray
    items: np.ndarray
    positions: np.ndarray
    timestamps: np.ndarray | None
    ratings: np.ndarray | None
    user_offsets: np.ndarray
    meta: ItemMeta
    checksum: str

    @property
    def has_ratings(self) -> bool:
        return self.ratings is not None

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        return len(self.users)

    def sequence(self, user: int) -> np.ndarray:
        """Item indices of ``user`` in chronological order."""
        return self.items[self.user_offsets[user] : self.user_offsets[user + 1]]

    def item_counts(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Interactions per item, over all rows or over the given interaction indices."""
        items = self.items if rows is None else self.items[rows]
        return np.bincount(items, minlength=self.n_items)

    def user_counts(self, rows: np.ndarray | None = None) -> np.ndarray:
        users = self.users if rows is None else self.users[rows]
        return np.bincount(users, minlength=self.n_users)

    def summary(self) -> dict[str, Any]:
        """The figures a user checks first: sizes, ratings yes/no, metadata coverage."""
        m = self.meta

        def share(mask: np.ndarray) -> float:
            return round(float(np.mean(mask)), 4) if len(mask) else 0.0

        lengths = np.diff(self.user_offsets)
        return {
            "name": self.name,
            "layout": self.kind,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": self.n_interactions,
            "has_ratings": self.has_ratings,
            "has_timestamps": self.timestamps is not None,
            "interactions_per_user": {
                "min": int(lengths.min()),
                "mean": round(float(lengths.mean()), 2),
                "max": int(lengths.max()),
            },
            "share_with_title": share(m.title != ""),
            "share_with_brand": share(m.brand != ""),
            "share_with_categories": share(np.array([bool(c) for c in m.categories])),
            "share_with_description": share(m.description != ""),
            "share_with_price": share(~np.isnan(m.price)),
            "share_with_sales_rank": share(~np.isnan(m.sales_rank)),
            "items_without_text": int((~m.has_text()).sum()),
            "checksum": self.checksum,
        }
