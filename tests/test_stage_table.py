"""The stage table and the three ways of computing a stage: the judge (assess, assess_stage),
the replay (stage_history) and the batch path (assess_all) read one table and agree."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import lifecycle as lc
from lifecycle import Stage
from lifecycle.analytics import assess_all
from lifecycle.analytics.batch import _stages
from lifecycle.assessment import first_valid_order_at
from lifecycle.stages import (
    NO_COMPLAINT,
    STAGE_RULES,
    StageFacts,
    conversion_periods,
    referral_periods,
    stage_of,
)
from lifecycle.testing.strategies import DEFAULT_ZONES, aware_datetimes, histories

#: The usual zones, and two whose clocks change at midnight (a day that starts at 01:00, an
#: hour after midnight that happens twice).
ZONES = (*DEFAULT_ZONES, "America/Santiago", "America/Havana")
START = datetime(2023, 1, 1, tzinfo=UTC)
END = START + timedelta(days=3 * 365 + 1 + 400)  # the histories' window, and idle time after it


# -- the table ----------------------------------------------------------------------------------


def test_the_table_lists_every_stage_once_highest_first() -> None:
    assert [rule.stage for rule in STAGE_RULES] == sorted(Stage, reverse=True)
    assert STAGE_RULES[-1].criterion == ()  # the lowest stage always holds


def test_the_words_come_from_the_table_and_name_the_policys_thresholds() -> None:
    p = lc.StagePolicy(
        repeat_min_days=3,
        long_term_min_orders=4,
        complaint_free_days=30,
        placed_order_is_engagement=False,
        partnership_kinds={"agent"},
    )
    en, zh = lc.stage_criteria(p), lc.stage_criteria(p, "zh")
    assert en[Stage.REPEAT] == "valid orders on 3 different days"
    assert zh[Stage.REPEAT] == "在3个不同日期有有效订单"
    assert "at least 4 valid orders" in en[Stage.LONG_TERM]
    assert "none opened within 30 days" in en[Stage.ADVOCATE]
    assert "placed an order" not in en[Stage.PROSPECT]
    assert "或已下单" not in zh[Stage.PROSPECT]
    assert en[Stage.PARTNER] == "an active partnership agreement (agent)"
    assert list(en) == list(Stage) == list(zh)
    assert lc.stage_criteria(p, "fr") == en


stage_policies = st.builds(
    lc.StagePolicy,
    repeat_min_days=st.integers(1, 3),
    long_term_min_orders=st.integers(3, 4),
    long_term_min_span_days=st.sampled_from((0, 30, 180)),
    long_term_max_idle_days=st.sampled_from((1, 30, 365)),
    promoter_min_score=st.integers(7, 10),
    advocate_min_review_average=st.sampled_from((1.0, 4.0, 4.5, 5.0)),
    advocate_min_reviews=st.integers(1, 3),
    complaint_free_days=st.sampled_from((0, 1, 90)),
    strategic_min_referrals=st.integers(1, 2),
    strategic_min_orders=st.integers(1, 2),
    placed_order_is_engagement=st.booleans(),
)


@st.composite
def stage_facts(draw: st.DrawFn) -> StageFacts:
    """One customer's facts, near the thresholds that stage_policies draw."""
    reviews = draw(st.integers(0, 4))
    total = sum(draw(st.lists(st.integers(1, 5), min_size=reviews, max_size=reviews)))
    orders = draw(st.integers(0, 5))
    days = draw(st.integers(min(orders, 1), orders))
    return StageFacts(
        partner=draw(st.booleans()),
        converted=draw(st.integers(0, 3)),
        orders=orders,
        days=days,
        span=draw(st.integers(0, 400)) if days > 1 else 0,
        idle=draw(st.integers(0, 400)) if days else 0,
        nps=draw(st.integers(-1, 10)),
        reviews=reviews,
        review_average=total / reviews if reviews else 0.0,
        open_complaints=draw(st.integers(0, 2)),
        complaint_age=draw(st.sampled_from((NO_COMPLAINT, 0, 1, 2, 89, 90, 91))),
        engaged=draw(st.booleans()),
    )


