"""The plots' rules, checked on the figure objects drawn from results dictionaries: error bars
only with a spread over seeds, a rating axis zoomed when the bars differ little, recall and AUC on
their own axes, TIGER against the ID models by popularity slice, the collisions plot titled for
what it draws; and summarize_results.py --plots redrawing from results files alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import summarize_results
from src.semantic_ids import plots as sid_plots
from src.sequential import reporting
from tests.synthetic import mean_std, mf_result
from utils.reporting import figures

METRICS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10")


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions save, kept open for inspection instead of written."""
    figs = []

    def keep(fig, path):
        figs.append(fig)
        return Path(path)

    for module in (figures, sid_plots):
        monkeypatch.setattr(module, "save_figure", keep)
    return figs


def _error_bars(ax) -> list:
    return [c.errorbar for c in ax.containers if getattr(c, "errorbar", None) is not None]


def _mf_models(seeds: int) -> dict:
    def model(rmse: float) -> dict:
        test = {
            "overall": {"rmse": mean_std(rmse, 0.01 * (seeds > 1), seeds)},
            "slices": {"cold_items": {"rmse": mean_std(rmse + 0.05, 0.02 * (seeds > 1), seeds)}},
        }
        return {"seeds": {str(s): {} for s in range(seeds)}, "mean_std": {"test": test}}

    return {"mf_id": model(0.94), "mf_semantic": model(0.95)}


def test_one_seed_draws_no_error_bars_and_a_zoomed_rmse_axis(drawn):
    figures.plot_overall_vs_cold("x.png", _mf_models(1), "rmse", "MF")
    (ax,) = drawn[-1].axes
    assert _error_bars(ax) == []
    assert ax.get_ylim()[0] > 0.5  # RMSE 0.94-1.0: an axis from 0 would hide the differences
    assert "zoomed" in ax.get_title()
    figures.plot_overall_vs_cold("x.png", _mf_models(3), "rmse", "MF")
    assert _error_bars(drawn[-1].axes[0])


def test_zoom_only_for_close_positive_values_and_no_zero_length_bars():
    assert figures.zoomed_ylim({"a": ([0.95, 0.97], None)}) is not None
    assert figures.zoomed_ylim({"a": ([0.01, 0.05], None)}) is None  # recall: from 0 is honest
    assert figures.zoomed_ylim({"a": ([-0.2, -0.1], None)}) is None
    assert figures._spread([0.0, 0.0]) is None and figures._spread(None) is None
    spread = figures._spread([0.0, 0.02])
    assert spread[1] == 0.02 and spread[0] != spread[0]  # NaN: that bar draws no error bar


def test_quantizer_plot_puts_recall_and_auc_on_their_own_axes(drawn):
    block = {
        "tiger": {
            "mean_std": {
                "test": {"recall@10": mean_std(0.06, 0.0, 1)},
                "cold_share": {"cold_target_users": {"recall@10": mean_std(0.03, 0.0, 1)}},
            }
        },
        "mf_semantic": {
            "mean_std": {
                "ranking": {
                    "overall": {"recall@20": mean_std(0.03, 0.001)},
                    "slices": {"cold_items": {"recall@20": mean_std(0.02, 0.002)}},
                }
            }
        },
        "deepfm_semantic": {
            "mean_std": {
                "overall": {"auc": mean_std(0.78, 0.002)},
                "slices": {"cold_items": {"auc": mean_std(0.77, 0.003)}},
            }
        },
    }
    figures.plot_quantizers({"quantizers": {"rqkmeans": block, "random": block}}, "q.png")
    recall, auc = drawn[-1].axes
    assert (recall.get_ylabel(), auc.get_ylabel()) == ("Recall", "AUC")
    assert recall.get_ylim()[0] == 0 and auc.get_ylim()[0] > 0.7


def _sequential(models: dict[str, float]) -> dict:
    def report(recall: float) -> dict:
        slices = {
            s: {"n": n, "recall@10": recall * f, "ndcg@10": recall * f / 2}
            for s, n, f in (("item_head", 50, 2.0), ("item_mid", 30, 1.0), ("item_tail", 20, 0.5))
        }
        return {"ranking": "paper", "test_slices": slices}

    return {
        "dataset": "beauty",
        "protocol": "paper",
        "seed": 0,
        "models": {n: report(r) for n, r in models.items()},
    }


def test_tiger_against_the_id_models_by_popularity_slice(drawn):
    runs = [_sequential({"tiger_item": 0.1}), _sequential({"sasrec": 0.08, "transition": 0.07})]
    reporting.plot_slices(runs, "s.png")
    recall, ndcg = drawn[-1].axes
    assert [t.get_text() for t in recall.get_xticklabels()] == [
        "head (n=50)",
        "mid (n=30)",
        "tail (n=20)",
    ]
    assert [t.get_text() for t in recall.get_legend().get_texts()] == [
        "TIGER (item-level)",
        "SASRec (item IDs)",
        "item-to-item transitions",
    ]
    assert _error_bars(recall) == [] and ndcg.get_ylabel() == "test ndcg@10"
    assert drawn[-1]._suptitle.get_text().endswith(": TIGER vs item-ID models")


def test_collisions_plot_says_what_it_counts(drawn):
    stats = {
        "collisions": {
            "group_size_histogram": {"1": 90, "2": 4, "3": 1},
            "colliding_items": 11,
            "colliding_groups": 5,
        }
    }
    sid_plots.plot_collisions(stats, Path("c.png"), "beauty")
    (ax,) = drawn[-1].axes
    assert "prefixes by how many items share them" in ax.get_title()
    assert "collision level" in ax.get_title() and "1 = no collision" in ax.get_xlabel()


def test_plots_are_redrawn_from_results_files_alone(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    mf = {**mf_result(), "models": _mf_models(2)}
    mf["models"]["mf_id"]["mean_std"]["test"]["overall"]["auc"] = mean_std(0.7, 0.01)
    (results / "mf_results_ml-100k.json").write_text(json.dumps(mf))
    for name in ("tiger", "ids"):
        run = _sequential({"tiger_item": 0.1} if name == "tiger" else {"sasrec": 0.08})
        run["models"] = {
            n: {**r, "test": dict.fromkeys(METRICS, 0.1), "curve": []}
            for n, r in run["models"].items()
        }
        # results files are found by content: the script that wrote them, the protocol named
        run.update(
            complete=True, protocol_what="paper", run_record={"script": "tiger_train_eval.py"}
        )
        (results / f"sequential_beauty_paper_{name}_seed0.json").write_text(json.dumps(run))
    plots = tmp_path / "plots"
    argv = ["--results-dir", str(results), "--plots", "mf", "sequential", "--plot-dir", str(plots)]
    assert summarize_results.main(argv) == 0
    written = {Path(p).name for p in capsys.readouterr().out.split()}
    assert {"mf_ml-100k_rmse.png", "mf_ml-100k_auc.png"} <= written
    assert "sequential_beauty_paper_seed0_slices.png" in written
    assert {p.name for p in plots.iterdir()} == written
