"""The dispatcher: moves due outbox entries through channels, each key sent at most once.

A short loop: claim (the store hands one dispatcher at a time the entries of a customer) →
:func:`decide` (a pure function of the entry, the customer's record and the instant: the
rule's stop conditions and the contact gate, asked again at the moment of sending and at
every retry) → ``Channel.send`` → settle, with the ``Contacted`` event stored in the same
transaction as the ``sent`` mark. An entry's attempts, failures and in-doubt flag are typed
fields: a claim whose earlier attempt never settled was abandoned between claim and settle,
so its outcome is unknown ("in doubt"). A deduplicating channel gets it again under the same
key; any other channel gets it only when :attr:`DispatchPolicy.resend_in_doubt` says so, else
it is failed and reported.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any, Final, TypeVar

import attrs

from lifecycle._display import html_table, one_line
from lifecycle._state import Resumed, policy_fingerprint, resume
from lifecycle._time import require_aware, to_utc
from lifecycle.assessment import conversions_among
from lifecycle.cadence.contact import next_allowed
from lifecycle.cadence.gate import Outcome, contact_gate, control_hold, stamp
from lifecycle.cadence.planner import (
    FollowUp,
    Plan,
    follow_up_key,
    occurrences_of,
    plan_bulk,
    stopped_reason,
)
from lifecycle.clock import Clock
from lifecycle.errors import (
    ChannelError,
    InDoubtChannelError,
    LifecycleError,
    PermanentChannelError,
    StoreError,
    TransientChannelError,
)
from lifecycle.events import Contacted, Event, Referred
from lifecycle.policy import DispatchPolicy, Policy
from lifecycle.ports import Channel, Message, OutboxEntry, OutboxState, Store
from lifecycle.reasons import Reason, Skipped
from lifecycle.record import CustomerRecord
from lifecycle.status import AliveModel
from lifecycle.vocabulary import ESCALATION_TEMPLATE, OWNER_CHANNELS, Purpose

__all__ = [
    "Decision",
    "DispatchOutcome",
    "DispatchReport",
    "Dispatched",
    "conversions_in",
    "conversions_of",
    "decide",
    "default_worker",
    "dispatch",
    "in_doubt",
    "plan_stored",
    "read_facts",
    "read_histories",
    "read_records",
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
    """Cancelled before sending: the rule stopped, consent withdrawn, erased, or expired."""
    DEFERRED = "deferred"
    """Held back by quiet hours or a cap, or not due yet; tried again at ``next_attempt_at``."""
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
    "unanswered": (
        "Sent, but no answer came ({error}); it may have arrived, and {channel} cannot drop "
        "a repeat, so it is not resent.",
        "已发出但未收到答复（{error}），可能已送达；{channel} 无法去重，因此不再重发。",
    ),
    "already_sent": (
        "Already sent under this key on {sent}.",
        "已于 {sent} 以同一键发送过。",
    ),
    "not_due": (
        "The rule now has it due at {next}; waits until then.",
        "规则现在的到期时间为 {next}；届时再发送。",
    ),
    "no_longer_due": (
        "The rule {rule} no longer calls for this message: what triggered it has changed.",
        "规则 {rule} 已不再需要发送此消息：触发它的情况已变化。",
    ),
    "rule_gone": (
        "The policy no longer has the rule {rule} that planned this message.",
        "策略中已没有计划此消息的规则 {rule}。",
    ),
    "invalid": ("The entry cannot be sent: {error}.", "该条目无法发送：{error}。"),
    "unreadable": (
        "The customer's history cannot be read or judged ({error}); nothing was sent, retry "
        "after {next}.",
        "无法读取或判断该客户的历史（{error}）；未发送，将于 {next} 之后重试。",
    ),
    "unreadable_gave_up": (
        "The customer's history cannot be read or judged ({error}); nothing was sent, given "
        "up after {failures} tries.",
        "无法读取或判断该客户的历史（{error}）；未发送，{failures} 次尝试后放弃。",
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
    """Every entry one :func:`dispatch` call handled, in the order it handled them.

    ``planned`` counts the customers the facade planned before dispatching. An entry whose
    customer's history cannot be read or judged is not sent: it is retried with backoff and
    failed after ``max_attempts``, with the error, and the run goes on.
    """

    as_of: datetime
    worker: str
    results: tuple[Dispatched, ...] = ()
    planned: int = 0
    skipped: tuple[Skipped, ...] = ()
    """Customers the facade could not plan, each with the error; everyone else was planned."""

    def __repr__(self) -> str:
        counts = (f"{k} {n:,}" for k, n in self.counts().items())
        return one_line(
            "DispatchReport",
            f"as of {self.as_of:%Y-%m-%d %H:%M}",
            f"{len(self):,} entries",
            *counts,
        )

    def _repr_html_(self) -> str:
        rows = [
            (r.key, r.channel, r.outcome.value, r.attempt, r.reason or r.error or "")
            for r in self.results[:20]
        ]
        caption = f"Dispatch as of {self.as_of:%Y-%m-%d %H:%M}: " + (
            ", ".join(f"{k} {n:,}" for k, n in self.counts().items()) or "nothing to send"
        )
        return html_table(
            ("follow-up", "channel", "outcome", "attempt", "note"), rows, caption=caption
        )

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


def in_doubt(store: Store) -> list[OutboxEntry]:
    """Entries given up whose outcome is unknown: an attempt may have gone out, unconfirmed.

    Failed ones, and cancelled ones (the customer opted out, say) an earlier attempt of which
    may have gone out. Someone has to check with the provider (or the customer) whether they
    arrived.
    """
    settled = (OutboxState.FAILED, OutboxState.CANCELLED)
    return [e for e in store.outbox_entries(states=settled) if e.in_doubt]


# -- planning into the outbox -------------------------------------------------------------------


def to_outbox(follow_up: FollowUp) -> OutboxEntry:
    """The outbox entry that sends a planned follow-up (which must have a channel).

    The entry keeps the rendered texts and subjects, the validity and the reason, so the
    dispatcher needs nothing else from the plan.
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
        valid_until=to_utc(follow_up.valid_until),
        priority=follow_up.priority,
        reason=follow_up.reason.code,
        contact_channel=follow_up.contact_channel,
        text_en=follow_up.text_en,
        text_zh=follow_up.text_zh,
        subject_en=follow_up.subject_en or None,
        subject_zh=follow_up.subject_zh or None,
        planned=True,
    )


