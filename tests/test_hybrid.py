"""Hybrid re-scoring and list merging (src/sequential/hybrid.py): re-ranking keeps the candidates,
w = 1 is the proposer's ranking, a list merged with itself is unchanged, TIGER's teacher-forced
scores are beam search's own, filtered lists stay full and history-free, and w is the best one
on validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from src.sequential.beam_search import build_trie
from src.sequential.hybrid import (
    W_GRID,
    Merged,
    Rescored,
    check_filtered,
    choose_weight,
    interpolate,
    list_ranks,
    merge_lists,
    scorer_candidate_scores,
    select_weight,
    standardise,
    tiger_candidate_scores,
)
from src.sequential.protocols import Histories
from src.sequential.ranking import refill, score_top_k, tiger_rank
from src.sequential.sasrec import SASRec, SASRecConfig
from src.sequential.sequence_data import SequenceExamples
from src.sequential.tiger import Tiger
from tests.helpers import benchmark_script
from tests.test_tiger import tiny

SIZES = [4, 4, 3]
N_ITEMS = 40


def tiny_tiger(encoder: str = "item", seed: int = 0) -> Tiger:
    """test_tiger's tiny model with two decoder layers, in eval mode."""
    return tiny(encoder, seed=seed, dec_layers=2).eval()


def tiny_sasrec(seed: int = 0) -> SASRec:
    torch.manual_seed(seed)
    return SASRec(N_ITEMS, SASRecConfig(d_model=16, n_layers=1, n_heads=2, max_items=6)).eval()


def examples(n: int = 9, seed: int = 0) -> tuple[SequenceExamples, Histories]:
    """Right-aligned histories of 1 to 6 distinct items, with every example's full history."""
    rng = np.random.default_rng(seed)
    hist = np.full((n, 6), -1)
    full = []
    for r in range(n):
        seq = rng.choice(N_ITEMS, int(rng.integers(2, 8)), replace=False)
        full.append(seq[:-1])
        shown = seq[:-1][-6:]
        hist[r, 6 - len(shown) :] = shown
    target = [int(rng.integers(N_ITEMS)) for _ in range(n)]
    ptr = np.r_[0, np.cumsum([len(h) for h in full])]
    ex = SequenceExamples(
        torch.from_numpy(hist),
        torch.from_numpy((hist >= 0).sum(1)),
        torch.tensor(target),
        torch.arange(n),
        torch.arange(n),
    )
    return ex, Histories(ptr, np.concatenate(full))


