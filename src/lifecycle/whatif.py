"""What-if: the stored history replayed under two policies, and what would have differed.

Pure: histories and two policies in, a :class:`PolicyComparison` out; nothing is written.
Every decision derives from events and a policy, so the same history judged by another
policy says what that policy would have decided: stages, statuses, tiers and owners' loads at
the end of the window, and the follow-ups each rule would have sent or held during it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import attrs

from lifecycle._display import html_table, one_line, pandas
from lifecycle._time import to_utc
from lifecycle.assessment import assess_record, referral_conversions
from lifecycle.cadence.gate import Hold
from lifecycle.cadence.planner import plan_facts
from lifecycle.events import Event
from lifecycle.experiments import steps, window
from lifecycle.owners import sweep
from lifecycle.policy import Policy
from lifecycle.reasons import Reason, Skipped
from lifecycle.record import CustomerRecord

__all__ = ["PolicyComparison", "PolicyDifference", "RuleMessages", "compare_policies"]

Aspect = Literal["stage", "status", "tier", "owner"]


@attrs.frozen(kw_only=True)
class PolicyDifference:
    """One customer judged differently: ``what`` was ``before`` under policy A and is
    ``after`` under policy B, with B's reasons."""

    customer_id: str
    what: Aspect
    before: str
    after: str
    reasons: tuple[Reason, ...] = ()


@attrs.frozen(kw_only=True)
class RuleMessages:
    """A rule's follow-ups falling due in the window under each policy: how many would have
    been sent, and how many held, by why (``Hold`` values)."""

    rule: str
    sent_a: int = 0
    sent_b: int = 0
    held_a: Mapping[str, int] = attrs.field(factory=dict)
    held_b: Mapping[str, int] = attrs.field(factory=dict)

    @property
    def same(self) -> bool:
        return self.sent_a == self.sent_b and dict(self.held_a) == dict(self.held_b)


def _counts(values: Sequence[str]) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))


@attrs.frozen(kw_only=True)
class PolicyComparison:
    """What policy B would have decided differently from policy A over a window.

    Attributes:
        since, until: the window; stages, statuses, tiers and owners are as of ``until``.
        customers: how many customers were replayed.
        stages_a, stages_b, statuses_a, statuses_b, tiers_a, tiers_b: counts by value.
        owners_a, owners_b: customers per owner after the reclaims each policy's pool sweep
            would make at ``until`` (``""`` is the shared pool).
        differences: each customer judged differently, with why (B's reasons).
        messages: per rule, the follow-ups each policy would have sent or held.
        skipped: customers who could not be replayed.
    """

    since: datetime
    until: datetime
    customers: int
    stages_a: Mapping[str, int]
    stages_b: Mapping[str, int]
    statuses_a: Mapping[str, int]
    statuses_b: Mapping[str, int]
    tiers_a: Mapping[str, int]
    tiers_b: Mapping[str, int]
    owners_a: Mapping[str, int]
    owners_b: Mapping[str, int]
    differences: tuple[PolicyDifference, ...]
    messages: tuple[RuleMessages, ...]
    skipped: tuple[Skipped, ...] = ()

    @property
    def same(self) -> bool:
        """Whether the two policies decide everything alike over the window."""
        return not self.differences and all(m.same for m in self.messages)

    def moved(self, what: Aspect) -> dict[str, tuple[str, str]]:
        """Customer id to (A's value, B's value) for the customers whose ``what`` differs."""
        return {d.customer_id: (d.before, d.after) for d in self.differences if d.what == what}

    def rows(self) -> list[dict[str, Any]]:
        """One row per count (what, value, under A, under B), then one per rule's messages."""
        out: list[dict[str, Any]] = []
        for what, a, b in (
            ("stage", self.stages_a, self.stages_b),
            ("status", self.statuses_a, self.statuses_b),
            ("tier", self.tiers_a, self.tiers_b),
            ("owner", self.owners_a, self.owners_b),
        ):
            for value in sorted(set(a) | set(b)):
                out.append(
                    {"what": what, "value": value, "a": a.get(value, 0), "b": b.get(value, 0)}
                )
        for m in self.messages:
            out.append({"what": "sent", "value": m.rule, "a": m.sent_a, "b": m.sent_b})
            for hold in sorted(set(m.held_a) | set(m.held_b)):
                out.append(
                    {
                        "what": f"held: {hold}",
                        "value": m.rule,
                        "a": m.held_a.get(hold, 0),
                        "b": m.held_b.get(hold, 0),
                    }
                )
        return out

    def to_dict(self, lang: Literal["en", "zh"] = "en") -> dict[str, Any]:
        """The comparison as plain values (JSON-ready)."""
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "customers": self.customers,
            "same": self.same,
            "counts": self.rows(),
            "differences": [
                {
                    "customer_id": d.customer_id,
                    "what": d.what,
                    "a": d.before,
                    "b": d.after,
                    "why": [r.text(lang) for r in d.reasons],
                }
                for d in self.differences
            ],
            "skipped": [str(s) for s in self.skipped],
        }

    def to_pandas(self) -> Any:
        """:meth:`rows` as a DataFrame (needs pandas)."""
        return pandas().DataFrame(self.rows())

    def __repr__(self) -> str:
        changed = sum(1 for m in self.messages if not m.same)
        return one_line(
            "PolicyComparison",
            f"{self.since:%Y-%m-%d} to {self.until:%Y-%m-%d}",
            f"{self.customers:,} customers",
            f"{len({d.customer_id for d in self.differences}):,} judged differently",
            f"{changed:,} rules send differently",
        )

    def _repr_html_(self) -> str:
        rows = [r for r in self.rows() if r["a"] != r["b"]][:40]
        cells = [(r["what"], r["value"], r["a"], r["b"]) for r in rows]
        caption = (
            f"{self.since:%Y-%m-%d} to {self.until:%Y-%m-%d}: "
            f"{len(self.differences):,} differences"
            + ("" if rows else " (the policies decide alike)")
        )
        html = html_table(("what", "value", "policy A", "policy B"), cells, caption=caption)
        shown = [
            (d.customer_id, d.what, d.before, d.after, d.reasons[0].en if d.reasons else "")
            for d in self.differences[:20]
        ]
        if shown:
            html += html_table(("customer", "what", "A", "B", "why (B)"), shown)
        return html


