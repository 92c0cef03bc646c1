"""The architecture the docs promise: the import graph, and docs/ARCHITECTURE.md's interface list.

A test per rule, so a refactor that breaks one says which: no script is imported
by another module, no library module reads the CLI's state, and every name
(with its parameters) the architecture page lists exists where it says.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = {p.stem for p in ROOT.glob("*.py")}
LIBRARY = sorted(p for folder in ("src", "utils") for p in (ROOT / folder).rglob("*.py"))
DOC = ROOT / "docs" / "ARCHITECTURE.md"


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth of the file (imports inside functions included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_imports_a_script():
    """Scripts wire the library; library code, benchmarks and other scripts never import one."""
    importers = LIBRARY + sorted((ROOT / "benchmarks").glob("*.py")) + sorted(ROOT.glob("*.py"))
    offenders = {str(p.relative_to(ROOT)): sorted(imported_modules(p) & SCRIPTS) for p in importers}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_library_does_not_read_cli_state():
    """Progress and verbosity reach src/ and utils/ as arguments, never through the CLI module."""
    runtime = ROOT / "utils" / "runtime"
    allowed = {runtime / "cli.py", runtime / "experiment.py"}  # the scaffold sets the CLI up
    cli = "utils.runtime.cli"
    offenders = [
        str(p.relative_to(ROOT))
        for p in LIBRARY
        if p not in allowed
        and any(m == cli or m.startswith(f"{cli}.") for m in imported_modules(p))
    ]
    assert offenders == []


def test_src_is_grouped_by_stage():
    """A newcomer reading src/ sees the pipeline: a folder per stage, the training loop beside."""
    flat = sorted(p.name for p in (ROOT / "src").glob("*.py") if p.name != "__init__.py")
    folders = sorted(
        p.name for p in (ROOT / "src").iterdir() if p.is_dir() and not p.name.startswith("__")
    )
    assert flat == ["training.py"] and folders == ["pointwise", "semantic_ids", "sequential"]


def doc_sections() -> list[tuple[list[str], str]]:
    """(module names, python stub) for every '### `path.py`' heading followed by a python block."""
    sections = []
    for part in DOC.read_text().split("\n### ")[1:]:
        heading, _, body = part.partition("\n")
        block = re.search(r"```python\n(.*?)```", body.split("\n## ")[0], re.S)
        modules = [p[:-3].replace("/", ".") for p in re.findall(r"`([\w/]+\.py)`", heading)]
        if modules and block:
            sections.append((modules, block.group(1)))
    return sections


def parameters(func) -> list[str]:
    return [p for p in inspect.signature(func).parameters if p != "self"]


def stub_parameters(node: ast.FunctionDef) -> list[str]:
    args = node.args
    names = [*args.posonlyargs, *args.args, args.vararg, *args.kwonlyargs, args.kwarg]
    return [a.arg for a in names if a is not None and a.arg != "self"]


def find(modules: list, name: str):
    for module in modules:
        if hasattr(module, name):
            return getattr(module, name)
    raise AssertionError(
        f"{name} is documented under {[m.__name__ for m in modules]} but none of them has it"
    )


@pytest.mark.parametrize(
    "modules,code", doc_sections(), ids=lambda v: ",".join(v) if isinstance(v, list) else ""
)
def test_architecture_page_matches_the_code(modules, code):
    """Every documented function/class/constant exists, with the documented parameters, in order."""
    mods = [importlib.import_module(m) for m in modules]
    for node in ast.parse(code).body:
        if isinstance(node, ast.FunctionDef):
            assert parameters(find(mods, node.name)) == stub_parameters(node), node.name
        elif isinstance(node, ast.ClassDef):
            cls = find(mods, node.name)
            fields = (
                {f.name for f in dataclasses.fields(cls)}
                if dataclasses.is_dataclass(cls)
                else set()
            )
            for item in node.body:
                if isinstance(item, ast.AnnAssign):
                    assert item.target.id in fields, f"{node.name}.{item.target.id}"
                elif isinstance(item, ast.FunctionDef):
                    member = cls if item.name == "__init__" else getattr(cls, item.name, None)
                    assert member is not None, f"{node.name}.{item.name}"
                    assert parameters(member) == stub_parameters(item), f"{node.name}.{item.name}"
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                find(mods, target.id)


def test_architecture_page_covers_every_library_folder():
    """The page names each stage's folder, so a new folder cannot go undocumented."""
    text = DOC.read_text()
    for folder in ("src/semantic_ids/", "src/pointwise/", "src/sequential/", "utils/"):
        assert folder in text
