"""The Lifecycle facade: recording, idempotency, bad input that changes nothing, queries."""

from __future__ import annotations

import pathlib
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

import lifecycle as lc
from builders import POLICY, TZ, History, day
from lifecycle import Stage, Status


def shop(at: float = 1000) -> lc.Lifecycle:
    return lc.Lifecycle.in_memory(policy=POLICY, clock=lc.FixedClock(day(at)))


def dump(s: lc.Lifecycle) -> list[tuple[str, tuple[lc.Event, ...]]]:
    return [(cid, s.store.history(cid)) for cid in s.store.customer_ids()]


def test_record_then_assess() -> None:
    s = shop(20)
    result = s.record(History().orders(0, 10).events)
    assert result.recorded == 2
    assert result.customers == ("c1",)
    a = s.assess("c1")
    assert a.stage is Stage.REPEAT
    assert a.status is Status.ACTIVE
    assert a.as_of == day(20)
    assert a.reasons[0].code == "stage.repeat"


def test_assess_at_a_past_instant() -> None:
    s = shop(20)
    s.record(History().orders(0, 10).events)
    assert s.assess("c1", at=day(5)).stage is Stage.FIRST_PURCHASE


def test_assess_refuses_a_naive_instant() -> None:
    s = shop()
    s.record(History().orders(0).events)
    with pytest.raises(lc.InvalidEvent, match="'at'"):
        s.assess("c1", at=datetime(2025, 1, 1))  # noqa: DTZ001


def test_unknown_customer_is_not_found() -> None:
    with pytest.raises(lc.NotFound):
        shop().assess("nobody")
    with pytest.raises(LookupError):
        shop().history("nobody")


def test_recording_the_same_event_twice_changes_nothing() -> None:
    s = shop()
    events = History().orders(0, 10).nps(11, 10).events
    s.record(events)
    before = dump(s)
    again = s.record(events)
    assert again.recorded == 0
    assert again.duplicates == 3
    assert dump(s) == before


def test_the_same_fact_without_an_id_is_recorded_once() -> None:
    s = shop()
    for _ in range(2):
        s.record(
            lc.OrderPaid(customer_id="c1", at=day(0), order_id="o1", amount="10", currency="CNY")
        )
    assert len(s.history("c1")) == 1


def test_a_different_event_under_a_used_id_is_refused_and_changes_nothing() -> None:
    s = shop()
    s.record(lc.OrderPaid(customer_id="c1", at=day(0), order_id="o1", amount="10", currency="CNY"))
    before = dump(s)
    clash = lc.OrderPaid(
        customer_id="c1",
        at=day(0),
        order_id="o1",
        amount="11",
        currency="CNY",
        event_id="order_paid:o1",
    )
    with pytest.raises(lc.ConflictingEvent) as info:
        s.record(History("c2").orders(0).events, clash)
    assert info.value.event_id == "order_paid:o1"
    assert isinstance(info.value, lc.InvalidEvent)
    assert dump(s) == before


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_an_id_taken_by_another_customers_event_is_refused(
    backend: str, tmp_path: pathlib.Path
) -> None:
    clock = lc.FixedClock(day(100))
    s = (
        lc.Lifecycle.in_memory(policy=POLICY, clock=clock)
        if backend == "memory"
        else lc.Lifecycle.open(tmp_path / "shop.db", policy=POLICY, clock=clock)
    )
    s.record(lc.Engaged(customer_id="c1", at=day(0), kind="chat", event_id="x"))
    before = dump(s)
    other = lc.Engaged(customer_id="c2", at=day(1), kind="chat", event_id="x")
    with pytest.raises(lc.ConflictingEvent):
        s.record(History("c2").orders(0).events, other)
    assert dump(s) == before
    s.close()


def test_a_conflict_inside_one_batch_is_refused() -> None:
    a = lc.Engaged(customer_id="c1", at=day(0), kind="chat", event_id="x")
    b = lc.Engaged(customer_id="c1", at=day(1), kind="chat", event_id="x")
    s = shop()
    with pytest.raises(lc.ConflictingEvent):
        s.record(a, b)
    assert dump(s) == []


def test_a_refund_larger_than_the_payment_is_refused_and_changes_nothing() -> None:
    s = shop()
    s.record(History().orders(0).events)
    before = dump(s)
    with pytest.raises(lc.InvalidEvent, match=r"more than the 100\.00 paid") as info:
        s.record(History("c2").orders(0).events, History().refund("c1-o1", 1, "100.01").events)
    assert info.value.field == "amount"
    assert dump(s) == before


def test_refunds_that_together_exceed_the_payment_are_refused() -> None:
    s = shop()
    s.record(History().orders(0).refund("c1-o1", 1, "60").events)
    with pytest.raises(lc.InvalidEvent):
        s.record(History().refund("c1-o1", 2, "41").events)
    s.record(History().refund("c1-o1", 2, "40").events)
    assert s.assess("c1").stage is Stage.PROSPECT


def test_a_refund_before_its_payment_is_checked_when_the_payment_arrives() -> None:
    s = shop()
    s.record(History().refund("o1", 1, "150").events)
    with pytest.raises(lc.InvalidEvent, match="more than"):
        s.record(History().paid("o1", 0, "100").events)
    assert len(s.history("c1")) == 1


