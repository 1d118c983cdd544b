"""The columnar core: the transaction table, summaries that merge, and batch stage and status."""

from __future__ import annotations

import itertools
import statistics
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lifecycle as lc
from lifecycle._ledger import fold
from lifecycle._time import local_date
from lifecycle.analytics import SummaryPartial, Transactions, assess_all, merge, rfm_summary
from lifecycle.analytics._days import local_days
from lifecycle.datasets import synthetic_shop
from lifecycle.testing.strategies import DEFAULT_ZONES, aware_datetimes, histories

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def us(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


# -- calendar days ------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(aware_datetimes(), min_size=1, max_size=40),
    st.sampled_from(DEFAULT_ZONES),
)
def test_local_days_match_the_calendar_one_by_one(instants: list[datetime], name: str) -> None:
    tz = ZoneInfo(name)
    got = local_days(np.array([us(t) for t in instants], dtype=np.int64), tz)
    want = [(local_date(t, tz) - date(1970, 1, 1)).days for t in instants]
    assert got.tolist() == want


def test_local_days_across_a_dst_change() -> None:
    ny = ZoneInfo("America/New_York")
    # 2026-03-08 02:00 EST jumps to 03:00 EDT; 2026-11-01 02:00 EDT falls back to 01:00 EST.
    instants = [
        datetime(2026, 3, 8, 6, 59, tzinfo=UTC),  # 01:59 EST
        datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # 03:00 EDT
        datetime(2026, 3, 9, 3, 59, tzinfo=UTC),  # 23:59 EDT on the 8th
        datetime(2026, 11, 2, 4, 59, tzinfo=UTC),  # 23:59 EST on 1 November
        datetime(2026, 11, 2, 5, 0, tzinfo=UTC),  # 00:00 EST on 2 November
    ]
    got = local_days(np.array([us(t) for t in instants], dtype=np.int64), ny)
    assert [date(1970, 1, 1) + timedelta(days=int(d)) for d in got] == [
        date(2026, 3, 8),
        date(2026, 3, 8),
        date(2026, 3, 8),
        date(2026, 11, 1),
        date(2026, 11, 2),
    ]


# -- the table --------------------------------------------------------------------------------


def when(*days: float) -> np.ndarray:
    return np.array(
        [np.datetime64("2026-01-01T12:00") + np.timedelta64(int(d * 24), "h") for d in days]
    )


def test_a_table_from_arrays() -> None:
    t = Transactions.from_arrays(
        ["a", "b", "a"], when(0, 1, 2), [10, 20, 30.5], timezone="Asia/Shanghai"
    )
    assert len(t) == 3
    assert t.net.tolist() == [10, 20, 30.5]
    assert t.day.tolist() == [(date(2026, 1, d) - date(1970, 1, 1)).days for d in (1, 2, 3)]
    assert "3 orders, 2 customers" in repr(t)


def test_a_table_does_not_change_with_the_arrays_it_was_built_from() -> None:
    ids = np.array([1, 1])
    at = np.array(["2026-01-01T10:00", "2026-01-05T10:00"], dtype="datetime64[us]")
    amount = np.array([10.0, 20.0])
    t = Transactions.from_arrays(ids, at, amount)
    ids[1], at[1], amount[1] = 2, np.datetime64("2030-01-01", "us"), 99.0
    s = rfm_summary(t)
    assert s.customer_id.tolist() == [1]
    assert s.recency.tolist() == [4]
    assert s.total_spend.tolist() == [30]


def test_aware_datetimes_are_taken_as_instants() -> None:
    sh = ZoneInfo("Asia/Shanghai")
    t = Transactions.from_arrays(
        ["a", "a"],
        [datetime(2026, 1, 1, 7, tzinfo=sh), datetime(2026, 1, 1, 9, tzinfo=sh)],
        [1, 1],
        timezone="Asia/Shanghai",
    )
    # 07:00 and 09:00 in Shanghai are on 1 January there, though 07:00 is 31 December in UTC.
    assert len(set(t.day.tolist())) == 1


