"""The bulk planner gives the reference planner's plan: generated shops, instants, policies."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from unittest.mock import patch
from zoneinfo import ZoneInfo

import attrs
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import lifecycle as lc
from lifecycle import service
from lifecycle.cadence.planner import plan_bulk, plan_customers
from lifecycle.cadence.reach import reach
from lifecycle.cadence.rules import (
    Anniversary,
    Campaign,
    Occurrence,
    Periodic,
    Segment,
    SequenceStep,
    StepSequence,
    default_rules,
)
from lifecycle.datasets import synthetic_shop
from lifecycle.record import CustomerRecord
from lifecycle.testing.strategies import aware_datetimes, histories
from lifecycle.vocabulary import ESCALATION_TEMPLATE, Purpose, Stage

ZONES = ("Asia/Shanghai", "Europe/Berlin", "America/New_York", "Pacific/Chatham")
START = datetime(2024, 1, 1, tzinfo=UTC)

#: Customers named as the generated histories' referrals name them (``r1`` ..), so that
#: referrals convert.
NAMES = ("c1", "r1", "r2", "r3")


def _more_rules() -> tuple[lc.cadence.CadenceRule, ...]:
    return (
        *default_rules(),
        Campaign(
            id="spring_sale",
            name_en="Spring sale",
            name_zh="春季促销",
            segment=Segment(stages={Stage.REPEAT, Stage.LONG_TERM}),
            start=datetime(2024, 6, 1, tzinfo=UTC),
            end=datetime(2024, 6, 20, tzinfo=UTC),
            purpose=Purpose.MARKETING,
            channels=("sms", "email"),
            template="win_back",
        ),
        StepSequence(
            id="onboarding",
            start="first_order",
            steps=[
                SequenceStep(after_days=2, template="care_message"),
                SequenceStep(after_days=30, template="review_request"),
            ],
            purpose=Purpose.SERVICE,
            channels=("email", "sms"),
            template="care_message",
        ),
        Periodic(
            id="rhythm",
            every_days=20,
            purpose=Purpose.SERVICE,
            channels=("task",),
            template="owner_follow_up",
        ),
    )


POLICIES = (
    lc.Policy(timezone="Asia/Shanghai"),
    attrs.evolve(  # control groups: held out by the planner's own code on both paths
        lc.Policy(timezone="Asia/Shanghai"),
        cadence=attrs.evolve(
            lc.Policy().cadence,
            rules=tuple(attrs.evolve(r, holdout=0.5) for r in default_rules()),
        ),
    ),
    attrs.evolve(
        lc.Policy(timezone="Europe/Berlin"),
        cadence=attrs.evolve(lc.Policy().cadence, rules=_more_rules(), lookback_days=20),
    ),
)


@st.composite
def shops(draw: st.DrawFn) -> dict[str, list[lc.Event]]:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    return {
        cid: draw(histories(cid, start=START, days=500, zones=ZONES, id_prefix=f"{cid}-"))
        for cid in names
    }


def _same(a: lc.cadence.Plan, b: lc.cadence.Plan) -> None:
    assert b.due == a.due
    assert b.held == a.held
    assert b.next_due == a.next_due
    assert b.skipped == a.skipped
    assert b.as_of == a.as_of


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shop=shops(),
    now=aware_datetimes(min_value=START, max_value=START + timedelta(days=540), zones=ZONES),
    horizon_hours=st.sampled_from([0, 24, 24 * 9]),
    lookahead_days=st.sampled_from([0, 0, 3]),
    which=st.sampled_from(range(len(POLICIES))),
)
def test_bulk_plan_is_the_reference_plan(
    shop: dict[str, list[lc.Event]],
    now: datetime,
    horizon_hours: int,
    lookahead_days: int,
    which: int,
) -> None:
    policy = POLICIES[which]
    kw = {"horizon": timedelta(hours=horizon_hours), "lookahead": timedelta(days=lookahead_days)}
    _same(plan_customers(shop, policy, now, **kw), plan_bulk(shop, policy, now, **kw))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    days_before=st.integers(0, 700),
    hours=st.integers(0, 23),
    which=st.sampled_from(range(len(POLICIES))),
)
def test_bulk_plan_of_a_synthetic_shop(seed: int, days_before: int, hours: int, which: int) -> None:
    data = synthetic_shop(40, seed=seed)
    shop: dict[str, list[lc.Event]] = defaultdict(list)
    for e in data.events:
        shop[e.customer_id].append(e)
    now = data.as_of - timedelta(days=days_before, hours=hours)
    policy = attrs.evolve(POLICIES[which], timezone=data.timezone)
    day = timedelta(days=1)
    _same(
        plan_customers(shop, policy, now, horizon=day),
        plan_bulk(shop, policy, now, horizon=day),
    )


def test_most_customers_of_a_shop_need_no_rule() -> None:
    data = synthetic_shop(400, seed=3)
    shop: dict[str, list[lc.Event]] = defaultdict(list)
    for e in data.events:
        shop[e.customer_id].append(e)
    policy = lc.Policy(timezone=data.timezone)
    ids = sorted(shop)
    hits, _ = reach(
        shop,
        policy,
        data.as_of,
        ids=ids,
        rules=policy.cadence.rules,
        referrals={},
        end=data.as_of + timedelta(days=1),
    )
    assert 0 < np.count_nonzero(hits.any(axis=0)) < len(ids) * 0.7
    assert hits.sum() < hits.size * 0.1  # each customer reached is planned with few rules


@attrs.frozen
class _HostRule:
    """A host's rule as code: the bounds know nothing of it."""

    id: str = "host"
    template: str = "owner_follow_up"
    purpose: Purpose = Purpose.SERVICE
    channels: tuple[str, ...] = ("task",)
    priority: int = 10

    def occurrences(self, facts: CustomerRecord) -> Iterable[Occurrence]:
        yield Occurrence(
            occurrence="once",
            due_at=facts.now,
            valid_until=facts.now + timedelta(days=1),
            reason=lc.Reason(code="host", en="Host.", zh="主机。"),
        )


