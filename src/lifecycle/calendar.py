"""Calendar facts for follow-ups: birthdays (29 February), the Chinese lunar calendar, public
holidays of China and of other countries, shop festivals (520, 618, Qixi, 11.11, 12.12), and
working days (official days off and make-up workdays, 调休).

Lunar dates come from a table of the Chinese calendar for 1900-2100; other countries' holidays
and every country's official days off and workdays come from the optional ``holidays`` library
(``pip install 'lifecycle[calendar]'``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final, Literal

import attrs

from lifecycle.customer import Birthday
from lifecycle.errors import MissingExtra

__all__ = [
    "LUNAR_YEARS",
    "SHOP_FESTIVALS",
    "Holiday",
    "LunarDate",
    "WorkCalendar",
    "birthday_on",
    "china_holidays",
    "festivals",
    "lunar_birthday_on",
    "lunar_to_solar",
    "public_holidays",
    "shop_festivals",
    "solar_to_lunar",
    "work_calendar",
]

#: The lunar years the table covers (first and last, inclusive).
LUNAR_YEARS: Final = (1900, 2100)

# One number per lunar year from 1900: bits 0-3 the leap month (0: none), bit 16 the leap
# month's length (1: 30 days), bits 15..4 the lengths of months 1..12 (1: 30 days, 0: 29).
_LUNAR_INFO: Final = (
    0x04BD8,
    0x04AE0,
    0x0A570,
    0x054D5,
    0x0D260,
    0x0D950,
    0x16554,
    0x056A0,
    0x09AD0,
    0x055D2,  # 1900-
    0x04AE0,
    0x0A5B6,
    0x0A4D0,
    0x0D250,
    0x1D255,
    0x0B540,
    0x0D6A0,
    0x0ADA2,
    0x095B0,
    0x14977,  # 1910-
    0x04970,
    0x0A4B0,
    0x0B4B5,
    0x06A50,
    0x06D40,
    0x1AB54,
    0x02B60,
    0x09570,
    0x052F2,
    0x04970,  # 1920-
    0x06566,
    0x0D4A0,
    0x0EA50,
    0x16A95,
    0x05AD0,
    0x02B60,
    0x186E3,
    0x092E0,
    0x1C8D7,
    0x0C950,  # 1930-
    0x0D4A0,
    0x1D8A6,
    0x0B550,
    0x056A0,
    0x1A5B4,
    0x025D0,
    0x092D0,
    0x0D2B2,
    0x0A950,
    0x0B557,  # 1940-
    0x06CA0,
    0x0B550,
    0x15355,
    0x04DA0,
    0x0A5B0,
    0x14573,
    0x052B0,
    0x0A9A8,
    0x0E950,
    0x06AA0,  # 1950-
    0x0AEA6,
    0x0AB50,
    0x04B60,
    0x0AAE4,
    0x0A570,
    0x05260,
    0x0F263,
    0x0D950,
    0x05B57,
    0x056A0,  # 1960-
    0x096D0,
    0x04DD5,
    0x04AD0,
    0x0A4D0,
    0x0D4D4,
    0x0D250,
    0x0D558,
    0x0B540,
    0x0B6A0,
    0x195A6,  # 1970-
    0x095B0,
    0x049B0,
    0x0A974,
    0x0A4B0,
    0x0B27A,
    0x06A50,
    0x06D40,
    0x0AF46,
    0x0AB60,
    0x09570,  # 1980-
    0x04AF5,
    0x04970,
    0x064B0,
    0x074A3,
    0x0EA50,
    0x06B58,
    0x05AC0,
    0x0AB60,
    0x096D5,
    0x092E0,  # 1990-
    0x0C960,
    0x0D954,
    0x0D4A0,
    0x0DA50,
    0x07552,
    0x056A0,
    0x0ABB7,
    0x025D0,
    0x092D0,
    0x0CAB5,  # 2000-
    0x0A950,
    0x0B4A0,
    0x0BAA4,
    0x0AD50,
    0x055D9,
    0x04BA0,
    0x0A5B0,
    0x15176,
    0x052B0,
    0x0A930,  # 2010-
    0x07954,
    0x06AA0,
    0x0AD50,
    0x05B52,
    0x04B60,
    0x0A6E6,
    0x0A4E0,
    0x0D260,
    0x0EA65,
    0x0D530,  # 2020-
    0x05AA0,
    0x076A3,
    0x096D0,
    0x04AFB,
    0x04AD0,
    0x0A4D0,
    0x1D0B6,
    0x0D250,
    0x0D520,
    0x0DD45,  # 2030-
    0x0B5A0,
    0x056D0,
    0x055B2,
    0x049B0,
    0x0A577,
    0x0A4B0,
    0x0AA50,
    0x1B255,
    0x06D20,
    0x0ADA0,  # 2040-
    0x14B63,
    0x09370,
    0x049F8,
    0x04970,
    0x064B0,
    0x168A6,
    0x0EA50,
    0x06AA0,
    0x1A6C4,
    0x0AAE0,  # 2050-
    0x092E0,
    0x0D2E3,
    0x0C960,
    0x0D557,
    0x0D4A0,
    0x0DA50,
    0x05D55,
    0x056A0,
    0x0A6D0,
    0x055D4,  # 2060-
    0x052D0,
    0x0A9B8,
    0x0A950,
    0x0B4A0,
    0x0B6A6,
    0x0AD50,
    0x055A0,
    0x0ABA4,
    0x0A5B0,
    0x052B0,  # 2070-
    0x0B273,
    0x06930,
    0x07337,
    0x06AA0,
    0x0AD50,
    0x14B55,
    0x04B60,
    0x0A570,
    0x054E4,
    0x0D160,  # 2080-
    0x0E968,
    0x0D520,
    0x0DAA0,
    0x16AA6,
    0x056D0,
    0x04AE0,
    0x0A9D4,
    0x0A4D0,
    0x0D150,
    0x0F252,  # 2090-
    0x0D520,  # 2100-
)
#: Lunar new year's day of 1900 (the table's first year).
_EPOCH: Final = date(1900, 1, 31)


@attrs.frozen(kw_only=True)
class LunarDate:
    """A date of the Chinese lunar calendar: year, month 1-12, day 1-30, and whether the month
    is the year's leap (intercalary) month."""

    year: int
    month: int
    day: int
    leap: bool = False


