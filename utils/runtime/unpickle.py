"""The restricted unpickler: the one way this toolkit reads a pickle (P5's rating splits).

A pickle of plain data (dicts, lists, strings, numbers) never needs ``find_class`` for anything
else, so refusing every other global blocks code execution through ``__reduce__`` without
limiting a legitimate data file.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any


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
