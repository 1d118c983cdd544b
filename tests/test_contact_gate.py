"""One contact gate for the planner and the dispatcher, asked again at the moment of sending."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

import lifecycle as lc
from builders import address_for
from lifecycle.adapters.channels import MemoryChannel
from lifecycle.adapters.memory import MemoryStore
from lifecycle.adapters.sqlite import SQLiteStore
from lifecycle.cadence import CadencePolicy, Hold
from lifecycle.cadence.contact import Caps, ContactPolicy, QuietHours
from lifecycle.dispatch import DispatchOutcome, dispatch, in_doubt, to_outbox
from lifecycle.errors import TransientChannelError
from lifecycle.policy import DispatchPolicy
from lifecycle.ports import Message, OutboxEntry, OutboxState

SH = ZoneInfo("Asia/Shanghai")
POLICY = lc.Policy(timezone="Asia/Shanghai")


def _at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=SH)


def _customer(cid: str = "c1", *, channel: str = "sms") -> lc.CustomerRegistered:
    point = lc.ContactPoint(channel=channel, address=address_for(channel), consent=set(lc.Purpose))
    return lc.CustomerRegistered(
        customer_id=cid,
        at=_at(1, 9),
        profile=lc.Profile(name="Li", timezone="Asia/Shanghai", contacts=(point,)),
    )


def _shipped(at: datetime, cid: str = "c1") -> list[lc.Event]:
    """Order ``o1`` of ``c1`` (``o1-cN`` of another customer) paid, then shipped at ``at``."""
    oid = "o1" if cid == "c1" else f"o1-{cid}"
    return [
        lc.OrderPaid(
            customer_id=cid,
            order_id=oid,
            amount=Decimal("99.00"),
            currency="CNY",
            at=at - timedelta(hours=3),
        ),
        lc.OrderShipped(customer_id=cid, order_id=oid, at=at, carrier="SF", tracking="SF1"),
    ]


def _shop(*events: lc.Event, now: datetime, policy: lc.Policy = POLICY, **channels: Any) -> Any:
    shop = lc.Lifecycle.in_memory(
        policy=policy, clock=lc.FixedClock(now), channels=channels or {"sms": MemoryChannel("sms")}
    )
    shop.record(events)
    return shop


def _failing_once(name: str) -> MemoryChannel:
    """A channel whose first send fails for a moment; later sends go through."""
    fail = True

    def once(message: Message) -> None:
        nonlocal fail
        if fail:
            fail = False
            raise TransientChannelError("gateway busy")

    return MemoryChannel(name, handler=once)


# -- the defects this design removes -----------------------------------------------------------


def test_plan_and_dispatch_agree_that_a_withdrawn_order_channel_is_closed() -> None:
    events = [_customer(), *_shipped(_at(2, 10))]
    stop = lc.ConsentChanged(
        customer_id="c1", at=_at(2, 9), channel="sms", purpose="transactional", granted=False
    )
    plan = lc.plan_customer([*events, stop], POLICY, _at(2, 10, 5))
    assert "c1:shipping_notice:o1" not in plan.keys()  # noqa: SIM118
    (held,) = [h for h in plan.held if h.follow_up.rule == "shipping_notice"]
    assert held.hold is Hold.NO_CONSENT
    # Planned before the change, dispatched after it: the dispatcher says the same.
    store = MemoryStore()
    store.append(events)
    (due,) = [
        f
        for f in lc.plan_customer(events, POLICY, _at(2, 10, 5)).due
        if f.rule == "shipping_notice"
    ]
    store.append([stop], outbox=[to_outbox(due)])
    sms = MemoryChannel("sms")
    (r,) = dispatch(store, {"sms": sms}, POLICY, _at(2, 10, 6)).results
    assert (r.outcome, r.reason.code) == (DispatchOutcome.SUPPRESSED, held.reason.code)
    assert sms.sent == []


def test_a_message_dispatched_in_quiet_hours_waits_for_the_morning() -> None:
    shop = _shop(_customer(), *_shipped(_at(2, 20, 50)), now=_at(2, 20, 50))
    assert "c1:shipping_notice:o1" in shop.plan().keys()  # noqa: SIM118
    assert len(shop.dispatch(limit=0)) == 0  # planned into the outbox at 20:50, not sent
    report = shop.dispatch(_at(2, 22))
    (r,) = report.results
    assert r.outcome is DispatchOutcome.DEFERRED
    assert r.reason.code == "cadence.quiet_hours"
    assert r.next_attempt_at == _at(3, 9)
    assert shop.channels["sms"].sent == []
    assert shop.dispatch(_at(3, 9)).sent == ("c1:shipping_notice:o1",)


def test_a_retry_that_falls_in_quiet_hours_waits_for_the_morning() -> None:
    sms = _failing_once("sms")
    shop = _shop(_customer(), *_shipped(_at(2, 20, 50)), now=_at(2, 20, 59, 45), sms=sms)
    (first,) = shop.dispatch().results
    assert first.outcome is DispatchOutcome.RETRY
    assert first.next_attempt_at is not None
    assert first.next_attempt_at.astimezone(SH) >= _at(2, 21)
    (retry,) = shop.dispatch(first.next_attempt_at).results
    assert (retry.outcome, retry.next_attempt_at) == (DispatchOutcome.DEFERRED, _at(3, 9))
    assert sms.sent == []


def test_a_payment_reminder_retried_after_the_order_was_paid_is_cancelled() -> None:
    placed = lc.OrderPlaced(
        customer_id="c1", order_id="o9", amount=Decimal("50.00"), currency="CNY", at=_at(2, 10)
    )
    sms = _failing_once("sms")
    shop = _shop(_customer(), placed, now=_at(2, 11), sms=sms)
    (first,) = shop.dispatch().results
    assert (first.key, first.outcome) == ("c1:payment_reminder:o9", DispatchOutcome.RETRY)
    shop.record(
        lc.OrderPaid(
            customer_id="c1",
            order_id="o9",
            amount=Decimal("50.00"),
            currency="CNY",
            at=_at(2, 11, 10),
        )
    )
    (retry,) = shop.dispatch(_at(2, 11, 31)).results
    assert retry.outcome is DispatchOutcome.SUPPRESSED
    assert retry.reason.code == "cadence.stopped.paid"
    assert sms.sent == []
    entry = shop.store.outbox_entry("c1:payment_reminder:o9")
    assert entry is not None
    assert entry.state is OutboxState.CANCELLED


def test_two_dispatchers_at_one_instant_never_break_a_cap_together(tmp_path: Path) -> None:
    """The worst interleaving, forced: dispatcher B has passed its checks and is sending; A
    claims another message to the same customer and reads the history (no send yet); B marks
    its send; then A decides on what it read."""
    path = tmp_path / "shop.db"
    now = _at(5, 10)
    capped = attrs.evolve(
        POLICY,
        cadence=CadencePolicy(contact=ContactPolicy(marketing=Caps(limits=((1, 2),)))),
        dispatch=DispatchPolicy(lease_seconds=60),
    )
    seed = SQLiteStore(path)
    seed.append(
        [_customer()],
        outbox=[
            OutboxEntry(
                key=f"c1:promo:{n}",
                customer_id="c1",
                channel="sms",
                due_at=now - timedelta(minutes=n),
                rule="promo",
                purpose="marketing",
                text_en="Sale. Reply STOP to opt out.",
            )
            for n in (1, 2)
        ],
    )
    seed.close()
    b_sending, a_read, b_settled = threading.Event(), threading.Event(), threading.Event()

    class Reading(SQLiteStore):
        def history(self, customer_id: str) -> tuple[lc.Event, ...]:
            out = super().history(customer_id)
            a_read.set()
            b_settled.wait(timeout=5)  # B marks its send meanwhile
            return out

    class Sending(MemoryChannel):
        def send(self, message: Message, *, idempotency_key: str) -> Any:
            b_sending.set()
            a_read.wait(timeout=5)  # A claims and reads meanwhile
            return super().send(message, idempotency_key=idempotency_key)

    sent: list[str] = []
    a_channel, b_channel = MemoryChannel("sms"), Sending("sms")

    def a() -> None:
        b_sending.wait(timeout=5)
        store = Reading(path)
        try:
            sent.extend(dispatch(store, {"sms": a_channel}, capped, now, worker="a").sent)
        finally:
            a_read.set()
            store.close()

    def b() -> None:
        store = SQLiteStore(path)
        try:
            sent.extend(dispatch(store, {"sms": b_channel}, capped, now, worker="b").sent)
        finally:
            b_settled.set()
            store.close()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(sent) == 1  # the cap allows one marketing message in two days
    assert len(a_channel.sent) + len(b_channel.sent) == 1


class _Confident:
    """A fitted model that finds every buyer alive and predicts no value."""

    def p_alive(self, frequency: float, recency: float, T: float) -> float:
        return 0.95


class _Doubtful:
    def p_alive(self, frequency: float, recency: float, T: float) -> float:
        return 0.9 if T < 100 else 0.3


def _lapsing() -> list[lc.Event]:
    orders = [
        lc.OrderPaid(
            customer_id="c1",
            order_id=f"o{i}",
            amount=Decimal("80.00"),
            currency="CNY",
            at=_at(1, 12) + timedelta(days=10 * i),
        )
        for i in range(3)
    ]
    return [_customer(), *orders]


def test_with_a_fitted_model_the_planner_reads_the_status_assess_reports() -> None:
    now = _at(1, 12) + timedelta(days=41)  # 21 days after the last order: at risk by rhythm
    plain = _shop(*_lapsing(), now=now)
    assert plain.assess("c1").status is lc.Status.AT_RISK
    assert any(f.rule == "win_back" for f in plain.plan().due)
    fitted = _shop(*_lapsing(), now=now)
    fitted.model = _Confident()
    assert fitted.assess("c1").status is lc.Status.ACTIVE
    plan = fitted.plan(horizon=timedelta(days=60))
    assert not [f for f in (*plan.due, *(h.follow_up for h in plan.held)) if "win_back" in f.rule]


def test_a_model_that_finds_the_customer_at_risk_sends_the_win_back() -> None:
    now = _at(1, 12) + timedelta(days=101)
    shop = _shop(*_lapsing(), now=now)
    shop.model = _Doubtful()
    assert shop.assess("c1").status is lc.Status.AT_RISK
    (f,) = [f for f in shop.plan().due if f.rule == "win_back"]
    # P(alive) fell below the threshold on the day T reached 100: the win-back is due then.
    assert f.due_at == _at(1, 10) + timedelta(days=100)


# -- dispatch without re-planning the world ---------------------------------------------------


def test_dispatch_plans_only_customers_whose_events_changed_or_whose_time_came() -> None:
    shop = _shop(
        *[_customer(f"c{i}") for i in range(5)],
        *_shipped(_at(2, 10), "c0"),
        now=_at(2, 10, 5),
    )
    first = shop.dispatch()
    assert first.planned == 5
    assert first.sent == ("c0:shipping_notice:o1-c0",)
    again = shop.dispatch(_at(2, 10, 6))
    assert (again.planned, again.results) == (1, ())  # c0: its history gained the send
    assert shop.dispatch(_at(2, 10, 7)).planned == 0
    shop.record(_shipped(_at(2, 10, 8), "c3"))
    later = shop.dispatch(_at(2, 10, 9))
    assert (later.planned, later.sent) == (1, ("c3:shipping_notice:o1-c3",))
    # Days pass: every customer is looked at again once their next midnight comes.
    assert shop.dispatch(_at(3, 0, 1)).planned == 5


def test_a_changed_policy_plans_everyone_again() -> None:
    shop = _shop(*[_customer(f"c{i}") for i in range(3)], now=_at(2, 10))
    assert shop.dispatch().planned == 3
    assert shop.dispatch().planned == 0
    shop.policy = attrs.evolve(shop.policy, timezone="Europe/Berlin")
    assert shop.dispatch().planned == 3


def test_dispatch_plans_what_the_plan_shows() -> None:
    events = [_customer(f"c{i}") for i in range(4)]
    events += _shipped(_at(2, 10), "c1") + _shipped(_at(2, 10), "c2")
    shop = _shop(*events, now=_at(2, 10, 5))
    planned = {f.key for f in shop.plan().due}
    assert set(shop.dispatch().sent) == planned


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_an_entry_planned_for_a_rule_that_moved_later_waits(store: str, tmp_path: Path) -> None:
    placed = lc.OrderPlaced(
        customer_id="c1", order_id="o9", amount=Decimal("50.00"), currency="CNY", at=_at(2, 10)
    )
    backing = MemoryStore() if store == "memory" else SQLiteStore(tmp_path / "s.db")
    backing.append([_customer(), placed])
    (due,) = lc.plan_customer([_customer(), placed], POLICY, _at(2, 11)).due
    early = attrs.evolve(to_outbox(due), due_at=_at(2, 10, 30), next_attempt_at=_at(2, 10, 30))
    backing.append([], outbox=[early])
    (r,) = dispatch(backing, {"sms": MemoryChannel("sms")}, POLICY, _at(2, 10, 30)).results
    assert (r.outcome, r.reason.code, r.next_attempt_at) == (
        DispatchOutcome.DEFERRED,
        "dispatch.not_due",
        _at(2, 11),
    )
    backing.close()


def test_an_erased_customer_gets_no_owner_task_either() -> None:
    shop = _shop(_customer(), *_shipped(_at(2, 10)), now=_at(2, 10, 5))
    shop.erase("c1", _at(2, 10, 1))
    plan = shop.plan()
    assert plan.due == ()
    assert all(h.hold is Hold.DO_NOT_CONTACT for h in plan.held if h.hold is not Hold.EXPIRED)


def test_email_subjects_come_from_the_template() -> None:
    email = MemoryChannel("email")
    shop = _shop(_customer(channel="email"), *_shipped(_at(2, 10)), now=_at(2, 10, 5), email=email)
    assert shop.dispatch().sent == ("c1:shipping_notice:o1",)
    (m,) = email.sent
    assert m.subject == "Order o1 has shipped"
    assert m.text.startswith("Hi Li")


def test_times_are_utc_in_the_outbox(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    shop = lc.Lifecycle(store=store, policy=POLICY, clock=lc.FixedClock(_at(2, 20, 50)))
    shop.record([_customer(), *_shipped(_at(2, 20, 50))])
    shop.dispatch(limit=0)
    shop.dispatch(_at(2, 22))
    entry = store.outbox_entry("c1:shipping_notice:o1")
    assert entry is not None
    assert entry.next_attempt_at == _at(3, 9).astimezone(UTC)
    shop.close()


def test_the_customer_record_is_read_only() -> None:
    events = [_customer(), *_shipped(_at(2, 10))]
    record = lc.CustomerRecord("c1", events, POLICY, _at(2, 11))
    with pytest.raises(AttributeError, match="read-only"):
        record.now = _at(3, 1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        record.orders["o2"] = record.orders["o1"]  # type: ignore[index]
    assert record.orders["o1"].shipped is not None
    assert record.stage is lc.Stage.FIRST_PURCHASE  # derived on first use, then kept
    assert record.profile.name == "Li"


# -- planned entries, clocks, the planning index ---------------------------------------------


def _placed(at: datetime) -> lc.OrderPlaced:
    return lc.OrderPlaced(
        customer_id="c1", order_id="o9", amount=Decimal("50.00"), currency="CNY", at=at
    )


def test_a_planned_entry_whose_rule_left_the_policy_is_cancelled() -> None:
    store = MemoryStore()
    events = [_customer(), _placed(_at(2, 10))]
    store.append(events)
    (due,) = lc.cadence.planner.plan_customer(events, POLICY, _at(2, 11)).due
    store.append([], outbox=[to_outbox(due)])
    rules = tuple(r for r in POLICY.cadence.rules if r.id != "payment_reminder")
    without = attrs.evolve(POLICY, cadence=attrs.evolve(POLICY.cadence, rules=rules))
    (r,) = dispatch(store, {"sms": MemoryChannel("sms")}, without, _at(2, 11)).results
    assert (r.outcome, r.reason.code) == (DispatchOutcome.SUPPRESSED, "dispatch.rule_gone")


def test_a_hosts_own_entry_may_reuse_a_rule_id() -> None:
    store = MemoryStore()
    store.append([_customer()])
    store.append(
        [],
        outbox=[
            OutboxEntry(
                key="host-1",
                customer_id="c1",
                channel="sms",
                due_at=_at(2, 10),
                rule="shipping_notice",
                purpose="transactional",
                text_en="Your parcel is on its way.",
            )
        ],
    )
    assert dispatch(store, {"sms": MemoryChannel("sms")}, POLICY, _at(2, 10)).sent == ("host-1",)


def test_a_dispatcher_whose_clock_runs_ahead_cannot_open_a_gap_in_the_caps() -> None:
    store = MemoryStore()
    store.append([_customer()])
    store.append(
        [],
        outbox=[
            OutboxEntry(
                key=f"c1:promo:{n}",
                customer_id="c1",
                channel="sms",
                due_at=_at(2, 9, 59),
                purpose="marketing",
                text_en="Sale. Reply STOP to opt out.",
            )
            for n in (1, 2)
        ],
    )
    sms = MemoryChannel("sms")
    ahead = dispatch(store, {"sms": sms}, POLICY, _at(2, 10, 0, 2), worker="a", limit=1)
    assert len(ahead.sent) == 1
    (r,) = dispatch(store, {"sms": sms}, POLICY, _at(2, 10, 0, 1), worker="b").results
    assert (r.outcome, r.reason.code) == (DispatchOutcome.DEFERRED, "cadence.min_gap")
    assert len(sms.sent) == 1


def test_a_possibly_sent_message_cancelled_later_is_reported_in_doubt() -> None:
    store = MemoryStore()
    store.append([_customer()])
    entry = OutboxEntry(
        key="c1:promo:1",
        customer_id="c1",
        channel="sms",
        due_at=_at(2, 10),
        purpose="marketing",
        text_en="Sale. Reply STOP to opt out.",
    )
    store.append([], outbox=[entry])
    store.claim(_at(2, 10), worker="dead", lease=timedelta(minutes=5))  # sent, then died
    store.append(
        [
            lc.ConsentChanged(
                customer_id="c1",
                at=_at(2, 10, 1),
                channel="sms",
                purpose="marketing",
                granted=False,
            )
        ]
    )
    (r,) = dispatch(store, {"sms": MemoryChannel("sms")}, POLICY, _at(2, 10, 6)).results
    assert (r.outcome, r.doubt) == (DispatchOutcome.SUPPRESSED, True)
    assert [e.key for e in in_doubt(store)] == ["c1:promo:1"]


def test_a_follow_up_late_on_the_25_hour_day_is_not_lost() -> None:
    ny = "America/New_York"
    rules = tuple(
        attrs.evolve(r, send_at=time(23, 30)) if r.id == "birthday" else r
        for r in lc.Policy().cadence.rules
    )
    contact = ContactPolicy(quiet=QuietHours(start="00:00", end="00:00"))
    policy = lc.Policy(
        timezone=ny, cadence=attrs.evolve(lc.Policy().cadence, rules=rules, contact=contact)
    )
    point = lc.ContactPoint(channel="sms", address="+15555550100", consent=set(lc.Purpose))
    start = datetime(2026, 10, 31, 12, tzinfo=UTC)
    sms = MemoryChannel("sms")
    shop = lc.Lifecycle.in_memory(policy=policy, clock=lc.FixedClock(start), channels={"sms": sms})
    shop.record(
        lc.CustomerRegistered(
            customer_id="c1",
            at=start - timedelta(days=30),
            profile=lc.Profile(
                timezone=ny, birthday=lc.Birthday(month=11, day=1), contacts=(point,)
            ),
        )
    )
    t = start
    while t < start + timedelta(days=3):
        shop.dispatch(t)
        t += timedelta(minutes=15)
    assert [m.key for m in sms.sent] == ["c1:birthday:2026"]


class _NoIndex:
    """A store without the planning index: the facade plans everyone on every dispatch."""

    def __init__(self) -> None:
        self._store = MemoryStore()

    def __getattr__(self, name: str) -> Any:
        if name in ("planning_due", "planned", "plan_fingerprint", "replan_all"):
            raise AttributeError(name)
        return getattr(self._store, name)


def test_dispatch_sends_the_same_with_and_without_the_planning_index() -> None:
    start = _at(8, 8)
    sale = lc.cadence.Campaign(
        id="spring_sale",
        template="campaign",
        purpose="marketing",
        channels=("sms",),
        priority=10,
        name_en="Spring sale",
        name_zh="春季促销",
        start=start + timedelta(hours=1),
        end=start + timedelta(days=6),
    )
    policy = attrs.evolve(
        POLICY, cadence=attrs.evolve(POLICY.cadence, rules=(*POLICY.cadence.rules, sale))
    )
    birthday = attrs.evolve(
        _customer(), profile=attrs.evolve(_customer().profile, birthday=lc.Birthday(month=3, day=8))
    )
    sent = []
    for store in (MemoryStore(), _NoIndex()):
        sms = MemoryChannel("sms")
        shop = lc.Lifecycle(
            store=store, policy=policy, clock=lc.FixedClock(start), channels={"sms": sms}
        )  # type: ignore[arg-type]
        shop.record(birthday)
        t = start
        while t < start + timedelta(days=3):
            shop.dispatch(t)
            t += timedelta(minutes=30)
        sent.append([m.key for m in sms.sent])
    assert sent[0] == sent[1]
    assert sent[0]


def test_the_planning_fingerprint_is_the_same_in_every_process() -> None:
    code = (
        "import lifecycle as lc; "
        "print(lc.Lifecycle.in_memory(policy=lc.Policy(timezone='Asia/Shanghai'))._fingerprint())"
    )
    prints = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in (1, 2, 3)
    }
    assert len(prints) == 1
