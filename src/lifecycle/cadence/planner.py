"""The planner: which follow-ups are due for a customer at ``now``, and why others are held.

Pure: the same history, policy and ``now`` give the same plan. Each follow-up has a key made
of the customer, the rule and the occurrence; a ``Contacted`` event carrying that key marks it
sent, so planning twice (or after sending) never duplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, time, timedelta, tzinfo
from typing import Any, Literal

import attrs
import numpy as np

from lifecycle._bulk import collector_paused
from lifecycle._display import field_table, html_table, one_line, pandas
from lifecycle._ledger import customer_zone
from lifecycle._time import local_date, require_aware, to_utc, zone
from lifecycle.assessment import referral_conversions
from lifecycle.cadence.contact import first_instant_at, next_allowed
from lifecycle.cadence.gate import (
    Hold,
    Outcome,
    Verdict,
    consent_hold,
    contact_gate,
    control_hold,
    hold_reason,
    stamp,
)
from lifecycle.cadence.reach import reach
from lifecycle.cadence.rules import CadenceRule, Occurrence
from lifecycle.errors import UsageError
from lifecycle.events import Event
from lifecycle.policy import Policy
from lifecycle.reasons import Reason, Skipped
from lifecycle.record import CustomerRecord
from lifecycle.status import AliveModel
from lifecycle.vocabulary import (
    ESCALATION_TEMPLATE,
    FOLLOW_UP_CHANNELS,
    OWNER_CHANNELS,
    Purpose,
)

__all__ = [
    "FollowUp",
    "Held",
    "Plan",
    "follow_up_key",
    "join_plans",
    "occurrences_of",
    "plan_bulk",
    "plan_customer",
    "plan_customers",
    "plan_facts",
    "plan_records",
    "replan_at",
]


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
        subject_en, subject_zh: the rendered subject line (for e-mail).
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
    subject_en: str = attrs.field(default="", repr=False)
    subject_zh: str = attrs.field(default="", repr=False)

    def text(self, lang: str = "en") -> str:
        """The message in ``lang``."""
        return self.text_zh if lang == "zh" else self.text_en

    def __repr__(self) -> str:
        return one_line(
            "FollowUp",
            self.key,
            f"via {self.channel or 'no channel'}",
            self.purpose.value,
            f"due {self.due_at:%Y-%m-%d %H:%M}",
        )

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [
            ("customer", self.customer_id),
            ("rule", self.rule),
            ("due", self.due_at.isoformat()),
            ("valid until", self.valid_until.isoformat()),
            ("channel", self.channel),
            ("purpose", self.purpose.value),
            ("template", self.template),
            ("why", self.reason.en),
        ]
        return field_table(rows, caption=self.key)


@attrs.frozen(kw_only=True)
class Held:
    """A follow-up held back: deferred until ``until`` or suppressed, with the reason."""

    follow_up: FollowUp
    outcome: Outcome
    hold: Hold
    reason: Reason
    until: datetime | None = None

    def __repr__(self) -> str:
        until = None if self.until is None else f"until {self.until:%Y-%m-%d %H:%M}"
        return one_line("Held", self.follow_up.key, self.hold.value, self.outcome.value, until)

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [
            ("follow-up", self.follow_up.key),
            ("held", f"{self.outcome.value}: {self.hold.value}"),
            ("until", None if self.until is None else self.until.isoformat()),
            ("why", self.reason.en),
        ]
        return field_table(rows)


@attrs.frozen(kw_only=True)
class Plan:
    """What to send (``due``) and what is held back (``held``, each with why), as of ``as_of``.

    ``next_due`` gives, for each customer, the earliest later instant at which planning again
    may give something new: a follow-up the rules already see coming (within the
    ``lookahead`` the plan was made with), one held back until then, or the customer's next
    midnight (days passing move stages, status, tiers and anniversaries). Planning again then,
    or when new events arrive, misses nothing. ``skipped`` lists what could not be planned.
    """

    due: tuple[FollowUp, ...]
    held: tuple[Held, ...]
    as_of: datetime
    next_due: Mapping[str, datetime] = attrs.field(factory=dict, repr=False)
    skipped: tuple[Skipped, ...] = ()
    """Customers (or rules of a customer) that could not be planned, each with the error;
    everyone else was planned."""

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

    def __repr__(self) -> str:
        return one_line(
            "Plan",
            f"as of {self.as_of:%Y-%m-%d %H:%M}",
            f"{len(self.due):,} due",
            f"{len(self.held):,} held",
        )

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


def stopped_reason(stopped: Reason) -> Reason:
    """A rule's stop condition as the reason a follow-up is held: ``cadence.stopped.<what>``."""
    return attrs.evolve(stopped, code="cadence.stopped." + stopped.code.rsplit(".", 1)[-1])


