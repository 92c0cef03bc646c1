"""The results summary's TIGER tables: one row per model per file, and mean ± std over seeds."""
from __future__ import annotations


from summarize_results import main
from utils.io import read_json
from utils.report import tiger_seeds_table
from utils.io import atomic_write_json


def _tiger_result(seed: int, recall10: float, digest: str = "abc") -> dict:
    model = {"test": {"recall@5": 0.04, "ndcg@5": 0.03, "recall@10": recall10, "ndcg@10": 0.04},
             "cold_start_test_recall@10": 0.0, "epochs_run": 20, "timing": {"train_seconds": 100.0 + seed},
             "cold_start": {"cold_target_users": {"recall@10": 0.1}}}
    return {"dataset": "beauty", "preset": "quick", "seed": seed, "complete": True,
            "semantic_ids": {"ids_digest": digest}, "models": {"tiger_item": model},
            "published_beauty_test": {"tiger": {"recall@5": 0.0454, "ndcg@5": 0.0321, "recall@10": 0.0648,
                                                "ndcg@10": 0.0384}},
            "run_record": {"command": f"tiger_train_eval.py --seed {seed}", "wall_seconds": 10.0}}


def test_seed_table_is_mean_and_sample_std_of_the_same_ids(tmp_path):
    paths = []
    for seed, r10 in ((0, 0.06), (1, 0.07), (2, 0.08)):
        paths.append(tmp_path / f"tiger_results_seed{seed}.json")
        atomic_write_json(paths[-1], _tiger_result(seed, r10))
    other = tmp_path / "tiger_results_other_ids.json"
    atomic_write_json(other, _tiger_result(3, 0.5, digest="zzz"))  # another experiment: left out
    table = tiger_seeds_table([read_json(p) for p in paths + [other]])
    assert "seeds [0, 1, 2]" in table
    row = next(line for line in table.splitlines() if line.startswith("| tiger_item |"))
    assert "0.0700 ± 0.0100" in row  # sample std of 0.06, 0.07, 0.08
    assert "0.1000" in row and "101" in row
    assert tiger_seeds_table([read_json(paths[0])]) is None  # one seed: no mean ± std table


def test_summary_prints_every_tiger_file(tmp_path, capsys):
    for seed in (0, 1):
        atomic_write_json(tmp_path / f"tiger_results_seed{seed}.json", _tiger_result(seed, 0.06 + seed / 100))
    main(["--results-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.count("| tiger_item |") == 3 and "mean ± std over seeds [0, 1]" in out
    assert "| tiger (published) | 0.0454 |" in out
