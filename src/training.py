"""The one training loop every torch model in the toolkit uses.

Models differ only in how a batch becomes a loss and how a model is scored;
everything else - optimiser, warm-up and decay, gradient clipping, early
stopping on a validation metric, per-epoch checkpoints and resume - lives here
once.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from utils.runtime import distributed
from utils.runtime.checkpoints import (
    RESUME_FIX,
    check_identity,
    check_layout,
    load_checkpoint,
    plain,
    save_checkpoint,
)
from utils.runtime.errors import CheckpointError

log = logging.getLogger(__name__)

SCHEDULES = ("constant", "cosine", "inverse_sqrt")


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 3
    grad_clip: float | None = None
    warmup_steps: int = 0
    schedule: str = "constant"
    checkpoint: str | None = None
    resume: bool = False
    monitor: str = "auc"
    mode: str = "max"
    compile: bool = False  # torch.compile the loss (GPU runs; CPU gains little and compiles slowly)
    # What the run trains on (data checksum, semantic-ID digest, split, model configuration);
    # saved in each checkpoint, and a checkpoint of anything else is refused on --resume.
    identity: dict[str, Any] | None = None
    # What rebuilds the model outside training (its class and configuration, the preset, the
    # item map, the command that re-creates it); saved in each checkpoint for recommend.py.
    spec: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {self.mode!r}")


@dataclass
class TrainResult:
    best_epoch: int
    best_metrics: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    examples_per_second: float = 0.0
    stopped_early: bool = False


def index_batches(
    n: int, batch_size: int, generator: torch.Generator | None = None, shuffle: bool = True
) -> Iterator[torch.Tensor]:
    """Index tensors that slice pre-built data tensors: the batching for every model (no
    collate)."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    yield from order.split(batch_size)


def count_parameters(model: torch.nn.Module) -> int:
    """Trainable parameters of ``model``: the size every results file reports."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A generator seeded by (seed, epoch), so a resumed run shuffles exactly as an uninterrupted
    one."""
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def lr_lambda(cfg: TrainConfig, total_steps: int) -> Callable[[int], float]:
    """Linear warm-up, then constant, cosine decay to zero, or inverse square root."""
    warmup = max(0, cfg.warmup_steps)

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if cfg.schedule == "cosine":
            progress = (step - warmup) / max(1, total_steps - warmup)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        if cfg.schedule == "inverse_sqrt":
            return math.sqrt(max(1, warmup) / max(step + 1, 1))
        return 1.0

    return factor


def _batch_len(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, dict):
        return _batch_len(next(iter(batch.values())))
    if isinstance(batch, (list, tuple)):
        return _batch_len(batch[0])
    return 1


def _rows(batch: Any, lo: int, hi: int) -> Any:
    """Rows [lo, hi) of every tensor in a batch (tensors, dicts, tuples; None stays None)."""
    if isinstance(batch, torch.Tensor):
        return batch[lo:hi]
    if isinstance(batch, dict):
        return {k: _rows(v, lo, hi) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_rows(v, lo, hi) for v in batch)
    return batch


def rank_share(batch: Any, weight: Callable[[Any], float] = _batch_len) -> tuple[Any, float]:
    """This rank's contiguous slice of a global batch, and the factor its mean loss is scaled by.

    DDP averages the ranks' gradients; scaling rank r's mean loss by
    ``world * weight(slice_r) / weight(batch)`` turns that average into the gradient of the
    global batch's mean loss, for any split of the rows, where ``weight`` counts the terms the
    loss averages over. A rank whose slice is empty (a batch smaller than the world) runs its
    forward on one row with factor 0, so it still joins the gradient all-reduce.
    """
    lo, hi = distributed.shard_bounds(_batch_len(batch))
    total = weight(batch)
    if hi == lo or not total:
        return _rows(batch, 0, 1), 0.0
    local = _rows(batch, lo, hi)
    return local, distributed.world_size() * float(weight(local)) / float(total)


