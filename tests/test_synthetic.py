"""The synthetic shop: deterministic, valid, and covering every stage, status and event kind."""

from __future__ import annotations

import collections
from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

import pytest

import lifecycle as lc
from lifecycle.datasets import SyntheticShop, synthetic_shop


@cache
def recorded(customers: int, seed: int) -> tuple[SyntheticShop, lc.Lifecycle]:
    data = synthetic_shop(customers, seed=seed)
    shop = lc.Lifecycle.in_memory(
        clock=lc.FixedClock(data.as_of), policy=lc.Policy(timezone=data.timezone)
    )
    shop.record(data.events)
    return data, shop


def test_the_same_arguments_give_the_same_shop() -> None:
    assert synthetic_shop(200, seed=7).events == synthetic_shop(200, seed=7).events


def test_another_seed_gives_another_shop() -> None:
    assert synthetic_shop(200, seed=1).events != synthetic_shop(200, seed=2).events


@pytest.mark.parametrize("seed", range(5))
def test_a_small_shop_has_every_stage_and_status(seed: int) -> None:
    data, shop = recorded(300, seed)
    assessments = [shop.assess(c) for c in data.customer_ids]
    assert {a.stage for a in assessments} == set(lc.Stage)
    assert {a.status for a in assessments} == {*lc.Status, None}


def test_the_default_shop_tells_every_kind_of_story() -> None:
    data, shop = recorded(5000, 0)
    kinds = collections.Counter(type(e) for e in data.events)
    everything = {
        lc.CustomerRegistered,
        lc.LeadCaptured,
        lc.Engaged,
        lc.OrderPlaced,
        lc.OrderPaid,
        lc.OrderShipped,
        lc.OrderDelivered,
        lc.OrderCancelled,
        lc.OrderRefunded,
        lc.ReviewPosted,
        lc.FeedbackGiven,
        lc.ComplaintOpened,
        lc.ComplaintResolved,
        lc.Referred,
        lc.PartnershipSigned,
        lc.PartnershipEnded,
        lc.ConsentChanged,
    }
    assert everything <= set(kinds)
    paid = {e.order_id: e.amount for e in data.events if isinstance(e, lc.OrderPaid)}
    refunds = [e for e in data.events if isinstance(e, lc.OrderRefunded)]
    assert any(r.amount == paid[r.order_id] for r in refunds)  # full refunds
    assert any(r.amount < paid[r.order_id] for r in refunds)  # partial refunds
    opened = {e.complaint_id for e in data.events if isinstance(e, lc.ComplaintOpened)}
    resolved = {e.complaint_id for e in data.events if isinstance(e, lc.ComplaintResolved)}
    assert resolved < opened  # some complaints are still open
    shipped = {
        e.order_id: e.expected_delivery for e in data.events if isinstance(e, lc.OrderShipped)
    }
    late = [
        e
        for e in data.events
        if isinstance(e, lc.OrderDelivered)
        and (expected := shipped[e.order_id]) is not None
        and e.at > expected
    ]
    assert late
    profiles = [e.profile for e in data.events if isinstance(e, lc.CustomerRegistered)]
    zones = {p.timezone for p in profiles}
    assert {None, "America/New_York", "Europe/London", "Australia/Sydney"} <= zones
    birthdays = [p.birthday for p in profiles if p.birthday is not None]
    assert any((b.month, b.day) == (2, 29) for b in birthdays)
    assert any(b.year is None for b in birthdays)
    assert any(p.referred_by for p in profiles)
    assert any(lc.Purpose.MARKETING in p.contacts[0].consent for p in profiles)
    assert any(lc.Purpose.MARKETING not in p.contacts[0].consent for p in profiles)
    # Referrals convert: some referrers are strategic collaborators because of them.
    assert shop.customers(stage=lc.Stage.STRATEGIC)


def test_events_are_valid_sorted_unique_and_end_by_as_of() -> None:
    data, shop = recorded(300, 0)
    assert list(data.events) == sorted(data.events, key=lc.events.sort_key)
    assert len({e.event_id for e in data.events}) == len(data.events)
    assert all(e.at <= data.as_of for e in data.events)
    assert all(e.at.tzinfo is not None for e in data.events)
    assert set(shop.store.customer_ids()) == set(data.customer_ids)
    assert list(data.customer_ids) == sorted(data.customer_ids)
    # Recording again changes nothing.
    assert shop.record(data.events).recorded == 0


def test_end_and_time_zone_are_respected() -> None:
    end = datetime(2025, 3, 30, 12, tzinfo=ZoneInfo("Europe/London"))
    data = synthetic_shop(100, seed=3, end=end, years=1.0, timezone="Europe/London")
    assert data.as_of == end
    assert data.timezone == "Europe/London"
    assert min(e.at for e in data.events) >= datetime(2024, 3, 30, tzinfo=ZoneInfo("UTC"))
    assert max(e.at for e in data.events) <= end
    assert "100 customers" in repr(data)
    assert len(data) == len(data.events)


def test_personal_data_stays_out_of_the_repr() -> None:
    data = synthetic_shop(20, seed=0)
    profile = next(e for e in data.events if isinstance(e, lc.CustomerRegistered)).profile
    assert profile.name is not None
    assert profile.name not in repr(data.events)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"customers": 0}, "customers"),
        ({"customers": True}, "customers"),
        ({"years": 0}, "years"),
        ({"years": 51}, "years"),
        ({"timezone": "Mars/Olympus"}, "time zone"),
        ({"timezone": "localtime"}, "time zone"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_error(
    kwargs: dict[str, object], message: str
) -> None:
    args = {"customers": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        synthetic_shop(**args)  # type: ignore[arg-type]


def test_a_naive_end_is_refused() -> None:
    with pytest.raises(lc.InvalidEvent, match="end"):
        synthetic_shop(10, end=datetime(2026, 1, 1))  # noqa: DTZ001
