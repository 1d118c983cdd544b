"""The shop calendar: official days off and make-up workdays (调休) from ``holidays``, owner
deadlines and owner tasks in working days, and the built-in Chinese calendar cross-checked
against independent sources."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import attrs
import pytest

import lifecycle as lc
from lifecycle import calendar as cal
from lifecycle.cadence.gate import Hold
from lifecycle.cadence.planner import plan_customer
from lifecycle.events import ComplaintOpened, CustomerRegistered, LeadCaptured, OwnerAssigned
from lifecycle.owners import ownership, sweep, workdays_after
from lifecycle.policy import OwnerPolicy

holidays = pytest.importorskip("holidays")

SH = ZoneInfo("Asia/Shanghai")
CN = cal.work_calendar("CN")


# -- official days off and make-up workdays ------------------------------------------------------


def test_china_2026_make_up_workdays_are_the_official_ones() -> None:
    # The State Council's 2026 schedule: six weekend days are worked.
    assert CN.makeup_workdays(2026) == (
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    )
    assert date(2026, 2, 14).weekday() == 5
    assert CN.is_workday(date(2026, 2, 14))  # a Saturday, worked for the Spring Festival
    assert not CN.is_workday(date(2026, 2, 15))  # a Sunday
    assert not CN.is_workday(date(2026, 2, 16))  # New Year's Eve, a Monday, off
    assert CN.is_workday(date(2026, 2, 13))


def test_the_spring_festival_break_runs_nine_days() -> None:
    off = [date(2026, 2, 14) + timedelta(days=i) for i in range(12)]
    worked = [d for d in off if CN.is_workday(d)]
    assert worked == [date(2026, 2, 14), date(2026, 2, 24), date(2026, 2, 25)]
    names = {h.day: h for h in CN.days_off(2026)}
    assert names[date(2026, 2, 17)].name_zh == "春节"
    assert names[date(2026, 2, 17)].calendar == "CN"
    assert date(2026, 2, 20) in names  # a weekday given off for the 14th


def test_working_days_count_forward_and_back_across_holidays() -> None:
    friday = date(2026, 2, 13)
    assert CN.next_workday(date(2026, 2, 15)) == date(2026, 2, 24)
    assert CN.next_workday(friday) == friday
    assert CN.add_workdays(friday, 0) == friday
    assert CN.add_workdays(friday, 1) == date(2026, 2, 14)
    assert CN.add_workdays(friday, 2) == date(2026, 2, 24)
    assert CN.add_workdays(date(2026, 2, 24), -2) == friday
    # From a working day, n working days on and n back is where it started.
    start = CN.next_workday(date(2026, 1, 1))
    assert start == date(2026, 1, 4)  # a Sunday worked for the New Year break
    for n in range(0, 300, 7):
        assert CN.add_workdays(CN.add_workdays(start, n), -n) == start


def test_other_countries_by_their_own_calendars() -> None:
    us = cal.work_calendar("us")
    assert us.country == "US"
    assert not us.is_workday(date(2026, 12, 25))
    assert us.add_workdays(date(2026, 12, 24), 1) == date(2026, 12, 28)
    assert cal.work_calendar("DE").makeup_workdays(2026) == ()
    with pytest.raises(ValueError, match="unknown country"):
        cal.work_calendar("XX")


def test_the_owner_policy_names_its_calendar_and_refuses_an_unknown_one() -> None:
    policy = OwnerPolicy(workdays="CN", workday_zone="Asia/Shanghai")
    assert policy.calendar() == CN
    assert OwnerPolicy().calendar() is None
    with pytest.raises(lc.PolicyError) as info:
        OwnerPolicy(workdays="XX")
    assert info.value.key == "owners.workdays"
    with pytest.raises(lc.PolicyError):
        OwnerPolicy(workday_zone="Mars/Base")
    text = lc.Policy(owners=policy).to_toml()
    assert 'workdays = "CN"' in text
    assert lc.Policy.from_toml(text).owners == policy


def test_without_holidays_a_work_calendar_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "holidays", None)
    cal.work_calendar.cache_clear()
    cal._official_year.cache_clear()
    try:
        with pytest.raises(lc.MissingExtra, match=r"lifecycle\[calendar\]"):
            cal.work_calendar("CN")
        assert cal.china_holidays(2026)  # the festival days need no extra
    finally:
        cal.work_calendar.cache_clear()
        cal._official_year.cache_clear()


# -- owners count working days ------------------------------------------------------------------

WORKDAYS = OwnerPolicy(workdays="CN", workday_zone="Asia/Shanghai", follow_up_days=5)


def test_the_reclaim_deadline_counts_working_days() -> None:
    taken = datetime(2026, 2, 13, 10, tzinfo=SH)  # a Friday, before the Spring Festival
    h = [
        LeadCaptured(customer_id="c1", at=taken - timedelta(days=1), source="fair"),
        OwnerAssigned(customer_id="c1", at=taken, owner_id="ann"),
    ]
    own = ownership("c1", h, WORKDAYS, taken)
    # Saturday the 14th is worked; the 15th to the 23rd are not.
    assert own.deadline(WORKDAYS) == datetime(2026, 2, 27, 10, tzinfo=SH)
    assert own.deadline(attrs.evolve(WORKDAYS, workdays=None)) == taken + timedelta(days=5)
    assert workdays_after(taken, -1, WORKDAYS) == datetime(2026, 2, 12, 10, tzinfo=SH)
    histories = {"c1": h}
    quiet = sweep(histories, WORKDAYS, datetime(2026, 2, 23, 10, tzinfo=SH))
    assert (quiet.events, quiet.warnings) == ((), ())
    warned = sweep(histories, WORKDAYS, datetime(2026, 2, 24, 10, tzinfo=SH))
    assert [w.deadline for w in warned.warnings] == [datetime(2026, 2, 27, 10, tzinfo=SH)]
    returned = sweep(histories, WORKDAYS, datetime(2026, 2, 27, 10, tzinfo=SH))
    assert [e.owner_id for e in returned.events] == ["ann"]


# -- owner tasks wait for a working day ---------------------------------------------------------

BASE = lc.Policy(timezone="Asia/Shanghai")
TASKS = attrs.evolve(
    BASE,
    cadence=attrs.evolve(BASE.cadence, rules=(BASE.cadence.rule("complaint_answer"),)),
    owners=WORKDAYS,
)


def complaint(when: datetime) -> list[lc.Event]:
    contact = lc.ContactPoint(channel="sms", address="+8613800138000")
    return [
        CustomerRegistered(
            customer_id="c1",
            at=datetime(2025, 1, 1, tzinfo=SH),
            profile=lc.Profile(name="Li", timezone="Asia/Shanghai", contacts=(contact,)),
        ),
        ComplaintOpened(customer_id="c1", complaint_id="k1", at=when),
    ]


def test_an_owner_task_on_a_weekend_waits_for_monday_morning() -> None:
    sunday = datetime(2026, 3, 1, 14, tzinfo=SH)
    p = plan_customer(complaint(sunday), TASKS, sunday)
    [h] = p.held
    assert h.hold is Hold.DAY_OFF
    assert h.until == datetime(2026, 3, 2, 9, tzinfo=SH)  # after the customer's quiet hours
    assert h.reason.code == "cadence.day_off"
    assert "2026-03-02 09:00" in h.reason.en
    [f] = plan_customer(complaint(sunday), TASKS, datetime(2026, 3, 2, 10, tzinfo=SH)).due
    assert f.channel == "task"
    # Without a work calendar the task is due at once.
    anyday = attrs.evolve(TASKS, owners=OwnerPolicy())
    assert plan_customer(complaint(sunday), anyday, sunday).due


def test_an_owner_task_on_a_make_up_workday_is_due_and_one_in_a_long_break_expires() -> None:
    saturday = datetime(2026, 2, 14, 14, tzinfo=SH)
    assert plan_customer(complaint(saturday), TASKS, saturday).due
    eve = datetime(2026, 2, 16, 14, tzinfo=SH)
    [h] = plan_customer(complaint(eve), TASKS, eve).held
    assert h.hold is Hold.EXPIRED  # answers within 24 hours; the next working day is the 24th
    assert "not a working day" in h.reason.en


# -- the built-in Chinese calendar, cross-checked -----------------------------------------------


def test_qingming_agrees_with_the_official_holiday_in_every_year_it_is_one() -> None:
    for year in range(2008, 2100):  # an official holiday since 2008; the library ends in 2099
        official = holidays.country_holidays("CN", years=year, language="en_US")
        day = next(d for d, n in official.items() if n.startswith("Tomb-Sweeping Day"))
        assert cal.china_holidays(year)[3].day == day, year


def test_qingming_is_the_day_the_sun_reaches_15_degrees_in_beijing_time() -> None:
    ephem = pytest.importorskip("ephem")

    def solar_longitude(moment: float) -> float:
        sun = ephem.Sun()
        sun.compute(moment, epoch=moment)
        return float(math.degrees(ephem.Ecliptic(sun, epoch=moment).lon))

    for year in range(1900, 2101):
        lo, hi = float(ephem.Date(f"{year}/4/2")), float(ephem.Date(f"{year}/4/8"))
        for _ in range(40):  # bisection to well under a minute
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if solar_longitude(mid) < 15 else (lo, mid)
        instant = ephem.Date(hi).datetime().replace(tzinfo=UTC).astimezone(SH)
        near_midnight = min(instant.hour * 60 + instant.minute, 1440 - instant.hour * 60) < 5
        if not near_midnight:
            assert cal.china_holidays(year)[3].day == instant.date(), year


def new_moon_in_beijing(near: date) -> datetime:
    ephem = pytest.importorskip("ephem")
    moment = ephem.next_new_moon(ephem.Date(f"{near - timedelta(days=5):%Y/%m/%d}"))
    return ephem.Date(moment).datetime().replace(tzinfo=UTC).astimezone(SH)  # type: ignore[no-any-return]


def test_the_lunar_table_agrees_with_lunardate_but_where_an_ephemeris_says_it_is_right() -> None:
    """Every lunar month 1900-2099 starts on the day lunardate gives, but four. In those the
    new moon falls within minutes of midnight (or lunardate is a day off): an ephemeris
    decides, and the table is right, or the new moon is less than a minute from midnight."""
    lunardate = pytest.importorskip("lunardate")
    LD = lunardate.LunarDate
    checked, disagree = 0, []
    for year in range(cal.LUNAR_YEARS[0], 2100):  # lunardate's table ends with 2099
        leap = LD.leap_month_for_year(year)
        assert [m for m, is_leap, _ in cal._months(year) if is_leap] == ([leap] if leap else [])
        months = [(m, False) for m in range(1, 13)]
        if leap:
            months.insert(leap, (leap, True))
        for month, is_leap in months:
            ours = cal.lunar_to_solar(year, month, 1, leap=is_leap)
            theirs = LD(year, month, 1, is_leap).to_solar_date()
            checked += 1
            if ours == theirs:
                continue
            disagree.append((year, month))
            moon = new_moon_in_beijing(theirs)
            midnight = datetime.combine(ours, datetime.min.time(), tzinfo=SH)
            assert moon.date() == ours or abs(moon - midnight) < timedelta(minutes=1), (
                year,
                month,
                moon,
            )
        if year > cal.LUNAR_YEARS[0]:
            new_year = LD(year, 1, 1, False).to_solar_date()
            eve = [h.day for h in cal.china_holidays(year) if h.key == "spring_festival_eve"]
            assert eve == [new_year - timedelta(days=1)]
        for month, day in ((5, 5), (7, 7), (8, 15)):  # dragon boat, Qixi, mid-autumn
            festival = cal.lunar_to_solar(year, month, day)
            if (year, month) not in ((1933, 6), (1954, 11), (1978, 8), (2097, 7)):
                assert festival == LD(year, month, day, False).to_solar_date()
    assert checked > 2400
    assert disagree == [(1933, 6), (1954, 11), (1978, 8), (2097, 7)]
