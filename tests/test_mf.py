"""Matrix factorization models: shapes, masking of untrained rows, level weights, and the
cold-start mechanism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import mf_train_eval
from src.pointwise.batches import pointwise_loss
from src.pointwise.evaluation import PointwiseEvaluator
from src.pointwise.experiment import train_pointwise
from src.pointwise.mf import (
    MODEL_NAMES,
    SemanticItems,
    base_score,
    build_mf_model,
    mf_model_facts,
    model_factory,
)
from src.training import TrainConfig
from tests.synthetic import ML_GENRE_COUNT
from utils.data.examples import TrainSampler
from utils.data.load import load_dataset
from utils.data.semantic import IDS_FILE, write_semantic_ids
from utils.data.splits import make_split
from utils.reporting.tables import mf_table
from utils.runtime.errors import DataError
from utils.runtime.io import read_json

N_CLUSTERS, N_SUB, PER_SUB = 6, 3, 12


def clustered_codes() -> tuple[np.ndarray, list[int]]:
    """Item i's 4-level semantic ID: cluster, sub-cluster, position, collision token 0."""
    i = np.arange(N_CLUSTERS * N_SUB * PER_SUB)
    codes = np.stack(
        [i // (N_SUB * PER_SUB), (i // PER_SUB) % N_SUB, i % PER_SUB, np.zeros_like(i)], axis=1
    )
    return codes.astype(np.int64), [N_CLUSTERS, N_SUB, PER_SUB, 2]


def write_clustered_movielens(
    folder: Path, n_users: int = 150, per_user: int = 40, seed: int = 0
) -> Path:
    """MovieLens-format files where a user's taste for an item is set by the item's code prefix.

    rating = 3 + taste[user, cluster] + sub_taste[user, cluster, sub-cluster] + noise, rounded and
    clipped.
    """
    codes, _ = clustered_codes()
    n_items = len(codes)
    rng = np.random.default_rng(seed)
    taste = rng.normal(0, 1.0, (n_users, N_CLUSTERS))
    sub_taste = rng.normal(0, 0.5, (n_users, N_CLUSTERS, N_SUB))
    rows = []
    for u in range(n_users):
        for pos, i in enumerate(rng.choice(n_items, per_user, replace=False)):
            c, s = codes[i, 0], codes[i, 1]
            r = int(
                np.clip(np.rint(3 + taste[u, c] + sub_taste[u, c, s] + rng.normal(0, 0.3)), 1, 5)
            )
            rows.append(f"{u + 1}\t{i + 1}\t{r}\t{880000000 + 1000 * pos + u}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text("\n".join(rows) + "\n")
    items = [
        "|".join(
            [str(i + 1), f"Movie {i} (1995)", "01-Jan-1995", "", "http://example.org"]
            + ["0"] * ML_GENRE_COUNT
        )
        for i in range(n_items)
    ]
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    return folder


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    ds = load_dataset(write_clustered_movielens(tmp_path_factory.mktemp("mf") / "ml-clustered"))
    return ds, make_split(ds, "temporal", seed=0, cold_fraction=0.2)


def _models(ds, split, codes, sizes, dim=4):
    build = model_factory(ds, split, "explicit", dim, 0, codes, sizes)
    torch.manual_seed(0)
    return {name: build(name) for name in MODEL_NAMES}


def test_shapes_and_score_all_agree_with_forward(clustered):
    ds, split = clustered
    codes, sizes = clustered_codes()
    users = torch.tensor([0, 3, 7])
    for name, model in _models(ds, split, codes, sizes).items():
        all_scores = model.score_all(users)
        assert all_scores.shape == (3, ds.n_items), name
        pairs = model(users.repeat_interleave(ds.n_items), torch.arange(ds.n_items).repeat(3)).view(
            3, -1
        )
        assert torch.allclose(all_scores, pairs, atol=1e-5), name


def test_semantic_item_rows_are_level_weighted_code_rows_by_hand():
    """Item row = sum over levels of softmax(level_logits)[l] * the row of its level-l code, with
    level l's codes at an offset in the shared table. Catches an unweighted or mis-weighted sum,
    a wrong per-level offset, and a weight looked up by code instead of by level."""
    codes = np.array([[0, 1], [1, 0], [1, 1]])
    items = SemanticItems(codes, [2, 2], 1, np.ones(3, bool))
    # rows (factor, bias): level-1 codes 0 and 1, then level-2 codes 0 and 1
    table = np.array([[1.0, 0.5], [2.0, -1.0], [10.0, 0.0], [20.0, 3.0]])
    logits = np.array([1.0, -1.0])
    with torch.no_grad():
        items.table.weight.copy_(torch.as_tensor(table))
        items.level_logits.copy_(torch.as_tensor(logits))
    w = np.exp(logits) / np.exp(logits).sum()  # 0.8808, 0.1192
    expected = np.stack([w[0] * table[c1] + w[1] * table[2 + c2] for c1, c2 in codes])
    np.testing.assert_allclose(items(torch.tensor([0, 1, 2])).detach().numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(items.all().detach().numpy(), expected, rtol=1e-6)


def test_recorded_level_weights_are_the_softmax_in_level_order(clustered):
    """The level weights a run records (mf_semantic, and mf_hybrid's semantic part) are the
    softmax of the learned logits, named level_1.. in level order; ID-only models record none."""
    ds, split = clustered
    codes, sizes = clustered_codes()
    models = _models(ds, split, codes, sizes)
    logits = np.array([2.0, -1.0, 0.5, 0.0])
    expected = np.exp(logits) / np.exp(logits).sum()  # 0.7101, 0.0354, 0.1584, 0.0961
    semantic_parts = {
        "mf_semantic": models["mf_semantic"].items,
        "mf_hybrid": models["mf_hybrid"].items.parts[1],
    }
    for name, part in semantic_parts.items():
        with torch.no_grad():
            part.level_logits.copy_(torch.as_tensor(logits))
        weights = mf_model_facts(models[name])["level_weights"]
        assert list(weights) == ["level_1", "level_2", "level_3", "level_4"], name
        np.testing.assert_allclose(list(weights.values()), expected, rtol=1e-6, err_msg=name)
    assert "level_weights" not in mf_model_facts(models["mf_id"])
    assert (
        mf_model_facts(models["bias"])["n_parameters"] == ds.n_users + ds.n_items + 1
    )  # biases and mu, no factors


def test_cold_item_under_mf_id_scores_global_mean_plus_user_bias_and_never_trains(clustered):
    ds, split = clustered
    sampler = TrainSampler(ds, split, "explicit", 0, seed=0)
    model = model_factory(ds, split, "explicit", 4, 0, init_std=0.5)("mf_id")
    assert model.mu.item() == pytest.approx(base_score("explicit", ds.ratings[split.train]))
    cold = int(split.cold_items[0])
    assert torch.count_nonzero(model.items.weight[cold]) == 0  # zero-initialised
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    ex = sampler.epoch(0)
    loss = pointwise_loss("explicit", reg=0.1)(
        model,
        {
            "users": torch.as_tensor(ex.users),
            "items": torch.as_tensor(ex.items),
            "labels": torch.as_tensor(ex.labels),
        },
    )
    loss.backward()
    assert torch.count_nonzero(model.items.weight.grad[cold]) == 0
    opt.step()
    assert (
        torch.count_nonzero(model.items.weight[cold]) == 0
    )  # still zero after a step (with weight decay)
    assert torch.count_nonzero(model.items.weight[int(ex.items[0])]) > 0
    users = torch.arange(5)
    expected = model.mu + model.users(users)[:, -1]
    assert torch.allclose(model(users, torch.full((5,), cold)), expected)


def test_semantic_codes_are_validated():
    codes, sizes = clustered_codes()
    bad = codes.copy()
    bad[3, 2] = PER_SUB
    with pytest.raises(ValueError, match="level 3"):
        SemanticItems(bad, sizes, 4, np.ones(len(codes), bool))
    with pytest.raises(ValueError, match=r"\(n_items, 4\)"):
        SemanticItems(codes[:, :3], sizes, 4, np.ones(len(codes), bool))
    with pytest.raises(ValueError, match="needs semantic IDs"):
        build_mf_model(
            "mf_semantic", 3, len(codes), 4, np.ones(3, bool), np.ones(len(codes), bool), 0.0
        )
    with pytest.raises(ValueError, match="unknown model"):
        build_mf_model("svd++", 3, len(codes), 4, np.ones(3, bool), np.ones(len(codes), bool), 0.0)


def _cold_rmse(ds, split, name, codes, sizes):
    torch.manual_seed(0)
    model = model_factory(ds, split, "explicit", 4, 0, codes, sizes)(name)
    ev = PointwiseEvaluator(ds, split, "explicit")
    train_pointwise(
        model,
        TrainSampler(ds, split, "explicit", 0, seed=0),
        ev,
        TrainConfig(epochs=25, batch_size=256, lr=0.03, patience=3),
        seed=0,
        reg=0.02,
    )
    return ev.evaluate(model, "test")["slices"]["cold_items"]["rmse"]


def test_semantic_ids_carry_taste_to_cold_items(clustered):
    """Items sharing a code prefix share taste: MF-Semantic scores cold items well, MF-ID cannot,
    and the gain disappears when the codes are shuffled across items (so it comes from the
    codes)."""
    ds, split = clustered
    codes, sizes = clustered_codes()
    shuffled = codes[np.random.default_rng(1).permutation(len(codes))]
    id_rmse = _cold_rmse(ds, split, "mf_id", codes, sizes)
    semantic_rmse = _cold_rmse(ds, split, "mf_semantic", codes, sizes)
    shuffled_rmse = _cold_rmse(ds, split, "mf_semantic", shuffled, sizes)
    assert semantic_rmse < 0.8 * id_rmse, (semantic_rmse, id_rmse)
    assert semantic_rmse < 0.8 * shuffled_rmse, (semantic_rmse, shuffled_rmse)


def write_clustered_semantic_ids(folder: Path, ds) -> None:
    """The clustered codes in the generator's file format (3 levels + collision column)."""
    codes, sizes = clustered_codes()
    header = {
        "dataset": ds.name,
        "data_checksum": ds.checksum,
        "n_items": ds.n_items,
        "levels": 3,
        "codebook_sizes": sizes[:3],
        "collision_size": sizes[3],
        "model": "synthetic",
        "fit_on": "warm",
        "cold_fraction": 0.2,
        "split_seed": 0,
    }
    write_semantic_ids(folder / IDS_FILE, header, list(ds.item_ids), codes)


def _cli(folder: Path, out: Path, *extra: str) -> dict:
    return mf_train_eval.main(
        [
            "--data-dir",
            str(folder),
            "--out",
            str(out),
            "--plot-dir",
            str(out.parent / "plots"),
            "--split-cache",
            str(out.parent / "splits"),
            "--cold-fraction",
            "0.2",
            "--epochs",
            "2",
            "--quiet",
            *extra,
        ]
    )


def test_cli_explicit_and_implicit_runs_write_complete_results(tmp_path):
    folder = write_clustered_movielens(tmp_path / "ml-tiny", n_users=40, per_user=20)
    write_clustered_semantic_ids(folder, load_dataset(folder))
    res = _cli(folder, tmp_path / "out" / "{dataset}.json", "--seeds", "0", "1")
    saved = json.loads((tmp_path / "out" / "ml-tiny.json").read_text())
    assert saved["objective"] == res["objective"] == "explicit"
    assert (
        set(saved["models"]) == set(MODEL_NAMES)
        and saved["semantic_ids"]["cold_holdout_matches_split"]
    )
    for name, model in saved["models"].items():
        assert set(model["seeds"]) == {"0", "1"}
        test = model["seeds"]["0"]["test"]
        assert {"rmse", "mae", "auc", "pr_auc", "precision", "recall", "f1", "accuracy"} <= set(
            test["overall"]
        )
        assert test["slices"]["cold_items"]["n"] > 0 and test["slices"]["warm_items"]["n"] > 0
        assert len(model["mean_std"]["test"]["overall"]["rmse"]["values"]) == 2
        if name != "global_mean":
            assert 1 <= len(model["seeds"]["0"]["history"]) <= 2
    weights = saved["models"]["mf_semantic"]["seeds"]["1"]["level_weights"]
    assert sum(weights.values()) == pytest.approx(1.0)
    assert (
        saved["run_record"]["config"]["seeds"] == [0, 1] and "stage_seconds" in saved["run_record"]
    )
    assert all(Path(p).is_file() for p in saved["plots"])
    table = mf_table(
        read_json(tmp_path / "out" / "ml-tiny.json")
    )  # the README's summary reads the same file
    assert (
        f"{saved['models']['mf_id']['mean_std']['test']['overall']['rmse']['mean']:.4f} ± " in table
    )

    imp = _cli(
        folder,
        tmp_path / "imp" / "{dataset}.json",
        "--objective",
        "implicit",
        "--models",
        "mf_id",
        "mf_semantic",
        "--ks",
        "5",
        "10",
    )
    assert imp["objective"] == "implicit"
    ranking = imp["models"]["mf_semantic"]["seeds"]["0"]["test"]["ranking"]
    assert {"recall@5", "ndcg@10"} <= set(ranking["overall"]) and ranking["slices"]["cold_items"][
        "users"
    ] > 0
    assert "chance_recall@5" in ranking["cold_catalogue"]


def test_cli_is_reproducible_and_explains_missing_semantic_ids(tmp_path):
    folder = write_clustered_movielens(tmp_path / "ml-tiny", n_users=30, per_user=15)
    runs = [_cli(folder, tmp_path / f"run{k}.json", "--models", "bias", "mf_id") for k in range(2)]

    def outcome(r):  # everything but wall times; via JSON so that nan == nan
        seeds = {name: m["seeds"]["0"] for name, m in r["models"].items()}
        return json.dumps(
            {name: [s["test"], [h["loss"] for h in s["history"]]] for name, s in seeds.items()},
            sort_keys=True,
        )

    assert outcome(runs[0]) == outcome(runs[1])
    with pytest.raises(DataError, match="semantic_id_generator.py"):
        _cli(folder, tmp_path / "x.json", "--models", "mf_semantic")


SHARED_ML = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"


@pytest.mark.skipif(
    not (SHARED_ML / "u.data").exists(), reason=f"real MovieLens 100K not found at {SHARED_ML}"
)
def test_real_movielens_smoke_mf_id_beats_the_global_mean():
    ds = load_dataset(SHARED_ML)
    split = make_split(ds, "temporal", seed=0)  # not cached: never write next to the shared data
    ev = PointwiseEvaluator(ds, split, "explicit")
    build = model_factory(ds, split, "explicit", 16, 0)
    torch.manual_seed(0)
    model = build("mf_id")
    train_pointwise(
        model,
        TrainSampler(ds, split, "explicit", 0, seed=0),
        ev,
        TrainConfig(epochs=2, batch_size=4096, lr=0.02),
        seed=0,
        reg=0.05,
    )
    rmse_mf = ev.evaluate(model, "test")["overall"]["rmse"]
    rmse_mean = ev.evaluate(build("global_mean"), "test")["overall"]["rmse"]
    assert rmse_mf < rmse_mean - 0.1, (rmse_mf, rmse_mean)
