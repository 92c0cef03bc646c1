"""New items for recommend.py: their fields (from flags or a JSON-lines file) -> their text, as
the catalogue's was built -> their semantic ID with the saved codebooks
(:mod:`src.semantic_ids.new_items`), shown with the catalogue items that share its prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from src.semantic_ids.new_items import NEW_ID_PREFIX, SavedEncoder, fields_text, read_new_items
from src.serving.catalogue import item_row
from utils.data.dataset import Dataset
from utils.data.semantic import load_semantic_ids
from utils.runtime.errors import DataError


def parse_fields(tokens: list[str], where: str) -> dict[str, str]:
    """``['title=...', 'brand=...']`` as a record; a token without '=' is refused."""
    record = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep or not key.strip():
            raise DataError(f"{where}: {token!r} is not FIELD=VALUE (e.g. 'title=Rose serum')")
        record[key.strip()] = value.strip()
    return record


def describe_new_items(
    ds: Dataset,
    ids_dir: Path,
    flag_items: list[list[str]],
    file: str | None,
    cache_dir: str | Path,
    device: str,
) -> list[dict[str, Any]]:
    """Each new item's ID, text and semantic ID, and the catalogue items sharing its longest
    prefix (deepest first) with their titles."""
    load_semantic_ids(ids_dir, ds)  # refused unless the IDs are this data set's
    enc = SavedEncoder.load(ids_dir)
    ids, texts = [], []
    for n, tokens in enumerate(flag_items, start=1):
        record = parse_fields(tokens, f"--new-item #{n}")
        ids.append(record.pop("id", f"{NEW_ID_PREFIX}{n}"))
        texts.append(fields_text(record, enc.cfg, f"--new-item #{n}"))
    if file is not None:
        more_ids, more_texts, _ = read_new_items(Path(file), enc.cfg)
        ids, texts = ids + more_ids, texts + list(more_texts or [])
    if len(set(ids)) < len(ids):
        raise DataError(f"new items: IDs repeat ({', '.join(ids)}); give each item its own id=")
    result = enc.encode(ids, texts, None, cache_dir, device)
    index = {item: i for i, item in enumerate(ds.item_ids)}
    codes = {item: row for item, row in zip(enc.item_ids, enc.codes)}
    return [
        {
            "id": item,
            "text": result["texts"][item],
            "semantic_id": "-".join(map(str, result["items"][item])),
            "neighbours": [
                {
                    "shared_levels": near["shared_levels"],
                    **item_row(ds, None, index[near["item"]]),
                    "semantic_id": "-".join(map(str, codes[near["item"]])),
                }
                for near in result["neighbours"][item]
            ],
        }
        for item in ids
    ]