def _arrays(many: Sequence[StageFacts]) -> StageFacts:
    return StageFacts(*(np.array(column) for column in zip(*many, strict=True)))


@settings(max_examples=200, deadline=None)
@given(st.lists(stage_facts(), min_size=1, max_size=30), stage_policies)
def test_a_criterion_reads_the_same_on_one_customer_and_on_arrays(
    many: list[StageFacts], policy: lc.StagePolicy
) -> None:
    arrays = _arrays(many)
    for rule in STAGE_RULES:
        each = [bool(rule.holds(f, policy)) for f in many]
        together = np.broadcast_to(rule.holds(arrays, policy), (len(many),))
        assert together.tolist() == each, rule.stage
    assert _stages(arrays, policy).tolist() == [stage_of(f, policy).value for f in many]


@settings(max_examples=200, deadline=None)
@given(stage_facts(), stage_policies)
def test_the_stage_is_the_highest_whose_criterion_holds(
    facts: StageFacts, policy: lc.StagePolicy
) -> None:
    held = [rule.stage for rule in STAGE_RULES if rule.holds(facts, policy)]
    assert stage_of(facts, policy) == max(held)
    # An advocate is long-term; a long-term customer, a strategic collaborator and an
    # advocate have bought.
    if Stage.ADVOCATE in held:
        assert Stage.LONG_TERM in held
    if held[0] in (Stage.STRATEGIC, Stage.ADVOCATE, Stage.LONG_TERM, Stage.REPEAT):
        assert Stage.FIRST_PURCHASE in held


# -- three ways to the same stage ---------------------------------------------------------------


def first_instant(day: date, tz: tzinfo) -> datetime:
    """The first instant whose date in ``tz`` is ``day``, found by bisection over instants (so
    without trusting how a library maps a local midnight that does not exist, or exists twice).
    """
    lo = datetime.combine(day, time(0), tzinfo=UTC) - timedelta(hours=15)
    hi = datetime.combine(day, time(0), tzinfo=UTC) + timedelta(hours=15)
    tick = timedelta(microseconds=1)
    while hi - lo > tick:
        mid = lo + (hi - lo) // 2
        if mid.astimezone(tz).date() >= day:
            hi = mid
        else:
            lo = mid
    return hi


def boundaries(events: Sequence[lc.Event], policy: lc.Policy) -> list[datetime]:
    """Instants at which a stage may change: every event (an order paid, refunded, a referred
    customer's first order...), and the first instant of the day after a long-term customer's
    idle limit or after a complaint's window, in each zone the customer may be in."""
    zones = {policy.timezone} | {
        e.profile.timezone
        for e in events
        if isinstance(e, lc.CustomerRegistered | lc.ProfileUpdated) and e.profile.timezone
    }
    out = [e.at.astimezone(UTC) for e in events]
    for e in events:
        if isinstance(e, lc.OrderPaid):
            after = policy.stage.long_term_max_idle_days + 1
        elif isinstance(e, lc.ComplaintOpened):
            after = policy.stage.complaint_free_days + 1
        else:
            continue
        for name in zones:
            tz = ZoneInfo(name)
            out.append(first_instant(e.at.astimezone(tz).date() + timedelta(days=after), tz))
    return out


def referrals_at(
    shop: lc.Lifecycle, history: Sequence[lc.Event], now: datetime
) -> dict[str, datetime]:
    """When each customer this one referred first made an order still valid at ``now``."""
    out = {}
    for rid in {e.referred_id for e in history if isinstance(e, lc.Referred)}:
        try:
            first = first_valid_order_at(shop.history(rid), shop.policy, now)
        except lc.NotFound:
            continue
        if first is not None:
            out[rid] = first
    return out


def in_force(changes: Sequence[lc.StageChange], at: datetime) -> Stage:
    """The stage a stage history says holds at ``at`` (compared as instants: within one zone,
    Python compares wall times and ignores ``fold``)."""
    stage = Stage.SUSPECT
    for c in changes:
        if c.since.astimezone(UTC) <= at.astimezone(UTC):
            stage = c.stage
    return stage


