"""The interfaces a host implements to plug in its own infrastructure.

Hosts implement these without inheriting from anything; ``lifecycle.testing`` holds the
conformance suites that prove an implementation keeps the contract.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import attrs

from lifecycle.events import Event
from lifecycle.vocabulary import Stage, Status

__all__ = [
    "Channel",
    "Erasure",
    "EventFields",
    "EventLog",
    "Message",
    "OutboxEntry",
    "OutboxState",
    "OutboxStore",
    "PlanIndex",
    "PlanMark",
    "SendResult",
    "ShopSettings",
    "Snapshot",
    "SnapshotStages",
    "SnapshotStore",
    "Store",
]


@attrs.frozen(kw_only=True)
class Snapshot:
    """The latest assessment of a customer, kept beside the events for fast filtering.

    A snapshot holds for instants in ``[as_of, valid_until)`` as long as the customer has
    exactly ``version`` events; outside that, the facade assesses again.

    ``state`` is the customer's history folded through their first ``version`` events, encoded
    by the library: a later read folds only the events stored since
    (:meth:`Store.history_since`) instead of the whole history. A store keeps the bytes as they
    are, or none at all (the memory store, whose histories cost nothing to read). It holds
    personal data, so erasure clears it. ``None`` when the snapshot keeps only the stage and
    status; :meth:`Store.snapshots` listings may leave it out.
    """

    customer_id: str
    stage: Stage
    status: Status | None
    as_of: datetime
    valid_until: datetime | None
    version: int
    state: bytes | None = attrs.field(default=None, repr=False)

    def holds_at(self, at: datetime) -> bool:
        """Whether this snapshot is the assessment at ``at``."""
        return self.as_of <= at and (self.valid_until is None or at < self.valid_until)


class OutboxState(StrEnum):
    """Where a planned message stands in the outbox."""

    PENDING = "pending"
    """Waiting for ``next_attempt_at`` (its due time, or a retry)."""
    CLAIMED = "claimed"
    """Held by one dispatcher until ``lease_until``; after that, claimable again."""
    SENT = "sent"
    """Delivered to the channel; never sent again."""
    FAILED = "failed"
    """Given up: a permanent failure or too many attempts."""
    CANCELLED = "cancelled"
    """Withdrawn before sending (consent withdrawn, customer erased, rule stopped)."""


@attrs.frozen(kw_only=True)
class OutboxEntry:
    """A planned message, stored so that it is sent once and only once.

    ``key`` is deterministic (customer, rule, occurrence): storing the same key twice keeps the
    first entry. The rendered texts (and e-mail subjects) in English and Chinese travel with
    the entry, so the dispatcher needs nothing else from the plan; ``payload`` holds a host's
    own JSON-ready values.

    Attributes:
        valid_until: after this instant the message is pointless and is cancelled unsent.
        priority: the rule's priority.
        reason: the code of the reason the rule fired.
        contact_channel: for an owner task, how the owner reaches the customer (``"phone"``).
        planned: made by the planner from a rule of the policy (:func:`lifecycle.dispatch.to_outbox`):
            the dispatcher asks that rule again whether the message is still wanted. An entry a
            host makes itself (``False``) meets only the contact gate.
        attempts: how often the entry was claimed.
        settled: the number of the last attempt that ended with a settle; an attempt between
            that one and ``attempts`` was abandoned (its outcome is unknown).
        failures: transient failures so far.
        in_doubt: an attempt may have gone out without being marked.
        last_error: the last failure's or hold's text, for people.
    """

    key: str
    customer_id: str
    channel: str
    due_at: datetime
    rule: str | None = None
    purpose: str | None = None
    template: str | None = None
    valid_until: datetime | None = None
    priority: int = 0
    reason: str | None = None
    contact_channel: str | None = None
    planned: bool = False
    text_en: str = attrs.field(default="", repr=False)
    text_zh: str = attrs.field(default="", repr=False)
    subject_en: str | None = attrs.field(default=None, repr=False)
    subject_zh: str | None = attrs.field(default=None, repr=False)
    payload: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    state: OutboxState = OutboxState.PENDING
    attempts: int = 0
    settled: int = 0
    failures: int = 0
    in_doubt: bool = False
    next_attempt_at: datetime | None = None
    claimed_by: str | None = None
    lease_until: datetime | None = None
    last_error: str | None = None
    updated_at: datetime | None = None

    def __attrs_post_init__(self) -> None:
        if self.next_attempt_at is None:
            object.__setattr__(self, "next_attempt_at", self.due_at)

    def claimable_at(self, at: datetime) -> bool:
        """Whether a dispatcher may claim this entry at ``at``."""
        if self.state is OutboxState.PENDING:
            return self.next_attempt_at is not None and self.next_attempt_at <= at
        if self.state is OutboxState.CLAIMED:
            return self.lease_until is not None and self.lease_until <= at
        return False

    def live_claim_at(self, at: datetime) -> bool:
        """Whether a dispatcher holds this entry at ``at`` (claimed, lease not run out)."""
        return (
            self.state is OutboxState.CLAIMED
            and self.lease_until is not None
            and self.lease_until > at
        )

    @property
    def abandoned(self) -> bool:
        """An earlier attempt was claimed and never settled: it may or may not have gone out."""
        return self.attempts - 1 > self.settled

    def text(self, lang: str = "en") -> str:
        """The message text in ``lang`` (English when there is none in ``lang``)."""
        text = self.text_zh if lang == "zh" else self.text_en
        return text or self.text_en or self.text_zh

    def subject(self, lang: str = "en") -> str | None:
        """The e-mail subject in ``lang``, if the template gives one."""
        return (self.subject_zh if lang == "zh" else self.subject_en) or self.subject_en


@runtime_checkable
class EventLog(Protocol):
    """The event log: a customer's events, stored once each, read back in replay order.

    The first capability of a :class:`Store`; its contract is the store's (atomic appends,
    idempotent ids, optimistic concurrency by version). ``lifecycle.testing.EventLogContract``
    checks it.
    """

    def append(
        self,
        events: Sequence[Event],
        snapshots: Sequence[Snapshot] = (),
        *,
        outbox: Sequence[OutboxEntry] = (),
        expected_versions: Mapping[str, int] | None = None,
    ) -> int:
        """Store events, snapshots and new outbox entries in one transaction.

        Returns how many events were new. Outbox entries whose key is already stored are left
        as they are.
        """
        ...

    def events_by_id(self, event_ids: Iterable[str]) -> dict[str, Event]:
        """The stored events among ``event_ids``, by id; unknown ids are left out."""
        ...

    def history(self, customer_id: str) -> tuple[Event, ...]:
        """The customer's events in replay order; empty for an unknown customer."""
        ...

    def histories(self, customer_ids: Iterable[str]) -> dict[str, tuple[Event, ...]]:
        """Several customers' histories in one read, each in replay order.

        Customers without events are left out. Bulk ingest reads every touched customer at
        once through this.
        """
        ...

    def history_since(self, customer_id: str, version: int) -> tuple[Event, ...]:
        """The customer's events stored after their first ``version``, in replay order.

        With a snapshot's ``version`` this is what its ``state`` has not folded yet.
        """
        ...

    def version(self, customer_id: str) -> int:
        """How many events the customer has; 0 for an unknown customer."""
        ...

    def versions(self, customer_ids: Iterable[str] | None = None) -> dict[str, int]:
        """Several customers' versions in one read: what :meth:`version` gives each.

        ``None`` reads every customer with at least one event, in the order of
        :meth:`customer_ids`; given ids, the stored ones among them (unknown customers are left
        out). The pool rules read everyone's version on
        each owner change through this, so a server store answers in a few queries, not one
        per customer.
        """
        ...

    def customer_ids(self) -> Iterator[str]:
        """Every customer with at least one event, in sorted order."""
        ...

    def referrers(self, customer_ids: Iterable[str]) -> dict[str, frozenset[str]]:
        """For each of ``customer_ids`` that was referred: the customers who referred them.

        Customers nobody referred are left out.
        """
        ...

    def close(self) -> None:
        """Release resources; the store is not used afterwards."""
        ...


