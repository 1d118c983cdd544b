"""The facade: :class:`Lifecycle` wires a policy, a store and a clock into one object."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import secrets
import threading
import time as _time_module
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from datetime import datetime, timedelta
from enum import Enum
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, TypeVar, cast

import attrs

from lifecycle._bulk import collector_paused
from lifecycle._display import field_table, one_line
from lifecycle._ledger import check_orders, fold
from lifecycle._state import STATE_MIN_EVENTS, canonical, encode_state, policy_fingerprint
from lifecycle._time import require_aware, to_utc
from lifecycle.adapters._urls import is_server_url
from lifecycle.adapters.memory import MemoryStore
from lifecycle.adapters.sqlite import SQLiteStore
from lifecycle.analytics.batch import BatchAssessment, assess_stored, stored_rows
from lifecycle.analytics.batch import assess_all as batch_assess_all
from lifecycle.analytics.uplift import Uplift
from lifecycle.assessment import Assessment, assess_record, stage_and_status_of
from lifecycle.cadence.planner import Plan, join_plans
from lifecycle.clock import Clock, SystemClock
from lifecycle.dispatch import (
    DispatchReport,
    conversions_in,
    default_worker,
    dispatch,
    plan_stored,
    read_histories,
    read_records,
    to_outbox,
)
from lifecycle.errors import (
    ConcurrencyError,
    ConflictingEvent,
    ImportFailed,
    InvalidArgument,
    InvalidEvent,
    LifecycleError,
    NotFound,
)
from lifecycle.events import (
    CustomerErased,
    CustomerRegistered,
    Event,
    OwnerAssigned,
    OwnerProtected,
    PointsRedeemed,
    ProfileUpdated,
    Referred,
    ReturnedToPool,
    ReviewPosted,
    TierGranted,
    TierRevoked,
    sort_key,
)
from lifecycle.experiments import measure
from lifecycle.io import (
    PRESET_DEFAULTS,
    ColumnMapping,
    ImportSummary,
    OrderImport,
    RowProblem,
    ShopDefaults,
    customer_profiles,
    order_events,
    profile_events,
    read_orders,
)
from lifecycle.loyalty import check_loyalty
from lifecycle.owners import OwnerChanges, PoolSweep, admit, assign, protect, sweep, transfer
from lifecycle.policy import Policy
from lifecycle.ports import (
    Channel,
    EventFields,
    OutboxEntry,
    PlanIndex,
    PlanMark,
    ShopSettings,
    Snapshot,
    SnapshotStages,
    Store,
)
from lifecycle.reasons import Skipped
from lifecycle.record import CustomerRecord
from lifecycle.report import OwnerReport, ShopReport, owner_report, shop_report
from lifecycle.serde import encode_value, event_to_dict
from lifecycle.stages import StageChange, referral_periods, stage_history, stage_replay
from lifecycle.status import AliveModel
from lifecycle.vocabulary import OWNER_CHANNELS, Stage, Status
from lifecycle.whatif import PolicyComparison, compare_policies

__all__ = ["Lifecycle", "RecordResult"]

_T = TypeVar("_T")


@attrs.frozen(kw_only=True)
class RecordResult:
    """What :meth:`Lifecycle.record` did: events newly recorded and exact repeats skipped."""

    recorded: int
    duplicates: int
    customers: tuple[str, ...]

    def __repr__(self) -> str:
        return one_line(
            "RecordResult",
            f"{self.recorded:,} recorded",
            f"{self.duplicates:,} duplicates",
            f"{len(self.customers):,} customers",
        )

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [
            ("recorded", f"{self.recorded:,}"),
            ("exact repeats skipped", f"{self.duplicates:,}"),
            ("customers touched", f"{len(self.customers):,}"),
        ]
        return field_table(rows, caption="Recorded")


def _as_set(value: Any, kind: type, argument: str) -> frozenset[Any] | None:
    if value is None:
        return None
    try:
        if isinstance(value, kind | str | int):
            return frozenset({kind(value)})
        return frozenset(kind(v) for v in value)
    except (ValueError, TypeError):
        names = ", ".join(m.name.lower() for m in cast("type[Enum]", kind))
        raise InvalidArgument(
            f"not a {kind.__name__} or a collection of them; use {names}", argument=argument
        ) from None


def _sorted_skips(skipped: Iterable[Skipped]) -> tuple[Skipped, ...]:
    return tuple(sorted(skipped, key=lambda s: (s.customer_id, s.rule or "")))


def _order_events_of(histories: Iterable[Sequence[Event]]) -> dict[str, list[Event]]:
    """The order events of ``histories`` by order id (placements, payments, refunds, ...)."""
    out: dict[str, list[Event]] = {}
    for h in histories:
        for e in h:
            oid = getattr(e, "order_id", None)
            if oid is not None and not isinstance(e, ReviewPosted | PointsRedeemed):
                out.setdefault(oid, []).append(e)
    return out


def _hashes(mapping: object) -> bool:
    """Whether a mapping asks for hashed customer keys."""
    if isinstance(mapping, ColumnMapping):
        return mapping.hash_customer_key
    return isinstance(mapping, Mapping) and bool(mapping.get("hash_customer_key"))


def _fresh_id(key: str, generation: int, secret: bytes) -> str:
    """The id of a customer's history number ``generation`` after erasures: a keyed hash, so
    the ids alone do not link it to the erased one."""
    digest = hmac.new(secret, f"{key}\x1f{generation}".encode(), hashlib.sha256).hexdigest()
    return f"anon-{digest[:24]}"


def _listed(ids: Iterable[str]) -> Iterable[str]:
    """Customer ids read once into a list, to be read again on a retry; a lone text (or
    anything not iterable) is passed on as given, for the pool rules to refuse by name."""
    if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
        return ids
    return list(ids)


def _ids_only(ids: Iterable[str] | None) -> list[str]:
    """The texts among ``ids`` (whose whole histories the pool view reads)."""
    if ids is None or isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
        return []
    return [c for c in ids if isinstance(c, str)]


def _chunked(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


_RARE: Final = (CustomerErased, PointsRedeemed, TierGranted, TierRevoked)

#: Events the pool rules judge on the whole book (a return to the pool is always allowed).
_OWNER_CHANGES: Final = (OwnerAssigned, OwnerProtected)

#: What :meth:`Lifecycle.record` looks for in a batch, by event class: nothing (most events),
#: one of :data:`_RARE` or one of :data:`_OWNER_CHANGES`.
_OTHER: Final = 0
_RARE_KIND: Final = 1
_OWNER_CHANGE: Final = 2
_KINDS: dict[type, int] = {}


def _kind(cls: type) -> int:
    """The kind of events of class ``cls`` (worked out once per class)."""
    kind = (
        _RARE_KIND
        if issubclass(cls, _RARE)
        else _OWNER_CHANGE
        if issubclass(cls, _OWNER_CHANGES)
        else _OTHER
    )
    _KINDS[cls] = kind
    return kind


@attrs.frozen
class _PoolView:
    """What the pool rules read of the shop: every customer's owner events (whole histories
    for some) and every customer's version when read."""

    histories: dict[str, tuple[Event, ...]]
    versions: dict[str, int]


