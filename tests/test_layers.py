"""Imports run one way: a module imports only from its own layer or the layers below.

The layers, bottom up, are listed in ``LAYERS`` and drawn in docs/architecture.md. The
graph is read from the source with ``ast``: every ``import`` that runs (module level or
inside a function), not those under ``if TYPE_CHECKING:``, which only name types.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "conveyor"

#: Bottom up. A module belongs to the first layer with a prefix that matches its name.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("model", ("conveyor.version", "conveyor.errors", "conveyor.states", "conveyor.ids",
               "conveyor.config", "conveyor.records", "conveyor.serialization",
               "conveyor.names", "conveyor.routing", "conveyor.options", "conveyor.events",
               "conveyor.extras", "conveyor.outage", "conveyor.proctitle")),
    ("backends", ("conveyor.backends",)),
    ("core", ("conveyor.app", "conveyor.task", "conveyor.arguments", "conveyor.job", "conveyor.context",
              "conveyor.aio", "conveyor.loader", "conveyor.workflows", "conveyor.schedules",
              "conveyor.revocation", "conveyor.stray_queues")),
    ("engine", ("conveyor.worker", "conveyor.scheduler")),
    ("operations", ("conveyor.control",)),
    ("surfaces", ("conveyor.cli", "conveyor.web", "conveyor.contrib",
                  "conveyor.testing", "conveyor.__main__")),
    # the package's top names the public API from every layer
    ("package", ("conveyor",)),
    # apps written as a user writes them, against the public API: the demo; and the
    # integrations, which build on the whole package (conveyor.contrib.django: the CLI,
    # the control functions, the app; conveyor.celery: Celery's API over Conveyor's)
    ("apps", ("conveyor.demo", "conveyor.contrib.django", "conveyor.celery")),
]  # fmt: skip
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}

#: Imports inside functions that are there for a reason other than a circle: optional
#: dependencies loaded only when used (a backend's driver), and a pool's own code, so a
#: worker (and each process-pool child) loads only the pool it runs.
LAZY_OK = {
    # the web extra (fastapi, uvicorn) is optional: the CLI says how to install it
    ("conveyor.cli.serve", "conveyor.web"),
    ("conveyor.cli.serve", "conveyor.web.service"),
    ("conveyor.cli.tokens", "conveyor.web.tokens"),
    ("conveyor.cli.up", "conveyor.web"),
    ("conveyor.cli.up", "conveyor.web.service"),
    ("conveyor.cli.stack", "conveyor.web"),
    ("conveyor.worker.pools", "conveyor.worker.pools.process"),
    ("conveyor.worker.pools", "conveyor.worker.pools.threads"),
    ("conveyor.worker.pools", "conveyor.worker.pools.aio"),
    ("conveyor.backends", "conveyor.backends.memory"),
    ("conveyor.backends", "conveyor.backends.sqlite"),
    ("conveyor.backends", "conveyor.backends.redis"),
    ("conveyor.backends", "conveyor.backends.postgres"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str:
    """The layer of the longest prefix that matches (conveyor.contrib.django is an app,
    the rest of conveyor.contrib a surface)."""
    if module == "conveyor":  # the package layer is the top itself, not everything under it
        return "package"
    best: tuple[int, str] | None = None
    for name, prefixes in LAYERS:
        for p in prefixes:
            if name != "package" and (module == p or module.startswith(p + ".")):
                best = max(best or (0, name), (len(p), name))
    if best is not None:
        return best[1]
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported conveyor module, inside a function?) for every import that runs."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child, in_function)
            return
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.startswith("conveyor"):
                names = [f"{base}.{a.name}" for a in node.names]
                found.extend((n if (SRC / n.replace(".", "/")).exists() or
                              (SRC / (n.replace(".", "/") + ".py")).exists() else base,
                              in_function) for n in names)  # fmt: skip
        elif isinstance(node, ast.Import):
            found.extend((a.name, in_function) for a in node.names if a.name.startswith("conveyor"))
        inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(ast.parse(path.read_text()), False)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_never_reach_a_layer_above(path: Path) -> None:
    module = module_name(path)
    mine = RANK[layer_of(module)]
    upward = [
        f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
        for target, _ in imports(path)
        if RANK[layer_of(target)] > mine
    ]
    assert not upward


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_import_hides_inside_a_function(path: Path) -> None:
    """A conveyor import inside a function usually hides a circle: allowed only for the
    lazy loading listed in LAZY_OK."""
    module = module_name(path)
    hidden = [
        target
        for target, in_function in imports(path)
        if in_function and (module, target) not in LAZY_OK
    ]
    assert not hidden, f"{module} imports {hidden} inside a function"
