"""Invariants over generated histories: order independence, idempotency, monotone undoing,
agreement between the fast and the explained paths, and a reference model of the stage table."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lifecycle as lc
from builders import POLICY
from lifecycle import Stage
from lifecycle._ledger import fold
from lifecycle.stages import StageJudge
from lifecycle.testing.strategies import histories

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _end(events: Sequence[lc.Event]) -> datetime:
    return max(e.at for e in events)


instants = st.integers(min_value=-30, max_value=900).map(lambda d: timedelta(days=d, hours=7))


def _at(events: Sequence[lc.Event], offset: timedelta) -> datetime:
    return min(e.at for e in events) + offset


# -- a reference model of the stage table, written as plainly as possible -----------------------


def reference_stage(
    events: Sequence[lc.Event], now: datetime, referrals: dict[str, datetime]
) -> Stage:
    seen = [e for e in events if e.at <= now]
    zone_name = POLICY.timezone
    for e in sorted(seen, key=lc.events.sort_key):
        if isinstance(e, lc.CustomerRegistered | lc.ProfileUpdated) and e.profile.timezone:
            zone_name = e.profile.timezone
    tz = lc._time.zone(zone_name)
    p = POLICY.stage
    paid = {e.order_id: e for e in seen if isinstance(e, lc.OrderPaid)}
    cancelled = {e.order_id for e in seen if isinstance(e, lc.OrderCancelled)}
    refunded: dict[str, Decimal] = {}
    for e in seen:
        if isinstance(e, lc.OrderRefunded):
            refunded[e.order_id] = refunded.get(e.order_id, Decimal(0)) + e.amount
    valid = [
        o
        for oid, o in paid.items()
        if oid not in cancelled and not (oid in refunded and refunded[oid] >= o.amount)
    ]
    days = sorted({o.at.astimezone(tz).date() for o in valid})
    today = now.astimezone(tz).date()

    active: set[str] = set()
    for e in sorted(seen, key=lc.events.sort_key):
        if isinstance(e, lc.PartnershipSigned):
            active.add(e.kind)
        elif isinstance(e, lc.PartnershipEnded):
            active.discard(e.kind)
    if active:
        return Stage.PARTNER
    referred = {e.referred_id for e in seen if isinstance(e, lc.Referred)}
    if valid and any(r in referrals and referrals[r] <= now for r in referred):
        return Stage.STRATEGIC
    if len(valid) >= 3 and (days[-1] - days[0]).days >= 180 and (today - days[-1]).days <= 365:
        nps = [
            e
            for e in sorted(seen, key=lc.events.sort_key)
            if isinstance(e, lc.FeedbackGiven) and e.kind == "nps"
        ]
        ratings = [e.rating for e in seen if isinstance(e, lc.ReviewPosted)]
        trusted = bool(nps and nps[-1].score >= 9) or bool(
            ratings and sum(ratings) / len(ratings) >= 4.5
        )
        opened = {e.complaint_id: e for e in seen if isinstance(e, lc.ComplaintOpened)}
        resolved = {e.complaint_id for e in seen if isinstance(e, lc.ComplaintResolved)}
        calm = all(
            cid in resolved and (today - e.at.astimezone(tz).date()).days > 90
            for cid, e in opened.items()
        )
        return Stage.ADVOCATE if trusted and calm else Stage.LONG_TERM
    if len(days) >= 2:
        return Stage.REPEAT
    if valid:
        return Stage.FIRST_PURCHASE
    engaged = any(
        (isinstance(e, lc.Engaged) and e.kind in p.prospect_engagements)
        or isinstance(e, lc.OrderPlaced | lc.OrderPaid)
        for e in seen
    )
    return Stage.PROSPECT if engaged else Stage.SUSPECT


@st.composite
def referral_times(draw: st.DrawFn, events: Sequence[lc.Event]) -> dict[str, datetime]:
    out = {}
    for e in events:
        if isinstance(e, lc.Referred) and draw(st.booleans()):
            out[e.referred_id] = e.at + timedelta(days=draw(st.integers(0, 400)))
    return out


# -- properties ---------------------------------------------------------------------------------


@SETTINGS
@given(histories(), instants, st.data())
def test_the_stage_follows_the_stage_table(
    events: list[lc.Event], offset: timedelta, data: st.DataObject
) -> None:
    now = _at(events, offset)
    refs = data.draw(referral_times(events))
    assert lc.assess_stage(events, POLICY, now, referrals=refs).stage is reference_stage(
        events, now, refs
    )


@SETTINGS
@given(histories(), instants, st.randoms(use_true_random=False))
def test_the_assessment_does_not_depend_on_arrival_order(
    events: list[lc.Event], offset: timedelta, rnd: random.Random
) -> None:
    now = _at(events, offset)
    shuffled = list(events)
    rnd.shuffle(shuffled)
    assert lc.assess("c1", shuffled, POLICY, now) == lc.assess("c1", events, POLICY, now)
    a, b = lc.Lifecycle.in_memory(policy=POLICY), lc.Lifecycle.in_memory(policy=POLICY)
    for e in events:
        a.record(e)
    b.record(shuffled)
    assert a.history("c1") == b.history("c1")
    assert a.assess("c1", at=now) == b.assess("c1", at=now)


@SETTINGS
@given(histories(), st.randoms(use_true_random=False))
def test_recording_duplicates_changes_nothing(events: list[lc.Event], rnd: random.Random) -> None:
    shop = lc.Lifecycle.in_memory(policy=POLICY, clock=lc.FixedClock(_end(events)))
    shop.record(events)
    before = (shop.history("c1"), shop.assess("c1"), shop.store.snapshot("c1"))
    again = shop.record(rnd.sample(events, k=rnd.randint(1, len(events))))
    assert again.recorded == 0
    assert (shop.history("c1"), shop.assess("c1"), shop.store.snapshot("c1")) == before


@SETTINGS
@given(histories(), instants, st.randoms(use_true_random=False))
def test_an_event_given_twice_counts_once(
    events: list[lc.Event], offset: timedelta, rnd: random.Random
) -> None:
    now = _at(events, offset)
    again = events + rnd.sample(events, k=rnd.randint(1, len(events)))
    assert lc.assess("c1", again, POLICY, now) == lc.assess("c1", events, POLICY, now)


@SETTINGS
@given(histories(), instants)
def test_one_valid_order_never_makes_a_repeat_buyer_through_purchases_alone(
    events: list[lc.Event], offset: timedelta
) -> None:
    now = _at(events, offset)
    ledger = fold(events, POLICY, now)
    if ledger.valid_count <= 1 and not ledger.partnerships:
        assert lc.assess_stage(events, POLICY, now, referrals={}).stage <= Stage.FIRST_PURCHASE


@SETTINGS
@given(histories(), instants, st.data())
def test_undoing_an_order_never_raises_the_stage_and_says_why(
    events: list[lc.Event], offset: timedelta, data: st.DataObject
) -> None:
    now = _at(events, offset)
    valid = fold(events, POLICY, now).valid_orders()
    if not valid:
        return
    order = data.draw(st.sampled_from(valid))
    assert order.paid is not None
    when = data.draw(st.sampled_from([order.paid.at, now]))
    undo: lc.Event
    if data.draw(st.booleans()):
        undo = lc.OrderCancelled(
            customer_id="c1", at=when, order_id=order.order_id, event_id="undo"
        )
    else:
        undo = lc.OrderRefunded(
            customer_id="c1",
            at=when,
            order_id=order.order_id,
            amount=order.net_amount,
            currency=order.paid.currency,
            event_id="undo",
        )
    before = lc.assess_stage(events, POLICY, now)
    after = lc.assess_stage([*events, undo], POLICY, now)
    assert after.stage <= before.stage
    codes = {r.code for r in after.reasons}
    assert codes & {"order.cancelled", "order.refunded"}


@SETTINGS
@given(histories(), st.integers(min_value=1, max_value=800))
def test_time_alone_lowers_the_stage_of_complaint_free_customers_and_says_why(
    events: list[lc.Event], days: int
) -> None:
    if any(isinstance(e, lc.ComplaintOpened | lc.Referred) for e in events):
        return
    end = _end(events)
    now, later = end, end + timedelta(days=days)
    before = lc.assess_stage(events, POLICY, now)
    after = lc.assess_stage(events, POLICY, later)
    assert after.stage <= before.stage
    if after.stage < before.stage:
        assert "stage.not_long_term.idle" in {r.code for r in after.reasons}


@SETTINGS
@given(histories(), instants, st.data())
def test_stage_history_ends_at_the_assessed_stage(
    events: list[lc.Event], offset: timedelta, data: st.DataObject
) -> None:
    now = _at(events, offset)
    refs = data.draw(referral_times(events))
    changes = lc.stage_history(events, POLICY, now, referrals=refs)
    if not changes:
        assert all(e.at > now for e in events)
        return
    assert changes[-1].stage is lc.assess_stage(events, POLICY, now, referrals=refs).stage
    for a, b in itertools.pairwise(changes):
        assert a.stage is not b.stage
        assert a.since < b.since
    # Each change is what an assessment at that instant says.
    for c in changes:
        assert lc.assess_stage(events, POLICY, c.since, referrals=refs).stage is c.stage


@SETTINGS
@given(histories(), instants)
def test_the_fast_stage_agrees_with_the_explained_stage(
    events: list[lc.Event], offset: timedelta
) -> None:
    now = _at(events, offset)
    judge = StageJudge(fold(events, POLICY, now), {}, now)
    assert judge.stage() is judge.decide().stage


@SETTINGS
@given(histories(), instants)
def test_status_exists_exactly_for_buyers(events: list[lc.Event], offset: timedelta) -> None:
    now = _at(events, offset)
    s = lc.assess_status(events, POLICY, now)
    assert (s.status is None) == (fold(events, POLICY, now).valid_count == 0)
    if s.status is not None:
        assert s.days_since_last_order is not None
        assert s.days_since_last_order >= 0


@SETTINGS
@given(histories(), instants)
def test_a_snapshot_holds_until_its_valid_until(events: list[lc.Event], offset: timedelta) -> None:
    now = _at(events, offset)
    a = lc.assess("c1", events, POLICY, now)
    if a.valid_until is None:
        later = now + timedelta(days=2000)
    else:
        later = a.valid_until - timedelta(microseconds=1)
    b = lc.assess("c1", events, POLICY, later)
    assert (b.stage, b.status) == (a.stage, a.status)


def test_policy_changes_rederive_the_past() -> None:
    events = [
        lc.OrderPaid(
            customer_id="c1",
            at=datetime(2025, 1, d, tzinfo=POLICY_TZ),
            order_id=f"o{d}",
            amount="1",
            currency="CNY",
        )
        for d in (1, 2, 3)
    ]
    now = datetime(2025, 2, 1, tzinfo=POLICY_TZ)
    assert lc.assess_stage(events, POLICY, now).stage is Stage.REPEAT
    lenient = attrs.evolve(POLICY, stage=lc.StagePolicy(long_term_min_span_days=2))
    assert lc.assess_stage(events, lenient, now).stage is Stage.LONG_TERM


POLICY_TZ = lc._time.zone("Asia/Shanghai")
