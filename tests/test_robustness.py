"""Issue 10: every bad input and fault ends in one clear message, with nothing lost and nothing
executed.

One section per numbered item of the issue; tests/test_hostile_inputs.py runs the scripts end to
end.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from src.training import TrainConfig
from tests.helpers import (
    CHILD_ENV,
    REPO,
    Payload,
    assert_one_line_error,
    dead_pid,
    fit_linear,
    run_cli,
    run_generator,
    snapshot,
)
from tests.synthetic import write_movielens, write_p5
from utils.data.load import load_dataset
from utils.data.prepare import prepare
from utils.evaluation.metrics import auc, multi_target_ranking, naming_model, require_finite
from utils.runtime import argtypes
from utils.runtime.errors import CheckpointError, DataError, NonFiniteScoresError
from utils.runtime.io import OWNER_FILE, TEMP_TAG

# -------------------------------------------------------- 1. checkpoints load with weights_only


def test_a_planted_checkpoint_is_refused_and_never_executed(tmp_path):
    marker, ckpt = tmp_path / "pwned", tmp_path / "model.pt"
    torch.save({"model": {}, "optimizer": {}, "epoch": 0, "payload": Payload(marker)}, ckpt)
    cfg = TrainConfig(
        epochs=2, lr=0.02, monitor="mse", mode="min", checkpoint=str(ckpt), resume=True
    )
    with pytest.raises(CheckpointError, match=f"{ckpt}: refused to load.*run without --resume"):
        fit_linear(cfg)
    assert not marker.exists()


def test_a_damaged_checkpoint_is_refused_with_its_name(tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"PK\x03\x04 truncated")
    cfg = TrainConfig(
        epochs=2, lr=0.02, monitor="mse", mode="min", checkpoint=str(ckpt), resume=True
    )
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        fit_linear(cfg)


def test_own_checkpoints_load_with_weights_only(tmp_path):
    ckpt = str(tmp_path / "model.pt")
    fit_linear(
        TrainConfig(epochs=2, lr=0.02, monitor="mse", mode="min", patience=100, checkpoint=ckpt)
    )
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 1 and isinstance(state["result"]["history"], list)


# ---------------------------------------------------------------- 2. preparation is a transaction


def _bad_sources(tmp_path: Path, good: Path, marker: Path) -> dict[str, Path]:
    """Copies of ``good`` with a truncated meta.json.gz, and with a rating pickle that carries a
    payload."""
    truncated = Path(shutil.copytree(good, tmp_path / "truncated"))
    data = (truncated / "meta.json.gz").read_bytes()
    (truncated / "meta.json.gz").write_bytes(data[: len(data) // 2])
    evil = Path(shutil.copytree(good, tmp_path / "evil"))
    (evil / "rating_splits_augmented.pkl").write_bytes(pickle.dumps(Payload(marker)))
    return {"truncated or corrupt": truncated, "refused to load": evil}


def test_a_failed_prepare_leaves_the_old_folder_byte_identical(tmp_path):
    good, marker = write_p5(tmp_path / "good", n_users=8, n_items=9), tmp_path / "pwned"
    target = tmp_path / "toys"
    prepare("toys", target, source=good)
    (target / "semantic_ids.json").write_text("{}")  # what else lives there must survive too
    (target / "splits").mkdir()
    (target / "splits" / "split.npz").write_bytes(b"cached")
    before = snapshot(target)
    for message, bad in _bad_sources(tmp_path, good, marker).items():
        with pytest.raises(DataError, match=message):
            prepare("toys", target, source=bad)
        assert snapshot(target) == before
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "evil",
        "good",
        "toys",
        "truncated",
    ]  # no staging
    # the refused pickle did not stay behind: preparing from the good source again works
    prepare("toys", target, source=good)
    assert snapshot(target) == before


def test_a_swap_killed_half_way_is_rolled_back_by_the_next_run(tmp_path):
    good = write_p5(tmp_path / "good", n_users=8, n_items=9)
    target = tmp_path / "toys"
    prepare("toys", target, source=good)
    before = snapshot(target)
    # killed after moving the old folder into its work folder, before the new one took its place
    work = tmp_path / f".toys.{TEMP_TAG}-{dead_pid()}-abc123.tmp"
    work.mkdir()
    (work / OWNER_FILE).write_text(work.name)
    os.replace(target, work / "old")
    bad = Path(shutil.copytree(good, tmp_path / "bad"))
    (bad / "datamaps.json").write_text("[]")
    with pytest.raises(DataError, match="not an object|expected a JSON object"):
        prepare("toys", target, source=bad)
    assert snapshot(target) == before and not work.exists()


# -------------------------------------------------------- 3. one error line, never a traceback


def test_scripts_print_one_error_line_and_exit_1(tmp_path):
    missing = tmp_path / "nowhere"
    for script in (
        "mf_train_eval.py",
        "neural_train_eval.py",
        "tiger_train_eval.py",
        "analyze_semantic_ids.py",
        "semantic_id_generator.py",
    ):
        assert_one_line_error(
            run_cli(script, "--data-dir", str(missing), "--device", "cpu", "--quiet"),
            f"{missing}: no such data folder",
            "prepare_data.py --dataset NAME --source FOLDER",
        )
    results = tmp_path / "results"
    results.mkdir()
    (results / "mf_results_x.json").write_text('{"dataset": "x", "models": {"mf_id"')
    assert_one_line_error(
        run_cli("summarize_results.py", "--results-dir", str(results)),
        "mf_results_x.json:1: invalid JSON",
    )


def _hint_command(folder: Path) -> list[str]:
    """The backticked command of the missing-folder message for ``folder``."""
    with pytest.raises(DataError) as err:
        load_dataset(folder)
    return str(err.value).split("`")[1].split()


@pytest.mark.parametrize("name", ["ml-100k", "my-films"])
def test_the_missing_folder_hint_names_a_command_that_works(tmp_path, name):
    target = tmp_path / name
    command = _hint_command(target)
    assert command[:2] == ["python", "prepare_data.py"]
    src = write_movielens(tmp_path / "src", n_users=6, n_items=8)
    filled = [{"NAME": "ml-100k", "FOLDER": str(src)}.get(word, word) for word in command[1:]]
    extra = [] if "--source" in filled else ["--source", str(src)]
    proc = run_cli(*filled, *extra, "--no-verify", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert load_dataset(target).n_users == 6


def test_debug_shows_the_traceback_and_ctrl_c_exits_130(tmp_path):
    proc = run_cli("mf_train_eval.py", "--data-dir", str(tmp_path / "nowhere"), "--debug")
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "DataError" in proc.stderr
    code = (
        "from utils.runtime.errors import run_script\ndef main():\n    raise KeyboardInterrupt\n"
        "run_script(main)"
    )
    assert_one_line_error(_python(code), code=130)


def _python(code: str) -> subprocess.CompletedProcess:
    """``code`` run by a child Python in the repository, as a script would be."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **CHILD_ENV},
    )


