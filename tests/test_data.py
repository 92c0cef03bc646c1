"""Loader tests on small files written in each real format, including every error path."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from tests.synthetic import write_movielens, write_p5
from utils.data.load import load_dataset
from utils.runtime.errors import DataError
from utils.runtime.unpickle import UnsafePickleError, restricted_pickle_load

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_p5_layout_loads_arrays_and_meta(tmp_path):
    ds = load_dataset(write_p5(tmp_path / "beauty", n_users=12, n_items=10))
    assert (ds.kind, ds.n_users, ds.n_items) == ("p5", 12, 10)
    assert not ds.has_ratings and ds.timestamps is None
    # Users are in P5 id order and each user's items are in file order.
    seq_line = (tmp_path / "beauty" / "sequential_data.txt").read_text().splitlines()[3].split()
    assert ds.user_ids[3] == "U00003"
    assert [ds.item_ids[i] for i in ds.sequence(3)] == [f"B{int(t) - 1:09d}" for t in seq_line[1:]]
    assert ds.positions[ds.user_offsets[3] : ds.user_offsets[4]].tolist() == list(
        range(len(seq_line) - 1)
    )
    # Both meta line styles parse; HTML entities are unescaped.
    assert (
        ds.meta.title[0] == "Nails product 0 & friends"
        and ds.meta.title[1] == "Hair Care product 1 & friends"
    )
    assert ds.meta.categories[2] == ["Beauty", "Skin Care"]
    assert (
        ds.meta.brand[4] == "Brand1" and ds.meta.price[0] > 0 and np.isnan(ds.meta.sales_rank).all()
    )
    assert ds.summary()["items_without_text"] == 0


def test_p5_rating_pickle_attaches_ratings_and_time_order(tmp_path):
    ds = load_dataset(write_p5(tmp_path / "beauty", n_users=10, n_items=12, with_ratings=True))
    assert ds.has_ratings and ds.ratings.dtype == np.float32
    assert set(np.unique(ds.ratings)) <= {1.0, 2.0, 3.0, 5.0}
    for u in range(ds.n_users):
        t = ds.timestamps[ds.user_offsets[u] : ds.user_offsets[u + 1]]
        assert np.all(np.diff(t) >= 0)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/semantic_ids_pwned",))


def test_pickle_with_objects_is_refused_and_not_executed(tmp_path):
    folder = write_p5(tmp_path / "beauty", n_users=5, n_items=6)
    marker = Path("/tmp/semantic_ids_pwned")
    marker.unlink(missing_ok=True)
    with open(folder / "rating_splits_augmented.pkl", "wb") as f:
        pickle.dump({"train": [Evil()], "val": [], "test": []}, f)
    with pytest.raises(DataError, match="refused to load"):
        load_dataset(folder)
    assert not marker.exists()
    with pytest.raises(UnsafePickleError):
        restricted_pickle_load(folder / "rating_splits_augmented.pkl")


def test_restricted_unpickler_accepts_plain_data(tmp_path):
    data = {"train": [{"a": 1, "b": 2.5, "c": "x", "d": (1, 2), "e": None, "f": True}], "s": {1, 2}}
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(data, protocol=2))
    assert restricted_pickle_load(path) == data


def test_movielens_latin1_items_and_chronological_order(tmp_path):
    ds = load_dataset(write_movielens(tmp_path / "ml-100k", n_users=6, n_items=9))
    assert (ds.kind, ds.n_users, ds.n_items) == ("movielens", 6, 9)
    assert ds.meta.title[0] == "Caf\u00e9 Movie 0 (1990)"
    assert ds.meta.year[3] == 1993.0 and ds.meta.categories[0] == ["Action"]
    assert ds.has_ratings and ds.ratings.min() >= 1 and ds.ratings.max() <= 5
    for u in range(ds.n_users):
        assert np.all(np.diff(ds.timestamps[ds.user_offsets[u] : ds.user_offsets[u + 1]]) >= 0)


def test_missing_file_names_the_file_and_the_fix(tmp_path):
    folder = write_p5(tmp_path / "beauty")
    (folder / "datamaps.json").unlink()
    with pytest.raises(DataError, match=r"datamaps\.json: missing file.*prepare_data\.py"):
        load_dataset(folder)
    with pytest.raises(DataError, match="no such data folder"):
        load_dataset(tmp_path / "nowhere")


def test_truncated_gzip_is_reported(tmp_path):
    folder = write_p5(tmp_path / "beauty")
    raw = (folder / "meta.json.gz").read_bytes()
    (folder / "meta.json.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_dataset(folder)


def test_malformed_lines_fail_with_line_numbers(tmp_path):
    folder = write_p5(tmp_path / "beauty", n_users=20)
    lines = (folder / "sequential_data.txt").read_text().splitlines()
    lines[2] = "3 4 five"
    lines[6] = "garbage"
    (folder / "sequential_data.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"2 of 20 lines are malformed \(first at line 3, 7\)"):
        load_dataset(folder)


def test_a_tiny_share_of_bad_lines_is_skipped_with_a_warning(tmp_path, caplog):
    folder = write_movielens(tmp_path / "ml", n_users=120, n_items=40)
    with open(folder / "u.data", "a") as f:
        f.write("not a rating line\n")
    lines = (folder / "u.data").read_text().splitlines()
    assert len(lines) > 1000  # one bad line in over a thousand is under the 0.1% limit
    ds = load_dataset(folder)
    assert ds.n_interactions == len(lines) - 1
    assert "skipped 1 malformed line" in caplog.text


def test_unknown_ids_in_sequences(tmp_path):
    folder = write_p5(tmp_path / "beauty")
    with open(folder / "sequential_data.txt", "a") as f:
        f.write("1 9999\n")
    with pytest.raises(
        DataError, match=r"item ids missing from datamaps\.json\['item2id'\] \(first at line 41\)"
    ):
        load_dataset(folder)


def test_meta_lines_are_never_evaluated(tmp_path):
    folder = write_p5(tmp_path / "beauty", n_users=40, n_items=30)
    with gzip.open(folder / "meta.json.gz", "at") as f:
        f.write("__import__('os').system('touch /tmp/semantic_ids_meta_pwned')\n")
    Path("/tmp/semantic_ids_meta_pwned").unlink(missing_ok=True)
    with pytest.raises(DataError, match="malformed"):
        load_dataset(folder)  # 1 bad line of 31 is far above the tolerated share
    assert not Path("/tmp/semantic_ids_meta_pwned").exists()


def test_items_without_text_are_counted(tmp_path):
    folder = write_p5(tmp_path / "beauty", n_users=10, n_items=8)
    with gzip.open(folder / "meta.json.gz", "rt") as f:
        lines = f.read().splitlines()
    with gzip.open(folder / "meta.json.gz", "wt") as f:
        f.write("\n".join(lines[:-2]) + "\n")  # two items lose their metadata line
    ds = load_dataset(folder)
    assert ds.summary()["items_without_text"] == 2


def test_rating_pickle_with_wrong_layout(tmp_path):
    folder = write_p5(tmp_path / "beauty", n_users=5, n_items=6)
    with open(folder / "rating_splits_augmented.pkl", "wb") as f:
        pickle.dump([1, 2, 3], f)
    with pytest.raises(DataError, match="'train', 'val' and 'test'"):
        load_dataset(folder)


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"real data folder {SHARED} is absent")
def test_real_data_known_counts():
    beauty = load_dataset(SHARED / "beauty")
    assert (beauty.n_users, beauty.n_items, beauty.n_interactions) == (22363, 12101, 198502)
    assert not beauty.has_ratings
    assert beauty.summary()["share_with_title"] > 0.99
    ml = load_dataset(SHARED / "ml-100k")
    assert (ml.n_users, ml.n_items, ml.n_interactions) == (943, 1682, 100000)
    assert ml.has_ratings and float(ml.ratings.mean()) == pytest.approx(3.52986, abs=1e-4)
