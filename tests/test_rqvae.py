"""RQ-VAE quantizer (src/semantic_ids/rqvae.py, rqvae_training.py): gradients, dead codes,
reconstruction, encoding, safe saving, CLI."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from src.semantic_ids import generator as gen
from src.semantic_ids.config import GeneratorConfig
from src.semantic_ids.rqvae import FORMAT, RQVAE, RQVAEConfig, RQVAEQuantizer
from src.semantic_ids.rqvae_training import RQVAETrainConfig, reseed_dead, train_rqvae
from tests.helpers import RQVAE_ARGS
from tests.helpers import run_generator as run
from tests.synthetic import write_movielens
from utils.data.load import load_dataset
from utils.data.semantic import load_semantic_ids, read_semantic_ids_file
from utils.runtime.errors import DataError

TINY = RQVAEConfig(input_dim=8, hidden=(16,), latent_dim=4, levels=2, codebook_size=5)


def clustered(n: int = 240, dim: int = 8, clusters: int = 6, seed: int = 0) -> np.ndarray:
    """Points around a few well-separated centres, with structure left inside each cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)) * 3
    return (centres[np.arange(n) % clusters] + rng.normal(size=(n, dim))).astype(np.float32)


@pytest.fixture(scope="module")
def trained() -> tuple[RQVAEQuantizer, np.ndarray]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # set up before the per-test one-thread fixture; restored below
    try:
        x = clustered()
        cfg = RQVAEConfig(input_dim=8, hidden=(32, 16), latent_dim=4, levels=3, codebook_size=6)
        model, report = train_rqvae(
            x, cfg, RQVAETrainConfig(epochs=150, batch_size=60, lr=3e-3, seed=0)
        )
    finally:
        torch.set_num_threads(threads)
    assert len(report.history) == 150 and report.steps == 600
    return RQVAEQuantizer(model), x


def test_forward_backward_shapes():
    torch.manual_seed(0)
    model = RQVAE(TINY)
    x = torch.randn(7, 8)
    recon, q = model(x)
    assert recon.shape == (7, 8) and q.codes.shape == (7, 2) and q.z_q.shape == (7, 4)
    assert q.codes.dtype == torch.int64 and len(q.residuals) == 2
    (((recon - x) ** 2).mean() + q.codebook_loss + 0.25 * q.commitment_loss).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape and torch.isfinite(p.grad).all(), name


def test_straight_through_gradient_reaches_the_encoder():
    """The reconstruction loss alone (no commitment term) must move the encoder through the
    argmin."""
    torch.manual_seed(0)
    model = RQVAE(TINY)
    with torch.no_grad():
        model.codebooks.normal_()
    x = torch.randn(16, 8)
    recon, _ = model(x)
    ((recon - x) ** 2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    assert model.codebooks.grad is None, "the reconstruction loss must not reach the codebooks"


def test_reseeding_revives_a_dead_code():
    torch.manual_seed(0)
    model = RQVAE(TINY)
    x = torch.randn(32, 8)
    with torch.no_grad():
        model.codebooks.normal_()
        model.codebooks[0, 3] = 1e4  # far from every latent: never chosen
    opt = torch.optim.Adam(model.parameters())
    _, q = model(x)
    counts = torch.stack([torch.bincount(q.codes[:, lvl], minlength=5) for lvl in range(2)])
    assert counts[0, 3] == 0
    reseeded = reseed_dead(model, opt, counts == 0, q.residuals, torch.Generator().manual_seed(0))
    assert reseeded[0] == int((counts[0] == 0).sum()) >= 1
    _, after = model(x)
    assert (after.codes[:, 0] == 3).any(), (
        "the re-seeded code sits on a batch residual, so it is used"
    )


def test_training_records_usage_and_reseeds_only_with_the_flag():
    x = clustered(n=60)
    runs = {
        flag: train_rqvae(
            x, TINY, RQVAETrainConfig(epochs=3, batch_size=20, reseed_dead_codes=flag)
        )[1]
        for flag in (False, True)
    }
    assert all(len(h["usage"]) == 2 for h in runs[False].history)
    assert all("reseeded" not in h for h in runs[False].history)
    # never after the last epoch, which would leave a re-seeded code untrained
    assert [("reseeded" in h) for h in runs[True].history] == [True, True, False]


def test_reconstructs_better_than_the_first_level_alone(trained):
    q, x = trained
    codes, errors = q.encode_with_errors(x)
    assert errors[-1] < 0.8 * errors[0], errors
    assert errors[0] < 0.5 * float((x**2).sum(1).mean()), (
        "level 1 alone must already beat predicting zero"
    )
    assert len(np.unique(codes[:, 0])) >= 4


def test_new_item_encoding_reproduces_training_codes(trained, tmp_path):
    q, x = trained
    codes = q.encode(x)
    np.testing.assert_array_equal(q.encode(x[:5]), codes[:5])
    np.testing.assert_array_equal(
        np.vstack([q.encode(x[i : i + 1]) for i in range(10)]), codes[:10]
    )
    path = tmp_path / "rqvae.pt"
    path.write_bytes(q.to_bytes())
    loaded = RQVAEQuantizer.load(path)
    np.testing.assert_array_equal(loaded.encode(x), codes)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.arrays(), q.arrays()))


