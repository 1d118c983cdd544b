"""The events: immutable facts about a customer, the only source of every derived state.

Every event has a ``customer_id``, an aware ``at`` and an ``event_id``. Leave ``event_id`` out and
it is derived from the event's natural key (kind plus order id, complaint id, customer and time,
...), never at random, so the same fact sent twice gets the same id and is recorded once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Final

import attrs

from lifecycle._bounds import MAX_NAME_LENGTH, check_amount, check_name, check_text
from lifecycle._time import require_aware, to_utc
from lifecycle.customer import Profile
from lifecycle.errors import InvalidEvent
from lifecycle.vocabulary import CONTACT_CHANNELS, Purpose

__all__ = [
    "ENGAGEMENT_KINDS",
    "EVENT_TYPES",
    "FEEDBACK_KINDS",
    "PARTNERSHIP_KINDS",
    "ComplaintOpened",
    "ComplaintResolved",
    "ConsentChanged",
    "Contacted",
    "CustomerErased",
    "CustomerRegistered",
    "Engaged",
    "Event",
    "FeedbackGiven",
    "LeadCaptured",
    "OrderCancelled",
    "OrderDelivered",
    "OrderPaid",
    "OrderPlaced",
    "OrderRefunded",
    "OrderShipped",
    "OwnerAssigned",
    "OwnerProtected",
    "PartnershipEnded",
    "PartnershipSigned",
    "PointsRedeemed",
    "ProfileUpdated",
    "Referred",
    "Replied",
    "ReturnedToPool",
    "ReviewPosted",
    "TierGranted",
    "TierRevoked",
    "sort_key",
]

#: Engagement kinds the library knows; hosts may send others.
ENGAGEMENT_KINDS: Final = frozenset(
    {"inquiry", "chat", "add_to_cart", "coupon_claim", "visit", "follow", "favorite"}
)
#: Feedback kinds and the score range of each.
FEEDBACK_KINDS: Final = {"nps": (0, 10), "csat": (1, 5)}
#: Kinds of partnership agreement.
PARTNERSHIP_KINDS: Final = frozenset({"agent", "distributor", "reseller", "shareholder"})
#: The longest event id: a natural key joins a few names and an instant.
_MAX_EVENT_ID: Final = 4 * MAX_NAME_LENGTH


# -- validators and converters ------------------------------------------------------------------


def _check_id(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    check_name(value, attr.name)


def _check_optional_id(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _check_id(inst, attr, value)


def _check_aware(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    require_aware(value, attr.name)


def _check_optional_aware(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        require_aware(value, attr.name)


def _check_optional_text(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_text(value, attr.name)


def _decimal(value: object, field: str) -> Decimal:
    """Money as ``Decimal``: Decimal, int and numeric strings pass; floats are refused."""
    if isinstance(value, bool):
        raise InvalidEvent("an amount must be a Decimal, not a bool", field=field)
    if isinstance(value, float):
        raise InvalidEvent(
            "an amount must be a Decimal (or int/str), not a float, which cannot hold cents "
            "exactly: write Decimal('19.90')",
            field=field,
        )
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | str):
        try:
            return Decimal(value)
        except InvalidOperation as e:
            raise InvalidEvent("not a number", field=field) from e
    raise InvalidEvent(f"an amount must be a Decimal, got {type(value).__name__}", field=field)


def _check_amount(inst: object, attr: attrs.Attribute[Any], value: Decimal) -> None:
    check_amount(value, attr.name)


def _currency(value: object) -> str:
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isalpha():
        raise InvalidEvent("must be a three-letter ISO 4217 code such as 'CNY'", field="currency")
    return value.upper()


def _str_tuple(value: object, field: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidEvent("give a collection of strings, not one string", field=field)
    out = tuple(value)
    for item in out:
        check_name(item, field)
    return out


def _purpose(value: object) -> Purpose:
    try:
        return Purpose(value)  # type: ignore[arg-type]  # a bad value raises ValueError
    except ValueError as e:
        raise InvalidEvent(
            f"unknown purpose; use one of {sorted(p.value for p in Purpose)}", field="purpose"
        ) from e


def _optional_purpose(value: object) -> Purpose | None:
    return None if value is None else _purpose(value)


def _amount(value: object) -> Decimal:
    return _decimal(value, "amount")


def _discount(value: object) -> Decimal:
    return _decimal(value, "discount")


def _items(value: object) -> tuple[str, ...]:
    return _str_tuple(value, "items")


def _categories(value: object) -> tuple[str, ...]:
    return _str_tuple(value, "categories")


def _instance_of(kind: type) -> Any:
    """Like ``attrs.validators.instance_of``, but an ``InvalidEvent`` naming the field."""

    def check(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise InvalidEvent(f"must be a {kind.__name__}", field=attr.name)

    return check


def _utc_key(value: datetime | None) -> datetime | None:
    """Events compare instants: the same moment written in two zones is the same event."""
    return None if value is None else to_utc(value)


def _stamp(at: datetime) -> str:
    return to_utc(at).strftime("%Y%m%dT%H%M%S.%fZ")


def _id_field() -> Any:
    return attrs.field(validator=_check_id)


# -- the base -----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Event:
    """What every event has: the customer, the instant and a stable id.

    Leave ``event_id`` empty to derive it from the event's natural key.
    """

    event_type: ClassVar[str] = "event"
    #: Order among events at the same instant, so replays are deterministic.
    rank: ClassVar[int] = 50

    customer_id: str = attrs.field(validator=_check_id)
    at: datetime = attrs.field(validator=_check_aware, eq=_utc_key)
    event_id: str = attrs.field(default="", validator=_instance_of(str))
    #: The replay order, worked out once: sorting histories is the hot path of assessment.
    _sort_key: tuple[datetime, int, str] = attrs.field(init=False, repr=False, eq=False, hash=False)

    def __attrs_post_init__(self) -> None:
        if not self.event_id.strip():
            object.__setattr__(self, "event_id", self.natural_key())
        check_name(self.event_id, "event_id", max_length=_MAX_EVENT_ID)
        object.__setattr__(self, "_sort_key", (to_utc(self.at), self.rank, self.event_id))

    def natural_key(self) -> str:
        """The id this event gets when the host gives none."""
        return f"{self.event_type}:{self.customer_id}:{_stamp(self.at)}"

    def personal_fields(self) -> tuple[str, ...]:
        """Names of the fields that hold personal data (erased on request)."""
        return _personal_fields(type(self))

    def redacted(self) -> Event:
        """This event without personal data: free text dropped, a profile cut to its time zone.

        What stays (ids, instants, amounts, ratings, the zone that calendar rules need) keeps
        shop-level figures and stages unchanged after an erasure.
        """
        changes: dict[str, Any] = {}
        for name in self.personal_fields():
            value = getattr(self, name)
            if isinstance(value, Profile):
                changes[name] = Profile(timezone=value.timezone)
            elif value is not None:
                changes[name] = None
        return attrs.evolve(self, **changes) if changes else self


_PERSONAL: dict[type[Event], tuple[str, ...]] = {}


def _personal_fields(cls: type[Event]) -> tuple[str, ...]:
    names = _PERSONAL.get(cls)
    if names is None:
        names = _PERSONAL[cls] = tuple(
            f.name for f in attrs.fields(cls) if f.metadata.get("personal")
        )
    return names


def sort_key(event: Event) -> tuple[datetime, int, str]:
    """The replay order: by instant, then by kind (a payment before its refund), then by id."""
    return event._sort_key


def _personal_text() -> Any:
    return attrs.field(
        default=None, validator=_check_optional_text, repr=False, metadata={"personal": True}
    )


# -- who the customer is ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CustomerRegistered(Event):
    """The customer became known to the shop with this profile."""

    event_type: ClassVar[str] = "registered"
    rank: ClassVar[int] = 0
    profile: Profile = attrs.field(
        factory=Profile,
        validator=_instance_of(Profile),
        metadata={"personal": True},
    )

    def natural_key(self) -> str:
        return f"registered:{self.customer_id}"


@attrs.frozen(kw_only=True)
class ProfileUpdated(Event):
    """The customer's profile changed: the fields set in ``profile`` replace the old ones."""

    event_type: ClassVar[str] = "profile_updated"
    rank: ClassVar[int] = 1
    profile: Profile = attrs.field(validator=_instance_of(Profile), metadata={"personal": True})


