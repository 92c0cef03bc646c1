"""The semantic-ID file (`<data-dir>/semantic_ids.json`): its one writer and its readers.

The file is keyed by original item ID (asin, movie id) so people can read it;
models get `SemanticIds.codes`, aligned to the dataset's item indices. A file
that does not match the dataset (other items, other data checksum) is refused
with the command that regenerates it, instead of silently misaligning codes.

The generator writes codebooks.npz, then semantic_id_stats.json, then
semantic_ids.json, each atomically; semantic_ids.json is written last and
names the other two by checksum, so a run killed half-way leaves a set whose
readers (:func:`check_codebooks`, :func:`check_stats`) refuse it instead of mixing runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from utils.data.dataset import Dataset
from utils.runtime import argtypes
from utils.runtime.errors import DataError
from utils.runtime.io import atomic_write_text, parse_json

FORMAT = "semantic-ids/1"
IDS_FILE = "semantic_ids.json"
CODEBOOKS_FILE = "codebooks.npz"
STATS_FILE = "semantic_id_stats.json"
log = logging.getLogger(__name__)

# What a semantic-ID file may declare: the generator's own flag ceilings, so a hand-edited
# codebook size of 10^12 never reaches a model's embedding table.
MAX_CODEBOOK = int(argtypes.codebook_size.high)  # type: ignore[attr-defined]
MAX_LEVELS = int(argtypes.levels.high)  # type: ignore[attr-defined]

GENERATE_HINT = "run `python semantic_id_generator.py --data-dir {data_dir}` to (re)generate it"


@dataclass
class SemanticIds:
    """Codes of every item: `levels` k-means codes then one collision code.

    ``codebook_sizes[j]`` bounds column j of ``codes`` (the last entry is the
    collision level's size), so a model can size one token table per column.
    """

    codes: np.ndarray  # int64 (n_items, levels + 1), row i = item index i
    codebook_sizes: list[int]  # len levels + 1
    meta: dict[str, Any] = field(
        default_factory=dict
    )  # the file's header: model, fit_on, run record, ...

    @property
    def levels(self) -> int:
        """Number of k-means levels (the collision column not counted)."""
        return self.codes.shape[1] - 1

    @property
    def model(self) -> str:
        return str(self.meta.get("model", ""))


_NUMBER_LIST = re.compile(r"\[\s+([-\d.,\s]+?)\s+\]")


def _compact_number_lists(text: str) -> str:
    """Put each list of numbers on one line (indented JSON puts every number on its own line)."""
    return _NUMBER_LIST.sub(
        lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text
    )


def dumps_semantic_ids(header: dict[str, Any], item_ids: Sequence[str], codes: np.ndarray) -> str:
    """The file's text: header fields, then ``"items": {original id: [c1, ..., cL, collision]}``."""
    if "items" in header:
        raise ValueError("header must not contain 'items'")
    body = {
        "format": FORMAT,
        **header,
        "items": {str(i): [int(c) for c in row] for i, row in zip(item_ids, codes)},
    }
    text = json.dumps(body, indent=2, ensure_ascii=False, allow_nan=False)
    return _compact_number_lists(text) + "\n"


def write_semantic_ids(
    path: str | Path, header: dict[str, Any], item_ids: Sequence[str], codes: np.ndarray
) -> None:
    atomic_write_text(path, dumps_semantic_ids(header, item_ids, codes))


def read_semantic_ids_file(path: str | Path) -> tuple[dict[str, Any], list[str], np.ndarray]:
    """(header, original item ids, codes) exactly as stored; DataError when unreadable."""
    path = Path(path)
    hint = GENERATE_HINT.format(data_dir=path.parent)
    if not path.is_file():
        raise DataError(f"{path}: no semantic IDs yet; {hint}")
    try:
        doc = parse_json(path.read_text(encoding="utf-8"), path, hint)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); {hint}") from exc
    if (
        not isinstance(doc, dict)
        or doc.get("format") != FORMAT
        or not isinstance(doc.get("items"), dict)
    ):
        found = doc.get("format") if isinstance(doc, dict) else None
        raise DataError(f"{path}: not a {FORMAT} file (format={found!r}); {hint}")
    items = doc.pop("items")
    sizes, collision = doc.get("codebook_sizes"), doc.get("collision_size")
    if (
        not isinstance(sizes, list)
        or not 1 <= len(sizes) <= MAX_LEVELS
        or not all(_is_int(v) and 1 <= v <= MAX_CODEBOOK for v in [*sizes, collision])
    ):
        raise DataError(
            f"{path}: codebook_sizes must be 1 to {MAX_LEVELS} integers and collision_size an "
            f"integer, each in [1, {MAX_CODEBOOK}] (found {str(sizes)[:60]}, {collision!r}); "
            f"{hint}"
        )
    if not isinstance(doc.get("data_checksum"), str):
        raise DataError(f"{path}: data_checksum must be a string; {hint}")
    width = len(sizes) + 1
    bad = next(
        (
            (item, row)
            for item, row in items.items()
            if not (isinstance(row, list) and len(row) == width and all(map(_is_int, row)))
        ),
        None,
    )
    if bad is not None:
        raise DataError(
            f"{path}: expected {width} integer codes per item (levels + collision), item "
            f"{bad[0]!r} has {str(bad[1])[:60]}; {hint}"
        )
    try:
        codes = np.array(list(items.values()), dtype=np.int64).reshape(len(items), width)
    except OverflowError as exc:
        raise DataError(f"{path}: codes outside their codebook sizes ({exc}); {hint}") from exc
    bounds = np.array([*sizes, collision])
    if (codes < 0).any() or (codes >= bounds).any():
        raise DataError(f"{path}: codes outside their codebook sizes {bounds.tolist()}; {hint}")
    return doc, list(items), codes


