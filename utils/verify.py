"""Recompute the headline metrics from saved predictions, independently of the training code.

Each check loads a predictions file (checked against the sha256 its results
file records), rebuilds the labels and ranking targets from the data set and
its saved split, recomputes the metric with its own code (scikit-learn for
AUC and average precision, plain numpy for everything else) and compares it
with the number in the results JSON. The split, the cold items and the
popularity slices are the toolkit's definitions of the task; nothing else is
shared with the code path that produced the number.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from utils.data import Dataset, load_dataset
from utils.errors import DataError
from utils.predictions import Predictions, load_predictions
from utils.report import dig
from utils.slices import popularity_groups, row_slices
from utils.splits import Split, get_split

TOLERANCE = 1e-9  # absolute; metrics are means of float64 terms summed in another order


@dataclass
class Check:
    """One recomputed number beside the reported one."""

    results: str
    model: str
    metric: str
    reported: float
    recomputed: float

    @property
    def ok(self) -> bool:
        """Equal within TOLERANCE (or both NaN); a reported value that is no number never is."""
        if not _is_number(self.reported):
            return False
        both_nan = np.isnan(self.reported) and np.isnan(self.recomputed)
        return both_nan or abs(self.reported - self.recomputed) <= TOLERANCE


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


LAYOUT_FIX = "re-run the script that wrote it with --save-predictions"


@cache
def _task(data_dir: str, checksum: str, kind: str, seed: int, cold_fraction: float) -> tuple:
    ds = load_dataset(data_dir)
    if ds.checksum != checksum:
        raise DataError(
            f"{data_dir}: not the data the predictions were made on (checksum "
            f"{ds.checksum[:12]}..., the predictions say {str(checksum)[:12]}...); {LAYOUT_FIX}"
        )
    # Rebuilt in memory: the split is a pure function of these, and the verifier writes nothing
    # (a file's metadata never chooses a folder for it to write into).
    return ds, get_split(ds, kind, seed, cold_fraction, cache_dir=None)


def task(meta: dict[str, Any]) -> tuple[Dataset, Split]:
    """The data set a predictions file was made on (refused unless its checksum matches) and its
    split, rebuilt from the split's parameters."""
    s = meta["split"]
    return _task(
        str(meta["data_dir"]),
        str(meta["data_checksum"]),
        str(s["kind"]),
        int(s["seed"]),
        float(s["cold_fraction"]),
    )


def _rows_of(ids: np.ndarray, index: dict[str, int], what: str, p: Predictions) -> np.ndarray:
    """Indices of saved original IDs; an ID the data set does not have is refused by name."""
    try:
        return np.array([index[str(x)] for x in ids], dtype=np.int64)
    except KeyError as exc:
        raise DataError(
            f"{p.meta.get('model')}: the predictions name {what} {exc.args[0]!r}, which the data "
            f"set does not have; {LAYOUT_FIX}"
        ) from None


def _same_length(p: Predictions, columns: tuple[str, ...]) -> int:
    """The common length of the saved columns; short or missing arrays are refused."""
    lengths = {c: len(p[c]) if c in p else None for c in columns}
    if None in lengths.values() or len(set(lengths.values())) != 1:
        raise DataError(
            f"{p.meta.get('model')}: saved columns of unequal length or missing ({lengths}); "
            f"{LAYOUT_FIX}"
        )
    return next(iter(lengths.values()))


def _index(ids: np.ndarray) -> dict[str, int]:
    return {str(x): i for i, x in enumerate(ids)}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # The toolkit's documented logit-to-probability map (tanh form: no overflow).
    return 0.5 * (1.0 + np.tanh(0.5 * x))


# ------------------------------------------------------------------ single-target ranking


def single_target_ranks(p: Predictions, targets: np.ndarray, column: str = "items") -> np.ndarray:
    """0-based rank of each user's target in its saved list (inf when absent).

    ``tie_rule`` "list order": the position in the list (beam search);
    "pessimistic": the number of listed items scoring >= the target, minus 1.
    """
    items = p[column]
    hit = items == targets[:, None]
    found = hit.any(1)
    pos = np.where(found, hit.argmax(1), 0)
    if p.meta["tie_rule"] == "pessimistic" and column == "items":
        target_score = p["scores"][np.arange(len(items)), pos]
        pos = (p["scores"] >= target_score[:, None]).sum(1) - 1
    return np.where(found, pos, np.inf)


