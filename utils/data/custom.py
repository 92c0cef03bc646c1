"""A user's own interaction table, read in chunks and cleaned into the toolkit's rules.

The rules, stated once (docs/CUSTOM_DATA.md repeats them for users):

* users and items get dense indices in ascending ID order (as numbers when every ID is an
  integer, else as text), or in order of first appearance with ``order='first-seen'``;
* each user's interactions are ordered by time, file order breaking ties (without a time
  column, file order is the order);
* a (user, item) pair seen more than once keeps its latest row (``dedup='latest'``, MovieLens'
  rule), its first (``'first'``) or every row (``'none'``, for re-purchases);
* k-core: users and items with fewer than ``k_core`` interactions are dropped, repeatedly,
  until every remaining one has at least ``k_core`` (5 = the Beauty bundle's 5-core);
* ratings: explicit when a rating column is named and holds more than one value (stars must be
  in [1, 5]), implicit otherwise (``feedback`` forces either).

Everything is vectorized over numpy arrays; per-chunk work is bounded by the chunk size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from utils.data.parsing import RATING_RANGE
from utils.data.tabular import (
    as_id_strings,
    check_columns,
    detect_format,
    first_bad_row,
    is_integer_ids,
    iter_chunks,
    read_columns,
)
from utils.runtime.errors import DataError

log = logging.getLogger(__name__)

DEDUP_RULES = ("latest", "first", "none")
ORDERS = ("id", "first-seen")
FEEDBACK = ("auto", "explicit", "implicit")
TIME_UNITS = ("s", "ms")


@dataclass(frozen=True)
class InteractionColumns:
    """Which columns of the interaction file hold what; ``time``/``rating`` None: absent."""

    user: str = "user_id"
    item: str = "item_id"
    time: str | None = "timestamp"
    rating: str | None = None
    time_unit: str = "s"  # numeric times: seconds, or milliseconds (Amazon 2023)
    time_format: str | None = None  # strptime format of text times; None: ISO 8601


@dataclass(frozen=True)
class CleaningRules:
    k_core: int = 5
    dedup: str = "latest"
    order: str = "id"
    feedback: str = "auto"


@dataclass
class RawInteractions:
    """The file's rows as arrays: users/items are codes into ``user_ids``/``item_ids`` (first-seen
    order), ``rows`` the 0-based data row of each."""

    path: Path
    user_ids: np.ndarray
    item_ids: np.ndarray
    users: np.ndarray
    items: np.ndarray
    times: np.ndarray | None
    ratings: np.ndarray | None
    rows: np.ndarray
    item_column: str = "item_id"
    incomplete_rows_dropped: int = 0  # --drop-incomplete: rows missing a required value


class Factorizer:
    """Codes for IDs across chunks, in order of first appearance."""

    def __init__(self) -> None:
        self.index = pd.Index([], dtype=object)

    def codes(self, values: pd.Series) -> np.ndarray:
        local, uniques = pd.factorize(values)
        known = self.index.get_indexer(uniques)
        new = known < 0
        if new.any():
            start = len(self.index)
            self.index = self.index.append(pd.Index(np.asarray(uniques[new], dtype=object)))
            known[new] = np.arange(start, start + int(new.sum()))
        return known[local].astype(np.int64)

    def values(self) -> np.ndarray:
        return np.asarray(self.index, dtype=object)


LATEST_TIME = 7_258_118_400  # 2200-01-01 in Unix seconds: later is a unit or a data error


def _times(path: Path, values: pd.Series, cols: InteractionColumns, state: dict) -> np.ndarray:
    """Times as int64 seconds: numbers (``time_unit``) or dates (ISO 8601 or ``time_format``)."""
    column = cols.time
    if pd.api.types.is_datetime64_any_dtype(values):  # Parquet timestamps
        missing = values.isna()
        first_bad_row(path, missing, column, "no time", "fill in every time")
        return (
            (values.dt.tz_localize(None) if values.dt.tz else values)
            .astype("datetime64[s]")
            .astype(np.int64)
            .to_numpy()
        )
    text = as_id_strings(values) if not pd.api.types.is_numeric_dtype(values) else None
    numbers = pd.to_numeric(values if text is None else text, errors="coerce")
    if "mode" not in state:
        state["mode"] = "number" if numbers.notna().any() or text is None else "date"
    if state["mode"] == "number":
        bad = numbers.isna() | (numbers < 0)
        first_bad_row(
            path,
            bad,
            column,
            f"not a time ({_shown(values, bad)})",
            "times must all be Unix times (numbers, --time-unit s or ms) or all dates",
        )
        seconds = numbers.to_numpy(dtype=np.float64)
        if cols.time_unit == "ms":
            seconds = seconds / 1000.0
        late = pd.Series(seconds > LATEST_TIME, index=values.index)
        first_bad_row(
            path,
            late,
            column,
            f"not a plausible time ({_shown(values, late)}: after the year 2200)",
            "give Unix times in seconds, or in milliseconds with --time-unit ms",
        )
        return np.floor(seconds).astype(np.int64)
    parsed = pd.to_datetime(text, errors="coerce", utc=True, format=cols.time_format or "ISO8601")
    bad = parsed.isna()
    first_bad_row(
        path,
        bad,
        column,
        f"unparsable time ({_shown(values, bad)})",
        "give ISO 8601 dates (2024-05-01T12:00:00) or pass --time-format",
    )
    return parsed.dt.tz_localize(None).astype("datetime64[s]").astype(np.int64).to_numpy()


def _shown(values: pd.Series, bad: pd.Series) -> str:
    """The first bad value, for the message ('' when none is bad: messages are built eagerly)."""
    return repr(values[bad].iloc[0])[:60] if bad.any() else ""


def _ratings(path: Path, values: pd.Series, column: str) -> np.ndarray:
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna()
    first_bad_row(
        path,
        bad,
        column,
        f"not a number ({_shown(values, bad)})",
        "fill in every rating, or leave --rating-col out for implicit feedback",
    )
    return numbers.to_numpy(dtype=np.float32)


def _complete(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """True for the rows where every one of ``columns`` holds a value (not empty, not NaN)."""
    ok = np.ones(len(frame), dtype=bool)
    for column in columns:
        values = frame[column]
        ok &= values.notna().to_numpy()
        if not pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_datetime64_any_dtype(
            values
        ):
            ok &= (values.astype(str).str.strip() != "").to_numpy()
    return ok


def read_interactions(
    path: Path,
    cols: InteractionColumns,
    encoding: str = "utf-8",
    sep: str | None = None,
    drop_incomplete: bool = False,
) -> RawInteractions:
    """Read the interaction file chunk by chunk into arrays, checking every value as it comes;
    ``drop_incomplete`` drops the rows missing a value of a named column (counted) instead of
    refusing the file at the first."""
    fmt = detect_format(path)
    wanted = {"--user-col": cols.user, "--item-col": cols.item}
    wanted |= {"--time-col": cols.time, "--rating-col": cols.rating}
    check_columns(path, read_columns(path, fmt, encoding, sep), wanted)
    names = [c for c in dict.fromkeys(wanted.values()) if c is not None]
    users, items = Factorizer(), Factorizer()
    parts: dict[str, list[np.ndarray]] = {"u": [], "i": [], "t": [], "r": [], "rows": []}
    state: dict = {}
    n = dropped = 0
    for first, frame in iter_chunks(path, fmt, names, encoding, sep):
        n = first + len(frame)
        if drop_incomplete:
            complete = _complete(frame, names)
            dropped += int((~complete).sum())
            frame = frame[complete]
        parts["rows"].append(frame.index.to_numpy(dtype=np.int64))
        for column, key in ((cols.user, "u"), (cols.item, "i")):
            ids = as_id_strings(frame[column])
            first_bad_row(path, ids == "", column, "empty ID", "fill in or drop that row")
            parts[key].append((users if key == "u" else items).codes(ids))
        if cols.time is not None:
            parts["t"].append(_times(path, frame[cols.time], cols, state))
        if cols.rating is not None:
            parts["r"].append(_ratings(path, frame[cols.rating], cols.rating))
    if n == 0:
        raise DataError(f"{path}: no data rows, only a header; expected one row per interaction")
    if dropped == n:
        raise DataError(f"{path}: every one of its {n} rows misses a value of {', '.join(names)}")
    if dropped:
        log.warning("%s: %d of %d rows miss a required value and are dropped", path, dropped, n)
    return RawInteractions(
        path,
        users.values(),
        items.values(),
        np.concatenate(parts["u"]),
        np.concatenate(parts["i"]),
        np.concatenate(parts["t"]) if parts["t"] else None,
        np.concatenate(parts["r"]) if parts["r"] else None,
        np.concatenate(parts["rows"]),
        cols.item,
        dropped,
    )


def id_ranks(ids: np.ndarray, order: str) -> np.ndarray:
    """Each ID's rank under ``order``: 'first-seen' keeps the codes, 'id' sorts the IDs (as
    integers when all are, the text breaking ties such as '01' vs '1')."""
    if order == "first-seen":
        return np.arange(len(ids), dtype=np.int64)
    text = ids.astype(str)
    if is_integer_ids(text):
        perm = np.lexsort((text, text.astype(np.int64)))
    else:
        perm = np.argsort(text, kind="stable")
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[perm] = np.arange(len(ids))
    return ranks


def _keep_one_per_pair(users: np.ndarray, items: np.ndarray, n_items: int, rule: str):
    """Indices (into the chronologically sorted rows) kept by the dedup rule, in order."""
    if rule == "none":
        return np.arange(len(users))
    key = users * max(n_items, 1) + items
    if rule == "first":
        _, first = np.unique(key, return_index=True)
        return np.sort(first)
    _, last = np.unique(key[::-1], return_index=True)
    return np.sort(len(key) - 1 - last)


def k_core_mask(users: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """Rows that survive iterated k-core filtering (every user and item keeps >= k rows)."""
    keep = np.ones(len(users), dtype=bool)
    if k <= 1:
        return keep
    while True:
        cu = np.bincount(users[keep], minlength=int(users.max()) + 1)
        ci = np.bincount(items[keep], minlength=int(items.max()) + 1)
        now = keep & (cu[users] >= k) & (ci[items] >= k)
        if now.sum() == keep.sum():
            return keep
        keep = now


@dataclass
class CleanInteractions:
    """Interactions in final order: sorted by (user index, time, file row)."""

    user_ids: np.ndarray  # original IDs by final index
    item_ids: np.ndarray
    users: np.ndarray
    items: np.ndarray
    times: np.ndarray | None
    ratings: np.ndarray | None
    item_codes: np.ndarray  # each final item's code in RawInteractions.item_ids
    report: dict


def clean(
    raw: RawInteractions,
    rules: CleaningRules,
    item_ok: np.ndarray | None = None,
    rating_col: str | None = None,
) -> CleanInteractions:
    """Order, deduplicate, drop items without metadata (``item_ok`` False), k-core, re-index."""
    user_rank, item_rank = id_ranks(raw.user_ids, rules.order), id_ranks(raw.item_ids, rules.order)
    u, i = user_rank[raw.users], item_rank[raw.items]
    times = raw.times if raw.times is not None else raw.rows
    order = np.lexsort((raw.rows, times, u))
    keep = order[_keep_one_per_pair(u[order], i[order], len(raw.item_ids), rules.dedup)]
    report = {
        "rows_read": len(raw.rows) + raw.incomplete_rows_dropped,
        "incomplete_rows_dropped": raw.incomplete_rows_dropped,
        "duplicate_rows_dropped": len(order) - len(keep),
    }
    if report["duplicate_rows_dropped"]:
        log.warning(
            "%s: %d repeated (user, item) row(s) dropped (--dedup %s)",
            raw.path,
            report["duplicate_rows_dropped"],
            rules.dedup,
        )
    if item_ok is not None:
        with_meta = item_ok[raw.items[keep]]
        report["rows_without_metadata_dropped"] = int((~with_meta).sum())
        keep = keep[with_meta]
    core = k_core_mask(u[keep], i[keep], rules.k_core)
    report["rows_dropped_by_k_core"] = int((~core).sum())
    keep = keep[core]
    if not len(keep):
        raise DataError(
            f"{raw.path}: no interaction is left after the {rules.k_core}-core filter; "
            "lower --k-core (1 keeps everything)"
        )
    kept_users, users = np.unique(u[keep], return_inverse=True)
    kept_items, items = np.unique(i[keep], return_inverse=True)
    user_codes = np.argsort(user_rank)[kept_users]
    item_codes = np.argsort(item_rank)[kept_items]
    ratings = None if raw.ratings is None else raw.ratings[keep]
    ratings = _feedback(raw.path, ratings, raw.rows[keep], rating_col, rules.feedback, report)
    return CleanInteractions(
        raw.user_ids[user_codes],
        raw.item_ids[item_codes],
        users.astype(np.int64),
        items.astype(np.int64),
        None if raw.times is None else raw.times[keep],
        ratings,
        item_codes,
        report,
    )


def _feedback(
    path: Path,
    ratings: np.ndarray | None,
    rows: np.ndarray,
    column: str | None,
    rule: str,
    report: dict,
) -> np.ndarray | None:
    """Explicit star ratings, or None (implicit): the stated detection rule."""
    explicit = ratings is not None and (
        rule == "explicit" or (rule == "auto" and len(np.unique(ratings)) > 1)
    )
    if rule == "explicit" and ratings is None:
        raise DataError(f"{path}: --feedback explicit needs a rating column; name it --rating-col")
    report["feedback"] = "explicit" if explicit else "implicit"
    if not explicit:
        return None
    low, high = RATING_RANGE
    bad = (ratings < low) | (ratings > high)
    if bad.any():
        at = int(np.argmin(np.where(bad, rows, np.iinfo(np.int64).max)))
        raise DataError(
            f"{path}: row {int(rows[at]) + 1}, column {column!r}: rating {ratings[at]:g} outside "
            f"the star range {list(RATING_RANGE)} ({int(bad.sum())} such row(s)); rescale the "
            "ratings to 1-5 or pass --feedback implicit"
        )
    return ratings.astype(np.float32)