@runtime_checkable
class SnapshotStore(Protocol):
    """The latest assessment of each customer, kept beside the events for fast filtering.

    ``lifecycle.testing.SnapshotContract`` checks it.
    """

    def put_snapshots(self, snapshots: Sequence[Snapshot]) -> None:
        """Replace snapshots, skipping any whose ``version`` is not the customer's current one."""
        ...

    def snapshots(
        self,
        *,
        stages: Collection[Stage] | None = None,
        statuses: Collection[Status | None] | None = None,
        holding_at: datetime | None = None,
        expired_at: datetime | None = None,
    ) -> Iterator[Snapshot]:
        """Stored snapshots in customer id order, filtered by every argument given.

        ``holding_at`` keeps those that hold at that instant (``as_of <= t < valid_until``),
        ``expired_at`` those that do not. Every customer the facade recorded has a snapshot.
        The ``state`` may be left out (``None``); :meth:`snapshot` returns it.
        """
        ...

    def snapshot(self, customer_id: str) -> Snapshot | None:
        """The customer's stored snapshot, if any, with its ``state``."""
        ...

    def close(self) -> None:
        """Release resources; the store is not used afterwards."""
        ...


@runtime_checkable
class OutboxStore(Protocol):
    """Planned messages under deterministic keys, claimed under a lease and settled once.

    ``lifecycle.testing.OutboxContract`` checks it.
    """

    def outbox_entry(self, key: str) -> OutboxEntry | None:
        """The outbox entry under ``key``, if any."""
        ...

    def outbox_entries(
        self,
        *,
        states: Collection[OutboxState] | None = None,
        customer_id: str | None = None,
    ) -> Iterator[OutboxEntry]:
        """Outbox entries, by due time then key, filtered when arguments are given."""
        ...

    def claim(
        self, at: datetime, *, worker: str, lease: timedelta, limit: int = 100
    ) -> list[OutboxEntry]:
        """Claim up to ``limit`` entries claimable at ``at`` for ``worker``, oldest due first.

        Each claimed entry becomes ``CLAIMED`` by ``worker`` until ``at + lease`` with
        ``attempts`` one higher. No entry is handed to two callers whose leases overlap, and
        one call claims at most one entry per customer and none of a customer who has another
        entry under a live claim (checked in the same transaction as the claim).
        """
        ...

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
        """Move ``worker``'s claimed entry to ``state`` and store ``events`` with it, atomically.

        ``PENDING`` with ``next_attempt_at`` schedules a retry. The entry's ``settled`` becomes
        its ``attempts``; ``failures``, ``in_doubt`` and ``last_error`` (``error``) are set as
        given. Returns ``False`` (changing nothing) when ``worker`` no longer holds the claim.
        """
        ...

    def close(self) -> None:
        """Release resources; the store is not used afterwards."""
        ...


