"""Training tensors and losses for pointwise models: anything that scores (user, item) pairs.

The model contract is small:

* ``model(users, items) -> scores``: ``users`` and ``items`` are int64 index
  tensors of equal length on the model's device; the score is the predicted
  rating (explicit objective) or a logit (implicit and liked objectives). Side
  features (semantic codes, categories, ...) are looked up *inside* the model
  from buffers indexed by item or user, so the glue never needs to know them.
* optional ``model.score_and_penalty(users, items) -> (scores, penalty)``:
  the scores plus an L2 term on the parameters the batch touched (as in
  classic SGD matrix factorization), from one lookup; with ``reg > 0`` the
  loss adds ``reg * penalty``.
* optional ``model.score_all(users) -> (len(users), n_items)``: scores of every
  catalogue item, for fast full-catalogue ranking (:mod:`src.pointwise.evaluation`).

Batches are built by index slicing of tensors that are moved to the device
once per epoch (implicit training draws fresh negatives every epoch), never by
a per-example Python collate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.training import epoch_generator, index_batches
from utils.data.examples import PointwiseExamples, TrainSampler

# Validation metric used for early stopping, and whether larger is better, per objective
# ("liked" is scored like implicit feedback: see utils.data.examples).
MONITOR = {"explicit": ("rmse", "min"), "implicit": ("auc", "max"), "liked": ("auc", "max")}


@dataclass
class ExampleTensors:
    """A :class:`PointwiseExamples` set as device tensors; ``batch(idx)`` slices every field at
    once."""

    users: Tensor
    items: Tensor
    labels: Tensor

    @classmethod
    def from_examples(cls, ex: PointwiseExamples, device: str | torch.device) -> ExampleTensors:
        return cls(
            torch.as_tensor(ex.users, dtype=torch.long).to(device),
            torch.as_tensor(ex.items, dtype=torch.long).to(device),
            torch.as_tensor(ex.labels, dtype=torch.float32).to(device),
        )

    def __len__(self) -> int:
        return len(self.users)

    def batch(self, idx: Tensor) -> dict[str, Tensor]:
        return {"users": self.users[idx], "items": self.items[idx], "labels": self.labels[idx]}


def epoch_batches(
    sampler: TrainSampler, batch_size: int, seed: int, device: str | torch.device
) -> Callable[[int], Iterator[dict]]:
    """``batches(epoch)`` for :func:`src.training.fit`: the epoch's examples, shuffled by (seed,
    epoch)."""

    def batches(epoch: int) -> Iterator[dict[str, Tensor]]:
        data = ExampleTensors.from_examples(sampler.epoch(epoch), device)
        for idx in index_batches(len(data), batch_size, epoch_generator(seed, epoch)):
            yield data.batch(idx.to(device))

    return batches


def pointwise_loss(objective: str, reg: float = 0.0) -> Callable[[nn.Module, dict], Tensor]:
    """MSE on ratings (explicit) or BCE on logits (implicit, liked), plus ``reg * penalty`` when the
    model has one."""
    if objective not in MONITOR:
        raise ValueError(f"objective must be one of {', '.join(MONITOR)}, got {objective!r}")

    def loss(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        if reg and hasattr(model, "score_and_penalty"):
            scores, penalty = model.score_and_penalty(batch["users"], batch["items"])
        else:
            scores, penalty = model(batch["users"], batch["items"]), None
        if objective == "explicit":
            value = F.mse_loss(scores, batch["labels"])
        else:
            value = F.binary_cross_entropy_with_logits(scores, batch["labels"])
        return value if penalty is None else value + reg * penalty

    return loss


@torch.no_grad()
def predict(model: nn.Module, data: ExampleTensors, batch_size: int = 1 << 16) -> np.ndarray:
    """Scores of every example, in large batches, as a float64 numpy array."""
    model.eval()
    out = [
        model(data.users[s : s + batch_size], data.items[s : s + batch_size]).float().cpu()
        for s in range(0, len(data), batch_size)
    ]
    return torch.cat(out).double().numpy() if out else np.zeros(0)
