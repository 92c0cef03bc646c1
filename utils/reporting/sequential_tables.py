"""The sequential stage's Markdown tables (TIGER, SASRec and the baselines): one run's table,
the mean ± std per protocol and ranking, the cold-study seeds and the full metric set by slice;
logged by ``tiger_train_eval.py`` and printed by ``summarize_results.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from utils.reporting.labels import model_label
from utils.reporting.results import RUN_RECORD, aggregate_seeds, dig, published_rows
from utils.reporting.tables import fmt, markdown_table

TIGER_METRICS = ["recall@5", "ndcg@5", "recall@10", "ndcg@10"]
TIGER_HEADER = [m.replace("recall", "Recall").replace("ndcg", "NDCG") for m in TIGER_METRICS]


def tiger_table(result: dict[str, Any], name: str = "") -> str:
    """The models of one sequential run beside the published numbers of its protocol
    (tiger_train_eval.py): the headline ranking's row per model, then its other rankings' rows
    (filtered); ``name``: the file."""
    protocol = result.get("protocol", "cold")  # files from before the protocols were named

    def row(model: str, ranking: str, m: dict[str, Any], extra: list[Any]) -> list[Any]:
        return [model, ranking] + [m["test"].get(k) for k in TIGER_METRICS] + extra

    rows = []
    for model, m in result["models"].items():
        headline = m.get("ranking", "paper")
        rows.append(
            row(
                model,
                headline,
                m,
                [
                    m["cold_start_test_recall@10"],
                    dig(m, "cold_start", "cold_target_users", "recall@10"),
                    m["epochs_run"],
                    f"{m['timing']['train_seconds']:.0f}",
                ],
            )
        )
        rows += [
            row(model, rule, m[rule], [None] * 4) for rule in result.get("rankings", [headline])[1:]
        ]
    rows += [
        [f"{model} (published)", result.get("rankings", ["paper"])[0]]
        + [p.get(k) for k in TIGER_METRICS]
        + [None] * 4
        for model, p in published_rows(result).items()
    ]
    record = result[RUN_RECORD]
    where = f"`{name}`: " if name else ""
    return (
        f"**Sequential models, {result['dataset']}, `{protocol}` protocol** "
        f"({where}leave-one-out, full-catalogue ranking, test set, "
        f"{result['preset']} preset, `{record['command']}`, {record['wall_seconds']:.0f} s)\n\n"
        + markdown_table(
            ["model", "ranking"]
            + TIGER_HEADER
            + ["cold Recall@10 (plain beam)", "cold Recall@10 (cold share)", "epochs", "train s"],
            rows,
        )
    )


PROTOCOL_METRICS = [*TIGER_METRICS, "mrr@20"]


def _preset_note(model: str, run: dict[str, Any]) -> str | None:
    """The preset and its epochs, where not the main job's quick preset."""
    if run.get("preset", "quick") == "quick":
        return None
    epochs = dig(run, "models", model, "epochs_run")
    return f"{run['preset']} preset{f', {epochs} epochs' if epochs else ''}"


def _ids_note(model: str, run: dict[str, Any]) -> str | None:
    """For TIGER on semantic IDs from another folder than the data set's own (e.g. collaborative
    IDs), that folder's name; models without semantic IDs share one row whatever the folder. The
    data set's own IDs quantized with the run's seed (``<dataset>_ids_seed<N>``, the Makefile's
    whole-pipeline seeds) are the data set's own."""
    ids_dir = dig(run, "semantic_ids", "dir")
    own = {run.get("dataset"), f"{run.get('dataset')}_ids_seed{run.get('seed')}"}
    if model.startswith("tiger") and ids_dir and Path(ids_dir).name not in own:
        return f"IDs {Path(ids_dir).name}"
    return None


def row_label(model: str, run: dict[str, Any], readable: bool = False) -> str:
    """A row's name: the model (its flag name, or with ``readable`` the name people read), with
    what differs from the main job's run of it."""
    notes = [n for n in (_preset_note(model, run), _ids_note(model, run)) if n]
    if readable:
        return ", ".join([model_label(model), *notes])
    return f"{model} ({', '.join(notes)})" if notes else model