@attrs.frozen(kw_only=True)
class LeadCaptured(Event):
    """Known to the shop (lead list, visitor, follower) but not engaged yet."""

    event_type: ClassVar[str] = "lead"
    rank: ClassVar[int] = 2
    source: str = attrs.field(default="unknown", validator=_check_id)

    def natural_key(self) -> str:
        return f"lead:{self.customer_id}:{self.source}:{_stamp(self.at)}"


@attrs.frozen(kw_only=True)
class Engaged(Event):
    """An engagement: inquiry, chat, add-to-cart, coupon claim, visit, ..."""

    event_type: ClassVar[str] = "engaged"
    rank: ClassVar[int] = 3
    kind: str = attrs.field(validator=_check_id)

    def natural_key(self) -> str:
        return f"engaged:{self.customer_id}:{self.kind}:{_stamp(self.at)}"


# -- orders -------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class _OrderEvent(Event):
    order_id: str = _id_field()

    def natural_key(self) -> str:
        return f"{self.event_type}:{self.order_id}"


@attrs.frozen(kw_only=True)
class _MoneyOrderEvent(_OrderEvent):
    amount: Decimal = attrs.field(converter=_amount, validator=_check_amount)
    currency: str = attrs.field(converter=_currency)
    items: tuple[str, ...] = attrs.field(default=(), converter=_items)
    categories: tuple[str, ...] = attrs.field(default=(), converter=_categories)
    discount: Decimal = attrs.field(
        default=Decimal(0), converter=_discount, validator=_check_amount
    )


