"""The architecture the docs promise: the import graph, the layout, and docs/ARCHITECTURE.md's
interface list.

A test per rule, so a refactor that breaks one says which: no script is imported
by another module, no library module reads the CLI's state, no import circle
among library modules, no module over the size limit, and every name (with its
parameters) the architecture page lists exists where it says.
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
MAX_MODULE_LINES = 400  # a library module past this is doing more than one job


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth of the file (imports inside functions included).

    ``from a.b import c`` counts as ``a.b`` and ``a.b.c`` (c may be a module); a relative import
    is resolved against the file's package.
    """
    package = path.relative_to(ROOT).parent.parts
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module) if part)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
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
    assert flat == ["training.py"] and folders == [
        "pointwise",
        "semantic_ids",
        "sequential",
        "serving",
    ]


def test_utils_is_grouped_by_job():
    """utils/ says what it holds by its folder names; no module sits loose beside them."""
    flat = sorted(p.name for p in (ROOT / "utils").glob("*.py") if p.name != "__init__.py")
    folders = sorted(
        p.name for p in (ROOT / "utils").iterdir() if p.is_dir() and not p.name.startswith("__")
    )
    assert flat == [] and folders == ["data", "evaluation", "reporting", "runtime"]


def only_a_docstring(body: list[ast.stmt]) -> bool:
    first = body[0] if body else None
    return not body or (
        len(body) == 1 and isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    )


def test_package_inits_hold_only_a_docstring():
    """No re-exports: every name has one home, and an import names it."""
    inits = [p for p in LIBRARY if p.name == "__init__.py"]
    offenders = [
        str(p.relative_to(ROOT))
        for p in inits
        if not only_a_docstring(ast.parse(p.read_text()).body)
    ]
    assert offenders == []


def module_name(path: Path) -> str:
    """``utils/data/load.py`` -> ``utils.data.load``; a package's ``__init__.py`` -> the package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Library module -> the library modules it imports (at any depth of the file)."""
    modules = {module_name(p): p for p in LIBRARY}
    return {
        name: imported_modules(path) & modules.keys() - {name} for name, path in modules.items()
    }


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_import_cycle_detection_finds_a_circle():
    """The check below can fail: a -> b -> c -> a is found, a line a -> b -> c is not."""
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycle_among_library_modules():
    """Layers import downwards only; an import inside a function counts, so it hides no circle."""
    assert import_cycles(import_graph()) == []


def test_no_library_module_over_the_size_limit():
    """A module that grows past the limit is doing more than one job: split it along its jobs."""
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in LIBRARY}
    assert {path: n for path, n in sizes.items() if n > MAX_MODULE_LINES} == {}


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
    folders = ["src/semantic_ids/", "src/pointwise/", "src/sequential/"]
    folders += [f"utils/{job}/" for job in ("data", "evaluation", "reporting", "runtime")]
    for folder in folders:
        assert folder in text
