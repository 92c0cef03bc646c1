"""RQ-VAE quantization (TIGER, Rajput et al. 2023): item embeddings -> semantic-ID codes.

An MLP encoder maps an embedding to a small latent vector; `levels` residual
codebooks quantize that latent (level l codes what levels < l left over) and a
mirrored decoder maps the quantized latent back to the embedding. Training
minimises reconstruction MSE + codebook loss + beta * commitment loss, with a
straight-through estimator carrying the decoder's gradient past the argmin to
the encoder. Codebooks start from residual k-means on the first batch's
latents (src/semantic_ids/rqkmeans.py); codebook collapse, the known failure mode, is
tracked per epoch and optionally countered by re-seeding dead codes from the
batch (`reseed_dead_codes`). The training is src/semantic_ids/rqvae_training.py; this
module holds the model and the saved quantizer.

Codes are assigned after training by `RQVAEQuantizer.encode`, in float64, for
training and new items alike, so re-encoding an item reproduces its code. The
model is stored as plain tensors plus a JSON-able config (torch.save of a dict,
read back with ``weights_only=True``), never as pickled objects.
"""

from __future__ import annotations

import io
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from src.semantic_ids.rqkmeans import mean_squared_norm, nearest_centroid

log = logging.getLogger(__name__)

FORMAT = "rqvae/1"
MODEL_FILE = "rqvae.pt"


