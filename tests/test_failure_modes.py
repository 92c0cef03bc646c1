"""Issue 23: one rule per class of failure, each with a test that fails without its rule.

1. Files the user did not name are never destroyed.
2. A failed or killed run never breaks the previous good result set.
3. ``--verify`` checks everything it prints and trusts nothing in the files it checks.
4. Checkpoints from elsewhere are refused in one line.
5. Hostile or odd data ends in one line, never a traceback or silent nonsense.
6. Every numeric flag has a ceiling this machine can hold.

tests/test_hostile_inputs.py runs the scripts end to end on a generated table of such cases.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.helpers import (
    HOSTILE_DATA,
    assert_one_line_error,
    dead_pid,
    edit_json,
    edit_u_data,
    run_cli,
    snapshot,
)
from tests.synthetic import write_movielens, write_p5
from utils.data.prepare import prepare
from utils.evaluation.predictions import MANIFEST
from utils.runtime.io import OWNER_FILE, TEMP_TAG, atomic_write_json, make_temp_dir

# ---------------------------------------------------------------- 1. files the user did not name


def test_cleanup_removes_only_temp_files_this_toolkit_made(tmp_path):
    """Stale-temp cleanup takes a file or folder only when the name carries our tag and a dead
    writer's pid, this user owns it, and it is a regular file or a folder holding our owner file."""
    dead = dead_pid()
    users = {
        ".notes.ab12cd34.tmp": "dir",  # looks like the old untagged temp name
        f".notes.pid{dead}.ab12.tmp": "dir",  # looks like the old tagged name
        f".plans.{TEMP_TAG}-{dead}-ab12.tmp": "dir",  # our tag, but no owner file
        f".diary.{TEMP_TAG}-{dead}-cd34.tmp": "link",  # our tag, a link to a user's file
        ".old.json.ef56gh78.tmp": "file",
    }
    keep = tmp_path / "keep.txt"
    keep.write_text("the user's")
    for name, kind in users.items():
        path = tmp_path / name
        if kind == "dir":
            path.mkdir()
            (path / "letter.txt").write_text("private")
        elif kind == "link":
            path.symlink_to(keep)
        else:
            path.write_text("mine")
        old = path.lstat().st_mtime - 7200  # older than any age rule
        os.utime(path, (old, old), follow_symlinks=False)
    ours_file = tmp_path / f".out.json.{TEMP_TAG}-{dead}-zz11.tmp"
    ours_file.write_text("half")
    ours_dir = tmp_path / f".data.{TEMP_TAG}-{dead}-yy22.tmp"
    ours_dir.mkdir()
    (ours_dir / OWNER_FILE).write_text(ours_dir.name)
    before = snapshot(tmp_path)
    atomic_write_json(tmp_path / "out.json", {"a": 1})
    after = {p.name for p in tmp_path.iterdir()}
    assert set(users) | {"keep.txt", "out.json"} == after
    assert {k: v for k, v in snapshot(tmp_path).items() if k != "out.json"} == {
        k: v for k, v in before.items() if not k.startswith((ours_file.name, ours_dir.name))
    }


def test_prepare_refuses_a_data_dir_that_is_a_file(tmp_path):
    source = write_movielens(tmp_path / "src", n_users=6, n_items=8)
    target = tmp_path / "ml-100k"
    target.write_text("my notes, not a data folder")
    proc = run_cli(
        "prepare_data.py", "--dataset", "ml-100k", "--source", str(source),
        "--data-dir", str(target), "--no-verify", "--quiet",
    )  # fmt: skip
    assert_one_line_error(proc, f"--data-dir {target}", "is a file", "nothing was moved")
    assert target.read_text() == "my notes, not a data folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ml-100k", "src"]


def test_a_prepared_folder_gets_the_users_usual_permissions(tmp_path):
    source = write_p5(tmp_path / "src", n_users=8, n_items=9)
    umask = os.umask(0o022)
    try:
        prepare("toys", tmp_path / "toys", source=source)
    finally:
        os.umask(umask)
    assert (tmp_path / "toys").stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0700


def test_make_temp_dir_is_marked_as_ours(tmp_path):
    folder = make_temp_dir(tmp_path, "x")
    assert (folder / OWNER_FILE).read_text() == folder.name and TEMP_TAG in folder.name