def single_target_metrics(ranks: np.ndarray) -> dict[str, float]:
    """Hit@k = Recall@k (one target) and NDCG@k at k = 1, 3, 5, 10, and MRR@20."""
    out: dict[str, float] = {}
    for k in (1, 3, 5, 10):
        inside = ranks < k
        out[f"hit@{k}"] = out[f"recall@{k}"] = float(inside.mean())
        out[f"ndcg@{k}"] = float(
            np.where(inside, 1.0 / np.log2(np.where(inside, ranks, 0) + 2.0), 0.0).mean()
        )
    top20 = ranks < 20  # a target below the top 20 counts 0
    out["mrr@20"] = float(np.where(top20, 1.0 / (np.where(top20, ranks, 0) + 1.0), 0.0).mean())
    return out


def verify_sequential(path: Path, result: dict[str, Any]) -> list[Check]:
    """TIGER and SASRec: test metrics, cold-item targets (plain beam) and the cold-share ranking."""
    checks = []
    for name, rep in result["models"].items():
        record = rep.get("predictions")
        if record is None:
            raise ValueError(
                f"{path}: {name} has no saved predictions; re-run with --save-predictions"
            )
        p = load_predictions(record["file"], record["sha256"])
        ds, split = task(p.meta)
        _same_length(p, ("users", "items", "scores"))
        test_row = dict(zip(ds.user_ids[ds.users[split.test]].astype(str), split.test.tolist()))
        users = [str(u) for u in p["users"]]
        if sorted(users) != sorted(test_row):
            raise DataError(
                f"{path}: {name}'s predictions cover {len(set(users))} distinct users, the test "
                f"set has {len(test_row)} ({len(set(users) - set(test_row))} unknown); "
                f"{LAYOUT_FIX}"
            )
        rows = np.array([test_row[u] for u in users])
        targets = ds.item_ids[ds.items[rows]].astype(str)
        ranks = single_target_ranks(p, targets)
        got = single_target_metrics(ranks)
        checks += [
            Check(str(path), name, f"test {m}", rep["test"][m], got[m])
            for m in got
            if m in rep["test"]
        ]
        checks.append(Check(str(path), name, "test users", rep["n_test_users"], len(users)))
        for part, mask in row_slices(ds, split, rows).items():
            reported = rep["test_slices"][part]
            checks.append(Check(str(path), name, f"{part} n", reported["n"], int(mask.sum())))
            if mask.any():
                got = single_target_metrics(ranks[mask])
                checks += [
                    Check(str(path), name, f"{part} {m}", reported[m], v) for m, v in got.items()
                ]
        cold = np.isin(targets, ds.item_ids[split.cold_items].astype(str))
        if cold.any():
            checks.append(
                Check(
                    str(path),
                    name,
                    "cold-target recall@10",
                    rep["cold_start_test_recall@10"],
                    float((ranks[cold] < 10).mean()),
                )
            )
        if cold.any() and "cold_share_items" in p:
            shared = single_target_ranks(p, targets, "cold_share_items")
            checks.append(
                Check(
                    str(path),
                    name,
                    "cold share: cold-target recall@10",
                    rep["cold_start"]["cold_target_users"]["recall@10"],
                    float((shared[cold] < 10).mean()),
                )
            )
    return checks


# ------------------------------------------------------------------ pointwise, multi-target ranking


def pointwise_labels(p: Predictions, ds: Dataset, split: Split) -> np.ndarray:
    """Labels of the saved examples from the split: test rows are the positives (or ratings)."""
    _same_length(p, ("users", "items", "labels", "scores", "slice_items"))
    users = _rows_of(p["users"], _index(ds.user_ids), "user", p)
    items = _rows_of(p["items"], _index(ds.item_ids), "item", p)
    key = users * ds.n_items + items
    test_key = ds.users[split.test] * ds.n_items + ds.items[split.test]
    objective = p.meta["objective"]
    if objective == "implicit":
        return np.isin(key, test_key).astype(float)
    rating = dict(zip(test_key.tolist(), ds.ratings[split.test].tolist()))
    if not set(key.tolist()) <= set(rating):
        raise DataError(f"{p.meta['model']}: saved examples outside the test set; {LAYOUT_FIX}")
    ratings = np.array([rating[k] for k in key.tolist()])
    return (
        (ratings >= p.meta["positive_threshold"]).astype(float) if objective == "liked" else ratings
    )