MARKS: list[str] = []


def _mark() -> str:
    MARKS.append("ran")
    return "ran"


class Payload:
    def __reduce__(self):
        return (_mark, ())


def test_saved_model_is_plain_tensors_and_a_pickle_payload_is_refused(trained, tmp_path):
    q, _ = trained
    path = tmp_path / "rqvae.pt"
    path.write_bytes(q.to_bytes())
    doc = torch.load(path, map_location="cpu", weights_only=True)
    assert doc["format"] == FORMAT and RQVAEConfig.from_dict(doc["config"]) == q.cfg
    assert all(isinstance(v, torch.Tensor) for v in doc["state"].values())
    bad = tmp_path / "planted.pt"
    torch.save({**doc, "extra": Payload()}, bad)
    with pytest.raises(pickle.UnpicklingError):
        RQVAEQuantizer.load(bad)
    assert MARKS == []


# ------------------------------------------------------------------ through the generator CLI


def test_generator_rqvae_same_seed_same_bytes_and_new_items(tmp_path, encoder):
    data = write_movielens(tmp_path / "ml", n_items=40)
    cache = tmp_path / "cache"
    assert run(data, cache, *RQVAE_ARGS) == 0
    first = [(data / name).read_bytes() for name in ("semantic_ids.json", "rqvae.pt")]
    assert run(data, cache, *RQVAE_ARGS) == 0
    assert [(data / name).read_bytes() for name in ("semantic_ids.json", "rqvae.pt")] == first
    header, _, _ = read_semantic_ids_file(data / "semantic_ids.json")
    assert header["quantizer"] == "rqvae" and header["codebooks_file"] == "rqvae.pt"
    assert (
        header["run_record"]["config"]["quantizer"] == "rqvae"
        and not (data / "codebooks.npz").exists()
    )
    stats = json.loads((data / "semantic_id_stats.json").read_text())
    assert stats["quantizer"] == "rqvae" and len(stats["training"]["history"]) == 3
    assert [u["used_codes"] + u["unused_codes"] for u in stats["usage"]] == [4, 4, 4]
    ds = load_dataset(data)
    sids = load_semantic_ids(data, ds)
    assert sids.codes.shape == (40, 4) and len({tuple(r) for r in sids.codes}) == 40

    # new items: the training items' own texts get their training codes back
    texts = gen.item_texts(ds, GeneratorConfig()).texts[:5]
    new_items = tmp_path / "new.jsonl"
    new_items.write_text(
        "".join(json.dumps({"id": f"n{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    )
    assert (
        run(data, cache, "--encode-texts", str(new_items), "--out", str(tmp_path / "o.json")) == 0
    )
    new = np.array(list(json.loads((tmp_path / "o.json").read_text())["items"].values()))
    np.testing.assert_array_equal(new[:, :3], sids.codes[:5, :3])

    # a model from another run is refused
    assert (
        run(data, cache, *RQVAE_ARGS, "--seed", "1", "--output-dir", str(tmp_path / "other")) == 0
    )
    (data / "rqvae.pt").write_bytes((tmp_path / "other" / "rqvae.pt").read_bytes())
    with pytest.raises(DataError, match="another generator run"):
        run(data, cache, "--encode-texts", str(new_items))


def test_rqkmeans_run_record_has_no_rqvae_fields(tmp_path, encoder):
    """The default quantizer's semantic_ids.json keeps the exact fields it had before the RQ-VAE."""
    data = write_movielens(tmp_path / "ml", n_items=40)
    assert run(data, tmp_path / "cache") == 0
    header, _, _ = read_semantic_ids_file(data / "semantic_ids.json")
    assert (
        "quantizer" not in header
        and "kmeans" in header
        and header["codebooks_file"] == "codebooks.npz"
    )
    assert not {"quantizer", "rqvae_epochs", "reseed_dead_codes"} & set(
        header["run_record"]["config"]
    )


def test_training_runs_on_one_thread_and_restores_the_callers():
    """Multi-threaded CPU sums made Beauty's RQ-VAE codes differ run to run; training must run
    on one thread whatever the caller set, and give the caller's setting back."""
    x = clustered(n=64, dim=4, clusters=4)
    seen: list[int] = []
    torch.set_num_threads(2)
    train_rqvae(
        x,
        RQVAEConfig(4, hidden=(8,), latent_dim=2, levels=2, codebook_size=4),
        RQVAETrainConfig(epochs=2, batch_size=32),
        progress=lambda epoch: seen.append(torch.get_num_threads()),
    )
    assert seen == [1, 1] and torch.get_num_threads() == 2
