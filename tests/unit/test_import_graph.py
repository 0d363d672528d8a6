"""No import cycles in the project's packages, lazy (function-level) imports included.

The layering itself is checked by import-linter (.importlinter, `make lint`); a cycle
inside one layer is what it cannot see, so it is checked here on the same import graph.
"""

from __future__ import annotations

import grimp

PACKAGES = ("snowflake_worker", "snowflake_operator", "snowflake_processor", "snowflake_devtools")


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm: the groups of modules that import each other in a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

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
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_strongly_connected_finds_a_cycle_and_ignores_a_chain() -> None:
    cycle = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert {frozenset(g) for g in strongly_connected(cycle) if len(g) > 1} == {
        frozenset({"a", "b", "c"})
    }
    assert all(len(g) == 1 for g in strongly_connected({"a": {"b"}, "b": {"c"}}))


def test_no_import_cycles() -> None:
    built = grimp.build_graph(*PACKAGES)
    graph = {
        module: {
            target
            for target in built.find_modules_directly_imported_by(module)
            if target.split(".")[0] in PACKAGES
        }
        for module in built.modules
        if module.split(".")[0] in PACKAGES
    }
    cycles = [sorted(group) for group in strongly_connected(graph) if len(group) > 1]
    assert cycles == []
