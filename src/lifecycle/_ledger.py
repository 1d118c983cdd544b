"""The fold of one customer's history into the facts every rule reads.

A :class:`Ledger` applies events in replay order and keeps running aggregates (valid orders per
purchase day, reviews, complaints, partnerships, referrals), so both a one-off assessment and a
replay of the whole timeline cost one pass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime, tzinfo
from decimal import Decimal
from operator import attrgetter
from typing import Final

import attrs

from lifecycle._time import local_date, zone
from lifecycle.customer import Profile
from lifecycle.errors import InvalidEvent
from lifecycle.events import (
    ComplaintOpened,
    ComplaintResolved,
    ConsentChanged,
    Contacted,
    CustomerErased,
    CustomerRegistered,
    Engaged,
    Event,
    FeedbackGiven,
    LeadCaptured,
    OrderCancelled,
    OrderDelivered,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
    OrderShipped,
    OwnerAssigned,
    OwnerProtected,
    PartnershipEnded,
    PartnershipSigned,
    PointsRedeemed,
    ProfileUpdated,
    Referred,
    Replied,
    ReturnedToPool,
    ReviewPosted,
    TierGranted,
    TierRevoked,
    sort_key,
)
from lifecycle.policy import Policy
from lifecycle.vocabulary import ESCALATION_TEMPLATE, FOLLOW_UP_CHANNELS, Purpose


@attrs.define
class OrderState:
    """What is known about one order so far."""

    order_id: str
    placed: OrderPlaced | None = None
    paid: OrderPaid | None = None
    cancelled: OrderCancelled | None = None
    refunds: list[OrderRefunded] = attrs.field(factory=list)
    shipped: OrderShipped | None = None
    delivered: OrderDelivered | None = None

    @property
    def items(self) -> tuple[str, ...]:
        """The SKUs of the payment (or of the placement before it is paid)."""
        e = self.paid or self.placed
        return () if e is None else e.items

    @property
    def categories(self) -> tuple[str, ...]:
        e = self.paid or self.placed
        return () if e is None else e.categories

    @property
    def refunded(self) -> Decimal:
        return sum((r.amount for r in self.refunds), Decimal(0))

    @property
    def fully_refunded(self) -> bool:
        return self.paid is not None and bool(self.refunds) and self.refunded >= self.paid.amount

    @property
    def valid(self) -> bool:
        """Paid, not cancelled and not fully refunded."""
        return self.paid is not None and self.cancelled is None and not self.fully_refunded

    @property
    def net_amount(self) -> Decimal:
        return self.paid.amount - self.refunded if self.paid is not None else Decimal(0)


def customer_zone(history: Iterable[Event], policy: Policy, before: tzinfo | None = None) -> tzinfo:
    """The customer's time zone: the latest profile that names one, else ``before`` (the zone
    known before these events), else the shop's."""
    name = None
    for event in history:
        if isinstance(event, CustomerRegistered | ProfileUpdated) and event.profile.timezone:
            name = event.profile.timezone
    if name is None and before is not None:
        return before
    return zone(name or policy.timezone)


#: :func:`sort_key` without the Python call: lists of events are sorted often.
_REPLAY_ORDER: Final = attrgetter("_sort_key")


def ordered(history: Iterable[Event], now: datetime | None = None) -> list[Event]:
    """The events at or before ``now``, in replay order.

    ``now`` is compared as an instant; pass it in UTC (the public functions do) so that a wall
    time in a DST fold never compares by its wall clock.
    """
    events = list(history) if now is None else [e for e in history if sort_key(e)[0] <= now]
    events.sort(key=_REPLAY_ORDER)
    return events


#: The events the valid orders are decided from: a ledger folded from these alone holds the
#: same valid orders, valid days and totals.
ORDER_EVENTS: Final = (OrderPlaced, OrderPaid, OrderCancelled, OrderRefunded)

_NO_PROFILE: Final = Profile()


