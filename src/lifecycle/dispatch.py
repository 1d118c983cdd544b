"""The dispatcher: moves due outbox entries through channels, each key sent at most once.

An entry goes stored → claimed → (consent, caps) → ``Channel.send`` → settled, with the
``Contacted`` event stored in the same ``settle`` transaction as the ``sent`` mark. Every
settle leaves a note in the entry's ``last_error`` naming its attempt, so a claim whose
previous attempt has no note was abandoned between claim and settle: its outcome is unknown
("in doubt"). A deduplicating channel gets it again under the same key; any other channel gets
it only when :attr:`DispatchPolicy.resend_in_doubt` says so, else it is failed and reported.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final, Protocol

import attrs

from lifecycle._time import require_aware, to_utc
from lifecycle.cadence.contact import Caps, ContactPolicy
from lifecycle.clock import Clock
from lifecycle.customer import Profile
from lifecycle.errors import (
    ChannelError,
    LifecycleError,
    PermanentChannelError,
)
from lifecycle.events import (
    ConsentChanged,
    Contacted,
    CustomerErased,
    CustomerRegistered,
    Event,
    ProfileUpdated,
)
from lifecycle.policy import DispatchPolicy, unit_fraction
from lifecycle.ports import Channel, Message, OutboxEntry, OutboxState, Store
from lifecycle.reasons import Reason
from lifecycle.vocabulary import OWNER_CHANNELS, Purpose

__all__ = [
    "DispatchOutcome",
    "DispatchReport",
    "Dispatched",
    "contact_block",
    "default_worker",
    "dispatch",
    "in_doubt",
    "to_outbox",
]


class DispatchOutcome(StrEnum):
    """What one dispatch did with one claimed entry."""

    SENT = "sent"
    """Accepted by the channel and marked sent, with its ``Contacted`` event."""
    RETRY = "retry"
    """A transient failure; the entry waits for ``next_attempt_at``."""
    FAILED = "failed"
    """A permanent failure, or too many transient ones; never tried again."""
    IN_DOUBT = "in_doubt"
    """An earlier attempt may have gone out and the channel cannot deduplicate: not resent."""
    SUPPRESSED = "suppressed"
    """Cancelled before sending: consent withdrawn, customer erased, or expired."""
    DEFERRED = "deferred"
    """Held back by a cap, or while another message to the customer is in flight."""
    NO_CHANNEL = "no_channel"
    """No channel of that name is configured; tried again later."""
    LOST_CLAIM = "lost_claim"
    """The lease ran out and another dispatcher took the entry; it decides."""


_WORDS: Final[dict[str, tuple[str, str]]] = {
    "sent": ("Sent through {channel}.", "已通过 {channel} 发送。"),
    "sent_again": (
        "Sent again under the same key after an attempt of unknown outcome; {channel} drops repeats.",
        "上次发送结果不明，已用同一幂等键重发；{channel} 会丢弃重复消息。",
    ),
    "duplicate": (
        "{channel} already had this key and dropped the repeat.",
        "{channel} 已收到过此消息，重复的一条已被丢弃。",
    ),
    "retry": (
        "Temporary failure ({error}); retry after {next}.",
        "暂时失败（{error}）；将于 {next} 之后重试。",
    ),
    "gave_up": (
        "Gave up after {failures} temporary failures ({error}).",
        "连续 {failures} 次暂时失败后放弃（{error}）。",
    ),
    "permanent": ("Permanent failure ({error}); not retried.", "永久失败（{error}）；不再重试。"),
    "in_doubt": (
        "An earlier attempt stopped between claiming and marking; it may have been sent, and "
        "{channel} cannot drop a repeat, so it is not resent.",
        "上次发送在认领与标记之间中断，可能已发出；{channel} 无法去重，因此不再重发。",
    ),
    "failed_in_doubt": (
        "Failed ({error}) after an earlier attempt that may have been sent; not retried.",
        "发送失败（{error}），而此前的一次尝试可能已发出；不再重试。",
    ),
    "unknown_error": (
        "The channel failed in an unexpected way ({error}); the outcome is unknown.",
        "渠道出现意外错误（{error}），发送结果不明。",
    ),
    "erased": (
        "The customer's data was erased; they are never contacted.",
        "该客户的数据已删除，永不再联系。",
    ),
    "no_consent": (
        "No consent for {purpose} messages on {channel} at sending time.",
        "发送时客户未同意通过 {channel} 接收{purpose}类消息。",
    ),
    "expired": (
        "Past its validity ({until}); pointless now.",
        "已过有效期（{until}），不再发送。",
    ),
    "invalid": ("The entry cannot be sent: {error}.", "该条目无法发送：{error}。"),
    "cap": (
        "A {purpose} cap would be broken; waits until {next}.",
        "将超出{purpose}类消息的频次上限；推迟到 {next}。",
    ),
    "busy": (
        "Another message to this customer is in flight; waits until {next}.",
        "该客户的另一条消息正在发送；推迟到 {next}。",
    ),
    "no_channel": (
        "No channel named {channel} is configured; retry after {next}.",
        "未配置名为 {channel} 的渠道；将于 {next} 之后重试。",
    ),
    "lost_claim": (
        "The claim ran out before the entry was marked; another dispatcher holds it.",
        "标记前认领已过期，该条目已由另一个发送进程接手。",
    ),
}


def _reason(code: str, *evidence: str, **fields: object) -> Reason:
    en, zh = _WORDS[code]
    return Reason(
        code=f"dispatch.{code}",
        en=en.format(**fields),
        zh=zh.format(**fields),
        evidence=tuple(e for e in evidence if e),
    )


@attrs.frozen(kw_only=True)
class Dispatched:
    """What happened to one claimed entry, and why.

    Attributes:
        attempt: the entry's attempt number (its claim count).
        error: the channel's error text for failures.
        next_attempt_at: when a retried or deferred entry is due again.
        doubt: an earlier attempt of this entry has an unknown outcome.
    """

    key: str
    customer_id: str
    channel: str
    outcome: DispatchOutcome
    attempt: int
    reason: Reason
    error: str | None = None
    next_attempt_at: datetime | None = None
    doubt: bool = False


@attrs.frozen(kw_only=True)
class DispatchReport:
    """Every entry one :func:`dispatch` call handled, in the order it handled them."""

    as_of: datetime
    worker: str
    results: tuple[Dispatched, ...] = ()

    def keys(self, outcome: DispatchOutcome) -> tuple[str, ...]:
        """The keys that ended with ``outcome``."""
        return tuple(r.key for r in self.results if r.outcome is outcome)

    @property
    def sent(self) -> tuple[str, ...]:
        return self.keys(DispatchOutcome.SENT)

    @property
    def failed(self) -> tuple[str, ...]:
        return self.keys(DispatchOutcome.FAILED)

    @property
    def in_doubt(self) -> tuple[str, ...]:
        return self.keys(DispatchOutcome.IN_DOUBT)

    def counts(self) -> dict[str, int]:
        """How many entries ended with each outcome, by outcome name (those that happened)."""
        out: dict[str, int] = {}
        for r in self.results:
            out[r.outcome.value] = out.get(r.outcome.value, 0) + 1
        return dict(sorted(out.items()))

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[Dispatched]:
        return iter(self.results)


# -- the attempt notes kept in ``last_error`` -------------------------------------------------

_NOTE: Final = re.compile(r"^#(\d+) ([a-z_]+) f(\d+)( doubt)?: ")


@attrs.frozen
class _Note:
    attempt: int
    kind: str
    failures: int
    doubt: bool


def _parse(text: str | None) -> _Note | None:
    m = _NOTE.match(text or "")
    if m is None:
        return None
    return _Note(int(m[1]), m[2], int(m[3]), m[4] is not None)


def _note(attempt: int, kind: str, failures: int, doubt: bool, detail: str) -> str:
    return f"#{attempt} {kind} f{failures}{' doubt' if doubt else ''}: {detail}"


def in_doubt(store: Store) -> list[OutboxEntry]:
    """Failed entries whose outcome is unknown: an attempt may have gone out, unconfirmed.

    Someone has to check with the provider (or the customer) whether they arrived.
    """
    out = []
    for e in store.outbox_entries(states=(OutboxState.FAILED,)):
        note = _parse(e.last_error)
        if note is not None and note.kind == "in_doubt":
            out.append(e)
    return out


# -- consent at sending time -------------------------------------------------------------------


def _profile(history: Iterable[Event]) -> Profile:
    profile = Profile()
    for e in history:
        if isinstance(e, CustomerRegistered | ProfileUpdated):
            profile = profile.merge(e.profile)
    return profile


def contact_block(
    history: Sequence[Event], channel: str, purpose: Purpose | str | None
) -> Reason | None:
    """Why ``channel`` may not carry a ``purpose`` message to this customer now, or ``None``.

    The same rule the planner applies, on the history as it is just before sending: an erased
    customer is never contacted; an owner task needs no consent; transactional messages (and
    messages without a purpose) go unless the customer withdrew them on the channel; service
    and marketing need consent on the channel, from the profile's contact point or a later
    ``ConsentChanged``.
    """
    p = None if purpose is None else Purpose(purpose)
    consent: dict[Purpose, bool] = {}
    withdrawn: set[Purpose] = set()
    evidence = ""
    for e in history:
        match e:
            case CustomerErased():
                return _reason("erased", e.event_id)
            case CustomerRegistered() | ProfileUpdated():
                cp = e.profile.contact(channel)
                if cp is not None:
                    for q in Purpose:
                        consent[q] = q in cp.consent
                    withdrawn.clear()
                    evidence = e.event_id
            case ConsentChanged(channel=ch, purpose=q, granted=g) if ch == channel:
                consent[q] = g
                if g:
                    withdrawn.discard(q)
                else:
                    withdrawn.add(q)
                if q is p:
                    evidence = e.event_id
            case _:
                pass
    if channel in OWNER_CHANNELS:
        return None
    if p is None or p is Purpose.TRANSACTIONAL:
        tp = Purpose.TRANSACTIONAL
        blocked = tp in withdrawn
    else:
        tp = p
        blocked = not consent.get(p, False)
    if blocked:
        return _reason("no_consent", evidence, purpose=tp.value, channel=channel)
    return None


# -- planning into the outbox -------------------------------------------------------------------


class _FollowUpLike(Protocol):
    """The fields of a planned follow-up that the outbox keeps."""

    @property
    def customer_id(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def rule(self) -> str: ...
    @property
    def due_at(self) -> datetime: ...
    @property
    def valid_until(self) -> datetime: ...
    @property
    def channel(self) -> str | None: ...
    @property
    def purpose(self) -> Purpose: ...
    @property
    def template(self) -> str: ...
    @property
    def priority(self) -> int: ...
    @property
    def reason(self) -> Reason: ...
    @property
    def text_en(self) -> str: ...
    @property
    def text_zh(self) -> str: ...
    @property
    def contact_channel(self) -> str | None: ...


def to_outbox(follow_up: _FollowUpLike) -> OutboxEntry:
    """The outbox entry that sends a planned follow-up (which must have a channel).

    The payload keeps the rendered texts, the validity and the reason, so the dispatcher
    needs nothing else from the plan.
    """
    if follow_up.channel is None:
        raise ValueError(f"follow-up {follow_up.key!r} has no channel: it is held, not sent")
    return OutboxEntry(
        key=follow_up.key,
        customer_id=follow_up.customer_id,
        channel=follow_up.channel,
        due_at=follow_up.due_at,
        rule=follow_up.rule,
        purpose=Purpose(follow_up.purpose).value,
        template=follow_up.template,
        payload={
            "text_en": follow_up.text_en,
            "text_zh": follow_up.text_zh,
            "valid_until": to_utc(follow_up.valid_until).isoformat(),
            "priority": follow_up.priority,
            "reason": follow_up.reason.code,
            "contact_channel": follow_up.contact_channel,
        },
    )


def _message(entry: OutboxEntry, profile: Profile) -> Message:
    lang = "zh" if (profile.locale or "").lower().startswith("zh") else "en"
    p = entry.payload
    text = p.get(f"text_{lang}") or p.get("text_en") or p.get("text") or ""
    subject = p.get(f"subject_{lang}") or p.get("subject")
    cp = profile.contact(entry.channel)
    return Message(
        key=entry.key,
        customer_id=entry.customer_id,
        channel=entry.channel,
        text=str(text),
        address=None if cp is None else cp.address,
        subject=None if subject is None else str(subject),
        lang=lang,
        purpose=entry.purpose,
        rule=entry.rule,
        template=entry.template,
        payload=dict(p),
    )


def default_worker() -> str:
    """A name for this dispatcher that no other process shares: host, process, random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# -- the dispatcher ------------------------------------------------------------------------------