def random_lists(n: int = 6, k: int = 8, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    items = np.stack([rng.choice(N_ITEMS, k, replace=False) for _ in range(n)])
    proposer = -np.sort(rng.random((n, k)), 1)  # best first, as a proposer's list is
    return items, proposer, rng.normal(size=(n, k))


def test_standardise_ignores_invalid_entries_and_flat_rows():
    z = standardise(np.array([[1.0, 3.0, -np.inf], [2.0, 2.0, 2.0]]), np.array([[1, 1, 0]] * 2) > 0)
    assert np.allclose(z, [[-1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])


@pytest.mark.parametrize("w", W_GRID)
def test_rescoring_keeps_the_candidate_set(w):
    items, proposer, rescorer = random_lists()
    ranked = interpolate(items, proposer, rescorer, w)
    assert np.array_equal(np.sort(ranked, 1), np.sort(items, 1))
    if w == 0.0:  # the re-scorer's order alone
        order = np.argsort(-rescorer, 1, kind="stable")
        assert np.array_equal(ranked, np.take_along_axis(items, order, 1))
        assert not np.array_equal(ranked, items)


def test_w1_is_the_proposers_ranking_exactly_ties_included():
    items = np.array([[5, 3, 9, 1, 7, -1]])
    proposer = np.array([[2.0, 2.0, 1.0, 1.0, 1.0, -np.inf]])
    rescorer = np.array([[0.0, 5.0, 1.0, 9.0, 3.0, -np.inf]])  # would reorder every tie
    assert np.array_equal(interpolate(items, proposer, rescorer, 1.0), items)
    assert interpolate(items, proposer, rescorer, 0.0)[0].tolist() == [1, 3, 7, 9, 5, -1]
    items, proposer, rescorer = random_lists(seed=3)
    assert np.array_equal(interpolate(items, proposer, rescorer, 1.0), items)


def test_merging_a_list_with_itself_changes_nothing():
    items, scores, _ = random_lists(seed=1)
    items[0, -2:] = -1  # an exhausted beam
    scores[0, -2:] = -np.inf
    merged, merged_scores = merge_lists(items, scores, items, scores)
    assert np.array_equal(merged[:, : items.shape[1]], items)
    assert (merged[:, items.shape[1] :] == -1).all()
    assert np.isneginf(merged_scores[0, 6:]).all() and np.isfinite(merged_scores[1, :8]).all()


def test_an_ensemble_of_a_model_with_itself_ranks_as_the_model_at_every_weight():
    items, scores, _ = random_lists(seed=4)
    targets = items[np.arange(len(items)), np.arange(len(items)) % items.shape[1]]
    alone = list_ranks(items, targets)
    merged = Merged(items, scores, items, scores, targets)
    for w in W_GRID:
        assert np.array_equal(merged.ranks(w), alone)
    other = Merged(items, scores, items[:, ::-1].copy(), scores, targets)  # scores swapped
    assert not all(np.array_equal(other.ranks(w), alone) for w in W_GRID)


def test_merge_ranks_the_union_by_summed_z_scores():
    a = np.array([[1, 2, 3]])
    b = np.array([[3, 4, 1]])
    merged, _ = merge_lists(a, np.array([[3.0, 2.0, 1.0]]), b, np.array([[3.0, 2.0, 1.0]]))
    # z: a = (1.22, 0, -1.22), b = (1.22, 0, -1.22); a missing item takes its list's lowest z.
    # 1: 1.22 - 1.22 = 0; 2: 0 - 1.22; 3: -1.22 + 1.22 = 0; 4: -1.22 + 0. Ties keep a's order.
    assert merged[0].tolist() == [1, 3, 2, 4, -1, -1]


@pytest.mark.parametrize("encoder", ["item", "token"])
def test_teacher_forced_log_probs_are_the_beam_search_scores(encoder):
    model = tiny_tiger(encoder)
    ex, _ = examples(11)
    trie = build_trie(model.item_tokens[1:].numpy() - 2 - model.offsets.numpy(), SIZES)
    beam = tiger_rank(model, ex, trie, beam=16, batch_size=4)  # 16 >= every level's prefixes
    again = tiger_candidate_scores(model, ex, beam.items, batch_size=5)
    assert np.isfinite(beam.scores).all()
    assert np.abs(again - beam.scores).max() < 1e-5
    # The beam is exact here, so an item outside it scores no higher than its last item.
    outside = np.array([[i for i in range(N_ITEMS) if i not in row][0] for row in beam.items])
    lone = tiger_candidate_scores(model, ex, outside[:, None], batch_size=5)[:, 0]
    assert (lone <= beam.scores[:, -1] + 1e-5).all()


def test_filtered_rescored_lists_hold_ten_items_and_no_history_item():
    tiger, sasrec = tiny_tiger(), tiny_sasrec()
    ex, history = examples(9, seed=2)
    trie = build_trie(tiger.item_tokens[1:].numpy() - 2 - tiger.offsets.numpy(), SIZES)
    beam = tiger_rank(tiger, ex, trie, beam=12, batch_size=4, history=history)
    top_items, top_scores = score_top_k(sasrec, ex, 4, 12, history)
    banned = history.mask(np.arange(len(ex)), N_ITEMS).numpy()
    for items, proposer, rescorer in (
        (beam.items, beam.scores, scorer_candidate_scores(sasrec, ex, beam.items, 4)),
        (top_items, top_scores, tiger_candidate_scores(tiger, ex, top_items, 4)),
    ):
        for w in W_GRID:
            ranked = interpolate(items, proposer, rescorer, w)
            check_filtered(ranked, history)
            assert ((ranked >= 0).sum(1) >= 10).all()
            assert not np.take_along_axis(banned, ranked.clip(0), 1)[ranked >= 0].any()
    leaked = beam.items.copy()
    leaked[0, 0] = history.items[history.ptr[0]]
    with pytest.raises(ValueError, match="history item"):
        check_filtered(leaked, history)
    with pytest.raises(ValueError, match="fewer than 10"):
        check_filtered(np.where(np.arange(12) < 9, beam.items, -1), history)


def test_the_chosen_w_is_the_best_on_validation():
    # Row 1: target item 1 tops the list only for 0.2 < w < 0.8; row 2: only for 0.4 < w < 0.6
    # (z of item 1 is the same in both models; items 0 and 2 trade places as w moves).
    items = np.array([[0, 1, 2], [0, 1, 2]])
    proposer = np.array([[2.0, 1.6, 0.0], [2.0, 1.2, 0.0]])
    rescorer = proposer[:, ::-1].copy()
    val = Rescored(items, proposer, rescorer, np.array([1, 1]))
    test = Rescored(items, proposer, rescorer, np.array([1, 1]))
    choice = select_weight(val, test)
    assert choice.w == 0.5
    assert choice.val_by_w[0.5]["ndcg@10"] == 1.0
    assert all(m["ndcg@10"] < 1.0 for w, m in choice.val_by_w.items() if w != 0.5)
    assert choice.test_ranks.tolist() == [0.0, 0.0]  # ranked at w = 0.5 (row 2: nowhere else)
    assert choose_weight({0.0: 0.3, 0.5: 0.4, 1.0: 0.4}) == 1.0  # a tie: the larger w


def test_refill_tops_short_lists_up_to_ten_keeping_their_own_items_in_place():
    items = np.array([list(range(12)), [3, 4, 5, 6, 7, -1, -1, -1, -1, -1, -1, -1]])
    scores = np.where(items >= 0, -np.arange(12.0), -np.inf)
    wide = np.array([list(range(20, 32)), [30, 3, 31, 32, 33, 34, 35, 4, 36, 37, 38, 39]])
    filled, filled_scores = refill(items, scores, wide, np.zeros((2, 12)) + [[0.0], [-1.0]])
    assert np.array_equal(filled[0], items[0])  # a full row is left alone
    assert filled[1].tolist() == [3, 4, 5, 6, 7, 30, 31, 32, 33, 34, -1, -1]
    assert (np.diff(filled_scores[1, :10]) <= 0).all()  # still best first (scores capped)


def test_short_filtered_beams_are_topped_up_from_a_wider_beam():
    model = tiny_tiger()
    ex, _ = examples(5, seed=4)
    # 30 of the 40 items in every history: a beam of 10 prefixes mostly leads to banned items
    rng = np.random.default_rng(0)
    banned = [rng.choice(N_ITEMS, 30, replace=False) for _ in range(len(ex))]
    history = Histories(np.arange(0, 30 * len(ex) + 1, 30), np.concatenate(banned))
    trie = build_trie(model.item_tokens[1:].numpy() - 2 - model.offsets.numpy(), SIZES)
    filled = tiger_rank(model, ex, trie, beam=10, batch_size=4, history=history)
    plain = tiger_rank(model, ex, trie, beam=10, batch_size=4, history=history, top_up=False)
    short = (plain.items >= 0).sum(1) < 10
    assert short.any() and filled.topped_up == short.sum()
    check_filtered(filled.items, history)
    valid = plain.items >= 0
    assert np.array_equal(filled.items[valid], plain.items[valid])  # the beam's own items stay
    assert np.array_equal(filled.ranks[~short], plain.ranks[~short])


def test_sweep_script_reproduces_the_training_run_and_keeps_filtered_lists_full(tmp_path):
    """benchmarks/sweep_decoding.py on checkpoints tiger_train_eval.py just wrote (tiny P5 data):
    plain TIGER and SASRec re-evaluated give the training run's own metrics, every variant is
    reported under both rules on both folds, and each hybrid's w is one of the grid."""
    from tests.synthetic import write_p5
    from tiger_train_eval import main as train
    from utils.data.load import load_dataset
    from utils.data.semantic import ids_digest, load_semantic_ids, write_semantic_ids
    from utils.runtime.io import read_json

    folder = write_p5(tmp_path / "beauty", n_users=30, n_items=60)
    ds = load_dataset(folder)
    codes = np.array([[i % 4, (i // 4) % 3, i // 12, 0] for i in range(ds.n_items)])
    header = {"data_checksum": ds.checksum, "codebook_sizes": [4, 3, 5], "collision_size": 1}
    write_semantic_ids(folder / "semantic_ids.json", header, ds.item_ids, codes)
    res = tmp_path / "res.json"
    flags = ["--data-dir", str(folder), "--out", str(res), "--plot-dir", str(tmp_path)]
    flags += ["--epochs", "1", "--models", "tiger_item", "sasrec", "--quiet"]
    train(
        [*flags, "--checkpoint-dir", str(tmp_path / "ckpt"), "--threads", "1", "--save-predictions"]
    )
    digest = ids_digest(load_semantic_ids(folder, ds))
    sweep = benchmark_script("sweep_decoding")
    out = tmp_path / "sweep_seed{seed}.json"
    ckpt = tmp_path / "ckpt" / f"tiger-{{}}-{ds.name}-quick-paper-seed0{{}}.pt"
    sweep_flags = (
        ["--data-dir", str(folder), "--check-against", str(res), "--quiet"]
        + ["--tiger-checkpoint", str(ckpt).format("tiger_item", f"-ids{digest}")]
        + ["--sasrec-checkpoint", str(ckpt).format("sasrec", ""), "--beams", "20", "12"]
        + ["--sasrec-top", "15"]
    )
    sweep.main([*sweep_flags, "--out", str(out)])
    got = read_json(tmp_path / "sweep_seed0.json")
    variants = got["variants"]
    assert set(variants) == {
        "tiger_beam20",
        "tiger_beam12",
        "sasrec",
        "sasrec_rescores_tiger_beam20",
        "sasrec_rescores_tiger_beam12",
        "tiger_rescores_sasrec_top15",
    }
    for v in variants.values():
        assert set(v["val"]) == set(v["test"]) == {"paper", "filtered"} and v["seconds"] >= 0
        for w in v.get("chosen_w", {}).values():
            assert w in W_GRID
    checks = got["reproduction"]
    assert checks[f"sasrec vs {res}:sasrec"]["match"]
    tiger = checks[f"tiger_beam20 vs {res}:tiger_item"]
    topped = variants["tiger_beam20"]["lists_topped_up_to_10"]
    assert tiger["match"] or any(n for fold in topped.values() for n in fold.values())
    assert got["run_record"]["data_checksum"] == ds.checksum and got["seed"] == 0
    # with a subset of users the plain models are checked against the saved test lists instead
    sweep.main([*sweep_flags, "--out", str(tmp_path / "subset.json"), "--users", "12"])
    subset = read_json(tmp_path / "subset.json")["reproduction"]
    sasrec = subset[f"sasrec vs {res}:sasrec"]
    assert sasrec["what"] == "saved test lists of the first 12 users" and sasrec["match"]
    assert sasrec["paper"]["rows_identical"] == 1.0 and sasrec["filtered"]["ok"]
    tiger = subset[f"tiger_beam20 vs {res}:tiger_item"]
    assert tiger["what"] == "saved test lists of the first 12 users" and tiger["paper"]["ok"]


def test_sweep_script_ensembles_two_id_sets_and_fixes_holdout_weights_on_the_paper_sweep(
    tmp_path,
):
    """--second-tiger adds TIGER on a second ID set and the two lists merged (w chosen on
    validation); --protocol holdout ranks test only, filtered, with the paper sweep's weights, and
    its plain models reproduce the holdout training run; a paper sweep is refused as holdout
    input the other way round."""
    from tests.synthetic import write_p5_with_two_id_sets
    from tiger_train_eval import main as train
    from utils.runtime.errors import UsageError
    from utils.runtime.io import read_json

    folder, ds, ids_b, digests = write_p5_with_two_id_sets(tmp_path)
    ckpt = tmp_path / "ckpt"

    def run(protocol: str, ids: Path, models: list[str], out: Path) -> None:
        train(
            ["--data-dir", str(folder), "--semantic-dir", str(ids), "--protocol", protocol]
            + ["--out", str(out), "--plot-dir", str(tmp_path), "--epochs", "1", "--quiet"]
            + ["--models", *models, "--checkpoint-dir", str(ckpt), "--threads", "1"]
        )

    for protocol in ("paper", "holdout"):
        run(protocol, folder, ["tiger_item", "sasrec"], tmp_path / f"{protocol}.json")
        run(protocol, ids_b, ["tiger_item"], tmp_path / f"{protocol}_b.json")
    sweep = benchmark_script("sweep_decoding")

    def flags(protocol: str) -> list[str]:
        name = f"tiger-{{}}-{ds.name}-quick-{protocol}-seed0{{}}.pt"
        return (
            ["--data-dir", str(folder), "--protocol", protocol, "--quiet", "--beams", "20"]
            + ["--tiger-checkpoint", str(ckpt / name.format("tiger_item", f"-ids{digests[0]}"))]
            + ["--second-tiger", str(ckpt / name.format("tiger_item", f"-ids{digests[1]}"))]
            + ["--second-semantic-dir", str(ids_b)]
            + ["--sasrec-checkpoint", str(ckpt / name.format("sasrec", "")), "--sasrec-top", "15"]
        )

    paper_out = tmp_path / "sweep_paper.json"
    sweep.main(flags("paper") + ["--out", str(paper_out)])
    paper = read_json(paper_out)
    merged = paper["variants"]["ensemble_two_ids_beam20"]
    assert set(merged["val"]) == {"paper", "filtered"} and set(merged["chosen_w"].values()) <= set(
        W_GRID
    )
    assert paper["semantic_ids"] == {"tiger": digests[0], "tiger_other_ids": digests[1]}

    holdout_out = tmp_path / "sweep_holdout.json"
    check = [str(tmp_path / "holdout.json"), str(tmp_path / "holdout_b.json")]
    sweep.main(
        flags("holdout")
        + ["--out", str(holdout_out), "--weights-from", str(paper_out), "--check-against", *check]
    )
    got = read_json(holdout_out)
    assert got["protocol"] == "holdout" and got["rankings"] == ["filtered"]
    assert "seed 0's validation" in got["w_selection"]
    for name, v in got["variants"].items():
        assert "val" not in v and set(v["test"]) == {"filtered"}
        if "chosen_w" in v:
            assert v["chosen_w"]["filtered"] == paper["variants"][name]["chosen_w"]["filtered"]
    assert sorted(k.split(" vs ")[0] for k in got["reproduction"]) == [
        "sasrec",
        "tiger_beam20",
        "tiger_other_ids_beam20",
    ]
    assert all(c["match"] for c in got["reproduction"].values()), got["reproduction"]
    with pytest.raises(UsageError, match="weights-from"):
        sweep.main(flags("holdout") + ["--out", str(tmp_path / "x.json")])
    with pytest.raises(UsageError, match="not a paper-protocol sweep"):
        sweep.main(
            flags("holdout")
            + ["--out", str(tmp_path / "x.json")]
            + ["--weights-from", str(holdout_out)]
        )