@dataclass(frozen=True)
class RQVAEConfig:
    """The architecture: everything needed to rebuild the model from its saved tensors."""

    input_dim: int
    hidden: tuple[int, ...] = (512, 256, 128)
    latent_dim: int = 32
    levels: int = 3
    codebook_size: int = 256

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RQVAEConfig:
        return cls(
            input_dim=int(d["input_dim"]),
            hidden=tuple(int(h) for h in d["hidden"]),
            latent_dim=int(d["latent_dim"]),
            levels=int(d["levels"]),
            codebook_size=int(d["codebook_size"]),
        )


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them and none after the last (TIGER's encoder/decoder)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@dataclass
class Quantized:
    """One forward pass through the residual codebooks."""

    codes: torch.Tensor  # int64 (n, levels)
    z_q: torch.Tensor  # (n, latent): sum of the chosen codewords
    residuals: list[torch.Tensor]  # per level, the (detached) input that level quantized
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor


class RQVAE(nn.Module):
    def __init__(self, cfg: RQVAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = mlp([cfg.input_dim, *cfg.hidden, cfg.latent_dim])
        self.decoder = mlp([cfg.latent_dim, *reversed(cfg.hidden), cfg.input_dim])
        self.codebooks = nn.Parameter(torch.zeros(cfg.levels, cfg.codebook_size, cfg.latent_dim))

    def quantize(self, z: torch.Tensor) -> Quantized:
        """Residual quantization of latents; each codebook learns only from its own level's loss.

        The residual passed on is r - sg[e], so level l's commitment term moves the
        encoder, not the codebooks of earlier levels.
        """
        residual, z_q = z, torch.zeros_like(z)
        codes, residuals = [], []
        codebook_loss = commitment = z.new_zeros(())
        for book in self.codebooks:
            idx = nearest_code(residual.detach(), book.detach())
            e = book[idx]
            codebook_loss = codebook_loss + squared_error(e, residual.detach())
            commitment = commitment + squared_error(residual, e.detach())
            residuals.append(residual.detach())
            codes.append(idx)
            z_q = z_q + e
            residual = residual - e.detach()
        return Quantized(torch.stack(codes, 1), z_q, residuals, codebook_loss, commitment)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Quantized]:
        """Reconstruction through the straight-through estimator, and the quantization details."""
        z = self.encoder(x)
        q = self.quantize(z)
        z_st = z + (q.z_q - z).detach()  # forward: z_q; backward: identity into the encoder
        return self.decoder(z_st), q


def squared_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ||a - b||^2 (summed over dimensions, so a 384-d reconstruction is not
    outweighed by the 32-d quantization terms, which collapses every item onto one code)."""
    return ((a - b) ** 2).sum(-1).mean()


def nearest_code(x: torch.Tensor, book: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codeword (squared L2) per row; ||x||^2 does not change the argmin."""
    return torch.argmin((book * book).sum(1)[None, :] - 2.0 * x @ book.T, dim=1)


# ------------------------------------------------------------------ the saved quantizer


class RQVAEQuantizer:
    """A trained RQ-VAE used like `ResidualQuantizer`: encode embeddings to codes, save, load.

    Encoding runs in float64 so that an item's code does not depend on the other
    items in its batch (float32 sums can round differently per batch size).
    """

    FILE = MODEL_FILE

    def __init__(self, model: RQVAE):
        self.model = model.eval()
        self._double = RQVAE(model.cfg).double().eval()
        self._double.load_state_dict({k: v.double() for k, v in model.state_dict().items()})

    @property
    def cfg(self) -> RQVAEConfig:
        return self.model.cfg

    @property
    def levels(self) -> int:
        return self.cfg.levels

    @property
    def codebook_sizes(self) -> list[int]:
        return [self.cfg.codebook_size] * self.cfg.levels

    @property
    def dim(self) -> int:
        return self.cfg.input_dim

    def arrays(self) -> list[np.ndarray]:
        """Every tensor of the model, in a fixed (sorted-name) order: what the checksum covers."""
        state = self.model.state_dict()
        return [state[k].numpy() for k in sorted(state)]

    def _check(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"expected embeddings of shape (n, {self.dim}), got {x.shape}; "
                "was the RQ-VAE trained with a different embedding model?"
            )
        return x.astype(np.float64)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Codes (n, levels) int64 for new or training vectors, using the saved model."""
        codes, _ = self._encode(self._check(x))
        return codes

    def _encode(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Codes and the partial sums of chosen codewords after each level (float64 latents)."""
        with torch.no_grad():
            residual = self._double.encoder(torch.from_numpy(x)).numpy()
        books = self._double.codebooks.detach().numpy()
        codes = np.empty((len(x), self.levels), dtype=np.int64)
        partial, z_q = [], np.zeros_like(residual)
        for level, book in enumerate(books):
            codes[:, level] = nearest_centroid(residual, book)
            residual = residual - book[codes[:, level]]
            z_q = z_q + book[codes[:, level]]
            partial.append(z_q.copy())
        return codes, partial

    def decode_latent(self, z_q: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self._double.decoder(torch.from_numpy(z_q)).numpy()

    def encode_with_errors(self, x: np.ndarray) -> tuple[np.ndarray, list[float]]:
        """Codes plus, per level, the mean squared reconstruction error in embedding space.

        Level l's error decodes the sum of the first l codewords, so the list is
        comparable with residual k-means' error after each level.
        """
        x = self._check(x)
        codes, partial = self._encode(x)
        return codes, [mean_squared_norm(x - self.decode_latent(z)) for z in partial]

    def first_level_centres(self) -> np.ndarray:
        """Each level-1 codeword decoded into embedding space (k, dim): a 'centroid' for
        analysis."""
        return self.decode_latent(self._double.codebooks[0].detach().numpy()).astype(np.float32)

    def to_bytes(self) -> bytes:
        """torch.save of {'format', 'config', 'state'}: strings, ints and float32 tensors only."""
        buf = io.BytesIO()
        state = {k: v.detach().clone().contiguous() for k, v in self.model.state_dict().items()}
        torch.save({"format": FORMAT, "config": self.cfg.to_dict(), "state": state}, buf)
        return buf.getvalue()

    @classmethod
    def load(cls, path: str | Path) -> RQVAEQuantizer:
        """Read a model written by `to_bytes`; weights_only=True refuses any pickled object."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no RQ-VAE model; run `python semantic_id_generator.py "
                "--quantizer rqvae` first"
            )
        doc = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"{path}: not an {FORMAT} model file")
        model = RQVAE(RQVAEConfig.from_dict(doc["config"]))
        model.load_state_dict(doc["state"], strict=True)
        return cls(model)
