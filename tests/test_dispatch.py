"""Dispatch: the outbox sends each key at most once, retries, suppresses and reports in doubt."""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.adapters.channels import MemoryChannel
from lifecycle.adapters.memory import MemoryStore
from lifecycle.cadence import CadencePolicy, Hold, contact_gate
from lifecycle.cadence.contact import Caps, ContactPolicy, QuietHours
from lifecycle.customer import ContactPoint, Profile
from lifecycle.dispatch import DispatchOutcome, dispatch, in_doubt, to_outbox
from lifecycle.errors import PermanentChannelError, PolicyError, TransientChannelError
from lifecycle.events import ConsentChanged, Contacted, CustomerErased, CustomerRegistered
from lifecycle.policy import DispatchPolicy, Policy
from lifecycle.ports import Message, OutboxEntry, OutboxState, SendResult
from lifecycle.reasons import Reason
from lifecycle.record import CustomerRecord
from lifecycle.vocabulary import Purpose

T0 = datetime(2026, 5, 1, 10, tzinfo=UTC)
DISPATCH = DispatchPolicy(backoff_base_seconds=60, backoff_max_seconds=3600, max_attempts=5)
#: No caps and no quiet hours: the tests of retries and doubt are not about the contact policy.
FREE = CadencePolicy(
    contact=ContactPolicy(
        quiet=QuietHours(start="00:00", end="00:00"), marketing=Caps(), service=Caps()
    )
)
POLICY = Policy(dispatch=DISPATCH, cadence=FREE)


def _policy(**dispatch: Any) -> Policy:
    return Policy(dispatch=DispatchPolicy(**dispatch), cadence=FREE)


def _register(store: MemoryStore, cid: str, *, marketing: bool = True, locale: str = "en") -> None:
    consent = {"transactional", "service", "marketing"} if marketing else {"transactional"}
    profile = Profile(
        locale=locale,
        contacts=(ContactPoint(channel="email", address=f"{cid}@example.com", consent=consent),),
    )
    store.append([CustomerRegistered(customer_id=cid, at=T0 - timedelta(days=30), profile=profile)])


def _entry(cid: str, n: int, purpose: str = "marketing", **kw: Any) -> OutboxEntry:
    return OutboxEntry(
        key=f"{cid}:promo:{n}",
        customer_id=cid,
        channel=kw.pop("channel", "email"),
        due_at=kw.pop("due_at", T0),
        rule="promo",
        purpose=purpose,
        template="promo",
        text_en=kw.pop("text_en", "Hello"),
        text_zh=kw.pop("text_zh", "你好"),
        **kw,
    )


def _contacts(store: MemoryStore, cid: str) -> list[Contacted]:
    return [e for e in store.history(cid) if isinstance(e, Contacted)]


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    _register(s, "c1")
    return s


def test_planning_and_dispatching_twice_sends_once(store: MemoryStore) -> None:
    entries = [_entry("c1", 1, "transactional"), _entry("c1", 2, "transactional")]
    store.append([], outbox=entries)
    store.append([], outbox=entries)  # planned again: same keys, nothing new
    email = MemoryChannel("email", deduplicates=False)
    first = dispatch(store, {"email": email}, POLICY, T0, worker="a")
    second = dispatch(store, {"email": email}, POLICY, T0 + timedelta(hours=1), worker="b")
    assert sorted(first.sent) == ["c1:promo:1", "c1:promo:2"]
    assert len(second) == 0
    assert sorted(email.keys()) == ["c1:promo:1", "c1:promo:2"]
    assert sorted(c.key or "" for c in _contacts(store, "c1")) == ["c1:promo:1", "c1:promo:2"]
    (c,) = [c for c in _contacts(store, "c1") if c.key == "c1:promo:1"]
    assert (c.channel, c.purpose, c.rule, c.template, c.at) == (
        "email",
        Purpose.TRANSACTIONAL,
        "promo",
        "promo",
        T0,
    )


def test_the_message_carries_the_address_and_the_customers_language(store: MemoryStore) -> None:
    _register(store, "c2", locale="zh-CN")
    store.append([], outbox=[_entry("c1", 1), _entry("c2", 1, subject_zh="优惠")])
    email = MemoryChannel("email")
    dispatch(store, {"email": email}, POLICY, T0, worker="a")
    by_customer = {m.customer_id: m for m in email.sent}
    assert (by_customer["c1"].text, by_customer["c1"].address) == ("Hello", "c1@example.com")
    assert (by_customer["c2"].text, by_customer["c2"].subject, by_customer["c2"].lang) == (
        "你好",
        "优惠",
        "zh",
    )


