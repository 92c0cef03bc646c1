"""Semantic-ID generation as a library: item text -> embeddings -> quantizer codes -> collision
level.

``semantic_id_generator.py`` wires these functions to flags; the analysis
(:mod:`src.semantic_ids.analysis`) and the benchmarks call them directly. The
quantizer is residual k-means (:mod:`src.semantic_ids.rqkmeans`), TIGER's RQ-VAE
(:mod:`src.semantic_ids.rqvae`) or random codes (:mod:`src.semantic_ids.random_ids`),
all behind one interface (``encode``, ``arrays``, ``to_bytes``/``load``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from src.semantic_ids.embeddings import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MODEL,
    EmbeddingCache,
    EmbedReport,
    embed_texts,
    load_sentence_encoder,
    load_tokenizer,
)
from src.semantic_ids.item_text import (
    DEFAULT_FIELDS,
    DEFAULT_MAX_DESCRIPTION_TOKENS,
    ItemTexts,
    build_item_texts,
    parse_fields,
    token_truncator,
)
from src.semantic_ids.random_ids import (
    NO_NEW_ITEMS,
    RANDOM_FILE,
    RandomCodes,
    assignment_errors,
    draw_random_codes,
)
from src.semantic_ids.rqkmeans import (
    DEFAULT_NITER,
    ResidualQuantizer,
    code_usage,
    collision_codes,
    collision_report,
    effective_codebook_size,
    fit_residual_kmeans,
    kmeans,
    mean_squared_norm,
)
from src.semantic_ids.rqvae import (
    MODEL_FILE,
    RQVAEConfig,
    RQVAEQuantizer,
    RQVAETrainConfig,
    train_rqvae,
)
from utils.data.dataset import Dataset
from utils.data.semantic import (
    CODEBOOKS_FILE,
    IDS_FILE,
    STATS_FILE,
    check_codebooks,
    codebooks_sha256,
    read_semantic_ids_file,
    write_semantic_ids,
)
from utils.data.splits import cold_item_holdout
from utils.reporting.results import RUN_RECORD
from utils.reporting.runinfo import RunRecord
from utils.runtime.environment import repo_root
from utils.runtime.errors import DataError
from utils.runtime.io import atomic_write_bytes, atomic_write_json

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = repo_root() / ".cache" / "embeddings"
MIN_ITEMS_PER_CODE = (
    39  # faiss' guideline for a reliable centroid; Beauty's 256 codes pass, ML-100K's do not
)

Quantizer = ResidualQuantizer | RQVAEQuantizer | RandomCodes
# per --quantizer: the class that loads the saved quantizer and its file name (never taken from
# a file)
QUANTIZERS: dict[
    str, tuple[type[ResidualQuantizer] | type[RQVAEQuantizer] | type[RandomCodes], str]
] = {
    "rqkmeans": (ResidualQuantizer, CODEBOOKS_FILE),
    "rqvae": (RQVAEQuantizer, MODEL_FILE),
    "random": (RandomCodes, RANDOM_FILE),
}
# GeneratorConfig fields that only the RQ-VAE uses; left out of other runs' records (and
# "quantizer" too for rqkmeans) so an rqkmeans semantic_ids.json stays byte-identical to the files
# written before
RQVAE_FIELDS = ("rqvae_epochs", "rqvae_batch_size", "rqvae_lr", "reseed_dead_codes")
RQVAE_DEFAULTS = RQVAETrainConfig()


@dataclass
class GeneratorConfig:
    """Everything that determines the IDs; stored in the run record so a run can be repeated."""

    model: str = DEFAULT_MODEL
    normalize: bool = True
    text_fields: tuple[str, ...] = DEFAULT_FIELDS
    max_description_tokens: int = DEFAULT_MAX_DESCRIPTION_TOKENS
    levels: int = 3
    codebook_size: int = 256
    min_items_per_code: int = MIN_ITEMS_PER_CODE
    collision_size: int | None = (
        None  # values of the collision code; None = the (effective) codebook size
    )
    fit_on: str = "warm"
    cold_fraction: float = 0.05
    split_seed: int = 0
    seed: int = 0
    kmeans_iterations: int = DEFAULT_NITER
    batch_size: int = DEFAULT_BATCH_SIZE
    quantizer: str = "rqkmeans"
    rqvae_epochs: int = RQVAE_DEFAULTS.epochs
    rqvae_batch_size: int = RQVAE_DEFAULTS.batch_size
    rqvae_lr: float = RQVAE_DEFAULTS.lr
    reseed_dead_codes: bool = False

    def __post_init__(self) -> None:
        self.text_fields = parse_fields(self.text_fields)
        for name in (
            "levels",
            "codebook_size",
            "min_items_per_code",
            "kmeans_iterations",
            "batch_size",
            "rqvae_epochs",
            "rqvae_batch_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}"
                )
        if self.collision_size is not None and self.collision_size < 1:
            raise ValueError(f"--collision-size must be at least 1, got {self.collision_size}")
        if self.fit_on not in ("warm", "all"):
            raise ValueError(f"--fit-on must be 'warm' or 'all', got {self.fit_on!r}")
        if not 0.0 <= self.cold_fraction < 1.0:
            raise ValueError(f"--cold-fraction must be in [0, 1), got {self.cold_fraction}")
        if self.quantizer not in QUANTIZERS:
            raise ValueError(
                f"--quantizer must be one of {', '.join(QUANTIZERS)}, got {self.quantizer!r}"
            )
        if not self.rqvae_lr > 0:
            raise ValueError(f"--rqvae-lr must be positive, got {self.rqvae_lr}")

    def record(self) -> dict[str, Any]:
        """The config as stored in the run record (RQ-VAE fields only when the RQ-VAE is used)."""
        left_out = {"rqvae": (), "random": RQVAE_FIELDS}.get(
            self.quantizer, ("quantizer", *RQVAE_FIELDS)
        )
        return {k: v for k, v in asdict(self).items() if k not in left_out}

    def rqvae_training(self) -> RQVAETrainConfig:
        return RQVAETrainConfig(
            epochs=self.rqvae_epochs,
            batch_size=self.rqvae_batch_size,
            lr=self.rqvae_lr,
            reseed_dead_codes=self.reseed_dead_codes,
            seed=self.seed,
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GeneratorConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Generated:
    codes: np.ndarray  # int64 (n_items, levels + 1)
    quantizer: Quantizer
    collision_size: int
    header: dict[str, Any]  # written into semantic_ids.json
    stats: dict[str, Any]  # written into semantic_id_stats.json


def item_texts(ds: Dataset, cfg: GeneratorConfig) -> ItemTexts:
    """The encoder's input per item; the tokenizer is loaded only if a description needs cutting."""

    def truncate(texts: list[str], max_tokens: int) -> list[str]:
        return token_truncator(load_tokenizer(cfg.model))(texts, max_tokens)

    return build_item_texts(
        ds.meta, ds.item_ids, cfg.text_fields, cfg.max_description_tokens, truncate
    )