@pytest.mark.parametrize(
    ("kwargs", "column"),
    [
        ({"amount": [1, -1]}, "amount"),
        ({"amount": [1, float("nan")]}, "amount"),
        ({"amount": [1]}, "amount"),
        ({"refund": [0, 5]}, "refund"),
        ({"at": [datetime(2026, 1, 1), datetime(2026, 1, 2)]}, "at"),  # noqa: DTZ001
        ({"at": ["x", "y"]}, "at"),
        ({"at": np.array(["NaT", "2026-01-01"], dtype="datetime64[us]")}, "at"),
        ({"customer_id": ["a", None]}, "customer_id"),
        ({"customer_id": [["a"], ["b"]]}, "customer_id"),
        ({"timezone": "Mars/Base"}, "timezone"),
    ],
)
def test_bad_columns_are_named(kwargs: dict[str, object], column: str) -> None:
    args: dict[str, object] = {
        "customer_id": ["a", "b"],
        "at": when(0, 1),
        "amount": [1.0, 2.0],
        **kwargs,
    }
    with pytest.raises(lc.DataError) as info:
        Transactions.from_arrays(
            args.pop("customer_id"),
            args.pop("at"),
            args.pop("amount"),
            **args,  # type: ignore[arg-type]
        )
    assert info.value.column == column


# -- the summary ------------------------------------------------------------------------------


def reference_summary(rows: list[tuple[int, int, float]], end: int) -> dict[int, dict[str, float]]:
    """The summary, customer by customer, the plain way."""
    out: dict[int, dict[str, float]] = {}
    for c in sorted({r[0] for r in rows}):
        mine = [(d, a) for cc, d, a in rows if cc == c and d <= end]
        if not mine:
            continue
        by_day: dict[int, float] = {}
        for d, a in mine:
            by_day[d] = by_day.get(d, 0) + a
        days = sorted(by_day)
        gaps = [b - a for a, b in itertools.pairwise(days)]
        repeat = [by_day[d] for d in days[1:]]
        out[c] = {
            "orders": len(mine),
            "frequency": len(days) - 1,
            "recency": days[-1] - days[0],
            "T": end - days[0],
            "days_since_last": end - days[-1],
            "total_spend": sum(a for _, a in mine),
            "monetary_value": sum(repeat) / len(repeat) if repeat else 0.0,
            "median_gap_days": statistics.median(gaps) if gaps else float("nan"),
        }
    return out


transactions = st.lists(
    st.tuples(
        st.integers(0, 6), st.integers(0, 60), st.integers(0, 100_000).map(lambda c: c / 100)
    ),
    min_size=1,
    max_size=60,
)


def table_of(rows: list[tuple[int, int, float]]) -> Transactions:
    base = np.datetime64("2026-01-01T10:00", "us")
    return Transactions.from_arrays(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([base + np.timedelta64(r[1], "D") for r in rows]),
        np.array([r[2] for r in rows]),
    )


