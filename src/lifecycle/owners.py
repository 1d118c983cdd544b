"""Sales owners and the shared pool (公海): assignment, capacity, reclaim with warning, cooldown.

Pure functions over histories and ``now`` that return the events to record and a decision with
its reason for every customer they touch. Ownership is derived from ``OwnerAssigned`` and
``ReturnedToPool`` events, so every change of owner (assignment, claim, transfer, bulk,
import) goes through :func:`assign` or :func:`transfer` and the same rules.

The reclaim clock starts when a customer leaves the pool and restarts only at a follow-up: a
``Contacted`` while owned that a person logged (no ``rule``) or that went through an owner
channel (``task``, ``visit``, ``phone``), and, when the policy says so, a paid order. Automated
messages do not count, and a transfer to another owner does not restart the clock.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final, Literal

import attrs

from lifecycle._display import field_table, html_table, one_line
from lifecycle._ledger import Ledger, fold
from lifecycle._time import local_date, require_aware, to_utc, zone
from lifecycle.errors import OwnerRuleBroken
from lifecycle.events import (
    Event,
    OwnerAssigned,
    OwnerProtected,
    ReturnedToPool,
    sort_key,
)
from lifecycle.policy import Assignment, OwnerPolicy, Policy
from lifecycle.reasons import Reason
from lifecycle.vocabulary import Stage

__all__ = [
    "OwnerChanges",
    "OwnerDecision",
    "Ownership",
    "PoolSweep",
    "PoolWarning",
    "admit",
    "assign",
    "owner_book",
    "ownership",
    "ownership_of",
    "protect",
    "sweep",
    "transfer",
    "workdays_after",
]

_WORDS: Final[dict[str, tuple[str, str]]] = {
    "assigned": ("Assigned to {owner} ({how}).", "已分配给 {owner}（{how}）。"),
    "transferred": (
        "Moved from {previous} to {owner} ({kind}); the follow-up clock runs on from {clock}.",
        "已从 {previous} 转给 {owner}（{kind}）；跟进计时从 {clock} 起继续计算。",
    ),
    "claimed": (
        "Taken from the shared pool by {owner} ({kind}).",
        "{owner} 从公海领取了该客户（{kind}）。",
    ),
    "already": ("Already owned by {owner}.", "已归属 {owner}。"),
    "owned": ("Owned by {owner}; not in the pool.", "已归属 {owner}，不在公海中。"),
    "full": (
        "{owner} already holds {load} customers, the most allowed ({cap}).",
        "{owner} 已有 {load} 位客户，达到上限（{cap}）。",
    ),
    "cooldown": (
        "{owner} lost this customer on {since}; they can take them back from {until}.",
        "{owner} 于 {since} 失去该客户，{until} 起方可重新领取。",
    ),
    "nobody": (
        "No owner can take the customer: every one is full or cooling down.",
        "没有可分配的负责人：均已满额或处于冷却期。",
    ),
    "returned": (
        "No follow-up by {owner} for {days} days (since {since}); back to the shared pool.",
        "{owner} 已 {days} 天未跟进（自 {since} 起），客户退回公海。",
    ),
    "warning": (
        "Follow up by {deadline}, or the customer returns to the shared pool.",
        "请在 {deadline} 前跟进，否则客户将退回公海。",
    ),
    "quota": (
        "{owner} already took {taken} customers from the pool on {day}, the most allowed "
        "({quota}).",
        "{owner} 于 {day} 已从公海领取 {taken} 位客户，达到每日上限（{quota}）。",
    ),
    "no_deal": (
        "No valid order for {days} days (since {since}) while owned by {owner}; back to the "
        "shared pool.",
        "{owner} 名下 {days} 天无有效订单（自 {since} 起），客户退回公海。",
    ),
    "deal_warning": (
        "Close a valid order by {deadline}, or the customer returns to the shared pool.",
        "请在 {deadline} 前促成有效订单，否则客户将退回公海。",
    ),
    "protected": (
        "Protected from reclaim by {owner} until {until}.",
        "{owner} 已保护该客户，{until} 前不会被收回公海。",
    ),
    "protections": (
        "{owner} already protects {count} customers, the most allowed ({cap}).",
        "{owner} 已保护 {count} 位客户，达到上限（{cap}）。",
    ),
    "not_owner": (
        "Only the customer's owner can protect them; {owner} does not own them.",
        "只有负责人可以保护客户；{owner} 不是该客户的负责人。",
    ),
}

#: The policy key that sets each rule an owner change can break (errors name it).
_RULES: Final[dict[str, str]] = {
    "owners.full": "owners.capacity",
    "owners.cooldown": "owners.cooldown_days",
    "owners.quota": "owners.daily_claim_quota",
    "owners.protections": "owners.max_protected",
    "owners.not_owner": "owners.owner_only",
}


def _reason(code: str, *evidence: str | None, **fields: object) -> Reason:
    en, zh = _WORDS[code]
    return Reason(
        code=f"owners.{code}",
        en=en.format(**fields),
        zh=zh.format(**fields),
        evidence=tuple(e for e in evidence if e),
    )


def _day(at: datetime) -> str:
    return to_utc(at).date().isoformat()


@attrs.frozen(kw_only=True)
class Ownership:
    """Who owns a customer as of the history given, and where the reclaim clock stands.

    Attributes:
        owner_id: the owner, ``None`` in the pool.
        since: when the current owner got the customer.
        clock_from: when the reclaim clock (re)started: leaving the pool, or the last follow-up.
        clock_event: the event that (re)started it.
        releases: (owner, when) for every return to the pool, oldest first.
        net_spend: paid minus refunded amounts, for the high-value rule.
        last_assigned_at: the latest assignment to anyone (round robin turns on it).
        takes: (owner, when) for every time the customer left the pool, oldest first.
        last_order_at: when the latest order still valid was paid (the deal clock).
        protected_at: when the current owner last protected the customer from reclaim.
    """

    customer_id: str
    owner_id: str | None = None
    since: datetime | None = None
    clock_from: datetime | None = None
    clock_event: str | None = None
    releases: tuple[tuple[str, datetime], ...] = ()
    net_spend: Decimal = Decimal(0)
    last_assigned_at: datetime | None = None
    takes: tuple[tuple[str, datetime], ...] = ()
    last_order_at: datetime | None = None
    protected_at: datetime | None = None

    @property
    def taken_at(self) -> datetime | None:
        """When the customer last left the pool, while owned (the deal clock starts there)."""
        return self.takes[-1][1] if self.owner_id is not None and self.takes else None

    def protected_until(self, policy: OwnerPolicy) -> datetime | None:
        """Until when the owner's protection holds off reclaim; ``None`` without one."""
        if self.owner_id is None or self.protected_at is None:
            return None
        return self.protected_at + timedelta(days=policy.protection_days)

    def deal_deadline(self, policy: OwnerPolicy) -> datetime | None:
        """When the customer returns to the pool without a valid order (``owners.deal_days``,
        from leaving the pool or the latest valid order since); ``None`` without the rule."""
        taken = self.taken_at
        if policy.deal_days is None or taken is None:
            return None
        start = taken
        if self.last_order_at is not None and self.last_order_at > taken:
            start = self.last_order_at
        return workdays_after(start, policy.deal_days, policy)

    def __repr__(self) -> str:
        if self.owner_id is None or self.since is None:
            return one_line("Ownership", f"{self.customer_id}: in the shared pool")
        clock = None if self.clock_from is None else f"clock from {self.clock_from:%Y-%m-%d}"
        return one_line(
            "Ownership", f"{self.customer_id}: {self.owner_id} since {self.since:%Y-%m-%d}", clock
        )

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [
            ("customer", self.customer_id),
            ("owner", self.owner_id or "(shared pool)"),
            ("since", None if self.since is None else self.since.isoformat()),
            (
                "follow-up clock from",
                None if self.clock_from is None else self.clock_from.isoformat(),
            ),
            ("returned to the pool", len(self.releases)),
        ]
        return field_table(rows)

    def cooling(self, owner_id: str, now: datetime, policy: OwnerPolicy) -> datetime | None:
        """Until when ``owner_id`` may not take this customer back, if they may not now."""
        for owner, at in reversed(self.releases):
            if owner == owner_id:
                until = at + timedelta(days=policy.cooldown_days)
                return until if now < until else None
        return None

    def high_value(self, policy: OwnerPolicy, stage: Stage | None = None) -> bool:
        if (
            policy.high_value_stage is not None
            and stage is not None
            and stage >= policy.high_value_stage
        ):
            return True
        return policy.high_value_spend is not None and self.net_spend >= policy.high_value_spend

    def deadline(self, policy: OwnerPolicy, stage: Stage | None = None) -> datetime | None:
        """When the customer returns to the pool without a follow-up; ``None`` in the pool.

        The days are calendar days, or the working days of ``policy.workdays`` (the same
        time of day, that many working days on).
        """
        if self.owner_id is None or self.clock_from is None:
            return None
        days = policy.high_value_days if self.high_value(policy, stage) else policy.follow_up_days
        return workdays_after(self.clock_from, days, policy)


