"""Safe file input/output: atomic writes, a restricted unpickler and file checksums.

Every results file is written to a temporary sibling and renamed into place, so
an interrupted run never leaves a half-written file behind. A temporary file
names its writer's process id; one whose writer is gone (killed mid-write) is
removed the next time anything is written beside it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from utils.runtime.errors import DataError, OutputError

# A temporary file or folder of ours: ".<name>.pid<pid>.<random>.tmp" (older runs:
# ".<name>.<random>.tmp").
_TEMP_NAME = re.compile(r"^\.(?P<name>.+?)\.(?:pid(?P<pid>\d+)\.[a-z0-9_]+|[a-z0-9_]{8})\.tmp$")
# A temporary name without a process id is taken as abandoned once it is this old.
STALE_UNTAGGED_SECONDS = 3600.0


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def is_stale_temp(path: Path, now: float | None = None) -> bool:
    """True for a temporary file or folder of our naming whose writer can no longer finish it."""
    match = _TEMP_NAME.match(path.name)
    if not match:
        return False
    if match["pid"]:
        return int(match["pid"]) != os.getpid() and not _process_alive(int(match["pid"]))
    try:
        age = (time.time() if now is None else now) - path.lstat().st_mtime
    except FileNotFoundError:
        return False
    return age > STALE_UNTAGGED_SECONDS


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete our abandoned temporary files and folders in ``folder`` (left by a SIGKILL); returns
    them."""
    import shutil

    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        if is_stale_temp(entry):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def temp_prefix(name: str) -> str:
    """The start of a temporary name for ``name``, tagged with this process (to tell a stale one
    later)."""
    return f".{name}.pid{os.getpid()}."


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    """Let numpy scalars and arrays and paths go into JSON without manual casting."""
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serialisable")


def to_json(obj: Any, indent: int | None = 2, sort_keys: bool = False) -> str:
    return (
        json.dumps(obj, indent=indent, sort_keys=sort_keys, default=_json_default, allow_nan=True)
        + "\n"
    )


def atomic_write_json(
    path: str | Path, obj: Any, indent: int | None = 2, sort_keys: bool = False
) -> None:
    atomic_write_text(path, to_json(obj, indent=indent, sort_keys=sort_keys))


def read_json(path: str | Path, fix: str = "re-run the script that wrote it") -> Any:
    """Parse a JSON file; a truncated or non-UTF-8 file is refused with its name, the line and
    ``fix``."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}:{exc.lineno}: invalid JSON ({exc.msg}), the file is truncated or damaged; "
            f"{fix}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (byte {exc.start}), the file is damaged; {fix}"
        ) from exc


def check_writable(
    outputs: dict[str, str | Path | None], folders: dict[str, str | Path | None] | None = None
) -> None:
    """Fail now, before any work, if an output file or folder cannot be written (keys name the
    flags)."""
    for flag, path in outputs.items():
        if path is not None:
            if Path(path).is_dir():
                example = Path(path) / "results.json"
                raise OutputError(f"{flag} {path}: is a folder; give a file name such as {example}")
            _probe_folder(flag, Path(path).parent, path)
    for flag, folder in (folders or {}).items():
        if folder is not None:
            _probe_folder(flag, Path(folder), folder)


def _probe_folder(flag: str, folder: Path, shown: str | Path) -> None:
    """Create ``folder`` if needed and write (then delete) a temporary file in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix("probe"), suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise OutputError(
            f"{flag} {shown}: cannot write there ({exc.strerror or exc}); choose a writable "
            "path, nothing has been run yet"
        ) from exc


class UnsafePickleError(pickle.UnpicklingError):
    """Raised when a pickle asks for anything beyond builtin containers and scalars."""


_SAFE_BUILTINS = {
    ("builtins", name)
    for name in (
        "dict",
        "list",
        "tuple",
        "set",
        "frozenset",
        "str",
        "bytes",
        "int",
        "float",
        "bool",
        "complex",
    )
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global except plain builtin containers and scalars.

    Pickles of plain data (dicts, lists, strings, numbers) never need
    ``find_class`` for anything else, so refusing the rest blocks code execution
    through ``__reduce__`` without limiting legitimate data files.
    """

    def find_class(self, module: str, name: str) -> Any:
        if module == "__builtin__":  # Python 2 protocols name the same module differently
            module = "builtins"
        if (module, name) in _SAFE_BUILTINS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"refusing to load {module}.{name}: only builtin containers and scalars are allowed"
        )


def restricted_pickle_load(path: str | Path) -> Any:
    with open(path, "rb") as f:
        return RestrictedUnpickler(io.BufferedReader(f)).load()


def sha256_files(paths: Iterable[str | Path]) -> str:
    """One checksum over several files (names and contents), stable across machines."""
    digest = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        digest.update(p.name.encode())
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
