"""Loyalty: tiers (qualify, upgrade, review with a grace period, manual moves) and points.

Both derive from the customer's events, read from the one fold of the history that every rule
reads. :func:`assess_tier` and :func:`tier_history` replay valid orders and manual moves;
:func:`points_ledger` replays earnings, bonuses, redemptions, expiries and claw-backs into a
statement of immutable entries. Calendar rules run in the customer's zone.
"""

from __future__ import annotations

import heapq
import itertools
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from enum import StrEnum
from operator import itemgetter
from typing import Literal

import attrs
from dateutil.relativedelta import relativedelta

from lifecycle._display import field_table, html_table, money, one_line
from lifecycle._ledger import Ledger, OrderState, fold
from lifecycle._time import local_date, require_aware, to_utc
from lifecycle.customer import Birthday
from lifecycle.errors import ConflictingEvent, InsufficientPoints, InvalidEvent
from lifecycle.events import (
    Event,
    OrderCancelled,
    OrderPaid,
    OrderRefunded,
    PointsRedeemed,
    Referred,
    ReviewPosted,
    TierGranted,
    TierRevoked,
    sort_key,
)
from lifecycle.policy import (
    ClawbackShortfall,
    DowngradeStep,
    LoyaltyPolicy,
    PointsPosting,
    Policy,
    QualificationWindow,
    Tier,
    TierReview,
)
from lifecycle.reasons import Reason
from lifecycle.vocabulary import TierMove

__all__ = [
    "DowngradeWarning",
    "ExpiringPoints",
    "PendingPoints",
    "PointsEntry",
    "PointsEntryKind",
    "PointsLot",
    "PointsStatement",
    "TierAssessment",
    "TierChange",
    "TierProgress",
    "assess_tier",
    "check_loyalty",
    "points_ledger",
    "tier_history",
    "tier_table",
]


class PointsEntryKind(StrEnum):
    """What moved points in or out of the balance."""

    EARN = "earn"
    BONUS = "bonus"
    REDEEM = "redeem"
    EXPIRE = "expire"
    CLAWBACK = "clawback"


# -- results ------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TierChange:
    """One step of a customer's tier history: ``tier`` since ``since``, and why.

    Manual moves appear even when they leave the tier as it was (a grant below the tier held),
    so the audit trail shows every one. ``since`` is in the customer's time zone.
    """

    tier: Tier
    previous: Tier | None
    since: datetime
    move: TierMove
    evidence: tuple[str, ...]
    reasons: tuple[Reason, ...]
    author: str | None = None
    expires_at: datetime | None = None

    def __repr__(self) -> str:
        return one_line(
            "TierChange", f"{self.tier.label('en')} since {self.since:%Y-%m-%d}", self.move.value
        )

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [
            ("tier", f"{self.tier.label('en')} ({self.tier.label('zh')})"),
            ("since", self.since.isoformat()),
            ("move", self.move.value),
        ]
        rows += [("why", r.en) for r in self.reasons]
        return field_table(rows)

    def __str__(self) -> str:
        return f"{self.tier.label_en} since {self.since.date().isoformat()}: {self.reasons[0]}"

    def text(self, lang: Literal["en", "zh"] = "en") -> str:
        """The change as one line in ``lang``."""
        if lang == "zh":
            return (
                f"自{self.since.date().isoformat()}起为{self.tier.label_zh}：{self.reasons[0].zh}"
            )
        return str(self)


@attrs.frozen(kw_only=True)
class TierProgress:
    """What the customer still needs for the next tier, in the current window.

    A field is ``None`` when the next tier sets no such threshold, 0 when it is met.
    """

    tier: Tier
    spend_needed: Decimal | None
    orders_needed: int | None
    points_needed: int | None
    reason: Reason

    def __str__(self) -> str:
        return self.reason.en


@attrs.frozen(kw_only=True)
class DowngradeWarning:
    """The customer will lose ``tier`` on ``on`` unless they requalify first.

    A cadence rule sends it some days before ``on``. The amounts are what the customer needs,
    counted from orders known now, to keep the tier at the review (``review_on``); spending
    after the review, within the grace period, also keeps it, though earlier orders may then
    have left the window.
    """

    tier: Tier
    to_tier: Tier
    on: date
    at: datetime
    review_on: date
    spend_needed: Decimal | None
    orders_needed: int | None
    points_needed: int | None
    in_grace: bool
    reason: Reason


@attrs.frozen(kw_only=True)
class TierAssessment:
    """A customer's tier at ``as_of``, what qualifies them, and what comes next.

    Attributes:
        tier: the tier held.
        qualified: the tier the qualifying totals alone reach now.
        since: when the tier held was reached (in the customer's zone), ``None`` for the base
            tier of a customer who never moved.
        move: how the tier was reached.
        spend, orders, points: the qualifying totals in the current window.
        review_on: the next review date, ``None`` when no review is due.
        grace_until: the day the grace period ends, while the customer is in it.
        warning: set when the customer will be moved down unless they requalify.
        progress: what the next tier needs, ``None`` at the top (or when a revocation caps).
        manual: the manual move in force, if any.
        reasons: why, in English and Chinese (empty when not asked to explain).
        valid_until: the first later instant at which time alone may change this.
    """

    tier: Tier
    qualified: Tier
    since: datetime | None
    move: TierMove | None
    spend: Decimal
    orders: int
    points: int
    review_on: date | None
    grace_until: date | None
    warning: DowngradeWarning | None
    progress: TierProgress | None
    manual: TierChange | None
    reasons: tuple[Reason, ...]
    as_of: datetime
    valid_until: datetime | None = attrs.field(default=None, repr=False)

    def __repr__(self) -> str:
        move = None if self.move is None else self.move.value
        return one_line(
            "TierAssessment",
            self.tier.label("en"),
            move,
            f"spend {self.spend:,}",
            f"{self.orders:,} orders",
            f"{self.points:,} points",
        )

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [
            ("tier", f"{self.tier.label('en')} ({self.tier.label('zh')})"),
            ("qualified for", self.qualified.label("en")),
            ("as of", self.as_of.isoformat()),
            ("spend", f"{self.spend:,}"),
            ("orders", self.orders),
            ("points", self.points),
        ]
        rows += [("why", r.en) for r in self.reasons]
        return field_table(rows)


@attrs.frozen(kw_only=True)
class PointsLot:
    """One posting of points (an earning or a bonus) and where its points went.

    ``points == redeemed + clawed_back + expired + repaid + remaining``; ``repaid`` paid back a
    negative balance the moment the lot posted.
    """

    lot_id: str
    kind: PointsEntryKind
    posted_at: datetime
    expires_at: datetime | None
    points: int
    redeemed: int
    clawed_back: int
    expired: int
    repaid: int
    remaining: int


@attrs.frozen(kw_only=True)
class PointsEntry:
    """One immutable line of the statement: points in (+) or out (-), and the balance after."""

    at: datetime
    kind: PointsEntryKind
    points: int
    balance: int
    ref: str
    evidence: tuple[str, ...]
    reason: Reason

    def __str__(self) -> str:
        return f"{self.at.date().isoformat()} {self.points:+d} = {self.balance}: {self.reason}"


@attrs.frozen(kw_only=True)
class PendingPoints:
    """Points an order will earn once they post; ``posts_at`` is ``None`` until delivery."""

    order_id: str
    points: int
    posts_at: datetime | None


@attrs.frozen(kw_only=True)
class ExpiringPoints:
    """Points that expire within a number of days, if not spent first, lot by lot."""

    points: int
    lots: tuple[PointsLot, ...]

    @property
    def first_at(self) -> datetime | None:
        """When the first of them expires."""
        return self.lots[0].expires_at if self.lots else None


