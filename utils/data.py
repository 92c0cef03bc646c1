"""Load a prepared data folder into one in-memory :class:`Dataset` of numpy arrays.

Two layouts are understood and detected from the files present:

* P5's Amazon layout (``sequential_data.txt``, ``datamaps.json``,
  ``meta.json.gz`` and, when present, ``rating_splits_augmented.pkl``);
* MovieLens 100K (``u.data``, ``u.item``).

Every failure raises :class:`DataError` with the file, the line and the fix.
"""

from __future__ import annotations

import ast
import gzip
import html
import json
import logging
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from utils.errors import DataError
from utils.io import UnsafePickleError, parse_json, restricted_pickle_load, sha256_files

log = logging.getLogger(__name__)

P5_FILES = ("sequential_data.txt", "datamaps.json", "meta.json.gz")
P5_RATINGS = "rating_splits_augmented.pkl"
ML_FILES = ("u.data", "u.item")
# Malformed lines up to this share are skipped with a warning; beyond it the load fails.
MAX_BAD_LINE_FRACTION = 0.001
# MovieLens started in 1997: an earlier u.data timestamp is a damaged (e.g. cut) field.
MIN_MOVIELENS_TIMESTAMP = 788_918_400  # 1995-01-01
# Every value read from a data file is checked against what the arrays can hold and what the
# task means, where it is read: ids and times are int64, ratings are stars.
MAX_INT64 = 2**63 - 1
RATING_RANGE = (1.0, 5.0)
# P5's ids are ASCII digit strings ("²" is a digit to str.isdigit, but no int).
_NUMERIC_ID = re.compile(r"[0-9]{1,18}")
# The metadata is decompressed whole; a real Amazon dump is a few hundred MB, a gzip bomb more.
MAX_META_BYTES = 2 << 30


def prepare_hint(data_dir: Path) -> str:
    """The prepare_data.py command that fills ``data_dir``; --dataset only takes the names it
    knows."""
    from utils.prepare import SPECS  # imported here: utils.prepare imports this module

    command = "python prepare_data.py --dataset {} --data-dir {}"
    if data_dir.name in SPECS:
        return f"run `{command.format(data_dir.name, data_dir)}` to put the data there"
    return (
        f"run `{command.format('NAME --source FOLDER', data_dir)}` to put the data there "
        f"(NAME: one of {', '.join(sorted(SPECS))}; FOLDER: where its files are)"
    )


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


def data_files(data_dir: str | Path) -> list[Path]:
    """The folder and the data files in it that a load reads: what no output may overwrite."""
    folder = Path(data_dir)
    names = (*P5_FILES, P5_RATINGS, *ML_FILES)
    return [folder, *(folder / n for n in names if (folder / n).exists())]


def load_dataset(data_dir: str | Path) -> Dataset:
    """Load the data folder, detecting its layout from the files it holds."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: no such data folder; {prepare_hint(data_dir)}")
    if (data_dir / "u.data").exists() or (data_dir / "u.item").exists():
        return load_movielens(data_dir)
    return load_p5(data_dir)


# ---------------------------------------------------------------- line parsing


def _parse_lines(
    path: Path, lines: Iterable[str], parse: Callable[[str], Any], what: str
) -> list[tuple[int, Any]]:
    """Parse each non-empty line; skip a tiny share of malformed lines, fail on more.

    Returns (1-based line number, parsed value) pairs.
    """
    parsed: list[tuple[int, Any]] = []
    bad: list[int] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            parsed.append((lineno, parse(line)))
        except (ValueError, SyntaxError, TypeError, KeyError, MemoryError, RecursionError):
            bad.append(lineno)
    total = len(parsed) + len(bad)
    if total == 0:
        raise DataError(
            f"{path}: the file is empty; expected {what}. Re-run prepare_data.py to fetch it again."
        )
    if bad:
        shown = ", ".join(map(str, bad[:5]))
        if len(bad) > MAX_BAD_LINE_FRACTION * total:
            raise DataError(
                f"{path}: {len(bad)} of {total} lines are malformed (first at line {shown}); "
                f"expected {what}. The file is damaged or not in the expected format: "
                "re-run prepare_data.py to fetch it again."
            )
        log.warning(
            "%s: skipped %d malformed line(s) of %d (line %s)", path, len(bad), total, shown
        )
    return parsed


def _require(data_dir: Path, names: Iterable[str], dataset: str) -> None:
    for name in names:
        if not (data_dir / name).exists():
            raise DataError(
                f"{data_dir / name}: missing file of the {dataset} data set; "
                f"{prepare_hint(data_dir)}"
            )


def _clean(text: Any) -> str:
    """HTML-unescape and trim a metadata string; anything else becomes ''."""
    if not isinstance(text, str):
        return ""
    return " ".join(html.unescape(text).split())


def _offsets_and_positions(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR offsets of user-sorted interactions, and each interaction's position within its user."""
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    positions = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    return offsets, positions


