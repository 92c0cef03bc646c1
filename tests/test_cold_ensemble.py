"""The cold-start ranking of an ensemble (src/sequential/cold_ensemble.py): the reserved places
hold cold items, one TIGER's ranking comes out as ranking.tiger_rank's cold-start list, and a
TIGER merged with itself is unchanged."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from src.sequential.beam_search import BeamResult, build_trie, merge_cold_share
from src.sequential.cold_ensemble import (
    ColdBeams,
    cold_beams,
    ensemble_cold_share,
    reserve_cold,
    weighted_log_probs,
)
from src.sequential.ranking import ColdStart, tiger_rank
from tests.test_hybrid import N_ITEMS, SIZES, examples, tiny_tiger


def looked_up(*lists: tuple[np.ndarray, np.ndarray]):
    """A head scorer that reads each item's score from the rows' (items, scores) lists."""
    items = np.concatenate([i for i, _ in lists], 1)
    scores = np.concatenate([s for _, s in lists], 1)

    def score(head: np.ndarray) -> np.ndarray:
        same = (head[:, :, None] == items[:, None, :]) & (head[:, :, None] >= 0)
        return np.where(same, scores[:, None, :], -np.inf).max(2)

    return score


def random_beams(n: int = 7, beam: int = 12, seed: int = 0) -> ColdBeams:
    """Warm beams over items 0-29 and cold beams over 30-39, best first, cold scores lower."""
    rng = np.random.default_rng(seed)
    warm = np.stack([rng.choice(30, beam, replace=False) for _ in range(n)])
    cold = np.stack([30 + rng.choice(10, 5, replace=False) for _ in range(n)])
    warm_scores = -np.sort(rng.exponential(2.0, (n, beam)), 1)
    cold_scores = -np.sort(rng.exponential(2.0, (n, 5)), 1) - 3.0
    return ColdBeams(warm, warm_scores, cold, cold_scores)


def test_reserve_cold_by_hand():
    warm, cold = np.array([[1, 2, 3, 4]]), np.array([[7, 8]])
    table = {1: -1.0, 2: -2.0, 3: -3.0, 4: -4.0, 7: -1.5, 8: -1.6}
    score = np.vectorize(table.get, otypes=[float])
    # share 0.25 of a top 4: one place; the head 1 2 3 7 ordered by score, then warm's rest
    assert reserve_cold(warm, cold, 0.25, score, k=4).tolist() == [[1, 7, 2, 3]]
    assert reserve_cold(warm, cold, 0.5, score, k=4).tolist() == [[1, 7, 8, 2]]
    assert reserve_cold(warm, cold, 0.0, score, k=4) is warm
    # a missing cold hypothesis (-1) goes last in the head
    assert reserve_cold(warm, np.array([[-1, -1]]), 0.25, score, k=4).tolist() == [[1, 2, 3, -1]]


def test_reserve_cold_is_merge_cold_share_with_the_beam_scores():
    b = random_beams()
    score = looked_up((b.warm_items, b.warm_scores), (b.cold_items, b.cold_scores))
    for share in (0.0, 0.1, 0.3):
        expected = merge_cold_share(
            BeamResult(torch.from_numpy(b.warm_items), None, torch.from_numpy(b.warm_scores)),
            BeamResult(torch.from_numpy(b.cold_items), None, torch.from_numpy(b.cold_scores)),
            share,
        )
        got = reserve_cold(b.warm_items, b.cold_items, share, score)
        np.testing.assert_array_equal(got, expected.numpy())


@pytest.mark.parametrize("w", [0.0, 0.25, 0.5, 1.0])
def test_an_ensemble_of_a_model_with_itself_is_the_model(w):
    b = random_beams(seed=1)
    score = looked_up((b.warm_items, b.warm_scores), (b.cold_items, b.cold_scores))
    alone = reserve_cold(b.warm_items, b.cold_items, 0.2, score)
    together = ensemble_cold_share(b, b, w, 0.2, score)
    beam = b.warm_items.shape[1]
    np.testing.assert_array_equal(together[:, :beam], alone)
    # past the beam, the merged list (twice as wide) keeps the two warm items that the head's
    # cold places pushed out of the single list, and the union adds nothing else
    np.testing.assert_array_equal(together[:, beam : beam + 2], b.warm_items[:, beam - 2 :])
    assert (together[:, beam + 2 :] == -1).all()


def test_the_ensemble_keeps_the_reserved_places_for_cold_items():
    a, b = random_beams(seed=2), random_beams(seed=3)
    score = looked_up(
        (a.warm_items, a.warm_scores),
        (a.cold_items, a.cold_scores),
        (b.warm_items, b.warm_scores - 5.0),  # b's scores on another scale: z-scores absorb it
        (b.cold_items, b.cold_scores - 5.0),
    )
    plain = ensemble_cold_share(a, b, 0.5, 0.0, score)
    shared = ensemble_cold_share(a, b, 0.5, 0.2, score)
    assert not (plain[:, :10] >= 30).any()  # cold items score lower: none without the share
    assert ((shared[:, :10] >= 30).sum(1) == 2).all()  # ceil(0.2 * 10) places
    for row in shared:
        valid = row[row >= 0]
        assert len(set(valid.tolist())) == len(valid)


def test_one_tiger_gets_tiger_rank_cold_start_list():
    model = tiny_tiger(seed=4)
    ex, _ = examples(n=11, seed=4)
    codes = np.array(list(itertools.product(*map(range, SIZES))))[:N_ITEMS]  # tiny()'s IDs
    is_cold = np.zeros(N_ITEMS, dtype=bool)
    is_cold[::5] = True
    cold = ColdStart.build(codes, SIZES, is_cold, 0.2)
    expected = tiger_rank(model, ex, build_trie(codes, SIZES), 10, 4, cold=cold).items
    beams = cold_beams(model, ex, cold, 10, 4)
    scorer = weighted_log_probs([(model, ex, None, 1.0)], batch_size=4)
    np.testing.assert_array_equal(
        reserve_cold(beams.warm_items, beams.cold_items, 0.2, scorer), expected
    )
    # with a second, differently seeded TIGER the top 10 still holds two cold items
    other = tiny_tiger(seed=5)
    second = cold_beams(other, ex, cold, 10, 4)
    both = weighted_log_probs([(model, ex, None, 0.5), (other, ex, None, 0.5)], batch_size=4)
    merged = ensemble_cold_share(beams, second, 0.5, 0.2, both)
    assert (is_cold[merged[:, :10]].sum(1) == 2).all()


def test_script_reproduces_each_tiger_and_refuses_one_id_set_twice(tmp_path):
    """benchmarks/cold_ensemble.py on two cold-protocol checkpoints tiger_train_eval.py just wrote
    (tiny P5 data, two ID sets): each TIGER alone gives its training run's plain and cold-share
    metrics, the ensemble is reported with the paper sweep's w, and one ID set twice is refused."""
    from tests.helpers import benchmark_script
    from tests.synthetic import write_p5_with_two_id_sets
    from tiger_train_eval import main as train
    from utils.runtime.errors import UsageError
    from utils.runtime.io import read_json

    folder, ds, ids_b, digests = write_p5_with_two_id_sets(tmp_path)
    results = [tmp_path / "cold.json", tmp_path / "cold_b.json"]
    for ids, out in zip((folder, ids_b), results):
        train(
            ["--data-dir", str(folder), "--semantic-dir", str(ids), "--protocol", "cold"]
            + ["--out", str(out), "--plot-dir", str(tmp_path), "--epochs", "1", "--quiet"]
            + ["--models", "tiger_item", "--checkpoint-dir", str(tmp_path / "ckpt")]
            + ["--threads", "1", "--save-predictions"]
        )
    sweep = tmp_path / "sweep.json"
    variants = {"ensemble_two_ids_beam20": {"chosen_w": {"paper": 0.25, "filtered": 0.5}}}
    sweep.write_text(json.dumps({"protocol": "paper", "variants": variants}))
    name = f"tiger-tiger_item-{ds.name}-quick-cold-seed0-ids{{}}.pt"
    ckpts = [str(tmp_path / "ckpt" / name.format(d)) for d in digests]
    flags = ["--data-dir", str(folder), "--weights-from", str(sweep), "--quiet"]
    flags += ["--tiger-checkpoint", ckpts[0]]
    script = benchmark_script("cold_ensemble")
    out = tmp_path / "cold_ensemble.json"
    script.main(
        [*flags, "--second-tiger", ckpts[1], "--second-semantic-dir", str(ids_b)]
        + ["--out", str(out), "--check-against", *map(str, results)]
    )
    got = read_json(out)
    assert got["n_cold_items"] > 0 and got["variants"]["ensemble_two_ids"]["w"] == 0.25
    assert [c["match"] for c in got["reproduction"]] == [True, True]
    for v in got["variants"].values():
        cs = v["cold_share"]
        assert cs["cold_target_users"]["n"] + cs["warm_target_users"]["n"] == got["n_test_users"]
    # a subset of users is checked against the saved cold-share lists instead
    script.main(
        [*flags, "--second-tiger", ckpts[1], "--second-semantic-dir", str(ids_b)]
        + ["--out", str(tmp_path / "subset.json"), "--users", "7", "--check-against"]
        + [str(results[1])]
    )
    (check,) = read_json(tmp_path / "subset.json")["reproduction"]
    assert check == {"model": "tiger_other_ids", "saved_lists_identical": 1.0, "match": True}
    with pytest.raises(UsageError, match="the same semantic IDs"):
        script.main([*flags, "--second-tiger", ckpts[0], "--out", str(tmp_path / "x.json")])
