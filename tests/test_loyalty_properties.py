"""Loyalty properties on generated histories: the ledger adds up, expiry takes only what is
left, arrival order does not matter, tiers move only at qualifying events or reviews, and the
running qualifying totals equal the orders summed again."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import attrs
from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lifecycle as lc
from lifecycle import loyalty as ly
from lifecycle._ledger import fold
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


# -- the running qualifying totals agree with summing the orders again --------------------------


def _tier(key: str, spend: int | None, orders: int | None, points: int | None, req: str) -> Tier:
    return Tier(
        key=key,
        label_en=key.title(),
        label_zh=key,
        min_spend=spend,
        min_orders=orders,
        min_points=points,
        require=req,  # type: ignore[arg-type]
    )


@st.composite
def loyalty_policies(draw: st.DrawFn) -> lc.Policy:
    """A policy with any window kind, posting rule and review, and tiers that count spend,
    orders or points (or several), low enough to be crossed.

    Half of them are a ladder of eight tiers on one measure, so that the tier qualified for
    tells the largest total of the windows closely.
    """
    levels = [Tier(key="member", label_en="Member", label_zh="普通会员")]
    if draw(st.booleans()):
        kind = draw(st.sampled_from(("spend", "orders", "points")))
        for n in range(1, 9):
            step = n if kind == "orders" else round(100 * 1.8**n)
            levels.append(
                _tier(
                    f"t{n}",
                    step if kind == "spend" else None,
                    step if kind == "orders" else None,
                    step if kind == "points" else None,
                    "any",
                )
            )
    for n in range(draw(st.integers(0 if len(levels) > 1 else 1, 3))):
        kinds = draw(st.sets(st.sampled_from(("spend", "orders", "points")), min_size=1))
        levels.append(
            _tier(
                f"u{n + 1}",
                draw(st.integers(1, 12000)) if "spend" in kinds else None,
                draw(st.integers(1, 4)) if "orders" in kinds else None,
                draw(st.integers(1, 12000)) if "points" in kinds else None,
                draw(st.sampled_from(("any", "all"))),
            )
        )
    return lc.Policy(
        timezone="Asia/Shanghai",
        loyalty=LoyaltyPolicy(
            tiers=TierPolicy(
                levels=tuple(levels),
                window=draw(st.sampled_from(tuple(lc.QualificationWindow))),
                window_days=draw(st.integers(1, 400)),
                review=draw(st.sampled_from(tuple(lc.TierReview))),
                review_months=draw(st.integers(1, 12)),
                downgrade=draw(st.sampled_from(tuple(lc.DowngradeStep))),
                grace_days=draw(st.integers(0, 60)),
            ),
            points=PointsPolicy(
                posting=draw(st.sampled_from(tuple(lc.PointsPosting))),
                return_window_days=draw(st.integers(0, 30)),
            ),
        ),
    )


@st.composite
def _orders(draw: st.DrawFn, start: datetime) -> list[lc.Event]:
    """Up to 16 orders in CNY over three years, delivered or not, some refunded (in part
    or in full, perhaps twice) or cancelled later."""
    out: list[lc.Event] = []
    for n in range(draw(st.integers(0, 16))):
        at = start + timedelta(
            days=draw(st.integers(0, 3 * 365)), minutes=draw(st.integers(0, 1439))
        )
        oid, amount = f"x{n}", Decimal(draw(st.integers(1, 5000)))
        order = {"customer_id": "c1", "order_id": oid}
        out.append(lc.OrderPaid(at=at, amount=amount, currency="CNY", **order))
        if draw(st.booleans()):
            out.append(lc.OrderDelivered(at=at + timedelta(days=draw(st.integers(0, 20))), **order))
        fate = draw(st.sampled_from(("kept", "refunded", "cancelled")))
        later = [at + timedelta(days=d) for d in draw(st.lists(st.integers(0, 400), max_size=2))]
        for k, t in enumerate(later):
            if fate == "cancelled":
                out.append(lc.OrderCancelled(at=t, **order))
                break
            if fate == "refunded":
                part = Decimal(draw(st.integers(1, int(amount)))) / len(later)
                out.append(
                    lc.OrderRefunded(
                        at=t, amount=part, currency="CNY", event_id=f"{oid}-r{k}", **order
                    )
                )
    return out


@st.composite
def with_tier_moves(draw: st.DrawFn, policy: lc.Policy) -> list[lc.Event]:
    """A history (its orders in CNY or not) with more orders in CNY, refunds, cancellations,
    and a few grants and revocations of the policy's tiers, some expiring."""
    events = draw(histories())
    if draw(st.booleans()):
        events = [attrs.evolve(e, currency="CNY") if hasattr(e, "currency") else e for e in events]
    events += draw(_orders(min(e.at for e in events)))
    instants = sorted(e.at for e in events)
    keys = [t.key for t in policy.loyalty.tiers.levels]
    for n in range(draw(st.integers(0, 3))):
        at = draw(st.sampled_from(instants)) + timedelta(hours=draw(st.integers(-48, 48)))
        days = draw(st.none() | st.integers(1, 400))
        revoke = draw(st.booleans())
        kind = lc.TierRevoked if revoke else lc.TierGranted
        events.append(
            kind(
                customer_id="c1",
                at=at,
                tier=draw(st.sampled_from(keys[1:] if revoke else keys)),
                author="ops",
                reason="goodwill",
                expires_at=None if days is None else at + timedelta(days=days),
                event_id=f"move{n}",
            )
        )
    return events


