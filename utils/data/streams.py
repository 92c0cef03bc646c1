"""Opening a user's table file as bytes: a gzip file's decompressed size is counted while it
streams and capped, the header's width is capped, and a UTF-16/32 file without a byte-order mark
gets its byte order from its first bytes.

A small ``.gz`` can inflate to terabytes (a gzip bomb), and a header of a million columns makes
pandas build a million-column frame for hours; both are refused in one line naming the file and
the cap. Nothing is inflated into memory first: the count runs as the reader pulls bytes.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from utils.runtime.errors import DataError

# What this toolkit's 24 GiB machine can prepare: the tables become object arrays several times
# their text's size. The environment variable raises the cap for a larger machine (or lowers it).
MAX_DECOMPRESSED_BYTES = 4 << 30
DECOMPRESSED_ENV = "SEMANTIC_IDS_MAX_DECOMPRESSED_BYTES"
# A real table compresses a few to a few tens of times; one that has inflated more than
# MAX_RATIO times past RATIO_CHECK_AFTER bytes is refused early (a bomb otherwise parses for a
# minute before the size cap or the memory ends it). Setting DECOMPRESSED_ENV turns this off.
MAX_RATIO = 100
RATIO_CHECK_AFTER = 64 << 20
MAX_COLUMNS = 1000
MAX_HEADER_BYTES = 1 << 20  # a header of MAX_COLUMNS names of up to a thousand characters each
MAX_LINE_CHARS = 64 << 20  # one JSON line: a record far larger than any item's text
_HEAD_BYTES = 4096  # enough to tell a UTF-16/32 file's byte order


def decompressed_cap() -> int:
    """The cap on a gzip input's decompressed bytes: MAX_DECOMPRESSED_BYTES or the environment's."""
    text = os.environ.get(DECOMPRESSED_ENV, "")
    return int(text) if text.isdigit() else MAX_DECOMPRESSED_BYTES


class _Capped(io.RawIOBase):
    """A gzip stream that fails (DataError naming the file and the cap) once more than ``cap``
    decompressed bytes have been read from it, or (``check_ratio``) once it has inflated more
    than MAX_RATIO times past RATIO_CHECK_AFTER bytes."""

    def __init__(self, path: Path, cap: int, check_ratio: bool = True) -> None:
        super().__init__()
        self.path, self.cap, self.count, self.check_ratio = path, cap, 0, check_ratio
        self.inner = gzip.open(path, "rb")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        n = self.inner.readinto(buffer)
        self.count += n
        if self.check_ratio and self.count > RATIO_CHECK_AFTER:
            ratio = self.count / max(1, self.inner.fileobj.tell())
            if ratio > MAX_RATIO:
                raise DataError(
                    f"{self.path}: inflates more than {MAX_RATIO}:1 ({self.count:,} bytes from "
                    f"its first {self.inner.fileobj.tell():,}), far beyond a real table (a gzip "
                    f"bomb?); give it uncompressed, or set {DECOMPRESSED_ENV} if it is real"
                )
        if self.count > self.cap:
            raise DataError(
                f"{self.path}: decompresses to more than {self.cap:,} bytes, the cap on a gzip "
                f"input (a gzip bomb?); give it uncompressed, or set {DECOMPRESSED_ENV} higher "
                "if the table is real"
            )
        return n

    def close(self) -> None:
        self.inner.close()
        super().close()


@contextmanager
def open_bytes(path: Path) -> Iterator[BinaryIO]:
    """The file's (decompressed) bytes; a ``.gz`` name is read through the capped gzip stream."""
    if path.name.lower().endswith(".gz"):
        capped = _Capped(path, decompressed_cap(), check_ratio=DECOMPRESSED_ENV not in os.environ)
        stream: BinaryIO = io.BufferedReader(capped, 1 << 20)
    else:
        stream = open(path, "rb")  # noqa: SIM115 - closed by the with below
    with stream:
        yield stream


def table_encoding(path: Path, encoding: str) -> str:
    """``encoding``, made explicit for UTF-16/32 without a byte-order mark: pandas refuses such
    a file, and the byte order shows in which bytes of the first characters are zero."""
    name = codecs.lookup(encoding).name
    width = {"utf-16": 2, "utf-32": 4}.get(name)
    if width is None:
        return encoding
    with open_bytes(path) as f:
        head = f.read(_HEAD_BYTES)
    boms = {
        2: (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE),
        4: (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE),
    }
    if head.startswith(boms[width]):
        return encoding
    lead, tail = head[0::width].count(0), head[width - 1 :: width].count(0)
    if not lead and not tail:  # a table's commas and newlines are ASCII: zero bytes in UTF-16/32
        raise DataError(
            f"{path}: not {encoding} text (no byte-order mark and no zero bytes among its first "
            "characters); pass --encoding with its real encoding (utf-8, latin-1, ...)"
        )
    return f"{name}-{'be' if lead > tail else 'le'}"


def check_header(path: Path, encoding: str, sep: str) -> None:
    """Refuse a CSV/TSV header wider than MAX_COLUMNS columns (or MAX_HEADER_BYTES) before pandas
    builds a frame of it."""
    with open_bytes(path) as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, newline="")
        line = text.readline(MAX_HEADER_BYTES)
    fields = next(csv.reader([line], delimiter=sep), []) if len(sep) == 1 else line.split(sep)
    if len(line) >= MAX_HEADER_BYTES and not line.endswith("\n"):
        what = f"a header line longer than {MAX_HEADER_BYTES:,} characters"
    elif len(fields) > MAX_COLUMNS:
        what = f"a header of {len(fields):,} columns"
    else:
        return
    raise DataError(
        f"{path}: {what}, over the cap of {MAX_COLUMNS:,} columns; keep the columns you need "
        "(or check --sep)"
    )


def json_records(path: Path, encoding: str) -> Iterator[tuple[int, dict]]:
    """(1-based line, record) for each non-blank line of a JSON-lines file, read as Python's
    json reads it (integers stay exact, never float64); a line that is not one JSON object, is
    longer than MAX_LINE_CHARS or has more than MAX_COLUMNS fields is refused by file and line."""
    with open_bytes(path) as raw:
        text = io.TextIOWrapper(raw, encoding=encoding)
        for lineno, line in enumerate(iter(lambda: text.readline(MAX_LINE_CHARS), ""), start=1):
            if len(line) >= MAX_LINE_CHARS and not line.endswith("\n"):
                why = f"longer than {MAX_LINE_CHARS:,} characters, the cap on one record"
                raise DataError(f"{path}:{lineno}: a line {why}; give one record per line")
            if line.strip():
                yield lineno, _record(path, lineno, line)


def _record(path: Path, lineno: int, line: str) -> dict:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, an integer of 5,000 digits
        why = getattr(exc, "msg", None) or (
            "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        )
    else:
        if isinstance(record, dict) and len(record) <= MAX_COLUMNS:
            return record
        why = (
            f"{len(record):,} fields, over the cap of {MAX_COLUMNS:,} columns"
            if isinstance(record, dict)
            else f"a JSON {type(record).__name__}, not an object"
        )
    raise DataError(f"{path}:{lineno}: not one JSON object per line ({why}); fix or drop that line")