def replan_at(end: datetime, tz: tzinfo) -> datetime:
    """The customer's midnight after ``end`` (in zone ``tz``): the latest instant a plan made
    up to ``end`` is good for, since days passing move stages, status, tiers and dates."""
    return first_instant_at(local_date(end, tz) + timedelta(days=1), time(0), tz)


def follow_up_key(customer_id: str, rule_id: str, occurrence: str) -> str:
    """The key of a rule's occurrence for a customer: stable across plans and sends."""
    return f"{customer_id}:{rule_id}:{occurrence}"


def occurrences_of(rule: CadenceRule, facts: CustomerRecord) -> Iterator[Occurrence]:
    """``rule``'s occurrences for the customer, with owner tasks carried over.

    The one place planning and dispatch read a rule through. A task (a rule whose channels
    are all owner channels) not done (no ``Contacted`` under its key or a carried key) while
    the customer has an owner is not dropped: once expired it is planned again for the
    owners' working day of ``facts.now`` (occurrence ``<id>:carry:<day>``), and once it is
    ``owners.escalate_after_days`` late for its owner (counted from when it fell due, or when
    the owner took the customer, whichever is later), an escalation to the owner's lead
    (``owners.leads``) is planned beside it (occurrence ``<id>:escalate``) with the reason.
    """
    occurrences = rule.occurrences(facts)
    assigned = facts.owner  # the ledger's current assignment, as the pool rules read it
    if assigned is None or not rule.channels or not set(rule.channels) <= OWNER_CHANNELS:
        yield from occurrences
        return
    owners = facts.policy.owners
    owner, since = assigned.owner_id, to_utc(assigned.at)
    done = [c.key for c in facts.contacts if c.key is not None]
    now = facts.now
    for occ in occurrences:
        base = follow_up_key(facts.customer_id, rule.id, occ.occurrence)
        if (
            occ.stopped is not None
            or to_utc(occ.due_at) > now
            or any(k == base or k.startswith(base + ":carry:") for k in done)
        ):
            yield occ
            continue
        # Late for this owner: from when it fell due, or when they took the customer.
        owed = max(to_utc(occ.due_at), since)
        first = facts.day(owed)
        if occ.valid_until > now:
            yield occ
        else:
            tz = zone(owners.workday_zone)
            day = now.astimezone(tz).date()
            late = (now - owed).days
            yield attrs.evolve(
                occ,
                occurrence=f"{occ.occurrence}:carry:{day.isoformat()}",
                due_at=now,
                valid_until=to_utc(datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)),
                reason=Reason(
                    code="cadence.carried_over",
                    en=f"Not done since it was due on {first}; carried over ({late} days late).",
                    zh=f"自{first}起未完成，顺延至今日（已逾期{late}天）。",
                    evidence=occ.reason.evidence,
                ),
            )
        after = owners.escalate_after_days
        lead = owners.leads.get(owner)
        if after is None or lead is None:
            continue
        escalate_at = owed + timedelta(days=after)
        if escalate_at > now:
            continue
        values = {"owner": owner, "lead": lead, "days": str(after)}
        yield attrs.evolve(
            occ,
            occurrence=f"{occ.occurrence}:escalate",
            due_at=escalate_at,
            # Valid while the task stays undone: each plan finds it still wanted.
            valid_until=max(escalate_at, now) + timedelta(days=max(after, 1)),
            template=ESCALATION_TEMPLATE,
            values_en={**occ.values_en, **values},
            values_zh={**occ.values_zh, **values},
            reason=Reason(
                code="cadence.escalated",
                en=f"{owner} has not done this task for {after} days (due {first}); "
                f"escalated to {lead}.",
                zh=f"{owner} 已 {after} 天未完成该任务（应于{first}完成），已上报给 {lead}。",
                evidence=occ.reason.evidence,
            ),
        )


