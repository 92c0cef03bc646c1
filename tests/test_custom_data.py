"""Your own catalogue (prepare_data.py --dataset custom): a synthetic CSV catalogue and an Amazon
Reviews 2023 style JSONL pair prepared and run through the generator, MF and TIGER; the cleaning
rules; every bad input refused in one line with the target untouched; Parquet."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mf_train_eval
import prepare_data
import semantic_id_generator
import tiger_train_eval
from tests.helpers import run_generator
from utils.data.custom import CleaningRules, InteractionColumns
from utils.data.custom_meta import _years
from utils.data.load import load_dataset
from utils.data.prepare_custom import CustomSource, prepare_custom
from utils.data.semantic import load_semantic_ids
from utils.runtime.errors import DataError

N_USERS, N_ITEMS, PER_USER = 30, 40, 12


def _histories(seed: int = 0) -> list[tuple[int, int, int]]:
    """(user, item, step): each user rates PER_USER distinct items, every item well covered."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(N_USERS):
        items = (rng.permutation(N_ITEMS)[: PER_USER - 2].tolist() + [u % N_ITEMS, (u + 7) % 40])[
            :PER_USER
        ]
        for step, i in enumerate(dict.fromkeys(items)):
            rows.append((u, i, step))
    return rows


def write_csv_catalogue(folder: Path) -> tuple[Path, Path]:
    """interactions.csv (ISO dates, 1-5 stars, other column names) and items.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = _histories()
    inter = pd.DataFrame(
        {
            "customer": [f"c{u:03d}" for u, _, _ in rows],
            "sku": [f"SKU-{i}" for _, i, _ in rows],
            "when": [f"2024-01-{1 + s:02d}T10:00:00Z" for _, _, s in rows],
            "stars": [1 + (u + i) % 5 for u, i, _ in rows],
        }
    )
    inter.to_csv(folder / "interactions.csv", index=False)
    kinds = ["shampoo", "lipstick", "perfume", "cream"]
    items = pd.DataFrame(
        {
            "sku": [f"SKU-{i}" for i in range(N_ITEMS)],
            "name": [f"{kinds[i % 4]} number {i} &amp; more" for i in range(N_ITEMS)],
            "maker": [f"Brand{i % 3}" for i in range(N_ITEMS)],
            "tags": [f"Beauty|{kinds[i % 4].title()}" for i in range(N_ITEMS)],
            "cost": [f"${i + 0.5:.2f}" for i in range(N_ITEMS)],
        }
    )
    items.to_csv(folder / "items.csv", index=False)
    return folder / "interactions.csv", folder / "items.csv"


def write_amazon2023(folder: Path) -> tuple[Path, Path]:
    """A reviews JSONL.gz + meta JSONL.gz pair with the Amazon Reviews 2023 fields."""
    folder.mkdir(parents=True, exist_ok=True)
    reviews = [
        {
            "rating": float(1 + (u * i) % 5),
            "title": "ok",
            "text": "fine <br> product",
            "images": [],
            "asin": f"B0VAR{i:05d}",
            "parent_asin": f"B0PAR{i:05d}",
            "user_id": f"AG{u:08d}XYZ",
            "timestamp": 1_588_687_728_000 + 86_400_000 * s + u,
            "helpful_vote": 0,
            "verified_purchase": True,
        }
        for u, i, s in _histories(seed=1)
    ]
    meta = [
        {
            "main_category": "All Beauty",
            "title": f"Product {i} by maker",
            "average_rating": 4.1,
            "rating_number": 10,
            "features": [f"feature {i}"],
            "description": [f"line one of {i}", "line two"],
            "price": None if i % 5 == 0 else 9.99 + i,
            "images": [],
            "store": f"Store{i % 4}",
            "categories": [] if i % 7 == 0 else ["Skin Care", f"Kind{i % 3}"],
            "details": {"Brand": f"Store{i % 4}"},
            "parent_asin": f"B0PAR{i:05d}",
            "bought_together": None,
        }
        for i in range(N_ITEMS)
    ]
    for name, records in (("All_Beauty.jsonl.gz", reviews), ("meta_All_Beauty.jsonl.gz", meta)):
        with gzip.open(folder / name, "wt", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)
    return folder / "All_Beauty.jsonl.gz", folder / "meta_All_Beauty.jsonl.gz"


def _prepare(*args: str) -> int:
    return prepare_data.main(["--dataset", "custom", "--quiet", *args])


def _mf_and_tiger(data: Path, tmp: Path) -> None:
    """A 1-epoch MF (item IDs and semantic IDs) and a 1-epoch TIGER on the prepared folder."""
    mf = mf_train_eval.main(
        [
            "--data-dir",
            str(data),
            "--out",
            str(tmp / "mf.json"),
            "--plot-dir",
            str(tmp / "plots"),
            "--split-cache",
            str(tmp / "splits"),
            "--models",
            "mf_id",
            "mf_semantic",
            "--epochs",
            "1",
            "--quiet",
        ]
    )
    assert set(mf["models"]) == {"mf_id", "mf_semantic"}
    tiger_train_eval.main(
        [
            "--data-dir",
            str(data),
            "--out",
            str(tmp / "tiger.json"),
            "--plot-dir",
            str(tmp / "plots"),
            "--checkpoint-dir",
            str(tmp / "ckpt"),
            "--models",
            "tiger",
            "--epochs",
            "1",
            "--threads",
            "1",
            "--quiet",
        ]
    )
    res = json.loads((tmp / "tiger.json").read_text())
    assert 0.0 <= res["models"]["tiger"]["test"]["recall@10"] <= 1.0


def test_csv_catalogue_prepares_and_runs_generator_mf_and_tiger(tmp_path, encoder):
    inter, items = write_csv_catalogue(tmp_path / "src")
    data = tmp_path / "shop"
    args = ["--interactions", str(inter), "--items", str(items), "--data-dir", str(data)]
    cols = ["--user-col", "customer", "--item-col", "sku", "--time-col", "when"]
    texts = ["--text-columns", "title=name,brand=maker,categories=tags,price=cost"]
    assert _prepare(*args, *cols, "--rating-col", "stars", *texts) == 0
    ds = load_dataset(data)
    assert (ds.kind, ds.n_users, ds.n_items) == ("custom", N_USERS, N_ITEMS)
    assert ds.has_ratings and ds.timestamps is not None
    assert list(ds.item_ids[:3]) == ["SKU-0", "SKU-1", "SKU-10"]  # text IDs sort as text
    assert ds.meta.title[0] == "shampoo number 0 & more" and ds.meta.price[1] == 1.5
    assert ds.meta.categories[2] == ["Beauty", "Perfume"]
    manifest = json.loads((data / "dataset.json").read_text())
    assert manifest["report"]["feedback"] == "explicit" and manifest["options"]["k_core"] == 5
    assert run_generator(data, tmp_path / "cache", "--collision-size", "16") == 0
    assert load_semantic_ids(data, ds).codes.shape == (N_ITEMS, 4)
    _mf_and_tiger(data, tmp_path)


def test_amazon2023_pair_prepares_and_runs_generator_mf_and_tiger(tmp_path, encoder):
    reviews, meta = write_amazon2023(tmp_path / "src")
    data = tmp_path / "all-beauty"
    args = ["--interactions", str(reviews), "--items", str(meta), "--data-dir", str(data)]
    assert _prepare(*args, "--layout", "amazon2023") == 0
    ds = load_dataset(data)
    # the default 5-core: every user and item kept has at least 5 interactions
    assert ds.item_counts().min() >= 5 and ds.user_counts().min() >= 5 and ds.n_items > 30
    assert list(ds.item_ids) == sorted(ds.item_ids) and ds.has_ratings
    assert ds.timestamps.min() >= 1_588_687_728  # milliseconds -> seconds
    at = {item: i for i, item in enumerate(ds.item_ids)}
    one, five, seven = at["B0PAR00001"], at["B0PAR00005"], at["B0PAR00007"]
    assert ds.meta.brand[one] == "Store1" and np.isnan(ds.meta.price[five])
    assert ds.meta.price[one] == pytest.approx(10.99)
    assert ds.meta.description[one] == "line one of 1 line two feature 1"
    assert ds.meta.categories[one] == ["All Beauty", "Skin Care", "Kind1"]
    assert ds.meta.categories[seven] == ["All Beauty"]
    assert run_generator(data, tmp_path / "cache", "--collision-size", "16") == 0
    _mf_and_tiger(data, tmp_path)


def test_text_columns_change_only_the_named_fields_of_a_layout_and_its_columns_are_optional(
    tmp_path,
):
    """--layout amazon2023 with --text-columns description=description on a meta file without
    'features' or 'main_category': the preset's other fields stay (the old behaviour replaced the
    whole mapping and left every item without a title); FIELD= drops one of them."""
    reviews, meta = write_amazon2023(tmp_path / "src")
    rows = [json.loads(line) for line in gzip.open(meta, "rt")]
    for r in rows:
        del r["features"], r["main_category"]
    with gzip.open(meta, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    args = ["--interactions", str(reviews), "--items", str(meta), "--layout", "amazon2023"]
    data = tmp_path / "beauty23"
    texts = ["--text-columns", "description=description,brand="]
    assert _prepare(*args, "--data-dir", str(data), *texts) == 0
    ds = load_dataset(data)
    one = list(ds.item_ids).index("B0PAR00001")
    assert ds.meta.title[one] == "Product 1 by maker" and ds.meta.brand[one] == ""
    assert ds.meta.description[one] == "line one of 1 line two"
    assert ds.meta.categories[one] == ["Skin Care", "Kind1"]
    report = json.loads((data / "dataset.json").read_text())["report"]
    assert report["items_without_text"] == 0 and "brand" not in report["text_columns_used"]
    assert report["text_columns_used"]["categories"] == ["categories"]


def test_a_catalogue_left_without_text_is_refused_unless_allowed(tmp_path):
    """A mapping that leaves most items textless (their semantic IDs would encode nothing) fails
    in one line naming the fields read and both ways out; --allow-empty-text prepares it and
    the cleaning report counts them."""
    inter, items = write_csv_catalogue(tmp_path / "src")
    frame = pd.read_csv(items)
    frame["blank"] = ""
    frame.to_csv(items, index=False)
    args = ["--interactions", str(inter), "--items", str(items)]
    cols = ["--user-col", "customer", "--item-col", "sku", "--time-col", "when"]
    target = tmp_path / "shop"
    empty = ["--text-columns", "title=blank,price=cost"]
    with pytest.raises(DataError, match=r"items would have no text .*--allow-empty-text"):
        _prepare(*args, *cols, "--data-dir", str(target), *empty)
    assert not target.exists()
    assert _prepare(*args, *cols, "--data-dir", str(target), *empty, "--allow-empty-text") == 0
    report = json.loads((target / "dataset.json").read_text())["report"]
    assert report["items_without_text"] == report["items"] > 0
    assert report["empty_share_by_field"] == {"title": 1.0, "price": 0.0}


def test_drop_incomplete_drops_rows_missing_a_value_and_counts_them(tmp_path):
    """Without the flag the first row with an empty rating or time fails, naming it; with it the
    incomplete rows (empty rating, empty time) are dropped and counted, and a row whose value is
    there but malformed still fails."""
    inter, items = write_csv_catalogue(tmp_path / "src")
    frame = pd.read_csv(inter)
    frame.loc[3, "stars"] = None
    frame.loc[10, "when"] = ""
    frame.to_csv(inter, index=False)
    args = ["--interactions", str(inter), "--items", str(items), "--k-core", "1"]
    cols = ["--user-col", "customer", "--item-col", "sku", "--time-col", "when"]
    cols += ["--rating-col", "stars", "--text-columns", "title=name"]
    with pytest.raises(DataError, match=r"row 11, column 'when': unparsable time"):
        _prepare(*args, *cols, "--data-dir", str(tmp_path / "a"))
    assert _prepare(*args, *cols, "--data-dir", str(tmp_path / "b"), "--drop-incomplete") == 0
    report = json.loads((tmp_path / "b" / "dataset.json").read_text())["report"]
    assert report["incomplete_rows_dropped"] == 2 and report["rows_read"] == len(frame)
    assert report["interactions"] == len(frame) - 2
    frame["stars"] = frame["stars"].astype(object)
    frame.loc[5, "stars"] = "five"
    frame.to_csv(inter, index=False)
    with pytest.raises(DataError, match=r"row 6, column 'stars': not a number"):
        _prepare(*args, *cols, "--data-dir", str(tmp_path / "c"), "--drop-incomplete")


def test_year_reads_common_date_formats():
    """'01-Jan-1995', '1995-01-01', '1/1/1995', 1995, epoch seconds: all 1995; text without a
    year stays empty (and a mostly empty field is warned about by the cleaning report)."""
    values = pd.Series(["01-Jan-1995", "1995-01-01", "1/1/1995", "1995", 788918400, None, "soon"])
    np.testing.assert_array_equal(_years(values), [1995, 1995, 1995, 1995, 1995, np.nan, np.nan])


# ------------------------------------------------------------------ the cleaning rules


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _items(folder: Path, ids: list[str]) -> Path:
    return _write(folder / "items.csv", "item_id,title\n" + "".join(f"{i},T {i}\n" for i in ids))


def _run(tmp: Path, inter: str, items: list[str], **rules) -> object:
    src = CustomSource(
        _write(tmp / "in" / "i.csv", inter),
        _items(tmp / "in", items),
        InteractionColumns(rating=rules.pop("rating", None), time=rules.pop("time", "timestamp")),
        missing_meta=rules.pop("missing_meta", "error"),
    )
    prepare_custom(src, tmp / "out", CleaningRules(**{"k_core": 1, **rules}))
    return load_dataset(tmp / "out")


def test_order_dedup_and_time_rules(tmp_path):
    rows = "user_id,item_id,timestamp,rating\n10,7,5,4\n9,7,3,5\n10,2,1,2\n10,7,2,1\n"
    ds = _run(tmp_path / "a", rows, ["2", "7"], rating="rating")
    # numeric IDs sort as numbers (9 before 10); user 10's repeated item 7 keeps its latest row
    assert list(ds.user_ids) == ["9", "10"] and list(ds.item_ids) == ["2", "7"]
    assert ds.sequence(1).tolist() == [0, 1] and ds.ratings.tolist() == [5, 2, 4]
    ds = _run(tmp_path / "b", rows, ["2", "7"], rating="rating", dedup="first")
    assert ds.ratings.tolist() == [5, 2, 1]
    ds = _run(tmp_path / "c", rows, ["2", "7"], dedup="none", order="first-seen")
    assert list(ds.user_ids) == ["10", "9"] and list(ds.item_ids) == ["7", "2"]
    assert ds.n_interactions == 4 and ds.ratings is None  # no rating column: implicit
    ds = _run(tmp_path / "d", rows, ["2", "7"], time=None, dedup="none")
    assert ds.timestamps is None and ds.sequence(1).tolist() == [1, 0, 1]  # file order


def test_json_ids_stay_exact_and_utf16_without_a_bom_reads(tmp_path):
    # 2**53 + 1 and 2**53 beside 1.5: through float64 they would be one user
    users = [9007199254740993, 9007199254740992, 1.5]
    lines = [
        json.dumps({"user_id": u, "item_id": i, "timestamp": i}) for u in users for i in (1, 2)
    ]
    inter = _write(tmp_path / "in" / "i.jsonl", "\n".join(lines) + "\n")
    src = CustomSource(inter, _items(tmp_path / "in", ["1", "2"]))
    prepare_custom(src, tmp_path / "json", CleaningRules(k_core=1))
    assert sorted(load_dataset(tmp_path / "json").user_ids) == sorted(map(str, users))
    rows = "user_id,item_id,timestamp\nü,a,1\nü,b,2\n"
    for order in ("le", "be"):  # --encoding utf-16, no byte-order mark: the order is detected
        folder = tmp_path / order
        folder.mkdir()
        (folder / "i.csv").write_bytes(rows.encode(f"utf-16-{order}"))
        (folder / "items.csv").write_bytes("item_id,title\na,A\nb,B\n".encode(f"utf-16-{order}"))
        src = CustomSource(folder / "i.csv", folder / "items.csv", encoding="utf-16")
        prepare_custom(src, folder / "out", CleaningRules(k_core=1))
        assert list(load_dataset(folder / "out").user_ids) == ["ü"]


def test_k_core_is_iterated_and_constant_ratings_are_implicit(tmp_path):
    # w has one fan (c), so c drops to one row, so z drops to one fan (b), so b drops too
    rows = ["a,x", "a,y", "b,x", "b,z", "c,z", "c,w", "d,x", "d,y"]
    text = "user_id,item_id,timestamp,rating\n" + "".join(
        f"{r},{k},1\n" for k, r in enumerate(rows)
    )
    ds = _run(tmp_path, text, ["x", "y", "z", "w"], rating="rating", k_core=2)
    assert list(ds.user_ids) == ["a", "d"] and list(ds.item_ids) == ["x", "y"]
    assert ds.ratings is None  # every rating is 1: implicit feedback


# ------------------------------------------------------------------ bad input: one line, no change


@pytest.fixture
def target(tmp_path):
    """A prepared folder with a file of the user's beside it: no failure may change either."""
    folder = tmp_path / "shop"
    _run(tmp_path / "ok", "user_id,item_id,timestamp\nu,a,1\nu,b,2\n", ["a", "b"])
    (tmp_path / "ok" / "out").rename(folder)
    (folder / "notes.txt").write_text("mine")
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