@pytest.mark.parametrize(
    "script, target, extra",
    [
        ("mf_train_eval.py", "u.data", ["--models", "bias"]),
        ("neural_train_eval.py", "u.item", ["--models", "wide_deep", "--modes", "baseline"]),
        ("tiger_train_eval.py", "semantic_ids.json", ["--models", "tiger"]),
        ("analyze_semantic_ids.py", "semantic_ids.json", []),
        ("analyze_semantic_ids.py", ".", []),
        ("semantic_id_generator.py", "semantic_ids.json", ["--encode-texts", "NEW"]),
        ("semantic_id_generator.py", "NEW", ["--encode-texts", "NEW"]),
        ("mf_train_eval.py", "u.data/x.json", ["--models", "bias"]),
        # files of the data folder that this run does not read are protected too
        ("mf_train_eval.py", "semantic_ids.json", ["--models", "bias"]),
        (
            "neural_train_eval.py",
            "semantic_ids.json",
            ["--models", "deepfm", "--modes", "baseline"],
        ),
    ],
)
def test_an_output_that_is_the_runs_input_is_refused(tmp_path, script, target, extra):
    data = write_movielens(tmp_path / "ml", n_users=10, n_items=12)
    (data / "semantic_ids.json").write_text('{"hand": "made"}')
    new = tmp_path / "new.txt"
    new.write_text("a new film\n")
    before, new_before = snapshot(data), new.read_bytes()
    out = str(new) if target == "NEW" else str(data / target)
    extra = [str(new) if e == "NEW" else e for e in extra]
    flags = ["--data-dir", str(data), "--device", "cpu", "--quiet", "--out", out, *extra]
    if script != "semantic_id_generator.py":  # the generator has no plots
        flags += ["--plot-dir", str(tmp_path / "plots")]
    proc = run_cli(script, *flags)
    assert_one_line_error(proc, f"--out {out}", "this run's input", "choose another path")
    assert snapshot(data) == before and new.read_bytes() == new_before
    assert not (tmp_path / "plots").exists()


def test_outputs_beside_the_inputs_stay_allowed(tmp_path):
    from utils.data.load import data_files
    from utils.runtime.io import check_writable

    data = write_movielens(tmp_path / "ml", n_users=10, n_items=12)
    check_writable({"--out": data / "results.json"}, {"--split-cache": data / "splits"},
                   data_files(data))  # fmt: skip


# ---------------------------------------------------------------- 2. result sets change together


def _mf(data: Path, out: Path, lr: float) -> list[str]:
    """MF on ``data`` with predictions; runs differing in ``lr`` write the same file names on the
    old code."""
    return [
        "--data-dir", str(data), "--out", str(out), "--plot-dir", str(out.parent.parent / "plots"),
        "--models", "bias", "mf_id", "--epochs", "1", "--lr", str(lr), "--top-k", "5",
        "--save-predictions", "--quiet", "--device", "cpu",
    ]  # fmt: skip


def _full(errno_code: int) -> OSError:
    return OSError(errno_code, os.strerror(errno_code))


def test_a_run_that_fails_after_its_predictions_leaves_the_old_set_verifiable(
    tmp_path, monkeypatch
):
    import errno

    import mf_train_eval
    import summarize_results
    import utils.reporting.results

    data = write_movielens(tmp_path / "ml", n_users=20, n_items=24)
    results = tmp_path / "results"
    out = results / "mf_results_ml.json"
    mf_train_eval.main(_mf(data, out, lr=0.01))
    assert summarize_results.verify(results) == 0
    manifest = f"mf_results_ml.predictions/{MANIFEST}"  # lists each run's files as it writes them
    before = {k: v for k, v in snapshot(results).items() if k != manifest}

    def disk_full(*args, **kwargs):
        raise _full(errno.ENOSPC)

    for failing in (  # after every prediction was written: the plot, then the results JSON
        (mf_train_eval, "plot_mf_results"),
        (utils.reporting.results, "atomic_write_json"),
    ):
        with monkeypatch.context() as mp:
            mp.setattr(*failing, disk_full)
            with pytest.raises(OSError):
                mf_train_eval.main(_mf(data, out, lr=0.02))
        now = snapshot(results)
        assert {k: now[k] for k in before} == before  # nothing of the old set changed
        assert summarize_results.verify(results) == 0
    mf_train_eval.main(_mf(data, out, lr=0.03))  # a good run retires the old set and the orphans
    assert summarize_results.verify(results) == 0
    named = {Path(f).name for f in _named(out)}
    assert {p.name for p in (results / "mf_results_ml.predictions").iterdir()} == {*named, MANIFEST}


