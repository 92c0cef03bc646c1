"""Hyperparameters from the command line (src/sequential/overrides.py) and tiger_train_eval.py's
--seeds: the preset changes exactly where asked, bad keys and values are refused in one line, and
several seeds write one results file each into one run folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import tiger_train_eval
from src.sequential.overrides import (
    apply_overrides,
    flatten,
    overrides_tag,
    parse_assignments,
)
from src.sequential.presets import PRESETS
from tests.synthetic import write_p5
from tests.test_verify import semantic_ids_for
from utils.runtime.errors import UsageError
from utils.runtime.io import read_json


def test_assignments_and_config_files_give_the_same_dotted_keys():
    cli = parse_assignments(["sasrec.dropout=0.2", "train.sasrec.schedule=cosine", "beam=30"])
    assert cli == {"sasrec.dropout": 0.2, "train.sasrec.schedule": "cosine", "beam": 30}
    nested = {"sasrec": {"dropout": 0.2}, "train": {"sasrec": {"schedule": "cosine"}}, "beam": 30}
    assert flatten(nested) == cli
    with pytest.raises(ValueError, match="not KEY=VALUE"):
        parse_assignments(["sasrec.dropout"])
    with pytest.raises(ValueError, match="one JSON object"):
        flatten([1, 2])


def test_overrides_change_exactly_the_named_fields():
    quick = PRESETS["quick"]
    new = apply_overrides(
        quick,
        {"sasrec.dropout": 0.2, "tiger.d_model": 64, "train.sasrec.lr": 2e-3, "beam": 30},
    )
    assert (new.sasrec.dropout, new.tiger.d_model, new.train["sasrec"].lr, new.beam) == (
        0.2,
        64,
        2e-3,
        30,
    )
    # everything else is the preset's, the other models' schedules included
    assert new.train["tiger_item"] == quick.train["tiger_item"]
    assert new.sasrec.n_negatives == quick.sasrec.n_negatives
    assert apply_overrides(quick, {}) == quick
    # an int where a float is expected widens; grad_clip may be switched off
    assert apply_overrides(quick, {"sasrec.dropout": 0}).sasrec.dropout == 0.0
    assert (
        apply_overrides(quick, {"train.tiger_item.grad_clip": None}).train["tiger_item"].grad_clip
        is None
    )


@pytest.mark.parametrize(
    "updates, message",
    [
        ({"sasrec.dropuot": 0.2}, "unknown key 'sasrec.dropuot': SASRecConfig has d_model"),
        ({"train.bert4rec.lr": 1e-3}, "unknown key 'train.bert4rec.lr': give tiger.*"),
        ({"tiger.d_model": "big"}, r'tiger.d_model="big" must be int \(now 128\)'),
        ({"tiger.d_model": 64.5}, "must be int"),
        ({"tiger.enc_layers": True}, "must be int"),
        ({"sasrec.loss": "hinge"}, "sasrec.loss: loss must be one of"),
        ({"tiger.codebook_sizes": [8, 8]}, "unknown key 'tiger.codebook_sizes'"),
        ({"beam": None}, "beam cannot be null"),
        # the ranges of the flags: no override builds a model a flag would refuse
        ({"sasrec.n_layers": 1000000}, r"sasrec.n_layers must be an integer in \[1, 48\]"),
        ({"sasrec.n_negatives": 10**9}, r"n_negatives must be an integer in \[1, 65536\]"),
        ({"sasrec.max_items": 10**9}, r"sasrec.max_items must be an integer in \[1, 1000\]"),
        ({"train.sasrec.lr": -1}, r"train.sasrec.lr must be a number in \(0, 10\]"),
        ({"sasrec.dropout": 5}, r"sasrec.dropout must be a number in \[0, 1\)"),
        ({"sasrec.dropout": -1}, r"sasrec.dropout must be a number in \[0, 1\)"),
        ({"sasrec.n_heads": 0}, r"sasrec.n_heads must be an integer in \[1, 64\]"),
        ({"train.sasrec.batch_size": 0}, "train.sasrec.batch_size must be an integer in"),
        ({"eval_batch": 0}, "eval_batch must be an integer in"),
        ({"train.sasrec.epochs": 0}, r"train.sasrec.epochs must be an integer in \[1, 1000\]"),
        ({"sasrec.dropout": float("nan")}, "sasrec.dropout=nan must be a finite number"),
    ],
)
def test_bad_overrides_are_refused_naming_the_key(updates, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(PRESETS["quick"], updates)


def test_the_checkpoint_tag_depends_on_the_overrides_only():
    assert overrides_tag({}) == ""
    a = overrides_tag({"sasrec.dropout": 0.2, "beam": 30})
    assert a == overrides_tag({"beam": 30, "sasrec.dropout": 0.2}) and a.startswith("-cfg")
    assert a != overrides_tag({"sasrec.dropout": 0.3, "beam": 30})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return semantic_ids_for(write_p5(tmp_path_factory.mktemp("ovr") / "tinyp5", 30, 36))


def test_seeds_write_one_file_each_into_one_run_folder(tiny, tmp_path):
    """--seeds 0 1 with --set: two results files recording the overrides, one run.log without
    repeated lines, checkpoints named with the overrides' tag, and each seed's own numbers."""
    run = tmp_path / "run"
    flags = ["--data-dir", str(tiny), "--models", "sasrec", "most_popular", "--epochs", "1"]
    tiger_train_eval.main(
        flags + ["--seeds", "0", "1", "--set", "sasrec.dropout=0.1", "--run-dir", str(run)]
    )
    files = sorted(p.name for p in run.glob("*.json"))
    assert files == ["sequential_tinyp5_paper_seed0.json", "sequential_tinyp5_paper_seed1.json"]
    results = [read_json(run / f) for f in files]
    assert [r["seed"] for r in results] == [0, 1]
    assert all(r["overrides"] == {"sasrec.dropout": 0.1} for r in results)
    assert all(
        r["run_record"]["config"]["preset_config"]["sasrec"]["dropout"] == 0.1 for r in results
    )
    tag = overrides_tag({"sasrec.dropout": 0.1})
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == [f"tiger-sasrec-tinyp5-quick{tag}-paper-seed{s}.pt" for s in (0, 1)]
    sasrec = [r["models"]["sasrec"]["test"] for r in results]
    assert sasrec[0] != sasrec[1]  # two trainings, not one file written twice
    log = (run / "run.log").read_text().splitlines()
    wrote = [line for line in log if "wrote " in line and line.endswith(".json")]
    stamped = [line for line in log if line[:4].isdigit()]  # a second handler repeats these
    assert len(wrote) == 2 and len(set(stamped)) == len(stamped)
    assert any("mean ± std over seeds [0, 1]" in line for line in log)


def test_seed_and_override_mistakes_are_one_line(tiny, tmp_path):
    flags = ["--data-dir", str(tiny), "--models", "most_popular", "--run-dir", str(tmp_path / "r")]
    with pytest.raises(UsageError, match=r"put \{seed\} in the name"):
        tiger_train_eval.main(flags + ["--seeds", "0", "1", "--out", str(tmp_path / "x.json")])
    with pytest.raises(UsageError, match="--set: 'beam' is not KEY=VALUE"):
        tiger_train_eval.main(flags + ["--set", "beam"])
    with pytest.raises(UsageError, match="--config/--set: unknown key 'sasrec.dim'"):
        tiger_train_eval.main(flags + ["--set", "sasrec.dim=4"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([1]))
    with pytest.raises(UsageError, match=f"--config {bad}: a config file holds one JSON object"):
        tiger_train_eval.main(flags + ["--config", str(bad)])
    bad.write_text('{"sasrec": {"dropout": NaN}}')  # JSON's NaN literal is no setting either
    with pytest.raises(UsageError, match="sasrec.dropout=nan must be a finite number"):
        tiger_train_eval.main(flags + ["--config", str(bad)])
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # reading it would block forever
    for special in (fifo, Path("/dev/zero")):  # /dev/zero would never end
        with pytest.raises(UsageError, match="not a regular file"):
            tiger_train_eval.main(flags + ["--config", str(special)])
    assert not (tmp_path / "r").exists()  # refused before any folder was made


def test_holdout_refuses_a_paper_run_of_other_hyperparameters(tmp_path):
    paper = {
        "protocol": "paper",
        "preset": "quick",
        "overrides": {"sasrec.dropout": 0.2},
        "models": {"sasrec": {"best_epoch": 3, "curve": []}},
    }
    path = tmp_path / "paper.json"
    path.write_text(json.dumps(paper))
    quick = PRESETS["quick"]
    with pytest.raises(UsageError, match="trained with other hyperparameters"):
        tiger_train_eval.holdout_epochs(quick, "quick", ["sasrec"], str(path), {})
    same = tiger_train_eval.holdout_epochs(
        quick, "quick", ["sasrec"], str(path), {"sasrec.dropout": 0.2}
    )
    assert same.train["sasrec"].epochs == 4