def test_a_transient_failure_retries_with_growing_jittered_backoff(store: MemoryStore) -> None:
    store.append([], outbox=[_entry("c1", 1)])
    failures = 3

    def flaky(message: Message) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise TransientChannelError("421 busy")

    email = MemoryChannel("email", handler=flaky)
    now, delays = T0, []
    for _ in range(4):
        report = dispatch(store, {"email": email}, POLICY, now, worker="a")
        (r,) = report.results
        if r.outcome is DispatchOutcome.SENT:
            break
        assert r.outcome is DispatchOutcome.RETRY
        assert r.reason.code == "dispatch.retry"
        assert r.next_attempt_at is not None
        delays.append(r.next_attempt_at - now)
        assert (
            dispatch(
                store, {"email": email}, POLICY, r.next_attempt_at - timedelta(seconds=1)
            ).results
            == ()
        )
        now = r.next_attempt_at
    assert email.keys() == ["c1:promo:1"]
    assert [d.total_seconds() for d in delays] == [
        DISPATCH.backoff("c1:promo:1", n).total_seconds() for n in (1, 2, 3)
    ]
    for n, d in enumerate(delays, start=1):
        full = 60 * 2 ** (n - 1)
        assert full * (1 - DISPATCH.jitter) <= d.total_seconds() <= full


def test_backoff_is_capped_and_the_jitter_is_the_same_every_time() -> None:
    assert DISPATCH.backoff("k", 30) <= timedelta(seconds=3600)
    assert DISPATCH.backoff("k", 3) == DISPATCH.backoff("k", 3)
    assert len({DISPATCH.backoff(f"k{i}", 3) for i in range(20)}) > 10  # keys spread out


def test_too_many_transient_failures_give_up_and_are_reported(store: MemoryStore) -> None:
    store.append([], outbox=[_entry("c1", 1)])

    def down(message: Message) -> None:
        raise TransientChannelError("connection refused")

    email = MemoryChannel("email", handler=down)
    now, outcomes = T0, []
    for _ in range(10):
        report = dispatch(store, {"email": email}, POLICY, now, worker="a")
        outcomes += [r.outcome for r in report]
        now += timedelta(hours=2)
    assert outcomes == [DispatchOutcome.RETRY] * 4 + [DispatchOutcome.FAILED]
    entry = store.outbox_entry("c1:promo:1")
    assert entry is not None
    assert entry.state is OutboxState.FAILED
    assert "connection refused" in (entry.last_error or "")


def test_a_permanent_failure_stops_at_once_and_records_no_contact(store: MemoryStore) -> None:
    store.append([], outbox=[_entry("c1", 1)])

    def bounce(message: Message) -> None:
        raise PermanentChannelError("550 no such user")

    report = dispatch(store, {"email": MemoryChannel("email", handler=bounce)}, POLICY, T0)
    assert report.failed == ("c1:promo:1",)
    assert report.results[0].error == "550 no such user"
    assert _contacts(store, "c1") == []
    assert (
        dispatch(store, {"email": MemoryChannel("email")}, POLICY, T0 + timedelta(days=9)).results
        == ()
    )


def test_consent_withdrawn_after_planning_suppresses_the_send(store: MemoryStore) -> None:
    store.append([], outbox=[_entry("c1", 1), _entry("c1", 2, "transactional")])
    store.append(
        [
            ConsentChanged(
                customer_id="c1",
                at=T0 - timedelta(minutes=1),
                channel="email",
                purpose="marketing",
                granted=False,
            )
        ]
    )
    email = MemoryChannel("email")
    report = dispatch(store, {"email": email}, POLICY, T0)
    assert report.keys(DispatchOutcome.SUPPRESSED) == ("c1:promo:1",)
    assert report.sent == ("c1:promo:2",)  # an order message still goes
    (r,) = [r for r in report if r.key == "c1:promo:1"]
    assert r.reason.code == "cadence.do_not_contact"  # opted out on every channel
    entry = store.outbox_entry("c1:promo:1")
    assert entry is not None
    assert entry.state is OutboxState.CANCELLED
    assert email.keys() == ["c1:promo:2"]