shops = st.lists(
    st.sampled_from(["c1", "c2", "r1", "r2", "r3"]), min_size=1, max_size=5, unique=True
).flatmap(lambda ids: st.tuples(*(histories(c, id_prefix=f"{c}-", zones=ZONES) for c in ids)))
any_instant = aware_datetimes(min_value=START - timedelta(days=30), max_value=END, zones=ZONES)


def _paid(customer_id: str, order_id: str, at: datetime) -> lc.OrderPaid:
    return lc.OrderPaid(
        customer_id=customer_id, at=at, order_id=order_id, amount="10.00", currency="CNY"
    )


NOON = datetime(2023, 3, 1, 12, tzinfo=UTC)
#: c1 buys and refers r1; r1 buys ten days later and is refunded ten days after that.
REFUNDED_REFERRAL = (
    [_paid("c1", "c1-o1", NOON), lc.Referred(customer_id="c1", at=NOON, referred_id="r1")],
    [
        _paid("r1", "r1-o1", NOON + timedelta(days=10)),
        lc.OrderRefunded(
            customer_id="r1",
            at=NOON + timedelta(days=20),
            order_id="r1-o1",
            amount="10.00",
            currency="CNY",
        ),
    ],
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    shops,
    st.sampled_from(ZONES),
    stage_policies,
    any_instant,
    st.lists(st.tuples(st.integers(0, 10**6), st.booleans()), max_size=3),
)
@example(
    many=REFUNDED_REFERRAL,
    shop_zone="UTC",
    stage_policy=lc.StagePolicy(),
    anywhere=NOON + timedelta(days=15),
    edge_picks=[],
)
def test_assess_stage_history_and_the_batch_agree_on_every_customers_stage(
    many: tuple[list[lc.Event], ...],
    shop_zone: str,
    stage_policy: lc.StagePolicy,
    anywhere: datetime,
    edge_picks: list[tuple[int, bool]],
) -> None:
    policy = lc.Policy(timezone=shop_zone, stage=stage_policy)
    events = [e for h in many for e in h]
    shop = lc.Lifecycle.in_memory(policy=policy, clock=lc.FixedClock(END))
    shop.record(events)
    edges = boundaries(events, policy)
    tick = timedelta(microseconds=1)
    instants = [anywhere, *(edges[k % len(edges)] - tick * before for k, before in edge_picks)]
    customers = sorted({e.customer_id for e in events})
    whole = {cid: shop.stage_history(cid, at=END) for cid in customers}
    for at in instants:
        batch = assess_all(events, policy, at)
        assert batch.customer_id.tolist() == customers
        for cid, stage in zip(customers, batch.stages(), strict=True):
            history = shop.history(cid)
            refs = referrals_at(shop, history, at)
            assert lc.assess_stage(history, policy, at, referrals=refs).stage is stage, (cid, at)
            assert shop.assess(cid, at=at).stage is stage, (cid, at)
            assert in_force(shop.stage_history(cid, at=at), at) is stage, (cid, at)
            # A replay to a later end says what an assessment then said, though a referred
            # customer's order may have been refunded since.
            assert in_force(whole[cid], at) is stage, (cid, at)


def test_a_referral_whose_order_is_refunded_later_counted_until_the_refund() -> None:
    shop = lc.Lifecycle.in_memory(clock=lc.FixedClock(END))
    shop.record([e for h in REFUNDED_REFERRAL for e in h])
    assert shop.assess("c1", at=NOON + timedelta(days=15)).stage is Stage.STRATEGIC
    assert shop.assess("c1").stage is Stage.FIRST_PURCHASE
    changes = shop.stage_history("c1")
    assert [(c.stage, c.since) for c in changes] == [
        (Stage.FIRST_PURCHASE, NOON),
        (Stage.STRATEGIC, NOON + timedelta(days=10)),
        (Stage.FIRST_PURCHASE, NOON + timedelta(days=20)),
    ]
    assert changes[1].rule == "stage.strategic"
    assert changes[2].reasons[1].code == "stage.not_strategic.no_conversion"


