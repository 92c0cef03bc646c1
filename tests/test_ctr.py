"""CTR models: forward in every mode, each head by hand, learning, the cold-item rule and the
end-to-end script."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from src.pointwise.ctr import DLRM, MODELS, CTRConfig, DeepFM, WideAndDeep, build_ctr_model
from src.pointwise.features import BAG_LAYOUTS, MODES, FeatureTensors, FieldSpec, build_features
from src.training import count_parameters
from tests.synthetic import write_movielens, write_p5
from utils.data.load import load_dataset
from utils.data.semantic import write_semantic_ids
from utils.data.splits import make_split
from utils.reporting.tables import ctr_table
from utils.runtime.errors import DataError
from utils.runtime.hashing import hash_pairs

CFG = CTRConfig(dim=8, hidden=(16, 8), bottom=(8,), cross_buckets=256)


def synthetic_codes(n_items: int) -> np.ndarray:
    """Level 1 follows the synthetic data's category (item i is in category i % 4), deeper levels
    split it."""
    i = np.arange(n_items)
    return np.stack([i % 4, (i // 4) % 3, (i // 12) % 3, i % 2], axis=1)


def write_semantic_file(folder, ds) -> None:
    write_semantic_ids(
        folder / "semantic_ids.json",
        {
            "data_checksum": ds.checksum,
            "codebook_sizes": [4, 3, 3],
            "collision_size": 2,
            "model": "synthetic",
            "fit_on": "warm",
            "cold_fraction": 0.05,
            "split_seed": 0,
        },
        list(ds.item_ids),
        synthetic_codes(ds.n_items),
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    ds = load_dataset(
        write_movielens(tmp_path_factory.mktemp("ml") / "ml-100k", n_users=30, n_items=40)
    )
    split = make_split(ds, "temporal", seed=0, cold_fraction=0.1)
    return ds, split, synthetic_codes(ds.n_items)


@pytest.mark.parametrize("layout", BAG_LAYOUTS)
@pytest.mark.parametrize("mode", MODES)
def test_every_model_runs_in_every_mode(data, mode, layout):
    ds, split, codes = data
    features = build_features(ds, split, mode, codes, bag_layout=layout)
    users, items = torch.as_tensor(ds.users[:9]), torch.as_tensor(ds.items[:9])
    for name in MODELS:
        torch.manual_seed(0)
        model = build_ctr_model(name, features, CFG)
        out = model(users, items)
        assert out.shape == (9,) and torch.isfinite(out).all()
        out.sum().backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        assert count_parameters(model) > 0


def test_models_share_the_embedding_layer_and_differ_in_heads(data):
    ds, split, codes = data
    features = build_features(ds, split, "hybrid", codes)
    models = {name: build_ctr_model(name, features, CFG) for name in MODELS}
    n_rows = {name: m.embedding.table.num_embeddings for name, m in models.items()}
    assert len(set(n_rows.values())) == 1
    assert [m.embedding.table.embedding_dim for m in models.values()] == [
        CFG.dim + 1,
        CFG.dim + 1,
        CFG.dim,
    ]
    with pytest.raises(ValueError, match="unknown model"):
        build_ctr_model("xgboost", features, CFG)


def test_fm_term_equals_the_explicit_pairwise_sum(data):
    ds, split, codes = data
    model = DeepFM(build_features(ds, split, "semantic", codes), CFG)
    batch = model.features.gather(torch.as_tensor(ds.users[:5]), torch.as_tensor(ds.items[:5]))
    emb = model.embedding(batch)
    fields = emb.fields
    pairwise = sum(
        (fields[:, i] * fields[:, j]).sum(1)
        for i in range(fields.shape[1])
        for j in range(i + 1, fields.shape[1])
    )
    deep = model.mlp(fields.flatten(1)).squeeze(1)
    torch.testing.assert_close(
        model.score(batch), emb.first_order + pairwise + deep, rtol=1e-5, atol=1e-6
    )


# ---------------------------------------------------------------- heads by hand
# Two users, three items (item 2 is cold: its ID maps to the OOV value 0), one dense feature.
# Pairs scored: (user 0, item 0), (user 1, item 1), (user 0, item 2).
HAND_SPEC = FieldSpec(sparse={"user": 3, "item": 3}, bags={}, dense=("price",), cross=("item",))
HAND_USERS, HAND_ITEMS = [0, 1, 0], [0, 1, 2]
HAND_USER_VALUE, HAND_ITEM_VALUE = np.array([1, 2]), np.array([1, 2, 0])
HAND_DENSE = np.array([[0.5], [-1.0], [2.0]])
HAND_CFG = CTRConfig(dim=2, hidden=(2,), bottom=(), cross_buckets=8)
# The shared table: row 0 = OOV, rows 1-2 = user values 1-2, rows 3-4 = item values 1-2
# (columns: 2 factors, then the first-order weight where the model has one).
HAND_TABLE = np.array(
    [[0.0, 0.0, 0.0], [0.1, 0.2, 0.05], [-0.3, 0.4, -0.1], [0.5, -0.2, 0.2], [0.0, 0.3, 0.3]]
)
HAND_BOTTOM = (np.array([[1.0], [-0.5]]), np.array([0.1, 0.0]))  # dense value -> its field vector


def hand_model(cls):
    features = FeatureTensors(HAND_SPEC, HAND_USER_VALUE, HAND_ITEM_VALUE[:, None], {}, HAND_DENSE)
    return cls(features, HAND_CFG).eval()


def set_linear(layer, weight, bias) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight))
        layer.bias.copy_(torch.as_tensor(bias))


def hand_fields(pair: int, width: int) -> tuple[np.ndarray, int]:
    """The three field vectors of a pair by hand, and the table row of its item (0 when OOV)."""
    user_row = HAND_USER_VALUE[HAND_USERS[pair]]
    item_value = HAND_ITEM_VALUE[HAND_ITEMS[pair]]
    item_row = 2 + item_value if item_value else 0
    dense = HAND_BOTTOM[0] @ HAND_DENSE[HAND_ITEMS[pair]] + HAND_BOTTOM[1]
    return np.stack([HAND_TABLE[user_row, :width], HAND_TABLE[item_row, :width], dense]), item_row


def relu(x):
    return np.maximum(x, 0.0)


def test_wide_and_deep_logit_by_hand():
    """Wide&Deep = first-order weights of every field (dense via a linear term) + the hashed
    user x item cross weight (none for a cold item) + an MLP over the concatenated fields."""
    model = hand_model(WideAndDeep)
    w1 = np.array([[0.2, -0.1, 0.3, 0.0, 0.5, -0.4], [-0.6, 0.2, 0.1, 0.4, 0.0, 0.3]])
    b1, w2, b2 = np.array([0.05, -0.02]), np.array([[1.5, -2.0]]), np.array([0.3])
    # bucket row r weighs r / 100; row 0 (an OOV side) weighs 0
    cross = np.arange(HAND_CFG.cross_buckets + 1) / 100
    with torch.no_grad():
        model.embedding.table.weight.copy_(torch.as_tensor(HAND_TABLE))
        model.crosses.weight.weight.copy_(torch.as_tensor(cross[:, None]))
    set_linear(model.embedding.dense[0], *HAND_BOTTOM)
    set_linear(model.embedding.dense_linear, [[0.4]], [0.05])
    set_linear(model.mlp[0], w1, b1)
    set_linear(model.mlp[2], w2, b2)
    expected = []
    for pair, (user, item) in enumerate(zip(HAND_USERS, HAND_ITEMS)):
        fields, item_row = hand_fields(pair, 2)
        user_value, item_value = HAND_USER_VALUE[user], HAND_ITEM_VALUE[item]
        first = (
            HAND_TABLE[user_value, 2] + HAND_TABLE[item_row, 2] + 0.4 * HAND_DENSE[item, 0] + 0.05
        )
        # the cross of (user value, item value), salted with the item column's index 1
        bucket = int(hash_pairs(user_value, item_value, 1, HAND_CFG.cross_buckets))
        wide = first + (cross[bucket + 1] if item_row else 0.0)
        deep = w2 @ relu(w1 @ fields.ravel() + b1) + b2
        expected.append(wide + deep[0])
    out = model(torch.tensor(HAND_USERS), torch.tensor(HAND_ITEMS))
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_dlrm_logit_by_hand():
    """DLRM = top MLP over [the dense field vector, dot products of every field pair in (0,1),
    (0,2), (1,2) order]; no first-order terms, and the cold item's field vector is zero."""
    model = hand_model(DLRM)
    v1 = np.array([[0.3, -0.2, 1.0, 0.5, -1.5], [0.1, 0.4, -0.7, 2.0, 0.2]])
    c1, v2, c2 = np.array([0.3, 0.1]), np.array([[-1.2, 0.8]]), np.array([0.1])
    with torch.no_grad():
        model.embedding.table.weight.copy_(torch.as_tensor(HAND_TABLE[:, :2]))
    set_linear(model.embedding.dense[0], *HAND_BOTTOM)
    set_linear(model.top[0], v1, c1)
    set_linear(model.top[2], v2, c2)
    expected = []
    for pair in range(len(HAND_USERS)):
        (u, i, d), _ = hand_fields(pair, 2)
        top_in = np.concatenate([d, [u @ i, u @ d, i @ d]])
        expected.append((v2 @ relu(v1 @ top_in + c1) + c2)[0])
    out = model(torch.tensor(HAND_USERS), torch.tensor(HAND_ITEMS))
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(MODELS))
def test_a_few_steps_lower_the_loss_and_keep_the_oov_row_zero(data, name):
    ds, split, codes = data
    torch.manual_seed(0)
    model = build_ctr_model(name, build_features(ds, split, "hybrid", codes), CFG)
    users, items = torch.as_tensor(ds.users[split.train]), torch.as_tensor(ds.items[split.train])
    labels = torch.as_tensor((ds.ratings[split.train] >= 4).astype(np.float32))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        loss = F.binary_cross_entropy_with_logits(model(users, items), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert not model.embedding.table.weight[0].any()


@pytest.mark.parametrize("name", list(MODELS))
def test_cold_item_scores_ignore_item_id_parameters(data, name):
    """Overwriting every item-ID row (and the user x item crosses) changes warm scores, never cold
    ones."""
    ds, split, codes = data
    for mode in ("baseline", "hybrid"):
        torch.manual_seed(0)
        model = build_ctr_model(name, build_features(ds, split, mode, codes), CFG).eval()
        cold = torch.as_tensor(split.cold_items)
        warm = torch.as_tensor(np.unique(ds.items[split.train])[: len(cold)])
        users = torch.zeros(len(cold), dtype=torch.long) + 1
        before_cold, before_warm = model(users, cold), model(users, warm)
        item_col = list(model.spec.sparse).index("item")
        first = int(model.embedding.offsets[item_col]) + 1
        with torch.no_grad():
            rows = model.embedding.table.weight[first : first + model.spec.sparse["item"] - 1]
            rows.normal_(std=1.0)
            if (
                hasattr(model, "crosses") and mode == "baseline"
            ):  # there the only cross is user x item
                model.crosses.weight.weight[1:].normal_(std=1.0)
        torch.testing.assert_close(model(users, cold), before_cold)
        assert not torch.allclose(model(users, warm), before_warm)


def test_cli_end_to_end_on_movielens_format(tmp_path, capsys):
    """The script's main() with command-line flags, on a folder in the real u.data/u.item format."""
    from neural_train_eval import main

    folder = write_movielens(tmp_path / "ml-100k", n_users=30, n_items=40)
    ids_dir = tmp_path / "ids"  # --semantic-dir: the data folder itself has no semantic_ids.json
    ids_dir.mkdir()
    write_semantic_file(ids_dir, load_dataset(folder))
    out, plots = tmp_path / "res_{dataset}.json", tmp_path / "plots"
    main(
        [
            "--data-dir",
            str(folder),
            "--semantic-dir",
            str(ids_dir),
            "--out",
            str(out),
            "--plot-dir",
            str(plots),
            "--epochs",
            "1",
            "--batch-size",
            "64",
            "--dim",
            "4",
            "--hidden",
            "8",
            "--cross-buckets",
            "64",
            "--quiet",
        ]
    )
    result = json.loads((tmp_path / "res_ml-100k.json").read_text())
    assert (
        result["labelling"]["objective"] == "liked"
        and result["labelling"]["positive"] == "rating >= 4"
    )
    assert result["semantic_ids"]["cold_holdout_matches_split"] is True
    assert set(result["modes"]) == set(MODES)
    for mode in MODES:
        assert set(result["modes"][mode]["models"]) == set(MODELS)
        run = result["modes"][mode]["models"]["deepfm"]["seeds"]["0"]
        test = run["test"]
        assert 0.0 <= test["overall"]["auc"] <= 1.0 and "f1_at_val_threshold" in test["overall"]
        assert test["slices"]["cold_items"]["n"] > 0 and test["slices"]["warm_items"]["n"] > 0
        assert run["parameters"] > 0 and run["train_seconds"] > 0 and run["history"]
    assert len(result["summary"]) == len(MODES) * len(MODELS)
    assert result["run_record"]["data_checksum"] and result["run_record"]["stage_seconds"]
    assert (plots / "neural_ml-100k_auc.png").read_bytes()[:4] == b"\x89PNG"
    assert "| deepfm | semantic |" in ctr_table(
        result
    )  # the table the script logs and the README shows


def test_help_lists_the_flags(capsys):
    from neural_train_eval import parse_args

    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--positive-threshold" in text and "semantic-ngram" in text and "--negatives" in text


def test_cli_implicit_is_reproducible_and_explains_missing_semantic_ids(tmp_path):
    from neural_train_eval import main

    folder = write_p5(tmp_path / "beauty", n_users=40, n_items=30)
    common = [
        "--data-dir",
        str(folder),
        "--plot-dir",
        str(tmp_path),
        "--epochs",
        "2",
        "--batch-size",
        "128",
        "--dim",
        "4",
        "--hidden",
        "8",
        "--cross-buckets",
        "64",
        "--models",
        "wide_deep",
        "--quiet",
    ]
    with pytest.raises(DataError, match="semantic_id_generator.py"):
        main(common + ["--out", str(tmp_path / "x.json"), "--modes", "semantic"])
    runs = [
        main(
            common
            + ["--out", str(tmp_path / f"r{k}.json"), "--modes", "baseline", "--negatives", "2"]
        )
        for k in range(2)
    ]
    assert (
        runs[0]["labelling"]["objective"] == "implicit"
        and runs[0]["labelling"]["train_negatives_per_positive"] == 2
    )
    first, second = (
        r["modes"]["baseline"]["models"]["wide_deep"]["seeds"]["0"]["test"] for r in runs
    )
    assert first == second
