"""Semantic-ID generation as a library: item text -> embeddings -> quantizer codes -> collision
level.

``semantic_id_generator.py`` wires these functions to flags; the analysis
(:mod:`src.semantic_ids.analysis`) and the benchmarks call them directly. The
quantizer is residual k-means (:mod:`src.semantic_ids.rqkmeans`), TIGER's RQ-VAE
(:mod:`src.semantic_ids.rqvae`) or random codes (:mod:`src.semantic_ids.random_ids`),
all behind one interface (``encode``, ``arrays``, ``to_bytes``/``load``). What determines
the IDs is :class:`src.semantic_ids.config.GeneratorConfig`; encoding new items with the saved
quantizer is :mod:`src.semantic_ids.new_items`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from src.semantic_ids.config import QUANTIZERS, GeneratorConfig, Quantizer
from src.semantic_ids.embeddings import (
    EmbeddingCache,
    EmbedReport,
    embed_texts,
    load_sentence_encoder,
    load_tokenizer,
)
from src.semantic_ids.item_text import ItemTexts, build_item_texts, token_truncator
from src.semantic_ids.random_ids import RandomCodes, assignment_errors, draw_random_codes
from src.semantic_ids.rqkmeans import (
    code_usage,
    collision_codes,
    collision_report,
    effective_codebook_size,
    fit_residual_kmeans,
    kmeans,
    mean_squared_norm,
)
from src.semantic_ids.rqvae import RQVAEConfig, RQVAEQuantizer
from src.semantic_ids.rqvae_training import train_rqvae
from utils.data.dataset import Dataset
from utils.data.semantic import (
    IDS_FILE,
    STATS_FILE,
    SemanticIds,
    codebooks_sha256,
    ids_digest,
    write_semantic_ids,
)
from utils.data.splits import cold_item_holdout
from utils.reporting.results import RUN_RECORD
from utils.reporting.runinfo import RunRecord
from utils.runtime.environment import repo_root
from utils.runtime.io import atomic_write_bytes, atomic_write_json

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = repo_root() / ".cache" / "embeddings"


@dataclass
class Generated:
    codes: np.ndarray  # int64 (n_items, levels + 1)
    quantizer: Quantizer
    collision_size: int
    header: dict[str, Any]  # written into semantic_ids.json
    stats: dict[str, Any]  # written into semantic_id_stats.json

    @property
    def digest(self) -> str:
        """The IDs' short digest (`ids_digest`), as every results file and checkpoint names it."""
        sizes = [*self.quantizer.codebook_sizes, self.collision_size]
        return ids_digest(SemanticIds(self.codes, sizes, self.header))


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
            f"iterations (float64), seed {cfg.seed} + level"
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
