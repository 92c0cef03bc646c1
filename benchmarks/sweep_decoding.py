"""Decoding variants, hybrids and ensembles of trained sequential checkpoints, evaluation only
(issue 20): TIGER's beam search at several widths, the tuned SASRec, SASRec re-scoring TIGER's
beam and TIGER re-scoring SASRec's top list (src/sequential/hybrid.py), and with
--second-tiger the ensemble of TIGER on two ID sets (e.g. text-only and collaborative IDs), their
lists merged by score.

--protocol paper (default) ranks validation and test under both of that protocol's rules (paper:
every item; filtered: the user's earlier items removed); a hybrid's or ensemble's weight w (1 =
the first model alone) is chosen per rule on validation NDCG@10 and applied once to test, and a
hybrid's pure re-scoring (w = 0) is reported beside it.
--protocol holdout takes the holdout checkpoints (retrained on all but the last item, so no
validation fold is left) and ranks test under the filtered rule with each w a paper sweep chose
on validation (--weights-from; the same seed's, or seed 0's for seeds without paper checkpoints
of a model): the eSASRec benchmark's rule that configuration is fixed on validation before the
retraining.
A filtered TIGER list under 10 items (its beam's prefixes led to history items) is topped up
from a wider beam (the counts are reported); every filtered list is checked to hold 10 items and
no history item.

    # the checkpoints of seed 0 under checkpoints/ (tiger_train_eval.py --reference wrote them)
    python benchmarks/sweep_decoding.py --seed 0
    # the holdout checkpoints, each w from the paper sweep above
    python benchmarks/sweep_decoding.py --seed 0 --protocol holdout \\
        --weights-from results/decoding_sweep_seed0.json
    # a smoke run on the first 300 users, checking the plain models against the saved lists
    python benchmarks/sweep_decoding.py --seed 0 --users 300 --out /tmp/dry.json \\
        --check-against results/sequential_beauty_paper_tiger_seed0.json \\
        results/sequential_beauty_paper_ids_seed0.json

--check-against compares each plain model (TIGER at the results file's beam, matched by its
semantic IDs; SASRec) with a tiger_train_eval.py results file of the same protocol: every metric
on all users, or with --users the saved test lists of those users (the predictions beside the
results file).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.sequential.beam_search import build_trie  # noqa: E402
from src.sequential.hybrid import (  # noqa: E402
    SELECT_BY,
    W_GRID,
    Merged,
    Rescored,
    check_filtered,
    interpolate,
    scorer_candidate_scores,
    select_weight,
    tiger_candidate_scores,
)
from src.sequential.protocols import PROTOCOLS, RankingRule, ranking_rules  # noqa: E402
from src.sequential.ranking import (  # noqa: E402
    score_rank,
    score_top_k,
    tiger_rank,
    user_buckets,
)
from src.sequential.reproduction import compare  # noqa: E402
from src.sequential.sequence_data import SequenceExamples, build_sequence_data  # noqa: E402
from src.serving.checkpoint import Trained, load_trained  # noqa: E402
from utils.data.semantic import folder_ids_digest, ids_digest  # noqa: E402
from utils.evaluation.metrics import next_item_metrics  # noqa: E402
from utils.evaluation.predictions import load_predictions, predictions_dir  # noqa: E402
from utils.reporting.results import dig, write_results  # noqa: E402
from utils.reporting.runinfo import RunRecord  # noqa: E402
from utils.runtime import argtypes  # noqa: E402
from utils.runtime.cli import HelpFormatter, add_rerank_args, setup  # noqa: E402
from utils.runtime.errors import UsageError, run_script  # noqa: E402
from utils.runtime.io import check_writable, lock_output, read_json  # noqa: E402

log = logging.getLogger("sweep_decoding")
# {ids}: the digest of the IDs in --semantic-dir (default: --data-dir)
TIGER_CKPT = "checkpoints/tiger-tiger_item-beauty-quick-{protocol}-seed{seed}-ids{ids}.pt"
SASREC_CKPT = "checkpoints/tiger-sasrec-beauty-quick-{protocol}-seed{seed}.pt"
OUT = {
    "paper": "results/decoding_sweep_seed{seed}.json",
    "holdout": "results/decoding_sweep_holdout_seed{seed}.json",
}
FOLDS = ("val", "test")
weight = argtypes.bounded(float, 0.0, 1.0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--seed", type=argtypes.seed, default=0, help="which checkpoints (and seeding)")
    p.add_argument("--protocol", choices=sorted(OUT), default="paper", help="the runs' protocol")
    p.add_argument("--data-dir", default="beauty", help="prepared data the checkpoints trained on")
    p.add_argument("--semantic-dir", help="TIGER's semantic IDs (default: its checkpoint's)")
    p.add_argument("--tiger-checkpoint", help=f"TIGER checkpoint (default: {TIGER_CKPT})")
    p.add_argument("--sasrec-checkpoint", help=f"SASRec checkpoint (default: {SASREC_CKPT})")
    p.add_argument("--second-tiger", help="a TIGER checkpoint on other IDs: adds the ensemble")
    p.add_argument("--second-semantic-dir", help="the second TIGER's semantic IDs folder")
    p.add_argument("--weights-from", help="holdout: the paper sweep whose w to apply")
    p.add_argument(
        "--beams", nargs="+", type=argtypes.list_length, default=[20, 50], help="TIGER beams"
    )
    p.add_argument("--sasrec-top", type=argtypes.list_length, default=50, help="SASRec's list")
    p.add_argument("--weights", nargs="+", type=weight, default=list(W_GRID), help="w grid")
    add_rerank_args(p, f"results (default: {OUT['paper']}, holdout {OUT['holdout']})")
    args = p.parse_args(argv)
    if 1.0 not in args.weights:
        raise UsageError("--weights must include 1 (the proposer alone)")
    if (args.protocol == "holdout") != (args.weights_from is not None):
        raise UsageError(
            "--weights-from goes with --protocol holdout (which has no validation fold to choose "
            "w on): give the paper sweep of the same seed"
        )
    if args.second_semantic_dir and not args.second_tiger:
        raise UsageError("--second-semantic-dir goes with --second-tiger")
    return args


def check_models(protocol: str, tiger: Any, sasrec: Any, second: Any) -> None:
    """Every model a ``protocol`` run on the same data and split; the second TIGER on other IDs."""
    for t in (tiger, sasrec, second):
        if t is not None and t.spec.get("protocol") != protocol:
            raise UsageError(
                f"{t.path}: a {t.spec.get('protocol')!r} run; give {protocol} checkpoints"
            )
    if tiger.kind != "tiger" or sasrec.kind != "sasrec" or (second and second.kind != "tiger"):
        raise UsageError(
            "--tiger-checkpoint and --second-tiger must hold TIGER, --sasrec-checkpoint SASRec"
        )
    for other in (sasrec, second):
        if other is not None and (
            tiger.ds.checksum != other.ds.checksum
            or not np.array_equal(tiger.split.train, other.split.train)
        ):
            raise UsageError(f"{other.path}: trained on other data or another split than TIGER")
    if second is not None and ids_digest(second.sids) == ids_digest(tiger.sids):
        raise UsageError(
            f"--second-tiger {second.path}: the same semantic IDs as the first TIGER; an "
            "ensemble needs another ID set (--second-semantic-dir)"
        )


def fixed_weights(path: str, names: list[str]) -> tuple[dict[str, float], int]:
    """The filtered rule's w the paper sweep ``path`` chose on validation for each of ``names``,
    and that sweep's seed. Usually the same seed's sweep; another seed's where that seed has no
    paper checkpoints of a model (the configuration is then fixed once, on that seed)."""
    sweep = read_json(path, "give a paper-protocol decoding sweep")
    if not isinstance(sweep, dict) or sweep.get("protocol") != "paper":
        raise UsageError(f"--weights-from {path}: not a paper-protocol sweep")
    chosen = {n: dig(sweep, "variants", n, "chosen_w", "filtered") for n in names}
    missing = [n for n, w in chosen.items() if not isinstance(w, float)]
    if missing:
        raise UsageError(
            f"--weights-from {path}: no filtered w for {', '.join(missing)}; run the paper sweep "
            "with the same --beams, --sasrec-top and --second-tiger first"
        )
    return chosen, int(sweep["seed"])


def report(ranks: dict[str, dict[str, np.ndarray]], seconds: float, **extra: Any) -> dict[str, Any]:
    """{fold: {rule: metrics}, seconds} from ranks[fold][rule]."""
    return {
        **{f: {r: next_item_metrics(v) for r, v in rules.items()} for f, rules in ranks.items()},
        "seconds": round(seconds, 2),
        **extra,
    }


@dataclass
class Sweep:
    """One protocol's evaluation examples of both models, and the lists and metrics of every
    variant ranked so far (``lists[name, rule, fold]`` = (items, scores), kept for the hybrids)."""

    args: argparse.Namespace
    record: RunRecord
    protocol: str
    tiger: Trained
    sasrec: Trained
    second: Trained | None  # TIGER on a second ID set (--second-tiger), for the ensemble
    folds: tuple[str, ...]
    rules: list[RankingRule]
    tex: dict[str, SequenceExamples]  # TIGER's examples per fold
    sex: dict[str, SequenceExamples]  # SASRec's: the same targets, its own history window
    n_all: int  # the fold's users (the examples may be the first --users of them)
    variants: dict[str, dict] = field(default_factory=dict)
    lists: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ds, cfg = self.tiger.ds, self.tiger.model.cfg
        self.tok = {
            f: user_buckets(self.tex[f].user, ds.user_ids, cfg.user_tokens) for f in self.folds
        }
        self.targets = {f: self.tex[f].target.cpu().numpy() for f in self.folds}

    def keep(
        self, name: str, rule: RankingRule, fold: str, items: np.ndarray, scores: np.ndarray
    ) -> None:
        """Keep a variant's lists, refusing a filtered one with a history item or under 10 items."""
        if rule.name == "filtered":
            check_filtered(items, getattr(rule, fold))
        self.lists[name, rule.name, fold] = (items, scores)

    def rank_tiger(self, label: str, trained: Trained) -> None:
        """TIGER's beam search at each --beams width under every rule and fold."""
        trie = build_trie(trained.sids.codes, trained.sids.codebook_sizes).to(trained.device)
        for beam in self.args.beams:
            name, t0 = f"{label}_beam{beam}", time.perf_counter()
            ranks: dict[str, dict[str, np.ndarray]] = {f: {} for f in self.folds}
            refilled: dict[str, dict[str, int]] = {f: {} for f in self.folds}
            with self.record.stage(name):
                for rule, f in product(self.rules, self.folds):
                    ex, hist = self.tex[f], getattr(rule, f)
                    bs = self.args.batch_size
                    r = tiger_rank(trained.model, ex, trie, beam, bs, self.tok[f], history=hist)
                    ranks[f][rule.name] = r.ranks
                    refilled[f][rule.name] = r.topped_up
                    self.keep(name, rule, f, r.items, r.scores)
            self.variants[name] = report(
                ranks,
                time.perf_counter() - t0,
                what=f"TIGER on IDs {ids_digest(trained.sids)}, beam {beam}",
                lists_topped_up_to_10=refilled,
            )

    def rank_sasrec(self) -> None:
        """SASRec's full-catalogue ranking, and its top --sasrec-top list for the hybrids."""
        sm, bs, t0 = self.sasrec.model, self.args.batch_size, time.perf_counter()
        ranks: dict[str, dict[str, np.ndarray]] = {f: {} for f in self.folds}
        with self.record.stage("sasrec"):
            for rule, f in product(self.rules, self.folds):
                ex, hist = self.sex[f], getattr(rule, f)
                ranks[f][rule.name] = score_rank(sm, ex, bs, hist)[0]
                self.keep("sasrec", rule, f, *score_top_k(sm, ex, bs, self.args.sasrec_top, hist))
        self.variants["sasrec"] = report(ranks, time.perf_counter() - t0, what="SASRec, every item")

    def fold_data(
        self, proposer: str, how: str, rule: str, f: str, partner: str | None
    ) -> Rescored | Merged:
        """What a combined variant ranks on one fold: the proposer's lists re-scored by the other
        model (``how`` = 'sasrec' or 'tiger'), or merged with variant ``partner``'s ('merge')."""
        items, scores = self.lists[proposer, rule, f]
        if how == "merge":
            return Merged(items, scores, *self.lists[partner, rule, f], self.targets[f])
        bs = self.args.batch_size
        if how == "sasrec":
            again = scorer_candidate_scores(self.sasrec.model, self.sex[f], items, bs)
        else:
            again = tiger_candidate_scores(self.tiger.model, self.tex[f], items, bs, self.tok[f])
        return Rescored(items, scores, again, self.targets[f])

    def combine(
        self,
        name: str,
        proposer: str,
        how: str,
        fixed: dict[str, float] | None,
        partner: str | None = None,
    ) -> None:
        """One hybrid or ensemble (``how`` 'merge': proposer's and ``partner``'s lists merged): w
        chosen per rule on validation, or ``fixed[name]`` (holdout)."""
        t0, grid = time.perf_counter(), tuple(sorted(set(self.args.weights)))
        chosen: dict[str, float] = {}
        val_by_w: dict[str, dict] = {}
        rescore_only: dict[str, dict] = {f: {} for f in self.folds}
        ranks: dict[str, dict[str, np.ndarray]] = {f: {} for f in self.folds}
        with self.record.stage(name):
            for rule in self.rules:
                data = {f: self.fold_data(proposer, how, rule.name, f, partner) for f in self.folds}
                if fixed is None:
                    choice = select_weight(data["val"], data["test"], grid, SELECT_BY)
                    w = choice.w
                    val_by_w[rule.name] = {str(k): m for k, m in choice.val_by_w.items()}
                    ranks["val"][rule.name] = choice.val_ranks
                    ranks["test"][rule.name] = choice.test_ranks
                else:
                    w = fixed[name]
                    ranks["test"][rule.name] = data["test"].ranks(w)
                chosen[rule.name] = w
                if how == "merge":
                    continue
                for f in self.folds:
                    rescore_only[f][rule.name] = next_item_metrics(data[f].ranks(0.0))
                if rule.name == "filtered":
                    t = data["test"]
                    check_filtered(interpolate(t.items, t.proposer, t.rescorer, w), rule.test)
        merged = how == "merge"
        what = (
            f"{proposer}'s and {partner}'s lists merged by score"
            if merged
            else f"{how} re-scores {proposer}'s list"
        )
        chose = f"the paper sweep {self.args.weights_from}" if fixed else f"validation {SELECT_BY}"
        self.variants[name] = report(
            ranks,
            time.perf_counter() - t0,
            what=f"{what}; w chosen on {chose}",
            chosen_w=chosen,
            **({"val_by_w": val_by_w} if val_by_w else {}),
            **({} if merged else {"rescore_only": rescore_only}),
            proposer_seconds=self.variants[proposer]["seconds"],
        )
        log.info("%s: w %s, test %s", name, chosen, self.variants[name]["test"][self.rules[0].name])

    def reproduce(self, path: str, tigers: list[tuple[str, Trained]]) -> dict[str, dict]:
        """Each plain model of the tiger_train_eval.py results file ``path`` against ours."""
        res = read_json(path, "give a tiger_train_eval.py results file")
        protocol, ds, n = self.protocol, self.tiger.ds, len(self.tex["test"])
        if res.get("protocol") != protocol:
            raise UsageError(f"--check-against {path}: not a {protocol}-protocol run")
        digest = dig(res, "semantic_ids", "ids_digest")
        beam = dig(res, "run_record", "config", "preset_config", "beam") or 20
        label = next((lb for lb, t in tigers if ids_digest(t.sids) == digest), "tiger")
        checks = {}
        for model, rep in (res.get("models") or {}).items():
            if model != "sasrec" and not model.startswith("tiger"):
                continue
            name = "sasrec" if model == "sasrec" else f"{label}_beam{beam}"
            if name not in self.variants:
                continue
            saved = None
            if n < self.n_all:
                file = predictions_dir(path) / Path(rep["predictions"]["file"]).name
                saved = load_predictions(file, rep["predictions"]["sha256"])
            plain = {
                **self.variants[name],
                "folds": self.folds,
                "lists": {r.name: self.lists[name, r.name, "test"] for r in self.rules},
            }
            checks[f"{name} vs {path}:{model}"] = compare(
                plain, rep, protocol, saved, self.tex["test"], ds, n
            )
            log.info("%s vs %s: %s", name, path, checks[f"{name} vs {path}:{model}"])
        return checks


