"""Semantic IDs for a data set's items: item text -> sentence embedding -> residual quantizer codes.

Each item gets `--levels` codes plus a collision code that tells apart items
sharing all of them. The quantizer is residual k-means (`--quantizer rqkmeans`,
the default) or TIGER's RQ-VAE (`--quantizer rqvae`, src/semantic_ids/rqvae.py);
`--quantizer random` draws the codes at random instead (src/semantic_ids/random_ids.py), a control
with the same shape and no content that cannot encode new items. By default
it is fitted on warm items only; the cold hold-out (utils.data.splits.cold_item_holdout,
the same items every model holds out) is encoded with the saved quantizer,
exactly as a new item is.

Writes to the data folder (or --semantic-dir): semantic_ids.json (keyed by
original item ID; byte-identical for the same seed and inputs), the quantizer
(codebooks.npz, plain centroid arrays; rqvae.pt, plain tensors; or random_codes.npz, the drawn
code table) and
semantic_id_stats.json (usage, entropy, quantization error, collisions, timings).

Examples:
  python semantic_id_generator.py --data-dir beauty
  python semantic_id_generator.py --data-dir data/ml-100k
  python semantic_id_generator.py --data-dir beauty --quantizer rqvae \\
      --semantic-dir /tmp/beauty_rqvae
  python semantic_id_generator.py --data-dir beauty --encode-texts new_items.jsonl \\
      --out new_ids.json

--encode-texts gives new items IDs with the saved quantizer (no refitting; existing IDs never
change) and lists, for each, the catalogue items that share its longest code prefix. Its input:
  .jsonl  one JSON object per line: {"id": "my-sku", "title": "...", "brand": "...",
          "categories": ["Beauty", "Skin Care"], "price": 9.5, "description": "..."} (the item's
          fields; the text is built as the catalogue's was), or {"id": ..., "text": "..."} with a
          text in the catalogue's template:
            Title: <title>. Brand: <brand>. Categories: <a>, <b>. Year: <year>.
            Price: $<price>. Sales rank: <rank>. Description: <description>.
          (the fields the IDs were generated with, in that order, absent ones left out)
  .txt    one such text per line
  .npy    embeddings (n, dim) of the generation's embedding model
Items without an "id" are named new-1, new-2, ... (by line); an ID that names a catalogue item is
refused.
"""

from __future__ import annotations

import utils.runtime.preflight  # noqa: F401  (first: a missing package is one line)

# isort: split

import argparse
import logging
from pathlib import Path

from src.semantic_ids.collaborative import collaborative_embeddings
from src.semantic_ids.config import (
    MIN_ITEMS_PER_CODE,
    OUTPUT_FILES,
    QUANTIZERS,
    RQVAE_DEFAULTS,
    GeneratorConfig,
)
from src.semantic_ids.embeddings import DEFAULT_BATCH_SIZE, DEFAULT_MODEL
from src.semantic_ids.extend import compare_with_previous, extend
from src.semantic_ids.generator import (
    DEFAULT_CACHE_DIR,
    Generated,
    embed,
    fit_mask,
    generate,
    item_texts,
    write_outputs,
)
from src.semantic_ids.item_text import DEFAULT_FIELDS, DEFAULT_MAX_DESCRIPTION_TOKENS
from src.semantic_ids.new_items import encode_new_texts
from src.semantic_ids.rqkmeans import DEFAULT_NITER
from utils.data.dataset import Dataset
from utils.data.load import load_dataset
from utils.data.semantic import IDS_FILE, STATS_FILE, folder_ids_digest, write_semantic_ids
from utils.reporting.results import RUN_RECORD
from utils.reporting.runinfo import RunRecord
from utils.runtime import argtypes
from utils.runtime.cli import (
    HelpFormatter,
    add_common_args,
    add_semantic_dir_arg,
    setup,
    show_progress,
)
from utils.runtime.errors import DataError, run_script
from utils.runtime.io import atomic_write_json, check_writable

log = logging.getLogger("semantic_id_generator")


# ------------------------------------------------------------------ script


