"""Scoring pointwise models: metrics on fixed evaluation examples, slices and full-catalogue
ranking.

MF and the CTR family are scored here on the same examples, slices and
ranking protocol (see ``PointwiseEvaluator.ranking``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from src.pointwise.batches import ExampleTensors, predict
from utils.data.dataset import Dataset
from utils.data.examples import eval_examples
from utils.data.slices import row_slices, slice_report
from utils.data.splits import Split
from utils.evaluation.metrics import (
    auc,
    best_f1_threshold,
    binary_report,
    classification_metrics,
    mae,
    multi_target_ranking,
    pr_auc,
    require_finite,
    rmse,
)
from utils.evaluation.predictions import id_strings

# Largest number of (user, item) scores materialised at once during ranking.
RANKING_CHUNK = 1 << 24


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function (no overflow warnings for large |x|)."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))


def score_metrics(
    objective: str,
    labels: np.ndarray,
    scores: np.ndarray,
    positive_threshold: float = 4.0,
    rating_range: tuple[float, float] = (1.0, 5.0),
) -> dict[str, float]:
    """The objective's metric family for one set of examples.

    Explicit: RMSE and MAE of predictions clipped to the rating range, and
    for "liked" (rating >= ``positive_threshold``) AUC and PR-AUC of the
    predicted rating plus precision/recall/F1/accuracy of "predicted rating >=
    threshold". Implicit: AUC, PR-AUC, logloss and the report at p >= 0.5.
    """
    require_finite(
        scores
    )  # before clipping, which would turn an infinite score into a plausible rating
    if objective == "explicit":
        pred = np.clip(scores, *rating_range)
        liked = labels >= positive_threshold
        return {
            "rmse": rmse(labels, pred),
            "mae": mae(labels, pred),
            "auc": auc(liked, pred),
            "pr_auc": pr_auc(liked, pred),
            **binary_report(liked, pred, positive_threshold),
        }
    return classification_metrics(labels, sigmoid(scores), 0.5)


def csr(groups: np.ndarray, values: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, values) with the values of group g at values[offsets[g]:offsets[g+1]]."""
    order = np.argsort(groups, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(groups, minlength=n_groups))]).astype(
        np.int64
    )
    return offsets, np.asarray(values)[order]


@torch.no_grad()
def score_items(model: nn.Module, users: Tensor, n_items: int) -> Tensor:
    """(len(users), n_items) scores: ``model.score_all`` when it has one, else every pair through
    ``model``."""
    if hasattr(model, "score_all"):
        return model.score_all(users).float()
    items = torch.arange(n_items, device=users.device)
    pairs_u = users.repeat_interleave(n_items)
    return model(pairs_u, items.repeat(len(users))).float().view(len(users), n_items)


