"""Small data sets written in the exact real file formats, for tests (no real data is ever copied).

The generated catalogue has structure a model can learn: items belong to
categories, each user prefers one category, and ratings are higher inside the
preferred category.
"""
from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path

import numpy as np

CATEGORIES = ["Nails", "Hair Care", "Skin Care", "Fragrance"]


def make_catalogue(n_items: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n_items):
        cat = CATEGORIES[i % len(CATEGORIES)]
        items.append({
            "asin": f"B{i:09d}",
            "title": f"{cat} product {i} &amp; friends",
            "brand": f"Brand{i % 3}",
            "categories": [["Beauty", cat]],
            "category": cat,
            "price": float(rng.integers(1, 50)),
        })
    return items


def make_histories(n_users: int, n_items: int, min_len: int = 5, max_len: int = 12, seed: int = 0) -> list[list[int]]:
    """Per user a list of distinct 0-based item indices, mostly from one preferred category."""
    rng = np.random.default_rng(seed)
    k = len(CATEGORIES)
    histories = []
    for u in range(n_users):
        pref = u % k
        length = int(rng.integers(min_len, max_len + 1))
        preferred = np.arange(pref, n_items, k)
        pool = np.where(rng.random(length * 3) < 0.8, rng.choice(preferred, length * 3), rng.integers(0, n_items, length * 3))
        seq = list(dict.fromkeys(int(x) for x in pool))[:length]
        histories.append(seq)
    return histories


def write_p5(folder: Path, n_users: int = 40, n_items: int = 30, seed: int = 0, with_ratings: bool = False,
             literal_meta: bool = True) -> Path:
    """A P5-layout folder: sequential_data.txt, datamaps.json, meta.json.gz (+ rating_splits_augmented.pkl)."""
    folder.mkdir(parents=True, exist_ok=True)
    catalogue = make_catalogue(n_items, seed)
    histories = make_histories(n_users, n_items, seed=seed)
    user2id = {f"U{u:05d}": str(u + 1) for u in range(n_users)}
    item2id = {it["asin"]: str(i + 1) for i, it in enumerate(catalogue)}
    lines = [" ".join([str(u + 1)] + [str(i + 1) for i in h]) for u, h in enumerate(histories)]
    (folder / "sequential_data.txt").write_text("\n".join(lines) + "\n")
    maps = {"user2id": user2id, "item2id": item2id, "id2user": {v: k for k, v in user2id.items()},
            "id2item": {v: k for k, v in item2id.items()}, "attribute2id": {}, "id2attribute": {}, "attributeid2num": {}}
    (folder / "datamaps.json").write_text(json.dumps(maps))
    with gzip.open(folder / "meta.json.gz", "wt", encoding="utf-8") as f:
        for i, it in enumerate(catalogue):
            record = {k: v for k, v in it.items() if k != "category"}
            # Alternate the two line styles seen in the wild: Python literal (raw Amazon) and JSON.
            f.write((repr(record) if literal_meta and i % 2 == 0 else json.dumps(record)) + "\n")
    if with_ratings:
        rng = np.random.default_rng(seed + 1)
        reviews = []
        for u, h in enumerate(histories):
            for pos, i in enumerate(h):
                liked = CATEGORIES[i % len(CATEGORIES)] == CATEGORIES[u % len(CATEGORIES)]
                reviews.append({"reviewerID": f"U{u:05d}", "asin": catalogue[i]["asin"],
                                "overall": float(5 if liked and rng.random() < 0.8 else rng.integers(1, 4)),
                                "unixReviewTime": 1_300_000_000 + 86400 * pos + u, "reviewText": "ok", "summary": "ok"})
        n = len(reviews)
        splits = {"train": reviews[: int(0.8 * n)], "val": reviews[int(0.8 * n): int(0.9 * n)], "test": reviews[int(0.9 * n):]}
        with open(folder / "rating_splits_augmented.pkl", "wb") as f:
            pickle.dump(splits, f)
    return folder


ML_GENRE_COUNT = 19


def write_movielens(folder: Path, n_users: int = 30, n_items: int = 40, seed: int = 0) -> Path:
    """An ML-100K-format folder: u.data (tab separated) and u.item ('|' separated, Latin-1)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    histories = make_histories(n_users, n_items, min_len=8, max_len=16, seed=seed)
    rows = []
    for u, h in enumerate(histories):
        for pos, i in enumerate(h):
            liked = (i % 4) == (u % 4)
            rating = int(rng.integers(4, 6)) if liked else int(rng.integers(1, 4))
            rows.append(f"{u + 1}\t{i + 1}\t{rating}\t{880000000 + 1000 * pos + u}")
    (folder / "u.data").write_text("\n".join(rows) + "\n")
    lines = []
    for i in range(n_items):
        flags = ["0"] * ML_GENRE_COUNT
        flags[1 + i % 4] = "1"
        title = f"Caf\u00e9 Movie {i} ({1990 + i % 10})"
        lines.append("|".join([str(i + 1), title, f"01-Jan-{1990 + i % 10}", "", "http://example.org"] + flags))
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return folder
