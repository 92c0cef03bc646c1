"""Reading a user's own table files in chunks: CSV, TSV, Parquet or JSON lines, gzipped or not.

Real interaction files run to tens of millions of rows, so nothing here reads a whole file at
once: :func:`iter_chunks` yields pandas frames of at most ``chunk_rows`` rows with the index of
their first data row, so that every later check can name the file, the row and the column.
Every failure (no such file, empty file, wrong encoding, a missing column, a malformed line) is
a :class:`DataError` of one line naming the file, the row and the fix.
"""

from __future__ import annotations

import difflib
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from utils.data.streams import MAX_COLUMNS, check_header, json_records, open_bytes, table_encoding
from utils.runtime.errors import DataError

FORMATS = ("csv", "tsv", "parquet", "jsonl")
CHUNK_ROWS = 1_000_000
JSON_CHUNK_CHARS = 256 << 20  # a chunk of JSON records: bounded by its text too, not rows only
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_INT_ID = r"^-?[0-9]{1,18}$"


def detect_format(path: Path) -> str:
    """The table format from the file name (``.csv``, ``.tsv``, ``.parquet``, ``.jsonl``, each
    optionally ``.gz``)."""
    name = path.name.lower()
    name = name[:-3] if name.endswith(".gz") else name
    fmt = _SUFFIXES.get(Path(name).suffix)
    if fmt is None:
        raise DataError(
            f"{path}: cannot tell the table format from the name; use a file ending in "
            ".csv, .tsv, .parquet or .jsonl (optionally .gz)"
        )
    return fmt


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise DataError(f"{path}: no such file; check the path")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; expected a header row and data rows")


