"""The prepared layout of a user's own catalogue, its one writer and its loader.

``prepare_data.py --dataset custom`` cleans the user's files once and writes three files that
every script then reads through :func:`utils.data.load.load_dataset`:

* ``interactions.csv``: ``user_id,item_id[,timestamp][,rating]``, already in the toolkit's order
  (by user index, then chronologically), so a load is a plain read;
* ``items.jsonl``: one JSON object per item, in item-index order, with the ItemMeta fields;
* ``dataset.json``: the manifest (format, sources and their checksums, the columns and rules
  used, the counts), for humans and for the loader's checks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from utils.data.dataset import Dataset, ItemMeta
from utils.data.parsing import offsets_and_positions
from utils.data.specs import CUSTOM_FILES
from utils.data.tabular import first_bad_row, iter_chunks
from utils.runtime.errors import DataError
from utils.runtime.io import atomic_write_json, read_json, sha256_files

FORMAT = "semantic-ids-custom/1"
INTERACTIONS, ITEMS, MANIFEST = CUSTOM_FILES
_FIX = "re-run prepare_data.py --dataset custom to write it again"


def write_canonical(
    folder: Path,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    users: np.ndarray,
    items: np.ndarray,
    times: np.ndarray | None,
    ratings: np.ndarray | None,
    meta: ItemMeta,
    manifest: dict[str, Any],
) -> None:
    """Write the three files into ``folder`` (a staging folder: the caller swaps it in)."""
    frame = pd.DataFrame({"user_id": user_ids[users], "item_id": item_ids[items]})
    if times is not None:
        frame["timestamp"] = times
    if ratings is not None:
        frame["rating"] = ratings
    frame.to_csv(folder / INTERACTIONS, index=False, chunksize=1_000_000, float_format="%g")
    with open(folder / ITEMS, "w", encoding="utf-8") as f:
        for i, item_id in enumerate(item_ids):
            record = {
                "item_id": str(item_id),
                "title": meta.title[i],
                "brand": meta.brand[i],
                "categories": meta.categories[i],
                "description": meta.description[i],
                "price": _number(meta.price[i]),
                "sales_rank": _number(meta.sales_rank[i]),
                "year": _number(meta.year[i]),
            }
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    header = {"timestamp": times is not None, "rating": ratings is not None}
    atomic_write_json(folder / MANIFEST, {"format": FORMAT, "columns": header, **manifest})


def _number(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def _read_items(path: Path) -> tuple[np.ndarray, ItemMeta]:
    records = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict) or not isinstance(rec.get("item_id"), str):
                    raise ValueError("not an object with an 'item_id' string")
            except (ValueError, RecursionError) as exc:
                raise DataError(f"{path}:{lineno}: malformed item line ({exc}); {_FIX}") from exc
            records.append(rec)
    if not records:
        raise DataError(f"{path}: no items; {_FIX}")
    ids = np.array([r["item_id"] for r in records], dtype=object)
    if len(set(ids)) != len(ids):
        raise DataError(f"{path}: an item_id is listed twice; {_FIX}")
    meta = ItemMeta.empty(len(records))
    for i, r in enumerate(records):
        for field in ("title", "brand", "description"):
            getattr(meta, field)[i] = str(r.get(field) or "")
        meta.categories[i] = [str(c) for c in r.get("categories") or []]
        for field in ("price", "sales_rank", "year"):
            value = r.get(field)
            getattr(meta, field)[i] = np.nan if value is None else float(value)
    return ids, meta


def load_canonical(data_dir: Path) -> Dataset:
    """Load a prepared custom folder; anything that breaks the layout's promises is refused."""
    manifest = read_json(data_dir / MANIFEST, _FIX)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{data_dir / MANIFEST}: not a {FORMAT} manifest; {_FIX}")
    item_ids, meta = _read_items(data_dir / ITEMS)
    item_index = pd.Index(item_ids)
    path = data_dir / INTERACTIONS
    has = manifest.get("columns", {})
    columns = ["user_id", "item_id"] + [c for c in ("timestamp", "rating") if has.get(c)]
    user_parts, item_parts, times, ratings, user_ids = [], [], [], [], []
    n_users = 0
    for _, frame in iter_chunks(path, "csv", columns):
        codes, uniques = pd.factorize(frame["user_id"])
        # users come in index order: a chunk may continue the previous chunk's last user
        cont = bool(user_ids) and uniques[0] == user_ids[-1]
        user_ids.extend(uniques[1:] if cont else uniques)
        user_parts.append(codes + n_users - cont)
        n_users = len(user_ids)
        items = item_index.get_indexer(frame["item_id"])
        first_bad_row(path, pd.Series(items < 0, frame.index), "item_id", "unknown item", _FIX)
        item_parts.append(items)
        for column, parts, dtype in (("timestamp", times, np.int64), ("rating", ratings, None)):
            if has.get(column):
                values = pd.to_numeric(frame[column], errors="coerce")
                first_bad_row(path, values.isna(), column, "not a number", _FIX)
                parts.append(values.to_numpy(dtype=dtype or np.float32))
    users = np.concatenate(user_parts).astype(np.int64)
    if len(set(user_ids)) != len(user_ids) or (np.diff(users) < 0).any():
        raise DataError(f"{path}: a user's rows are not contiguous; {_FIX}")
    lengths = np.bincount(users, minlength=len(user_ids))
    offsets, positions = offsets_and_positions(lengths)
    return Dataset(
        name=data_dir.resolve().name,
        kind="custom",
        user_ids=np.array(user_ids, dtype=object),
        item_ids=item_ids,
        users=users,
        items=np.concatenate(item_parts).astype(np.int64),
        positions=positions,
        timestamps=np.concatenate(times) if times else None,
        ratings=np.concatenate(ratings) if ratings else None,
        user_offsets=offsets,
        meta=meta,
        checksum=sha256_files([path, data_dir / ITEMS]),
    )
