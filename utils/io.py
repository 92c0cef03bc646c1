"""Safe file input/output: atomic writes, a restricted unpickler and file checksums.

Every results file is written to a temporary sibling and renamed into place, so
an interrupted run never leaves a half-written file behind.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
    return json.dumps(obj, indent=indent, sort_keys=sort_keys, default=_json_default, allow_nan=True) + "\n"


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2, sort_keys: bool = False) -> None:
    atomic_write_text(path, to_json(obj, indent=indent, sort_keys=sort_keys))


def read_json(path: str | Path) -> Any:
    with open(path, "r", encoding="utf-8") as f:
        return json.load(f)


class UnsafePickleError(pickle.UnpicklingError):
    """Raised when a pickle asks for anything beyond builtin containers and scalars."""


_SAFE_BUILTINS = {
    ("builtins", name)
    for name in ("dict", "list", "tuple", "set", "frozenset", "str", "bytes", "int", "float", "bool", "complex")
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
        raise UnsafePickleError(f"refusing to load {module}.{name}: only builtin containers and scalars are allowed")


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
