"""The MovieLens 100K layout: ratings in ``u.data``, movies (title, release date, genre flags)
in ``u.item``.

Every failure raises :class:`DataError` with the file, the line and the fix.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from utils.data.dataset import Dataset, ItemMeta
from utils.data.parsing import (
    clean_text,
    offsets_and_positions,
    parse_int64_id,
    parse_lines,
    parse_rating,
    parse_time,
    read_text,
    require_files,
)
from utils.data.specs import ML_FILES
from utils.runtime.errors import DataError
from utils.runtime.io import sha256_files

log = logging.getLogger(__name__)

# MovieLens started in 1997: an earlier u.data timestamp is a damaged (e.g. cut) field.
MIN_MOVIELENS_TIMESTAMP = 788_918_400  # 1995-01-01

ML_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
_YEAR = re.compile(r"(\d{4})")


def _parse_ml_rating(line: str) -> tuple[int, int, float, int]:
    parts = line.split("\t")
    if len(parts) != 4:
        raise ValueError("expected 4 tab-separated fields")
    user, item = parse_int64_id(parts[0]), parse_int64_id(parts[1])
    rating, ts = parse_rating(parts[2]), parse_time(parts[3])
    if ts < MIN_MOVIELENS_TIMESTAMP:
        raise ValueError("timestamp before MovieLens existed (a cut field)")
    return user, item, rating, ts


def _parse_ml_item(line: str) -> tuple[int, str, float, list[str]]:
    parts = line.rstrip("\n").split("|")
    if len(parts) != 5 + len(ML_GENRES):
        raise ValueError(f"expected {5 + len(ML_GENRES)} '|'-separated fields")
    flags = parts[5:]
    if not all(f in ("0", "1") for f in flags):
        raise ValueError("genre flags must be 0 or 1")
    match = _YEAR.search(parts[2]) or _YEAR.search(parts[1])
    year = float(match.group(1)) if match else float("nan")
    genres = [g for g, f in zip(ML_GENRES, flags) if f == "1" and g != "unknown"]
    return int(parts[0]), clean_text(parts[1]), year, genres


def _latest_per_pair(
    path: Path, users: np.ndarray, items: np.ndarray, order: np.ndarray
) -> np.ndarray:
    """The rule for a (user, item) pair rated more than once: one interaction, its latest row.

    ``order`` sorts the rows chronologically per user; the rows it keeps stay in that order.
    Kept twice, a pair could sit in training and in the test set at once.
    """
    key = users.astype(np.int64) * (int(items.max()) + 1 if len(items) else 1) + items
    _, last = np.unique(key[::-1], return_index=True)  # the latest row of each pair
    keep = np.sort(len(key) - 1 - last)
    if len(keep) < len(key):
        log.warning(
            "%s: %d repeated (user, item) rating(s); each pair keeps its latest row",
            path,
            len(key) - len(keep),
        )
    return order[keep]


def load_movielens(data_dir: Path) -> Dataset:
    require_files(data_dir, ML_FILES, "MovieLens 100K")
    data_path, item_path = data_dir / "u.data", data_dir / "u.item"
    # u.item is Latin-1 (accented titles); decoding it as UTF-8 garbles or fails.
    movies = parse_lines(
        item_path,
        read_text(item_path, "latin-1").splitlines(),
        _parse_ml_item,
        "movie id|title|release date|...|19 genre flags",
    )
    movies.sort(key=lambda r: r[1][0])
    movie_index = {m[0]: i for i, (_, m) in enumerate(movies)}
    meta = ItemMeta.empty(len(movies))
    for i, (_, (_, title, year, genres)) in enumerate(movies):
        meta.title[i], meta.year[i], meta.categories[i] = title, year, genres

    rows = parse_lines(
        data_path,
        read_text(data_path, "latin-1").splitlines(),
        _parse_ml_rating,
        "user<TAB>item<TAB>rating<TAB>timestamp",
    )
    unknown = [n for n, r in rows if r[1] not in movie_index]
    if unknown:
        raise DataError(
            f"{data_path}: {len(unknown)} rating(s) name movies missing from u.item (first at line "
            f"{', '.join(map(str, unknown[:5]))}); the files come from different releases: "
            "re-run prepare_data.py."
        )
    raw_users = np.array([r[0] for _, r in rows], dtype=np.int64)
    items = np.array([movie_index[r[1]] for _, r in rows], dtype=np.int64)
    ratings = np.array([r[2] for _, r in rows], dtype=np.float32)
    timestamps = np.array([r[3] for _, r in rows], dtype=np.int64)
    user_values, users = np.unique(raw_users, return_inverse=True)
    # Chronological per user; file order breaks ties so the order is deterministic.
    order = np.lexsort((np.arange(len(users)), timestamps, users))
    order = _latest_per_pair(data_path, users[order], items[order], order)
    users, items, ratings, timestamps = (
        users[order].astype(np.int64),
        items[order],
        ratings[order],
        timestamps[order],
    )
    lengths = np.bincount(users, minlength=len(user_values))
    offsets, positions = offsets_and_positions(lengths)
    return Dataset(
        name=data_dir.resolve().name,
        kind="movielens",
        user_ids=np.array([str(u) for u in user_values], dtype=object),
        item_ids=np.array([str(m[0]) for _, m in movies], dtype=object),
        users=users,
        items=items,
        positions=positions,
        timestamps=timestamps,
        ratings=ratings,
        user_offsets=offsets,
        meta=meta,
        checksum=sha256_files([data_path, item_path]),
    )