def load_sweep(
    args: argparse.Namespace, record: RunRecord, paths: dict[str, str], device: str
) -> Sweep:
    """The checkpoints (checked to be one protocol's run on one split) and their examples."""
    protocol = PROTOCOLS[args.protocol]
    folds = ("test",) if protocol.train_on_validation else FOLDS  # holdout: val trained on
    with record.stage("load"):
        tiger = load_trained(paths["tiger"], args.data_dir, args.semantic_dir, device)
        sasrec = load_trained(paths["sasrec"], args.data_dir, None, device)
        second = None
        if args.second_tiger:
            second = load_trained(
                args.second_tiger, args.data_dir, args.second_semantic_dir, device
            )
        check_models(protocol.name, tiger, sasrec, second)
        ds = tiger.ds
        record.data_checksum = ds.checksum
        tdata = build_sequence_data(ds, tiger.split, tiger.model.cfg.max_items)
        sdata = build_sequence_data(ds, tiger.split, sasrec.model.cfg.max_items)
    n = min(args.users or len(tdata.test), len(tdata.test))
    first = torch.arange(n)
    tex = {f: getattr(tdata, f).subset(first).to(device) for f in folds}
    sex = {f: getattr(sdata, f).subset(first).to(device) for f in folds}
    for f in folds:  # the two models' examples are the same targets in the same order
        assert torch.equal(tex[f].rows, sex[f].rows)
    val_rows = tex["val"].rows.cpu().numpy() if "val" in tex else np.zeros(0, dtype=np.int64)
    rules = ranking_rules(protocol, ds, val_rows, tex["test"].rows.cpu().numpy())
    return Sweep(
        args, record, protocol.name, tiger, sasrec, second, folds, rules, tex, sex, len(tdata.test)
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = setup(args)
    out = Path((args.out or OUT[args.protocol]).replace("{seed}", str(args.seed)))
    where = {"protocol": args.protocol, "seed": args.seed}
    paths = {
        "tiger": args.tiger_checkpoint
        or TIGER_CKPT.format(ids=folder_ids_digest(args.data_dir, args.semantic_dir), **where),
        "sasrec": args.sasrec_checkpoint or SASREC_CKPT.format(**where),
        **({"second_tiger": args.second_tiger} if args.second_tiger else {}),
    }
    inputs = [*paths.values(), *args.check_against, *filter(None, [args.weights_from])]
    check_writable({"--out": out}, inputs=inputs)
    lock_output("--out", out)
    record = RunRecord(
        "benchmarks/sweep_decoding.py", {**vars(args), "checkpoints": paths}, args.seed
    )
    sweep = load_sweep(args, record, paths, device)
    tigers = [("tiger", sweep.tiger)] + (
        [("tiger_other_ids", sweep.second)] if sweep.second else []
    )
    for label, trained in tigers:
        sweep.rank_tiger(label, trained)
    sweep.rank_sasrec()
    combined = [
        (f"sasrec_rescores_tiger_beam{b}", f"tiger_beam{b}", "sasrec", None) for b in args.beams
    ] + [(f"tiger_rescores_sasrec_top{args.sasrec_top}", "sasrec", "tiger", None)]
    if sweep.second:
        combined += [
            (f"ensemble_two_ids_beam{b}", f"tiger_beam{b}", "merge", f"tiger_other_ids_beam{b}")
            for b in args.beams
        ]
    fixed, weights_seed = None, args.seed
    if args.weights_from:
        fixed, weights_seed = fixed_weights(args.weights_from, [c[0] for c in combined])
    for name, proposer, how, partner in combined:
        sweep.combine(name, proposer, how, fixed, partner)
    checks = {}
    for path in args.check_against:
        checks.update(sweep.reproduce(path, tigers))

    n = len(sweep.tex["test"])
    results = {
        "task": "decoding variants, hybrids and ensembles of trained TIGER and SASRec checkpoints "
        "(issue 20)",
        "dataset": sweep.tiger.ds.name,
        "protocol": args.protocol,
        "rankings": [r.name for r in sweep.rules],
        "seed": args.seed,
        "users": "all" if n == sweep.n_all else f"first {n}",
        **{f"n_{f}_users": n for f in sweep.folds},
        "semantic_ids": {lb: ids_digest(t.sids) for lb, t in tigers},
        "normalisation": "per-user z-scores over the candidate list (src/sequential/hybrid.py)",
        "w_grid": sorted(set(args.weights)),
        "w_selection": f"validation {SELECT_BY} per ranking rule; a tie goes to the larger w"
        if fixed is None
        else f"the filtered rule's w of {args.weights_from} (chosen on seed {weights_seed}'s "
        "validation)",
        "device": sweep.tiger.device,
        "variants": sweep.variants,
        "reproduction": checks,
    }
    write_results(out, results, record)
    log.info("wrote %s", out)


if __name__ == "__main__":
    run_script(main)