@runtime_checkable
class Erasure(Protocol):
    """Erasing a customer's personal data everywhere the store keeps it.

    ``lifecycle.testing.ErasureContract`` checks it.
    """

    def forget(self, customer_id: str, redacted: Sequence[Event], at: datetime) -> None:
        """Erase a customer's personal data, in one transaction.

        Replaces each stored event of ``redacted`` by its redacted copy (same id, customer and
        type), clears the ``state`` of the customer's snapshot, cancels the customer's unsent
        outbox entries, and clears the texts, subjects and payloads of all their outbox
        entries, sent ones included. The old contents must not
        survive anywhere the store writes (free pages, journals). Forgetting again is
        harmless.

        Raises:
            lifecycle.errors.ErasureIncomplete: the redaction committed, but old copies could
                not be wiped yet (a journal another connection holds); call again.
        """
        ...

    def close(self) -> None:
        """Release resources; the store is not used afterwards."""
        ...


@runtime_checkable
class Store(EventLog, SnapshotStore, OutboxStore, Erasure, Protocol):
    """Where events and snapshots live.

    Contract, for every implementation:

    - ``append`` is atomic: every event and snapshot of the call is stored, or none is.
    - Events are idempotent by ``event_id``: appending an event equal to a stored one stores
      nothing; appending a *different* event under a stored id raises ``ConflictingEvent`` and
      stores nothing.
    - A customer's ``version`` is the number of their stored events. ``append`` with
      ``expected_versions`` raises ``ConcurrencyError`` (storing nothing) when any listed
      customer's version differs, so two writers never both win silently.
    - ``history`` returns events in replay order (``lifecycle.events.sort_key``).
    - Outbox entries are idempotent by ``key``; ``claim`` hands each claimable entry to one
      caller only, never an entry of a customer another entry of whom is under a live claim,
      and ``settle`` changes an entry only for the worker holding its claim. So at most one
      dispatcher sends to a customer at a time, and what it reads of the history after its
      claim includes every message sent before.
    - Driver failures surface as ``StoreError``; nothing is half-written.
    """