def default_worker() -> str:
    """A name for this dispatcher that no other process shares: host, process, random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# -- deciding -----------------------------------------------------------------------------------

#: How far ahead the dispatcher looks for a rule's occurrence whose due time moved.
_LOOKAHEAD: Final = timedelta(days=400)
_FOREVER: Final = datetime.max.replace(tzinfo=UTC)


@attrs.frozen(kw_only=True)
class Decision:
    """What happens next to a claimed entry, and why: :func:`decide`'s answer.

    ``outcome`` is ``SENT`` when the entry may go out now (``message`` and ``contacted`` are
    then set); otherwise it says how the entry settles, with ``until`` for a later try.
    """

    outcome: DispatchOutcome
    reason: Reason
    until: datetime | None = None
    message: Message | None = None
    contacted: Contacted | None = None
    failures: int = 0
    doubt: bool = False
    error: str | None = None


def conversions_in(
    store: Store,
    histories: Mapping[str, Sequence[Event]],
    policy: Policy,
    now: datetime,
    pending: Mapping[str, Sequence[Event]] | None = None,
) -> dict[str, dict[str, datetime]]:
    """:func:`~lifecycle.referral_conversions` for the customers of ``histories``, reading
    the customers they referred from ``pending`` (events about to be stored), else ``store``."""
    referred = {
        cid: {e.referred_id for e in h if isinstance(e, Referred)} for cid, h in histories.items()
    }
    return conversions_of(store, referred, policy, now, pending, histories)


def conversions_of(
    store: Store,
    referred: Mapping[str, Collection[str]],
    policy: Policy,
    now: datetime,
    pending: Mapping[str, Sequence[Event]] | None = None,
    known: Mapping[str, Sequence[Event]] | None = None,
) -> dict[str, dict[str, datetime]]:
    """For each customer of ``referred`` (customer id to the ids they referred): when each
    customer they referred first made an order still valid at ``now``. Histories come from
    ``pending`` (events about to be stored), then ``known``, then ``store``."""
    wanted = {r for ids in referred.values() for r in ids}
    if not wanted:
        return {}
    pending = pending or {}
    known = known or {}
    found: dict[str, Sequence[Event]] = {r: pending[r] for r in wanted if r in pending}
    found.update({r: known[r] for r in wanted if r in known and r not in found})
    found.update(store.histories(wanted - found.keys()))
    return conversions_among(referred, found, policy, now)


_T = TypeVar("_T")


def read_histories(
    store: Store, customer_ids: Sequence[str], skipped: list[Skipped] | None = None
) -> dict[str, tuple[Event, ...]]:
    """The histories of ``customer_ids`` in one read. With ``skipped``, should one of them not
    decode (stored before a rule of today, say), each is read alone and those that fail go to
    ``skipped``. A failing store is not isolated: its ``StoreError`` reaches the caller."""
    try:
        return store.histories(customer_ids)
    except StoreError:
        raise
    except Exception:
        if skipped is None:
            raise
    out: dict[str, tuple[Event, ...]] = {}
    for cid in customer_ids:
        try:
            history = store.history(cid)
        except StoreError:
            raise
        except Exception as e:  # reported in ``skipped``, never swallowed
            skipped.append(Skipped.of(cid, e))
            continue
        if history:
            out[cid] = history
    return out


def _isolated(
    skipped: list[Skipped] | None, ids: Iterable[str], each: Callable[[str], _T]
) -> dict[str, _T]:
    """``each(cid)`` for every id; with ``skipped``, a customer whose call fails (but for a
    ``StoreError``) goes there instead of stopping the others."""
    out: dict[str, _T] = {}
    for cid in ids:
        if skipped is None:
            out[cid] = each(cid)
            continue
        try:
            out[cid] = each(cid)
        except StoreError:
            raise
        except Exception as e:  # reported in ``skipped``, never swallowed
            skipped.append(Skipped.of(cid, e))
    return out


def _conversions(
    store: Store,
    referred: Mapping[str, Collection[str]],
    policy: Policy,
    now: datetime,
    histories: Mapping[str, Sequence[Event]],
    skipped: list[Skipped] | None,
) -> tuple[dict[str, dict[str, datetime]], set[str]]:
    """:func:`conversions_of` for the customers of ``referred``, and (with ``skipped``) the
    customers whose referrals could not be read, listed in ``skipped`` and left out."""
    try:
        return conversions_of(store, referred, policy, now, known=histories), set()
    except StoreError:
        raise
    except Exception:
        if skipped is None:
            raise
    # One referred customer's history does not read: find whose referrals fail.
    per = _isolated(
        skipped,
        list(referred),
        lambda c: conversions_of(store, {c: referred[c]}, policy, now, known=histories),
    )
    conversions = {k: v for mine in per.values() for k, v in mine.items()}
    return conversions, set(referred) - per.keys()


def plan_stored(
    store: Store,
    customer_ids: Sequence[str],
    policy: Policy,
    now: datetime,
    *,
    model: AliveModel | None = None,
    horizon: timedelta = timedelta(0),
    lookahead: timedelta = timedelta(0),
    skipped: list[Skipped] | None = None,
) -> tuple[Plan, dict[str, int]]:
    """The plan of the stored customers of ``customer_ids`` who have events, by the bulk path
    (:func:`lifecycle.cadence.planner.plan_bulk`: the bounds over all of them, the reference
    planner for those some rule may reach), and how many events each was read with (their
    version). Referrals are read as :func:`read_records` reads them; with ``skipped``, a
    customer whose history or referrals cannot be read is left out and listed there."""
    now = to_utc(require_aware(now, "now"))
    histories = read_histories(store, customer_ids, skipped)
    referred = {
        cid: {e.referred_id for e in h if isinstance(e, Referred)} for cid, h in histories.items()
    }
    referred = {cid: ids for cid, ids in referred.items() if ids}
    conversions, failed = _conversions(store, referred, policy, now, histories, skipped)
    for cid in failed:
        histories.pop(cid, None)
    plan = plan_bulk(
        histories,
        policy,
        now,
        horizon=horizon,
        model=model,
        referrals=conversions,
        lookahead=lookahead,
    )
    return plan, {cid: len(h) for cid, h in histories.items()}


def read_records(
    store: Store,
    customer_ids: Iterable[str],
    policy: Policy,
    now: datetime,
    *,
    model: AliveModel | None = None,
    lookback: timedelta | None = None,
    horizon: timedelta = timedelta(0),
    skipped: list[Skipped] | None = None,
) -> dict[str, CustomerRecord]:
    """The records at ``now`` of the customers of ``customer_ids`` who have events.

    A customer whose snapshot keeps a state that still holds is read from it and the events
    stored since (:mod:`lifecycle._state`), without replaying their history; the others
    from their whole history. Both give the same record. With ``skipped``, a customer whose
    history, referrals or record cannot be read is left out and listed there, and the others
    are read; a ``StoreError`` always reaches the caller.
    """
    now = to_utc(require_aware(now, "now"))
    back = timedelta(days=policy.cadence.lookback_days) if lookback is None else lookback
    fingerprint = policy_fingerprint(policy)
    ids = list(dict.fromkeys(customer_ids))

    def from_state(cid: str) -> tuple[Resumed, int] | None:
        snap = store.snapshot(cid)
        if snap is None or snap.state is None:
            return None
        since = store.history_since(cid, snap.version)
        r = resume(snap.state, since, policy, fingerprint, now)
        return None if r is None else (r, snap.version + len(since))

    # A state that cannot be read is folded again from the history, which names the problem.
    resumed = {cid: r for cid, r in _isolated([], ids, from_state).items() if r is not None}
    histories = read_histories(store, [c for c in ids if c not in resumed], skipped)
    referred: dict[str, Collection[str]] = {
        cid: r.ledger.referrals.keys() for cid, (r, _) in resumed.items()
    }
    referred.update(
        {cid: {e.referred_id for e in h if isinstance(e, Referred)} for cid, h in histories.items()}
    )
    conversions, failed = _conversions(store, referred, policy, now, histories, skipped)
    for cid in failed:
        resumed.pop(cid, None)
        histories.pop(cid, None)

    def record(cid: str) -> CustomerRecord:
        refs = conversions.get(cid, {})
        if cid in resumed:
            r, version = resumed[cid]
            return CustomerRecord.from_ledger(
                cid,
                r.ledger,
                policy,
                now,
                history=partial(store.history, cid),
                version=version,
                stage_history=r.stage_history(refs),
                later=r.later,
                referrals=refs,
                lookback=back,
                horizon=horizon,
                model=model,
            )
        return CustomerRecord(
            cid,
            histories[cid],
            policy,
            now,
            referrals=refs,
            lookback=back,
            horizon=horizon,
            model=model,
        )

    present = [c for c in ids if c in resumed or c in histories]
    return _isolated(skipped, present, record)


def read_facts(
    store: Store,
    customer_id: str,
    policy: Policy,
    now: datetime,
    *,
    model: AliveModel | None = None,
    horizon: timedelta = timedelta(0),
    history: Sequence[Event] | None = None,
) -> CustomerRecord:
    """The customer's record at ``now``, read from ``store`` (or from ``history`` when the
    caller has just read it): their events, and when each customer they referred first made
    an order still valid then."""
    if history is None:
        history = store.history(customer_id)
    conversions = conversions_in(store, {customer_id: history}, policy, now)
    return CustomerRecord(
        customer_id,
        history,
        policy,
        now,
        referrals=conversions.get(customer_id),
        lookback=timedelta(days=policy.cadence.lookback_days),
        horizon=horizon,
        model=model,
    )


def _still_due(entry: OutboxEntry, facts: CustomerRecord, now: datetime) -> Decision | None:
    """Why the entry's rule no longer wants it sent now (stopped, gone, later), or ``None``."""
    tz = facts.tz
    sent = next((c for c in (*facts.contacts, *facts.escalations) if c.key == entry.key), None)
    if sent is not None:
        return Decision(
            outcome=DispatchOutcome.SUPPRESSED,
            reason=_reason("already_sent", sent.event_id, sent=stamp(sent.at, tz)),
        )
    if not entry.planned:
        return None  # an entry a host made itself: only the contact gate applies
    rule = facts.policy.cadence.rule_or_none(entry.rule) if entry.rule is not None else None
    if rule is None:
        return Decision(
            outcome=DispatchOutcome.SUPPRESSED, reason=_reason("rule_gone", rule=entry.rule)
        )
    occ = next(
        (
            o
            for o in occurrences_of(rule, facts)
            if follow_up_key(entry.customer_id, rule.id, o.occurrence) == entry.key
        ),
        None,
    )
    if occ is None:
        return Decision(
            outcome=DispatchOutcome.SUPPRESSED, reason=_reason("no_longer_due", rule=rule.id)
        )
    if occ.stopped is not None:
        return Decision(outcome=DispatchOutcome.SUPPRESSED, reason=stopped_reason(occ.stopped))
    control = control_hold(rule, rule.id, entry.customer_id)
    if control is not None:  # the rule's holdout grew since the plan: the planner's decision
        return Decision(outcome=DispatchOutcome.SUPPRESSED, reason=control)
    if occ.due_at > now:
        later = next_allowed(occ.due_at, tz, facts.policy.cadence.contact.quiet)
        return Decision(
            outcome=DispatchOutcome.DEFERRED,
            reason=_reason("not_due", next=stamp(later, tz)),
            until=later,
        )
    return None