def test_an_erased_customer_is_never_contacted_not_even_about_an_order(store: MemoryStore) -> None:
    store.append([], outbox=[_entry("c1", 1, "transactional"), _entry("c1", 2, channel="task")])
    store.append([CustomerErased(customer_id="c1", at=T0 - timedelta(minutes=1))])
    email, task = MemoryChannel("email"), MemoryChannel("task")
    report = dispatch(store, {"email": email, "task": task}, POLICY, T0)
    assert set(report.keys(DispatchOutcome.SUPPRESSED)) == {"c1:promo:1", "c1:promo:2"}
    assert email.sent == task.sent == []


def test_the_gate_follows_the_profile_and_later_consent_changes() -> None:
    profile = Profile(
        contacts=(ContactPoint(channel="sms", address="+8613800000001", consent={"service"}),)
    )
    h: list[Any] = [CustomerRegistered(customer_id="c", at=T0, profile=profile)]

    def hold(history: list[Any], channel: str, purpose: Purpose) -> Hold | None:
        facts = CustomerRecord("c", history, POLICY, T0 + timedelta(days=3))
        at = T0 + timedelta(days=3)
        v = contact_gate(
            facts, channel=channel, purpose=purpose, at=at, valid_until=at + timedelta(days=1)
        )
        return v.hold

    assert hold(h, "sms", Purpose.SERVICE) is None
    assert hold(h, "sms", Purpose.TRANSACTIONAL) is None
    assert hold(h, "sms", Purpose.MARKETING) is Hold.NO_CONSENT
    assert hold(h, "email", Purpose.SERVICE) is Hold.NO_CONSENT  # no address there
    assert hold(h, "task", Purpose.MARKETING) is None
    grant = ConsentChanged(
        customer_id="c", at=T0 + timedelta(1), channel="sms", purpose="marketing", granted=True
    )
    assert hold([*h, grant], "sms", Purpose.MARKETING) is None
    stop = ConsentChanged(
        customer_id="c", at=T0 + timedelta(2), channel="sms", purpose="transactional", granted=False
    )
    assert hold([*h, grant, stop], "sms", Purpose.TRANSACTIONAL) is Hold.NO_CONSENT


def test_an_expired_follow_up_is_suppressed(store: MemoryStore) -> None:
    store.append([], outbox=[_entry("c1", 1, valid_until=T0 - timedelta(hours=1))])
    report = dispatch(store, {"email": MemoryChannel("email")}, POLICY, T0)
    assert report.results[0].reason.code == "cadence.expired"


def test_a_missing_channel_is_reported_and_tried_later(store: MemoryStore) -> None:
    store.append([], outbox=[_entry("c1", 1, "transactional")])
    report = dispatch(store, {}, POLICY, T0)
    assert report.keys(DispatchOutcome.NO_CHANNEL) == ("c1:promo:1",)
    later = report.results[0].next_attempt_at
    assert later is not None
    email = MemoryChannel("email")
    assert dispatch(store, {"email": email}, POLICY, later).sent == ("c1:promo:1",)


# -- in doubt ------------------------------------------------------------------------------------


def _abandon(store: MemoryStore) -> None:
    """A dispatcher claims the entry, (maybe) sends, and dies before marking it."""
    (claimed,) = store.claim(T0, worker="dead", lease=DISPATCH.lease, limit=1)
    assert claimed.attempts == 1


def test_an_abandoned_claim_is_in_doubt_for_a_channel_that_cannot_deduplicate(
    store: MemoryStore,
) -> None:
    store.append([], outbox=[_entry("c1", 1)])
    _abandon(store)
    email = MemoryChannel("email", deduplicates=False)
    assert dispatch(store, {"email": email}, POLICY, T0 + timedelta(seconds=10)).results == ()
    report = dispatch(store, {"email": email}, POLICY, T0 + DISPATCH.lease)
    assert report.in_doubt == ("c1:promo:1",)
    assert report.results[0].doubt
    assert email.sent == []
    assert [e.key for e in in_doubt(store)] == ["c1:promo:1"]
    assert _contacts(store, "c1") == []
    assert dispatch(store, {"email": email}, POLICY, T0 + timedelta(days=3)).results == ()


