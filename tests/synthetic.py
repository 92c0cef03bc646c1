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

from utils.data.dataset import Dataset, ItemMeta

CATEGORIES = ["Nails", "Hair Care", "Skin Care", "Fragrance"]


def make_catalogue(n_items: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n_items):
        cat = CATEGORIES[i % len(CATEGORIES)]
        items.append(
            {
                "asin": f"B{i:09d}",
                "title": f"{cat} product {i} &amp; friends",
                "brand": f"Brand{i % 3}",
                "categories": [["Beauty", cat]],
                "category": cat,
                "price": float(rng.integers(1, 50)),
            }
        )
    return items


def make_histories(
    n_users: int, n_items: int, min_len: int = 5, max_len: int = 12, seed: int = 0
) -> list[list[int]]:
    """Per user a list of distinct 0-based item indices, mostly from one preferred category."""
    rng = np.random.default_rng(seed)
    k = len(CATEGORIES)
    histories = []
    for u in range(n_users):
        pref = u % k
        length = int(rng.integers(min_len, max_len + 1))
        preferred = np.arange(pref, n_items, k)
        pool = np.where(
            rng.random(length * 3) < 0.8,
            rng.choice(preferred, length * 3),
            rng.integers(0, n_items, length * 3),
        )
        seq = list(dict.fromkeys(int(x) for x in pool))[:length]
        histories.append(seq)
    return histories


def write_p5(
    folder: Path,
    n_users: int = 40,
    n_items: int = 30,
    seed: int = 0,
    with_ratings: bool = False,
    literal_meta: bool = True,
) -> Path:
    """A P5-layout folder: sequential_data.txt, datamaps.json, meta.json.gz
    (+ rating_splits_augmented.pkl)."""
    folder.mkdir(parents=True, exist_ok=True)
    catalogue = make_catalogue(n_items, seed)
    histories = make_histories(n_users, n_items, seed=seed)
    user2id = {f"U{u:05d}": str(u + 1) for u in range(n_users)}
    item2id = {it["asin"]: str(i + 1) for i, it in enumerate(catalogue)}
    lines = [" ".join([str(u + 1)] + [str(i + 1) for i in h]) for u, h in enumerate(histories)]
    (folder / "sequential_data.txt").write_text("\n".join(lines) + "\n")
    maps = {
        "user2id": user2id,
        "item2id": item2id,
        "id2user": {v: k for k, v in user2id.items()},
        "id2item": {v: k for k, v in item2id.items()},
        "attribute2id": {},
        "id2attribute": {},
        "attributeid2num": {},
    }
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
                reviews.append(
                    {
                        "reviewerID": f"U{u:05d}",
                        "asin": catalogue[i]["asin"],
                        "overall": float(5 if liked and rng.random() < 0.8 else rng.integers(1, 4)),
                        "unixReviewTime": 1_300_000_000 + 86400 * pos + u,
                        "reviewText": "ok",
                        "summary": "ok",
                    }
                )
        n = len(reviews)
        splits = {
            "train": reviews[: int(0.8 * n)],
            "val": reviews[int(0.8 * n) : int(0.9 * n)],
            "test": reviews[int(0.9 * n) :],
        }
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
        lines.append(
            "|".join(
                [str(i + 1), title, f"01-Jan-{1990 + i % 10}", "", "http://example.org"] + flags
            )
        )
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return folder


def dataset_from_sequences(sequences: list[list[int]], n_items: int) -> Dataset:
    """An in-memory P5-style Dataset: user u's interactions are ``sequences[u]``, in order; no
    metadata."""
    users = np.concatenate([[u] * len(s) for u, s in enumerate(sequences)]).astype(np.int64)
    items = np.concatenate(sequences).astype(np.int64)
    positions = np.concatenate([np.arange(len(s)) for s in sequences]).astype(np.int64)
    offsets = np.r_[0, np.cumsum([len(s) for s in sequences])].astype(np.int64)
    return Dataset(
        "toy",
        "p5",
        np.array([f"U{u}" for u in range(len(sequences))], dtype=object),
        np.array([f"I{i}" for i in range(n_items)], dtype=object),
        users,
        items,
        positions,
        None,
        None,
        offsets,
        ItemMeta.empty(n_items),
        "0" * 64,
    )


