"""Loyalty properties on generated histories: the ledger adds up, expiry takes only what is
left, arrival order does not matter, and tiers move only at qualifying events or reviews."""

from __future__ import annotations

import itertools
from datetime import datetime, time, timedelta

import attrs
from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lifecycle as lc
from lifecycle import loyalty as ly
from lifecycle.events import OrderPaid, PointsRedeemed
from lifecycle.policy import LoyaltyPolicy, PointsPolicy, Tier, TierPolicy
from lifecycle.testing.strategies import histories

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: Low thresholds and short expiry, so that generated histories cross tiers and expire lots.
POLICY = lc.Policy(
    timezone="Asia/Shanghai",
    loyalty=LoyaltyPolicy(
        tiers=TierPolicy(
            levels=(
                Tier(key="member", label_en="Member", label_zh="普通会员"),
                Tier(key="silver", label_en="Silver", label_zh="银卡会员", min_spend=300),
                Tier(key="gold", label_en="Gold", label_zh="金卡会员", min_spend=1500),
                Tier(key="platinum", label_en="Platinum", label_zh="铂金会员", min_spend=4000),
            )
        ),
        points=PointsPolicy(expiry_months=6),
    ),
)
CNY = ("CNY",)


@st.composite
def with_redemptions(draw: st.DrawFn) -> tuple[list[lc.Event], datetime]:
    """A history (all orders in CNY) plus a few redemptions, and an instant after it all."""
    events = draw(histories())
    events = [attrs.evolve(e, currency="CNY") if hasattr(e, "currency") else e for e in events]
    instants = sorted(e.at for e in events)
    for n in range(draw(st.integers(0, 3))):
        at = draw(st.sampled_from(instants)) + timedelta(hours=1)
        points = draw(st.integers(1, 3000))
        events.append(PointsRedeemed(customer_id="c1", at=at, redemption_id=f"r{n}", points=points))
    now = max(e.at for e in events) + timedelta(days=draw(st.integers(0, 400)))
    return events, now


@SETTINGS
@given(with_redemptions())
def test_the_balance_is_earned_plus_bonuses_less_redeemed_expired_and_clawed_back(
    case: tuple[list[lc.Event], datetime],
) -> None:
    events, now = case
    s = ly.points_ledger(events, POLICY, now)
    assert s.balance == s.earned + s.bonuses - s.redeemed - s.expired - s.clawed_back
    assert s.balance == (s.entries[-1].balance if s.entries else 0)
    # Points taken beyond what the lots held are owed; later lots repay them first.
    owed = (
        s.redeemed + s.clawed_back + s.expired - sum(lot.points - lot.remaining for lot in s.lots)
    )
    assert owed >= 0
    assert s.balance == sum(lot.remaining for lot in s.lots) - owed


@SETTINGS
@given(with_redemptions())
def test_expiry_never_takes_points_that_were_redeemed(
    case: tuple[list[lc.Event], datetime],
) -> None:
    events, now = case
    s = ly.points_ledger(events, POLICY, now)
    lots = {lot.lot_id: lot for lot in s.lots}
    for lot in s.lots:
        parts = (lot.redeemed, lot.clawed_back, lot.expired, lot.repaid, lot.remaining)
        assert min(parts) >= 0
        assert sum(parts) == lot.points
        assert lot.expired == 0 or lot.remaining == 0
    for e in s.entries:
        if e.kind is ly.PointsEntryKind.EXPIRE:
            assert -e.points == lots[e.ref].expired


@SETTINGS
@given(with_redemptions(), st.randoms(use_true_random=False))
def test_any_arrival_order_gives_the_same_ledger_and_tiers(
    case: tuple[list[lc.Event], datetime], rnd: object
) -> None:
    events, now = case
    shuffled = list(events)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    twice = shuffled + events[: len(events) // 2]
    assert ly.points_ledger(twice, POLICY, now) == ly.points_ledger(events, POLICY, now)
    assert ly.tier_history(twice, POLICY, now) == ly.tier_history(events, POLICY, now)
    assert ly.assess_tier(twice, POLICY, now) == ly.assess_tier(events, POLICY, now)


@SETTINGS
@given(with_redemptions())
def test_the_tier_changes_only_at_a_qualifying_payment_or_at_a_review_date(
    case: tuple[list[lc.Event], datetime],
) -> None:
    events, now = case
    paid = {e.event_id: e for e in events if isinstance(e, OrderPaid)}
    tp = POLICY.loyalty.tiers
    changes = ly.tier_history(events, POLICY, now)
    for before, change in itertools.pairwise(changes):
        if change.move is ly.TierMove.UPGRADE:
            (evidence,) = change.evidence
            assert paid[evidence].at == change.since
            assert tp.index(change.tier.key) > tp.index(before.tier.key)  # type: ignore[operator]
        else:
            assert change.move is ly.TierMove.DOWNGRADE
            assert change.since.timetz() == time(0, tzinfo=change.since.tzinfo)
            reached = before.since.date()
            reviews = [reached + relativedelta(months=tp.review_months * k) for k in range(1, 40)]
            graced = [d + timedelta(days=tp.grace_days) for d in reviews]
            assert change.since.date() in graced


@SETTINGS
@given(with_redemptions())
def test_assess_agrees_with_the_loyalty_functions(case: tuple[list[lc.Event], datetime]) -> None:
    events, now = case
    a = lc.assess("c1", events, POLICY, now, explain=False)
    assert a.tier == ly.assess_tier(events, POLICY, now).tier
    assert a.points == ly.points_ledger(events, POLICY, now).balance
