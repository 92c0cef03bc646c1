"""Semantic IDs kept across a catalogue change (``semantic_id_generator.py --extend``).

Refitting the quantizer after any change to the catalogue moves most IDs: Lloyd's iterations are
chaotic, so one changed text can flip an assignment early and every later one with it (see
`compare_with_previous`, which a refit reports). Every model trained on the old IDs then reads
other items. Extending keeps the saved codebooks instead: each item of the current catalogue is
encoded with them, exactly as a new item is; an item whose codes come out as before keeps its
whole ID (collision code included), an edited item whose codes moved and a new item take the next
free collision number of their codes, and items no longer in the data are dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from src.semantic_ids.generator import embed, item_texts
from src.semantic_ids.new_items import SavedEncoder
from src.semantic_ids.rqkmeans import code_usage, collision_report
from utils.data.dataset import Dataset
from utils.data.semantic import IDS_FILE, SemanticIds, ids_digest, read_semantic_ids_file
from utils.runtime.errors import DataError

log = logging.getLogger(__name__)


def extend_codes(
    old_ids: list[str],
    old_codes: np.ndarray,
    item_ids: list[str],
    prefix: np.ndarray,
    collision_size: int,
) -> tuple[np.ndarray, dict[str, int]]:
    """Full IDs (n, levels + 1) for ``item_ids`` whose saved-codebook codes are ``prefix``: an old
    item with the same codes keeps its ID; the others number on after the highest collision code
    their codes already hold (in item order), so no kept ID changes. Returns the codes and the
    counts kept / re_encoded / new / dropped."""
    row = {item: r for r, item in enumerate(old_ids)}
    old_rows = np.array([row.get(i, -1) for i in item_ids], dtype=np.int64)
    known = old_rows >= 0
    same = known.copy()
    same[known] = (old_codes[old_rows[known], :-1] == prefix[known]).all(1)
    codes = np.empty((len(item_ids), prefix.shape[1] + 1), dtype=np.int64)
    codes[same] = old_codes[old_rows[same]]
    highest: dict[tuple[int, ...], int] = {}
    for key, collision in zip(map(tuple, codes[same, :-1].tolist()), codes[same, -1].tolist()):
        highest[key] = max(highest.get(key, -1), collision)
    for i in np.flatnonzero(~same):
        key = tuple(prefix[i].tolist())
        number = highest.get(key, -1) + 1
        if number >= collision_size:
            raise ValueError(
                f"item {item_ids[i]!r}: its codes {key} already hold all {collision_size} "
                "collision numbers; refit the IDs (without --extend) or raise --collision-size"
            )
        highest[key] = number
        codes[i, :-1], codes[i, -1] = prefix[i], number
    report = {
        "kept": int(same.sum()),
        "re_encoded": int((known & ~same).sum()),
        "new": int((~known).sum()),
        "dropped": len(old_ids) - int(known.sum()),
    }
    return codes, report


@dataclass
class Extended:
    codes: np.ndarray  # (n_items, levels + 1), row i = item index i of the data set
    header: dict[str, Any]  # the saved header, now naming this data set and the extension
    stats: dict[str, Any]  # usage and collisions of the extended IDs, and the counts


def extend(
    ds: Dataset, ids_dir: Path, cache_dir: str | Path, device: str, encode_processes: int = 0
) -> Extended:
    """The IDs of ``ds``'s items from the saved codebooks in ``ids_dir`` (see the module)."""
    enc = SavedEncoder.load(ids_dir)
    if enc.header.get("collaborative"):
        raise DataError(
            f"{ids_dir / IDS_FILE}: collaborative IDs join a trained SASRec's item vectors; "
            "extending them would place every changed item by its text alone. Retrain SASRec and "
            "regenerate them instead"
        )
    texts = item_texts(ds, enc.cfg)
    x, _ = embed(texts.texts, enc.cfg, cache_dir, device, encode_processes=encode_processes)
    prefix = enc.quantizer.encode(x)
    collision_size = int(enc.header["collision_size"])
    codes, counts = extend_codes(enc.item_ids, enc.codes, list(ds.item_ids), prefix, collision_size)
    sizes = [*enc.quantizer.codebook_sizes, collision_size]
    previous = {
        "ids_digest": ids_digest(SemanticIds(enc.codes, sizes, enc.header)),
        "data_checksum": enc.header.get("data_checksum"),
    }
    header = {
        **{k: v for k, v in enc.header.items() if k not in ("format", "run_record")},
        "data_checksum": ds.checksum,
        "n_items": ds.n_items,
        "extended_from": {**previous, **counts},
    }
    stats = {
        "extended_from": header["extended_from"],
        "usage": code_usage(codes[:, :-1], enc.quantizer.codebook_sizes),
        "collisions": collision_report(codes[:, :-1]),
    }
    log.info(
        "extended %s: %d IDs kept, %d items re-encoded (their text moved their codes), %d new, "
        "%d dropped; the codebooks are unchanged",
        ids_dir / IDS_FILE,
        *counts.values(),
    )
    return Extended(codes, header, stats)


def compare_with_previous(path: Path, item_ids: list[str], codes: np.ndarray) -> dict | None:
    """How many items present in both the previous ID file at ``path`` (if readable) and the new
    IDs got another ID: what a refit costs every model trained on the old ones."""
    try:
        _, old_ids, old_codes = read_semantic_ids_file(path)
    except (DataError, OSError):
        return None
    row = {item: r for r, item in enumerate(old_ids)}
    rows = np.array([row.get(i, -1) for i in item_ids], dtype=np.int64)
    both = rows >= 0
    if not both.any() or old_codes.shape[1] != codes.shape[1]:
        return None
    changed = int((old_codes[rows[both]] != codes[both]).any(1).sum())
    return {"items_in_both": int(both.sum()), "ids_changed": changed}
