"""New items after the fact: the saved quantizer and the configuration a semantic-ID file was
generated with, read back and used to encode items it has never seen, without refitting; the
existing IDs never change."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from src.semantic_ids.collaborative import pad_text_only
from src.semantic_ids.config import QUANTIZERS, GeneratorConfig, Quantizer
from src.semantic_ids.embeddings import canonical_embeddings, load_tokenizer, require_finite
from src.semantic_ids.generator import embed
from src.semantic_ids.item_text import FIELDS, build_item_texts, token_truncator
from src.semantic_ids.random_ids import NO_NEW_ITEMS, RandomCodes
from src.semantic_ids.rqkmeans import collision_codes
from utils.data.dataset import ItemMeta
from utils.data.semantic import IDS_FILE, check_codebooks, read_semantic_ids_file
from utils.reporting.results import RUN_RECORD
from utils.runtime.errors import DataError
from utils.runtime.io import parse_json, regular_file


def load_quantizer(out_dir: Path, header: dict[str, Any]) -> Quantizer:
    """The quantizer a semantic-ID file was encoded with, refused unless its checksum matches."""
    kind = header.get("quantizer", "rqkmeans")
    if kind not in QUANTIZERS:
        raise DataError(
            f"{out_dir / IDS_FILE}: unknown quantizer {kind!r}; regenerate the semantic IDs"
        )
    cls, name = QUANTIZERS[kind]
    q = cls.load(out_dir / name)
    check_codebooks(out_dir / name, q.arrays(), header)
    return q


def encode_new_items(
    q: Quantizer, existing: np.ndarray, embeddings: np.ndarray, collision_size: int
) -> np.ndarray:
    """Full IDs (m, levels + 1) for new items with the saved codebooks, no refitting.

    New items take the next free collision numbers after the items already
    holding their codes, so existing IDs never change.
    """
    new = q.encode(embeddings)
    prefix = np.vstack([existing[:, :-1], new])
    order = np.concatenate([existing[:, -1], np.full(len(new), np.iinfo(np.int64).max)])
    collisions = collision_codes(prefix, collision_size, order)
    if not np.array_equal(collisions[: len(existing)], existing[:, -1]):
        raise ValueError(
            "the saved collision codes are not numbered 0..n-1 per group; "
            "regenerate the semantic IDs"
        )
    return np.column_stack([new, collisions[len(existing) :]])


NEW_ID_PREFIX = "new-"
NEW_ITEMS_LIMIT = 256 * 2**20  # texts of new items read whole: larger is no batch of new items
# How an item's text is built (src/semantic_ids/item_text.py), for --help and the docs.
TEXT_TEMPLATE = (
    "'Title: <title>. Brand: <brand>. Categories: <a>, <b>. Year: <year>. Price: $<price>. "
    "Sales rank: <rank>. Description: <description>.' (the fields the IDs were generated with, in "
    "that order; absent fields left out)"
)


def fields_text(record: dict[str, Any], cfg: GeneratorConfig, where: str) -> str:
    """An item's text from its fields (``title``, ``brand``, ``categories`` as a list or a
    comma-separated string, ...), built exactly as the catalogue items' texts were."""
    unknown = sorted(set(record) - set(FIELDS) - {"id", "text"})
    values = {f: record[f] for f in FIELDS if record.get(f) not in (None, "", [])}
    if unknown or not values:
        raise DataError(
            f"{where}: give an item's text as 'text' or as fields among {', '.join(FIELDS)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    cats = values.get("categories", [])
    cats = [c.strip() for c in cats.split(",")] if isinstance(cats, str) else [str(c) for c in cats]

    def number(field: str) -> np.ndarray:
        try:
            return np.array([float(values.get(field, "nan"))])
        except (TypeError, ValueError):
            raise DataError(f"{where}: {field} must be a number, got {values[field]!r}") from None

    meta = ItemMeta(
        title=np.array([str(values.get("title", ""))], dtype=object),
        brand=np.array([str(values.get("brand", ""))], dtype=object),
        categories=[[c for c in cats if c]],
        description=np.array([str(values.get("description", ""))], dtype=object),
        price=number("price"),
        sales_rank=number("sales_rank"),
        year=number("year"),
    )

    def truncate(texts: list[str], max_tokens: int) -> list[str]:
        return token_truncator(load_tokenizer(cfg.model))(texts, max_tokens)

    ids = [str(record.get("id", "new"))]
    fields = cfg.text_fields
    return build_item_texts(meta, ids, fields, cfg.max_description_tokens, truncate).texts[0]


def read_new_items(
    path: Path, cfg: GeneratorConfig | None = None
) -> tuple[list[str], list[str] | None, np.ndarray | None]:
    """(ids, texts, embeddings) from .txt (one text per line), .jsonl (``id`` and ``text``, or
    ``id`` and the item's fields, which need ``cfg``) or .npy (embeddings). Items without an ``id``
    are named ``new-<line>``, a name no catalogue ID of this toolkit's data sets takes."""
    if not path.is_file():
        raise DataError(
            f"{path}: no such file; give one text per line (.txt), JSON lines with 'text' or the "
            "item's fields (.jsonl) or .npy"
        )
    if path.suffix == ".npy":
        x = np.load(path, allow_pickle=False)
        if x.ndim != 2:
            raise DataError(
                f"{path}: expected a 2-d array of embeddings (n, dim), got shape {x.shape}"
            )
        x = require_finite(x.astype(np.float64), str(path), "give finite embeddings")
        x = canonical_embeddings(x)
        return [f"{NEW_ID_PREFIX}{i + 1}" for i in range(len(x))], None, x
    if path.suffix not in (".jsonl", ".txt"):
        raise DataError(
            f"{path}: give new items as .jsonl (one JSON object a line), .txt (one text a line) or "
            ".npy (embeddings); a table such as .csv would be read line by line, its header as "
            "an item"
        )
    regular_file(path, NEW_ITEMS_LIMIT, "give a file of new items")
    ids, texts = [], []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            where = f"{path}, line {lineno}"
            rec = parse_json(line, where, "expected a JSON object per line")
            if not isinstance(rec, dict) or ("text" not in rec and cfg is None):
                raise DataError(
                    f"{where}: expected a JSON object with a 'text' field (and optionally 'id')"
                )
            ids.append(str(rec.get("id", f"{NEW_ID_PREFIX}{lineno}")))
            texts.append(str(rec["text"]) if "text" in rec else fields_text(rec, cfg, where))
        else:
            ids.append(f"{NEW_ID_PREFIX}{lineno}")
            texts.append(line.strip())
    if not texts:
        raise DataError(f"{path}: no texts found")
    return ids, texts, None


def generator_config(ids_dir: Path, header: dict[str, Any]) -> GeneratorConfig:
    """The configuration a semantic-ID file was generated with (from its run record)."""
    if RUN_RECORD not in header:
        raise DataError(
            f"{ids_dir / IDS_FILE}: no '{RUN_RECORD}' in its header (written by an older version); "
            f"regenerate it with `python semantic_id_generator.py --data-dir ...`"
        )
    return GeneratorConfig.from_dict(header[RUN_RECORD]["config"])


@dataclass
class SavedEncoder:
    """What encodes new items like the catalogue's: the saved quantizer, the configuration the IDs
    were generated with (embedding model, text fields) and the catalogue's IDs."""

    ids_dir: Path
    header: dict[str, Any]
    item_ids: list[str]
    codes: np.ndarray
    quantizer: Quantizer
    cfg: GeneratorConfig

    @classmethod
    def load(cls, ids_dir: Path) -> SavedEncoder:
        header, item_ids, codes = read_semantic_ids_file(ids_dir / IDS_FILE)
        q = load_quantizer(ids_dir, header)
        if isinstance(q, RandomCodes):
            raise ValueError(NO_NEW_ITEMS)  # before any text is embedded
        return cls(ids_dir, header, item_ids, codes, q, generator_config(ids_dir, header))

    def encode(
        self,
        ids: list[str],
        texts: list[str] | None,
        x: np.ndarray | None,
        cache_dir: str | Path,
        device: str,
        encode_processes: int = 0,
    ) -> dict[str, Any]:
        """IDs for new items (texts, or their embeddings ``x``), and the catalogue items sharing
        each one's longest prefix; an ID that names a catalogue item is refused."""
        clash = sorted(set(ids) & set(self.item_ids))
        if clash:
            raise DataError(
                f"new item ID(s) {', '.join(clash[:3])} already name catalogue items; give other "
                f"IDs (or none: new items are then named {NEW_ID_PREFIX}1, {NEW_ID_PREFIX}2, ...)"
            )
        if x is None:
            x, _ = embed(texts, self.cfg, cache_dir, device, encode_processes=encode_processes)
        joined = self.header.get("collaborative")
        if joined:  # collaborative IDs: a new item has no interactions, so text only
            x = pad_text_only(x, float(joined["weight"]), int(joined["width"]))
        codes = encode_new_items(self.quantizer, self.codes, x, int(self.header["collision_size"]))
        return {
            "model": self.cfg.model,
            "codebooks_sha256": self.header["codebooks_sha256"],
            "items": {i: [int(c) for c in row] for i, row in zip(ids, codes)},
            "texts": dict(zip(ids, texts)) if texts is not None else {},
            "neighbours": {
                i: [
                    {"item": self.item_ids[r], "shared_levels": n}
                    for r, n in prefix_neighbours(self.codes, row)
                ]
                for i, row in zip(ids, codes)
            },
        }


def prefix_neighbours(codes: np.ndarray, code: np.ndarray, k: int = 10) -> list[tuple[int, int]]:
    """Up to ``k`` catalogue items (rows of ``codes``) sharing the longest code prefix with
    ``code``, deepest shared level first (then by row): [(row, shared levels)], none sharing 0."""
    same = np.cumprod(codes == np.asarray(code)[None, :], axis=1)
    shared = same.sum(1)
    order = np.lexsort((np.arange(len(codes)), -shared))[:k]
    return [(int(r), int(shared[r])) for r in order if shared[r] > 0]


def encode_new_texts(
    ids_dir: Path, new_items: Path, cache_dir: str | Path, device: str, encode_processes: int = 0
) -> dict[str, Any]:
    """IDs for the items in ``new_items``, with the saved quantizer and the saved embedding
    model, and the catalogue items that share their prefixes."""
    enc = SavedEncoder.load(ids_dir)
    ids, texts, x = read_new_items(new_items, enc.cfg)
    return enc.encode(ids, texts, x, cache_dir, device, encode_processes)
