"""Small assertions several model tests share."""
from __future__ import annotations

import torch


def assert_steps_lower_loss(model: torch.nn.Module, hist: torch.Tensor, target: torch.Tensor, steps: int) -> None:
    """A few AdamW steps on one fixed batch must cut the (eval-mode) loss by at least 20%."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.eval()
    before = model.loss(hist, target).item()
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model.loss(hist, target).backward()
        opt.step()
    model.eval()
    assert model.loss(hist, target).item() < 0.8 * before
