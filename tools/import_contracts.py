"""An import-linter contract type: no cycle among the modules of a package.

import-linter's ``acyclic_siblings`` squashes each subpackage into one node, so a subpackage
whose policy modules are imported by a module that its planner imports would count as a
cycle although no module imports itself back. This contract looks at modules instead, and
models what Python runs: importing ``a.b.c`` from outside ``a.b`` first runs ``a/b/__init__``,
so such an import also counts as an import of the package ``a.b``. The top-level package's
``__init__`` (the facade that imports everything) only counts where a module imports it by
name. Configure it as::

    [tool.importlinter]
    contract_types = ["acyclic_modules: tools.import_contracts.AcyclicModulesContract"]

    [[tool.importlinter.contracts]]
    name = "No import cycles"
    type = "acyclic_modules"
    package = "lifecycle"
"""

from __future__ import annotations

from collections import deque
from itertools import pairwise

import grimp
from importlinter import Contract, ContractCheck, fields, output


class AcyclicModulesContract(Contract):
    """Fails on any cycle of imports among the modules of ``package``."""

    type_name = "acyclic_modules"

    package = fields.StringField()

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        edges = import_edges(graph, str(self.package))
        cycles = [shortest_cycle(edges, scc) for scc in strongly_connected(edges) if len(scc) > 1]
        details = [[describe(graph, a, b) for a, b in pairwise(c)] for c in cycles]
        return ContractCheck(kept=not cycles, metadata={"cycles": details})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for chain in check.metadata["cycles"]:
            output.print_error("A cycle:")
            output.new_line()
            for line in chain:
                output.indent_cursor()
                output.print_error(line, bold=False)
            output.new_line()


def import_edges(graph: grimp.ImportGraph, package: str) -> dict[str, set[str]]:
    """Each module of ``package`` and the modules of ``package`` that importing it runs."""
    inside = {m for m in graph.modules if m == package or m.startswith(package + ".")}
    edges: dict[str, set[str]] = {}
    for module in inside:
        targets = set(graph.find_modules_directly_imported_by(module)) & inside
        for target in list(targets):
            parts = target.split(".")
            for i in range(len(package.split(".")) + 1, len(parts)):
                ancestor = ".".join(parts[:i])
                if not (module == ancestor or module.startswith(ancestor + ".")):
                    targets.add(ancestor)
        targets.discard(module)
        edges[module] = targets
    return edges


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(sorted(component))
    return out


def shortest_cycle(edges: dict[str, set[str]], component: list[str]) -> list[str]:
    """The shortest cycle through the first module of a strongly connected component."""
    start, members = component[0], set(component)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(edges[node] & members):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    return [start, start]


def describe(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    details = graph.get_import_details(importer=importer, imported=imported)
    if not details:
        return f"{importer} -> {imported} (runs the package's __init__)"
    line = details[0]["line_number"]
    return f"{importer} -> {imported} (l. {line})"
