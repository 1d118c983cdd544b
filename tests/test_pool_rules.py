"""The pool (公海) rules on every path: direct events, the API, imports; quota, deal, protection."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lifecycle as lc
from lifecycle.adapters.sqlite import SQLiteStore
from lifecycle.errors import OwnerRuleBroken, PolicyError
from lifecycle.events import (
    Event,
    LeadCaptured,
    OrderPaid,
    OrderRefunded,
    OwnerAssigned,
    OwnerProtected,
    ReturnedToPool,
)
from lifecycle.owners import admit, protect, sweep, transfer
from lifecycle.policy import OwnerPolicy

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)  # a Monday


def _day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def _shop(customers: int = 4, **owners: object) -> lc.Lifecycle:
    policy = lc.Policy.from_dict({"owners": owners})
    shop = lc.Lifecycle.in_memory(policy=policy, clock=lc.FixedClock(T0))
    shop.record(
        LeadCaptured(customer_id=f"p{i}", at=_day(-1), source="fair") for i in range(customers)
    )
    return shop


def _owned(shop: lc.Lifecycle, at: datetime) -> Counter[str]:
    return Counter(
        o.owner_id
        for cid in shop.store.customer_ids()
        if (o := lc.ownership(cid, shop.history(cid), shop.policy.owners, at)).owner_id
    )


# -- every path, the same rules -----------------------------------------------------------------


def test_a_direct_assignment_past_capacity_is_refused_naming_the_rule_and_writes_nothing() -> None:
    shop = _shop(capacity=2)
    shop.record(OwnerAssigned(customer_id="p0", at=T0, owner_id="ann"))
    shop.record(OwnerAssigned(customer_id="p1", at=T0, owner_id="ann"))
    third = OwnerAssigned(customer_id="p2", at=T0, owner_id="ann")
    with pytest.raises(OwnerRuleBroken) as info:
        shop.record(third, LeadCaptured(customer_id="p9", at=T0, source="x"))
    assert info.value.rule == "owners.capacity"
    assert (info.value.customer_id, info.value.owner_id) == ("p2", "ann")
    assert info.value.event_id == third.event_id
    assert "owners.capacity" in str(info.value)
    assert isinstance(info.value, lc.InvalidEvent)
    assert _owned(shop, _day(1)) == Counter(ann=2)
    assert "p9" not in set(shop.store.customer_ids())  # nothing of the batch was written


def test_a_batch_of_assignments_is_judged_in_order_within_the_batch() -> None:
    shop = _shop(capacity=2)
    with pytest.raises(OwnerRuleBroken):
        shop.record(
            OwnerAssigned(customer_id=f"p{i}", at=T0 + timedelta(minutes=i), owner_id="ann")
            for i in range(3)
        )
    assert _owned(shop, _day(1)) == Counter()


def test_a_direct_assignment_within_the_cooldown_is_refused() -> None:
    shop = _shop(cooldown_days=30)
    shop.record(OwnerAssigned(customer_id="p0", at=T0, owner_id="ann"))
    shop.record(ReturnedToPool(customer_id="p0", at=_day(1), owner_id="ann"))
    with pytest.raises(OwnerRuleBroken) as info:
        shop.record(OwnerAssigned(customer_id="p0", at=_day(5), owner_id="ann"))
    assert info.value.rule == "owners.cooldown_days"
    shop.record(OwnerAssigned(customer_id="p0", at=_day(31), owner_id="ann"))
    shop.record(OwnerAssigned(customer_id="p1", at=_day(5), owner_id="ann"))  # another customer


def test_an_imported_transfer_and_a_claim_keep_the_same_rules() -> None:
    shop = _shop(capacity=1)
    shop.record(OwnerAssigned(customer_id="p0", at=T0, owner_id="ann"))
    for kind in ("import", "bulk", "claim", "transfer"):
        out = shop.transfer_owner(["p1"], "ann", kind=kind)  # type: ignore[arg-type]
        assert out.events == ()
        assert out.decisions[0].reason.code == "owners.full"


def test_a_claim_takes_only_customers_in_the_pool() -> None:
    shop = _shop()
    shop.record(OwnerAssigned(customer_id="p0", at=T0, owner_id="ann"))
    out = shop.transfer_owner(["p0"], "bob", kind="claim")
    assert out.events == ()
    assert out.decisions[0].reason.code == "owners.owned"
    moved = shop.transfer_owner(["p0"], "bob", kind="transfer")
    assert [d.owner_id for d in moved.decisions] == ["bob"]


def test_a_return_to_the_pool_is_always_recorded_and_frees_capacity() -> None:
    shop = _shop(capacity=1)
    shop.record(OwnerAssigned(customer_id="p0", at=T0, owner_id="ann"))
    shop.record(
        ReturnedToPool(customer_id="p0", at=_day(1), owner_id="ann"),
        OwnerAssigned(customer_id="p1", at=_day(1), owner_id="ann"),
    )
    assert _owned(shop, _day(2)) == Counter(ann=1)


# -- the daily claim quota ---------------------------------------------------------------------


def test_the_daily_claim_quota_counts_takes_from_the_pool_on_the_owners_working_day() -> None:
    shop = _shop(6, daily_claim_quota=2, workday_zone="Asia/Shanghai")
    late = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
    assert len(shop.transfer_owner(["p0", "p1", "p2"], "ann", late, kind="claim").events) == 2
    refused = shop.transfer_owner(["p2"], "ann", late, kind="claim").decisions[0]
    assert refused.reason.code == "owners.quota"
    assert "2026-03-02" in refused.reason.en
    with pytest.raises(OwnerRuleBroken) as info:
        shop.record(OwnerAssigned(customer_id="p2", at=late, owner_id="ann"))
    assert info.value.rule == "owners.daily_claim_quota"
    # 16:30 UTC is already the next day in Shanghai: a fresh quota.
    nextday = datetime(2026, 3, 2, 16, 30, tzinfo=UTC)
    assert len(shop.transfer_owner(["p2", "p3"], "ann", nextday, kind="claim").events) == 2


def test_the_quota_also_bounds_assignment_but_not_a_transfer_between_owners() -> None:
    shop = _shop(6, daily_claim_quota=1)
    out = shop.assign_owners(["ann", "bob"], T0)
    assert Counter(d.owner_id for d in out.decisions if d.changed) == Counter(ann=1, bob=1)
    assert {d.reason.code for d in out.refused} == {"owners.nobody"}
    moved = shop.transfer_owner([out.events[1].customer_id], "ann", T0)
    assert len(moved.events) == 1  # from bob to ann: not a take from the pool


# -- reclaim for no deal -----------------------------------------------------------------------


def _owned_history(*extra: Event) -> dict[str, list[Event]]:
    return {
        "p0": [
            LeadCaptured(customer_id="p0", at=_day(-1), source="x"),
            OwnerAssigned(customer_id="p0", at=T0, owner_id="ann"),
            *extra,
        ]
    }


def test_no_valid_order_within_deal_days_returns_the_customer_after_a_warning() -> None:
    policy = OwnerPolicy(follow_up_days=100, high_value_days=100, deal_days=20, warning_days=3)
    h = _owned_history()
    assert sweep(h, policy, _day(16)).warnings == ()
    (w,) = sweep(h, policy, _day(17)).warnings
    assert (w.reason.code, w.deadline) == ("owners.deal_warning", _day(20))
    out = sweep(h, policy, _day(20))
    assert [d.reason.code for d in out.decisions] == ["owners.no_deal"]
    assert out.events[0].owner_id == "ann"


def test_a_valid_order_restarts_the_deal_clock_and_a_refunded_one_does_not() -> None:
    policy = OwnerPolicy(
        follow_up_days=100,
        high_value_days=100,
        deal_days=20,
        orders_restart_clock=False,
    )
    paid = OrderPaid(
        customer_id="p0", at=_day(10), order_id="o1", amount=Decimal(50), currency="CNY"
    )
    assert sweep(_owned_history(paid), policy, _day(25)).events == ()
    assert len(sweep(_owned_history(paid), policy, _day(30)).events) == 1
    refunded = OrderRefunded(
        customer_id="p0", at=_day(11), order_id="o1", amount=Decimal(50), currency="CNY"
    )
    assert len(sweep(_owned_history(paid, refunded), policy, _day(20)).events) == 1


# -- protection ---------------------------------------------------------------------------------


def test_a_protection_holds_off_both_reclaim_rules_until_it_runs_out() -> None:
    policy = OwnerPolicy(deal_days=10, protection_days=20)
    h = _owned_history(OwnerProtected(customer_id="p0", at=_day(5), owner_id="ann"))
    assert sweep(h, policy, _day(16)).events == ()
    (w, *_) = sweep(h, policy, _day(23)).warnings
    assert w.deadline == _day(25)
    out = sweep(h, policy, _day(25))
    assert len(out.events) == 1
    # Both deadlines passed under the protection: the first rule to expire is named.
    assert out.decisions[0].reason.code == "owners.returned"


def test_only_the_owner_protects_and_at_most_max_protected_at_a_time() -> None:
    shop = _shop(4, max_protected=2, protection_days=7)
    shop.assign_owners(["ann"], T0)
    out = shop.protect_customers(["p0", "p1", "p2"], "ann")
    assert [d.changed for d in out.decisions] == [True, True, False]
    assert out.refused[0].reason.code == "owners.protections"
    assert shop.protect_customers(["p0"], "bob").refused[0].reason.code == "owners.not_owner"
    with pytest.raises(OwnerRuleBroken) as info:
        shop.record(OwnerProtected(customer_id="p3", at=T0, owner_id="ann"))
    assert info.value.rule == "owners.max_protected"
    with pytest.raises(OwnerRuleBroken) as info:
        shop.record(OwnerProtected(customer_id="p3", at=T0, owner_id="bob"))
    assert info.value.rule == "owners.owner_only"
    # A week later the protections ran out: two more may be protected.
    later = shop.protect_customers(["p2", "p3"], "ann", _day(8))
    assert [d.changed for d in later.decisions] == [True, True]


def test_a_protection_ends_with_a_change_of_owner() -> None:
    h = _owned_history(
        OwnerProtected(customer_id="p0", at=_day(1), owner_id="ann"),
        OwnerAssigned(customer_id="p0", at=_day(2), owner_id="bob"),
    )
    own = lc.ownership("p0", h["p0"], OwnerPolicy(), _day(3))
    assert own.protected_at is None
    assert protect(h, ["p0"], "ann", OwnerPolicy(), _day(3)).refused[0].reason.code == (
        "owners.not_owner"
    )


# -- policy -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings_", "key"),
    [
        ({"daily_claim_quota": -1}, "owners.daily_claim_quota"),
        ({"deal_days": -3}, "owners.deal_days"),
        ({"deal_days": 2, "warning_days": 3}, "owners.deal_days"),
        ({"max_protected": -1}, "owners.max_protected"),
        ({"protection_days": "x"}, "owners.protection_days"),
        ({"escalate_after_days": -1}, "owners.escalate_after_days"),
        ({"leads": {"ann": ""}}, "owners.leads"),
    ],
)
def test_bad_pool_settings_name_their_key(settings_: dict[str, object], key: str) -> None:
    with pytest.raises(PolicyError) as info:
        lc.Policy.from_dict({"owners": settings_})
    assert info.value.key == key


def test_owner_policies_with_leads_still_hash_and_compare() -> None:
    a = OwnerPolicy(leads={"ann": "lee"})
    assert a == OwnerPolicy(leads={"ann": "lee"})
    assert a != OwnerPolicy(leads={"ann": "max"})
    assert hash(a) == hash(OwnerPolicy(leads={"ann": "max"}))


# -- properties: no path bypasses the rules -----------------------------------------------------

OWNERS = ("ann", "bob", "cai")
_ops = st.lists(
    st.tuples(
        st.sampled_from(["assign", "claim", "transfer", "event", "return", "protect", "sweep"]),
        st.integers(0, 7),  # customer
        st.sampled_from(OWNERS),
        st.integers(0, 60),  # hours on
    ),
    max_size=25,
)


def _check_books(shop: lc.Lifecycle) -> None:
    """Replay every stored owner event by hand (not through the library's fold) and check
    capacity, cooldown and the daily quota at each step."""
    policy = shop.policy.owners
    events = sorted(
        (e for cid in shop.store.customer_ids() for e in shop.history(cid)),
        key=lambda e: (e.at, e.rank, e.event_id),
    )
    owner: dict[str, str] = {}
    released: dict[tuple[str, str], datetime] = {}
    takes: Counter[tuple[str, object]] = Counter()
    for e in events:
        if isinstance(e, OwnerAssigned):
            before = owner.get(e.customer_id)
            if before == e.owner_id:
                continue
            lost = released.get((e.customer_id, e.owner_id))
            assert lost is None or e.at >= lost + timedelta(days=policy.cooldown_days)
            owner[e.customer_id] = e.owner_id
            assert Counter(owner.values())[e.owner_id] <= policy.capacity
            if before is None:
                takes[(e.owner_id, e.at.date())] += 1
                assert policy.daily_claim_quota is not None
                assert takes[(e.owner_id, e.at.date())] <= policy.daily_claim_quota
        elif isinstance(e, ReturnedToPool) and e.customer_id in owner:
            released[(e.customer_id, owner.pop(e.customer_id))] = e.at


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_ops)
def test_no_sequence_of_owner_operations_breaks_capacity_cooldown_or_quota(
    ops: list[tuple[str, int, str, int]],
) -> None:
    shop = _shop(
        8,
        capacity=2,
        cooldown_days=1,
        daily_claim_quota=3,
        follow_up_days=2,
        high_value_days=2,
        warning_days=1,
        max_protected=1,
    )
    at = T0
    for op, n, who, hours in ops:
        at = at + timedelta(hours=hours)
        cid = f"p{n}"
        if op == "assign":
            shop.assign_owners(OWNERS, at, customer_ids=[cid])
        elif op in ("claim", "transfer"):
            shop.transfer_owner([cid], who, at, kind=op)  # type: ignore[arg-type]
        elif op == "protect":
            shop.protect_customers([cid], who, at)
        elif op == "sweep":
            shop.sweep_pool(at)
        else:
            kind = OwnerAssigned if op == "event" else ReturnedToPool
            with suppress(OwnerRuleBroken):  # a refusal is one outcome under test
                shop.record(kind(customer_id=cid, at=at, owner_id=who))
    _check_books(shop)


@settings(max_examples=40, deadline=None)
@given(ops=_ops)
def test_admit_accepts_exactly_what_transfer_would_do(ops: list[tuple[str, int, str, int]]) -> None:
    """A direct assignment is refused when, and only when, the API refuses the same move."""
    policy = OwnerPolicy(capacity=2, cooldown_days=1, daily_claim_quota=2)
    h: dict[str, list[Event]] = {
        f"p{i}": [LeadCaptured(customer_id=f"p{i}", at=_day(-1), source="x")] for i in range(8)
    }
    at = T0
    for _, n, who, hours in ops:
        at = at + timedelta(hours=hours)
        cid = f"p{n}"
        api = transfer(h, [cid], who, policy, at)
        event = OwnerAssigned(customer_id=cid, at=at, owner_id=who)
        try:
            admit(h, [event], policy, at)
            admitted = True
        except OwnerRuleBroken:
            admitted = False
        (decision,) = api.decisions
        assert admitted == (decision.changed or decision.reason.code == "owners.already")
        for e in api.events:
            h[e.customer_id].append(e)


# -- the view the rules read --------------------------------------------------------------------


def test_a_second_writer_on_the_same_file_is_seen_by_the_next_owner_change(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    policy = lc.Policy.from_dict({"owners": {"capacity": 2}})
    with (
        lc.Lifecycle.open(path, policy=policy, clock=lc.FixedClock(T0)) as a,
        lc.Lifecycle.open(path, policy=policy, clock=lc.FixedClock(T0)) as b,
    ):
        a.record(LeadCaptured(customer_id=f"p{i}", at=_day(-1), source="x") for i in range(4))
        assert len(a.transfer_owner(["p0"], "ann", kind="claim").events) == 1
        b.record(OwnerAssigned(customer_id="p1", at=T0, owner_id="ann"))  # a's view is stale
        out = a.transfer_owner(["p2"], "ann", kind="claim")
        assert out.refused[0].reason.code == "owners.full"
        with pytest.raises(OwnerRuleBroken):
            a.record(OwnerAssigned(customer_id="p3", at=T0, owner_id="ann"))


def test_the_view_keeps_no_reason_text_of_a_return(tmp_path: Path) -> None:
    shop = _shop(2)
    shop.record(
        OwnerAssigned(customer_id="p0", at=T0, owner_id="ann"),
        ReturnedToPool(customer_id="p0", at=_day(1), owner_id="ann", reason="Zhang Wei moved"),
    )
    shop.transfer_owner(["p1"], "ann", _day(2), kind="claim")
    kept = [e for _, events in shop._pool_cache.values() for e in events]
    assert any(isinstance(e, ReturnedToPool) for e in kept)
    assert all(getattr(e, "reason", None) is None for e in kept)


class _CountingStore(SQLiteStore):
    """Counts the reads of versions: one per customer would be one round trip each on a server."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, synchronous="NORMAL")
        self.one_by_one = 0
        self.batches = 0

    def version(self, customer_id: str) -> int:
        self.one_by_one += 1
        return super().version(customer_id)

    def versions(self, customer_ids: Iterable[str] | None = None) -> dict[str, int]:
        self.batches += 1
        return super().versions(customer_ids)


def test_an_owner_change_reads_every_version_in_one_call_not_one_per_customer(
    tmp_path: Path,
) -> None:
    store = _CountingStore(tmp_path / "shop.db")
    policy = lc.Policy.from_dict({"owners": {"capacity": 50}})
    shop = lc.Lifecycle(store=store, policy=policy, clock=lc.FixedClock(T0))
    shop.record(LeadCaptured(customer_id=f"p{i}", at=_day(-1), source="x") for i in range(40))
    store.one_by_one = store.batches = 0
    assert len(shop.transfer_owner(["p0"], "ann", kind="claim").events) == 1
    shop.record(OwnerAssigned(customer_id="p1", at=T0, owner_id="ann"))
    shop.sweep_pool()
    assert store.one_by_one == 0
    assert 1 <= store.batches <= 6  # a few per change, whatever the number of customers
    store.close()
