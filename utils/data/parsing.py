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
