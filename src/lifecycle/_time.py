"""Time helpers shared by the domain: aware-datetime checks, local calendar days."""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from lifecycle.errors import InvalidEvent

__all__ = ["is_aware", "local_date", "require_aware", "zone"]


def is_aware(value: datetime) -> bool:
    """Whether ``value`` pins an instant (has a tzinfo that gives an offset)."""
    return value.tzinfo is not None and value.tzinfo.utcoffset(value) is not None


def require_aware(value: object, field: str) -> datetime:
    """Return ``value`` if it is an aware datetime, else raise :class:`InvalidEvent`."""
    if not isinstance(value, datetime):
        raise InvalidEvent(f"expected an aware datetime, got {type(value).__name__}", field=field)
    if not is_aware(value):
        raise InvalidEvent(
            "naive datetime: give it a time zone (e.g. tzinfo=ZoneInfo('Asia/Shanghai'))",
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