def config_from_args(args: argparse.Namespace) -> GeneratorConfig:
    return GeneratorConfig(
        model=args.model,
        normalize=not args.no_normalize,
        text_fields=args.text_fields,
        max_description_tokens=args.max_description_tokens,
        levels=args.levels,
        codebook_size=args.codebook_size,
        min_items_per_code=args.min_items_per_code,
        collision_size=args.collision_size,
        fit_on=args.fit_on,
        cold_fraction=args.cold_fraction,
        split_seed=args.split_seed,
        seed=args.seed,
        kmeans_iterations=args.kmeans_iterations,
        batch_size=args.batch_size,
        quantizer=args.quantizer,
        rqvae_epochs=args.rqvae_epochs,
        rqvae_batch_size=args.rqvae_batch_size,
        rqvae_lr=args.rqvae_lr,
        reseed_dead_codes=args.reseed_dead_codes,
        collaborative=args.collaborative,
        collaborative_weight=args.collaborative_weight,
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    add_common_args(p, default_out=None)  # --out: where --encode-texts writes its IDs (JSON)
    add_semantic_dir_arg(
        p,
        "where to write the semantic-ID files (default: --data-dir)",
        deprecated=("--output-dir",),
    )
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"sentence-transformers name or local path (default: {DEFAULT_MODEL}, the offline "
        "all-MiniLM-L6-v2; e.g. sentence-transformers/sentence-t5-base where a hub is reachable)",
    )
    p.add_argument(
        "--no-normalize",
        action="store_true",
        help="keep raw embedding norms (default: unit length)",
    )
    p.add_argument(
        "--text-fields",
        default=",".join(DEFAULT_FIELDS),
        help=f"item text fields, in order (default: {','.join(DEFAULT_FIELDS)}); "
        "absent values are skipped",
    )
    p.add_argument(
        "--max-description-tokens",
        type=argtypes.tokens,
        default=DEFAULT_MAX_DESCRIPTION_TOKENS,
        help="cut descriptions to this many tokenizer tokens (0: keep whole)",
    )
    p.add_argument(
        "--quantizer",
        choices=tuple(QUANTIZERS),
        default="rqkmeans",
        help="residual k-means (default), TIGER's RQ-VAE (src/semantic_ids/rqvae.py) or random "
        "codes of the same shape (a control without content; cannot --encode-texts)",
    )
    p.add_argument(
        "--levels",
        type=argtypes.levels,
        default=3,
        help="quantizer levels before the collision code",
    )
    p.add_argument(
        "--codebook-size",
        type=argtypes.codebook_size,
        default=256,
        help="codes per level (reduced for small catalogues)",
    )
    p.add_argument(
        "--min-items-per-code",
        type=argtypes.item_count,
        default=MIN_ITEMS_PER_CODE,
        help="shrink the codebook below this many fitted items per code",
    )
    p.add_argument(
        "--collision-size",
        type=argtypes.codebook_size,
        help="values of the collision code (default: the codebook size)",
    )
    p.add_argument(
        "--fit-on",
        choices=("warm", "all"),
        default="warm",
        help="fit the codebooks on warm items (cold hold-out encoded afterwards) or on all items",
    )
    p.add_argument(
        "--cold-fraction",
        type=argtypes.fraction,
        default=0.05,
        help="share of items in the cold hold-out",
    )
    p.add_argument(
        "--kmeans-iterations",
        type=argtypes.repeats,
        default=DEFAULT_NITER,
        help="most Lloyd iterations per level (stops earlier at convergence)",
    )
    p.add_argument(
        "--batch-size",
        type=argtypes.batch_size,
        default=DEFAULT_BATCH_SIZE,
        help="encoder batch size",
    )
    p.add_argument(
        "--encode-processes",
        type=argtypes.processes,
        default=0,
        help="encoding processes for the texts missing from the cache: 0 (default) = one per GPU "
        "when --device is cuda and several are visible, else one; N > 1 = N processes (on "
        "--device, e.g. N CPU processes), via sentence-transformers' multi-process pool",
    )
    p.add_argument(
        "--rqvae-epochs",
        type=argtypes.epochs,
        default=RQVAE_DEFAULTS.epochs,
        help="RQ-VAE training epochs over the fitted items",
    )
    p.add_argument(
        "--rqvae-batch-size",
        type=argtypes.batch_size,
        default=RQVAE_DEFAULTS.batch_size,
        help="RQ-VAE training batch size (the first batch also seeds the codebooks' k-means)",
    )
    p.add_argument(
        "--rqvae-lr",
        type=argtypes.learning_rate,
        default=RQVAE_DEFAULTS.lr,
        help="RQ-VAE Adam learning rate",
    )
    p.add_argument(
        "--reseed-dead-codes",
        action="store_true",
        help="RQ-VAE: after each epoch, move codes no item used onto residuals of the batch",
    )
    p.add_argument(
        "--collaborative",
        metavar="SASREC_CHECKPOINT",
        help="join each item's text embedding with the item embedding of this trained SASRec "
        "checkpoint before quantizing (collaborative IDs; cold and new items: text only); "
        "write them into their own --semantic-dir",
    )
    p.add_argument(
        "--collaborative-weight",
        type=argtypes.half_weight,
        default=1.0,
        help="weight of the collaborative half against the text half (both unit length)",
    )
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR), help="embedding cache folder")
    p.add_argument(
        "--extend",
        action="store_true",
        help="instead of refitting: keep the codebooks saved in --semantic-dir and the IDs of "
        "items whose codes they reproduce; edited and new items are encoded with them, removed "
        "items dropped (the generation flags are the saved ones). A refit moves most IDs and "
        "invalidates every model trained on them",
    )
    p.add_argument(
        "--show-digest",
        action="store_true",
        help="instead of generating: print the digest of the IDs in --semantic-dir (default: "
        "--data-dir), the name results files and checkpoints give them",
    )
    p.add_argument(
        "--expect-digest",
        type=argtypes.ids_digest,
        metavar="DIGEST",
        help="the IDs' digest (12 hex digits, as results files name it) this run must give; on "
        "another digest nothing is written and the run fails (make all passes the study's)",
    )
    p.add_argument(
        "--encode-texts",
        help="instead of generating: encode new items with the saved quantizer (.jsonl with 'id' "
        "and the item's fields or a 'text', .txt one text per line, .npy embeddings; the template "
        "is above) and list the catalogue items sharing each one's prefix",
    )
    return p