@attrs.frozen(kw_only=True)
class OrderPlaced(_MoneyOrderEvent):
    """An order was placed; it is not a valid order until it is paid."""

    event_type: ClassVar[str] = "order_placed"
    rank: ClassVar[int] = 10


@attrs.frozen(kw_only=True)
class OrderPaid(_MoneyOrderEvent):
    """An order was paid: a paid order that is not cancelled or fully refunded is valid."""

    event_type: ClassVar[str] = "order_paid"
    rank: ClassVar[int] = 11


@attrs.frozen(kw_only=True)
class OrderShipped(_OrderEvent):
    """An order left the warehouse."""

    event_type: ClassVar[str] = "order_shipped"
    rank: ClassVar[int] = 12
    carrier: str | None = attrs.field(default=None, validator=_check_optional_id)
    tracking: str | None = attrs.field(default=None, validator=_check_optional_id)
    expected_delivery: datetime | None = attrs.field(
        default=None, validator=_check_optional_aware, eq=_utc_key
    )


@attrs.frozen(kw_only=True)
class OrderDelivered(_OrderEvent):
    """An order reached the customer."""

    event_type: ClassVar[str] = "order_delivered"
    rank: ClassVar[int] = 13


@attrs.frozen(kw_only=True)
class OrderCancelled(_OrderEvent):
    """An order was cancelled: it is no longer a valid order."""

    event_type: ClassVar[str] = "order_cancelled"
    rank: ClassVar[int] = 14
    reason: str | None = _personal_text()


