"""Results files found by what they hold, not by their names.

A results file names the script that wrote it in its run record (``run_record.script``), so a
renamed file, a run folder's ``--out`` of any name, or the study's ``results/`` folder all read
the same way. Files of other tools (benchmarks, sweeps) and other JSON are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utils.reporting.results import RUN_RECORD, dig
from utils.runtime.io import read_json

# The kinds of results file, in the order a summary shows them, by the script that writes them.
SCRIPT_KINDS = {
    "analyze_semantic_ids.py": "semantic_ids",
    "mf_train_eval.py": "mf",
    "neural_train_eval.py": "neural",
    "tiger_train_eval.py": "sequential",
}
KIND_ORDER = ("semantic_ids", "mf", "neural", "tiger", "sequential")
# the kinds whose headline metrics summarize_results.py --verify recomputes
VERIFIABLE = ("mf", "neural", "tiger", "sequential")


@dataclass(frozen=True)
class Found:
    """One results file: where, which kind, and its content."""

    path: Path
    kind: str
    result: dict[str, Any]

    @property
    def dataset(self) -> str:
        return str(self.result.get("dataset"))

    @property
    def protocol(self) -> str | None:
        """The named evaluation protocol of a sequential run (None for the other kinds)."""
        return self.result.get("protocol") if self.kind == "sequential" else None


def results_kind(result: Any) -> str | None:
    """The kind of a results dict (None for anything else). TIGER files from before the named
    protocols (no ``protocol_what``) are kind ``tiger``: their tables differ."""
    if not isinstance(result, dict):
        return None
    script = dig(result, RUN_RECORD, "script")
    kind = SCRIPT_KINDS.get(Path(script).name) if isinstance(script, str) else None
    if kind == "sequential" and "protocol_what" not in result:
        return "tiger"
    return kind


def read_documents(folder: str | Path) -> list[tuple[Path, Any]]:
    """Every ``.json`` file directly in ``folder``, parsed, by name. One that does not parse is
    refused by name (it may be a damaged results file: which, only its content could tell)."""
    return [
        (path, read_json(path, "repair or re-create it, or move it out of the folder"))
        for path in sorted(Path(folder).glob("*.json"))
    ]


def find_results(
    folder: str | Path, documents: list[tuple[Path, Any]] | None = None
) -> list[Found]:
    """Every results file directly in ``folder`` (or among its already-read ``documents``), by
    kind (KIND_ORDER), then by name."""
    found = [
        Found(path, kind, result)
        for path, result in (read_documents(folder) if documents is None else documents)
        if (kind := results_kind(result)) is not None
    ]
    return sorted(found, key=lambda f: (KIND_ORDER.index(f.kind), f.path.name))
