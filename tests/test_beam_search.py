"""Trie-constrained beam search on hand-built scorers, and against TIGER's own likelihoods."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from src.sequential.beam_search import BeamResult, beam_search, build_trie, merge_cold_share
from src.sequential.ranking import ranks_from_topk
from src.sequential.tiger import Tiger, TigerConfig, TigerStepper
from utils.evaluation.metrics import ranking_metrics


def table_step(logp: dict[tuple[int, ...], list[float]]):
    """A 'model' whose next-code log-probs depend only on the prefix (same for every user)."""

    def step(level, prefix, parents):
        out = [[logp[tuple(p)] for p in row] for row in prefix.tolist()]
        return torch.tensor(out)

    return step


def test_trie_tables():
    codes = np.array([[0, 1], [0, 0], [2, 1]])
    trie = build_trie(codes, [3, 2])
    assert trie.children[0].tolist() == [[0, -1, 1]]
    assert trie.children[1].tolist() == [[1, 0], [-1, 2]]  # last level holds item indices
    assert trie.n_items == 3


@pytest.mark.parametrize(
    "codes, sizes, match",
    [
        (np.array([[0, 1], [0, 1]]), [2, 2], "share a semantic ID"),
        (np.array([[0, 2]]), [2, 2], "out of range"),
        (np.array([[0, 1]]), [2, 2, 2], "levels"),
    ],
)
def test_trie_refuses_bad_codes(codes, sizes, match):
    with pytest.raises(ValueError, match=match):
        build_trie(codes, sizes)


def test_trie_of_part_of_the_catalogue_decodes_to_catalogue_indices():
    codes = np.array([[0, 1], [0, 0], [2, 1], [1, 1]])
    trie = build_trie(codes, [3, 2], items=np.array([3, 1]))
    assert trie.children[0].tolist() == [[0, 1, -1]]
    assert trie.children[1].tolist() == [[1, -1], [-1, 3]]
    logp = {(): [0.0, -1.0, -2.0], (0,): [-0.5, -0.1], (1,): [-0.5, -0.1], (2,): [0.0, 0.0]}
    assert beam_search(table_step(logp), 1, trie, beam=3).items[0].tolist() == [1, 3, -1]


def _beam(items, scores) -> BeamResult:
    items, scores = torch.tensor(items), torch.tensor(scores, dtype=torch.float)
    return BeamResult(items, torch.zeros(*items.shape, 1, dtype=torch.long), scores)


def test_cold_share_reserves_places_in_the_top_k():
    warm = _beam([[1, 2, 3, 4, 5]], [[-1.0, -2.0, -3.0, -4.0, -5.0]])
    cold = _beam([[90, 91, 92, 93, 94]], [[-2.5, -6.0, -7.0, -8.0, -9.0]])
    # share 0.4 of the top 4: the best 2 cold and the best 2 warm, by score; then the other warm.
    assert merge_cold_share(warm, cold, 0.4, k=4).tolist() == [[1, 2, 90, 91, 3]]
    # Cold items get their places even when every warm item outscores them (never targets).
    weak = _beam([[95, 96, 97, 98, 99]], [[-10.0, -11.0, -12.0, -13.0, -14.0]])
    assert merge_cold_share(warm, weak, 0.25, k=4).tolist() == [[1, 2, 3, 95, 4]]
    assert merge_cold_share(warm, cold, 0.0).tolist() == [[1, 2, 3, 4, 5]]
    # ceil: any positive share gives at least one place.
    assert merge_cold_share(warm, cold, 0.01, k=4).tolist() == [[1, 2, 90, 3, 4]]


def test_beam_finds_the_optimum_where_greedy_fails():
    # P(0)=.6 but both continuations of 0 are .5; P(1)=.4 then P(1,0)=.95: best ID is (1,0), p=.38.
    lg = math.log
    logp = {(): [lg(0.6), lg(0.4)], (0,): [lg(0.5), lg(0.5)], (1,): [lg(0.95), lg(0.05)]}
    codes = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    trie = build_trie(codes, [2, 2])
    greedy = beam_search(table_step(logp), 1, trie, beam=1)
    assert greedy.items[0, 0].item() in (0, 1)  # greedy commits to the 0 branch
    best = beam_search(table_step(logp), 1, trie, beam=2)
    assert best.items[0, 0].item() == 2 and best.items[0, 1].item() in (
        0,
        1,
    )  # (0,0) and (0,1) tie at .3
    assert best.scores[0, 0].item() == pytest.approx(lg(0.4) + lg(0.95))


def test_constrained_search_returns_only_catalogue_ids_in_exact_order():
    rng = np.random.default_rng(0)
    sizes = [3, 3, 2]
    all_ids = list(itertools.product(*map(range, sizes)))
    codes = np.array([all_ids[i] for i in rng.choice(len(all_ids), 7, replace=False)])
    logp = {
        p: list(np.log(rng.dirichlet(np.ones(sizes[len(p)]))))
        for level in range(3)
        for p in itertools.product(*map(range, sizes[:level]))
    }
    # The most likely IDs overall are mostly NOT in the catalogue: without the trie they would win.
    trie = build_trie(codes, sizes)
    res = beam_search(table_step(logp), 1, trie, beam=10)
    exact = sorted(
        range(len(codes)),
        key=lambda i: -sum(logp[tuple(codes[i][:lv])][codes[i][lv]] for lv in range(3)),
    )
    assert res.items[0, :7].tolist() == exact  # beam >= prefixes at every level: exhaustive
    assert res.items[0, 7:].tolist() == [-1, -1, -1] and torch.isinf(res.scores[0, 7:]).all()
    free = beam_search(table_step(logp), 1, trie, beam=len(all_ids), constrained=False)
    valid = free.items[0] >= 0
    assert valid.sum().item() == 7 and (~valid).sum().item() == len(all_ids) - 7
    decoded = {tuple(c) for c in free.codes[0][~valid].tolist()}
    assert decoded.isdisjoint({tuple(c) for c in codes.tolist()})


def test_banned_items_are_removed_inside_the_decoding_and_the_list_stays_full():
    # 12 items, 2 levels of 4 x 3 codes; the user's history holds the best item and two others.
    codes = np.array([(a, b) for a in range(4) for b in range(3)])
    rng = np.random.default_rng(1)
    logp = {
        p: list(np.log(rng.dirichlet(np.ones([4, 3][len(p)]))))
        for level in range(2)
        for p in itertools.product(*map(range, [4, 3][:level]))
    }
    trie = build_trie(codes, [4, 3])
    plain = beam_search(table_step(logp), 2, trie, beam=12).items
    history = [int(plain[0, 0]), int(plain[0, 4]), int(plain[0, 11])]
    banned = torch.zeros(2, 12, dtype=torch.bool)
    banned[0, history] = True  # the second user has no history
    filtered = beam_search(table_step(logp), 2, trie, beam=9, banned=banned).items
    expected = [i for i in plain[0].tolist() if i not in history]
    assert filtered[0].tolist() == expected  # rank-1 history item gone, 9 items still listed
    assert len(expected) == 9 and history[0] not in filtered[0].tolist()
    assert filtered[1].tolist() == plain[1, :9].tolist()


def test_tiger_beam_scores_match_teacher_forced_likelihood():
    """The cached, beam-reordered incremental decoder gives the same log-probs as a full pass."""
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    sizes = [4, 4, 3]
    codes = np.array(list(itertools.product(*map(range, sizes))))[rng.choice(48, 30, replace=False)]
    model = Tiger(
        TigerConfig(
            codebook_sizes=sizes,
            d_model=16,
            n_heads=2,
            head_dim=8,
            d_ff=32,
            enc_layers=1,
            dec_layers=2,
            max_items=5,
            encoder="token",
        ),
        codes,
    ).eval()
    hist = torch.tensor([[-1, -1, 3, 7, 1], [2, 4, 6, 8, 10], [-1, -1, -1, -1, 29]])
    trie = build_trie(codes, sizes)
    res = beam_search(TigerStepper(model, hist), 3, trie, beam=6)
    assert (res.items >= 0).all()
    with torch.no_grad():
        for b in range(3):
            logits = model(hist[b : b + 1].expand(6, -1), res.codes[b])
            lp = (
                torch.log_softmax(logits, -1)
                .gather(2, (res.codes[b] + model.offsets)[..., None])
                .sum((1, 2))
            )
            assert torch.allclose(lp, res.scores[b], atol=1e-4)
            assert torch.equal(torch.as_tensor(codes)[res.items[b]], res.codes[b])


def test_ranks_and_metrics_by_hand():
    topk = torch.tensor([[5, 3, 9], [1, 2, 3], [7, 8, -1]])
    ranks = ranks_from_topk(topk, torch.tensor([3, 4, 7]))
    assert ranks.tolist() == [1.0, float("inf"), 0.0]
    m = ranking_metrics(ranks, ks=(1, 2))
    assert m["recall@1"] == pytest.approx(1 / 3) and m["recall@2"] == pytest.approx(2 / 3)
    assert m["ndcg@2"] == pytest.approx((1 / math.log2(3) + 1.0) / 3)