def workdays_after(at: datetime, days: int, policy: OwnerPolicy) -> datetime:
    """``days`` days after ``at`` (before it when negative), UTC: calendar days, or the working
    days of ``policy.workdays`` in ``policy.workday_zone`` at the same time of day."""
    calendar = policy.calendar()
    if calendar is None:
        return to_utc(at) + timedelta(days=days)
    local = at.astimezone(zone(policy.workday_zone))
    day = calendar.add_workdays(local.date(), days)
    return to_utc(datetime.combine(day, local.time(), tzinfo=local.tzinfo))


@functools.cache
def _folding(policy: OwnerPolicy) -> Policy:
    """A policy holding ``policy``, for folding histories: the owner rules need no other part."""
    return Policy(owners=policy)


def ownership(
    customer_id: str, history: Iterable[Event], policy: OwnerPolicy, now: datetime
) -> Ownership:
    """The customer's ownership from their history, counting events up to ``now``."""
    now = to_utc(require_aware(now, "now"))
    return ownership_of(customer_id, fold(list(history), _folding(policy), now))


def ownership_of(customer_id: str, ledger: Ledger) -> Ownership:
    """The customer's ownership from their history already folded (see :class:`Ledger`)."""
    owner, clock, last = ledger.owner, ledger.owner_clock, ledger.last_assigned
    paid = [o.paid.at for o in ledger.valid_orders() if o.paid is not None]
    protected = ledger.owner_protected
    return Ownership(
        customer_id=customer_id,
        owner_id=None if owner is None else owner.owner_id,
        since=None if owner is None else to_utc(owner.at),
        clock_from=None if clock is None else to_utc(clock.at),
        clock_event=None if clock is None else clock.event_id,
        releases=tuple((o, to_utc(e.at)) for o, e in ledger.owner_releases),
        net_spend=ledger.net_spend,
        last_assigned_at=None if last is None else to_utc(last.at),
        takes=tuple((e.owner_id, to_utc(e.at)) for e in ledger.owner_takes),
        last_order_at=to_utc(max(paid)) if paid else None,
        protected_at=None if protected is None else to_utc(protected.at),
    )