def test_a_rule_as_code_reaches_everyone() -> None:
    data = synthetic_shop(30, seed=5)
    shop: dict[str, list[lc.Event]] = defaultdict(list)
    for e in data.events:
        shop[e.customer_id].append(e)
    base = lc.Policy(timezone=data.timezone)
    policy = attrs.evolve(base, cadence=attrs.evolve(base.cadence, rules=(_HostRule(),)))
    bulk = plan_bulk(shop, policy, data.as_of)
    _same(plan_customers(shop, policy, data.as_of), bulk)
    assert {f.customer_id for f in bulk.due} | {h.follow_up.customer_id for h in bulk.held} == set(
        shop
    )


class _Fading:
    """A value model whose P(alive) falls with the days since the last purchase."""

    def p_alive(self, frequency: float, recency: float, T: float) -> float:
        return 1.0 / (1.0 + max(T - recency, 0.0) / (30.0 * (frequency + 1)))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), days_before=st.integers(0, 500))
def test_bulk_plan_with_a_value_model(seed: int, days_before: int) -> None:
    data = synthetic_shop(40, seed=seed)
    shop: dict[str, list[lc.Event]] = defaultdict(list)
    for e in data.events:
        shop[e.customer_id].append(e)
    now = data.as_of - timedelta(days=days_before)
    policy = lc.Policy(timezone=data.timezone)
    model = _Fading()
    _same(
        plan_customers(shop, policy, now, model=model),
        plan_bulk(shop, policy, now, model=model),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    now=aware_datetimes(
        min_value=START + timedelta(days=400), max_value=START + timedelta(days=800), zones=ZONES
    ),
    lead=st.sampled_from([0, 1, 3]),
    horizon_hours=st.sampled_from([0, 24]),
)
def test_yearly_dates_at_the_edges_of_the_window(
    now: datetime, lead: int, horizon_hours: int
) -> None:
    """Birthdays and first orders on every day around the window, in zones far from UTC
    either way: the day margins of the yearly bounds take in every greeting."""
    from decimal import Decimal

    rules = tuple(
        attrs.evolve(r, lead_days=lead) if isinstance(r, Anniversary) else r
        for r in default_rules()
    )
    base = lc.Policy(timezone="Asia/Shanghai")
    policy = attrs.evolve(base, cadence=attrs.evolve(base.cadence, rules=rules))
    shop: dict[str, list[lc.Event]] = {}
    for z, tz in enumerate(("Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Shanghai")):
        for k in range(-14, 15):
            d = (now + timedelta(days=k)).date()
            cid = f"c{z}-{k + 14:02d}"
            first = datetime.combine(d.replace(year=d.year - 1), datetime.min.time(), ZoneInfo(tz))
            shop[cid] = [
                lc.CustomerRegistered(
                    customer_id=cid,
                    at=START,
                    profile=lc.Profile(
                        timezone=tz, birthday=lc.Birthday(month=d.month, day=d.day, year=1990)
                    ),
                ),
                lc.OrderPaid(
                    customer_id=cid,
                    at=first + timedelta(hours=(k * 7) % 24),
                    order_id=f"{cid}-o",
                    amount=Decimal("10.00"),
                    currency="CNY",
                ),
            ]
    kw = {"horizon": timedelta(hours=horizon_hours)}
    _same(plan_customers(shop, policy, now, **kw), plan_bulk(shop, policy, now, **kw))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    ago=st.lists(st.integers(-3, 80), min_size=1, max_size=4),
    escalated=st.booleans(),
)
@example(seed=0, ago=[0, 0], escalated=True)
def test_a_rhythm_anchors_on_the_last_contact(seed: int, ago: list[int], escalated: bool) -> None:
    """Contacts days before the plan (and an escalation, which is not one): the rhythm of
    every N days is due after the last contact, whatever came before."""
    data = synthetic_shop(40, seed=seed)
    shop: dict[str, list[lc.Event]] = defaultdict(list)
    for e in data.events:
        shop[e.customer_id].append(e)
    now = data.as_of
    for n, cid in enumerate(sorted(shop)):
        for k, days in enumerate(ago):
            shop[cid].append(
                lc.Contacted(
                    customer_id=cid,
                    at=now - timedelta(days=days + n % 5, hours=n % 7),
                    channel="sms",
                    template="owner_follow_up" if not escalated or k else ESCALATION_TEMPLATE,
                    # One id an event, as a store keeps them: two contacts at one instant on
                    # one channel would share the natural key, and the ledger keep the first.
                    event_id=f"{cid}-contact-{k}",
                )
            )
    rhythm = Periodic(
        id="rhythm_sms",
        every_days=20,
        purpose=Purpose.SERVICE,
        channels=("sms",),
        template="owner_follow_up",
    )
    base = lc.Policy(timezone=data.timezone)
    policy = attrs.evolve(
        base, cadence=attrs.evolve(base.cadence, rules=(*default_rules(), rhythm))
    )
    day = timedelta(days=1)
    _same(plan_customers(shop, policy, now, horizon=day), plan_bulk(shop, policy, now, horizon=day))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    days_before=st.integers(0, 700),
    horizon_hours=st.sampled_from([0, 30]),
    chunk=st.integers(1, 50),
)
def test_the_facade_plans_by_the_bulk_path_a_chunk_at_a_time(
    seed: int, days_before: int, horizon_hours: int, chunk: int
) -> None:
    """``Lifecycle.plan`` (stored customers, planned a chunk at a time by the bounds and the
    reference planner) gives the reference plan of every stored history."""
    data = synthetic_shop(40, seed=seed)
    now = data.as_of - timedelta(days=days_before)
    policy = lc.Policy(timezone=data.timezone)
    shop = lc.Lifecycle.in_memory(clock=lc.FixedClock(data.as_of), policy=policy)
    shop.record(data.events)
    histories = {cid: shop.store.history(cid) for cid in shop.store.customer_ids()}
    horizon = timedelta(hours=horizon_hours)
    with patch.object(service, "_PLAN_CHUNK", chunk):
        planned = shop.plan(now, horizon=horizon)
    _same(plan_customers(histories, policy, now, horizon=horizon), planned)


@attrs.frozen
class _Failing(_HostRule):
    """A host's rule as code that fails for everyone."""

    def occurrences(self, facts: CustomerRecord) -> Iterable[Occurrence]:
        raise ValueError(f"{self.id} fails")


@pytest.mark.parametrize("chunk", [1, 2, 50])
def test_the_facade_lists_failing_rules_as_the_reference_does(chunk: int) -> None:
    """A customer's failing rules are listed in the policy's order, whatever the chunks."""
    data = synthetic_shop(3, seed=5)
    base = lc.Policy(timezone=data.timezone)
    rules = (_Failing(id="zz"), _Failing(id="aa"))
    policy = attrs.evolve(base, cadence=attrs.evolve(base.cadence, rules=rules))
    shop = lc.Lifecycle.in_memory(clock=lc.FixedClock(data.as_of), policy=policy)
    shop.record(data.events)
    histories = {cid: shop.store.history(cid) for cid in shop.store.customer_ids()}
    with patch.object(service, "_PLAN_CHUNK", chunk):
        planned = shop.plan(data.as_of)
    reference = plan_customers(histories, policy, data.as_of)
    assert [s.rule for s in reference.skipped[:2]] == ["zz", "aa"]
    _same(reference, planned)
