"""lifecycle: the customer side of an online shop.

Relationship stages derived from each customer's own events, relationship health with churn
early warning, and the reasons behind every answer::

    import lifecycle as lc

    shop = lc.Lifecycle.in_memory()
    shop.record(lc.OrderPaid(customer_id="c42", order_id="o1", amount=Decimal("199.00"),
                             currency="CNY", at=datetime(2026, 11, 11, 20, 5, tzinfo=tz)))
    shop.assess("c42").stage        # Stage.FIRST_PURCHASE
"""

from lifecycle._version import __version__
from lifecycle.adapters.memory import MemoryStore
from lifecycle.assessment import Assessment, assess, first_valid_order_at
from lifecycle.clock import Clock, FixedClock, SystemClock
from lifecycle.customer import CONTACT_CHANNELS, Birthday, ContactPoint, Gender, Profile, Purpose
from lifecycle.errors import (
    ChannelError,
    ConcurrencyError,
    ConflictingEvent,
    DataError,
    InvalidEvent,
    LifecycleError,
    NotFound,
    PermanentChannelError,
    PolicyError,
    StoreError,
    TransientChannelError,
)
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
    PartnershipEnded,
    PartnershipSigned,
    ProfileUpdated,
    Referred,
    Replied,
    ReturnedToPool,
    ReviewPosted,
)
from lifecycle.policy import Policy, StagePolicy, StatusPolicy
from lifecycle.ports import OutboxEntry, OutboxState, Snapshot, Store
from lifecycle.reasons import Reason
from lifecycle.serde import (
    SCHEMA_VERSION,
    event_from_dict,
    event_from_json,
    event_to_dict,
    event_to_json,
)
from lifecycle.service import Lifecycle, RecordResult
from lifecycle.stages import (
    Job,
    Stage,
    StageAssessment,
    StageChange,
    assess_stage,
    stage_criteria,
    stage_history,
    stage_table,
)
from lifecycle.status import AliveModel, Status, StatusAssessment, assess_status

__all__ = [
    "CONTACT_CHANNELS",
    "ENGAGEMENT_KINDS",
    "EVENT_TYPES",
    "FEEDBACK_KINDS",
    "PARTNERSHIP_KINDS",
    "SCHEMA_VERSION",
    "AliveModel",
    "Assessment",
    "Birthday",
    "ChannelError",
    "Clock",
    "ComplaintOpened",
    "ComplaintResolved",
    "ConcurrencyError",
    "ConflictingEvent",
    "ConsentChanged",
    "ContactPoint",
    "Contacted",
    "CustomerErased",
    "CustomerRegistered",
    "DataError",
    "Engaged",
    "Event",
    "FeedbackGiven",
    "FixedClock",
    "Gender",
    "InvalidEvent",
    "Job",
    "LeadCaptured",
    "Lifecycle",
    "LifecycleError",
    "MemoryStore",
    "NotFound",
    "OrderCancelled",
    "OrderDelivered",
    "OrderPaid",
    "OrderPlaced",
    "OrderRefunded",
    "OrderShipped",
    "OutboxEntry",
    "OutboxState",
    "OwnerAssigned",
    "PartnershipEnded",
    "PartnershipSigned",
    "PermanentChannelError",
    "Policy",
    "PolicyError",
    "Profile",
    "ProfileUpdated",
    "Purpose",
    "Reason",
    "RecordResult",
    "Referred",
    "Replied",
    "ReturnedToPool",
    "ReviewPosted",
    "Snapshot",
    "Stage",
    "StageAssessment",
    "StageChange",
    "StagePolicy",
    "Status",
    "StatusAssessment",
    "StatusPolicy",
    "Store",
    "StoreError",
    "SystemClock",
    "TransientChannelError",
    "__version__",
    "assess",
    "assess_stage",
    "assess_status",
    "event_from_dict",
    "event_from_json",
    "event_to_dict",
    "event_to_json",
    "first_valid_order_at",
    "stage_criteria",
    "stage_history",
    "stage_table",
]