@attrs.frozen(kw_only=True)
class OrderRefunded(_OrderEvent):
    """Money went back to the customer for an order, wholly or in part."""

    event_type: ClassVar[str] = "order_refunded"
    rank: ClassVar[int] = 15
    amount: Decimal = attrs.field(converter=_amount, validator=_check_amount)
    currency: str = attrs.field(converter=_currency)
    reason: str | None = _personal_text()

    def natural_key(self) -> str:
        # 10 and 10.00 are one amount, so they give one id.
        return f"order_refunded:{self.order_id}:{_stamp(self.at)}:{self.amount.normalize():f}"


# -- contact ------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Contacted(Event):
    """The shop reached out: through which channel, by which rule and template, under which key."""

    event_type: ClassVar[str] = "contacted"
    rank: ClassVar[int] = 30
    channel: str = _id_field()
    purpose: Purpose | None = attrs.field(default=None, converter=_optional_purpose)
    rule: str | None = attrs.field(default=None, validator=_check_optional_id)
    template: str | None = attrs.field(default=None, validator=_check_optional_id)
    key: str | None = attrs.field(default=None, validator=_check_optional_id)

    def natural_key(self) -> str:
        if self.key is not None:
            return f"contacted:{self.key}"
        return f"contacted:{self.customer_id}:{self.channel}:{_stamp(self.at)}"


@attrs.frozen(kw_only=True)
class Replied(Event):
    """The customer answered on ``channel``."""

    event_type: ClassVar[str] = "replied"
    rank: ClassVar[int] = 31
    channel: str = _id_field()
    text: str | None = _personal_text()

    def natural_key(self) -> str:
        return f"replied:{self.customer_id}:{self.channel}:{_stamp(self.at)}"


# -- voice of the customer ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class FeedbackGiven(Event):
    """A survey answer: NPS 0-10 by default, or CSAT 1-5."""

    event_type: ClassVar[str] = "feedback"
    rank: ClassVar[int] = 40
    score: int = attrs.field()
    kind: str = attrs.field(default="nps")
    text: str | None = _personal_text()

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.kind, str) or self.kind not in FEEDBACK_KINDS:
            raise InvalidEvent(
                f"unknown feedback kind; use one of {sorted(FEEDBACK_KINDS)}",
                field="kind",
            )
        lo, hi = FEEDBACK_KINDS[self.kind]
        if isinstance(self.score, bool) or not isinstance(self.score, int):
            raise InvalidEvent("must be an integer", field="score")
        if not lo <= self.score <= hi:
            raise InvalidEvent(f"{self.kind} score must be {lo}-{hi}", field="score")
        super().__attrs_post_init__()

    def natural_key(self) -> str:
        return f"feedback:{self.customer_id}:{self.kind}:{_stamp(self.at)}"