@attrs.frozen(kw_only=True)
class PointsStatement:
    """A customer's points at ``as_of``: the balance, every entry, the lots and what is pending.

    ``balance == earned + bonuses - redeemed - expired - clawed_back``; it is negative only when
    claw-backs (or redemptions recorded late) took more than was left.
    """

    balance: int
    entries: tuple[PointsEntry, ...]
    lots: tuple[PointsLot, ...]
    pending: tuple[PendingPoints, ...]
    as_of: datetime
    valid_until: datetime | None = attrs.field(default=None, repr=False)

    def __repr__(self) -> str:
        return one_line(
            "PointsStatement",
            f"balance {self.balance:,}",
            f"{len(self.entries)} entries",
            f"{len(self.lots)} lots",
            f"as of {self.as_of:%Y-%m-%d}",
        )

    def _repr_html_(self) -> str:
        shown = self.entries[-10:]
        rows = [(f"{e.at:%Y-%m-%d}", e.kind.value, e.points, e.balance, e.reason.en) for e in shown]
        caption = f"Points: balance {self.balance:,} as of {self.as_of:%Y-%m-%d}"
        if len(self.entries) > len(shown):
            caption += f" (last {len(shown)} of {len(self.entries)} entries)"
        return html_table(("day", "kind", "points", "balance", "why"), rows, caption=caption)

    def _total(self, kind: PointsEntryKind) -> int:
        return abs(sum(e.points for e in self.entries if e.kind is kind))

    @property
    def earned(self) -> int:
        return self._total(PointsEntryKind.EARN)

    @property
    def bonuses(self) -> int:
        return self._total(PointsEntryKind.BONUS)

    @property
    def redeemed(self) -> int:
        return self._total(PointsEntryKind.REDEEM)

    @property
    def expired(self) -> int:
        return self._total(PointsEntryKind.EXPIRE)

    @property
    def clawed_back(self) -> int:
        return self._total(PointsEntryKind.CLAWBACK)

    def expiring(self, days: int) -> ExpiringPoints:
        """Points that expire within ``days`` days after ``as_of`` unless spent first."""
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            raise ValueError(f"days must be a whole number >= 0, got {days!r}")
        end = to_utc(self.as_of) + timedelta(days=days)
        lots = tuple(
            lot
            for lot in self.lots
            if lot.remaining > 0 and lot.expires_at is not None and to_utc(lot.expires_at) <= end
        )
        return ExpiringPoints(points=sum(lot.remaining for lot in lots), lots=lots)


# -- reading the ledger -------------------------------------------------------------------------


class _Order:
    """Loyalty's view of one paid order of the ledger, worked out once: its instants in UTC and
    in the customer's days, when its points post, and its net at any instant."""

    __slots__ = (
        "cancelled_at",
        "in_currency",
        "paid",
        "paid_at",
        "paid_day",
        "post_at",
        "post_day",
        "refund_at",
        "settled_at",
        "settled_net",
        "state",
    )

    def __init__(self, state: OrderState, paid: OrderPaid, facts: _Facts):
        pp = facts.lp.points
        self.state = state
        self.paid = paid
        self.in_currency = paid.currency == facts.lp.currency
        self.paid_at = paid_at = to_utc(paid.at)
        self.paid_day = facts.day(paid_at)
        self.refund_at = [(to_utc(r.at), r.amount) for r in state.refunds]
        cancelled = state.cancelled
        self.cancelled_at = None if cancelled is None else to_utc(cancelled.at)
        # From this instant on (the last refund or cancellation) the net no longer changes.
        changes = [t for t, _ in self.refund_at]
        if self.cancelled_at is not None:
            changes.append(self.cancelled_at)
        self.settled_at = max(changes, default=paid_at)
        self.settled_net = self._net(self.settled_at)
        # When its points post (UTC), None while not delivered.
        self.post_at: datetime | None = None
        if pp.posting is PointsPosting.PAYMENT:
            self.post_at = paid_at
        elif state.delivered is not None:
            at = to_utc(state.delivered.at)
            if pp.posting is PointsPosting.RETURN_WINDOW:
                at += timedelta(days=pp.return_window_days)
            self.post_at = max(at, paid_at)
        self.post_day = None if self.post_at is None else facts.day(self.post_at)

    @property
    def order_id(self) -> str:
        return self.state.order_id

    @property
    def cancelled(self) -> OrderCancelled | None:
        return self.state.cancelled

    @property
    def refunds(self) -> list[OrderRefunded]:
        return self.state.refunds

    def net(self, at: datetime) -> Decimal:
        """The valid amount at ``at``: 0 once cancelled or fully refunded."""
        if self.settled_at <= at:
            return self.settled_net
        return self._net(at)

    def _net(self, at: datetime) -> Decimal:
        if self.cancelled_at is not None and self.cancelled_at <= at:
            return Decimal(0)
        net = self.paid.amount
        for t, amount in self.refund_at:
            if t <= at:
                net -= amount
        return max(net, Decimal(0))


class _Facts:
    """What the loyalty rules read from one customer's ledger at ``now``.

    The ledger's own facts (profile, reviews, referrals, manual moves, redemptions), and loyalty's
    view of each paid order, in the order the payments came.
    """

    def __init__(self, ledger: Ledger, now: datetime):
        self.policy = ledger.policy
        self.lp: LoyaltyPolicy = ledger.policy.loyalty
        self.now = now
        self.tz: tzinfo = ledger.tz
        self.profile = ledger.profile
        self.moves: list[TierGranted | TierRevoked] = ledger.tier_moves
        self.reviews: list[ReviewPosted] = ledger.reviews
        self.referred: dict[str, Referred] = ledger.referrals
        self.redemptions: list[PointsRedeemed] = list(ledger.redeemed.values())
        paid = [(s, s.paid) for s in ledger.orders.values() if s.paid is not None]
        paid.sort(key=lambda sp: sort_key(sp[1]))
        self.orders: dict[str, _Order] = {s.order_id: _Order(s, p, self) for s, p in paid}
        # A customer joins by registering or by their first payment, whichever came first.
        firsts = [e for e in (ledger.registered, paid[0][1] if paid else None) if e is not None]
        self.joined_by: Event | None = min(firsts, key=sort_key, default=None)
        self.member_since = None if self.joined_by is None else to_utc(self.joined_by.at)

    def day(self, at: datetime) -> date:
        return local_date(at, self.tz)

    def midnight(self, day: date) -> datetime:
        """The first instant of ``day`` in the customer's zone, in UTC."""
        return to_utc(datetime.combine(day, time(0), tzinfo=self.tz))

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.tz)

    def base_points(self, amount: Decimal) -> int:
        """Points an amount earns before any tier multiplier."""
        return int((amount * self.lp.points.earn_rate).to_integral_value(ROUND_DOWN))


# -- money and words ----------------------------------------------------------------------------


@attrs.frozen
class _Period:
    """An inclusive range of the customer's calendar days that orders count in."""

    start: date | None
    end: date

    def holds(self, day: date) -> bool:
        return (self.start is None or self.start <= day) and day <= self.end


@attrs.frozen
class _Totals:
    spend: Decimal
    orders: int
    points: int
    period: _Period


@attrs.frozen
class _Need:
    spend: Decimal | None
    orders: int | None
    points: int | None

    @property
    def parts(self) -> list[tuple[str, Decimal | int]]:
        out: list[tuple[str, Decimal | int]] = []
        if self.spend is not None:
            out.append(("spend", self.spend))
        if self.orders is not None:
            out.append(("orders", self.orders))
        if self.points is not None:
            out.append(("points", self.points))
        return out


def _need(tier: Tier, t: _Totals) -> _Need:
    return _Need(
        spend=None if tier.min_spend is None else max(tier.min_spend - t.spend, Decimal(0)),
        orders=None if tier.min_orders is None else max(tier.min_orders - t.orders, 0),
        points=None if tier.min_points is None else max(tier.min_points - t.points, 0),
    )


def _met(tier: Tier, t: _Totals) -> bool:
    checks = [v == 0 for _, v in _need(tier, t).parts]
    if not checks:
        return True
    return all(checks) if tier.require == "all" else any(checks)


@attrs.define
class _Window:
    """Running qualifying totals over one period, as of the qualifier's clock.

    Rows ``lo:hi`` (by payment) are the orders paid on the period's days by then, postings
    ``plo:phi`` the points posted on its days by then; the totals are their nets now. Both
    ends only move forward, as the period and the clock do.
    """

    lo: int = 0
    hi: int = 0
    plo: int = 0
    phi: int = 0
    spend: Decimal = Decimal(0)
    orders: int = 0
    points: int = 0


