"""The contact gate: whether one message may reach a customer now, and if not, why.

One function, :func:`contact_gate`, decides for a channel, a purpose and an instant: erasure, consent
and do-not-contact, the message's validity, quiet hours in the customer's zone, and the caps
and minimum gaps that count the messages already sent, the contacts people logged, and the
messages the same plan lets out first. The planner asks it when planning; the dispatcher asks
it again, through the planner, at the moment of sending and at every retry. One more function,
:func:`control_hold`, decides who a rule holds out as its control group; the planner and the
dispatcher both ask it, and experiment reports derive the groups from it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, time, tzinfo
from enum import StrEnum
from typing import TYPE_CHECKING, Final

import attrs

from lifecycle._time import to_utc, zone
from lifecycle.cadence.contact import Caps, ContactPolicy, first_instant_at, next_allowed
from lifecycle.reasons import Reason
from lifecycle.vocabulary import OWNER_CHANNELS, Purpose

if TYPE_CHECKING:
    from lifecycle.record import CustomerRecord

__all__ = [
    "Hold",
    "Outcome",
    "Verdict",
    "caps_for",
    "consent_hold",
    "contact_gate",
    "control_hold",
    "counted",
    "day_off_until",
    "hold_reason",
    "holdout_draw",
    "holdout_share",
    "in_control",
    "stamp",
]


class Outcome(StrEnum):
    """What happened to a follow-up held back."""

    DEFERRED = "deferred"
    """It goes out later, at ``until``."""
    SUPPRESSED = "suppressed"
    """It does not go out."""


class Hold(StrEnum):
    """Why a follow-up is held back; the reason's code is ``cadence.<value>``."""

    NO_CONSENT = "no_consent"
    DO_NOT_CONTACT = "do_not_contact"
    QUIET_HOURS = "quiet_hours"
    DAY_OFF = "day_off"
    CAP = "cap"
    MIN_GAP = "min_gap"
    LOWER_PRIORITY = "lower_priority"
    EXPIRED = "expired"
    STOPPED = "stopped"
    DUPLICATE = "duplicate"
    CONTROL = "control"
    """Held out as the rule's control group (``holdout``): never sent, measured instead."""


_HOLD_WORDS: Final = {
    Hold.NO_CONSENT: (
        "No consent for {purpose} messages on any channel the rule allows.",
        "客户未在规则允许的任何渠道同意接收{purpose_zh}消息。",
    ),
    Hold.DO_NOT_CONTACT: (
        "Do not contact: {why}.",
        "请勿联系：{why_zh}。",
    ),
    Hold.QUIET_HOURS: (
        "Quiet hours in the customer's time zone; moved to {until}.",
        "客户当地处于免打扰时段，顺延至{until}。",
    ),
    Hold.DAY_OFF: (
        "Not a working day for the customer's owner; moved to {until}.",
        "负责人非工作日，顺延至{until}。",
    ),
    Hold.CAP: (
        "The {purpose} frequency cap is reached; deferred to {until}.",
        "已达{purpose_zh}消息频次上限，顺延至{until}。",
    ),
    Hold.MIN_GAP: (
        "Too soon after the last {purpose} contact; deferred to {until}.",
        "距上次{purpose_zh}联系间隔过短，顺延至{until}。",
    ),
    Hold.LOWER_PRIORITY: (
        "A higher-priority follow-up ({other}) takes the slot; deferred to {until}.",
        "更高优先级的跟进（{other}）占用了名额，顺延至{until}。",
    ),
    Hold.EXPIRED: (
        "Expired unsent at {valid_until}{why}.",
        "已过有效期（{valid_until}）未发送{why_zh}。",
    ),
    Hold.DUPLICATE: (
        "Already sent on {sent}.",
        "已于{sent}发送。",
    ),
    Hold.STOPPED: (
        "Stopped: {why}.",
        "已停止：{why_zh}。",
    ),
    Hold.CONTROL: (
        "In the control group of {rule} ({share} of its customers are held out to measure it).",
        "属于{rule}的对照组（按{share}的比例留出客户以衡量其效果），不发送。",
    ),
}

_PURPOSE_ZH: Final = {
    Purpose.TRANSACTIONAL: "交易通知",
    Purpose.SERVICE: "服务",
    Purpose.MARKETING: "营销",
}


def stamp(at: datetime, tz: tzinfo) -> str:
    """``at`` on the customer's clock, to the minute, as reasons show it."""
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def hold_reason(
    hold: Hold,
    purpose: Purpose,
    tz: tzinfo,
    *,
    until: datetime | None = None,
    valid_until: datetime | None = None,
    **words: str,
) -> Reason:
    """The reason for ``hold``, in English and Chinese, with its blanks filled."""
    en, zh = _HOLD_WORDS[hold]
    fields = {
        "purpose": purpose.value,
        "purpose_zh": _PURPOSE_ZH[purpose],
        "until": stamp(until, tz) if until is not None else "",
        "valid_until": stamp(valid_until, tz) if valid_until is not None else "",
        "why": "",
        "why_zh": "",
        "other": "",
        "sent": "",
        "rule": "",
        "share": "",
        **words,
    }
    return Reason(code=f"cadence.{hold.value}", en=en.format(**fields), zh=zh.format(**fields))