class Ledger:
    """Running facts about one customer, fed events in replay order."""

    def __init__(self, policy: Policy, tz: tzinfo):
        self.policy = policy
        self.tz = tz
        self.profile = _NO_PROFILE
        self.first_seen: Event | None = None
        self.lead: LeadCaptured | None = None
        self.engagement: Event | None = None
        self.orders: dict[str, OrderState] = {}
        self.valid_days: Counter[date] = Counter()
        self.valid_count = 0
        self._first_day: date | None = None
        self._last_day: date | None = None
        self.latest_nps: FeedbackGiven | None = None
        self.review_count = 0
        self.review_total = 0
        self.review_ids: list[str] = []
        self.open_complaints: dict[str, ComplaintOpened] = {}
        self.last_complaint: ComplaintOpened | None = None
        self.partnerships: dict[str, PartnershipSigned] = {}
        self.ended_partnerships: dict[str, PartnershipEnded] = {}
        self.referrals: dict[str, Referred] = {}
        # Contact facts: what the planner, the contact gate and the dispatcher read.
        self.registered: CustomerRegistered | None = None
        self.leads: list[LeadCaptured] = []
        self.engagements: list[Engaged] = []
        self.reviews: list[ReviewPosted] = []
        self.complaints: dict[str, ComplaintOpened] = {}
        self.resolved: dict[str, ComplaintResolved] = {}
        self.contacts: list[Contacted] = []
        self.replies: list[Replied] = []
        self.escalations: list[Contacted] = []
        """Escalations sent to owners' leads (no contact with the customer)."""
        self.consent: dict[tuple[str, Purpose], bool] = {}
        """Consent by (channel, purpose): from the profile's contact points, then changes."""
        self.withdrawn: set[tuple[str, Purpose]] = set()
        """(channel, purpose) pairs the customer explicitly withdrew and has not granted since."""
        self.erased: CustomerErased | None = None
        self.owner: OwnerAssigned | None = None
        """The current owner's assignment; ``None`` while the customer is in the shared pool."""
        self.owner_returns: list[ReturnedToPool] = []
        self.owner_releases: list[tuple[str, ReturnedToPool]] = []
        """(owner, return) for every return to the pool, oldest first."""
        self.last_assigned: OwnerAssigned | None = None
        self.owner_takes: list[OwnerAssigned] = []
        """Every assignment that took the customer out of the pool, oldest first (the latest
        starts the deal clock; the daily claim quota counts them)."""
        self.owner_protected: OwnerProtected | None = None
        """The current owner's latest protection from reclaim; cleared on a change of owner."""
        self.owner_clock: Event | None = None
        """What (re)started the reclaim clock: leaving the pool, or the owner's last follow-up
        (a contact a person logged or made through an owner channel, or a paid order when the
        owner policy counts orders)."""
        self.tier_moves: list[TierGranted | TierRevoked] = []
        self.redemptions: list[PointsRedeemed] = []
        # -- each event once; each redemption once (loyalty reads these) ---------------------
        self.event_ids: set[str] = set()
        """The ids of the events applied: an event applied again (the same id) changes nothing,
        as the store records it once."""
        self.redeemed: dict[str, PointsRedeemed] = {}
        """The first redemption of each redemption id: one redemption counts once, whatever
        ids the host gave its events."""
        # -- end of each event once ----------------------------------------------------------
        self.applied = 0
        """How many events :func:`fold` applied (those at or before its ``now``)."""

    # -- feeding ----------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        if event.event_id in self.event_ids:
            return  # a repeat of an event already applied
        self.event_ids.add(event.event_id)
        if self.first_seen is None:
            self.first_seen = event
        match event:  # the commonest kinds first: each case is a type test
            case OrderPlaced() | OrderPaid():
                self._apply_order(event)
            case OrderShipped(order_id=oid):
                state = self._order(oid)
                state.shipped = state.shipped or event
            case OrderDelivered(order_id=oid):
                state = self._order(oid)
                state.delivered = state.delivered or event
            case OrderCancelled() | OrderRefunded():
                self._apply_order(event)
            case CustomerRegistered(profile=p) | ProfileUpdated(profile=p):
                self.profile = self.profile.merge(p)
                if isinstance(event, CustomerRegistered):
                    self.registered = self.registered or event
                for cp in p.contacts:
                    for q in Purpose:
                        self.consent[(cp.channel, q)] = q in cp.consent
                        self.withdrawn.discard((cp.channel, q))
            case LeadCaptured():
                self.lead = self.lead or event
                self.leads.append(event)
            case Engaged(kind=kind):
                self.engagements.append(event)
                if kind in self.policy.stage.prospect_engagements:
                    self.engagement = event
            case FeedbackGiven(kind="nps"):
                self.latest_nps = event
            case ReviewPosted(rating=rating):
                self.review_count += 1
                self.review_total += rating
                self.review_ids.append(event.event_id)
                self.reviews.append(event)
            case ComplaintOpened(complaint_id=cid):
                self.open_complaints[cid] = event
                self.last_complaint = event
                self.complaints.setdefault(cid, event)
            case ComplaintResolved(complaint_id=cid):
                self.open_complaints.pop(cid, None)
                self.resolved.setdefault(cid, event)
            case ConsentChanged(channel=ch, purpose=q, granted=granted):
                self.consent[(ch, q)] = granted
                if granted:
                    self.withdrawn.discard((ch, q))
                else:
                    self.withdrawn.add((ch, q))
            case Contacted(template=template) if template == ESCALATION_TEMPLATE:
                self.escalations.append(event)  # reached the owner's lead, not the customer
            case Contacted(rule=rule, channel=channel):
                self.contacts.append(event)
                if rule is None or channel in FOLLOW_UP_CHANNELS:
                    self._follow_up(event)
            case Replied():
                self.replies.append(event)
            case CustomerErased():
                self.erased = self.erased or event
            case OwnerAssigned():
                if self.owner is None:  # out of the pool: the reclaim clock starts
                    self.owner_clock = event
                    self.owner_takes.append(event)
                if self.owner is None or self.owner.owner_id != event.owner_id:
                    self.owner_protected = None
                self.owner = self.last_assigned = event
            case OwnerProtected(owner_id=oid):
                if self.owner is not None and self.owner.owner_id == oid:
                    self.owner_protected = event
            case ReturnedToPool():
                if self.owner is not None:
                    self.owner_returns.append(event)
                    self.owner_releases.append((self.owner.owner_id, event))
                self.owner = self.owner_clock = self.owner_protected = None
            case TierGranted() | TierRevoked():
                self.tier_moves.append(event)
            case PointsRedeemed(redemption_id=rid):
                self.redemptions.append(event)
                self.redeemed.setdefault(rid, event)
            case Referred(referred_id=rid):
                self.referrals.setdefault(rid, event)
            case PartnershipSigned(kind=kind):
                self.partnerships[kind] = event
                self.ended_partnerships.pop(kind, None)
            case PartnershipEnded(kind=kind):
                if self.partnerships.pop(kind, None) is not None:
                    self.ended_partnerships[kind] = event

    def _follow_up(self, event: Event) -> None:
        """The owner followed up: the reclaim clock starts again."""
        if self.owner is not None and self.owner_clock is not None:
            self.owner_clock = event

    def _order(self, order_id: str) -> OrderState:
        state = self.orders.get(order_id)
        if state is None:
            state = self.orders[order_id] = OrderState(order_id)
        return state

    def _apply_order(self, event: OrderPlaced | OrderPaid | OrderCancelled | OrderRefunded) -> None:
        state = self._order(event.order_id)
        was_valid = state.valid
        match event:
            case OrderPlaced():
                state.placed = state.placed or event
            case OrderPaid():
                state.paid = state.paid or event
                if self.policy.owners.orders_restart_clock:
                    self._follow_up(event)
            case OrderCancelled():
                state.cancelled = state.cancelled or event
            case OrderRefunded():
                state.refunds.append(event)
        intent = state.placed or state.paid
        if intent is not None and self.policy.stage.placed_order_is_engagement:
            self.engagement = self.engagement or intent
        if was_valid != state.valid:
            assert state.paid is not None
            self._count(self.day(state.paid.at), +1 if state.valid else -1)

    def _count(self, day: date, delta: int) -> None:
        self.valid_count += delta
        self.valid_days[day] += delta
        if self.valid_days[day] == 0:
            del self.valid_days[day]
            if day in (self._first_day, self._last_day):
                self._first_day = min(self.valid_days, default=None)
                self._last_day = max(self.valid_days, default=None)
        else:
            if self._first_day is None or day < self._first_day:
                self._first_day = day
            if self._last_day is None or day > self._last_day:
                self._last_day = day

    # -- reading ----------------------------------------------------------------------------

    def day(self, at: datetime) -> date:
        """The customer's calendar date at instant ``at``."""
        return local_date(at, self.tz)

    @property
    def first_day(self) -> date | None:
        return self._first_day

    @property
    def last_day(self) -> date | None:
        return self._last_day

    @property
    def net_spend(self) -> Decimal:
        """Paid minus refunded amounts over every order, as the owner rules count them."""
        return sum(
            (o.paid.amount - o.refunded for o in self.orders.values() if o.paid is not None),
            Decimal(0),
        )

    def valid_orders(self) -> list[OrderState]:
        """Valid orders by payment time."""
        out = [o for o in self.orders.values() if o.valid]
        out.sort(key=lambda o: sort_key(o.paid))  # type: ignore[arg-type]  # valid => paid
        return out

    def undone_orders(self) -> list[OrderState]:
        """Paid orders that no longer count: cancelled or fully refunded."""
        return [o for o in self.orders.values() if o.paid is not None and not o.valid]

    def partly_refunded_orders(self) -> list[OrderState]:
        return [o for o in self.orders.values() if o.valid and o.refunds]

    @property
    def review_average(self) -> float | None:
        return self.review_total / self.review_count if self.review_count else None