# ---------------------------------------------------------------- results files (our own formats)


def mean_std(mean: float, std: float, seeds: int = 2) -> dict:
    """One aggregate_seeds leaf; ``seeds`` values (their numbers do not matter to the tables)."""
    return {"mean": mean, "std": std, "values": [mean] * seeds}


def analysis_result() -> dict:
    """An analyze_semantic_ids.py report: the keys semantic_ids_table reads."""
    return {
        "dataset": "beauty",
        "items": 120,
        "fit_on": "warm",
        "codebook_sizes": [4, 4, 4],
        "usage": [
            {"used_codes": 4, "codebook_size": 4, "normalized_entropy": 0.987},
            {"used_codes": 3, "codebook_size": 4, "normalized_entropy": 0.5},
            {"used_codes": 2, "codebook_size": 4, "normalized_entropy": 0.25},
        ],
        "collisions": {"colliding_items": 10, "colliding_groups": 4, "largest_group": 3},
        "quantization_error": {"fit_items": {"per_level": [0.5, 0.25, 0.125]}},
        "similarity_by_prefix": [{"mean_cosine_at_least": c} for c in (0.1, 0.3456, 0.5, 0.9)],
        "purity_level1": {
            "top_category": {"purity": 0.8, "random_assignment_mean": 0.25},
            "leaf_category": {"purity": None, "random_assignment_mean": None},
            "brand": {"purity": 0.5, "random_assignment_mean": 0.4},
            "random_shuffles": 5,
        },
        "run_record": {"script": "analyze_semantic_ids.py", "wall_seconds": 12.0},
    }


def mf_result(objective: str = "explicit") -> dict:
    """An mf_train_eval.py results file: two models, two seeds (explicit) or one seed (implicit)."""
    if objective == "explicit":
        full = {
            "overall": {
                "rmse": mean_std(0.95, 0.01),
                "mae": mean_std(0.75, 0.005),
                "auc": mean_std(0.7, 0.02),
            },
            "slices": {
                "warm_items": {"rmse": mean_std(0.94, 0.01)},
                "cold_items": {"rmse": mean_std(1.1, 0.05)},
                "item_tail": {"rmse": mean_std(1.0, 0.03)},
            },
        }
        bare = {"overall": {"rmse": mean_std(1.12, 0.0)}}
        seeds = {"0": {}, "1": {}}
    else:
        full = {
            "overall": {"auc": mean_std(0.8123, 0.0, 1)},
            "slices": {"cold_items": {"auc": mean_std(0.6, 0.0, 1)}},
            "ranking": {
                "overall": {
                    "recall@20": mean_std(0.05, 0.0, 1),
                    "ndcg@20": mean_std(0.025, 0.0, 1),
                },
                "slices": {"cold_items": {"recall@20": mean_std(0.0125, 0.0, 1)}},
                "cold_catalogue": {"recall@20": mean_std(0.2, 0.0, 1)},
            },
        }
        bare = {"overall": {"auc": mean_std(0.5, 0.0, 1)}}
        seeds = {"0": {}}
    return {
        "dataset": "ml-100k",
        "objective": objective,
        "split": {"kind": "temporal"},
        "models": {
            "mf_id": {"seeds": seeds, "mean_std": {"test": full}},
            "global_mean": {"seeds": seeds, "mean_std": {"test": bare}},
        },
        "run_record": {"script": "mf_train_eval.py", "wall_seconds": 61.6},
    }


