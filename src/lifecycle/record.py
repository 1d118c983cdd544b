"""One customer's record at one instant: their history folded once, read by every rule.

The fold (orders with their state, net amounts and fulfilment, consent and contact points,
contacts made by the shop and by people, replies, complaints, referrals and their conversions,
the owner, loyalty moves) is made once; the stage, status, tier and points are derived from it
when first asked for. The planner, every cadence rule, the contact gate and the dispatcher read
a :class:`CustomerRecord`; none of them walks the raw events again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from functools import cached_property
from types import MappingProxyType
from typing import Any

from lifecycle._ledger import Ledger, OrderState, fold_ordered, ordered
from lifecycle._time import local_date, require_aware, to_utc
from lifecycle.cadence.contact import first_instant_at
from lifecycle.customer import Profile
from lifecycle.events import (
    ComplaintOpened,
    ComplaintResolved,
    Contacted,
    CustomerErased,
    CustomerRegistered,
    Engaged,
    Event,
    LeadCaptured,
    OwnerAssigned,
    Referred,
    Replied,
    ReviewPosted,
    sort_key,
)
from lifecycle.loyalty import LoyaltyView, PointsStatement, TierAssessment, TierChange
from lifecycle.owners import Ownership, ownership_of
from lifecycle.policy import Policy
from lifecycle.stages import StageChange, StageJudge, stage_history
from lifecycle.status import AliveModel, StatusAssessment, at_risk_since, status_from_ledger
from lifecycle.vocabulary import Purpose, Stage

__all__ = ["CustomerRecord", "OrderRecord"]


#: One order as the record holds it: placement, payment, cancellation, refunds, fulfilment,
#: whether it is still valid and its net amount.
OrderRecord = OrderState


class CustomerRecord:
    """One customer's history folded once at ``now`` (UTC); read-only.

    Attributes:
        customer_id: whose record this is.
        now: the instant, UTC.
        policy: the whole policy.
        tz: the customer's zone (the shop's when the profile names none).
        history: every event of the customer, as given (or read when first asked for).
        events: the events at or before ``now``, in replay order.
        next_event_at: the first event after ``now``, if the history holds one.
        version: how many events the record was read from (the store's version of the
            customer when it was read).
        ledger: the fold itself (running totals the stage and status rules read).
        orders: every order by id (:data:`OrderRecord`).
        complaints, resolved: complaints opened and resolved, by complaint id.
        contacts: the ``Contacted`` events: messages the shop sent and contacts people logged.
        replies, reviews, engagements, leads: those events, in order.
        referred: whom the customer referred (``Referred`` by referred id); ``referrals``:
            when each of them first made an order still valid at ``now``.
        registered, erased: the registration and the erasure, if any.
        owner: the current owner's assignment (``None`` while in the shared pool);
            ``ownership``: the owner and the reclaim clock, as the pool rules read them.
        escalations: the escalations of owner tasks sent to owners' leads.
        sent_keys: the follow-up keys already sent (escalations included).
        floor, end: the window a plan looks at: occurrences still valid after ``floor`` and
            due by ``end``; rules may skip the others early.
        model: the fitted value model, if any: the status then reads P(alive), as
            ``assess`` does.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if "sent_keys" in self.__dict__:  # set last in __init__
            raise AttributeError(f"a CustomerRecord is read-only; cannot set {name!r}")
        object.__setattr__(self, name, value)

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
        model: AliveModel | None = None,
    ):
        now = to_utc(require_aware(now, "now"))
        events = ordered(history, now)
        later = (
            min(at for e in history if (at := sort_key(e)[0]) > now)
            if len(events) < len(history)
            else None
        )
        self.__dict__["history"] = history
        self.__dict__["events"] = tuple(events)
        self._setup(
            customer_id,
            fold_ordered(events, policy),
            policy,
            now,
            version=len(history),
            later=later,
            referrals=referrals,
            lookback=lookback,
            horizon=horizon,
            model=model,
        )

    @classmethod
    def from_ledger(
        cls,
        customer_id: str,
        ledger: Ledger,
        policy: Policy,
        now: datetime,
        *,
        history: Callable[[], Sequence[Event]],
        version: int,
        stage_history: tuple[StageChange, ...] | None = None,
        later: datetime | None = None,
        referrals: Mapping[str, datetime] | None = None,
        lookback: timedelta = timedelta(days=7),
        horizon: timedelta = timedelta(0),
        model: AliveModel | None = None,
    ) -> CustomerRecord:
        """The record from a fold already made (a snapshot's state and the events since).

        ``ledger`` must be the fold of every event at or before ``now`` of the ``version``
        events stored; ``later`` the first event after it. ``history`` reads the whole
        history, for what the fold does not keep (the stage history, when ``stage_history`` is
        not given, and :attr:`events`).
        """
        record = cls.__new__(cls)
        record.__dict__["_history_source"] = history
        if stage_history is not None:
            record.__dict__["stage_history"] = stage_history
        record._setup(
            customer_id,
            ledger,
            policy,
            to_utc(require_aware(now, "now")),
            version=version,
            later=later,
            referrals=referrals,
            lookback=lookback,
            horizon=horizon,
            model=model,
        )
        return record

    def _setup(
        self,
        customer_id: str,
        ledger: Ledger,
        policy: Policy,
        now: datetime,
        *,
        version: int,
        later: datetime | None,
        referrals: Mapping[str, datetime] | None,
        lookback: timedelta,
        horizon: timedelta,
        model: AliveModel | None,
    ) -> None:
        self.customer_id = customer_id
        self.model = model
        self.now = now
        self.version = version
        self.next_event_at = later
        self.floor = self.now - lookback
        self.end = self.now + horizon
        self.policy = policy
        self.tz: tzinfo = ledger.tz
        self.referrals: Mapping[str, datetime] = MappingProxyType(
            {k: to_utc(v) for k, v in (referrals or {}).items()}
        )
        self.ledger = ledger
        self.orders: Mapping[str, OrderState] = MappingProxyType(ledger.orders)
        self.complaints: Mapping[str, ComplaintOpened] = MappingProxyType(ledger.complaints)
        self.resolved: Mapping[str, ComplaintResolved] = MappingProxyType(ledger.resolved)
        self.contacts: Sequence[Contacted] = tuple(ledger.contacts)
        self.replies: Sequence[Replied] = tuple(ledger.replies)
        self.reviews: Sequence[ReviewPosted] = tuple(ledger.reviews)
        self.engagements: Sequence[Engaged] = tuple(ledger.engagements)
        self.leads: Sequence[LeadCaptured] = tuple(ledger.leads)
        self.referred: Mapping[str, Referred] = MappingProxyType(ledger.referrals)
        self.registered: CustomerRegistered | None = ledger.registered
        self.erased: CustomerErased | None = ledger.erased
        self.owner: OwnerAssigned | None = ledger.owner
        self.escalations: Sequence[Contacted] = tuple(ledger.escalations)
        self.sent_keys = frozenset(
            c.key for c in (*self.contacts, *self.escalations) if c.key is not None
        )

    @cached_property
    def history(self) -> Sequence[Event]:
        """The customer's whole history (read when first asked for, for a record made
        :meth:`from_ledger`)."""
        source: Callable[[], Sequence[Event]] = self.__dict__["_history_source"]
        return source()

    @cached_property
    def events(self) -> Sequence[Event]:
        """The events at or before :attr:`now`, in replay order."""
        return tuple(ordered(self.history, self.now))

    def in_window(self, due: datetime, valid_until: datetime) -> bool:
        """Whether an occurrence due at ``due`` and valid until ``valid_until`` is planned."""
        return due <= self.end and valid_until > self.floor

    # -- who ------------------------------------------------------------------------------------

    @property
    def profile(self) -> Profile:
        return self.ledger.profile

    def consents(self, channel: str, purpose: Purpose) -> bool:
        """Whether the customer consents to ``purpose`` on ``channel`` at ``now``."""
        return self.ledger.consent.get((channel, purpose), False)

    def withdrew(self, purpose: Purpose) -> bool:
        """Whether the customer opted out of ``purpose`` and holds it on no channel now."""
        lg = self.ledger
        if not any(p is purpose for _, p in lg.withdrawn):
            return False
        return not any(v for (_, p), v in lg.consent.items() if p is purpose)

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
        """The status ``assess`` reports: by P(alive) when a value model is fitted."""
        return status_from_ledger(self.ledger, self.now, model=self.model, explain=False)

    @cached_property
    def ownership(self) -> Ownership:
        """The owner, since when, and where the reclaim clock of the shared pool stands."""
        return ownership_of(self.customer_id, self.ledger)

    @cached_property
    def at_risk_since(self) -> date | None:
        """The day the customer turned at risk (or lapsed) since their last valid order, by the
        same rule as :attr:`status`; ``None`` while active."""
        return at_risk_since(self.ledger, self.now, model=self.model)

    @cached_property
    def stage_history(self) -> tuple[StageChange, ...]:
        return stage_history(self.history, self.policy, self.now, referrals=self.referrals)

    @cached_property
    def tier(self) -> TierAssessment | None:
        """The tier assessment; ``None`` for a customer who never paid (only the base tier)."""
        if not any(o.paid is not None for o in self.orders.values()):
            return None
        return self._loyalty.tier()

    @cached_property
    def tier_history(self) -> tuple[TierChange, ...]:
        if not any(o.paid is not None for o in self.orders.values()):
            return ()
        return self._loyalty.tier_history()

    @cached_property
    def points(self) -> PointsStatement | None:
        """The points statement; ``None`` for a customer who never paid."""
        if not any(o.paid is not None for o in self.orders.values()):
            return None
        return self._loyalty.points(self.referrals)

    @cached_property
    def _loyalty(self) -> LoyaltyView:
        """One replay of the tiers for the tier, its history and the points."""
        return LoyaltyView(self.ledger, self.now)