def fold(history: Sequence[Event], policy: Policy, now: datetime) -> Ledger:
    """A ledger of every event at or before ``now``."""
    return fold_ordered(ordered(history, now), policy)


def fold_ordered(events: Sequence[Event], policy: Policy) -> Ledger:
    """A ledger of ``events``, already in replay order (see :func:`ordered`)."""
    ledger = Ledger(policy, customer_zone(events, policy))
    for event in events:
        ledger.apply(event)
    ledger.applied = len(events)
    return ledger


def check_orders(history: Sequence[Event], new: Sequence[Event]) -> None:
    """Refuse new order events that contradict what the history says about their orders.

    An order has one currency: its placement, payment and refunds all name it. A refund may
    not take more than was paid on a known order; an order is paid once. Raises
    :class:`InvalidEvent` naming the offending event.
    """
    touched = {e.order_id for e in new if isinstance(e, OrderPlaced | OrderPaid | OrderRefunded)}
    if not touched:
        return
    new_ids = {e.event_id for e in new}
    paid: dict[str, OrderPaid] = {}
    refunds: dict[str, list[OrderRefunded]] = {}
    relevant = [
        e
        for e in (*history, *new)
        if isinstance(e, OrderPlaced | OrderPaid | OrderRefunded) and e.order_id in touched
    ]
    relevant.sort(key=_REPLAY_ORDER)
    named: dict[str, OrderPlaced | OrderPaid | OrderRefunded] = {}
    for e in relevant:
        first = named.setdefault(e.order_id, e)
        if e.currency != first.currency:
            blame = e if e.event_id in new_ids or first.event_id not in new_ids else first
            other = first if blame is e else e
            raise InvalidEvent(
                f"{blame.currency} for order {e.order_id!r}, which is in {other.currency} "
                f"(event {other.event_id!r}): one order has one currency",
                field="currency",
                event_id=blame.event_id,
            )
    for e in relevant:
        if isinstance(e, OrderPlaced):
            continue
        if isinstance(e, OrderPaid):
            first = paid.setdefault(e.order_id, e)
            if first is not e:
                blame, other = (e, first) if e.event_id in new_ids else (first, e)
                raise InvalidEvent(
                    f"order {e.order_id!r} is already paid by event {other.event_id!r}",
                    event_id=blame.event_id,
                )
        else:
            refunds.setdefault(e.order_id, []).append(e)
    for order_id, rs in refunds.items():
        p = paid.get(order_id)
        if p is None:
            continue  # the payment may arrive later; it is checked then
        total = Decimal(0)
        for r in rs:
            if r.currency != p.currency:
                raise InvalidEvent(
                    f"refund in {r.currency} for order {order_id!r} paid in {p.currency}",
                    field="currency",
                    event_id=r.event_id,
                )
            total += r.amount
            if total > p.amount:
                blame_id = next(x.event_id for x in new if getattr(x, "order_id", None) == order_id)
                raise InvalidEvent(
                    f"refunds on order {order_id!r} would total {total}, more than the "
                    f"{p.amount} paid",
                    field="amount",
                    event_id=blame_id,
                )
