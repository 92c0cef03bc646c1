"""Saved predictions (utils/evaluation/predictions.py): round trip, no pickles, tamper and damage
detection."""

from __future__ import annotations

import numpy as np
import pytest

from utils.evaluation.predictions import (
    id_strings,
    load_predictions,
    predictions_dir,
    save_predictions,
)
from utils.runtime.errors import DataError


def test_round_trip_keeps_columns_and_meta(tmp_path):
    """What is saved is what is read back, column for column, with the meta and the format tag."""
    items = np.array([["b", "a"], ["c", ""]])
    scores = np.array([[0.5, 0.25], [1.0, -np.inf]])
    record = save_predictions(
        tmp_path / "p.npz",
        {"kind": "ranking", "model": "m", "seed": 3},
        users=np.array(["u1", "u2"]),
        items=items,
        scores=scores,
    )
    p = load_predictions(record["file"], record["sha256"])
    assert (
        p.meta["model"] == "m" and p.meta["seed"] == 3 and p.meta["format"].startswith("semantic")
    )
    assert np.array_equal(p["items"], items) and np.array_equal(p["scores"], scores)
    assert "users" in p and "labels" not in p


def test_ids_map_to_strings_with_empty_for_missing():
    """Index -1 (no item: a short beam) becomes '', every other index its original ID."""
    ids = np.array(["A0", "B1", "C2"], dtype=object)
    assert id_strings(ids, np.array([[2, -1], [0, 1]])).tolist() == [["C2", ""], ["A0", "B1"]]


def test_python_objects_are_refused(tmp_path):
    """An object column would need a pickle to load: refused at write time."""
    with pytest.raises(ValueError, match="Python objects"):
        save_predictions(
            tmp_path / "p.npz", {"kind": "pointwise"}, users=np.array(["a", 1], dtype=object)
        )
    with pytest.raises(ValueError, match="kind"):
        save_predictions(tmp_path / "p.npz", {"kind": "other"}, users=np.array(["a"]))


def test_a_changed_file_is_refused_by_its_checksum(tmp_path):
    """The results file's sha256 pins the predictions: a rewritten file fails to load."""
    first = save_predictions(tmp_path / "p.npz", {"kind": "pointwise"}, scores=np.array([0.1]))
    save_predictions(tmp_path / "p.npz", {"kind": "pointwise"}, scores=np.array([0.2]))
    with pytest.raises(DataError, match="sha256"):
        load_predictions(first["file"], first["sha256"])


def test_damaged_or_missing_file_gives_one_clear_error(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a predictions file"):
        load_predictions(tmp_path / "bad.npz")
    with pytest.raises(DataError, match="no such predictions file"):
        load_predictions(tmp_path / "missing.npz")


def test_predictions_sit_beside_their_results_file(tmp_path):
    assert predictions_dir(tmp_path / "mf_results_x.json") == tmp_path / "mf_results_x.predictions"