def _is_int(value: Any) -> bool:
    return type(value) is int  # not a bool, a float or a numeric string


def codebooks_sha256(centroids: Iterable[np.ndarray]) -> str:
    """sha256 of the centroid values (the .npz container itself carries zip timestamps)."""
    h = hashlib.sha256()
    for c in centroids:
        h.update(np.ascontiguousarray(c, dtype="<f4").tobytes())
    return h.hexdigest()


def _mismatch(path: Path, header: dict[str, Any]) -> DataError:
    hint = GENERATE_HINT.format(data_dir=path.parent)
    expected = str(header.get("codebooks_sha256"))[:12]
    return DataError(
        f"{path}: written by another generator run than {path.parent / IDS_FILE} (which expects "
        f"codebooks_sha256 {expected}...), an interrupted run or mixed copies; {hint}"
    )


def check_codebooks(
    path: str | Path, centroids: Iterable[np.ndarray], header: dict[str, Any]
) -> None:
    """Refuse codebooks that are not the ones the semantic-ID file was encoded with."""
    if codebooks_sha256(centroids) != header.get("codebooks_sha256"):
        raise _mismatch(Path(path), header)


def check_stats(path: str | Path, stats: Any, header: dict[str, Any]) -> None:
    """Refuse a statistics file written by another generator run than the semantic-ID file."""
    keys = ("codebooks_sha256", "data_checksum")
    if not isinstance(stats, dict) or any(stats.get(k) != header.get(k) for k in keys):
        raise _mismatch(Path(path), header)


def load_semantic_ids(data_dir: str | Path, ds: Dataset) -> SemanticIds:
    """The IDs of `ds` from `<data_dir>/semantic_ids.json`, aligned to its item indices."""
    path = Path(data_dir) / IDS_FILE
    header, item_ids, codes = read_semantic_ids_file(path)
    hint = GENERATE_HINT.format(data_dir=data_dir)
    if header.get("data_checksum") != ds.checksum:
        raise DataError(
            f"{path}: generated from other data "
            f"(checksum {str(header.get('data_checksum'))[:12]}..., "
            f"this data set {ds.checksum[:12]}...); {hint}"
        )
    row = {item: r for r, item in enumerate(item_ids)}
    missing = [i for i in ds.item_ids if i not in row]
    if missing or len(item_ids) != ds.n_items:
        raise DataError(
            f"{path}: covers {len(item_ids)} items, the data set has {ds.n_items} "
            f"({len(missing)} missing, e.g. {missing[:3]}); {hint}"
        )
    aligned = codes[np.fromiter((row[i] for i in ds.item_ids), dtype=np.int64, count=ds.n_items)]
    sizes = [int(s) for s in header["codebook_sizes"]] + [int(header["collision_size"])]
    return SemanticIds(codes=aligned, codebook_sizes=sizes, meta=header)


def ids_digest(sids: SemanticIds, length: int = 12) -> str:
    """Short sha256 of the aligned codes and their sizes: tells apart checkpoints trained on other
    IDs."""
    h = hashlib.sha256(json.dumps(list(sids.codebook_sizes)).encode())
    h.update(np.ascontiguousarray(sids.codes, dtype="<i8").tobytes())
    return h.hexdigest()[:length]


def folder_ids_digest(data_dir: str | Path, semantic_dir: str | Path | None = None) -> str:
    """`ids_digest` of the IDs in ``semantic_dir`` (default: the data folder) for that data set:
    how a checkpoint trained on them is named (``...-ids<digest>.pt``)."""
    from utils.data.load import load_dataset  # the loader itself reads this module

    return ids_digest(load_semantic_ids(semantic_dir or data_dir, load_dataset(data_dir)))


def quantizer_name(meta: dict[str, Any]) -> str | None:
    """The quantizer that made the IDs: named in the header (rqvae, random) or implied by rqkmeans'
    own 'kmeans' field (its header predates the name); None for a file that says neither
    (hand-written)."""
    return meta.get("quantizer") or ("rqkmeans" if "kmeans" in meta else None)


def semantic_ids_record(
    sids: SemanticIds, ids_dir: str | Path, cold_fraction: float, split_seed: int
) -> dict[str, Any]:
    """What a results file says about the semantic IDs a run used, with a hold-out consistency
    check.

    Codebooks fitted on warm items only must have held out the same cold items
    as this run's split; otherwise the cold items' embeddings shaped the
    codebooks (no label leak, but no longer the "brand-new item" setting), and
    a warning says so.
    """
    meta = sids.meta
    # A split without cold items (the sequential 'paper' and 'holdout' protocols) has no item
    # that should be new to the codebooks.
    same_holdout = cold_fraction == 0 or (
        meta.get("fit_on") == "warm"
        and meta.get("cold_fraction") == cold_fraction
        and meta.get("split_seed") == split_seed
    )
    if not same_holdout:
        log.warning(
            "semantic IDs were fitted on %s items (cold fraction %s, split seed %s), "
            "not on the warm items of this split (cold fraction %s, split seed %s): "
            "cold items are not brand-new to the codebooks",
            meta.get("fit_on"),
            meta.get("cold_fraction"),
            meta.get("split_seed"),
            cold_fraction,
            split_seed,
        )
    return {
        "dir": str(ids_dir),
        "quantizer": quantizer_name(meta),
        "levels": int(sids.levels),
        "code_columns": int(sids.codes.shape[1]),
        "codebook_sizes": list(sids.codebook_sizes),
        "model": meta.get("model"),
        "fit_on": meta.get("fit_on"),
        "codebooks_sha256": meta.get("codebooks_sha256"),
        "ids_digest": ids_digest(sids),
        "cold_holdout_matches_split": bool(same_holdout),
    }