BAD_INPUTS = {
    "misnamed column": ("usr,item_id,timestamp\nu,a,1\n", {}, r"no column 'user_id'.*--user-col"),
    "unparsable time": (
        "user_id,item_id,timestamp\nu,a,2024-01-01\nu,b,yesterday\n",
        {},
        r"row 2, column 'timestamp': unparsable time \('yesterday'\)",
    ),
    "time far in the future": (
        "user_id,item_id,timestamp\nu,a,1\nu,b,1e300\n",
        {},
        r"row 2, column 'timestamp': not a plausible time \('1e300': after the year 2200\)",
    ),
    "empty file": ("", {}, "the file is empty"),
    "header only": ("user_id,item_id,timestamp\n", {}, "no data rows"),
    "empty id": ("user_id,item_id,timestamp\nu,a,1\n,b,2\n", {}, r"row 2, column 'user_id'"),
    "rating range": (
        "user_id,item_id,timestamp,r\nu,a,1,3\nu,b,2,10\n",
        {"rating": "r"},
        r"row 2, column 'r': rating 10 outside",
    ),
    "no metadata": (
        "user_id,item_id,timestamp\nu,a,1\nu,q,2\n",
        {},
        r"row 2, column 'item_id': item 'q' has no row in .*--missing-meta keep",
    ),
    "k-core empties": ("user_id,item_id,timestamp\nu,a,1\n", {"k_core": 5}, "lower --k-core"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_interactions_fail_in_one_line_and_change_nothing(tmp_path, target, case):
    text, options, message = BAD_INPUTS[case]
    before = _snapshot(target)
    inter = _write(tmp_path / "in" / "i.csv", text)
    src = CustomSource(
        inter, _items(tmp_path / "in", ["a", "b"]), InteractionColumns(rating=options.get("rating"))
    )
    with pytest.raises(DataError, match=message) as err:
        prepare_custom(src, target, CleaningRules(k_core=options.get("k_core", 1)))
    assert str(inter) in str(err.value) and "\n" not in str(err.value)
    assert _snapshot(target) == before
    assert sorted(p.name for p in target.parent.iterdir() if p.name.startswith(".")) == []


def test_bad_metadata_and_encodings_fail_in_one_line(tmp_path, target):
    before = _snapshot(target)
    inter = _write(tmp_path / "i.csv", "user_id,item_id,timestamp\nu,a,1\nu,b,2\n")
    dup = _write(tmp_path / "dup.csv", "item_id,title\na,A\nb,B\na,again\n")
    with pytest.raises(DataError, match=r"row 3, column 'item_id': item 'a' is listed again"):
        prepare_custom(CustomSource(inter, dup), target, CleaningRules(k_core=1))
    latin = tmp_path / "latin.csv"
    latin.write_bytes("item_id,title\na,Caf\u00e9\nb,B\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.csv:2: not utf-8 text.*--encoding"):
        prepare_custom(CustomSource(inter, latin), target, CleaningRules(k_core=1))
    prepare_custom(
        CustomSource(inter, latin, encoding="latin-1"), tmp_path / "ok", CleaningRules(k_core=1)
    )
    assert load_dataset(tmp_path / "ok").meta.title[0] == "Caf\u00e9"
    bad_json = _write(tmp_path / "m.jsonl", '{"item_id": "a"}\n{"item_id": "b", \n')
    with pytest.raises(DataError, match=r"m.jsonl:2: not one JSON object per line"):
        prepare_custom(CustomSource(inter, bad_json), target, CleaningRules(k_core=1))
    with pytest.raises(DataError, match=r"--text-columns"):
        prepare_custom(CustomSource(inter, dup, text_columns="colour=title"), target)
    assert _snapshot(target) == before


def test_missing_metadata_keep_or_drop(tmp_path, encoder):
    rows = "user_id,item_id,timestamp\nu,a,1\nu,q,2\nv,a,3\nv,b,4\n"
    ds = _run(tmp_path / "keep", rows, ["a", "b"], missing_meta="keep")
    assert list(ds.item_ids) == ["a", "b", "q"] and not ds.meta.has_text()[2]
    ds = _run(tmp_path / "drop", rows, ["a", "b"], missing_meta="drop")
    assert list(ds.item_ids) == ["a", "b"] and ds.n_interactions == 3


def test_files_the_user_did_not_name_are_never_replaced(tmp_path):
    folder = tmp_path / "ml"
    _write(folder / "u.data", "1\t1\t5\t881250949\n")
    with pytest.raises(DataError, match="holds files that are not a prepared catalogue"):
        prepare_custom(CustomSource(tmp_path / "i.csv", tmp_path / "m.csv"), folder)
    assert [p.name for p in folder.iterdir()] == ["u.data"]
    # the user's own interactions.csv in the target: it would be overwritten by ours
    own = tmp_path / "own"
    inter = _write(own / "interactions.csv", "user_id,item_id,timestamp\nu,a,1\n")
    with pytest.raises(DataError, match="--interactions .* under a name the prepared files take"):
        prepare_custom(CustomSource(inter, _items(tmp_path, ["a"])), own, CleaningRules(k_core=1))
    _write(own / "items.jsonl", "{}\n")
    with pytest.raises(DataError, match=r"not a prepared catalogue \(interactions.csv, items"):
        prepare_custom(CustomSource(_write(tmp_path / "i.csv", "x"), tmp_path / "m.csv"), own)
    assert inter.read_text() == "user_id,item_id,timestamp\nu,a,1\n"


def test_parquet_tables(tmp_path):
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame(
        {
            "user_id": [3, 3, 1],
            "item_id": [20, 10, 10],
            "timestamp": pd.to_datetime(["2024-01-02", "2024-01-01", "2024-01-03"]),
        }
    )
    frame.to_parquet(tmp_path / "i.parquet")
    items = pd.DataFrame({"item_id": [10, 20], "title": ["ten", "twenty"]})
    items.to_parquet(tmp_path / "m.parquet")
    prepare_custom(
        CustomSource(tmp_path / "i.parquet", tmp_path / "m.parquet"),
        tmp_path / "p",
        CleaningRules(k_core=1),
    )
    ds = load_dataset(tmp_path / "p")
    assert list(ds.user_ids) == ["1", "3"] and ds.sequence(1).tolist() == [0, 1]
    assert ds.timestamps[1] == 1704067200


# ------------------------------------------------------------------ MovieLens through both paths

SHARED_ML = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
ML_GENRES = (
    "unknown Action Adventure Animation Children's Comedy Crime Documentary Drama Fantasy "
    "Film-Noir Horror Musical Mystery Romance Sci-Fi Thriller War Western"
).split()


def movielens_to_generic(src: Path, out: Path) -> tuple[Path, Path]:
    """u.data -> ratings.tsv (with a header); u.item -> movies.csv (title, year, genres), UTF-8.

    The year rule is the MovieLens loader's: the release date's year, else the title's."""
    out.mkdir(parents=True, exist_ok=True)
    ratings = pd.read_csv(
        src / "u.data", sep="\t", names=["user_id", "item_id", "rating", "timestamp"], dtype=str
    )
    ratings.to_csv(out / "ratings.tsv", sep="\t", index=False)
    movies = pd.read_csv(src / "u.item", sep="|", header=None, dtype=str, encoding="latin-1")
    movies = movies.fillna("")
    year = movies[2].str.extract(r"(\d{4})")[0].fillna(movies[1].str.extract(r"(\d{4})")[0])
    flags = movies.iloc[:, 5:].to_numpy() == "1"
    genres = ["|".join(g for g, f in zip(ML_GENRES, row) if f and g != "unknown") for row in flags]
    generic = pd.DataFrame(
        {"item_id": movies[0], "title": movies[1], "year": year, "genres": genres}
    )
    generic.to_csv(out / "movies.csv", index=False)
    return out / "ratings.tsv", out / "movies.csv"


@pytest.mark.skipif(
    not (SHARED_ML / "u.data").exists(), reason=f"real MovieLens 100K not found at {SHARED_ML}"
)
def test_movielens_through_the_generic_path_equals_the_dedicated_loader(tmp_path, encoder):
    dedicated, generic = tmp_path / "dedicated" / "ml-100k", tmp_path / "generic" / "ml-100k"
    assert (
        prepare_data.main(
            [
                "--dataset",
                "ml-100k",
                "--source",
                str(SHARED_ML),
                "--data-dir",
                str(dedicated),
                "--quiet",
            ]
        )
        == 0
    )
    ratings, movies = movielens_to_generic(SHARED_ML, tmp_path / "files")
    texts = "title=title,year=year,categories=genres"
    args = ["--interactions", str(ratings), "--items", str(movies), "--data-dir", str(generic)]
    assert _prepare(*args, "--rating-col", "rating", "--text-columns", texts, "--k-core", "1") == 0
    a, b = load_dataset(dedicated), load_dataset(generic)
    assert (a.kind, b.kind) == ("movielens", "custom")
    for name in ("user_ids", "item_ids", "users", "items", "positions", "timestamps", "ratings"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for name in ("title", "brand", "description", "categories"):
        assert list(getattr(a.meta, name)) == list(getattr(b.meta, name)), name
    for name in ("price", "sales_rank", "year"):
        assert np.array_equal(getattr(a.meta, name), getattr(b.meta, name), equal_nan=True), name

    results = {}
    for folder in (dedicated, generic):
        assert semantic_id_generator_main(folder, tmp_path / "cache") == 0
        out = tmp_path / folder.parent.name
        res = mf_train_eval.main(
            [
                "--data-dir",
                str(folder),
                "--out",
                str(out / "mf.json"),
                "--plot-dir",
                str(out / "plots"),
                "--models",
                "mf_id",
                "mf_semantic",
                "--epochs",
                "1",
                "--quiet",
            ]
        )
        results[folder] = (load_semantic_ids(folder, load_dataset(folder)).codes, res)
    (codes_a, res_a), (codes_b, res_b) = results[dedicated], results[generic]
    assert np.array_equal(codes_a, codes_b)
    for model in ("mf_id", "mf_semantic"):
        test_a = res_a["models"][model]["seeds"]["0"]["test"]
        assert json.dumps(test_a, sort_keys=True) == json.dumps(
            res_b["models"][model]["seeds"]["0"]["test"], sort_keys=True
        )
        assert test_a["overall"]["rmse"] < 1.5


def semantic_id_generator_main(folder: Path, cache: Path) -> int:
    """The generator with the defaults a user gets (stand-in encoder from the fixture)."""
    return semantic_id_generator.main(
        ["--data-dir", str(folder), "--cache-dir", str(cache), "--quiet", "--device", "cpu"]
    )


def test_a_damaged_prepared_folder_is_refused(tmp_path):
    _run(tmp_path, "user_id,item_id,timestamp\nu,a,1\nu,b,2\n", ["a", "b"])
    path = tmp_path / "out" / "interactions.csv"
    path.write_text(path.read_text().replace("u,b,2", "u,b,soon"))
    with pytest.raises(DataError, match=r"row 2, column 'timestamp': not a number.*prepare_data"):
        load_dataset(tmp_path / "out")
    path.write_text(path.read_text().replace("u,b,soon", "u,zz,2"))
    with pytest.raises(DataError, match=r"row 2, column 'item_id': unknown item"):
        load_dataset(tmp_path / "out")


def test_a_gzip_input_that_inflates_like_a_bomb_is_refused_early(tmp_path, monkeypatch):
    """Past RATIO_CHECK_AFTER bytes, a table inflated over MAX_RATIO times is refused by name;
    the same file is read once the user sets the size cap (a real, very repetitive table)."""
    from utils.data import streams

    bomb = tmp_path / "inter.csv.gz"
    with gzip.open(bomb, "wb") as f:
        f.write(b"user_id,item_id,timestamp\n" + b"u1,i1,1\n" * 500_000)
    monkeypatch.setattr(streams, "RATIO_CHECK_AFTER", 1 << 20)
    with pytest.raises(DataError, match=r"inter\.csv\.gz: inflates more than 100:1"):
        with streams.open_bytes(bomb) as f:
            f.read()
    monkeypatch.setenv(streams.DECOMPRESSED_ENV, str(1 << 30))
    with streams.open_bytes(bomb) as f:
        assert len(f.read()) == 26 + 8 * 500_000
