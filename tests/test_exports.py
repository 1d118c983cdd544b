"""The public surface: ``__all__`` is sorted and exactly the public names, and importing
``lifecycle`` is quiet and light."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types

import pytest

import lifecycle as lc


def isort_key(name: str) -> tuple[int, list[int | str]]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then the rest, each naturally."""
    if len(name) > 1 and name.isupper():
        group = 0
    elif name[:1].isupper():
        group = 1
    else:
        group = 2
    natural: list[int | str] = [
        int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)
    ]
    return group, natural


def test_all_is_sorted() -> None:
    assert lc.__all__ == sorted(lc.__all__, key=isort_key)


def test_all_has_no_duplicates() -> None:
    assert len(lc.__all__) == len(set(lc.__all__))


def test_every_name_in_all_exists() -> None:
    missing = [name for name in lc.__all__ if not hasattr(lc, name)]
    assert missing == []


def test_all_is_exactly_the_public_names_that_are_not_modules() -> None:
    public = {
        name
        for name, value in vars(lc).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(lc.__all__) == public | {"__version__"}


def test_the_version_is_a_string() -> None:
    assert isinstance(lc.__version__, str)
    assert lc.__version__


def test_every_event_class_is_exported_under_its_own_name() -> None:
    missing = [cls.__name__ for cls in lc.EVENT_TYPES.values() if cls.__name__ not in lc.__all__]
    assert missing == []


def test_every_error_is_exported() -> None:
    from lifecycle import errors

    assert set(errors.__all__) <= set(lc.__all__)


# -- importing ----------------------------------------------------------------------------------

PROBE = """
import json, logging, sys, warnings
import numpy
filters = list(warnings.filters)
handlers = list(logging.root.handlers)
printing, errors = numpy.get_printoptions(), numpy.geterr()
import lifecycle
print(json.dumps({
    "modules": sorted(m for m in sys.modules if m.split(".")[0] in {
        "hypothesis", "scipy", "pandas", "matplotlib", "pytest"
    } or m.startswith("lifecycle.testing")),
    "filters": warnings.filters == filters,
    "handlers": logging.root.handlers == handlers,
    "numpy": numpy.get_printoptions() == printing and numpy.geterr() == errors,
}))
"""


def run(code: str) -> subprocess.CompletedProcess[str]:
    # A fresh interpreter: the test session has long imported everything.
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"},
    )


@pytest.fixture(scope="module")
def probe() -> dict[str, object]:
    result: dict[str, object] = json.loads(run(PROBE).stdout)
    return result


def test_importing_lifecycle_prints_nothing() -> None:
    result = run("import lifecycle")
    assert (result.stdout, result.stderr) == ("", "")


def test_importing_lifecycle_warns_nothing_even_with_warnings_as_errors() -> None:
    result = run("import warnings; warnings.simplefilter('error'); import lifecycle")
    assert result.stderr == ""


def test_importing_lifecycle_loads_no_extras_and_no_test_kit(
    probe: dict[str, object],
) -> None:
    assert probe["modules"] == []


def test_importing_lifecycle_changes_no_warning_filter(probe: dict[str, object]) -> None:
    assert probe["filters"] is True


def test_importing_lifecycle_adds_no_log_handler_and_keeps_numpy_settings(
    probe: dict[str, object],
) -> None:
    assert probe["handlers"] is True
    assert probe["numpy"] is True


def test_the_test_kit_imports_on_its_own() -> None:
    result = run("import lifecycle.testing.strategies")
    assert (result.stdout, result.stderr) == ("", "")
