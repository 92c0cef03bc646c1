"""A page of what the sequential models recommend to a few test users, with titles and codes.

For a handful of test users chosen by seed (some where TIGER finds the next item and SASRec
does not, some the other way round, one whose next item is a cold item, and random ones), the
page lists the user's recent history, the true next item and each model's top 10 with titles
and semantic IDs, so a reader can see *why* semantic IDs help or hurt: TIGER's lists stay
inside the code prefixes of the history, SASRec's follow co-occurrence.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from utils.data.dataset import Dataset
from utils.evaluation.predictions import load_predictions
from utils.reporting.results import RUN_RECORD

HISTORY_SHOWN = 8
TOP_SHOWN = 10


def _title(ds: Dataset, item: int, width: int = 70) -> str:
    title = str(ds.meta.title[item]) or f"item {ds.item_ids[item]}"
    title = title.replace("|", "/")
    return title if len(title) <= width else title[: width - 1] + "…"


def _code(codes: np.ndarray, item: int) -> str:
    return "-".join(str(int(c)) for c in codes[item])


def pick_users(
    hits: dict[str, np.ndarray], cold_target: np.ndarray, seed: int, n_random: int = 2
) -> list[tuple[int, str]]:
    """(row, why) of the users to show: one per contrast where one exists, then random rows."""
    rng = np.random.default_rng(seed)
    names = list(hits)
    groups: list[tuple[str, np.ndarray]] = []
    if len(names) == 2:
        a, b = names
        groups += [
            (f"{a} finds the next item, {b} does not", hits[a] & ~hits[b]),
            (f"{b} finds the next item, {a} does not", hits[b] & ~hits[a]),
            ("both find the next item", hits[a] & hits[b]),
        ]
    groups.append(("the next item is a cold item (never in training)", cold_target))
    chosen: list[tuple[int, str]] = []
    for why, mask in groups:
        rows = np.flatnonzero(mask)
        if len(rows):
            chosen.append((int(rng.choice(rows)), why))
    taken = {row for row, _ in chosen}
    rest = np.setdiff1d(np.arange(len(cold_target)), list(taken))
    chosen += [
        (int(r), "random test user")
        for r in rng.choice(rest, min(n_random, len(rest)), replace=False)
    ]
    return chosen


def examples_page(
    result: dict[str, Any], ds: Dataset, codes: np.ndarray, cold_items: np.ndarray, seed: int = 0
) -> str:
    """Markdown: history, next item and each model's top 10 for some test users of a TIGER run."""
    index = {str(i): k for k, i in enumerate(ds.item_ids)}
    user_index = {str(u): k for k, u in enumerate(ds.user_ids)}
    lists = {
        name: load_predictions(rep["predictions"]["file"], rep["predictions"]["sha256"])
        for name, rep in result["models"].items()
        if "predictions" in rep
    }
    if not lists:
        raise ValueError(
            "the run saved no predictions; run tiger_train_eval.py with --save-predictions"
        )
    first = next(iter(lists.values()))
    users = first["users"]
    rows = {name: {u: r for r, u in enumerate(p["users"])} for name, p in lists.items()}
    # The test item is each user's last interaction (leave-one-out).
    targets = np.array([ds.sequence(user_index[u])[-1] for u in users])
    target_ids = ds.item_ids[targets].astype(str)
    hits = {
        name: np.array(
            [t in p["items"][rows[name][u], :TOP_SHOWN] for u, t in zip(users, target_ids)]
        )
        for name, p in lists.items()
    }
    cold = np.isin(targets, cold_items)
    lines = [
        f"# What the models recommend: {result['dataset']}, seed {result['seed']}",
        "",
        f"Test users of `{result[RUN_RECORD]['command']}` chosen with seed {seed}: for each,"
        f" the last {HISTORY_SHOWN} items of the history (oldest first), the true next item"
        f" and each model's top {TOP_SHOWN} (**bold** = the true next item). Codes are the"
        " item's semantic ID (3 levels + collision code). Made from the saved predictions "
        "(`tiger_train_eval.py --save-predictions`).",
    ]
    for row, why in pick_users(hits, cold, seed):
        user = users[row]
        history = ds.sequence(user_index[user])[:-1][-HISTORY_SHOWN:]
        target = targets[row]
        lines += ["", f"## User {user}: {why}", "", "| history | semantic ID |", "|---|---|"]
        lines += [f"| {_title(ds, i)} | {_code(codes, i)} |" for i in history]
        lines += [
            "",
            f"Next item: **{_title(ds, target)}** ({_code(codes, target)}"
            + (", cold" if cold[row] else "")
            + ")",
            "",
        ]
        header = " | ".join(f"{name} top {TOP_SHOWN}" for name in lists)
        lines += [f"| rank | {header} |", "|---" * (len(lists) + 1) + "|"]
        for rank in range(TOP_SHOWN):
            cells = []
            for name, p in lists.items():
                item = str(p["items"][rows[name][user], rank])
                if not item:
                    cells.append("–")
                    continue
                k = index[item]
                text = f"{_title(ds, k, 50)} ({_code(codes, k)})"
                cells.append(f"**{text}**" if k == target else text)
            lines.append(f"| {rank + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