def row_key(model: str, run: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """What puts runs in one row: the model, its preset, and other IDs by their digest, so seeds
    whose runs named the same IDs' folder differently share a row."""
    ids = dig(run, "semantic_ids", "ids_digest") if _ids_note(model, run) else None
    return model, _preset_note(model, run), ids


def in_protocol_tables(run: dict[str, Any]) -> bool:
    """Whether :func:`protocol_tables` shows this run: a complete run of a named protocol
    without hyperparameter overrides."""
    return bool(run.get("complete")) and "protocol" in run and not run.get("overrides")


def says_more_than_protocol_tables(run: dict[str, Any]) -> bool:
    """Whether the run's own table holds numbers the protocol tables lack: cold-start metrics
    (the others, epochs and train seconds aside, are the same numbers again)."""
    if not in_protocol_tables(run):
        return True
    return any(
        m.get("cold_start_test_recall@10") is not None
        or dig(m, "cold_start", "cold_target_users", "recall@10") is not None
        for m in run["models"].values()
    )


def protocol_tables(results: list[dict[str, Any]]) -> list[str]:
    """One table per protocol and ranking over the complete runs of each protocol (without
    hyperparameter overrides: those are other experiments): every model's test metrics as
    mean ± std over its seeds (the value alone for one seed), one row per model and preset
    (the main job's quick preset unnamed), with the published numbers of that protocol under
    its headline ranking."""
    by_protocol: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        if in_protocol_tables(r):
            by_protocol.setdefault(r["protocol"], []).append(r)
    tables = []
    for protocol, runs in by_protocol.items():
        for position, ranking in enumerate(runs[0]["rankings"]):
            groups: dict[tuple[str, str | None, str | None], list[dict[str, Any]]] = {}
            for r in runs:
                for model in r["models"]:
                    groups.setdefault(row_key(model, r), []).append(r)
            rows = []
            for (model, _, _), group in groups.items():
                label = row_label(model, max(group, key=lambda r: r["seed"]))  # newest naming
                blocks = [
                    r["models"][model] if position == 0 else r["models"][model][ranking]
                    for r in group
                ]
                seeds = sorted(r["seed"] for r in group)
                agg = aggregate_seeds([{"test": b["test"]} for b in blocks])["test"]
                rows.append(
                    [label, ", ".join(map(str, seeds))] + [agg.get(k) for k in PROTOCOL_METRICS]
                )
            if position == 0:
                rows += [
                    [f"{model} (published)", "–"] + [p.get(k) for k in PROTOCOL_METRICS]
                    for model, p in published_rows(runs[0]).items()
                ]
            tables.append(
                f"**{runs[0]['dataset']}, `{protocol}` protocol, `{ranking}` ranking** "
                f"(`tiger_train_eval.py --protocol {protocol}`, quick preset unless named; test "
                "set, mean ± std over seeds)\n\n"
                + markdown_table(
                    ["model", "seeds"] + TIGER_HEADER + ["MRR@20"],
                    rows,
                )
            )
    return tables


def seed_runs(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The complete quick-preset TIGER runs of the cold-start study (files from before the
    protocols were named) on the same semantic IDs as the first (other IDs: other experiments)."""
    runs = [
        r
        for r in results
        if r.get("complete") and r.get("preset") == "quick" and "protocol" not in r
    ]
    ids = [dig(r, "semantic_ids", "ids_digest") for r in runs]
    return [r for r, digest in zip(runs, ids) if digest == ids[0]]


def tiger_seeds_table(results: list[dict[str, Any]]) -> str | None:
    """Mean ± std over quick-preset runs that differ only in --seed (None with fewer than two
    seeds)."""
    runs = seed_runs(results)
    seeds = sorted({r.get("seed") for r in runs})
    if len(seeds) < 2:
        return None
    models = [m for m in runs[0]["models"] if all(m in r["models"] for r in runs)]
    rows = []
    for model in models:
        reps = [r["models"][model] for r in runs]
        agg = aggregate_seeds(
            [
                {
                    "test": rep["test"],
                    "cold": {
                        "plain": rep["cold_start_test_recall@10"],
                        "share": dig(rep, "cold_start", "cold_target_users", "recall@10"),
                    },
                    "train": rep["timing"]["train_seconds"],
                }
                for rep in reps
            ]
        )
        rows.append(
            [model]
            + [agg["test"][k] for k in TIGER_METRICS]
            + [agg["cold"].get("plain"), agg["cold"].get("share"), fmt(agg["train"], 0)]
        )
    rows += [
        [f"{model} (published)"] + [p[k] for k in TIGER_METRICS] + [None, None, None]
        for model, p in published_rows(runs[0]).items()
    ]
    return (
        f"**TIGER and SASRec, {runs[0]['dataset']}, mean ± std over seeds {seeds}** (quick preset, "
        "`tiger_train_eval.py --seed N`, one results file per seed; leave-one-out, full-catalogue "
        "ranking, test set)\n\n"
        + markdown_table(
            ["model"]
            + TIGER_HEADER
            + ["cold Recall@10 (plain beam)", "cold Recall@10 (cold share)", "train s"],
            rows,
        )
    )


NEXT_ITEM_COLUMNS = [
    ("Hit@1", "hit@1"),
    ("Hit@3", "hit@3"),
    ("NDCG@3", "ndcg@3"),
    ("Hit@5", "hit@5"),
    ("NDCG@5", "ndcg@5"),
    ("Hit@10", "hit@10"),
    ("NDCG@10", "ndcg@10"),
    ("MRR@20", "mrr@20"),
]
SLICE_ROWS = [
    ("all test users", None),
    ("head items", "item_head"),
    ("mid items", "item_mid"),
    ("tail items", "item_tail"),
    ("cold items", "cold_items"),
]


def next_item_table(results: list[dict[str, Any]]) -> str | None:
    """The seed's metric set (Hit/NDCG@1/3/5/10 = Recall, MRR@20) of TIGER and SASRec per test
    slice, mean ± std over the seeds (None without a run that reports it)."""
    runs = [
        r for r in seed_runs(results) if all("mrr@20" in m["test"] for m in r["models"].values())
    ]
    if not runs:
        return None
    models = [m for m in runs[0]["models"] if all(m in r["models"] for r in runs)]
    rows = []
    for model in models:
        per_seed = [
            {"all": r["models"][model]["test"], **r["models"][model]["test_slices"]} for r in runs
        ]
        agg = aggregate_seeds(per_seed)
        n_users = runs[0]["models"][model]["n_test_users"]
        for label, key in SLICE_ROWS:
            block = agg["all" if key is None else key]
            n = n_users if key is None else block["n"]["mean"]  # the same users in every seed
            rows.append([model, label, f"{n:,.0f}"] + [block[k] for _, k in NEXT_ITEM_COLUMNS])
    seeds = sorted({r.get("seed") for r in runs})
    return (
        f"**TIGER and SASRec, {runs[0]['dataset']}: the full metric set by test slice, mean ± std "
        f"over seeds {seeds}** (Recall@k = Hit@k with one target; MRR cut at 20, TIGER's beam)\n\n"
        + markdown_table(["model", "test slice", "users"] + [c for c, _ in NEXT_ITEM_COLUMNS], rows)
    )
