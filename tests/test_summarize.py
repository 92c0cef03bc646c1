"""summarize_results.py: which results files it reads, in what order, how it refuses bad ones."""

from __future__ import annotations

import pytest

from summarize_results import main, summarize
from tests.synthetic import analysis_result, ctr_result, mf_result, tiger_result
from utils.reporting.catalog import find_results
from utils.reporting.sequential_tables import tiger_table
from utils.reporting.tables import ctr_table, mf_table, semantic_ids_table
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
    atomic_write_json(tmp_path / "notes.json", {"rows": [], "run_record": {"script": "bench.py"}})
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
    with pytest.raises(DataError, match="no results files"):  # no run record: not a results file
        summarize(tmp_path)
    mf = {"dataset": "x", "models": {}, "run_record": {"script": "mf_train_eval.py"}}
    atomic_write_json(tmp_path / "anything.json", mf)
    with pytest.raises(
        DataError, match=r"anything.json: not a results file in the expected layout \(KeyError"
    ):
        summarize(tmp_path)


def test_a_results_file_is_found_by_its_content_not_its_name(tmp_path):
    """Renamed files (a run folder's --out of any name) land in their kind's section; a JSON file
    of another tool (a benchmark's run record) is left out."""
    atomic_write_json(tmp_path / "my_experiment.json", mf_result())
    atomic_write_json(tmp_path / "zz.json", tiger_result())
    atomic_write_json(tmp_path / "mf_results_bench.json", {"run_record": {"script": "bench.py"}})
    found = find_results(tmp_path)
    assert [(f.path.name, f.kind) for f in found] == [
        ("my_experiment.json", "mf"),
        ("zz.json", "tiger"),
    ]
    assert summarize(tmp_path).startswith(mf_table(mf_result()))


def test_compare_sets_a_run_beside_the_reference_of_the_same_task(tmp_path, capsys):
    """--compare prints each model's headline metric from the run, the reference and their
    difference; a run on another data set is never set beside the reference's numbers."""
    reference, run, other = (tmp_path / n for n in ("results", "run", "other"))
    atomic_write_json(reference / "tiger_results.json", tiger_result())
    atomic_write_json(run / "renamed.json", tiger_result(recall10=0.05))
    assert main(["--results-dir", str(reference), "--compare", str(run)]) == 0
    out = capsys.readouterr().out
    assert "| tiger | recall@10 | 0.0488 | 0.0500 | +0.0012 | tiger_results.json |" in out
    assert "| sasrec | ndcg@10 | 0.0250 | 0.0250 | +0.0000 | tiger_results.json |" in out
    ml = {**tiger_result(recall10=0.05), "dataset": "ml-100k"}
    atomic_write_json(other / "tiger.json", ml)
    main(["--results-dir", str(reference), "--compare", str(other)])
    out = capsys.readouterr().out
    assert "| tiger | recall@10 | – | 0.0500 | – | no reference |" in out and "0.0488" not in out


def test_compare_committed_lists_only_the_numbers_a_rerun_moved(tmp_path, capsys):
    """--compare-committed sets each results file beside git's copy of the same file (never a
    file of another seed) and lists only the headline numbers that differ."""
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    results = tmp_path / "results"
    atomic_write_json(results / "seed0.json", tiger_result())
    atomic_write_json(results / "seed1.json", tiger_result(recall10=0.06))
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "study")
    assert main(["--results-dir", str(results), "--compare-committed"]) == 0
    assert capsys.readouterr().out.strip() == "every headline number equals the committed one"
    atomic_write_json(results / "seed0.json", tiger_result(recall10=0.05))
    assert main(["--results-dir", str(results), "--compare-committed"]) == 0
    out = capsys.readouterr().out
    assert "| tiger | recall@10 | 0.0488 | 0.0500 | +0.0012 | seed0.json |" in out
    assert "seed1.json" not in out and "ndcg@10" not in out
    with pytest.raises(DataError, match="no committed version"):
        main(["--results-dir", str(results), "--compare-committed", "no-such-rev"])
