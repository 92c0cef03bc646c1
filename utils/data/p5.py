"""The P5 Amazon layout (Beauty, Sports, Toys): ``sequential_data.txt``, ``datamaps.json``,
``meta.json.gz`` and, when present, ``rating_splits_augmented.pkl`` (star ratings and review
times).

Every failure raises :class:`DataError` with the file, the line and the fix.
"""

from __future__ import annotations

import ast
import gzip
import json
import logging
import re
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from utils.data.dataset import Dataset, ItemMeta
from utils.data.parsing import (
    MAX_BAD_LINE_FRACTION,
    RATING_RANGE,
    clean_text,
    offsets_and_positions,
    parse_lines,
    parse_rating,
    parse_time,
    read_text,
    require_files,
)
from utils.data.specs import P5_FILES, P5_RATINGS
from utils.runtime.errors import DataError
from utils.runtime.io import parse_json, sha256_files
from utils.runtime.unpickle import UnsafePickleError, restricted_pickle_load

log = logging.getLogger(__name__)

# P5's ids are ASCII digit strings ("²" is a digit to str.isdigit, but no int).
_NUMERIC_ID = re.compile(r"[0-9]{1,18}")
# The metadata is decompressed whole; a real Amazon dump is a few hundred MB, a gzip bomb more.
MAX_META_BYTES = 2 << 30


def _read_meta_lines(path: Path) -> list[str]:
    try:
        with gzip.open(path, "rb") as f:
            data = f.read(MAX_META_BYTES + 1)
        if len(data) > MAX_META_BYTES:
            raise DataError(
                f"{path}: decompresses to more than {MAX_META_BYTES >> 20} MiB, far beyond any "
                "real item metadata (a gzip bomb?); re-run prepare_data.py to fetch the original."
            )
        return data.decode("utf-8").splitlines()
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise DataError(
            f"{path}: the gzip file is truncated or corrupt ({exc}); "
            "delete it and re-run prepare_data.py to fetch it again."
        ) from exc
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text ({exc}); re-run prepare_data.py to fetch the original file."
        ) from exc


