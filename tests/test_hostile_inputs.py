"""Every script, run through its command line on broken copies of every format it reads.

For each broken input: exit code 1, one ``error:`` line, no traceback, no marker
file from any payload, and the good outputs already in place unchanged. The
formats are the real ones (P5's bundle, MovieLens 100K, our own semantic-ID,
split, checkpoint and results files), built small by tests/synthetic.py.
"""

from __future__ import annotations

import gzip
import pickle
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import (
    CountingEncoder,
    Payload,
    assert_one_line_error,
    run_cli,
    run_generator,
    snapshot,
)
from tests.synthetic import write_movielens, write_p5

SCRIPTS = (
    "mf_train_eval.py",
    "neural_train_eval.py",
    "tiger_train_eval.py",
    "semantic_id_generator.py",
    "analyze_semantic_ids.py",
)


def run_all(commands: list[tuple[str, ...]]) -> list[subprocess.CompletedProcess]:
    """Run the commands two at a time (the suite's machine has two cores)."""
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda cmd: run_cli(*cmd), commands))


def good_outputs(root: Path) -> Path:
    """Results, a plot and semantic-ID files from an earlier good run; no failure may touch them."""
    out = root / "outputs"
    (out / "plots").mkdir(parents=True)
    (out / "results.json").write_text('{"good": true}\n')
    (out / "plots" / "good.png").write_bytes(b"\x89PNG good")
    (out / "ids").mkdir()
    (out / "ids" / "semantic_ids.json").write_text('{"good": true}\n')
    return out


def script_command(script: str, data: Path, out: Path, *extra: str) -> tuple[str, ...]:
    flags = ["--data-dir", str(data), "--device", "cpu", "--quiet"]
    if script == "semantic_id_generator.py":
        flags += ["--output-dir", str(out / "ids"), "--cache-dir", str(out.parent / "cache")]
    else:
        flags += ["--out", str(out / "results.json"), "--plot-dir", str(out / "plots")]
    if script == "tiger_train_eval.py":
        flags += ["--checkpoint-dir", str(out / "checkpoints")]
    return (script, *flags, *extra)


# ---------------------------------------------------------------- broken data folders


