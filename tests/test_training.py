"""The shared training loop: it learns, stops early, schedules the learning rate, resumes."""

from __future__ import annotations

import pytest
import torch

from src.training import TrainConfig, fit, index_batches, lr_lambda
from tests.helpers import fit_linear
from utils.runtime.checkpoints import load_checkpoint, save_checkpoint
from utils.runtime.errors import CheckpointError


def test_fit_learns_and_keeps_the_best_epoch():
    model, res = fit_linear(
        TrainConfig(epochs=15, lr=0.05, monitor="mse", mode="min", patience=100)
    )
    losses = [h["loss"] for h in res.history]
    assert losses[-1] < losses[0] / 10
    best = min(h["val_mse"] for h in res.history)
    assert res.best_metrics["mse"] == pytest.approx(best)
    assert res.examples_per_second > 0


def test_early_stopping_stops():
    _, res = fit_linear(TrainConfig(epochs=50, lr=0.0, monitor="mse", mode="min", patience=2))
    assert res.stopped_early and len(res.history) == 3 and res.best_epoch == 0


def test_without_a_validation_metric_every_epoch_runs_and_the_last_is_kept():
    """Holdout training has no validation fold: patience never stops it, the final weights stay."""
    torch.manual_seed(0)
    x, y = torch.randn(64, 4), torch.randn(64)
    model = torch.nn.Linear(4, 1)
    snapshots = []

    def batches(epoch):
        yield x, y

    def loss_fn(m, batch):
        return torch.nn.functional.mse_loss(m(batch[0]).squeeze(-1), batch[1])

    def no_validation(m):
        snapshots.append(m.weight.detach().clone())
        return {}

    cfg = TrainConfig(epochs=5, batch_size=64, lr=0.1, patience=1, monitor="ndcg@10")
    result = fit(model, batches, loss_fn, no_validation, cfg, steps_per_epoch=1)
    assert len(result.history) == 5 and not result.stopped_early
    assert torch.equal(model.weight, snapshots[-1])


def test_resume_matches_an_uninterrupted_run(tmp_path):
    ckpt = str(tmp_path / "ckpt.pt")
    full, _ = fit_linear(TrainConfig(epochs=6, lr=0.02, monitor="mse", mode="min", patience=100))
    fit_linear(
        TrainConfig(epochs=3, lr=0.02, monitor="mse", mode="min", patience=100, checkpoint=ckpt)
    )
    resumed, res = fit_linear(
        TrainConfig(
            epochs=6, lr=0.02, monitor="mse", mode="min", patience=100, checkpoint=ckpt, resume=True
        ),
        init_seed=123,
    )
    assert len(res.history) == 6
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    # Resuming a finished run only re-evaluates, and keeps the throughput it measured.
    _, again = fit_linear(
        TrainConfig(
            epochs=6, lr=0.02, monitor="mse", mode="min", patience=100, checkpoint=ckpt, resume=True
        ),
        init_seed=7,
    )
    assert (
        again.examples_per_second == pytest.approx(res.examples_per_second)
        and again.examples_per_second > 0
    )
    assert again.train_seconds == res.train_seconds and len(again.history) == 6


def test_resume_refuses_a_checkpoint_whose_epoch_does_not_fit(tmp_path):
    """A tampered epoch (-5 would train five extra epochs, 99 none) is refused in one line."""
    ckpt = tmp_path / "ckpt.pt"
    cfg = dict(epochs=3, lr=0.02, monitor="mse", mode="min", patience=100, checkpoint=str(ckpt))
    fit_linear(TrainConfig(**cfg))
    state = load_checkpoint(ckpt)
    for epoch in (-5, 99):
        state["epoch"] = epoch
        save_checkpoint(ckpt, state)
        with pytest.raises(CheckpointError, match=f"epoch {epoch} and bad epochs 0 do not fit"):
            fit_linear(TrainConfig(**cfg, resume=True))


def test_lr_schedules():
    warm = lr_lambda(TrainConfig(warmup_steps=4, schedule="inverse_sqrt"), 100)
    assert [warm(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert warm(15) == pytest.approx(0.5)  # sqrt(4/16)
    cos = lr_lambda(TrainConfig(schedule="cosine"), 10)
    assert cos(0) == 1.0 and cos(5) == pytest.approx(0.5) and cos(10) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        TrainConfig(schedule="linear")


def test_index_batches_cover_everything_once():
    idx = torch.cat(list(index_batches(10, 3, torch.Generator().manual_seed(0))))
    assert sorted(idx.tolist()) == list(range(10))
