"""Load a prepared data folder into one in-memory :class:`Dataset` of numpy arrays.

Two layouts are understood and detected from the files present:

* P5's Amazon layout (:mod:`utils.data.p5`);
* MovieLens 100K (:mod:`utils.data.movielens`);
* a user's own catalogue as ``prepare_data.py --dataset custom`` writes it
  (:mod:`utils.data.canonical`).

Every failure raises :class:`DataError` with the file, the line and the fix.
"""

from __future__ import annotations

from pathlib import Path

from utils.data.canonical import load_canonical
from utils.data.dataset import Dataset
from utils.data.movielens import load_movielens
from utils.data.p5 import load_p5
from utils.data.specs import CUSTOM_FILES, prepare_hint
from utils.runtime.errors import DataError


def data_files(data_dir: str | Path) -> list[Path]:
    """The folder and every file directly in it (the data a load reads, and the semantic IDs,
    codebooks and manifests beside them, read by this run or the next): what no output may
    overwrite. New files beside them, and the split cache's subfolder, stay writable."""
    folder = Path(data_dir)
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    return [folder, *files]


def load_dataset(data_dir: str | Path) -> Dataset:
    """Load the data folder, detecting its layout from the files it holds."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: no such data folder; {prepare_hint(data_dir)}")
    if (data_dir / CUSTOM_FILES[-1]).exists():
        return load_canonical(data_dir)
    if (data_dir / "u.data").exists() or (data_dir / "u.item").exists():
        return load_movielens(data_dir)
    return load_p5(data_dir)
