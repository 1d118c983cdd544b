"""Relationship health: the rhythm rule, its edges, win-back and the model seam."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lifecycle as lc
from builders import POLICY, History, day
from lifecycle import Status
from lifecycle._ledger import ORDER_EVENTS, fold
from lifecycle._time import to_utc
from lifecycle.status import STATUS_EVENTS, at_risk_since, status_from_ledger
from lifecycle.testing.strategies import histories


def test_no_valid_order_means_no_status() -> None:
    s = History().lead(0).engaged(1).status(10)
    assert s.status is None
    assert s.reasons[0].code == "status.none"


def test_statuses_have_english_and_chinese_labels() -> None:
    assert Status.AT_RISK.label_en == "at risk"
    assert Status.AT_RISK.label_zh == "流失预警"
    assert {s.label("zh") for s in Status} == {"活跃", "流失预警", "已流失", "已挽回"}


@pytest.mark.parametrize(
    ("idle", "status"),
    [
        (0, Status.ACTIVE),
        (180, Status.ACTIVE),
        (181, Status.AT_RISK),
        (365, Status.AT_RISK),
        (366, Status.LAPSED),
    ],
)
def test_few_orders_use_the_fallback_gap_of_90_days_doubled(idle: int, status: Status) -> None:
    s = History().orders(0, 10).status(10 + idle)
    assert s.status is status
    assert s.days_since_last_order == idle
    assert s.median_gap_days is None
    assert s.threshold_days == 180


@pytest.mark.parametrize(("idle", "status"), [(20, Status.ACTIVE), (21, Status.AT_RISK)])
def test_regular_buyers_are_at_risk_after_twice_their_median_gap(idle: int, status: Status) -> None:
    s = History().orders(0, 10, 20, 30).status(30 + idle)
    assert s.status is status
    assert s.median_gap_days == 10
    assert s.threshold_days == 20


def test_the_median_resists_one_long_gap() -> None:
    s = History().orders(0, 10, 20, 200, 210).status(230)
    assert s.median_gap_days == 10
    assert s.status is Status.ACTIVE


def test_the_at_risk_reason_explains_the_rhythm() -> None:
    s = History().orders(0, 10, 20).status(50)
    assert s.status is Status.AT_RISK
    assert "median gap between purchases is 10 days" in s.reasons[0].en
    assert "流失预警" in s.reasons[0].zh


def test_lapsed_after_365_days_whatever_the_rhythm() -> None:
    s = History().orders(0, 200, 400).status(400 + 366)
    assert s.status is Status.LAPSED
    assert s.reasons[0].code == "status.lapsed"


def test_an_order_after_being_at_risk_wins_the_customer_back() -> None:
    h = History().orders(0, 10, 20, 30, 80)
    s = h.status(81)
    assert s.status is Status.WON_BACK
    assert "2025-03-22" in s.reasons[0].en


def test_an_order_after_being_lapsed_wins_the_customer_back() -> None:
    assert History().orders(0, 400).status(401).status is Status.WON_BACK


def test_won_back_turns_active_with_the_next_order() -> None:
    assert History().orders(0, 10, 20, 30, 80, 90).status(91).status is Status.ACTIVE


def test_won_back_customers_can_slide_back_into_risk() -> None:
    h = History().orders(0, 10, 20, 30, 80)
    # Gaps 10, 10, 10, 50: median 10, so at risk again after 20 idle days.
    assert h.status(100).status is Status.WON_BACK
    assert h.status(101).status is Status.AT_RISK


def test_a_refunded_order_does_not_count_for_status() -> None:
    h = History().orders(0, 100).refund("c1-o2", 101)
    s = h.status(120)
    assert s.days_since_last_order == 120


def test_status_day_counts_use_the_customers_zone_across_dst() -> None:
    # Berlin moves its clocks on 2025-03-30; calendar days still count as days.
    h = History().zone("Europe/Berlin").orders(80, 90)
    s = h.status(100)
    assert s.days_since_last_order == 10


def test_status_policy_is_configurable() -> None:
    policy = attrs.evolve(
        POLICY, status=lc.StatusPolicy(at_risk_multiple=3, fallback_gap_days=30, lapsed_days=100)
    )
    h = History().orders(0)
    assert lc.assess_status(h.events, policy, day(90)).status is Status.ACTIVE
    assert lc.assess_status(h.events, policy, day(91)).status is Status.AT_RISK
    assert lc.assess_status(h.events, policy, day(101)).status is Status.LAPSED


@attrs.frozen
class FixedModel:
    """A stand-in for a fitted BG/NBD model."""

    p: float
    calls: list[tuple[float, float, float]] = attrs.field(factory=list, eq=False)

    def p_alive(self, frequency: float, recency: float, T: float) -> float:
        self.calls.append((frequency, recency, T))
        return self.p


@pytest.mark.parametrize(
    ("p", "status"), [(0.9, Status.ACTIVE), (0.3, Status.AT_RISK), (0.05, Status.LAPSED)]
)
def test_a_model_decides_status_by_p_alive(p: float, status: Status) -> None:
    model = FixedModel(p)
    s = History().orders(0, 10, 30).status(40, model=model)
    assert s.status is status
    assert s.p_alive == p
    assert s.reasons[0].code.startswith("status.model.")
    assert model.calls[-1] == (2, 30, 40)


def test_a_model_is_a_structural_alive_model() -> None:
    assert isinstance(FixedModel(0.5), lc.AliveModel)


def test_lapsed_days_still_apply_with_a_model() -> None:
    s = History().orders(0).status(400, model=FixedModel(0.99))
    assert s.status is Status.LAPSED


def test_status_reasons_point_at_the_latest_valid_order() -> None:
    s = History().orders(0, 10, 20).refund("c1-o3", 21).status(30)
    assert s.reasons[0].evidence == ("order_paid:c1-o2",)


@settings(max_examples=150, deadline=None)
@given(history=histories(), later=st.integers(0, 4 * 365))
def test_the_status_reads_only_the_orders_and_the_profiles(
    history: list[lc.Event], later: int
) -> None:
    """A ledger folded from :data:`STATUS_EVENTS` alone gives the status (and the day the
    customer turned at risk) of the whole history, and one folded from the order events alone
    its valid orders: what the planning bounds and the referral conversions fold."""
    now = history[0].at + timedelta(days=later)
    full = fold(history, POLICY, to_utc(now))
    some = fold([e for e in history if isinstance(e, STATUS_EVENTS)], POLICY, to_utc(now))
    assert status_from_ledger(some, now, explain=False) == status_from_ledger(
        full, now, explain=False
    )
    assert at_risk_since(some, to_utc(now)) == at_risk_since(full, to_utc(now))
    orders = fold([e for e in history if isinstance(e, ORDER_EVENTS)], POLICY, to_utc(now))
    assert [(o.order_id, o.paid) for o in orders.valid_orders()] == [
        (o.order_id, o.paid) for o in full.valid_orders()
    ]
