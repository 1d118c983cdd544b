"""Experiments on follow-up rules: who a rule's holdout put in each group, and the uplift.

Pure: histories, a policy and a window in, a result out; nothing is written. The groups are
derived, not stored: a customer enters the experiment the first time the rule has something
for them in the window (replayed step by step, each step seeing only the events before it),
and :func:`lifecycle.cadence.gate.in_control` (the one decision the planner and the
dispatcher ask) says which group. Outcomes are the valid orders paid from then to the end.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta

import attrs
import numpy as np

from lifecycle._time import require_aware, to_utc
from lifecycle.analytics.uplift import Uplift, uplift
from lifecycle.cadence.gate import holdout_share, in_control
from lifecycle.errors import UsageError
from lifecycle.events import Event
from lifecycle.policy import Policy
from lifecycle.reasons import Skipped
from lifecycle.record import CustomerRecord

__all__ = ["Enrolment", "enrolments", "measure", "steps"]


def steps(since: datetime, until: datetime, step: timedelta) -> Iterator[datetime]:
    """The replay's instants: ``since``, ``since + step``, ... before ``until``."""
    if step <= timedelta(0):
        raise UsageError(f"step must be longer than zero, got {step}")
    t = since
    while t < until:
        yield t
        t += step


def window(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """The window checked: aware instants, ``since`` before ``until``, in UTC."""
    since = to_utc(require_aware(since, "since"))
    until = to_utc(require_aware(until, "until"))
    if until <= since:
        raise UsageError(f"until ({until.isoformat()}) must be after since ({since.isoformat()})")
    return since, until


@attrs.frozen(kw_only=True)
class Enrolment:
    """A customer's place in a rule's experiment: when the rule first had something for them
    in the window (``at``, the occurrence's due time) and whether they are in the control group."""

    customer_id: str
    at: datetime
    key: str
    control: bool


def enrolments(
    histories: Mapping[str, Sequence[Event]],
    policy: Policy,
    rule_id: str,
    since: datetime,
    until: datetime,
    *,
    step: timedelta = timedelta(days=1),
    skipped: list[Skipped] | None = None,
) -> dict[str, Enrolment]:
    """Who the rule reached in ``[since, until)``, each with their group.

    At each step ``t`` the customer's record as of ``t`` (events before ``t`` only, so nothing
    the follow-up caused decides who is in) is asked for the rule's occurrences due before
    ``t + step`` and still valid at ``t``; the first one enrols the customer. Whether it was
    then sent, held for consent or stopped does not matter: the groups compare everyone the
    rule meant to reach (intention to treat), which the random draw keeps comparable.

    Raises:
        UsageError: an unknown rule, a bad window or step.
    """
    since, until = window(since, until)
    rule = policy.cadence.rule_or_none(rule_id)
    if rule is None:
        raise UsageError(f"no rule {rule_id!r} in the policy")
    out: dict[str, Enrolment] = {}
    bad: set[str] = set()
    for t in steps(since, until, step):
        end = t + step
        for cid in sorted(histories):
            if cid in out or cid in bad:
                continue
            history = histories[cid]
            if not history or min(to_utc(e.at) for e in history) >= t:
                continue
            try:
                record = CustomerRecord(cid, history, policy, t, lookback=step, horizon=step)
                found = [
                    o
                    for o in rule.occurrences(record)
                    if since <= o.due_at < end and o.valid_until > t
                ]
            except Exception as e:  # reported in ``skipped``, never swallowed
                bad.add(cid)
                if skipped is None:
                    raise
                skipped.append(Skipped.of(cid, e, rule_id))
                continue
            if found:
                first = min(found, key=lambda o: (o.due_at, o.occurrence))
                out[cid] = Enrolment(
                    customer_id=cid,
                    at=max(first.due_at, since),
                    key=f"{cid}:{rule.id}:{first.occurrence}",
                    control=in_control(rule, rule.id, cid),
                )
    return out


def measure(
    histories: Mapping[str, Sequence[Event]],
    policy: Policy,
    rule_id: str,
    since: datetime,
    until: datetime,
    *,
    step: timedelta = timedelta(days=1),
    alpha: float = 0.05,
    skipped: list[Skipped] | None = None,
) -> Uplift:
    """The uplift of the rule's follow-ups: treated against control customers of
    :func:`enrolments`, by the valid orders they paid from their enrolment until ``until``
    (orders still valid then; revenue net of refunds, in the policy's currency).

    Raises:
        UsageError: an unknown rule, a rule without a holdout, a bad window, or a group left
            empty (nobody to compare).
    """
    since, until = window(since, until)
    rule = policy.cadence.rule_or_none(rule_id)
    if rule is None:
        raise UsageError(f"no rule {rule_id!r} in the policy")
    if holdout_share(rule)[0] == 0:
        raise UsageError(
            f"rule {rule_id!r} holds out nobody: set cadence.rules.{rule_id}.holdout (e.g. 0.1)"
        )
    enrolled = enrolments(histories, policy, rule_id, since, until, step=step, skipped=skipped)
    orders: dict[bool, list[float]] = {True: [], False: []}
    revenue: dict[bool, list[float]] = {True: [], False: []}
    for cid, e in sorted(enrolled.items()):
        record = CustomerRecord(cid, histories[cid], policy, until)
        bought = [
            o
            for o in record.valid_orders()
            if o.paid is not None and e.at <= to_utc(o.paid.at) < until
        ]
        orders[e.control].append(float(len(bought)))
        revenue[e.control].append(
            float(
                sum(
                    o.net_amount
                    for o in bought
                    if o.paid is not None and o.paid.currency == policy.currency
                )
            )
        )
    if not orders[True] or not orders[False]:
        raise UsageError(
            f"rule {rule_id!r} reached {len(orders[False]):,} treated and "
            f"{len(orders[True]):,} control customers between {since:%Y-%m-%d} and "
            f"{until:%Y-%m-%d}: both groups are needed"
        )
    return uplift(
        np.array(orders[False]),
        np.array(revenue[False]),
        np.array(orders[True]),
        np.array(revenue[True]),
        rule=rule_id,
        alpha=alpha,
        currency=policy.currency,
        since=since.isoformat(),
        until=until.isoformat(),
    )
