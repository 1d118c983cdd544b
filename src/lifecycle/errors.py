"""The exceptions ``lifecycle`` raises, one tree under :class:`LifecycleError`.

::

    LifecycleError
    ├── InvalidEvent (ValueError)          an event, or a batch of them, that cannot be recorded
    │   └── ConflictingEvent               an event id already used by a different event
    ├── PolicyError (ValueError)           a policy value that makes no sense
    ├── DataError (ValueError)             columnar input that cannot be analysed
    ├── StoreError                         the store failed; nothing was written
    │   └── ConcurrencyError               another writer changed the customer first
    ├── ChannelError                       a message could not be sent
    │   ├── TransientChannelError          try again later
    │   └── PermanentChannelError          do not try again
    └── NotFound (LookupError)             no such customer

Messages name the field, the event id or the customer id, never personal data.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ChannelError",
    "ConcurrencyError",
    "ConflictingEvent",
    "DataError",
    "InvalidEvent",
    "LifecycleError",
    "NotFound",
    "PermanentChannelError",
    "PolicyError",
    "StoreError",
    "TransientChannelError",
]


class LifecycleError(Exception):
    """Base of every error ``lifecycle`` raises on purpose."""


class InvalidEvent(LifecycleError, ValueError):
    """An event that cannot be recorded; nothing of its batch was recorded.

    Attributes:
        field: the offending field, when one field is to blame.
        event_id: the event's id, when it has one yet.
    """

    def __init__(self, message: str, *, field: str | None = None, event_id: str | None = None):
        self.field = field
        self.event_id = event_id
        where = []
        if event_id is not None:
            where.append(f"event {event_id!r}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.detail = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (type(self), (self.detail,), {"field": self.field, "event_id": self.event_id}),
        )


class ConflictingEvent(InvalidEvent):
    """A different event already holds this event id; events are never merged."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.event_id,))

    def __init__(self, event_id: str):
        super().__init__(
            "a different event with this id is already recorded; "
            "give each distinct event its own id",
            event_id=event_id,
        )


class PolicyError(LifecycleError, ValueError):
    """A policy value that cannot be used.

    Attributes:
        key: the dotted name of the offending setting.
    """

    def __init__(self, message: str, *, key: str | None = None):
        self.key = key
        self.detail = message
        super().__init__(f"policy {key!r}: {message}" if key else message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.detail,), {"key": self.key}))


class DataError(LifecycleError, ValueError):
    """Columnar input (arrays, tables, data frames) that cannot be analysed.

    Attributes:
        column: the offending column, when one is to blame.
    """

    def __init__(self, message: str, *, column: str | None = None):
        self.column = column
        super().__init__(f"column {column!r}: {message}" if column else message)
        self.detail = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.detail,), {"column": self.column}))


class StoreError(LifecycleError):
    """The store could not do what was asked; the call changed nothing."""


class ConcurrencyError(StoreError):
    """Another writer changed the same customer first; retry the call.

    Attributes:
        customer_id: the customer both writers touched.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.customer_id,))

    def __init__(self, customer_id: str):
        self.customer_id = customer_id
        super().__init__(
            f"customer {customer_id!r} was changed by another writer; nothing was recorded, "
            "retry the call"
        )


class ChannelError(LifecycleError):
    """A message could not be sent."""


class TransientChannelError(ChannelError):
    """A failure that may pass: retry with backoff."""


class PermanentChannelError(ChannelError):
    """A failure that will not pass: stop and report it."""


class NotFound(LifecycleError, LookupError):
    """No such customer.

    Attributes:
        customer_id: the id that was looked up.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.customer_id,))

    def __init__(self, customer_id: str):
        self.customer_id = customer_id
        super().__init__(f"no customer {customer_id!r}")


def _rebuild(cls: type[Exception], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Exception:
    """Unpickle an error from its constructor arguments, not from its finished message."""
    return cls(*args, **kwargs)