# ---------------------------------------------------------------- P5 layout


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
            name = _clean(name)
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
    for _, rec in _parse_lines(
        path, _read_meta_lines(path), _parse_meta_line, "one JSON or Python-literal dict per line"
    ):
        i = asin_to_index.get(rec["asin"])
        if i is None:
            unknown += 1
            continue
        meta.title[i] = _clean(rec.get("title"))
        meta.brand[i] = _clean(rec.get("brand"))
        meta.description[i] = _clean(rec.get("description"))
        meta.categories[i] = _flatten_categories(rec.get("categories"))
        meta.price[i] = _to_float(rec.get("price"))
        meta.sales_rank[i] = _sales_rank(rec.get("salesRank"))
    if unknown:
        log.info(
            "%s: %d metadata lines describe items outside the catalogue (ignored)", path, unknown
        )
    return meta


def _read_text(path: Path, encoding: str = "utf-8") -> str:
    """The whole file as text; a byte that is not ``encoding`` is refused with its line number."""
    try:
        with open(path, encoding=encoding) as f:
            return f.read()
    except UnicodeDecodeError as exc:
        with open(path, "rb") as f:
            line = f.read(exc.start).count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: not {encoding} text (byte {exc.start}); the file is damaged or not "
            "the original: re-run prepare_data.py to fetch it again."
        ) from exc


def _load_datamaps(path: Path) -> dict[str, dict[str, str]]:
    maps = parse_json(_read_text(path), path, "re-run prepare_data.py to fetch it again.")
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
    _require(data_dir, P5_FILES, "P5 Amazon")
    seq_path, maps_path, meta_path = (data_dir / f for f in P5_FILES)
    maps = _load_datamaps(maps_path)
    p5_user_to_orig = {v: k for k, v in maps["user2id"].items()}
    p5_item_to_orig = {v: k for k, v in maps["item2id"].items()}

    # Catalogue and users in P5's numeric id order, so indices are stable across runs.
    item_p5 = sorted(p5_item_to_orig, key=int)
    item_index = {p5: i for i, p5 in enumerate(item_p5)}
    item_ids = np.array([p5_item_to_orig[p] for p in item_p5], dtype=object)

    rows = _parse_lines(
        seq_path,
        _read_text(seq_path).splitlines(),
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
    offsets, positions = _offsets_and_positions(lengths)

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
        offsets, positions = _offsets_and_positions(lengths)
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
                    _rating(review["overall"]),
                    _time(review["unixReviewTime"]),
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


def _rating(value: Any) -> float:
    """A star rating: a number in RATING_RANGE (NaN, 99 or 1e30 would train and score nonsense)."""
    rating = float(value)
    if isinstance(value, bool) or not RATING_RANGE[0] <= rating <= RATING_RANGE[1]:
        raise ValueError(f"rating {value!r} outside {list(RATING_RANGE)}")
    return rating


def _time(value: Any) -> int:
    """A Unix time in seconds that fits int64 (a float is accepted when it is whole)."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"time {value!r} is not a whole number of seconds")
    seconds = int(value)
    if not 0 <= seconds <= MAX_INT64:
        raise ValueError(f"time {value!r} outside [0, 2^63)")
    return seconds


def _int64_id(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_INT64:
        raise ValueError(f"id {text} outside [0, 2^63)")
    return value


# ---------------------------------------------------------------- MovieLens 100K

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
    user, item = _int64_id(parts[0]), _int64_id(parts[1])
    rating, ts = _rating(parts[2]), _time(parts[3])
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
    return int(parts[0]), _clean(parts[1]), year, genres


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
    _require(data_dir, ML_FILES, "MovieLens 100K")
    data_path, item_path = data_dir / "u.data", data_dir / "u.item"
    # u.item is Latin-1 (accented titles); decoding it as UTF-8 garbles or fails.
    movies = _parse_lines(
        item_path,
        _read_text(item_path, "latin-1").splitlines(),
        _parse_ml_item,
        "movie id|title|release date|...|19 genre flags",
    )
    movies.sort(key=lambda r: r[1][0])
    movie_index = {m[0]: i for i, (_, m) in enumerate(movies)}
    meta = ItemMeta.empty(len(movies))
    for i, (_, (_, title, year, genres)) in enumerate(movies):
        meta.title[i], meta.year[i], meta.categories[i] = title, year, genres

    rows = _parse_lines(
        data_path,
        _read_text(data_path, "latin-1").splitlines(),
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
    offsets, positions = _offsets_and_positions(lengths)
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
