"""A user's item metadata (CSV, TSV, Parquet or JSON lines) mapped onto the toolkit's text fields.

Any column can feed any field of :class:`ItemMeta`: ``title=name,description=summary+features``
maps columns to fields, several columns joined (text with a space, category lists one after the
other). Text is HTML-unescaped and trimmed like the built-in loaders do (``clean_text``); a cell
holding a list (JSON) is joined; categories given as text are split on ``list_sep``; numbers
(price, sales rank, year) accept ``$1,299.00``-style text and are nan when absent.

Strict on what would silently corrupt the IDs: an item ID listed twice is an error naming both
rows; an interaction item without a metadata row is an error unless the user chose to keep it
(with the stated fallback text ``Item <id>``) or to drop it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from utils.data.custom import RawInteractions
from utils.data.dataset import ItemMeta
from utils.data.parsing import clean_text
from utils.data.tabular import (
    as_id_strings,
    check_columns,
    detect_format,
    first_bad_row,
    iter_chunks,
    read_columns,
)
from utils.runtime.errors import DataError

log = logging.getLogger(__name__)

TEXT_FIELDS = ("title", "brand", "description")
LIST_FIELDS = ("categories",)
NUMBER_FIELDS = ("price", "sales_rank", "year")
META_FIELDS = TEXT_FIELDS + LIST_FIELDS + NUMBER_FIELDS
MISSING_META = ("error", "keep", "drop")


def parse_text_columns(spec: str, allow_empty: bool = False) -> dict[str, tuple[str, ...]]:
    """'title=name,description=summary+features' -> {field: (column, ...)}; fields checked.
    ``allow_empty``: 'brand=' maps a field to no column (drops it from a layout preset's)."""
    mapping: dict[str, tuple[str, ...]] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        field, sep, columns = part.partition("=")
        field = field.strip()
        names = tuple(c.strip() for c in columns.split("+") if c.strip())
        if not sep or field not in META_FIELDS or not (names or allow_empty) or field in mapping:
            raise DataError(
                f"--text-columns {spec!r}: {part!r} is not FIELD=COLUMN[+COLUMN...] with a new "
                f"FIELD among {', '.join(META_FIELDS)}"
                + ("" if not allow_empty else " (FIELD= drops the preset's field)")
            )
        mapping[field] = names
    return mapping


def default_text_columns(available: list[str]) -> dict[str, tuple[str, ...]]:
    """Each field whose name is a column of the file, that column (title -> 'title', ...)."""
    return {f: (f,) for f in META_FIELDS if f in available}


def preset_text_columns(
    path: Path, available: list[str], preset: dict[str, tuple[str, ...]]
) -> dict[str, tuple[str, ...]]:
    """A layout preset's mapping with the columns this file lacks left out (each preset column is
    optional: a data set's files differ in which they carry); a field left with none is dropped."""
    absent = sorted({c for cs in preset.values() for c in cs if c not in available})
    if absent:
        log.info("%s: no column %s; the layout's fields read the others", path, ", ".join(absent))
    kept = {f: tuple(c for c in cs if c in available) for f, cs in preset.items()}
    return {f: cs for f, cs in kept.items() if cs}


def text_column_mapping(
    path: Path,
    available: list[str],
    mapping: dict[str, tuple[str, ...]] | None,
    preset: dict[str, tuple[str, ...]] | None,
) -> dict[str, tuple[str, ...]]:
    """What feeds each field: with a layout ``preset``, the preset's (optional) columns with the
    user's ``mapping`` in place of the fields it names (FIELD= drops one); without one, the
    user's mapping as it is, or the columns named like a field."""
    if preset is None:
        return mapping if mapping is not None else default_text_columns(available)
    merged = {**preset_text_columns(path, available, preset), **(mapping or {})}
    return {f: cs for f, cs in merged.items() if cs}


def _text(value: Any) -> str:
    if isinstance(value, list | tuple | np.ndarray):
        return " ".join(t for t in (_text(v) for v in value) if t)
    if isinstance(value, float) and np.isnan(value):
        return ""
    return clean_text(value if isinstance(value, str) else ("" if value is None else str(value)))


def _names(value: Any, sep: str) -> list[str]:
    """Categories from a list, a list of paths (Amazon 2014), or ``sep``-separated text."""
    if isinstance(value, list | tuple | np.ndarray):
        return [n for v in value for n in _names(v, sep)]
    if isinstance(value, str):
        return [n for n in (clean_text(p) for p in value.split(sep)) if n]
    return []


YEAR_IN_TEXT = r"\b(1[5-9]\d\d|2[01]\d\d)\b"  # a four-digit year 1500-2199 inside a date
EPOCH_SECONDS_FROM = 1e5  # a "year" this large is a timestamp in seconds


def _years(values: pd.Series) -> np.ndarray:
    """A year from a number (1995), from the year inside a date in any common format
    (01-Jan-1995, 1995-01-01, 1/1/1995), or from epoch seconds; nan where there is none."""
    numbers = _numbers(values).copy()  # pandas may hand out a read-only view
    seconds = numbers >= EPOCH_SECONDS_FROM
    if seconds.any():
        stamps = pd.to_datetime(numbers[seconds], unit="s", errors="coerce", utc=True)
        numbers[seconds] = np.asarray(stamps.year, dtype=np.float64)
    text = np.isnan(numbers) & values.notna().to_numpy()
    if text.any():
        found = values[text].astype(str).str.extract(YEAR_IN_TEXT, expand=False)
        numbers[text] = pd.to_numeric(found, errors="coerce").to_numpy(dtype=np.float64)
    return numbers


def _numbers(values: pd.Series) -> np.ndarray:
    if not pd.api.types.is_numeric_dtype(values):
        values = values.astype(object).where(values.notna(), "").astype(str)
        values = values.str.replace(r"[$,\s]", "", regex=True)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)