class _Qualifier:
    """The qualifying totals of one customer at any instant, and the tier they reach.

    The totals run: each window keeps its sums while its ends move forward, and a refund or a
    cancellation changes them by the order's change of net when its instant comes, so asking
    at later and later instants (as the replay does) costs time in proportion to the orders
    and changes passed. Asking at an earlier instant starts the sums again.
    """

    def __init__(self, facts: _Facts):
        self.f = facts
        self.tp = facts.lp.tiers
        self.levels = self.tp.levels
        self.uses_points = any(t.min_points is not None for t in self.levels)
        self.rows = sorted(facts.orders.values(), key=lambda o: (o.paid_at, o.order_id))
        member = facts.member_since
        self.member_day = None if member is None else facts.day(member)
        # The postings of points that count towards a tier, in time: (instant, day, row).
        self.posts = [
            (o.post_at, o.post_day, i)
            for i, o in enumerate(self.rows)
            if self.uses_points
            and o.in_currency
            and o.post_at is not None
            and o.post_day is not None
        ]
        self.posts.sort(key=lambda p: (p[0], self.rows[p[2]].order_id))
        self.post_of = [-1] * len(self.rows)  # each row's posting, -1 for none
        for j, (_, _, i) in enumerate(self.posts):
            self.post_of[i] = j
        # Each change of an order's net: (instant, row, refunded amount or None for a cancel).
        self.changes: list[tuple[datetime, int, Decimal | None]] = []
        for i, o in enumerate(self.rows):
            self.changes += [(t, i, amount) for t, amount in o.refund_at]
            if o.cancelled_at is not None:
                self.changes.append((o.cancelled_at, i, None))
        self.changes.sort(key=itemgetter(0))
        self._start()

    def _start(self) -> None:
        """The running totals before any instant."""
        self.clock: datetime | None = None
        self.today: date | None = None
        self.changed = 0  # how many of the changes have come
        self.refunded = [Decimal(0)] * len(self.rows)
        self.cancelled = [False] * len(self.rows)
        self.nets = [max(o.paid.amount, Decimal(0)) for o in self.rows]
        self.windows: dict[bool, _Window] = {}  # the current period's (True) and the one before

    # periods

    def anniversary(self, k: int) -> date:
        assert self.member_day is not None
        return self.member_day + relativedelta(years=k)

    def membership_year(self, day: date) -> int:
        """Which membership year ``day`` is in, the first being 0."""
        assert self.member_day is not None
        k = day.year - self.member_day.year
        while k > 0 and self.anniversary(k) > day:
            k -= 1
        return max(k, 0)

    def periods(self, day: date) -> list[_Period]:
        """The windows that count at ``day``: the current one first."""
        w = self.tp.window
        if w is QualificationWindow.ROLLING:
            return [_Period(day - timedelta(days=self.tp.window_days - 1), day)]
        if w is QualificationWindow.CALENDAR_YEAR:
            return [
                _Period(date(day.year, 1, 1), day),
                _Period(date(day.year - 1, 1, 1), date(day.year - 1, 12, 31)),
            ]
        if w is QualificationWindow.MEMBERSHIP_YEAR and self.member_day is not None:
            k = self.membership_year(day)
            start = self.anniversary(k)
            out = [_Period(start, day)]
            if k > 0:
                out.append(_Period(self.anniversary(k - 1), start - timedelta(days=1)))
            return out
        return [_Period(None, day)]

    # running totals

    def _advance(self, at: datetime) -> None:
        """Move the clock to ``at``: apply the changes of net that have come by then."""
        if self.clock is not None and at < self.clock:
            self._start()
        changes = self.changes
        k = self.changed
        while k < len(changes) and changes[k][0] <= at:
            _, i, amount = changes[k]
            self._change(i, amount)
            k += 1
        self.changed = k
        if at != self.clock:
            self.clock = at
            self.today = self.f.day(at)

    def _points(self, net: Decimal) -> int:
        return self.f.base_points(net) if net > 0 else 0

    def _change(self, i: int, refunded: Decimal | None) -> None:
        """Row ``i`` was refunded ``refunded`` (or cancelled, for ``None``): correct the sums
        of the windows that hold it."""
        o = self.rows[i]
        if refunded is None:
            self.cancelled[i] = True
        else:
            self.refunded[i] += refunded
        old = self.nets[i]
        new = Decimal(0) if self.cancelled[i] else max(o.paid.amount - self.refunded[i], Decimal(0))
        if new == old:
            return
        self.nets[i] = new
        j = self.post_of[i]
        for w in self.windows.values():
            if w.lo <= i < w.hi:
                w.orders += (new > 0) - (old > 0)
                if o.in_currency:
                    w.spend += new - old
            if w.plo <= j < w.phi:
                w.points += self._points(new) - self._points(old)

    def _window(self, period: _Period) -> _Window:
        """The window of ``period`` at the clock, its ends moved there."""
        assert self.clock is not None
        key = period.end == self.today
        w = self.windows.get(key)
        if w is None:
            w = self.windows[key] = _Window()
        rows, nets, clock, start, end = self.rows, self.nets, self.clock, period.start, period.end
        if start is not None:
            while w.lo < len(rows) and rows[w.lo].paid_day < start:
                if w.lo < w.hi:
                    self._count(w, w.lo, -1)
                w.lo += 1
        w.hi = max(w.hi, w.lo)
        while w.hi < len(rows) and rows[w.hi].paid_at <= clock and rows[w.hi].paid_day <= end:
            self._count(w, w.hi, +1)
            w.hi += 1
        posts = self.posts
        if start is not None:
            while w.plo < len(posts) and posts[w.plo][1] < start:
                if w.plo < w.phi:
                    w.points -= self._points(nets[posts[w.plo][2]])
                w.plo += 1
        w.phi = max(w.phi, w.plo)
        while w.phi < len(posts) and posts[w.phi][0] <= clock and posts[w.phi][1] <= end:
            w.points += self._points(nets[posts[w.phi][2]])
            w.phi += 1
        return w

    def _count(self, w: _Window, i: int, sign: int) -> None:
        """Add row ``i`` to the orders and spend of ``w`` (``sign`` +1) or take it out (-1)."""
        net = self.nets[i]
        if net > 0:
            w.orders += sign
            if self.rows[i].in_currency:
                w.spend += net if sign > 0 else -net

    def totals(self, at: datetime, period: _Period) -> _Totals:
        """The qualifying totals at ``at`` over ``period``, one of :meth:`periods` at ``at``."""
        self._advance(at)
        w = self._window(period)
        return _Totals(w.spend, w.orders, w.points, period)

    def qualified(self, at: datetime) -> tuple[int, _Totals]:
        """The highest tier the totals at ``at`` reach, and the totals that reach it."""
        self._advance(at)
        assert self.today is not None
        best: tuple[int, _Totals] | None = None
        for period in self.periods(self.today):
            w = self._window(period)
            t = _Totals(w.spend, w.orders, w.points, period)
            idx = max(i for i, tier in enumerate(self.levels) if _met(tier, t))
            if best is None or idx > best[0]:
                best = (idx, t)
        assert best is not None
        return best

    def next_window_change(self, now: datetime) -> datetime | None:
        """The first instant after ``now`` at which an order leaves the window."""
        w = self.tp.window
        today = self.f.day(now)
        if w is QualificationWindow.ROLLING:
            days = [o.paid_day + timedelta(days=self.tp.window_days) for o in self.rows]
            later = [d for d in days if d > today]
            return self.f.midnight(min(later)) if later else None
        if w is QualificationWindow.CALENDAR_YEAR:
            return self.f.midnight(date(today.year + 1, 1, 1)) if self.rows else None
        if w is QualificationWindow.MEMBERSHIP_YEAR and self.member_day is not None:
            return self.f.midnight(self.anniversary(self.membership_year(today) + 1))
        return None

    # words

    def window_words(self, period: _Period) -> tuple[str, str]:
        """How the window reads in a sentence: ("within 365 days", "365天内")."""
        w = self.tp.window
        if w is QualificationWindow.ROLLING:
            n = self.tp.window_days
            return f"within {n} days", f"{n}天内"
        if w is QualificationWindow.CALENDAR_YEAR:
            y = period.start.year if period.start is not None else period.end.year
            return f"in {y}", f"{y}年"
        if w is QualificationWindow.MEMBERSHIP_YEAR and period.start is not None:
            return (
                f"in the membership year from {period.start}",
                f"自{period.start}起的会员年度内",
            )
        return "in total", "累计"


def _amount_words(
    need: _Need, currency: str, require: str, lang: Literal["en", "zh"]
) -> str | None:
    """'¥770 more spent or 2 more orders' for the thresholds not yet met."""
    parts = []
    for kind, value in need.parts:
        if not value:
            continue
        if kind == "spend":
            assert isinstance(value, Decimal)
            m = money(value, currency)
            parts.append(f"{m} more spent" if lang == "en" else f"再消费{m}")
        elif kind == "orders":
            parts.append(
                f"{value} more valid order(s)" if lang == "en" else f"再下{value}笔有效订单"
            )
        else:
            parts.append(f"{value} more points earned" if lang == "en" else f"再获得{value}积分")
    if not parts:
        return None
    if lang == "en":
        return (" and " if require == "all" else " or ").join(parts)
    return ("并" if require == "all" else "或").join(parts)


# -- the tier replay ----------------------------------------------------------------------------


@attrs.define
class _Override:
    event: TierGranted | TierRevoked
    level: int  # a floor (grant) or a ceiling (revocation)
    expires: datetime | None
    change: TierChange | None = None

    @property
    def floor(self) -> bool:
        return isinstance(self.event, TierGranted)


