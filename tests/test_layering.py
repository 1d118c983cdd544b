"""Layering: modules import in any order, no lazy loading, no private names across modules, one
home per public name, and the cycle contract that ``lint-imports`` runs."""

from __future__ import annotations

import ast
import importlib
import json
import random
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

import lifecycle as lc

ROOT = Path(lc.__file__).parent
TOOLS = Path(__file__).parent.parent / "tools"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = sorted(ROOT.rglob("*.py"))
# ``__main__`` runs the command line when imported; it is the entry point, not a module.
MODULES = sorted(module_name(p) for p in SOURCES if p.name != "__main__.py")

# -- any import order ---------------------------------------------------------------------------

# The root package's ``__init__`` imports every core module in its own order, so importing
# ``lifecycle.x`` normally never tries another order. The probe makes the package object
# without running its ``__init__``, imports the modules in the order given, and runs the
# ``__init__`` last.
ORDER_PROBE = """
import importlib, importlib.util, json, sys
root, order = sys.argv[1], json.loads(sys.argv[2])
spec = importlib.util.spec_from_file_location(
    "lifecycle", root + "/__init__.py", submodule_search_locations=[root]
)
package = importlib.util.module_from_spec(spec)
sys.modules["lifecycle"] = package
for name in order:
    importlib.import_module(name)
spec.loader.exec_module(package)
missing = [n for n in package.__all__ if not hasattr(package, n)]
print(json.dumps({"missing": missing}))
"""


def import_in_order(order: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", ORDER_PROBE, str(ROOT), json.dumps(order)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT.parent)},
    )


def orders() -> list[tuple[str, list[str]]]:
    out = [("sorted", MODULES), ("reversed", MODULES[::-1])]
    for seed in range(6):
        shuffled = list(MODULES)
        random.Random(seed).shuffle(shuffled)
        out.append((f"seed {seed}", shuffled))
    return out


@pytest.mark.parametrize(("label", "order"), orders(), ids=[label for label, _ in orders()])
def test_every_module_imports_in_any_order_in_a_fresh_interpreter(
    label: str, order: list[str]
) -> None:
    result = import_in_order(order)
    assert result.returncode == 0, f"{label}: {order}\n{result.stderr}"
    assert json.loads(result.stdout) == {"missing": []}


def test_the_probe_sees_every_module_of_the_package() -> None:
    assert "lifecycle.vocabulary" in MODULES
    assert "lifecycle.cadence.planner" in MODULES
    assert "lifecycle.__main__" not in MODULES
    assert len(MODULES) == len(SOURCES) - 1


# -- what the source may not do -----------------------------------------------------------------

# Imports a function body may make: the optional extras, the modules that need scipy, and the
# server store (the sql extra), which `Lifecycle.open` loads for a server URL only.
OPTIONAL = (
    "scipy",
    "pandas",
    "matplotlib",
    "holidays",
    "openpyxl",
    "charset_normalizer",
    "pyarrow",
    "polars",
    "dask",
    "distributed",
    "lifecycle.clv",
    "lifecycle.adapters.sql",
)


def parsed() -> list[tuple[str, ast.Module]]:
    return [(module_name(p), ast.parse(p.read_text(encoding="utf-8"))) for p in SOURCES]


def function_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            found += [n for n in ast.walk(fn) if isinstance(n, ast.Import | ast.ImportFrom)]
    return found


