"""How every script fails: one ``error: ...`` line on stderr and exit code 1, never a traceback.

A user who points a script at a damaged folder needs the file, the problem and
the fix, not forty lines of stack. ``--debug`` (or ``SEMANTIC_IDS_DEBUG=1``)
brings the traceback back for developers. Ctrl-C prints one line and exits
130, the shell's convention for SIGINT.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import pickle
import re
import sys
import traceback
import zipfile
from collections.abc import Callable
from typing import Any, NoReturn

from utils.runtime import distributed

DEBUG_ENV = "SEMANTIC_IDS_DEBUG"
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class DataError(ValueError):
    """A data file is missing or malformed; the message names the file, the line and the fix."""


class CheckpointError(DataError):
    """A checkpoint that is not ours to load (foreign objects, damaged file)."""


class OutputError(DataError):
    """An output path that cannot be written; raised before any work starts."""


class UsageError(ValueError):
    """A flag asks for something this machine or run cannot do (say, --device cuda without CUDA)."""


class NonFiniteScoresError(ValueError):
    """A model produced NaN or infinite scores: it diverged, and no metric of it may be reported."""


# Failures a user can cause and fix; anything else is a bug and keeps its traceback.
KNOWN_ERRORS: tuple[type[BaseException], ...] = (
    DataError,
    UsageError,
    NonFiniteScoresError,
    OSError,
    json.JSONDecodeError,
    UnicodeDecodeError,
    zipfile.BadZipFile,
    pickle.UnpicklingError,
    EOFError,
    MemoryError,  # inputs or flags too large for this machine's memory (or address-space limit)
)

_OS_HINTS = {
    errno.EACCES: "check the permissions or choose another path",
    errno.EPERM: "check the permissions or choose another path",
    errno.EROFS: "the file system is read-only; choose another path",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "the path is a folder; give a file name",
    errno.ENOSPC: "the disk is full; free some space and run again",
    errno.EDQUOT: "your disk quota is used up; free some space and run again",
    errno.EFBIG: "over the file-size limit (ulimit -f); raise it or choose another path",
    errno.EIO: "the write did not complete (a full or failing disk); check it and run again",
}


def add_debug_flag(parser: argparse.ArgumentParser | Any) -> None:
    """``--debug``: show the full traceback of a failure (read by :func:`run_script` from argv)."""
    parser.add_argument("--debug", action="store_true", help="on failure, show the full traceback")


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with every control character (terminal escapes, bells, newlines) shown as \\xNN:
    text read from a file cannot move the cursor, retitle the window or fake a line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def error_message(exc: BaseException) -> str:
    """The one-line message for a known failure: what went wrong, in which file, and the fix."""
    if isinstance(exc, OSError) and exc.errno is not None:
        where = f", {exc.filename}" if exc.filename else ""
        hint = _OS_HINTS.get(exc.errno or 0, "check the path and run again")
        return f"{exc.strerror or exc}{where}: {hint}"
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON at line {exc.lineno} ({exc.msg}): the file is damaged; re-create it"
    if isinstance(exc, MemoryError):
        return (
            f"out of memory ({' '.join(str(exc).split()) or 'MemoryError'}): the inputs or flags "
            "need more memory than this machine (or its address-space limit, ulimit -v) gives; "
            "use smaller inputs or sizes, or a machine with more memory"
        )
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"not UTF-8 text ({exc.reason} at byte {exc.start}): the file is damaged; re-create it"
        )
    return " ".join(str(exc).split()) or type(exc).__name__


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def run_script(
    main: Callable[[], Any], user_errors: tuple[type[BaseException], ...] = ()
) -> NoReturn:
    """Run a script's ``main()`` and exit: 0 on success (or main's int), 1 with one line on a known
    failure.

    ``user_errors`` adds exception types that a script's library raises with a
    message meant for the user (the semantic-ID code's ValueErrors name the flag to change).
    """
    debug = _debug_requested(sys.argv[1:])
    try:
        result = main()
    except KeyboardInterrupt:
        _report("interrupted: finished outputs are kept, nothing is left half-written", debug)
        sys.exit(EXIT_INTERRUPTED)
    except KNOWN_ERRORS + user_errors as exc:
        _report(f"error: {printable(error_message(exc))}", debug)
        sys.exit(EXIT_ERROR)
    distributed.shutdown()
    sys.exit(result if isinstance(result, int) and not isinstance(result, bool) else 0)


def _report(line: str, debug: bool) -> None:
    sys.stdout.flush()  # results printed so far come first, the error line last
    if debug:
        traceback.print_exc()
    print(line, file=sys.stderr)