def _message(entry: OutboxEntry, facts: CustomerRecord) -> Message:
    profile = facts.profile
    locale = (profile.locale or facts.policy.language).lower()
    lang = "zh" if locale.startswith("zh") else "en"
    cp = profile.contact(entry.channel)
    return Message(
        key=entry.key,
        customer_id=entry.customer_id,
        channel=entry.channel,
        text=entry.text(lang),
        address=None if cp is None else cp.address,
        subject=entry.subject(lang),
        lang=lang,
        purpose=entry.purpose,
        rule=entry.rule,
        template=entry.template,
        payload=dict(entry.payload),
        recipient=_recipient(entry, facts),
    )


def _recipient(entry: OutboxEntry, facts: CustomerRecord) -> str | None:
    """Who on the team an owner task is for: the customer's current owner (the ledger's, as
    the pool rules read it), or that owner's lead for an escalation (as the planner names it)."""
    if entry.channel not in OWNER_CHANNELS or facts.owner is None:
        return None
    owner = facts.owner.owner_id
    if entry.template == ESCALATION_TEMPLATE:
        return facts.policy.owners.leads.get(owner)
    return owner


def decide(
    entry: OutboxEntry,
    record: CustomerRecord,
    now: datetime,
    *,
    deduplicates: bool | None,
) -> Decision:
    """What to do with a claimed ``entry`` at ``now``, given the customer's record.

    In order: a key already sent, or a rule whose stop condition was met since (the order was
    paid, the customer replied...) or that no longer calls for the message, cancels it; the
    contact gate (:func:`~lifecycle.cadence.gate.contact_gate`: erasure, consent, validity,
    quiet hours, caps) cancels or defers it; then a missing channel (``deduplicates`` is
    ``None``) defers it, and an earlier attempt of unknown outcome fails it as in doubt unless
    the channel drops repeats or the policy resends. What is left may go out now.
    """
    now = to_utc(require_aware(now, "now"))
    policy = record.policy
    doubt = entry.abandoned or entry.in_doubt

    def then(outcome: DispatchOutcome, reason: Reason, **more: Any) -> Decision:
        return Decision(
            outcome=outcome, reason=reason, failures=entry.failures, doubt=doubt, **more
        )

    stopped = _still_due(entry, record, now)
    if stopped is not None:
        return then(stopped.outcome, stopped.reason, until=stopped.until)
    try:
        purpose = Purpose(entry.purpose) if entry.purpose is not None else Purpose.TRANSACTIONAL
        contacted = Contacted(
            customer_id=entry.customer_id,
            at=now,
            channel=entry.channel,
            purpose=entry.purpose,
            rule=entry.rule,
            template=entry.template,
            key=entry.key,
        )
    except (LifecycleError, ValueError) as e:
        return then(DispatchOutcome.FAILED, _reason("invalid", error=str(e)), error=str(e))
    verdict = contact_gate(
        record,
        channel=entry.channel,
        purpose=purpose,
        at=now,
        valid_until=entry.valid_until or _FOREVER,
        via=entry.contact_channel,
    )
    if not verdict.allowed:
        assert verdict.reason is not None
        return then(_HELD[verdict.outcome], verdict.reason, until=verdict.until)
    if deduplicates is None:
        later = now + policy.dispatch.backoff(entry.key, 1)
        reason = _reason("no_channel", channel=entry.channel, next=later.isoformat())
        return then(DispatchOutcome.NO_CHANNEL, reason, until=later)
    if doubt and not deduplicates and not policy.dispatch.resend_in_doubt:
        return then(
            DispatchOutcome.IN_DOUBT,
            _reason("in_doubt", channel=entry.channel),
            error="an earlier attempt may have been sent",
        )
    return then(
        DispatchOutcome.SENT,
        _reason("sent", contacted.event_id, channel=entry.channel),
        message=_message(entry, record),
        contacted=contacted,
    )


