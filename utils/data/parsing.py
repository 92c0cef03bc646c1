"""Reading and parsing helpers both data-set loaders share: line-by-line parsing that tolerates
a tiny share of malformed lines, required files, text clean-up and per-user offsets.

Every failure raises :class:`DataError` with the file, the line and the fix.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from utils.data.specs import prepare_hint
from utils.runtime.errors import DataError

log = logging.getLogger(__name__)

# Malformed lines up to this share are skipped with a warning; beyond it the load fails.
MAX_BAD_LINE_FRACTION = 0.001
# Every value read from a data file is checked against what the arrays can hold and what the
# task means, where it is read: ids and times are int64, ratings are stars.
MAX_INT64 = 2**63 - 1
RATING_RANGE = (1.0, 5.0)


def parse_lines(
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


def parse_rating(value: Any) -> float:
    """A star rating: a number in RATING_RANGE (NaN, 99 or 1e30 would train and score nonsense)."""
    rating = float(value)
    if isinstance(value, bool) or not RATING_RANGE[0] <= rating <= RATING_RANGE[1]:
        raise ValueError(f"rating {value!r} outside {list(RATING_RANGE)}")
    return rating


def parse_time(value: Any) -> int:
    """A Unix time in seconds that fits int64 (a float is accepted when it is whole)."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"time {value!r} is not a whole number of seconds")
    seconds = int(value)
    if not 0 <= seconds <= MAX_INT64:
        raise ValueError(f"time {value!r} outside [0, 2^63)")
    return seconds


def parse_int64_id(text: str) -> int:
    """A numeric id that fits int64."""
    value = int(text)
    if not 0 <= value <= MAX_INT64:
        raise ValueError(f"id {text} outside [0, 2^63)")
    return value


def require_files(data_dir: Path, names: Iterable[str], dataset: str) -> None:
    for name in names:
        if not (data_dir / name).exists():
            raise DataError(
                f"{data_dir / name}: missing file of the {dataset} data set; "
                f"{prepare_hint(data_dir)}"
            )


def clean_text(text: Any) -> str:
    """HTML-unescape and trim a metadata string; anything else becomes ''."""
    if not isinstance(text, str):
        return ""
    return " ".join(html.unescape(text).split())


def offsets_and_positions(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR offsets of user-sorted interactions, and each interaction's position within its user."""
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    positions = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    return offsets, positions


def read_text(path: Path, encoding: str = "utf-8") -> str:
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