def encode_command(args: argparse.Namespace, out_dir: Path, device: str) -> int:
    """--encode-texts: print the new items' IDs (and write them to --out)."""
    inputs = [Path(args.encode_texts), *(out_dir / name for name in OUTPUT_FILES)]
    check_writable({"--out": args.out}, inputs=inputs)
    result = encode_new_texts(
        out_dir, Path(args.encode_texts), args.cache_dir, device, args.encode_processes
    )
    for item, codes in result["items"].items():
        print(item, *codes, sep="\t")
        for near in result["neighbours"][item][:5]:
            print(f"  shares {near['shared_levels']} level(s) with {near['item']}")
    if args.out:
        atomic_write_json(args.out, result)
    return 0


def extend_command(args: argparse.Namespace, out_dir: Path, device: str) -> int:
    """--extend: the current catalogue's IDs from the saved codebooks (semantic_ids/extend.py)."""
    ds = load_dataset(args.data_dir)
    check_writable({}, {"--semantic-dir": out_dir})
    record = RunRecord("semantic_id_generator.py", {"extend": str(out_dir)}, args.seed)
    record.data_checksum = ds.checksum
    with record.stage("extend"):
        ext = extend(ds, out_dir, args.cache_dir, device, args.encode_processes)
    links = {k: ext.header[k] for k in ("codebooks_sha256", "data_checksum")}
    atomic_write_json(out_dir / STATS_FILE, {**links, **ext.stats, RUN_RECORD: record.to_dict()})
    header = {**ext.header, RUN_RECORD: record.to_dict(include_timing=False)}
    write_semantic_ids(out_dir / IDS_FILE, header, ds.item_ids, ext.codes)
    return 0


