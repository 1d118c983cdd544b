"""The contact policy: quiet hours in the customer's local time, frequency caps and minimum gaps.

Quiet hours are wall-clock times, so a message due inside them moves to the first instant at
which the customer's own clock is allowed again, across DST gaps and folds in any IANA zone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any

import attrs

from lifecycle.errors import PolicyError

__all__ = ["Caps", "ContactPolicy", "QuietHours", "first_instant_at", "next_allowed"]


def _time(key: str) -> Callable[[object], time]:
    def convert(value: object) -> time:
        if isinstance(value, time):
            if value.tzinfo is not None:
                raise PolicyError("a wall-clock time takes no time zone", key=key)
            return value
        if isinstance(value, str):
            try:
                return time.fromisoformat(value)
            except ValueError:
                pass
        raise PolicyError(f"must be a time such as '21:00', got {value!r}", key=key)

    return convert


def _quiet_start(value: object) -> time:
    return _time("cadence.contact.quiet.start")(value)


def _quiet_end(value: object) -> time:
    return _time("cadence.contact.quiet.end")(value)


@attrs.frozen(kw_only=True)
class QuietHours:
    """No message goes out between ``start`` and ``end`` on the customer's clock.

    ``start`` after ``end`` spans midnight (the default, 21:00-09:00); equal times mean no quiet
    hours at all.
    """

    start: time = attrs.field(default=time(21), converter=_quiet_start)
    end: time = attrs.field(default=time(9), converter=_quiet_end)

    def contains(self, wall: time) -> bool:
        """Whether wall-clock time ``wall`` is quiet."""
        wall = wall.replace(tzinfo=None, fold=0)
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end


@lru_cache(maxsize=1 << 16)
def first_instant_at(day: date, wall: time, tz: tzinfo) -> datetime:
    """The first instant at which the clock of ``tz`` reads ``day`` ``wall`` or later (UTC).

    A wall time in a DST fold is its first occurrence; one in a gap (it never shows on the
    clock) gives the instant the clock jumps past it. Remembered: planning asks for the same
    few days, wall times and zones for every customer.
    """
    local = datetime.combine(day, wall, tzinfo=tz)
    naive = local.replace(tzinfo=None)
    early = local.replace(fold=0).astimezone(UTC)
    if early.astimezone(tz).replace(tzinfo=None) == naive:
        return early
    late = local.replace(fold=1).astimezone(UTC)
    if late.astimezone(tz).replace(tzinfo=None) == naive:  # pragma: no cover - fold=0 exists
        return late
    # In a gap: the clock reads before ``wall`` at ``lo`` and after it at ``hi``.
    lo, hi = min(early, late), max(early, late)
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(tz).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid
    return hi


def next_allowed(at: datetime, tz: tzinfo, quiet: QuietHours) -> datetime:
    """``at`` if it is outside quiet hours in ``tz``, else the first instant after them (UTC)."""
    at = at.astimezone(UTC)
    for _ in range(4):  # a skipped day (Pacific/Apia 2011) can take a second step
        local = at.astimezone(tz)
        if not quiet.contains(local.time()):
            return at
        day = local.date()
        if quiet.start > quiet.end and local.time().replace(fold=0) >= quiet.start:
            day += timedelta(days=1)
        at = max(at, first_instant_at(day, quiet.end, tz))
    return at  # pragma: no cover - no zone skips more than a day


def _limits(value: object) -> tuple[tuple[int, int], ...]:
    key = "cadence.contact.caps.limits"
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise PolicyError("give a list of (count, days) pairs", key=key)
    out = []
    for item in value:
        pair = tuple(item) if isinstance(item, Iterable) and not isinstance(item, str) else ()
        if len(pair) != 2 or not all(
            isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in pair
        ):
            raise PolicyError(f"each limit is (count >= 1, days >= 1), got {item!r}", key=key)
        out.append((pair[0], pair[1]))
    return tuple(sorted(out, key=lambda p: p[1]))


def _gap(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise PolicyError(
            f"must be a number of hours >= 0, got {value!r}",
            key="cadence.contact.caps.min_gap_hours",
        )


@attrs.frozen(kw_only=True)
class Caps:
    """At most ``count`` messages in any ``days`` days, for each (count, days) of ``limits``, and
    at least ``min_gap_hours`` between two of them."""

    limits: tuple[tuple[int, int], ...] = attrs.field(default=(), converter=_limits)
    min_gap_hours: float = attrs.field(default=0, validator=_gap)

    @property
    def min_gap(self) -> timedelta:
        return timedelta(hours=self.min_gap_hours)

    def violation(self, at: datetime, sent: Sequence[datetime]) -> tuple[str, datetime] | None:
        """Why one more message at ``at`` breaks the caps given ``sent``, and the blocking one.

        Returns ``("min_gap", other)`` or ``("cap", other)`` with a message it clashes with,
        or ``None`` when it fits.
        """
        gap = self.min_gap
        if gap:
            for other in sent:
                if abs(other - at) < gap:
                    return "min_gap", other
        for count, days in self.limits:
            span = timedelta(days=days)
            times = sorted([*sent, at])
            for i in range(len(times) - count):
                if times[i + count] - times[i] < span and times[i] <= at <= times[i + count]:
                    return "cap", times[i] if times[i] != at else times[i + count]
        return None

    def earliest(self, at: datetime, sent: Sequence[datetime]) -> datetime:
        """The first instant at or after ``at`` at which one more message fits ``sent``."""
        # Fitting starts only at ``at`` or where a sent message leaves the gap or a window.
        steps = [self.min_gap, *(timedelta(days=days) for _, days in self.limits)]
        candidates = sorted({at, *(s + d for s in sent for d in steps if s + d > at)})
        for t in candidates:
            if self.violation(t, sent) is None:
                return t
        return candidates[-1]  # pragma: no cover - the last candidate always fits


def _caps(key: str) -> Any:
    def check(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, Caps):
            raise PolicyError("must be a Caps", key=f"cadence.contact.{attr.name}")

    return check


@attrs.frozen(kw_only=True)
class ContactPolicy:
    """What may go out, beyond consent.

    Defaults: quiet hours 21:00-09:00 local; marketing at most 2 messages in 7 days and 4 in 30
    days per customer across channels, 48 hours apart; service messages at most 4 in 7 days,
    12 hours apart; transactional messages unlimited. Contacts people make and log
    (``Contacted`` without a rule) count in the same budgets when ``count_manual_contacts``.
    """

    quiet: QuietHours = attrs.field(factory=QuietHours)
    marketing: Caps = attrs.field(
        factory=lambda: Caps(limits=((2, 7), (4, 30)), min_gap_hours=48),
        validator=_caps("marketing"),
    )
    service: Caps = attrs.field(
        factory=lambda: Caps(limits=((4, 7),), min_gap_hours=12), validator=_caps("service")
    )
    count_manual_contacts: bool = True

    @quiet.validator
    def _check_quiet(self, attr: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, QuietHours):
            raise PolicyError("must be a QuietHours", key="cadence.contact.quiet")