@settings(max_examples=80, deadline=None)
@given(transactions, st.integers(0, 70))
def test_the_summary_matches_the_plain_definition(
    rows: list[tuple[int, int, float]], end: int
) -> None:
    table = table_of(rows)
    first = (date(2026, 1, 1) - date(1970, 1, 1)).days
    want = reference_summary(rows, end)
    if not want:
        assert len(rfm_summary(table, end=date(2026, 1, 1) + timedelta(days=end))) == 0
        return
    got = rfm_summary(table, end=date(2026, 1, 1) + timedelta(days=end))
    assert got.customer_id.tolist() == list(want)
    assert got.end == date.fromordinal(date(1970, 1, 1).toordinal() + first + end)
    for i, c in enumerate(want):
        for name, value in want[c].items():
            mine = float(getattr(got, name)[i])
            if np.isnan(value):
                assert np.isnan(mine)
            else:
                assert mine == pytest.approx(value, abs=1e-9), name


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=6), min_size=1))
def test_segment_extremes_match_min_and_max_of_each_run(runs: list[list[int]]) -> None:
    # runs of one row and longer ones, the last run ending at the last row
    from lifecycle.analytics.summary import _segment_extremes

    values = np.array([v for run in runs for v in run], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum([len(run) for run in runs])[:-1]]).astype(np.int64)
    assert _segment_extremes(np.minimum, values, starts).tolist() == [min(r) for r in runs]
    assert _segment_extremes(np.maximum, values, starts).tolist() == [max(r) for r in runs]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(1, 40_000), max_size=300).map(lambda g: sorted(set(g))),
        min_size=1,
        max_size=12,
    )
)
def test_median_gaps_match_the_plain_median(customers: list[list[int]]) -> None:
    # Purchase days per customer (strictly increasing); gap counts cross every bucket width,
    # and gaps past 2**15 days take the wider integer type.
    from lifecycle.analytics.summary import _median_gaps

    day = np.array([d for c in customers for d in c] or [0], dtype=np.int64)
    customers = [c for c in customers if c] or [[0]]
    lengths = np.array([len(c) for c in customers], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    got = _median_gaps(day, starts, lengths)
    for i, c in enumerate(customers):
        gaps = [b - a for a, b in itertools.pairwise(c)]
        if gaps:
            assert got[i] == statistics.median(gaps)
        else:
            assert np.isnan(got[i])


@settings(max_examples=80, deadline=None)
@given(transactions, st.data())
def test_partials_merge_into_the_whole_exactly(
    rows: list[tuple[int, int, float]], data: st.DataObject
) -> None:
    table = table_of(rows)
    parts = data.draw(st.integers(1, 4))
    where = np.array(
        data.draw(st.lists(st.integers(0, parts - 1), min_size=len(rows), max_size=len(rows)))
    )
    slices = [_take(table, where == k) for k in range(parts)]
    merged = merge(*(SummaryPartial.of(s) for s in slices)).finish()
    whole = rfm_summary(table)
    for name, column in whole.columns().items():
        np.testing.assert_array_equal(getattr(merged, name), column, err_msg=name)
    # Merging in another order, or nested, changes nothing either.
    again = merge(*(SummaryPartial.of(s) for s in reversed(slices))).finish()
    for name, column in whole.columns().items():
        np.testing.assert_array_equal(getattr(again, name), column, err_msg=name)


@settings(max_examples=40, deadline=None)
@given(
    transactions,
    st.integers(2, 5),
    st.sampled_from(["int", "negative", "text"]),
    st.sampled_from(["UTC", "America/New_York"]),
    st.data(),
)
def test_the_summary_on_several_cores_equals_the_summary_on_one(
    rows: list[tuple[int, int, float]], cores: int, ids: str, zone: str, data: st.DataObject
) -> None:
    # Large tables are sorted and gathered by several threads; force that on small ones.
    from lifecycle.analytics import summary

    n = len(rows)
    customer = {
        "int": [r[0] for r in rows],
        "negative": [-(r[0] * 1000) for r in rows],
        "text": [f"c{r[0]}" for r in rows],
    }[ids]
    amount = np.array([r[2] for r in rows])
    share = np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    table = Transactions.from_arrays(
        np.array(customer),
        table_of(rows).at_us.astype("datetime64[us]"),
        amount,
        refund=np.round(amount * share, 2),
        discount=np.round(amount * share / 3, 2),
        timezone=zone,
    )
    where = np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), dtype=bool)
    alone = rfm_summary(table)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(summary, "_PARALLEL_ROWS", 1)
        mp.setattr(summary, "_cores", lambda: cores)
        together = rfm_summary(table)
        halves = [SummaryPartial.of(_take(table, rows)) for rows in (where, ~where) if rows.any()]
        merged = merge(*halves).finish()
    for name, column in alone.columns().items():
        np.testing.assert_array_equal(getattr(together, name), column, err_msg=name)
        np.testing.assert_array_equal(getattr(merged, name), column, err_msg=name)


def _take(t: Transactions, rows: np.ndarray) -> Transactions:
    base = np.datetime64(0, "us")
    return Transactions.from_arrays(
        t.customer_id[rows],
        base + t.at_us[rows].astype("timedelta64[us]"),
        t.amount[rows],
        refund=t.refund[rows],
        discount=t.discount[rows],
        timezone=t.timezone,
    )