def _bad_encoding_line(path: Path, encoding: str) -> int:
    """The 1-based line of the first bytes that are not ``encoding`` (error path only)."""
    with open_bytes(path) as f:
        for lineno, line in enumerate(f, start=1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError:
                return lineno
    return 0


def _encoding_error(path: Path, encoding: str, exc: UnicodeDecodeError) -> DataError:
    line = _bad_encoding_line(path, encoding)
    return DataError(
        f"{path}:{line}: not {encoding} text ({exc.reason}); re-save the file as UTF-8 or pass "
        "--encoding with its real encoding (latin-1, cp1252, ...)"
    )


def read_columns(
    path: Path, fmt: str, encoding: str = "utf-8", sep: str | None = None
) -> list[str]:
    """The column names: the header of a CSV/TSV, the schema of a Parquet file, the keys of the
    first JSON line."""
    _require_file(path)
    if fmt == "parquet":
        names = list(_parquet(path).schema_arrow.names)
        if len(names) > MAX_COLUMNS:
            raise DataError(f"{path}: {len(names):,} columns, over the cap of {MAX_COLUMNS:,}")
        return names
    for _, frame in iter_chunks(path, fmt, None, encoding, sep, chunk_rows=1000):
        return [str(c) for c in frame.columns]
    raise DataError(f"{path}: no data rows; expected a header row and data rows")


def _parquet(path: Path):
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise DataError(
            f"{path}: reading Parquet needs pyarrow: pip install -r requirements.txt"
        ) from exc
    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for a damaged file
        raise DataError(f"{path}: not a readable Parquet file ({exc}); re-export it") from exc


def check_columns(path: Path, available: list[str], wanted: dict[str, str | None]) -> None:
    """Every named column exists; the error says which flag names it and the closest match."""
    for flag, column in wanted.items():
        if column is not None and column not in available:
            close = difflib.get_close_matches(column, available, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DataError(
                f"{path}: no column {column!r}{hint}; the file has {', '.join(available)}; "
                f"pass {flag} with the right name"
            )


def iter_chunks(
    path: Path,
    fmt: str,
    columns: list[str] | None,
    encoding: str = "utf-8",
    sep: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[tuple[int, pd.DataFrame]]:
    """(index of the first data row, frame) per chunk; CSV/TSV cells come as strings ('' when
    empty), JSON and Parquet values with their own types."""
    _require_file(path)
    first = 0
    try:
        encoding = table_encoding(path, encoding)
        if fmt in ("csv", "tsv"):
            check_header(path, encoding, sep or ("\t" if fmt == "tsv" else ","))
        for frame in _raw_chunks(path, fmt, columns, encoding, sep, chunk_rows):
            frame.index = pd.RangeIndex(first, first + len(frame))
            yield first, frame
            first += len(frame)
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, encoding, exc) from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: the file is empty; expected a header row and data rows") from exc
    except pd.errors.ParserError as exc:
        raise DataError(
            f"{path}: malformed table ({' '.join(str(exc).split())}); check the separator "
            "(--sep) and the quoting of that line"
        ) from exc
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path}: the gzip file is truncated or corrupt ({exc})") from exc


def _raw_chunks(
    path: Path,
    fmt: str,
    columns: list[str] | None,
    encoding: str,
    sep: str | None,
    chunk_rows: int,
) -> Iterator[pd.DataFrame]:
    if fmt in ("csv", "tsv"):
        with open_bytes(path) as stream:
            yield from _csv_chunks(stream, fmt, columns, encoding, sep, chunk_rows)
    elif fmt == "parquet":
        for batch in _parquet(path).iter_batches(batch_size=chunk_rows, columns=columns):
            yield batch.to_pandas()
    elif fmt == "jsonl":
        yield from _json_chunks(path, columns, encoding, chunk_rows)
    else:
        raise DataError(f"{path}: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _csv_chunks(
    stream: BinaryIO,
    fmt: str,
    columns: list[str] | None,
    encoding: str,
    sep: str | None,
    chunk_rows: int,
) -> Iterator[pd.DataFrame]:
    reader = pd.read_csv(
        stream,
        sep=sep or ("\t" if fmt == "tsv" else ","),
        usecols=columns,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        encoding=encoding,
        chunksize=chunk_rows,
    )
    with reader:
        yield from reader


def _json_chunks(
    path: Path, columns: list[str] | None, encoding: str, chunk_rows: int
) -> Iterator[pd.DataFrame]:
    """Frames of at most ``chunk_rows`` records (or JSON_CHUNK_CHARS of text) with object
    columns: values keep their JSON types, so an integer ID never passes through float64 (IDs
    2**53 + 1 and 2**53 in a column that also holds 1.5 stay two IDs)."""
    records: list[dict] = []
    size = 0
    for _, record in json_records(path, encoding):
        records.append(record if columns is None else {c: record.get(c) for c in columns})
        size += sum(len(str(v)) for v in records[-1].values())
        if len(records) >= chunk_rows or size >= JSON_CHUNK_CHARS:
            yield _object_frame(records, columns)
            records, size = [], 0
    if records:
        yield _object_frame(records, columns)


def _object_frame(records: list[dict], columns: list[str] | None) -> pd.DataFrame:
    names = columns if columns is not None else list(dict.fromkeys(k for r in records for k in r))
    return pd.DataFrame(
        {c: pd.Series([r.get(c) for r in records], dtype=object) for c in names}, columns=names
    )


def as_id_strings(values: pd.Series) -> pd.Series:
    """IDs as strings whatever the file typed them as: 17 and 17.0 both become '17'; missing
    values become ''."""
    if pd.api.types.is_integer_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values.astype(str)
    return values.astype(object).where(values.notna(), "").map(_id_text).astype(str)


def _id_text(value: object) -> str:
    """One ID as text: a whole float as its integer, Python's integers (JSON's) exactly."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def is_integer_ids(values: np.ndarray) -> bool:
    """True when every ID is an integer of at most 18 digits (then IDs sort as numbers)."""
    return bool(len(values)) and bool(pd.Series(values).str.fullmatch(_INT_ID).all())


def first_bad_row(path: Path, bad: pd.Series, column: str, what: str, fix: str) -> None:
    """Raise for the first True of ``bad`` (indexed by data row), naming row and column."""
    if bad.any():
        row = int(bad.idxmax())
        raise DataError(
            f"{path}: row {row + 1}, column {column!r}: {what} "
            f"({int(bad.sum())} such row(s) in this chunk); {fix}"
        )
