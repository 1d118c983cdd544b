"""Lifecycle.plan: the planner over the store, deterministic and never repeating a sent key."""

from __future__ import annotations

from functools import cache

import lifecycle as lc
from lifecycle.datasets import SyntheticShop, synthetic_shop


@cache
def shop() -> tuple[SyntheticShop, lc.Lifecycle]:
    data = synthetic_shop(400, seed=6)
    s = lc.Lifecycle.in_memory(
        clock=lc.FixedClock(data.as_of), policy=lc.Policy(timezone=data.timezone)
    )
    s.record(data.events)
    return data, s


def test_planning_twice_gives_the_same_plan() -> None:
    _, s = shop()
    first, again = s.plan(), s.plan()
    assert first.keys() == again.keys()
    assert len(first.due) > 0
    assert all(f.due_at <= first.as_of for f in first.due)


def test_a_sent_key_is_not_planned_again() -> None:
    data, _ = shop()
    s = lc.Lifecycle.in_memory(
        clock=lc.FixedClock(data.as_of), policy=lc.Policy(timezone=data.timezone)
    )
    s.record(data.events)
    plan = s.plan()
    sent = plan.due[0]
    s.record(
        lc.Contacted(
            customer_id=sent.customer_id,
            at=data.as_of,
            channel=sent.channel or "task",
            purpose=sent.purpose,
            rule=sent.rule,
            template=sent.template,
            key=sent.key,
        )
    )
    assert sent.key not in set(s.plan().keys())


def test_planning_some_customers() -> None:
    _, s = shop()
    whole = s.plan()
    some = {f.customer_id for f in whole.due[:3]}
    part = s.plan(customers=some)
    assert set(part.keys()) == {f.key for f in whole.due if f.customer_id in some}