@attrs.frozen(kw_only=True)
class Verdict:
    """The gate's answer: ``hold`` is ``None`` when the message may go out at ``at``.

    A deferred message may go at ``until``; a suppressed one (``until`` is ``None``) never.
    """

    at: datetime
    hold: Hold | None = None
    reason: Reason | None = None
    until: datetime | None = None

    @property
    def allowed(self) -> bool:
        return self.hold is None

    @property
    def outcome(self) -> Outcome | None:
        """Deferred or suppressed; ``None`` when allowed."""
        if self.hold is None:
            return None
        return Outcome.DEFERRED if self.until is not None else Outcome.SUPPRESSED


def holdout_draw(rule_id: str, customer_id: str, seed: str = "") -> float:
    """The customer's draw for a rule's holdout: a number in [0, 1) from a keyed hash
    (BLAKE2b) of the seed, the rule and the customer, the same in every run and process.

    The customer is in the control group while the draw is below the rule's share, so raising
    the share keeps everyone already held out and adds more, and lowering it releases some.
    """
    digest = hashlib.blake2b(
        f"{rule_id}\x1f{customer_id}".encode(),
        digest_size=8,
        key=seed.encode()[:64],
        person=b"lc-holdout",
    ).digest()
    return int.from_bytes(digest, "big") / 2**64


def holdout_share(rule: object) -> tuple[float, str]:
    """A rule's holdout share and seed: ``(0.0, "")`` for a rule that has none (a host's rule
    may carry ``holdout`` and ``holdout_seed`` attributes of its own)."""
    share = getattr(rule, "holdout", 0.0)
    seed = getattr(rule, "holdout_seed", "")
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share < 1:
        share = 0.0
    return float(share), seed if isinstance(seed, str) else ""


def in_control(rule: object, rule_id: str, customer_id: str) -> bool:
    """Whether the rule holds the customer out as control (see :func:`holdout_draw`)."""
    share, seed = holdout_share(rule)
    return share > 0 and holdout_draw(rule_id, customer_id, seed) < share


def control_hold(rule: object, rule_id: str, customer_id: str) -> Reason | None:
    """Why the rule's follow-up is not sent to the customer: they are in its control group;
    ``None`` when they are treated (or the rule holds nobody out).

    The planner asks it for each occurrence, the dispatcher again before sending, and the
    experiment report derives the groups from it: one decision in one place.
    """
    if not in_control(rule, rule_id, customer_id):
        return None
    share, _ = holdout_share(rule)
    en, zh = _HOLD_WORDS[Hold.CONTROL]
    pct = f"{share:.0%}" if share * 100 == round(share * 100) else f"{share:.1%}"
    return Reason(
        code=f"cadence.{Hold.CONTROL.value}",
        en=en.format(rule=rule_id, share=pct),
        zh=zh.format(rule=rule_id, share=pct),
    )


def consent_hold(
    facts: CustomerRecord, channel: str, purpose: Purpose
) -> tuple[Hold, Reason] | None:
    """Why ``channel`` may not carry a ``purpose`` message to the customer, or ``None``.

    An erased customer is never contacted, and a customer who withdrew a purpose and holds it
    on no channel is not contacted for it at all, not even through their owner. Otherwise an
    owner channel needs no consent; every other channel needs the customer's contact point on
    it; transactional messages then go unless the customer withdrew them on that channel;
    service and marketing messages need consent on the channel, from the profile's contact
    point or a later ``ConsentChanged``.
    """
    lg = facts.ledger
    tz = facts.tz
    if lg.erased is not None:
        return Hold.DO_NOT_CONTACT, hold_reason(
            Hold.DO_NOT_CONTACT,
            purpose,
            tz,
            why="the customer's data was erased",
            why_zh="客户数据已删除",
        )
    if purpose is not Purpose.TRANSACTIONAL and facts.withdrew(purpose):
        return Hold.DO_NOT_CONTACT, hold_reason(
            Hold.DO_NOT_CONTACT,
            purpose,
            tz,
            why="the customer opted out",
            why_zh="客户已退订",
        )
    if channel in OWNER_CHANNELS:
        return None
    if facts.profile.contact(channel) is None:
        ok = False
    elif purpose is Purpose.TRANSACTIONAL:
        ok = (channel, purpose) not in lg.withdrawn
    else:
        ok = facts.consents(channel, purpose)
    if ok:
        return None
    return Hold.NO_CONSENT, hold_reason(Hold.NO_CONSENT, purpose, tz)


