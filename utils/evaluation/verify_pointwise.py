"""Recompute MF's and the CTR models' figures from their saved predictions: the pointwise
metrics per test slice, MF's full-catalogue ranking, and every mean and std over seeds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from utils.data.dataset import Dataset
from utils.data.slices import popularity_groups
from utils.data.splits import Split
from utils.evaluation.checks import (
    LAYOUT_FIX,
    Check,
    index_of,
    is_number,
    no_unchecked_metrics,
    rows_of,
    same_length,
    task,
)
from utils.evaluation.predictions import (
    MissingPredictions,
    Predictions,
    collect,
    load_predictions,
    partial,
)
from utils.reporting.results import dig
from utils.runtime.errors import DataError


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # The toolkit's documented logit-to-probability map (tanh form: no overflow).
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def pointwise_labels(p: Predictions, ds: Dataset, split: Split) -> np.ndarray:
    """Labels of the saved examples from the split: test rows are the positives (or ratings)."""
    same_length(p, ("users", "items", "labels", "scores", "slice_items"))
    users = rows_of(p["users"], index_of(ds.user_ids), "user", p)
    items = rows_of(p["items"], index_of(ds.item_ids), "item", p)
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
    items = rows_of(p["slice_items"], index_of(ds.item_ids), "item", p)
    users = rows_of(p["users"], index_of(ds.user_ids), "user", p)
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
            m["pr_auc"] = float(average_precision_score(liked, pred)) if liked.any() else math.nan
            m |= _thresholded(liked, pred >= p.meta["positive_threshold"])
        else:
            prob = _sigmoid(s)
            clipped = np.clip(prob, 1e-7, 1 - 1e-7)
            m = {
                "auc": float(roc_auc_score(y, prob)) if 0 < y.sum() < len(y) else float("nan"),
                "pr_auc": float(average_precision_score(y, prob)) if y.any() else float("nan"),
                "logloss": float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))),
                **_thresholded(y.astype(bool), prob >= 0.5),
            }
        out[name] = {"n": int(mask.sum()), **m} if name != "overall" else m
    return out


def _thresholded(truth: np.ndarray, said: np.ndarray) -> dict[str, float]:
    """Precision, recall, F1 and accuracy of the yes/no calls ``said`` (0 where undefined)."""
    hits = float((said & truth).sum())
    precision = hits / said.sum() if said.any() else 0.0
    recall = hits / truth.sum() if truth.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    accuracy = float((said == truth).mean())
    return {"precision": precision, "recall": recall, "f1": f1, "accuracy": accuracy}


def multi_target_metrics(p: Predictions, ds: Dataset, split: Split, k: int) -> dict[str, float]:
    """MF's full-catalogue Recall@k / NDCG@k: overall, cold targets, within the cold catalogue."""
    same_length(p, ("users", "items"))
    idx_u, idx_i = index_of(ds.user_ids), index_of(ds.item_ids)
    rows_of(p["users"], idx_u, "user", p)
    rows_of(np.array([i for i in np.ravel(p["items"]) if i]), idx_i, "item", p)
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


# Reported at a threshold chosen on validation predictions, which are not saved: not recomputed.
VALIDATION_THRESHOLD = ("_at_val_threshold",)


def verify_pointwise_model(path: Path, label: str, entry: dict[str, Any]) -> list[Check]:
    """One pointwise model and seed: the README's pointwise columns, and its ranking when saved
    (its checks kept when only the ranking's predictions are missing)."""
    record = entry.get("predictions")
    if record is None:
        raise MissingPredictions(
            f"{path}: {label} has no saved predictions; re-run with --save-predictions"
        )
    checks: list[Check] = []
    p = load_predictions(record["pointwise"]["file"], record["pointwise"]["sha256"])
    ds, split = task(p.meta)
    got = pointwise_metrics(p, ds, split)
    for part, metrics in got.items():
        reported = entry["test"] if part == "overall" else entry["test"]["slices"][part]
        block = reported["overall"] if part == "overall" else reported
        no_unchecked_metrics(str(path), f"{label} {part}", block, metrics, VALIDATION_THRESHOLD)
        checks += [Check(str(path), label, f"{part} {m}", block[m], v) for m, v in metrics.items()]
    missing: list[str] = []
    collect([record], lambda r: _ranking_checks(path, label, entry, r, ds, split), checks, missing)
    return partial(checks, missing)


def _ranking_checks(
    path: Path, label: str, entry: dict[str, Any], record: dict, ds: Dataset, split: Split
) -> list[Check]:
    """MF's full-catalogue ranking of one seed; a reported ranking without saved predictions is
    missing, never passed."""
    checks: list[Check] = []
    if "ranking" in entry["test"] and "ranking" not in record:
        raise MissingPredictions(f"{path}: {label}'s ranking has no saved predictions")
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
    checks: list[Check] = []
    means: list[Check] = []
    missing: list[str] = []
    for label, res in blocks.items():
        seeds = [(f"{label} seed {seed}", entry) for seed, entry in res["seeds"].items()]
        collect(seeds, lambda s: verify_pointwise_model(path, *s), checks, missing)
        means += verify_seed_means(path, label, res["seeds"], res["mean_std"])
    # the means summarise the per-seed figures: a check only when some of those were recomputed
    return partial(checks + means if checks else [], missing)


def verify_seed_means(
    path: Path, label: str, seeds: dict[str, Any], mean_std: Any, where: tuple[str, ...] = ()
) -> list[Check]:
    """Every ``{"mean", "std", "values"}`` of ``mean_std`` against the per-seed figures it
    summarises (sample std, NaN left out), so an edited mean fails like an edited metric."""
    if isinstance(mean_std, dict) and "mean" in mean_std:
        values = [dig(entry, *where) for entry in seeds.values()]
        if not all(is_number(v) for v in values):
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