def embed(
    texts: list[str],
    cfg: GeneratorConfig,
    cache_dir: str | Path,
    device: str,
    progress: bool = False,
    encode_processes: int = 0,
) -> tuple[np.ndarray, EmbedReport]:
    """Embeddings of ``texts`` with the configured model, through the on-disk cache; the misses
    are shared out over several encoding processes when ``encode_devices(device,
    encode_processes)`` gives several devices (see embeddings.py)."""
    cache = EmbeddingCache(cache_dir, cfg.model, cfg.normalize)
    return embed_texts(
        texts,
        cache,
        lambda: load_sentence_encoder(
            cfg.model, device, cfg.normalize, cfg.batch_size, encode_processes
        ),
        cfg.batch_size,
        progress,
    )


def item_embeddings(
    ds: Dataset,
    cfg: GeneratorConfig,
    cache_dir: str | Path,
    device: str,
    progress: bool = False,
    encode_processes: int = 0,
) -> tuple[np.ndarray, ItemTexts, EmbedReport]:
    """Embeddings aligned to item indices (from the cache when the texts are unchanged)."""
    texts = item_texts(ds, cfg)
    vectors, report = embed(texts.texts, cfg, cache_dir, device, progress, encode_processes)
    return vectors, texts, report


def fit_mask(n_items: int, cfg: GeneratorConfig) -> np.ndarray:
    """Items the codebooks are fitted on: all, or all but the shared cold-item hold-out."""
    mask = np.ones(n_items, dtype=bool)
    if cfg.fit_on == "warm":
        mask[cold_item_holdout(n_items, cfg.cold_fraction, cfg.split_seed)] = False
    return mask


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


def item_codes(q: Quantizer, x: np.ndarray) -> np.ndarray:
    """Codes (n, levels) of the catalogue's items: encoded from x, or the drawn table for random
    IDs."""
    return q.codes if isinstance(q, RandomCodes) else q.encode(x)


