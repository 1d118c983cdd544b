"""Clocks: the fixed clock for tests refuses naive times and moves when told; the system clock
tells aware UTC."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import lifecycle as lc

AT = datetime(2026, 11, 11, 20, 5, tzinfo=ZoneInfo("Asia/Shanghai"))
BERLIN = ZoneInfo("Europe/Berlin")
NAIVE = datetime(2026, 11, 11, 20, 5)  # noqa: DTZ001  # naive on purpose: it must be refused


def test_a_fixed_clock_says_what_it_is_told() -> None:
    clock = lc.FixedClock(AT)
    assert clock.now() == AT
    assert clock.now() == clock.now()


@pytest.mark.parametrize("at", [NAIVE, "2026-11-11T20:05:00+08:00", None, AT.date()])
def test_a_fixed_clock_refuses_anything_but_an_aware_datetime(at: object) -> None:
    with pytest.raises(lc.InvalidEvent) as info:
        lc.FixedClock(at)  # type: ignore[arg-type]
    assert info.value.field == "at"


def test_setting_a_fixed_clock_moves_it() -> None:
    clock = lc.FixedClock(AT)
    later = AT + timedelta(days=400)
    clock.set(later)
    assert clock.now() == later


def test_setting_a_fixed_clock_to_a_naive_time_is_refused_and_changes_nothing() -> None:
    clock = lc.FixedClock(AT)
    with pytest.raises(lc.InvalidEvent):
        clock.set(NAIVE)
    assert clock.now() == AT


def test_advancing_a_fixed_clock_moves_it_by_the_delta() -> None:
    clock = lc.FixedClock(AT)
    clock.advance(timedelta(days=1, hours=2))
    clock.advance(timedelta(minutes=3))
    assert clock.now() == AT + timedelta(days=1, hours=2, minutes=3)
    assert clock.now().utcoffset() is not None


@pytest.mark.parametrize(
    "start",
    [
        pytest.param(datetime(2026, 6, 1, 12, tzinfo=BERLIN), id="summer"),
        pytest.param(datetime(2026, 6, 1, 12, tzinfo=UTC), id="utc"),
        pytest.param(datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN), id="autumn-fold"),
        pytest.param(datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN), id="spring-gap"),
    ],
)
def test_advancing_a_fixed_clock_moves_the_instant_by_exactly_the_delta(start: datetime) -> None:
    clock = lc.FixedClock(start)
    step = timedelta(hours=1) if start.month == 10 else timedelta(hours=2)
    clock.advance(step)
    assert clock.now().astimezone(UTC) - start.astimezone(UTC) == step


def test_the_fixed_clock_repr_shows_its_instant() -> None:
    assert repr(lc.FixedClock(AT)) == "FixedClock(2026-11-11T20:05:00+08:00)"


def test_the_system_clock_tells_aware_utc() -> None:
    now = lc.SystemClock().now()
    assert now.tzinfo is UTC
    assert now.utcoffset() == timedelta(0)


def test_the_system_clock_tells_the_real_time() -> None:
    before = time.time()  # noqa: TID251  # the test compares against the real clock on purpose
    now = lc.SystemClock().now().timestamp()
    after = time.time()  # noqa: TID251  # the test compares against the real clock on purpose
    # A datetime keeps microseconds: its timestamp may round a microsecond either way.
    assert before - 1e-6 <= now <= after + 1e-6


def test_the_system_clock_does_not_go_backwards_between_two_readings() -> None:
    clock = lc.SystemClock()
    first = clock.now()
    assert clock.now() >= first


@pytest.mark.parametrize("clock", [lc.SystemClock(), lc.FixedClock(AT)], ids=repr)
def test_both_clocks_are_clocks(clock: object) -> None:
    assert isinstance(clock, lc.Clock)
