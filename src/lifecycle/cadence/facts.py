"""What the cadence rules read about one customer at ``now``, worked out once per plan.

Cheap facts (orders, complaints, contacts, consent) come from one pass over the history; the
costly ones (stage history, tiers, points) are computed only when a rule asks for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from functools import cached_property

import attrs

from lifecycle._ledger import Ledger, OrderState, customer_zone, ordered
from lifecycle._time import local_date, require_aware, to_utc
from lifecycle.cadence.contact import first_instant_at
from lifecycle.customer import Profile
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
    OrderDelivered,
    OrderShipped,
    ProfileUpdated,
    Referred,
    Replied,
    ReviewPosted,
)
from lifecycle.loyalty import (
    PointsStatement,
    TierAssessment,
    TierChange,
    assess_tier,
    points_ledger,
    tier_history,
)
from lifecycle.policy import Policy
from lifecycle.stages import StageChange, StageJudge, stage_history
from lifecycle.status import StatusAssessment, status_from_ledger
from lifecycle.vocabulary import Purpose, Stage

__all__ = ["CustomerFacts", "OrderFacts"]


@attrs.define
class OrderFacts:
    """One order as far as follow-ups care: the ledger's state plus fulfilment."""

    state: OrderState
    shipped: OrderShipped | None = None
    delivered: OrderDelivered | None = None

    @property
    def order_id(self) -> str:
        return self.state.order_id

    @property
    def items(self) -> tuple[str, ...]:
        e = self.state.paid or self.state.placed
        return () if e is None else e.items

    @property
    def categories(self) -> tuple[str, ...]:
        e = self.state.paid or self.state.placed
        return () if e is None else e.categories


