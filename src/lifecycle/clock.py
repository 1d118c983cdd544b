"""Where "now" comes from: the :class:`Clock` port, the system clock and a fixed clock for tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from lifecycle._time import require_aware

__all__ = ["Clock", "FixedClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Tells the current time. Only the service layer asks; domain functions take ``now``."""

    def now(self) -> datetime:
        """The current instant as an aware datetime."""
        ...


class SystemClock:
    """The machine's clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FixedClock:
    """A clock that says what it is told, for tests, replays and notebooks.

    Args:
        at: the instant to report; must be aware.
    """

    def __init__(self, at: datetime):
        self._at = require_aware(at, "at")

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        """Move the clock to ``at``."""
        self._at = require_aware(at, "at")

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta`` of real time (across DST changes too)."""
        if delta < timedelta(0):
            raise ValueError("advance moves forward; use set() to go back")
        self._at = (self._at.astimezone(UTC) + delta).astimezone(self._at.tzinfo)

    def __repr__(self) -> str:
        return f"FixedClock({self._at.isoformat()})"