def _after_send(
    entry: OutboxEntry, channel: Channel, go: Decision, policy: DispatchPolicy, now: datetime
) -> Decision:
    """What a send attempt for ``go`` (a ``SENT`` decision) turned into."""
    assert go.message is not None
    assert go.contacted is not None
    doubt, failures = go.doubt, go.failures
    unknown = unanswered = False
    wait: timedelta | None = None
    try:
        result = channel.send(go.message, idempotency_key=entry.key)
    except InDoubtChannelError as e:  # sent, unanswered: it may have arrived
        error = str(e)
        unknown = unanswered = True
    except PermanentChannelError as e:
        error = str(e)
        if doubt:
            return _failed_in_doubt(failures, error)
        return Decision(
            outcome=DispatchOutcome.FAILED,
            reason=_reason("permanent", error=error),
            failures=failures,
            error=error,
        )
    except ChannelError as e:  # transient, or a host's own kind: worth another try
        error = str(e)
        wait = e.retry_after if isinstance(e, TransientChannelError) else None
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
        return attrs.evolve(go, reason=_reason(code, go.contacted.event_id, channel=entry.channel))
    failures += 1
    if unknown and not channel.deduplicates and not policy.resend_in_doubt:
        return Decision(
            outcome=DispatchOutcome.IN_DOUBT,
            reason=(
                _reason("unanswered", error=error, channel=entry.channel)
                if unanswered
                else _reason("unknown_error", error=error)
            ),
            failures=failures,
            doubt=True,
            error=error,
        )
    doubt = doubt or unknown
    if failures >= policy.max_attempts and doubt:
        return _failed_in_doubt(failures, error)
    return _fail_or_retry(
        entry, policy, now, failures, doubt, error, gave_up="gave_up", retry="retry", wait=wait
    )