def _named(out: Path) -> list[str]:
    from utils.evaluation.predictions import named_files
    from utils.runtime.io import read_json

    return list(named_files(read_json(out)))


def test_the_page_and_the_results_change_together(tmp_path, monkeypatch):
    import utils.reporting.results
    from utils.reporting.results import write_results
    from utils.reporting.runinfo import RunRecord

    out, page = tmp_path / "r.json", tmp_path / "r_examples.md"
    record = RunRecord("x.py", {})
    write_results(out, {"v": 1}, record, (page, lambda r: f"page of {r['v']}"))
    before = snapshot(tmp_path)

    def broken(r):
        raise RuntimeError("render failed")

    with pytest.raises(RuntimeError):
        write_results(out, {"v": 2}, record, (page, broken))
    assert snapshot(tmp_path) == before
    monkeypatch.setattr(utils.reporting.results, "atomic_write_json", lambda *a, **k: broken(None))
    with pytest.raises(RuntimeError):
        write_results(out, {"v": 2}, record, (page, lambda r: "page of 2"))
    assert snapshot(tmp_path) == before


def test_a_second_run_on_the_same_out_is_refused_while_the_first_runs(tmp_path):
    import fcntl

    data = write_movielens(tmp_path / "ml", n_users=10, n_items=12)
    out = tmp_path / "results" / "mf.json"
    out.parent.mkdir()
    out.write_text('{"good": true}')
    with open(out.parent / ".mf.json.lock", "w") as held:  # what the first run holds
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = run_cli("mf_train_eval.py", *_mf(data, out, lr=0.01))
    assert_one_line_error(proc, f"--out {out}", "another run is writing", "wait for it")
    assert out.read_text() == '{"good": true}'
    assert not (out.parent / "mf.predictions").exists()


# ---------------------------------------------------------------- 6. flags with a ceiling

SCRIPT_MODULES = (
    "mf_train_eval",
    "neural_train_eval",
    "tiger_train_eval",
    "semantic_id_generator",
    "analyze_semantic_ids",
    "summarize_results",
    "prepare_data",
)


class _Parsed(Exception):
    """Raised in place of parsing, to hand a script's parser to the test."""

    def __init__(self, parser):
        self.parser = parser


def script_parser(module: str, monkeypatch):
    import argparse
    import importlib

    def capture(self, *args, **kwargs):
        raise _Parsed(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(_Parsed) as parsed:
        importlib.import_module(module).main([])
    return parsed.value.parser


@pytest.mark.parametrize("module", SCRIPT_MODULES)
def test_every_numeric_flag_of_every_script_has_a_ceiling(module, monkeypatch):
    """The rule itself: a flag's type is one of utils.runtime.argtypes' bounded checks (or the
    device name); the value just above its ceiling is refused, naming the ceiling."""
    import argparse

    from utils.runtime import argtypes

    for action in script_parser(module, monkeypatch)._actions:
        if action.type is None or action.type in argtypes.TEXT_TYPES:
            continue
        flag = action.option_strings[0]
        high = getattr(action.type, "high", None)
        assert high is not None, f"{module} {flag}: no ceiling"
        above, shown = (high + 1, str(high)) if isinstance(high, int) else (high * 10, f"{high:g}")
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(f", {shown}")):
            action.type(str(above))
        defaults = action.default if isinstance(action.default, list) else [action.default]
        for value in defaults:  # every default is inside its own range
            assert value is None or action.type(str(value)) == value, (module, flag)


