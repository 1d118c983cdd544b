"""The in-memory store: the reference implementation of :class:`~lifecycle.ports.Store`.

Thread-safe, complete and fast; tests use it as the model other stores are compared with.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import attrs

from lifecycle.errors import ConcurrencyError, ConflictingEvent, StoreError
from lifecycle.events import Event, Referred, sort_key
from lifecycle.ports import OutboxEntry, OutboxState, PlanMark, Snapshot
from lifecycle.vocabulary import Stage, Status

__all__ = ["MemoryStore"]

_UNSENT = (OutboxState.PENDING, OutboxState.CLAIMED)
#: A planning mark that is due at once: before every instant.
_NOW: Final = datetime.min.replace(tzinfo=UTC)


class MemoryStore:
    """Events, snapshots and indexes in dictionaries, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._by_id: dict[str, Event] = {}
        self._histories: dict[str, list[Event]] = {}
        self._stored: dict[str, list[Event]] = {}  # each customer's events in the order stored
        self._keys: dict[str, list[tuple[object, ...]]] = {}
        self._referrers: defaultdict[str, set[str]] = defaultdict(set)
        self._snapshots: dict[str, Snapshot] = {}
        self._outbox: dict[str, OutboxEntry] = {}
        # The planning index: when each customer is next due for planning (``_NOW``: at once,
        # ``None``: only new events make them due), and the version last planned.
        self._plan: dict[str, datetime | None] = {}
        self._stamps: dict[str, int] = {}
        self._fingerprint: str | None = None
        self._settings: dict[str, str] = {}
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    def append(
        self,
        events: Sequence[Event],
        snapshots: Sequence[Snapshot] = (),
        *,
        outbox: Sequence[OutboxEntry] = (),
        expected_versions: Mapping[str, int] | None = None,
    ) -> int:
        with self._lock:
            self._check_open()
            for cid, expected in (expected_versions or {}).items():
                if self.version(cid) != expected:
                    raise ConcurrencyError(cid)
            new = self._new_events(events)
            # Validation is over: from here on nothing can fail, so the call is all or nothing.
            self._insert(new.values())
            self._put(snapshots)
            for entry in outbox:
                self._outbox.setdefault(entry.key, entry)
            return len(new)

    def _new_events(self, events: Iterable[Event]) -> dict[str, Event]:
        """The events not stored yet, by id; raises ConflictingEvent on a clash."""
        new: dict[str, Event] = {}
        for e in events:
            seen = self._by_id.get(e.event_id) or new.get(e.event_id)
            if seen is None:
                new[e.event_id] = e
            elif seen != e:
                raise ConflictingEvent(e.event_id)
        return new

    def _insert(self, events: Iterable[Event]) -> None:
        touched: set[str] = set()
        for e in events:
            touched.add(e.customer_id)
            self._by_id[e.event_id] = e
            hist = self._histories.setdefault(e.customer_id, [])
            self._stored.setdefault(e.customer_id, []).append(e)
            keys = self._keys.setdefault(e.customer_id, [])
            k = sort_key(e)
            i = bisect.bisect_right(keys, k)
            keys.insert(i, k)
            hist.insert(i, e)
            if isinstance(e, Referred):
                self._referrers[e.referred_id].add(e.customer_id)
        for cid in touched:
            self._plan_now(cid)
            for ref in self._referrers.get(cid, ()):
                self._plan_now(ref)

    def _plan_now(self, customer_id: str) -> None:
        self._plan[customer_id] = _NOW
        self._stamps[customer_id] = self._stamps.get(customer_id, 0) + 1

    def events_by_id(self, event_ids: Iterable[str]) -> dict[str, Event]:
        with self._lock:
            self._check_open()
            return {i: self._by_id[i] for i in event_ids if i in self._by_id}

    def history(self, customer_id: str) -> tuple[Event, ...]:
        with self._lock:
            self._check_open()
            return tuple(self._histories.get(customer_id, ()))

    def histories(self, customer_ids: Iterable[str]) -> dict[str, tuple[Event, ...]]:
        with self._lock:
            self._check_open()
            return {c: tuple(self._histories[c]) for c in customer_ids if c in self._histories}

    def history_since(self, customer_id: str, version: int) -> tuple[Event, ...]:
        with self._lock:
            self._check_open()
            return tuple(sorted(self._stored.get(customer_id, ())[max(version, 0) :], key=sort_key))

    def version(self, customer_id: str) -> int:
        with self._lock:
            return len(self._histories.get(customer_id, ()))

    def versions(self, customer_ids: Iterable[str] | None = None) -> dict[str, int]:
        with self._lock:
            self._check_open()
            if customer_ids is None:
                return {c: len(h) for c, h in sorted(self._histories.items()) if h}
            return {c: len(h) for c in customer_ids if (h := self._histories.get(c))}

    def customer_ids(self) -> Iterator[str]:
        with self._lock:
            self._check_open()
            ids = sorted(self._histories)
        return iter(ids)

    def referrers(self, customer_ids: Iterable[str]) -> dict[str, frozenset[str]]:
        with self._lock:
            self._check_open()
            return {
                c: frozenset(self._referrers[c]) for c in customer_ids if self._referrers.get(c)
            }

    def _put(self, snapshots: Sequence[Snapshot]) -> None:
        # No folded state: histories here are objects already, and folding them again costs
        # less than decoding a state would.
        for s in snapshots:
            if s.version == self.version(s.customer_id):
                self._snapshots[s.customer_id] = (
                    s if s.state is None else attrs.evolve(s, state=None)
                )

    def put_snapshots(self, snapshots: Sequence[Snapshot]) -> None:
        with self._lock:
            self._check_open()
            self._put(snapshots)

    def snapshots(
        self,
        *,
        stages: Collection[Stage] | None = None,
        statuses: Collection[Status | None] | None = None,
        holding_at: datetime | None = None,
        expired_at: datetime | None = None,
    ) -> Iterator[Snapshot]:
        with self._lock:
            self._check_open()
            out = [
                s
                for _, s in sorted(self._snapshots.items())
                if (stages is None or s.stage in stages)
                and (statuses is None or s.status in statuses)
                and (holding_at is None or s.holds_at(holding_at))
                and (expired_at is None or not s.holds_at(expired_at))
            ]
        return iter(out)

    def snapshot(self, customer_id: str) -> Snapshot | None:
        with self._lock:
            self._check_open()
            return self._snapshots.get(customer_id)

    def forget(self, customer_id: str, redacted: Sequence[Event], at: datetime) -> None:
        with self._lock:
            self._check_open()
            for e in redacted:
                old = self._by_id.get(e.event_id)
                if old is None or (old.customer_id, type(old)) != (customer_id, type(e)):
                    raise StoreError(
                        f"event {e.event_id!r} is not a stored event of this customer and type"
                    )
            hist = self._histories.get(customer_id, [])
            stored = self._stored.get(customer_id, [])
            index = {x.event_id: i for i, x in enumerate(hist)}
            order = {x.event_id: i for i, x in enumerate(stored)}
            for e in redacted:
                self._by_id[e.event_id] = e
                hist[index[e.event_id]] = e
                stored[order[e.event_id]] = e
            snap = self._snapshots.get(customer_id)
            if snap is not None:
                self._snapshots[customer_id] = attrs.evolve(snap, state=None)
            for key, entry in self._outbox.items():
                if entry.customer_id != customer_id:
                    continue
                cleared = attrs.evolve(
                    entry,
                    payload={},
                    text_en="",
                    text_zh="",
                    subject_en=None,
                    subject_zh=None,
                    last_error=None,  # an error may quote an address
                )
                if entry.state in _UNSENT or entry.state is OutboxState.CANCELLED:
                    cleared = attrs.evolve(
                        cleared,
                        state=OutboxState.CANCELLED,
                        claimed_by=None,
                        lease_until=None,
                        last_error="customer erased",
                        updated_at=at if entry.state in _UNSENT else entry.updated_at,
                    )
                self._outbox[key] = cleared

    def outbox_entry(self, key: str) -> OutboxEntry | None:
        with self._lock:
            self._check_open()
            return self._outbox.get(key)

    def outbox_entries(
        self,
        *,
        states: Collection[OutboxState] | None = None,
        customer_id: str | None = None,
    ) -> Iterator[OutboxEntry]:
        with self._lock:
            self._check_open()
            out = [
                e
                for e in self._outbox.values()
                if (states is None or e.state in states)
                and (customer_id is None or e.customer_id == customer_id)
            ]
        out.sort(key=lambda e: (e.due_at, e.key))
        return iter(out)

    def claim(
        self, at: datetime, *, worker: str, lease: timedelta, limit: int = 100
    ) -> list[OutboxEntry]:
        with self._lock:
            self._check_open()
            busy = {e.customer_id for e in self._outbox.values() if e.live_claim_at(at)}
            due = sorted(
                (e for e in self._outbox.values() if e.claimable_at(at)),
                key=lambda e: (e.next_attempt_at or e.due_at, e.key),
            )
            claimed: list[OutboxEntry] = []
            for e in due:
                if len(claimed) >= limit:
                    break
                if e.customer_id in busy:
                    continue  # one dispatcher at a time sends to a customer
                busy.add(e.customer_id)
                c = attrs.evolve(
                    e,
                    state=OutboxState.CLAIMED,
                    claimed_by=worker,
                    lease_until=at + lease,
                    attempts=e.attempts + 1,
                    updated_at=at,
                )
                self._outbox[e.key] = c
                claimed.append(c)
            return claimed

    def settle(
        self,
        key: str,
        *,
        worker: str,
        state: OutboxState,
        at: datetime,
        next_attempt_at: datetime | None = None,
        error: str | None = None,
        failures: int = 0,
        in_doubt: bool = False,
        events: Sequence[Event] = (),
        snapshots: Sequence[Snapshot] = (),
    ) -> bool:
        with self._lock:
            self._check_open()
            e = self._outbox.get(key)
            if e is None or e.state is not OutboxState.CLAIMED or e.claimed_by != worker:
                return False
            self._insert(self._new_events(events).values())
            self._put(snapshots)
            self._outbox[key] = attrs.evolve(
                e,
                state=state,
                next_attempt_at=next_attempt_at
                if state is OutboxState.PENDING
                else e.next_attempt_at,
                claimed_by=None,
                lease_until=None,
                last_error=error,
                settled=e.attempts,
                failures=failures,
                in_doubt=in_doubt,
                updated_at=at,
            )
            return True

    # -- the planning index -------------------------------------------------------------------

    def planning_due(self, at: datetime, *, limit: int | None = None) -> dict[str, int]:
        with self._lock:
            self._check_open()
            due = sorted((t, c) for c, t in self._plan.items() if t is not None and t <= at)
            return {c: self._stamps[c] for _, c in due[:limit]}

    def planned(self, marks: Sequence[PlanMark]) -> None:
        with self._lock:
            self._check_open()
            for m in marks:
                if self._stamps.get(m.customer_id) == m.stamp:
                    self._plan[m.customer_id] = m.next_due

    def plan_fingerprint(self) -> str | None:
        with self._lock:
            return self._fingerprint

    def replan_all(self, fingerprint: str) -> None:
        with self._lock:
            self._check_open()
            for cid in list(self._plan):
                self._plan_now(cid)
            self._fingerprint = fingerprint

    # -- shop settings ----------------------------------------------------------------------

    def shop_settings(self) -> dict[str, str]:
        with self._lock:
            self._check_open()
            return dict(self._settings)

    def put_shop_settings(self, values: Mapping[str, str]) -> None:
        with self._lock:
            self._check_open()
            self._settings.update({str(k): str(v) for k, v in values.items()})

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def __repr__(self) -> str:
        return f"MemoryStore(customers={len(self._histories)}, events={len(self._by_id)})"