def imported_modules(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    return [node.module or ""]


def test_function_bodies_import_only_optional_extras() -> None:
    late = [
        f"{name}:{node.lineno} {ast.unparse(node)}"
        for name, tree in parsed()
        for node in function_imports(tree)
        if not all(m.startswith(OPTIONAL) for m in imported_modules(node))
    ]
    assert late == []


def test_no_importlib_and_no_module_getattr() -> None:
    found = []
    for name, tree in parsed():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and any(
                m.split(".")[0] == "importlib" for m in imported_modules(node)
            ):
                found.append(f"{name}:{node.lineno} imports importlib")
        found += [
            f"{name}: module __getattr__"
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name == "__getattr__"
        ]
    assert found == []


def test_no_module_imports_a_private_name_of_another() -> None:
    found = [
        f"{name}:{node.lineno} {ast.unparse(node)}"
        for name, tree in parsed()
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and any(a.name.startswith("_") and not a.name.startswith("__") for a in node.names)
    ]
    assert found == []


def test_each_public_name_has_one_home() -> None:
    """A name is listed by the module that defines it or by that module's own package, and
    by ``lifecycle`` itself: never by two subpackages or modules."""
    homes: dict[tuple[int, str], tuple[object, set[str]]] = {}
    for name in MODULES:
        if name == "lifecycle":
            continue
        module = importlib.import_module(name)
        for public in getattr(module, "__all__", ()):
            obj = getattr(module, public)
            if not isinstance(obj, str | int | float | bool):  # interned values share ids
                homes.setdefault((id(obj), public), (obj, set()))[1].add(name)
    strays = {}
    for (_, public), (obj, listed) in homes.items():
        defined = getattr(obj, "__module__", None)
        if getattr(obj, "__name__", None) != public or not isinstance(defined, str):
            # A constant or an alias: one module lists it, or one module and its own package.
            first, last = min(listed, key=len), max(listed, key=len)
            defined = last if last.startswith(first + ".") or last == first else ""
        if not listed <= {defined, defined.rsplit(".", 1)[0]}:
            strays[public] = sorted(listed)
    assert strays == {}


# -- the cycle contract -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def contracts() -> object:
    sys.path.insert(0, str(TOOLS.parent))
    try:
        return importlib.import_module("tools.import_contracts")
    finally:
        sys.path.remove(str(TOOLS.parent))


def graph(*imports: tuple[str, str]) -> grimp.ImportGraph:
    g = grimp.ImportGraph()
    for importer, imported in imports:
        g.add_import(importer=importer, imported=imported, line_number=1, line_contents="")
    return g


def cycles(contracts: object, g: grimp.ImportGraph) -> list[list[str]]:
    edges = contracts.import_edges(g, "pkg")  # type: ignore[attr-defined]
    return [c for c in contracts.strongly_connected(edges) if len(c) > 1]  # type: ignore[attr-defined]


def test_the_contract_finds_a_cycle_between_two_modules(contracts: object) -> None:
    g = graph(("pkg.a", "pkg.b"), ("pkg.b", "pkg.c"), ("pkg.c", "pkg.a"), ("pkg.c", "pkg.d"))
    assert cycles(contracts, g) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_the_contract_counts_the_package_init_that_an_import_runs(contracts: object) -> None:
    # pkg.stages -> pkg.cad.policy runs pkg/cad/__init__, which imports pkg.cad.planner,
    # which imports pkg.stages: a cycle although no module names another twice.
    g = graph(
        ("pkg.stages", "pkg.cad.policy"),
        ("pkg.cad", "pkg.cad.policy"),
        ("pkg.cad", "pkg.cad.planner"),
        ("pkg.cad.planner", "pkg.stages"),
    )
    assert cycles(contracts, g) == [["pkg.cad", "pkg.cad.planner", "pkg.stages"]]


def test_a_package_importing_its_own_modules_is_no_cycle(contracts: object) -> None:
    g = graph(("pkg.cad", "pkg.cad.policy"), ("pkg.cad.policy", "pkg.cad.rules"))
    g.add_import(importer="pkg", imported="pkg.cad", line_number=1, line_contents="")
    assert cycles(contracts, g) == []


def test_the_contract_holds_on_the_package(contracts: object) -> None:
    g = grimp.build_graph("lifecycle", exclude_type_checking_imports=True)
    edges = contracts.import_edges(g, "lifecycle")  # type: ignore[attr-defined]
    assert [c for c in contracts.strongly_connected(edges) if len(c) > 1] == []  # type: ignore[attr-defined]
    assert "lifecycle.cadence" in edges["lifecycle.policy"]  # the package __init__ it runs