class _TierReplay:
    """Runs the tier rules over time: at each payment, posting, manual move and review date."""

    def __init__(self, facts: _Facts):
        self.f = facts
        self.q = _Qualifier(facts)
        self.tp = facts.lp.tiers
        self.levels = self.tp.levels
        self.auto = 0
        self.auto_since: datetime | None = None
        self.review_k = 0
        self.review_at: datetime | None = None
        self.grace_until: datetime | None = None
        self.override: _Override | None = None
        self.changes: list[TierChange] = []
        self.timeline: list[tuple[datetime, int]] = []  # (since UTC, effective level)
        self.current: int | None = None
        self.last_move: TierMove | None = None
        self.since: datetime | None = None
        self.moves_at: dict[datetime, list[TierGranted | TierRevoked]] = {}
        for m in facts.moves:
            self.moves_at.setdefault(to_utc(m.at), []).append(m)

    # -- the rules

    def effective(self) -> int:
        o = self.override
        if o is None:
            return self.auto
        return max(self.auto, o.level) if o.floor else min(self.auto, o.level)

    def _review_after(self, since: datetime, k: int) -> datetime | None:
        """The ``k``-th review (k >= 1) of a tier reached at ``since``."""
        if self.tp.review is TierReview.NEVER:
            return None
        day = self.f.day(since)
        if self.tp.review is TierReview.TIER_ANNIVERSARY:
            return self.f.midnight(day + relativedelta(months=self.tp.review_months * k))
        if self.q.member_day is None:
            return None
        first = self.q.membership_year(day) + 1
        return self.f.midnight(self.q.anniversary(first + k - 1))

    def _reach(self, level: int, t: datetime) -> None:
        self.auto = level
        self.auto_since = t
        self.review_k = 1
        self.review_at = None if level == 0 else self._review_after(t, 1)
        self.grace_until = None

    def _grace_end(self, review_at: datetime) -> datetime:
        return self.f.midnight(self.f.day(review_at) + timedelta(days=self.tp.grace_days))

    def step(self, t: datetime, paid: list[OrderPaid], posted: list[_Order]) -> None:
        before = self.current
        ended: _Override | None = None
        o = self.override
        if o is not None and o.expires is not None and o.expires <= t:
            ended, self.override = o, None
        moves = self.moves_at.get(t, [])
        q, totals = self.q.qualified(t)
        auto_move: TierMove | None = None
        detail: tuple[Reason, ...] = ()
        evidence: tuple[str, ...] = ()
        if q > self.auto:
            trigger = self._trigger(paid, posted)
            detail, evidence = self._upgrade_reason(q, totals, trigger)
            self._reach(q, t)
            auto_move = TierMove.UPGRADE
        elif self.review_at is not None and t >= self.review_at:
            if q >= self.auto:
                assert self.auto_since is not None
                while self.review_at is not None and self.review_at <= t:
                    self.review_k += 1
                    self.review_at = self._review_after(self.auto_since, self.review_k)
                self.grace_until = None
            else:
                if self.grace_until is None:
                    self.grace_until = self._grace_end(self.review_at)
                if t >= self.grace_until:
                    target = self.auto - 1 if self.tp.downgrade is DowngradeStep.ONE_TIER else q
                    detail, evidence = self._downgrade_reason(target, totals)
                    self._reach(target, t)
                    auto_move = TierMove.DOWNGRADE
        applied = [(m, self._apply_move(m)) for m in moves]
        level = self.effective()
        for m, override in applied:
            change = self._record(level, t, self._manual_change(m), before)
            if override is not None:
                override.change = change
            before = level
        if moves or level == self.current or (self.current is None and level == 0):
            return
        if auto_move is not None:
            self._record(level, t, (auto_move, detail, evidence, None, None), before)
        elif ended is not None:
            self._record(level, t, self._ended_change(ended, t), before)

    def _apply_move(self, m: TierGranted | TierRevoked) -> _Override | None:
        """Put a manual move in force; one naming no tier of the policy is ignored."""
        idx = self.tp.index(m.tier)
        if idx is None or (idx == 0 and isinstance(m, TierRevoked)):
            return None
        expires = None if m.expires_at is None else to_utc(m.expires_at)
        level = idx if isinstance(m, TierGranted) else idx - 1
        self.override = _Override(m, level, expires)
        return self.override

    def _record(
        self,
        level: int,
        t: datetime,
        what: tuple[TierMove, tuple[Reason, ...], tuple[str, ...], str | None, datetime | None],
        before: int | None,
    ) -> TierChange:
        move, reasons, evidence, author, expires = what
        change = TierChange(
            tier=self.levels[level],
            previous=None if before is None else self.levels[before],
            since=self.f.local(t),
            move=move,
            evidence=evidence,
            reasons=reasons,
            author=author,
            expires_at=None if expires is None else self.f.local(expires),
        )
        self.changes.append(change)
        if level != self.current:
            self.timeline.append((t, level))
            self.since = t
            self.last_move = move
        self.current = level
        return change

    # -- reasons

    def _trigger(self, paid: list[OrderPaid], posted: list[_Order]) -> tuple[str, str] | None:
        """The order whose payment (or posting) crossed the line: (order id, event id)."""
        if paid:
            return paid[-1].order_id, paid[-1].event_id
        if posted:
            return posted[-1].order_id, posted[-1].paid.event_id
        return None

    def _criteria(self, tier: Tier, totals: _Totals) -> tuple[list[str], list[str]]:
        cur = self.f.lp.currency
        win_en, win_zh = self.q.window_words(totals.period)
        en: list[str] = []
        zh: list[str] = []
        need = _need(tier, totals)
        if tier.min_spend is not None and (need.spend == 0 or tier.require == "all"):
            en.append(
                f"spend {win_en} to {money(totals.spend, cur)} "
                f"({tier.label_en} needs {money(tier.min_spend, cur)})"
            )
            zh.append(
                f"{win_zh}消费达到{money(totals.spend, cur)}"
                f"（{tier.label_zh}需{money(tier.min_spend, cur)}）"
            )
        if tier.min_orders is not None and (need.orders == 0 or tier.require == "all"):
            en.append(
                f"valid orders {win_en} to {totals.orders} "
                f"({tier.label_en} needs {tier.min_orders})"
            )
            zh.append(
                f"{win_zh}有效订单达到{totals.orders}笔（{tier.label_zh}需{tier.min_orders}笔）"
            )
        if tier.min_points is not None and (need.points == 0 or tier.require == "all"):
            en.append(
                f"points earned {win_en} to {totals.points:,} "
                f"({tier.label_en} needs {tier.min_points:,})"
            )
            zh.append(f"{win_zh}积分达到{totals.points:,}（{tier.label_zh}需{tier.min_points:,}）")
        if tier.require == "any":
            en, zh = en[:1], zh[:1]
        return en, zh

    def _upgrade_reason(
        self, level: int, totals: _Totals, trigger: tuple[str, str] | None
    ) -> tuple[tuple[Reason, ...], tuple[str, ...]]:
        tier = self.levels[level]
        en, zh = self._criteria(tier, totals)
        who_en = f"Order {trigger[0]}" if trigger else "Orders"
        who_zh = f"订单{trigger[0]}" if trigger else "订单"
        reason = Reason(
            code="tier.upgrade",
            en=f"{who_en} brought {' and '.join(en)}.",
            zh=f"{who_zh}使{'，且'.join(zh)}。",
            evidence=(trigger[1],) if trigger else (),
        )
        return (reason,), reason.evidence

    def _downgrade_reason(
        self, target: int, totals: _Totals
    ) -> tuple[tuple[Reason, ...], tuple[str, ...]]:
        held = self.levels[self.auto]
        to = self.levels[target]
        assert self.review_at is not None
        review = self.f.day(self.review_at)
        need = _need(held, totals)
        cur = self.f.lp.currency
        short_en = _amount_words(need, cur, held.require, "en") or "more"
        short_zh = _amount_words(need, cur, held.require, "zh") or "更多消费"
        win_en, win_zh = self.q.window_words(totals.period)
        g = self.tp.grace_days
        step_en = (
            "one tier down"
            if self.tp.downgrade is DowngradeStep.ONE_TIER
            else "to the tier qualified for"
        )
        step_zh = "降一级" if self.tp.downgrade is DowngradeStep.ONE_TIER else "降至符合条件的等级"
        reason = Reason(
            code="tier.downgrade",
            en=(
                f"Not requalified for {held.label_en} by the end of the {g}-day grace period "
                f"after the review on {review} ({short_en} {win_en} was needed): moved "
                f"{step_en} to {to.label_en}."
            ),
            zh=(
                f"{review}等级审核后{g}天保级期内未达到{held.label_zh}标准"
                f"（还需{win_zh}{short_zh}），{step_zh}为{to.label_zh}。"
            ),
        )
        return (reason,), ()

    def _manual_change(
        self, m: TierGranted | TierRevoked
    ) -> tuple[TierMove, tuple[Reason, ...], tuple[str, ...], str | None, datetime | None]:
        idx = self.tp.index(m.tier)
        name = self.levels[idx] if idx is not None else None
        en_name = name.label_en if name else m.tier
        zh_name = name.label_zh if name else m.tier
        until_en = until_zh = ""
        if m.expires_at is not None:
            d = self.f.day(m.expires_at)
            until_en, until_zh = f" until {d}", f"，至{d}"
        ignored = idx is None or (idx == 0 and isinstance(m, TierRevoked))
        unknown_en = " (no such tier to move to: ignored)" if ignored else ""
        unknown_zh = "（无此等级，已忽略）" if ignored else ""
        if isinstance(m, TierGranted):
            move = TierMove.GRANTED
            reason = Reason(
                code="tier.granted",
                en=f"{en_name} granted by {m.author}{until_en}: {m.reason}{unknown_en}.",
                zh=f"{m.author}授予{zh_name}{until_zh}：{m.reason}{unknown_zh}。",
                evidence=(m.event_id,),
            )
        else:
            move = TierMove.REVOKED
            reason = Reason(
                code="tier.revoked",
                en=f"{en_name} removed by {m.author}{until_en}: {m.reason}{unknown_en}.",
                zh=f"{m.author}取消{zh_name}{until_zh}：{m.reason}{unknown_zh}。",
                evidence=(m.event_id,),
            )
        return move, (reason,), (m.event_id,), m.author, m.expires_at

    def _ended_change(
        self, ended: _Override, t: datetime
    ) -> tuple[TierMove, tuple[Reason, ...], tuple[str, ...], str | None, datetime | None]:
        tier = self.levels[self.tp.index(ended.event.tier) or 0]
        d = self.f.day(t)
        if ended.floor:
            move = TierMove.GRANT_ENDED
            reason = Reason(
                code="tier.grant_ended",
                en=f"The grant of {tier.label_en} ended on {d}; the tier earned applies again.",
                zh=f"{tier.label_zh}授予已于{d}到期，恢复按消费评定的等级。",
                evidence=(ended.event.event_id,),
            )
        else:
            move = TierMove.REVOCATION_ENDED
            reason = Reason(
                code="tier.revocation_ended",
                en=f"The removal of {tier.label_en} ended on {d}; the tier earned applies again.",
                zh=f"{tier.label_zh}取消期已于{d}结束，恢复按消费评定的等级。",
                evidence=(ended.event.event_id,),
            )
        return move, (reason,), (ended.event.event_id,), None, None

    # -- driving

    def next_timer(self) -> datetime | None:
        out = []
        if self.grace_until is not None:
            out.append(self.grace_until)
        elif self.review_at is not None:
            out.append(self.review_at)
        if self.override is not None and self.override.expires is not None:
            out.append(self.override.expires)
        return min(out, default=None)

    def run(self, now: datetime) -> None:
        f = self.f
        paid_at: dict[datetime, list[OrderPaid]] = {}
        posted_at: dict[datetime, list[_Order]] = {}
        for o in self.q.rows:
            paid_at.setdefault(o.paid_at, []).append(o.paid)
            if self.q.uses_points and o.post_at is not None and o.post_at <= now:
                posted_at.setdefault(o.post_at, []).append(o)
        static = set(paid_at) | set(posted_at) | set(self.moves_at)
        if f.member_since is not None:
            static.add(f.member_since)
        instants = sorted(static)
        i = 0
        while True:
            timer = self.next_timer()
            nxt = instants[i] if i < len(instants) else None
            if timer is not None and (nxt is None or timer < nxt):
                nxt = timer
            if nxt is None or nxt > now:
                break
            if i < len(instants) and instants[i] == nxt:
                i += 1
            if self.current is None and f.member_since is not None and nxt >= f.member_since:
                self._join(f.member_since)
            self.step(nxt, paid_at.get(nxt, []), posted_at.get(nxt, []))
        if self.current is None and f.member_since is not None:
            self._join(f.member_since)

    def _join(self, t: datetime) -> None:
        e = self.f.joined_by
        assert e is not None
        if isinstance(e, OrderPaid):
            en, zh = f"Joined with a first order, {e.order_id}.", f"首笔订单{e.order_id}入会。"
        else:
            en, zh = "Joined by registering.", "注册入会。"
        reason = Reason(code="tier.joined", en=en, zh=zh, evidence=(e.event_id,))
        self._record(0, t, (TierMove.JOINED, (reason,), (e.event_id,), None, None), None)

    def level_before(self, t: datetime) -> int:
        """The tier level held just before instant ``t``."""
        i = bisect_left(self.timeline, t, key=lambda x: x[0])
        return self.timeline[i - 1][1] if i else 0

    def level_at(self, t: datetime) -> int:
        """The tier level held at instant ``t`` (changes at ``t`` included)."""
        i = bisect_right(self.timeline, t, key=lambda x: x[0])
        return self.timeline[i - 1][1] if i else 0


