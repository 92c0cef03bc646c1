"""What determines a set of semantic IDs: the generator's configuration (stored in every run
record, so a run can be repeated) and the quantizers it can use, each with its saved file."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from src.semantic_ids.embeddings import DEFAULT_BATCH_SIZE, DEFAULT_MODEL
from src.semantic_ids.item_text import DEFAULT_FIELDS, DEFAULT_MAX_DESCRIPTION_TOKENS, parse_fields
from src.semantic_ids.random_ids import RANDOM_FILE, RandomCodes
from src.semantic_ids.rqkmeans import DEFAULT_NITER, ResidualQuantizer
from src.semantic_ids.rqvae import MODEL_FILE, RQVAEQuantizer
from src.semantic_ids.rqvae_training import RQVAETrainConfig
from utils.data.semantic import CODEBOOKS_FILE, IDS_FILE, STATS_FILE

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
# Every file a generator run may write into --semantic-dir, and its readers read
OUTPUT_FILES = (IDS_FILE, STATS_FILE, *(name for _, name in QUANTIZERS.values()))
# GeneratorConfig fields that only the RQ-VAE uses; left out of other runs' records (and
# "quantizer" too for rqkmeans) so an rqkmeans semantic_ids.json stays byte-identical to the files
# written before
RQVAE_FIELDS = ("rqvae_epochs", "rqvae_batch_size", "rqvae_lr", "reseed_dead_codes")
RQVAE_DEFAULTS = RQVAETrainConfig()
COLLABORATIVE_FIELDS = ("collaborative", "collaborative_weight")


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
    # a SASRec checkpoint whose item embeddings join the text embeddings (collaborative.py)
    collaborative: str | None = None
    collaborative_weight: float = 1.0

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
        if not 0.0 < self.collaborative_weight < 100.0:
            raise ValueError(
                f"--collaborative-weight must be in (0, 100), got {self.collaborative_weight}"
            )
        if not self.rqvae_lr > 0:
            raise ValueError(f"--rqvae-lr must be positive, got {self.rqvae_lr}")

    def record(self) -> dict[str, Any]:
        """The config as stored in the run record (RQ-VAE fields only when the RQ-VAE is used)."""
        left_out = {"rqvae": (), "random": RQVAE_FIELDS}.get(
            self.quantizer, ("quantizer", *RQVAE_FIELDS)
        )
        if self.collaborative is None:  # text-only IDs: the record they always had
            left_out = (*left_out, *COLLABORATIVE_FIELDS)
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
