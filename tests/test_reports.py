"""Cohort retention, the stage funnel and the KPIs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache

import numpy as np
import pytest

import lifecycle as lc
from lifecycle.analytics import Transactions, cohort_retention, kpis, stage_funnel
from lifecycle.datasets import SyntheticShop, synthetic_shop


@cache
def data() -> SyntheticShop:
    return synthetic_shop(600, seed=4)


def table(rows: list[tuple[str, str]]) -> Transactions:
    return Transactions.from_arrays(
        [r[0] for r in rows],
        np.array([np.datetime64(r[1], "us") for r in rows]),
        np.ones(len(rows)),
    )


def test_cohorts_count_customers_by_first_month_and_months_since() -> None:
    t = table(
        [
            ("a", "2026-01-05"),
            ("a", "2026-01-20"),  # twice in the first month counts once
            ("a", "2026-03-01"),
            ("b", "2026-01-31"),
            ("b", "2026-02-01"),
            ("c", "2026-02-10"),
            ("c", "2026-03-10"),
        ]
    )
    c = cohort_retention(t)
    assert [str(m) for m in c.cohorts] == ["2026-01", "2026-02"]
    assert c.sizes.tolist() == [2, 1]
    assert c.counts.tolist() == [[2, 1, 1], [1, 1, 0]]
    np.testing.assert_array_equal(c.rates[0], [1, 0.5, 0.5])
    # The February cohort cannot be seen two months on yet: not a zero, unknown.
    assert c.rates[1, 1] == 1
    assert np.isnan(c.rates[1, 2])


def test_cohorts_need_transactions() -> None:
    with pytest.raises(lc.DataError):
        cohort_retention(table([]))


def test_the_funnel_counts_every_stage_and_matches_per_customer_assessment() -> None:
    d = data()
    policy = lc.Policy(timezone=d.timezone)
    f = stage_funnel(d.events, policy, d.as_of)
    shop = lc.Lifecycle.in_memory(policy=policy, clock=lc.FixedClock(d.as_of))
    shop.record(d.events)
    for step in f.steps:
        assert step.customers == len(shop.customers(stage=step.stage))
    assert f.total == len(d.customer_ids)
    assert f.steps[0].reached == f.total
    assert f.steps[0].conversion is None
    for before, after in zip(f.steps, f.steps[1:], strict=False):
        assert after.reached <= before.reached
        assert after.conversion == pytest.approx(after.reached / before.reached)
    assert f.steps[0].median_days_to_next is not None
    assert sum(f.jobs().values()) == f.total
    assert f.jobs()[lc.Job.SELECT] == f.steps[0].customers


def test_the_funnel_without_timing() -> None:
    d = data()
    f = stage_funnel(d.events, lc.Policy(timezone=d.timezone), d.as_of, timing=False)
    assert all(s.median_days_to_next is None for s in f.steps)


def at(day: int) -> datetime:
    return datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(days=day)


def paid(cid: str, oid: str, day: int, amount: str = "100", discount: str = "0") -> lc.OrderPaid:
    return lc.OrderPaid(
        customer_id=cid,
        order_id=oid,
        amount=Decimal(amount),
        currency="CNY",
        at=at(day),
        discount=Decimal(discount),
    )


def test_kpis_on_a_small_shop() -> None:
    events: list[lc.Event] = [
        paid("a", "a1", 5),  # before the period: a is a returning customer
        paid("a", "a2", 35),
        paid("a", "a3", 40, discount="10"),
        paid("b", "b1", 45, amount="50"),
        paid("c", "c1", 10),  # bought before, not in the period: churned
        lc.ComplaintOpened(customer_id="b", complaint_id="k1", at=at(46)),
        lc.FeedbackGiven(customer_id="a", score=3, at=at(31)),
        lc.FeedbackGiven(customer_id="a", score=10, at=at(50)),  # the latest answer counts
        lc.FeedbackGiven(customer_id="b", score=8, at=at(50)),
        lc.FeedbackGiven(customer_id="b", score=5, kind="csat", at=at(50)),
        lc.Referred(customer_id="a", referred_id="b", at=at(31)),
        lc.Referred(customer_id="a", referred_id="z", at=at(32)),
    ]
    k = kpis(events, lc.Policy(), start=at(30), end=at(60))
    assert (k.buyers, k.orders) == (2, 3)
    assert k.revenue == 250
    assert k.average_order_value == pytest.approx(250 / 3)
    assert k.orders_per_customer == 1.5
    assert k.repurchase_rate == 0.5
    assert k.retention_rate == 0.5  # of a and c, a came back
    assert k.churn_rate == 0.5
    assert k.returning_revenue_share == pytest.approx(200 / 250)
    assert k.discount_share == pytest.approx(1 / 3)
    assert k.complaint_rate == pytest.approx(1 / 3)
    assert k.nps == 50  # one promoter, one passive
    assert k.csat == 1
    assert (k.referrals, k.referrals_converted) == (2, 1)


def test_kpis_of_an_empty_period_are_none_not_errors() -> None:
    k = kpis([paid("a", "a1", 5)], lc.Policy(), start=at(100), end=at(130))
    assert k.orders == 0
    assert k.average_order_value is None
    assert k.retention_rate is None
    assert k.nps is None


def test_kpis_need_a_period() -> None:
    with pytest.raises(lc.DataError, match="before"):
        kpis([], lc.Policy(), start=at(10), end=at(10))


def test_kpis_take_any_iterable_of_events() -> None:
    events: list[lc.Event] = [
        paid("a", "a1", 35),
        lc.ComplaintOpened(customer_id="a", complaint_id="k1", at=at(36)),
    ]
    k = kpis(iter(events), lc.Policy(), start=at(30), end=at(60))  # type: ignore[arg-type]
    assert k.complaint_rate == 1.0
