"""Metrics recomputed from saved predictions (utils/evaluation/verify.py,
summarize_results.py --verify).

Each trainer runs on tiny synthetic data with --save-predictions; the verifier must reproduce
every headline metric from the files alone, and must fail loudly on a changed number.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import mf_train_eval
import neural_train_eval
import summarize_results
import tiger_train_eval
from tests.synthetic import write_movielens, write_p5
from utils.data.load import load_dataset
from utils.data.semantic import write_semantic_ids
from utils.runtime.io import atomic_write_json, read_json


def semantic_ids_for(folder):
    """Hand-made semantic IDs for every item of the data set in ``folder`` (written into it)."""
    ds = load_dataset(folder)
    codes = np.array([[i % 4, (i // 4) % 3, i // 12, 0] for i in range(ds.n_items)])
    sizes = [4, 3, int(codes[:, 2].max()) + 1]
    header = {"data_checksum": ds.checksum, "codebook_sizes": sizes, "collision_size": 1}
    write_semantic_ids(folder / "semantic_ids.json", header, ds.item_ids, codes)
    return folder


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results folder: MF (implicit, explicit), CTR and TIGER/SASRec runs with predictions."""
    root = tmp_path_factory.mktemp("verify")
    p5 = semantic_ids_for(write_p5(root / "p5", n_users=30, n_items=36))
    ml = semantic_ids_for(write_movielens(root / "ml", n_users=30, n_items=40))
    out, plots = root / "results", str(root / "plots")
    common = ["--quiet", "--save-predictions", "--plot-dir", plots, "--threads", "1"]
    mf = [
        "--models",
        "bias",
        "mf_id",
        "mf_semantic",
        "--seeds",
        "0",
        "1",
        "--epochs",
        "2",
        "--top-k",
        "15",
    ]
    mf_train_eval.main(
        ["--data-dir", str(p5), "--out", str(out / "mf_results_p5.json"), *mf, *common]
    )
    mf_train_eval.main(
        ["--data-dir", str(ml), "--out", str(out / "mf_results_ml.json"), *mf, *common]
    )
    neural_train_eval.main(
        [
            "--data-dir",
            str(p5),
            "--out",
            str(out / "neural_results_p5.json"),
            "--models",
            "deepfm",
            "--modes",
            "baseline",
            "semantic",
            "--epochs",
            "1",
            "--dim",
            "4",
            "--hidden",
            "8",
            "--cross-buckets",
            "64",
            *common,
        ]
    )
    tiger_train_eval.main(
        [
            "--data-dir",
            str(p5),
            "--out",
            str(out / "tiger_results.json"),
            "--models",
            "tiger_item",
            "sasrec",
            "--epochs",
            "1",
            "--protocol",
            "cold",
            "--cold-fraction",
            "0.1",
            "--checkpoint-dir",
            str(root / "ckpt"),
            *common,
        ]
    )
    # The paper protocol: every model (baselines included) with its filtered ranking saved too.
    tiger_train_eval.main(
        [
            "--data-dir",
            str(p5),
            "--out",
            str(out / "sequential_p5_paper_seed0.json"),
            "--epochs",
            "1",
            "--checkpoint-dir",
            str(root / "ckpt"),
            *common,
        ]
    )
    # The holdout protocol: trained on the validation rows too, so its slices use that training set.
    tiger_train_eval.main(
        [
            "--data-dir",
            str(p5),
            "--out",
            str(out / "sequential_p5_holdout_seed0.json"),
            "--models",
            "most_popular",
            "transition",
            "--protocol",
            "holdout",
            "--epochs",
            "1",
            "--checkpoint-dir",
            str(root / "ckpt"),
            *common,
        ]
    )
    return out


def test_every_headline_metric_is_recomputed_exactly(results, capsys):
    assert summarize_results.verify(results) == 0
    out = capsys.readouterr().out
    assert out.count("ok  ") == 6 and "0 mismatch(es)" in out
    assert "sequential_p5_holdout_seed0.json: " in out
    assert "sequential_p5_paper_seed0.json: " in out
    checked = int(out.rsplit("\n", 2)[-2].split()[0])
    assert checked > 100  # MF x 2 objectives x 3 models x 2 seeds, CTR, TIGER, SASRec


def test_the_saved_lists_are_what_the_models_ranked(results):
    """TIGER's list is its beam (best first); SASRec's and MF's hold top-k full-catalogue scores."""
    tiger = read_json(results / "tiger_results.json")["models"]
    from utils.evaluation.predictions import load_predictions

    beam = load_predictions(tiger["tiger_item"]["predictions"]["file"])
    assert beam.meta["tie_rule"] == "list order" and beam["items"].shape == (30, 20)
    assert "cold_share_items" in beam and beam["cold_share_items"].shape == (30, 10)
    sasrec = load_predictions(tiger["sasrec"]["predictions"]["file"])
    assert np.all(np.diff(sasrec["scores"], axis=1) <= 0)  # best first
    mf = read_json(results / "mf_results_p5.json")["models"]["mf_id"]["seeds"]["0"]["predictions"]
    assert set(mf) == {"pointwise", "ranking"}
    # --top-k 15 is raised to the largest reported cut-off (Recall@20), or the lists could not
    # reproduce the metric
    assert load_predictions(mf["ranking"]["file"])["items"].shape[1] == 20
    assert (results / "tiger_results_examples.md").read_text().count("## User ") >= 3


