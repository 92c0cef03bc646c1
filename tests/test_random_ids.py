"""--quantizer random: reproducible, well-formed, content-free IDs; readers accept them, new items
refused."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import semantic_id_generator
from src.semantic_ids import generator as gen
from src.semantic_ids.analysis import purity_report
from src.semantic_ids.config import GeneratorConfig
from src.semantic_ids.new_items import load_quantizer
from tests.helpers import run_generator as run
from tests.synthetic import write_movielens
from utils.data.load import load_dataset
from utils.data.semantic import load_semantic_ids, read_semantic_ids_file
from utils.reporting.runinfo import RunRecord
from utils.runtime.errors import DataError, run_script


def test_same_seed_same_bytes_and_ids_are_well_formed(tmp_path, encoder):
    data = write_movielens(tmp_path / "ml", n_items=40)
    assert run(data, tmp_path / "c", "--quantizer", "random") == 0
    first = (data / "semantic_ids.json").read_bytes()
    assert run(data, tmp_path / "c", "--quantizer", "random") == 0
    assert (data / "semantic_ids.json").read_bytes() == first
    assert run(data, tmp_path / "c", "--quantizer", "random", "--seed", "1") == 0
    assert (data / "semantic_ids.json").read_bytes() != first

    sids = load_semantic_ids(data, load_dataset(data))
    # the default quantizer's reduced codebook: 38 warm items at 2 per code allow the requested 4
    assert sids.codebook_sizes == [4, 4, 4, 4] and sids.codes.shape == (40, 4)
    assert (sids.codes >= 0).all() and (sids.codes < np.array(sids.codebook_sizes)).all()
    assert len({tuple(r) for r in sids.codes}) == 40
    header, _, _ = read_semantic_ids_file(data / "semantic_ids.json")
    assert header["quantizer"] == "random" and header["codebooks_file"] == "random_codes.npz"
    assert (
        header["run_record"]["config"]["quantizer"] == "random"
        and "rqvae_epochs" not in header["run_record"]["config"]
    )
    stats = json.loads((data / "semantic_id_stats.json").read_text())
    assert stats["quantizer"] == "random" and [u["codebook_size"] for u in stats["usage"]] == [
        4,
        4,
        4,
    ]
    assert stats["collisions"]["distinct_prefixes"] <= 40
    assert "per_level" in stats["quantization_error"]["all_items"]
    # the readers accept the set and refuse a mix with another run's table
    q = load_quantizer(data, header)
    np.testing.assert_array_equal(q.codes, sids.codes[:, :3])
    other = write_movielens(tmp_path / "other", n_items=40)
    run(other, tmp_path / "c", "--quantizer", "random", "--seed", "5")
    (data / "random_codes.npz").write_bytes((other / "random_codes.npz").read_bytes())
    with pytest.raises(DataError, match="another generator run"):
        load_quantizer(data, header)


def test_small_catalogue_uses_the_reduced_codebook(tmp_path, encoder):
    data = write_movielens(tmp_path / "ml", n_items=40)
    assert (
        run(
            data,
            tmp_path / "c",
            "--quantizer",
            "random",
            "--min-items-per-code",
            "10",
            "--collision-size",
            "40",
        )
        == 0
    )
    sids = load_semantic_ids(data, load_dataset(data))
    assert sids.codebook_sizes == [3, 3, 3, 40]  # 38 fitted items // 10, then the collision level


def test_random_codes_carry_no_content():
    """Two clear clusters of embeddings: rqkmeans' level 1 separates them, random codes do not."""
    n = 400
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b"], n // 2)
    centres = np.where(labels[:, None] == "a", 5.0, -5.0) * np.eye(8)[0]
    x = (centres + rng.normal(size=(n, 8))).astype(np.float32)
    ds = type("DS", (), {"n_items": n, "name": "toy", "checksum": "x"})()
    purity = {}
    for quantizer in ("rqkmeans", "random"):
        cfg = GeneratorConfig(
            codebook_size=2, min_items_per_code=2, collision_size=n, quantizer=quantizer
        )
        codes = gen.generate(ds, cfg, x, RunRecord("t", {})).codes
        purity[quantizer] = purity_report(codes[:, 0], list(labels), np.random.default_rng(1))
    assert purity["rqkmeans"]["purity"] > 0.99
    assert abs(purity["random"]["purity"] - purity["random"]["random_assignment_mean"]) < 0.05


def test_encode_texts_refuses_random_ids_in_one_line(tmp_path, encoder, monkeypatch, capsys):
    data = write_movielens(tmp_path / "ml", n_items=40)
    assert run(data, tmp_path / "c", "--quantizer", "random") == 0
    new = tmp_path / "new.txt"
    new.write_text("a brand-new item\n")
    argv = ["--data-dir", str(data), "--encode-texts", str(new), "--quiet", "--device", "cpu"]
    monkeypatch.setattr(sys, "argv", ["semantic_id_generator.py", *argv])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_script(lambda: semantic_id_generator.main(argv), user_errors=(ValueError,))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--encode-texts" in err[0] and "random" in err[0], err
    assert encoder.loads == 1, "the refusal comes before any text is embedded"
