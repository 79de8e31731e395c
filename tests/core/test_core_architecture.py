"""The architecture contract: the core's modules form layers, and a module imports only from the
layers below it (docs/architecture.md).

Every ``import`` counts: at module level, inside functions, inside ``try``; only imports under
``if TYPE_CHECKING:`` (which never run) are left out.  ``from snncore import x`` is an import of
the submodule ``snncore.x`` when there is one, else of the package ``snncore`` itself (its
``__init__``, the top layer), so a submodule cannot reach back through its own package.
Modules of one layer may not import each other either: no cycles are possible.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Bottom-up.  A module may import modules of lower layers only.
LAYERS: list[tuple[str, ...]] = [
    (
        "snncore._version",
        "snncore.registry",
        "snncore.hookspecs",
        "snncore.parameters",
        "snncore.states",
        "snncore.adjoint",
        "snncore.plot",
    ),
    ("snncore.protocols",),
    ("snncore.plugins",),
    ("snncore.surrogates",),
    ("snncore.encoders", "snncore.loop", "snncore.backends"),
    ("snncore.modules",),
    ("snncore.containers",),
    ("snncore.api",),
    ("snncore.nir._mapping",),
    ("snncore.nir._neurons",),
    ("snncore.nir._export", "snncore.nir._import"),
    ("snncore.nir",),
    ("snncore.testing._harness",),
    (
        "snncore.testing._surrogates",
        "snncore.testing._checks",
        "snncore.testing._interface",
        "snncore.testing._runtime",
    ),
    ("snncore.testing._suite",),
    ("snncore_pytest",),
    ("snncore.testing",),
    ("snncore.cli_nir",),
    ("snncore.cli",),
    (
        "snncore.compat.norse._names",
        "snncore.compat.norse._superspike",
        "snncore.compat.norse._functional",
        "snncore.compat.norse._base",
        "snncore.compat.norse._izhikevich",
    ),
    ("snncore.compat.norse._tree",),
    ("snncore.compat.norse",),
    ("snncore.compat",),
    ("snncore",),
]


def module_files(root: Path) -> dict[str, Path]:
    """Module name -> file, for the ``snncore`` package and the top-level ``snncore_pytest``."""
    found = {}
    for path in sorted((root / "snncore").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    if (root / "snncore_pytest.py").is_file():
        found["snncore_pytest"] = root / "snncore_pytest.py"
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(module: str, source: str, known: Iterable[str]) -> set[str]:
    """The known modules that ``module``'s source imports, wherever the import statement is."""
    known = set(known)
    package = (
        module if module in known and _is_package(module, known) else module.rpartition(".")[0]
    )
    found = set()
    for node in _import_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        for target in targets:
            while target and target not in known:  # import a.b.c of a module we do not list
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
    return found


def _is_package(module: str, known: set[str]) -> bool:
    return any(other.startswith(module + ".") for other in known)


def violations(graph: dict[str, set[str]], layers: list[tuple[str, ...]]) -> list[str]:
    """Every import that does not point to a strictly lower layer, and every unlisted module."""
    layer_of = {module: i for i, layer in enumerate(layers) for module in layer}
    found = [
        f"{module} is in no layer: add it to LAYERS (and docs/architecture.md)"
        for module in sorted(graph)
        if module not in layer_of
    ]
    for module in sorted(graph):
        for target in sorted(graph[module]):
            if module in layer_of and target in layer_of and layer_of[target] >= layer_of[module]:
                where = (
                    "the same layer" if layer_of[target] == layer_of[module] else "a higher layer"
                )
                found.append(f"{module} imports {target}, which is in {where}")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def import_graph(root: Path) -> dict[str, set[str]]:
    files = module_files(root)
    return {name: imports_of(name, path.read_text(), files) for name, path in files.items()}


def test_the_core_modules_import_only_from_lower_layers() -> None:
    graph = import_graph(ROOT)
    assert violations(graph, LAYERS) == []
    assert cycles(graph) == []


def test_every_layered_module_exists() -> None:
    files = module_files(ROOT)
    assert [m for layer in LAYERS for m in layer if m not in files] == []


# -- the checker itself catches what it must ------------------------------------------------------

KNOWN = ["pkg", "pkg.low", "pkg.high", "pkg.sub", "pkg.sub.leaf"]
LAYERS_OF_KNOWN = [("pkg.low", "pkg.sub.leaf"), ("pkg.sub",), ("pkg.high",), ("pkg",)]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import pkg.high", {"pkg.high"}),
        ("from pkg import high", {"pkg.high"}),
        ("from pkg import create", {"pkg"}),  # a name of the package: its __init__
        ("def f():\n    from pkg.high import thing", {"pkg.high"}),  # inside a function
        ("try:\n    import pkg.high\nexcept ImportError:\n    pass", {"pkg.high"}),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.high", set()),
        ("from . import high", {"pkg.high"}),
        ("import torch", set()),
    ],
)
def test_imports_are_found_wherever_they_are(source: str, expected: set[str]) -> None:
    assert imports_of("pkg.low", source, KNOWN) == expected


def test_an_upward_import_and_a_cycle_are_reported() -> None:
    graph = {
        "pkg": {"pkg.high"},
        "pkg.high": {"pkg.low"},
        "pkg.low": {"pkg.high"},  # upward, and a cycle with pkg.high
        "pkg.sub": set(),
        "pkg.sub.leaf": set(),
    }
    assert violations(graph, LAYERS_OF_KNOWN) == [
        "pkg.low imports pkg.high, which is in a higher layer"
    ]
    assert cycles(graph) == [["pkg.high", "pkg.low"]]


def test_a_submodule_importing_its_package_is_upward() -> None:
    graph = {"pkg.sub.leaf": imports_of("pkg.sub.leaf", "from pkg.sub import helper", KNOWN)}
    graph.update({m: set() for m in KNOWN if m not in graph})
    assert violations(graph, LAYERS_OF_KNOWN) == [
        "pkg.sub.leaf imports pkg.sub, which is in a higher layer"
    ]


def test_an_unlisted_module_is_reported() -> None:
    graph = {m: set() for m in KNOWN} | {"pkg.new": set()}
    assert violations(graph, LAYERS_OF_KNOWN) == [
        "pkg.new is in no layer: add it to LAYERS (and docs/architecture.md)"
    ]
