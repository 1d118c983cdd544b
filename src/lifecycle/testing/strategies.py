"""Hypothesis strategies for ``lifecycle``: aware datetimes, profiles, events and whole histories.

Shared by ``lifecycle``'s own tests and by hosts testing code built on it::

    from hypothesis import given
    from lifecycle.testing.strategies import histories

    @given(histories())
    def test_my_report_accepts_any_history(events):
        ...

Every value is valid: events construct without error, and a history is always accepted by
:meth:`lifecycle.Lifecycle.record`. The awkward cases are drawn on purpose: wall times in DST
gaps and folds (``fold=0`` and ``fold=1``), 29 February, month ends, zones with half-hour DST.
"""

from __future__ import annotations

import calendar
import types
import typing
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo

import attrs
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from lifecycle.cadence import (
    AfterEvent,
    Anniversary,
    CadencePolicy,
    Campaign,
    Festival,
    Overdue,
    Periodic,
    PointsExpiry,
    Replenishment,
    Rule,
    SequenceStep,
    StageEntry,
    StepSequence,
    Template,
    TierDowngradeWarning,
    TierUpgrade,
    WinBack,
)
from lifecycle.cadence.rules import default_rules
from lifecycle.cadence.templates import default_templates
from lifecycle.customer import Birthday, ContactPoint, Gender, Profile
from lifecycle.errors import PolicyError
from lifecycle.events import (
    ENGAGEMENT_KINDS,
    EVENT_TYPES,
    FEEDBACK_KINDS,
    PARTNERSHIP_KINDS,
    ComplaintOpened,
    ComplaintResolved,
    ConsentChanged,
    Contacted,
    CustomerErased,
    CustomerRegistered,
    Engaged,
    Event,
    FeedbackGiven,
    LeadCaptured,
    OrderCancelled,
    OrderDelivered,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
    OrderShipped,
    OwnerAssigned,
    OwnerProtected,
    PartnershipEnded,
    PartnershipSigned,
    PointsRedeemed,
    ProfileUpdated,
    Referred,
    Replied,
    ReturnedToPool,
    ReviewPosted,
    TierGranted,
    TierRevoked,
)
from lifecycle.policy import LoyaltyPolicy, OwnerPolicy, Policy
from lifecycle.vocabulary import CONTACT_CHANNELS, RULE_CHANNELS, Purpose

__all__ = [
    "CURRENCIES",
    "DEFAULT_ZONES",
    "HostileCase",
    "aware_datetimes",
    "birthdays",
    "contact_points",
    "events",
    "free_texts",
    "histories",
    "hostile_addresses",
    "hostile_amounts",
    "hostile_cases",
    "hostile_instants",
    "hostile_rows",
    "hostile_texts",
    "identifiers",
    "money",
    "policies",
    "profiles",
]

#: IANA zones drawn by default: two classic DST zones (one each side of the Atlantic), a
#: half-hour DST zone, a zone without DST and UTC.
DEFAULT_ZONES: Final = (
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Shanghai",
    "UTC",
)
#: Currency codes drawn for amounts.
CURRENCIES: Final = ("CNY", "EUR", "USD", "GBP", "HKD")

_MIN: Final = datetime(1990, 1, 1, tzinfo=UTC)
_MAX: Final = datetime(2050, 1, 1, tzinfo=UTC)
_HISTORY_START: Final = datetime(2023, 1, 1, tzinfo=UTC)
_DAY: Final = 86_400
_LOCALES: Final = ("zh-CN", "en-US", "de-DE", "en-AU")
_LEAD_SOURCES: Final = ("douyin", "taobao", "wechat", "store", "ads")
_EXTRA_CHANNELS: Final = ("task", "line")


# -- small building blocks ----------------------------------------------------------------------


@lru_cache(maxsize=1)
def identifiers() -> st.SearchStrategy[str]:
    """Ids as events accept them: non-empty, not only whitespace, any script, no control
    characters."""
    return st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
        min_size=1,
        max_size=16,
    ).filter(lambda s: bool(s.strip()))


@lru_cache(maxsize=16)
def free_texts(max_size: int = 60) -> st.SearchStrategy[str]:
    """Free text as events accept it: any script, tabs and line breaks, no other control."""
    return st.text(
        alphabet=st.one_of(
            st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")),
            st.sampled_from("\t\n\r"),
        ),
        max_size=max_size,
    )


@lru_cache(maxsize=1)
def _words() -> st.SearchStrategy[str]:
    return st.text(
        alphabet=st.characters(codec="utf-8", categories=("L", "N", "Zs", "P")),
        min_size=1,
        max_size=24,
    ).filter(lambda s: bool(s.strip()))


@lru_cache(maxsize=256)
def money(max_value: Decimal = Decimal("99999.99")) -> st.SearchStrategy[Decimal]:
    """Amounts with exactly two places, from 0.00 to ``max_value``."""
    return st.decimals(min_value=Decimal(0), max_value=max_value, places=2)


_BOOL: Final = st.booleans()


@lru_cache(maxsize=4096)
def _ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    # Cached: building a strategy per draw costs more than the draw itself.
    return st.integers(lo, hi)