def _unreadable(
    entry: OutboxEntry, error: Exception, policy: DispatchPolicy, now: datetime
) -> Decision:
    """An entry whose customer's history cannot be read or judged: nothing is sent; it is
    tried again with backoff, and failed once ``max_attempts`` tries have failed."""
    doubt = entry.abandoned or entry.in_doubt
    return _fail_or_retry(
        entry,
        policy,
        now,
        entry.failures + 1,
        doubt,
        f"{type(error).__name__}: {error}",
        gave_up="unreadable_gave_up",
        retry="unreadable",
    )


def _fail_or_retry(
    entry: OutboxEntry,
    policy: DispatchPolicy,
    now: datetime,
    failures: int,
    doubt: bool,
    error: str,
    *,
    gave_up: str,
    retry: str,
    wait: timedelta | None = None,
) -> Decision:
    """After ``failures`` failed tries: give up once ``max_attempts`` is reached, else try
    again after the policy's backoff, or after ``wait`` when the channel asked for longer
    (reasons ``gave_up`` and ``retry``)."""
    if failures >= policy.max_attempts:
        return Decision(
            outcome=DispatchOutcome.FAILED,
            reason=_reason(gave_up, failures=failures, error=error),
            failures=failures,
            doubt=doubt,
            error=error,
        )
    later = now + max(policy.backoff(entry.key, failures), wait or timedelta(0))
    return Decision(
        outcome=DispatchOutcome.RETRY,
        reason=_reason(retry, error=error, next=later.isoformat()),
        until=later,
        failures=failures,
        doubt=doubt,
        error=error,
    )


