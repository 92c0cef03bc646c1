"""The demo's story: who won each task (by hand on synthetic results files), the stage runner's
lines and failures, the demo's stage list, and figures and summaries that say what they hold."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

import demo
import summarize_results
from src.sequential.reporting import plot_slices
from tests.synthetic import ctr_result, mf_result, tiger_result
from utils.reporting.catalog import Found
from utils.reporting.story import verdicts, winners, winners_table
from utils.runtime.errors import DataError
from utils.runtime.io import atomic_write_json
from utils.runtime.stages import Stage, run_lanes


def _sequential(seed: int, recall10: float, filtered10: float) -> dict:
    """A complete paper-protocol run of TIGER (item-level) and SASRec, paper and filtered."""
    run = tiger_result(seed, recall10)
    for m in run["models"].values():
        m["filtered"] = {"test": {**m["test"], "recall@10": filtered10}}
        del m["cold_start_test_recall@10"]
        m.pop("cold_start", None)
    run["models"] = {"tiger_item": run["models"]["tiger"], "sasrec": run["models"]["sasrec"]}
    return {**run, "protocol": "paper", "protocol_what": "...", "rankings": ["paper", "filtered"]}


def _found(kind: str, result: dict) -> Found:
    return Found(Path(f"{kind}.json"), kind, result)


def test_winners_by_hand():
    """Next item: seeds averaged per model and ranking (TIGER 0.05 and 0.07 -> 0.06 beats SASRec's
    0.045); a run with overrides is another experiment; explicit MF: the lower RMSE wins and the
    global mean is no contender; CTR: the highest AUC over models and modes, by readable name."""
    runs = [_sequential(0, 0.05, 0.04), _sequential(1, 0.07, 0.06)]
    tweaked = {**_sequential(2, 0.9, 0.9), "overrides": {"sasrec.dropout": 0.1}}
    found = [_found("sequential", r) for r in (*runs, tweaked)]
    found += [_found("mf", mf_result("explicit")), _found("neural", ctr_result())]
    by_task = {v.task: v for v in verdicts(found)}
    paper = by_task["next item, beauty (`paper` protocol, paper ranking)"]
    assert paper.ranked() == [
        ("TIGER (item-level)", pytest.approx(0.06)),
        ("SASRec (item IDs)", 0.045),
    ]
    filtered = by_task["next item, beauty (`paper` protocol, filtered ranking)"]
    assert filtered.ranked()[0] == ("TIGER (item-level)", pytest.approx(0.05))
    assert by_task["ratings (MF), ml-100k"].ranked() == [("MF on item IDs", 0.95)]
    ctr = by_task["CTR (implicit), beauty"].ranked()
    assert ctr == [
        ("Wide&Deep on semantic IDs", 0.82),
        ("DeepFM on item IDs", 0.81),
        ("Wide&Deep on item IDs", 0.8),
    ]
    table = winners_table(found)
    assert "| CTR (implicit), beauty | test AUC | **Wide&Deep on semantic IDs** 0.8200 | " in table
    assert "DeepFM on item IDs 0.8100, Wide&Deep on item IDs 0.8000 |" in table
    assert winners_table([]) is None


def test_summarize_prints_a_sequential_run_once_and_winners_alone(tmp_path, capsys):
    """A run the protocol tables hold gets no table of its own; one with cold-start numbers does.
    --winners prints the winners table only."""
    atomic_write_json(tmp_path / "paper.json", _sequential(0, 0.05, 0.04))
    out = summarize_results.summarize(tmp_path)
    assert "Sequential models" not in out and out.count("| tiger_item | 0 |") == 2
    cold = {**tiger_result(1), "protocol": "cold", "protocol_what": "...", "rankings": ["paper"]}
    atomic_write_json(tmp_path / "cold.json", cold)
    assert "**Sequential models, beauty, `cold` protocol**" in summarize_results.summarize(tmp_path)
    summarize_results.main(["--results-dir", str(tmp_path), "--winners"])
    out = capsys.readouterr().out
    assert out.startswith("**Who won**") and "Sequential models" not in out


def test_slices_figure_title_names_what_it_holds(tmp_path, monkeypatch):
    """The ID models' slices figure does not promise TIGER; the merged one compares both."""
    titles = []
    monkeypatch.setattr(
        "src.sequential.reporting.bar_panels", lambda path, panels, title: titles.append(title)
    )
    run = _sequential(0, 0.05, 0.04)
    for m in run["models"].values():
        m["ranking"] = "paper"
        m["test_slices"] = {s: {"n": 1, "recall@10": 0.1, "ndcg@10": 0.1} for s in
                            ("item_head", "item_mid", "item_tail")}  # fmt: skip
    ids_only = {**run, "models": {"sasrec": run["models"]["sasrec"]}}
    plot_slices([ids_only], str(tmp_path / "a.png"))
    plot_slices([run], str(tmp_path / "b.png"))
    assert titles[0].endswith(": item-ID models") and titles[1].endswith(
        ": TIGER vs item-ID models"
    )


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_stages_run_in_lanes_with_a_line_each(tmp_path, capsys):
    """Each lane runs in order, the lanes at once; a start and a done line per stage with the
    clock; every stage's output lands in its log."""
    a = Stage("first of lane a", _python("print('hello a')"), tmp_path / "logs" / "a.log")
    b = Stage("second of lane a", _python("print('then b')"), tmp_path / "logs" / "b.log")
    c = Stage("lane c", _python("import time; time.sleep(0.3)"), tmp_path / "logs" / "c.log")
    run_lanes([[a, b], [c]])
    lines = capsys.readouterr().out.splitlines()
    assert [line[7:] for line in lines if "start" in line][:2] == [
        "start first of lane a",
        "start lane c",
    ]
    assert lines.index("[0:00] start second of lane a") > lines.index(
        next(line for line in lines if line.startswith("[0:00] done  first of lane a"))
    )
    assert (tmp_path / "logs" / "a.log").read_text() == "hello a\n"
    assert (tmp_path / "logs" / "b.log").read_text() == "then b\n"