class _Loss(torch.nn.Module):
    """``loss_fn(model, batch)`` as a module's forward, so DistributedDataParallel sees the step
    (models are trained through methods such as ``loss``, not only through ``forward``)."""

    def __init__(self, model: torch.nn.Module, loss_fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: Any) -> torch.Tensor:
        return self.loss_fn(self.model, batch)


def _data_parallel(
    model: torch.nn.Module, loss_fn: Callable[..., torch.Tensor]
) -> Callable[[Any], torch.Tensor]:
    """The step's loss: the plain ``loss_fn`` in one process, a DDP module over the ranks."""
    if not distributed.is_distributed():
        return lambda batch: loss_fn(model, batch)
    # Buffers (semantic codes, side features) are fixed, so they are not re-synced every step.
    # Every parameter of the toolkit's models is in every step's graph (an embedding table is,
    # whichever rows the slice touches), so DDP needs no search for unused ones.
    return DistributedDataParallel(_Loss(model, loss_fn), forward_sync_buffers=False)


def mixed_precision(device: torch.device) -> tuple[torch.dtype | None, bool]:
    """The autocast dtype for ``device`` and whether it needs a gradient scaler.

    CUDA: bf16 where the GPU has it (Ampere and later; no scaler needed), else
    fp16 with a scaler. CPU and MPS train in fp32: bf16 autocast is slower than
    fp32 on most CPUs, and MPS autocast does not cover every op these models use.
    """
    if device.type != "cuda":
        return None, False
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, False
    return torch.float16, True


def _improved(value: float, best: float | None, mode: str) -> bool:
    if best is None:
        return not math.isnan(value)
    return value > best if mode == "max" else value < best