class _Planner:
    """Plans one customer: candidates, checks in a fixed order, then caps by priority."""

    def __init__(self, facts: CustomerRecord, policy: Policy, horizon: timedelta):
        self.facts = facts
        self.policy = policy
        self.cadence = policy.cadence
        self.end = facts.now + horizon
        self.due: list[FollowUp] = []
        self.held: list[Held] = []
        self.upcoming: datetime | None = None
        self.sent_at = {
            c.key: c for c in (*facts.contacts, *facts.escalations) if c.key is not None
        }
        self.skipped: list[Skipped] = []

    def coming(self, at: datetime | None) -> None:
        """Note ``at`` as an instant after this plan at which something may fall due."""
        if at is not None and at > self.end and (self.upcoming is None or at < self.upcoming):
            self.upcoming = at

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
        values_en, values_zh = self._values(occ, "en"), self._values(occ, "zh")
        return FollowUp(
            customer_id=self.facts.customer_id,
            rule=rule.id,
            key=follow_up_key(self.facts.customer_id, rule.id, occ.occurrence),
            due_at=due.astimezone(tz),
            valid_until=occ.valid_until.astimezone(tz),
            channel=channel,
            purpose=Purpose(rule.purpose),
            template=template_id,
            priority=rule.priority,
            reason=occ.reason,
            text_en=template.render(values_en, "en"),
            text_zh=template.render(values_zh, "zh"),
            subject_en=template.render_subject(values_en, "en"),
            subject_zh=template.render_subject(values_zh, "zh"),
            contact_channel=via,
        )

    def hold(self, f: FollowUp, hold: Hold, reason: Reason, until: datetime | None = None) -> None:
        tz = self.facts.tz
        self.coming(until)
        self.held.append(
            Held(
                follow_up=f,
                outcome=Outcome.DEFERRED if until is not None else Outcome.SUPPRESSED,
                hold=hold,
                reason=reason,
                until=None if until is None else until.astimezone(tz),
            )
        )

    def held_by(self, f: FollowUp, verdict: Verdict) -> None:
        assert verdict.hold is not None
        assert verdict.reason is not None
        self.hold(f, verdict.hold, verdict.reason, verdict.until)

    # -- channel and consent ------------------------------------------------------------------

    def channel(self, rule: CadenceRule, purpose: Purpose) -> tuple[str, str | None] | Verdict:
        """The channel to use (and, for a task, how the owner reaches the customer), or the
        gate's verdict when no channel the rule names may carry the message."""
        facts = self.facts
        options: list[str] = []
        refused: tuple[Hold, Reason] | None = None
        for ch in rule.channels:
            blocked = consent_hold(facts, ch, purpose)
            if blocked is None:
                options.append(ch)
            elif refused is None or blocked[0] is Hold.DO_NOT_CONTACT:
                refused = blocked
        if not options:
            if refused is None:  # a rule with no channels
                refused = Hold.NO_CONSENT, hold_reason(Hold.NO_CONSENT, purpose, facts.tz)
            return Verdict(at=facts.now, hold=refused[0], reason=refused[1])
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
        candidates: list[tuple[FollowUp, datetime, datetime]] = []
        for rule in rules:
            # A rule that fails on this customer (a host rule's bug, a template it cannot
            # render) is reported and left out; the customer's other rules still plan.
            held, planned, known = len(self.held), len(candidates), set(seen)
            try:
                self.plan_rule(rule, seen, candidates, floor)
            except Exception as e:  # reported in Plan.skipped, never swallowed
                del self.held[held:]
                del candidates[planned:]
                seen = known
                self.skipped.append(Skipped.of(facts.customer_id, e, rule.id))
        self.cap(candidates)

    def plan_rule(
        self,
        rule: CadenceRule,
        seen: set[str],
        candidates: list[tuple[FollowUp, datetime, datetime]],
        floor: datetime,
    ) -> None:
        """Add ``rule``'s follow-ups for this customer to ``candidates`` or to the held."""
        facts = self.facts
        tz = facts.tz
        quiet = self.cadence.contact.quiet
        purpose = Purpose(rule.purpose)
        for occ in occurrences_of(rule, facts):
            if occ.valid_until <= floor:
                continue
            if occ.due_at > self.end:
                self.coming(occ.due_at)
                continue
            picked = self.channel(rule, purpose)
            channel, via = picked if not isinstance(picked, Verdict) else (None, None)
            f = self.follow_up(rule, occ, channel, via)
            sent = self.sent_at.get(f.key)
            if sent is not None:
                self.hold(
                    f,
                    Hold.DUPLICATE,
                    hold_reason(Hold.DUPLICATE, purpose, tz, sent=stamp(sent.at, tz)),
                )
                continue
            if f.key in seen:
                twice = Reason(
                    code="cadence.duplicate",
                    en="Planned twice: the rule gave the same occurrence again.",
                    zh="重复计划：规则再次给出了同一次跟进。",
                )
                self.hold(f, Hold.DUPLICATE, twice)
                continue
            seen.add(f.key)
            if occ.stopped is not None:
                self.hold(f, Hold.STOPPED, stopped_reason(occ.stopped))
                continue
            control = control_hold(rule, rule.id, facts.customer_id)
            if control is not None:  # before consent: the groups are drawn from all eligible
                self.hold(f, Hold.CONTROL, control)
                continue
            if isinstance(picked, Verdict):
                self.held_by(f, picked)
                continue
            at = max(occ.due_at, facts.now)
            candidates.append((f, at, next_allowed(at, tz, quiet)))

    def cap(self, candidates: list[tuple[FollowUp, datetime, datetime]]) -> None:
        """Ask the gate for each candidate, highest priority first, and sort what is due."""
        tz = self.facts.tz
        # Highest priority first: what it lets out counts against the caps of the rest.
        candidates.sort(key=lambda x: (-x[0].priority, x[2], x[0].key))
        planned: dict[Purpose, list[tuple[datetime, str]]] = {p: [] for p in Purpose}
        for f, at, _ in candidates:
            verdict = self.ask(f, at, planned[f.purpose])
            if verdict.hold in (Hold.QUIET_HOURS, Hold.DAY_OFF) and verdict.until is not None:
                if verdict.until > self.end:
                    self.held_by(f, verdict)
                    continue
                at = verdict.until  # quiet hours end within the horizon
                f = attrs.evolve(f, due_at=at.astimezone(tz))
                verdict = self.ask(f, at, planned[f.purpose])
            if not verdict.allowed:
                self.held_by(f, verdict)
                continue
            if f.channel not in OWNER_CHANNELS:
                planned[f.purpose].append((at, f.rule))
            self.due.append(f)
        self.due.sort(key=lambda f: (f.due_at, -f.priority, f.key))
        self.held.sort(key=lambda h: (h.follow_up.due_at, -h.follow_up.priority, h.follow_up.key))

    def ask(self, f: FollowUp, at: datetime, planned: list[tuple[datetime, str]]) -> Verdict:
        """The contact gate's answer for ``f`` at ``at``."""
        assert f.channel is not None
        return contact_gate(
            self.facts,
            channel=f.channel,
            purpose=f.purpose,
            at=at,
            valid_until=to_utc(f.valid_until),
            planned=planned,
            via=f.contact_channel,
        )