def owner_book(
    histories: Mapping[str, Sequence[Event]], policy: OwnerPolicy, now: datetime
) -> dict[str, Ownership]:
    """Every customer's ownership, by customer id."""
    return {cid: ownership(cid, h, policy, now) for cid, h in histories.items()}


@attrs.frozen(kw_only=True)
class OwnerDecision:
    """What happened to one customer's ownership, and why."""

    customer_id: str
    owner_id: str | None
    previous: str | None
    changed: bool
    reason: Reason


@attrs.frozen(kw_only=True)
class OwnerChanges:
    """The events to record and a decision for every customer asked about."""

    events: tuple[Event, ...] = ()
    decisions: tuple[OwnerDecision, ...] = ()

    @property
    def refused(self) -> tuple[OwnerDecision, ...]:
        return tuple(d for d in self.decisions if not d.changed)

    def __repr__(self) -> str:
        return one_line(
            "OwnerChanges",
            f"{len(self.events):,} events",
            f"{len(self.decisions) - len(self.refused):,} changed",
            f"{len(self.refused):,} refused",
        )

    def _repr_html_(self) -> str:
        return _decisions_html(self.decisions, f"{len(self.events):,} ownership events")


def _decisions_html(decisions: Sequence[OwnerDecision], caption: str) -> str:
    rows = [
        (d.customer_id, d.previous or "", d.owner_id or "(pool)", d.reason.en)
        for d in decisions[:20]
    ]
    if len(decisions) > len(rows):
        caption += f" (first {len(rows)} of {len(decisions):,} decisions)"
    return html_table(("customer", "from", "to", "why"), rows, caption=caption)


