"""The shape of the code, read as files and their imports: no cycle anywhere (the local
stack included), small modules, and a package docstring saying what each one owns.

.importlinter holds the layers and the forbidden imports; this adds what it cannot
say: cycles inside a package and the size of a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

OPERATOR = Path(__file__).resolve().parents[2] / "operator"
PACKAGES = ("usersession_operator", "usersession_localstack")
GENERATED = ("usersession_operator.wake.externalscaler",)
MAX_LINES = 330


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (OPERATOR / package).rglob("*.py"):
            parts = list(path.relative_to(OPERATOR).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join(parts)
            if not name.startswith(GENERATED):
                found[name] = path
    return found


MODULES = _modules()


def _imported(name: str, path: Path, known: dict[str, Path] = MODULES) -> Iterator[str]:
    """Every module of ours `name` imports, at any depth of the file (TYPE_CHECKING too).
    Importing pkg.mod imports pkg too: its __init__ runs first."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target in known and target != name:
                yield target


def _graph() -> dict[str, set[str]]:
    return {name: set(_imported(name, path)) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_back_through_others() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_import_reader_sees_relative_and_type_checking_imports(tmp_path: Path) -> None:
    module = tmp_path / "phase.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "from .pods import x\n"
        "if TYPE_CHECKING:\n"
        "    from pkg.status import conditions\n"
    )
    known = {
        name: tmp_path for name in ("pkg", "pkg.status", "pkg.status.pods", "pkg.status.conditions")
    }
    assert set(_imported("pkg.status.phase", module, known)) == {
        "pkg.status",
        "pkg.status.pods",
        "pkg.status.conditions",
    }


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by job"


@pytest.mark.parametrize("name", sorted(n for n, p in MODULES.items() if p.name == "__init__.py"))
def test_every_package_says_what_it_owns(name: str) -> None:
    docstring = ast.get_docstring(ast.parse(MODULES[name].read_text()))
    assert docstring and len(docstring.split()) >= 12, f"{name}: say what it owns and imports"
