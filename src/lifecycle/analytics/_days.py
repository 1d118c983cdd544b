"""Calendar days of many instants at once, in a given time zone, exactly (DST included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

import numpy as np
import numpy.typing as npt

__all__ = ["DAY_US", "datetime_to_us", "local_days", "us_to_datetime"]

#: Microseconds in a day.
DAY_US = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def us_to_datetime(us: int) -> datetime:
    """A UTC datetime from microseconds since 1970."""
    return _EPOCH + timedelta(microseconds=int(us))


def datetime_to_us(at: datetime) -> int:
    """Microseconds since 1970 UTC of an aware datetime, exactly."""
    return (at - _EPOCH) // timedelta(microseconds=1)


def _offset_us(tz: tzinfo, us: int) -> int:
    offset = us_to_datetime(us).astimezone(tz).utcoffset()
    assert offset is not None  # an aware zone always gives one
    return offset // timedelta(microseconds=1)


def utc_offsets(at_us: npt.NDArray[np.int64], tz: tzinfo) -> npt.NDArray[np.int64]:
    """The zone's UTC offset, in microseconds, at each instant.

    The offset is read once per UTC day of the data's range; only instants on days where it
    changes (DST transitions, a few per year) are read one by one. Exact unless a zone changes
    its offset and changes it back within one UTC day, which no zone does.
    """
    if at_us.size == 0:
        return np.zeros(0, dtype=np.int64)
    first = int(at_us.min()) // DAY_US
    last = int(at_us.max()) // DAY_US
    starts = np.arange(first, last + 2, dtype=np.int64) * DAY_US
    daily = np.array([_offset_us(tz, s) for s in starts.tolist()], dtype=np.int64)
    changing = np.flatnonzero(daily[:-1] != daily[1:])
    if not changing.size:  # one offset throughout (UTC, or a zone without DST)
        return np.full(at_us.size, daily[0], dtype=np.int64)
    day_index = at_us // DAY_US - first
    out = daily[day_index]
    rows = np.flatnonzero(np.isin(day_index, changing))
    out[rows] = [_offset_us(tz, v) for v in at_us[rows].tolist()]
    return out


def local_days(at_us: npt.NDArray[np.int64], tz: tzinfo) -> npt.NDArray[np.int64]:
    """Days since 1970-01-01 of each instant's calendar date in ``tz``."""
    at_us = np.asarray(at_us, dtype=np.int64)
    days = utc_offsets(at_us, tz)
    days += at_us
    days //= DAY_US
    return days