def test_a_refund_in_another_currency_is_refused() -> None:
    s = shop()
    s.record(History().orders(0).events)
    with pytest.raises(lc.InvalidEvent, match="USD"):
        s.record(
            lc.OrderRefunded(
                customer_id="c1", at=day(1), order_id="c1-o1", amount="1", currency="USD"
            )
        )


def test_a_second_payment_of_an_order_is_refused() -> None:
    s = shop()
    s.record(History().paid("o1", 0).events)
    with pytest.raises(lc.InvalidEvent, match="already paid"):
        s.record(
            lc.OrderPaid(
                customer_id="c1",
                at=day(1),
                order_id="o1",
                amount="5",
                currency="CNY",
                event_id="pay-2",
            )
        )


def test_record_refuses_what_is_not_an_event() -> None:
    s = shop()
    for wrong in ("not an event", 5, [5]):
        with pytest.raises(lc.InvalidEvent, match="expected an Event"):
            s.record(History().orders(0).events, wrong)  # type: ignore[arg-type]
    assert dump(s) == []


def test_a_referrer_becomes_strategic_when_the_referred_customer_buys() -> None:
    s = shop(100)
    s.record(History("a").orders(0).refer("b", 1).events)
    assert s.customers(stage=Stage.STRATEGIC) == []
    s.record(History("b").orders(50).events)
    assert s.assess("a").stage is Stage.STRATEGIC
    assert s.customers(stage=Stage.STRATEGIC) == ["a"]
    s.record(History("b").refund("b-o1", 60).events)
    assert s.assess("a").stage is Stage.FIRST_PURCHASE
    assert s.customers(stage=Stage.STRATEGIC) == []


def test_stage_history_through_the_facade_names_the_order() -> None:
    s = shop(100)
    s.record(History().lead(-3).orders(0, 10).events)
    changes = s.stage_history("c1")
    assert [c.stage for c in changes] == [Stage.SUSPECT, Stage.FIRST_PURCHASE, Stage.REPEAT]
    assert "c1-o2" in changes[-1].evidence[-1]


def test_customers_filters_by_stage_and_status() -> None:
    s = shop(100)
    s.record(History("a").orders(0, 10).events)  # repeat, at risk after 180 idle days
    s.record(History("b").orders(95).events)  # first purchase, active
    s.record(History("c").lead(0).events)  # suspect, no status
    assert s.customers() == ["a", "b", "c"]
    assert s.customers(stage=Stage.REPEAT) == ["a"]
    assert s.customers(stage=[Stage.REPEAT, Stage.FIRST_PURCHASE]) == ["a", "b"]
    assert s.customers(status=Status.ACTIVE) == ["a", "b"]
    assert s.customers(stage=Stage.SUSPECT, status=Status.ACTIVE) == []


def test_customers_follow_time_not_just_events() -> None:
    clock = lc.FixedClock(day(20))
    s = lc.Lifecycle.in_memory(policy=POLICY, clock=clock)
    s.record(History("a").orders(0, 10).events)
    assert s.customers(status=Status.ACTIVE) == ["a"]
    clock.advance(timedelta(days=200))
    assert s.customers(status=Status.ACTIVE) == []
    assert s.customers(status=Status.AT_RISK) == ["a"]
    assert s.customers(status=Status.ACTIVE, at=day(20)) == ["a"]


def test_snapshots_record_when_they_stop_holding() -> None:
    s = shop(20)
    s.record(History("a").orders(0, 10).events)
    snap = s.store.snapshot("a")
    assert snap is not None
    assert snap.version == 2
    assert snap.valid_until == datetime(2025, 7, 11, tzinfo=TZ)  # 181 days after 2025-01-11


def test_customers_agree_with_assess_for_every_customer() -> None:
    s = shop(400)
    s.record(History("a").orders(0, 90, 180).nps(200, 10).events)
    s.record(History("b").orders(0, 90, 180).complaint("k", 390).events)
    s.record(History("c").lead(0).partner("agent", 5).events)
    s.record(History("d").orders(0, 300).events)
    for stage in Stage:
        expected = [c for c in ["a", "b", "c", "d"] if s.assess(c).stage is stage]
        assert s.customers(stage=stage) == expected


def test_the_facade_agrees_with_the_pure_function() -> None:
    h = History().orders(0, 90, 180).nps(181, 9).refund("c1-o1", 5, "10")
    s = shop(200)
    s.record(h.events)
    assert s.assess("c1") == lc.assess("c1", h.events, POLICY, day(200))


def test_amounts_keep_their_decimal_places() -> None:
    s = shop()
    s.record(History().paid("o1", 0, "19.90").events)
    paid = s.history("c1")[0]
    assert isinstance(paid, lc.OrderPaid)
    assert paid.amount == Decimal("19.90")
    assert str(paid.amount) == "19.90"


def test_close_releases_the_store() -> None:
    with shop() as s:
        s.record(History().orders(0).events)
    with pytest.raises(lc.StoreError):
        s.history("c1")
