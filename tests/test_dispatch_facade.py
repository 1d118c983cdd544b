"""Lifecycle.dispatch and the owner methods: the facade over the planner, outbox and pool."""

from __future__ import annotations

from datetime import timedelta

import lifecycle as lc
from lifecycle.datasets import synthetic_shop

CHANNELS = ("sms", "email", "wechat", "app_push", "task", "phone", "post", "visit")


def shop_with_channels(customers: int = 300) -> tuple[lc.Lifecycle, dict[str, lc.MemoryChannel]]:
    data = synthetic_shop(customers, seed=9)
    channels = {name: lc.MemoryChannel(name) for name in CHANNELS}
    shop = lc.Lifecycle.in_memory(
        clock=lc.FixedClock(data.as_of), policy=lc.Policy(timezone=data.timezone), channels=channels
    )
    shop.record(data.events)
    return shop, channels


def test_planning_and_dispatching_twice_sends_once() -> None:
    shop, channels = shop_with_channels()
    planned = shop.plan()
    first = shop.dispatch()
    again = shop.dispatch()
    sent = [m.key for c in channels.values() for m in c.sent]
    assert len(sent) == len(set(sent))
    assert set(first.sent) <= {f.key for f in planned.due}
    assert len(first.sent) > 0
    assert again.sent == ()
    # Every sent message left its Contacted event, so the plan no longer holds it.
    assert not set(first.sent) & set(shop.plan().keys())


def test_dispatch_over_days_never_repeats_a_key() -> None:
    shop, channels = shop_with_channels(150)
    start = shop.clock.now()
    for day in range(5):
        shop.dispatch(start + timedelta(days=day))
    sent = [m.key for c in channels.values() for m in c.sent]
    assert len(sent) == len(set(sent))


def test_owners_are_assigned_and_swept_back_to_the_pool() -> None:
    shop, _ = shop_with_channels(120)
    now = shop.clock.now()
    changes = shop.assign_owners(["rep-a", "rep-b"], now)
    assert changes.events
    assert {e.owner_id for e in changes.events} == {"rep-a", "rep-b"}  # type: ignore[attr-defined]
    later = now + timedelta(days=60)
    swept = shop.sweep_pool(later)
    assert swept.events
    assert all(isinstance(e, lc.ReturnedToPool) for e in swept.events)
    returned = swept.events[0].customer_id
    moved = shop.transfer_owner([returned], "rep-c", later, kind="claim")
    assert [(e.customer_id, e.owner_id) for e in moved.events] == [(returned, "rep-c")]  # type: ignore[attr-defined]
    assert (
        lc.ownership(returned, shop.history(returned), shop.policy.owners, later).owner_id
        == "rep-c"
    )


def test_the_sweep_reads_the_stage_at_the_sweep_not_a_stale_snapshot() -> None:
    shop, _ = shop_with_channels(120)
    now = shop.clock.now()
    shop.assign_owners(["rep-a"], now)
    later = now + timedelta(days=400)  # long-term customers have lapsed back by then
    from lifecycle.owners import sweep

    expected = sweep(
        {c: shop.history(c) for c in shop.store.customer_ids()},
        shop.policy.owners,
        later,
        stages={c: shop.assess(c, at=later).stage for c in shop.store.customer_ids()},
    )
    assert {e.customer_id for e in shop.sweep_pool(later).events} == {
        e.customer_id for e in expected.events
    }
