"""utils/reporting/results.py and tables.py: mean ± std over seeds and every summary table, on
hand-written results."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.synthetic import analysis_result, ctr_result, mf_result, tiger_result
from utils.reporting.results import aggregate_seeds
from utils.reporting.sequential_tables import (
    protocol_tables,
    row_key,
    row_label,
    tiger_seeds_table,
    tiger_table,
)
from utils.reporting.tables import ctr_table, mf_table, semantic_ids_table

NAN = float("nan")


def line(*cells: str) -> str:
    """One Markdown table line."""
    return "| " + " | ".join(cells) + " |"


def assert_same(got, expected, path="") -> None:
    """Equal structure and values, floats to 1e-12 relative, NaN equal to NaN."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), (path, got)
        for key in expected:
            assert_same(got[key], expected[key], f"{path}/{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), (path, got)
        for k, (g, e) in enumerate(zip(got, expected)):
            assert_same(g, e, f"{path}[{k}]")
    else:
        assert type(got) is float, (path, got)
        assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(
            expected, rel=1e-12
        ), (path, got, expected)


# ---------------------------------------------------------------- aggregate_seeds


def test_aggregate_seeds_by_hand():
    """Every ± in the README: mean and *sample* std (ddof=1) of each numeric leaf, nested dicts
    kept; NaN left out of mean and std but kept in values; bools and strings dropped; numpy
    scalars count; keys only later runs have are ignored, a key a later run lacks uses the runs
    that have it."""
    runs = [
        {
            "auc": 0.8,
            "n": 5,
            "ok": True,
            "name": "a",
            "loss": NAN,
            "pr": np.float32(0.5),
            "slices": {"cold": {"auc": 0.6, "n": np.int64(2)}},
            "only_first": 3.0,
        },
        {
            "auc": 0.6,
            "n": 7,
            "ok": False,
            "name": "b",
            "loss": 1.0,
            "pr": 0.25,
            "slices": {"cold": {"auc": 0.9, "n": 4}},
            "only_later": 1.0,
        },
        {
            "auc": 0.7,
            "n": 6,
            "ok": True,
            "name": "c",
            "loss": 3.0,
            "pr": 0.75,
            "slices": {"cold": {"auc": NAN, "n": 3}},
        },
    ]
    assert_same(
        aggregate_seeds(runs),
        {
            "auc": {"mean": 0.7, "std": 0.1, "values": [0.8, 0.6, 0.7]},  # population std: 0.0816
            "n": {"mean": 6.0, "std": 1.0, "values": [5.0, 7.0, 6.0]},
            "loss": {"mean": 2.0, "std": math.sqrt(2.0), "values": [NAN, 1.0, 3.0]},
            "pr": {"mean": 0.5, "std": 0.25, "values": [0.5, 0.25, 0.75]},
            "slices": {
                "cold": {
                    "auc": {"mean": 0.75, "std": 0.3 / math.sqrt(2.0), "values": [0.6, 0.9, NAN]},
                    "n": {"mean": 3.0, "std": 1.0, "values": [2.0, 4.0, 3.0]},
                }
            },
            "only_first": {"mean": 3.0, "std": 0.0, "values": [3.0]},
        },
    )


def test_aggregate_seeds_single_run_and_all_nan():
    """One run: its values with std 0 (not NaN, which would print as 'nan' in a table); a leaf that
    is NaN in every run: mean NaN, std 0, values kept."""
    assert_same(
        aggregate_seeds([{"auc": 0.8, "x": {"y": 2}}]),
        {
            "auc": {"mean": 0.8, "std": 0.0, "values": [0.8]},
            "x": {"y": {"mean": 2.0, "std": 0.0, "values": [2.0]}},
        },
    )
    assert_same(
        aggregate_seeds([{"r": NAN}, {"r": NAN}]),
        {"r": {"mean": NAN, "std": 0.0, "values": [NAN, NAN]}},
    )


# ---------------------------------------------------------------- tables


def test_semantic_ids_table():
    """Every row of the semantic-ID analysis table, rounded as printed; purity lists only the
    attributes with a purity value."""
    assert semantic_ids_table(analysis_result()).splitlines() == [
        "**Semantic IDs, beauty** (120 items, fitted on warm items)",
        "",
        "|  |  |",
        "|---|---|",
        "| codebook sizes | 4 / 4 / 4 |",
        "| codes used per level | 4/4 / 3/4 / 2/4 |",
        "| normalized entropy per level | 0.99 / 0.50 / 0.25 |",
        "| colliding items / groups / largest group | 10 / 4 / 3 |",
        "| quantization error per level (fit items) | 0.500 / 0.250 / 0.125 |",
        "| mean cosine of pairs sharing >= 0/1/2/3 codes | 0.100 / 0.346 / 0.500 / 0.900 |",
        "| level-1 purity | top category 0.800 vs random 0.250; brand 0.500 vs random 0.400 |",
    ]
    bare = analysis_result()
    del bare["quantization_error"]
    for value in bare["purity_level1"].values():
        if isinstance(value, dict):
            value["purity"] = None
    rows = semantic_ids_table(bare).splitlines()
    assert (
        rows[8] == "| quantization error per level (fit items) |  |"
        and rows[10] == "| level-1 purity | – |"
    )


def test_mf_table_explicit():
    """Explicit MF: the rating columns, mean ± std over the seeds, '–' where a model has none."""
    assert mf_table(mf_result("explicit")).splitlines() == [
        "**MF, ml-100k** (explicit, temporal split, test set, 2 seed(s), 62 s)",
        "",
        line("model", "RMSE", "MAE", "AUC (liked)", "warm RMSE", "cold RMSE", "tail-item RMSE"),
        "|---|---|---|---|---|---|---|",
        line(
            "mf_id",
            "0.9500 ± 0.0100",
            "0.7500 ± 0.0050",
            "0.7000 ± 0.0200",
            "0.9400 ± 0.0100",
            "1.1000 ± 0.0500",
            "1.0000 ± 0.0300",
        ),
        line("global_mean", "1.1200 ± 0.0000", "–", "–", "–", "–", "–"),
    ]


def test_mf_table_implicit():
    """Implicit MF: AUC and the ranking columns (cold slice, cold catalogue); one seed: no ±."""
    assert mf_table(mf_result("implicit")).splitlines() == [
        "**MF, ml-100k** (implicit, temporal split, test set, 1 seed(s), 62 s)",
        "",
        line(
            "model",
            "AUC",
            "Recall@20",
            "NDCG@20",
            "cold AUC",
            "cold Recall@20",
            "cold-catalogue Recall@20",
        ),
        "|---|---|---|---|---|---|---|",
        line("mf_id", "0.8123", "0.0500", "0.0250", "0.6000", "0.0125", "0.2000"),
        line("global_mean", "0.5000", "–", "–", "–", "–", "–"),
    ]


def test_ctr_table():
    """CTR: one row per model and mode, sorted by model (modes in file order), parameters with
    thousands separators, train seconds to one decimal; a mode without cold items prints '–'."""
    assert ctr_table(ctr_result()).splitlines() == [
        "**Neural CTR, beauty** (implicit, test set, seeds [0, 1], 300 s)",
        "",
        line(
            "model",
            "mode",
            "AUC",
            "logloss",
            "PR-AUC",
            "cold AUC",
            "tail-item AUC",
            "parameters",
            "train s",
        ),
        "|---|---|---|---|---|---|---|---|---|",
        line(
            "deepfm",
            "baseline",
            "0.8100 ± 0.0100",
            "0.4500 ± 0.0050",
            "0.3000 ± 0.0100",
            "–",
            "0.7100 ± 0.0100",
            "123,456",
            "12.3 ± 0.6",
        ),
        line(
            "wide_deep",
            "baseline",
            "0.8000 ± 0.0100",
            "0.4500 ± 0.0050",
            "0.3000 ± 0.0100",
            "0.5000 ± 0.0200",
            "0.7000 ± 0.0100",
            "123,456",
            "12.3 ± 0.6",
        ),
        line(
            "wide_deep",
            "semantic",
            "0.8200 ± 0.0100",
            "0.4500 ± 0.0050",
            "0.3000 ± 0.0100",
            "0.6000 ± 0.0200",
            "0.7200 ± 0.0100",
            "123,456",
            "12.3 ± 0.6",
        ),
    ]


TIGER_COLUMNS = (
    "model",
    "Recall@5",
    "NDCG@5",
    "Recall@10",
    "NDCG@10",
    "cold Recall@10 (plain beam)",
    "cold Recall@10 (cold share)",
)
PUBLISHED_ROW = ("tiger (published)", "0.0454", "0.0321", "0.0648", "0.0384", "–", "–")


def test_tiger_table():
    """One TIGER run: each model's test metrics, both cold-start figures ('–' without a cold-share
    run), epochs and train seconds, then the published numbers; the title names file and command."""
    assert tiger_table(tiger_result(), "tiger_results.json").splitlines() == [
        "**Sequential models, beauty, `cold` protocol** (`tiger_results.json`: leave-one-out, "
        "full-catalogue ranking, test set, quick preset, `tiger_train_eval.py --seed 0`, 3600 s)",
        "",
        line("model", "ranking", *TIGER_COLUMNS[1:], "epochs", "train s"),
        "|---|---|---|---|---|---|---|---|---|---|",
        line(
            "tiger",
            "paper",
            "0.0312",
            "0.0205",
            "0.0488",
            "0.0262",
            "0.0000",
            "0.1250",
            "20",
            "1501",
        ),
        line("sasrec", "paper", "0.0300", "0.0200", "0.0450", "0.0250", "0.0000", "–", "7", "99"),
        line(PUBLISHED_ROW[0], "paper", *PUBLISHED_ROW[1:], "–", "–"),
    ]
    assert tiger_table(tiger_result()).startswith(
        "**Sequential models, beauty, `cold` protocol** (leave-one-out, "
    )


def _protocol_run(seed: int, recall10: float, filtered10: float) -> dict:
    """A paper-protocol results file: SASRec with its filtered ranking, the published rows."""
    run = tiger_result(seed, recall10)
    sasrec = run["models"]["sasrec"]
    sasrec["test"] = {**sasrec["test"], "recall@10": recall10, "mrr@20": 0.01}
    sasrec["filtered"] = {"test": {**sasrec["test"], "recall@10": filtered10}}
    del run["models"]["tiger"]
    return {**run, "protocol": "paper", "rankings": ["paper", "filtered"]}


def test_protocol_tables_are_mean_and_std_per_protocol_and_ranking():
    """One table per ranking of the protocol; published rows under the headline ranking only; the
    cold-study files (no protocol key), unfinished runs and runs with other hyperparameters are
    left out; another preset's run is its own row, named with its preset and epochs; TIGER on other
    IDs is a row per ID set."""
    runs = [_protocol_run(0, 0.06, 0.08), _protocol_run(1, 0.08, 0.10), tiger_result(2, 0.5)]
    runs.append({**_protocol_run(3, 0.9, 0.9), "complete": False})
    runs.append({**_protocol_run(4, 0.9, 0.9), "overrides": {"sasrec.dropout": 0.1}})
    long = _protocol_run(5, 0.05, 0.07)
    long["models"]["sasrec"]["epochs_run"] = 12
    runs.append({**long, "preset": "long"})
    # TIGER on other IDs: one row per ID set (by digest) even where seeds named its folder
    # differently (the newest name is shown); another ID set in a same-named folder is its own row
    for seed, r10, ids_dir, digest in [
        (6, 0.04, "/data/beauty_collab", "d1"),
        (7, 0.06, "data/beauty_collab_ids", "d1"),
        (8, 0.02, "data/beauty_collab_ids", "d2"),
    ]:
        collab = _protocol_run(seed, r10, r10 + 0.02)
        collab["models"]["tiger_item"] = collab["models"].pop("sasrec")
        runs.append({**collab, "semantic_ids": {"dir": ids_dir, "ids_digest": digest}})
    paper, filtered = protocol_tables(runs)
    SAME = ["0.0300 ± 0.0000", "0.0200 ± 0.0000", "0.0250 ± 0.0000", "0.0100 ± 0.0000"]
    ONE = [v.split(" ±")[0] for v in SAME]  # one seed: the value alone
    assert paper.splitlines()[0].startswith("**beauty, `paper` protocol, `paper` ranking**")
    assert paper.splitlines()[4:] == [
        line("sasrec", "0, 1", *SAME[:2], "0.0700 ± 0.0141", *SAME[2:]),
        line("sasrec (long preset, 12 epochs)", "5", *ONE[:2], "0.0500", *ONE[2:]),
        line("tiger_item (IDs beauty_collab_ids)", "6, 7", *SAME[:2], "0.0500 ± 0.0141", *SAME[2:]),
        line("tiger_item (IDs beauty_collab_ids)", "8", *ONE[:2], "0.0200", *ONE[2:]),
        line(*PUBLISHED_ROW[:1], "–", *PUBLISHED_ROW[1:5], "–"),
    ]
    assert filtered.splitlines()[4:] == [
        line("sasrec", "0, 1", *SAME[:2], "0.0900 ± 0.0141", *SAME[2:]),
        line("sasrec (long preset, 12 epochs)", "5", *ONE[:2], "0.0700", *ONE[2:]),
        line("tiger_item (IDs beauty_collab_ids)", "6, 7", *SAME[:2], "0.0700 ± 0.0141", *SAME[2:]),
        line("tiger_item (IDs beauty_collab_ids)", "8", *ONE[:2], "0.0400", *ONE[2:]),
    ]


def test_tiger_seeds_table_is_mean_and_sample_std_of_one_experiment():
    """Mean ± sample std over the complete quick-preset runs on the same semantic IDs as the first;
    other IDs, other presets and unfinished runs are left out; fewer than two seeds: no table."""
    seeds = [
        tiger_result(seed, r10, train_seconds=100.0 + seed)
        for seed, r10 in ((0, 0.06), (1, 0.07), (2, 0.08))
    ]
    others = [
        tiger_result(3, 0.5, digest="zzz"),
        tiger_result(4, 0.9, preset="full"),
        tiger_result(5, 0.9, complete=False),
    ]
    assert tiger_seeds_table(seeds + others).splitlines() == [
        "**TIGER and SASRec, beauty, mean ± std over seeds [0, 1, 2]** (quick preset, "
        "`tiger_train_eval.py --seed N`, one results file per seed; leave-one-out, full-catalogue "
        "ranking, test set)",
        "",
        line(*TIGER_COLUMNS, "train s"),
        "|---|---|---|---|---|---|---|---|",
        line(
            "tiger",
            "0.0312 ± 0.0000",
            "0.0205 ± 0.0000",
            "0.0700 ± 0.0100",
            "0.0262 ± 0.0000",
            "0.0000 ± 0.0000",
            "0.1250 ± 0.0000",
            "101 ± 1",
        ),
        line(
            "sasrec",
            "0.0300 ± 0.0000",
            "0.0200 ± 0.0000",
            "0.0450 ± 0.0000",
            "0.0250 ± 0.0000",
            "0.0000 ± 0.0000",
            "–",
            "99 ± 0",
        ),
        line(*PUBLISHED_ROW, "–"),
    ]
    del seeds[2]["models"]["sasrec"]  # a model missing from one seed's file gets no mean ± std row
    assert "| sasrec |" not in tiger_seeds_table(seeds)
    assert tiger_seeds_table(seeds[:1] + others) is None


def _metric_set(value: float, n: int | None = None) -> dict:
    block = {k: value for k in ("hit@1", "hit@3", "ndcg@3", "hit@5", "ndcg@5", "hit@10", "ndcg@10")}
    block["mrr@20"] = value / 2
    return block if n is None else {"n": n, **block}


def _seed_run(seed: int, value: float) -> dict:
    slices = {
        s: _metric_set(value, n)
        for s, n in (("item_head", 5), ("item_mid", 3), ("item_tail", 2), ("cold_items", 1))
    }
    model = {"test": _metric_set(value), "test_slices": slices, "n_test_users": 11}
    return {
        "dataset": "beauty",
        "preset": "quick",
        "seed": seed,
        "complete": True,
        "semantic_ids": {"ids_digest": "abc"},
        "models": {"sasrec": model},
    }


def test_next_item_table_is_the_metric_set_by_slice_over_seeds():
    """One row per slice (all users first) with its user count, every metric as mean ± sample
    std over the seeds; runs without the metric set give no table."""
    from utils.reporting.sequential_tables import next_item_table

    table = next_item_table([_seed_run(0, 0.1), _seed_run(1, 0.3)]).splitlines()
    assert table[2] == line(
        "model",
        "test slice",
        "users",
        "Hit@1",
        "Hit@3",
        "NDCG@3",
        "Hit@5",
        "NDCG@5",
        "Hit@10",
        "NDCG@10",
        "MRR@20",
    )
    cells = "0.2000 ± 0.1414"
    assert table[4] == line("sasrec", "all test users", "11", *[cells] * 7, "0.1000 ± 0.0707")
    assert [row.split(" | ")[1:3] for row in table[4:]] == [
        ["all test users", "11"],
        ["head items", "5"],
        ["mid items", "3"],
        ["tail items", "2"],
        ["cold items", "1"],
    ]
    old = _seed_run(0, 0.1)
    del old["models"]["sasrec"]["test"]["mrr@20"]
    assert next_item_table([old]) is None


def _sweep(seed: int, recall: float, w: float, users: str = "all") -> dict:
    """A decoding-sweep results file of two variants on the holdout protocol."""
    metrics = {"recall@10": recall, "ndcg@10": recall / 2}
    return {
        "dataset": "beauty",
        "protocol": "holdout",
        "rankings": ["filtered"],
        "seed": seed,
        "users": users,
        "semantic_ids": {"tiger": "abc"},
        "w_selection": "the paper sweep's",
        "variants": {
            "tiger_beam20": {"test": {"filtered": metrics}, "seconds": 10.0},
            "hybrid": {"test": {"filtered": metrics}, "seconds": 30.0, "chosen_w": {"filtered": w}},
        },
        "run_record": {"script": "benchmarks/sweep_decoding.py"},
    }


def test_decoding_tables_are_mean_and_std_over_the_seeds_sweeps():
    from utils.reporting.sweep_tables import decoding_tables, is_decoding_sweep

    sweeps = [_sweep(1, 0.09, 0.5), _sweep(0, 0.07, 0.25), _sweep(2, 0.5, 1.0, users="first 9")]
    assert all(is_decoding_sweep(s) for s in sweeps) and not is_decoding_sweep({"a": 1})
    (table,) = decoding_tables(sweeps)  # the partial run (first 9 users) is left out
    assert "`holdout` protocol" in table and "seeds 0, 1" in table and "tiger abc" in table
    # mean 0.08, sample std 0.0141; NDCG half of it; the two seeds' weights; 30 s per seed
    assert "| hybrid | 0.0800 ± 0.0141 | 0.0400 ± 0.0071 | 0.25, 0.5 | 30 |" in table
    assert "| tiger_beam20 | 0.0800 ± 0.0141 | 0.0400 ± 0.0071 | – | 10 |" in table


def _cold_run(seed: int, cold: float, users: str = "all") -> dict:
    """A benchmarks/cold_ensemble.py results file with the same metrics for every slice but the
    cold targets' Recall@10."""
    metrics = {"recall@10": 0.07, "ndcg@10": 0.04}
    shared = {
        "all_users": metrics,
        "cold_target_users": {"n": 5, "recall@10": cold, "ndcg@10": cold / 3},
        "warm_target_users": {"n": 95, **metrics},
    }
    variant = {"plain": {"all_users": metrics}, "cold_share": shared}
    return {
        "dataset": "beauty",
        "seed": seed,
        "users": users,
        "cold_share": 0.1,
        "n_cold_items": 3,
        "w_selection": "the paper sweep's",
        "variants": {"tiger": variant, "ensemble_two_ids": {**variant, "w": 0.5 + seed / 4}},
        "run_record": {"script": "benchmarks/cold_ensemble.py"},
    }


def test_cold_ensemble_tables_are_mean_and_std_over_the_seeds():
    from utils.reporting.sweep_tables import COLD_SCRIPT, cold_ensemble_tables, written_by

    runs = [_cold_run(1, 0.05), _cold_run(0, 0.03), _cold_run(2, 0.9, users="first 9")]
    assert all(written_by(r, COLD_SCRIPT) for r in runs) and not written_by(runs[0], "x.py")
    (table,) = cold_ensemble_tables(runs)  # the partial run is left out
    assert "seeds 0, 1" in table and "10% of the top 10" in table and "3 cold items" in table
    # cold targets: mean 0.04, sample std 0.0141; the two seeds' weights
    row = (
        "| 0.0400 ± 0.0141 | 0.0700 ± 0.0000 | 0.0700 ± 0.0000 | 0.0700 ± 0.0000 | 0.0400 ± 0.0000"
    )
    assert f"| ensemble_two_ids {row} | 0.5, 0.75 |" in table
    assert f"| tiger {row} | – |" in table


def test_whole_pipeline_seeds_share_the_row_of_the_data_sets_own_ids():
    """TIGER of seed N on IDs quantized with seed N (the Makefile's <dataset>_ids_seed<N>) is the
    main job's model; other ID sets (collaborative) get their own row, named by folder."""

    def run(seed: int, ids_dir: str, digest: str) -> dict:
        return {"dataset": "beauty", "seed": seed, "preset": "quick",
                "semantic_ids": {"dir": ids_dir, "ids_digest": digest}}  # fmt: skip

    own = [run(0, "beauty", "a"), run(1, "data/beauty_ids_seed1", "b"), run(2, "/x/beauty", "c")]
    assert {row_key("tiger_item", r) for r in own} == {("tiger_item", None, None)}
    assert row_label("tiger_item", own[1]) == "tiger_item"
    other_seed = run(2, "data/beauty_ids_seed1", "b")  # seed 1's IDs under seed 2: not its own
    collab = run(1, "data/beauty_collab_ids", "d")
    assert row_key("tiger_item", other_seed) == ("tiger_item", None, "b")
    assert row_key("tiger_item", collab) == ("tiger_item", None, "d")
    assert row_label("tiger_item", collab) == "tiger_item (IDs beauty_collab_ids)"
    assert row_key("sasrec", collab) == ("sasrec", None, None)