@attrs.frozen(kw_only=True)
class PlanMark:
    """That ``customer_id`` was planned from what the index said at ``stamp``, and when time
    alone next makes a follow-up due for them (``None``: only new events can)."""

    customer_id: str
    stamp: int
    next_due: datetime | None


@runtime_checkable
class PlanIndex(Protocol):
    """A store that knows whom to plan: the customers whose events changed since they were
    last planned (or whose referred customers' did), and those whose next due instant came.

    Optional: the facade plans every customer on each dispatch for a store without it.

    Contract: each customer has a stamp that grows whenever they become due at once (their
    events change, a customer they referred has new events, :meth:`replan_all`);
    :meth:`planned` records a mark only when its stamp is still the customer's, so a change
    that arrives while a plan is made keeps the customer due.
    """

    def planning_due(self, at: datetime, *, limit: int | None = None) -> dict[str, int]:
        """The customers due for planning at ``at`` with their stamps, longest waiting first."""
        ...

    def planned(self, marks: Sequence[PlanMark]) -> None:
        """Record that these customers were planned (see the contract)."""
        ...

    def plan_fingerprint(self) -> str | None:
        """The fingerprint given to the last :meth:`replan_all`, if any."""
        ...

    def replan_all(self, fingerprint: str) -> None:
        """Make every customer due for planning (the policy or the model changed)."""
        ...


@runtime_checkable
class EventFields(Protocol):
    """A store that reads a few fields of stored events without building the events.

    Optional: ``Lifecycle.assess_all`` decides the customers no snapshot answers for from
    these fields when the store has it, and from their decoded histories otherwise.

    Contract: the events are those the store's :meth:`EventLog.histories` would give, read as
    written (the store checked them when they were recorded).
    """

    def event_fields(
        self,
        customer_ids: Iterable[str],
        fields: Mapping[str, Sequence[str]],
        until: datetime,
    ) -> list[tuple[Any, ...]]:
        """``(customer id, instant, type, value, ...)`` of each stored event of these
        customers whose type is a key of ``fields`` and whose instant is at or before
        ``until``, each customer's events in replay order: the instant in whole microseconds
        since 1970 UTC, then the values of the fields named for its type (dotted paths such
        as ``profile.timezone``) as their JSON holds them (decimals as text, ``None`` for null
        or absent), padded with ``None`` to the most fields named for any type.

        Raises:
            InvalidEvent: an event read does not decode.
        """
        ...


