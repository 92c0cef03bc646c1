"""SASRec: causal masking, padding invariance, learning and full-catalogue ranks."""
from __future__ import annotations

import pytest
import torch

from src.sasrec import SASRec, SASRecConfig
from src.sequence_data import Examples
from src.tiger_experiment import sasrec_rank
from tests.helpers import assert_steps_lower_loss


def tiny(seed=0) -> SASRec:
    torch.manual_seed(seed)
    return SASRec(30, SASRecConfig(d_model=16, n_layers=2, n_heads=2, dropout=0.2, max_items=5))


def test_scores_no_nan_with_padding_and_padding_invariant():
    model = tiny().eval()
    hist = torch.tensor([[-1, -1, -1, -1, 3], [1, 2, 3, 4, 5], [-1, -1, 7, 8, 9]])
    s = model.scores(hist)
    assert s.shape == (3, 30) and torch.isfinite(s).all()
    assert torch.allclose(model.scores(hist[:, -3:])[2], s[2], atol=1e-5)


def test_attention_is_causal():
    """Changing an item changes only positions at or after it (checked on the first layer)."""
    model = tiny().eval()
    a = torch.tensor([[1, 2, 3, 4, 5]])
    b = torch.tensor([[1, 2, 9, 4, 5]])
    layer, captured = model.layers[0], []
    hook = layer.register_forward_hook(lambda m, i, o: captured.append(o))
    model.scores(a), model.scores(b)
    hook.remove()
    out_a, out_b = captured
    assert torch.allclose(out_a[0, :2], out_b[0, :2], atol=1e-6)
    assert not torch.allclose(out_a[0, 2:], out_b[0, 2:])


def test_training_steps_lower_the_loss():
    model = tiny()
    g = torch.Generator().manual_seed(0)
    hist = torch.randint(0, 30, (64, 5), generator=g)
    target = (hist[:, -1] + 1) % 30
    assert_steps_lower_loss(model, hist, target, steps=20)


def test_ranks_are_full_catalogue_ranks():
    model = tiny().eval()
    hist = torch.tensor([[-1, 1, 2, 3, 4], [-1, -1, -1, 5, 6], [7, 8, 9, 10, 11]])
    length = (hist >= 0).sum(1)
    target = torch.tensor([0, 5, 29])
    ex = Examples(hist, length, target, torch.arange(3), torch.arange(3))
    ranks, _ = sasrec_rank(model, ex, batch_size=2)
    s = model.scores(hist)
    expected = [(s[i] > s[i, t]).sum().item() for i, t in enumerate(target.tolist())]
    assert ranks.tolist() == expected


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="divisible"):
        SASRec(10, SASRecConfig(d_model=10, n_heads=3))