def _months(year: int) -> tuple[tuple[int, bool, int], ...]:
    """(month, leap, days) for each month of lunar ``year``, in order."""
    return _MONTHS[year - LUNAR_YEARS[0]]


def _year_months(info: int) -> tuple[tuple[int, bool, int], ...]:
    leap = info & 0xF
    out: list[tuple[int, bool, int]] = []
    for m in range(1, 13):
        out.append((m, False, 30 if info & (0x10000 >> m) else 29))
        if m == leap:
            out.append((m, True, 30 if info & 0x10000 else 29))
    return tuple(out)


_MONTHS: Final = tuple(_year_months(info) for info in _LUNAR_INFO)


def _starts() -> tuple[date, ...]:
    out = []
    day = _EPOCH
    for months in _MONTHS:
        out.append(day)
        day += timedelta(days=sum(n for _, _, n in months))
    out.append(day)  # the day after the table ends
    return tuple(out)


_NEW_YEARS: Final = _starts()


def _check_year(year: int) -> None:
    if isinstance(year, bool) or not isinstance(year, int):
        raise TypeError(f"year must be an int, got {type(year).__name__}")
    if not LUNAR_YEARS[0] <= year <= LUNAR_YEARS[1]:
        raise ValueError(f"lunar year must be {LUNAR_YEARS[0]}-{LUNAR_YEARS[1]}, got {year}")


def lunar_to_solar(year: int, month: int, day: int, *, leap: bool = False) -> date:
    """The Gregorian date of a lunar date.

    Raises:
        ValueError: for a year outside :data:`LUNAR_YEARS`, a leap month the year does not have,
            or a day past the month's end (29 or 30).
    """
    _check_year(year)
    start = _NEW_YEARS[year - LUNAR_YEARS[0]]
    for m, is_leap, length in _months(year):
        if m == month and is_leap == leap:
            if not 1 <= day <= length:
                raise ValueError(f"lunar {year}-{month} has {length} days, not {day}")
            return start + timedelta(days=day - 1)
        start += timedelta(days=length)
    raise ValueError(f"lunar year {year} has no {'leap ' if leap else ''}month {month}")


