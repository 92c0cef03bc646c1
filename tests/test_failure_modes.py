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

import pytest

from tests.helpers import assert_one_line_error, dead_pid, run_cli, snapshot
from tests.synthetic import write_movielens, write_p5
from utils.io import OWNER_FILE, TEMP_TAG, atomic_write_json, make_temp_dir
from utils.prepare import prepare

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
    from utils.data import data_files
    from utils.io import check_writable

    data = write_movielens(tmp_path / "ml", n_users=10, n_items=12)
    check_writable({"--out": data / "results.json"}, {"--split-cache": data / "splits"},
                   data_files(data))  # fmt: skip