def _caps(contact: ContactPolicy | None) -> dict[Purpose, Caps]:
    if contact is None:
        return {}
    return {Purpose.MARKETING: contact.marketing, Purpose.SERVICE: contact.service}


class _Run:
    def __init__(
        self,
        store: Store,
        channels: Mapping[str, Channel],
        policy: DispatchPolicy,
        worker: str,
        contact: ContactPolicy | None,
    ):
        self.store = store
        self.channels = channels
        self.policy = policy
        self.worker = worker
        self.contact = contact
        self.caps = _caps(contact)

    def settle(
        self,
        entry: OutboxEntry,
        at: datetime,
        state: OutboxState,
        outcome: DispatchOutcome,
        reason: Reason,
        *,
        note: str | None,
        next_attempt_at: datetime | None = None,
        error: str | None = None,
        events: Sequence[Event] = (),
        doubt: bool = False,
    ) -> Dispatched:
        ok = self.store.settle(
            entry.key,
            worker=self.worker,
            state=state,
            at=at,
            next_attempt_at=next_attempt_at,
            error=note,
            events=events,
        )
        if not ok:
            outcome, reason, next_attempt_at = (
                DispatchOutcome.LOST_CLAIM,
                _reason("lost_claim"),
                None,
            )
        return Dispatched(
            key=entry.key,
            customer_id=entry.customer_id,
            channel=entry.channel,
            outcome=outcome,
            attempt=entry.attempts,
            reason=reason,
            error=error,
            next_attempt_at=next_attempt_at,
            doubt=doubt,
        )

    def handle(self, entry: OutboxEntry, at: datetime) -> Dispatched:
        n = entry.attempts
        last = _parse(entry.last_error)
        failures = last.failures if last is not None else 0
        abandoned = n > 1 and (last is None or last.attempt != n - 1)
        doubt = abandoned or (last is not None and last.doubt)

        def note(kind: str, detail: str, *, fails: int = failures) -> str:
            return _note(n, kind, fails, doubt, detail)

        history = self.store.history(entry.customer_id)
        block = contact_block(history, entry.channel, entry.purpose)
        if block is None:
            block = self._expired(entry, at)
        if block is not None:
            return self.settle(
                entry,
                at,
                OutboxState.CANCELLED,
                DispatchOutcome.SUPPRESSED,
                block,
                note=note("cancelled", block.code),
                doubt=doubt,
            )
        channel = self.channels.get(entry.channel)
        if channel is None:
            later = at + self.policy.backoff(entry.key, 1)
            return self.settle(
                entry,
                at,
                OutboxState.PENDING,
                DispatchOutcome.NO_CHANNEL,
                _reason("no_channel", channel=entry.channel, next=later.isoformat()),
                note=note("no_channel", entry.channel),
                next_attempt_at=later,
                doubt=doubt,
            )
        held = self._held(entry, history, at)
        if held is not None:
            later, reason = held
            return self.settle(
                entry,
                at,
                OutboxState.PENDING,
                DispatchOutcome.DEFERRED,
                reason,
                note=note("deferred", reason.code),
                next_attempt_at=later,
                doubt=doubt,
            )
        if doubt and not channel.deduplicates and not self.policy.resend_in_doubt:
            return self.settle(
                entry,
                at,
                OutboxState.FAILED,
                DispatchOutcome.IN_DOUBT,
                _reason("in_doubt", channel=entry.channel),
                note=note("in_doubt", "an earlier attempt may have been sent"),
                doubt=True,
            )
        try:
            contacted = Contacted(
                customer_id=entry.customer_id,
                at=at,
                channel=entry.channel,
                purpose=entry.purpose,
                rule=entry.rule,
                template=entry.template,
                key=entry.key,
            )
            message = _message(entry, _profile(history))
        except (LifecycleError, ValueError) as e:
            return self.settle(
                entry,
                at,
                OutboxState.FAILED,
                DispatchOutcome.FAILED,
                _reason("invalid", error=str(e)),
                note=note("invalid", str(e)),
                error=str(e),
                doubt=doubt,
            )
        return self._send(entry, at, channel, message, contacted, failures, doubt, note)

    def _send(
        self,
        entry: OutboxEntry,
        at: datetime,
        channel: Channel,
        message: Message,
        contacted: Contacted,
        failures: int,
        doubt: bool,
        note: Any,
    ) -> Dispatched:
        unknown = False
        try:
            result = channel.send(message, idempotency_key=entry.key)
        except PermanentChannelError as e:
            if doubt:
                return self._failed_in_doubt(entry, at, failures, str(e))
            return self.settle(
                entry,
                at,
                OutboxState.FAILED,
                DispatchOutcome.FAILED,
                _reason("permanent", error=str(e)),
                note=note("permanent", str(e)),
                error=str(e),
            )
        except ChannelError as e:  # transient, or a host's own kind: worth another try
            error = str(e)
        except Exception as e:  # a host channel's bug: it may or may not have sent
            error = f"{type(e).__name__}: {e}"
            unknown = True
        else:
            if doubt:
                code = "sent_again"
            elif result is not None and result.duplicate:
                code = "duplicate"
            else:
                code = "sent"
            return self.settle(
                entry,
                at,
                OutboxState.SENT,
                DispatchOutcome.SENT,
                _reason(code, contacted.event_id, channel=entry.channel),
                note=None,
                events=(contacted,),
                doubt=doubt,
            )
        failures += 1
        if unknown and not channel.deduplicates and not self.policy.resend_in_doubt:
            return self.settle(
                entry,
                at,
                OutboxState.FAILED,
                DispatchOutcome.IN_DOUBT,
                _reason("unknown_error", error=error),
                note=_note(entry.attempts, "in_doubt", failures, True, error),
                error=error,
                doubt=True,
            )
        doubt = doubt or unknown
        if failures >= self.policy.max_attempts:
            if doubt:
                return self._failed_in_doubt(entry, at, failures, error)
            return self.settle(
                entry,
                at,
                OutboxState.FAILED,
                DispatchOutcome.FAILED,
                _reason("gave_up", failures=failures, error=error),
                note=_note(entry.attempts, "gave_up", failures, doubt, error),
                error=error,
                doubt=doubt,
            )
        later = at + self.policy.backoff(entry.key, failures)
        return self.settle(
            entry,
            at,
            OutboxState.PENDING,
            DispatchOutcome.RETRY,
            _reason("retry", error=error, next=later.isoformat()),
            note=_note(entry.attempts, "transient", failures, doubt, error),
            next_attempt_at=later,
            error=error,
            doubt=doubt,
        )

    def _failed_in_doubt(
        self, entry: OutboxEntry, at: datetime, failures: int, error: str
    ) -> Dispatched:
        """Give up on an entry an earlier attempt of which may have gone out."""
        return self.settle(
            entry,
            at,
            OutboxState.FAILED,
            DispatchOutcome.IN_DOUBT,
            _reason("failed_in_doubt", error=error),
            note=_note(entry.attempts, "in_doubt", failures, True, error),
            error=error,
            doubt=True,
        )

    def _expired(self, entry: OutboxEntry, at: datetime) -> Reason | None:
        until = entry.payload.get("valid_until")
        if not isinstance(until, str):
            return None
        try:
            valid_until = datetime.fromisoformat(until)
        except ValueError:
            return None
        if valid_until.tzinfo is not None and valid_until <= at:
            return _reason("expired", until=until)
        return None

    def _held(
        self, entry: OutboxEntry, history: Sequence[Event], at: datetime
    ) -> tuple[datetime, Reason] | None:
        """A later time and why, when a cap (or a message in flight) holds the entry back."""
        if entry.purpose is None or entry.channel in OWNER_CHANNELS:
            return None
        purpose = Purpose(entry.purpose)
        caps = self.caps.get(purpose)
        if caps is None:
            return None
        # Another dispatcher's live claim on this customer may be about to add a send that
        # this one cannot see yet; waiting for it keeps the caps whole across processes.
        for other in self.store.outbox_entries(
            states=(OutboxState.CLAIMED,), customer_id=entry.customer_id
        ):
            if (
                other.key != entry.key
                and other.claimed_by != self.worker
                and other.lease_until is not None
                and other.lease_until > at
            ):
                wait = self.policy.busy_seconds * (
                    1 + unit_fraction(f"{entry.key}:{entry.attempts}")
                )
                later = at + timedelta(seconds=wait)
                return later, _reason("busy", next=later.isoformat())
        manual = self.contact is not None and self.contact.count_manual_contacts
        sent = [
            to_utc(e.at)
            for e in history
            if isinstance(e, Contacted)
            and e.channel not in OWNER_CHANNELS
            and (e.purpose is purpose or (manual and e.rule is None and e.purpose is None))
        ]
        if caps.violation(at, sent) is None:
            return None
        later = max(caps.earliest(at, sent), at + timedelta(seconds=1))
        return later, _reason("cap", purpose=purpose.value, next=later.isoformat())