def fit(
    model: torch.nn.Module,
    batches: Callable[[int], Iterable[Any]],
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
    evaluate: Callable[[torch.nn.Module], dict[str, float]],
    cfg: TrainConfig,
    steps_per_epoch: int | None = None,
    desc: str = "train",
    progress: bool = False,
    weight: Callable[[Any], float] | None = None,
) -> TrainResult:
    """Train ``model`` with early stopping on ``evaluate()[cfg.monitor]``; leaves the best weights
    in it.

    ``batches(epoch)`` yields the epoch's batches (already on the model's
    device); ``loss_fn(model, batch)`` returns a scalar loss. With
    ``cfg.checkpoint`` set, the full state is saved after every epoch, and
    ``cfg.resume`` continues from it. ``progress`` shows a per-epoch progress bar.

    Under torchrun (:mod:`utils.runtime.distributed`) every rank draws the same global batches and
    trains on its slice of each (:func:`rank_share`) through DistributedDataParallel, so a step
    sees the single-process batch and gradient; ``weight(batch)`` counts the terms the loss
    averages over (default: the batch's rows). Every rank evaluates (evaluators may share the
    work out) and rank 0's metrics decide early stopping everywhere; rank 0 alone writes the
    checkpoint.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    device = params[0].device
    amp_dtype, needs_scaler = mixed_precision(device)
    scaler = torch.amp.GradScaler("cuda", enabled=needs_scaler)
    optimizer = torch.optim.AdamW(
        params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=device.type == "cuda" or None
    )
    step_loss = _data_parallel(
        model, torch.compile(loss_fn, dynamic=True) if cfg.compile else loss_fn
    )
    world = distributed.world_size()
    total_steps = cfg.epochs * (steps_per_epoch or 1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, total_steps))
    result = TrainResult(best_epoch=-1, best_metrics={})
    best_state: dict[str, torch.Tensor] | None = None
    best_value: float | None = None
    start_epoch, bad_epochs, examples = 0, 0, 0

    ckpt = Path(cfg.checkpoint) if cfg.checkpoint else None
    if ckpt and cfg.resume and ckpt.exists():
        state = load_checkpoint(ckpt)
        check_identity(ckpt, state.get("identity"), cfg.identity)
        try:
            own = model.state_dict()
            check_layout(ckpt, own, state["model"])
            if state["best_state"] is not None:
                check_layout(ckpt, own, state["best_state"])
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            best_state, best_value = state["best_state"], state["best_value"]
            result = TrainResult(**state["result"])
            start_epoch, bad_epochs = int(state["epoch"]) + 1, int(state["bad_epochs"])
            if not 0 < start_epoch <= cfg.epochs or bad_epochs < 0:
                raise ValueError(
                    f"epoch {start_epoch - 1} and bad epochs {bad_epochs} do not fit a "
                    f"{cfg.epochs}-epoch run"
                )
            # Older checkpoints lack the count; a finished run's recorded throughput gives it back.
            examples = state.get(
                "examples", round(result.examples_per_second * result.train_seconds)
            )
            torch.set_rng_state(state["torch_rng"])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            raise CheckpointError(
                f"{ckpt}: its training state does not fit this run ({type(exc).__name__}: "
                f"{str(exc)[:120]}); {RESUME_FIX}"
            ) from exc
        log.info("resumed from %s at epoch %d", ckpt, start_epoch)

    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        t0 = time.perf_counter()
        # The loss is summed on the device (reading it every step would stall a GPU), in float64
        # where the device has it, so the logged value equals a Python sum of the step losses.
        loss_sum = torch.zeros(
            (), device=device, dtype=torch.float32 if device.type == "mps" else torch.float64
        )
        n_steps, n_examples = 0, 0
        bar = tqdm(
            batches(epoch),
            total=steps_per_epoch,
            desc=f"{desc} epoch {epoch}",
            disable=not progress,
            leave=False,
        )
        for batch in bar:
            local, share = rank_share(batch, weight or _batch_len) if world > 1 else (batch, 1.0)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                loss = step_loss(local)
            if world > 1:
                loss = loss * share
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_sum += loss.detach().to(loss_sum.dtype)
            n_steps += 1
            n_examples += _batch_len(batch)
            if n_steps % 50 == 0:
                bar.set_postfix(loss=f"{float(loss_sum) / n_steps:.4f}")
        # The ranks' scaled losses average to the global batch's loss.
        total_loss = float(distributed.all_reduce_sum(loss_sum)) / world
        train_time = time.perf_counter() - t0
        result.train_seconds += train_time
        examples += n_examples

        model.eval()
        with torch.no_grad():
            metrics = distributed.broadcast_object(evaluate(model))
        value = float(metrics.get(cfg.monitor, float("nan")))
        entry = {
            "epoch": epoch,
            "loss": total_loss / max(n_steps, 1),
            "train_seconds": round(train_time, 3),
            "lr": optimizer.param_groups[0]["lr"],
            **{f"val_{k}": v for k, v in metrics.items()},
        }
        result.history.append(entry)
        log.info(
            "%s epoch %d: loss %.4f, val %s %.4f (%.1fs)",
            desc,
            epoch,
            entry["loss"],
            cfg.monitor,
            value,
            train_time,
        )

        if _improved(value, best_value, cfg.mode):
            best_value, bad_epochs = value, 0
            best_state = copy.deepcopy(model.state_dict())
            result.best_epoch, result.best_metrics = epoch, dict(metrics)
        else:
            bad_epochs += 1
        # Without a validation metric (holdout trains for a fixed count) nothing stops early.
        stop = bad_epochs >= cfg.patience and not math.isnan(value)
        if ckpt and distributed.is_main():
            save_checkpoint(
                ckpt,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "best_state": best_state,
                    "best_value": best_value,
                    "result": plain(asdict(result)),
                    "epoch": epoch,
                    "bad_epochs": bad_epochs,
                    "examples": examples,
                    "torch_rng": torch.get_rng_state(),
                    "config": plain(asdict(cfg)),
                    "identity": plain(cfg.identity),
                    "spec": plain(cfg.spec),
                },
            )
        distributed.barrier()  # no rank runs ahead of the epoch's checkpoint
        if stop:
            result.stopped_early = True
            log.info(
                "%s: early stop after epoch %d (best epoch %d)", desc, epoch, result.best_epoch
            )
            break

    if best_state is not None:
        model.load_state_dict(best_state)
    result.examples_per_second = examples / result.train_seconds if result.train_seconds else 0.0
    return result
