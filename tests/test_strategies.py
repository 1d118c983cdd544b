"""The shipped hypothesis strategies: every value valid, the awkward cases reached, and every
history accepted by the facade."""

from __future__ import annotations

import calendar
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import lifecycle as lc
from lifecycle._ledger import Ledger, fold
from lifecycle.testing.strategies import (
    DEFAULT_ZONES,
    aware_datetimes,
    birthdays,
    events,
    histories,
    profiles,
)

T = TypeVar("T")
SLOW = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
START = datetime(2023, 1, 1, tzinfo=UTC)


def sample(strategy: st.SearchStrategy[T], n: int) -> list[T]:
    """``n`` draws, derandomized and without shrinking.

    Hypothesis still varies the draws a little with the modules loaded, so the conditions
    checked on a sample are each met by at least ~8% of draws: 200 draws always reach them.
    """
    out: list[T] = []

    @settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: T) -> None:
        out.append(value)

    collect()
    return out


def reach(
    values: list[T], condition: Callable[[T], bool], strategy: st.SearchStrategy[T] | None = None
) -> T:
    """The first value satisfying ``condition``; fails the test if there is none.

    With ``strategy``, a sample that happens to miss is followed by a search of up to 2,000
    draws: the sample's draws vary with what else the test run has loaded.
    """
    found = [v for v in values if condition(v)]
    if not found and strategy is not None:
        return find(
            strategy,
            condition,
            settings=settings(
                max_examples=2000,
                database=None,
                deadline=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            ),
        )
    assert found, "the strategy never drew such a value"
    return found[0]


def in_gap(value: datetime) -> bool:
    back = value.astimezone(UTC).astimezone(value.tzinfo)
    return back.replace(tzinfo=None) != value.replace(tzinfo=None)


def in_fold(value: datetime) -> bool:
    return not in_gap(value) and value.utcoffset() != value.replace(fold=1 - value.fold).utcoffset()


# -- aware datetimes ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def datetimes() -> list[datetime]:
    return sample(aware_datetimes(), 300)


LO = datetime(2020, 1, 1, tzinfo=UTC)
HI = datetime(2022, 12, 31, 23, 59, 59, tzinfo=UTC)


@settings(max_examples=300, deadline=None)
@given(aware_datetimes(min_value=LO, max_value=HI))
def test_aware_datetimes_are_aware_within_the_bounds_and_in_a_default_zone(at: datetime) -> None:
    assert at.utcoffset() is not None
    assert LO <= at.astimezone(UTC) <= HI
    assert isinstance(at.tzinfo, ZoneInfo)
    assert at.tzinfo.key in DEFAULT_ZONES
    lc.Engaged(customer_id="c1", at=at, kind="chat")  # accepted as an event time


@pytest.mark.parametrize(
    ("name", "condition"),
    [
        ("a DST gap", in_gap),
        ("a DST fold read as the first time", lambda d: in_fold(d) and d.fold == 0),
        ("a DST fold read as the second time", lambda d: in_fold(d) and d.fold == 1),
        (
            "Lord Howe's half-hour fold",
            lambda d: in_fold(d) and str(d.tzinfo) == "Australia/Lord_Howe",
        ),
        ("29 February", lambda d: (d.month, d.day) == (2, 29)),
        ("a month's last day", lambda d: d.day == calendar.monthrange(d.year, d.month)[1]),
        ("the last microsecond of a day", lambda d: d.time() == datetime.max.time()),
        ("UTC", lambda d: str(d.tzinfo) == "UTC"),
    ],
)
def test_aware_datetimes_reach_the_awkward_cases(
    name: str, condition: Callable[[datetime], bool], datetimes: list[datetime]
) -> None:
    assert condition(reach(datetimes, condition)), name


@settings(max_examples=50, deadline=None)
@given(
    aware_datetimes(
        min_value=LO,
        max_value=HI,
        zones=[timezone(timedelta(hours=5, minutes=45)), "Asia/Shanghai"],
    )
)
def test_aware_datetimes_take_tzinfo_objects_and_names(at: datetime) -> None:
    # China has kept +08:00 all year since 1992 (it had DST from 1986 to 1991).
    assert at.utcoffset() in (timedelta(hours=5, minutes=45), timedelta(hours=8))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_value": datetime(2020, 1, 1)},  # noqa: DTZ001  # naive on purpose
        {"max_value": datetime(2020, 1, 1)},  # noqa: DTZ001  # naive on purpose
        {"min_value": HI, "max_value": LO},
        {"zones": []},
        {"zones": "Europe/Berlin"},
        {"zones": ["Mars/Olympus"]},
    ],
)
def test_aware_datetimes_refuse_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        aware_datetimes(**kwargs).example()


def test_an_instant_window_of_one_point_gives_that_instant() -> None:
    @settings(max_examples=20, deadline=None)
    @given(aware_datetimes(min_value=LO, max_value=LO))
    def check(at: datetime) -> None:
        assert at.astimezone(UTC) == LO

    check()


# -- values -------------------------------------------------------------------------------------


def test_birthdays_reach_29_february_with_and_without_a_year() -> None:
    drawn = sample(birthdays(), 200)
    reach(drawn, lambda b: (b.month, b.day, b.year) == (2, 29, None))
    reach(drawn, lambda b: (b.month, b.day) == (2, 29) and b.year is not None)


