"""Decoding variants and hybrids of trained sequential checkpoints, evaluation only (issue 20):
TIGER's beam search at several widths, the tuned SASRec, SASRec re-scoring TIGER's beam and
TIGER re-scoring SASRec's top list (src/sequential/hybrid.py), each under the paper protocol's
two ranking rules (paper: every item; filtered: the user's earlier items removed) on validation
and test. A hybrid's weight w (1 = the proposer alone) is chosen per rule on validation NDCG@10
and applied once to test; its pure re-scoring (w = 0) is reported beside it.
A filtered TIGER list under 10 items (its beam's prefixes led to history items) is topped up
from a wider beam (the counts are reported); every filtered list is checked to hold 10 items and
no history item.

    # the checkpoints of seed 0 under checkpoints/ (tiger_train_eval.py --reference wrote them)
    python benchmarks/sweep_decoding.py --seed 0
    # a smoke run on the first 300 users, checking the plain models against the saved lists
    python benchmarks/sweep_decoding.py --seed 0 --users 300 --out /tmp/dry.json \\
        --check-against results/sequential_beauty_paper_tiger_seed0.json \\
        results/sequential_beauty_paper_ids_seed0.json

--check-against compares the plain TIGER (at the results file's beam) and SASRec with a
tiger_train_eval.py results file: every metric on all users, or with --users the saved test
lists of those users (the predictions beside the results file).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.sequential.beam_search import build_trie  # noqa: E402
from src.sequential.hybrid import (  # noqa: E402
    SELECT_BY,
    W_GRID,
    Rescored,
    check_filtered,
    interpolate,
    list_ranks,
    scorer_candidate_scores,
    select_weight,
    tiger_candidate_scores,
)
from src.sequential.protocols import PROTOCOLS, ranking_rules  # noqa: E402
from src.sequential.ranking import (  # noqa: E402
    score_rank,
    score_top_k,
    tiger_rank,
    user_buckets,
)
from src.sequential.sequence_data import build_sequence_data  # noqa: E402
from src.serving.checkpoint import load_trained  # noqa: E402
from utils.evaluation.metrics import next_item_metrics  # noqa: E402
from utils.evaluation.predictions import load_predictions, predictions_dir  # noqa: E402
from utils.reporting.results import dig, write_results  # noqa: E402
from utils.reporting.runinfo import RunRecord  # noqa: E402
from utils.runtime import argtypes  # noqa: E402
from utils.runtime.cli import HelpFormatter, setup_logging  # noqa: E402
from utils.runtime.environment import resolve_device, seed_everything  # noqa: E402
from utils.runtime.errors import UsageError, add_debug_flag, run_script  # noqa: E402
from utils.runtime.io import check_writable, lock_output, read_json  # noqa: E402

log = logging.getLogger("sweep_decoding")
TIGER_CKPT = "checkpoints/tiger-tiger_item-beauty-quick-paper-seed{seed}-ids254bc5e6f726.pt"
SASREC_CKPT = "checkpoints/tiger-sasrec-beauty-quick-paper-seed{seed}.pt"
FOLDS = ("val", "test")
users = argtypes.bounded(int, 0, 10**7, why="no data set here has more users")
weight = argtypes.bounded(float, 0.0, 1.0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--seed", type=argtypes.seed, default=0, help="which checkpoints (and seeding)")
    p.add_argument("--data-dir", default="beauty", help="prepared data the checkpoints trained on")
    p.add_argument("--semantic-dir", help="TIGER's semantic IDs (default: its checkpoint's)")
    p.add_argument("--tiger-checkpoint", help=f"TIGER checkpoint (default: {TIGER_CKPT})")
    p.add_argument("--sasrec-checkpoint", help=f"SASRec checkpoint (default: {SASREC_CKPT})")
    p.add_argument("--users", type=users, default=0, help="evaluate the first N users (0 = all)")
    p.add_argument(
        "--beams", nargs="+", type=argtypes.list_length, default=[20, 50], help="TIGER beams"
    )
    p.add_argument("--sasrec-top", type=argtypes.list_length, default=50, help="SASRec's list")
    p.add_argument("--weights", nargs="+", type=weight, default=list(W_GRID), help="w grid")
    p.add_argument("--batch-size", type=argtypes.batch_size, default=256, help="users a batch")
    p.add_argument("--check-against", nargs="*", default=[], help="tiger_train_eval.py results")
    p.add_argument("--out", default="results/decoding_sweep_seed{seed}.json", help="results")
    p.add_argument("--threads", type=argtypes.threads, default=1, help="torch threads (0: own)")
    p.add_argument("--device", type=argtypes.device_name, default="auto", help="or cpu, cuda")
    p.add_argument("--quiet", action="store_true", help="warnings and errors only")
    add_debug_flag(p)
    args = p.parse_args(argv)
    if 1.0 not in args.weights:
        raise UsageError("--weights must include 1 (the proposer alone)")
    return args


def check_pair(tiger: Any, sasrec: Any) -> None:
    """Both models of one paper-protocol split of the same data."""
    for t in (tiger, sasrec):
        if t.spec.get("protocol") != "paper":
            raise UsageError(f"{t.path}: a {t.spec.get('protocol')!r} run; give paper checkpoints")
    if tiger.kind != "tiger" or sasrec.kind != "sasrec":
        raise UsageError("--tiger-checkpoint must hold TIGER and --sasrec-checkpoint SASRec")
    if tiger.ds.checksum != sasrec.ds.checksum or not np.array_equal(
        tiger.split.train, sasrec.split.train
    ):
        raise UsageError("the two checkpoints were trained on different data or splits")


def report(ranks: dict[str, dict[str, np.ndarray]], seconds: float, **extra: Any) -> dict:
    """{val: {rule: metrics}, test: {rule: metrics}, seconds} from ranks[fold][rule]."""
    return {
        **{f: {r: next_item_metrics(v) for r, v in ranks[f].items()} for f in FOLDS},
        "seconds": round(seconds, 2),
        **extra,
    }


def same_lists(items: np.ndarray, scores: np.ndarray, saved: np.ndarray, saved_scores: Any) -> dict:
    """Our lists against saved ones (item indices) where the saved list has items: rows equal,
    rows differing only among near-tied saved scores (within 1e-4: batches of other users give
    float noise), and the largest score difference."""
    k = min(items.shape[1], saved.shape[1])
    items, scores, saved, saved_scores = items[:, :k], scores[:, :k], saved[:, :k], saved_scores
    both = (saved >= 0) & (items >= 0)
    diff = np.abs(np.where(both, scores, 0.0) - np.where(both, saved_scores[:, :k], 0.0)).max()
    wrong = (items != saved) & (saved >= 0)
    span = np.where(wrong, saved_scores[:, :k], -np.inf).max(1) + np.where(
        wrong, -saved_scores[:, :k], -np.inf
    ).max(1)
    swaps = wrong.any(1) & (span < 1e-4)
    return {
        "rows_identical": float(1 - wrong.any(1).mean()),
        "rows_near_tie_swaps": int(swaps.sum()),
        "rows_refilled_here": int(((items >= 0).sum(1) > (saved >= 0).sum(1)).sum()),
        "max_score_diff": float(diff),
        "ok": bool(diff < 1e-4 and (wrong.any(1) == swaps).all()),
    }


def compare(variant: dict, res_model: dict, saved: Any, ex: Any, ds: Any, n: int) -> dict:
    """A plain model against its tiger_train_eval.py report: every metric (all users), or with a
    user subset the saved test lists and the metrics they give on those users."""
    ours = {(f, r): variant[f][r] for f in FOLDS for r in ("paper", "filtered")}
    if saved is None:
        theirs = {(f, "paper"): res_model[f] for f in FOLDS}
        theirs.update({(f, "filtered"): res_model["filtered"][f] for f in FOLDS})
        diff = max(abs(ours[k][m] - theirs[k][m]) for k in ours for m in ours[k])
        return {"what": "every metric, all users", "max_abs_diff": diff, "match": diff <= 1e-6}
    users_here = ds.user_ids[ex.user.cpu().numpy()].astype(str)
    if not np.array_equal(saved["users"][:n].astype(str), users_here):
        return {"what": "saved test lists", "match": False, "note": "other users"}
    out: dict[str, Any] = {"what": f"saved test lists of the first {n} users"}
    index = {str(s): i for i, s in enumerate(ds.item_ids)}
    as_index = np.vectorize(lambda s: index.get(str(s), -1), otypes=[np.int64])
    for rule, key in (("paper", ""), ("filtered", "filtered_")):
        theirs = as_index(saved[f"{key}items"][:n])
        out[rule] = same_lists(*variant["lists"][rule], theirs, saved[f"{key}scores"][:n])
        t_m = next_item_metrics(list_ranks(theirs, ex.target))
        o_m = ours["test", rule]
        out[rule]["max_test_metric_diff"] = max(abs(t_m[m] - o_m[m]) for m in t_m)
    out["match"] = all(
        out[r]["ok"] and out[r]["max_test_metric_diff"] <= 1e-6 for r in ("paper", "filtered")
    )
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging(args.quiet)
    seed_everything(args.seed)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out.replace("{seed}", str(args.seed)))
    paths = {
        "tiger": args.tiger_checkpoint or TIGER_CKPT.format(seed=args.seed),
        "sasrec": args.sasrec_checkpoint or SASREC_CKPT.format(seed=args.seed),
    }
    check_writable({"--out": out}, inputs=[*paths.values(), *args.check_against])
    lock_output("--out", out)
    record = RunRecord(
        "benchmarks/sweep_decoding.py", {**vars(args), "checkpoints": paths}, args.seed
    )
    with record.stage("load"):
        tiger = load_trained(paths["tiger"], args.data_dir, args.semantic_dir, device)
        sasrec = load_trained(paths["sasrec"], args.data_dir, None, device)
        check_pair(tiger, sasrec)
        ds, sids, tm, sm = tiger.ds, tiger.sids, tiger.model, sasrec.model
        record.data_checksum = ds.checksum
        tdata = build_sequence_data(ds, tiger.split, tm.cfg.max_items)
        sdata = build_sequence_data(ds, tiger.split, sm.cfg.max_items)
    n = min(args.users or len(tdata.test), len(tdata.test))
    first = torch.arange(n)
    tex = {f: getattr(tdata, f).subset(first).to(device) for f in FOLDS}
    sex = {f: getattr(sdata, f).subset(first).to(device) for f in FOLDS}
    for f in FOLDS:  # the two models' examples are the same targets in the same order
        assert torch.equal(tex[f].rows, sex[f].rows)
    rules = ranking_rules(
        PROTOCOLS["paper"], ds, tex["val"].rows.cpu().numpy(), tex["test"].rows.cpu().numpy()
    )
    tok = {f: user_buckets(tex[f].user, ds.user_ids, tm.cfg.user_tokens) for f in FOLDS}
    targets = {f: tex[f].target.cpu().numpy() for f in FOLDS}
    trie = build_trie(sids.codes, sids.codebook_sizes).to(device)
    bs, grid = args.batch_size, tuple(sorted(set(args.weights)))
    variants: dict[str, dict] = {}
    lists: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] = {}

    def checked(name: str, rule: Any, fold: str, items: np.ndarray, scores: np.ndarray) -> None:
        if rule.name == "filtered":
            check_filtered(items, getattr(rule, fold))
        lists[name, rule.name, fold] = (items, scores)

    for beam in args.beams:
        name, t0 = f"tiger_beam{beam}", time.perf_counter()
        ranks: dict[str, dict[str, np.ndarray]] = {f: {} for f in FOLDS}
        refilled: dict[str, dict[str, int]] = {f: {} for f in FOLDS}
        with record.stage(name):
            for rule in rules:
                for f in FOLDS:
                    hist = getattr(rule, f)
                    r = tiger_rank(tm, tex[f], trie, beam, bs, tok[f], history=hist)
                    ranks[f][rule.name] = r.ranks
                    refilled[f][rule.name] = r.topped_up
                    checked(name, rule, f, r.items, r.scores)
        variants[name] = report(
            ranks,
            time.perf_counter() - t0,
            what=f"TIGER, beam {beam}",
            lists_topped_up_to_10=refilled,
        )
    with record.stage("sasrec"):
        t0, ranks = time.perf_counter(), {f: {} for f in FOLDS}
        for rule in rules:
            for f in FOLDS:
                hist = getattr(rule, f)
                ranks[f][rule.name] = score_rank(sm, sex[f], bs, hist)[0]
                checked("sasrec", rule, f, *score_top_k(sm, sex[f], bs, args.sasrec_top, hist))
        variants["sasrec"] = report(ranks, time.perf_counter() - t0, what="SASRec, every item")

    hybrids = [
        (f"sasrec_rescores_tiger_beam{b}", f"tiger_beam{b}", "sasrec") for b in args.beams
    ] + [(f"tiger_rescores_sasrec_top{args.sasrec_top}", "sasrec", "tiger")]
    for name, proposer, rescorer in hybrids:
        t0 = time.perf_counter()
        chosen, val_by_w, rescore_only = {}, {}, {f: {} for f in FOLDS}
        ranks = {f: {} for f in FOLDS}
        with record.stage(name):
            for rule in rules:
                folds = {}
                for f in FOLDS:
                    items, scores = lists[proposer, rule.name, f]
                    if rescorer == "sasrec":
                        again = scorer_candidate_scores(sm, sex[f], items, bs)
                    else:
                        again = tiger_candidate_scores(tm, tex[f], items, bs, tok[f])
                    folds[f] = Rescored(items, scores, again, targets[f])
                choice = select_weight(folds["val"], folds["test"], grid, SELECT_BY)
                if rule.name == "filtered":
                    t = folds["test"]
                    check_filtered(
                        interpolate(t.items, t.proposer, t.rescorer, choice.w), rule.test
                    )
                chosen[rule.name] = choice.w
                val_by_w[rule.name] = {str(w): m for w, m in choice.val_by_w.items()}
                ranks["val"][rule.name] = choice.val_ranks
                ranks["test"][rule.name] = choice.test_ranks
                for f in FOLDS:
                    rescore_only[f][rule.name] = next_item_metrics(folds[f].ranks(0.0))
        variants[name] = report(
            ranks,
            time.perf_counter() - t0,
            what=f"{rescorer} re-scores {proposer}'s list; w chosen on validation {SELECT_BY}",
            chosen_w=chosen,
            val_by_w=val_by_w,
            rescore_only=rescore_only,
            proposer_seconds=variants[proposer]["seconds"],
        )
        log.info("%s: chosen w %s, test %s", name, chosen, variants[name]["test"]["paper"])

    checks = {}
    for path in args.check_against:
        res = read_json(path, "give a tiger_train_eval.py results file")
        for model, rep in (res.get("models") or {}).items():
            beam = dig(res, "run_record", "config", "preset_config", "beam") or 20
            name = "sasrec" if model == "sasrec" else f"tiger_beam{beam}"
            if name not in variants or not (model == "sasrec" or model.startswith("tiger")):
                continue
            saved = None
            if n < len(tdata.test):
                file = predictions_dir(path) / Path(rep["predictions"]["file"]).name
                saved = load_predictions(file, rep["predictions"]["sha256"])
            plain = {
                **variants[name],
                "lists": {r.name: lists[name, r.name, "test"] for r in rules},
            }
            checks[f"{name} vs {path}:{model}"] = compare(plain, rep, saved, tex["test"], ds, n)
            log.info("%s vs %s: %s", name, path, checks[f"{name} vs {path}:{model}"])

    results = {
        "task": "decoding variants and hybrids of trained TIGER and SASRec checkpoints (issue 20)",
        "dataset": ds.name,
        "protocol": "paper",
        "rankings": ["paper", "filtered"],
        "seed": args.seed,
        "users": "all" if n == len(tdata.test) else f"first {n}",
        "n_val_users": n,
        "n_test_users": n,
        "normalisation": "per-user z-scores over the candidate list (src/sequential/hybrid.py)",
        "w_grid": list(grid),
        "w_selection": f"validation {SELECT_BY} per ranking rule; a tie goes to the larger w",
        "device": device,
        "variants": variants,
        "reproduction": checks,
    }
    write_results(out, results, record)
    log.info("wrote %s", out)


if __name__ == "__main__":
    run_script(main)