def test_a_damaged_split_cache_is_refused_with_the_fix(tmp_path):
    from utils.data.splits import get_split

    ds = load_dataset(write_movielens(tmp_path / "ml", n_users=12, n_items=20))
    get_split(ds, cache_dir=tmp_path / "splits")
    (cached,) = (tmp_path / "splits").glob("*.npz")
    cached.write_bytes(cached.read_bytes()[:100])
    with pytest.raises(DataError, match="cached split is damaged.*delete it"):
        get_split(ds, cache_dir=tmp_path / "splits")
    empty = np.zeros(0, int)
    foreign = dict(
        train=np.array([10**6]),
        val=empty,
        test=empty,
        cold_items=empty,
        val_negatives=np.zeros((0, 4), int),
        test_negatives=np.zeros((0, 4), int),
    )
    np.savez(cached, **foreign)
    with pytest.raises(DataError, match="train holds values outside"):
        get_split(ds, cache_dir=tmp_path / "splits")


# -------------------------------------------------------- 4. outputs are checked before any work


@pytest.mark.parametrize("out", ["folder", "file/out.json"])
def test_an_unwritable_out_fails_before_training(tmp_path, out):
    data = write_movielens(tmp_path / "ml", n_users=10, n_items=12)
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("a file, not a folder")
    proc = run_cli(
        "mf_train_eval.py",
        "--data-dir",
        str(data),
        "--out",
        str(tmp_path / out),
        "--plot-dir",
        str(tmp_path / "plots"),
        "--models",
        "bias",
        "--device",
        "cpu",
    )
    assert_one_line_error(proc, f"--out {tmp_path / out}")
    assert (
        "epoch" not in proc.stderr
        and not (data / "splits").exists()
        and not (tmp_path / "plots").exists()
    )


