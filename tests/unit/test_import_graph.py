"""Dependencies between the packages of dataflow_operator point one way (README, Layout).

Every import of every module is read from its syntax tree, including imports inside functions and
``TYPE_CHECKING`` blocks (a lazy import is still a dependency), and mapped to the top-level package
or module it reaches (``pipeline``, ``processor``, ``cli``, ...). The kernel (``pipeline``) and the
``contract`` import nothing of the project; every other package imports only what
:data:`ALLOWED` lists; and the packages form no cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

import dataflow_operator

ROOT = Path(dataflow_operator.__file__).parent
PROJECT = "dataflow_operator"

#: What each top-level package may import (besides itself): the kernel at the centre, connectors and
#: transformers implementing its contracts, the spec validating against them, the processor runtime
#: and the operator beside each other, the CLI on top. Observability serves everyone but the kernel.
ALLOWED: Mapping[str, frozenset[str]] = {
    "pipeline": frozenset(),
    "contract": frozenset(),
    "observability": frozenset({"pipeline", "contract"}),
    "connectors": frozenset({"pipeline", "observability"}),
    "transformers": frozenset({"pipeline", "observability"}),
    "spec": frozenset({"pipeline", "contract", "connectors", "transformers", "observability"}),
    "processor": frozenset({"pipeline", "contract", "connectors", "transformers", "spec", "observability"}),
    "operator": frozenset({"pipeline", "contract", "spec", "observability"}),
    "cli": frozenset({"contract", "spec", "processor", "operator", "observability"}),
    "__main__": frozenset({"cli"}),
    "__init__": frozenset(),
}


def module_name(path: Path) -> tuple[str, ...]:
    """``dataflow_operator/processor/engine.py`` → ``("dataflow_operator", "processor", "engine")``;
    a package's ``__init__`` is the package itself."""
    parts = (PROJECT, *path.relative_to(ROOT).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def imported_modules(module: tuple[str, ...], is_package: bool, source: str) -> set[tuple[str, ...]]:
    """Every project module ``source`` imports, absolute, whatever the form of the import."""
    package = module if is_package else module[:-1]
    found: set[tuple[str, ...]] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(tuple(alias.name.split(".")) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else ()
            target = (*base, *node.module.split(".")) if node.module else base
            if len(target) > 1:
                found.add(target)
            else:  # ``from .. import cli``: each name may be a package of its own
                found.update((*target, alias.name) for alias in node.names)
    return {name for name in found if name[0] == PROJECT}


def top_level(module: tuple[str, ...]) -> str:
    return module[1] if len(module) > 1 else "__init__"


def package_graph(modules: Iterable[tuple[tuple[str, ...], bool, str]]) -> dict[str, dict[str, set[str]]]:
    """package → imported package → the importing modules (dotted), for messages."""
    graph: dict[str, dict[str, set[str]]] = {}
    for module, is_package, source in modules:
        source_package = top_level(module)
        edges = graph.setdefault(source_package, {})
        for target in imported_modules(module, is_package, source):
            target_package = top_level(target)
            if target_package != source_package:
                edges.setdefault(target_package, set()).add(".".join(module))
    return graph


def violations(graph: Mapping[str, Mapping[str, set[str]]]) -> list[str]:
    """Imports outside :data:`ALLOWED`, with the modules that make them."""
    problems = []
    for package, edges in sorted(graph.items()):
        allowed = ALLOWED.get(package)
        for target, importers in sorted(edges.items()):
            if allowed is None or target not in allowed:
                problems.append(f"{package} -> {target} (in {', '.join(sorted(importers))})")
    return problems


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Every cycle found by a depth-first walk, each as the path that closes it."""
    found: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                found.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def project_modules() -> list[tuple[tuple[str, ...], bool, str]]:
    return [(module_name(path), path.name == "__init__.py", path.read_text(encoding="utf-8"))
            for path in sorted(ROOT.rglob("*.py"))]


def test_every_package_imports_only_what_its_layer_allows() -> None:
    graph = package_graph(project_modules())
    assert set(graph) <= set(ALLOWED), f"packages without a layer: {set(graph) - set(ALLOWED)}"
    assert violations(graph) == []


def test_the_kernel_and_the_contract_import_nothing_of_the_project() -> None:
    graph = package_graph(project_modules())
    assert graph["pipeline"] == {}
    assert graph["contract"] == {}


def test_packages_form_no_cycle() -> None:
    graph = package_graph(project_modules())
    assert cycles(graph) == []


def test_the_allowed_layers_themselves_form_no_cycle() -> None:
    assert cycles(ALLOWED) == []


@pytest.mark.parametrize(("module", "is_package", "source", "expected"), [
    # the forms a forbidden import can take, each caught
    (("dataflow_operator", "pipeline", "message"), False, "from ..processor import engine\n",
     "pipeline -> processor (in dataflow_operator.pipeline.message)"),
    (("dataflow_operator", "pipeline", "message"), False, "import dataflow_operator.spec.model\n",
     "pipeline -> spec (in dataflow_operator.pipeline.message)"),
    (("dataflow_operator", "pipeline"), True, "from .. import cli\n",
     "pipeline -> cli (in dataflow_operator.pipeline)"),
    (("dataflow_operator", "pipeline", "message"), False, "from dataflow_operator import contract\n",
     "pipeline -> contract (in dataflow_operator.pipeline.message)"),
    (("dataflow_operator", "transformers", "core"), False,
     "def lazily():\n    from ..spec.model import normalize\n",
     "transformers -> spec (in dataflow_operator.transformers.core)"),
    (("dataflow_operator", "connectors", "kafka", "sink"), False,
     "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ...processor.engine import Pipeline\n",
     "connectors -> processor (in dataflow_operator.connectors.kafka.sink)"),
])
def test_a_forbidden_import_is_reported(module: tuple[str, ...], is_package: bool, source: str,
                                        expected: str) -> None:
    assert violations(package_graph([(module, is_package, source)])) == [expected]


def test_imports_within_a_package_and_of_other_projects_are_not_dependencies() -> None:
    source = "import json\nfrom . import positions\nfrom .errors import classify\nimport prometheus_client\n"
    assert package_graph([(("dataflow_operator", "pipeline", "metrics"), False, source)]) == {"pipeline": {}}


def test_a_cycle_between_packages_is_found() -> None:
    graph = package_graph([
        (("dataflow_operator", "spec", "validation"), False, "from ..transformers import registry\n"),
        (("dataflow_operator", "transformers", "core"), False, "from ..spec.fields import Fields\n"),
    ])
    assert cycles(graph) == [["spec", "transformers", "spec"]]