def _failed_in_doubt(failures: int, error: str) -> Decision:
    """Give up on an entry an earlier attempt of which may have gone out."""
    return Decision(
        outcome=DispatchOutcome.IN_DOUBT,
        reason=_reason("failed_in_doubt", error=error),
        failures=failures,
        doubt=True,
        error=error,
    )


#: What the dispatcher does with a message the contact gate holds back.
_HELD: Final = {
    Outcome.DEFERRED: DispatchOutcome.DEFERRED,
    Outcome.SUPPRESSED: DispatchOutcome.SUPPRESSED,
    None: DispatchOutcome.SENT,
}

#: How each outcome leaves the entry in the outbox.
_SETTLED: Final = {
    DispatchOutcome.SENT: OutboxState.SENT,
    DispatchOutcome.RETRY: OutboxState.PENDING,
    DispatchOutcome.DEFERRED: OutboxState.PENDING,
    DispatchOutcome.NO_CHANNEL: OutboxState.PENDING,
    DispatchOutcome.FAILED: OutboxState.FAILED,
    DispatchOutcome.IN_DOUBT: OutboxState.FAILED,
    DispatchOutcome.SUPPRESSED: OutboxState.CANCELLED,
}


# -- the dispatcher ------------------------------------------------------------------------------


class _Run:
    def __init__(
        self,
        store: Store,
        channels: Mapping[str, Channel],
        policy: Policy,
        worker: str,
        model: AliveModel | None,
    ):
        self.store = store
        self.channels = channels
        self.policy = policy
        self.worker = worker
        self.model = model

    def handle(self, entry: OutboxEntry, at: datetime) -> Dispatched:
        """Claim → decide → send → settle, for one claimed entry."""
        channel = self.channels.get(entry.channel)
        try:
            history = self.store.history(entry.customer_id)
            # A dispatcher whose clock runs ahead may have stamped a send "later" than now:
            # decide (and stamp this send) no earlier, so that every send counts against the
            # caps.
            at = max([at, *(to_utc(e.at) for e in history if isinstance(e, Contacted))])
            facts = read_facts(
                self.store,
                entry.customer_id,
                self.policy,
                at,
                model=self.model,
                horizon=_LOOKAHEAD,
                history=history,
            )
            d = decide(
                entry, facts, at, deduplicates=None if channel is None else channel.deduplicates
            )
        except StoreError:
            raise  # the store failed: the caller hears of it
        except Exception as e:  # this customer's history: reported, and the run goes on
            d = _unreadable(entry, e, self.policy.dispatch, at)
        if d.outcome is DispatchOutcome.SENT:
            assert channel is not None
            d = _after_send(entry, channel, d, self.policy.dispatch, at)
        return self.settle(entry, at, d)

    def settle(self, entry: OutboxEntry, at: datetime, d: Decision) -> Dispatched:
        sent = d.outcome is DispatchOutcome.SENT
        ok = self.store.settle(
            entry.key,
            worker=self.worker,
            state=_SETTLED[d.outcome],
            at=at,
            next_attempt_at=d.until,
            error=None if sent else (d.error or d.reason.en),
            failures=d.failures,
            in_doubt=d.doubt,
            events=(d.contacted,) if sent and d.contacted is not None else (),
        )
        outcome, reason, until = d.outcome, d.reason, d.until
        if not ok:
            outcome, reason, until = DispatchOutcome.LOST_CLAIM, _reason("lost_claim"), None
        return Dispatched(
            key=entry.key,
            customer_id=entry.customer_id,
            channel=entry.channel,
            outcome=outcome,
            attempt=entry.attempts,
            reason=reason,
            error=d.error if d.outcome in _FAILURES else None,
            next_attempt_at=until,
            doubt=d.doubt,
        )


