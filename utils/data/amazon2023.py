"""The Amazon Reviews 2023 layout (McAuley Lab): ``<Category>.jsonl[.gz]`` reviews and
``meta_<Category>.jsonl[.gz]`` item metadata, read directly.

Most recent semantic-ID papers start from these files, so their columns are a preset of the
generic path rather than a loader of their own: reviews give ``user_id``, ``parent_asin`` (the
item: variants of one product share it), ``timestamp`` in milliseconds and a 1-5 star
``rating``; the metadata's ``title``, ``store`` (the brand), ``main_category`` + ``categories``,
``description`` + ``features`` (lists of sentences, joined) and ``price`` become the item text.
"""

from __future__ import annotations

from utils.data.custom import InteractionColumns

REVIEW_COLUMNS = InteractionColumns(
    user="user_id", item="parent_asin", time="timestamp", rating="rating", time_unit="ms"
)
META_ITEM_COLUMN = "parent_asin"
META_TEXT_COLUMNS = (
    "title=title,brand=store,categories=main_category+categories,"
    "description=description+features,price=price"
)
