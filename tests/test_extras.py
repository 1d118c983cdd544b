"""Every optional dependency, when missing, is one clear error naming the extra to install."""

from __future__ import annotations

import pickle
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import lifecycle as lc
from lifecycle.analytics import Transactions, rfm_summary


def block(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``import <module>`` fail as it does when the package is not installed."""
    for name in modules:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            monkeypatch.delitem(sys.modules, loaded)
        monkeypatch.setitem(sys.modules, name, None)


def test_missing_extra_is_a_lifecycle_error_and_an_import_error() -> None:
    error = lc.MissingExtra(package="scipy", extra="clv", feature="value models")
    assert isinstance(error, lc.LifecycleError)
    assert isinstance(error, ImportError)
    assert str(error) == "value models needs scipy: pip install 'lifecycle[clv]'"
    assert (error.package, error.extra, error.name) == ("scipy", "clv", "scipy")
    back = pickle.loads(pickle.dumps(error))
    assert (str(back), back.extra) == (str(error), "clv")


def test_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    table = Transactions.from_arrays(
        ["c1"], [datetime(2026, 1, 1, tzinfo=UTC)], [10.0], timezone="UTC"
    )
    summary = rfm_summary(table)
    block(monkeypatch, "pandas")
    with pytest.raises(lc.MissingExtra, match=r"lifecycle\[pandas\]") as info:
        summary.to_pandas()
    assert info.value.extra == "pandas"


def test_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    from lifecycle.analytics import pareto, plots

    block(monkeypatch, "matplotlib")
    with pytest.raises(lc.MissingExtra, match=r"lifecycle\[plots\]") as info:
        plots.pareto_curve(pareto([3.0, 1.0]))
    assert info.value.package == "matplotlib"


def test_openpyxl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from lifecycle.io import read_orders

    book = tmp_path / "orders.xlsx"
    book.write_bytes(b"PK")
    block(monkeypatch, "openpyxl")
    with pytest.raises(lc.MissingExtra, match=r"lifecycle\[excel\]"):
        read_orders(book)


def test_holidays(monkeypatch: pytest.MonkeyPatch) -> None:
    from lifecycle import calendar as cal

    block(monkeypatch, "holidays")
    cal.public_holidays.cache_clear()
    try:
        with pytest.raises(lc.MissingExtra, match=r"lifecycle\[calendar\]"):
            cal.public_holidays("FR", 2026)
    finally:
        cal.public_holidays.cache_clear()


@pytest.mark.parametrize(
    ("module", "extra", "call"),
    [
        ("pyarrow", "arrow", lambda s: s.to_arrow()),
        ("polars", "polars", lambda s: s.to_polars()),
        ("pyarrow", "arrow", lambda s: Transactions.from_arrow(None)),
        ("pyarrow", "arrow", lambda s: Transactions.from_polars(s.to_polars())),
    ],
)
def test_arrow_and_polars(
    monkeypatch: pytest.MonkeyPatch, module: str, extra: str, call: Any
) -> None:
    table = Transactions.from_arrays(["a"], [datetime(2026, 1, 1, tzinfo=UTC)], [1.0])
    summary = rfm_summary(table)
    block(monkeypatch, module)
    with pytest.raises(lc.MissingExtra, match=rf"lifecycle\[{extra}\]"):
        call(summary)


def test_dask_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "lifecycle.dask", raising=False)
    block(monkeypatch, "dask")
    with pytest.raises(lc.MissingExtra, match=r"lifecycle\[dask\]"):
        import lifecycle.dask  # noqa: F401


WITHOUT_SCIPY = """
import sys
sys.modules["scipy"] = None
import lifecycle as lc
try:
    {call}
except lc.MissingExtra as e:
    print(e.extra, e)
"""


@pytest.mark.parametrize(
    "call",
    [
        "import lifecycle.clv",
        "import lifecycle.clv.betageo",
        "lc.Lifecycle.in_memory().fit_value_model()",
    ],
)
def test_scipy(call: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", WITHOUT_SCIPY.format(call=call)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert out.startswith("clv ")
    assert "pip install 'lifecycle[clv]'" in out