class _Desk:
    """The owners' loads, takes per working day and protections while one call changes owners.

    Every change of owner goes through :meth:`blocked` and :meth:`give` (and every protection
    through :meth:`refused_protection` and :meth:`protect`): the one place the pool rules are
    decided, for the API, for imports and for events recorded directly (:func:`admit`).
    """

    def __init__(self, book: Mapping[str, Ownership], policy: OwnerPolicy, now: datetime):
        self.book = book
        self.policy = policy
        self.now = to_utc(now)
        self.zone = zone(policy.workday_zone)
        self.load = Counter(o.owner_id for o in book.values() if o.owner_id is not None)
        self.taken = Counter(
            (owner, local_date(at, self.zone)) for o in book.values() for owner, at in o.takes
        )
        self.protecting = Counter(
            o.owner_id
            for o in book.values()
            if o.owner_id is not None and _protected(o, policy, self.now)
        )
        self.events: list[Event] = []
        self.decisions: list[OwnerDecision] = []

    def blocked(self, own: Ownership, owner: str) -> Reason | None:
        """Why ``owner`` may not take the customer now (cooldown, capacity, daily quota)."""
        until = own.cooling(owner, self.now, self.policy)
        if until is not None:
            released = [at for o, at in own.releases if o == owner][-1]
            return _reason("cooldown", owner=owner, since=_day(released), until=_day(until))
        if self.load[owner] >= self.policy.capacity:
            return _reason("full", owner=owner, load=self.load[owner], cap=self.policy.capacity)
        quota = self.policy.daily_claim_quota
        today = (owner, local_date(self.now, self.zone))
        if own.owner_id is None and quota is not None and self.taken[today] >= quota:
            return _reason("quota", owner=owner, taken=self.taken[today], day=today[1], quota=quota)
        return None

    def give(self, own: Ownership, owner: str, reason: Reason) -> None:
        if own.owner_id is not None:
            self.load[own.owner_id] -= 1
            if _protected(own, self.policy, self.now):
                self.protecting[own.owner_id] -= 1
        else:
            self.taken[(owner, local_date(self.now, self.zone))] += 1
        self.load[owner] += 1
        self.events.append(OwnerAssigned(customer_id=own.customer_id, at=self.now, owner_id=owner))
        self.decisions.append(
            OwnerDecision(
                customer_id=own.customer_id,
                owner_id=owner,
                previous=own.owner_id,
                changed=True,
                reason=reason,
            )
        )

    def release(self, own: Ownership) -> None:
        """The customer went back to the pool (an event recorded directly)."""
        if own.owner_id is not None:
            self.load[own.owner_id] -= 1
            if _protected(own, self.policy, self.now):
                self.protecting[own.owner_id] -= 1

    def refused_protection(self, own: Ownership, owner: str) -> Reason | None:
        """Why ``owner`` may not protect the customer now (not theirs, too many protected)."""
        if own.owner_id != owner:
            return _reason("not_owner", owner=owner)
        if _protected(own, self.policy, self.now):
            return None  # protecting again renews; the count does not grow
        cap = self.policy.max_protected
        if self.protecting[owner] >= cap:
            return _reason("protections", owner=owner, count=self.protecting[owner], cap=cap)
        return None

    def protect(self, own: Ownership, owner: str) -> None:
        if not _protected(own, self.policy, self.now):
            self.protecting[owner] += 1
        until = self.now + timedelta(days=self.policy.protection_days)
        self.events.append(OwnerProtected(customer_id=own.customer_id, at=self.now, owner_id=owner))
        self.decisions.append(
            OwnerDecision(
                customer_id=own.customer_id,
                owner_id=owner,
                previous=owner,
                changed=True,
                reason=_reason("protected", owner=owner, until=_day(until)),
            )
        )

    def keep(self, own: Ownership, reason: Reason) -> None:
        self.decisions.append(
            OwnerDecision(
                customer_id=own.customer_id,
                owner_id=own.owner_id,
                previous=own.owner_id,
                changed=False,
                reason=reason,
            )
        )

    def changes(self) -> OwnerChanges:
        return OwnerChanges(events=tuple(self.events), decisions=tuple(self.decisions))