def test_profiles_reach_empty_and_full() -> None:
    drawn = sample(profiles(), 80)
    reach(drawn, lambda p: p == lc.Profile())
    reach(drawn, lambda p: None not in (p.name, p.birthday, p.timezone) and len(p.contacts) > 1)


def test_events_reach_every_event_class() -> None:
    # The instant and the customer are fixed: only the choice of class matters here.
    seen = {type(e) for e in sample(events(customer_id="c1", at=st.just(START)), 400)}
    assert {c.__name__ for c in lc.EVENT_TYPES.values()} - {c.__name__ for c in seen} == set()


@settings(max_examples=50, deadline=None)
@given(events(customer_id="c9", at=st.just(START)))
def test_events_take_a_fixed_customer_and_instant(event: lc.Event) -> None:
    assert (event.customer_id, event.at) == ("c9", START)


def test_events_refuse_a_class_that_is_not_an_event_type() -> None:
    with pytest.raises(InvalidArgument):
        events(classes=[lc.Profile]).example()  # type: ignore[list-item]


# -- histories ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def drawn() -> list[list[lc.Event]]:
    return sample(histories(), 200)


def check_coherent(history: list[lc.Event], customer_id: str = "c1") -> None:
    assert history
    assert {e.customer_id for e in history} == {customer_id}
    ids = [e.event_id for e in history]
    assert len(ids) == len(set(ids))
    end = START + timedelta(days=3 * 365 + 1)
    assert all(START <= e.at.astimezone(UTC) <= end for e in history)
    paid = Counter(e.order_id for e in history if isinstance(e, lc.OrderPaid))
    assert max(paid.values(), default=0) <= 1
    payments = {e.order_id: e for e in history if isinstance(e, lc.OrderPaid)}
    refunded: dict[str, Decimal] = {}
    for e in history:
        if isinstance(e, lc.OrderRefunded):
            assert e.order_id in payments
            assert e.currency == payments[e.order_id].currency
            assert e.at >= payments[e.order_id].at
            refunded[e.order_id] = refunded.get(e.order_id, Decimal(0)) + e.amount
    for order_id, total in refunded.items():
        assert total <= payments[order_id].amount
    for e in history:
        if isinstance(e, lc.OrderPaid | lc.OrderRefunded | lc.OrderPlaced):
            assert e.amount == e.amount.quantize(Decimal("0.01"))
    at = [e.at.astimezone(UTC) for e in history]
    assert at == sorted(at)


@SLOW
@given(histories())
def test_a_history_is_coherent_and_always_recorded_whole(history: list[lc.Event]) -> None:
    check_coherent(history)
    shop = lc.Lifecycle.in_memory(clock=lc.FixedClock(history[-1].at))
    result = shop.record(history)
    assert result.recorded == len(history)
    assert shop.record(history).recorded == 0
    assert shop.assess("c1").customer_id == "c1"


@SLOW
@given(histories("c1", id_prefix="c1-"), histories("c2", id_prefix="c2-"))
def test_histories_of_two_customers_with_their_own_prefixes_share_a_store(
    first: list[lc.Event], second: list[lc.Event]
) -> None:
    shop = lc.Lifecycle.in_memory(clock=lc.FixedClock(START + timedelta(days=2000)))
    assert shop.record(first, second).recorded == len(first) + len(second)


@pytest.mark.parametrize(
    ("name", "condition"),
    [
        (
            "a long-term buyer",
            lambda h, led: led.valid_count >= 3 and (led.last_day - led.first_day).days >= 180,
        ),
        (
            "a lapsed buyer",
            lambda h, led: led.valid_count >= 1 and (h[-1].at.date() - led.last_day).days > 365,
        ),
        ("an undone order", lambda h, led: bool(led.undone_orders())),
        ("a partly refunded order", lambda h, led: bool(led.partly_refunded_orders())),
        ("two orders on one day", lambda h, led: any(n > 1 for n in led.valid_days.values())),
        ("a promoter", lambda h, led: led.latest_nps is not None and led.latest_nps.score >= 9),
        ("an open complaint", lambda h, led: bool(led.open_complaints)),
        ("a partner", lambda h, led: bool(led.partnerships)),
        ("an ended partnership", lambda h, led: bool(led.ended_partnerships)),
        ("a referral", lambda h, led: bool(led.referrals)),
        ("a time zone in the profile", lambda h, led: led.profile.timezone is not None),
    ],
)
def test_histories_reach_every_kind_of_evidence(
    name: str, condition: Callable[[list[lc.Event], Ledger], bool], drawn: list[list[lc.Event]]
) -> None:
    reach(drawn, lambda h: condition(h, fold(h, lc.Policy(), h[-1].at)), histories())


@pytest.mark.parametrize("stage", [s for s in lc.Stage if s is not lc.Stage.STRATEGIC])
def test_histories_reach_every_stage_a_history_alone_can_prove(
    stage: lc.Stage, drawn: list[list[lc.Event]]
) -> None:
    # STRATEGIC also needs the referred customers' own orders, which are not in one history.
    reach(drawn, lambda h: lc.assess_stage(h, lc.Policy(), h[-1].at).stage is stage, histories())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": datetime(2023, 1, 1)},  # noqa: DTZ001  # naive on purpose
        {"days": 0},
        {"days": True},
        {"customer_id": ""},
        {"zones": []},
    ],
)
def test_histories_refuse_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        histories(**kwargs).example()