@runtime_checkable
class SnapshotStages(Protocol):
    """A store that lists the stage and status of the snapshots holding at an instant as plain
    values, without building the snapshots.

    Optional: ``Lifecycle.assess_all`` reads them through :meth:`SnapshotStore.snapshots`
    otherwise (a snapshot object per customer costs more than its three values).
    """

    def snapshot_stages(self, holding_at: datetime) -> list[tuple[str, int, str | None]]:
        """``(customer id, stage value, status value or None)`` of each stored snapshot that
        holds at ``holding_at`` (as :meth:`Snapshot.holds_at` says), in customer id order."""
        ...


@runtime_checkable
class ShopSettings(Protocol):
    """A store that keeps a few settings of the shop beside its events: the defaults the first
    import recorded (``timezone``, ``language``) and the key that derives ids the shop must
    not reveal (``import_secret``).

    Optional: without it, imports record no defaults and commands use the policy given.

    Contract: keys and values are short texts; :meth:`put_shop_settings` stores the given keys
    in one transaction, replacing their old values and keeping the other keys.
    """

    def shop_settings(self) -> dict[str, str]:
        """Every stored setting; empty for a new shop."""
        ...

    def put_shop_settings(self, values: Mapping[str, str]) -> None:
        """Store ``values`` (see the contract)."""
        ...


@attrs.frozen(kw_only=True)
class Message:
    """One message handed to a :class:`Channel`: to whom, what, and under which key.

    ``address`` comes from the customer's current contact point on the channel (``None`` for
    an owner task); ``text`` and ``subject`` are rendered in ``lang``. ``recipient`` is the
    person on the team an owner task is for: the customer's owner, or for an escalation the
    owner's lead (``owners.leads``); ``None`` for a message to the customer, or a task while
    the customer has no owner (or the owner no lead). Personal data stays out of ``repr``.
    """

    key: str
    customer_id: str
    channel: str
    text: str = attrs.field(repr=False)
    address: str | None = attrs.field(default=None, repr=False)
    subject: str | None = attrs.field(default=None, repr=False)
    lang: str = "en"
    purpose: str | None = None
    rule: str | None = None
    template: str | None = None
    payload: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    recipient: str | None = None


@attrs.frozen(kw_only=True)
class SendResult:
    """What a channel says about an accepted message.

    ``duplicate`` is true when the channel recognised the idempotency key and dropped a repeat;
    ``provider_id`` is the provider's own id for the message, when it gives one.
    """

    provider_id: str | None = None
    duplicate: bool = False


@runtime_checkable
class Channel(Protocol):
    """A way to reach customers (SMS, e-mail, WeChat, owner tasks, ...).

    Contract, for every implementation:

    - ``send`` returns (a :class:`SendResult` or ``None``) only when the message was accepted.
    - It raises ``TransientChannelError`` when the message was not accepted and may be on a
      later try (a timeout, a 4xx reply, a dropped connection), ``PermanentChannelError`` when
      no retry can help (a bad address, a 5xx reply, a refused login). A transient error may
      carry ``retry_after``, the wait the provider asked for. ``InDoubtChannelError`` says the
      request went out and no answer came (a timeout after sending): the outcome is unknown,
      as it is for any other exception.
    - ``idempotency_key`` is the same for every try of one message. A channel whose
      ``deduplicates`` is true delivers a key at most once however often it is given; the
      dispatcher then resends a message whose outcome is unknown. Other channels get such a
      message again only when the dispatch policy says so.
    - ``close`` releases connections and files; the channel is not used afterwards.
    """

    @property
    def name(self) -> str:
        """A short name for reports, e.g. ``"email"``."""
        ...

    @property
    def deduplicates(self) -> bool:
        """Whether a repeated ``idempotency_key`` is dropped rather than delivered again."""
        ...

    def send(self, message: Message, *, idempotency_key: str) -> SendResult | None:
        """Deliver ``message`` once; raise a ``ChannelError`` kind when it was not accepted."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...