@pytest.mark.parametrize(
    "script, flags, limit",
    [
        ("neural_train_eval.py", ["--lr", "1e300"], "(0, 10]"),
        ("mf_train_eval.py", ["--dim", "1e9"], "[1, 1024]"),
        ("mf_train_eval.py", ["--negatives", "1000000"], "[1, 256]"),
        ("tiger_train_eval.py", ["--beam", "1000000000"], "[1, 1000]"),
        ("mf_train_eval.py", ["--ks", "10", "1000000000"], "[1, 1000]"),
        ("analyze_semantic_ids.py", ["--shuffles", "1000000000"], "[1, 1000]"),
        ("mf_train_eval.py", ["--seed", str(2**32)], "[0, 4294967295]"),
        ("neural_train_eval.py", ["--seeds", "0", str(2**40)], "[0, 4294967295]"),
        ("semantic_id_generator.py", ["--rqvae-lr", "nan"], "finite"),
        ("semantic_id_generator.py", ["--codebook-size", "1000000000000"], "[1, 65536]"),
    ],
)
def test_absurd_flags_are_refused_with_the_limit(tmp_path, script, flags, limit):
    data = write_movielens(tmp_path / "ml", n_users=10, n_items=12)
    proc = run_cli(script, "--data-dir", str(data), *flags)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert f"argument {flags[0]}" in last and limit in last, last
    assert sorted(p.name for p in data.iterdir()) == ["u.data", "u.item"]


def test_too_many_or_repeated_seeds_are_refused(tmp_path):
    data = write_movielens(tmp_path / "ml", n_users=10, n_items=12)
    for seeds in (["0", "0"], [str(s) for s in range(101)]):
        proc = run_cli("mf_train_eval.py", "--data-dir", str(data), "--seeds", *seeds)
        assert_one_line_error(proc, "--seeds", "at most 100 distinct seeds")


@pytest.mark.parametrize(
    "best, fragments",
    [
        (10**12, ("best epoch 1000000000000 is outside [0, 1000)",)),
        (-5, ("best epoch -5 is outside",)),
        ("7", ("no best epoch of sasrec",)),
        (None, ("not a results file",)),
    ],
)
def test_epochs_from_is_read_like_a_flag(tmp_path, best, fragments):
    """--epochs-from sets the epochs as --epochs would: a count outside --epochs' range, or a
    file of another layout, is refused in one line before any work."""
    data = write_movielens(tmp_path / "ml", n_users=10, n_items=12)
    paper = tmp_path / "paper.json"
    doc = {"protocol": "paper", "preset": "quick", "models": {"sasrec": {"best_epoch": best}}}
    atomic_write_json(paper, doc if best is not None else [doc])
    proc = run_cli(
        "tiger_train_eval.py", "--data-dir", str(data), "--protocol", "holdout", "--models",
        "sasrec", "--epochs-from", str(paper), "--out", str(tmp_path / "r.json"), "--device", "cpu",
    )  # fmt: skip
    assert_one_line_error(proc, f"--epochs-from {paper}", *fragments)
    assert not (tmp_path / "r.json").exists()


def test_out_onto_the_epochs_from_file_is_refused(tmp_path):
    data = write_movielens(tmp_path / "ml", n_users=10, n_items=12)
    paper = tmp_path / "paper.json"
    atomic_write_json(
        paper, {"protocol": "paper", "preset": "quick", "models": {"sasrec": {"best_epoch": 0}}}
    )
    before = paper.read_bytes()
    proc = run_cli(
        "tiger_train_eval.py", "--data-dir", str(data), "--protocol", "holdout", "--models",
        "sasrec", "--epochs-from", str(paper), "--out", str(paper), "--device", "cpu",
        "--plot-dir", str(tmp_path / "plots"),
    )  # fmt: skip
    assert_one_line_error(proc, f"--out {paper}", "this run's input", "choose another path")
    assert paper.read_bytes() == before


def test_braces_in_out_are_part_of_the_file_name(tmp_path):
    data = write_movielens(tmp_path / "ml", n_users=10, n_items=12)
    out = tmp_path / "r" / "{x}_{dataset}_{}.json"
    proc = run_cli(
        "mf_train_eval.py", "--data-dir", str(data), "--out", str(out), "--models", "bias",
        "--epochs", "1", "--plot-dir", str(tmp_path / "plots"), "--quiet", "--device", "cpu",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in out.parent.iterdir()] == ["{x}_ml_{}.json"]


# ---------------------------------------------------------------- 4. checkpoints from elsewhere


def _ckpt_cfg(ckpt: Path, resume: bool, identity: dict | None = None):
    from src.training import TrainConfig

    given = {} if identity is None else {"identity": identity}
    return TrainConfig(
        epochs=2, lr=0.02, monitor="mse", mode="min", patience=100, checkpoint=str(ckpt),
        resume=resume, **given,
    )  # fmt: skip


