"""The summary's compiled grouping (numba) gives the numpy path's summary exactly, whatever the
order of the rows, the kind of customer ids, refunds, discounts or merged partials."""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle._compiled import numpy_only
from lifecycle.analytics import (
    SummaryPartial,
    Transactions,
    _grouping,
    merge,
    rfm_summary,
    summary,
)
from lifecycle.analytics.summary import CustomerSummary, _group_starts

pytest.importorskip("numba")

DAY_US = 86_400_000_000


@pytest.fixture
def any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled loops for tables of any size."""
    monkeypatch.setattr(_grouping, "MIN_ROWS", 0)


def _table(
    rng: np.random.Generator, n: int, customers: int, ids: str, layout: str, extras: bool
) -> Transactions:
    who = rng.integers(0, customers, n)
    at = rng.integers(0, 90 * DAY_US, n) + np.datetime64("2025-03-01", "us").astype(np.int64)
    if layout == "customer then time":
        order = np.lexsort((at, who))
        who, at = who[order], at[order]
    elif layout == "time":
        order = np.argsort(at)
        who, at = who[order], at[order]
    customer = {
        "int": who,
        "negative": -(who * 1000),
        # keys (code, day) with the row number under them no longer fit in 63 bits
        "far apart": who * (2**52),
        "text": np.array([f"c{w}" for w in who.tolist()]),
    }[ids]
    amount = np.round(rng.lognormal(3.0, 1.0, n), 2)
    share = rng.random(n) * (rng.random(n) < 0.3) if extras else None
    return Transactions.from_arrays(
        customer,
        at.astype("datetime64[us]"),
        amount,
        refund=None if share is None else np.round(amount * share, 2),
        discount=None if share is None else np.round(amount * share / 3, 2),
        timezone="Europe/Berlin",
    )


def _assert_same(got: CustomerSummary, want: CustomerSummary) -> None:
    assert (got.end, got.unit) == (want.end, want.unit)
    for name, column in want.columns().items():
        mine = getattr(got, name)
        assert mine.dtype == column.dtype, name
        np.testing.assert_array_equal(mine, column, err_msg=name)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 3000),
    customers=st.sampled_from([1, 7, 300, 5000]),
    ids=st.sampled_from(["int", "negative", "far apart", "text"]),
    layout=st.sampled_from(["random", "customer then time", "time"]),
    extras=st.booleans(),
    parts=st.integers(1, 3),
)
def test_the_compiled_summary_equals_the_numpy_summary(
    seed: int,
    n: int,
    customers: int,
    ids: str,
    layout: str,
    extras: bool,
    parts: int,
) -> None:
    rng = np.random.default_rng(seed)
    table = _table(rng, n, customers, ids, layout, extras)
    with numpy_only():
        want = rfm_summary(table, unit="weeks")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_grouping, "MIN_ROWS", 0)  # the compiled loops for tables of any size
        mp.setattr(summary, "_PARALLEL_ROWS", 1)  # and the gathers on two threads
        _assert_same(rfm_summary(table, unit="weeks"), want)
        # partials of slices carry orders and last instants of their own into the grouping
        where = rng.integers(0, parts, n)
        merged = merge(*(SummaryPartial.of(_rows(table, where == k)) for k in range(parts)))
        _assert_same(merged.finish(unit="weeks"), want)
    with numpy_only():
        _assert_same(merged.finish(unit="weeks"), want)


def _rows(t: Transactions, rows: np.ndarray) -> Transactions:
    return Transactions.from_arrays(
        t.customer_id[rows],
        t.at_us[rows].astype("datetime64[us]"),
        t.amount[rows],
        refund=t.refund[rows],
        discount=t.discount[rows],
        timezone=t.timezone,
    )


def test_a_log_in_customer_order_and_shuffled_give_one_summary(any_size: None) -> None:
    # In order, the grouping reads the rows as they are; shuffled, it sorts them first.
    rng = np.random.default_rng(5)
    table = _table(rng, 20_000, 3000, "int", "customer then time", extras=True)
    shuffled = _rows(table, rng.permutation(len(table)))
    want = rfm_summary(table)
    _assert_same(rfm_summary(shuffled), want)
    with numpy_only():
        _assert_same(rfm_summary(table), want)
        _assert_same(rfm_summary(shuffled), want)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(1, 40_000), max_size=120).map(lambda g: sorted(set(g))),
        min_size=1,
        max_size=12,
    )
)
def test_the_compiled_median_gaps_match_the_plain_median(customers: list[list[int]]) -> None:
    # Gap counts on both sides of the short rows' insertion sort.
    customers = [c for c in customers if c] or [[0]]
    day = np.array([d for c in customers for d in c], dtype=np.int64)
    owner = np.repeat(np.arange(len(customers)), [len(c) for c in customers])
    zeros = np.zeros(len(day), dtype=np.int64)
    *_, got = _grouping.customer_totals(day, zeros, zeros, zeros, zeros, _group_starts(owner))
    for i, c in enumerate(customers):
        gaps = [b - a for a, b in itertools.pairwise(c)]
        if gaps:
            assert got[i] == statistics.median(gaps)
        else:
            assert np.isnan(got[i])


def test_the_summary_runs_without_numba() -> None:
    code = (
        "import sys; sys.modules['numba'] = None\n"
        "import numpy as np\n"
        "from lifecycle.analytics import Transactions, _grouping, rfm_summary\n"
        "assert not _grouping.compiled(10**9)\n"
        "n = 100_000\n"
        "at = np.datetime64('2025-01-01', 'us') + np.arange(n).astype('timedelta64[m]')\n"
        "s = rfm_summary(Transactions.from_arrays(np.arange(n) % 977, at, np.ones(n)))\n"
        "print(len(s), int(s.orders.sum()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["977", "100000"]