_FAILURES: Final = frozenset(
    {DispatchOutcome.RETRY, DispatchOutcome.FAILED, DispatchOutcome.IN_DOUBT}
)


def dispatch(
    store: Store,
    channels: Mapping[str, Channel],
    policy: Policy | None = None,
    now: datetime | None = None,
    *,
    worker: str | None = None,
    clock: Clock | None = None,
    limit: int | None = None,
    model: AliveModel | None = None,
) -> DispatchReport:
    """Send the outbox entries due at ``now``, each at most once, and report every outcome.

    Args:
        store: where the outbox and the histories live.
        channels: the channels by name (an entry names its channel).
        policy: the shop's policy: the dispatch settings (leases, retries, in-doubt handling),
            the cadence rules whose stop conditions are checked again, and the contact policy
            the gate applies at the moment of sending; the defaults when ``None``.
        now: the time to dispatch at; each claim and mark uses ``clock.now()`` instead when a
            clock is given (long runs keep their leases honest).
        worker: this dispatcher's name; unique per process (:func:`default_worker`).
        limit: handle at most this many entries.
        model: the fitted value model, if any, so that rules read the status ``assess`` gives.

    Raises:
        StoreError: the store failed; entries claimed but not settled are in doubt later.
    """
    if now is None and clock is None:
        raise TypeError("give now or a clock")
    policy = policy or Policy()
    worker = worker or default_worker()
    start = to_utc(require_aware(now if now is not None else clock.now(), "now"))  # type: ignore[union-attr]
    run = _Run(store, channels, policy, worker, model)
    size_max = policy.dispatch.batch_size
    results: list[Dispatched] = []
    while limit is None or len(results) < limit:
        at = to_utc(clock.now()) if clock is not None else start
        size = size_max if limit is None else min(size_max, limit - len(results))
        batch = store.claim(at, worker=worker, lease=policy.dispatch.lease, limit=size)
        if not batch:
            break
        for entry in batch:
            results.append(run.handle(entry, to_utc(clock.now()) if clock is not None else start))
    return DispatchReport(as_of=start, worker=worker, results=tuple(results))