def test_resume_refuses_a_checkpoint_trained_on_something_else(tmp_path):
    from tests.helpers import fit_linear
    from utils.runtime.errors import CheckpointError

    ckpt = tmp_path / "model.pt"
    mine = {"data_checksum": "a" * 64, "semantic_ids": "0123456789ab", "model": {"dim": 4}}
    fit_linear(_ckpt_cfg(ckpt, False, mine))
    other_data = {**mine, "data_checksum": "b" * 64}
    with pytest.raises(CheckpointError, match=r"data_checksum: aaaaaaaaaaaa\.\.\. there, bbbb"):
        fit_linear(_ckpt_cfg(ckpt, True, other_data))
    with pytest.raises(CheckpointError, match=r"model\.dim: 4 there, 8 here.*without --resume"):
        fit_linear(_ckpt_cfg(ckpt, True, {**mine, "model": {"dim": 8}}))
    fit_linear(_ckpt_cfg(ckpt, True, mine))  # its own run resumes
    fit_linear(_ckpt_cfg(ckpt, False, None))  # a checkpoint that records nothing ...
    with pytest.raises(CheckpointError, match="records no data checksum"):
        fit_linear(_ckpt_cfg(ckpt, True, mine))  # ... cannot be checked


@pytest.mark.parametrize("damage", ["shape", "missing", "optimizer"])
def test_a_checkpoint_of_another_layout_never_reaches_torch(tmp_path, damage):
    import torch

    from tests.helpers import fit_linear
    from utils.runtime.errors import CheckpointError

    ckpt = tmp_path / "model.pt"
    fit_linear(_ckpt_cfg(ckpt, False))
    state = torch.load(ckpt, weights_only=True)
    if damage == "shape":
        state["model"]["weight"] = torch.zeros(3, 4)
    elif damage == "missing":
        del state["model"]["bias"]
    else:
        state["optimizer"]["param_groups"] = []
    torch.save(state, ckpt)
    with pytest.raises(CheckpointError, match=f"{ckpt}: .*delete it, or run without --resume"):
        fit_linear(_ckpt_cfg(ckpt, True))