class CustomerFacts:
    """One customer's history read for planning at ``now`` (UTC).

    Attributes:
        customer_id: whose facts these are.
        now: the planning instant, UTC.
        policy: the whole policy.
        tz: the customer's zone (the shop's when the profile names none).
        events: the events at or before ``now``, in replay order.
        ledger: the fold every assessment uses (profile, orders, complaints).
        referrals: when each customer this one referred made a first valid order.
        floor, end: the window a plan looks at: occurrences still valid after ``floor`` and
            due by ``end``; rules may skip the others early.
    """

    def __init__(
        self,
        customer_id: str,
        history: Sequence[Event],
        policy: Policy,
        now: datetime,
        *,
        referrals: Mapping[str, datetime] | None = None,
        lookback: timedelta = timedelta(days=7),
        horizon: timedelta = timedelta(0),
    ):
        self.customer_id = customer_id
        self.now = to_utc(require_aware(now, "now"))
        self.floor = self.now - lookback
        self.end = self.now + horizon
        self.policy = policy
        self.history = history
        self.events = ordered(history, self.now)
        self.tz: tzinfo = customer_zone(self.events, policy)
        self.referrals = {k: to_utc(v) for k, v in (referrals or {}).items()}
        ledger = Ledger(policy, self.tz)
        self.orders: dict[str, OrderFacts] = {}
        self.complaints: dict[str, ComplaintOpened] = {}
        self.resolved: dict[str, ComplaintResolved] = {}
        self.contacts: list[Contacted] = []
        self.replies: list[Replied] = []
        self.reviews: list[ReviewPosted] = []
        self.engagements: list[Engaged] = []
        self.leads: list[LeadCaptured] = []
        self.referred: dict[str, Referred] = {}
        self.registered: CustomerRegistered | None = None
        self.erased: CustomerErased | None = None
        self._consent: dict[tuple[str, Purpose], bool] = {}
        self._withdrawn: set[Purpose] = set()
        for e in self.events:
            ledger.apply(e)
            match e:
                case CustomerRegistered() | ProfileUpdated():
                    if isinstance(e, CustomerRegistered):
                        self.registered = self.registered or e
                    for cp in e.profile.contacts:
                        for p in Purpose:
                            self._consent[(cp.channel, p)] = p in cp.consent
                case ConsentChanged(channel=ch, purpose=p, granted=g):
                    self._consent[(ch, p)] = g
                    if not g:
                        self._withdrawn.add(p)
                case OrderShipped(order_id=oid):
                    f = self._order(ledger, oid)
                    f.shipped = f.shipped or e
                case OrderDelivered(order_id=oid):
                    f = self._order(ledger, oid)
                    f.delivered = f.delivered or e
                case ComplaintOpened(complaint_id=cid):
                    self.complaints.setdefault(cid, e)
                case ComplaintResolved(complaint_id=cid):
                    self.resolved.setdefault(cid, e)
                case Contacted():
                    self.contacts.append(e)
                case Replied():
                    self.replies.append(e)
                case ReviewPosted():
                    self.reviews.append(e)
                case Engaged():
                    self.engagements.append(e)
                case LeadCaptured():
                    self.leads.append(e)
                case Referred(referred_id=rid):
                    self.referred.setdefault(rid, e)
                case CustomerErased():
                    self.erased = e
                case _:
                    pass
        for oid, state in ledger.orders.items():
            self.orders.setdefault(oid, OrderFacts(state))
        self.ledger = ledger
        self.sent_keys = frozenset(c.key for c in self.contacts if c.key is not None)

    def _order(self, ledger: Ledger, order_id: str) -> OrderFacts:
        f = self.orders.get(order_id)
        if f is None:
            state = ledger.orders.get(order_id) or OrderState(order_id)
            f = self.orders[order_id] = OrderFacts(state)
        return f

    def in_window(self, due: datetime, valid_until: datetime) -> bool:
        """Whether an occurrence due at ``due`` and valid until ``valid_until`` is planned."""
        return due <= self.end and valid_until > self.floor

    # -- who ------------------------------------------------------------------------------------

    @property
    def profile(self) -> Profile:
        return self.ledger.profile

    def consents(self, channel: str, purpose: Purpose) -> bool:
        """Whether the customer consents to ``purpose`` on ``channel`` at ``now``."""
        return self._consent.get((channel, purpose), False)

    def withdrew(self, purpose: Purpose) -> bool:
        """Whether the customer opted out of ``purpose`` and holds it on no channel now."""
        if purpose not in self._withdrawn:
            return False
        return not any(v for (_, p), v in self._consent.items() if p is purpose)

    # -- time -----------------------------------------------------------------------------------

    def day(self, at: datetime) -> date:
        """The customer's calendar date at instant ``at``."""
        return local_date(at, self.tz)

    @property
    def today(self) -> date:
        return self.day(self.now)

    def at(self, day: date, wall: time) -> datetime:
        """The first instant the customer's clock reads ``day`` ``wall`` (UTC)."""
        return first_instant_at(day, wall, self.tz)

    def day_end(self, day: date) -> datetime:
        """The instant the customer's ``day`` ends (their next midnight, or what stands for it)."""
        return first_instant_at(day + timedelta(days=1), time(0), self.tz)

    # -- what -----------------------------------------------------------------------------------

    def valid_orders(self) -> list[OrderState]:
        return self.ledger.valid_orders()

    def bought_after(self, at: datetime, *, item: str | None = None) -> OrderState | None:
        """The first valid order paid after ``at`` (holding ``item`` as SKU or category)."""
        for o in self.valid_orders():
            assert o.paid is not None
            if to_utc(o.paid.at) <= at:
                continue
            if item is None or item in o.paid.items or item in o.paid.categories:
                return o
        return None

    @cached_property
    def stage(self) -> Stage:
        return StageJudge(self.ledger, self.referrals, self.now).stage()

    @cached_property
    def status(self) -> StatusAssessment:
        return status_from_ledger(self.ledger, self.now, explain=False)

    @cached_property
    def stage_history(self) -> tuple[StageChange, ...]:
        return stage_history(self.history, self.policy, self.now, referrals=self.referrals)

    @cached_property
    def tier(self) -> TierAssessment | None:
        """The tier assessment; ``None`` for a customer who never paid (only the base tier)."""
        if not any(o.state.paid is not None for o in self.orders.values()):
            return None
        return assess_tier(self.history, self.policy, self.now)

    @cached_property
    def tier_history(self) -> tuple[TierChange, ...]:
        if not any(o.state.paid is not None for o in self.orders.values()):
            return ()
        return tier_history(self.history, self.policy, self.now)

    @cached_property
    def points(self) -> PointsStatement | None:
        """The points statement; ``None`` for a customer who never paid."""
        if not any(o.state.paid is not None for o in self.orders.values()):
            return None
        return points_ledger(self.history, self.policy, self.now, referrals=self.referrals)
