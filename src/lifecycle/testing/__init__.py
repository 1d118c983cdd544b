"""The test kit for hosts and for ``lifecycle``'s own tests.

:mod:`lifecycle.testing.strategies` holds hypothesis strategies for aware datetimes, profiles,
events and coherent customer histories; the conformance suites for ``Store`` implementations
(:class:`StoreContract`, and one per capability) and ``Channel`` ones (:class:`ChannelContract`)
are importable from here: ``from lifecycle.testing import StoreContract``. Nothing here is imported by ``import lifecycle``: the kit needs
hypothesis (and pytest), which the library itself does not.
"""

from lifecycle.testing.channel import ChannelContract
from lifecycle.testing.store import (
    ErasureContract,
    EventLogContract,
    OutboxContract,
    PlanIndexContract,
    ShopSettingsContract,
    SnapshotContract,
    StoreContract,
)

__all__ = [
    "ChannelContract",
    "ErasureContract",
    "EventLogContract",
    "OutboxContract",
    "PlanIndexContract",
    "ShopSettingsContract",
    "SnapshotContract",
    "StoreContract",
]