def test_weeks_are_days_over_seven_and_the_end_defaults_to_the_last_day() -> None:
    t = Transactions.from_arrays([1, 1, 2], when(0, 14, 21), [5, 7, 9])
    days, weeks = rfm_summary(t), rfm_summary(t, unit="weeks")
    assert days.T.tolist() == [21, 0]
    assert weeks.T.tolist() == [3, 0]
    assert weeks.recency.tolist() == [2, 0]
    assert days.monetary_value.tolist() == [7, 0]
    with pytest.raises(lc.DataError, match="unit"):
        rfm_summary(t, unit="months")  # type: ignore[arg-type]


def test_purchases_after_the_end_are_left_out() -> None:
    t = Transactions.from_arrays([1, 1, 2], when(0, 14, 21), [5, 7, 9])
    s = rfm_summary(t, end=date(2026, 1, 10))
    assert s.customer_id.tolist() == [1]
    assert s.frequency.tolist() == [0]
    assert s.total_spend.tolist() == [5]


def test_text_ids_and_refunds() -> None:
    t = Transactions.from_arrays(
        ["b", "a", "b"], when(0, 1, 3), [10, 20, 30], refund=[0, 5, 0], discount=[0, 2, 0]
    )
    s = rfm_summary(t)
    assert s.customer_id.tolist() == ["a", "b"]
    assert s.total_spend.tolist() == [15, 40]
    assert s.refunds.tolist() == [5, 0]
    assert s.discounted_orders.tolist() == [1, 0]
    assert s.median_gap_days[1] == 3


def test_an_empty_table_needs_an_end() -> None:
    t = Transactions.from_arrays(
        np.array([], dtype=np.int64), np.array([], dtype="datetime64[us]"), []
    )
    with pytest.raises(lc.DataError, match="end"):
        rfm_summary(t)
    assert len(rfm_summary(t, end=date(2026, 1, 1))) == 0


# -- from events, and batch equals per customer -------------------------------------------------


@cache
def shop(customers: int, seed: int) -> tuple[lc.datasets.SyntheticShop, lc.Lifecycle]:
    data = synthetic_shop(customers, seed=seed)
    s = lc.Lifecycle.in_memory(
        clock=lc.FixedClock(data.as_of), policy=lc.Policy(timezone=data.timezone)
    )
    s.record(data.events)
    return data, s


def test_the_table_from_events_holds_the_valid_orders() -> None:
    data, s = shop(300, 0)
    table = Transactions.from_events(data.events, policy=s.policy, at=data.as_of)
    summary = rfm_summary(table, end=data.as_of)
    row = {c: i for i, c in enumerate(summary.customer_id.tolist())}
    for cid in data.customer_ids:
        ledger = fold(s.history(cid), s.policy, data.as_of)
        orders = ledger.valid_orders()
        assert (summary.orders[row[cid]] if cid in row else 0) == len(orders)
        if orders:
            net = sum(float(o.net_amount) for o in orders)
            assert summary.total_spend[row[cid]] == pytest.approx(net)


def test_mixed_currencies_need_a_choice() -> None:
    sh = ZoneInfo("Asia/Shanghai")
    events = [
        lc.OrderPaid(
            customer_id="a",
            order_id="1",
            amount="5",
            currency="CNY",
            at=datetime(2026, 1, 1, tzinfo=sh),
        ),
        lc.OrderPaid(
            customer_id="b",
            order_id="2",
            amount="7",
            currency="USD",
            at=datetime(2026, 1, 2, tzinfo=sh),
        ),
    ]
    with pytest.raises(lc.DataError, match="currencies"):
        Transactions.from_events(events)
    assert Transactions.from_events(events, currency="usd").customer_id.tolist() == ["b"]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("days_before", [0, 45, 200, 400])
