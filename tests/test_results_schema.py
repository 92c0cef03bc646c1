"""One results schema (docs/results.schema.json, docs/RESULTS_SCHEMA.md): every committed results
file fits it, and the validator (utils/reporting/schema.py) refuses what does not."""

from __future__ import annotations

import copy
import json

import pytest

from tests.helpers import REPO
from tests.synthetic import ctr_result
from utils.reporting.catalog import results_kind
from utils.reporting.schema import load_schema, validate

COMMITTED = sorted(
    p
    for p in [*REPO.glob("results/*.json"), *REPO.glob("results/quantizers/*.json")]
    if results_kind(json.loads(p.read_text())) is not None
)


def test_the_committed_results_files_are_found():
    """Benchmarks and sweeps are out of the schema's scope; every trainer and analysis is in."""
    names = {p.name for p in COMMITTED}
    assert {"mf_results_beauty.json", "neural_results_ml-100k.json", "tiger_results.json"} < names
    assert not any(n.startswith("bench_") for n in names) and "tiger_sweep.json" not in names


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_committed_results_file_fits_the_schema(path):
    assert validate(json.loads(path.read_text()), load_schema()) == []


def test_a_file_off_the_schema_is_refused_by_where_it_differs():
    """A spread as a [mean, std] list (the old CTR summary), a missing run record field and a
    string for a number are each named."""
    result = json.loads((REPO / "results" / "neural_results_ml-100k.json").read_text())
    schema = load_schema()
    bad = copy.deepcopy(result)
    bad["summary"][0]["auc"] = [0.75, 0.01]
    assert any("$.summary[0].auc" in e for e in validate(bad, schema))
    bad = copy.deepcopy(result)
    del bad["run_record"]["command"]
    assert "$.run_record: missing 'command'" in validate(bad, schema)
    bad = copy.deepcopy(result)
    bad["run_record"]["wall_seconds"] = "12"
    assert any("$.run_record.wall_seconds: str '12'" in e for e in validate(bad, schema))


def test_the_validator_refuses_keywords_it_does_not_check():
    with pytest.raises(ValueError, match="unsupported keyword"):
        validate(ctr_result(), {"type": "object", "minProperties": 1})
