"""``prepare_data.py --dataset custom``: a user's own interaction and item files, read, checked
and cleaned (utils/data/custom.py, custom_meta.py), written in the prepared layout
(utils/data/canonical.py) and swapped in as one transaction (utils/data/prepare.py).

Everything is read and checked before the target folder is touched; the new files are then
staged beside it, loaded back through :func:`utils.data.load.load_dataset` and only then swapped
in, so any failure leaves the target exactly as it was.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from utils.data.canonical import write_canonical
from utils.data.custom import CleaningRules, InteractionColumns, clean, read_interactions
from utils.data.custom_meta import (
    NUMBER_FIELDS,
    MetaTable,
    missing_items,
    parse_text_columns,
    read_metadata,
    subset,
)
from utils.data.dataset import ItemMeta
from utils.data.load import load_dataset
from utils.data.prepare import stage_others, transaction
from utils.data.specs import CUSTOM_FILES, ML_FILES, P5_FILES
from utils.runtime.errors import DataError, OutputError
from utils.runtime.io import sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CustomSource:
    """The user's two files and how to read them."""

    interactions: Path
    items: Path
    columns: InteractionColumns = field(default_factory=InteractionColumns)
    item_id_col: str | None = None  # the metadata's item column; None: the interactions' one
    text_columns: str | None = None  # 'title=name,...'; None: fields named like their column
    missing_meta: str = "error"
    encoding: str = "utf-8"
    sep: str | None = None
    list_sep: str = "|"
    # a layout's own mapping (amazon2023): its columns optional, text_columns overrides its fields
    layout_text_columns: str | None = None
    allow_empty_text: bool = False  # prepare even when most items would have no text
    drop_incomplete: bool = False  # drop interaction rows missing a value instead of failing


# Items without any text get a fallback text naming their ID: semantic IDs of nothing. A small
# share is a warning, most of the catalogue an error unless the user says so.
EMPTY_TEXT_WARN, EMPTY_TEXT_MAX = 0.05, 0.5
EMPTY_FIELD_WARN = 0.9  # a mapped field empty for this share of items: probably misread


def text_report(meta: ItemMeta, table: MetaTable, source: CustomSource) -> dict[str, Any]:
    """Items left without any text, and each mapped field's share of items with no value; warns
    on a mostly empty field and refuses a mostly textless catalogue (DataError) unless
    ``source.allow_empty_text``."""
    n = len(meta.title)
    without = int((~meta.has_text()).sum())
    empty = {}
    for name in table.mapping:
        values = getattr(meta, name)
        if name in NUMBER_FIELDS:
            missing = np.isnan(values)
        elif name == "categories":
            missing = np.array([not c for c in values], dtype=bool)
        else:
            missing = values == ""
        empty[name] = round(float(missing.mean()), 4) if n else 0.0
        if n and empty[name] >= EMPTY_FIELD_WARN:
            log.warning(
                "%s: field %s (columns %s) has no value for %.0f%% of the items; check the "
                "column and its format",
                table.path,
                name,
                "+".join(table.mapping[name]),
                100 * empty[name],
            )
    share = without / n if n else 0.0
    if share > EMPTY_TEXT_MAX and not source.allow_empty_text:
        raise DataError(
            f"{table.path}: {without} of {n} items would have no text (title, brand, categories, "
            f"description all empty; fields read: {_mapping_text(table.mapping)}): their semantic "
            "IDs would encode nothing. Map the text columns with --text-columns, or pass "
            "--allow-empty-text to prepare anyway"
        )
    if share > EMPTY_TEXT_WARN:
        log.warning(
            "%s: %d of %d items have no text (fallback 'Item <id>')", table.path, without, n
        )
    return {
        "items_without_text": without,
        "text_columns_used": {f: list(c) for f, c in table.mapping.items()},
        "empty_share_by_field": empty,
    }


def _mapping_text(mapping: dict[str, tuple[str, ...]]) -> str:
    return ", ".join(f"{f}={'+'.join(c)}" for f, c in mapping.items()) or "none"


