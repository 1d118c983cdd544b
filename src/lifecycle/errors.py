"""The exceptions ``lifecycle`` raises, one tree under :class:`LifecycleError`.

::

    LifecycleError
    ├── InvalidEvent (ValueError)          an event, or a batch of them, that cannot be recorded
    │   ├── ConflictingEvent               an event id already used by a different event
    │   ├── InsufficientPoints             a redemption larger than the balance
    │   └── OwnerRuleBroken                an owner change the pool rules refuse
    ├── PolicyError (ValueError)           a policy value that makes no sense
    ├── DataError (ValueError)             input data (columns, arrays, tables) that cannot be
    │                                      analysed or fitted
    ├── ImportFailed (ValueError)          a file of orders that cannot be imported
    ├── ModelError                         a customer-value model cannot be fitted or used
    │   └── ConvergenceError               the fit did not reach a maximum of the likelihood
    ├── InvalidArgument (ValueError)       an argument of a call that makes no sense
    ├── StoreError                         the store failed; nothing was written
    │   └── ConcurrencyError               another writer changed the customer first
    ├── ErasureIncomplete                  the erasure committed, but old copies may remain
    ├── ChannelError                       a message could not be sent
    │   ├── TransientChannelError          try again later
    │   ├── PermanentChannelError          do not try again
    │   └── InDoubtChannelError            sent, but no answer came: it may have arrived
    ├── NotFound (LookupError)             no such customer
    ├── MissingExtra (ImportError)         an optional dependency is not installed
    └── UsageError                         a mistake on the command line

Messages name the field, the event id or the customer id, never personal data.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lifecycle.io import RowProblem

__all__ = [
    "ChannelError",
    "ConcurrencyError",
    "ConflictingEvent",
    "ConvergenceError",
    "DataError",
    "ErasureIncomplete",
    "ImportFailed",
    "InDoubtChannelError",
    "InsufficientPoints",
    "InvalidArgument",
    "InvalidEvent",
    "LifecycleError",
    "MissingExtra",
    "ModelError",
    "NotFound",
    "OwnerRuleBroken",
    "PermanentChannelError",
    "PolicyError",
    "StoreError",
    "TransientChannelError",
    "UsageError",
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


class InsufficientPoints(InvalidEvent):
    """A redemption larger than the balance at its instant; nothing was recorded.

    Attributes:
        balance: the points available just before the redemption.
        requested: the points the redemption asked for.
    """

    def __init__(self, *, event_id: str, balance: int, requested: int):
        self.balance = balance
        self.requested = requested
        super().__init__(
            f"redeems {requested} points but only {max(balance, 0)} are available",
            field="points",
            event_id=event_id,
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_insufficient, (self.event_id, self.balance, self.requested))


def _rebuild_insufficient(event_id: str, balance: int, requested: int) -> InsufficientPoints:
    return InsufficientPoints(event_id=event_id, balance=balance, requested=requested)


class OwnerRuleBroken(InvalidEvent):
    """An owner event (an assignment, a protection) that the pool rules refuse: the owner is
    full, cooling down for the customer, past the day's claim quota, or out of protections;
    nothing of its batch was recorded.

    Attributes:
        rule: the policy key of the rule refused (``"owners.capacity"``, ...).
        customer_id: the customer the event is about.
        owner_id: the owner the event names.
        detail: the rule's words (English).
    """

    def __init__(
        self, *, rule: str, customer_id: str, owner_id: str, event_id: str | None, detail: str
    ):
        self.rule = rule
        self.customer_id = customer_id
        self.owner_id = owner_id
        self.detail = detail
        super().__init__(
            f"{rule}: {detail} (customer {customer_id!r})", field="owner_id", event_id=event_id
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_owner,
            (self.rule, self.customer_id, self.owner_id, self.event_id, self.detail),
        )


def _rebuild_owner(
    rule: str, customer_id: str, owner_id: str, event_id: str | None, detail: str
) -> OwnerRuleBroken:
    return OwnerRuleBroken(
        rule=rule, customer_id=customer_id, owner_id=owner_id, event_id=event_id, detail=detail
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
    """Input data that cannot be analysed or fitted: columns, arrays, tables and data frames
    that are malformed, or that cannot identify a customer-value model.

    Attributes:
        column: the offending column or argument, when one is to blame.
    """

    def __init__(self, message: str, *, column: str | None = None):
        self.column = column
        super().__init__(f"column {column!r}: {message}" if column else message)
        self.detail = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.detail,), {"column": self.column}))


class ImportFailed(LifecycleError, ValueError):
    """A file that cannot be imported; ``problems`` lists every bad row (nothing was read)."""

    def __init__(self, message: str, problems: Sequence[RowProblem] = ()):
        self.problems = tuple(problems)
        shown = "; ".join(str(p) for p in self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"{message}: {shown}{more}" if shown else message)


class ModelError(LifecycleError):
    """A customer-value model cannot be fitted or used; no result was made."""


class ConvergenceError(ModelError):
    """The optimiser did not reach a maximum of the likelihood.

    Attributes:
        model: the model's name (``"BG/NBD"``, ...).
        reason: what went wrong, in words.
    """

    def __init__(self, model: str, reason: str):
        self.model = model
        self.reason = reason
        super().__init__(f"{model} fit did not converge: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.model, self.reason))


class InvalidArgument(LifecycleError, ValueError):
    """An argument of a call that cannot be used (a stage that does not exist, a timeout
    that is not a number); nothing was done.

    Attributes:
        argument: the name of the offending argument.
    """

    def __init__(self, message: str, *, argument: str):
        self.argument = argument
        self.detail = message
        super().__init__(f"argument {argument!r}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.detail,), {"argument": self.argument}))


class ErasureIncomplete(LifecycleError):
    """The erasure was recorded and the personal data redacted, but old copies may remain in
    the store's files (a write-ahead log that could not be emptied yet). Erase again.

    Attributes:
        customer_id: the customer being erased.
    """

    def __init__(self, customer_id: str, reason: str):
        self.customer_id = customer_id
        self.reason = reason
        super().__init__(
            f"customer {customer_id!r} is erased, but old copies may remain until the store's "
            f"files are cleaned ({reason}); erase again to finish"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.customer_id, self.reason))


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
    """A failure that may pass: retry with backoff.

    Attributes:
        retry_after: how long the provider asked to wait (an HTTP ``Retry-After``), when it
            said; the dispatcher waits at least that long before the next try.
    """

    def __init__(self, message: str, *, retry_after: timedelta | None = None):
        self.retry_after = retry_after
        self.detail = message
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.detail,), {"retry_after": self.retry_after}))


class PermanentChannelError(ChannelError):
    """A failure that will not pass: stop and report it."""


class InDoubtChannelError(ChannelError):
    """The message went out but no answer came back (a timeout or a dropped connection after
    the request was sent): the provider may have accepted it.

    The dispatcher treats it as an attempt of unknown outcome: a channel that deduplicates
    gets the message again under the same key; any other only when
    ``DispatchPolicy.resend_in_doubt`` says so, else the entry is reported ``in_doubt``.
    """


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


class MissingExtra(LifecycleError, ImportError):
    """A feature needs an optional dependency that is not installed; the message says which
    extra of ``lifecycle`` brings it.

    Attributes:
        package: the missing distribution (``"scipy"``, ``"pandas"``, ...).
        extra: the extra that installs it (``pip install 'lifecycle[<extra>]'``).
        feature: what needed it, in words.
    """

    def __init__(self, *, package: str, extra: str, feature: str):
        self.package = package
        self.extra = extra
        self.feature = feature
        super().__init__(
            f"{feature} needs {package}: pip install 'lifecycle[{extra}]'", name=package
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (
                type(self),
                (),
                {"package": self.package, "extra": self.extra, "feature": self.feature},
            ),
        )


class UsageError(LifecycleError):
    """A mistake on the command line; printed as one line, exit code 2."""


def _rebuild(cls: type[Exception], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Exception:
    """Unpickle an error from its constructor arguments, not from its finished message."""
    return cls(*args, **kwargs)