def test_a_full_disk_while_saving_a_checkpoint_is_one_line(tmp_path, monkeypatch, capsys):
    import errno

    from tests.helpers import fit_linear
    from utils.runtime.errors import run_script

    ckpt = tmp_path / "model.pt"
    fit_linear(_ckpt_cfg(ckpt, False))
    before = snapshot(tmp_path)

    def full(self, data):
        with open(self, "wb") as f:
            f.write(data[: len(data) // 2])  # half written, then the disk is full
        raise _full(errno.ENOSPC)

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(SystemExit) as exit_:
        run_script(lambda: fit_linear(_ckpt_cfg(ckpt, False)))
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith(f"error: No space left on device, {ckpt}: the disk is full"), err
    assert snapshot(tmp_path) == before  # the old checkpoint stays, no temporary file is left


def _one_epoch_sasrec(data: Path, tmp_path: Path) -> list[str]:
    """tiger_train_eval.py flags: one SASRec epoch on ``data``, checkpoints in tmp_path/ckpt."""
    return [
        "--data-dir", str(data), "--models", "sasrec", "--epochs", "1", "--device", "cpu",
        "--out", str(tmp_path / "r.json"), "--plot-dir", str(tmp_path / "plots"), "--quiet",
        "--checkpoint-dir", str(tmp_path / "ckpt"),
    ]  # fmt: skip


def test_tiger_resume_on_other_data_of_the_same_shape_is_refused(tmp_path):
    data = write_movielens(tmp_path / "ml", n_users=20, n_items=24)
    flags = _one_epoch_sasrec(data, tmp_path)
    assert run_cli("tiger_train_eval.py", *flags).returncode == 0
    lines = (data / "u.data").read_text().splitlines()
    user, item, rating, ts = lines[0].split("\t")
    lines[0] = "\t".join([user, item, "5" if rating != "5" else "4", ts])  # same shape, other data
    (data / "u.data").write_text("\n".join(lines) + "\n")
    before = snapshot(tmp_path / "ckpt")
    proc = run_cli("tiger_train_eval.py", *flags, "--resume")
    assert_one_line_error(proc, "trained on something else", "data_checksum", "--resume")
    assert snapshot(tmp_path / "ckpt") == before


def test_a_checkpoint_of_another_protocol_is_refused(tmp_path):
    """Holdout trains on the validation rows too: its checkpoint, renamed to a paper run's, is
    refused by the protocol and the training rows it names."""
    import shutil

    data = write_movielens(tmp_path / "ml", n_users=20, n_items=24)
    flags = _one_epoch_sasrec(data, tmp_path)
    assert run_cli("tiger_train_eval.py", *flags, "--protocol", "holdout").returncode == 0
    ckpt = tmp_path / "ckpt"
    shutil.copy(ckpt / "tiger-sasrec-ml-quick-holdout-seed0.pt",
                ckpt / "tiger-sasrec-ml-quick-paper-seed0.pt")  # fmt: skip
    before = snapshot(ckpt)
    proc = run_cli("tiger_train_eval.py", *flags, "--resume")
    assert_one_line_error(
        proc, "trained on something else", "protocol: holdout there, paper here",
        "split.train_rows", "--resume",
    )  # fmt: skip
    assert snapshot(ckpt) == before


# ---------------------------------------------------------------- 5. hostile or odd data


def _folder(kind: str, root: Path) -> Path:
    if kind == "ml":
        return write_movielens(root, n_users=10, n_items=12)
    return write_p5(root, n_users=10, n_items=12, with_ratings=True)


@pytest.mark.parametrize("case", sorted(HOSTILE_DATA))
def test_hostile_data_is_refused_by_name(tmp_path, case):
    from utils.data.load import load_dataset
    from utils.runtime.errors import DataError

    kind, damage, message = HOSTILE_DATA[case]
    folder = _folder(kind, tmp_path / "data")
    damage(folder)
    with pytest.raises(DataError, match=re.escape(message)):
        load_dataset(folder)


def test_a_gzip_bomb_is_refused_before_it_fills_memory(tmp_path, monkeypatch):
    import gzip

    import utils.data.p5
    from utils.data.load import load_dataset
    from utils.runtime.errors import DataError

    folder = write_p5(tmp_path / "p5", n_users=10, n_items=12)
    monkeypatch.setattr(utils.data.p5, "MAX_META_BYTES", 1 << 20)  # the real cap is 2 GiB
    with gzip.open(folder / "meta.json.gz", "wb") as f:
        f.write(b"\0" * (2 << 20))  # compresses 1000:1
    with pytest.raises(DataError, match="meta.json.gz: decompresses to more than 1 MiB"):
        load_dataset(folder)


def test_a_repeated_rating_in_u_data_is_kept_once_at_its_latest_row(tmp_path, caplog):
    from utils.data.load import load_dataset
    from utils.data.splits import get_split

    folder = write_movielens(tmp_path / "ml", n_users=10, n_items=12)
    plain = load_dataset(folder)
    first = (folder / "u.data").read_text().splitlines()[0].split("\t")
    again = [first[0], first[1], "1" if first[2] != "1" else "2", str(int(first[3]) + 10**6)]
    edit_u_data(folder, lambda ls: [*ls, "\t".join(again), "\t".join(again)])
    ds = load_dataset(folder)
    assert ds.n_interactions == plain.n_interactions and "2 repeated" in caplog.text
    user = list(ds.user_ids).index(first[0])
    item = list(ds.item_ids).index(first[1])
    row = ds.user_offsets[user] + list(ds.sequence(user)).index(item)
    assert ds.ratings[row] == float(again[2]) and ds.timestamps[row] == int(again[3])
    split = get_split(ds)
    pairs = ds.users * ds.n_items + ds.items
    assert not set(pairs[split.train]) & set(pairs[split.test])


def test_a_user_who_has_every_item_ends_in_one_line(tmp_path):
    folder = write_movielens(tmp_path / "ml", n_users=10, n_items=12)
    everything = [f"1\t{i}\t4\t{890000000 + i}" for i in range(1, 13)]
    edit_u_data(folder, lambda ls: [line for line in ls if not line.startswith("1\t")] + everything)
    proc = run_cli(
        "mf_train_eval.py", "--data-dir", str(folder), "--models", "bias", "--device", "cpu",
        "--out", str(tmp_path / "r.json"), "--plot-dir", str(tmp_path / "plots"), "--quiet",
    )  # fmt: skip
    assert_one_line_error(proc, "no negative items to sample", "remove such users")


def test_nan_embeddings_are_refused_wherever_they_enter(tmp_path):
    import numpy as np

    from src.semantic_ids.embeddings import embed_texts
    from src.semantic_ids.new_items import read_new_items
    from utils.runtime.errors import DataError

    def nan_encoder():
        return lambda texts: np.full((len(texts), 4), np.nan, np.float32)

    with pytest.raises(DataError, match="sentence encoder: 2 of 2 embedding"):
        embed_texts(["a", "b"], None, nan_encoder)
    npy = tmp_path / "new.npy"
    np.save(npy, np.array([[0.1, 0.2], [np.inf, 0.0]], np.float32))
    with pytest.raises(DataError, match=f"{npy}: 1 of 2 embedding.*row 1"):
        read_new_items(npy)


def _ids_file(tmp_path: Path) -> tuple[Path, Path]:
    import numpy as np

    from utils.data.load import load_dataset
    from utils.data.semantic import write_semantic_ids

    folder = write_movielens(tmp_path / "ml", n_users=10, n_items=12)
    ds = load_dataset(folder)
    codes = np.array([[i % 3, i // 3 % 2, 0] for i in range(ds.n_items)])
    header = {"data_checksum": ds.checksum, "codebook_sizes": [3, 2], "collision_size": 1}
    write_semantic_ids(folder / "semantic_ids.json", header, ds.item_ids, codes)
    return folder, folder / "semantic_ids.json"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["items"].update({"1": [None, 0, 0]}), "integer codes per item"),
        (lambda d: d["items"].update({"1": ["1", 0, 0]}), "integer codes per item"),
        (lambda d: d["items"].update({"1": [1.0, 0, 0]}), "integer codes per item"),
        (lambda d: d["items"].update({"1": [2**70, 0, 0]}), "outside their codebook sizes"),
        (lambda d: d.update(codebook_sizes=[10**12, 2]), "each in [1, 65536]"),
        (lambda d: d.update(codebook_sizes=["3", 2]), "each in [1, 65536]"),
        (lambda d: d.update(collision_size=None), "each in [1, 65536]"),
        (lambda d: d.update(codebook_sizes=None), "codebook_sizes must be"),
        (lambda d: d.update(data_checksum=None), "data_checksum must be a string"),
    ],
)
def test_a_hand_edited_semantic_ids_file_is_refused_in_one_line(tmp_path, edit, message):
    from utils.data.load import load_dataset
    from utils.data.semantic import load_semantic_ids
    from utils.runtime.errors import DataError

    folder, path = _ids_file(tmp_path)
    edit_json(path, edit)
    with pytest.raises(DataError, match=f"{path}: .*{re.escape(message)}"):
        load_semantic_ids(folder, load_dataset(folder))


# ---------------------------------------------------------------- 3. --verify checks everything


@pytest.fixture(scope="module")
def verified(tmp_path_factory) -> Path:
    """A results folder that verifies: MF (2 seeds) and SASRec on a small MovieLens copy."""
    import mf_train_eval
    import tiger_train_eval

    root = tmp_path_factory.mktemp("verified")
    data = write_movielens(root / "ml", n_users=30, n_items=40)
    out = root / "results"
    common = ["--data-dir", str(data), "--plot-dir", str(root / "plots"), "--quiet"]
    common += ["--save-predictions", "--device", "cpu", "--top-k", "20"]
    mf_train_eval.main(
        [*common, "--out", str(out / "mf_results_ml.json"), "--models", "bias", "mf_id",
         "--seeds", "0", "1", "--epochs", "1"]
    )  # fmt: skip
    tiger_train_eval.main(
        [*common, "--out", str(out / "tiger_results.json"), "--models", "sasrec",
         "--epochs", "1", "--checkpoint-dir", str(root / "ckpt")]
    )  # fmt: skip
    return out


def _copy_results(verified: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(verified, tmp_path / "results"))


def _rewrite_predictions(results: Path, name: str, model: str, change) -> None:
    """Change a saved predictions file (``change(meta, arrays)``) and re-record its sha256, as a
    careful forger would."""
    import json

    import numpy as np

    from utils.runtime.io import read_json, sha256_file

    doc = read_json(results / name)
    record = doc["models"][model]["predictions"]
    with np.load(record["file"], allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays.pop("meta")))
    change(meta, arrays)
    forged = results / f"forged-{model}.npz"
    np.savez_compressed(forged, meta=np.array(json.dumps(meta)), **arrays)
    record.update(file=str(forged), sha256=sha256_file(forged))
    (results / name).write_text(json.dumps(doc))


def _verify(results: Path, capsys) -> tuple[int, str]:
    """summarize_results.py --verify's exit code and output."""
    import summarize_results

    code = summarize_results.verify(results)
    return code, capsys.readouterr().out


def _edit_results(results: Path, name: str, edit) -> None:
    edit_json(results / name, edit)


def test_an_edited_mean_over_seeds_or_slice_metric_fails(verified, tmp_path, capsys):
    results = _copy_results(verified, tmp_path)
    assert _verify(results, capsys)[0] == 0

    def mf(doc):
        mf_id = doc["models"]["mf_id"]
        mf_id["mean_std"]["test"]["overall"]["rmse"]["mean"] -= 0.01  # what the table prints
        mf_id["seeds"]["1"]["test"]["slices"]["user_head"]["rmse"] += 0.01

    def sasrec(doc):
        doc["models"]["sasrec"]["test_slices"]["item_tail"]["ndcg@10"] += 0.01

    _edit_results(results, "mf_results_ml.json", mf)
    _edit_results(results, "tiger_results.json", sasrec)
    code, out = _verify(results, capsys)
    mismatches = int(out.split(" mismatch(es)")[0].rsplit(", ", 1)[-1])
    assert code == 1 and mismatches >= 3, out  # the edited seed also no longer matches its mean
    assert "mf_id, mean over seeds test.overall.rmse" in out
    assert "mf_id seed 1, user_head rmse" in out and "sasrec, item_tail ndcg@10" in out


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda r: _edit_results(r, "mf_results_ml.json", lambda d: d["models"]["bias"]["seeds"]["0"].pop("test")), "KeyError: 'test'"),  # noqa: E501
        (lambda r: _edit_results(r, "mf_results_ml.json", lambda d: d.update(models=[])), "AttributeError"),  # noqa: E501
        (lambda r: _edit_results(r, "tiger_results.json", lambda d: d["models"]["sasrec"]["test"].update({"ndcg@10": "0.5"})), "reported '0.5'"),  # noqa: E501
        (lambda r: _rewrite_predictions(r, "tiger_results.json", "sasrec", lambda m, a: a.update(users=a["users"][:-1], items=a["items"][:-1], scores=a["scores"][:-1])), "the test set has"),  # noqa: E501
        (lambda r: _rewrite_predictions(r, "tiger_results.json", "sasrec", lambda m, a: a.update(scores=a["scores"][:-1])), "unequal length"),  # noqa: E501
        (lambda r: _rewrite_predictions(r, "tiger_results.json", "sasrec", lambda m, a: a["users"].__setitem__(0, "nobody")), "unknown"),  # noqa: E501
    ],
)  # fmt: skip
def test_structural_damage_is_refused_in_one_line(verified, tmp_path, capsys, damage, message):
    results = _copy_results(verified, tmp_path)
    damage(results)
    failures, out = _verify(results, capsys)
    assert failures >= 1 and message in out, out
    assert "Traceback" not in out


def test_the_verifier_writes_nowhere_a_file_points_it_to(verified, tmp_path, capsys):
    results = _copy_results(verified, tmp_path)
    planted = tmp_path / "not-a-cache"

    def point(meta, arrays):
        meta["split"]["cache_dir"] = str(planted)

    _rewrite_predictions(results, "tiger_results.json", "sasrec", point)
    assert _verify(results, capsys)[0] == 0
    assert not planted.exists()
    other = write_movielens(tmp_path / "other", n_users=30, n_items=40, seed=1)
    _rewrite_predictions(
        results, "tiger_results.json", "sasrec", lambda m, a: m.update(data_dir=str(other))
    )
    failures, out = _verify(results, capsys)
    assert failures == 1 and "not the data the predictions were made on" in out
    assert sorted(p.name for p in other.iterdir()) == ["u.data", "u.item"]


def test_a_folder_with_nothing_to_check_fails(tmp_path, capsys):
    (tmp_path / "notes.json").write_text("{}")
    code, out = _verify(tmp_path, capsys)
    assert code == 2 and "nothing was verified" in out