def test_an_abandoned_claim_is_resent_under_the_same_key_to_a_deduplicating_channel(
    store: MemoryStore,
) -> None:
    store.append([], outbox=[_entry("c1", 1)])
    email = MemoryChannel("email")
    email.send(
        Message(key="c1:promo:1", customer_id="c1", channel="email", text="Hello"),
        idempotency_key="c1:promo:1",
    )  # the dead dispatcher's send
    _abandon(store)
    report = dispatch(store, {"email": email}, POLICY, T0 + DISPATCH.lease)
    assert report.sent == ("c1:promo:1",)
    assert report.results[0].reason.code == "dispatch.sent_again"
    assert email.keys() == ["c1:promo:1"]
    assert email.calls == 2
    assert [c.key for c in _contacts(store, "c1")] == ["c1:promo:1"]


def test_the_policy_may_resend_in_doubt_to_a_channel_that_cannot_deduplicate(
    store: MemoryStore,
) -> None:
    store.append([], outbox=[_entry("c1", 1)])
    _abandon(store)
    email = MemoryChannel("email", deduplicates=False)
    policy = _policy(resend_in_doubt=True)
    assert dispatch(store, {"email": email}, policy, T0 + DISPATCH.lease).sent == ("c1:promo:1",)


def test_doubt_is_kept_across_retries(store: MemoryStore) -> None:
    store.append([], outbox=[_entry("c1", 1)])
    _abandon(store)
    fail = True

    def once(message: Message) -> None:
        nonlocal fail
        if fail:
            fail = False
            raise TransientChannelError("busy")

    email = MemoryChannel("email", handler=once)
    first = dispatch(store, {"email": email}, POLICY, T0 + DISPATCH.lease)
    assert first.results[0].outcome is DispatchOutcome.RETRY
    assert first.results[0].doubt
    when = first.results[0].next_attempt_at
    assert when is not None
    second = dispatch(store, {"email": MemoryChannel("email", deduplicates=False)}, POLICY, when)
    assert second.in_doubt == ("c1:promo:1",)


def test_an_unexpected_channel_error_leaves_the_outcome_in_doubt(store: MemoryStore) -> None:
    store.append([], outbox=[_entry("c1", 1), _entry("c1", 2, "transactional")])

    def bug(message: Message) -> None:
        raise RuntimeError("gateway client bug")

    strict = MemoryChannel("email", deduplicates=False, handler=bug)
    report = dispatch(store, {"email": strict}, POLICY, T0, limit=1)
    assert report.results[0].outcome is DispatchOutcome.IN_DOUBT
    dedup = MemoryChannel("email", handler=bug)
    report = dispatch(store, {"email": dedup}, POLICY, T0)
    assert report.results[0].outcome is DispatchOutcome.RETRY
    assert report.results[0].doubt


def test_a_lost_lease_is_reported_and_the_other_dispatcher_decides(store: MemoryStore) -> None:
    store.append([], outbox=[_entry("c1", 1)])
    stolen: list[Any] = []

    def slow(message: Message) -> None:  # the lease runs out while sending
        stolen.extend(store.claim(T0 + DISPATCH.lease, worker="thief", lease=DISPATCH.lease))

    report = dispatch(store, {"email": MemoryChannel("email", handler=slow)}, POLICY, T0)
    assert report.results[0].outcome is DispatchOutcome.LOST_CLAIM
    assert [e.key for e in stolen] == ["c1:promo:1"]
    assert _contacts(store, "c1") == []


# -- caps ----------------------------------------------------------------------------------------

CONTACT = ContactPolicy(marketing=Caps(limits=((2, 7),), min_gap_hours=0))
CAPPED = Policy(dispatch=DISPATCH, cadence=CadencePolicy(contact=CONTACT))


def test_caps_are_checked_again_just_before_sending(store: MemoryStore) -> None:
    store.append([], outbox=[_entry("c1", n) for n in range(4)])
    email = MemoryChannel("email")
    report = dispatch(store, {"email": email}, CAPPED, T0)
    assert len(report.sent) == 2
    deferred = [r for r in report if r.outcome is DispatchOutcome.DEFERRED]
    assert len(deferred) == 2
    assert all(r.reason.code == "cadence.cap" for r in deferred)
    assert all(r.next_attempt_at == T0 + timedelta(days=7) for r in deferred)
    later = dispatch(store, {"email": email}, CAPPED, T0 + timedelta(days=7))
    assert len(later.sent) == 2