@attrs.frozen(kw_only=True)
class ReviewPosted(Event):
    """A product or order review with a rating of 1-5."""

    event_type: ClassVar[str] = "review"
    rank: ClassVar[int] = 41
    rating: int = attrs.field()
    order_id: str | None = attrs.field(default=None, validator=_check_optional_id)
    text: str | None = _personal_text()

    @rating.validator
    def _check_rating(self, _: attrs.Attribute[int], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidEvent("must be an integer", field="rating")
        if not 1 <= value <= 5:
            raise InvalidEvent("rating must be 1-5", field="rating")

    def natural_key(self) -> str:
        return f"review:{self.customer_id}:{self.order_id or ''}:{_stamp(self.at)}"


@attrs.frozen(kw_only=True)
class ComplaintOpened(Event):
    """The customer complained."""

    event_type: ClassVar[str] = "complaint_opened"
    rank: ClassVar[int] = 42
    complaint_id: str = _id_field()
    order_id: str | None = attrs.field(default=None, validator=_check_optional_id)
    text: str | None = _personal_text()

    def natural_key(self) -> str:
        return f"complaint_opened:{self.complaint_id}"


@attrs.frozen(kw_only=True)
class ComplaintResolved(Event):
    """A complaint was resolved."""

    event_type: ClassVar[str] = "complaint_resolved"
    rank: ClassVar[int] = 43
    complaint_id: str = _id_field()
    text: str | None = _personal_text()

    def natural_key(self) -> str:
        return f"complaint_resolved:{self.complaint_id}"


# -- relationship -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Referred(Event):
    """This customer brought ``referred_id`` to the shop."""

    event_type: ClassVar[str] = "referred"
    rank: ClassVar[int] = 44
    referred_id: str = _id_field()

    def __attrs_post_init__(self) -> None:
        if self.referred_id == self.customer_id:
            raise InvalidEvent("a customer cannot refer themselves", field="referred_id")
        super().__attrs_post_init__()

    def natural_key(self) -> str:
        return f"referred:{self.customer_id}:{self.referred_id}"


def _check_partnership(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if value not in PARTNERSHIP_KINDS:
        raise InvalidEvent(
            f"unknown partnership kind; use one of {sorted(PARTNERSHIP_KINDS)}",
            field="kind",
        )


@attrs.frozen(kw_only=True)
class PartnershipSigned(Event):
    """An agent, distributor, reseller or shareholder agreement took effect."""

    event_type: ClassVar[str] = "partnership_signed"
    rank: ClassVar[int] = 45
    kind: str = attrs.field(validator=_check_partnership)

    def natural_key(self) -> str:
        return f"partnership_signed:{self.customer_id}:{self.kind}:{_stamp(self.at)}"


@attrs.frozen(kw_only=True)
class PartnershipEnded(Event):
    """A partnership agreement ended."""

    event_type: ClassVar[str] = "partnership_ended"
    rank: ClassVar[int] = 46
    kind: str = attrs.field(validator=_check_partnership)

    def natural_key(self) -> str:
        return f"partnership_ended:{self.customer_id}:{self.kind}:{_stamp(self.at)}"


def _check_contact_channel(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if value not in CONTACT_CHANNELS:
        raise InvalidEvent(
            f"unknown channel; use one of {sorted(CONTACT_CHANNELS)}", field="channel"
        )


@attrs.frozen(kw_only=True)
class ConsentChanged(Event):
    """Consent for one channel and purpose was granted or withdrawn."""

    event_type: ClassVar[str] = "consent"
    rank: ClassVar[int] = 5
    channel: str = attrs.field(validator=_check_contact_channel)
    purpose: Purpose = attrs.field(converter=_purpose)
    granted: bool = attrs.field(validator=_instance_of(bool))

    def natural_key(self) -> str:
        return f"consent:{self.customer_id}:{self.channel}:{self.purpose}:{_stamp(self.at)}"


@attrs.frozen(kw_only=True)
class OwnerAssigned(Event):
    """A sales owner took the customer."""

    event_type: ClassVar[str] = "owner_assigned"
    rank: ClassVar[int] = 48
    owner_id: str = _id_field()

    def natural_key(self) -> str:
        return f"owner_assigned:{self.customer_id}:{self.owner_id}:{_stamp(self.at)}"


@attrs.frozen(kw_only=True)
class ReturnedToPool(Event):
    """The owner gave the customer back to the shared pool (公海).

    Ranked before :class:`OwnerAssigned`: a return and a claim at the same instant replay as
    the return, then the claim.
    """

    event_type: ClassVar[str] = "returned_to_pool"
    rank: ClassVar[int] = 47
    owner_id: str = _id_field()
    reason: str | None = _personal_text()

    def natural_key(self) -> str:
        return f"returned_to_pool:{self.customer_id}:{self.owner_id}:{_stamp(self.at)}"


@attrs.frozen(kw_only=True)
class OwnerProtected(Event):
    """The owner protected the customer from reclaim for a while (``owners.protection_days``):
    neither the follow-up nor the deal rule returns them to the pool until it runs out.

    The pool rules admit it only from the customer's current owner, and only while the owner
    holds fewer protections than ``owners.max_protected``.
    """

    event_type: ClassVar[str] = "owner_protected"
    rank: ClassVar[int] = 49
    owner_id: str = _id_field()

    def natural_key(self) -> str:
        return f"owner_protected:{self.customer_id}:{self.owner_id}:{_stamp(self.at)}"


@attrs.frozen(kw_only=True)
class CustomerErased(Event):
    """The customer's personal data was erased on request; the shop never contacts them again."""

    event_type: ClassVar[str] = "erased"
    rank: ClassVar[int] = 99

    def natural_key(self) -> str:
        return f"erased:{self.customer_id}"


#: Every event class by its ``event_type``, for decoding stored events.
EVENT_TYPES: Final[dict[str, type[Event]]] = {
    cls.event_type: cls
    for cls in (
        CustomerRegistered,
        ProfileUpdated,
        LeadCaptured,
        Engaged,
        OrderPlaced,
        OrderPaid,
        OrderShipped,
        OrderDelivered,
        OrderCancelled,
        OrderRefunded,
        Contacted,
        Replied,
        FeedbackGiven,
        ReviewPosted,
        ComplaintOpened,
        ComplaintResolved,
        Referred,
        PartnershipSigned,
        PartnershipEnded,
        ConsentChanged,
        OwnerAssigned,
        ReturnedToPool,
        OwnerProtected,
        CustomerErased,
    )
}


# -- loyalty ------------------------------------------------------------------------------------


def _check_points(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEvent("must be a whole number of points", field=attr.name)
    if value < 1:
        raise InvalidEvent("must be at least 1", field=attr.name)


@attrs.frozen(kw_only=True)
class PointsRedeemed(Event):
    """The customer spent ``points``: on an order, a coupon or a gift.

    Points never go below zero: :func:`lifecycle.loyalty.check_loyalty` refuses a redemption
    larger than the balance at its instant.
    """

    event_type: ClassVar[str] = "points_redeemed"
    rank: ClassVar[int] = 16
    redemption_id: str = _id_field()
    points: int = attrs.field(validator=_check_points)
    order_id: str | None = attrs.field(default=None, validator=_check_optional_id)

    def natural_key(self) -> str:
        return f"points_redeemed:{self.redemption_id}"


@attrs.frozen(kw_only=True)
class _TierMove(Event):
    tier: str = _id_field()
    """The key of a tier of the policy, e.g. ``"gold"``."""
    reason: str = _id_field()
    """Why, in the shop's words; kept after an erasure, so it holds no personal data."""
    author: str = _id_field()
    """Who decided: a staff id."""
    expires_at: datetime | None = attrs.field(
        default=None, validator=_check_optional_aware, eq=_utc_key
    )
    """When the move ends; ``None``: until another manual move."""

    def __attrs_post_init__(self) -> None:
        if self.expires_at is not None and to_utc(self.expires_at) <= to_utc(self.at):
            raise InvalidEvent("must be after the move itself", field="expires_at")
        super().__attrs_post_init__()

    def natural_key(self) -> str:
        return f"{self.event_type}:{self.customer_id}:{self.tier}:{_stamp(self.at)}"


@attrs.frozen(kw_only=True)
class TierGranted(_TierMove):
    """A host granted ``tier``: the customer holds at least it until ``expires_at``."""

    event_type: ClassVar[str] = "tier_granted"
    rank: ClassVar[int] = 17


@attrs.frozen(kw_only=True)
class TierRevoked(_TierMove):
    """A host removed ``tier``: the customer holds a tier below it until ``expires_at``."""

    event_type: ClassVar[str] = "tier_revoked"
    rank: ClassVar[int] = 18


EVENT_TYPES.update({cls.event_type: cls for cls in (PointsRedeemed, TierGranted, TierRevoked)})
