"""The facade: :class:`Lifecycle` wires a policy, a store and a clock into one object."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from os import PathLike
from types import TracebackType
from typing import Any, Final, Literal, cast

import attrs

from lifecycle._bulk import collector_paused
from lifecycle._ledger import check_orders, fold
from lifecycle._time import require_aware, to_utc
from lifecycle.adapters._urls import is_server_url
from lifecycle.adapters.memory import MemoryStore
from lifecycle.adapters.sqlite import SQLiteStore
from lifecycle.assessment import Assessment, assess, stage_and_status
from lifecycle.cadence.planner import Plan, plan_customers
from lifecycle.clock import Clock, SystemClock
from lifecycle.dispatch import (
    DispatchReport,
    conversions_in,
    default_worker,
    dispatch,
    to_outbox,
)
from lifecycle.errors import (
    ConcurrencyError,
    ConflictingEvent,
    InvalidEvent,
    NotFound,
)
from lifecycle.events import (
    CustomerErased,
    Event,
    PointsRedeemed,
    Referred,
    TierGranted,
    TierRevoked,
)
from lifecycle.loyalty import check_loyalty
from lifecycle.owners import OwnerChanges, PoolSweep, assign, sweep, transfer
from lifecycle.policy import Policy
from lifecycle.ports import Channel, PlanIndex, PlanMark, Snapshot, Store
from lifecycle.report import ShopReport, shop_report
from lifecycle.serde import encode_value, event_to_dict
from lifecycle.stages import StageChange, referral_periods, stage_history
from lifecycle.status import AliveModel
from lifecycle.vocabulary import Stage, Status

__all__ = ["Lifecycle", "RecordResult"]


@attrs.frozen(kw_only=True)
class RecordResult:
    """What :meth:`Lifecycle.record` did: events newly recorded and exact repeats skipped."""

    recorded: int
    duplicates: int
    customers: tuple[str, ...]


def _as_set(value: Any, kind: type) -> frozenset[Any] | None:
    if value is None:
        return None
    if isinstance(value, kind | str):
        return frozenset({kind(value)})
    return frozenset(kind(v) for v in value)


def _chunked(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


_RARE: Final = (CustomerErased, PointsRedeemed, TierGranted, TierRevoked)

#: How far past now dispatch planning looks for follow-ups coming, to know when to plan a
#: customer again: more than the longest day (25 hours when DST ends) to the next midnight.
_LOOKAHEAD: Final = timedelta(days=2)

#: Batches at least this large pause the cyclic garbage collector while they are recorded.
_BULK = 1000


def _canonical(value: object) -> Any:
    """``value`` as plain data in a fixed order, the same in every process (sets sorted; a
    rule written as code by its class and id)."""
    if attrs.has(type(value)):
        fields = attrs.fields(cast("type[attrs.AttrsInstance]", type(value)))
        return [
            type(value).__qualname__,
            {f.name: _canonical(getattr(value, f.name)) for f in fields if f.init},
        ]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return sorted(([_canonical(k), _canonical(v)] for k, v in value.items()), key=repr)
    if isinstance(value, set | frozenset):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, datetime | date | time | timedelta | Decimal):
        return str(value)
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}:{getattr(value, 'id', '')}"


class Lifecycle:
    """The customer lifecycle of one shop.

    Args:
        store: where events live; ``None`` means a new in-memory store.
        policy: the shop's policies; ``None`` means the defaults.
        clock: where "now" comes from; ``None`` means the system clock.
        model: a fitted model that gives P(alive) for the status; ``None`` means the rhythm rule.
        channels: where follow-ups go, by channel name ("sms", "email", "wechat", "task", ...);
            :meth:`dispatch` sends through them.
    """

    #: How often :meth:`record` retries when another writer got there first.
    retries = 5

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
        self.policy = policy if policy is not None else Policy()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.model = model
        self.channels: dict[str, Channel] = dict(channels or {})
        self._worker = default_worker()
        self._fingerprinted: tuple[Policy, AliveModel | None, str] | None = None

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
            for attempt in range(self.retries + 1):
                try:
                    return self._record_once(list(batch.values()))
                except ConcurrencyError:
                    if attempt == self.retries:
                        raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _record_once(self, batch: list[Event]) -> RecordResult:
        touched = {e.customer_id for e in batch}
        old = self.store.histories(touched)
        for cid in touched:
            old.setdefault(cid, ())
        # Erasures and loyalty moves are rare: find them in one pass.
        rare = [e for e in batch if isinstance(e, _RARE)]
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
        by_customer: dict[str, list[Event]] = {}
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
        out = [
            self._snapshot(cid, hist, now, histories, len(hist)) for cid, hist in histories.items()
        ]
        referrers = {
            ref
            for refs in self.store.referrers(histories).values()
            for ref in refs
            if ref not in histories and ref not in versions
        }
        for ref, hist in sorted(self.store.histories(referrers).items()):
            versions[ref] = len(hist)
            out.append(self._snapshot(ref, hist, now, histories, len(hist)))
        return out

    def _snapshot(
        self,
        customer_id: str,
        history: Sequence[Event],
        now: datetime,
        pending: dict[str, tuple[Event, ...]] | None,
        version: int,
    ) -> Snapshot:
        """The customer's stage and status as stored: without reasons, tier or points."""
        stage, status, valid_until = stage_and_status(
            history,
            self.policy,
            now,
            referrals=self._referrals(history, now, pending),
            model=self.model,
        )
        return Snapshot(
            customer_id=customer_id,
            stage=stage,
            status=status,
            as_of=now,
            valid_until=valid_until,
            version=version,
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

    def _assess(
        self,
        customer_id: str,
        history: Sequence[Event],
        now: datetime,
        pending: dict[str, tuple[Event, ...]] | None = None,
        *,
        explain: bool = True,
    ) -> Assessment:
        return assess(
            customer_id,
            history,
            self.policy,
            now,
            referrals=self._referrals(history, now, pending),
            model=self.model,
            explain=explain,
        )

    def assess(self, customer_id: str, at: datetime | None = None) -> Assessment:
        """The customer's stage, status and reasons at ``at`` (default: the clock's now).

        Raises:
            NotFound: the customer has no events.
        """
        now = self._now(at)
        history = self.store.history(customer_id)
        if not history:
            raise NotFound(customer_id)
        return self._assess(customer_id, history, now)

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
        stages = _as_set(stage, Stage)
        statuses = _as_set(status, Status)
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
        histories = self._histories_of(customers)
        return plan_customers(
            histories,
            self.policy,
            at,
            horizon=horizon,
            model=self.model,
            referrals=self._conversions(histories, at),
        )

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
        planned = self._plan_into_outbox(at)
        report = dispatch(
            self.store,
            self.channels,
            self.policy,
            at,
            worker=self._worker,
            limit=limit,
            model=self.model,
        )
        return attrs.evolve(report, planned=planned)

    def _plan_into_outbox(self, at: datetime) -> int:
        """Store in the outbox what is due at ``at``; returns how many customers were planned."""
        store = self.store
        if not isinstance(store, PlanIndex):
            return self._plan_chunks(dict.fromkeys(store.customer_ids(), 0), at, index=None)
        fingerprint = self._fingerprint()
        if store.plan_fingerprint() != fingerprint:
            store.replan_all(fingerprint)
        return self._plan_chunks(store.planning_due(at), at, index=store)

    def _plan_chunks(self, due: Mapping[str, int], at: datetime, index: PlanIndex | None) -> int:
        """Plan the customers of ``due`` (id to index stamp) a chunk at a time, store what is
        due in the outbox, and tell the index when each is next due."""
        for chunk in _chunked(list(due), 5000):
            histories = self.store.histories(chunk)
            plan = plan_customers(
                histories,
                self.policy,
                at,
                model=self.model,
                referrals=self._conversions(histories, at),
                lookahead=_LOOKAHEAD if index is not None else timedelta(0),
            )
            entries = [to_outbox(f) for f in plan.due if f.channel is not None]
            if entries:
                self.store.append([], outbox=entries)
            if index is not None:
                index.planned(
                    [
                        PlanMark(customer_id=cid, stamp=due[cid], next_due=plan.next_due.get(cid))
                        for cid in chunk
                    ]
                )
        return len(due)

    def _fingerprint(self) -> str:
        """What planning depends on besides the events: the policy and the value model, in a
        form that is the same in every process (worked out once per policy and model)."""
        cached = self._fingerprinted
        if cached is not None and cached[0] is self.policy and cached[1] is self.model:
            return cached[2]
        text = json.dumps([_canonical(self.policy), repr(self.model)], sort_keys=True)
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

    def assign_owners(
        self,
        owners: Sequence[str],
        now: datetime | None = None,
        *,
        customer_ids: Iterable[str] | None = None,
    ) -> OwnerChanges:
        """Give customers in the shared pool (new prospects, returned ones) to ``owners`` by
        the policy (round robin or least loaded, within capacity, respecting cooldowns), and
        record the ``OwnerAssigned`` events."""
        at = self._now(now)
        changes = assign(
            self._all_histories(), owners, self.policy.owners, at, customer_ids=customer_ids
        )
        if changes.events:
            self.record(changes.events)
        return changes

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
        at = self._now(now)
        changes = transfer(
            self._all_histories(), customer_ids, to, self.policy.owners, at, kind=kind
        )
        if changes.events:
            self.record(changes.events)
        return changes

    def sweep_pool(self, now: datetime | None = None) -> PoolSweep:
        """Return to the shared pool the customers whose owner did not follow up in time
        (``ReturnedToPool`` events saying why), and list the warnings for those close to it."""
        at = self._now(now)
        histories = self._all_histories()
        # The stage at ``at`` decides the high-value limit: worked out now, not read from
        # stored snapshots that time may have overtaken.
        stages = {
            cid: stage_and_status(
                h,
                self.policy,
                at,
                referrals=self._referrals(h, at, histories),
                model=self.model,
            )[0]
            for cid, h in histories.items()
        }
        result = sweep(histories, self.policy.owners, at, stages=stages)
        if result.events:
            self.record(result.events)
        return result

    # -- value --------------------------------------------------------------------------------

    def fit_value_model(self, at: datetime | None = None, **settings: Any) -> Any:
        """Fit the value model (BG/NBD and Gamma-Gamma, the ``clv`` extra) on every customer's
        valid orders up to ``at``, and use it from now on.

        The status rule then reads P(alive) (the rhythm rule stays for customers with a single
        purchase day), and :meth:`assess` reports expected purchases and CLV. Stored snapshots
        are refreshed, so ``customers(status=...)`` agrees. Returns the
        :class:`lifecycle.clv.ValueModel`; ``settings`` go to it (e.g. ``horizon_days``).

        Raises:
            lifecycle.errors.DataError: the shop's data cannot identify the model (e.g. no
                repeat buyers yet).
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

    def report(self, at: datetime | None = None, *, fit: bool = True) -> ShopReport:
        """The whole shop at ``at`` (default: the clock's now): stages, health, loyalty, RFM
        segments, the 80/20 figures, clusters, the value model and the KPIs, each labelled
        with its window (see :func:`lifecycle.shop_report`).

        The value section uses the shop's fitted model, or (with ``fit``) fits one for the
        report without keeping it; when none can be fitted it says why.
        """
        return shop_report(
            self._all_histories(), self.policy, self._now(at), model=self.model, fit=fit
        )

    # -- privacy ------------------------------------------------------------------------------

    def export(self, customer_id: str, at: datetime | None = None) -> str:
        """Everything held about the customer, as JSON: profile, events, assessment, outbox."""
        now = self._now(at)
        history = self.history(customer_id)
        profile = fold(history, self.policy, max(now, to_utc(history[-1].at))).profile
        a = self._assess(customer_id, history, now)
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
        do not change. Unsent messages are cancelled. Events recorded later for the customer
        are stripped the same way. Erasing twice is harmless. Returns how many events were
        redacted.
        """
        now = self._now(at)
        history = self.history(customer_id)
        self.record(CustomerErased(customer_id=customer_id, at=now))
        redacted = [r for e in history if (r := e.redacted()) != e]
        self.store.forget(customer_id, redacted, now)
        return len(redacted)

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
        return f"Lifecycle(store={self.store!r}, clock={self.clock!r})"