def _tier_run(facts: _Facts) -> _TierReplay:
    replay = _TierReplay(facts)
    replay.run(facts.now)
    return replay


def _warning(r: _TierReplay, now: datetime, explain: bool) -> DowngradeWarning | None:
    if r.review_at is None or r.auto == 0:
        return None
    f, q = r.f, r.q
    in_grace = r.grace_until is not None
    end = r.grace_until if r.grace_until is not None else r._grace_end(r.review_at)
    check_at = max(now, r.review_at)
    level, _ = q.qualified(check_at)
    if level >= r.auto:
        return None
    to = r.auto - 1 if r.tp.downgrade is DowngradeStep.ONE_TIER else level
    o = r.override
    if o is not None and (o.expires is None or o.expires > end):
        after = max(to, o.level) if o.floor else min(to, o.level)
    else:
        after = to
    if after >= r.effective():
        return None
    today = f.day(now)
    periods = q.periods(f.day(check_at))
    period = next((p for p in periods if p.holds(today)), periods[0])
    totals = q.totals(check_at, period)
    held, to_tier = r.levels[r.auto], r.levels[after]
    need = _need(held, totals)
    on = f.day(end)
    cur = f.lp.currency
    if explain:
        short_en = _amount_words(need, cur, held.require, "en") or "a new qualifying order"
        short_zh = _amount_words(need, cur, held.require, "zh") or "新的达标订单"
        win_en, win_zh = q.window_words(period)
        if in_grace:
            by_en, by_zh = f"before {on}", f"在{on}前"
        else:
            review = f.day(r.review_at)
            by_en, by_zh = f"by the review on {review}", f"在{review}审核前"
        reason = Reason(
            code="tier.downgrade_warning",
            en=(
                f"{held.label_en} will be lowered to {to_tier.label_en} on {on} unless "
                f"requalified: {short_en} {win_en}, {by_en}."
            ),
            zh=(f"{held.label_zh}将于{on}降为{to_tier.label_zh}，除非{by_zh}{win_zh}{short_zh}。"),
        )
    else:
        reason = _NO_REASON
    return DowngradeWarning(
        tier=held,
        to_tier=to_tier,
        on=on,
        at=f.local(end),
        review_on=f.day(r.review_at),
        spend_needed=need.spend,
        orders_needed=need.orders,
        points_needed=need.points,
        in_grace=in_grace,
        reason=reason,
    )


_NO_REASON = Reason(code="", en="", zh="")


def _progress(r: _TierReplay, now: datetime, explain: bool) -> TierProgress | None:
    level = r.effective()
    if level + 1 >= len(r.levels):
        return None
    o = r.override
    if o is not None and not o.floor and o.level <= level:
        return None
    nxt = r.levels[level + 1]
    period = r.q.periods(r.f.day(now))[0]
    totals = r.q.totals(now, period)
    need = _need(nxt, totals)
    if explain:
        cur = r.f.lp.currency
        win_en, win_zh = r.q.window_words(period)
        more_en = _amount_words(need, cur, nxt.require, "en") or "one more qualifying event"
        more_zh = _amount_words(need, cur, nxt.require, "zh") or "再有一次达标"
        en = f"{more_en} {win_en} for {nxt.label_en}."
        reason = Reason(
            code="tier.progress",
            en=en[:1].upper() + en[1:],
            zh=f"{win_zh}{more_zh}即可升级为{nxt.label_zh}。",
        )
    else:
        reason = _NO_REASON
    return TierProgress(
        tier=nxt,
        spend_needed=need.spend,
        orders_needed=need.orders,
        points_needed=need.points,
        reason=reason,
    )