def _error_report(q: Quantizer, x: np.ndarray, codes: np.ndarray) -> dict[str, Any]:
    """Mean squared error left per level; random IDs: with each code's mean residual as its
    centroid."""
    if not len(x):
        return {"items": 0}
    if isinstance(q, RandomCodes):
        errors = assignment_errors(x, codes, q.codebook_sizes)
    else:
        _, errors = q.encode_with_errors(x)
    base = mean_squared_norm(x)
    return {
        "items": int(len(x)),
        "mean_squared_norm": base,
        "per_level": errors,
        "final": errors[-1],
        "relative_final": errors[-1] / base if base > 0 else None,
    }


def fit_quantizer(
    x: np.ndarray, cfg: GeneratorConfig, k: int, progress: bool = False
) -> tuple[Quantizer, dict[str, Any] | None]:
    """Residual k-means codebooks, or a trained RQ-VAE with its training report."""
    if cfg.quantizer == "rqvae":
        with tqdm(total=cfg.rqvae_epochs, desc="RQ-VAE epochs", disable=not progress) as bar:
            model, report = train_rqvae(
                x,
                RQVAEConfig(int(x.shape[1]), levels=cfg.levels, codebook_size=k),
                cfg.rqvae_training(),
                progress=lambda _: bar.update(1),
            )
        return RQVAEQuantizer(model), report.to_dict()
    with tqdm(total=cfg.levels, desc="k-means levels", disable=not progress) as bar:
        q, _ = fit_residual_kmeans(
            x,
            cfg.levels,
            k,
            cfg.seed,
            kmeans=lambda x, kk, s: kmeans(x, kk, s, cfg.kmeans_iterations),
            progress=lambda _: bar.update(1),
        )
    return q, None


def quantizer_header(q: Quantizer, cfg: GeneratorConfig) -> dict[str, Any]:
    """How the codes were made, for semantic_ids.json (rqkmeans: the fields it always had)."""
    if isinstance(q, RandomCodes):
        return {
            "quantizer": "random",
            "random": "codes drawn uniformly per item and level "
            f"(numpy default_rng, seed {cfg.seed}): "
            "a control with the shape of semantic IDs and no content",
        }
    if cfg.quantizer == "rqkmeans":
        return {
            "kmeans": f"greedy k-means++ (scikit-learn) + at most {cfg.kmeans_iterations} Lloyd "
            f"iterations (faiss), seed {cfg.seed} + level"
        }
    arch = q.cfg
    sizes = "-".join(str(d) for d in (arch.input_dim, *arch.hidden, arch.latent_dim))
    t = cfg.rqvae_training()
    return {
        "quantizer": "rqvae",
        "rqvae": f"MLP encoder {sizes} (ReLU) + mirrored decoder, "
        f"{arch.levels} residual codebooks, "
        f"k-means init on the first batch, beta {t.beta}, Adam lr {t.lr}, batch {t.batch_size}, "
        f"{t.epochs} epochs, dead-code re-seeding {'on' if t.reseed_dead_codes else 'off'}, "
        f"seed {t.seed}",
    }


def generate(
    ds: Dataset,
    cfg: GeneratorConfig,
    embeddings: np.ndarray,
    record: RunRecord,
    progress: bool = False,
) -> Generated:
    """Fit the quantizer, encode every item and assemble the file contents."""
    mask = fit_mask(ds.n_items, cfg)
    n_fit = int(mask.sum())
    k = effective_codebook_size(n_fit, cfg.codebook_size, cfg.min_items_per_code)
    collision_size = cfg.collision_size or k
    with record.stage("fit codebooks"):
        if cfg.quantizer == "random":
            q, training = draw_random_codes(ds.n_items, cfg.levels, k, cfg.seed), None
        else:
            q, training = fit_quantizer(embeddings[mask], cfg, k, progress)
    with record.stage("encode items"):
        # every item, warm or cold, goes through the path a brand-new item takes
        prefix = item_codes(q, embeddings)
        # warm items are numbered first, so cold items never change a warm item's ID
        order = np.where(mask, 0, ds.n_items) + np.arange(ds.n_items)
        codes = np.column_stack([prefix, collision_codes(prefix, collision_size, order)])
    with record.stage("statistics"):
        stats = {
            "dataset": ds.name,
            "items": ds.n_items,
            "fit_on": cfg.fit_on,
            "fit_items": n_fit,
            "cold_items": int((~mask).sum()),
            "codebook_size": {
                "requested": cfg.codebook_size,
                "used": k,
                "min_items_per_code": cfg.min_items_per_code,
            },
            "collision_size": collision_size,
            "quantization_error": {
                "fit_items": _error_report(q, embeddings[mask], prefix[mask]),
                "held_out_items": _error_report(q, embeddings[~mask], prefix[~mask]),
                "all_items": _error_report(q, embeddings, prefix),
            },
            "usage": code_usage(prefix, q.codebook_sizes),
            "collisions": collision_report(prefix),
            "collisions_fit_items": collision_report(prefix[mask]),
            "quantizer": cfg.quantizer,
        }
        if training is not None:
            stats["training"] = training
    header = {
        "dataset": ds.name,
        "data_checksum": ds.checksum,
        "n_items": ds.n_items,
        "levels": cfg.levels,
        "codebook_sizes": q.codebook_sizes,
        "collision_size": collision_size,
        "model": cfg.model,
        "normalize": cfg.normalize,
        "embedding_dim": int(embeddings.shape[1]),
        "fit_on": cfg.fit_on,
        "fit_items": n_fit,
        "cold_fraction": cfg.cold_fraction,
        "split_seed": cfg.split_seed,
        **quantizer_header(q, cfg),
        "codebooks_file": QUANTIZERS[cfg.quantizer][1],
        "codebooks_sha256": codebooks_sha256(q.arrays()),
        "code_columns": [f"level_{i + 1}" for i in range(cfg.levels)] + ["collision"],
    }
    return Generated(codes, q, collision_size, header, stats)


