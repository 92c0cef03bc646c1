"""Training an RQ-VAE (:mod:`src.semantic_ids.rqvae`): the loss is reconstruction MSE + codebook
loss + beta x commitment loss; codebooks are seeded by residual k-means on the first batch's
latents, code usage is tracked per epoch and, optionally, dead codes are re-seeded from the batch
(``reseed_dead_codes``).

On CPU the same seed gives the same model (one torch thread; see :func:`train_rqvae`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from src.semantic_ids.rqkmeans import fit_residual_kmeans
from src.semantic_ids.rqvae import RQVAE, Quantized, RQVAEConfig, squared_error


@dataclass(frozen=True)
class RQVAETrainConfig:
    """How the model is trained (not needed to encode with it)."""

    epochs: int = 200  # Beauty: about 2 min on one busy core (README)
    batch_size: int = 1024
    lr: float = 1e-3
    beta: float = 0.25  # commitment weight (TIGER)
    reseed_dead_codes: bool = False
    seed: int = 0


@dataclass
class TrainReport:
    """What happened during training: per-epoch losses and code usage, re-seeds, time."""

    seconds: float = 0.0
    steps: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 3), "steps": self.steps, "history": self.history}


def init_codebooks(model: RQVAE, batch: torch.Tensor, seed: int) -> None:
    """Residual k-means on the batch's latents (TIGER's initialisation; avoids dead codes from the
    start)."""
    with torch.no_grad():
        z = model.encoder(batch).numpy()
    q, _ = fit_residual_kmeans(z, model.cfg.levels, model.cfg.codebook_size, seed)
    with torch.no_grad():
        model.codebooks.copy_(torch.from_numpy(np.stack(q.centroids)))


def reseed_dead(
    model: RQVAE,
    opt: torch.optim.Optimizer,
    dead: torch.Tensor,
    residuals: list[torch.Tensor],
    gen: torch.Generator,
) -> list[int]:
    """Move each unused codeword onto a random residual of the epoch's last batch at its level.

    The codewords' Adam moments are cleared so stale momentum does not drag them away again.
    Returns the number of codes re-seeded per level.
    """
    state = opt.state.get(model.codebooks, {})
    counts = []
    with torch.no_grad():
        for level, r in enumerate(residuals):
            rows = torch.nonzero(dead[level]).flatten()
            counts.append(int(len(rows)))
            if not len(rows):
                continue
            pick = torch.randint(len(r), (len(rows),), generator=gen)
            model.codebooks[level, rows] = r[pick]
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    state[key][level, rows] = 0.0
    return counts


def usage_summary(counts: torch.Tensor) -> list[dict[str, Any]]:
    """Per level: codes used in the epoch and the entropy (bits) of their distribution."""
    out = []
    for level, c in enumerate(counts):
        p = c[c > 0].double() / c.sum()
        out.append(
            {
                "level": level + 1,
                "used_codes": int((c > 0).sum()),
                "entropy_bits": round(float(-(p * torch.log2(p)).sum()), 4),
            }
        )
    return out


def train_epoch(
    model: RQVAE,
    opt: torch.optim.Optimizer,
    data: torch.Tensor,
    perm: torch.Tensor,
    train: RQVAETrainConfig,
) -> tuple[dict[str, Any], torch.Tensor, Quantized]:
    """One pass over `data` in `perm` order: mean losses, code counts (levels, k), the last batch's
    pass."""
    cfg = model.cfg
    counts = torch.zeros(cfg.levels, cfg.codebook_size, dtype=torch.int64)
    sums = np.zeros(3)
    for start in range(0, len(data), train.batch_size):
        batch = data[perm[start : start + train.batch_size]]
        recon, q = model(batch)
        rec_loss = squared_error(recon, batch)
        loss = rec_loss + q.codebook_loss + train.beta * q.commitment_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        for level in range(cfg.levels):
            counts[level] += torch.bincount(q.codes[:, level], minlength=cfg.codebook_size)
        sums += len(batch) * np.array([loss.item(), rec_loss.item(), q.commitment_loss.item()])
    losses = dict(
        zip(("loss", "reconstruction", "commitment"), np.round(sums / len(data), 6).tolist())
    )
    return losses, counts, q


def train_rqvae(
    x: np.ndarray,
    cfg: RQVAEConfig,
    train: RQVAETrainConfig,
    progress: Callable[[int], None] | None = None,
) -> tuple[RQVAE, TrainReport]:
    """Fit an RQ-VAE on embeddings x (n, input_dim); on CPU the same seed gives the same model.

    Training runs on one torch thread: with two, Beauty's codes differed from run to run (the
    threads' partial sums are added in a load-dependent order; the losses parted in the sixth
    digit at epoch 3), with one they are identical. The caller's thread count is restored.
    """
    if len(x) < cfg.codebook_size:
        raise ValueError(
            f"{len(x)} items cannot fill a codebook of {cfg.codebook_size}; lower --codebook-size"
        )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(x, cfg, train, progress)
    finally:
        torch.set_num_threads(threads)


def _train(
    x: np.ndarray, cfg: RQVAEConfig, train: RQVAETrainConfig, progress: Callable[[int], None] | None
) -> tuple[RQVAE, TrainReport]:
    t0 = time.perf_counter()
    torch.manual_seed(train.seed)
    gen = torch.Generator().manual_seed(train.seed)
    model = RQVAE(cfg)
    data = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    opt = torch.optim.Adam(model.parameters(), lr=train.lr)
    report = TrainReport()
    for epoch in range(train.epochs):
        perm = torch.randperm(len(data), generator=gen)
        if epoch == 0:
            init_codebooks(
                model, data[perm[: max(train.batch_size, cfg.codebook_size)]], train.seed
            )
        losses, counts, last = train_epoch(model, opt, data, perm, train)
        report.steps += -(-len(data) // train.batch_size)
        entry = {"epoch": epoch + 1, **losses, "usage": usage_summary(counts)}
        if (
            train.reseed_dead_codes and epoch < train.epochs - 1
        ):  # a code re-seeded last would stay untrained
            entry["reseeded"] = reseed_dead(model, opt, counts == 0, last.residuals, gen)
        report.history.append(entry)
        if progress is not None:
            progress(epoch)
    report.seconds = time.perf_counter() - t0
    model.eval()
    return model, report