def _tier_assessment(r: _TierReplay, now: datetime, explain: bool) -> TierAssessment:
    f = r.f
    level = r.effective()
    tier = r.levels[level]
    q_level, totals = r.q.qualified(now)
    current_period = r.q.periods(f.day(now))[0]
    current = totals if totals.period == current_period else r.q.totals(now, current_period)
    progress = _progress(r, now, explain)  # at now, before the warning looks past it
    warning = _warning(r, now, explain)
    manual = r.override.change if r.override is not None else None
    reasons: list[Reason] = []
    if explain:
        last = next((c for c in reversed(r.changes) if c.tier == tier), None)
        if last is None or (level == 0 and last.move is TierMove.JOINED):
            cur = f.lp.currency
            win_en, win_zh = r.q.window_words(current.period)
            reasons.append(
                Reason(
                    code="tier.base",
                    en=(
                        f"{tier.label_en}: spend {win_en} is {money(current.spend, cur)} "
                        f"over {current.orders} valid order(s); no higher tier reached."
                    ),
                    zh=(
                        f"{tier.label_zh}：{win_zh}消费{money(current.spend, cur)}，"
                        f"有效订单{current.orders}笔，未达到更高等级。"
                    ),
                )
            )
        else:
            reasons.append(last.reasons[0])
        if warning is not None:
            reasons.append(warning.reason)
        elif r.review_at is not None and level == r.auto:
            d = f.day(r.review_at)
            reasons.append(
                Reason(
                    code="tier.review",
                    en=f"Next review of {tier.label_en} on {d}.",
                    zh=f"{tier.label_zh}下次审核日期为{d}。",
                )
            )
        if manual is not None:
            reasons.append(manual.reasons[0])
        if progress is not None:
            reasons.append(progress.reason)
    bounds = [r.next_timer(), r.q.next_window_change(now)]
    valid_until = min((b for b in bounds if b is not None and b > now), default=None)
    return TierAssessment(
        tier=tier,
        qualified=r.levels[q_level],
        since=None if r.since is None or r.last_move is TierMove.JOINED else f.local(r.since),
        move=r.last_move,
        spend=current.spend,
        orders=current.orders,
        points=current.points,
        review_on=None if r.review_at is None else f.day(r.review_at),
        grace_until=None if r.grace_until is None else f.day(r.grace_until),
        warning=warning,
        progress=progress,
        manual=manual,
        reasons=tuple(reasons),
        as_of=now,
        valid_until=None if valid_until is None else f.local(valid_until),
    )


# -- the points replay --------------------------------------------------------------------------


@attrs.define
class _Lot:
    lot_id: str
    kind: PointsEntryKind
    posted_at: datetime
    expires_at: datetime | None
    points: int
    redeemed: int = 0
    clawed_back: int = 0
    expired: int = 0
    repaid: int = 0

    @property
    def remaining(self) -> int:
        return self.points - self.redeemed - self.clawed_back - self.expired - self.repaid

    def freeze(self, tz: tzinfo) -> PointsLot:
        return PointsLot(
            lot_id=self.lot_id,
            kind=self.kind,
            posted_at=self.posted_at.astimezone(tz),
            expires_at=None if self.expires_at is None else self.expires_at.astimezone(tz),
            points=self.points,
            redeemed=self.redeemed,
            clawed_back=self.clawed_back,
            expired=self.expired,
            repaid=self.repaid,
            remaining=self.remaining,
        )


@attrs.define
class _Earning:
    lot: _Lot
    basis: Decimal
    refunded: Decimal = Decimal(0)
    clawed: int = 0  # claw-back owed so far, taken or forgiven


# Order of work at one instant: expire, post, bonus, undo, redeem.
_EXPIRE, _POST, _BONUS, _UNDO, _REDEEM = range(5)