def ctr_result() -> dict:
    """A neural_train_eval.py results file: wide_deep in two modes, deepfm in one."""

    def model(auc: float, cold_auc: float | None) -> dict:
        slices = {"item_tail": {"auc": mean_std(auc - 0.1, 0.01)}}
        if cold_auc is not None:
            slices["cold_items"] = {"auc": mean_std(cold_auc, 0.02)}
        test = {
            "overall": {
                "auc": mean_std(auc, 0.01),
                "logloss": mean_std(0.45, 0.005),
                "pr_auc": mean_std(0.3, 0.01),
            },
            "slices": slices,
        }
        return {
            "mean_std": {
                "test": test,
                "parameters": mean_std(123456.0, 0.0),
                "train_seconds": mean_std(12.34, 0.56),
            }
        }

    return {
        "dataset": "beauty",
        "labelling": {"objective": "implicit"},
        "seeds": [0, 1],
        "modes": {
            "baseline": {"models": {"wide_deep": model(0.8, 0.5), "deepfm": model(0.81, None)}},
            "semantic": {"models": {"wide_deep": model(0.82, 0.6)}},
        },
        "run_record": {"script": "neural_train_eval.py", "wall_seconds": 300.4},
    }


PUBLISHED_TIGER = {"recall@5": 0.0454, "ndcg@5": 0.0321, "recall@10": 0.0648, "ndcg@10": 0.0384}


def tiger_result(
    seed: int = 0,
    recall10: float = 0.0488,
    digest: str = "abc",
    train_seconds: float = 1500.6,
    preset: str = "quick",
    complete: bool = True,
) -> dict:
    """A tiger_train_eval.py results file: TIGER with a cold-share result, SASRec without one."""
    tiger = {
        "test": {"recall@5": 0.0312, "ndcg@5": 0.0205, "recall@10": recall10, "ndcg@10": 0.0262},
        "cold_start_test_recall@10": 0.0,
        "cold_start": {"cold_target_users": {"recall@10": 0.125}},
        "epochs_run": 20,
        "timing": {"train_seconds": train_seconds},
    }
    sasrec = {
        "test": {"recall@5": 0.03, "ndcg@5": 0.02, "recall@10": 0.045, "ndcg@10": 0.025},
        "cold_start_test_recall@10": 0.0,
        "epochs_run": 7,
        "timing": {"train_seconds": 99.4},
    }
    return {
        "dataset": "beauty",
        "preset": preset,
        "seed": seed,
        "complete": complete,
        "semantic_ids": {"ids_digest": digest},
        "models": {"tiger": tiger, "sasrec": sasrec},
        "published_beauty_test": {"tiger": PUBLISHED_TIGER},
        "run_record": {
            "script": "tiger_train_eval.py",
            "command": f"tiger_train_eval.py --seed {seed}",
            "wall_seconds": 3600.2,
        },
    }


def write_p5_with_two_id_sets(root: Path) -> tuple[Path, Dataset, Path, list[str]]:
    """Tiny P5 data in ``root/beauty`` with its own semantic IDs, and a second, different ID set
    for the same items in ``root/ids_b`` (the ensembles' two ID sets). Returns the data folder,
    the data set, the second IDs' folder and the two ID sets' digests."""
    from utils.data.load import load_dataset
    from utils.data.semantic import ids_digest, load_semantic_ids, write_semantic_ids

    folder = write_p5(root / "beauty", n_users=30, n_items=60)
    ds = load_dataset(folder)
    header = {"data_checksum": ds.checksum, "codebook_sizes": [4, 3, 5], "collision_size": 1}
    text = np.array([[i % 4, (i // 4) % 3, i // 12, 0] for i in range(ds.n_items)])
    other = np.array([[(i // 15) % 4, i % 3, (i // 3) % 5, 0] for i in range(ds.n_items)])
    write_semantic_ids(folder / "semantic_ids.json", header, ds.item_ids, text)
    write_semantic_ids(root / "ids_b" / "semantic_ids.json", header, ds.item_ids, other)
    digests = [ids_digest(load_semantic_ids(d, ds)) for d in (folder, root / "ids_b")]
    return folder, ds, root / "ids_b", digests