def pointwise_metrics(p: Predictions, ds: Dataset, split: Split) -> dict[str, dict[str, float]]:
    """{slice: metrics} for the saved examples: overall and every test slice (item and user
    popularity, cold and warm items), each with its size ``n``."""
    labels = pointwise_labels(p, ds, split)
    if not np.array_equal(labels, p["labels"]):
        raise ValueError(f"{p.meta['model']}: the saved labels differ from the split's")
    # A sampled negative counts in the slice of the positive it was drawn for ("slice_items").
    items = _rows_of(p["slice_items"], _index(ds.item_ids), "item", p)
    users = _rows_of(p["users"], _index(ds.user_ids), "user", p)
    cold = np.isin(items, split.cold_items)
    masks = {"overall": np.ones(len(items), bool)}
    item_group = popularity_groups(ds.item_counts(split.train))[items]
    user_group = popularity_groups(ds.user_counts(split.train))[users]
    for group in ("head", "mid", "tail"):
        masks[f"item_{group}"] = (item_group == group) & ~cold
    for group in ("head", "mid", "tail"):
        masks[f"user_{group}"] = user_group == group
    masks["cold_items"], masks["warm_items"] = cold, ~cold
    scores = p["scores"]
    out = {}
    for name, mask in masks.items():
        if not mask.any():
            out[name] = {"n": 0}
            continue
        y, s = labels[mask], scores[mask]
        if p.meta["objective"] == "explicit":
            lo, hi = p.meta["rating_range"]
            pred = np.clip(s, lo, hi)
            liked = y >= p.meta["positive_threshold"]
            m = {
                "rmse": float(np.sqrt(np.mean((pred - y) ** 2))),
                "mae": float(np.mean(np.abs(pred - y))),
            }
            m["auc"] = (
                float(roc_auc_score(liked, pred)) if 0 < liked.sum() < len(liked) else float("nan")
            )
        else:
            prob = _sigmoid(s)
            clipped = np.clip(prob, 1e-7, 1 - 1e-7)
            m = {
                "auc": float(roc_auc_score(y, prob)) if 0 < y.sum() < len(y) else float("nan"),
                "pr_auc": float(average_precision_score(y, prob)) if y.any() else float("nan"),
                "logloss": float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))),
            }
        out[name] = {"n": int(mask.sum()), **m} if name != "overall" else m
    return out


def multi_target_metrics(p: Predictions, ds: Dataset, split: Split, k: int) -> dict[str, float]:
    """MF's full-catalogue Recall@k / NDCG@k: overall, cold targets, within the cold catalogue."""
    _same_length(p, ("users", "items"))
    idx_u, idx_i = _index(ds.user_ids), _index(ds.item_ids)
    _rows_of(p["users"], idx_u, "user", p)
    _rows_of(np.array([i for i in np.ravel(p["items"]) if i]), idx_i, "item", p)
    held = {}
    for u, i in zip(ds.users[split.test], ds.items[split.test]):
        held.setdefault(int(u), set()).add(int(i))
    cold_set = set(split.cold_items.tolist())

    def score(lists: np.ndarray, relevant_of) -> tuple[float, float]:
        recalls, ndcgs = [], []
        for user, row in zip(p["users"], lists):
            relevant = relevant_of(held.get(idx_u[user], set()))
            if not relevant:
                continue
            top = [idx_i[i] if i else -1 for i in row[:k]]
            gains = [1.0 / np.log2(r + 2.0) for r, item in enumerate(top) if item in relevant]
            ideal = sum(1.0 / np.log2(r + 2.0) for r in range(min(k, len(relevant))))
            recalls.append(len(gains) / len(relevant))
            ndcgs.append(sum(gains) / ideal)
        return float(np.mean(recalls)), float(np.mean(ndcgs))

    r, n = score(p["items"], lambda rel: rel)
    out = {f"recall@{k}": r, f"ndcg@{k}": n}
    out[f"cold recall@{k}"] = score(p["items"], lambda rel: rel & cold_set)[0]
    if "cold_items" in p:
        out[f"cold-catalogue recall@{k}"] = score(p["cold_items"], lambda rel: rel & cold_set)[0]
    return out