def _tier_key(record: CustomerRecord) -> str:
    tier = record.tier
    return tier.tier.key if tier is not None else record.policy.loyalty.tiers.levels[0].key


def _messages(
    histories: Mapping[str, Sequence[Event]],
    policy: Policy,
    since: datetime,
    until: datetime,
    step: timedelta,
    skipped: dict[str, Skipped],
) -> dict[str, tuple[int, dict[str, int]]]:
    """Per rule: follow-ups due in the window that a plan at some step lets out (or the
    history shows sent), and the others by the last reason they were held."""
    state: dict[str, tuple[str, str]] = {}  # key -> (rule, "sent" or the hold)
    lookback = timedelta(days=policy.cadence.lookback_days)
    for t in steps(since, until, step):
        for cid in sorted(histories):
            history = histories[cid]
            if cid in skipped or not history or min(to_utc(e.at) for e in history) >= t:
                continue
            try:
                record = CustomerRecord(cid, history, policy, t, lookback=lookback, horizon=step)
                plan = plan_facts(record, horizon=step)
            except Exception as e:  # reported in ``skipped``, never swallowed
                skipped[cid] = Skipped.of(cid, e)
                continue
            for f in plan.due:
                if since <= to_utc(f.due_at) < until:
                    state[f.key] = (f.rule, "sent")
            for h in plan.held:
                f = h.follow_up
                if not since <= to_utc(f.due_at) < until or state.get(f.key, ("", ""))[1] == "sent":
                    continue
                state[f.key] = (f.rule, "sent" if h.hold is Hold.DUPLICATE else h.hold.value)
    out: dict[str, tuple[int, dict[str, int]]] = {}
    for rule in policy.cadence.rules:
        mine = [v for r, v in state.values() if r == rule.id]
        out[rule.id] = (
            sum(1 for v in mine if v == "sent"),
            _counts([v for v in mine if v != "sent"]),
        )
    return out


