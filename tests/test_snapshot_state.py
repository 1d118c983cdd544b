"""Snapshots keep the folded record: reading from a state and the events since gives what a
replay of the whole history gives, and a state that no longer holds is never used."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lifecycle as lc
from lifecycle._ledger import Ledger, fold, ordered
from lifecycle._state import STATE_MIN_EVENTS, encode_state, policy_fingerprint, resume
from lifecycle.dispatch import read_records
from lifecycle.events import Event, sort_key
from lifecycle.serde import event_from_row, event_to_row
from lifecycle.stages import stage_history, stage_timeline
from lifecycle.testing import strategies as lst

SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = lc.Policy()
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _typed(v: Any) -> Any:
    """``v`` with the type of every value beside it: a ``StrEnum`` equals its text, and a
    state that lost the enum would pass a plain comparison."""
    if isinstance(v, dict):
        return ["dict", [(_typed(k), _typed(x)) for k, x in v.items()]]
    if isinstance(v, set | frozenset):
        return ["set", sorted((_typed(x) for x in v), key=repr)]
    if isinstance(v, list | tuple):
        return [type(v).__name__, [_typed(x) for x in v]]
    return [type(v).__name__, v]


def test_short_histories_keep_no_state(tmp_path: Any) -> None:
    shop = lc.Lifecycle.open(tmp_path / "shop.db", clock=lc.FixedClock(T0 + timedelta(days=1)))
    shop.record([_paid("o1", T0)])
    snapshot = shop.store.snapshot("c1")
    assert snapshot is not None
    assert snapshot.state is None
    shop.record([_paid(f"o{i}", T0 + timedelta(minutes=i)) for i in range(2, 2 + STATE_MIN_EVENTS)])
    snapshot = shop.store.snapshot("c1")
    assert snapshot is not None
    assert snapshot.state is not None


def _same_ledger(a: Ledger, b: Ledger) -> None:
    """Every field the rules read is equal, types and order included (the policy is the
    caller's)."""
    assert a.tz == b.tz
    for name, value in vars(a).items():
        if name == "policy":
            continue
        assert _typed(value) == _typed(vars(b)[name]), name


def _state_of(events: list[Event], now: datetime) -> bytes:
    """The state a snapshot keeps after ``events`` (all at or before ``now``)."""
    ledger = fold(events, POLICY, now)
    changes, until = stage_timeline(events, POLICY, now)
    last = ordered(events, now)[-1] if events else None
    state = encode_state(
        "c1",
        ledger,
        last,
        policy_fingerprint(POLICY),
        stage_history=changes,
        stages_until=until,
        referrals={},
    )
    assert state is not None
    return state


# -- rows -----------------------------------------------------------------------------------


@FAST
@given(lst.events())
def test_an_event_row_reads_back_as_the_event(event: Event) -> None:
    back = event_from_row(event_to_row(event))
    assert back == event
    assert type(back) is type(event)
    assert sort_key(back) == sort_key(event)
    for f in attrs.fields(type(event)):
        if f.init:
            assert getattr(back, f.name) == getattr(event, f.name), f.name
    assert back.at.utcoffset() == event.at.utcoffset()


def test_a_row_of_another_layout_is_refused() -> None:
    row = event_to_row(
        lc.OrderPaid(
            customer_id="c1",
            at=datetime(2026, 1, 1, tzinfo=UTC),
            order_id="o1",
            amount=Decimal("10"),
            currency="CNY",
        )
    )
    with pytest.raises(lc.InvalidEvent):
        event_from_row(row[:-1])
    with pytest.raises(lc.InvalidEvent):
        event_from_row(["no_such_event", *row[1:]])
    with pytest.raises(lc.InvalidEvent):
        event_from_row([row[0], 999, *row[2:]])


# -- resuming a state ---------------------------------------------------------------------------


@FAST
@given(lst.histories(), st.data())
def test_a_state_and_the_events_since_fold_as_the_whole_history(
    history: list[Event], data: st.DataObject
) -> None:
    # Events reach the store in any order; the state folds those stored first.
    stored = data.draw(st.permutations(history))
    k = data.draw(st.integers(0, len(stored)))
    first, since = stored[:k], stored[k:]
    as_of = max([sort_key(e)[0] for e in first], default=datetime(2000, 1, 1, tzinfo=UTC))
    span = (max(sort_key(e)[0] for e in history) - as_of).total_seconds()
    now = as_of + timedelta(seconds=data.draw(st.floats(-1e7, max(span, 0) + 1e7)))
    got = resume(
        _state_of(first, as_of),
        sorted(since, key=sort_key),
        POLICY,
        policy_fingerprint(POLICY),
        now,
    )
    if got is None:
        return  # folded again by the caller: nothing to compare
    _same_ledger(got.ledger, fold(history, POLICY, now))
    later = [sort_key(e)[0] for e in history if sort_key(e)[0] > now]
    assert got.later == (min(later) if later else None)
    kept = got.stage_history({})
    if kept is not None:
        assert kept == stage_history(history, POLICY, now)


@FAST
@given(lst.histories(), st.data())
def test_a_state_is_used_whenever_nothing_was_back_dated(
    history: list[Event], data: st.DataObject
) -> None:
    """Not only correct but used: events stored in replay order, read later, always resume."""
    k = data.draw(st.integers(0, len(history)))
    first, since = history[:k], history[k:]
    as_of = max([sort_key(e)[0] for e in first], default=datetime(2000, 1, 1, tzinfo=UTC))
    now = max(sort_key(e)[0] for e in history) + timedelta(days=1)
    zones = {e.profile.timezone for e in since if isinstance(e, lc.ProfileUpdated)}
    zones |= {e.profile.timezone for e in since if isinstance(e, lc.CustomerRegistered)}
    got = resume(_state_of(first, as_of), since, POLICY, policy_fingerprint(POLICY), now)
    if zones - {None}:
        return  # a zone named after the state may regroup the days: folded again
    assert got is not None
    _same_ledger(got.ledger, fold(history, POLICY, now))


def _paid(order: str, at: datetime, amount: str = "10.00") -> lc.OrderPaid:
    return lc.OrderPaid(
        customer_id="c1", at=at, order_id=order, amount=Decimal(amount), currency="CNY"
    )


T0 = datetime(2026, 3, 1, 10, tzinfo=SHANGHAI)


def test_an_event_back_dated_into_the_folded_past_folds_again() -> None:
    state = _state_of([_paid("o1", T0), _paid("o2", T0 + timedelta(days=5))], T0 + timedelta(6))
    fp = policy_fingerprint(POLICY)
    now = T0 + timedelta(days=9)
    assert resume(state, [_paid("o3", T0 + timedelta(days=8))], POLICY, fp, now) is not None
    assert resume(state, [_paid("o0", T0 + timedelta(days=1))], POLICY, fp, now) is None


def test_a_state_is_not_read_before_its_last_event_nor_under_another_policy() -> None:
    state = _state_of([_paid("o1", T0), _paid("o2", T0 + timedelta(days=5))], T0 + timedelta(6))
    fp = policy_fingerprint(POLICY)
    assert resume(state, [], POLICY, fp, T0 + timedelta(days=4)) is None
    other = attrs.evolve(POLICY, timezone="Europe/Berlin")
    assert resume(state, [], other, policy_fingerprint(other), T0 + timedelta(days=9)) is None
    assert resume(b"not json", [], POLICY, fp, T0 + timedelta(days=9)) is None
    assert resume(b'{"v": 99}', [], POLICY, fp, T0 + timedelta(days=9)) is None


def test_a_new_zone_after_the_state_folds_again() -> None:
    state = _state_of([_paid("o1", T0)], T0)
    moved = lc.ProfileUpdated(
        customer_id="c1", at=T0 + timedelta(days=1), profile=lc.Profile(timezone="America/Lima")
    )
    fp = policy_fingerprint(POLICY)
    assert resume(state, [moved], POLICY, fp, T0 + timedelta(days=2)) is None


def test_the_stage_changes_kept_hold_only_until_time_may_change_them() -> None:
    # Two purchase days make a repeat buyer; idle long enough, the rules may move them on.
    history = [_paid("o1", T0), _paid("o2", T0 + timedelta(days=30))]
    as_of = T0 + timedelta(days=31)
    _, until = stage_timeline(history, POLICY, as_of)
    state = _state_of(history, as_of)
    fp = policy_fingerprint(POLICY)
    got = resume(state, [], POLICY, fp, as_of + timedelta(days=1))
    assert got is not None
    assert got.stage_history({}) == stage_history(history, POLICY, as_of + timedelta(days=1))
    assert got.stage_history({"r1": T0}) is None  # a conversion the state did not read
    if until is not None:
        late = resume(state, [], POLICY, fp, until + timedelta(seconds=1))
        assert late is not None
        assert late.stage_history({}) is None  # replayed when asked for


# -- through the facade ---------------------------------------------------------------------


def _shop(tmp_path: Any, kind: str, now: datetime) -> lc.Lifecycle:
    clock = lc.FixedClock(now)
    if kind == "sqlite":
        shop = lc.Lifecycle.open(tmp_path / f"{uuid.uuid4().hex}.db", clock=clock)
    else:
        shop = lc.Lifecycle.in_memory(clock=clock)
    shop.state_from = 0  # a state for every customer, however short their history
    return shop


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    lst.histories("c1", id_prefix="a"),
    lst.histories("c2", id_prefix="b"),
    st.data(),
)
def test_the_facade_reads_from_states_what_a_replay_gives(
    tmp_path: Any, kind: str, h1: list[Event], h2: list[Event], data: st.DataObject
) -> None:
    """Records in batches, in any order, read at instants before, between and after them:
    assess, the record the planner reads and the plan equal a replay of the histories."""
    events = data.draw(
        st.permutations([*h1, *h2, lc.Referred(customer_id="c1", at=h1[0].at, referred_id="c2")])
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(events)), max_size=3)))
    last = max(sort_key(e)[0] for e in events)
    shop = _shop(tmp_path, kind, last + timedelta(hours=1))
    start = 0
    for cut in [*cuts, len(events)]:
        shop.record(events[start:cut])
        start = cut
    first = min(sort_key(e)[0] for e in events)
    span = (last - first).total_seconds()
    instants = [last + timedelta(hours=1), last + timedelta(days=400)]
    instants += [
        first + timedelta(seconds=x) for x in data.draw(st.lists(st.floats(0, span), max_size=2))
    ]
    histories = {cid: shop.store.history(cid) for cid in ("c1", "c2")}
    snapshot = shop.store.snapshot("c1")
    assert snapshot is not None
    future = any(sort_key(e)[0] > snapshot.as_of for e in histories["c1"])
    if kind == "sqlite":  # the memory store keeps no state: its histories are objects
        assert (snapshot.state is not None) is not future  # the state path is tested
    for at in instants:
        conversions = lc.referral_conversions(histories, shop.policy, at)
        records = read_records(shop.store, ["c1", "c2"], shop.policy, at)
        for cid, history in histories.items():
            expected = lc.assess(cid, history, shop.policy, at, referrals=conversions.get(cid))
            assert shop.assess(cid, at) == expected
            replayed = lc.CustomerRecord(
                cid, history, shop.policy, at, referrals=conversions.get(cid)
            )
            got = records[cid]
            _same_ledger(got.ledger, replayed.ledger)
            assert got.stage_history == replayed.stage_history
            assert got.next_event_at == replayed.next_event_at
        got_plan, expected_plan = shop.plan(at), lc.plan_customers(histories, shop.policy, at)
        assert got_plan.due == expected_plan.due
        assert got_plan.held == expected_plan.held
        assert got_plan.next_due == expected_plan.next_due
        assert got_plan == expected_plan


