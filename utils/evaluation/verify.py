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

from utils.data.dataset import Dataset
from utils.data.load import load_dataset
from utils.data.slices import popularity_groups
from utils.data.splits import Split, get_split
from utils.evaluation.predictions import Predictions, load_predictions
from utils.reporting.results import dig

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
        both_nan = np.isnan(self.reported) and np.isnan(self.recomputed)
        return both_nan or abs(self.reported - self.recomputed) <= TOLERANCE


@cache
def _dataset(data_dir: str) -> Dataset:
    return load_dataset(data_dir)


def task(meta: dict[str, Any]) -> tuple[Dataset, Split]:
    """The data set and saved split a predictions file was made on (split loaded from its cache)."""
    ds = _dataset(meta["data_dir"])
    s = meta["split"]
    split = get_split(ds, s["kind"], s["seed"], s["cold_fraction"], cache_dir=s["cache_dir"])
    return ds, split


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
    scores = column.removesuffix("items") + "scores"  # "scores", "filtered_scores"
    if p.meta["tie_rule"] == "pessimistic" and scores in p:
        target_score = p[scores][np.arange(len(items)), pos]
        pos = (p[scores] >= target_score[:, None]).sum(1) - 1
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
        test_item = dict(
            zip(
                ds.user_ids[ds.users[split.test]].astype(str),
                ds.item_ids[ds.items[split.test]].astype(str),
            )
        )
        targets = np.array([test_item[u] for u in p["users"]])
        ranks = single_target_ranks(p, targets)
        got = single_target_metrics(ranks)
        checks += [
            Check(str(path), name, f"test {m}", rep["test"][m], got[m])
            for m in got
            if m in rep["test"]
        ]
        for rule in p.meta.get("ranking_rules", [])[1:]:  # e.g. the filtered ranking
            got = single_target_metrics(single_target_ranks(p, targets, f"{rule}_items"))
            checks += [
                Check(str(path), name, f"{rule} test {m}", rep[rule]["test"][m], got[m])
                for m in got
                if m in rep[rule]["test"]
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
    idx_u, idx_i = _index(ds.user_ids), _index(ds.item_ids)
    users = np.array([idx_u[u] for u in p["users"]])
    items = np.array([idx_i[i] for i in p["items"]])
    key = users * ds.n_items + items
    test_key = ds.users[split.test] * ds.n_items + ds.items[split.test]
    objective = p.meta["objective"]
    if objective == "implicit":
        return np.isin(key, test_key).astype(float)
    rating = dict(zip(test_key.tolist(), ds.ratings[split.test].tolist()))
    ratings = np.array([rating[k] for k in key.tolist()])
    return (
        (ratings >= p.meta["positive_threshold"]).astype(float) if objective == "liked" else ratings
    )


def pointwise_metrics(p: Predictions, ds: Dataset, split: Split) -> dict[str, dict[str, float]]:
    """{slice: metrics} for the saved examples: overall, cold items and tail items."""
    labels = pointwise_labels(p, ds, split)
    if not np.array_equal(labels, p["labels"]):
        raise ValueError(f"{p.meta['model']}: the saved labels differ from the split's")
    # A sampled negative counts in the slice of the positive it was drawn for ("slice_items").
    idx_i = _index(ds.item_ids)
    items = np.array([idx_i[i] for i in p["slice_items"]])
    cold = np.isin(items, split.cold_items)
    tail = (popularity_groups(ds.item_counts(split.train))[items] == "tail") & ~cold
    warm = ~cold
    scores = p["scores"]
    out = {}
    for name, mask in (
        ("overall", np.ones(len(items), bool)),
        ("cold_items", cold),
        ("warm_items", warm),
        ("item_tail", tail),
    ):
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
        out[name] = m
    return out


def multi_target_metrics(p: Predictions, ds: Dataset, split: Split, k: int) -> dict[str, float]:
    """MF's full-catalogue Recall@k / NDCG@k: overall, cold targets, within the cold catalogue."""
    idx_u, idx_i = _index(ds.user_ids), _index(ds.item_ids)
    held = {}
    for u, i in zip(ds.users[split.test], ds.items[split.test]):
        held.setdefault(int(u), set()).add(int(i))
    cold_set = set(split.cold_items.tolist())

    def score(lists: np.ndarray, relevant_of) -> tuple[float, float]:
        recalls, ndcgs = [], []
        for user, row in zip(p["users"], lists):
            relevant = relevant_of(held[idx_u[user]])
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
    return checks


def verify_results_file(path: Path, result: dict[str, Any]) -> list[Check]:
    """The checks of one results file (TIGER/SASRec, MF or CTR)."""
    if "published_beauty_test" in result:
        return verify_sequential(path, result)
    return verify_pointwise(path, result)