def compare_policies(
    histories: Mapping[str, Sequence[Event]],
    policy_a: Policy,
    policy_b: Policy,
    since: datetime,
    until: datetime,
    *,
    step: timedelta = timedelta(days=1),
) -> PolicyComparison:
    """Replay ``histories`` under both policies over ``[since, until)``.

    Stages, statuses, tiers and owners are judged at ``until``; owners after the reclaims
    each policy's pool sweep would make then. Follow-ups: at each step ``t`` the customer is
    planned as of ``t`` for the ``step`` ahead; a follow-up due in the window counts as sent
    when some step lets it out (or the history shows it sent), else as held with the reason of
    the last step that held it. The history's own contacts stay as they were (caps count
    them under both policies): the replay changes decisions, not what customers did.

    Raises:
        UsageError: a bad window or step.
    """
    since, until = window(since, until)
    skipped: dict[str, Skipped] = {}
    judged: dict[str, dict[str, tuple[CustomerRecord, str, str, str, str]]] = {}
    for name, policy in (("a", policy_a), ("b", policy_b)):
        referrals = referral_conversions(histories, policy, until)
        mine: dict[str, tuple[CustomerRecord, str, str, str, str]] = {}
        for cid in sorted(histories):
            history = [e for e in histories[cid] if to_utc(e.at) < until]
            if not history or cid in skipped:
                continue
            try:
                r = CustomerRecord(cid, history, policy, until, referrals=referrals.get(cid))
                status = r.status.status
                mine[cid] = (
                    r,
                    r.stage.name.lower(),
                    "" if status is None else status.value,
                    _tier_key(r),
                    r.ownership.owner_id or "",
                )
            except Exception as e:  # reported in ``skipped``, never swallowed
                skipped[cid] = Skipped.of(cid, e)
        reclaimed = sweep({c: histories[c] for c in mine}, policy.owners, until)
        for d in reclaimed.decisions:
            if d.customer_id in mine:
                mine[d.customer_id] = (*mine[d.customer_id][:4], "")
        judged[name] = mine
    for cid in skipped:
        judged["a"].pop(cid, None)
        judged["b"].pop(cid, None)
    a, b = judged["a"], judged["b"]
    common = sorted(a.keys() & b.keys())
    differences: list[PolicyDifference] = []
    for cid in common:
        ra, rb = a[cid], b[cid]
        if ra[1:] == rb[1:]:
            continue
        explained = assess_record(rb[0])
        why = {
            "stage": explained.stage_detail.reasons,
            "status": explained.status_detail.reasons,
            "tier": explained.tier_detail.reasons,
            "owner": (),
        }
        aspects: tuple[Aspect, ...] = ("stage", "status", "tier", "owner")
        for i, what in enumerate(aspects, start=1):
            if ra[i] != rb[i]:
                before, after = str(ra[i]), str(rb[i])
                differences.append(
                    PolicyDifference(
                        customer_id=cid,
                        what=what,
                        before=before or "-",
                        after=after or "-",
                        reasons=tuple(why[what]),
                    )
                )
    sent_a = _messages(histories, policy_a, since, until, step, skipped)
    sent_b = _messages(histories, policy_b, since, until, step, skipped)
    messages = tuple(
        RuleMessages(
            rule=rule,
            sent_a=sent_a.get(rule, (0, {}))[0],
            sent_b=sent_b.get(rule, (0, {}))[0],
            held_a=sent_a.get(rule, (0, {}))[1],
            held_b=sent_b.get(rule, (0, {}))[1],
        )
        for rule in dict.fromkeys([*sent_a, *sent_b])
    )

    def counts(
        side: dict[str, tuple[CustomerRecord, str, str, str, str]], i: int
    ) -> dict[str, int]:
        return _counts([str(side[c][i]) or "-" for c in common])

    return PolicyComparison(
        since=since,
        until=until,
        customers=len(common),
        stages_a=counts(a, 1),
        stages_b=counts(b, 1),
        statuses_a=counts(a, 2),
        statuses_b=counts(b, 2),
        tiers_a=counts(a, 3),
        tiers_b=counts(b, 3),
        owners_a=counts(a, 4),
        owners_b=counts(b, 4),
        differences=tuple(differences),
        messages=messages,
        skipped=tuple(skipped[c] for c in sorted(skipped)),
    )
