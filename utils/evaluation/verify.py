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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from utils.data.slices import row_slices
from utils.evaluation.checks import LAYOUT_FIX, Check, no_unchecked_metrics, same_length, task
from utils.evaluation.predictions import (
    MissingPredictions,
    Predictions,
    collect,
    load_predictions,
    partial,
)
from utils.evaluation.verify_pointwise import verify_pointwise
from utils.reporting.catalog import VERIFIABLE, Found
from utils.reporting.results import RUN_RECORD, dig
from utils.runtime.errors import DataError

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


def rule_checks(
    path: str,
    name: str,
    rule: str,
    ranks: np.ndarray,
    block: dict[str, Any],
    slices: dict[str, np.ndarray],
    cold: np.ndarray,
) -> list[Check]:
    """One ranking rule's reported block (``test``, ``test_slices``, cold-target recall) against
    the ranks of its saved lists; ``rule`` prefixes each check's name ("" or "filtered ")."""
    got = single_target_metrics(ranks)
    no_unchecked_metrics(path, f"{name} {rule}test", block["test"], got)
    checks = [
        Check(path, name, f"{rule}test {m}", block["test"][m], got[m])
        for m in got
        if m in block["test"]
    ]
    for part, mask in slices.items():
        reported = block["test_slices"][part]
        no_unchecked_metrics(path, f"{name} {rule}{part}", reported, got)
        checks.append(Check(path, name, f"{rule}{part} n", reported["n"], int(mask.sum())))
        if mask.any():
            got = single_target_metrics(ranks[mask])
            checks += [
                Check(path, name, f"{rule}{part} {m}", reported[m], v) for m, v in got.items()
            ]
    if cold.any():
        recall = float((ranks[cold] < 10).mean())
        checks.append(
            Check(
                path,
                name,
                f"{rule}cold-target recall@10",
                block["cold_start_test_recall@10"],
                recall,
            )
        )
    return checks


def verify_sequential(path: Path, result: dict[str, Any]) -> list[Check]:
    """TIGER, SASRec and the baselines: under every saved ranking rule the test metrics, each
    test slice and the cold-item targets; TIGER's cold-share ranking."""
    checks: list[Check] = []
    missing: list[str] = []
    collect(
        list(result["models"].items()), lambda m: _verify_model(path, result, *m), checks, missing
    )
    return partial(checks, missing)


@dataclass
class TestLists:
    """One model's saved test lists with what they are judged against: the data set and split
    they were ranked on, each listed user's test row and target item ID."""

    predictions: Predictions
    ds: Any
    split: Any
    users: list[str]
    rows: np.ndarray
    targets: np.ndarray

    def ranks(self, rule: str = "") -> np.ndarray:
        """The target's 0-based rank per user under a saved ranking rule ("" = the headline)."""
        column = f"{rule}_items" if rule else "items"
        same_length(self.predictions, ("users", column))
        return single_target_ranks(self.predictions, self.targets, column)


def load_test_lists(
    path: Path, name: str, rep: dict[str, Any], result: dict[str, Any]
) -> TestLists:
    """Model ``name``'s saved test lists of results file ``path``; lists of other users than
    the test set's are refused (a results file of another layout or data)."""
    record = rep.get("predictions")
    if record is None:
        raise MissingPredictions(
            f"{path}: {name} has no saved predictions; re-run with --save-predictions"
        )
    p = load_predictions(record["file"], record["sha256"])
    meta = p.meta
    if "train_on_validation" not in meta["split"]:  # saved before the flag: the results say
        moved = bool(dig(result, "split", "validation_rows_in_train"))
        meta = {**meta, "split": {**meta["split"], "train_on_validation": moved}}
    ds, split = task(meta)
    same_length(p, ("users", "items", "scores"))
    test_row = dict(zip(ds.user_ids[ds.users[split.test]].astype(str), split.test.tolist()))
    users = [str(u) for u in p["users"]]
    if sorted(users) != sorted(test_row):
        raise DataError(
            f"{path}: {name}'s predictions cover {len(set(users))} distinct users, the test "
            f"set has {len(test_row)} ({len(set(users) - set(test_row))} unknown); "
            f"{LAYOUT_FIX}"
        )
    rows = np.array([test_row[u] for u in users])
    return TestLists(p, ds, split, users, rows, ds.item_ids[ds.items[rows]].astype(str))


def _verify_model(
    path: Path, result: dict[str, Any], name: str, rep: dict[str, Any]
) -> list[Check]:
    """One sequential model of a results file (verify_sequential)."""
    checks: list[Check] = []
    lists = load_test_lists(path, name, rep, result)
    p, ds, split = lists.predictions, lists.ds, lists.split
    checks.append(Check(str(path), name, "test users", rep["n_test_users"], len(lists.users)))
    slices = row_slices(ds, split, lists.rows)
    cold = np.isin(lists.targets, ds.item_ids[split.cold_items].astype(str))
    checks += rule_checks(str(path), name, "", lists.ranks(), rep, slices, cold)
    for rule in p.meta.get("ranking_rules", [])[1:]:  # e.g. the filtered ranking
        rule_ranks = lists.ranks(rule)
        checks += rule_checks(str(path), name, f"{rule} ", rule_ranks, rep[rule], slices, cold)
    if cold.any() and "cold_share_items" in p:
        shared = single_target_ranks(p, lists.targets, "cold_share_items")
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


@dataclass
class FolderReport:
    """What ``--verify`` found in a set of results files, kept apart: numbers that were checked,
    checks that failed (or files refused as damaged), and files that could not be checked because
    their predictions are not here (with the command that writes them)."""

    checked: dict[str, list[Check]] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    missing: dict[str, tuple[str, str]] = field(default_factory=dict)  # file -> (why, command)

    @property
    def n_checked(self) -> int:
        return sum(len(c) for c in self.checked.values())

    @property
    def mismatches(self) -> list[Check]:
        return [c for checks in self.checked.values() for c in checks if not c.ok]


def verify_found(found: list[Found]) -> FolderReport:
    """Check every verifiable results file of ``found`` (utils/reporting/catalog.py)."""
    report = FolderReport()
    for f in found:
        if f.kind not in VERIFIABLE:
            continue
        try:
            report.checked[str(f.path)] = verify_results_file(f.path, f.result)
        except MissingPredictions as exc:
            report.missing[str(f.path)] = (str(exc).split(";")[0], rerun_command(f.result))
            if getattr(exc, "checks", None):  # what the predictions that are here recomputed
                report.checked[str(f.path)] = exc.checks
        except ValueError as exc:
            report.refused[str(f.path)] = str(exc)
    return report


def rerun_command(result: dict[str, Any]) -> str:
    """The recorded command that writes these results again, with their predictions, to the same
    place: into the same run folder, or (a run that named neither --out nor a run folder: the
    Makefile's, before run folders) as the study's reference files."""
    command = dig(result, RUN_RECORD, "command") or "the script that wrote it"
    flags = command.split()
    run_dir = dig(result, RUN_RECORD, "config", "run_dir")
    if "--save-predictions" not in flags:
        command += " --save-predictions"
    if run_dir and "--run-dir" not in flags:
        command += f" --run-dir {run_dir}"
    elif not run_dir and not {"--out", "--reference"} & set(flags):
        command += " --reference"
    return command