def dispatch(
    store: Store,
    channels: Mapping[str, Channel],
    policy: DispatchPolicy | None = None,
    now: datetime | None = None,
    *,
    worker: str | None = None,
    contact: ContactPolicy | None = None,
    clock: Clock | None = None,
    limit: int | None = None,
) -> DispatchReport:
    """Send the outbox entries due at ``now``, each at most once, and report every outcome.

    Args:
        store: where the outbox and the histories live.
        channels: the channels by name (an entry names its channel).
        policy: leases, retries and in-doubt handling; the defaults when ``None``.
        now: the time to dispatch at; each claim and mark uses ``clock.now()`` instead when a
            clock is given (long runs keep their leases honest).
        worker: this dispatcher's name; unique per process (:func:`default_worker`).
        contact: the contact policy whose caps are checked again just before sending.
        limit: handle at most this many entries.

    Raises:
        StoreError: the store failed; entries claimed but not settled are in doubt later.
    """
    if now is None and clock is None:
        raise TypeError("give now or a clock")
    policy = policy or DispatchPolicy()
    worker = worker or default_worker()
    start = require_aware(now if now is not None else clock.now(), "now")  # type: ignore[union-attr]
    run = _Run(store, channels, policy, worker, contact)
    results: list[Dispatched] = []
    while limit is None or len(results) < limit:
        at = clock.now() if clock is not None else start
        size = policy.batch_size if limit is None else min(policy.batch_size, limit - len(results))
        batch = store.claim(at, worker=worker, lease=policy.lease, limit=size)
        if not batch:
            break
        for entry in batch:
            results.append(run.handle(entry, clock.now() if clock is not None else start))
    return DispatchReport(as_of=start, worker=worker, results=tuple(results))