def solar_to_lunar(value: date) -> LunarDate:
    """The lunar date of Gregorian ``value``.

    Raises:
        ValueError: for a date outside the table (before 1900-01-31 or after lunar 2100).
    """
    if not _NEW_YEARS[0] <= value < _NEW_YEARS[-1]:
        raise ValueError(f"{value} is outside the lunar table ({LUNAR_YEARS[0]}-{LUNAR_YEARS[1]})")
    i = _bisect(value)
    year = LUNAR_YEARS[0] + i
    offset = (value - _NEW_YEARS[i]).days
    for m, is_leap, length in _months(year):
        if offset < length:
            return LunarDate(year=year, month=m, day=offset + 1, leap=is_leap)
        offset -= length
    raise AssertionError("unreachable: the year's months cover its days")  # pragma: no cover


def _bisect(value: date) -> int:
    lo, hi = 0, len(_NEW_YEARS) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _NEW_YEARS[mid] <= value:
            lo = mid
        else:
            hi = mid
    return lo


def _lunar_year_end(year: int) -> date:
    """The last day of lunar ``year`` (Chinese New Year's Eve, 除夕)."""
    return _NEW_YEARS[year - LUNAR_YEARS[0] + 1] - timedelta(days=1)


# -- birthdays ----------------------------------------------------------------------------------


def birthday_on(
    birthday: Birthday, year: int, *, feb29: Literal["feb28", "mar1"] = "feb28"
) -> date:
    """The date a Gregorian birthday is celebrated in ``year``.

    29 February falls on 28 February (``feb29="feb28"``, the default) or 1 March in common years.
    """
    return birthday.in_year(year, feb29=feb29)


def lunar_birthday_on(born: date, lunar_year: int) -> date:
    """The Gregorian date of the lunar birthday of someone born on ``born``, in ``lunar_year``.

    The birthday keeps its lunar month and day. Born in a leap month, it falls in the ordinary
    month of that number (most years have no such leap month); born on day 30 of a month that
    has 29 days in ``lunar_year``, it falls on day 29.
    """
    birth = solar_to_lunar(born)
    _check_year(lunar_year)
    length = next(n for m, leap, n in _months(lunar_year) if m == birth.month and not leap)
    return lunar_to_solar(lunar_year, birth.month, min(birth.day, length))


# -- holidays and festivals ---------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Holiday:
    """One holiday or festival on one date.

    Attributes:
        key: a stable name to match rules on, e.g. ``"spring_festival"`` or ``"double11"``.
        day: its (first) date.
        name_en: its English name.
        name_zh: its Chinese name (the English one when the source has none).
        calendar: where it comes from: a country code such as ``"CN"``, or ``"shop"``.
    """

    key: str
    day: date
    name_en: str
    name_zh: str
    calendar: str

    def name(self, lang: str = "en") -> str:
        return self.name_zh if lang == "zh" else self.name_en


def _qingming(year: int) -> date:
    """Qingming (清明), the fifth solar term, in China's time zone (UTC+8).

    The solar-term formula ``int(Y * 0.2422 + C) - L``: Y the year within its century, C the
    century's constant (5.59 for the 1900s, 4.81 for the 2000s) and L the leap days since the
    century began. It gives the date of the astronomical term for every year 1900-2100 (a
    test checks it against an ephemeris and against the ``holidays`` library).
    """
    if year < 2000:
        y, c, leaps = year - 1900, 5.59, (year - 1900) // 4
    else:
        y, c, leaps = year - 2000, 4.81, (year - 2000) // 4 - (year == 2100)
    return date(year, 4, int(y * 0.2422 + c) - leaps)


@lru_cache(maxsize=256)
def china_holidays(year: int) -> tuple[Holiday, ...]:
    """China's public holidays and festival days in ``year`` (first day of each), lunar ones
    included: New Year, Spring Festival and its eve, Qingming, Labour Day, Dragon Boat Festival,
    Mid-Autumn Festival and National Day. Needs no extra library.

    These are the days the festivals fall on, for greetings; which days are off work, and the
    weekend days that are worked instead (调休), come from :class:`WorkCalendar`.
    """
    _check_year(year)

    def h(key: str, day: date, en: str, zh: str) -> Holiday:
        return Holiday(key=key, day=day, name_en=en, name_zh=zh, calendar="CN")

    out = [
        h("new_year", date(year, 1, 1), "New Year's Day", "元旦"),
        h("spring_festival_eve", _lunar_year_end(year - 1), "Chinese New Year's Eve", "除夕"),
        h("spring_festival", lunar_to_solar(year, 1, 1), "Spring Festival", "春节"),
        h("qingming", _qingming(year), "Qingming Festival", "清明节"),
        h("labour_day", date(year, 5, 1), "Labour Day", "劳动节"),
        h("dragon_boat", lunar_to_solar(year, 5, 5), "Dragon Boat Festival", "端午节"),
        h("mid_autumn", lunar_to_solar(year, 8, 15), "Mid-Autumn Festival", "中秋节"),
        h("national_day", date(year, 10, 1), "National Day", "国庆节"),
    ]
    return tuple(sorted(out, key=lambda x: x.day))


