"""Semantic-ID generation (src/semantic_ids/generator.py, new_items.py, semantic_id_generator.py)
end to end: warm-only fitting, new items, file format, reproducibility, the real bundled encoder."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

import semantic_id_generator
from src.semantic_ids import generator as gen
from src.semantic_ids.config import GeneratorConfig
from src.semantic_ids.new_items import encode_new_items, read_new_items
from src.semantic_ids.rqkmeans import ResidualQuantizer
from tests.helpers import fake_vectors
from tests.helpers import run_generator as run
from tests.synthetic import make_catalogue, write_movielens, write_p5
from utils.data.load import load_dataset
from utils.data.semantic import ids_digest, load_semantic_ids, read_semantic_ids_file
from utils.reporting.runinfo import RunRecord
from utils.runtime.errors import DataError

# ------------------------------------------------------------------ generator end to end


def test_generator_end_to_end_reproducible_and_cached(tmp_path, encoder):
    data = write_movielens(tmp_path / "ml", n_items=40)
    cache = tmp_path / "cache"
    assert run(data, cache) == 0
    first = (data / "semantic_ids.json").read_bytes()
    assert encoder.loads == 1
    assert run(data, cache) == 0
    assert encoder.loads == 1, "second run with unchanged texts must not load the encoder"
    assert (data / "semantic_ids.json").read_bytes() == first

    ds = load_dataset(data)
    sids = load_semantic_ids(data, ds)
    assert sids.codes.shape == (40, 4) and sids.codebook_sizes == [4, 4, 4, 4] and sids.levels == 3
    header, ids, _ = read_semantic_ids_file(data / "semantic_ids.json")
    assert ids == list(ds.item_ids) and header["fit_on"] == "warm" and header["fit_items"] == 38
    assert (
        "wall_seconds" not in header["run_record"] and "stage_seconds" not in header["run_record"]
    )
    # full IDs are unique, and collision numbers count up from 0 inside each group
    assert len({tuple(r) for r in sids.codes}) == 40
    for prefix in {tuple(r[:3]) for r in sids.codes}:
        group = sids.codes[(sids.codes[:, :3] == prefix).all(1), 3]
        assert sorted(group) == list(range(len(group)))

    stats = json.loads((data / "semantic_id_stats.json").read_text())
    assert stats["collisions"]["colliding_items"] == sum(
        int(k) * v for k, v in stats["collisions"]["group_size_histogram"].items() if int(k) > 1
    )
    assert [u["used_codes"] + u["unused_codes"] for u in stats["usage"]] == [4, 4, 4]
    assert set(stats["run_record"]["stage_seconds"]) >= {
        "embed",
        "fit codebooks",
        "encode items",
        "write",
    }
    assert stats["embeddings"]["cached"] == 40 and stats["text"]["fallback_items"] == 0
    errors = stats["quantization_error"]["fit_items"]["per_level"]
    assert errors == sorted(errors, reverse=True)


def test_a_different_seed_changes_the_codebooks(tmp_path, encoder):
    data = write_movielens(tmp_path / "ml", n_items=40)
    run(data, tmp_path / "c")
    a = json.loads((data / "semantic_ids.json").read_text())["codebooks_sha256"]
    run(data, tmp_path / "c", "--seed", "1")
    assert json.loads((data / "semantic_ids.json").read_text())["codebooks_sha256"] != a


def test_expected_digest_guards_the_ids_and_show_digest_prints_it(tmp_path, encoder, capsys):
    """make all passes the study's digest: other IDs are refused with both digests and nothing
    is written; --show-digest names the IDs as results files and checkpoints do."""
    data = write_movielens(tmp_path / "ml", n_items=40)
    assert run(data, tmp_path / "c") == 0
    digest = ids_digest(load_semantic_ids(data, load_dataset(data)))
    capsys.readouterr()
    assert run(data, tmp_path / "c", "--show-digest") == 0
    assert capsys.readouterr().out.strip() == digest
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    with pytest.raises(DataError, match=f"have digest [0-9a-f]{{12}}, the study's have {digest}"):
        run(data, tmp_path / "c", "--seed", "1", "--expect-digest", digest)
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before
    assert run(data, tmp_path / "c", "--expect-digest", digest) == 0
    with pytest.raises(SystemExit):
        run(data, tmp_path / "c", "--expect-digest", "not-hex")


def test_codebooks_ignore_cold_items_unless_fit_on_all():
    n = 200
    ds = type("DS", (), {"n_items": n, "name": "toy", "checksum": "x"})()
    x = fake_vectors([f"Title: w{i % 7} i{i}" for i in range(n)])
    cfg = GeneratorConfig(codebook_size=4, min_items_per_code=2, collision_size=n, seed=0)
    cold = ~gen.fit_mask(n, cfg)
    assert cold.sum() == 10
    changed = x.copy()
    changed[cold] = -changed[cold]
    a = gen.generate(ds, cfg, x, RunRecord("t", {}))
    b = gen.generate(ds, cfg, changed, RunRecord("t", {}))
    assert a.header["codebooks_sha256"] == b.header["codebooks_sha256"]
    np.testing.assert_array_equal(a.codes[~cold, :3], b.codes[~cold, :3])
    # cold items are encoded with the saved codebooks, like any new item
    np.testing.assert_array_equal(a.codes[cold, :3], a.quantizer.encode(x[cold]))
    cfg_all = GeneratorConfig(
        codebook_size=4, min_items_per_code=2, collision_size=n, seed=0, fit_on="all"
    )
    c = gen.generate(ds, cfg_all, x, RunRecord("t", {}))
    d = gen.generate(ds, cfg_all, changed, RunRecord("t", {}))
    assert (
        c.header["codebooks_sha256"] != d.header["codebooks_sha256"] and c.stats["fit_items"] == n
    )


def test_encode_new_items_keeps_existing_ids():
    q = ResidualQuantizer(
        [np.array([[0.0], [10.0]], dtype=np.float32), np.array([[0.0], [1.0]], dtype=np.float32)]
    )
    existing = np.array([[0, 0, 0], [0, 0, 1], [1, 1, 0]])
    new = encode_new_items(q, existing, np.array([[0.1], [9.0], [0.2], [5.9]], dtype=np.float32), 4)
    assert new.tolist() == [[0, 0, 2], [1, 0, 0], [0, 0, 3], [1, 0, 1]]
    with pytest.raises(ValueError, match="only 4 values"):
        encode_new_items(q, existing, np.zeros((3, 1), dtype=np.float32), 4)


def test_encode_texts_cli_reproduces_training_codes(tmp_path, encoder, capsys):
    data = write_p5(tmp_path / "p5", n_items=40)
    cache = tmp_path / "cache"
    assert run(data, cache) == 0
    ds = load_dataset(data)
    sids = load_semantic_ids(data, ds)
    texts = gen.item_texts(ds, GeneratorConfig())
    path = tmp_path / "new.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"n{i}", "text": t}) + "\n" for i, t in enumerate(texts.texts[:5])
        )
    )
    capsys.readouterr()
    assert run(data, cache, "--encode-texts", str(path), "--out", str(tmp_path / "out.json")) == 0
    out = json.loads((tmp_path / "out.json").read_text())
    codes = np.array(list(out["items"].values()))
    np.testing.assert_array_equal(codes[:, :3], sids.codes[:5, :3])
    # they are extra copies of existing items, so they collide and take the next free numbers
    assert (codes[:, 3] > 0).all()
    assert capsys.readouterr().out.splitlines()[0].split("\t")[0] == "n0"


def test_errors_name_the_file_and_the_fix(tmp_path, encoder):
    data = write_movielens(tmp_path / "ml", n_items=40)
    ds = load_dataset(data)
    with pytest.raises(DataError, match="semantic_id_generator.py --data-dir"):
        load_semantic_ids(data, ds)
    other = write_movielens(tmp_path / "other", n_items=40, seed=1)
    run(other, tmp_path / "c")
    (data / "semantic_ids.json").write_bytes((other / "semantic_ids.json").read_bytes())
    with pytest.raises(DataError, match="other data"):
        load_semantic_ids(data, ds)
    (data / "semantic_ids.json").write_text("{not json")
    with pytest.raises(DataError, match="semantic_ids.json:1: invalid JSON"):
        load_semantic_ids(data, ds)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"name": "no text"}\n')
    with pytest.raises(DataError, match="line 2"):
        run(other, tmp_path / "c", "--encode-texts", str(bad))
    with pytest.raises(DataError, match="line 2"):
        read_new_items(bad)
    # a table is no list of new items (its header would become one), nor is absurd nesting
    table = tmp_path / "items.csv"
    table.write_text("id,title\nsku-1,Rose serum\n")
    with pytest.raises(DataError, match="give new items as .jsonl"):
        run(other, tmp_path / "c", "--encode-texts", str(table))
    deep = tmp_path / "deep.jsonl"
    deep.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(DataError, match="nested too deeply"):
        read_new_items(deep)
    # a codebook too large for its collision level is refused with the remedy
    with pytest.raises(ValueError, match="--collision-size"):
        run(other, tmp_path / "c", "--levels", "1", "--codebook-size", "2", "--collision-size", "2")
    # bad settings: one clear error (the CLI prints it without a traceback:
    # tests/test_hostile_inputs.py)
    with pytest.raises(SystemExit):
        run(other, tmp_path / "c", "--levels", "0")  # refused by argparse
    with pytest.raises(ValueError, match="--text-fields"):
        run(other, tmp_path / "c", "--text-fields", "title,colour")
    with pytest.raises(SystemExit):
        run(other, tmp_path / "c", "--out", str(tmp_path / "x.json"))


def test_real_bundled_encoder_end_to_end(tmp_path, monkeypatch):
    """The real offline MiniLM through the whole generator on 12 items: IDs written for every item;
    items whose metadata (hence text) is identical get the same embedding and the same prefix
    codes, told apart only by the collision code; a second run reads every vector from the cache
    (the encoder must not load) and writes a byte-identical semantic_ids.json."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    data = write_p5(tmp_path / "p5", n_users=8, n_items=12)
    catalogue = make_catalogue(12)
    twins = [(0, 1), (5, 9)]
    for a, b in twins:
        catalogue[b] = {**catalogue[a], "asin": catalogue[b]["asin"]}
    with gzip.open(data / "meta.json.gz", "wt", encoding="utf-8") as f:
        f.writelines(
            json.dumps({k: v for k, v in item.items() if k != "category"}) + "\n"
            for item in catalogue
        )
    args = [
        "--data-dir",
        str(data),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--quiet",
        "--device",
        "cpu",
        "--codebook-size",
        "2",
        "--min-items-per-code",
        "2",
        "--collision-size",
        "12",
    ]
    assert semantic_id_generator.main(args) == 0
    first = (data / "semantic_ids.json").read_bytes()

    ds = load_dataset(data)
    sids = load_semantic_ids(data, ds)
    assert sids.codes.shape == (12, 4) and sids.codebook_sizes == [2, 2, 2, 12]
    assert len({tuple(row) for row in sids.codes}) == 12
    cfg = GeneratorConfig()
    texts = gen.item_texts(ds, cfg).texts
    x, report = gen.embed(texts, cfg, tmp_path / "cache", "cpu")  # from the cache the run wrote
    assert (report.n_encoded, x.shape) == (0, (12, 384))
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    for a, b in twins:
        assert texts[a] == texts[b] and np.array_equal(x[a], x[b])
        assert (
            sids.codes[a, :3].tolist() == sids.codes[b, :3].tolist()
            and sids.codes[a, 3] != sids.codes[b, 3]
        )
    assert not np.array_equal(x[0], x[2])  # different text, different vector

    def must_not_load(*a, **k):
        raise AssertionError("the second run loaded the encoder although every text is cached")

    monkeypatch.setattr(gen, "load_sentence_encoder", must_not_load)
    assert semantic_id_generator.main(args) == 0
    assert (data / "semantic_ids.json").read_bytes() == first


SHARED_ML = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"


@pytest.mark.skipif(not SHARED_ML.is_dir(), reason=f"real MovieLens 100K not found at {SHARED_ML}")
def test_real_movielens_smoke(tmp_path, encoder):
    """Real metadata through the whole pipeline (stand-in encoder, so it stays fast)."""
    out = tmp_path / "ids"
    assert (
        semantic_id_generator.main(
            [
                "--data-dir",
                str(SHARED_ML),
                "--output-dir",
                str(out),
                "--cache-dir",
                str(tmp_path / "c"),
                "--quiet",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    ds = load_dataset(SHARED_ML)
    sids = load_semantic_ids(out, ds)
    # 1598 warm items cannot fill 256 codes at 39 items per code: reduced to 40
    assert sids.codebook_sizes == [40, 40, 40, 40] and sids.codes.shape == (1682, 4)
    stats = json.loads((out / "semantic_id_stats.json").read_text())
    assert (
        stats["text"]["fallback_items"] == 0
        and stats["fit_items"] == 1598
        and stats["cold_items"] == 84
    )
    header, ids, _ = read_semantic_ids_file(out / "semantic_ids.json")
    assert ids[:3] == ["1", "2", "3"] and header["dataset"] == "ml-100k"
