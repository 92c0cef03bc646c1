"""Collaborative semantic IDs (src/semantic_ids/collaborative.py, semantic_id_generator.py
--collaborative): text embeddings joined with a trained SASRec's item embeddings."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tiger_train_eval
from src.semantic_ids.collaborative import join_embeddings, pad_text_only
from src.semantic_ids.embeddings import GRID
from tests.helpers import run_generator as run
from tests.synthetic import write_movielens, write_p5
from tests.test_verify import semantic_ids_for
from utils.data.load import load_dataset
from utils.data.semantic import load_semantic_ids, read_semantic_ids_file
from utils.runtime.errors import CheckpointError


def test_joined_vectors_are_unit_length_and_cold_items_text_only():
    rng = np.random.default_rng(0)
    text, collab = rng.normal(size=(5, 3)) * 7, rng.normal(size=(5, 2)) * 0.1
    known = np.array([True, True, True, False, True])
    joined = join_embeddings(text, collab, 2.0, known)
    assert joined.shape == (5, 5) and joined.dtype == np.float64
    # canonical vectors: each value within half a grid step of the exact one
    np.testing.assert_allclose(np.linalg.norm(joined[known], axis=1), 1.0, atol=4 * GRID)
    # the halves keep their directions; the collaborative one weighs twice the text one
    unit = text / np.linalg.norm(text, axis=1, keepdims=True)
    np.testing.assert_allclose(joined[:, :3], unit / np.sqrt(5.0), rtol=0, atol=GRID / 2)
    np.testing.assert_allclose(
        np.linalg.norm(joined[known, 3:], axis=1), 2 / np.sqrt(5.0), rtol=0, atol=4 * GRID
    )
    assert not joined[3, 3:].any()
    # a new item (no interactions) is placed exactly as a cold catalogue item with its text
    np.testing.assert_array_equal(pad_text_only(text[3:4], 2.0, 2), joined[3:4])
    with pytest.raises(ValueError, match="one collaborative vector per text embedding"):
        join_embeddings(text, collab[:4], 1.0, None)


@pytest.fixture(scope="module")
def sasrec_checkpoint(tmp_path_factory):
    """A tiny P5 data set and a one-epoch SASRec checkpoint trained on it."""
    root = tmp_path_factory.mktemp("collab")
    data = semantic_ids_for(write_p5(root / "tinyp5", n_users=40, n_items=40))
    run_dir = root / "run"
    tiger_train_eval.main(
        ["--data-dir", str(data), "--models", "sasrec", "--epochs", "1", "--quiet"]
        + ["--run-dir", str(run_dir), "--set", "sasrec.d_model=16"]
    )
    (ckpt,) = (run_dir / "checkpoints").glob("tiger-sasrec-*.pt")
    return data, ckpt


def test_collaborative_ids_differ_from_text_ids_and_number_every_item(
    sasrec_checkpoint, tmp_path, encoder
):
    """The generator with --collaborative: other codes than the text-only IDs on the same texts,
    every item's full ID unique, the checkpoint recorded; new items encode with the text half
    only, and a checkpoint of another data set is refused in one line."""
    data, ckpt = sasrec_checkpoint
    cache, text_dir, collab_dir = tmp_path / "cache", tmp_path / "text", tmp_path / "collab"
    assert run(data, cache, "--semantic-dir", str(text_dir)) == 0
    assert run(data, cache, "--semantic-dir", str(collab_dir), "--collaborative", str(ckpt)) == 0
    ds = load_dataset(data)
    text_ids = load_semantic_ids(text_dir, ds).codes
    collab_ids = load_semantic_ids(collab_dir, ds).codes
    assert len({tuple(r) for r in collab_ids}) == ds.n_items
    assert (collab_ids[:, :3] != text_ids[:, :3]).any()
    header, _, _ = read_semantic_ids_file(collab_dir / "semantic_ids.json")
    joined = header["collaborative"]
    assert joined["width"] == 16 and joined["weight"] == 1.0
    assert header["run_record"]["config"]["collaborative"] == str(ckpt)
    text_header, _, _ = read_semantic_ids_file(text_dir / "semantic_ids.json")
    assert "collaborative" not in text_header["run_record"]["config"]  # text IDs as before
    assert header["embedding_dim"] == text_header["embedding_dim"] + 16

    new = tmp_path / "new.jsonl"
    new.write_text(json.dumps({"id": "n1", "text": "a brand-new shampoo"}) + "\n")
    out = tmp_path / "new_ids.json"
    args = ["--semantic-dir", str(collab_dir), "--encode-texts", str(new), "--out", str(out)]
    assert run(data, cache, *args) == 0
    assert len(json.loads(out.read_text())["items"]["n1"]) == 4

    other = write_movielens(tmp_path / "ml", n_users=30, n_items=40)
    with pytest.raises(CheckpointError, match="trained on the tinyp5 data set"):
        run(other, cache, "--semantic-dir", str(tmp_path / "x"), "--collaborative", str(ckpt))