def test_the_filtered_lists_hold_no_history_item_and_are_checked(results, tmp_path, capsys):
    """Each model's filtered list is its ranking without the user's earlier items, still full;
    an edited filtered metric fails the check."""
    from utils.evaluation.predictions import load_predictions

    run = read_json(results / "sequential_p5_paper_seed0.json")
    ds = load_dataset(run["run_record"]["config"]["data_dir"])
    history = {
        str(ds.user_ids[u]): set(ds.item_ids[ds.sequence(u)[:-1]].astype(str))
        for u in range(ds.n_users)
    }
    for name in ("tiger_item", "sasrec", "most_popular", "transition"):
        p = load_predictions(run["models"][name]["predictions"]["file"])
        assert p.meta["ranking_rules"] == ["paper", "filtered"]
        for user, items in zip(p["users"], p["filtered_items"]):
            listed = set(items) - {""}
            assert not history[user] & listed
            assert len(listed) >= min(10, ds.n_items - len(history[user]))
    run["models"]["transition"]["filtered"]["test"]["recall@10"] += 1e-6
    atomic_write_json(tmp_path / "sequential_p5_paper_seed0.json", run)
    assert summarize_results.verify(tmp_path) == 1
    assert "transition, filtered test recall@10" in capsys.readouterr().out


def test_every_slice_of_every_ranking_rule_is_checked(results, tmp_path, capsys):
    """An edited slice figure of the filtered block fails like an edited headline."""
    run = read_json(results / "sequential_p5_paper_seed0.json")
    slices = run["models"]["sasrec"]["filtered"]["test_slices"]
    part = max(slices, key=lambda s: slices[s]["n"])
    slices[part]["ndcg@10"] += 1e-6
    atomic_write_json(tmp_path / "sequential_p5_paper_seed0.json", run)
    assert summarize_results.verify(tmp_path) == 1
    assert f"sasrec, filtered {part} ndcg@10" in capsys.readouterr().out


def test_a_changed_number_fails_the_check(results, tmp_path, capsys):
    """Edit one reported metric: the verifier names the model and the metric and exits 1."""
    copy = tmp_path / "results"
    copy.mkdir()
    for name in ("mf_results_ml.json", "tiger_results.json"):
        data = read_json(results / name)
        if name.startswith("tiger"):
            data["models"]["sasrec"]["test"]["ndcg@10"] += 1e-6
        else:
            data["models"]["mf_id"]["seeds"]["1"]["test"]["overall"]["rmse"] += 1e-6
        atomic_write_json(copy / name, data)
    assert summarize_results.main(["--results-dir", str(copy), "--verify"]) == 1
    out = capsys.readouterr().out
    assert "mf_id seed 1, overall rmse" in out and "sasrec, test ndcg@10" in out


def test_a_results_file_without_predictions_cannot_pass(results, tmp_path, capsys):
    data = read_json(results / "neural_results_p5.json")
    for block in data["modes"].values():
        for model in block["models"].values():
            for entry in model["seeds"].values():
                entry.pop("predictions")
    (tmp_path / "neural_results_p5.json").write_text(json.dumps(data))
    assert summarize_results.verify(tmp_path, allow_missing=True) == 2  # nothing was checked
    out = capsys.readouterr().out
    assert "MISSING" in out and "no saved predictions" in out and "0 metrics checked" in out


def test_missing_predictions_are_told_apart_from_mismatches(results, tmp_path, capsys):
    """Predictions not on this machine are listed with the command that writes them: a failure
    (exit 3) unless --allow-missing, and always for a --require'd file; a wrong number is a
    mismatch (exit 1) either way; a folder where nothing could be checked exits 2."""
    copy = tmp_path / "results"
    copy.mkdir()
    atomic_write_json(copy / "mf.json", read_json(results / "mf_results_p5.json"))
    gone = read_json(results / "tiger_results.json")
    record = gone["models"]["sasrec"]["predictions"]
    record["file"] = str(tmp_path / "elsewhere.npz")
    atomic_write_json(copy / "renamed_tiger.json", gone)
    assert summarize_results.main(["--results-dir", str(copy), "--verify"]) == 3
    out = capsys.readouterr().out
    # its other models' predictions are here: those are still recomputed (issue 32)
    assert f"MISSING {copy / 'renamed_tiger.json'}: partly checked" in out
    assert "its predictions come from: " + gone["run_record"]["command"] in out
    assert "0 mismatch(es)" in out and f"ok   {copy / 'mf.json'}" in out
    flags = ["--results-dir", str(copy), "--verify", "--allow-missing"]
    assert summarize_results.main(flags) == 0
    assert summarize_results.main([*flags, "--require", str(copy / "mf.json")]) == 0
    assert summarize_results.main([*flags, "--require", str(copy / "renamed_tiger.json")]) == 3
    capsys.readouterr()
    bad = read_json(copy / "mf.json")
    bad["models"]["mf_id"]["seeds"]["0"]["test"]["overall"]["auc"] += 1e-6
    atomic_write_json(copy / "mf.json", bad)
    assert summarize_results.main(flags) == 1
    assert "mf_id seed 0, overall auc" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert summarize_results.main(["--results-dir", str(empty), "--verify", "--allow-missing"]) == 2
    assert "nothing was verified" in capsys.readouterr().out