def test_batch_equals_per_customer_on_generated_shops(seed: int, days_before: int) -> None:
    data, s = shop(400, seed)
    now = data.as_of - timedelta(days=days_before)
    batch = assess_all(data.events, s.policy, now, tiers=True)
    assert batch.customer_id.tolist() == sorted(data.customer_ids)
    assert batch.tier is not None
    rows = zip(batch.customer_id, batch.stages(), batch.statuses(), batch.tier, strict=True)
    for cid, stage, status, tier in rows:
        a = s.assess(cid, at=now)
        assert (stage, status, tier) == (a.stage, a.status, a.tier.key), cid
    if days_before == 0:
        assert set(batch.stages()) == set(lc.Stage)
        assert set(batch.statuses()) == {*lc.Status, None}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.sampled_from(["c1", "c2", "r1", "r2", "r3"]), min_size=1, max_size=5, unique=True
    ).flatmap(lambda ids: st.tuples(*(histories(c, id_prefix=f"{c}-") for c in ids))),
    aware_datetimes(
        min_value=datetime(2023, 1, 1, tzinfo=UTC), max_value=datetime(2027, 6, 1, tzinfo=UTC)
    ),
)
def test_batch_equals_per_customer_on_any_histories(
    many: tuple[list[lc.Event], ...], now: datetime
) -> None:
    s = lc.Lifecycle.in_memory(clock=lc.FixedClock(now))
    events = [e for h in many for e in h]
    s.record(events)
    batch = assess_all(events, s.policy, now, tiers=True)
    assert batch.tier is not None
    rows = zip(batch.customer_id, batch.stages(), batch.statuses(), batch.tier, strict=True)
    for cid, stage, status, tier in rows:
        a = s.assess(cid, at=now)
        assert (stage, status, tier) == (a.stage, a.status, a.tier.key), cid


def test_batch_counts_and_lookup() -> None:
    data, s = shop(300, 0)
    batch = assess_all(data.events, s.policy, data.as_of)
    assert sum(batch.stage_counts().values()) == len(batch) == 300
    with pytest.raises(ValueError, match="tiers"):
        batch.tier_counts()
    with_tiers = assess_all(data.events, s.policy, data.as_of, tiers=True)
    assert sum(with_tiers.tier_counts().values()) == 300
    cid = data.customer_ids[5]
    a = s.assess(cid)
    assert batch.of(cid) == (a.stage, a.status)
    with pytest.raises(KeyError):
        batch.of("nobody")


def test_a_table_from_pandas() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "buyer": ["a", "b", "a"],
            "paid_at": pd.to_datetime(
                ["2026-01-01 07:00", "2026-01-02 09:00", "2026-01-05 23:30"]
            ).tz_localize("Asia/Shanghai"),
            "total": [10.0, 20.0, 30.0],
            "refund": [0.0, 5.0, 0.0],
        }
    )
    t = Transactions.from_pandas(
        frame,
        customer_id="buyer",
        at="paid_at",
        amount="total",
        refund="refund",
        timezone="Asia/Shanghai",
    )
    assert t.customer_id.tolist() == ["a", "b", "a"]
    assert t.net.tolist() == [10, 15, 30]
    assert t.day.tolist() == [(date(2026, 1, d) - date(1970, 1, 1)).days for d in (1, 2, 5)]
    summary = rfm_summary(t).to_pandas()
    assert summary.loc["a", "frequency"] == 1
    with pytest.raises(lc.DataError, match="naive"):
        Transactions.from_pandas(
            frame.assign(paid_at=frame["paid_at"].dt.tz_localize(None)),
            at="paid_at",
            customer_id="buyer",
            amount="total",
        )
    with pytest.raises(lc.DataError, match="no such column"):
        Transactions.from_pandas(frame, customer_id="who")


def test_partials_with_text_ids_of_any_dtype_merge() -> None:
    a = Transactions.from_arrays(np.array(["x", "y"], dtype=object), when(0, 1), [1.0, 2.0])
    b = Transactions.from_arrays(["y", "z"], when(2, 3), [3.0, 4.0])
    merged = merge(SummaryPartial.of(a), SummaryPartial.of(b)).finish()
    assert merged.customer_id.tolist() == ["x", "y", "z"]
    assert merged.total_spend.tolist() == [1, 5, 4]
