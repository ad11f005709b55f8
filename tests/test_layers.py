"""The package's layers and the import rule between them (docs/architecture.md).

The rule: ``core`` imports nothing of xentcli but ``errors``; ``compute`` and ``batch``
import core's public door ``xentcli.core`` (never a private ``core._x`` module), ``errors``
and the shared ``text`` module; ``cli`` imports everything; the public API
(``xentcli/__init__.py``) offers core's functions and batch's accumulator; nothing imports
``cli`` but ``__main__``; and no module imports itself through others (no cycle).

Every import counts: at module level, inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "xentcli"

#: each layer and the layers it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "errors": set(),  # errors.py and _version.py
    "text": {"errors"},
    "core": {"errors"},
    "compute": {"core", "errors", "text"},
    "batch": {"core", "errors", "text"},
    "cli": {"core", "compute", "batch", "errors", "text"},
    "api": {"core", "batch", "errors"},  # xentcli/__init__.py, the Python API
    "main": {"cli"},  # python -m xentcli
}
_TOP = {
    "xentcli": "api",
    "xentcli.dask": "api",  # the Dask engine's Python door
    "xentcli.__main__": "main",
    "xentcli.errors": "errors",
    "xentcli._version": "errors",
    "xentcli.text": "text",
}

Graph = Mapping[str, set[str]]


def layer(module: str) -> str:
    """The layer of a module of xentcli (a subpackage, or one of the top-level modules)."""
    if module in _TOP:
        return _TOP[module]
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in ALLOWED:
        return parts[1]
    raise ValueError(f"{module} belongs to no layer: add it to the rule")


def modules(package: Path) -> dict[str, Path]:
    """Every module under *package*, by dotted name."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    """Each module of *package* and the modules of *package* it imports."""
    known = modules(package)
    root = package.name
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        is_package = path.name == "__init__.py"
        here = name if is_package else name.rpartition(".")[0]
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    # ``from package import module`` imports the module, else the package
                    sub = f"{base}.{alias.name}"
                    imported.add(sub if sub in known else base)
        graph[name] = {
            module for module in imported if module.split(".")[0] == root and module != name
        }
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """The import cycles of *graph*: its strongly connected components (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def wrong_arrows(graph: Graph) -> list[str]:
    """Imports against the rule (see the module docstring)."""
    found = []
    for importer, imported in sorted(graph.items()):
        for target in sorted(imported):
            source_layer, target_layer = layer(importer), layer(target)
            if source_layer != target_layer and target_layer not in ALLOWED[source_layer]:
                found.append(
                    f"{importer} -> {target} ({source_layer} may not import {target_layer})"
                )
            elif target_layer == "core" != source_layer and target != "xentcli.core":
                found.append(f"{importer} -> {target} (outside core, only xentcli.core)")
    return found


def violations(graph: Graph) -> list[str]:
    return [f"cycle: {' <-> '.join(c)}" for c in cycles(graph)] + wrong_arrows(graph)


def test_xentcli_follows_the_import_rule() -> None:
    graph = import_graph(PACKAGE)
    assert {"xentcli.core", "xentcli.compute.render", "xentcli.cli.main"} <= set(graph)
    assert violations(graph) == []


def test_every_module_belongs_to_a_layer() -> None:
    for module in modules(PACKAGE):
        assert layer(module) in ALLOWED


# The checker itself, on synthetic graphs: what it must catch, it catches.
GOOD: dict[str, set[str]] = {
    "xentcli": {"xentcli.core", "xentcli.errors"},
    "xentcli.__main__": {"xentcli.cli.main"},
    "xentcli.errors": set(),
    "xentcli.text": {"xentcli.errors"},
    "xentcli.core": {"xentcli.core._kernel"},
    "xentcli.core._kernel": {"xentcli.errors"},
    "xentcli.compute.render": {"xentcli.core", "xentcli.text", "xentcli.compute.steps"},
    "xentcli.compute.steps": {"xentcli.text"},
    "xentcli.batch.reader": {"xentcli.core", "xentcli.errors"},
    "xentcli.cli.main": {"xentcli.compute.render", "xentcli.batch.reader", "xentcli.core"},
}


def test_checker_passes_a_graph_that_follows_the_rule() -> None:
    assert violations(GOOD) == []


def test_checker_catches_a_planted_cycle() -> None:
    planted = {**GOOD, "xentcli.compute.steps": {"xentcli.text", "xentcli.compute.render"}}
    assert violations(planted) == ["cycle: xentcli.compute.render <-> xentcli.compute.steps"]
    longer = {
        **GOOD,
        "xentcli.core._kernel": {"xentcli.core._units"},
        "xentcli.core._units": {"xentcli.core._blocks"},
        "xentcli.core._blocks": {"xentcli.core._kernel"},
    }
    assert violations(longer) == [
        "cycle: xentcli.core._blocks <-> xentcli.core._kernel <-> xentcli.core._units"
    ]


@pytest.mark.parametrize(
    ("importer", "target", "why"),
    [
        ("xentcli.core._kernel", "xentcli.text", "core may not import text"),
        ("xentcli.batch.reader", "xentcli.compute.render", "batch may not import compute"),
        ("xentcli.batch.reader", "xentcli.core._kernel", "outside core, only xentcli.core"),
        ("xentcli.compute.steps", "xentcli.cli.tools", "compute may not import cli"),
        ("xentcli", "xentcli.cli.main", "api may not import cli"),
        ("xentcli", "xentcli.compute.render", "api may not import compute"),
        ("xentcli.text", "xentcli.core", "text may not import core"),
    ],
)
def test_checker_catches_a_planted_wrong_arrow(importer: str, target: str, why: str) -> None:
    planted = {**GOOD, importer: GOOD[importer] | {target}}
    assert violations(planted) == [f"{importer} -> {target} ({why})"]


def test_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    package = tmp_path / "xentcli"
    (package / "core").mkdir(parents=True)
    (package / "batch").mkdir()
    for name in ("__init__", "errors", "core/__init__", "core/_units", "batch/__init__"):
        (package / f"{name}.py").write_text("")
    (package / "batch" / "reader.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import _columns\n"
        "from ..core import _units\n"
        "if TYPE_CHECKING:\n"
        "    import xentcli.errors\n"
        "def late():\n"
        "    from xentcli.core import softmax\n"
    )
    (package / "batch" / "_columns.py").write_text("from xentcli.batch.reader import X\n")
    graph = import_graph(package)
    assert graph["xentcli.batch.reader"] == {
        "xentcli.batch._columns",
        "xentcli.core._units",
        "xentcli.errors",
        "xentcli.core",
    }
    assert violations(graph) == [
        "cycle: xentcli.batch._columns <-> xentcli.batch.reader",
        "xentcli.batch.reader -> xentcli.core._units (outside core, only xentcli.core)",
    ]