@torch.no_grad()
def top_k_items(
    model: nn.Module,
    users: np.ndarray,
    k: int,
    n_items: int,
    exclude: tuple[np.ndarray, np.ndarray],
    targets: tuple[np.ndarray, np.ndarray],
    candidates: dict[str, np.ndarray | None] | None = None,
    device: str | torch.device = "cpu",
    desc: str = "rank",
    progress: bool = False,
    with_scores: bool = False,
) -> dict[str, np.ndarray]:
    """Top-k item indices per user, for each candidate set (``None`` = the full catalogue).

    ``with_scores`` adds ``"<name>_scores"``: the scores of the listed items (a target's
    nudged down by one float step, see below).

    ``exclude`` and ``targets`` are CSR lists (offsets, items) aligned with
    ``users``. Excluded items (e.g. the user's training items) are masked to
    -inf. Targets (the held-out items) have their scores nudged down to the
    next float, so an item tied with a target ranks above it: the pessimistic
    tie rule of :mod:`utils.evaluation.metrics`, under which a model that scores many
    items equally (MF-ID on cold items) cannot profit from the tie. Every user
    is scored once for all candidate sets.
    """
    model.eval()
    candidates = candidates or {"all": None}
    subsets = {
        name: torch.as_tensor(c, dtype=torch.long, device=device)
        for name, c in candidates.items()
        if c is not None
    }
    size = {
        name: min(k, n_items if cand is None else len(cand)) for name, cand in candidates.items()
    }
    out = {name: np.empty((len(users), size[name]), dtype=np.int64) for name in candidates}
    if with_scores:
        out.update({f"{name}_scores": np.empty((len(users), size[name])) for name in candidates})
    batch = max(1, RANKING_CHUNK // max(n_items, 1))
    minus_inf = torch.tensor(-float("inf"), device=device)
    for start in tqdm(range(0, len(users), batch), desc=desc, disable=not progress, leave=False):
        end = min(start + batch, len(users))
        scores = score_items(model, torch.as_tensor(users[start:end], device=device), n_items)
        for (offsets, items), nudge in ((targets, True), (exclude, False)):
            r = torch.as_tensor(
                np.repeat(np.arange(end - start), np.diff(offsets[start : end + 1])), device=device
            )
            c = torch.as_tensor(
                items[offsets[start] : offsets[end]], dtype=torch.long, device=device
            )
            scores[r, c] = torch.nextafter(scores[r, c], minus_inf) if nudge else minus_inf
        for name in candidates:
            if name in subsets:
                best = scores.index_select(1, subsets[name]).topk(size[name], dim=1)
                top = subsets[name][best.indices]
            else:
                best = scores.topk(size[name], dim=1)
                top = best.indices
            out[name][start:end] = top.cpu().numpy()
            if with_scores:
                out[f"{name}_scores"][start:end] = best.values.double().cpu().numpy()
    return out


class PointwiseEvaluator:
    """Scores a model on one split's validation and test examples, with slices and full-catalogue
    ranking.

    Built once per (data set, split, objective): the example tensors, slice
    masks and ranking targets are shared by every model and seed.
    """

    def __init__(
        self,
        ds: Dataset,
        split: Split,
        objective: str,
        device: str | torch.device = "cpu",
        positive_threshold: float = 4.0,
        ks: tuple[int, ...] = (10, 20),
        batch_size: int = 1 << 16,
        progress: bool = False,
    ):
        self.ds, self.split, self.objective, self.device = ds, split, objective, device
        self.positive_threshold, self.ks, self.batch_size = (
            positive_threshold,
            tuple(ks),
            batch_size,
        )
        self.progress = progress
        self.examples = {
            part: eval_examples(ds, split, part, objective, positive_threshold)
            for part in ("val", "test")
        }
        self.tensors = {
            part: ExampleTensors.from_examples(ex, device) for part, ex in self.examples.items()
        }
        if objective == "explicit":
            train_ratings = ds.ratings[split.train]
            self.rating_range = (float(train_ratings.min()), float(train_ratings.max()))
        else:
            self.rating_range = (0.0, 1.0)

    def metrics(self, labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
        return score_metrics(
            self.objective, labels, scores, self.positive_threshold, self.rating_range
        )

    def validate(self, model: nn.Module) -> dict[str, float]:
        """Overall validation metrics: the ``evaluate`` callback for :func:`src.training.fit`."""
        return self.metrics(
            self.examples["val"].labels, predict(model, self.tensors["val"], self.batch_size)
        )

    def val_threshold(self, model: nn.Module) -> float:
        """The probability threshold with the best validation F1 (binary objectives), to apply on
        test."""
        if self.objective == "explicit":
            raise ValueError("a decision threshold needs a binary objective (implicit or liked)")
        scores = predict(model, self.tensors["val"], self.batch_size)
        return best_f1_threshold(self.examples["val"].labels, sigmoid(scores))

    def evaluate(
        self,
        model: nn.Module,
        part: str = "test",
        ranking: bool = True,
        threshold: float | None = None,
    ) -> dict[str, Any]:
        """Overall and per-slice metrics on ``part``; implicit adds full-catalogue ranking metrics.

        With ``threshold`` (e.g. :meth:`val_threshold`), binary objectives also
        report precision/recall/F1/accuracy of ``p >= threshold`` as ``*_at_val_threshold``.
        """
        ex = self.examples[part]
        scores = predict(model, self.tensors[part], self.batch_size)
        masks = row_slices(self.ds, self.split, ex.group_row)

        def metrics(labels: np.ndarray, s: np.ndarray) -> dict[str, float]:
            out = self.metrics(labels, s)
            if threshold is not None:
                out.update(
                    {
                        f"{k}_at_val_threshold": v
                        for k, v in binary_report(labels, sigmoid(s), threshold).items()
                    }
                )
            return out

        report: dict[str, Any] = {
            "overall": metrics(ex.labels, scores),
            "slices": slice_report(lambda m: metrics(ex.labels[m], scores[m]), masks),
        }
        if ranking and self.objective == "implicit":
            report["ranking"] = self.ranking(model, part)
        return report

    def top_lists(
        self, model: nn.Module, part: str, k: int, with_scores: bool = False
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
        """Each ``part`` user's top-k over the catalogue ("all") and among cold items ("cold").

        Returns (users, held-out (user position, item) pairs, cold mask of the held-out rows,
        the lists from :func:`top_k_items`).
        """
        ds, split = self.ds, self.split
        rows = getattr(split, part)
        earlier = split.train if part == "val" else np.concatenate([split.train, split.val])
        users = np.unique(ds.users[rows])
        user_pos = np.full(ds.n_users, -1, dtype=np.int64)
        user_pos[users] = np.arange(len(users))
        exclude = csr(user_pos[ds.users[earlier]], ds.items[earlier], len(users))
        held_out = (user_pos[ds.users[rows]], ds.items[rows])
        targets = csr(*held_out, len(users))
        cold_rows = split.is_cold(ds.items[rows])
        candidates = {"all": None, **({"cold": split.cold_items} if cold_rows.any() else {})}
        top = top_k_items(
            model,
            users,
            k,
            ds.n_items,
            exclude,
            targets,
            candidates,
            self.device,
            f"rank {part}",
            self.progress,
            with_scores,
        )
        return users, held_out, cold_rows, top

    def predictions(
        self, model: nn.Module, part: str = "test", top_k: int = 100, ranking: bool = True
    ) -> dict[str, tuple[dict[str, Any], dict[str, np.ndarray]]]:
        """What to save of ``model`` on ``part`` (utils/evaluation/predictions.py):
        {kind: (meta, columns)}.

        "pointwise": every evaluation example's raw score, with its label and the item whose
        slice it counts in (a sampled negative counts in its positive's); "ranking"
        (implicit, with ``ranking``): each user's top ``top_k`` (at least the largest reported
        cut-off) over the catalogue and among cold items, with scores.
        """
        ds, ex = self.ds, self.examples[part]
        meta = {
            "objective": self.objective,
            "positive_threshold": self.positive_threshold,
            "rating_range": list(self.rating_range),
        }
        out = {
            "pointwise": (
                {**meta, "note": "scores: the raw model output (a rating, or a logit)"},
                {
                    "users": id_strings(ds.user_ids, ex.users),
                    "items": id_strings(ds.item_ids, ex.items),
                    "slice_items": id_strings(ds.item_ids, ds.items[ex.group_row]),
                    "labels": ex.labels,
                    "scores": predict(model, self.tensors[part], self.batch_size),
                },
            )
        }
        if ranking and self.objective == "implicit":
            # At least as long as the reported cut-offs, so the lists can reproduce the metrics.
            k = max(top_k, *self.ks)
            users, _, _, top = self.top_lists(model, part, k, with_scores=True)
            columns = {
                "users": id_strings(ds.user_ids, users),
                "items": id_strings(ds.item_ids, top["all"]),
                "scores": top["all_scores"],
            }
            if "cold" in top:
                columns["cold_items"] = id_strings(ds.item_ids, top["cold"])
            note = (
                "full-catalogue top-k without the user's train/val items; cold_items: the "
                "top-k among cold items; a held-out item's score is nudged one float step "
                "down (ties count against it)"
            )
            out["ranking"] = (
                {**meta, "tie_rule": "pessimistic", "k_reported": max(self.ks), "note": note},
                columns,
            )
        return out

    def ranking(self, model: nn.Module, part: str = "test") -> dict[str, Any]:
        """Recall@k / NDCG@k of each user's held-out items over the whole catalogue.

        Excluded from each user's candidates: the items of the user's earlier
        splits (training items; for test also validation items), which the
        user is known to have consumed already. A held-out item the user had
        also consumed earlier stays excluded, i.e. counts as a miss.

        Slices use the same row masks as the pointwise metrics, applied to the
        held-out (user, item) pairs: a user slice keeps all of its users'
        held-out items; an item slice (head/mid/tail, cold, warm) keeps only the
        held-out items in that slice as relevant, ranked against the full
        catalogue, so ``cold_items`` answers "does the new item reach the top k
        of the user who later consumed it". ``n`` counts held-out pairs and
        ``users`` the users averaged over. ``cold_catalogue`` ranks each user's
        held-out cold items among the cold items only (the classic
        new-item recommendation task), with the chance level k / n_cold.
        """
        ds, split = self.ds, self.split
        rows = getattr(split, part)
        users, held_out, cold_rows, top = self.top_lists(model, part, max(self.ks))

        def held_out_metrics(mask: np.ndarray, top: np.ndarray) -> dict[str, float]:
            """Recall/NDCG@ks of the held-out pairs in ``mask`` against the users' lists ``top``."""
            present = np.unique(held_out[0][mask])
            local = np.full(len(users), -1, dtype=np.int64)
            local[present] = np.arange(len(present))
            offsets, items = csr(local[held_out[0][mask]], held_out[1][mask], len(present))
            per_user = multi_target_ranking(top[present], offsets, items, self.ks)
            return {"users": int(len(present)), **{m: float(v.mean()) for m, v in per_user.items()}}

        report: dict[str, Any] = {
            "overall": held_out_metrics(np.ones(len(rows), dtype=bool), top["all"]),
            "slices": slice_report(
                lambda mask: held_out_metrics(mask, top["all"]), row_slices(ds, split, rows)
            ),
        }
        if "cold" in top:
            n_cold = len(split.cold_items)
            report["cold_catalogue"] = {
                "n": int(cold_rows.sum()),
                "candidates": n_cold,
                **held_out_metrics(cold_rows, top["cold"]),
                **{f"chance_recall@{k}": min(1.0, k / n_cold) for k in self.ks},
            }
        return report
