"""The package's rooms are its folders, and each may import only what its room may:
checked by reading every ``import`` of every module, function-level ones included, so
that the tree stays the architecture and no cycle creeps in."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "poller"

# What every room may import: small things shared by all, which import nothing of ours.
SHARED = {"clock", "shutdown", "metrics"}
# The top level besides them: the command line (thin), and the facade that dashboard
# scripts import (``from poller import models; models.connect(...)``).
ENTRY = {"__main__", "models"}
ROOMS = {
    "config": "config.toml into frozen settings; no network, no database",
    "rules": "pure rules: plans, windows, payloads into rows, runner OS, cursor names",
    "github": "the only room that talks to GitHub",
    "store": "the database: models, schema, units of work, rows, cursors, locks",
    "sync": "a pass: engine, one repository's sync, the run sync, metadata, orgs",
    "service": "the daemon, the schedule, status, logs and the metrics out",
}
MAY_IMPORT = {
    "shared": set(),
    "config": {"config", "rules"},
    "rules": {"rules", "config"},
    "github": {"github", "config", "rules", "shared"},
    "store": {"store", "config", "rules", "shared"},
    "sync": {"sync", "github", "store", "config", "rules", "shared"},
    "service": {*ROOMS, "shared"},
    "entry": {*ROOMS, "shared", "entry"},
}
# pool builds each client whole, with the ETag store that belongs to its token.
EXCEPTIONS = {("github.pool", "store.http_cache")}


def modules() -> set[str]:
    """Every module, as ``room.module`` or a top-level name."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] != "__init__":
            found.add(".".join(parts))
    return found


def imports(module: str) -> set[str]:
    known = modules()
    path = PACKAGE.joinpath(*module.split(".")).with_suffix(".py")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("poller"):
            base = str(node.module).removeprefix("poller").lstrip(".")
            for alias in node.names:
                full = f"{base}.{alias.name}" if base else alias.name
                found.add(full if full in known else base)
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix("poller.") for a in node.names if a.name.startswith("poller.")
            }
    return found - {module, ""}


def room_of(module: str) -> str:
    if module in SHARED:
        return "shared"
    if module in ENTRY:
        return "entry"
    return module.split(".")[0]


def test_the_rooms_are_the_folders_and_each_says_what_it_holds():
    folders = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert folders == set(ROOMS)
    for room in ROOMS:
        assert ast.get_docstring(ast.parse((PACKAGE / room / "__init__.py").read_text()))
    top = {m for m in modules() if "." not in m}
    assert top == SHARED | ENTRY


@pytest.mark.parametrize("module", sorted(modules()))
def test_a_module_imports_only_what_its_room_may(module: str):
    allowed = MAY_IMPORT[room_of(module)]
    wrong = {
        imported
        for imported in imports(module)
        if room_of(imported) not in allowed and (module, imported) not in EXCEPTIONS
    }
    assert not wrong, f"{module} ({room_of(module)}) imports {sorted(wrong)}"


def test_no_import_cycle():
    graph = {module: imports(module) for module in modules()}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        assert module not in visiting, " -> ".join([*visiting, module])
        if module in done:
            return
        visiting.append(module)
        for imported in sorted(graph.get(module, ())):
            visit(imported)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