class _PointsReplay:
    """Runs the points rules over time into lots and entries."""

    def __init__(self, facts: _Facts, tiers: _TierReplay, explain: bool):
        self.f = facts
        self.pp = facts.lp.points
        self.tiers = tiers
        self.explain = explain
        self.lots: list[_Lot] = []
        self.open: deque[_Lot] = deque()  # lots with points left, oldest first (and some empty)
        self.debt = 0
        self.balance = 0
        self.entries: list[PointsEntry] = []
        self.earnings: dict[str, _Earning] = {}
        self.before_redemption: dict[str, int] = {}
        self.pending: list[PendingPoints] = []
        self.next_change: datetime | None = None

    # -- moving points

    def _expiry(self, posted: datetime) -> datetime | None:
        months = self.pp.expiry_months
        if months is None:
            return None
        return self.f.midnight(
            self.f.day(posted) + relativedelta(months=months) + timedelta(days=1)
        )

    def _post(
        self, lot_id: str, kind: PointsEntryKind, t: datetime, points: int
    ) -> tuple[_Lot, list[tuple[datetime, int, str, object]]]:
        lot = _Lot(lot_id, kind, t, self._expiry(t), points)
        if self.debt:
            lot.repaid = min(points, self.debt)
            self.debt -= lot.repaid
        self.lots.append(lot)
        timers: list[tuple[datetime, int, str, object]] = []
        if lot.remaining:
            self.open.append(lot)
            if lot.expires_at is not None:
                timers.append((lot.expires_at, _EXPIRE, lot.lot_id, lot))
        return lot, timers

    def _take(self, amount: int, field: str, first: _Lot | None = None) -> int:
        """Take up to ``amount`` points, from ``first`` and then the oldest lots."""
        taken = 0
        lots = self.open if first is None else itertools.chain((first,), self.open)
        for lot in lots:
            if taken == amount:
                break
            n = min(lot.remaining, amount - taken)
            if n:
                setattr(lot, field, getattr(lot, field) + n)
                taken += n
        self._drop_empty()
        return taken

    def _drop_empty(self) -> None:
        """Forget the oldest open lots once they are empty.

        A lot emptied behind a fuller one (a claw-back from its own lot) waits its turn: nothing
        can take from it, and taking from the front stays cheap however many lots are open.
        """
        while self.open and self.open[0].remaining <= 0:
            self.open.popleft()

    def _entry(
        self,
        t: datetime,
        kind: PointsEntryKind,
        points: int,
        ref: str,
        evidence: tuple[str, ...],
        reason: tuple[str, str, str] | None,
    ) -> None:
        self.balance += points
        if not self.explain:
            return
        assert reason is not None
        code, en, zh = reason
        self.entries.append(
            PointsEntry(
                at=self.f.local(t),
                kind=kind,
                points=points,
                balance=self.balance,
                ref=ref,
                evidence=evidence,
                reason=Reason(code=code, en=en, zh=zh, evidence=evidence),
            )
        )

    # -- the work

    def run(self, now: datetime, referrals: Mapping[str, datetime]) -> None:
        f, pp = self.f, self.pp
        work: list[tuple[datetime, int, str, object]] = []
        for o in f.orders.values():
            if not o.in_currency:
                continue
            if o.post_at is not None and o.post_at <= now:
                work.append((o.post_at, _POST, o.order_id, o))
            else:
                self._pend(o, now)
            for r in o.refunds:
                work.append((to_utc(r.at), _UNDO, r.event_id, r))
            if o.cancelled is not None:
                work.append((to_utc(o.cancelled.at), _UNDO, o.cancelled.event_id, o.cancelled))
        if pp.review_bonus:
            seen: set[str] = set()
            for rv in f.reviews:
                key = f"review:{rv.order_id}" if rv.order_id else f"review:{rv.event_id}"
                if key not in seen:
                    seen.add(key)
                    work.append((to_utc(rv.at), _BONUS, key, rv))
        if pp.referral_bonus:
            for rid, ref in f.referred.items():
                converted = referrals.get(rid)
                if converted is not None:
                    t = max(to_utc(ref.at), to_utc(converted))
                    if t <= now:
                        work.append((t, _BONUS, f"referral:{rid}", ref))
                    elif self.next_change is None or t < self.next_change:
                        self.next_change = t
        birthday = f.profile.birthday
        if pp.birthday_bonus and birthday is not None and f.member_since is not None:
            for year in range(f.day(f.member_since).year, f.day(now).year + 2):
                t = f.midnight(birthday.in_year(year))
                if t < f.member_since:
                    continue
                if t > now:
                    if self.next_change is None or t < self.next_change:
                        self.next_change = t
                    break
                work.append((t, _BONUS, f"birthday:{year}", birthday))
        for rd in f.redemptions:
            work.append((to_utc(rd.at), _REDEEM, rd.event_id, rd))
        heapq.heapify(work)
        while work:
            t, _, key, item = heapq.heappop(work)
            if t > now:
                if self.next_change is None or t < self.next_change:
                    self.next_change = t
                break
            match item:
                case _Lot():
                    self._expire(t, item)
                case _Order():
                    for timer in self._earn(t, item):
                        heapq.heappush(work, timer)
                case ReviewPosted() | Referred() | Birthday():
                    for timer in self._bonus(t, key, item):
                        heapq.heappush(work, timer)
                case OrderRefunded() | OrderCancelled():
                    self._undo(t, item)
                case PointsRedeemed():
                    self._redeem(t, item)

    def _pend(self, o: _Order, now: datetime) -> None:
        if o.net(now) <= 0:
            return
        level = self.tiers.level_before(to_utc(o.paid.at))
        points = self._points(o.net(now), level)
        if points <= 0:
            return
        self.pending.append(
            PendingPoints(
                order_id=o.order_id,
                points=points,
                posts_at=None if o.post_at is None else self.f.local(o.post_at),
            )
        )
        if o.post_at is not None and (self.next_change is None or o.post_at < self.next_change):
            self.next_change = o.post_at

    def _points(self, amount: Decimal, level: int) -> int:
        mult = self.f.lp.tiers.levels[level].benefits.points_multiplier
        raw = amount * self.pp.earn_rate * mult
        return int(raw.to_integral_value(ROUND_DOWN))

    def _earn(self, t: datetime, o: _Order) -> list[tuple[datetime, int, str, object]]:
        if o.cancelled is not None and to_utc(o.cancelled.at) < t:
            return []
        basis = o.paid.amount - sum((r.amount for r in o.refunds if to_utc(r.at) < t), Decimal(0))
        if basis <= 0:
            return []
        level = self.tiers.level_before(to_utc(o.paid.at))
        points = self._points(basis, level)
        if points <= 0:
            return []
        lot, timers = self._post(f"earn:{o.order_id}", PointsEntryKind.EARN, t, points)
        self.earnings[o.order_id] = _Earning(lot, basis)
        reason = None
        if self.explain:
            tier = self.f.lp.tiers.levels[level]
            cur = self.f.lp.currency
            mult = tier.benefits.points_multiplier
            rate = self.pp.earn_rate
            unit = money(Decimal(1), cur)
            reason = (
                "points.earn",
                f"Order {o.order_id}: {money(basis, cur)} at {rate:f} per {unit}"
                f" × {mult:f} ({tier.label_en}) = {points:,} points.",
                f"订单{o.order_id}：{money(basis, cur)}，每{unit}积{rate:f}分"
                f" × {mult:f}倍（{tier.label_zh}），共{points:,}分。",
            )
        self._entry(t, PointsEntryKind.EARN, points, o.order_id, (o.paid.event_id,), reason)
        return timers

    def _bonus(
        self, t: datetime, key: str, item: ReviewPosted | Referred | Birthday
    ) -> list[tuple[datetime, int, str, object]]:
        pp = self.pp
        evidence: tuple[str, ...]
        if isinstance(item, ReviewPosted):
            points, evidence = pp.review_bonus, (item.event_id,)
            what_en = f"review of order {item.order_id}" if item.order_id else "a review"
            what_zh = f"评价订单{item.order_id}" if item.order_id else "发表评价"
            reason = (
                "points.bonus.review",
                f"Bonus for {what_en}: {points:,} points.",
                f"{what_zh}奖励{points:,}分。",
            )
        elif isinstance(item, Referred):
            points, evidence = pp.referral_bonus, (item.event_id,)
            rid = item.referred_id
            reason = (
                "points.bonus.referral",
                f"Referred {rid}, who made a first valid order: {points:,} points.",
                f"转介绍的{rid}已成交：奖励{points:,}分。",
            )
        else:
            level = self.tiers.level_at(t)
            tier = self.f.lp.tiers.levels[level]
            if not tier.benefits.birthday_gift:
                return []
            points, evidence = pp.birthday_bonus, ()
            year = key.split(":")[1]
            reason = (
                "points.bonus.birthday",
                f"Birthday bonus {year} ({tier.label_en}): {points:,} points.",
                f"{year}年生日礼（{tier.label_zh}）：{points:,}分。",
            )
        _, timers = self._post(f"bonus:{key}", PointsEntryKind.BONUS, t, points)
        self._entry(t, PointsEntryKind.BONUS, points, key, evidence, reason)
        return timers

    def _undo(self, t: datetime, e: OrderRefunded | OrderCancelled) -> None:
        earning = self.earnings.get(e.order_id)
        if earning is None or earning.clawed >= earning.lot.points:
            return
        full = earning.lot.points
        if isinstance(e, OrderCancelled):
            target = full
        else:
            earning.refunded += e.amount
            if earning.refunded >= earning.basis:
                target = full
            else:
                share = Decimal(full) * earning.refunded / earning.basis
                target = int(share.to_integral_value(ROUND_HALF_UP))
        want = target - earning.clawed
        if want <= 0:
            return
        earning.clawed = target
        taken = self._take(want, "clawed_back", earning.lot)
        short = want - taken
        capped = self.pp.clawback_shortfall is ClawbackShortfall.CAP
        if short and not capped:
            self.debt += short
        points = taken if capped else want
        reason = None
        if self.explain:
            cur = self.f.lp.currency
            if isinstance(e, OrderCancelled):
                en = f"Order {e.order_id} cancelled: {want:,} points clawed back."
                zh = f"订单{e.order_id}已取消：扣回{want:,}分。"
            else:
                m = money(e.amount, cur)
                en = f"Refund of {m} on order {e.order_id}: {want:,} points clawed back."
                zh = f"订单{e.order_id}退款{m}：扣回{want:,}分。"
            if short and capped:
                en += f" {short:,} had already been spent and are forgiven."
                zh += f"其中{short:,}分已使用，不再扣回。"
            elif short:
                en += f" {short:,} had already been spent: the balance goes below zero."
                zh += f"其中{short:,}分已使用，余额为负。"
            reason = ("points.clawback", en, zh)
        if points:
            self._entry(t, PointsEntryKind.CLAWBACK, -points, e.order_id, (e.event_id,), reason)

    def _redeem(self, t: datetime, e: PointsRedeemed) -> None:
        self.before_redemption[e.event_id] = self.balance
        taken = self._take(e.points, "redeemed")
        short = e.points - taken
        self.debt += short
        reason = None
        if self.explain:
            en = f"Redeemed {e.points:,} points ({e.redemption_id})."
            zh = f"兑换{e.points:,}分（{e.redemption_id}）。"
            if short:
                en += f" {short:,} more than the balance: the balance goes below zero."
                zh += f"超出余额{short:,}分，余额为负。"
            reason = ("points.redeem", en, zh)
        self._entry(t, PointsEntryKind.REDEEM, -e.points, e.redemption_id, (e.event_id,), reason)

    def _expire(self, t: datetime, lot: _Lot) -> None:
        n = lot.remaining
        if n <= 0:
            return
        lot.expired += n
        self._drop_empty()
        reason = None
        if self.explain:
            d = self.f.day(lot.posted_at)
            reason = (
                "points.expire",
                f"{n:,} points posted on {d} ({lot.lot_id}) expired.",
                f"{d}获得的{n:,}分（{lot.lot_id}）已过期。",
            )
        self._entry(t, PointsEntryKind.EXPIRE, -n, lot.lot_id, (), reason)

    def valid_until(self, now: datetime) -> datetime | None:
        """The first instant after ``now`` at which time alone may change the points (UTC)."""
        expiries = [x.expires_at for x in self.open if x.expires_at is not None and x.remaining]
        bounds = [b for b in (self.next_change, min(expiries, default=None)) if b is not None]
        return min((b for b in bounds if b > now), default=None)

    def statement(self, now: datetime) -> PointsStatement:
        tz = self.f.tz
        valid_until = self.valid_until(now)
        return PointsStatement(
            balance=self.balance,
            entries=tuple(self.entries),
            lots=tuple(lot.freeze(tz) for lot in self.lots),
            pending=tuple(self.pending),
            as_of=now,
            valid_until=None if valid_until is None else valid_until.astimezone(tz),
        )


# -- public functions ---------------------------------------------------------------------------


def _now(now: datetime) -> datetime:
    return to_utc(require_aware(now, "now"))


def _referrals(referrals: Mapping[str, datetime] | None) -> dict[str, datetime]:
    return {rid: to_utc(require_aware(t, "referrals")) for rid, t in (referrals or {}).items()}


def _facts(history: Sequence[Event], policy: Policy, now: datetime) -> _Facts:
    """The loyalty facts of the history's fold at ``now`` (UTC)."""
    return _Facts(fold(history, policy, now), now)