def report_refit(out_dir: Path, ds: Dataset, generated: Generated) -> dict | None:
    """What refitting over the IDs already in ``out_dir`` changes, with a warning when any item
    that both sets hold got another ID."""
    previous = compare_with_previous(out_dir / IDS_FILE, list(ds.item_ids), generated.codes)
    if previous and previous["ids_changed"]:
        log.warning(
            "this refit gives %d of the %d items the previous IDs in %s also held another ID: "
            "models trained on those IDs no longer match them (--extend keeps the saved "
            "codebooks and the IDs of unchanged items)",
            previous["ids_changed"],
            previous["items_in_both"],
            out_dir / IDS_FILE,
        )
    return previous


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.out and not args.encode_texts:
        parser.error(
            "--out only applies to --encode-texts; generation writes into --semantic-dir "
            "(default: --data-dir)"
        )
    device = setup(args)
    out_dir = Path(args.semantic_dir or args.data_dir)
    if args.encode_texts:
        return encode_command(args, out_dir, device)
    if args.show_digest:
        print(folder_ids_digest(args.data_dir, out_dir))
        return 0
    if args.extend:
        return extend_command(args, out_dir, device)
    cfg = config_from_args(args)
    record = RunRecord("semantic_id_generator.py", cfg.record(), args.seed)
    with record.stage("load data"):
        ds = load_dataset(args.data_dir)
    check_writable({}, {"--semantic-dir": out_dir})
    record.data_checksum = ds.checksum
    with record.stage("item text"):
        texts = item_texts(ds, cfg)
    if texts.n_fallback:
        log.warning(
            "%d items have no text; they get a fallback text naming their ID", texts.n_fallback
        )
    with record.stage("embed"):
        x, embed_report = embed(
            texts.texts, cfg, args.cache_dir, device, show_progress(args), args.encode_processes
        )
    if cfg.collaborative:
        with record.stage("collaborative"):
            fitted = fit_mask(ds.n_items, cfg)
            x, joined = collaborative_embeddings(
                x, ds, cfg.collaborative, cfg.collaborative_weight, fitted, args.data_dir
            )
    generated = generate(ds, cfg, x, record, progress=show_progress(args))
    if args.expect_digest and generated.digest != args.expect_digest:
        raise DataError(
            f"{out_dir / IDS_FILE}: not written: these IDs have digest {generated.digest}, the "
            f"study's have {args.expect_digest}. Every committed result on this data was made "
            "with the study's IDs; check the data checksum and the library versions in "
            "requirements.txt, or pass --expect-digest '' (make all EXPECT_IDS=) to go on with "
            "these IDs"
        )
    if cfg.collaborative:
        generated.header["collaborative"] = joined
    extra = {
        "text": {
            "fields": list(cfg.text_fields),
            "fallback_items": texts.n_fallback,
            "fallback_examples": [str(i) for i in ds.item_ids[texts.fallback][:10]],
            "example": texts.texts[0] if texts.texts else None,
        },
        "embeddings": {"model": cfg.model, "device": device, **embed_report.to_dict()},
        "previous_ids": report_refit(out_dir, ds, generated),
    }
    write_outputs(out_dir, ds, generated, record, extra)
    c = generated.stats["collisions"]
    log.info(
        "%d items -> codebooks %s + collision level %d; "
        "%d colliding items in %d groups (largest %d); "
        "final quantization error %.4f; wrote %s (IDs digest %s)",
        ds.n_items,
        generated.quantizer.codebook_sizes,
        generated.collision_size,
        c["colliding_items"],
        c["colliding_groups"],
        c["largest_group"],
        generated.stats["quantization_error"]["all_items"]["final"],
        out_dir / IDS_FILE,
        generated.digest,
    )
    return 0


if __name__ == "__main__":
    run_script(
        main, user_errors=(ValueError,)
    )  # the quantizer's and config's ValueErrors name the flag