def plan_customer(
    history: Sequence[Event],
    policy: Policy,
    now: datetime,
    *,
    customer_id: str | None = None,
    horizon: timedelta = timedelta(0),
    referrals: Mapping[str, datetime] | None = None,
    model: AliveModel | None = None,
    rules: Sequence[CadenceRule] | None = None,
    lookahead: timedelta = timedelta(0),
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
        model: the fitted value model, if any: win-back and at-risk rules then read the
            P(alive)-based status that ``assess`` reports.
        rules: plan only these rules (default: every rule of the policy).
        lookahead: how far past the horizon to look for follow-ups coming, for
            :attr:`Plan.next_due`; they are not planned.

    Returns:
        A :class:`Plan`: ``due`` to send, ``held`` each with why. Follow-ups held because they
        expired are reported for ``policy.cadence.lookback_days``.
    """
    now = to_utc(require_aware(now, "now"))
    if customer_id is None:
        customer_id = history[0].customer_id if history else "?"
    facts = CustomerRecord(
        customer_id,
        history,
        policy,
        now,
        referrals=referrals,
        lookback=timedelta(days=policy.cadence.lookback_days),
        horizon=horizon + lookahead,
        model=model,
    )
    return plan_facts(facts, horizon=horizon, rules=rules)


def plan_facts(
    facts: CustomerRecord,
    *,
    horizon: timedelta = timedelta(0),
    rules: Sequence[CadenceRule] | None = None,
) -> Plan:
    """:func:`plan_customer` on a customer's record already read; follow-ups the record's
    window shows past the horizon go into :attr:`Plan.next_due`."""
    planner = _Planner(facts, facts.policy, horizon)
    planner.run(facts.policy.cadence.rules if rules is None else rules)
    planner.coming(replan_at(planner.end, facts.tz))
    assert planner.upcoming is not None  # the midnight after the horizon is always later
    return Plan(
        due=tuple(planner.due),
        held=tuple(planner.held),
        as_of=facts.now,
        next_due={facts.customer_id: planner.upcoming},
        skipped=tuple(planner.skipped),
    )


def plan_customers(
    histories: Mapping[str, Sequence[Event]],
    policy: Policy,
    now: datetime,
    *,
    horizon: timedelta = timedelta(0),
    model: AliveModel | None = None,
    referrals: Mapping[str, Mapping[str, datetime]] | None = None,
    lookahead: timedelta = timedelta(0),
) -> Plan:
    """:func:`plan_customer` for every customer of ``histories`` (customer id to events).

    Referral thank-yous read the referred customers' first valid orders from ``referrals``
    (customer id to referred id to instant) or, when not given, from ``histories``. The plan
    lists follow-ups by due time, then customer. A customer whose history cannot be planned
    is listed in :attr:`Plan.skipped` with the error, and everyone else is planned.
    """
    now = to_utc(require_aware(now, "now"))
    if referrals is None:
        referrals = referral_conversions(histories, policy, now)
    return _plan_some(
        histories, sorted(histories), policy, now, horizon, model, referrals, lookahead
    )


def _plan_some(
    histories: Mapping[str, Sequence[Event]],
    ids: Iterable[str],
    policy: Policy,
    now: datetime,
    horizon: timedelta,
    model: AliveModel | None,
    referrals: Mapping[str, Mapping[str, datetime]],
    lookahead: timedelta,
    rules_of: Callable[[str], Sequence[CadenceRule] | None] = lambda _: None,
) -> Plan:
    """The reference planner for the customers of ``ids`` (in order): a record each, planned with
    the rules ``rules_of`` gives them (default: the policy's)."""
    skipped: list[Skipped] = []

    def records() -> Iterator[CustomerRecord]:
        # One record at a time, in the order of ``ids``: a record is dropped once planned.
        for cid in ids:
            try:
                record = CustomerRecord(
                    cid,
                    histories[cid],
                    policy,
                    now,
                    referrals=referrals.get(cid),
                    lookback=timedelta(days=policy.cadence.lookback_days),
                    horizon=horizon + lookahead,
                    model=model,
                )
            except Exception as e:  # reported in Plan.skipped, never swallowed
                skipped.append(Skipped.of(cid, e))
                continue
            yield record

    plan = _plan_each(records(), horizon, rules_of, now, ordered=True)
    if skipped:
        everyone = sorted([*skipped, *plan.skipped], key=lambda x: (x.customer_id, x.rule or ""))
        plan = attrs.evolve(plan, skipped=tuple(everyone))
    return plan


def plan_records(
    records: Iterable[CustomerRecord],
    *,
    horizon: timedelta = timedelta(0),
    rules: Sequence[CadenceRule] | None = None,
    now: datetime | None = None,
) -> Plan:
    """:func:`plan_facts` for each record (all read at one instant), in one plan: follow-ups
    by due time, then customer. ``now`` is the plan's instant when there is no record. A
    customer who cannot be planned is listed in :attr:`Plan.skipped` with the error, and
    everyone else is planned."""
    return _plan_each(records, horizon, lambda _: rules, now)


def _plan_each(
    records: Iterable[CustomerRecord],
    horizon: timedelta,
    rules_of: Callable[[str], Sequence[CadenceRule] | None],
    now: datetime | None,
    *,
    ordered: bool = False,
) -> Plan:
    """:func:`plan_records`, planning each customer with the rules ``rules_of`` gives them
    (``ordered``: the records come by customer id already)."""
    due: list[FollowUp] = []
    held: list[Held] = []
    skipped: list[Skipped] = []
    upcoming: dict[str, datetime] = {}
    at = now
    for record in records if ordered else sorted(records, key=lambda r: r.customer_id):
        at = record.now
        try:
            p = plan_facts(record, horizon=horizon, rules=rules_of(record.customer_id))
        except Exception as e:  # reported in Plan.skipped, never swallowed
            skipped.append(Skipped.of(record.customer_id, e))
            continue
        due += p.due
        held += p.held
        skipped += p.skipped
        upcoming.update(p.next_due)
    due.sort(key=_due_order)
    held.sort(key=_held_order)
    if at is None:
        raise UsageError("plan_records needs now= when it is given no record")
    return Plan(
        due=tuple(due), held=tuple(held), as_of=at, next_due=upcoming, skipped=tuple(skipped)
    )


def _due_order(f: FollowUp) -> tuple[datetime, str, int, str]:
    """How a plan of many customers lists what is due: by due time, then customer."""
    return f.due_at, f.customer_id, -f.priority, f.key


def _held_order(h: Held) -> tuple[datetime, str, str]:
    return h.follow_up.due_at, h.follow_up.customer_id, h.follow_up.key


def join_plans(plans: Sequence[Plan], now: datetime) -> Plan:
    """One plan of the plans of separate groups of customers, all made at ``now``, listed as
    one plan of them all would list them."""
    return Plan(
        due=tuple(sorted((f for p in plans for f in p.due), key=_due_order)),
        held=tuple(sorted((h for p in plans for h in p.held), key=_held_order)),
        as_of=now,
        next_due={c: t for p in plans for c, t in p.next_due.items()},
        # By customer alone: the sort keeps each plan's order of a customer's rules.
        skipped=tuple(sorted((s for p in plans for s in p.skipped), key=lambda s: s.customer_id)),
    )


def plan_bulk(
    histories: Mapping[str, Sequence[Event]],
    policy: Policy,
    now: datetime,
    *,
    horizon: timedelta = timedelta(0),
    model: AliveModel | None = None,
    referrals: Mapping[str, Mapping[str, datetime]] | None = None,
    lookahead: timedelta = timedelta(0),
) -> Plan:
    """:func:`plan_customers` for a large shop: the same plan, in a fraction of the time.

    Bounds worked out for the whole shop at once with array arithmetic
    (:mod:`lifecycle.cadence.reach`) pick the customers some rule may give a follow-up due by
    the horizon (or held back within the lookback); those are planned by
    :func:`plan_customers`' own code. Every other customer has nothing due and nothing held,
    and :attr:`Plan.next_due` gives them their midnight after the horizon, as the
    reference planner does. Each customer reached is planned with the rules that may reach
    them. Unlike :func:`plan_customers`, a customer no rule reaches is not folded, and a rule
    is not run for a customer it cannot reach: a history that cannot be folded, or a rule
    that fails whatever the window, is reported in :attr:`Plan.skipped` only for customers
    (and rules) the bounds reach. The histories are as a store keeps them: the bounds read
    every event, so an event id naming two different events (which the ledger folds once,
    and :meth:`lifecycle.Lifecycle.record` refuses) may give another plan.
    """
    # A large shop's planning allocates many objects that stay alive while it runs: full
    # collections would walk them all and find nothing.
    with collector_paused(len(histories) >= 1000):
        return _plan_bulk(histories, policy, now, horizon, model, referrals, lookahead)


def _plan_bulk(
    histories: Mapping[str, Sequence[Event]],
    policy: Policy,
    now: datetime,
    horizon: timedelta,
    model: AliveModel | None,
    referrals: Mapping[str, Mapping[str, datetime]] | None,
    lookahead: timedelta,
) -> Plan:
    now = to_utc(require_aware(now, "now"))
    if referrals is None:
        referrals = referral_conversions(histories, policy, now)
    ids = sorted(histories)
    end = now + horizon + lookahead
    hits, zones = reach(
        histories,
        policy,
        now,
        ids=ids,
        rules=policy.cadence.rules,
        referrals=referrals,
        end=end,
        model=model,
    )
    # Each customer reached is planned with the rules that reach them: a rule left out gives
    # them nothing in the window (nor, with a lookahead, past it).
    hit = np.any(hits, axis=0)
    reached: list[bool] = hit.tolist()
    rules = policy.cadence.rules
    subsets: dict[bytes, tuple[CadenceRule, ...]] = {}
    rules_of: dict[str, tuple[CadenceRule, ...]] = {}
    for i in np.flatnonzero(hit).tolist():
        column: list[bool] = hits[:, i].tolist()
        key = bytes(column)
        mine = subsets.get(key)
        if mine is None:
            mine = subsets[key] = tuple(r for r, h in zip(rules, column, strict=True) if h)
        rules_of[ids[i]] = mine
    plan = _plan_some(
        histories, list(rules_of), policy, now, horizon, model, referrals, lookahead, rules_of.get
    )
    # The reference planner's next instant for a customer with nothing in the window.
    plan_end = now + horizon
    midnight: dict[tzinfo, datetime] = {}
    shop = customer_zone((), policy)
    upcoming: dict[str, datetime] = {}
    for i, (cid, h) in enumerate(zip(ids, reached, strict=True)):
        if h:
            continue
        tz = zones.get(i, shop)
        at = midnight.get(tz)
        if at is None:
            at = midnight[tz] = replan_at(plan_end, tz)
        upcoming[cid] = at
    upcoming.update(plan.next_due)
    return attrs.evolve(plan, next_due=upcoming)
