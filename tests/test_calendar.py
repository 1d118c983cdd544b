"""The calendar: birthdays, the lunar calendar against the holidays library, festivals."""

from __future__ import annotations

import builtins
import sys
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lifecycle as lc
from lifecycle import calendar as cal

holidays = pytest.importorskip("holidays")
from holidays.calendars.chinese import _ChineseLunisolar  # noqa: E402

LUNISOLAR = _ChineseLunisolar()
YEARS = range(2020, 2036)


@pytest.mark.parametrize("year", YEARS)
def test_lunar_festivals_agree_with_the_holidays_library(year: int) -> None:
    for helper, (month, day) in {
        "lunar_new_year_date": (1, 1),
        "dragon_boat_date": (5, 5),
        "mid_autumn_date": (8, 15),
        "double_ninth_date": (9, 9),
        "buddha_birthday_date": (4, 8),
    }.items():
        expected, _ = getattr(LUNISOLAR, helper)(year)
        assert cal.lunar_to_solar(year, month, day) == expected, helper


@pytest.mark.parametrize("year", YEARS)
def test_china_holidays_agree_with_the_holidays_library(year: int) -> None:
    lib = holidays.country_holidays("CN", years=year)
    ours = {h.key: h.day for h in cal.china_holidays(year)}
    for key, name in {
        "spring_festival": "Chinese New Year (Spring Festival)",
        "qingming": "Tomb-Sweeping Day",
        "dragon_boat": "Dragon Boat Festival",
        "mid_autumn": "Mid-Autumn Festival",
        "national_day": "National Day",
        "labour_day": "Labor Day",
    }.items():
        assert min(d for d, n in lib.items() if name in n.split("; ")) == ours[key], key
    # New Year's Eve of the lunar calendar is the day before Spring Festival.
    assert ours["spring_festival_eve"] == ours["spring_festival"] - timedelta(days=1)


def test_the_lunar_table_agrees_with_the_library_across_its_range() -> None:
    # Two years are known to differ between published almanacs: 1916 (new moon at midnight,
    # Beijing time vs. older meridians) and 2057 (the ninth month starts a day apart).
    disagree = []
    for year in range(1901, 2100):
        for helper, md in (("lunar_new_year_date", (1, 1)), ("mid_autumn_date", (8, 15))):
            expected, _ = getattr(LUNISOLAR, helper)(year)
            if cal.lunar_to_solar(year, *md) != expected:
                disagree.append(year)
    assert disagree == [1916]


@pytest.mark.parametrize(
    ("year", "qixi"),
    [
        (2020, date(2020, 8, 25)),
        (2023, date(2023, 8, 22)),
        (2024, date(2024, 8, 10)),
        (2025, date(2025, 8, 29)),
        (2026, date(2026, 8, 19)),
    ],
)
def test_qixi_is_the_seventh_day_of_the_seventh_lunar_month(year: int, qixi: date) -> None:
    assert {h.key: h.day for h in cal.shop_festivals(year)}["qixi"] == qixi


def test_shop_festivals_fall_on_their_days() -> None:
    days = {h.key: h.day for h in cal.shop_festivals(2026)}
    assert days["520"] == date(2026, 5, 20)
    assert days["618"] == date(2026, 6, 18)
    assert days["double11"] == date(2026, 11, 11)
    assert next(h.name_zh for h in cal.shop_festivals(2026)) == "520表白日"


@settings(max_examples=60, deadline=None)
@given(st.dates(min_value=date(1901, 1, 1), max_value=date(2099, 12, 31)))
def test_solar_to_lunar_and_back_is_the_identity(value: date) -> None:
    lunar = cal.solar_to_lunar(value)
    assert cal.lunar_to_solar(lunar.year, lunar.month, lunar.day, leap=lunar.leap) == value


def test_leap_months_and_bad_lunar_dates() -> None:
    # 2023 had a leap second month (闰二月), starting 22 March.
    assert cal.lunar_to_solar(2023, 2, 1, leap=True) == date(2023, 3, 22)
    assert cal.solar_to_lunar(date(2023, 3, 22)) == cal.LunarDate(
        year=2023, month=2, day=1, leap=True
    )
    with pytest.raises(ValueError, match="no leap month"):
        cal.lunar_to_solar(2024, 2, 1, leap=True)
    with pytest.raises(ValueError, match="1900-2100"):
        cal.lunar_to_solar(2101, 1, 1)
    with pytest.raises(ValueError, match="days"):
        cal.lunar_to_solar(2024, 1, 31)
    with pytest.raises(ValueError, match="outside"):
        cal.solar_to_lunar(date(1899, 1, 1))


def test_a_lunar_birthday_keeps_its_lunar_month_and_day() -> None:
    born = date(1990, 8, 4)  # lunar 1990-06-14
    assert cal.solar_to_lunar(born) == cal.LunarDate(year=1990, month=6, day=14)
    assert cal.lunar_birthday_on(born, 2026) == date(2026, 7, 27)
    # Born in a leap month: celebrated in the ordinary month of that number.
    leap_born = cal.lunar_to_solar(2023, 2, 10, leap=True)
    assert cal.lunar_birthday_on(leap_born, 2024) == cal.lunar_to_solar(2024, 2, 10)


def test_29_february_falls_on_28_february_or_1_march_in_common_years() -> None:
    b = lc.Birthday(month=2, day=29)
    assert cal.birthday_on(b, 2027) == date(2027, 2, 28)
    assert cal.birthday_on(b, 2027, feb29="mar1") == date(2027, 3, 1)
    assert cal.birthday_on(b, 2028) == date(2028, 2, 29)


def test_other_countries_use_the_holidays_library_without_observed_days() -> None:
    us = {h.key: h for h in cal.public_holidays("US", 2026)}
    assert us["thanksgiving_day"].day == date(2026, 11, 26)
    assert not any("observed" in k for k in us)
    de = {h.key: h.day for h in cal.festivals("DE", 2026)}
    assert de["christmas_day"] == date(2026, 12, 25)
    with pytest.raises(ValueError, match="unknown country"):
        cal.public_holidays("XX", 2026)


def test_a_missing_holidays_library_gives_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_holidays(name: str, *args: object, **kwargs: object) -> object:
        if name == "holidays":
            raise ImportError("No module named 'holidays'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setitem(sys.modules, "holidays", None)
    monkeypatch.setattr(builtins, "__import__", no_holidays)
    cal.public_holidays.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"lifecycle\[calendar\]"):
            cal.public_holidays("FR", 2026)
        assert cal.festivals("CN", 2026)  # China is built in
    finally:
        cal.public_holidays.cache_clear()
