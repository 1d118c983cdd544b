"""Owners and the shared pool: assignment, capacity, reclaim with warning, cooldown, transfers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

import lifecycle as lc
from lifecycle.errors import PolicyError
from lifecycle.events import (
    Contacted,
    Event,
    LeadCaptured,
    OrderPaid,
    OwnerAssigned,
    ReturnedToPool,
)
from lifecycle.owners import assign, ownership, sweep, transfer
from lifecycle.policy import Assignment, OwnerPolicy
from lifecycle.vocabulary import Stage

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
POLICY = OwnerPolicy()


def _day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def _leads(n: int) -> dict[str, list[Event]]:
    return {f"p{i}": [LeadCaptured(customer_id=f"p{i}", at=T0, source="fair")] for i in range(n)}


def _apply(histories: dict[str, list[Event]], events: tuple[Event, ...]) -> None:
    for e in events:
        histories.setdefault(e.customer_id, []).append(e)
        histories[e.customer_id].sort(key=lambda x: (x.at, x.rank))


def test_new_prospects_are_assigned_round_robin_and_the_turn_carries_over() -> None:
    h = _leads(5)
    first = assign(h, ["ann", "bob"], POLICY, T0, customer_ids=["p0", "p1", "p2"])
    assert [d.owner_id for d in first.decisions] == ["ann", "bob", "ann"]
    assert all(isinstance(e, OwnerAssigned) for e in first.events)
    _apply(h, first.events)
    second = assign(h, ["ann", "bob"], POLICY, _day(1))
    assert [(d.customer_id, d.owner_id) for d in second.decisions] == [("p3", "bob"), ("p4", "ann")]
    assert second.decisions[0].reason.zh


def test_least_loaded_assignment_fills_the_emptiest_owner_first() -> None:
    h = _leads(6)
    h["p0"].append(OwnerAssigned(customer_id="p0", at=T0, owner_id="ann"))
    h["p1"].append(OwnerAssigned(customer_id="p1", at=T0, owner_id="ann"))
    policy = OwnerPolicy(assignment="least_loaded")
    assert policy.assignment is Assignment.LEAST_LOADED
    out = assign(h, ["ann", "bob"], policy, _day(1))
    assert [d.owner_id for d in out.decisions] == ["bob", "bob", "ann", "bob"]


def test_an_owner_never_holds_more_than_the_capacity() -> None:
    h = _leads(5)
    out = assign(h, ["ann", "bob"], OwnerPolicy(capacity=2), T0)
    assert [d.owner_id for d in out.decisions if d.changed] == ["ann", "bob", "ann", "bob"]
    (refused,) = out.refused
    assert refused.reason.code == "owners.nobody"
    _apply(h, out.events)
    bulk = transfer(h, ["p4"], "ann", OwnerPolicy(capacity=2), _day(1), kind="claim")
    assert bulk.events == ()
    assert bulk.decisions[0].reason.code == "owners.full"


def test_a_customer_without_follow_up_returns_to_the_pool_after_a_warning() -> None:
    h = _leads(1)
    h["p0"].append(OwnerAssigned(customer_id="p0", at=T0, owner_id="ann"))
    assert sweep(h, POLICY, _day(11)).warnings == ()
    warned = sweep(h, POLICY, _day(12))
    (w,) = warned.warnings
    assert (w.owner_id, w.deadline, w.reason.code) == ("ann", _day(15), "owners.warning")
    assert warned.events == ()
    back = sweep(h, POLICY, _day(15))
    (e,) = back.events
    assert isinstance(e, ReturnedToPool)
    assert (e.owner_id, e.at) == ("ann", _day(15))
    assert "15 days" in (e.reason or "")
    assert back.decisions[0].reason.code == "owners.returned"
    assert sweep(h, POLICY, _day(15)).events == back.events  # the same sweep, the same event


def test_a_logged_follow_up_restarts_the_clock_but_an_automated_message_does_not() -> None:
    h = _leads(1)
    h["p0"] += [
        OwnerAssigned(customer_id="p0", at=T0, owner_id="ann"),
        Contacted(customer_id="p0", at=_day(5), channel="sms", rule="promo", key="k"),
    ]
    assert sweep(h, POLICY, _day(15)).events != ()
    h["p0"].insert(2, Contacted(customer_id="p0", at=_day(4), channel="phone"))
    assert sweep(h, POLICY, _day(15)).events == ()
    assert ownership("p0", h["p0"], POLICY, _day(15)).clock_from == _day(4)
    assert len(sweep(h, POLICY, _day(19)).events) == 1


def test_a_paid_order_counts_as_follow_up_when_the_policy_says_so() -> None:
    h = _leads(1)
    h["p0"] += [
        OwnerAssigned(customer_id="p0", at=T0, owner_id="ann"),
        OrderPaid(customer_id="p0", at=_day(10), order_id="o1", amount=Decimal(9), currency="CNY"),
    ]
    assert sweep(h, POLICY, _day(16)).events == ()
    assert sweep(h, OwnerPolicy(orders_restart_clock=False), _day(16)).events != ()


def test_high_value_customers_get_longer_by_stage_or_spend() -> None:
    h = _leads(2)
    for cid in h:
        h[cid].append(OwnerAssigned(customer_id=cid, at=T0, owner_id="ann"))
    h["p1"].append(
        OrderPaid(customer_id="p1", at=T0, order_id="o", amount=Decimal(5000), currency="CNY")
    )
    policy = OwnerPolicy(orders_restart_clock=False, high_value_spend=Decimal(1000))
    out = sweep(h, policy, _day(20), stages={"p0": Stage.LONG_TERM})
    assert out.events == ()
    assert {w.customer_id for w in sweep(h, policy, _day(28)).warnings} == {"p1"}
    assert {e.customer_id for e in sweep(h, policy, _day(30), stages={}).events} == {"p0", "p1"}


def test_the_previous_owner_cannot_reclaim_during_the_cooldown() -> None:
    h = _leads(1)
    h["p0"] += [
        OwnerAssigned(customer_id="p0", at=T0, owner_id="ann"),
        ReturnedToPool(customer_id="p0", at=_day(15), owner_id="ann"),
    ]
    refused = transfer(h, ["p0"], "ann", POLICY, _day(20), kind="claim")
    assert refused.events == ()
    assert refused.decisions[0].reason.code == "owners.cooldown"
    auto = assign(h, ["ann", "bob"], POLICY, _day(20))
    assert [d.owner_id for d in auto.decisions] == ["bob"]
    later = transfer(h, ["p0"], "ann", POLICY, _day(45), kind="claim")
    assert [d.owner_id for d in later.decisions] == ["ann"]


def test_a_bulk_transfer_does_not_reset_the_reclaim_clock() -> None:
    h = _leads(3)
    for cid in h:
        h[cid].append(OwnerAssigned(customer_id=cid, at=T0, owner_id="ann"))
    moved = transfer(h, list(h), "bob", POLICY, _day(13), kind="bulk")
    assert [d.owner_id for d in moved.decisions] == ["bob"] * 3
    assert moved.decisions[0].reason.code == "owners.transferred"
    _apply(h, moved.events)
    assert ownership("p0", h["p0"], POLICY, _day(14)).clock_from == T0
    back = sweep(h, POLICY, _day(15))
    assert {(e.customer_id, e.owner_id) for e in back.events} == {
        ("p0", "bob"),
        ("p1", "bob"),
        ("p2", "bob"),
    }
    # An import of the same change goes through the same rules.
    again = transfer(h, ["p0"], "bob", POLICY, _day(14), kind="import")
    assert again.decisions[0].reason.code == "owners.already"


def test_policy_values_are_checked_by_name() -> None:
    with pytest.raises(PolicyError, match=r"owners\.warning_days"):
        OwnerPolicy(warning_days=15)
    with pytest.raises(PolicyError, match=r"owners\.high_value_days"):
        OwnerPolicy(high_value_days=10)
    with pytest.raises(PolicyError, match=r"owners\.assignment"):
        OwnerPolicy(assignment="random")
    with pytest.raises(PolicyError, match=r"owners\.capacity"):
        OwnerPolicy(capacity=0)


def test_the_customer_record_and_the_pool_rules_read_one_fold() -> None:
    day0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
    history = [
        LeadCaptured(customer_id="p", at=day0, source="fair"),
        OwnerAssigned(customer_id="p", at=day0 + timedelta(hours=1), owner_id="ann"),
        Contacted(customer_id="p", at=day0 + timedelta(days=3), channel="phone"),
        ReturnedToPool(customer_id="p", at=day0 + timedelta(days=20), owner_id="ann"),
        OwnerAssigned(customer_id="p", at=day0 + timedelta(days=21), owner_id="bob"),
    ]
    now = day0 + timedelta(days=22)
    record = lc.CustomerRecord("p", history, lc.Policy(), now)
    assert record.ownership == ownership("p", history, OwnerPolicy(), now)
    assert record.ownership.owner_id == "bob"
    assert record.ownership.releases == (("ann", day0 + timedelta(days=20)),)
    assert record.ownership.clock_from == day0 + timedelta(days=21)