def write_outputs(
    out_dir: Path, ds: Dataset, gen: Generated, record: RunRecord, extra_stats: dict[str, Any]
) -> None:
    """semantic_ids.json without timings (byte-reproducible); timings go to the stats file.

    semantic_ids.json goes last: it names the codebooks and the data by checksum, and the stats file
    repeats both, so a run killed between two writes leaves a set that every reader refuses.
    """
    with record.stage("write"):
        atomic_write_bytes(out_dir / gen.header["codebooks_file"], gen.quantizer.to_bytes())
        header = {**gen.header, RUN_RECORD: record.to_dict(include_timing=False)}
    links = {k: gen.header[k] for k in ("codebooks_sha256", "data_checksum")}
    atomic_write_json(
        out_dir / STATS_FILE, {**links, **gen.stats, **extra_stats, RUN_RECORD: record.to_dict()}
    )
    write_semantic_ids(out_dir / IDS_FILE, header, ds.item_ids, gen.codes)


# ------------------------------------------------------------------ new items


def read_new_items(path: Path) -> tuple[list[str], list[str] | None, np.ndarray | None]:
    """(ids, texts, embeddings) from .txt (one text per line), .jsonl ({"id", "text"}) or .npy
    (embeddings)."""
    if not path.is_file():
        raise DataError(
            f"{path}: no such file; give one text per line (.txt), JSON lines with 'text' (.jsonl) "
            "or .npy"
        )
    if path.suffix == ".npy":
        x = np.load(path, allow_pickle=False)
        if x.ndim != 2:
            raise DataError(
                f"{path}: expected a 2-d array of embeddings (n, dim), got shape {x.shape}"
            )
        return [str(i) for i in range(len(x))], None, x.astype(np.float32)
    ids, texts = [], []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            try:
                rec = json.loads(line)
                text = rec["text"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(
                    f"{path}, line {lineno}: expected a JSON object with a 'text' field "
                    f"(and optionally 'id'): {exc}"
                ) from exc
            ids.append(str(rec.get("id", lineno)))
            texts.append(str(text))
        else:
            ids.append(str(lineno))
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


def encode_new_texts(
    ids_dir: Path, new_items: Path, cache_dir: str | Path, device: str, encode_processes: int = 0
) -> dict[str, Any]:
    """IDs for the items in ``new_items``, with the saved quantizer and the saved embedding
    model."""
    header, _, existing = read_semantic_ids_file(ids_dir / IDS_FILE)
    q = load_quantizer(ids_dir, header)
    if isinstance(q, RandomCodes):
        raise ValueError(NO_NEW_ITEMS)  # before any text is embedded
    cfg = generator_config(ids_dir, header)
    ids, texts, x = read_new_items(new_items)
    if x is None:
        x, _ = embed(texts, cfg, cache_dir, device, encode_processes=encode_processes)
    codes = encode_new_items(q, existing, x, int(header["collision_size"]))
    return {
        "model": cfg.model,
        "codebooks_sha256": header["codebooks_sha256"],
        "items": {i: [int(c) for c in row] for i, row in zip(ids, codes)},
    }