#: The shop festivals: key, English and Chinese names; dates by :func:`shop_festivals`.
SHOP_FESTIVALS: Final = {
    "520": ("520 (I love you day)", "520表白日"),
    "618": ("618 mid-year shopping festival", "618年中大促"),
    "qixi": ("Qixi Festival", "七夕节"),
    "double11": ("Double 11 (Singles' Day)", "双十一"),
    "double12": ("Double 12", "双十二"),
}


@lru_cache(maxsize=256)
def shop_festivals(year: int) -> tuple[Holiday, ...]:
    """The shop festivals of ``year``: 520 (20 May), 618 (18 June), Qixi (the 7th day of the
    7th lunar month), 11.11 and 12.12."""
    _check_year(year)
    days = {
        "520": date(year, 5, 20),
        "618": date(year, 6, 18),
        "qixi": lunar_to_solar(year, 7, 7),
        "double11": date(year, 11, 11),
        "double12": date(year, 12, 12),
    }
    return tuple(
        Holiday(
            key=k,
            day=days[k],
            name_en=SHOP_FESTIVALS[k][0],
            name_zh=SHOP_FESTIVALS[k][1],
            calendar="shop",
        )
        for k in sorted(days, key=days.__getitem__)
    )


def _holidays_module() -> Any:
    try:
        import holidays
    except ImportError as e:
        raise MissingExtra(
            package="holidays", extra="calendar", feature="official holidays and workdays"
        ) from e
    return holidays


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower().replace("'", "")).strip("_")


_SKIP = re.compile(r"observed|substitut|day off|bridge", re.I)


@lru_cache(maxsize=256)
def public_holidays(
    country: str, year: int, *, subdivision: str | None = None
) -> tuple[Holiday, ...]:
    """The public holidays of ``country`` (ISO 3166 code) in ``year``, first day of each.

    China's come from :func:`china_holidays`; other countries' from the ``holidays`` library,
    without observed and substitute days off.

    Raises:
        ImportError: for a country other than China when ``holidays`` is not installed.
        ValueError: for a country the library does not know.
    """
    if country.upper() == "CN" and subdivision is None:
        return china_holidays(year)
    lib = _holidays_module()
    try:
        en = lib.country_holidays(country, subdiv=subdivision, years=year)
    except NotImplementedError as e:
        raise ValueError(f"unknown country {country!r}") from e
    try:
        zh = lib.country_holidays(country, subdiv=subdivision, years=year, language="zh_CN")
    except (NotImplementedError, ValueError):  # pragma: no cover - depends on the library
        zh = en
    first: dict[str, Holiday] = {}
    for day, name in sorted(en.items()):
        zh_parts = str(zh.get(day, name)).split("; ")
        for i, part in enumerate(str(name).split("; ")):
            key = _slug(part)
            if _SKIP.search(part) or not key or key in first:
                continue
            first[key] = Holiday(
                key=key,
                day=day,
                name_en=part,
                name_zh=zh_parts[i] if i < len(zh_parts) else part,
                calendar=country.upper(),
            )
    return tuple(sorted(first.values(), key=lambda x: (x.day, x.key)))


@lru_cache(maxsize=512)
def festivals(calendar: str, year: int) -> tuple[Holiday, ...]:
    """The holidays of ``calendar`` in ``year``: ``"shop"`` for shop festivals, else a country."""
    if calendar == "shop":
        return shop_festivals(year)
    return public_holidays(calendar, year)


# -- working days -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class _Year:
    weekend: frozenset[int]
    off: Mapping[date, str]
    worked: frozenset[date]


