"""summarize_results.py: which results files it reads, in what order, how it refuses bad ones."""

from __future__ import annotations

import pytest

from summarize_results import main, summarize
from tests.synthetic import analysis_result, ctr_result, mf_result, tiger_result
from utils.reporting.tables import ctr_table, mf_table, semantic_ids_table, tiger_table
from utils.runtime.errors import DataError
from utils.runtime.io import atomic_write_json


def test_summarize_one_file_of_each_kind(tmp_path):
    """Each file goes to the table of its name's kind, sections in the README's order (semantic
    IDs, MF, CTR, TIGER), the TIGER title naming its file; a single seed adds no seeds table;
    other files are not read."""
    files = {
        "tiger_results.json": tiger_result(),
        "neural_results_beauty.json": ctr_result(),
        "mf_results_ml-100k.json": mf_result(),
        "semantic_id_analysis_beauty.json": analysis_result(),
    }
    for name, result in files.items():
        atomic_write_json(tmp_path / name, result)
    (tmp_path / "notes.json").write_text("not JSON, and not a results file")
    expected = [
        semantic_ids_table(analysis_result()),
        mf_table(mf_result()),
        ctr_table(ctr_result()),
        tiger_table(tiger_result(), "tiger_results.json"),
    ]
    assert summarize(tmp_path) == "\n\n".join(expected)


def test_summary_prints_every_tiger_file_and_their_seeds_table(tmp_path, capsys):
    """main() prints one TIGER table per file (three tiger rows) and the mean ± std over seeds."""
    for seed in (0, 1):
        atomic_write_json(
            tmp_path / f"tiger_results_seed{seed}.json", tiger_result(seed, 0.06 + seed / 100)
        )
    main(["--results-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.count("| tiger |") == 3 and "mean ± std over seeds [0, 1]" in out
    assert out.count("| tiger (published) | paper | 0.0454 |") == 2  # each file's table
    assert out.count("| tiger (published) | 0.0454 |") == 1  # the mean ± std table


def test_a_file_in_another_layout_or_none_at_all_is_refused(tmp_path):
    """A results file without the keys its name promises is refused by name, with what to do;
    a folder without results files names the commands that write them."""
    with pytest.raises(DataError, match="no results files.*make all"):
        summarize(tmp_path)
    atomic_write_json(tmp_path / "mf_results_x.json", {"dataset": "x", "models": {}})
    with pytest.raises(
        DataError, match=r"mf_results_x.json: not a results file in the expected layout \(KeyError"
    ):
        summarize(tmp_path)
