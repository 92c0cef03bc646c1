"""Runs are separate from the study (utils/runtime/rundir.py): a run writes only into its run
folder, never the committed results/ and plots/, unless it is the reference command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mf_train_eval
import neural_train_eval
import tiger_train_eval
from tests.helpers import REPO
from tests.synthetic import write_movielens, write_p5
from tests.test_verify import semantic_ids_for
from utils.runtime.errors import UsageError
from utils.runtime.rundir import CHECKPOINT_ENV, RUNS_ENV


def snapshot(*folders: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folders``: (size, mtime in ns) by path."""
    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns)
        for folder in folders
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def everything_in(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("rundirs")
    return {
        "ml": semantic_ids_for(write_movielens(root / "tinyml", n_users=30, n_items=40)),
        "p5": semantic_ids_for(write_p5(root / "tinyp5", n_users=30, n_items=36)),
    }


def test_a_run_with_run_dir_writes_nothing_outside_it(data, tmp_path, monkeypatch):
    """MF, a CTR model and TIGER/SASRec with --run-dir (and --save-predictions): the results JSON,
    its predictions, the plots (their names carrying the data set), every model's checkpoints and
    run.log are all in the folder; the repository's results/, plots/ and checkpoints/, the study's
    checkpoint folder and the working directory are untouched."""
    monkeypatch.chdir(tmp_path)  # a default output that escaped would land here
    reference_checkpoints = Path(os.environ[CHECKPOINT_ENV])
    study_folders = (REPO / "results", REPO / "plots", REPO / "checkpoints", reference_checkpoints)
    study = snapshot(*study_folders)
    common = ["--quiet", "--save-predictions", "--threads", "1", "--epochs", "1"]
    mf_dir, tiger_dir, ctr_dir = tmp_path / "mf_run", tmp_path / "tiger_run", tmp_path / "ctr_run"
    mf_train_eval.main(
        ["--data-dir", str(data["ml"]), "--models", "bias", "mf_semantic", "--run-dir", str(mf_dir)]
        + common
    )
    neural_train_eval.main(
        ["--data-dir", str(data["ml"]), "--models", "deepfm", "--modes", "baseline", "--run-dir"]
        + [str(ctr_dir), *common]
    )
    tiger_train_eval.main(
        ["--data-dir", str(data["p5"]), "--models", "tiger_item", "sasrec", "--run-dir"]
        + [str(tiger_dir)]
        + common
    )
    assert snapshot(*study_folders) == study
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctr_run", "mf_run", "tiger_run"]
    ctr = everything_in(ctr_dir)
    assert any(f.startswith("checkpoints/ctr-deepfm-baseline-tinyml") for f in ctr)
    mf = everything_in(mf_dir)
    assert any(f.startswith("checkpoints/mf-mf_semantic-tinyml") for f in mf)
    assert {"run.log", "mf_results_tinyml.json", "mf_tinyml_rmse.png", "mf_tinyml_auc.png"} < mf
    assert any(f.startswith("mf_results_tinyml.predictions/bias-seed0") for f in mf)
    tiger = everything_in(tiger_dir)
    assert {"run.log", "sequential_tinyp5_paper_seed0.json"} < tiger
    assert any(f.startswith("checkpoints/tiger-tiger_item-tinyp5") for f in tiger)
    pngs = [f for f in mf | tiger if f.endswith(".png")]
    assert len(pngs) == 5 and all("tinyml" in f or "tinyp5" in f for f in pngs)
    log = (mf_dir / "run.log").read_text()
    assert "mf_semantic seed 0 test" in log and "np.float64" not in log  # INFO despite --quiet


def test_a_plain_run_gets_a_new_folder_under_runs(data, tmp_path, monkeypatch):
    """Without --run-dir every output goes into runs/<script>-<dataset>-<time>/ of the working
    directory, one new folder per run; --reference writes the study's results/ and plots/."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(RUNS_ENV)  # the suite's stand-in for runs/
    flags = ["--data-dir", str(data["ml"]), "--models", "bias", "--epochs", "1", "--quiet"]
    mf_train_eval.main(flags)
    mf_train_eval.main(flags)
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all(r.name.startswith("mf_train_eval-tinyml-") for r in runs)
    assert all("mf_results_tinyml.json" in everything_in(r) for r in runs)
    mf_train_eval.main([*flags, "--reference"])
    assert (tmp_path / "results" / "mf_results_tinyml.json").is_file()
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "mf_tinyml_auc.png",
        "mf_tinyml_rmse.png",
    ]
    assert len(list((tmp_path / "runs").iterdir())) == 2  # the reference run left no run folder
    with pytest.raises(UsageError, match="--reference .* cannot go with --run-dir"):
        mf_train_eval.main([*flags, "--reference", "--run-dir", str(tmp_path / "x")])
    # the study's folders and the data folder are no run folder, also through a symlink
    (tmp_path / "link").symlink_to(tmp_path / "results", target_is_directory=True)
    for bad in ("results", "plots/mine", "link", str(data["ml"])):
        with pytest.raises(UsageError, match=r"--run-dir .* is or lies inside"):
            mf_train_eval.main([*flags, "--run-dir", bad])


def test_every_torchrun_rank_names_the_same_run_folder(tmp_path, monkeypatch):
    """Ranks start at slightly different times; the job id, not the clock, names their folder."""
    from utils.runtime.rundir import new_run_dir

    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job42")
    first = new_run_dir("tiger_train_eval.py", "beauty", tmp_path)
    assert new_run_dir("tiger_train_eval.py", "beauty", tmp_path) == first
    assert first.name == "tiger_train_eval-beauty-torchrun-job42"  # created by the output check