@lru_cache(maxsize=512)
def _official_year(country: str, subdivision: str | None, year: int) -> _Year:
    lib = _holidays_module()
    try:
        # The years around: a make-up workday can be announced with the next year's holidays.
        found = lib.country_holidays(
            country, subdiv=subdivision, years=(year - 1, year, year + 1), language="en_US"
        )
    except NotImplementedError as e:
        raise ValueError(f"unknown country {country!r}") from e
    return _Year(
        weekend=frozenset(found.weekend),
        off=MappingProxyType({d: str(n) for d, n in sorted(found.items()) if d.year == year}),
        worked=frozenset(d for d in found.weekend_workdays if d.year == year),
    )


#: How far :meth:`WorkCalendar.next_workday` looks before deciding a calendar has no workday.
_MAX_DAYS_OFF: Final = 366


@attrs.frozen(kw_only=True)
class WorkCalendar:
    """The working days of ``country`` (ISO 3166 code; ``subdivision`` for regional holidays).

    A day is a working day unless it falls on the country's weekend or is an official holiday
    or day off; a weekend day that the government makes a working day, as China does around
    its long holidays (调休: Saturday 2026-02-14 is worked for the Spring Festival break), is
    one. The official days come from the ``holidays`` library (the ``calendar`` extra), for
    the years it covers.

    Raises:
        MissingExtra: ``holidays`` is not installed (on first use).
        ValueError: a country ``holidays`` does not know (on first use).
    """

    country: str = "CN"
    subdivision: str | None = None

    def _year(self, year: int) -> _Year:
        return _official_year(self.country.upper(), self.subdivision, year)

    def days_off(self, year: int) -> tuple[Holiday, ...]:
        """Every official holiday and day off of ``year`` (each day of a long break, and the
        weekdays given off in exchange for make-up workdays), with its official name."""
        zh = _named(self.country.upper(), self.subdivision, year, "zh_CN")
        return tuple(
            Holiday(
                key=_slug(name.split("; ")[0]) or "holiday",
                day=day,
                name_en=name,
                name_zh=zh.get(day, name),
                calendar=self.country.upper(),
            )
            for day, name in self._year(year).off.items()
        )

    def makeup_workdays(self, year: int) -> tuple[date, ...]:
        """The weekend days of ``year`` that are working days (调休), oldest first."""
        return tuple(sorted(self._year(year).worked))

    def is_workday(self, day: date) -> bool:
        """Whether ``day`` is a working day."""
        facts = self._year(day.year)
        if day.weekday() in facts.weekend:
            return day in facts.worked
        return day not in facts.off

    def next_workday(self, day: date) -> date:
        """``day`` when it is a working day, else the first working day after it."""
        for offset in range(_MAX_DAYS_OFF):
            candidate = day + timedelta(days=offset)
            if self.is_workday(candidate):
                return candidate
        raise ValueError(f"no working day within a year of {day} in {self.country}")

    def add_workdays(self, day: date, n: int) -> date:
        """The ``n``-th working day after ``day`` (before it when ``n`` is negative); ``day``
        itself for ``n == 0``, whether it is worked or not."""
        step = timedelta(days=1 if n >= 0 else -1)
        left = abs(n)
        for _ in range(left * 7 + _MAX_DAYS_OFF):
            if left == 0:
                return day
            day += step
            if self.is_workday(day):
                left -= 1
        raise ValueError(f"no {abs(n)} working days near {day} in {self.country}")


@lru_cache(maxsize=512)
def _named(country: str, subdivision: str | None, year: int, language: str) -> Mapping[date, str]:
    lib = _holidays_module()
    try:
        found = lib.country_holidays(country, subdiv=subdivision, years=year, language=language)
    except (NotImplementedError, ValueError):  # pragma: no cover - depends on the library
        return MappingProxyType({})
    return MappingProxyType({d: str(n) for d, n in found.items()})


@lru_cache(maxsize=64)
def work_calendar(country: str, subdivision: str | None = None) -> WorkCalendar:
    """The :class:`WorkCalendar` of ``country``, checked: the ``holidays`` library must know it.

    Raises:
        MissingExtra: ``holidays`` is not installed.
        ValueError: an unknown country.
    """
    if not isinstance(country, str) or not country.strip():
        raise ValueError(f"a country is an ISO 3166 code such as 'CN', got {country!r}")
    found = WorkCalendar(country=country.upper(), subdivision=subdivision)
    lib = _holidays_module()
    try:
        lib.country_holidays(found.country, subdiv=subdivision)
    except NotImplementedError as e:
        raise ValueError(f"unknown country {country!r}") from e
    return found