def test_a_customer_held_by_another_dispatcher_waits_for_it(store: MemoryStore) -> None:
    store.append([], outbox=[_entry("c1", 1), _entry("c1", 2)])
    store.claim(T0, worker="other", lease=DISPATCH.lease, limit=1)
    assert dispatch(store, {"email": MemoryChannel("email")}, CAPPED, T0).results == ()
    assert store.settle("c1:promo:1", worker="other", state=OutboxState.SENT, at=T0)
    (r,) = dispatch(store, {"email": MemoryChannel("email")}, CAPPED, T0).results
    assert r.outcome is DispatchOutcome.SENT


def test_deferrals_do_not_use_up_attempts(store: MemoryStore) -> None:
    store.append([], outbox=[_entry("c1", n) for n in range(3)])
    email = MemoryChannel("email")
    contact = ContactPolicy(marketing=Caps(limits=((1, 1),)))
    now = T0
    for _ in range(12):
        policy = Policy(
            dispatch=DispatchPolicy(max_attempts=1), cadence=CadencePolicy(contact=contact)
        )
        dispatch(store, {"email": email}, policy, now)
        now += timedelta(days=1)
    assert len(email.sent) == 3


# -- policy, outbox helper -----------------------------------------------------------------------


def test_policy_values_are_checked_by_name() -> None:
    with pytest.raises(PolicyError, match=r"dispatch\.max_attempts"):
        DispatchPolicy(max_attempts=0)
    with pytest.raises(PolicyError, match=r"dispatch\.jitter"):
        DispatchPolicy(jitter=1.0)
    with pytest.raises(PolicyError, match=r"dispatch\.lease_seconds"):
        DispatchPolicy(lease_seconds=True)  # type: ignore[arg-type]


def test_dispatch_needs_a_time() -> None:
    with pytest.raises(TypeError):
        dispatch(MemoryStore(), {}, POLICY)


def test_a_follow_up_becomes_an_outbox_entry_with_its_texts() -> None:
    class FollowUp:
        customer_id, key, rule, channel, purpose = (
            "c1",
            "c1:care:o1",
            "care",
            "sms",
            Purpose.SERVICE,
        )
        due_at, valid_until, template, priority = T0, T0 + timedelta(days=2), "care", 5
        reason = Reason(code="cadence.care", en="e", zh="z")
        text_en, text_zh, contact_channel = "Hi", "你好", None
        subject_en, subject_zh = "Care", "关怀"

    entry = to_outbox(FollowUp())
    assert (entry.key, entry.channel, entry.purpose, entry.due_at) == (
        "c1:care:o1",
        "sms",
        "service",
        T0,
    )
    assert (entry.text_zh, entry.subject_en, entry.valid_until) == (
        "你好",
        "Care",
        T0 + timedelta(days=2),
    )
    FollowUp.channel = None  # type: ignore[assignment]
    with pytest.raises(ValueError, match="no channel"):
        to_outbox(FollowUp())


# -- fault injection -----------------------------------------------------------------------------