def _protected(own: Ownership, policy: OwnerPolicy, now: datetime) -> bool:
    until = own.protected_until(policy)
    return until is not None and now < until


def assign(
    histories: Mapping[str, Sequence[Event]],
    owners: Sequence[str],
    policy: OwnerPolicy,
    now: datetime,
    *,
    customer_ids: Iterable[str] | None = None,
) -> OwnerChanges:
    """Give pool customers (new prospects, or returned ones) to ``owners`` by the policy.

    Args:
        histories: every customer's history (loads and round-robin turns are counted on all).
        owners: the owners taking customers, in order.
        customer_ids: whom to assign; every pool customer of ``histories`` when ``None``.

    Owners at capacity and owners cooling down for a customer are passed over; a customer
    nobody can take stays in the pool with the reason.
    """
    now = require_aware(now, "now")
    book = owner_book(histories, policy, now)
    desk = _Desk(book, policy, now)
    wanted = sorted(book) if customer_ids is None else list(customer_ids)
    turn = _next_turn(book, owners)
    for cid in wanted:
        own = book.get(cid) or Ownership(customer_id=cid)
        if own.owner_id is not None:
            if customer_ids is not None:
                desk.keep(own, _reason("owned", own.clock_event, owner=own.owner_id))
            continue
        if policy.assignment is Assignment.LEAST_LOADED:
            order = sorted(owners, key=lambda o: (desk.load[o], owners.index(o)))
        else:
            order = [owners[(turn + i) % len(owners)] for i in range(len(owners))]
        chosen = next((o for o in order if desk.blocked(own, o) is None), None)
        if chosen is None:
            desk.keep(own, _reason("nobody"))
            continue
        if policy.assignment is Assignment.ROUND_ROBIN:
            turn = (owners.index(chosen) + 1) % len(owners)
        desk.give(own, chosen, _reason("assigned", owner=chosen, how=policy.assignment.value))
    return desk.changes()


def _next_turn(book: Mapping[str, Ownership], owners: Sequence[str]) -> int:
    """Round robin resumes after the owner of the latest assignment among ``owners``."""
    latest: tuple[tuple[datetime, str], str] | None = None
    for own in book.values():
        if own.owner_id is not None and own.owner_id in owners and own.since is not None:
            key = (own.since, own.customer_id)
            if latest is None or key > latest[0]:
                latest = (key, own.owner_id)
    if latest is None or not owners:
        return 0
    return (list(owners).index(latest[1]) + 1) % len(owners)


