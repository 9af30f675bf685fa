"""The package's rooms, as the README's module map draws them, and what each may import:
checked by reading every ``import`` of every module, function-level ones included, so
that the map stays true and no cycle creeps in."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "poller"

ROOMS = {
    "shared": {"clock", "shutdown", "metrics"},
    "pure": {
        "config", "settings", "checks", "cursors", "plan", "windows", "transform", "runner_os",
    },
    "store": {
        "models", "model_base", "state_models", "mysql", "schema", "units", "store",
        "run_store", "http_cache", "locks", "history", "repo_moves",
    },
    "github": {
        "github", "github_types", "pool", "governor", "retry", "github_errors", "app_auth",
        "github_clock", "github_limit", "github_moves", "github_urls",
    },
    "engine": {
        "engine", "repo_sync", "metadata", "collect", "runners", "orgs", "report", "progress",
    },
    "service": {"__main__", "daemon", "schedule", "status", "logs", "exposition", "ci_metrics"},
}  # fmt: skip
MAY_IMPORT = {
    "shared": {"shared"},
    "pure": {"pure"},
    "store": {"store", "pure", "shared"},
    "github": {"github", "pure", "shared"},
    "engine": {"engine", "github", "store", "pure", "shared"},
    "service": set(ROOMS),
}
# pool builds each client whole, with the ETag store that belongs to its token.
EXCEPTIONS = {("pool", "http_cache")}


def imports(module: str) -> set[str]:
    found: set[str] = set()
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "poller":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("poller."):
            found.add(str(node.module).split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("poller.")}
    return found - {module}


def room_of(module: str) -> str:
    [room] = [room for room, modules in ROOMS.items() if module in modules]
    return room


def test_every_module_is_in_one_room():
    modules = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    placed = [module for modules in ROOMS.values() for module in modules]
    assert sorted(placed) == sorted(modules)


@pytest.mark.parametrize("module", sorted(set().union(*ROOMS.values())))
def test_a_module_imports_only_what_its_room_may(module: str):
    allowed = MAY_IMPORT[room_of(module)]
    wrong = {
        imported
        for imported in imports(module)
        if room_of(imported) not in allowed and (module, imported) not in EXCEPTIONS
    }
    assert not wrong, f"{module} ({room_of(module)}) imports {sorted(wrong)}"


def test_no_import_cycle():
    graph = {module: imports(module) for module in set().union(*ROOMS.values())}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        assert module not in visiting, " -> ".join([*visiting, module])
        if module in done:
            return
        visiting.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
