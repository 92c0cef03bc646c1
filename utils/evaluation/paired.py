"""Is one model's lead real? A paired per-user test from the saved test lists of two models.

Both models rank the same test users, so the difference of their per-user Recall@10 (hit or
miss) and NDCG@10 has a standard error of std(differences) / sqrt(users): far smaller than the
two metrics' own errors, as both share which users are easy. A side given several results files
(its seeds) scores each user by the mean over them, so the seeds' noise shrinks too.

  python summarize_results.py --paired 'results/seq_tiger_seed*.json:tiger_item' \\
      'results/seq_ids_seed*.json:sasrec:filtered'
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils.evaluation.verify import load_test_lists
from utils.reporting.tables import markdown_table
from utils.runtime.errors import DataError
from utils.runtime.io import read_json

METRICS = ("recall@10", "ndcg@10")


@dataclass(frozen=True)
class Side:
    """One contender: its results files (one per seed), the model and the ranking rule."""

    files: list[Path]
    model: str
    rule: str = ""

    @classmethod
    def parse(cls, spec: str) -> Side:
        """``GLOB:MODEL[:RULE]``, e.g. ``results/x_seed*.json:sasrec:filtered``."""
        parts = spec.rsplit(":", 2)
        if len(parts) < 2 or not parts[1]:
            raise DataError(f"--paired {spec!r}: give FILES:MODEL[:RULE], e.g. 'r/*.json:sasrec'")
        files = sorted(Path(p) for p in glob.glob(parts[0]))
        if not files:
            raise DataError(f"--paired {spec!r}: no results file matches {parts[0]!r}")
        return cls(files, parts[1], parts[2] if len(parts) == 3 else "")

    def label(self) -> str:
        return f"{self.model}{f' ({self.rule})' if self.rule else ''}, {len(self.files)} file(s)"


def per_user(ranks: np.ndarray, metric: str) -> np.ndarray:
    """Each user's Recall@k (1 or 0) or NDCG@k from the 0-based rank of its one target."""
    kind, k = metric.split("@")
    inside = ranks < int(k)
    if kind == "recall":
        return inside.astype(float)
    return np.where(inside, 1.0 / np.log2(np.where(inside, ranks, 0) + 2.0), 0.0)


def user_scores(side: Side, metric: str) -> dict[str, float]:
    """Per test user, ``metric`` averaged over the side's files."""
    totals: dict[str, float] = {}
    for path in side.files:
        result = read_json(path, "give results files of tiger_train_eval.py")
        rep = result.get("models", {}).get(side.model)
        if rep is None:
            raise DataError(f"{path}: no model {side.model!r} (it has {sorted(result['models'])})")
        lists = load_test_lists(path, side.model, rep, result)
        for user, value in zip(lists.users, per_user(lists.ranks(side.rule), metric)):
            totals[user] = totals.get(user, 0.0) + value / len(side.files)
    return totals


@dataclass(frozen=True)
class PairedDifference:
    metric: str
    n_users: int
    mean_a: float
    mean_b: float
    se: float

    @property
    def diff(self) -> float:
        return self.mean_a - self.mean_b

    @property
    def z(self) -> float:
        return self.diff / self.se if self.se > 0 else float("inf") * np.sign(self.diff)


def paired(a: dict[str, float], b: dict[str, float], metric: str) -> PairedDifference:
    """Mean of each side and the standard error of the mean per-user difference a - b."""
    if set(a) != set(b):
        raise DataError(
            f"the two sides rank other test users ({len(set(a) ^ set(b))} differ): compare runs "
            "of the same data set, split and protocol"
        )
    users = sorted(a)
    x, y = np.array([a[u] for u in users]), np.array([b[u] for u in users])
    d = x - y
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return PairedDifference(metric, len(d), float(x.mean()), float(y.mean()), se)


def paired_table(a: Side, b: Side) -> str:
    """Recall@10 and NDCG@10 of both sides, their difference, its standard error and z."""
    rows = []
    for metric in METRICS:
        r = paired(user_scores(a, metric), user_scores(b, metric), metric)
        rows.append([metric, r.mean_a, r.mean_b, f"{r.diff:+.4f}", f"{r.se:.4f}", f"{r.z:.1f}"])
    return (
        f"**Paired per-user test** (test users: {r.n_users:,}): A = {a.label()}, "
        f"B = {b.label()}\n\n"
        + markdown_table(["metric", "A", "B", "A - B", "std. error", "z"], rows)
    )