def test_random_failures_lose_nothing_duplicate_nothing_and_respect_opt_outs() -> None:
    rng = random.Random(20260501)
    store = MemoryStore()
    customers = [f"c{i:03}" for i in range(200)]
    for cid in customers:
        _register(store, cid)
    store.append(
        [],
        outbox=[
            _entry(
                cid,
                n,
                rng.choice(["marketing", "service", "transactional"]),
                due_at=T0 + timedelta(minutes=rng.randrange(600)),
            )
            for cid in customers
            for n in range(5)
        ],
    )
    injected = Counter[str]()

    def chaos(message: Message) -> None:
        x = rng.random()
        if x < 0.55:
            injected["transient"] += 1
            raise TransientChannelError("injected")
        if x < 0.56:
            injected["permanent"] += 1
            raise PermanentChannelError("injected")

    email = MemoryChannel("email", deduplicates=False, handler=chaos)
    policy = _policy(backoff_base_seconds=30, backoff_max_seconds=1800, max_attempts=20)
    opted_out: dict[str, datetime] = {}
    sent_at: dict[str, datetime] = {}
    now = T0
    while now < T0 + timedelta(days=2):
        for cid in rng.sample(customers, 2):  # opt-outs arrive while messages are in the outbox
            if cid not in opted_out:
                opted_out[cid] = now
                store.append(
                    [
                        ConsentChanged(
                            customer_id=cid,
                            at=now,
                            channel="email",
                            purpose="marketing",
                            granted=False,
                        )
                    ]
                )
        report = dispatch(store, {"email": email}, policy, now, worker=f"w{rng.randrange(3)}")
        for r in report:
            if r.outcome is DispatchOutcome.SENT:
                sent_at[r.key] = now
        now += timedelta(minutes=5)
    entries = {e.key: e for e in store.outbox_entries()}
    delivered = Counter(email.keys())
    duplicates = sum(n - 1 for n in delivered.values())
    lost = [k for k, e in entries.items() if e.state in (OutboxState.PENDING, OutboxState.CLAIMED)]
    sent = {k for k, e in entries.items() if e.state is OutboxState.SENT}
    late = [
        k
        for k in sent
        if entries[k].purpose == "marketing"
        and entries[k].customer_id in opted_out
        and sent_at[k] >= opted_out[entries[k].customer_id]
    ]
    contacted = Counter(c.key for cid in customers for c in _contacts(store, cid))
    assert sum(injected.values()) >= 1000
    assert (duplicates, len(lost), len(late)) == (0, 0, 0)
    assert set(delivered) == sent == set(contacted)
    assert set(contacted.values()) == {1}
    assert {e.state for e in entries.values()} <= {
        OutboxState.SENT,
        OutboxState.FAILED,
        OutboxState.CANCELLED,
    }
    assert len(sent) > 600


# -- property: any interleaving of failures and crashes -----------------------------------------


class _Crash(BaseException):
    """The dispatcher process dies (not an error the dispatcher may catch)."""


class ScriptedChannel:
    """Delivers or fails as the script says; "after" delivers and then dies before the mark."""

    name = "email"

    def __init__(self, script: list[str], deduplicates: bool):
        self.script = script
        self.deduplicates = deduplicates
        self.delivered: list[str] = []

    def send(self, message: Message, *, idempotency_key: str) -> SendResult | None:
        step = self.script.pop(0) if self.script else "ok"
        if step == "transient":
            raise TransientChannelError("x")
        if step == "permanent":
            raise PermanentChannelError("x")
        if step == "before":
            raise _Crash
        if self.deduplicates and idempotency_key in self.delivered:
            return SendResult(duplicate=True)
        self.delivered.append(idempotency_key)
        if step == "after":
            raise _Crash
        return None

    def close(self) -> None:
        pass


@settings(max_examples=150, deadline=None)
@given(
    script=st.lists(
        st.sampled_from(["ok", "transient", "permanent", "before", "after"]), max_size=30
    ),
    deduplicates=st.booleans(),
    keys=st.integers(1, 4),
)
def test_any_interleaving_sends_each_key_at_most_once_and_settles_every_key(
    script: list[str], deduplicates: bool, keys: int
) -> None:
    store = MemoryStore()
    _register(store, "c1")
    store.append([], outbox=[_entry("c1", n, "transactional") for n in range(keys)])
    channel = ScriptedChannel(list(script), deduplicates)
    policy = _policy(backoff_base_seconds=1, backoff_max_seconds=10, max_attempts=6)
    now = T0
    for _ in range(200):
        with contextlib.suppress(_Crash):
            dispatch(store, {"email": channel}, policy, now, worker="w")
        now += policy.dispatch.lease
    entries = list(store.outbox_entries())
    assert all(e.state in (OutboxState.SENT, OutboxState.FAILED) for e in entries)
    assert all(n == 1 for n in Counter(channel.delivered).values())
    doubtful = {e.key for e in in_doubt(store)}
    for e in entries:
        if e.state is OutboxState.SENT:
            assert e.key in channel.delivered
        elif e.key in channel.delivered:  # delivered but not marked: reported, never silent
            assert e.key in doubtful
    assert sorted(c.key or "" for c in _contacts(store, "c1")) == sorted(
        e.key for e in entries if e.state is OutboxState.SENT
    )