def assess_tier(history: Sequence[Event], policy: Policy, now: datetime) -> TierAssessment:
    """The customer's tier at ``now``, what qualifies them, the next review and progress.

    Args:
        history: the customer's events, in any order; those after ``now`` are ignored.
        policy: ``policy.loyalty`` and the shop's time zone.
        now: the instant to assess at; aware.
    """
    now = _now(now)
    return tier_from_ledger(fold(history, policy, now), now)


def tier_from_ledger(ledger: Ledger, now: datetime, *, explain: bool = True) -> TierAssessment:
    """:func:`assess_tier` on a history already folded at ``now``."""
    return LoyaltyView(ledger, now).tier(explain=explain)


def tier_history(history: Sequence[Event], policy: Policy, now: datetime) -> tuple[TierChange, ...]:
    """Every tier change up to ``now``, oldest first, with manual moves beside automatic ones.

    Tiers change at a payment that qualifies (or the posting of points, when a tier counts
    points), at a review date once the grace period ends, and at a manual move or its expiry.
    """
    now = _now(now)
    return tier_history_from_ledger(fold(history, policy, now), now)


def tier_history_from_ledger(ledger: Ledger, now: datetime) -> tuple[TierChange, ...]:
    """:func:`tier_history` on a history already folded at ``now``."""
    return LoyaltyView(ledger, now).tier_history()


def points_ledger(
    history: Sequence[Event],
    policy: Policy,
    now: datetime,
    *,
    referrals: Mapping[str, datetime] | None = None,
) -> PointsStatement:
    """The customer's points statement at ``now``: balance, entries, lots and pending points.

    Args:
        history: the customer's events, in any order; those after ``now`` are ignored.
        policy: ``policy.loyalty`` and the shop's time zone.
        now: the instant to assess at; aware.
        referrals: for each customer this one referred, when that customer's first valid order
            was paid; each earns the referral bonus once.
    """
    now = _now(now)
    return points_from_ledger(fold(history, policy, now), now, referrals=referrals)


def points_from_ledger(
    ledger: Ledger, now: datetime, *, referrals: Mapping[str, datetime] | None = None
) -> PointsStatement:
    """:func:`points_ledger` on a history already folded at ``now``."""
    return LoyaltyView(ledger, now).points(referrals)


class LoyaltyView:
    """Tier, tier history and points of one fold at one instant, from one replay of the tiers
    (what a :class:`~lifecycle.CustomerRecord` reads: each part is worked out when first
    asked for)."""

    def __init__(self, ledger: Ledger, now: datetime):
        self._facts = _Facts(ledger, _now(now))
        self._tiers: _TierReplay | None = None

    def _run(self) -> _TierReplay:
        if self._tiers is None:
            self._tiers = _tier_run(self._facts)
        return self._tiers

    def tier(self, *, explain: bool = True) -> TierAssessment:
        """As :func:`tier_from_ledger`."""
        return _tier_assessment(self._run(), self._facts.now, explain=explain)

    def tier_history(self) -> tuple[TierChange, ...]:
        """As :func:`tier_history_from_ledger`."""
        return tuple(self._run().changes)

    def points(self, referrals: Mapping[str, datetime] | None = None) -> PointsStatement:
        """As :func:`points_from_ledger`."""
        replay = _PointsReplay(self._facts, self._run(), explain=True)
        replay.run(self._facts.now, _referrals(referrals))
        return replay.statement(self._facts.now)


@attrs.frozen(kw_only=True)
class LoyaltySummary:
    """A customer's tier and points balance at one instant, as an assessment shows them.

    Attributes:
        tier: the tier, what qualifies for it, and what comes next (see :func:`assess_tier`).
        points: the points balance (see :func:`points_ledger`).
        valid_until: the first later instant at which time alone may change either.
    """

    tier: TierAssessment
    points: int
    valid_until: datetime | None


def loyalty_from_ledger(
    ledger: Ledger,
    now: datetime,
    *,
    referrals: Mapping[str, datetime] | None = None,
    explain: bool = True,
) -> LoyaltySummary:
    """Tier and points balance at ``now`` from a history already folded at ``now``.

    One replay of tiers and points, for callers (such as :func:`lifecycle.assess`) that fold
    the history once for every rule. ``referrals`` as for :func:`points_ledger`;
    ``explain=False`` skips the tier's reasons.
    """
    now = _now(now)
    facts = _Facts(ledger, now)
    tiers = _tier_run(facts)
    tier = _tier_assessment(tiers, now, explain)
    points = _PointsReplay(facts, tiers, explain=False)
    points.run(now, _referrals(referrals))
    bounds = [b for b in (tier.valid_until, points.valid_until(now)) if b is not None]
    return LoyaltySummary(
        tier=tier,
        points=points.balance,
        valid_until=min(bounds, key=to_utc).astimezone(facts.tz) if bounds else None,
    )


def check_loyalty(
    history: Sequence[Event],
    new: Sequence[Event],
    policy: Policy,
    *,
    referrals: Mapping[str, datetime] | None = None,
) -> None:
    """Refuse new loyalty events that cannot stand, before they are recorded.

    A redemption may not take more points than the balance holds at its instant, nor reuse a
    redemption id (under another event id, or under its own with a different body: the same
    redemption given again is fine); a manual move must name a tier of the policy, and the base
    tier cannot be removed.

    The balance is the one of ``history``, so whether a redemption stands depends on what was
    recorded before it: redemptions are the only events whose acceptance depends on arrival
    order.

    Raises:
        InsufficientPoints: a redemption larger than the balance.
        ConflictingEvent: a redemption whose event id is already recorded with another body.
        InvalidEvent: any other refusal, naming the event and the field.
    """
    levels = policy.loyalty.tiers
    for e in new:
        if isinstance(e, TierGranted | TierRevoked):
            idx = levels.index(e.tier)
            if idx is None:
                keys = [t.key for t in levels.levels]
                raise InvalidEvent(
                    f"no tier {e.tier!r} in the policy; use one of {keys}",
                    field="tier",
                    event_id=e.event_id,
                )
            if idx == 0 and isinstance(e, TierRevoked):
                raise InvalidEvent(
                    "the base tier cannot be removed", field="tier", event_id=e.event_id
                )
    redemptions = [e for e in new if isinstance(e, PointsRedeemed)]
    if not redemptions:
        return
    recorded = {e.event_id: e for e in history}
    taken: dict[str, PointsRedeemed] = {
        e.redemption_id: e for e in history if isinstance(e, PointsRedeemed)
    }
    for e in redemptions:
        other = taken.setdefault(e.redemption_id, e)
        if other == e:
            continue  # the redemption itself, given again: recording it changes nothing
        if other.event_id == e.event_id:
            raise ConflictingEvent(e.event_id)
        raise InvalidEvent(
            f"redemption {e.redemption_id!r} is already recorded as {other.event_id!r}",
            field="redemption_id",
            event_id=e.event_id,
        )
    everything = [*history, *(e for e in new if recorded.get(e.event_id) != e)]
    now = max(to_utc(e.at) for e in everything)
    facts = _facts(everything, policy, now)
    replay = _PointsReplay(facts, _tier_run(facts), explain=False)
    replay.run(now, _referrals(referrals))
    for e in sorted(redemptions, key=lambda x: to_utc(x.at)):
        balance = replay.before_redemption.get(e.event_id, 0)
        if e.points > balance:
            raise InsufficientPoints(event_id=e.event_id, balance=balance, requested=e.points)


def tier_table(policy: LoyaltyPolicy | None = None) -> str:
    """The tiers under ``policy`` as Markdown, as the docs show them."""
    p = policy or LoyaltyPolicy()
    tp = p.tiers
    rows = [
        "| tier | 中文 | qualifies with | discount | points × | free shipping | dedicated service | birthday gift |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in tp.levels:
        parts = []
        if t.min_spend is not None:
            parts.append(f"{money(t.min_spend, p.currency)} spend")
        if t.min_orders is not None:
            parts.append(f"{t.min_orders} orders")
        if t.min_points is not None:
            parts.append(f"{t.min_points:,} points")
        qualifies = (" and " if t.require == "all" else " or ").join(parts) or "(everyone)"
        b = t.benefits
        rows.append(
            f"| {t.label_en} | {t.label_zh} | {qualifies} | {b.discount_percent:f}% "
            f"| {b.points_multiplier:f} | {'yes' if b.free_shipping else 'no'} "
            f"| {'yes' if b.dedicated_service else 'no'} | {'yes' if b.birthday_gift else 'no'} |"
        )
    return "\n".join(rows)