def test_a_failed_stage_stops_every_lane_and_shows_its_log(tmp_path):
    """The failing stage is named with its exit code, log path and the log's end; the other lane's
    long stage is stopped, not waited for; later stages never start."""
    bad = Stage("broken", _python("print('the cause'); raise SystemExit(3)"), tmp_path / "bad.log")
    never = Stage("never", _python("open('ran', 'w')"), tmp_path / "never.log")
    slow = Stage("slow", _python("import time; time.sleep(60)"), tmp_path / "slow.log")
    t0 = time.monotonic()
    with pytest.raises(DataError, match=r"broken failed \(exit 3\).*bad\.log:\n    the cause"):
        run_lanes([[bad, never], [slow]])
    assert time.monotonic() - t0 < 30 and not (tmp_path / "never.log").exists()


def test_the_demo_writes_only_into_its_run_folder(tmp_path):
    """Every stage but the data preparation names its outputs inside the demo's folder, on the
    IDs it builds there (named as the data set's own IDs of the seed), and every script exists."""
    first, lanes = demo.stages(tmp_path / "demo")
    stages = [*first, *(s for lane in lanes for s in lane)]
    for stage in stages:
        assert Path(stage.argv[1]).is_file() and stage.log.parent == tmp_path / "demo" / "logs"
    for stage in stages[1:]:
        argv = stage.argv
        assert argv[argv.index("--semantic-dir") + 1] == str(
            tmp_path / "demo" / "ml-100k_ids_seed0"
        )
        for flag in ("--run-dir", "--out"):
            if flag in argv:
                assert Path(argv[argv.index(flag) + 1]).parent == tmp_path / "demo"
    assert len(lanes) == 2 and lanes[0][0].name == "TIGER (item-level), 1 epoch"


def test_winners_count_only_the_files_named(tmp_path):
    """An earlier run's file in the same folder is no extra seed: ``only`` keeps it out."""
    atomic_write_json(tmp_path / "now.json", _sequential(0, 0.05, 0.04))
    atomic_write_json(tmp_path / "earlier.json", _sequential(0, 0.09, 0.09))
    both = winners(tmp_path)
    assert "**TIGER (item-level)** 0.0700" in both  # 0.05 and 0.09 averaged as two seeds
    assert "**TIGER (item-level)** 0.0500" in winners(tmp_path, only=[tmp_path / "now.json"])


def test_the_joint_slices_plot_holds_the_main_job_runs_only():
    """A run with overrides or TIGER on other IDs has models of the same names: kept out of the
    joint plot, so their bars never stand in for the main job's."""
    plain = _sequential(0, 0.05, 0.04)
    assert summarize_results._main_job_run(plain)
    assert not summarize_results._main_job_run({**plain, "overrides": {"sasrec.loss": "softmax"}})
    collab = {**plain, "semantic_ids": {"dir": "beauty_collab", "ids_digest": "b45a2aa1b85b"}}
    assert not summarize_results._main_job_run(collab)
