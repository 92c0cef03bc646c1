"""The cold-start ranking of the ensemble of two TIGERs (issue 20, item 4), evaluation only: TIGER
on text-only IDs and TIGER on collaborative IDs, both trained on the `cold` protocol (5% of items
held out of training and of the codebooks), and their ensemble, each ranked on test plainly and
with the paper's cold share (a share of the top 10 kept for the best cold items).

The ensemble merges the two warm beams and the two cold beams separately, then fills the top 10
from them (src/sequential/cold_ensemble.py). Its weight w is not chosen here: it is the one the
paper-protocol ensemble sweep chose on validation (--weights-from), so the winner of that sweep
is what is measured on cold items.

    make tiger-collab-cold   # the two cold checkpoints (and SASRec's, for the collaborative IDs)
    python benchmarks/cold_ensemble.py --seed 0 \\
        --check-against results/sequential_beauty_cold_tiger_seed0.json \\
        results/sequential_beauty_cold_tiger_collab_seed0.json

--check-against compares each TIGER alone with its tiger_train_eval.py results file of the same
checkpoint: every plain and cold-share metric (all users), or with --users the saved test lists.
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
from src.sequential.cold_ensemble import (  # noqa: E402
    ColdBeams,
    cold_beams,
    ensemble_cold_share,
    reserve_cold,
    weighted_log_probs,
)
from src.sequential.hybrid import list_ranks, merge_lists  # noqa: E402
from src.sequential.presets import PRESETS  # noqa: E402
from src.sequential.ranking import ColdStart, tiger_rank, user_buckets  # noqa: E402
from src.sequential.reproduction import METRIC_TOLERANCE  # noqa: E402
from src.sequential.sequence_data import SequenceExamples, build_sequence_data  # noqa: E402
from src.serving.checkpoint import Trained, load_trained  # noqa: E402
from utils.data.semantic import folder_ids_digest, ids_digest  # noqa: E402
from utils.evaluation.checks import index_of, list_indices  # noqa: E402
from utils.evaluation.metrics import by_target_coldness  # noqa: E402
from utils.evaluation.predictions import load_predictions, predictions_dir  # noqa: E402
from utils.reporting.results import dig, write_results  # noqa: E402
from utils.reporting.runinfo import RunRecord  # noqa: E402
from utils.runtime import argtypes  # noqa: E402
from utils.runtime.cli import HelpFormatter, add_rerank_args, setup  # noqa: E402
from utils.runtime.errors import UsageError, run_script  # noqa: E402
from utils.runtime.io import check_writable, lock_output, read_json  # noqa: E402

log = logging.getLogger("cold_ensemble")
# {ids}: the digest of the IDs each TIGER reads (--semantic-dir, --second-semantic-dir)
CKPT = "checkpoints/tiger-tiger_item-beauty-quick-cold-seed{seed}-ids{ids}.pt"
COLLAB_COLD_IDS = "data/beauty_collab_ids_cold"  # make tiger-collab-cold's
WEIGHTS = "results/decoding_sweep_ensemble_seed{seed}.json"
OUT = "results/cold_ensemble_seed{seed}.json"
share = argtypes.bounded(float, 0.0, 1.0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--seed", type=argtypes.seed, default=0, help="which checkpoints (and seeding)")
    p.add_argument("--data-dir", default="beauty", help="prepared data the checkpoints trained on")
    p.add_argument("--tiger-checkpoint", help=f"first TIGER (default: {CKPT}, text IDs)")
    p.add_argument("--second-tiger", help=f"second TIGER (default: {CKPT}, collaborative IDs)")
    p.add_argument("--semantic-dir", help="the first TIGER's IDs (default: its checkpoint's)")
    p.add_argument(
        "--second-semantic-dir",
        help=f"the second TIGER's IDs (default: its own; names its default checkpoint: "
        f"{COLLAB_COLD_IDS})",
    )
    p.add_argument("--weights-from", help=f"paper ensemble sweep whose w to use ({WEIGHTS})")
    p.add_argument("--beam", type=argtypes.list_length, default=20, help="beam of each search")
    p.add_argument(
        "--share", type=share, default=PRESETS["quick"].cold_share, help="top-10 share for cold"
    )
    add_rerank_args(p, f"results (default: {OUT})")
    return p.parse_args(argv)


def load_models(args: argparse.Namespace, paths: dict[str, str], device: str) -> list[Trained]:
    """The two TIGERs, checked to be cold-protocol runs on one split with other semantic IDs."""
    first = load_trained(paths["tiger"], args.data_dir, args.semantic_dir, device)
    second = load_trained(paths["second_tiger"], args.data_dir, args.second_semantic_dir, device)
    for t in (first, second):
        if t.kind != "tiger" or t.spec.get("protocol") != "cold":
            raise UsageError(f"{t.path}: not a TIGER trained on the cold protocol")
    if first.ds.checksum != second.ds.checksum or not np.array_equal(
        first.split.train, second.split.train
    ):
        raise UsageError(f"{second.path}: trained on other data or another split than the first")
    if ids_digest(first.sids) == ids_digest(second.sids):
        raise UsageError(f"{second.path}: the same semantic IDs as the first TIGER")
    return [first, second]


def chosen_weight(path: str, beam: int) -> float:
    """The w the paper-protocol ensemble sweep ``path`` chose on validation (paper rule)."""
    sweep = read_json(path, "give a paper-protocol ensemble sweep (make ensemble-sweep)")
    w = dig(sweep, "variants", f"ensemble_two_ids_beam{beam}", "chosen_w", "paper")
    if not isinstance(sweep, dict) or sweep.get("protocol") != "paper" or not isinstance(w, float):
        raise UsageError(f"--weights-from {path}: no paper-rule ensemble w at beam {beam}")
    return w


def sliced(lists: np.ndarray, targets: np.ndarray, target_cold: np.ndarray) -> dict[str, Any]:
    """Metrics of ranked lists over all test users, the cold-target and the warm-target ones."""
    return by_target_coldness(list_ranks(lists, targets), target_cold)


def reproduce(path: str, label: str, variant: dict, lists: np.ndarray, model: Trained) -> dict:
    """One TIGER against its tiger_train_eval.py run: every metric with all users, else the saved
    cold-share lists of the users evaluated."""
    rep = dig(read_json(path, "give a tiger_train_eval.py results file"), "models", "tiger_item")
    if not isinstance(rep, dict) or "cold_start" not in rep:
        raise UsageError(f"--check-against {path}: no cold-start TIGER run (protocol cold)")
    if variant["users"] == "all":
        ours = {**variant["cold_share"], "plain": variant["plain"]["all_users"]}
        theirs = {**rep["cold_start"], "plain": rep["test"]}
        diff = max(abs(v[m] - theirs[k][m]) for k, v in ours.items() for m in v if m != "n")
        return {"model": label, "max_abs_diff": diff, "match": diff <= METRIC_TOLERANCE}
    if dig(rep, "predictions", "file") is None:
        return {"model": label, "match": False, "note": "no saved test lists to compare with"}
    saved = load_predictions(
        predictions_dir(path) / Path(rep["predictions"]["file"]).name, rep["predictions"]["sha256"]
    )
    theirs = list_indices(saved["cold_share_items"][: len(lists)], index_of(model.ds.item_ids))
    same = float((theirs == lists[:, :10]).all(1).mean())
    return {"model": label, "saved_lists_identical": same, "match": same == 1.0}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = setup(args)
    where = {"seed": args.seed}
    out = Path(args.out or OUT.format(**where))
    paths = {
        "tiger": args.tiger_checkpoint
        or CKPT.format(ids=folder_ids_digest(args.data_dir, args.semantic_dir), **where),
        "second_tiger": args.second_tiger
        or CKPT.format(
            ids=folder_ids_digest(args.data_dir, args.second_semantic_dir or COLLAB_COLD_IDS),
            **where,
        ),
        "weights_from": args.weights_from or WEIGHTS.format(**where),
    }
    check_writable({"--out": out}, inputs=[*paths.values(), *args.check_against])
    lock_output("--out", out)
    record = RunRecord("benchmarks/cold_ensemble.py", {**vars(args), "paths": paths}, args.seed)
    w = chosen_weight(paths["weights_from"], args.beam)
    with record.stage("load"):
        models = load_models(args, paths, device)
        ds, split = models[0].ds, models[0].split
        record.data_checksum = ds.checksum
        is_cold = split.is_cold(np.arange(ds.n_items))
        if not is_cold.any():
            raise UsageError(f"{paths['tiger']}: its split holds no cold items")
    test: list[SequenceExamples] = []
    for t in models:
        data = build_sequence_data(ds, split, t.model.cfg.max_items).test
        n_all = len(data)
        test.append(data.subset(torch.arange(min(args.users or n_all, n_all))).to(device))
    targets = test[0].target.cpu().numpy()
    target_cold = is_cold[targets]
    toks = [
        user_buckets(ex.user, ds.user_ids, t.model.cfg.user_tokens) for t, ex in zip(models, test)
    ]
    n_users = "all" if len(test[0]) == n_all else f"first {len(test[0])}"

    plain: list[tuple[np.ndarray, np.ndarray]] = []
    beams: list[ColdBeams] = []
    variants: dict[str, dict] = {}
    own_lists: dict[str, np.ndarray] = {}  # each TIGER's cold-share lists, for --check-against
    for label, t, ex, tok in zip(("tiger", "tiger_other_ids"), models, test, toks):
        t0 = time.perf_counter()
        with record.stage(label):
            codes, sizes = t.sids.codes, t.sids.codebook_sizes
            trie = build_trie(codes, sizes).to(device)
            ranked = tiger_rank(t.model, ex, trie, args.beam, args.batch_size, tok)
            plain.append((ranked.items, ranked.scores))
            cold = ColdStart.build(codes, sizes, is_cold, args.share).to(device)
            beams.append(cold_beams(t.model, ex, cold, args.beam, args.batch_size, tok))
            own = weighted_log_probs([(t.model, ex, tok, 1.0)], args.batch_size)
            shared = reserve_cold(beams[-1].warm_items, beams[-1].cold_items, args.share, own)
        variants[label] = {
            "what": f"TIGER on IDs {ids_digest(t.sids)} ({t.path})",
            "users": n_users,
            "plain": sliced(ranked.items, targets, target_cold),
            "cold_share": sliced(shared, targets, target_cold),
            "seconds": round(time.perf_counter() - t0, 2),
        }
        own_lists[label] = shared
    t0 = time.perf_counter()
    with record.stage("ensemble"):
        merged = merge_lists(*plain[0], *plain[1], w)[0]
        both = [(t.model, ex, tok, wt) for t, ex, tok, wt in zip(models, test, toks, (w, 1 - w))]
        scorer = weighted_log_probs(both, args.batch_size)
        shared = ensemble_cold_share(beams[0], beams[1], w, args.share, scorer)
    variants["ensemble_two_ids"] = {
        "what": "the two TIGERs' lists merged by score (w of the first); with the cold share, warm "
        "and cold beams merged apart and the top 10 ordered by the weighted log-probability",
        "w": w,
        "plain": sliced(merged, targets, target_cold),
        "cold_share": sliced(shared, targets, target_cold),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    checks = []
    by_ids = {ids_digest(t.sids): (lb, t) for lb, t in zip(("tiger", "tiger_other_ids"), models)}
    for path in args.check_against:
        digest = dig(read_json(path), "semantic_ids", "ids_digest")
        if digest not in by_ids:
            raise UsageError(f"--check-against {path}: a run on neither TIGER's semantic IDs")
        label, t = by_ids[digest]
        checks.append(reproduce(path, label, variants[label], own_lists[label], t))
        log.info("%s vs %s: %s", label, path, checks[-1])
    for name, v in variants.items():
        log.info(
            "%s: cold-target Recall@10 %.4f with the share, all users %.4f",
            name,
            v["cold_share"]["cold_target_users"]["recall@10"],
            v["cold_share"]["all_users"]["recall@10"],
        )
    results = {
        "task": "cold-start ranking of the ensemble of TIGER on two ID sets (issue 20)",
        "dataset": ds.name,
        "protocol": "cold",
        "seed": args.seed,
        "users": n_users,
        "n_test_users": len(test[0]),
        "n_cold_items": int(is_cold.sum()),
        "cold_share": args.share,
        "beam": args.beam,
        "w_selection": f"the paper-rule w of {paths['weights_from']} (paper protocol, validation)",
        "semantic_ids": {lb: digest for digest, (lb, _) in by_ids.items()},
        "device": device,
        "variants": variants,
        "reproduction": checks,
    }
    write_results(out, results, record)
    log.info("wrote %s", out)


if __name__ == "__main__":
    run_script(main)