def _owner_events(history: Sequence[Event]) -> tuple[Event, ...]:
    """The events of ``history`` that decide ownership, returns to the pool without their
    reason text."""
    return tuple(
        attrs.evolve(e, reason=None) if isinstance(e, ReturnedToPool) else e
        for e in history
        if isinstance(e, OwnerAssigned | OwnerProtected | ReturnedToPool)
    )


#: How far past now dispatch planning looks for follow-ups coming, to know when to plan a
#: customer again: more than the longest day (25 hours when DST ends) to the next midnight.
_LOOKAHEAD: Final = timedelta(days=2)

#: Customers planned together: the planning bounds work on this many at once.
_PLAN_CHUNK: Final = 20_000

#: Batches at least this large pause the cyclic garbage collector while they are recorded.
_BULK = 1000

#: Redaction passes an erasure makes at most: one, and another should a host have stored
#: personal data for the customer without going through :meth:`Lifecycle.record`.
_ERASE_PASSES = 3


class Lifecycle:
    """The customer lifecycle of one shop.

    Args:
        store: where events live; ``None`` means a new in-memory store.
        policy: the shop's policies; ``None`` means the defaults.
        clock: where "now" comes from; ``None`` means the system clock.
        model: a fitted model that gives P(alive) for the status; ``None`` means the rhythm rule.
        channels: where follow-ups go, by channel name ("sms", "email", "wechat", "task", ...);
            :meth:`dispatch` sends through them.

    Without a ``policy``, the defaults apply with the shop's time zone and language as the
    first import recorded them (see :meth:`import_orders`).
    """

    #: Snapshots keep a customer's folded record from this many events on (see
    #: ``docs/storage.md``): shorter histories read and fold faster than a state decodes.
    state_from = STATE_MIN_EVENTS

    def __init__(
        self,
        *,
        store: Store | None = None,
        policy: Policy | None = None,
        clock: Clock | None = None,
        model: AliveModel | None = None,
        channels: Mapping[str, Channel] | None = None,
    ):
        self.store: Store = store if store is not None else MemoryStore()
        self._policy_given = policy is not None
        self.policy = policy if policy is not None else self._shop_policy(Policy())
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.model = model
        self.channels: dict[str, Channel] = dict(channels or {})
        self._worker = default_worker()
        # Jitter for retries after a conflict: drawn at random, so that writers that
        # collided do not collide again in step (not derived from the data on purpose).
        self._jitter = random.Random()  # not for secrets
        self._fingerprinted: tuple[Policy, AliveModel | None, str] | None = None
        # Each customer's owner events under the version they were read at (see _pool_view).
        self._pool_cache: dict[str, tuple[int, tuple[Event, ...]]] = {}
        self._pool_lock = threading.Lock()  # threads sharing this object share the cache

    @classmethod
    def in_memory(
        cls,
        *,
        policy: Policy | None = None,
        clock: Clock | None = None,
        model: AliveModel | None = None,
        channels: Mapping[str, Channel] | None = None,
    ) -> Lifecycle:
        """A lifecycle on a fresh in-memory store, for tests and notebooks."""
        return cls(store=MemoryStore(), policy=policy, clock=clock, model=model, channels=channels)

    @classmethod
    def open(
        cls,
        path: str | PathLike[str],
        *,
        policy: Policy | None = None,
        clock: Clock | None = None,
        model: AliveModel | None = None,
        channels: Mapping[str, Channel] | None = None,
        busy_timeout: float = 30.0,
        synchronous: str = "FULL",
        schema: str | None = None,
        prefix: str = "lifecycle_",
    ) -> Lifecycle:
        """A lifecycle on the embedded SQLite store in ``path`` (created if missing), or on a
        database server when ``path`` is its URL.

        A URL starting ``postgresql://``, ``mysql://`` or ``mariadb://`` (optionally with a
        driver: ``postgresql+psycopg://``, ``mysql+pymysql://``) opens
        :class:`~lifecycle.adapters.sql.SQLStore` (the ``sql`` extra) with ``schema`` and
        ``prefix``; anything else is a file. See
        :class:`~lifecycle.adapters.sqlite.SQLiteStore` for ``busy_timeout`` and
        ``synchronous``.
        """
        store: Store
        if isinstance(path, str) and is_server_url(path):
            # Only a server URL needs SQLAlchemy and the drivers (the ``sql`` extra).
            from lifecycle.adapters.sql import SQLStore

            store = SQLStore(path, schema=schema, prefix=prefix)
        else:
            store = SQLiteStore(path, busy_timeout=busy_timeout, synchronous=synchronous)
        return cls(store=store, policy=policy, clock=clock, model=model, channels=channels)

    # -- writing ------------------------------------------------------------------------------

    def record(self, *events: Event | Iterable[Event]) -> RecordResult:
        """Record events, all or nothing.

        Exact repeats of recorded events are skipped, so recording is idempotent. Raises
        :class:`InvalidEvent` (and records nothing) for a non-event, an id already used by a
        different event, or order events that contradict the history (a refund larger than
        the payment, a second payment).
        """
        flat: list[Event] = []
        for item in events:
            if isinstance(item, Event):
                flat.append(item)
            elif isinstance(item, Iterable) and not isinstance(item, str | bytes):
                flat.extend(item)
            else:
                raise InvalidEvent(f"expected an Event, got {type(item).__name__}")
        for e in flat:
            if not isinstance(e, Event):
                raise InvalidEvent(f"expected an Event, got {type(e).__name__}")
        batch = {e.event_id: e for e in flat}
        if len(batch) < len(flat):  # an id given twice: the same event, or a clash
            for e in flat:
                if batch[e.event_id] != e:
                    raise ConflictingEvent(e.event_id)
        with collector_paused(len(batch) >= _BULK):
            return self._retrying(lambda: self._record_once(list(batch.values())))

    def _retrying(self, work: Callable[[], _T]) -> _T:
        """``work()``, again after each ``ConcurrencyError``, waiting with exponential backoff
        and jitter (:class:`~lifecycle.policy.WritePolicy`) until the time budget is spent."""
        writes = self.policy.writes
        deadline = _time_module.monotonic() + writes.retry_budget_seconds
        conflicts = 0
        while True:
            try:
                return work()
            except ConcurrencyError:
                conflicts += 1
                wait = writes.backoff(conflicts, self._jitter.random())
                if _time_module.monotonic() + wait > deadline:
                    raise
                _time_module.sleep(wait)

    def _record_once(
        self,
        batch: list[Event],
        pool: _PoolView | None = None,
        *,
        checked: bool = False,
    ) -> RecordResult:
        """Record ``batch`` once (the caller retries on a conflict).

        A batch holding owner events is judged by the pool rules (:func:`lifecycle.owners.admit`)
        on every customer's owner events (``pool``, read here when not given; ``checked``: the
        events came from the rules on that very view), and written only if no customer's
        history changed since it was read: owners' loads, quotas and protections count
        everyone, so a concurrent change of any customer makes the write try again.
        """
        # One pass over the batch: each customer's events, and the rare kinds (erasures,
        # loyalty moves, owner changes) by the class of each event.
        grouped: dict[str, list[Event]] = {}
        rare: list[Event] = []
        owner_changes = False
        kinds = _KINDS
        for e in batch:
            events = grouped.get(e.customer_id)
            if events is None:
                grouped[e.customer_id] = [e]
            else:
                events.append(e)
            kind = kinds.get(type(e))
            if kind is None:
                kind = _kind(type(e))
            if kind == _RARE_KIND:
                rare.append(e)
            elif kind == _OWNER_CHANGE:
                owner_changes = True
        touched = grouped.keys()
        if pool is None and owner_changes:
            pool = self._pool_view()
        old = self.store.histories(touched)
        for cid in touched:
            old.setdefault(cid, ())
            if pool is not None and checked and len(old[cid]) != pool.versions.get(cid, 0):
                raise ConcurrencyError(cid)  # changed since the rules read it
        # An erased customer's personal data is dropped on the way in, too.
        erased = {e.customer_id for e in rare if isinstance(e, CustomerErased)}
        erased |= {cid for cid, h in old.items() if any(isinstance(e, CustomerErased) for e in h)}
        if erased:
            batch = [e.redacted() if e.customer_id in erased else e for e in batch]
        # An exact repeat belongs to the same customer, so the histories just read hold every
        # repeat; an id taken by another customer's event is refused by the store's append.
        stored = {e.event_id: e for h in old.values() for e in h}
        new = batch
        if stored:
            for e in batch:
                s = stored.get(e.event_id)
                if s is not None and s != e:
                    raise ConflictingEvent(e.event_id)
            new = [e for e in batch if e.event_id not in stored]
        if not new:
            return RecordResult(recorded=0, duplicates=len(batch), customers=())
        if pool is not None and not checked:
            view = {**pool.histories, **old}
            admit(view, new, self.policy.owners, to_utc(self.clock.now()))
        by_customer = grouped
        if new is not batch or erased:  # events left out or redacted: group what is left
            by_customer = {}
            for e in new:
                by_customer.setdefault(e.customer_id, []).append(e)
        histories: dict[str, tuple[Event, ...]] = {}
        # The history read is the version expected: a writer in between makes append refuse.
        versions: dict[str, int] = {}
        loyalty = {
            e.customer_id
            for e in rare
            if not isinstance(e, CustomerErased) and e.event_id not in stored
        }
        for cid, added in by_customer.items():
            check_orders(old[cid], added)
            if cid in loyalty:
                check_loyalty(
                    old[cid],
                    added,
                    self.policy,
                    referrals=self._referrals(
                        old[cid] + tuple(added), to_utc(self.clock.now()), None
                    ),
                )
            versions[cid] = len(old[cid])
            histories[cid] = old[cid] + tuple(added)
        snapshots = self._snapshots_after(histories, versions)
        if pool is not None:
            for cid, version in pool.versions.items():
                if cid in touched:
                    continue  # judged on the history read above, and expected at its version
                if versions.setdefault(cid, version) != version:
                    raise ConcurrencyError(cid)  # a referrer changed since the view was read
        added_count = self.store.append(new, snapshots, expected_versions=versions)
        return RecordResult(
            recorded=added_count,
            duplicates=len(batch) - added_count,
            customers=tuple(sorted(by_customer)),
        )

    def _snapshots_after(
        self, histories: dict[str, tuple[Event, ...]], versions: dict[str, int]
    ) -> list[Snapshot]:
        """Snapshots of the changed customers and of those who referred them.

        Referrers join ``versions`` so that a concurrent change to them is caught too.
        """
        now = to_utc(self.clock.now())
        # The referrals of every customer in one read of those they referred.
        converted = self._conversions(histories, now, histories)
        out = [
            self._snapshot(cid, hist, now, histories, len(hist), converted.get(cid, {}))
            for cid, hist in histories.items()
        ]
        referrers = {
            ref
            for refs in self.store.referrers(histories).values()
            for ref in refs
            if ref not in histories and ref not in versions
        }
        others = dict(sorted(self.store.histories(referrers).items()))
        converted = self._conversions(others, now, histories)
        for ref, hist in others.items():
            versions[ref] = len(hist)
            out.append(self._snapshot(ref, hist, now, histories, len(hist), converted.get(ref, {})))
        return out

    def _snapshot(
        self,
        customer_id: str,
        history: Sequence[Event],
        now: datetime,
        pending: dict[str, tuple[Event, ...]] | None,
        version: int,
        referrals: Mapping[str, datetime] | None = None,
    ) -> Snapshot:
        """The customer's stage and status as stored (without reasons, tier or points), and
        the fold of their history when it holds no event after ``now`` (its state).
        ``referrals``: the conversions of the customers they referred, when already read."""
        if referrals is None:
            referrals = self._referrals(history, now, pending)
        state = None
        at = to_utc(now)
        replay = (
            stage_replay(history, self.policy, at, referrals=referrals)
            if version >= self.state_from
            and len(history) == version
            and all(sort_key(e)[0] <= at for e in history)
            else None
        )
        if replay is not None and replay.ledger is not None:
            # The state keeps the fold and the stage history: one replay makes both.
            record = CustomerRecord.from_ledger(
                customer_id,
                replay.ledger,
                self.policy,
                at,
                history=lambda: history,
                version=version,
                stage_history=replay.changes,
                referrals=referrals,
                model=self.model,
            )
            state = encode_state(
                customer_id,
                replay.ledger,
                replay.events[-1],
                policy_fingerprint(self.policy),
                stage_history=replay.changes,
                stages_until=replay.until,
                referrals=referrals,
            )
        else:
            record = CustomerRecord(
                customer_id, history, self.policy, now, referrals=referrals, model=self.model
            )
        stage, status, valid_until = stage_and_status_of(record)
        return Snapshot(
            customer_id=customer_id,
            stage=stage,
            status=status,
            as_of=now,
            valid_until=valid_until,
            version=version,
            state=state,
        )

    # -- reading ------------------------------------------------------------------------------

    def _now(self, at: datetime | None) -> datetime:
        return to_utc(self.clock.now() if at is None else require_aware(at, "at"))

    def _referrals(
        self,
        history: Sequence[Event],
        now: datetime,
        pending: dict[str, tuple[Event, ...]] | None = None,
    ) -> dict[str, datetime]:
        """When each customer this one referred first made an order still valid at ``now``."""
        if not history:
            return {}
        cid = history[0].customer_id
        return self._conversions({cid: tuple(history)}, now, pending).get(cid, {})

    def _conversions(
        self,
        histories: Mapping[str, Sequence[Event]],
        now: datetime,
        pending: Mapping[str, Sequence[Event]] | None = None,
    ) -> dict[str, dict[str, datetime]]:
        """For each customer of ``histories``: when each customer they referred first made an
        order still valid at ``now`` (referred histories from ``pending``, else the store)."""
        return conversions_in(self.store, histories, self.policy, now, pending)

    def assess(self, customer_id: str, at: datetime | None = None) -> Assessment:
        """The customer's stage, status and reasons at ``at`` (default: the clock's now).

        Raises:
            NotFound: the customer has no events.
        """
        now = self._now(at)
        # The fold and the loyalty replays of a long history make many objects that all stay
        # alive until the end: a full collection in between would walk them (and every event
        # held) for nothing, and the cost of one assessment would grow faster than its history.
        with collector_paused():
            record = read_records(self.store, [customer_id], self.policy, now, model=self.model)
            if customer_id not in record:
                raise NotFound(customer_id)
            return assess_record(record[customer_id])

    def history(self, customer_id: str) -> tuple[Event, ...]:
        """The customer's events in replay order (time, then kind, then id)."""
        history = self.store.history(customer_id)
        if not history:
            raise NotFound(customer_id)
        return history

    def stage_history(
        self, customer_id: str, at: datetime | None = None
    ) -> tuple[StageChange, ...]:
        """Every stage change up to ``at``: "repeat buyer since 2026-03-02, order o-981"."""
        now = self._now(at)
        history = self.history(customer_id)
        # When each referred customer had a valid order: a referral refunded later counted then.
        referred = {e.referred_id for e in history if isinstance(e, Referred)}
        histories = {**self.store.histories(referred), customer_id: history}
        periods = referral_periods(histories, self.policy, now).get(customer_id)
        return stage_history(history, self.policy, now, referrals=periods)

    def customers(
        self,
        stage: Stage | Collection[Stage] | None = None,
        status: Status | Collection[Status] | None = None,
        *,
        at: datetime | None = None,
    ) -> list[str]:
        """Ids of the customers in ``stage`` and ``status`` at ``at``, sorted.

        Served from stored snapshots; a customer whose snapshot does not hold at ``at`` is
        assessed again (and, for the present, the snapshot refreshed).
        """
        now = self._now(at)
        stages = _as_set(stage, Stage, "stage")
        statuses = _as_set(status, Status, "status")
        out = [
            s.customer_id
            for s in self.store.snapshots(stages=stages, statuses=statuses, holding_at=now)
        ]
        refreshed: list[Snapshot] = []
        stale_ids = [s.customer_id for s in self.store.snapshots(expired_at=now)]
        histories = self.store.histories(stale_ids)
        for cid in stale_ids:
            history = histories.get(cid, ())
            fresh = self._snapshot(cid, history, now, histories, len(history))
            if at is None:
                refreshed.append(fresh)
            if (stages is None or fresh.stage in stages) and (
                statuses is None or fresh.status in statuses
            ):
                out.append(cid)
        if refreshed:
            self.store.put_snapshots(refreshed)
        out.sort()
        return out

    def assess_all(self, at: datetime | None = None) -> BatchAssessment:
        """Every stored customer's stage and status at ``at`` (default: the clock's now), as
        arrays in customer-id order.

        Equal, customer by customer, to :meth:`assess`, and stores nothing. A customer whose
        stored snapshot holds at ``at`` is answered by it (the snapshot is the assessment kept
        when their events were recorded); the others are decided together by the batch path
        (:func:`lifecycle.analytics.assess_all`) on their histories and those of the customers
        they referred, or, with a fitted value model, one by one as :meth:`assess` decides.
        Customers whose history cannot be read are left out and listed in ``skipped``.
        """
        now = self._now(at)
        with collector_paused():  # a row per customer, all alive to the end: nothing to collect
            ids = sorted(self.store.customer_ids())
            if isinstance(self.store, SnapshotStages):
                stored = self.store.snapshot_stages(now)
                parts = [BatchAssessment.of_values(stored, now)]
            else:
                held = [
                    (s.customer_id, s.stage, s.status) for s in self.store.snapshots(holding_at=now)
                ]
                parts = [BatchAssessment.of_parts(held, now)]
            answered = set(parts[0].customer_id.tolist())
            apart = [c for c in ids if c not in answered]
            skipped: list[Skipped] = []
            fields = self.model is None and isinstance(self.store, EventFields)
            for chunk in _chunked(apart, 100_000 if fields else 20_000):
                parts.append(self._assessed_apart(chunk, now, skipped))
            return BatchAssessment.joined(parts, now, skipped)

    def _assessed_apart(
        self, customer_ids: Sequence[str], now: datetime, skipped: list[Skipped]
    ) -> BatchAssessment:
        """The stage and status of customers no snapshot answers for at ``now``."""
        if self.model is not None:  # the status reads the model: one customer at a time
            records = read_records(
                self.store, customer_ids, self.policy, now, model=self.model, skipped=skipped
            )
            decided = [(cid, *stage_and_status_of(r)[:2]) for cid, r in records.items()]
            return BatchAssessment.of_parts(decided, now)
        if isinstance(self.store, EventFields):
            try:
                return self._assessed_from_fields(self.store, customer_ids, now)
            except (ValueError, TypeError, ArithmeticError):
                pass  # an event that does not decode: the histories below say whose
        histories = read_histories(self.store, customer_ids, skipped)
        referred = {e.referred_id for h in histories.values() for e in h if isinstance(e, Referred)}
        others = self.store.histories(referred - histories.keys())
        events = [e for h in (*histories.values(), *others.values()) for e in h]
        return batch_assess_all(events, self.policy, now).only(histories)

    def _assessed_from_fields(
        self, store: EventFields, customer_ids: Sequence[str], now: datetime
    ) -> BatchAssessment:
        """:meth:`_assessed_apart` from the fields of the stored events the batch reads,
        those of the customers referred included, without decoding a history."""
        rows = stored_rows(
            lambda ids, fields: store.event_fields(ids, fields, now), customer_ids, self.policy
        )
        return assess_stored(rows, customer_ids, self.policy, now).only(customer_ids)

    # -- follow-ups ---------------------------------------------------------------------------

    def plan(
        self,
        now: datetime | None = None,
        *,
        customers: Iterable[str] | None = None,
        horizon: timedelta = timedelta(0),
    ) -> Plan:
        """The follow-ups due by ``now`` (default: the clock's now), and those held back, with
        why, for every customer (or those in ``customers``).

        Planning is pure: it stores nothing. The same events, policy and ``now`` give the same
        plan; follow-ups already sent (a ``Contacted`` event with their key) are not planned
        again. With a fitted value model, win-back and at-risk rules read the status
        :meth:`assess` reports.
        """
        at = self._now(now)
        ids = (
            list(self.store.customer_ids()) if customers is None else list(dict.fromkeys(customers))
        )
        plans: list[Plan] = []
        skipped: list[Skipped] = []
        for chunk in _chunked(ids, _PLAN_CHUNK):
            plans.append(
                plan_stored(
                    self.store,
                    chunk,
                    self.policy,
                    at,
                    model=self.model,
                    horizon=horizon,
                    skipped=skipped,
                )[0]
            )
        plan = join_plans(plans, at)
        if skipped:
            plan = attrs.evolve(plan, skipped=_sorted_skips([*skipped, *plan.skipped]))
        return plan

    def dispatch(
        self,
        now: datetime | None = None,
        *,
        limit: int | None = None,
    ) -> DispatchReport:
        """Plan the follow-ups due by ``now`` into the outbox, and send what is due through
        :attr:`channels`, each at most once.

        Only customers whose events changed since they were last planned, or whose next due
        instant has come, are planned again (with a store that keeps the planning index, as
        the shipped ones do), so a dispatcher can run every minute. Sending asks the contact
        gate and the rule's stop conditions again at that moment, and records a ``Contacted``
        event with the follow-up's key in the same transaction as the outbox mark: planning
        and dispatching again never sends twice. Transient failures retry with backoff;
        permanent ones and messages whose outcome is unknown are reported. :meth:`plan` shows
        what would go out without storing or sending anything.
        """
        at = self._now(now)
        skipped: list[Skipped] = []
        planned = self._plan_into_outbox(at, skipped)
        report = dispatch(
            self.store,
            self.channels,
            self.policy,
            at,
            worker=self._worker,
            limit=limit,
            model=self.model,
        )
        return attrs.evolve(report, planned=planned, skipped=_sorted_skips(skipped))

    def _plan_into_outbox(self, at: datetime, skipped: list[Skipped]) -> int:
        """Store in the outbox what is due at ``at``; returns how many customers were planned.
        Customers that cannot be planned go to ``skipped`` (and stay due for the next run)."""
        store = self.store
        if not isinstance(store, PlanIndex):
            due = dict.fromkeys(store.customer_ids(), 0)
            return self._plan_chunks(due, at, None, skipped)
        fingerprint = self._fingerprint()
        if store.plan_fingerprint() != fingerprint:
            store.replan_all(fingerprint)
        return self._plan_chunks(store.planning_due(at), at, store, skipped)

    def _plan_chunks(
        self,
        due: Mapping[str, int],
        at: datetime,
        index: PlanIndex | None,
        skipped: list[Skipped],
    ) -> int:
        """Plan the customers of ``due`` (id to index stamp) a chunk at a time, store what is
        due in the outbox, and tell the index when each is next due."""
        for chunk in _chunked(list(due), _PLAN_CHUNK):
            failed: list[Skipped] = []
            lookahead = _LOOKAHEAD if index is not None else timedelta(0)
            plan, versions = plan_stored(
                self.store,
                chunk,
                self.policy,
                at,
                model=self.model,
                lookahead=lookahead,
                skipped=failed,
            )
            failed += plan.skipped
            skipped += failed
            entries = [to_outbox(f) for f in plan.due if f.channel is not None]
            if entries:
                self._store_entries(entries, versions)
            if index is not None:
                stuck = {s.customer_id for s in failed}
                index.planned(
                    [
                        PlanMark(customer_id=cid, stamp=due[cid], next_due=plan.next_due.get(cid))
                        for cid in chunk
                        if cid not in stuck
                    ]
                )
        return len(due)

    def _store_entries(self, entries: Sequence[OutboxEntry], versions: Mapping[str, int]) -> None:
        """Store planned entries, but only for customers whose history is still the one
        planned: an entry rendered from a history an erasure has since redacted must not
        bring the name back. A customer who changed is planned again (their stamp moved)."""
        try:
            self.store.append([], outbox=entries, expected_versions=versions)
        except ConcurrencyError:
            by_customer: dict[str, list[OutboxEntry]] = {}
            for e in entries:
                by_customer.setdefault(e.customer_id, []).append(e)
            for cid, mine in by_customer.items():
                with suppress(ConcurrencyError):
                    self.store.append([], outbox=mine, expected_versions={cid: versions[cid]})

    def _fingerprint(self) -> str:
        """What planning depends on besides the events: the policy and the value model, in a
        form that is the same in every process (worked out once per policy and model)."""
        cached = self._fingerprinted
        if cached is not None and cached[0] is self.policy and cached[1] is self.model:
            return cached[2]
        text = json.dumps([canonical(self.policy), repr(self.model)], sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()
        self._fingerprinted = (self.policy, self.model, digest)
        return digest

    # -- owners and the shared pool -------------------------------------------------------------

    def _all_histories(self) -> dict[str, tuple[Event, ...]]:
        return self._histories_of(None)

    def _histories_of(self, customers: Iterable[str] | None) -> dict[str, tuple[Event, ...]]:
        """The histories of ``customers`` (default: everyone), read a chunk at a time."""
        ids = list(self.store.customer_ids()) if customers is None else list(customers)
        histories: dict[str, tuple[Event, ...]] = {}
        for chunk in _chunked(ids, 5000):
            histories.update(self.store.histories(chunk))
        return histories

    def _pool_view(self, full: Iterable[str] = ()) -> _PoolView:
        """Every customer's owner events and version, and the whole histories of ``full``:
        what the pool rules read (loads, takes, protections, cooldowns count everyone).

        Owner events are kept between calls under the version they were read at: a customer
        whose version is unchanged is not read again. Returns to the pool keep no reason
        text, so nothing personal is kept."""
        with self._pool_lock:
            return self._pool_view_locked(set(full))

    def _pool_view_locked(self, wanted: set[str]) -> _PoolView:
        versions = self.store.versions()  # everyone's, in one read
        cache = self._pool_cache
        stale = [c for c, v in versions.items() if c in wanted or cache.get(c, (-1, ()))[0] != v]
        histories: dict[str, tuple[Event, ...]] = {}
        for chunk in _chunked(stale, 5000):
            for cid, history in self.store.histories(chunk).items():
                versions[cid] = len(history)
                cache[cid] = (len(history), _owner_events(history))
                if cid in wanted:
                    histories[cid] = history
        for cid in versions:
            if cid not in histories:
                histories[cid] = cache[cid][1] if cid in cache else ()
        for cid in set(cache) - set(versions):
            del cache[cid]  # no longer in the store
        return _PoolView(histories=histories, versions=versions)

    def _owner_write(
        self,
        decide: Callable[[dict[str, tuple[Event, ...]], datetime], _T],
        now: datetime | None,
        full: Iterable[str] = (),
    ) -> _T:
        """Read every customer's owner events (and the whole histories of ``full``, whose
        reasons cite their follow-ups), ``decide`` the owner changes on them, and record their
        events only if no customer changed meanwhile; otherwise read and decide again (the
        retry budget of :class:`~lifecycle.policy.WritePolicy`). So capacity, the daily quota
        and protections hold when several processes change owners at once.

        Without ``now``, the clock is read after the view: every event another writer stored
        before the read is then in the past, and counts."""
        wanted = list(full)

        def once() -> _T:
            pool = self._pool_view(wanted)
            result = decide(pool.histories, self._now(now))
            events = list(getattr(result, "events", ()))
            if events:
                self._record_once(events, pool, checked=True)
            return result

        return self._retrying(once)

    def assign_owners(
        self,
        owners: Sequence[str],
        now: datetime | None = None,
        *,
        customer_ids: Iterable[str] | None = None,
    ) -> OwnerChanges:
        """Give customers in the shared pool (new prospects, returned ones) to ``owners`` by
        the policy (round robin or least loaded, within capacity and the daily claim quota,
        respecting cooldowns), and record the ``OwnerAssigned`` events."""
        wanted = None if customer_ids is None else _listed(customer_ids)
        return self._owner_write(
            lambda book, at: assign(book, owners, self.policy.owners, at, customer_ids=wanted),
            now,
            _ids_only(wanted),
        )

    def transfer_owner(
        self,
        customer_ids: Iterable[str],
        to: str,
        now: datetime | None = None,
        *,
        kind: Literal["transfer", "bulk", "claim", "import"] = "transfer",
    ) -> OwnerChanges:
        """Move customers to owner ``to`` under the same rules as any assignment; the reclaim
        clock runs on."""
        wanted = _listed(customer_ids)
        return self._owner_write(
            lambda book, at: transfer(book, wanted, to, self.policy.owners, at, kind=kind),
            now,
            _ids_only(wanted),
        )

    def protect_customers(
        self, customer_ids: Iterable[str], owner: str, now: datetime | None = None
    ) -> OwnerChanges:
        """Let ``owner`` protect their customers from reclaim for ``owners.protection_days``
        (at most ``owners.max_protected`` at a time), recording ``OwnerProtected`` events;
        refused customers get a decision with the reason."""
        wanted = _listed(customer_ids)
        return self._owner_write(
            lambda book, at: protect(book, wanted, owner, self.policy.owners, at),
            now,
        )

    def sweep_pool(self, now: datetime | None = None) -> PoolSweep:
        """Return to the shared pool the customers whose owner did not follow up, or close a
        valid order, in time (``ReturnedToPool`` events saying why), and list the warnings for
        those close to it.

        A return to the pool breaks no rule, so the sweep is written like any event (a
        customer changed meanwhile makes it try again), not against the whole book."""
        at = self._now(now)
        histories = self._all_histories()
        # The stage at ``at`` decides the high-value limit: worked out now, not read from
        # stored snapshots that time may have overtaken.
        records = read_records(self.store, histories, self.policy, at, model=self.model)
        stages = {cid: r.stage for cid, r in records.items()}
        result = sweep(histories, self.policy.owners, at, stages=stages)
        if result.events:
            self.record(result.events)
        return result

    # -- value --------------------------------------------------------------------------------

    def fit_value_model(self, at: datetime | None = None, **settings: Any) -> Any:
        """Fit the value model (the ``clv`` extra) on every customer's valid orders up to
        ``at``, and use it from now on: BG/NBD, MBG/NBD or Pareto/NBD, whichever has the
        highest likelihood, a maximum on the boundary held by weak priors, and Gamma-Gamma.

        The status rule then reads P(alive) (the rhythm rule stays for customers with a single
        purchase day), and :meth:`assess` reports expected purchases and CLV. Stored snapshots
        are refreshed, so ``customers(status=...)`` agrees. Returns the
        :class:`lifecycle.clv.ValueModel`, whose ``reason`` and ``candidates`` say which model
        was chosen and why; ``settings`` go to :meth:`lifecycle.clv.ValueModel.fit` (e.g.
        ``horizon_days``, ``penalty``).

        Raises:
            lifecycle.errors.DataError: the shop's data cannot identify any model (no repeat
                buyers yet, or fewer than two customers).
        """
        from lifecycle.clv.model import ValueModel  # needs scipy, the ``clv`` extra

        now = self._now(at)
        histories = self._all_histories()
        events = [e for h in histories.values() for e in h]
        model = ValueModel.fit_events(events, self.policy, now, **settings)
        self.model = model
        current = self._now(None)
        self.store.put_snapshots(
            [self._snapshot(cid, h, current, histories, len(h)) for cid, h in histories.items()]
        )
        return model

    def report(
        self, at: datetime | None = None, *, fit: bool = True, currency: str | None = None
    ) -> ShopReport:
        """The whole shop at ``at`` (default: the clock's now): stages, health, loyalty, RFM
        segments, the 80/20 figures, clusters, the value model and the KPIs, each labelled
        with its window (see :func:`lifecycle.shop_report`).

        The value section uses the shop's fitted model, or (with ``fit``) fits one for the
        report without keeping it; when none can be fitted it says why. Money is counted in
        ``currency`` (default: the policy's); orders in other currencies are listed apart.
        Customers whose history cannot be read are left out and listed in ``skipped``.
        """
        now = self._now(at)
        skipped: list[Skipped] = []
        histories: dict[str, tuple[Event, ...]] = {}
        for chunk in _chunked(list(self.store.customer_ids()), 5000):
            histories.update(read_histories(self.store, chunk, skipped))
        report = shop_report(
            histories, self.policy, now, model=self.model, fit=fit, currency=currency
        )
        if skipped:
            report = attrs.evolve(report, skipped=_sorted_skips(skipped))
        return report

    # -- experiments and what-if ---------------------------------------------------------------

    def _replay_histories(self, skipped: list[Skipped]) -> dict[str, tuple[Event, ...]]:
        """Every customer's history, read a chunk at a time; unreadable ones in ``skipped``."""
        histories: dict[str, tuple[Event, ...]] = {}
        for chunk in _chunked(list(self.store.customer_ids()), 5000):
            histories.update(read_histories(self.store, chunk, skipped))
        return histories

    def _window(
        self, since: datetime | None, until: datetime | None, days: int
    ) -> tuple[datetime, datetime]:
        end = self._now(until)
        start = end - timedelta(days=days) if since is None else require_aware(since, "since")
        return to_utc(start), end

    def experiment(
        self,
        rule: str,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        step: timedelta = timedelta(days=1),
        alpha: float = 0.05,
    ) -> Uplift:
        """What ``rule``'s follow-ups changed: the customers it reached in ``[since, until)``
        (default: the 30 days before the clock's now), treated against those its ``holdout``
        held out, by conversion, orders and revenue per customer until ``until``, each
        difference with its interval and p-value (see :mod:`lifecycle.experiments`).

        The groups are derived from the policy's holdout, not stored: measure with the policy
        that was in force (see docs/experiments.md for a share changed mid-window). Customers
        whose history cannot be read or replayed are left out and listed in ``skipped``.

        Raises:
            UsageError: an unknown rule, a rule without a holdout, a bad window, or an empty
                group.
        """
        start, end = self._window(since, until, 30)
        skipped: list[Skipped] = []
        histories = self._replay_histories(skipped)
        result = measure(
            histories, self.policy, rule, start, end, step=step, alpha=alpha, skipped=skipped
        )
        if skipped:
            result = attrs.evolve(result, skipped=_sorted_skips(skipped))
        return result

    def compare(
        self,
        policy_a: Policy | None,
        policy_b: Policy,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        step: timedelta = timedelta(days=1),
    ) -> PolicyComparison:
        """Replay the stored history under ``policy_a`` (``None``: the shop's) and ``policy_b``
        over ``[since, until)`` (default: the 30 days before the clock's now) and show what
        would have differed: stage, status and tier counts, who moves and why, the follow-ups
        each rule would have sent or held, owners' loads. Nothing is written (see
        :func:`lifecycle.whatif.compare_policies`)."""
        start, end = self._window(since, until, 30)
        skipped: list[Skipped] = []
        histories = self._replay_histories(skipped)
        result = compare_policies(
            histories, policy_a or self.policy, policy_b, start, end, step=step
        )
        if skipped:
            result = attrs.evolve(result, skipped=_sorted_skips([*skipped, *result.skipped]))
        return result

    def owner_report(
        self,
        since: datetime,
        until: datetime | None = None,
        *,
        currency: str | None = None,
    ) -> OwnerReport:
        """Each owner's results over ``[since, until)`` (default until: the clock's now):
        customers held and taken, follow-up tasks due, done on time and overdue, escalations,
        conversions to first and repeat purchase, revenue and customers returned to the pool
        (see :func:`lifecycle.owner_report`). Customers whose history cannot be read are left
        out and listed in ``skipped``."""
        end = self._now(until)
        start = to_utc(require_aware(since, "since"))
        skipped: list[Skipped] = []
        histories: dict[str, tuple[Event, ...]] = {}
        for chunk in _chunked(list(self.store.customer_ids()), 5000):
            histories.update(read_histories(self.store, chunk, skipped))
        tasks = [e for e in self.store.outbox_entries() if e.channel in OWNER_CHANNELS]
        report = owner_report(histories, tasks, self.policy, start, end, currency=currency)
        if skipped:
            report = attrs.evolve(report, skipped=_sorted_skips((*report.skipped, *skipped)))
        return report

    # -- privacy ------------------------------------------------------------------------------

    def export(self, customer_id: str, at: datetime | None = None) -> str:
        """Everything held about the customer, as JSON: profile, events, assessment, outbox."""
        now = self._now(at)
        history = self.history(customer_id)
        profile = fold(history, self.policy, max(now, to_utc(history[-1].at))).profile
        a = self.assess(customer_id, now)
        document = {
            "customer_id": customer_id,
            "exported_at": now.isoformat(),
            "profile": encode_value(profile),
            "assessment": {
                "stage": a.stage.name,
                "status": None if a.status is None else a.status.value,
                "as_of": a.as_of.isoformat(),
                "reasons": [{"code": r.code, "en": r.en, "zh": r.zh} for r in a.reasons],
            },
            "events": [event_to_dict(e) for e in history],
            "outbox": [
                {
                    "key": o.key,
                    "channel": o.channel,
                    "rule": o.rule,
                    "state": o.state.value,
                    "due_at": o.due_at.isoformat(),
                    "attempts": o.attempts,
                    "text_en": o.text_en,
                    "text_zh": o.text_zh,
                    "subject_en": o.subject_en,
                    "subject_zh": o.subject_zh,
                    "payload": dict(o.payload),
                }
                for o in self.store.outbox_entries(customer_id=customer_id)
            ],
        }
        return json.dumps(document, ensure_ascii=False, indent=2)

    def erase(self, customer_id: str, at: datetime | None = None) -> int:
        """Erase the customer's personal data and never contact them again.

        Profiles are cut to their time zone and free text (feedback, reviews, complaints,
        replies) is dropped; ids, instants and amounts stay, so shop-level figures and stages
        do not change. The erasure is recorded first (``CustomerErased``); then every event
        stored before it is redacted, those another writer committed a moment before
        included, with the snapshot's state and the texts of every outbox entry, unsent ones
        cancelled; the store leaves no old copy in its files. Events recorded later for the
        customer are stripped on the way in. Channels that keep copies of what they sent
        (a ``forget(customer_id)`` method, as :class:`~lifecycle.JsonLinesChannel` has) are
        asked to drop them. Erasing twice is harmless and finishes what an interrupted
        erasure left. Returns how many events were redacted.

        Raises:
            NotFound: the customer has no events.
            lifecycle.errors.ErasureIncomplete: everything was redacted and recorded, but the store could not
                clean its files yet (another process holds the write-ahead log); erase again.
        """
        now = self._now(at)
        history = self.history(customer_id)
        if not any(isinstance(e, CustomerErased) for e in history):
            # Another process may have erased the customer a moment ago, at another instant.
            with suppress(ConflictingEvent):
                self.record(CustomerErased(customer_id=customer_id, at=now))
        # Read after the marker: every event stored before it is in this read, and a writer
        # that read before the marker fails its version check, reads again and is redacted.
        count = 0
        for attempt in range(_ERASE_PASSES):
            history = self.store.history(customer_id)
            redacted = [r for e in history if (r := e.redacted()) != e]
            if attempt and not redacted:
                break  # the second read finds nothing left: done
            self.store.forget(customer_id, redacted, now)
            count += len(redacted)
        for channel in self.channels.values():
            forget = getattr(channel, "forget", None)
            if callable(forget):
                forget(customer_id)
        return count

    # -- importing ----------------------------------------------------------------------------

    def shop_defaults(self) -> ShopDefaults:
        """The shop's time zone and language as the first import recorded them (``None`` where
        none was recorded, or the store keeps no settings)."""
        stored = self._settings()
        return ShopDefaults(timezone=stored.get("timezone"), language=stored.get("language"))

    def _settings(self) -> dict[str, str]:
        store = self.store
        return store.shop_settings() if isinstance(store, ShopSettings) else {}

    def _shop_policy(self, policy: Policy) -> Policy:
        """``policy`` with the shop's recorded zone and language."""
        stored = self._settings()
        defaults = ShopDefaults(timezone=stored.get("timezone"), language=stored.get("language"))
        try:
            return self._with_defaults(policy, defaults)
        except LifecycleError:
            return policy  # a setting this release cannot use: the defaults stand

    def _import_secret(self) -> bytes:
        """The shop's key for ids it must not reveal (hashed customer keys, the fresh ids of
        erased customers), made at first use; empty for a store that keeps no settings."""
        store = self.store
        if not isinstance(store, ShopSettings):
            return b""
        secret = store.shop_settings().get("import_secret")
        if secret is None:
            secret = secrets.token_hex(32)
            store.put_shop_settings({"import_secret": secret})
        return secret.encode("ascii")

    def import_orders(
        self,
        source: OrderImport | str | PathLike[str],
        *,
        preset: str = "generic",
        mapping: ColumnMapping | Mapping[str, Any] | None = None,
        tz: str | None = None,
        currency: str | None = None,
        encoding: str | None = None,
        skip_bad: bool = False,
        rejected_to: str | PathLike[str] | None = None,
        customer_key: Sequence[str] | str | None = None,
        hash_customer_key: bool | None = None,
        language: str | None = None,
        record_defaults: bool = True,
    ) -> ImportSummary:
        """Import an order export (a file, read by :func:`lifecycle.io.read_orders` with these
        options, or what it returned), day after day.

        Orders the shop knows become only what is new about them (a payment, a refund, a
        cancellation, a shipment, a delivery); a customer's details from a later file become a
        ``ProfileUpdated`` when they change anything; importing a file again records nothing.
        An order of an erased customer that the shop does not know yet starts a fresh history
        under a new id that cannot be told from the erased one without the shop's key.

        Amounts without a currency column are in ``currency`` (default: the policy's).

        The first import into a shop that has no recorded defaults records the file's zone and
        the preset's language (``tz`` and ``language`` override them; ``record_defaults=False``
        records none); a lifecycle opened without a policy uses them from then on.

        Raises:
            ImportFailed: the file cannot be read, or (without ``skip_bad``) has bad rows or
                orders that contradict earlier imports; nothing is recorded.
        """
        proposed = PRESET_DEFAULTS.get(preset, ShopDefaults())
        if isinstance(source, OrderImport):
            imported = source
            defaults = imported.defaults
        else:
            secret = self._import_secret() if (hash_customer_key or _hashes(mapping)) else None
            imported = read_orders(
                Path(source),
                preset=preset,
                mapping=mapping,
                tz=tz or proposed.timezone or self.policy.timezone,
                currency=currency or self.policy.currency,
                encoding=encoding,
                skip_bad=skip_bad,
                rejected_to=None if rejected_to is None else Path(rejected_to),
                customer_key=customer_key,
                hash_customer_key=hash_customer_key,
                key_secret=secret,
                language=language,
                with_events=False,
            )
            defaults = ShopDefaults(
                timezone=tz or proposed.timezone, language=language or proposed.language
            )
        orders = imported.exported
        # An order the shop knows stays with the customer it was recorded for: most are found
        # in the histories of the file's customers, the others (moved, or of a fresh history
        # after an erasure) by their events' ids.
        histories = dict(self.store.histories({o.customer_id for o in orders}))
        by_order = _order_events_of(histories.values())
        unknown = [o.order_id for o in orders if o.order_id not in by_order]
        ids = [f"{kind}:{oid}" for oid in unknown for kind in ("order_placed", "order_paid")]
        owner = {oid: events[0].customer_id for oid, events in by_order.items()}
        for e in self.store.events_by_id(ids).values():
            owner.setdefault(getattr(e, "order_id", ""), e.customer_id)
        elsewhere = {c for c in owner.values() if c not in histories}
        if elsewhere:
            found = self.store.histories(elsewhere)
            histories.update(found)
            by_order.update(_order_events_of(found.values()))
        route = self._route({o.customer_id for o in orders if o.order_id not in owner}, histories)
        placed = [
            attrs.evolve(o, customer_id=owner.get(o.order_id) or route[o.customer_id])
            for o in orders
        ]
        fresh = sum(
            1
            for o, p in zip(orders, placed, strict=True)
            if o.order_id not in owner and p.customer_id != o.customer_id
        )
        events: list[Event] = []
        refused: list[RowProblem] = []
        accepted = []
        new_orders = updated = unchanged = 0
        for o in placed:
            stored = by_order.get(o.order_id, [])
            new, problem = order_events(o, stored)
            if problem is not None:
                refused.append(RowProblem(o.row, None, problem))
                continue
            accepted.append(o)
            events.extend(new)
            if not stored:
                new_orders += 1
            elif new:
                updated += 1
            else:
                unchanged += 1
        registered = profiles = 0
        last_at: dict[str, datetime] = {}
        for o in accepted:
            last_at[o.customer_id] = max(last_at.get(o.customer_id, o.placed_at), o.placed_at)
        for cid, (profile, first_at) in customer_profiles(accepted).items():
            history = histories.get(cid, ())
            if any(isinstance(e, CustomerErased) for e in history):
                continue  # an erased customer's details are not kept again
            current = None
            if any(isinstance(e, CustomerRegistered) for e in history):
                current = fold(history, self.policy, to_utc(history[-1].at)).profile
            for e in profile_events(cid, profile, first_at, last_at[cid], current):
                events.append(e)
                registered += isinstance(e, CustomerRegistered)
                profiles += isinstance(e, ProfileUpdated)
        if refused and not skip_bad:
            raise ImportFailed(
                f"{Path(imported.source).name or 'the import'}: {len(refused)} order(s) "
                "contradict earlier imports, nothing imported",
                refused,
            )
        recorded_defaults = self._defaults_to_record(defaults) if record_defaults else None
        old_policy = self.policy
        if recorded_defaults is not None and not self._policy_given:
            self.policy = self._with_defaults(self.policy, recorded_defaults)
        try:
            result = self.record(events)
        except BaseException:
            self.policy = old_policy
            raise
        if recorded_defaults is not None and isinstance(self.store, ShopSettings):
            self.store.put_shop_settings(
                {k: v for k, v in attrs.asdict(recorded_defaults).items() if v is not None}
            )
        return ImportSummary(
            source=imported.source,
            orders_new=new_orders,
            orders_updated=updated,
            orders_unchanged=unchanged,
            refused=tuple(sorted((*imported.rejected, *refused), key=lambda p: p.row)),
            customers_new=registered,
            customers_updated=profiles,
            fresh_histories=fresh,
            recorded=result.recorded,
            defaults=recorded_defaults,
        )

    def _defaults_to_record(self, proposed: ShopDefaults) -> ShopDefaults | None:
        """What the first import records: the proposed zone and language, when the store keeps
        settings and has none of these yet."""
        if not isinstance(self.store, ShopSettings):
            return None
        stored = self.store.shop_settings()
        if "timezone" in stored or "language" in stored:
            return None
        if proposed.timezone is None and proposed.language is None:
            return None
        return proposed

    @staticmethod
    def _with_defaults(policy: Policy, defaults: ShopDefaults) -> Policy:
        if defaults.timezone is not None:
            policy = attrs.evolve(policy, timezone=defaults.timezone)
        if defaults.language is not None:
            policy = attrs.evolve(policy, language=defaults.language)
        return policy

    def _route(
        self, keys: Collection[str], histories: dict[str, tuple[Event, ...]]
    ) -> dict[str, str]:
        """The customer id each key's new orders go to: the key itself, or, once that
        customer is erased, a fresh id derived from the key, a generation and the shop's key.

        The histories read on the way are left in ``histories``.
        """
        out: dict[str, str] = {}
        pending = {k: (k, 0) for k in keys}
        secret: bytes | None = None
        while pending:
            unread = [cid for cid, _ in pending.values() if cid not in histories]
            histories.update(self.store.histories(unread))
            later: dict[str, tuple[str, int]] = {}
            for key, (cid, generation) in pending.items():
                if any(isinstance(e, CustomerErased) for e in histories.get(cid, ())):
                    secret = self._import_secret() if secret is None else secret
                    later[key] = (_fresh_id(key, generation + 1, secret), generation + 1)
                else:
                    out[key] = cid
            pending = later
        return out

    # -- resources ----------------------------------------------------------------------------

    def close(self) -> None:
        """Release the store's and the channels' resources."""
        for channel in self.channels.values():
            close = getattr(channel, "close", None)
            if callable(close):
                close()
        self.store.close()

    def __enter__(self) -> Lifecycle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return one_line("Lifecycle", repr(self.store), repr(self.clock))

    def _repr_html_(self) -> str:
        model = "none" if self.model is None else repr(self.model)
        rows: list[tuple[str, object]] = [
            ("store", repr(self.store)),
            ("clock", repr(self.clock)),
            ("shop time zone", self.policy.timezone),
            ("channels", ", ".join(sorted(self.channels)) or "none"),
            ("value model", model),
        ]
        return field_table(rows, caption="Lifecycle")
