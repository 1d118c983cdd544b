"""The interfaces a host implements to plug in its own infrastructure.

Hosts implement these without inheriting from anything; ``lifecycle.testing`` holds the
conformance suites that prove an implementation keeps the contract.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

import attrs

from lifecycle.clock import Clock
from lifecycle.events import Event
from lifecycle.stages import Stage
from lifecycle.status import Status

__all__ = ["Clock", "Snapshot", "Store"]


@attrs.frozen(kw_only=True)
class Snapshot:
    """The latest assessment of a customer, kept beside the events for fast filtering.

    A snapshot holds for instants in ``[as_of, valid_until)`` as long as the customer has
    exactly ``version`` events; outside that, the facade assesses again.
    """

    customer_id: str
    stage: Stage
    status: Status | None
    as_of: datetime
    valid_until: datetime | None
    version: int

    def holds_at(self, at: datetime) -> bool:
        """Whether this snapshot is the assessment at ``at``."""
        return self.as_of <= at and (self.valid_until is None or at < self.valid_until)


@runtime_checkable
class Store(Protocol):
    """Where events and snapshots live.

    Contract, for every implementation:

    - ``append`` is atomic: every event and snapshot of the call is stored, or none is.
    - Events are idempotent by ``event_id``: appending an event equal to a stored one stores
      nothing; appending a *different* event under a stored id raises ``ConflictingEvent`` and
      stores nothing.
    - A customer's ``version`` is the number of their stored events. ``append`` with
      ``expected_versions`` raises ``ConcurrencyError`` (storing nothing) when any listed
      customer's version differs, so two writers never both win silently.
    - ``history`` returns events in replay order (``lifecycle.events.sort_key``).
    - Driver failures surface as ``StoreError``; nothing is half-written.
    """

    def append(
        self,
        events: Sequence[Event],
        snapshots: Sequence[Snapshot] = (),
        *,
        expected_versions: Mapping[str, int] | None = None,
    ) -> int:
        """Store events and snapshots together; return how many events were new."""
        ...

    def events_by_id(self, event_ids: Iterable[str]) -> dict[str, Event]:
        """The stored events among ``event_ids``, by id; unknown ids are left out."""
        ...

    def history(self, customer_id: str) -> tuple[Event, ...]:
        """The customer's events in replay order; empty for an unknown customer."""
        ...

    def version(self, customer_id: str) -> int:
        """How many events the customer has; 0 for an unknown customer."""
        ...

    def customer_ids(self) -> Iterator[str]:
        """Every customer with at least one event, in sorted order."""
        ...

    def referrers(self, customer_id: str) -> frozenset[str]:
        """The customers whose ``Referred`` events name ``customer_id``."""
        ...

    def put_snapshots(self, snapshots: Sequence[Snapshot]) -> None:
        """Replace snapshots, skipping any whose ``version`` is not the customer's current one."""
        ...

    def snapshots(
        self,
        *,
        stages: Collection[Stage] | None = None,
        statuses: Collection[Status | None] | None = None,
        holding_at: datetime | None = None,
        expired_at: datetime | None = None,
    ) -> Iterator[Snapshot]:
        """Stored snapshots in customer id order, filtered by every argument given.

        ``holding_at`` keeps those that hold at that instant (``as_of <= t < valid_until``),
        ``expired_at`` those that do not. Every customer the facade recorded has a snapshot.
        """
        ...

    def snapshot(self, customer_id: str) -> Snapshot | None:
        """The customer's stored snapshot, if any."""
        ...

    def close(self) -> None:
        """Release resources; the store is not used afterwards."""
        ...