@dataclass
class MetaTable:
    """Metadata of the interaction items, by their code in the interaction file."""

    meta: ItemMeta
    row: np.ndarray  # the item's 0-based metadata row, -1 when it has none
    rows_read: int
    path: Path
    mapping: dict[str, tuple[str, ...]]  # the columns that fed each field


def read_metadata(
    path: Path,
    item_col: str,
    item_ids: np.ndarray,
    mapping: dict[str, tuple[str, ...]] | None = None,
    encoding: str = "utf-8",
    sep: str | None = None,
    list_sep: str = "|",
    preset: dict[str, tuple[str, ...]] | None = None,
) -> MetaTable:
    """Read the metadata in chunks, keeping the rows of the items in ``item_ids``; the fields are
    fed as `text_column_mapping` says."""
    fmt = detect_format(path)
    available = read_columns(path, fmt, encoding, sep)
    mapping = text_column_mapping(path, available, mapping, preset)
    check_columns(path, available, {"--item-id-col": item_col})
    for field, columns in mapping.items():
        check_columns(path, available, {f"--text-columns {field}=": c for c in columns})
    names = list(dict.fromkeys([item_col, *(c for cs in mapping.values() for c in cs)]))
    index = pd.Index(item_ids)
    meta = ItemMeta.empty(len(item_ids))
    row = np.full(len(item_ids), -1, dtype=np.int64)
    seen: dict[str, int] = {}
    n = 0
    for first, frame in iter_chunks(path, fmt, names, encoding, sep):
        ids = as_id_strings(frame[item_col])
        first_bad_row(path, ids == "", item_col, "empty item ID", "fill in or drop that row")
        _check_unique(path, ids, item_col, seen)
        codes = index.get_indexer(ids)
        mine = codes >= 0
        row[codes[mine]] = frame.index.to_numpy()[mine]
        _fill(meta, codes[mine], frame[mine], mapping, list_sep)
        n = first + len(frame)
    if n == 0:
        raise DataError(f"{path}: no data rows, only a header; expected one row per item")
    return MetaTable(meta, row, n, path, mapping)


def _check_unique(path: Path, ids: pd.Series, column: str, seen: dict[str, int]) -> None:
    """An item ID listed twice is refused, naming both rows (which text is right is unknowable)."""
    dup = ids.duplicated()
    earlier = ids.isin(seen.keys()) if seen else pd.Series(False, index=ids.index)
    bad = dup | earlier
    if bad.any():
        at = int(bad.idxmax())
        value = ids[at]
        before = seen.get(value, int(ids.index[(ids == value).to_numpy()][0]))
        raise DataError(
            f"{path}: row {at + 1}, column {column!r}: item {value!r} is listed again (first at "
            f"row {before + 1}); keep one metadata row per item"
        )
    seen.update(zip(ids.tolist(), ids.index.tolist(), strict=True))


def _fill(
    meta: ItemMeta,
    codes: np.ndarray,
    frame: pd.DataFrame,
    mapping: dict[str, tuple[str, ...]],
    list_sep: str,
) -> None:
    for field, columns in mapping.items():
        if field in NUMBER_FIELDS:
            parse = _years if field == "year" else _numbers
            values = parse(frame[columns[0]])
            for c in columns[1:]:  # the first column that has a number
                values = np.where(np.isnan(values), parse(frame[c]), values)
            getattr(meta, field)[codes] = values
        elif field in TEXT_FIELDS:
            parts = [frame[c].map(_text) for c in columns]
            joined = parts[0]
            for p in parts[1:]:
                joined = (joined + " " + p).str.strip()
            getattr(meta, field)[codes] = joined.to_numpy(dtype=object)
        else:
            for code, values in zip(codes, zip(*(frame[c] for c in columns), strict=True)):
                names = [n for v in values for n in _names(v, list_sep)]
                meta.categories[code] = list(dict.fromkeys(names))


def subset(meta: ItemMeta, codes: np.ndarray) -> ItemMeta:
    """The metadata of the items ``codes``, in that order."""
    return ItemMeta(
        meta.title[codes],
        meta.brand[codes],
        [meta.categories[c] for c in codes],
        meta.description[codes],
        meta.price[codes],
        meta.sales_rank[codes],
        meta.year[codes],
    )


def missing_items(table: MetaTable, policy: str, raw: RawInteractions) -> np.ndarray | None:
    """Apply the missing-metadata policy; returns the items to keep for 'drop', else None."""
    missing = table.row < 0
    if not missing.any():
        return None
    count = int(missing.sum())
    if policy == "error":
        # item codes count in order of first appearance: the smallest missing code comes first
        code = int(np.flatnonzero(missing)[0])
        row = int(raw.rows[np.argmax(raw.items == code)])
        raise DataError(
            f"{raw.path}: row {row + 1}, column {raw.item_column!r}: item "
            f"{raw.item_ids[code]!r} has no row "
            f"in {table.path} ({count} item(s) lack one); add their metadata, or pass "
            "--missing-meta keep (text 'Item <id>') or --missing-meta drop"
        )
    log.warning(
        "%s: %d interaction item(s) have no metadata row; %s",
        table.path,
        count,
        "kept with the text 'Item <id>'" if policy == "keep" else "their interactions are dropped",
    )
    return ~missing if policy == "drop" else None
