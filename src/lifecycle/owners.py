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
from lifecycle._time import require_aware, to_utc, zone
from lifecycle.events import (
    Event,
    OwnerAssigned,
    ReturnedToPool,
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
    "assign",
    "owner_book",
    "ownership",
    "ownership_of",
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
    """

    customer_id: str
    owner_id: str | None = None
    since: datetime | None = None
    clock_from: datetime | None = None
    clock_event: str | None = None
    releases: tuple[tuple[str, datetime], ...] = ()
    net_spend: Decimal = Decimal(0)
    last_assigned_at: datetime | None = None

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
    return Ownership(
        customer_id=customer_id,
        owner_id=None if owner is None else owner.owner_id,
        since=None if owner is None else to_utc(owner.at),
        clock_from=None if clock is None else to_utc(clock.at),
        clock_event=None if clock is None else clock.event_id,
        releases=tuple((o, to_utc(e.at)) for o, e in ledger.owner_releases),
        net_spend=ledger.net_spend,
        last_assigned_at=None if last is None else to_utc(last.at),
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
    """The owners' loads while one call hands customers out."""

    def __init__(self, book: Mapping[str, Ownership], policy: OwnerPolicy, now: datetime):
        self.book = book
        self.policy = policy
        self.now = now
        self.load = Counter(o.owner_id for o in book.values() if o.owner_id is not None)
        self.events: list[Event] = []
        self.decisions: list[OwnerDecision] = []

    def blocked(self, own: Ownership, owner: str) -> Reason | None:
        until = own.cooling(owner, self.now, self.policy)
        if until is not None:
            released = [at for o, at in own.releases if o == owner][-1]
            return _reason("cooldown", owner=owner, since=_day(released), until=_day(until))
        if self.load[owner] >= self.policy.capacity:
            return _reason("full", owner=owner, load=self.load[owner], cap=self.policy.capacity)
        return None

    def give(self, own: Ownership, owner: str, reason: Reason) -> None:
        if own.owner_id is not None:
            self.load[own.owner_id] -= 1
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

    The same rules hold for every kind: ``to`` stays within capacity and cannot take back a
    customer they lost within the cooldown; the reclaim clock is not restarted (a customer
    taken from the pool starts it, as any assignment does).
    """
    now = require_aware(now, "now")
    book = owner_book(histories, policy, now)
    desk = _Desk(book, policy, now)
    for cid in customer_ids:
        own = book.get(cid) or Ownership(customer_id=cid)
        if own.owner_id == to:
            desk.keep(own, _reason("already", owner=to))
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
    """Return customers whose owner did not follow up in time; warn owners whose time runs out.

    Args:
        stages: customers' current stages, for the high-value rule (longer limit).

    Returns ``ReturnedToPool`` events dated ``now`` (sweeping again at the same ``now`` gives
    the same events), with a decision and reason each, and a warning for every customer
    within ``warning_days`` of their deadline.
    """
    now = to_utc(require_aware(now, "now"))
    events: list[ReturnedToPool] = []
    decisions: list[OwnerDecision] = []
    warnings: list[PoolWarning] = []
    for cid in sorted(histories):
        own = ownership(cid, histories[cid], policy, now)
        deadline = own.deadline(policy, (stages or {}).get(cid))
        if own.owner_id is None or deadline is None or own.clock_from is None:
            continue
        if deadline <= now:
            days = (deadline - own.clock_from).days
            reason = _reason(
                "returned",
                own.clock_event,
                owner=own.owner_id,
                days=days,
                since=_day(own.clock_from),
            )
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
        elif workdays_after(deadline, -policy.warning_days, policy) <= now:
            warnings.append(
                PoolWarning(
                    customer_id=cid,
                    owner_id=own.owner_id,
                    deadline=deadline,
                    reason=_reason("warning", own.clock_event, deadline=_day(deadline)),
                )
            )
    return PoolSweep(events=tuple(events), decisions=tuple(decisions), warnings=tuple(warnings))
