"""The Store conformance kit: subclass :class:`StoreContract` and supply ``make_store``.

::

    from lifecycle.testing import StoreContract

    class TestMyStore(StoreContract):
        def make_store(self):
            return MyStore(dsn=...)   # a fresh, empty store each time

pytest then runs every contract test against the host's store, including a hypothesis state
machine that drives it and the in-memory reference with the same random operations.

The kit is split by capability, the way the port is (:mod:`lifecycle.ports`): a store that
keeps only some of them subclasses only their contracts, e.g. a host's own event table
``class TestMyEvents(EventLogContract)``, beside the library's outbox on the same connection.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from lifecycle.adapters.memory import MemoryStore
from lifecycle.clock import FixedClock
from lifecycle.customer import ContactPoint, Profile
from lifecycle.errors import ConcurrencyError, ConflictingEvent, LifecycleError, StoreError
from lifecycle.events import (
    ComplaintOpened,
    CustomerRegistered,
    Engaged,
    Event,
    OrderPaid,
    OrderRefunded,
    ProfileUpdated,
    Referred,
    ReviewPosted,
    sort_key,
)
from lifecycle.io import ExportedOrder, OrderImport, ShopDefaults
from lifecycle.policy import Policy
from lifecycle.ports import (
    OutboxEntry,
    OutboxState,
    PlanIndex,
    PlanMark,
    ShopSettings,
    Snapshot,
    Store,
)
from lifecycle.service import Lifecycle
from lifecycle.testing.strategies import free_texts
from lifecycle.vocabulary import Stage, Status

__all__ = [
    "ErasureContract",
    "EventLogContract",
    "OutboxContract",
    "PlanIndexContract",
    "ShopSettingsContract",
    "SnapshotContract",
    "StoreContract",
]

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def _day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def _paid(cid: str, order: str, day: float, amount: str = "10.00") -> OrderPaid:
    return OrderPaid(
        customer_id=cid, at=_day(day), order_id=order, amount=Decimal(amount), currency="CNY"
    )


def _entry(key: str, cid: str = "c1", due: float = 0, **kw: Any) -> OutboxEntry:
    return OutboxEntry(key=key, customer_id=cid, channel="sms", due_at=_day(due), rule="care", **kw)


def _snap(cid: str, version: int, stage: Stage = Stage.FIRST_PURCHASE, **kw: Any) -> Snapshot:
    defaults: dict[str, Any] = {"status": Status.ACTIVE, "as_of": _day(1), "valid_until": _day(100)}
    defaults.update(kw)
    return Snapshot(customer_id=cid, stage=stage, version=version, **defaults)


class _Kit:
    """What every capability's contract needs: a fresh store for each test.

    Override :meth:`make_store`; override :meth:`supports_threads` to return ``False`` for a
    store that one thread at a time uses.
    """

    #: How many random walks :meth:`StoreContract.test_random_operations_agree_with_the_reference`
    #: takes (30 steps each); a store behind a network round trip may take fewer.
    random_walks: int = 25

    def make_store(self) -> Store:
        """A fresh, empty store."""
        raise NotImplementedError("override make_store() to return a fresh, empty store")

    def supports_threads(self) -> bool:
        """Whether one store object may be used from several threads at once."""
        return True

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        s = self.make_store()
        try:
            yield s
        finally:
            s.close()


class EventLogContract(_Kit):
    """The event log (:class:`~lifecycle.ports.EventLog`): appends all or nothing, idempotent
    ids, conflicts refused, replay order, optimistic concurrency, the referral index.
    """

    # -- events -----------------------------------------------------------------------------

    def test_history_is_in_replay_order_whatever_the_append_order(self, store: Store) -> None:
        events = [_paid("c1", f"o{i}", day) for i, day in enumerate((5, 1, 3))]
        refund = OrderRefunded(
            customer_id="c1", at=_day(1), order_id="o1", amount="1", currency="CNY"
        )
        store.append([events[0]])
        store.append([refund, events[1], events[2]])
        assert store.history("c1") == tuple(sorted([*events, refund], key=sort_key))
        assert store.version("c1") == 4

    def test_unknown_customers_have_no_history(self, store: Store) -> None:
        assert store.history("nobody") == ()
        assert store.version("nobody") == 0

    def test_appending_the_same_events_again_stores_nothing(self, store: Store) -> None:
        events = [_paid("c1", "o1", 0), _paid("c1", "o2", 1)]
        assert store.append(events) == 2
        assert store.append(events) == 0
        assert store.append([events[1], _paid("c1", "o3", 2)]) == 1
        assert store.version("c1") == 3

    def test_a_conflict_inside_one_batch_is_refused(self, store: Store) -> None:
        a = Engaged(customer_id="c1", at=_day(0), kind="chat", event_id="same")
        b = Engaged(customer_id="c1", at=_day(1), kind="chat", event_id="same")
        with pytest.raises(ConflictingEvent):
            store.append([a, b])
        assert store.version("c1") == 0

    def test_events_are_found_by_id(self, store: Store) -> None:
        e = _paid("c1", "o1", 0)
        store.append([e])
        assert store.events_by_id(["order_paid:o1", "missing"]) == {"order_paid:o1": e}

    def test_stale_expected_versions_are_refused_and_nothing_is_stored(self, store: Store) -> None:
        store.append([_paid("c1", "o1", 0)])
        with pytest.raises(ConcurrencyError) as info:
            store.append([_paid("c1", "o2", 1)], expected_versions={"c1": 0})
        assert info.value.customer_id == "c1"
        assert store.version("c1") == 1
        assert store.append([_paid("c1", "o2", 1)], expected_versions={"c1": 1, "c2": 0}) == 1

    def test_customers_are_listed_in_order(self, store: Store) -> None:
        store.append([_paid(c, f"o-{c}", 0) for c in ("b", "c", "a")])
        assert list(store.customer_ids()) == ["a", "b", "c"]

    def test_versions_reads_several_customers_at_once(self, store: Store) -> None:
        assert store.versions() == {}
        assert store.versions(["nobody"]) == {}
        store.append([_paid("b", "o1", 0), _paid("a", "o2", 1), _paid("b", "o3", 2)])
        assert store.versions() == {"a": 1, "b": 2}
        assert list(store.versions()) == list(store.customer_ids())
        store.append([_paid("a", "o4", 3), _paid("c", "o5", 0)])
        everyone = store.versions()
        assert everyone == {c: store.version(c) for c in store.customer_ids()}
        assert everyone == {"a": 2, "b": 2, "c": 1}
        assert store.versions(["c", "a", "nobody", "a"]) == {"a": 2, "c": 1}
        assert store.versions([]) == {}
        assert store.versions(iter(["b"])) == {"b": 2}

    def test_versions_of_many_customers_are_read_in_chunks(self, store: Store) -> None:
        ids = [f"c{i:04}" for i in range(1201)]
        store.append([_paid(c, f"o-{c}", 0) for c in ids])
        assert store.versions([*ids, "nobody"]) == dict.fromkeys(ids, 1)
        assert store.versions() == dict.fromkeys(ids, 1)

    def test_histories_reads_several_customers_at_once(self, store: Store) -> None:
        store.append([_paid("c2", "o2", 1), _paid("c1", "o1", 2), _paid("c1", "o0", 0)])
        assert store.histories(["c1", "c2", "nobody", "c1"]) == {
            "c1": store.history("c1"),
            "c2": store.history("c2"),
        }
        assert store.histories(["c1"])["c1"] == (_paid("c1", "o0", 0), _paid("c1", "o1", 2))
        assert store.histories([]) == {}

    def test_referrers_are_indexed(self, store: Store) -> None:
        store.append(
            [
                Referred(customer_id="a", at=_day(0), referred_id="x"),
                Referred(customer_id="b", at=_day(0), referred_id="x"),
                Referred(customer_id="a", at=_day(0), referred_id="y"),
            ]
        )
        assert store.referrers(["x", "y", "z"]) == {
            "x": frozenset({"a", "b"}),
            "y": frozenset({"a"}),
        }
        assert store.referrers([]) == {}

    def test_text_full_of_quotes_sql_and_emoji_reads_back_exactly(self, store: Store) -> None:
        nasty = 'Robert\'); DROP TABLE events;-- "quoted" \\ 客户 🎉🧧 %s ? :name'
        # Free text may hold line breaks and separators that ids may not.
        text = nasty + "\n\t\r\u2028 line two"
        address = "o'brien+drop=table%s?{name}|x@example.com"
        events: list[Event] = [
            CustomerRegistered(
                customer_id=nasty,
                at=_day(0),
                profile=Profile(
                    name=nasty, contacts=(ContactPoint(channel="email", address=address),)
                ),
            ),
            ReviewPosted(customer_id=nasty, at=_day(1), rating=5, text=text, event_id=nasty),
            ComplaintOpened(customer_id=nasty, at=_day(2), complaint_id=nasty, text=text),
        ]
        store.append(events)
        assert store.history(nasty) == tuple(events)
        assert list(store.customer_ids()) == [nasty]
        assert store.events_by_id([nasty]) == {nasty: events[1]}


class SnapshotContract(_Kit):
    """Snapshots (:class:`~lifecycle.ports.SnapshotStore`): stored with their version only,
    their state bytes kept as given, filtered by stage, status and time.
    """

    # -- snapshots --------------------------------------------------------------------------

    def test_unknown_customers_have_no_snapshot(self, store: Store) -> None:
        assert store.snapshot("nobody") is None
        assert list(store.snapshots()) == []

    def test_snapshots_are_stored_with_their_events(self, store: Store) -> None:
        store.append([_paid("c1", "o1", 0)], [_snap("c1", 1)])
        assert store.snapshot("c1") == _snap("c1", 1)

    def test_a_snapshot_of_another_version_is_not_stored(self, store: Store) -> None:
        store.append([_paid("c1", "o1", 0)], [_snap("c1", 1)])
        store.put_snapshots([_snap("c1", 5, Stage.PARTNER)])
        assert store.snapshot("c1") == _snap("c1", 1)
        store.put_snapshots([_snap("c1", 1, Stage.REPEAT)])
        snap = store.snapshot("c1")
        assert snap is not None
        assert snap.stage is Stage.REPEAT

    def test_a_snapshot_keeps_its_state_bytes_as_given(self, store: Store) -> None:
        state = bytes(range(256)) * 3  # every byte value, NUL included
        store.append([_paid("c1", "o1", 0)], [_snap("c1", 1, state=state)])
        snap = store.snapshot("c1")
        assert snap is not None
        assert snap.state in (state, None)  # kept exactly, or not at all
        store.put_snapshots([_snap("c1", 1, state=None)])
        snap = store.snapshot("c1")
        assert snap is not None
        assert snap.state is None
        for listed in store.snapshots():
            assert listed.state in (None, state)

    def test_history_since_gives_the_events_stored_after_a_version(self, store: Store) -> None:
        first = [_paid("c1", "o2", 5), _paid("c2", "x", 0), _paid("c1", "o1", 1)]
        store.append(first)
        later = [_paid("c1", "o0", 0), _paid("c1", "o3", 9)]  # one sorts before the others
        store.append(later[:1])
        store.append(later[1:])
        assert store.history_since("c1", 0) == store.history("c1")
        assert store.history_since("c1", 2) == tuple(later)  # in replay order
        assert store.history_since("c1", 3) == (later[1],)
        assert store.history_since("c1", 4) == ()
        assert store.history_since("nobody", 0) == ()
        assert store.history("c1")[0] == later[0]  # history itself stays in replay order

    def test_snapshots_are_filtered_by_stage_status_and_time(self, store: Store) -> None:
        store.append(
            [
                _paid("a", "oa", 0),
                _paid("b", "ob", 0),
                Engaged(customer_id="c", at=_day(0), kind="chat"),
            ],
            [
                _snap("a", 1, Stage.REPEAT),
                _snap("b", 1, Stage.FIRST_PURCHASE, status=Status.AT_RISK, valid_until=None),
                _snap("c", 1, Stage.PROSPECT, status=None, valid_until=_day(10)),
            ],
        )

        def ids(**kw: Any) -> list[str]:
            return [s.customer_id for s in store.snapshots(**kw)]

        assert ids() == ["a", "b", "c"]
        assert ids(stages=[Stage.REPEAT, Stage.PROSPECT]) == ["a", "c"]
        assert ids(statuses=[Status.ACTIVE]) == ["a"]
        assert ids(statuses=[None]) == ["c"]
        assert ids(statuses=[None, Status.AT_RISK]) == ["b", "c"]
        assert ids(holding_at=_day(50)) == ["a", "b"]
        assert ids(expired_at=_day(50)) == ["c"]
        assert ids(expired_at=_day(0)) == ["a", "b", "c"]  # before as_of
        assert ids(holding_at=_day(100)) == ["b"]  # valid_until is exclusive
        assert ids(stages=[Stage.REPEAT], holding_at=_day(5)) == ["a"]


class OutboxContract(_Kit):
    """The outbox (:class:`~lifecycle.ports.OutboxStore`): idempotent keys, claims under a
    lease, one dispatcher per customer, settles by the claim holder only, retries.
    """

    # -- outbox -----------------------------------------------------------------------------

    def test_outbox_entries_are_idempotent_by_key(self, store: Store) -> None:
        store.append([], outbox=[_entry("k1", due=1)])
        store.append([], outbox=[_entry("k1", due=9, template="other")])
        entry = store.outbox_entry("k1")
        assert entry is not None
        assert entry.due_at == _day(1)
        assert entry.state is OutboxState.PENDING
        assert entry.attempts == 0

    def test_outbox_payloads_round_trip(self, store: Store) -> None:
        payload = {"name": "王小明", "n": 3, "items": ["a", "b"], "ok": True, "none": None}
        store.append([], outbox=[_entry("k1", payload=payload)])
        entry = store.outbox_entry("k1")
        assert entry is not None
        assert dict(entry.payload) == payload

    def test_only_due_entries_are_claimed_oldest_first(self, store: Store) -> None:
        store.append(
            [],
            outbox=[
                _entry("late", "c1", due=5),
                _entry("b", "c2", due=1),
                _entry("a", "c3", due=2),
            ],
        )
        claimed = store.claim(_day(3), worker="w1", lease=LEASE)
        assert [e.key for e in claimed] == ["b", "a"]
        assert all(e.state is OutboxState.CLAIMED and e.claimed_by == "w1" for e in claimed)
        assert all(e.attempts == 1 and e.lease_until == _day(3) + LEASE for e in claimed)
        assert store.claim(_day(3), worker="w2", lease=LEASE) == []

    def test_claims_respect_the_limit(self, store: Store) -> None:
        store.append([], outbox=[_entry(f"k{i}", f"c{i}", due=0) for i in range(5)])
        assert len(store.claim(_day(1), worker="w1", lease=LEASE, limit=2)) == 2
        assert len(store.claim(_day(1), worker="w2", lease=LEASE, limit=10)) == 3

    def test_one_dispatcher_at_a_time_holds_a_customer(self, store: Store) -> None:
        store.append(
            [],
            outbox=[_entry("a1", "a", due=0), _entry("a2", "a", due=1), _entry("b1", "b", due=2)],
        )
        first = store.claim(_day(3), worker="w1", lease=LEASE, limit=10)
        assert [e.key for e in first] == ["a1", "b1"]  # one entry per customer per claim
        assert store.claim(_day(3), worker="w2", lease=LEASE, limit=10) == []  # "a" is held
        assert store.settle("a1", worker="w1", state=OutboxState.SENT, at=_day(3))
        (second,) = store.claim(_day(3), worker="w2", lease=LEASE, limit=10)
        assert second.key == "a2"

    def test_a_lapsed_claim_does_not_hold_its_customer(self, store: Store) -> None:
        store.append([], outbox=[_entry("a1", "a", due=0), _entry("a2", "a", due=1)])
        store.claim(_day(2), worker="w1", lease=LEASE, limit=1)
        later = _day(2) + LEASE
        (again,) = store.claim(later, worker="w2", lease=LEASE, limit=1)
        assert again.key == "a1"  # the lapsed claim first: it is the oldest due

    def test_settling_records_the_attempt_state(self, store: Store) -> None:
        store.append([], outbox=[_entry("k1")])
        store.claim(_day(1), worker="w1", lease=LEASE)
        assert store.settle(
            "k1",
            worker="w1",
            state=OutboxState.PENDING,
            at=_day(1),
            next_attempt_at=_day(2),
            error="timeout",
            failures=1,
            in_doubt=True,
        )
        entry = store.outbox_entry("k1")
        assert entry is not None
        assert (entry.attempts, entry.settled, entry.failures, entry.in_doubt) == (1, 1, 1, True)
        assert not entry.abandoned
        assert len(store.claim(_day(2), worker="w1", lease=LEASE)) == 1
        (lapsed,) = store.claim(_day(2) + LEASE, worker="w2", lease=LEASE)
        assert (lapsed.attempts, lapsed.settled, lapsed.abandoned) == (3, 1, True)

    def test_typed_outbox_fields_round_trip(self, store: Store) -> None:
        entry = _entry(
            "k1",
            valid_until=_day(3),
            priority=40,
            reason="cadence.win_back",
            contact_channel="phone",
            text_en="We miss you, Ann",
            text_zh="安，好久不见",
            subject_en="We miss you",
            subject_zh="想念您",
        )
        store.append([], outbox=[entry])
        assert store.outbox_entry("k1") == entry

    def test_an_expired_lease_can_be_claimed_again(self, store: Store) -> None:
        store.append([], outbox=[_entry("k1")])
        store.claim(_day(1), worker="w1", lease=LEASE)
        assert store.claim(_day(1) + LEASE / 2, worker="w2", lease=LEASE) == []
        (again,) = store.claim(_day(1) + LEASE, worker="w2", lease=LEASE)
        assert (again.claimed_by, again.attempts) == ("w2", 2)
        assert not store.settle("k1", worker="w1", state=OutboxState.SENT, at=_day(2))

    def test_settling_sent_stores_the_events_with_it(self, store: Store) -> None:
        store.append([], outbox=[_entry("k1")])
        store.claim(_day(1), worker="w1", lease=LEASE)
        touch = Engaged(customer_id="c1", at=_day(1), kind="chat")
        assert store.settle("k1", worker="w1", state=OutboxState.SENT, at=_day(1), events=[touch])
        entry = store.outbox_entry("k1")
        assert entry is not None
        assert (entry.state, entry.claimed_by, entry.lease_until) == (OutboxState.SENT, None, None)
        assert store.history("c1") == (touch,)
        assert store.claim(_day(99), worker="w1", lease=LEASE) == []
        assert not store.settle("k1", worker="w1", state=OutboxState.SENT, at=_day(2))

    def test_a_retry_waits_for_its_time(self, store: Store) -> None:
        store.append([], outbox=[_entry("k1")])
        store.claim(_day(1), worker="w1", lease=LEASE)
        assert store.settle(
            "k1",
            worker="w1",
            state=OutboxState.PENDING,
            at=_day(1),
            next_attempt_at=_day(2),
            error="timeout",
        )
        entry = store.outbox_entry("k1")
        assert entry is not None
        assert (entry.state, entry.attempts, entry.last_error) == (
            OutboxState.PENDING,
            1,
            "timeout",
        )
        assert entry.next_attempt_at == _day(2)
        assert store.claim(_day(1.5), worker="w1", lease=LEASE) == []
        assert [e.attempts for e in store.claim(_day(2), worker="w1", lease=LEASE)] == [2]

    def test_a_failed_entry_is_never_claimed_again(self, store: Store) -> None:
        store.append([], outbox=[_entry("k1")])
        store.claim(_day(1), worker="w1", lease=LEASE)
        store.settle("k1", worker="w1", state=OutboxState.FAILED, at=_day(1), error="bad address")
        assert store.claim(_day(50), worker="w1", lease=LEASE) == []
        assert [e.key for e in store.outbox_entries(states=[OutboxState.FAILED])] == ["k1"]

    def test_a_settle_that_conflicts_changes_nothing(self, store: Store) -> None:
        store.append([_paid("c1", "o1", 0)], outbox=[_entry("k1")])
        store.claim(_day(1), worker="w1", lease=LEASE)
        clash = attrs.evolve(_paid("c1", "o1", 0), amount=Decimal("99.00"))
        with pytest.raises(ConflictingEvent):
            store.settle("k1", worker="w1", state=OutboxState.SENT, at=_day(1), events=[clash])
        entry = store.outbox_entry("k1")
        assert entry is not None
        assert entry.state is OutboxState.CLAIMED

    def test_outbox_entries_are_filtered(self, store: Store) -> None:
        store.append([], outbox=[_entry("a", "c1", 2), _entry("b", "c2", 1), _entry("c", "c1", 0)])
        store.claim(_day(0), worker="w", lease=LEASE)
        assert [e.key for e in store.outbox_entries()] == ["c", "b", "a"]
        assert [e.key for e in store.outbox_entries(customer_id="c1")] == ["c", "a"]
        assert [e.key for e in store.outbox_entries(states=[OutboxState.PENDING])] == ["b", "a"]

    def test_concurrent_claims_never_hand_out_an_entry_twice(self, store: Store) -> None:
        if not self.supports_threads():
            pytest.skip("the store is used by one thread at a time")
        store.append([], outbox=[_entry(f"k{i:03}", f"c{i % 50}") for i in range(200)])
        got: list[list[str]] = [[] for _ in range(8)]

        def work(i: int) -> None:
            while batch := store.claim(_day(1), worker=f"w{i}", lease=LEASE, limit=7):
                got[i] += [e.key for e in batch]
                for e in batch:
                    store.settle(e.key, worker=f"w{i}", state=OutboxState.SENT, at=_day(1))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        everything = [k for keys in got for k in keys]
        assert sorted(everything) == [f"k{i:03}" for i in range(200)]


class ErasureContract(_Kit):
    """Erasure (:class:`~lifecycle.ports.Erasure`): events redacted, snapshot state cleared,
    unsent messages cancelled, every outbox text of the customer cleared.
    """

    # -- privacy ----------------------------------------------------------------------------

    def test_forget_redacts_and_cancels_unsent_messages(self, store: Store) -> None:
        review = ReviewPosted(customer_id="c1", at=_day(1), rating=4, text="private words")

        def written(key: str, cid: str = "c1") -> OutboxEntry:
            return _entry(
                key, cid, text_en="Hi Ann", text_zh="安你好", subject_en="Ann", payload={"n": 1}
            )

        store.append(
            [_paid("c1", "o1", 0), review],
            outbox=[written("a_sent"), written("k1"), written("k2"), written("other", "c2")],
        )
        store.claim(_day(0), worker="w", lease=LEASE, limit=1)
        store.settle(
            "a_sent", worker="w", state=OutboxState.SENT, at=_day(0), error="li@example.com: 451"
        )
        store.claim(_day(0), worker="w", lease=LEASE, limit=1)
        store.put_snapshots([_snap("c1", 2, state=b"Ann's folded history")])
        store.forget("c1", [review.redacted()], _day(2))
        assert store.history("c1") == (_paid("c1", "o1", 0), review.redacted())
        assert store.history_since("c1", 1) == (review.redacted(),)
        snap = store.snapshot("c1")
        assert snap is not None
        assert snap.state is None
        states = {e.key: e.state for e in store.outbox_entries()}
        assert states == {
            "a_sent": OutboxState.SENT,
            "k1": OutboxState.CANCELLED,
            "k2": OutboxState.CANCELLED,
            "other": OutboxState.PENDING,
        }
        for e in store.outbox_entries(customer_id="c1"):  # sent ones too
            assert (e.text_en, e.text_zh, e.subject_en, dict(e.payload)) == ("", "", None, {})
            assert "example.com" not in (e.last_error or "")
        other = store.outbox_entry("other")
        assert other is not None
        assert other.text_en == "Hi Ann"

    def test_forget_refuses_events_it_does_not_hold_and_changes_nothing(self, store: Store) -> None:
        review = ReviewPosted(customer_id="c1", at=_day(1), rating=4, text="private words")
        store.append([review], outbox=[_entry("k1")])
        stranger = ReviewPosted(customer_id="c1", at=_day(2), rating=4, text=None)
        with pytest.raises(StoreError):
            store.forget("c1", [review.redacted(), stranger], _day(2))
        assert store.history("c1") == (review,)
        entry = store.outbox_entry("k1")
        assert entry is not None
        assert entry.state is OutboxState.PENDING


class PlanIndexContract(_Kit):
    """The planning index (:class:`~lifecycle.ports.PlanIndex`), for stores that keep one;
    the tests skip for a store without it.
    """

    # -- the planning index (stores that keep one) ---------------------------------------

    def _index(self, store: Store) -> PlanIndex:
        if not isinstance(store, PlanIndex):
            pytest.skip("the store keeps no planning index")
        return store

    def test_new_events_make_a_customer_due_for_planning(self, store: Store) -> None:
        index = self._index(store)
        store.append([_paid("c1", "o1", 0), _paid("c2", "o2", 0)])
        due = index.planning_due(_day(1))
        assert list(due) == ["c1", "c2"]
        index.planned([PlanMark(customer_id="c1", stamp=due["c1"], next_due=_day(5))])
        index.planned([PlanMark(customer_id="c2", stamp=due["c2"], next_due=None)])
        assert index.planning_due(_day(1)) == {}
        assert list(index.planning_due(_day(5))) == ["c1"]
        store.append([_paid("c2", "o3", 2)])
        assert list(index.planning_due(_day(2))) == ["c2"]

    def test_a_change_while_planning_leaves_the_customer_due(self, store: Store) -> None:
        index = self._index(store)
        store.append([_paid("c1", "o1", 0)])
        seen = index.planning_due(_day(1))
        store.append([_paid("c1", "o2", 1)])  # arrives while the plan is being made
        index.planned([PlanMark(customer_id="c1", stamp=seen["c1"], next_due=_day(9))])
        assert list(index.planning_due(_day(1))) == ["c1"]

    def test_a_referred_customers_events_make_the_referrer_due(self, store: Store) -> None:
        index = self._index(store)
        store.append([Referred(customer_id="a", at=_day(0), referred_id="b"), _paid("b", "o1", 0)])
        seen = index.planning_due(_day(1))
        store.append([_paid("b", "o2", 1)])  # while "a" is being planned
        index.planned([PlanMark(customer_id=c, stamp=t, next_due=None) for c, t in seen.items()])
        assert list(index.planning_due(_day(2))) == ["a", "b"]

    def test_replanning_everyone_remembers_the_fingerprint(self, store: Store) -> None:
        index = self._index(store)
        store.append([_paid("c1", "o1", 0)])
        seen = index.planning_due(_day(0))
        index.planned([PlanMark(customer_id="c1", stamp=seen["c1"], next_due=None)])
        assert index.plan_fingerprint() is None
        index.replan_all("policy-1")
        assert index.plan_fingerprint() == "policy-1"
        assert list(index.planning_due(_day(0))) == ["c1"]


class ShopSettingsContract(_Kit):
    """The shop's own settings (zone, language, import key) for stores that keep them
    (:class:`~lifecycle.ports.ShopSettings`); a store without them skips these tests."""

    def _settings(self, store: Store) -> ShopSettings:
        if not isinstance(store, ShopSettings):
            pytest.skip("the store keeps no shop settings")
        return store

    def test_shop_settings_are_kept_key_by_key(self, store: Store) -> None:
        settings = self._settings(store)
        assert settings.shop_settings() == {}
        settings.put_shop_settings({"timezone": "Asia/Shanghai", "language": "zh"})
        settings.put_shop_settings({"import_secret": "s3cr3t", "language": "en"})
        assert settings.shop_settings() == {
            "timezone": "Asia/Shanghai",
            "language": "en",
            "import_secret": "s3cr3t",
        }
        store.append([_paid("c1", "o1", 0)])  # events and settings do not meet
        assert settings.shop_settings()["timezone"] == "Asia/Shanghai"

    def test_the_first_import_records_the_shop_defaults(self, store: Store) -> None:
        self._settings(store)
        shop = Lifecycle(store=store)
        order = ExportedOrder(
            order_id="o1",
            customer_id="c1",
            row=2,
            placed_at=_day(0),
            amount=Decimal(5),
            currency="CNY",
            paid_at=_day(0),
            paid=Decimal(5),
        )
        defaults = ShopDefaults(timezone="Asia/Shanghai", language="zh")
        imported = OrderImport((), 1, 1, (), exported=(order,), defaults=defaults)
        summary = shop.import_orders(imported)
        assert summary.defaults == ShopDefaults(timezone="Asia/Shanghai", language="zh")
        assert (shop.policy.timezone, shop.policy.language) == ("Asia/Shanghai", "zh")
        again = Lifecycle(store=store)
        assert (again.policy.timezone, again.policy.language) == ("Asia/Shanghai", "zh")
        assert again.import_orders(imported).recorded == 0


class StoreContract(
    EventLogContract,
    SnapshotContract,
    OutboxContract,
    ErasureContract,
    PlanIndexContract,
    ShopSettingsContract,
):
    """Contract tests every :class:`~lifecycle.ports.Store` must pass: every capability, the
    capabilities together in one transaction, the facade on top, and a random walk against
    the in-memory reference.

    Subclass it (with a name starting ``Test``) and override :meth:`make_store`; override
    :meth:`supports_threads` to return ``False`` for a store that one thread at a time uses.
    A store with fewer capabilities subclasses only the contracts of those it has
    (:class:`EventLogContract`, :class:`SnapshotContract`, :class:`OutboxContract`,
    :class:`ErasureContract`, :class:`PlanIndexContract`, :class:`ShopSettingsContract`).
    """

    # -- the capabilities together -----------------------------------------------------------

    def test_a_conflicting_id_is_refused_and_the_whole_batch_with_it(self, store: Store) -> None:
        store.append([_paid("c1", "o1", 0)])
        clash = attrs.evolve(_paid("c1", "o1", 0), amount=Decimal("11.00"))
        with pytest.raises(ConflictingEvent):
            store.append(
                [_paid("c2", "o9", 0), clash], [_snap("c2", 1)], outbox=[_entry("k1", "c2")]
            )
        assert store.history("c2") == ()
        assert store.snapshot("c2") is None
        assert store.outbox_entry("k1") is None
        assert store.history("c1") == (_paid("c1", "o1", 0),)

    # -- through the facade -----------------------------------------------------------------

    def test_snapshots_equal_a_replay(self, store: Store) -> None:
        shop = Lifecycle(store=store, policy=Policy(), clock=FixedClock(_day(400)))
        shop.record([_paid("a", "a1", 0), _paid("a", "a2", 100), _paid("a", "a3", 200)])
        shop.record([_paid("b", "b1", 0), Referred(customer_id="b", at=_day(1), referred_id="a")])
        shop.record(ReviewPosted(customer_id="a", at=_day(300), rating=5))
        for cid in store.customer_ids():
            snap = store.snapshot(cid)
            assert snap is not None
            a = shop.assess(cid, at=snap.as_of)
            assert (snap.stage, snap.status, snap.version) == (
                a.stage,
                a.status,
                store.version(cid),
            )

    def test_concurrent_writers_lose_no_event(self, store: Store) -> None:
        if not self.supports_threads():
            pytest.skip("the store is used by one thread at a time")
        shop = Lifecycle(store=store, clock=FixedClock(_day(100)))

        def work(w: int) -> None:
            for i in range(25):
                shop.record(_paid(f"c{i % 3}", f"w{w}-o{i}", i))

        threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(store.version(f"c{i}") for i in range(3)) == 100
        for i in range(3):
            snap = store.snapshot(f"c{i}")
            assert snap is not None
            assert snap.version == store.version(f"c{i}")

    def test_erase_through_the_facade_keeps_the_figures(self, store: Store) -> None:
        shop = Lifecycle(store=store, clock=FixedClock(_day(30)))
        profile = Profile(
            name="Ann Example",
            timezone="Asia/Shanghai",
            contacts=(ContactPoint(channel="sms", address="+86 138 0000 1111"),),
        )
        shop.record(
            CustomerRegistered(customer_id="c1", at=_day(0), profile=profile),
            _paid("c1", "o1", 1),
            _paid("c1", "o2", 9),
            ReviewPosted(customer_id="c1", at=_day(10), rating=5, text="Ann loved it"),
        )
        before = shop.assess("c1")
        shop.erase("c1")
        after = shop.assess("c1")
        assert (after.stage, after.status) == (before.stage, before.status)
        text = repr(list(shop.history("c1"))) + shop.export("c1")
        for secret in ("Ann", "138 0000", "loved"):
            assert secret not in text
        paid = [e.amount for e in shop.history("c1") if isinstance(e, OrderPaid)]
        assert sum(paid) == Decimal("20.00")
        # Personal data recorded after the erasure is dropped on the way in.
        shop.record(
            ProfileUpdated(customer_id="c1", at=_day(31), profile=Profile(name="Ann Again"))
        )
        assert "Ann" not in shop.export("c1")

    # -- a random walk against the reference -----------------------------------------------

    def test_random_operations_agree_with_the_reference(self) -> None:
        make = self.make_store

        class Machine(_StoreMachine):
            def new_store(self) -> Store:
                return make()

        run_state_machine_as_test(
            Machine,
            settings=settings(
                max_examples=self.random_walks,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        )


_customers = st.sampled_from(["c1", "c2", "c3"])
_orders = st.sampled_from([f"o{i}" for i in range(8)])
_days = st.integers(min_value=0, max_value=60)


@st.composite
def _some_events(draw: st.DrawFn) -> list[Event]:
    out: list[Event] = []
    for _ in range(draw(st.integers(1, 4))):
        cid = draw(_customers)
        kind = draw(st.sampled_from(["paid", "chat", "review", "refer"]))
        at = _day(draw(_days))
        if kind == "paid":
            # Order ids are shared across customers on purpose: a clash is a conflict.
            amount = draw(st.sampled_from(["10.00", "20.00"]))
            out.append(
                OrderPaid(
                    customer_id=cid, at=at, order_id=draw(_orders), amount=amount, currency="CNY"
                )
            )
        elif kind == "chat":
            out.append(Engaged(customer_id=cid, at=at, kind="chat"))
        elif kind == "review":
            out.append(
                ReviewPosted(
                    customer_id=cid,
                    at=at,
                    rating=draw(st.integers(1, 5)),
                    text=draw(free_texts(5)),
                )
            )
        else:
            other = draw(st.sampled_from([c for c in ("c1", "c2", "c3") if c != cid]))
            out.append(Referred(customer_id=cid, at=at, referred_id=other))
    return out


class _StoreMachine(RuleBasedStateMachine):
    """Runs the same operations on a candidate store and on :class:`MemoryStore`."""

    def new_store(self) -> Store:
        raise NotImplementedError

    def __init__(self) -> None:
        super().__init__()
        self.candidate = self.new_store()
        self.reference: Store = MemoryStore()
        self.now = T0
        self.keys: list[str] = []

    def _both(self, op: Any) -> Any:
        outcomes = []
        for s in (self.reference, self.candidate):
            try:
                outcomes.append(("ok", op(s)))
            except LifecycleError as e:
                outcomes.append(("error", type(e)))
        assert outcomes[0] == outcomes[1], outcomes
        return outcomes[0][1]

    @rule(events=_some_events(), snapshot=st.booleans(), guard=st.booleans())
    def append(self, events: list[Event], snapshot: bool, guard: bool) -> None:
        cids = sorted({e.customer_id for e in events})
        expected = {c: self.reference.version(c) for c in cids} if guard else None
        snaps: Sequence[Snapshot] = ()
        if snapshot:
            counts = {
                c: self.reference.version(c)
                + len({e.event_id for e in events if e.customer_id == c})
                for c in cids
            }
            snaps = [_snap(c, counts[c]) for c in cids]
        self._both(lambda s: s.append(events, snaps, expected_versions=expected))

    @rule(events=_some_events())
    def replay(self, events: list[Event]) -> None:
        stored = [e for c in ("c1", "c2", "c3") for e in self.reference.history(c)]
        self._both(lambda s: s.append(stored[: len(events)]))

    @rule(key=st.sampled_from(["k1", "k2", "k3", "k4"]), cid=_customers, due=_days)
    def plan(self, key: str, cid: str, due: int) -> None:
        self._both(lambda s: s.append([], outbox=[_entry(key, cid, due)]))

    @rule(step=st.integers(0, 3), worker=st.sampled_from(["w1", "w2"]))
    def claim(self, step: int, worker: str) -> None:
        self.now += timedelta(days=step)
        now = self.now
        got = self._both(
            lambda s: [e.key for e in s.claim(now, worker=worker, lease=timedelta(days=1), limit=2)]
        )
        self.keys = got if isinstance(got, list) else []

    @precondition(lambda self: bool(self.keys))
    @rule(
        worker=st.sampled_from(["w1", "w2"]),
        state=st.sampled_from([OutboxState.SENT, OutboxState.PENDING, OutboxState.FAILED]),
    )
    def settle(self, worker: str, state: OutboxState) -> None:
        key = self.keys.pop()
        now = self.now
        retry = now + timedelta(days=1) if state is OutboxState.PENDING else None
        self._both(
            lambda s: s.settle(key, worker=worker, state=state, at=now, next_attempt_at=retry)
        )

    @invariant()
    def same_contents(self) -> None:
        for c in ("c1", "c2", "c3"):
            assert self.candidate.history(c) == self.reference.history(c)
            assert self.candidate.version(c) == self.reference.version(c)
            assert self.candidate.snapshot(c) == self.reference.snapshot(c)
        ids = ["c1", "c2", "c3", "nobody"]
        assert self.candidate.histories(ids) == self.reference.histories(ids)
        assert self.candidate.referrers(ids) == self.reference.referrers(ids)
        assert self.candidate.versions(ids) == self.reference.versions(ids)
        assert list(self.candidate.versions().items()) == list(self.reference.versions().items())
        assert list(self.candidate.customer_ids()) == list(self.reference.customer_ids())
        assert list(self.candidate.outbox_entries()) == list(self.reference.outbox_entries())

    def teardown(self) -> None:
        self.candidate.close()