@lru_cache(maxsize=512)
def _pick_from(values: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


def _pick(values: Iterable[Any]) -> st.SearchStrategy[Any]:
    return _pick_from(tuple(values))


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def _sorted(values: Collection[str]) -> list[str]:
    # Sorted so that a seed reproduces the same draws whatever the set's iteration order.
    return sorted(values)


def _spread(draw: st.DrawFn, limit: int) -> int:
    """A whole number in ``[0, limit]``, spread evenly over the range; shrinks to 0.

    ``st.integers`` favours small values over a wide range; picking each of the
    three base-256 digits by itself keeps draws spread over years of seconds.
    """
    step1 = -(-(limit + 1) // 256)
    step2 = -(-step1 // 256)
    coarse = draw(_ints(0, 255))
    middle = draw(_ints(0, 255))
    fine = draw(_ints(0, step2 - 1))
    return min(coarse * step1 + middle * step2 + fine, limit)


def _to_zone(value: str | tzinfo) -> tzinfo:
    if isinstance(value, tzinfo):
        return value
    try:
        return ZoneInfo(value)
    except (KeyError, ValueError) as e:
        raise InvalidArgument(f"not an IANA time zone: {value!r}") from e


# -- aware datetimes ----------------------------------------------------------------------------


def _offset(tz: tzinfo, instant: datetime) -> timedelta:
    off = instant.astimezone(tz).utcoffset()
    assert off is not None  # astimezone always yields an aware datetime
    return off


@lru_cache(maxsize=1024)
def _transitions(tz: tzinfo, year: int) -> tuple[tuple[datetime, timedelta, timedelta], ...]:
    """Offset changes of ``tz`` during ``year`` (UTC): (instant, offset before, offset after)."""
    out = []
    day0 = datetime(year, 1, 1, tzinfo=UTC)
    before = _offset(tz, day0)
    for n in range(1, 367):
        end = day0 + timedelta(days=n)
        after = _offset(tz, end)
        if after != before:
            start = end - timedelta(days=1)
            lo, hi = 0, _DAY  # the offset at start + lo is `before`, at start + hi `after`
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset(tz, start + timedelta(seconds=mid)) == before:
                    lo = mid
                else:
                    hi = mid
            out.append((start + timedelta(seconds=hi), before, after))
            before = after
    return tuple(out)


def _within(value: datetime, lo: datetime, hi: datetime) -> bool:
    # Compared in UTC: comparisons within one ZoneInfo zone use wall time and ignore fold.
    at = value.astimezone(UTC)
    return lo <= at <= hi


def _draw_transition(draw: st.DrawFn, tz: tzinfo, lo: datetime, hi: datetime) -> datetime | None:
    """A wall time in, or just beside, a DST gap or fold of ``tz``."""
    years = range(lo.year, hi.year + 1)
    year = draw(_pick(years))
    found = _transitions(tz, year)
    if not found:
        return None
    instant, before, after = draw(_pick(found))
    width = int(abs(after - before).total_seconds())
    start = instant.replace(tzinfo=None) + min(before, after)
    # From one second before the gap or fold to its first unambiguous second after.
    step = draw(_ints(-1, width))
    wall = start + timedelta(seconds=step)
    if draw(_BOOL):
        wall = wall.replace(microsecond=draw(_ints(0, 999_999)))
    value = wall.replace(tzinfo=tz, fold=draw(_ints(0, 1)))
    return value if _within(value, lo, hi) else None


_CLOCK_TIMES: Final = (
    st.sampled_from(
        (time(0, 0), time(23, 59, 59, 999_999), time(12, 0), time(23, 30), time(0, 30), time(2, 30))
    )
    | st.times()
)
_MICROSECONDS: Final = st.sampled_from((0, 0, 0, 999_999)) | st.integers(0, 999_999)


def _draw_calendar_edge(
    draw: st.DrawFn, tz: tzinfo, lo: datetime, hi: datetime, *, leap_day: bool
) -> datetime | None:
    """The last day of a month, or 29 February, at an edge of the day."""
    years = [y for y in range(lo.year, hi.year + 1) if not leap_day or calendar.isleap(y)]
    if not years:
        return None
    year = draw(_pick(years))
    month = 2 if leap_day else draw(_ints(1, 12))
    day = 29 if leap_day else calendar.monthrange(year, month)[1]
    clock = draw(_CLOCK_TIMES)
    value = datetime.combine(date(year, month, day), clock, tzinfo=tz).replace(
        fold=draw(_ints(0, 1))
    )
    return value if _within(value, lo, hi) else None


@st.composite
def _aware_datetimes(
    draw: st.DrawFn, lo: datetime, hi: datetime, zones: tuple[tzinfo, ...]
) -> datetime:
    tz = draw(_pick(zones))
    kind = draw(_pick(("instant", "transition", "month_end", "leap_day")))
    value: datetime | None = None
    if kind == "transition":
        value = _draw_transition(draw, tz, lo, hi)
    elif kind in ("month_end", "leap_day"):
        value = _draw_calendar_edge(draw, tz, lo, hi, leap_day=kind == "leap_day")
    if value is None:
        span = int((hi - lo).total_seconds())
        seconds = _spread(draw, span)
        micro = draw(_MICROSECONDS)
        instant = min(lo + timedelta(seconds=seconds, microseconds=micro), hi)
        value = instant.astimezone(tz)
    return value


def aware_datetimes(
    *,
    min_value: datetime = _MIN,
    max_value: datetime = _MAX,
    zones: Sequence[str | tzinfo] = DEFAULT_ZONES,
) -> st.SearchStrategy[datetime]:
    """Aware datetimes whose instant lies in ``[min_value, max_value]``.

    The wall time is given in one of ``zones`` (IANA names or ``tzinfo`` objects). Some draws
    are ordinary instants; the others are wall times in or beside DST gaps and folds, with
    ``fold`` 0 or 1, or at the edges of 29 February and of the last day of a month. A wall time in a gap does not
    exist on the clock, but it is still a valid aware datetime: its offset (and so its instant)
    follows ``fold`` as PEP 495 says.

    Args:
        min_value: the earliest instant; must be aware.
        max_value: the latest instant; must be aware.
        zones: the zones to draw from.

    Raises:
        InvalidArgument: a naive bound, bounds in the wrong order, no zones or an unknown name.
    """
    for name, bound in (("min_value", min_value), ("max_value", max_value)):
        if not isinstance(bound, datetime) or bound.utcoffset() is None:
            raise InvalidArgument(f"{name} must be an aware datetime, got {bound!r}")
    lo, hi = min_value.astimezone(UTC), max_value.astimezone(UTC)
    if lo > hi:
        raise InvalidArgument(f"min_value {min_value} is after max_value {max_value}")
    if isinstance(zones, str) or not zones:
        raise InvalidArgument("zones must be a non-empty sequence of zone names or tzinfos")
    return _aware_datetimes(lo, hi, tuple(_to_zone(z) for z in zones))


# -- who the customer is ------------------------------------------------------------------------


_BIRTH_YEARS: Final = st.none() | st.integers(1900, 2100)
_LEAP_BIRTH_YEARS: Final = st.none() | st.integers(1900, 2100).filter(calendar.isleap)


@st.composite
def _birthdays(draw: st.DrawFn) -> Birthday:
    if draw(_ints(0, 4)) == 0:
        # 29 February, without a year or in a leap year.
        return Birthday(month=2, day=29, year=draw(_LEAP_BIRTH_YEARS))
    year = draw(_BIRTH_YEARS)
    month = draw(_ints(1, 12))
    last = calendar.monthrange(2000 if year is None else year, month)[1]
    # The month's last day often: it is where date arithmetic goes wrong.
    day = last if draw(_BOOL) else draw(_ints(1, last))
    return Birthday(month=month, day=day, year=year)


def birthdays() -> st.SearchStrategy[Birthday]:
    """Birthdays with and without a year, often on 29 February or a month's last day."""
    return _birthdays()


@lru_cache(maxsize=1)
def _phones() -> st.SearchStrategy[str]:
    """E.164 numbers, written with or without the separators people use."""
    return st.builds(
        lambda country, rest, sep: f"+{country}{sep}{rest[:3]}{sep}{rest[3:]}",
        st.sampled_from(("86", "1", "49", "852", "61")),
        st.text(alphabet="0123456789", min_size=7, max_size=10),
        st.sampled_from(("", " ", "-")),
    )


@lru_cache(maxsize=1)
def _emails() -> st.SearchStrategy[str]:
    local = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=1, max_size=12)
    return st.builds(
        lambda name, domain: f"{name}@{domain}",
        local.filter(lambda s: not s.startswith(".") and not s.endswith(".") and ".." not in s),
        st.sampled_from(("example.com", "example.cn", "shop.example.org", "例子.中国")),
    )


def _address(channel: str) -> st.SearchStrategy[str]:
    if channel in ("sms", "phone"):
        return _phones()
    if channel == "email":
        return _emails()
    return _words()


def contact_points() -> st.SearchStrategy[ContactPoint]:
    """Contact points on any known channel, with an address in the channel's syntax and any
    set of consented purposes."""
    return st.sampled_from(_sorted(CONTACT_CHANNELS)).flatmap(
        lambda channel: st.builds(
            ContactPoint,
            channel=st.just(channel),
            address=_address(channel),
            consent=st.frozensets(st.sampled_from(Purpose)),
        )
    )


def profiles(zones: Sequence[str] = DEFAULT_ZONES) -> st.SearchStrategy[Profile]:
    """Profiles from empty to full; ``timezone`` is None or one of ``zones``."""
    return _profiles(tuple(zones))


@lru_cache(maxsize=64)
def _profiles(zones: tuple[str, ...]) -> st.SearchStrategy[Profile]:
    return st.builds(
        Profile,
        name=_optional(_words()),
        gender=_optional(st.sampled_from(Gender)),
        birthday=_optional(birthdays()),
        lunar_birthday=st.booleans(),
        timezone=_optional(st.sampled_from(zones)),
        locale=_optional(st.sampled_from(_LOCALES)),
        city=_optional(_words()),
        occupation=_optional(_words()),
        tags=st.frozensets(_words(), max_size=3),
        source=_optional(st.sampled_from(_LEAD_SOURCES)),
        referred_by=_optional(identifiers()),
        contacts=st.lists(contact_points(), max_size=3, unique_by=lambda c: c.channel).map(tuple),
    )


# -- single events ------------------------------------------------------------------------------

_Fields = dict[str, Any]
_FieldDrawer = Callable[[st.DrawFn, str], _Fields]


def _no_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    return {}


def _money_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    return {
        "order_id": draw(identifiers()),
        "amount": draw(money()),
        "currency": draw(_pick(CURRENCIES)),
        "items": tuple(draw(st.lists(_words(), max_size=3))),
        "categories": tuple(draw(st.lists(_words(), max_size=2))),
        "discount": draw(st.just(Decimal("0")) | money(Decimal("500.00"))),
    }


def _order_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    return {"order_id": draw(identifiers())}


def _shipped_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    return {
        "order_id": draw(identifiers()),
        "carrier": draw(_optional(st.sampled_from(("SF", "JD", "DHL", "UPS")))),
        "tracking": draw(_optional(identifiers())),
        "expected_delivery": draw(_optional(aware_datetimes())),
    }


def _cancelled_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    return {"order_id": draw(identifiers()), "reason": draw(_optional(free_texts(40)))}


def _refunded_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    return {
        "order_id": draw(identifiers()),
        "amount": draw(money()),
        "currency": draw(_pick(CURRENCIES)),
        "reason": draw(_optional(free_texts(40))),
    }


def _channel() -> st.SearchStrategy[str]:
    return st.sampled_from(_sorted(CONTACT_CHANNELS) + list(_EXTRA_CHANNELS))


def _contacted_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    return {
        "channel": draw(_channel()),
        "purpose": draw(_optional(st.sampled_from(Purpose))),
        "rule": draw(_optional(identifiers())),
        "template": draw(_optional(identifiers())),
        "key": draw(_optional(identifiers())),
    }


def _replied_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    return {"channel": draw(_channel()), "text": draw(_optional(free_texts(60)))}


def _feedback_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    kind = draw(_pick(_sorted(FEEDBACK_KINDS)))
    lo, hi = FEEDBACK_KINDS[kind]
    return {
        "kind": kind,
        "score": draw(_ints(lo, hi)),
        "text": draw(_optional(free_texts(60))),
    }


def _review_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    return {
        "rating": draw(_ints(1, 5)),
        "order_id": draw(_optional(identifiers())),
        "text": draw(_optional(free_texts(60))),
    }


def _complaint_opened_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    return {
        "complaint_id": draw(identifiers()),
        "order_id": draw(_optional(identifiers())),
        "text": draw(_optional(free_texts(60))),
    }


def _complaint_resolved_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    return {
        "complaint_id": draw(identifiers()),
        "text": draw(_optional(free_texts(60))),
    }


def _referred_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    return {"referred_id": draw(identifiers().filter(lambda r: r != customer_id))}


def _partnership_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    return {"kind": draw(_pick(_sorted(PARTNERSHIP_KINDS)))}


def _consent_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    return {
        "channel": draw(_pick(_sorted(CONTACT_CHANNELS))),
        "purpose": draw(_pick(Purpose)),
        "granted": draw(_BOOL),
    }


def _owner_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    return {"owner_id": draw(identifiers())}


def _returned_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    return {"owner_id": draw(identifiers()), "reason": draw(_optional(free_texts(40)))}


def _redeemed_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    return {
        "redemption_id": draw(identifiers()),
        "points": draw(_ints(1, 5000)),
        "order_id": draw(_optional(identifiers())),
    }


def _tier_move_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    return {
        "tier": draw(_pick(("member", "silver", "gold", "platinum"))),
        "reason": draw(identifiers()),
        "author": draw(identifiers()),
    }


def _profile_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    return {"profile": draw(profiles())}


def _lead_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    return {"source": draw(_pick(_LEAD_SOURCES) | identifiers())}


def _engaged_fields(draw: st.DrawFn, customer_id: str) -> _Fields:
    # Hosts may send kinds the library does not know.
    return {"kind": draw(_pick(_sorted(ENGAGEMENT_KINDS)) | identifiers())}


_FIELDS: Final[dict[type[Event], _FieldDrawer]] = {
    CustomerRegistered: _profile_fields,
    ProfileUpdated: _profile_fields,
    LeadCaptured: _lead_fields,
    Engaged: _engaged_fields,
    OrderPlaced: _money_fields,
    OrderPaid: _money_fields,
    OrderShipped: _shipped_fields,
    OrderDelivered: _order_fields,
    OrderCancelled: _cancelled_fields,
    OrderRefunded: _refunded_fields,
    Contacted: _contacted_fields,
    Replied: _replied_fields,
    FeedbackGiven: _feedback_fields,
    ReviewPosted: _review_fields,
    ComplaintOpened: _complaint_opened_fields,
    ComplaintResolved: _complaint_resolved_fields,
    Referred: _referred_fields,
    PartnershipSigned: _partnership_fields,
    PartnershipEnded: _partnership_fields,
    ConsentChanged: _consent_fields,
    OwnerAssigned: _owner_fields,
    OwnerProtected: _owner_fields,
    ReturnedToPool: _returned_fields,
    CustomerErased: _no_fields,
    PointsRedeemed: _redeemed_fields,
    TierGranted: _tier_move_fields,
    TierRevoked: _tier_move_fields,
}


@st.composite
def _events(
    draw: st.DrawFn,
    classes: tuple[type[Event], ...],
    customer_ids: st.SearchStrategy[str],
    instants: st.SearchStrategy[datetime],
) -> Event:
    cls: type[Event] = draw(_pick(classes))
    customer_id = draw(customer_ids)
    fields = _FIELDS[cls](draw, customer_id)
    # Mostly the id derived from the natural key; sometimes one the host chose.
    event_id = draw(st.just("") | identifiers())
    return cls(customer_id=customer_id, at=draw(instants), event_id=event_id, **fields)


def events(
    *,
    customer_id: str | st.SearchStrategy[str] | None = None,
    at: st.SearchStrategy[datetime] | None = None,
    classes: Collection[type[Event]] | None = None,
) -> st.SearchStrategy[Event]:
    """Any single valid event of any class in :data:`lifecycle.EVENT_TYPES`.

    Args:
        customer_id: a fixed id or a strategy for it; ``None`` draws any valid id.
        at: a strategy for the instant; ``None`` means :func:`aware_datetimes`.
        classes: the event classes to draw from; ``None`` means all of them.
    """
    if classes is None:
        picked = tuple(EVENT_TYPES.values())
    else:
        picked = tuple(classes)
        unknown = [c for c in picked if c not in _FIELDS]
        if not picked or unknown:
            raise InvalidArgument(f"classes must be event classes of EVENT_TYPES, got {unknown}")
    if customer_id is None:
        ids = identifiers()
    elif isinstance(customer_id, str):
        ids = st.just(customer_id)
    else:
        ids = customer_id
    return _events(picked, ids, aware_datetimes() if at is None else at)


# -- whole histories ----------------------------------------------------------------------------


class _Window:
    """Instants as whole seconds from the window's start, shown in a drawn zone."""

    def __init__(self, draw: st.DrawFn, start: datetime, seconds: int, zones: tuple[tzinfo, ...]):
        self.draw = draw
        self.start = start
        self.seconds = seconds
        self.zones = zones

    def anywhere(self) -> int:
        return _spread(self.draw, self.seconds)

    def after(self, offset: int, max_days: float, min_seconds: int = 0) -> int:
        """An offset from ``min_seconds`` to ``max_days`` after ``offset``, kept in the window."""
        delta = _spread(self.draw, max(0, int(max_days * _DAY) - min_seconds))
        return min(offset + min_seconds + delta, self.seconds)

    def at(self, offset: int) -> datetime:
        tz = self.draw(_pick(self.zones))
        return (self.start + timedelta(seconds=offset)).astimezone(tz)


def _count(draw: st.DrawFn, weights: Sequence[int]) -> int:
    """A small count, drawn so that ``weights[n]`` is the weight of ``n`` (shrinks to 0)."""
    choices = [n for n, w in enumerate(weights) for _ in range(w)]
    count: int = draw(_pick(choices))
    return count


def _rarely(draw: st.DrawFn, n: int) -> bool:
    """True about once in ``n`` draws; shrinks to False, so to fewer events."""
    return draw(_ints(0, n - 1)) == n - 1


def _usually(draw: st.DrawFn, n: int) -> bool:
    """False about once in ``n`` draws; shrinks to False, so to fewer events."""
    return draw(_ints(0, n - 1)) != 0


def _draw_order(
    draw: st.DrawFn, w: _Window, customer_id: str, order_id: str, placed_at: int
) -> list[Event]:
    """One order's events: placed, paid, shipped, delivered, cancelled, refunded, in any mix."""
    out: list[Event] = []
    amount = draw(money(Decimal("5000.00")))
    currency = draw(_pick(CURRENCIES))
    common: _Fields = {"customer_id": customer_id, "order_id": order_id}
    placed = _usually(draw, 5)
    paid = _usually(draw, 6)
    if placed:
        out.append(OrderPlaced(at=w.at(placed_at), amount=amount, currency=currency, **common))
    # Most orders are paid within minutes; some wait for days.
    delay = 3 if _rarely(draw, 4) else 0.02
    paid_at = w.after(placed_at, delay) if placed else placed_at
    if paid:
        out.append(OrderPaid(at=w.at(paid_at), amount=amount, currency=currency, **common))
        if _usually(draw, 4):
            shipped_at = w.after(paid_at, 5, min_seconds=3600)
            expected = draw(_ints(0, 10)) or None
            out.append(
                OrderShipped(
                    at=w.at(shipped_at),
                    carrier=draw(_pick((None, "SF", "JD", "DHL"))),
                    tracking=f"t-{order_id}" if draw(_BOOL) else None,
                    expected_delivery=None
                    if expected is None
                    else w.at(min(shipped_at + expected * _DAY, w.seconds)),
                    **common,
                )
            )
            if _usually(draw, 4):
                out.append(OrderDelivered(at=w.at(w.after(shipped_at, 10, 3600)), **common))
    if (placed or paid) and _rarely(draw, 8):
        out.append(OrderCancelled(at=w.at(w.after(placed_at, 30)), **common))
    if paid:
        remaining = amount
        for _ in range(_count(draw, (6, 2, 1))):
            if not remaining:
                break
            full = draw(_BOOL)
            part = remaining if full else draw(money(remaining))
            remaining -= part
            out.append(
                OrderRefunded(
                    at=w.at(w.after(paid_at, 90)),
                    amount=part,
                    currency=currency,
                    **common,
                )
            )
    return out


@st.composite
def _histories(
    draw: st.DrawFn,
    customer_id: str,
    start: datetime,
    days: int,
    zones: tuple[tzinfo, ...],
    profile_zones: tuple[str, ...],
    id_prefix: str,
) -> list[Event]:
    w = _Window(draw, start, days * _DAY, zones)
    cid = customer_id
    out: list[Event] = []

    if draw(_BOOL):
        out.append(
            CustomerRegistered(
                customer_id=cid, at=w.at(w.anywhere()), profile=draw(profiles(profile_zones))
            )
        )
    for _ in range(_count(draw, (6, 1, 1))):
        out.append(
            ProfileUpdated(
                customer_id=cid, at=w.at(w.anywhere()), profile=draw(profiles(profile_zones))
            )
        )
    for _ in range(_count(draw, (3, 2, 1))):
        source = draw(_pick(_LEAD_SOURCES))
        out.append(LeadCaptured(customer_id=cid, at=w.at(w.anywhere()), source=source))
    for _ in range(_count(draw, (3, 2, 2, 1, 1))):
        kind = draw(_pick(_sorted(ENGAGEMENT_KINDS)))
        out.append(Engaged(customer_id=cid, at=w.at(w.anywhere()), kind=kind))

    order_count = _count(draw, (2, 2, 2, 2, 2, 2, 1, 1, 1))
    previous: int | None = None
    for n in range(1, order_count + 1):
        if previous is not None and _rarely(draw, 5):
            # Now and then a second order on (about) the same day as the one before.
            placed_at = w.after(previous, 0.25)
        else:
            placed_at = w.anywhere()
        previous = placed_at
        out.extend(_draw_order(draw, w, cid, f"{id_prefix}o{n}", placed_at))
    order_ids = [f"{id_prefix}o{n}" for n in range(1, order_count + 1)]

    # Loyal buyers are asked for (and give) more feedback and reviews.
    voice = (1, 2, 2, 1) if order_count >= 3 else (3, 2, 1, 1)
    for _ in range(_count(draw, voice)):
        kind = draw(_pick(("nps", "nps", "csat")))
        lo, hi = FEEDBACK_KINDS[kind]
        # Weighted towards the top, where promoters and advocates are.
        score = draw(_pick((*range(lo, hi + 1), hi - 1, hi, hi, hi)))
        out.append(FeedbackGiven(customer_id=cid, at=w.at(w.anywhere()), score=score, kind=kind))
    for _ in range(_count(draw, voice)):
        out.append(
            ReviewPosted(
                customer_id=cid,
                at=w.at(w.anywhere()),
                rating=draw(_pick((1, 2, 3, 4, 5, 5, 5, 5, 5))),
                order_id=draw(_pick((None, *order_ids))),
            )
        )
    for k in range(1, _count(draw, (3, 2, 1)) + 1):
        complaint_id = f"{id_prefix}k{k}"
        opened = w.anywhere()
        out.append(ComplaintOpened(customer_id=cid, at=w.at(opened), complaint_id=complaint_id))
        if _usually(draw, 3):
            resolved = w.after(opened, 150)
            out.append(
                ComplaintResolved(customer_id=cid, at=w.at(resolved), complaint_id=complaint_id)
            )
    for referred in ("r1", "r2", "r3"):
        if referred != cid and _rarely(draw, 5):
            out.append(Referred(customer_id=cid, at=w.at(w.anywhere()), referred_id=referred))
    if _rarely(draw, 4):
        active: set[str] = set()
        offsets = sorted(w.anywhere() for _ in range(_count(draw, (0, 1, 3, 2))))
        for offset in offsets:
            idle = _sorted(PARTNERSHIP_KINDS - active)
            if active and (not idle or draw(_BOOL)):
                kind = draw(_pick(_sorted(active)))
                active.discard(kind)
                out.append(PartnershipEnded(customer_id=cid, at=w.at(offset), kind=kind))
            else:
                kind = draw(_pick(idle))
                active.add(kind)
                out.append(PartnershipSigned(customer_id=cid, at=w.at(offset), kind=kind))
    for _ in range(_count(draw, (4, 1, 1))):
        out.append(
            Contacted(
                customer_id=cid,
                at=w.at(w.anywhere()),
                channel=draw(_pick(_sorted(CONTACT_CHANNELS))),
                purpose=draw(_pick((None, *Purpose))),
            )
        )
    for _ in range(_count(draw, (4, 1))):
        channel = draw(_pick(_sorted(CONTACT_CHANNELS)))
        out.append(Replied(customer_id=cid, at=w.at(w.anywhere()), channel=channel))
    for _ in range(_count(draw, (4, 1, 1))):
        out.append(
            ConsentChanged(
                customer_id=cid,
                at=w.at(w.anywhere()),
                channel=draw(_pick(_sorted(CONTACT_CHANNELS))),
                purpose=draw(_pick(Purpose)),
                granted=draw(_BOOL),
            )
        )
    if _rarely(draw, 5):
        owner = draw(_pick(("u1", "u2")))
        taken = w.anywhere()
        out.append(OwnerAssigned(customer_id=cid, at=w.at(taken), owner_id=owner))
        if draw(_BOOL):
            out.append(ReturnedToPool(customer_id=cid, at=w.at(w.after(taken, 60)), owner_id=owner))

    if not out:
        out.append(LeadCaptured(customer_id=cid, at=w.at(w.anywhere()), source="store"))
    # Replay order, by the instant in UTC (a comparison within one zone ignores `fold`). Two
    # draws can land on one natural key (same kind, same second): the first one stays.
    out.sort(key=lambda e: (e.at.astimezone(UTC), e.rank, e.event_id))
    unique: dict[str, Event] = {}
    for e in out:
        unique.setdefault(e.event_id, e)
    return list(unique.values())


def histories(
    customer_id: str = "c1",
    *,
    start: datetime = _HISTORY_START,
    days: int = 3 * 365 + 1,
    zones: Sequence[str | tzinfo] = DEFAULT_ZONES,
    id_prefix: str = "",
) -> st.SearchStrategy[list[Event]]:
    """A coherent, non-empty history of one customer, in replay order.

    Orders ``o1`` .. ``oN`` may be placed, paid (at most once), shipped, delivered, cancelled and
    refunded in part or in full (refunds in the payment's currency, never more than was paid);
    around them come registrations and profile updates, leads, engagements, NPS and CSAT
    answers, reviews, complaints opened and perhaps resolved (``k1`` ..), referrals of ``r1`` ..
    ``r3``, partnerships signed and ended, contacts, replies, consent changes and owners.
    Instants spread over ``days`` days from ``start``, so that the 90-, 180- and 365-day
    thresholds are often crossed, and each is shown in one of ``zones``.

    The result is always accepted by :meth:`lifecycle.Lifecycle.record`. Order and complaint
    ids (and so their derived event ids) are the same in every history: give each customer its
    own ``id_prefix`` to record several histories in one store.

    Args:
        customer_id: whose history it is.
        start: the first instant of the window; must be aware.
        days: the window's length in days.
        zones: the zones the instants are shown in; profiles name them as time zones too.
        id_prefix: prepended to order and complaint ids.
    """
    if not isinstance(start, datetime) or start.utcoffset() is None:
        raise InvalidArgument(f"start must be an aware datetime, got {start!r}")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise InvalidArgument(f"days must be a whole number >= 1, got {days!r}")
    if not isinstance(customer_id, str) or not customer_id.strip():
        raise InvalidArgument(f"customer_id must be a non-empty string, got {customer_id!r}")
    if isinstance(zones, str) or not zones:
        raise InvalidArgument("zones must be a non-empty sequence of zone names or tzinfos")
    tzs = tuple(_to_zone(z) for z in zones)
    names = tuple(z.key for z in tzs if isinstance(z, ZoneInfo) and z.key)
    return _histories(
        customer_id, start.astimezone(UTC), days, tzs, names or DEFAULT_ZONES, id_prefix
    )


# -- policies -----------------------------------------------------------------------------------

#: Characters that policy files must escape or quote, drawn often in policy text.
_AWKWARD: Final = "\r\n\t\x00\x1f\x7f\"\\'#=[]{}.本店 \u2028\ufeff"
_TEXT: Final = st.text(
    alphabet=st.characters(codec="utf-8") | st.sampled_from(_AWKWARD), min_size=1, max_size=10
)
_RULE_CLASSES: Final = (
    AfterEvent,
    Anniversary,
    Campaign,
    Festival,
    Overdue,
    Periodic,
    PointsExpiry,
    Replenishment,
    StageEntry,
    StepSequence,
    TierDowngradeWarning,
    TierUpgrade,
    WinBack,
)
_SETTLE: Final = 8  # draws tried for a setting the validators keep refusing


def _plain_values(tp: Any) -> st.SearchStrategy[Any] | None:
    """Values of type ``tp`` (valid or not: the class's validators decide), or None."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [s for a in args if a is not type(None) and (s := _plain_values(a)) is not None]
        return st.one_of(st.none(), *inner)
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin in (tuple, frozenset, list, set):
        if origin is tuple and args and args[-1] is not Ellipsis:
            parts = [_plain_values(a) for a in args]
            return None if None in parts else st.tuples(*parts)
        item = _plain_values(args[0]) if args else None
        if item is None:
            return None
        items = st.lists(item, max_size=3)
        return items.map(frozenset) if origin is frozenset else items.map(tuple)
    if origin is not None and issubclass(origin, Mapping):
        key, value = (_plain_values(a) for a in args)
        if key is None or value is None:
            return None
        return st.dictionaries(key, value, max_size=3)
    if tp is bool:
        return _BOOL
    if tp is int:
        return st.integers(0, 40) | st.integers(-3, 10**6)
    if tp is float:
        return st.sampled_from((0.0, 0.5, 1.0, 2.0, 72.0)) | st.floats(0, 1e5)
    if tp is Decimal:
        return st.decimals(min_value=0, max_value=10**6, allow_nan=False, allow_infinity=False)
    if tp is str:
        return _TEXT
    if tp is time:
        return st.times()
    if tp is datetime:
        return aware_datetimes()
    if tp is date:
        return st.dates()
    if isinstance(tp, type) and issubclass(tp, Enum):
        return st.sampled_from(list(tp))
    if isinstance(tp, type) and attrs.has(tp):
        return _settings(tp)
    return None


#: Settings whose valid values a type alone does not say.
_POLICY_FIELDS: Final[dict[tuple[type, str], st.SearchStrategy[Any]]] = {
    (Policy, "timezone"): st.sampled_from(DEFAULT_ZONES),
    (LoyaltyPolicy, "currency"): st.sampled_from(CURRENCIES),
    (OwnerPolicy, "workdays"): st.sampled_from((None, "CN", "US", "DE")),
    (OwnerPolicy, "workday_zone"): st.sampled_from(DEFAULT_ZONES),
    (Rule, "channels"): st.lists(
        st.sampled_from(sorted(RULE_CHANNELS)), min_size=1, max_size=3, unique=True
    ).map(tuple),
    (Rule, "id"): st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Z", "C")),
        min_size=1,
        max_size=8,
    ),
}


def _field_values(cls: type, name: str, tp: Any) -> st.SearchStrategy[Any] | None:
    for klass in cls.__mro__:
        found = _POLICY_FIELDS.get((klass, name))
        if found is not None:
            return found
    return _plain_values(tp)


def _build(cls: type, kwargs: Mapping[str, Any]) -> Any:
    try:
        return cls(**kwargs)
    except (PolicyError, TypeError, ValueError):
        return None


@st.composite
def _settings_of(
    draw: st.DrawFn, cls: type, fixed: tuple[tuple[str, Any], ...] = (), or_none: bool = False
) -> Any:
    """An instance of the settings class ``cls``: each setting kept at its default or drawn,
    a drawn value kept when the class accepts it (``None`` with ``or_none`` when the class
    refuses ``fixed``)."""
    hints = typing.get_type_hints(cls)
    kwargs = dict(fixed)
    fields = [f for f in attrs.fields(cls) if f.init and f.name not in kwargs]
    required = [f for f in fields if f.default is attrs.NOTHING]
    built = None
    for attempt in range(_SETTLE):
        for f in required:
            values = _field_values(cls, f.name, hints[f.name])
            assert values is not None, f"no values for {cls.__name__}.{f.name}"
            kwargs[f.name] = draw(values)
        if attempt:  # settings that only hold together (either this one or that one)
            for f in fields:
                values = _field_values(cls, f.name, hints[f.name])
                if f not in required and values is not None:
                    if draw(_BOOL):
                        kwargs[f.name] = draw(values)
                    else:
                        kwargs.pop(f.name, None)
        built = _build(cls, kwargs)
        if built is not None:
            break
    if built is None:
        if or_none:
            return None
        reject()
    for f in fields:
        if f in required or not draw(_BOOL):
            continue
        values = _field_values(cls, f.name, hints[f.name])
        if values is None:
            continue
        for _ in range(2):
            trial = {**kwargs, f.name: draw(values)}
            if _build(cls, trial) is not None:
                kwargs = trial
                break
    return _build(cls, kwargs)


@lru_cache(maxsize=64)
def _settings(cls: type) -> st.SearchStrategy[Any]:
    if cls is CadencePolicy:
        return _cadence_policies()
    if cls is Template:
        return _templates()
    return _settings_of(cls)


@st.composite
def _templates(draw: st.DrawFn, purpose: Purpose | None = None) -> Template:
    chosen = draw(st.sampled_from(list(Purpose))) if purpose is None else purpose
    marker = (" Reply STOP", " 回T退订") if chosen is Purpose.MARKETING else ("", "")
    texts = _TEXT.filter(lambda t: "{" not in t and "}" not in t)
    fixed = (
        ("purpose", chosen),
        ("en", draw(texts) + marker[0]),
        ("zh", draw(texts) + marker[1]),
    )
    built: Template = draw(_settings_of(Template, fixed))
    return built


@st.composite
def _cadence_policies(draw: st.DrawFn) -> CadencePolicy:
    """Templates drawn (or the defaults), then rules that name them for their own purpose."""
    defaults = draw(_BOOL)
    templates: dict[str, Template] = {t.id: t for t in default_templates()} if defaults else {}
    for t in draw(st.lists(_templates(), max_size=3)):
        templates.setdefault(t.id, t)
    if not templates:
        t = draw(_templates())
        templates[t.id] = t
    rules: dict[str, Any] = {}
    for _ in range(draw(st.integers(0, 4))):
        template = draw(st.sampled_from(sorted(templates.values(), key=lambda t: t.id)))
        cls = draw(st.sampled_from(_RULE_CLASSES))
        fixed: list[tuple[str, Any]] = [
            ("template", template.id),
            ("purpose", template.purpose),
        ]
        if cls is StepSequence:
            same = sorted(t.id for t in templates.values() if t.purpose is template.purpose)
            steps = draw(
                st.lists(
                    st.builds(
                        SequenceStep,
                        after_days=st.integers(0, 60),
                        template=st.sampled_from(same),
                    ),
                    min_size=1,
                    max_size=3,
                )
            )
            fixed.append(("steps", tuple(steps)))
        rule = draw(_settings_of(cls, tuple(fixed), or_none=True))
        if rule is not None:  # e.g. a campaign for transactional messages
            rules.setdefault(rule.id, rule)
    fixed_cadence = (
        ("templates", tuple(templates.values())),
        ("rules", default_rules() if defaults and not rules else tuple(rules.values())),
    )
    built: CadencePolicy = draw(_settings_of(CadencePolicy, fixed_cadence))
    return built


def policies() -> st.SearchStrategy[Policy]:
    """Any policy the library can hold: every part, each setting kept at its default or drawn
    (``None`` where a setting may be off), text with control characters, quotes and other
    scripts, exact decimals, aware instants, drawn templates and rules of every kind that name
    them. Each policy is valid: it constructs without error."""
    return _settings(Policy)


# -- hostile values -----------------------------------------------------------------------------
#
# What a careless export, a hostile form or a bug upstream sends: each strategy below mixes
# values at and past the bounds of :mod:`lifecycle` with a few that are fine. A value drawn here
# may be refused; what the library owes is a ``LifecycleError`` naming the field, never another
# exception, and a shop that goes on working for everyone else.

_PLUS_14: Final = timezone(timedelta(hours=14))
_MINUS_12: Final = timezone(timedelta(hours=-12))


@lru_cache(maxsize=1)
def hostile_instants() -> st.SearchStrategy[Any]:
    """Instants at and past the accepted range (1970 to 2200 UTC), at extreme offsets, naive
    ones, and things that are not datetimes at all."""
    edges = [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2200, 1, 1, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
        datetime.min.replace(tzinfo=_PLUS_14),
        datetime.max.replace(tzinfo=_MINUS_12),
        datetime(1970, 1, 1, 13, tzinfo=_PLUS_14),
        datetime(2026, 3, 29, 2, 30),  # noqa: DTZ001  # naive on purpose: it must be refused
        date(2026, 1, 1),
        "2026-01-01T00:00:00+00:00",
        0,
        None,
    ]
    return st.sampled_from(edges) | st.datetimes(
        # hypothesis takes naive bounds and attaches the zones itself
        min_value=datetime(1, 1, 2),  # noqa: DTZ001
        max_value=datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.sampled_from([UTC, _PLUS_14, _MINUS_12, ZoneInfo("Asia/Shanghai")]),
    )


@lru_cache(maxsize=1)
def hostile_amounts() -> st.SearchStrategy[Any]:
    """Amounts past the ceiling and the precision, not numbers, negative, or not decimals."""
    edges: list[Any] = [
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        Decimal("-0"),
        Decimal("-0.01"),
        Decimal("1E+1000000"),
        Decimal("1E-1000000"),
        Decimal("99999999999.9999"),
        Decimal("100000000000"),
        Decimal("0.00001"),
        Decimal("1.000000000000000000000000000001"),
        "1e999999999",
        "-1",
        "abc",
        "",
        "1_000",
        10**5000,
        1.5,
        float("nan"),
        True,
        None,
    ]
    return st.sampled_from(edges) | st.decimals(allow_nan=True, allow_infinity=True)


@lru_cache(maxsize=1)
def hostile_texts() -> st.SearchStrategy[Any]:
    """Texts with lone surrogates, control characters, line breaks, bidi overrides, SQL and
    template syntax, huge lengths, and values that are not text."""
    edges: list[Any] = [
        "bad \ud800",
        "\udfff",
        "nul\x00byte",
        "bell\x07",
        "line\r\nBcc: v@third.party",
        "\u2028",
        "\u202eevil",
        "Robert'); DROP TABLE events;--",
        "{customer_name}{0.__class__}",
        "x" * 10_001,
        "y" * 100_000,
        " ",
        "",
        b"bytes",
        42,
        None,
    ]
    return st.sampled_from(edges) | st.text(max_size=30)


@lru_cache(maxsize=1)
def hostile_addresses() -> st.SearchStrategy[Any]:
    """Addresses that are lists, carry display names or header breaks, phone numbers in
    national form or with letters, and a few that are fine."""
    edges: list[Any] = [
        "me@example.com, v1@third.party, v2@third.party",
        "me@example.com; v@third.party",
        "Wei <me@example.com>",
        '"quoted local"@example.com',
        "me@example.com\r\nBcc: v@third.party",
        "me@[127.0.0.1]",
        "me@localhost",
        "@example.com",
        "me@",
        "a" * 65 + "@example.com",
        "me@" + "b" * 250 + ".com",
        "13800138000",
        "+86 138 0013 8000",
        "+86 138 0013 8000, +1 555 555 0100",
        "+0 123 456 789",
        "+1-800-FLOWERS",
        "+8613800138000\n",
        "me@example.com",
        "wx_ok",
        "\ud800@example.com",
        "",
        None,
        123,
    ]
    return st.sampled_from(edges) | st.text(max_size=40)


@attrs.frozen(kw_only=True)
class HostileCase:
    """An event class and the arguments to build one with, some of them hostile.

    ``profile`` and ``contacts`` hold the keyword arguments of the profile and its contact
    points, built by :meth:`build` (which may raise) rather than when drawn.
    """

    cls: type[Event]
    fields: dict[str, Any]
    profile: dict[str, Any] | None = None
    contacts: tuple[dict[str, Any], ...] = ()

    def build(self) -> Event:
        """The event; raises whatever the event (or its profile) raises."""
        fields = dict(self.fields)
        if self.profile is not None:
            contacts = tuple(ContactPoint(**c) for c in self.contacts)
            fields["profile"] = Profile(**self.profile, contacts=contacts)
        return self.cls(**fields)


#: The fields whose hostile values are instants, amounts or addresses; the others are texts.
_INSTANT_FIELDS: Final = frozenset({"at", "expected_delivery", "expires_at"})
_AMOUNT_FIELDS: Final = frozenset({"amount", "discount"})
_PROFILE_TEXTS: Final = ("name", "city", "occupation", "locale", "source", "referred_by")


@st.composite
def _hostile_cases(draw: st.DrawFn, classes: tuple[type[Event], ...]) -> HostileCase:
    cls: type[Event] = draw(_pick(classes))
    customer_id = draw(identifiers())
    fields: dict[str, Any] = {
        "customer_id": customer_id,
        "at": draw(aware_datetimes()),
        **_FIELDS[cls](draw, customer_id),
    }
    profile: dict[str, Any] | None = None
    contacts: tuple[dict[str, Any], ...] = ()
    if "profile" in fields:
        del fields["profile"]
        profile = {}
        if draw(st.booleans()):
            profile[draw(_pick(_PROFILE_TEXTS))] = draw(hostile_texts())
        channel = draw(_pick(_sorted(CONTACT_CHANNELS)))
        address = draw(hostile_addresses() | _address(channel))
        contacts = ({"channel": channel, "address": address},)
    names = sorted(fields)
    hostile = draw(st.lists(_pick(names), min_size=0 if profile is not None else 1, max_size=2))
    for name in hostile:
        if name in _INSTANT_FIELDS:
            fields[name] = draw(hostile_instants())
        elif name in _AMOUNT_FIELDS:
            fields[name] = draw(hostile_amounts())
        elif name in ("items", "categories"):
            fields[name] = (draw(hostile_texts()),)
        elif isinstance(fields[name], str | type(None)):
            fields[name] = draw(hostile_texts())
    return HostileCase(cls=cls, fields=fields, profile=profile, contacts=contacts)


def hostile_cases(classes: Collection[type[Event]] | None = None) -> st.SearchStrategy[HostileCase]:
    """Events of every class (or of ``classes``) with one or two fields replaced by a hostile
    value (:func:`hostile_instants`, :func:`hostile_amounts`, :func:`hostile_texts`), and
    profiles with a hostile text or address (:func:`hostile_addresses`)."""
    picked = tuple(EVENT_TYPES.values()) if classes is None else tuple(classes)
    return _hostile_cases(picked)


@st.composite
def _hostile_rows(draw: st.DrawFn) -> dict[str, str]:
    row = {
        "order_id": draw(_pick(("o1", "o2", "o3"))),
        "customer_id": draw(_pick(("c1", "c2"))),
        "amount": draw(_pick(("10.00", "1,299.00", "0"))),
        "placed_at": "2026-05-10 10:00:00",
        "paid_at": draw(_pick(("2026-05-10 10:01:00", ""))),
        "currency": draw(_pick(("CNY", "USD", ""))),
        "name": draw(_pick(("Wei", ""))),
        "phone": draw(_pick(("+86 138 0013 8000", ""))),
        "email": draw(_pick(("wei@example.com", ""))),
    }
    for column in draw(st.lists(_pick(tuple(row)), min_size=1, max_size=3)):
        if column in ("placed_at", "paid_at"):
            value = draw(
                _pick(
                    (
                        "0001-01-01 00:00:00",
                        "9999-12-31 23:59:59",
                        "1969-12-31 23:59:59",
                        "2200-01-01 00:00:00",
                        "0001-01-01T00:00:00+14:00",
                        "9999-12-31T23:59:59-12:00",
                        "2026-02-30 10:00:00",
                        "yesterday",
                    )
                )
            )
        elif column == "amount":
            value = draw(_pick(("1e999999999", "1E+1000000", "NaN", "-Infinity", "0.000001")))
        elif column in ("phone", "email"):
            value = draw(hostile_addresses().filter(lambda v: isinstance(v, str)))
        else:
            value = draw(hostile_texts().filter(lambda v: isinstance(v, str)))
        row[column] = value
    return row


def hostile_rows() -> st.SearchStrategy[dict[str, str]]:
    """Rows of a generic order export (``order_id``, ``customer_id``, ``amount``,
    ``placed_at``, ``paid_at``, ``currency``, ``name``, ``phone``, ``email``) with one to
    three cells replaced by hostile ones: instants out of range, amounts past the ceiling,
    address lists, surrogates and control characters."""
    return _hostile_rows()