def _check_target(target: Path, source: CustomSource) -> None:
    """Refuse a target whose files preparing would replace without the user having named them:
    another data set, files of ours' names that are not a prepared folder, or the inputs."""
    if target.exists() and not target.is_dir():
        raise OutputError(f"--data-dir {target}: is a file, not a folder; give a folder")
    other = [n for n in (*P5_FILES, *ML_FILES) if (target / n).exists()]
    if not (target / CUSTOM_FILES[-1]).exists():
        other += [n for n in CUSTOM_FILES if (target / n).exists()]
    for flag, path in (("--interactions", source.interactions), ("--items", source.items)):
        if path.resolve().parent == target.resolve() and path.name in CUSTOM_FILES:
            raise OutputError(
                f"{flag} {path}: lies in --data-dir {target} under a name the prepared files "
                "take; move it or choose another --data-dir (nothing was changed)"
            )
    if other:
        raise OutputError(
            f"--data-dir {target}: holds files that are not a prepared catalogue "
            f"({', '.join(other)}); choose a new folder for your catalogue (nothing was changed)"
        )


def _read_items(source: CustomSource, item_ids: np.ndarray) -> MetaTable:
    """The metadata of the interaction items, each field fed as the layout and --text-columns
    say (custom_meta.text_column_mapping)."""
    preset = source.layout_text_columns
    mapping = (
        parse_text_columns(source.text_columns, allow_empty=preset is not None)
        if source.text_columns
        else None
    )
    return read_metadata(
        source.items,
        source.item_id_col or source.columns.item,
        item_ids,
        mapping,
        source.encoding,
        source.sep,
        source.list_sep,
        parse_text_columns(preset) if preset else None,
    )


def prepare_custom(
    source: CustomSource, data_dir: str | Path, rules: CleaningRules | None = None
) -> dict[str, Any]:
    """Prepare the user's catalogue into ``data_dir``; returns the loaded data set's summary."""
    rules = rules or CleaningRules()
    target = Path(data_dir)
    _check_target(target, source)
    started = time.perf_counter()
    raw = read_interactions(
        source.interactions, source.columns, source.encoding, source.sep, source.drop_incomplete
    )
    table = _read_items(source, raw.item_ids)
    keep = missing_items(table, source.missing_meta, raw)
    data = clean(raw, rules, keep, source.columns.rating)
    meta = subset(table.meta, data.item_codes)
    texts = text_report(meta, table, source)
    without = int((table.row[data.item_codes] < 0).sum())
    manifest = {
        "sources": {
            name: {"path": str(path.resolve()), "sha256": sha256_file(path)}
            for name, path in (("interactions", source.interactions), ("items", source.items))
        },
        "options": {
            "columns": asdict(source.columns),
            "item_id_col": source.item_id_col or source.columns.item,
            "text_columns": source.text_columns,
            "layout_text_columns": source.layout_text_columns,
            "missing_meta": source.missing_meta,
            "drop_incomplete": source.drop_incomplete,
            "list_sep": source.list_sep,
            **asdict(rules),
        },
        "report": {
            **data.report,
            "metadata_rows_read": table.rows_read,
            "items_without_metadata": without,
            "fallback_text": "Item <id>" if without or texts["items_without_text"] else None,
            **texts,
            "users": len(data.user_ids),
            "items": len(data.item_ids),
            "interactions": len(data.users),
        },
    }

    def fill(work: Path) -> dict[str, Any]:
        staging = stage_others(target, set(CUSTOM_FILES), work)
        write_canonical(
            staging,
            data.user_ids,
            data.item_ids,
            data.users,
            data.items,
            data.times,
            data.ratings,
            meta,
            manifest,
        )
        ds = load_dataset(staging)
        if not np.array_equal(ds.items, data.items) or ds.n_users != len(data.user_ids):
            raise DataError(f"{target}: the written files do not load back the same; a bug")
        return {**ds.summary(), "name": target.resolve().name}

    summary = transaction(target, fill)
    summary["preparation"] = manifest["report"]
    summary["seconds"] = round(time.perf_counter() - started, 2)
    summary["data_dir"] = str(target)
    log.info("prepared %s from %s and %s", target, source.interactions, source.items)
    return summary