def verify_pointwise_model(path: Path, label: str, entry: dict[str, Any]) -> list[Check]:
    """One pointwise model and seed: the README's pointwise columns, and its ranking when saved."""
    record = entry.get("predictions")
    if record is None:
        raise ValueError(
            f"{path}: {label} has no saved predictions; re-run with --save-predictions"
        )
    checks = []
    p = load_predictions(record["pointwise"]["file"], record["pointwise"]["sha256"])
    ds, split = task(p.meta)
    got = pointwise_metrics(p, ds, split)
    for part, metrics in got.items():
        reported = entry["test"] if part == "overall" else entry["test"]["slices"][part]
        block = reported["overall"] if part == "overall" else reported
        checks += [Check(str(path), label, f"{part} {m}", block[m], v) for m, v in metrics.items()]
    if "ranking" in record:
        r = load_predictions(record["ranking"]["file"], record["ranking"]["sha256"])
        k = r.meta["k_reported"]
        got = multi_target_metrics(r, ds, split, k)
        ranking = entry["test"]["ranking"]
        reported = {
            f"recall@{k}": ranking["overall"][f"recall@{k}"],
            f"ndcg@{k}": ranking["overall"][f"ndcg@{k}"],
            f"cold recall@{k}": dig(ranking, "slices", "cold_items", f"recall@{k}"),
            f"cold-catalogue recall@{k}": dig(ranking, "cold_catalogue", f"recall@{k}"),
        }
        checks += [
            Check(str(path), label, m, reported[m], v)
            for m, v in got.items()
            if reported[m] is not None
        ]
    return checks


def verify_pointwise(path: Path, result: dict[str, Any]) -> list[Check]:
    """Every model (x feature mode) x seed of an MF or CTR results file."""
    blocks = (
        {f"{m} {mode}": r for mode, b in result["modes"].items() for m, r in b["models"].items()}
        if "modes" in result
        else result["models"]
    )
    checks = []
    for label, res in blocks.items():
        for seed, entry in res["seeds"].items():
            checks += verify_pointwise_model(path, f"{label} seed {seed}", entry)
        checks += verify_seed_means(path, label, res["seeds"], res["mean_std"])
    return checks


def verify_seed_means(
    path: Path, label: str, seeds: dict[str, Any], mean_std: Any, where: tuple[str, ...] = ()
) -> list[Check]:
    """Every ``{"mean", "std", "values"}`` of ``mean_std`` against the per-seed figures it
    summarises (sample std, NaN left out), so an edited mean fails like an edited metric."""
    if isinstance(mean_std, dict) and "mean" in mean_std:
        values = [dig(entry, *where) for entry in seeds.values()]
        if not all(_is_number(v) for v in values):
            raise DataError(f"{path}: {label} {'.'.join(where)}: a seed's figure is missing")
        arr = np.array(values, dtype=float)
        finite = arr[~np.isnan(arr)]
        mean = float(finite.mean()) if len(finite) else float("nan")
        std = float(finite.std(ddof=1)) if len(finite) > 1 else 0.0
        name = f"mean over seeds {'.'.join(where)}"
        reported = mean_std.get("values")
        same = isinstance(reported, list) and np.array_equal(
            np.array(reported, dtype=float), arr, equal_nan=True
        )
        return [
            Check(str(path), label, name, mean_std["mean"], mean),
            Check(str(path), label, f"std over seeds {'.'.join(where)}", mean_std["std"], std),
            Check(str(path), label, f"values over seeds {'.'.join(where)}", float(same), 1.0),
        ]
    if not isinstance(mean_std, dict):
        raise DataError(f"{path}: {label} mean_std.{'.'.join(where)} is not an object")
    return [
        check
        for key, value in mean_std.items()
        for check in verify_seed_means(path, label, seeds, value, (*where, key))
    ]


STRUCTURE_ERRORS = (KeyError, TypeError, IndexError, AttributeError)


def verify_results_file(path: Path, result: dict[str, Any]) -> list[Check]:
    """The checks of one results file (TIGER/SASRec, MF or CTR); a file of another layout
    (missing keys, a list for an object, a string for a number) is refused by name."""
    try:
        if not isinstance(result, dict):
            raise TypeError(f"a {type(result).__name__}, not an object")
        if "published_beauty_test" in result:
            checks = verify_sequential(path, result)
        else:
            checks = verify_pointwise(path, result)
    except STRUCTURE_ERRORS as exc:
        raise DataError(
            f"{path}: not a results file in the expected layout ({type(exc).__name__}: "
            f"{str(exc)[:100]}); {LAYOUT_FIX}"
        ) from exc
    if not checks:
        raise DataError(f"{path}: nothing in it could be checked; {LAYOUT_FIX}")
    return checks