def transfer(
    histories: Mapping[str, Sequence[Event]],
    customer_ids: Iterable[str],
    to: str,
    policy: OwnerPolicy,
    now: datetime,
    *,
    kind: Literal["transfer", "bulk", "claim", "import"] = "transfer",
) -> OwnerChanges:
    """Move customers to owner ``to``: one, a bulk list, a claim from the pool, or an import.

    The same rules hold for every kind: ``to`` stays within capacity and the daily claim
    quota and cannot take back a customer they lost within the cooldown; the reclaim clock is
    not restarted (a customer taken from the pool starts it, as any assignment does). A claim
    takes only customers in the pool.
    """
    now = require_aware(now, "now")
    book = owner_book(histories, policy, now)
    desk = _Desk(book, policy, now)
    for cid in customer_ids:
        own = book.get(cid) or Ownership(customer_id=cid)
        if own.owner_id == to:
            desk.keep(own, _reason("already", owner=to))
            continue
        if kind == "claim" and own.owner_id is not None:
            desk.keep(own, _reason("owned", own.clock_event, owner=own.owner_id))
            continue
        blocked = desk.blocked(own, to)
        if blocked is not None:
            desk.keep(own, blocked)
            continue
        if own.owner_id is None:
            reason = _reason("claimed", owner=to, kind=kind)
        else:
            clock = _day(own.clock_from) if own.clock_from else "-"
            reason = _reason(
                "transferred",
                own.clock_event,
                previous=own.owner_id,
                owner=to,
                kind=kind,
                clock=clock,
            )
        desk.give(own, to, reason)
    return desk.changes()


def protect(
    histories: Mapping[str, Sequence[Event]],
    customer_ids: Iterable[str],
    owner: str,
    policy: OwnerPolicy,
    now: datetime,
) -> OwnerChanges:
    """Protect ``owner``'s customers from reclaim for ``policy.protection_days``.

    Only the customer's owner protects them, and an owner protects at most
    ``policy.max_protected`` customers at a time (protecting one again renews it). A refused
    customer gets a decision with the reason and no event.
    """
    now = require_aware(now, "now")
    book = owner_book(histories, policy, now)
    desk = _Desk(book, policy, now)
    for cid in customer_ids:
        own = book.get(cid) or Ownership(customer_id=cid)
        refused = desk.refused_protection(own, owner)
        if refused is not None:
            desk.keep(own, refused)
            continue
        desk.protect(own, owner)
    return desk.changes()


_OWNER_EVENTS: Final = (OwnerAssigned, OwnerProtected, ReturnedToPool)


def admit(
    histories: Mapping[str, Sequence[Event]],
    events: Iterable[Event],
    policy: OwnerPolicy,
    now: datetime,
) -> None:
    """Check owner events recorded directly (``OwnerAssigned``, ``OwnerProtected``,
    ``ReturnedToPool``) against the same rules as :func:`assign` and :func:`transfer`.

    Each event is judged at its own instant, in replay order, on ``histories`` (every
    customer's stored history: loads count everyone) and the events before it; a return to
    the pool is always allowed.

    Raises:
        OwnerRuleBroken: the first event a rule refuses, naming the rule's policy key.
    """
    mine = sorted((e for e in events if isinstance(e, _OWNER_EVENTS)), key=sort_key)
    if not mine:
        return
    now = to_utc(require_aware(now, "now"))
    latest = max(now, max(to_utc(e.at) for e in mine))
    desk = _Desk(owner_book(histories, policy, latest), policy, latest)
    pending: dict[str, list[Event]] = {}
    for e in mine:
        cid = e.customer_id
        before = pending.setdefault(cid, [])
        own = ownership(cid, [*histories.get(cid, ()), *before], policy, e.at)
        desk.now = to_utc(e.at)
        refused: Reason | None = None
        if isinstance(e, OwnerAssigned):
            if own.owner_id != e.owner_id:
                refused = desk.blocked(own, e.owner_id)
                if refused is None:
                    desk.give(own, e.owner_id, _reason("assigned", owner=e.owner_id, how="event"))
        elif isinstance(e, OwnerProtected):
            refused = desk.refused_protection(own, e.owner_id)
            if refused is None:
                desk.protect(own, e.owner_id)
        else:
            desk.release(own)
        if refused is not None:
            raise OwnerRuleBroken(
                rule=_RULES.get(refused.code, refused.code),
                customer_id=cid,
                owner_id=e.owner_id,
                event_id=e.event_id,
                detail=refused.en,
            )
        before.append(e)


