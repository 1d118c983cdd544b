"""The planner: which follow-ups are due for a customer at ``now``, and why others are held.

Pure: the same history, policy and ``now`` give the same plan. Each follow-up has a key made
of the customer, the rule and the occurrence; a ``Contacted`` event carrying that key marks it
sent, so planning twice (or after sending) never duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, Literal

import attrs

from lifecycle._display import html_table, pandas
from lifecycle._time import require_aware, to_utc
from lifecycle.cadence.contact import Caps, next_allowed
from lifecycle.cadence.facts import CustomerFacts
from lifecycle.cadence.rules import CadenceRule, Occurrence
from lifecycle.events import Event, OrderCancelled, OrderPaid, OrderRefunded, Referred
from lifecycle.policy import Policy
from lifecycle.reasons import Reason
from lifecycle.vocabulary import FOLLOW_UP_CHANNELS, OWNER_CHANNELS, Purpose

__all__ = ["FollowUp", "Held", "Hold", "Outcome", "Plan", "plan_customer", "plan_customers"]


@attrs.frozen(kw_only=True)
class FollowUp:
    """One message (or owner task) to one customer.

    Attributes:
        customer_id: to whom.
        rule: the rule's id.
        key: customer, rule and occurrence: stable across plans; ``Contacted.key`` marks it sent.
        due_at: when to send it, after quiet hours, in the customer's zone.
        valid_until: after this it is pointless.
        channel: the channel chosen (``"task"`` for the owner), ``None`` when none may be used.
        purpose: transactional, service or marketing.
        template: the template's id.
        priority: the rule's priority.
        reason: why the rule fires.
        text_en, text_zh: the rendered message.
        contact_channel: for a task, how the owner reaches the customer (``"phone"``,
            ``"visit"``), when the rule says.
    """

    customer_id: str
    rule: str
    key: str
    due_at: datetime
    valid_until: datetime
    channel: str | None
    purpose: Purpose
    template: str
    priority: int
    reason: Reason
    text_en: str = attrs.field(repr=False)
    text_zh: str = attrs.field(repr=False)
    contact_channel: str | None = None

    def text(self, lang: str = "en") -> str:
        """The message in ``lang``."""
        return self.text_zh if lang == "zh" else self.text_en


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
    CAP = "cap"
    MIN_GAP = "min_gap"
    LOWER_PRIORITY = "lower_priority"
    EXPIRED = "expired"
    STOPPED = "stopped"
    DUPLICATE = "duplicate"


@attrs.frozen(kw_only=True)
class Held:
    """A follow-up held back: deferred until ``until`` or suppressed, with the reason."""

    follow_up: FollowUp
    outcome: Outcome
    hold: Hold
    reason: Reason
    until: datetime | None = None


@attrs.frozen(kw_only=True)
class Plan:
    """What to send (``due``) and what is held back (``held``, each with why), as of ``as_of``."""

    due: tuple[FollowUp, ...]
    held: tuple[Held, ...]
    as_of: datetime

    def keys(self) -> tuple[str, ...]:
        """The keys of the due follow-ups."""
        return tuple(f.key for f in self.due)

    def __len__(self) -> int:
        return len(self.due)

    def rows(self, lang: str = "en") -> list[dict[str, Any]]:
        """Every follow-up, due ones first, as plain values (JSON-ready)."""
        lang_: Literal["en", "zh"] = "zh" if lang == "zh" else "en"
        out = [
            {
                "customer_id": f.customer_id,
                "rule": f.rule,
                "key": f.key,
                "due_at": f.due_at.isoformat(),
                "channel": f.channel,
                "purpose": f.purpose.value,
                "template": f.template,
                "state": "due",
                "why": f.reason.text(lang_),
            }
            for f in self.due
        ]
        out += [
            {
                "customer_id": h.follow_up.customer_id,
                "rule": h.follow_up.rule,
                "key": h.follow_up.key,
                "due_at": (h.until or h.follow_up.due_at).isoformat(),
                "channel": h.follow_up.channel,
                "purpose": h.follow_up.purpose.value,
                "template": h.follow_up.template,
                "state": h.hold.value,
                "why": h.reason.text(lang_),
            }
            for h in self.held
        ]
        return out

    def to_pandas(self) -> Any:
        """:meth:`rows` as a DataFrame (needs pandas)."""
        return pandas().DataFrame(self.rows())

    def _repr_html_(self) -> str:
        shown = self.rows()[:20]
        head = ("customer", "rule", "due", "channel", "purpose", "state", "why")
        cells = [
            (
                r["customer_id"],
                r["rule"],
                r["due_at"],
                r["channel"],
                r["purpose"],
                r["state"],
                r["why"],
            )
            for r in shown
        ]
        caption = (
            f"{len(self.due):,} due, {len(self.held):,} held back as of {self.as_of:%Y-%m-%d %H:%M}"
        )
        return html_table(head, cells, caption=caption)


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
}

_PURPOSE_ZH: Final = {
    Purpose.TRANSACTIONAL: "交易通知",
    Purpose.SERVICE: "服务",
    Purpose.MARKETING: "营销",
}


def _stamp(at: datetime, tz: tzinfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")


class _Planner:
    """Plans one customer: candidates, checks in a fixed order, then caps by priority."""

    def __init__(self, facts: CustomerFacts, policy: Policy, horizon: timedelta):
        self.facts = facts
        self.policy = policy
        self.cadence = policy.cadence
        self.end = facts.now + horizon
        self.due: list[FollowUp] = []
        self.held: list[Held] = []
        self.sent_at = {c.key: c for c in facts.contacts if c.key is not None}

    # -- building -----------------------------------------------------------------------------

    def _values(self, occ: Occurrence, lang: str) -> dict[str, str]:
        p = self.facts.profile
        if lang == "zh":
            values = {"customer_name": p.name or "亲", "shop_name": self.cadence.shop_name_zh}
            values.update(occ.values_zh)
        else:
            values = {"customer_name": p.name or "there", "shop_name": self.cadence.shop_name}
            values.update(occ.values_en)
        return values

    def follow_up(
        self, rule: CadenceRule, occ: Occurrence, channel: str | None, via: str | None
    ) -> FollowUp:
        template_id = occ.template or rule.template
        template = self.cadence.template(template_id)
        tz = self.facts.tz
        due = next_allowed(occ.due_at, tz, self.cadence.contact.quiet)
        return FollowUp(
            customer_id=self.facts.customer_id,
            rule=rule.id,
            key=f"{self.facts.customer_id}:{rule.id}:{occ.occurrence}",
            due_at=due.astimezone(tz),
            valid_until=occ.valid_until.astimezone(tz),
            channel=channel,
            purpose=Purpose(rule.purpose),
            template=template_id,
            priority=rule.priority,
            reason=occ.reason,
            text_en=template.render(self._values(occ, "en"), "en"),
            text_zh=template.render(self._values(occ, "zh"), "zh"),
            contact_channel=via,
        )

    def hold(
        self,
        f: FollowUp,
        hold: Hold,
        *,
        until: datetime | None = None,
        reason: Reason | None = None,
        **words: str,
    ) -> None:
        tz = self.facts.tz
        if reason is None:
            en, zh = _HOLD_WORDS[hold]
            fields = {
                "purpose": f.purpose.value,
                "purpose_zh": _PURPOSE_ZH[f.purpose],
                "until": _stamp(until, tz) if until is not None else "",
                "valid_until": _stamp(f.valid_until, tz),
                "why": "",
                "why_zh": "",
                "other": "",
                "sent": "",
                **words,
            }
            reason = Reason(
                code=f"cadence.{hold.value}", en=en.format(**fields), zh=zh.format(**fields)
            )
        outcome = Outcome.DEFERRED if until is not None else Outcome.SUPPRESSED
        self.held.append(
            Held(
                follow_up=f,
                outcome=outcome,
                hold=hold,
                reason=reason,
                until=None if until is None else until.astimezone(tz),
            )
        )

    # -- channel and consent ------------------------------------------------------------------

    def channel(self, rule: CadenceRule, purpose: Purpose) -> tuple[str, str | None] | Hold:
        """The channel to use (and, for a task, how the owner reaches the customer)."""
        facts = self.facts
        # The law requires transactional messages; everything else stops at an opt-out.
        if purpose is not Purpose.TRANSACTIONAL and (
            facts.erased is not None or facts.withdrew(purpose)
        ):
            return Hold.DO_NOT_CONTACT
        options: list[str] = []
        for ch in rule.channels:
            if ch in OWNER_CHANNELS or (
                facts.profile.contact(ch) is not None
                and (purpose is Purpose.TRANSACTIONAL or facts.consents(ch, purpose))
            ):
                options.append(ch)
        if not options:
            return Hold.NO_CONSENT
        preferred = facts.profile.contacts[0].channel if facts.profile.contacts else None
        chosen = preferred if preferred in options else options[0]
        if chosen in FOLLOW_UP_CHANNELS:
            return "task", None if chosen == "task" else chosen
        return chosen, None

    # -- planning -----------------------------------------------------------------------------

    def run(self, rules: Iterable[CadenceRule]) -> None:
        facts = self.facts
        floor = facts.now - timedelta(days=self.cadence.lookback_days)
        seen: set[str] = set()
        passed: list[tuple[FollowUp, datetime]] = []
        for rule in rules:
            purpose = Purpose(rule.purpose)
            for occ in rule.occurrences(facts):
                if occ.due_at > self.end or occ.valid_until <= floor:
                    continue
                picked = self.channel(rule, purpose)
                channel, via = picked if not isinstance(picked, Hold) else (None, None)
                f = self.follow_up(rule, occ, channel, via)
                sent = self.sent_at.get(f.key)
                if sent is not None:
                    self.hold(f, Hold.DUPLICATE, sent=_stamp(sent.at, facts.tz))
                    continue
                if f.key in seen:
                    twice = Reason(
                        code="cadence.duplicate",
                        en="Planned twice: the rule gave the same occurrence again.",
                        zh="重复计划：规则再次给出了同一次跟进。",
                    )
                    self.hold(f, Hold.DUPLICATE, reason=twice)
                    continue
                seen.add(f.key)
                if occ.stopped is not None:
                    self.hold(
                        f,
                        Hold.STOPPED,
                        reason=attrs.evolve(
                            occ.stopped,
                            code="cadence.stopped." + occ.stopped.code.rsplit(".", 1)[-1],
                        ),
                    )
                    continue
                send = next_allowed(max(f.due_at, facts.now), facts.tz, self.cadence.contact.quiet)
                if f.valid_until <= max(f.due_at, facts.now) or f.valid_until <= send:
                    why = " (quiet hours)" if send > max(f.due_at, facts.now) else ""
                    why_zh = "（免打扰时段）" if why else ""
                    self.hold(f, Hold.EXPIRED, why=why, why_zh=why_zh)
                    continue
                if isinstance(picked, Hold):
                    why = (
                        "the customer's data was erased"
                        if facts.erased
                        else "the customer opted out"
                    )
                    why_zh = "客户数据已删除" if facts.erased else "客户已退订"
                    self.hold(f, picked, why=why, why_zh=why_zh)
                    continue
                if send > self.end:
                    self.hold(f, Hold.QUIET_HOURS, until=send)
                    continue
                if send > max(f.due_at, facts.now):  # quiet hours end within the horizon
                    f = attrs.evolve(f, due_at=send.astimezone(facts.tz))
                passed.append((f, send))
        self.cap(passed)
        self.due.sort(key=lambda f: (f.due_at, -f.priority, f.key))
        self.held.sort(key=lambda h: (h.follow_up.due_at, -h.follow_up.priority, h.follow_up.key))

    def _counted(self, purpose: Purpose) -> list[datetime]:
        manual = self.cadence.contact.count_manual_contacts
        return [
            to_utc(c.at)
            for c in self.facts.contacts
            if c.purpose is purpose or (manual and c.rule is None and c.purpose is None)
        ]

    def cap(self, passed: list[tuple[FollowUp, datetime]]) -> None:
        """Let through what the caps allow, highest priority first; defer or expire the rest."""
        contact = self.cadence.contact
        caps: dict[Purpose, Caps] = {
            Purpose.MARKETING: contact.marketing,
            Purpose.SERVICE: contact.service,
        }
        history = {p: self._counted(p) for p in caps}
        planned: dict[Purpose, list[tuple[datetime, FollowUp]]] = {p: [] for p in caps}
        passed.sort(key=lambda x: (-x[0].priority, x[1], x[0].key))
        for f, send in passed:
            limit = caps.get(f.purpose)
            if limit is None or f.channel == "task":
                self.due.append(f)
                continue
            mine = planned[f.purpose]
            sent = history[f.purpose] + [t for t, _ in mine]
            hit = limit.violation(send, sent)
            if hit is None:
                mine.append((send, f))
                self.due.append(f)
                continue
            until = send
            for _ in range(8):  # caps then quiet hours, until both agree
                until = limit.earliest(until, sent)
                moved = next_allowed(until, self.facts.tz, contact.quiet)
                if moved == until:
                    break
                until = moved
            blocker = next((g for t, g in mine if t == hit[1]), None)
            if until >= f.valid_until:
                why = (
                    " (frequency cap)"
                    if blocker is None
                    else f" (a higher-priority {blocker.rule} took the slot)"
                )
                why_zh = (
                    "（频次上限）" if blocker is None else f"（更高优先级的{blocker.rule}占用名额）"
                )
                self.hold(f, Hold.EXPIRED, why=why, why_zh=why_zh)
            elif blocker is not None:
                self.hold(f, Hold.LOWER_PRIORITY, until=until, other=blocker.rule)
            else:
                self.hold(f, Hold.CAP if hit[0] == "cap" else Hold.MIN_GAP, until=until)


def plan_customer(
    history: Sequence[Event],
    policy: Policy,
    now: datetime,
    *,
    customer_id: str | None = None,
    horizon: timedelta = timedelta(0),
    referrals: Mapping[str, datetime] | None = None,
) -> Plan:
    """The follow-ups due for one customer by ``now`` (plus ``horizon``), and those held back.

    Args:
        history: the customer's events in any order; those after ``now`` are ignored.
        policy: ``policy.cadence`` holds the rules, templates and contact policy.
        now: the planning instant; aware.
        customer_id: whose history it is (default: the events' customer).
        horizon: also plan what falls due this long after ``now``.
        referrals: when each customer this one referred made a first valid order (for the
            referral thank-you).

    Returns:
        A :class:`Plan`: ``due`` to send, ``held`` each with why. Follow-ups held because they
        expired are reported for ``policy.cadence.lookback_days``.
    """
    now = to_utc(require_aware(now, "now"))
    if customer_id is None:
        customer_id = history[0].customer_id if history else "?"
    facts = CustomerFacts(
        customer_id,
        history,
        policy,
        now,
        referrals=referrals,
        lookback=timedelta(days=policy.cadence.lookback_days),
        horizon=horizon,
    )
    planner = _Planner(facts, policy, horizon)
    planner.run(policy.cadence.rules)
    return Plan(due=tuple(planner.due), held=tuple(planner.held), as_of=now)


def _first_valid_orders(
    histories: Mapping[str, Sequence[Event]], wanted: set[str], now: datetime
) -> dict[str, datetime]:
    """When each wanted customer's first order still valid at ``now`` was paid."""
    out: dict[str, datetime] = {}
    for cid in wanted:
        events = histories.get(cid)
        if not events:
            continue
        paid: dict[str, OrderPaid] = {}
        undone: set[str] = set()
        refunded: dict[str, Decimal] = {}
        for e in events:
            if to_utc(e.at) > now:
                continue
            if isinstance(e, OrderPaid):
                paid.setdefault(e.order_id, e)
            elif isinstance(e, OrderCancelled):
                undone.add(e.order_id)
            elif isinstance(e, OrderRefunded):
                refunded[e.order_id] = refunded.get(e.order_id, Decimal(0)) + e.amount
        for oid, p in paid.items():
            if oid in undone or refunded.get(oid, Decimal(0)) >= p.amount:
                continue
            at = to_utc(p.at)
            if cid not in out or at < out[cid]:
                out[cid] = at
    return out


def plan_customers(
    histories: Mapping[str, Sequence[Event]],
    policy: Policy,
    now: datetime,
    *,
    horizon: timedelta = timedelta(0),
) -> Plan:
    """:func:`plan_customer` for every customer of ``histories`` (customer id to events).

    Referral thank-yous read the referred customers' first valid orders from ``histories``.
    The plan lists follow-ups by due time, then customer.
    """
    now = to_utc(require_aware(now, "now"))
    referred: dict[str, set[str]] = {}
    for cid, events in histories.items():
        for e in events:
            if isinstance(e, Referred):
                referred.setdefault(cid, set()).add(e.referred_id)
    wanted = set().union(*referred.values()) if referred else set()
    firsts = _first_valid_orders(histories, wanted, now)
    due: list[FollowUp] = []
    held: list[Held] = []
    for cid in sorted(histories):
        refs = {r: firsts[r] for r in referred.get(cid, ()) if r in firsts}
        p = plan_customer(
            histories[cid], policy, now, customer_id=cid, horizon=horizon, referrals=refs
        )
        due += p.due
        held += p.held
    due.sort(key=lambda f: (f.due_at, f.customer_id, -f.priority, f.key))
    held.sort(key=lambda h: (h.follow_up.due_at, h.follow_up.customer_id, h.follow_up.key))
    return Plan(due=tuple(due), held=tuple(held), as_of=now)
