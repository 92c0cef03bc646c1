"""Semantic-ID analysis: exact prefix similarity, purity, and the script end to end on synthetic
data."""

from __future__ import annotations

import json

import numpy as np
import pytest

import analyze_semantic_ids
from src.semantic_ids.analysis import prefix_similarity, purity, purity_report, representative_items
from tests.helpers import RQVAE_ARGS
from tests.helpers import run_generator as run
from tests.synthetic import write_p5
from utils.runtime.errors import DataError


def test_prefix_similarity_by_hand():
    # cosines: (0,1)=1, (2,3)=-1, every other pair 0; item 0 is not unit length on purpose
    x = np.array([[2, 0], [1, 0], [0, 1], [0, -1]], dtype=np.float32)
    codes = np.array([[0, 0], [0, 0], [0, 1], [1, 0]])
    rows = prefix_similarity(x, codes)
    assert [r["pairs_at_least"] for r in rows] == [6, 3, 1]
    assert [r["pairs_exactly"] for r in rows] == [3, 2, 1]
    assert rows[0]["mean_cosine_at_least"] == pytest.approx(0.0)
    assert rows[1]["mean_cosine_at_least"] == pytest.approx(1 / 3)
    assert rows[2]["mean_cosine_at_least"] == pytest.approx(1.0)
    assert rows[0]["mean_cosine_exactly"] == pytest.approx(-1 / 3)
    assert rows[1]["mean_cosine_exactly"] == pytest.approx(0.0)


def test_prefix_similarity_matches_brute_force():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    codes = rng.integers(0, 3, size=(60, 2))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = unit @ unit.T
    iu = np.triu_indices(60, 1)
    for length, row in enumerate(prefix_similarity(x, codes)):
        same = (codes[:, None, :length] == codes[None, :, :length]).all(-1)[iu]
        assert row["mean_cosine_at_least"] == pytest.approx(sims[iu][same].mean())


def test_purity_by_hand():
    clusters = np.array([0, 0, 0, 1, 1])
    assert purity(clusters, ["a", "a", "b", "b", ""]) == (0.75, 4)
    assert np.isnan(purity(clusters, [""] * 5)[0])
    rep = purity_report(clusters, ["a", "a", "b", "b", ""], np.random.default_rng(0), shuffles=5)
    assert (
        rep["purity"] == 0.75
        and rep["random_shuffles"] == 5
        and 0.5 <= rep["random_assignment_mean"] <= 1.0
    )
    assert purity_report(clusters, [""] * 5, np.random.default_rng(0))["purity"] is None


def test_representative_items_closest_to_centroid_first():
    x = np.array([[0.0], [3.0], [1.0], [9.0]])
    codes = np.array([[0], [0], [0], [1]])
    assert representative_items(x, codes, np.array([[0.9], [9.0]]), 0, 2).tolist() == [2, 0]


@pytest.mark.parametrize(
    "quantizer", [(), RQVAE_ARGS, ("--quantizer", "random")], ids=["rqkmeans", "rqvae", "random"]
)
def test_analysis_script_end_to_end(tmp_path, encoder, quantizer):
    data = write_p5(tmp_path / "p5", n_items=40)
    assert run(data, tmp_path / "cache", *quantizer) == 0
    loads = encoder.loads
    out = tmp_path / "analysis.json"
    assert (
        analyze_semantic_ids.main(
            [
                "--data-dir",
                str(data),
                "--cache-dir",
                str(tmp_path / "cache"),
                "--quiet",
                "--device",
                "cpu",
                "--plot-dir",
                str(tmp_path / "plots"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert encoder.loads == loads, "the analysis must read the cached embeddings"
    report = json.loads(out.read_text())
    assert report["embeddings_from_cache"] is True
    assert report["quantizer"] == (
        quantizer[1] if quantizer else "rqkmeans"
    )  # ("--quantizer", name, ...)
    assert [r["prefix_length"] for r in report["similarity_by_prefix"]] == [0, 1, 2, 3]
    assert set(report["purity_level1"]) == {"top_category", "leaf_category", "brand"}
    assert report["examples"]["level1_codes"][0]["central_items"]
    pngs = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    assert pngs == [
        f"semantic_ids_p5_{k}.png" for k in ("collisions", "purity", "similarity", "usage")
    ]
    assert all((tmp_path / "plots" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_analysis_without_ids_fails_with_the_generator_command(tmp_path):
    data = write_p5(tmp_path / "p5", n_items=40)
    with pytest.raises(DataError, match="semantic_id_generator.py --data-dir"):
        analyze_semantic_ids.main(
            [
                "--data-dir",
                str(data),
                "--quiet",
                "--device",
                "cpu",
                "--run-dir",
                str(tmp_path / "run"),
            ]
        )
