"""Time helpers shared by the domain: aware-datetime checks, local calendar days.

Every instant the library takes (an event's, or the ``now`` of a call) passes
:func:`require_aware`, the one place that bounds them to :data:`EARLIEST` ..
:data:`LATEST` (UTC): far enough on both sides for any shop, near enough that adding a
horizon, a lookahead or a year never leaves what ``datetime`` can hold.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from lifecycle.errors import InvalidEvent

__all__ = ["EARLIEST", "LATEST", "is_aware", "local_date", "require_aware", "zone"]

#: The earliest instant the library accepts (inclusive).
EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: The first instant past the range the library accepts (exclusive).
LATEST: Final = datetime(2200, 1, 1, tzinfo=UTC)


def is_aware(value: datetime) -> bool:
    """Whether ``value`` pins an instant (has a tzinfo that gives an offset)."""
    try:
        return value.tzinfo is not None and value.tzinfo.utcoffset(value) is not None
    except (OverflowError, ValueError):  # a zone that cannot place this wall time
        return False


def require_aware(value: object, field: str) -> datetime:
    """Return ``value`` if it is an aware datetime from :data:`EARLIEST` up to (not
    including) :data:`LATEST`, else raise :class:`InvalidEvent` naming ``field``."""
    if not isinstance(value, datetime):
        raise InvalidEvent(f"expected an aware datetime, got {type(value).__name__}", field=field)
    if not is_aware(value):
        raise InvalidEvent(
            "naive datetime: give it a time zone (e.g. tzinfo=ZoneInfo('Asia/Shanghai'))",
            field=field,
        )
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError):  # datetime.min written at +08:00, say
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise InvalidEvent(
            f"out of range: instants run from {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d} UTC",
            field=field,
        )
    return value


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``; raises ``ZoneInfoNotFoundError`` or ``ValueError``."""
    return ZoneInfo(name)


@lru_cache(maxsize=1)
def _iana_names() -> frozenset[str]:
    # "localtime" and friends name the host's setting, not a zone: results would vary by machine.
    return frozenset(available_timezones() - {"localtime", "posixrules", "Factory"})


def valid_zone_name(name: str) -> bool:
    """Whether ``name`` is a known IANA time zone (not a host-dependent alias)."""
    if not isinstance(name, str) or name not in _iana_names():
        return False
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def local_date(at: datetime, tz: tzinfo) -> date:
    """The calendar date of instant ``at`` in zone ``tz``."""
    return at.astimezone(tz).date()


def to_utc(at: datetime) -> datetime:
    """``at`` as a UTC datetime."""
    return at.astimezone(UTC)