def _truncate_meta(folder: Path, marker: Path) -> None:
    data = (folder / "meta.json.gz").read_bytes()
    (folder / "meta.json.gz").write_bytes(data[: len(data) // 2])


def _meta_payload(folder: Path, marker: Path) -> None:
    with gzip.open(folder / "meta.json.gz", "at") as f:
        f.write(f"__import__('os').system('touch {marker}')\n")


def _non_utf8_sequences(folder: Path, marker: Path) -> None:
    path = folder / "sequential_data.txt"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\n\xff\xfe", 1))


def _datamaps_not_an_object(folder: Path, marker: Path) -> None:
    (folder / "datamaps.json").write_text('["user2id", "item2id"]')


def _rating_pickle_payload(folder: Path, marker: Path) -> None:
    (folder / "rating_splits_augmented.pkl").write_bytes(pickle.dumps(Payload(marker)))


def _cut_timestamp(folder: Path, marker: Path) -> None:
    text = (folder / "u.data").read_text()
    (folder / "u.data").write_text(text[:-4])


BREAKS: dict[str, tuple[str, Callable[[Path, Path], None]]] = {
    "p5 truncated meta.json.gz": ("toys", _truncate_meta),
    "p5 meta line with code": ("toys", _meta_payload),
    "p5 non-UTF-8 sequential_data.txt": ("toys", _non_utf8_sequences),
    "p5 datamaps.json not an object": ("toys", _datamaps_not_an_object),
    "p5 rating pickle with a payload": ("toys", _rating_pickle_payload),
    "movielens u.data cut in a timestamp": ("ml-100k", _cut_timestamp),
}


def _write(kind: str, folder: Path) -> Path:
    if kind == "toys":
        return write_p5(folder, n_users=30, n_items=24)
    return write_movielens(folder, n_users=20, n_items=24)


@pytest.mark.parametrize("breakage", sorted(BREAKS))
def test_every_script_refuses_a_broken_data_folder(tmp_path, breakage):
    kind, damage = BREAKS[breakage]
    marker, out = tmp_path / "pwned", good_outputs(tmp_path)
    broken = _write(kind, tmp_path / "broken")
    damage(broken, marker)
    prepared = _write(
        kind, tmp_path / "prepared"
    )  # a good folder that a failed prepare must not touch
    before, prepared_before = snapshot(out), snapshot(prepared)
    commands = [
        (
            "prepare_data.py",
            "--dataset",
            kind,
            "--source",
            str(broken),
            "--data-dir",
            str(prepared),
            "--no-verify",
            "--quiet",
        )
    ]
    commands += [script_command(script, broken, out) for script in SCRIPTS]
    for proc in run_all(commands):
        assert_one_line_error(proc, str(broken.name))
    assert not marker.exists()
    assert snapshot(out) == before and snapshot(prepared) == prepared_before


# ---------------------------------------------------------------- our own outputs


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """A P5 folder with semantic IDs (fake encoder), cached splits and cached embeddings."""
    from src.semantic_ids import generator as gen
    from utils.data.load import load_dataset
    from utils.data.splits import get_split

    root = tmp_path_factory.mktemp("generated")
    data = write_p5(root / "p5", n_users=30, n_items=40)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gen, "load_sentence_encoder", CountingEncoder().load)
        assert run_generator(data, root / "cache") == 0
    ds = load_dataset(data)
    for kind in ("temporal", "leave_one_out"):
        get_split(ds, kind, cache_dir=data / "splits")
    return data


def _copy(generated: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(generated, tmp_path / "data"))


def _check(
    tmp_path: Path, commands: list[tuple[str, ...]], *fragments: str, marker: Path | None = None
) -> None:
    out = tmp_path / "outputs"
    before = snapshot(out)
    for proc in run_all(commands):
        assert_one_line_error(proc, *fragments)
    assert snapshot(out) == before
    assert marker is None or not marker.exists()


def test_truncated_semantic_ids_are_refused_by_every_reader(generated, tmp_path):
    data, out = _copy(generated, tmp_path), good_outputs(tmp_path)
    ids = data / "semantic_ids.json"
    ids.write_bytes(ids.read_bytes()[:300])
    commands = [
        script_command("mf_train_eval.py", data, out, "--models", "mf_semantic"),
        script_command("neural_train_eval.py", data, out, "--modes", "semantic"),
        script_command("tiger_train_eval.py", data, out, "--models", "tiger"),
        script_command("analyze_semantic_ids.py", data, out),
        script_command(
            "semantic_id_generator.py",
            data,
            out,
            "--output-dir",
            str(data),
            "--encode-texts",
            str(tmp_path / "new.txt"),
        ),
    ]
    (tmp_path / "new.txt").write_text("a new lipstick\n")
    _check(
        tmp_path,
        commands,
        "semantic_ids.json",
        "invalid JSON",
        "semantic_id_generator.py --data-dir",
    )


def test_mixed_or_damaged_generator_files_are_refused(generated, tmp_path):
    data, out = _copy(generated, tmp_path), good_outputs(tmp_path)
    q = np.load(data / "codebooks.npz")
    np.savez(
        data / "codebooks.npz", **{k: q[k] + 1.0 for k in q.files}
    )  # codebooks of "another run"
    analyze = [script_command("analyze_semantic_ids.py", data, out)]
    _check(tmp_path, analyze, "codebooks.npz", "another generator run")
    shutil.copy(generated / "codebooks.npz", data)
    (data / "semantic_id_stats.json").write_bytes(b'{"usage": "\xff"}')
    _check(tmp_path, analyze, "semantic_id_stats.json", "UTF-8")


def test_damaged_split_caches_are_refused(generated, tmp_path):
    data, out = _copy(generated, tmp_path), good_outputs(tmp_path)
    for cache in (data / "splits").glob("*.npz"):
        cache.write_bytes(cache.read_bytes()[:200])
    commands = [
        script_command(s, data, out, *extra)
        for s, extra in (
            ("mf_train_eval.py", ("--models", "bias")),
            ("neural_train_eval.py", ("--modes", "baseline")),
            ("tiger_train_eval.py", ("--models", "sasrec", "--protocol", "cold")),
        )
    ]
    _check(tmp_path, commands, "cached split is damaged", "delete it")


def test_a_planted_checkpoint_never_runs(generated, tmp_path):
    data, out = _copy(generated, tmp_path), good_outputs(tmp_path)
    marker = tmp_path / "pwned"
    (out / "checkpoints").mkdir()
    torch.save(
        {"model": {}, "optimizer": {}, "epoch": 0, "payload": Payload(marker)},
        out / "checkpoints" / f"tiger-sasrec-{data.name}-quick-paper-seed0.pt",
    )
    command = script_command("tiger_train_eval.py", data, out, "--models", "sasrec", "--resume")
    _check(tmp_path, [command], "refused to load", "run without --resume", marker=marker)


def test_a_truncated_results_file_is_refused_by_the_summary(tmp_path):
    results = tmp_path / "outputs"
    results.mkdir()
    (results / "tiger_results.json").write_text('{"dataset": "beauty", "models": {"sasrec": {"te')
    command = ("summarize_results.py", "--results-dir", str(results))
    _check(tmp_path, [command], "tiger_results.json:1: invalid JSON")