@attrs.frozen
class _Sums:
    spend: Decimal
    orders: int
    points: int


def _periods(policy: lc.Policy, day: date, member: date | None) -> list[tuple[date | None, date]]:
    """The windows that count at ``day``, the current one first, as the policy says."""
    tp = policy.loyalty.tiers
    kind = tp.window
    if kind is lc.QualificationWindow.ROLLING:
        return [(day - timedelta(days=tp.window_days - 1), day)]
    if kind is lc.QualificationWindow.CALENDAR_YEAR:
        return [(date(day.year, 1, 1), day), (date(day.year - 1, 1, 1), date(day.year - 1, 12, 31))]
    if kind is lc.QualificationWindow.MEMBERSHIP_YEAR and member is not None:
        years = [
            k for k in range(day.year - member.year + 1) if member + relativedelta(years=k) <= day
        ]
        k = max(years, default=0)
        start = member + relativedelta(years=k)
        out: list[tuple[date | None, date]] = [(start, day)]
        if k > 0:
            out.append((member + relativedelta(years=k - 1), start - timedelta(days=1)))
        return out
    return [(None, day)]


def _naive(
    events: list[lc.Event], policy: lc.Policy, now: datetime, at: datetime
) -> tuple[list[tuple[date | None, date]], list[_Sums]]:
    """The qualifying totals at ``at`` of the events at or before ``now``, summed afresh over
    every order for each window."""
    ledger = fold(events, policy, now)
    lp = policy.loyalty
    uses_points = any(t.min_points is not None for t in lp.tiers.levels)

    def day(t: datetime) -> date:
        return t.astimezone(ledger.tz).date()

    paid = [o for o in ledger.orders.values() if o.paid is not None]
    joins = [e.at for e in (ledger.registered, *(o.paid for o in paid)) if e is not None]
    member = day(min(joins)) if joins else None
    periods = _periods(policy, day(at), member)
    sums = []
    for start, end in periods:
        spend, orders, points = Decimal(0), 0, 0
        for o in paid:
            assert o.paid is not None
            if o.paid.at > at:
                continue
            if o.cancelled is not None and o.cancelled.at <= at:
                continue
            net = o.paid.amount - sum((r.amount for r in o.refunds if r.at <= at), Decimal(0))
            if net <= 0:
                continue
            ours = o.paid.currency == lp.currency
            if (start is None or start <= day(o.paid.at)) and day(o.paid.at) <= end:
                orders += 1
                spend += net if ours else 0
            posts: datetime | None = o.paid.at
            if lp.points.posting is not lc.PointsPosting.PAYMENT:
                posts = None if o.delivered is None else o.delivered.at
                if posts is not None and lp.points.posting is lc.PointsPosting.RETURN_WINDOW:
                    posts += timedelta(days=lp.points.return_window_days)
                posts = None if posts is None else max(posts, o.paid.at)
            if uses_points and ours and posts is not None and posts <= at:
                posted = day(posts)
                if (start is None or start <= posted) and posted <= end:
                    points += int(net * lp.points.earn_rate)
        sums.append(_Sums(spend, orders, points))
    return periods, sums


def _met(tier: Tier, s: _Sums) -> bool:
    checks = [
        have >= need
        for have, need in (
            (s.spend, tier.min_spend),
            (s.orders, tier.min_orders),
            (s.points, tier.min_points),
        )
        if need is not None
    ]
    return not checks or (all(checks) if tier.require == "all" else any(checks))


def _needed(tier: Tier, s: _Sums) -> tuple[object, ...]:
    return tuple(
        None if need is None else max(need - have, 0)
        for have, need in (
            (s.spend, tier.min_spend),
            (s.orders, tier.min_orders),
            (s.points, tier.min_points),
        )
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_running_qualifying_totals_equal_the_orders_summed_again(data: st.DataObject) -> None:
    policy = data.draw(loyalty_policies())
    events = data.draw(with_tier_moves(policy))
    first = min(e.at for e in events)
    span = (max(e.at for e in events) - first) + timedelta(days=100)
    levels = policy.loyalty.tiers.levels
    for _ in range(3):
        now = first + span * data.draw(st.floats(0, 1))
        a = ly.assess_tier(events, policy, now)
        periods, sums = _naive(events, policy, now, now)
        assert (a.spend, a.orders, a.points) == (sums[0].spend, sums[0].orders, sums[0].points)
        reached = max(i for s in sums for i, t in enumerate(levels) if _met(t, s))
        assert a.qualified == levels[reached]
        w = a.warning
        if w is not None:
            # The warning counts what will still be in the window at the review.
            tz = fold(events, policy, now).tz
            review = datetime.combine(w.review_on, time(0), tzinfo=tz)
            check = max(now.astimezone(tz), review)
            periods, sums = _naive(events, policy, now, check)
            today = now.astimezone(tz).date()
            held = [
                s
                for (start, end), s in zip(periods, sums, strict=True)
                if (start is None or start <= today) and today <= end
            ]
            expected = held[0] if held else sums[0]
            got = (w.spend_needed, w.orders_needed, w.points_needed)
            assert got == _needed(w.tier, expected)
