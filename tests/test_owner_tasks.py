"""Owner tasks not done are carried over, then escalated to the owner's lead, never dropped."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

import lifecycle as lc
from lifecycle.vocabulary import ESCALATION_TEMPLATE
from test_cadence import at, bought, plan, policy, registered, sent

#: A long-term customer last contacted on 1 Oct 2025: the monthly owner task falls due on
#: 31 Oct and expires 30 days later.
HISTORY: list[lc.Event] = [
    registered(),
    *bought("o1", at(2025, 1, 5)),
    *bought("o2", at(2025, 5, 5)),
    *bought("o3", at(2025, 9, 5)),
    lc.Contacted(customer_id="c1", channel="phone", at=at(2025, 10, 1, 10)),
]
OWNED = lc.OwnerAssigned(customer_id="c1", at=at(2025, 9, 10), owner_id="ann")


def _policy(**owners: object) -> lc.Policy:
    base = policy("long_term_follow_up")
    return attrs.evolve(base, owners=attrs.evolve(base.owners, **owners))


def _tasks(history: list[lc.Event], now: datetime, pol: lc.Policy) -> list[lc.FollowUp]:
    return [f for f in plan(history, now, pol).due if f.channel == "task"]


def test_an_expired_task_of_an_owned_customer_is_planned_again_for_the_day() -> None:
    pol = _policy(escalate_after_days=None)
    [first] = _tasks([*HISTORY, OWNED], at(2025, 10, 31, 10), pol)
    assert _tasks([*HISTORY, OWNED], at(2025, 11, 29, 10), pol) == [first]  # still valid
    now = at(2025, 12, 3, 10)
    [carried] = _tasks([*HISTORY, OWNED], now, pol)
    assert carried.key == f"{first.key}:carry:2025-12-03"
    assert carried.reason.code == "cadence.carried_over"
    assert "2025-10-31" in carried.reason.en
    assert carried.valid_until > now


def test_without_an_owner_an_expired_task_still_expires() -> None:
    pol = _policy()
    assert _tasks(HISTORY, at(2025, 12, 3, 10), pol) == []


def test_a_carried_task_once_done_is_not_carried_again() -> None:
    pol = _policy(escalate_after_days=None)
    history = [*HISTORY, OWNED]
    [carried] = _tasks(history, at(2025, 12, 3, 10), pol)
    history.append(sent(carried, at(2025, 12, 3, 11)))
    later = _tasks(history, at(2025, 12, 5, 10), pol)
    assert all(":carry:" not in f.key for f in later)


def test_a_task_late_for_k_days_is_escalated_to_the_owners_lead_once() -> None:
    pol = _policy(escalate_after_days=3, leads={"ann": "lee"})
    history = [*HISTORY, OWNED]
    assert [f.template for f in _tasks(history, at(2025, 11, 2, 10), pol)] == ["owner_follow_up"]
    tasks = _tasks(history, at(2025, 11, 4, 10), pol)
    [escalation] = [f for f in tasks if f.template == ESCALATION_TEMPLATE]
    assert escalation.key.endswith(":escalate")
    assert escalation.reason.code == "cadence.escalated"
    assert "lee" in escalation.text_en
    assert "ann" in escalation.text_en
    assert "lee" in escalation.reason.zh
    history.append(sent(escalation, at(2025, 11, 4, 11)))
    again = _tasks(history, at(2025, 11, 5, 10), pol)
    assert [f.template for f in again] == ["owner_follow_up"]  # carried on, escalated once


def test_no_escalation_without_a_lead_or_with_escalation_off() -> None:
    history = [*HISTORY, OWNED]
    for pol in (
        _policy(escalate_after_days=3),
        _policy(escalate_after_days=None, leads={"ann": "lee"}),
    ):
        tasks = _tasks(history, at(2025, 11, 10, 10), pol)
        assert [f.template for f in tasks] == ["owner_follow_up"]


def test_lateness_counts_from_when_the_owner_took_the_customer() -> None:
    pol = _policy(escalate_after_days=3, leads={"bo": "lee"})
    taken = lc.OwnerAssigned(customer_id="c1", at=at(2025, 12, 1), owner_id="bo")
    history = [*HISTORY, taken]
    assert [f.template for f in _tasks(history, at(2025, 12, 2, 10), pol)] == ["owner_follow_up"]
    assert ESCALATION_TEMPLATE not in [
        f.template for f in _tasks(history, at(2025, 12, 4, 11), pol)
    ]
    templates = [f.template for f in _tasks(history, at(2025, 12, 4, 13), pol)]
    assert ESCALATION_TEMPLATE in templates


def test_the_dispatcher_sends_a_carried_task_and_its_escalation() -> None:
    pol = _policy(escalate_after_days=3, leads={"ann": "lee"})
    task = lc.MemoryChannel()
    now = at(2025, 12, 4, 10)
    shop = lc.Lifecycle.in_memory(policy=pol, clock=lc.FixedClock(now), channels={"task": task})
    shop.record(HISTORY)
    shop.record(OWNED)
    shop.dispatch(now)
    keys = [m.key for m in task.sent]
    assert any(":carry:2025-12-04" in k for k in keys)
    assert any(k.endswith(":escalate") for k in keys)
    # Sent tasks are done: the next day nothing is carried.
    shop.dispatch(now + timedelta(days=1))
    assert len(task.sent) == len(keys)