def test_conversion_periods_are_the_times_with_a_valid_order() -> None:
    r1 = REFUNDED_REFERRAL[1]
    policy = lc.Policy()
    assert conversion_periods(r1, policy, END) == (
        (NOON + timedelta(days=10), NOON + timedelta(days=20)),
    )
    assert conversion_periods(r1, policy, NOON + timedelta(days=15)) == (
        (NOON + timedelta(days=10), None),
    )
    # Paid again the instant the refund lands: one period, unbroken.
    again = _paid("r1", "r1-o2", NOON + timedelta(days=20))
    assert conversion_periods([*r1, again], policy, END) == ((NOON + timedelta(days=10), None),)
    assert conversion_periods(REFUNDED_REFERRAL[0][1:], policy, END) == ()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(zones=ZONES), st.sampled_from(ZONES), st.data())
def test_each_change_in_a_stage_history_happens_exactly_when_an_assessment_says(
    events: list[lc.Event], shop_zone: str, data: st.DataObject
) -> None:
    policy = lc.Policy(timezone=shop_zone)
    refs = {
        e.referred_id: e.at + timedelta(days=data.draw(st.integers(0, 400)))
        for e in events
        if isinstance(e, lc.Referred) and data.draw(st.booleans())
    }
    changes = lc.stage_history(events, policy, END, referrals=refs)
    before = Stage.SUSPECT
    for c in changes:
        assert lc.assess_stage(events, policy, c.since, referrals=refs).stage is c.stage
        just_before = c.since.astimezone(UTC) - timedelta(microseconds=1)
        assert lc.assess_stage(events, policy, just_before, referrals=refs).stage is before
        before = c.stage
    for edge in data.draw(st.lists(st.sampled_from(boundaries(events, policy)), max_size=4)):
        for at in (edge - timedelta(microseconds=1), edge):
            want = lc.assess_stage(events, policy, at, referrals=refs).stage
            assert in_force(changes, at) is want, at


@pytest.mark.parametrize(
    ("zone", "last_paid", "idle_from"),
    [
        # Santiago's clocks jump from 24:00 to 01:00 on 2024-09-08: that day starts at 01:00.
        ("America/Santiago", date(2023, 9, 8), time(1)),
        # Havana's clocks fall back from 01:00 to 00:00 on 2024-11-03: midnight happens once.
        ("America/Havana", date(2023, 11, 3), time(0)),
    ],
)
def test_a_long_term_customer_stops_being_one_at_the_first_instant_of_the_day(
    zone: str, last_paid: date, idle_from: time
) -> None:
    tz = ZoneInfo(zone)
    policy = lc.Policy(timezone=zone)
    last = datetime.combine(last_paid, time(12), tzinfo=tz)
    paid = [last - timedelta(days=200), last - timedelta(days=100), last]
    events = [
        lc.OrderPaid(customer_id="c1", at=at, order_id=f"o{i}", amount="10", currency="CNY")
        for i, at in enumerate(paid)
    ]
    day = last_paid + timedelta(days=366)
    start = datetime.combine(day, idle_from, tzinfo=tz).astimezone(UTC)
    assert start == first_instant(day, tz)
    tick = timedelta(microseconds=1)
    for at, stage in [(start - tick, Stage.LONG_TERM), (start, Stage.REPEAT)]:
        assert lc.assess_stage(events, policy, at).stage is stage
        assert assess_all(events, policy, at).of("c1")[0] is stage
        assert in_force(lc.stage_history(events, policy, END), at) is stage


def test_the_funnel_replays_a_referral_refunded_later_as_the_facade_does() -> None:
    events = [e for h in REFUNDED_REFERRAL for e in h]
    policy = lc.Policy()
    by_customer = {cid: [e for e in events if e.customer_id == cid] for cid in ("c1", "r1")}
    periods = referral_periods(by_customer, policy, END)
    assert periods == {"c1": {"r1": ((NOON + timedelta(days=10), NOON + timedelta(days=20)),)}}
    shop = lc.Lifecycle.in_memory(clock=lc.FixedClock(END))
    shop.record(events)
    replay = lc.stage_history(by_customer["c1"], policy, END, referrals=periods["c1"])
    assert replay == shop.stage_history("c1")