def _parse_meta_line(line: str) -> dict[str, Any]:
    """A metadata line is JSON or (as in the raw Amazon 2014 dumps) a Python literal; never
    eval'd."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        record = ast.literal_eval(line)
    if not isinstance(record, dict) or not isinstance(record.get("asin"), str):
        raise ValueError("not a metadata record with an 'asin' string")
    return record


def _flatten_categories(raw: Any) -> list[str]:
    """Amazon categories are a list of paths; keep each name once, in file order."""
    out: list[str] = []
    seen: set[str] = set()
    stack = raw if isinstance(raw, list) else []
    for path in stack:
        for name in path if isinstance(path, list) else [path]:
            name = clean_text(name)
            if name and name not in seen:
                seen.add(name)
                out.append(name)
    return out


def _to_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _sales_rank(value: Any) -> float:
    if isinstance(value, dict) and value:
        return _to_float(next(iter(value.values())))
    return _to_float(value)


def _build_p5_meta(path: Path, asin_to_index: dict[str, int]) -> ItemMeta:
    meta = ItemMeta.empty(len(asin_to_index))
    unknown = 0
    for _, rec in parse_lines(
        path, _read_meta_lines(path), _parse_meta_line, "one JSON or Python-literal dict per line"
    ):
        i = asin_to_index.get(rec["asin"])
        if i is None:
            unknown += 1
            continue
        meta.title[i] = clean_text(rec.get("title"))
        meta.brand[i] = clean_text(rec.get("brand"))
        meta.description[i] = clean_text(rec.get("description"))
        meta.categories[i] = _flatten_categories(rec.get("categories"))
        meta.price[i] = _to_float(rec.get("price"))
        meta.sales_rank[i] = _sales_rank(rec.get("salesRank"))
    if unknown:
        log.info(
            "%s: %d metadata lines describe items outside the catalogue (ignored)", path, unknown
        )
    return meta


def _load_datamaps(path: Path) -> dict[str, dict[str, str]]:
    maps = parse_json(read_text(path), path, "re-run prepare_data.py to fetch it again.")
    if not isinstance(maps, dict):
        raise DataError(
            f"{path}: expected a JSON object with 'user2id' and 'item2id', got a "
            f"{type(maps).__name__}; this is not P5's datamaps.json. Re-run prepare_data.py."
        )
    for key in ("user2id", "item2id"):
        if not isinstance(maps.get(key), dict):
            raise DataError(
                f"{path}: the '{key}' map is missing; this is not P5's datamaps.json. "
                "Re-run prepare_data.py."
            )
        bad = [
            k for k, v in maps[key].items() if not (isinstance(v, str) and _NUMERIC_ID.fullmatch(v))
        ]
        if bad:
            raise DataError(
                f"{path}: {len(bad)} '{key}' entries map to something other than a numeric id "
                f"string of at most 18 digits (first: {bad[0]!r}); this is not P5's datamaps.json. "
                "Re-run prepare_data.py."
            )
    return maps


def _parse_sequence_line(line: str) -> tuple[str, list[str]]:
    tokens = line.split()
    if len(tokens) < 2 or not all(_NUMERIC_ID.fullmatch(t) for t in tokens):
        raise ValueError("expected 'user_id item_id item_id ...' of integers")
    return tokens[0], tokens[1:]


def load_p5(data_dir: Path) -> Dataset:
    require_files(data_dir, P5_FILES, "P5 Amazon")
    seq_path, maps_path, meta_path = (data_dir / f for f in P5_FILES)
    maps = _load_datamaps(maps_path)
    p5_user_to_orig = {v: k for k, v in maps["user2id"].items()}
    p5_item_to_orig = {v: k for k, v in maps["item2id"].items()}

    # Catalogue and users in P5's numeric id order, so indices are stable across runs.
    item_p5 = sorted(p5_item_to_orig, key=int)
    item_index = {p5: i for i, p5 in enumerate(item_p5)}
    item_ids = np.array([p5_item_to_orig[p] for p in item_p5], dtype=object)

    rows = parse_lines(
        seq_path,
        read_text(seq_path).splitlines(),
        _parse_sequence_line,
        "'user_id item_id item_id ...' per line",
    )
    unknown_users = [n for n, (u, _) in rows if u not in p5_user_to_orig]
    unknown_items = [n for n, (_, its) in rows if any(i not in item_index for i in its)]
    for label, lines, key in (
        ("user", unknown_users, "user2id"),
        ("item", unknown_items, "item2id"),
    ):
        if lines:
            raise DataError(
                f"{seq_path}: {len(lines)} line(s) use {label} ids missing from "
                f"{maps_path.name}['{key}'] (first at line {', '.join(map(str, lines[:5]))}); "
                "the two files come from different releases: "
                "re-run prepare_data.py to fetch a matching pair."
            )
    rows.sort(key=lambda r: int(r[1][0]))
    seen_users: set[str] = set()
    for n, (u, _) in rows:
        if u in seen_users:
            raise DataError(
                f"{seq_path}: user {u} appears twice (again at line {n}); "
                "each user needs exactly one line."
            )
        seen_users.add(u)
    user_ids = np.array([p5_user_to_orig[u] for _, (u, _) in rows], dtype=object)
    lengths = np.array([len(its) for _, (_, its) in rows], dtype=np.int64)
    users = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
    items = np.fromiter(
        (item_index[i] for _, (_, its) in rows for i in its),
        dtype=np.int64,
        count=int(lengths.sum()),
    )
    offsets, positions = offsets_and_positions(lengths)

    meta = _build_p5_meta(meta_path, {asin: i for i, asin in enumerate(item_ids)})
    sources = [seq_path, maps_path, meta_path]
    ratings = timestamps = None
    rating_path = data_dir / P5_RATINGS
    if rating_path.exists():
        ratings, timestamps, keep = _p5_ratings(rating_path, user_ids, item_ids, users, items)
        sources.append(rating_path)
        if not keep.all():
            users, items, ratings, timestamps = (
                users[keep],
                items[keep],
                ratings[keep],
                timestamps[keep],
            )
        # Order each user's interactions by review time; the sequence position breaks ties.
        order = np.lexsort((positions[keep], timestamps, users))
        users, items, ratings, timestamps = (
            users[order],
            items[order],
            ratings[order],
            timestamps[order],
        )
        lengths = np.bincount(users, minlength=len(user_ids))
        offsets, positions = offsets_and_positions(lengths)
    else:
        log.info(
            "%s: no %s, so this data set has no star ratings; "
            "rating tasks will use implicit feedback",
            data_dir,
            P5_RATINGS,
        )

    return Dataset(
        name=data_dir.resolve().name,
        kind="p5",
        user_ids=user_ids,
        item_ids=item_ids,
        users=users,
        items=items,
        positions=positions,
        timestamps=timestamps,
        ratings=ratings,
        user_offsets=offsets,
        meta=meta,
        checksum=sha256_files(sources),
    )


def _p5_ratings(
    path: Path, user_ids: np.ndarray, item_ids: np.ndarray, users: np.ndarray, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Attach P5's star ratings and review times to the sequence interactions.

    Returns ratings, timestamps and a keep-mask; interactions without a review
    are dropped when they are a tiny share, otherwise the load fails.
    """
    try:
        splits = restricted_pickle_load(path)
    except UnsafePickleError as exc:
        raise DataError(
            f"{path}: refused to load ({exc}); a rating pickle holds only lists of plain dicts."
        ) from exc
    except Exception as exc:  # truncated or foreign pickles raise many exception types
        raise DataError(
            f"{path}: not a readable pickle ({type(exc).__name__}: {exc}); re-run prepare_data.py."
        ) from exc
    if not isinstance(splits, dict) or not all(
        isinstance(splits.get(k), list) for k in ("train", "val", "test")
    ):
        raise DataError(
            f"{path}: expected a dict with 'train', 'val' and 'test' lists of review dicts "
            "(P5's layout)."
        )
    user_index = {u: i for i, u in enumerate(user_ids)}
    item_index = {a: i for i, a in enumerate(item_ids)}
    n_items = len(item_ids)
    lookup: dict[int, tuple[float, int]] = {}
    for part in ("train", "val", "test"):
        for k, review in enumerate(splits[part]):
            try:
                u, i = user_index[review["reviewerID"]], item_index[review["asin"]]
                lookup[u * n_items + i] = (
                    parse_rating(review["overall"]),
                    parse_time(review["unixReviewTime"]),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise DataError(
                    f"{path}: review {k} of '{part}' is malformed or names an unknown user/item "
                    f"({exc!r}); it needs reviewerID and asin matching datamaps.json, overall "
                    f"a rating in {list(RATING_RANGE)} and unixReviewTime a time in seconds."
                ) from exc
    keys = users * n_items + items
    found = np.array([int(k) in lookup for k in keys], dtype=bool)
    missing = int((~found).sum())
    if missing > MAX_BAD_LINE_FRACTION * len(keys):
        raise DataError(
            f"{path}: {missing} of {len(keys)} sequence interactions have no review with a rating; "
            "the pickle and sequential_data.txt come from different releases."
        )
    if missing:
        log.warning("%s: dropped %d interaction(s) without a rated review", path, missing)
    values = [lookup.get(int(k), (np.nan, 0)) for k in keys]
    ratings = np.array([v[0] for v in values], dtype=np.float32)
    timestamps = np.array([v[1] for v in values], dtype=np.int64)
    return ratings, timestamps, found