def test_the_sqlite_store_keeps_the_state_and_erasure_clears_it(tmp_path: Any) -> None:
    path = tmp_path / "shop.db"
    shop = lc.Lifecycle.open(path, clock=lc.FixedClock(T0 + timedelta(days=30)))
    shop.state_from = 0
    canary = "Canary Zhao-9f3e"
    shop.record(
        [
            lc.CustomerRegistered(
                customer_id="c1",
                at=T0,
                profile=lc.Profile(
                    name=canary,
                    contacts=(lc.ContactPoint(channel="email", address="canary9f3e@example.com"),),
                ),
            ),
            _paid("o1", T0 + timedelta(days=1)),
        ]
    )
    snapshot = shop.store.snapshot("c1")
    assert snapshot is not None
    assert snapshot.state is not None
    assert canary.encode() in snapshot.state
    expected = shop.assess("c1")
    shop.erase("c1")
    snapshot = shop.store.snapshot("c1")
    assert snapshot is None or snapshot.state is None or canary.encode() not in snapshot.state
    assert shop.assess("c1").stage is expected.stage
    shop.close()
    for name in ("shop.db", "shop.db-wal", "shop.db-shm"):
        f = tmp_path / name
        if f.exists():
            assert canary.encode() not in f.read_bytes(), name