def counted(facts: CustomerRecord, purpose: Purpose, contact: ContactPolicy) -> list[datetime]:
    """The instants of the contacts that count against ``purpose``'s caps (UTC).

    Messages sent for that purpose on a customer channel count; so do contacts people logged
    without a rule or a purpose, when the policy says so. Owner tasks do not: the contact the
    owner then makes is logged on its own.
    """
    manual = contact.count_manual_contacts
    return [
        to_utc(c.at)
        for c in facts.contacts
        if (c.purpose is purpose and c.channel not in OWNER_CHANNELS)
        or (manual and c.rule is None and c.purpose is None)
    ]


def caps_for(contact: ContactPolicy, purpose: Purpose) -> Caps | None:
    """The caps that limit ``purpose`` messages; transactional ones have none."""
    if purpose is Purpose.MARKETING:
        return contact.marketing
    if purpose is Purpose.SERVICE:
        return contact.service
    return None


def day_off_until(facts: CustomerRecord, at: datetime) -> datetime | None:
    """When an owner task due at ``at`` may be done, if ``at`` is not one of the owners'
    working days (``owners.workdays``): the start of the next one, after the customer's quiet
    hours. ``None`` when ``at`` is a working day or every day is."""
    owners = facts.policy.owners
    calendar = owners.calendar()
    if calendar is None:
        return None
    owner_tz = zone(owners.workday_zone)
    day = at.astimezone(owner_tz).date()
    if calendar.is_workday(day):
        return None
    start = first_instant_at(calendar.next_workday(day), time(0), owner_tz)
    return next_allowed(start, facts.tz, facts.policy.cadence.contact.quiet)


def contact_gate(
    facts: CustomerRecord,
    *,
    channel: str,
    purpose: Purpose,
    at: datetime,
    valid_until: datetime,
    planned: Sequence[tuple[datetime, str]] = (),
    via: str | None = None,
) -> Verdict:
    """May a ``purpose`` message reach the customer on ``channel`` at ``at`` (UTC)?

    Checks, in order: erasure, do-not-contact and consent; validity (``valid_until``); quiet
    hours in the customer's zone (deferred to when they end); the caps and minimum gap of the
    purpose, counting sent messages, people's contacts and ``planned`` (the instants and rule
    ids of messages that go out before this one: higher-priority ones of the same plan). Stop
    conditions belong to the rule and are checked before the gate is asked. An owner task that
    reaches the customer ``via`` a contact channel (a call) needs consent on that channel.
    """
    contact = facts.policy.cadence.contact
    tz = facts.tz
    held = consent_hold(facts, via or channel, purpose)
    if held is not None:
        return Verdict(at=at, hold=held[0], reason=held[1])

    def expired(why: str, why_zh: str) -> Verdict:
        return Verdict(
            at=at,
            hold=Hold.EXPIRED,
            reason=hold_reason(
                Hold.EXPIRED, purpose, tz, valid_until=valid_until, why=why, why_zh=why_zh
            ),
        )

    if valid_until <= at:
        return expired("", "")
    send = next_allowed(at, tz, contact.quiet)
    if valid_until <= send:
        return expired(" (quiet hours)", "（免打扰时段）")
    if send > at:
        return Verdict(
            at=at,
            hold=Hold.QUIET_HOURS,
            reason=hold_reason(Hold.QUIET_HOURS, purpose, tz, until=send),
            until=send,
        )
    if channel in OWNER_CHANNELS:
        off = day_off_until(facts, send)
        if off is not None and valid_until <= off:
            return expired(" (not a working day)", "（非工作日）")
        if off is not None:
            reason = hold_reason(Hold.DAY_OFF, purpose, tz, until=off)
            return Verdict(at=at, hold=Hold.DAY_OFF, reason=reason, until=off)
    limit = caps_for(contact, purpose)
    if limit is None or channel in OWNER_CHANNELS:
        return Verdict(at=at)
    history = counted(facts, purpose, contact)
    sent = history + [t for t, _ in planned]
    hit = limit.violation(at, sent)
    if hit is None:
        return Verdict(at=at)
    until = at
    for _ in range(8):  # caps then quiet hours, until both agree
        until = limit.earliest(until, sent)
        moved = next_allowed(until, tz, contact.quiet)
        if moved == until:
            break
        until = moved
    blocker = next((rule for t, rule in planned if t == hit[1]), None)
    if until >= valid_until:
        if blocker is not None:
            return expired(
                f" (a higher-priority {blocker} took the slot)",
                f"（更高优先级的{blocker}占用名额）",
            )
        return expired(" (frequency cap)", "（频次上限）")
    if blocker is not None:
        hold = Hold.LOWER_PRIORITY
        reason = hold_reason(hold, purpose, tz, until=until, other=blocker)
    else:
        hold = Hold.CAP if hit[0] == "cap" else Hold.MIN_GAP
        reason = hold_reason(hold, purpose, tz, until=until)
    return Verdict(at=at, hold=hold, reason=reason, until=until)
