"""Which customers a day's plan can concern: a bound, per rule, on when it can say something.

Planning a day for a large shop mostly confirms that nothing is due: most customers had no
order shipped, no birthday and no change of stage in the days a plan looks at. This module
finds, for a whole shop at once and with array arithmetic over the customers' event instants,
the customers some rule *may* give an occurrence for in the plan's window (due by its end,
still valid after its floor); every other customer's plan is known without evaluating a rule:
nothing due, nothing held, planned again at the customer's midnight after the horizon.

The bounds only ever widen: each is derived from where the rule's own arithmetic anchors its
occurrences (an event's instant plus the rule's delay, a yearly date, the stage's time
boundaries), with a margin of days for calendar days and time zones, and a rule kind this
module does not know (a host's rule as code, a subclass) reaches everyone. The decisions that
matter (consent, quiet hours, caps, holds, duplicates) are the reference planner's, made for
the customers reached, so the plan is the one :func:`~lifecycle.cadence.planner.plan_customers`
gives; a property test checks it on generated shops.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from itertools import pairwise
from typing import Final

import numpy as np
import numpy.typing as npt

from lifecycle._ledger import customer_zone, fold
from lifecycle._time import local_date, require_aware, to_utc
from lifecycle.cadence.rules import (
    AfterEvent,
    Anniversary,
    CadenceRule,
    Campaign,
    EventTrigger,
    Festival,
    Overdue,
    Periodic,
    PointsExpiry,
    Replenishment,
    Rule,
    SequenceStart,
    StageEntry,
    StepSequence,
    TierDowngradeWarning,
    TierUpgrade,
    WinBack,
    upgrade_posting,
)
from lifecycle.calendar import festivals
from lifecycle.events import (
    ComplaintOpened,
    ComplaintResolved,
    ConsentChanged,
    Contacted,
    CustomerErased,
    CustomerRegistered,
    Engaged,
    Event,
    LeadCaptured,
    OrderCancelled,
    OrderDelivered,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
    OrderShipped,
    OwnerAssigned,
    PartnershipSigned,
    PointsRedeemed,
    ProfileUpdated,
    Replied,
    ReturnedToPool,
    TierGranted,
    TierRevoked,
    sort_key,
)
from lifecycle.policy import Policy, TierReview
from lifecycle.stages import NO_COMPLAINT, NO_STAGE_FACT, STAGE_RULES, StageFacts
from lifecycle.status import (
    STATUS_EVENTS,
    AliveModel,
    Rhythm,
    at_risk_day,
    at_risk_since,
    classify,
    status_from_ledger,
)
from lifecycle.vocabulary import ESCALATION_TEMPLATE, OWNER_CHANNELS, Stage, Status

__all__ = ["Reach", "reach"]

_DAY: Final = 86400.0
#: Codes of the statuses now, for :meth:`Reach.with_status` (active stands for won back too).
_STATUS_CODE: Final = {Status.ACTIVE: 1, Status.WON_BACK: 1, Status.AT_RISK: 2, Status.LAPSED: 3}
_NO_STATUS: Final = 0
_UNSURE: Final = -1
#: Margin, in days, around every bound that goes through a calendar day (a customer's zone is
#: at most 14 hours from UTC, a wall time at most a day into it, 29 February moves a day).
_SLACK: Final = 3.0

#: The event classes the bounds anchor on, by a small code.
_KINDS: Final[tuple[type[Event], ...]] = (
    OrderPlaced,
    OrderPaid,
    OrderShipped,
    OrderDelivered,
    ComplaintOpened,
    ComplaintResolved,
    Contacted,
    Engaged,
    LeadCaptured,
    CustomerRegistered,
    ProfileUpdated,
    TierGranted,
    OrderCancelled,
    OrderRefunded,
    PartnershipSigned,
    CustomerErased,
    ConsentChanged,
    Replied,
    OwnerAssigned,
    ReturnedToPool,
    TierRevoked,
    PointsRedeemed,
)
_CODE: Final = {k: i for i, k in enumerate(_KINDS)}
_OTHER: Final = len(_KINDS)

_ORDER_TRIGGERS: Final = {
    EventTrigger.ORDER_PLACED: OrderPlaced,
    EventTrigger.ORDER_PAID: OrderPaid,
    EventTrigger.ORDER_SHIPPED: OrderShipped,
    EventTrigger.ORDER_DELIVERED: OrderDelivered,
    EventTrigger.COMPLAINT_OPENED: ComplaintOpened,
    EventTrigger.COMPLAINT_RESOLVED: ComplaintResolved,
}


def _seconds(at: datetime) -> float:
    return at.timestamp()


class _Columns:
    """The shop's events as arrays: which customer, when (UTC seconds), which class."""

    def __init__(
        self,
        ids: Sequence[str],
        histories: Mapping[str, Sequence[Event]],
        referrals: Mapping[str, Mapping[str, datetime]],
        now: datetime,
        policy: Policy,
    ):
        code = _CODE
        self.ids = ids
        self.histories = histories
        flat = [e for cid in ids for e in histories[cid]]
        sizes = np.fromiter((len(histories[cid]) for cid in ids), np.int64, len(ids))
        self.cust = np.repeat(np.arange(len(ids), dtype=np.int64), sizes)
        # The instant from the replay key, already in UTC: four times cheaper than from a
        # wall time in a named zone, and the shop has millions of events.
        self.when = np.fromiter((sort_key(e)[0].timestamp() for e in flat), np.float64, len(flat))
        self.kind = np.fromiter((code.get(type(e), _OTHER) for e in flat), np.int16, len(flat))
        cust = self.cust.tolist()
        when = self.when.tolist()
        self.paid: list[tuple[int, float, OrderPaid]] = []
        for j in np.flatnonzero(self.kind == code[OrderPaid]).tolist():
            e = flat[j]
            assert isinstance(e, OrderPaid)
            self.paid.append((cust[j], when[j], e))
        self.expected: list[tuple[int, float]] = []
        for j in np.flatnonzero(self.kind == code[OrderShipped]).tolist():
            e = flat[j]
            assert isinstance(e, OrderShipped)
            if e.expected_delivery is not None:
                self.expected.append((cust[j], _seconds(e.expected_delivery)))
        # Contacts as the ledger keeps them (an escalation reached the owner's lead, not the
        # customer), at or before now.
        contacted = np.flatnonzero(self.kind == code[Contacted])
        kept = np.fromiter(
            (getattr(flat[j], "template", None) != ESCALATION_TEMPLATE for j in contacted.tolist()),
            bool,
            len(contacted),
        )
        contacted = contacted[kept & (self.when[contacted] <= now.timestamp())]
        self.contact_cust = self.cust[contacted]
        self.contact_when = self.when[contacted]
        self.birthdays: list[tuple[int, int, int]] = []
        zones: dict[int, list[tuple[tuple[datetime, int, str], Event]]] = {}
        lunar: list[int] = []
        profiled = np.isin(self.kind, [code[CustomerRegistered], code[ProfileUpdated]])
        for j in np.flatnonzero(profiled).tolist():
            e = flat[j]
            assert isinstance(e, CustomerRegistered | ProfileUpdated)
            i = cust[j]
            b = e.profile.birthday
            if b is not None:
                self.birthdays.append((i, b.month, b.day))
            if e.profile.lunar_birthday:
                lunar.append(i)
            if e.profile.timezone:
                zones.setdefault(i, []).append((sort_key(e), e))
        self.n = len(ids)
        self.lunar = lunar
        # The customers' zones, as the ledger decides them (the latest profile naming one at
        # or before now), for the customers whose profiles name one.
        self.zones: dict[int, tzinfo] = {}
        for i, named in zones.items():
            named.sort(key=lambda x: x[0])
            upto = [e for _, e in named if to_utc(e.at) <= now]
            if upto:
                self.zones[i] = customer_zone(upto, policy)
        # Conversions of the customers each one referred: instants some rules anchor on.
        index = {cid: i for i, cid in enumerate(ids)}
        conv = [
            (index[cid], _seconds(t))
            for cid, mine in referrals.items()
            if cid in index
            for t in mine.values()
        ]
        self.conv_cust = np.asarray([c for c, _ in conv], dtype=np.int64)
        self.conv_when = np.asarray([t for _, t in conv], dtype=np.float64)

    def of(self, *kinds: type[Event]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """(customer, instant) of the events of ``kinds``."""
        mask = np.isin(self.kind, [_CODE[k] for k in kinds])
        return self.cust[mask], self.when[mask]


class Reach:
    """The customers (by position) some rule may give an occurrence for in the window."""

    def __init__(
        self, cols: _Columns, policy: Policy, now: datetime, floor: datetime, end: datetime
    ):
        self.cols = cols
        self.policy = policy
        self.now = now
        self._stages: dict[Stage, npt.NDArray[np.bool_]] | None = None
        self._at_risk: npt.NDArray[np.float64] | None = None
        self._status: npt.NDArray[np.int8] | None = None
        self._rise: tuple[npt.NDArray[np.bool_] | None] | None = None
        self._payments: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None = None
        self._clean: npt.NDArray[np.bool_] | None = None
        self.floor = _seconds(floor)
        self.end = _seconds(end)
        self.floor_day = floor.astimezone(UTC).date()
        self.end_day = end.astimezone(UTC).date()
        self.hit = np.zeros(cols.n, dtype=bool)

    # -- bounds -----------------------------------------------------------------------------

    def everyone(self) -> None:
        self.hit[:] = True

    def anchored(
        self,
        cust: npt.NDArray[np.int64],
        when: npt.NDArray[np.float64],
        first: float,
        last: float,
        valid: float,
    ) -> None:
        """Occurrences due between ``first`` and ``last`` seconds after an anchor and valid
        ``valid`` seconds after they are due: the customers with an anchor whose span meets
        the window."""
        if not len(cust):
            return
        margin = _SLACK * _DAY
        meets = (when + first <= self.end + margin) & (when + last + valid > self.floor - margin)
        self.hit[cust[meets]] = True

    def yearly(
        self,
        cust: npt.NDArray[np.int64],
        month: npt.NDArray[np.int64],
        day: npt.NDArray[np.int64],
        before: int,
        slack: int = int(_SLACK),
    ) -> None:
        """Yearly dates greeted ``before`` days early and valid to the end of the day: the
        customers with a date whose greeting meets the window, in any year."""
        if not len(cust):
            return
        lo = self.floor_day - timedelta(days=slack)
        hi = self.end_day + timedelta(days=before + slack)
        near: set[int] = set()
        d = lo
        while d <= hi:
            near.add(d.month * 32 + d.day)
            d += timedelta(days=1)
        if near & {2 * 32 + 28, 3 * 32 + 1}:
            near.add(2 * 32 + 29)  # 29 February is greeted on 28 February or 1 March
        meets = np.isin(month * 32 + day, list(near))
        self.hit[cust[meets]] = True

    def on_days(self, days: Iterable[date], before: int) -> bool:
        """Whether a day of ``days`` greeted ``before`` days early meets the window."""
        slack = timedelta(days=int(_SLACK))
        lo, hi = self.floor_day - slack, self.end_day + slack
        return any(d - timedelta(days=before) <= hi and d >= lo for d in days)

    def in_stages(self, stages: Iterable[Stage]) -> npt.NDArray[np.bool_]:
        """The customers who may be in one of ``stages`` now.

        The stage table's own criteria (:data:`lifecycle.stages.STAGE_RULES`) are read twice.
        On facts that can only be more favourable than the customer's (every payment a valid
        order on a day of its own, the span widened by a day, no idle days, no complaint, the
        best NPS answer and reviews), a stage whose criterion fails fails on the customer's
        own facts too (each test is monotone). On facts that can only be less favourable (for
        a customer with no order cancelled or refunded: their payments as valid orders, on as
        many days as lie more than two days apart, the span narrowed and the idle days widened
        by a day or two; nothing else), a stage whose criterion holds holds on their own facts
        too, so the customer is in that stage or a higher one, never a lower one.
        """
        if self._stages is None:
            self._stages = self._possible_stages()
        out = np.zeros(self.cols.n, dtype=bool)
        for stage in stages:
            out |= self._stages[stage]
        return out

    def payments(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """(customer, instant) of the payments at or before now, by customer then instant."""
        if self._payments is None:
            c = self.cols
            paid = (c.kind == _CODE[OrderPaid]) & (c.when <= _seconds(self.now))
            pc, pt = c.cust[paid], c.when[paid]
            order = np.lexsort((pt, pc))
            self._payments = pc[order], pt[order]
        return self._payments

    def clean(self) -> npt.NDArray[np.bool_]:
        """The customers who paid and every one of whose payments by now is a valid order of
        its own (no order cancelled or refunded, no erasure, no order paid twice): their valid
        orders are their payments, and their valid days the days of their payments."""
        if self._clean is not None:
            return self._clean
        c = self.cols
        now = _seconds(self.now)
        clean = np.zeros(c.n, dtype=bool)
        clean[self.payments()[0]] = True
        clean[c.of(OrderCancelled, OrderRefunded, CustomerErased)[0]] = False
        once: dict[int, set[str]] = {}
        for i, t, e in c.paid:
            if t <= now and clean[i]:
                ids = once.setdefault(i, set())
                if e.order_id in ids:
                    clean[i] = False  # paid twice: the ledger keeps one payment
                ids.add(e.order_id)
        self._clean = clean
        return clean

    def _possible_stages(self) -> dict[Stage, npt.NDArray[np.bool_]]:
        c = self.cols
        n = c.n
        now = _seconds(self.now)
        sc, st = self.payments()
        orders = np.bincount(sc, minlength=n).astype(np.int64)
        first = np.full(n, np.inf)
        last = np.full(n, -np.inf)
        np.minimum.at(first, sc, st)
        np.maximum.at(last, sc, st)
        bought = orders > 0
        elapsed = np.where(bought, last - first, 0.0) / _DAY
        signed = (c.kind == _CODE[PartnershipSigned]) & (c.when <= now)
        partner = np.zeros(n, dtype=bool)
        partner[c.cust[signed]] = True
        converted = np.bincount(c.conv_cust, minlength=n).astype(np.int64)
        zeros = np.zeros(n, dtype=np.int64)
        # The last valid day is a payment's day, so the idle days are at least the whole days
        # since the last payment, less one for the calendar days of the customer's zone.
        idle = np.where(bought, np.maximum(np.floor((now - last) / _DAY) - 1, 0), 0)
        best = StageFacts(
            partner=partner,
            converted=converted,
            orders=orders,
            days=orders,
            span=np.where(bought, np.floor(elapsed) + 2, 0).astype(np.int64),
            idle=idle.astype(np.int64),
            nps=np.full(n, 10, dtype=np.int64),
            reviews=np.full(n, 1 << 30, dtype=np.int64),
            review_average=np.full(n, 5.0),
            open_complaints=zeros,
            complaint_age=np.full(n, NO_COMPLAINT, dtype=np.int64),
            engaged=np.ones(n, dtype=bool),
        )
        # The less favourable facts, for customers whose payments are all valid orders.
        clean = self.clean()
        apart = (sc[1:] == sc[:-1]) & (st[1:] - st[:-1] > 2 * _DAY)
        days = np.where(bought, 1 + np.bincount(sc[1:][apart], minlength=n), 0)
        never = np.zeros(n, dtype=bool)
        worst = StageFacts(
            partner=never,
            converted=zeros,
            orders=np.where(clean, orders, 0),
            days=np.where(clean, days, 0),
            span=np.where(clean, np.maximum(np.floor(elapsed) - 1, 0), 0).astype(np.int64),
            idle=np.where(clean, np.floor((now - last) / _DAY) + 2, NO_COMPLAINT).astype(np.int64),
            nps=np.full(n, -1, dtype=np.int64),
            reviews=zeros,
            review_average=np.zeros(n),
            open_complaints=np.full(n, 1 << 30, dtype=np.int64),
            complaint_age=zeros,
            engaged=never,
        )
        p = self.policy.stage
        out: dict[Stage, npt.NDArray[np.bool_]] = {}
        higher = np.zeros(n, dtype=bool)  # certainly in a stage above the one looked at
        for rule in STAGE_RULES:
            may = np.broadcast_to(np.asarray(rule.holds(best, p)), (n,))
            out[rule.stage] = may & ~higher
            higher = higher | np.broadcast_to(np.asarray(rule.holds(worst, p)), (n,))
        return out

    def at_risk(self) -> npt.NDArray[np.float64]:
        """For each customer, the instant (UTC seconds) starting the day they turned at risk
        by the rhythm (:func:`lifecycle.status.at_risk_day`, as the status rule decides it):
        ``nan`` while active, ``-inf`` when it cannot be told without their ledger (they paid,
        but not every payment is a valid order of its own: :meth:`clean`)."""
        if self._at_risk is not None:
            return self._at_risk
        c = self.cols
        now = self.now
        shop = customer_zone((), self.policy)
        unsure = np.zeros(c.n, dtype=bool)
        unsure[self.payments()[0]] = True
        unsure &= ~self.clean()
        paid: dict[int, list[OrderPaid]] = {}
        for i, _, e in c.paid:
            if not unsure[i] and to_utc(e.at) <= now:
                paid.setdefault(i, []).append(e)
        out = np.full(c.n, np.nan)
        out[unsure] = -np.inf
        # The status now, as :func:`lifecycle.status.status_from_ledger` classifies it without
        # a model: _NO_STATUS (no valid order), or a code of _STATUS_CODE; _UNSURE when it
        # cannot be told without the customer's ledger.
        now_status = np.full(c.n, _NO_STATUS, dtype=np.int8)
        now_status[unsure] = _UNSURE
        status = self.policy.status
        for i, orders in paid.items():
            tz = c.zones.get(i, shop)
            days = sorted({local_date(o.at, tz) for o in orders})
            today = local_date(now, tz)
            turned = at_risk_day(days, today, status)
            if turned is not None:
                out[i] = datetime(turned.year, turned.month, turned.day, tzinfo=UTC).timestamp()
            rhythm = Rhythm(status)
            rhythm.gaps = sorted((b - a).days for a, b in pairwise(days))
            threshold, _ = rhythm.threshold()
            # Active and won back are told apart by the last pause: both count as active here.
            now_status[i] = _STATUS_CODE[classify((today - days[-1]).days, threshold, status, None)]
        self._at_risk = out
        self._status = now_status
        return out

    def settle(self, which: npt.NDArray[np.bool_]) -> None:
        """Fold the ledgers of the customers of ``which`` whose turn at risk :meth:`at_risk`
        could not tell (not :meth:`clean`), from the events the status reads
        (:data:`lifecycle.status.STATUS_EVENTS`), and read their turn and status as the record
        does (:func:`lifecycle.status.at_risk_since`, :func:`status_from_ledger`)."""
        turned = self.at_risk()
        assert self._status is not None
        c = self.cols
        for i in np.flatnonzero(which & (self._status == _UNSURE)).tolist():
            mine = [e for e in c.histories[c.ids[i]] if isinstance(e, STATUS_EVENTS)]
            ledger = fold(mine, self.policy, self.now)
            day = at_risk_since(ledger, self.now)
            turned[i] = (
                np.nan
                if day is None
                else datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
            )
            status = status_from_ledger(ledger, self.now, explain=False).status
            self._status[i] = _NO_STATUS if status is None else _STATUS_CODE[status]

    def with_status(self, statuses: frozenset[Status]) -> npt.NDArray[np.bool_]:
        """The customers whose status now (without a value model) may be one of ``statuses``:
        a rule's ``statuses`` filter, as :meth:`lifecycle.cadence.rules.Rule.applies` reads it."""
        self.at_risk()
        assert self._status is not None
        codes = {_STATUS_CODE[s] for s in statuses if s is not Status.WON_BACK}
        if Status.WON_BACK in statuses:
            codes.add(_STATUS_CODE[Status.ACTIVE])
        return np.isin(self._status, [_UNSURE, *codes])

    def may_rise(self) -> npt.NDArray[np.bool_] | None:
        """The customers who may ever have reached a tier above the base, when the tiers ask
        for spend alone: those who paid, in the loyalty currency, at least the least spend a
        tier asks (refunds only lower the spend that counts); ``None`` when tiers ask more."""
        if self._rise is not None:
            return self._rise[0]
        tp = self.policy.loyalty.tiers
        spends = [t.min_spend for t in tp.levels[1:]]
        able: npt.NDArray[np.bool_] | None = None
        if spends and all(
            t.min_orders is None and t.min_points is None and t.min_spend is not None
            for t in tp.levels[1:]
        ):
            least = float(min(x for x in spends if x is not None))
            currency = self.policy.loyalty.currency
            total = np.zeros(self.cols.n)
            for i, _, e in self.cols.paid:
                if e.currency == currency:
                    total[i] += float(e.amount)
            able = total >= least * (1 - 1e-9)
        self._rise = (able,)
        return able

    # -- anchors ----------------------------------------------------------------------------

    def stage_moves(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Every instant at which a customer's stage may have changed: their first event, the
        events that change a fact the stage table reads, and the conversions of those they
        referred (the stage history is judged at those instants and at the time boundaries
        after them, which :meth:`stage_changes` adds)."""
        c = self.cols
        moves = ~np.isin(c.kind, [_CODE[k] for k in NO_STAGE_FACT])
        first = np.full(c.n, np.inf)
        np.minimum.at(first, c.cust, c.when)
        seen = np.isfinite(first)
        return (
            np.concatenate([c.cust[moves], c.conv_cust, np.flatnonzero(seen)]),
            np.concatenate([c.when[moves], c.conv_when, first[seen]]),
        )

    def idle_anchors(self, idle: float) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The payments whose day may have been the last valid day when the idle limit
        (``idle`` seconds) ran out after it: time's only boundary on a stage besides the
        complaint window. The last valid day is always a payment's day; for a customer whose
        payments are all valid orders (:meth:`clean`), a payment followed by another within
        the limit (less a day for calendar days) never was."""
        sc, st = self.payments()
        last = np.ones(len(sc), dtype=bool)
        last[:-1] = (sc[1:] != sc[:-1]) | (st[1:] - st[:-1] >= idle - _DAY)
        keep = last | ~self.clean()[sc]
        return sc[keep], st[keep]

    def stage_changes(self, policy: Policy, offset: float, valid: float) -> None:
        """Occurrences due ``offset`` seconds after a stage change, valid ``valid`` seconds."""
        cust, when = self.stage_moves()
        p = policy.stage
        self.anchored(cust, when, offset, offset, valid)
        # The midnight starting the day ``n`` days after an anchor's day: at most a day before
        # or ``n`` days after the anchor (the margin takes in a zone's shifts).
        idle = p.long_term_max_idle_days * _DAY
        pc, pt = self.idle_anchors(idle)
        self.anchored(pc, pt, idle + offset, idle + offset + _DAY, valid)
        cc, cw = self.cols.of(ComplaintOpened)
        quiet = p.complaint_free_days * _DAY
        self.anchored(cc, cw, quiet + offset, quiet + offset + _DAY, valid)


def _rule_reach(r: Reach, rule: CadenceRule, policy: Policy, model: AliveModel | None) -> None:
    """Mark the customers ``rule`` may reach in the window."""
    c = r.cols
    kind = type(rule)
    hours = 3600.0
    if kind is AfterEvent:
        assert isinstance(rule, AfterEvent)
        delay, valid = rule.delay_hours * hours, rule.valid_hours * hours
        if rule.on is EventTrigger.REFERRAL_CONVERTED:
            r.anchored(c.conv_cust, c.conv_when, delay, delay, valid)
        else:
            r.anchored(*c.of(_ORDER_TRIGGERS[rule.on]), delay, delay, valid)
    elif kind is Overdue:
        assert isinstance(rule, Overdue)
        cust = np.asarray([i for i, _ in c.expected], dtype=np.int64)
        when = np.asarray([t for _, t in c.expected], dtype=np.float64)
        grace = rule.grace_days * _DAY
        r.anchored(cust, when, grace, grace, rule.valid_hours * hours)
    elif kind is Anniversary:
        assert isinstance(rule, Anniversary)
        if rule.of == "birthday":
            r.hit[c.lunar] = True  # lunar birthdays move against the solar calendar
            cust = np.asarray([i for i, _, _ in c.birthdays], dtype=np.int64)
            month = np.asarray([m for _, m, _ in c.birthdays], dtype=np.int64)
            day = np.asarray([d for _, _, d in c.birthdays], dtype=np.int64)
            # The greeting is due on a local day (less the lead) by the window's end and valid
            # to the end of the local day after its floor: a zone's local day is at most a day
            # from the UTC day, so a day of margin each side is enough.
            slack = 1
        else:  # the first valid order is one of the payments; the first, when all are valid
            cust, when = c.of(OrderPaid)
            pay_c, pay_t = r.payments()
            spotless = r.clean()
            earliest = np.ones(len(pay_c), dtype=bool)
            earliest[1:] = pay_c[1:] != pay_c[:-1]
            earliest &= spotless[pay_c]
            others = ~spotless[cust]
            cust = np.concatenate([cust[others], pay_c[earliest]])
            when = np.concatenate([when[others], pay_t[earliest]])
            month, day = _month_day(when, 0)
            slack = 2  # and the payment's local day is at most a day from its UTC day
        r.yearly(cust, month, day, rule.lead_days, slack=slack)
    elif kind is Festival:
        assert isinstance(rule, Festival)
        years = range(r.floor_day.year - 1, r.end_day.year + 2)
        try:
            days = [
                h.day
                for y in years
                for h in festivals(rule.calendar, y)
                if not rule.names or h.key in rule.names
            ]
        except Exception:  # the planner reports the rule's error for each customer
            r.everyone()
            return
        if r.on_days(days, rule.lead_days):
            r.everyone()
    elif kind is Campaign:
        assert isinstance(rule, Campaign)
        margin = timedelta(days=_SLACK)
        if rule.start <= _instant(r.end) + margin and rule.end > _instant(r.floor) - margin:
            r.everyone()
    elif kind is StepSequence:
        assert isinstance(rule, StepSequence)
        anchor = {
            SequenceStart.REGISTERED: CustomerRegistered,
            SequenceStart.LEAD: LeadCaptured,
            SequenceStart.ENGAGED: Engaged,
            SequenceStart.FIRST_ORDER: OrderPaid,
        }[rule.start]
        first = rule.steps[0].after_days * _DAY
        last = rule.steps[-1].after_days * _DAY
        r.anchored(*c.of(anchor), first, last, rule.valid_hours * hours)
    elif kind is Replenishment:
        assert isinstance(rule, Replenishment)
        cycles = rule.cycles
        cust_l: list[int] = []
        when_l: list[float] = []
        for i, t, e in c.paid:
            for item in (*e.items, *e.categories):
                cycle = cycles.get(item)
                if cycle is not None:
                    cust_l.append(i)
                    when_l.append(t + max(cycle - rule.lead_days, 0) * _DAY)
        r.anchored(
            np.asarray(cust_l, dtype=np.int64),
            np.asarray(when_l, dtype=np.float64),
            0.0,
            0.0,
            rule.valid_hours * hours,
        )
    elif kind is WinBack:
        assert isinstance(rule, WinBack)
        cust, when = c.of(OrderPaid)
        if model is not None:  # P(alive) may turn at any time after a purchase
            r.hit[cust] = True
            return
        turned = r.at_risk()
        unsure = np.isneginf(turned)
        # Otherwise at risk (or lapsed) from a day after the last valid order, at the latest
        # the day after ``lapsed_days``; sent ``after_days`` later at the rule's wall time.
        after = rule.after_days * _DAY
        lapsed = (policy.status.lapsed_days + 2) * _DAY
        valid = rule.valid_hours * hours + _DAY
        # The customers this wide bound reaches have their ledgers folded, for the turn and
        # status the rule reads.
        keep, r.hit = r.hit, np.zeros(c.n, dtype=bool)
        mine = unsure[cust]
        r.anchored(cust[mine], when[mine], after, after + lapsed, valid)
        wide, r.hit = r.hit, keep
        r.settle(wide)
        known = np.isfinite(turned)
        idx = np.flatnonzero(known)
        r.anchored(idx, turned[known], after, after + _DAY, valid)
    elif kind is StageEntry:
        assert isinstance(rule, StageEntry)
        delay = rule.delay_hours * hours
        r.stage_changes(policy, delay, rule.valid_hours * hours)
    elif kind is Periodic:
        assert isinstance(rule, Periodic)
        if rule.after_days:
            steps = [b - a for a, b in zip(rule.after_days, rule.after_days[1:], strict=False)]
            valid = max(rule.valid_hours * hours, _DAY)
            first = rule.after_days[0] * _DAY
            r.anchored(*c.of(Engaged), first, first, valid)
            if steps:
                r.anchored(*c.of(Contacted), min(steps) * _DAY, max(steps) * _DAY, valid)
        else:
            assert rule.every_days is not None
            every = rule.every_days * _DAY
            # Due ``every_days`` after the last contact by now or, for a customer never
            # contacted, after the entry into the stage.
            latest = np.full(c.n, -np.inf)
            np.maximum.at(latest, c.contact_cust, c.contact_when)
            contacted = np.isfinite(latest)
            idx = np.flatnonzero(contacted)
            r.anchored(idx, latest[contacted], every, every, every)
            keep, r.hit = r.hit, np.zeros(c.n, dtype=bool)
            r.stage_changes(policy, every, every)
            staged, r.hit = r.hit, keep
            r.hit |= staged & ~contacted
    elif kind is TierUpgrade:
        assert isinstance(rule, TierUpgrade)
        posting = upgrade_posting(policy) * _DAY
        cust, when = c.of(OrderPaid)
        able = r.may_rise()
        if able is not None:
            cust, when = cust[able[cust]], when[able[cust]]
        r.anchored(cust, when, 0.0, posting, rule.valid_hours * hours)
    elif kind is TierDowngradeWarning:
        assert isinstance(rule, TierDowngradeWarning)
        _tier_warnings(r, rule, policy)
    elif kind is PointsExpiry:
        assert isinstance(rule, PointsExpiry)
        months = policy.loyalty.points.expiry_months
        if months is None:
            return
        # The rule looks only at customers with a payment this old (its own early exit).
        cust, when = c.of(OrderPaid)
        oldest = _seconds(_instant(r.end)) + (rule.days_before - 28 * months) * _DAY
        r.hit[cust[when <= oldest + _SLACK * _DAY]] = True
    else:  # a rule this module has no bound for reaches everyone
        r.everyone()


def _tier_warnings(r: Reach, rule: TierDowngradeWarning, policy: Policy) -> None:
    """Downgrade warnings: due ``days_before`` the end of a tier's grace after a review.

    A tier is reviewed on the anniversaries of the instant it was reached, and lowered when
    the grace after a failed review ends; it is reached when a payment (or its points'
    posting) lifts it, or when such a lowering ends. So the day a warning ends falls, in any
    year, ``m`` graces after a payment's day (or its posting's), for ``m`` from 1 to the
    number of tiers above the base; the margin grows by a day for each grace (leap years).
    """
    c = r.cols
    tp = policy.loyalty.tiers
    cust, when = c.of(OrderPaid, CustomerRegistered)
    if tp.review is not TierReview.TIER_ANNIVERSARY or tp.review_months % 12:
        r.hit[cust] = True
        return
    bases_c = [cust]
    bases_t = [when]
    if any(t.min_points is not None for t in tp.levels):  # points post after delivery
        dc, dw = c.of(OrderDelivered)
        for k in range(policy.loyalty.points.return_window_days + 1):
            bases_c.append(dc)
            bases_t.append(dw + k * _DAY)
    able = r.may_rise()
    keep = None if able is None else able[np.concatenate(bases_c)]
    base_c = np.concatenate(bases_c)
    base_t = np.concatenate(bases_t)
    if keep is not None:
        base_c, base_t = base_c[keep], base_t[keep]
    above = len(tp.levels) - 1
    for m in range(1, above + 1):
        month, day = _month_day(base_t, m * tp.grace_days)
        r.yearly(base_c, month, day, rule.days_before, slack=int(_SLACK) + above)


_BOUNDED: Final = frozenset(
    {
        AfterEvent,
        Overdue,
        Anniversary,
        Festival,
        Campaign,
        StepSequence,
        Replenishment,
        WinBack,
        StageEntry,
        Periodic,
        TierUpgrade,
        TierDowngradeWarning,
        PointsExpiry,
    }
)


def _month_day(
    when: npt.NDArray[np.float64], later: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The month and day (UTC) ``later`` days after each instant (UTC seconds)."""
    days = (np.floor(when / _DAY).astype(np.int64) + later).astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    month = months.astype(np.int64) % 12 + 1
    day = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
    return month, day


def _instant(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def reach(
    histories: Mapping[str, Sequence[Event]],
    policy: Policy,
    now: datetime,
    *,
    ids: Sequence[str],
    rules: Sequence[CadenceRule],
    referrals: Mapping[str, Mapping[str, datetime]],
    end: datetime,
    model: AliveModel | None = None,
) -> tuple[npt.NDArray[np.bool_], dict[int, tzinfo]]:
    """Whether each rule of ``rules`` (rows) may give each customer of ``ids`` (columns) an
    occurrence due by ``end`` and still valid after ``now`` less the lookback; and the zones
    of the customers (by position) whose profiles name one."""
    now = to_utc(require_aware(now, "now"))
    cols = _Columns(ids, histories, referrals, now, policy)
    r = Reach(cols, policy, now, now - timedelta(days=policy.cadence.lookback_days), end)
    hits = np.zeros((len(rules), cols.n), dtype=bool)
    owned = np.zeros(cols.n, dtype=bool)
    owned[cols.of(OwnerAssigned)[0]] = True
    for j, rule in enumerate(rules):
        r.hit = hits[j]
        _rule_reach(r, rule, policy, model)
        if rule.channels and set(rule.channels) <= OWNER_CHANNELS:
            # An owner's task not done is carried over, and escalated, whenever it was due
            # (lifecycle.cadence.planner.occurrences_of): every customer with an owner.
            r.hit |= owned
        stages = _stages_of(rule)
        if stages is not None:
            r.hit &= r.in_stages(stages)
        if model is None and _filters_status(rule):
            assert isinstance(rule, Rule)
            r.hit &= r.with_status(rule.statuses)
    return hits, cols.zones


def _filters_status(rule: CadenceRule) -> bool:
    """Whether a built-in rule applies only to customers of its ``statuses`` (read as
    :meth:`Rule.applies` reads them)."""
    return (
        isinstance(rule, Rule)
        and type(rule) in _BOUNDED
        and type(rule).applies is Rule.applies
        and bool(rule.statuses)
    )


def _stages_of(rule: CadenceRule) -> frozenset[Stage] | None:
    """The stages a built-in rule's customer must be in now (``None``: any)."""
    if not isinstance(rule, Rule) or type(rule) not in _BOUNDED:
        return None
    stages = rule.stages or frozenset(Stage)
    if isinstance(rule, StageEntry):
        stages = frozenset(s for s in stages if s >= rule.entered)
    return stages if stages != frozenset(Stage) else None