@attrs.frozen(kw_only=True)
class PoolWarning:
    """An owner's customer returns to the pool at ``deadline`` unless they follow up."""

    customer_id: str
    owner_id: str
    deadline: datetime
    reason: Reason


@attrs.frozen(kw_only=True)
class PoolSweep:
    """Customers returned to the pool (events and decisions) and owners warned."""

    events: tuple[ReturnedToPool, ...] = ()
    decisions: tuple[OwnerDecision, ...] = ()
    warnings: tuple[PoolWarning, ...] = ()

    def __repr__(self) -> str:
        return one_line(
            "PoolSweep",
            f"{len(self.events):,} returned to the pool",
            f"{len(self.warnings):,} warned",
        )

    def _repr_html_(self) -> str:
        warned = [
            OwnerDecision(
                customer_id=w.customer_id,
                owner_id=w.owner_id,
                previous=w.owner_id,
                changed=False,
                reason=w.reason,
            )
            for w in self.warnings
        ]
        caption = f"{len(self.events):,} returned, {len(self.warnings):,} warned"
        return _decisions_html((*self.decisions, *warned), caption)


def sweep(
    histories: Mapping[str, Sequence[Event]],
    policy: OwnerPolicy,
    now: datetime,
    *,
    stages: Mapping[str, Stage] | None = None,
) -> PoolSweep:
    """Return customers whose owner did not follow up, or close a deal, in time; warn owners
    whose time runs out.

    Args:
        stages: customers' current stages, for the high-value rule (longer limit).

    Two rules reclaim: no follow-up within ``follow_up_days`` (``high_value_days``), and, with
    ``deal_days``, no valid order within that many days. A protection the owner put on the
    customer (``OwnerProtected``) holds both off until it runs out. Returns
    ``ReturnedToPool`` events dated ``now`` (sweeping again at the same ``now`` gives the same
    events), with a decision and reason each, and a warning for every rule whose deadline is
    within ``warning_days``.
    """
    now = to_utc(require_aware(now, "now"))
    events: list[ReturnedToPool] = []
    decisions: list[OwnerDecision] = []
    warnings: list[PoolWarning] = []
    for cid in sorted(histories):
        own = ownership(cid, histories[cid], policy, now)
        if own.owner_id is None or own.clock_from is None:
            continue
        shield = own.protected_until(policy)
        due: list[tuple[datetime, Reason, str]] = []
        follow = own.deadline(policy, (stages or {}).get(cid))
        if follow is not None:
            due.append(
                (
                    follow,
                    _reason(
                        "returned",
                        own.clock_event,
                        owner=own.owner_id,
                        days=(follow - own.clock_from).days,
                        since=_day(own.clock_from),
                    ),
                    "warning",
                )
            )
        deal = own.deal_deadline(policy)
        taken = own.taken_at
        if deal is not None and taken is not None:
            start = max(taken, own.last_order_at or taken)
            due.append(
                (
                    deal,
                    _reason(
                        "no_deal",
                        owner=own.owner_id,
                        days=(deal - start).days,
                        since=_day(start),
                    ),
                    "deal_warning",
                )
            )
        if shield is not None:
            due = [(max(at, shield), gone, warn) for at, gone, warn in due]
        gone = [(at, reason) for at, reason, _ in due if at <= now]
        if gone:
            reason = min(gone, key=lambda g: g[0])[1]
            events.append(
                ReturnedToPool(customer_id=cid, at=now, owner_id=own.owner_id, reason=reason.en)
            )
            decisions.append(
                OwnerDecision(
                    customer_id=cid,
                    owner_id=None,
                    previous=own.owner_id,
                    changed=True,
                    reason=reason,
                )
            )
            continue
        for at, why, warn in due:
            if workdays_after(at, -policy.warning_days, policy) <= now:
                reason = _reason(warn, *why.evidence, deadline=_day(at))
                warnings.append(
                    PoolWarning(customer_id=cid, owner_id=own.owner_id, deadline=at, reason=reason)
                )
    return PoolSweep(events=tuple(events), decisions=tuple(decisions), warnings=tuple(warnings))