# -------------------------------------------------------- 5. flags are checked at parse time


@pytest.mark.parametrize(
    "check, bad, good",
    [
        (argtypes.epochs, ["0", "-3", "1.5", "x", "1001"], ["1", "64", "1e2"]),
        (argtypes.threads, ["-1", "257"], ["0"]),
        (argtypes.learning_rate, ["0", "-1e-3", "nan", "inf", "1e300"], ["1e-3"]),
        (argtypes.penalty, ["-0.1", "nan", "1e9"], ["0", "2.5"]),
        (argtypes.seed, ["-1", str(2**32)], ["0", str(2**32 - 1)]),
        (argtypes.fraction, ["1", "-0.1", "nan"], ["0", "0.05"]),
        (argtypes.device_name, ["tpu", "cuda:x", "gpu"], ["auto", "cpu", "cuda", "cuda:1", "mps"]),
    ],
)
def test_flag_types(check, bad, good):
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            check(text)
    for text in good:
        check(text)


@pytest.mark.parametrize(
    "script, flags",
    [
        ("mf_train_eval.py", ["--epochs", "0"]),
        ("mf_train_eval.py", ["--batch-size", "-5"]),
        ("neural_train_eval.py", ["--epochs", "-1"]),
        ("neural_train_eval.py", ["--batch-size", "0"]),
        ("tiger_train_eval.py", ["--epochs", "0"]),
        ("mf_train_eval.py", ["--device", "tpu"]),
        ("semantic_id_generator.py", ["--levels", "0"]),
        ("neural_train_eval.py", ["--lr", "nan"]),
    ],
)
def test_invalid_flags_fail_before_any_work(tmp_path, script, flags):
    data = write_movielens(tmp_path / "ml", n_users=10, n_items=12)
    proc = run_cli(script, "--data-dir", str(data), "--out", str(tmp_path / "out.json"), *flags)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"argument {flags[0]}" in proc.stderr.strip().splitlines()[-1]
    assert not (data / "splits").exists() and not (tmp_path / "out.json").exists()


# ---------------------------------------------------------------- 6. no mixed semantic-ID files


def test_a_generator_run_killed_between_writes_is_refused_by_readers(
    tmp_path, encoder, monkeypatch
):
    import analyze_semantic_ids
    from src.semantic_ids import generator as gen

    data = write_p5(tmp_path / "p5", n_users=30, n_items=40)
    assert run_generator(data, tmp_path / "cache", "--seed", "0") == 0
    before = {
        name: (data / name).read_bytes() for name in ("semantic_ids.json", "semantic_id_stats.json")
    }

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # SIGINT after the codebooks and stats, before the IDs

    monkeypatch.setattr(gen, "write_semantic_ids", killed)
    with pytest.raises(KeyboardInterrupt):
        run_generator(data, tmp_path / "cache", "--seed", "1")
    assert (data / "semantic_ids.json").read_bytes() == before["semantic_ids.json"]
    analyze = [
        "--data-dir",
        str(data),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--quiet",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "a.json"),
        "--plot-dir",
        str(tmp_path / "plots"),
    ]
    with pytest.raises(DataError, match="semantic_id_stats.json: written by another generator run"):
        analyze_semantic_ids.main(analyze)
    # only the codebooks differ now
    (data / "semantic_id_stats.json").write_bytes(before["semantic_id_stats.json"])
    with pytest.raises(
        DataError, match="codebooks.npz: written by another generator run.*generator.py"
    ):
        analyze_semantic_ids.main(analyze)
    assert not (tmp_path / "a.json").exists()


# -------------------------------------------------------- 7. every format has a schema check


def test_non_utf8_and_non_object_p5_files_are_refused(tmp_path):
    folder = write_p5(tmp_path / "p5", n_users=10, n_items=8)
    good = (folder / "sequential_data.txt").read_bytes()
    (folder / "sequential_data.txt").write_bytes(good.replace(b"\n", b"\n\xff", 1))
    with pytest.raises(DataError, match=r"sequential_data.txt:2: not utf-8 text"):
        load_dataset(folder)
    (folder / "sequential_data.txt").write_bytes(good)
    (folder / "datamaps.json").write_bytes(b'{"user2id": "\xe9"}')
    with pytest.raises(DataError, match=r"datamaps.json:1: not utf-8 text"):
        load_dataset(folder)
    for doc, message in (
        ("[1, 2]", "expected a JSON object.*got a list"),
        ('{"user2id": {"U1": 1}, "item2id": {}}', "numeric id string"),
    ):
        (folder / "datamaps.json").write_text(doc)
        with pytest.raises(DataError, match=message):
            load_dataset(folder)


