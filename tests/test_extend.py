"""Extending semantic IDs across a catalogue change (src/semantic_ids/extend.py,
semantic_id_generator.py --extend): unchanged items keep their IDs, the rest take free numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from src.semantic_ids.extend import compare_with_previous, extend_codes
from tests.helpers import run_generator as run
from tests.synthetic import write_movielens
from utils.data.load import load_dataset
from utils.data.semantic import load_semantic_ids, read_semantic_ids_file
from utils.runtime.errors import DataError


def test_extend_codes_by_hand():
    """a keeps its ID; b's text moved its codes onto a's, so it numbers on after a; c is gone;
    d is new on fresh codes; e is new on a's codes too."""
    old_ids = ["a", "b", "c"]
    old = np.array([[1, 2, 0], [3, 4, 0], [3, 4, 1]])
    items = ["a", "b", "d", "e"]
    prefix = np.array([[1, 2], [1, 2], [5, 5], [1, 2]])
    codes, report = extend_codes(old_ids, old, items, prefix, collision_size=4)
    np.testing.assert_array_equal(codes, [[1, 2, 0], [1, 2, 1], [5, 5, 0], [1, 2, 2]])
    assert report == {"kept": 1, "re_encoded": 1, "new": 2, "dropped": 1}
    # a gap left by a dropped item is not reused: kept IDs never change, new ones go after
    codes, _ = extend_codes(
        ["x", "y"], np.array([[0, 1], [0, 3]]), ["y", "z"], np.array([[0], [0]]), 8
    )
    np.testing.assert_array_equal(codes, [[0, 3], [0, 4]])
    with pytest.raises(ValueError, match="collision numbers; refit"):
        extend_codes(["y"], np.array([[0, 1]]), ["y", "z"], np.array([[0], [0]]), 2)


def _retitle(folder, item: int, title: str) -> None:
    lines = (folder / "u.item").read_bytes().decode("latin-1").splitlines()
    fields = lines[item].split("|")
    fields[1] = title
    lines[item] = "|".join(fields)
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))


def test_extend_keeps_every_unchanged_id_and_a_refit_reports_what_it_moved(tmp_path, encoder):
    data = write_movielens(tmp_path / "ml", n_items=40)
    cache = tmp_path / "cache"
    assert run(data, cache) == 0
    _, ids_before, codes_before = read_semantic_ids_file(data / "semantic_ids.json")
    before = dict(zip(ids_before, map(tuple, codes_before)))
    codebooks = (data / "codebooks.npz").read_bytes()
    for item in (3, 17):  # edit two items' texts
        _retitle(data, item, f"An entirely different film {item} (2001)")

    assert run(data, cache, "--extend") == 0
    ds = load_dataset(data)
    sids = load_semantic_ids(data, ds)  # names the edited data set's checksum
    after = dict(zip(ds.item_ids, map(tuple, sids.codes)))
    edited = {ds.item_ids[3], ds.item_ids[17]}
    assert all(after[i] == before[i] for i in after if i not in edited)
    assert len(set(after.values())) == len(after)  # still unique
    assert (data / "codebooks.npz").read_bytes() == codebooks
    header, _, _ = read_semantic_ids_file(data / "semantic_ids.json")
    report = header["extended_from"]
    assert report["kept"] + report["re_encoded"] == 40 and report["new"] == report["dropped"] == 0
    stats = json.loads((data / "semantic_id_stats.json").read_text())
    assert stats["data_checksum"] == ds.checksum and stats["extended_from"] == report

    # a refit over them reports how many of the same items' IDs it moved
    assert run(data, cache, "--seed", "3") == 0
    moved = json.loads((data / "semantic_id_stats.json").read_text())["previous_ids"]
    assert moved["items_in_both"] == 40 and moved["ids_changed"] > 0
    _, _, refit = read_semantic_ids_file(data / "semantic_ids.json")
    assert compare_with_previous(data / "semantic_ids.json", list(ds.item_ids), refit) == {
        "items_in_both": 40,
        "ids_changed": 0,
    }


def test_extend_needs_saved_ids(tmp_path, encoder):
    data = write_movielens(tmp_path / "ml", n_items=40)
    with pytest.raises(DataError, match="semantic_ids.json"):
        run(data, tmp_path / "cache", "--extend")