def test_a_u_data_line_cut_inside_the_timestamp_is_not_accepted(tmp_path, caplog):
    folder = write_movielens(tmp_path / "ml", n_users=10, n_items=12)
    data = (folder / "u.data").read_text()
    n_lines = data.count("\n")
    (folder / "u.data").write_text(
        data[:-4]
    )  # the last line loses its newline and 3 timestamp digits
    with pytest.raises(
        DataError, match=rf"1 of {n_lines} lines are malformed \(first at line {n_lines}\)"
    ):
        load_dataset(folder)
    big = write_movielens(
        tmp_path / "big", n_users=120, n_items=40
    )  # > 1000 lines: one bad line is skipped
    data = (big / "u.data").read_text()
    (big / "u.data").write_text(data[:-4])
    assert load_dataset(big).n_interactions == data.count("\n") - 1
    assert "skipped 1 malformed line" in caplog.text


# ---------------------------------------------------------------- 8. leftovers of killed runs


def test_stale_temp_files_are_removed_on_the_next_write(tmp_path):
    from utils.runtime.io import atomic_write_json

    stale = tmp_path / f".out.json.{TEMP_TAG}-{dead_pid()}-k3j4h5g6.tmp"
    live = tmp_path / f".out.json.{TEMP_TAG}-{os.getppid()}-zz99yy88.tmp"  # its writer runs
    old_style = tmp_path / ".out.json.ab12cd34.tmp"  # a user's file could look like this
    foreign = tmp_path / ".notes.tmp"
    for p in (stale, old_style, live, foreign):
        p.write_text("half")
    atomic_write_json(tmp_path / "out.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, old_style.name, foreign.name, "out.json"]
    )


# ---------------------------------------------------------------- 9. no metric of a diverged model


def test_nan_scores_are_refused():
    with pytest.raises(NonFiniteScoresError, match="scores: 1 of 3 are NaN"):
        auc([0, 1, 1], [0.1, float("nan"), 0.5])
    with pytest.raises(NonFiniteScoresError, match="^SASRec: scores: 1 of 2"):
        with naming_model("SASRec"):
            require_finite(torch.tensor([0.5, float("inf")]))


def test_sasrec_ranking_refuses_nan_scores():
    from src.sequential.ranking import score_rank
    from src.sequential.sasrec import SASRec, SASRecConfig
    from src.sequential.sequence_data import SequenceExamples

    model = SASRec(5, SASRecConfig(d_model=8, n_layers=1, max_items=4))
    with torch.no_grad():
        model.item_emb.weight[3] = float(
            "nan"
        )  # item 2, the target: its score is NaN, the others are not
    ex = SequenceExamples(
        hist=torch.tensor([[-1, -1, 0, 1]]),
        length=torch.tensor([2]),
        target=torch.tensor([2]),
        user=torch.tensor([0]),
        rows=torch.tensor([0]),
    )
    with pytest.raises(NonFiniteScoresError, match="SASRec"):
        score_rank(model, ex, batch_size=4)


def test_multi_target_ranking_k_wider_than_topk_and_duplicates():
    topk = np.array([[3, 1]])
    offsets, relevant = (
        np.array([0, 3]),
        np.array([1, 1, 7]),
    )  # item 1 listed twice: relevant = {1, 7}
    out = multi_target_ranking(topk, offsets, relevant, ks=(2, 5))
    assert out["recall@2"] == pytest.approx([0.5]) and out["recall@5"] == pytest.approx([0.5])
    ideal = 1 + 1 / math.log2(3)
    assert out["ndcg@5"] == pytest.approx([(1 / math.log2(3)) / ideal])


def test_running_out_of_memory_is_one_line_that_says_so():
    """A MemoryError anywhere (a table too large for the address space, numpy's allocation
    failures included) ends in one error line with the fix, not a traceback."""
    code = (
        "import numpy as np\nfrom utils.runtime.errors import run_script\n"
        "def main():\n    np.empty(2**62, dtype=np.uint8)\nrun_script(main)"
    )
    proc = _python(code)
    assert_one_line_error(proc, code=1)
    assert "out of memory (Unable to allocate" in proc.stderr and "ulimit -v" in proc.stderr
