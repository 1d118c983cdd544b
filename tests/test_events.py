"""Events: every class constructs from valid input, every rule refuses bad input naming the
field, ids are derived from the natural key, events are frozen and keep personal data out of
their reprs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lifecycle as lc
from lifecycle.events import CustomerErased, sort_key
from lifecycle.testing.strategies import events

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
AT = datetime(2026, 11, 11, 20, 5, tzinfo=SHANGHAI)
NAIVE = datetime(2026, 11, 11, 20, 5)  # noqa: DTZ001  # naive on purpose: it must be refused

#: The least each event class needs beyond ``customer_id`` and ``at``.
MINIMAL: dict[type[lc.Event], dict[str, Any]] = {
    lc.CustomerRegistered: {},
    lc.ProfileUpdated: {"profile": lc.Profile(timezone="Asia/Shanghai")},
    lc.LeadCaptured: {},
    lc.PointsRedeemed: {"redemption_id": "rd1", "points": 10},
    lc.TierGranted: {"tier": "gold", "reason": "r", "author": "u"},
    lc.TierRevoked: {"tier": "gold", "reason": "r", "author": "u"},
    lc.Engaged: {"kind": "chat"},
    lc.OrderPlaced: {"order_id": "o1", "amount": Decimal("199.00"), "currency": "CNY"},
    lc.OrderPaid: {"order_id": "o1", "amount": Decimal("199.00"), "currency": "CNY"},
    lc.OrderShipped: {"order_id": "o1"},
    lc.OrderDelivered: {"order_id": "o1"},
    lc.OrderCancelled: {"order_id": "o1"},
    lc.OrderRefunded: {"order_id": "o1", "amount": Decimal("50.00"), "currency": "CNY"},
    lc.Contacted: {"channel": "sms"},
    lc.Replied: {"channel": "sms"},
    lc.FeedbackGiven: {"score": 9},
    lc.ReviewPosted: {"rating": 5},
    lc.ComplaintOpened: {"complaint_id": "k1"},
    lc.ComplaintResolved: {"complaint_id": "k1"},
    lc.Referred: {"referred_id": "c2"},
    lc.PartnershipSigned: {"kind": "agent"},
    lc.PartnershipEnded: {"kind": "agent"},
    lc.ConsentChanged: {"channel": "sms", "purpose": "marketing", "granted": True},
    lc.OwnerAssigned: {"owner_id": "u1"},
    lc.OwnerProtected: {"owner_id": "u1"},
    lc.ReturnedToPool: {"owner_id": "u1"},
    CustomerErased: {},
}
CLASSES = list(lc.EVENT_TYPES.values())
MONEY_CLASSES = [lc.OrderPlaced, lc.OrderPaid, lc.OrderRefunded]
ORDER_CLASSES = [
    lc.OrderPlaced,
    lc.OrderPaid,
    lc.OrderShipped,
    lc.OrderDelivered,
    lc.OrderCancelled,
    lc.OrderRefunded,
]


def make(cls: type[lc.Event], **changes: Any) -> lc.Event:
    fields: dict[str, Any] = {"customer_id": "c1", "at": AT, **MINIMAL[cls], **changes}
    return cls(**fields)


def refused(cls: type[lc.Event], **changes: Any) -> lc.InvalidEvent:
    with pytest.raises(lc.InvalidEvent) as info:
        make(cls, **changes)
    return info.value


def names(classes: list[type[lc.Event]]) -> list[str]:
    return [c.__name__ for c in classes]


# -- construction -------------------------------------------------------------------------------


def test_every_event_type_has_a_minimal_example_here() -> None:
    assert set(MINIMAL) == set(CLASSES)


@pytest.mark.parametrize("cls", CLASSES, ids=names(CLASSES))
def test_every_event_class_constructs_from_minimal_valid_input(cls: type[lc.Event]) -> None:
    event = make(cls)
    assert event.customer_id == "c1"
    assert event.at == AT
    assert event.event_id
    assert lc.EVENT_TYPES[cls.event_type] is cls


@pytest.mark.parametrize("cls", CLASSES, ids=names(CLASSES))
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_every_event_class_constructs_from_any_valid_input(
    cls: type[lc.Event], data: st.DataObject
) -> None:
    event = data.draw(events(classes=[cls]))
    assert type(event) is cls
    assert event.at.utcoffset() is not None
    assert event.event_id.strip()


def test_amounts_take_decimal_int_and_numeric_strings_as_decimal() -> None:
    assert make(lc.OrderPaid, amount=Decimal("19.90")).amount == Decimal("19.90")
    assert make(lc.OrderPaid, amount=199).amount == Decimal(199)
    paid = make(lc.OrderPaid, amount="0.10")
    assert isinstance(paid.amount, Decimal)
    assert str(paid.amount) == "0.10"


def test_currency_codes_are_upper_cased() -> None:
    assert make(lc.OrderPaid, currency="cny").currency == "CNY"


def test_items_and_categories_become_tuples() -> None:
    paid = make(lc.OrderPaid, items=["sku-1", "sku-2"], categories={"tea"})
    assert paid.items == ("sku-1", "sku-2")
    assert paid.categories == ("tea",)


def test_consent_purpose_takes_a_string() -> None:
    consent = make(lc.ConsentChanged, purpose="service")
    assert isinstance(consent, lc.ConsentChanged)
    assert consent.purpose is lc.Purpose.SERVICE


def test_engagement_kinds_unknown_to_the_library_are_accepted() -> None:
    assert isinstance(make(lc.Engaged, kind="live_stream_comment"), lc.Engaged)


@pytest.mark.parametrize(("kind", "score"), [("nps", 0), ("nps", 10), ("csat", 1), ("csat", 5)])
def test_feedback_scores_at_the_ends_of_their_range_are_accepted(kind: str, score: int) -> None:
    assert isinstance(make(lc.FeedbackGiven, kind=kind, score=score), lc.FeedbackGiven)


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=names(CLASSES))
def test_naive_datetime_is_refused_naming_the_field(cls: type[lc.Event]) -> None:
    error = refused(cls, at=NAIVE)
    assert error.field == "at"
    assert "'at'" in str(error)


def test_naive_expected_delivery_is_refused_naming_the_field() -> None:
    error = refused(lc.OrderShipped, expected_delivery=NAIVE)
    assert error.field == "expected_delivery"


def test_aware_expected_delivery_is_accepted() -> None:
    later = AT + timedelta(days=3)
    assert make(lc.OrderShipped, expected_delivery=later).expected_delivery == later


@pytest.mark.parametrize("value", ["2026-11-11T20:05:00+08:00", date(2026, 11, 11), 1_700_000_000])
def test_a_time_that_is_not_a_datetime_is_refused_naming_the_field(value: object) -> None:
    assert refused(lc.Engaged, at=value).field == "at"


def test_a_tzinfo_that_gives_no_offset_counts_as_naive() -> None:
    class Floating(tzinfo):
        def utcoffset(self, dt: datetime | None) -> None:
            return None

    assert refused(lc.Engaged, at=NAIVE.replace(tzinfo=Floating())).field == "at"


@pytest.mark.parametrize("cls", MONEY_CLASSES, ids=names(MONEY_CLASSES))
@pytest.mark.parametrize(
    "amount",
    [
        Decimal("-0.01"),
        -1,
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        19.9,
        float("nan"),
        True,
        "abc",
        "",
        None,
        [1],
    ],
)
def test_bad_amounts_are_refused_naming_the_field(cls: type[lc.Event], amount: object) -> None:
    assert refused(cls, amount=amount).field == "amount"


@pytest.mark.parametrize("discount", [Decimal("-1"), Decimal("NaN")])
def test_bad_discounts_are_refused_naming_the_field(discount: Decimal) -> None:
    assert refused(lc.OrderPaid, discount=discount).field == "discount"


def test_a_float_discount_is_refused_naming_the_discount() -> None:
    assert refused(lc.OrderPaid, discount=1.5).field == "discount"


def test_a_single_string_of_items_is_refused_naming_the_field() -> None:
    assert refused(lc.OrderPaid, items="sku-1").field == "items"


def test_a_single_string_of_categories_is_refused_naming_the_categories() -> None:
    assert refused(lc.OrderPaid, categories="tea").field == "categories"


@pytest.mark.parametrize("currency", ["CN", "CNYY", "C1Y", "", "元元元", 156, None])
@pytest.mark.parametrize("cls", MONEY_CLASSES, ids=names(MONEY_CLASSES))
def test_bad_currency_is_refused_naming_the_field(cls: type[lc.Event], currency: object) -> None:
    assert refused(cls, currency=currency).field == "currency"


ID_FIELDS = [
    (lc.Engaged, "customer_id"),
    (lc.OrderPaid, "order_id"),
    (lc.OrderShipped, "order_id"),
    (lc.OrderRefunded, "order_id"),
    (lc.Contacted, "channel"),
    (lc.Replied, "channel"),
    (lc.ComplaintOpened, "complaint_id"),
    (lc.ComplaintResolved, "complaint_id"),
    (lc.Referred, "referred_id"),
    (lc.OwnerAssigned, "owner_id"),
    (lc.OwnerProtected, "owner_id"),
    (lc.ReturnedToPool, "owner_id"),
    (lc.LeadCaptured, "source"),
    (lc.Engaged, "kind"),
    (lc.OrderShipped, "carrier"),
    (lc.OrderShipped, "tracking"),
    (lc.ReviewPosted, "order_id"),
    (lc.Contacted, "key"),
]


@pytest.mark.parametrize(
    ("cls", "field"), ID_FIELDS, ids=[f"{c.__name__}.{f}" for c, f in ID_FIELDS]
)
@pytest.mark.parametrize("value", ["", "   ", 42])
def test_empty_ids_are_refused_naming_the_field(
    cls: type[lc.Event], field: str, value: object
) -> None:
    assert refused(cls, **{field: value}).field == field


@pytest.mark.parametrize(
    ("kind", "score"), [("nps", -1), ("nps", 11), ("csat", 0), ("csat", 6), ("csat", 10)]
)
def test_feedback_score_out_of_range_is_refused(kind: str, score: int) -> None:
    assert refused(lc.FeedbackGiven, kind=kind, score=score).field == "score"


@pytest.mark.parametrize("score", [True, False, 9.0, "9", None])
def test_feedback_score_that_is_not_an_int_is_refused(score: object) -> None:
    assert refused(lc.FeedbackGiven, score=score).field == "score"


def test_unknown_feedback_kind_is_refused_naming_the_field() -> None:
    assert refused(lc.FeedbackGiven, kind="ces").field == "kind"


@pytest.mark.parametrize("rating", [0, 6, -1, True, 4.5, "5", None])
def test_review_rating_out_of_range_or_not_an_int_is_refused(rating: object) -> None:
    assert refused(lc.ReviewPosted, rating=rating).field == "rating"


def test_self_referral_is_refused_naming_the_field() -> None:
    assert refused(lc.Referred, referred_id="c1").field == "referred_id"


@pytest.mark.parametrize("cls", [lc.PartnershipSigned, lc.PartnershipEnded])
@pytest.mark.parametrize("kind", ["franchise", "Agent", ""])
def test_unknown_partnership_kind_is_refused_naming_the_field(
    cls: type[lc.Event], kind: str
) -> None:
    assert refused(cls, kind=kind).field == "kind"


def test_every_partnership_kind_is_accepted() -> None:
    for kind in lc.PARTNERSHIP_KINDS:
        assert isinstance(make(lc.PartnershipSigned, kind=kind), lc.PartnershipSigned)


def test_consent_on_an_unknown_channel_is_refused_naming_the_field() -> None:
    assert refused(lc.ConsentChanged, channel="carrier_pigeon").field == "channel"


TEXT_FIELDS = [
    (lc.Replied, "text"),
    (lc.FeedbackGiven, "text"),
    (lc.ReviewPosted, "text"),
    (lc.ComplaintOpened, "text"),
    (lc.ComplaintResolved, "text"),
    (lc.OrderCancelled, "reason"),
    (lc.OrderRefunded, "reason"),
    (lc.ReturnedToPool, "reason"),
]


@pytest.mark.parametrize(
    ("cls", "field"), TEXT_FIELDS, ids=[f"{c.__name__}.{f}" for c, f in TEXT_FIELDS]
)
def test_free_text_that_is_not_a_string_is_refused_naming_the_field(
    cls: type[lc.Event], field: str
) -> None:
    assert refused(cls, **{field: 42}).field == field


BAD_INPUT_OUTSIDE_THE_TREE = [
    pytest.param(
        lc.ProfileUpdated,
        {"profile": {"timezone": "Asia/Shanghai"}},
        "profile",
        id="ProfileUpdated.profile",
    ),
    pytest.param(
        lc.Contacted,
        {"purpose": "spam"},
        "purpose",
        id="Contacted.purpose",
    ),
    pytest.param(
        lc.ConsentChanged,
        {"purpose": "spam"},
        "purpose",
        id="ConsentChanged.purpose",
    ),
    pytest.param(
        lc.ConsentChanged,
        {"granted": "yes"},
        "granted",
        id="ConsentChanged.granted",
    ),
    pytest.param(
        lc.Engaged,
        {"event_id": None},
        "event_id",
        id="Event.event_id",
    ),
]


@pytest.mark.parametrize(("cls", "changes", "field"), BAD_INPUT_OUTSIDE_THE_TREE)
def test_every_bad_field_raises_invalid_event_naming_it(
    cls: type[lc.Event], changes: dict[str, Any], field: str
) -> None:
    assert refused(cls, **changes).field == field


# -- ids ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=names(CLASSES))
def test_the_default_event_id_is_derived_from_the_natural_key_never_random(
    cls: type[lc.Event],
) -> None:
    first, second = make(cls), make(cls)
    assert first.event_id == second.event_id
    assert first == second
    assert first.event_id == first.natural_key()


@settings(max_examples=60, deadline=None)
@given(events())
def test_the_same_fact_sent_again_without_an_id_gets_the_same_id(event: lc.Event) -> None:
    fields = {f.name: getattr(event, f.name) for f in attrs.fields(type(event)) if f.init}
    fields["event_id"] = ""
    again, once_more = type(event)(**fields), type(event)(**fields)
    assert again.event_id == once_more.event_id == again.natural_key()


def test_a_host_given_event_id_is_kept() -> None:
    assert make(lc.OrderPaid, event_id="pay-123").event_id == "pay-123"


def test_a_blank_event_id_is_replaced_by_the_natural_key() -> None:
    assert make(lc.OrderPaid, event_id="   ").event_id == make(lc.OrderPaid).event_id


def test_different_orders_get_different_ids() -> None:
    ids = {make(cls, order_id=o).event_id for cls in MONEY_CLASSES for o in ("o1", "o2")}
    assert len(ids) == 6


def test_each_kind_of_order_event_gets_its_own_id_for_one_order() -> None:
    ids = {make(cls).event_id for cls in ORDER_CLASSES}
    assert len(ids) == len(ORDER_CLASSES)


def test_the_natural_key_does_not_depend_on_the_zone_the_instant_is_given_in() -> None:
    in_utc = AT.astimezone(UTC)
    for cls in CLASSES:
        assert make(cls).event_id == make(cls, at=in_utc).event_id


@pytest.mark.parametrize(
    "cls",
    [lc.Engaged, lc.LeadCaptured, lc.FeedbackGiven, lc.ReviewPosted, lc.Contacted, lc.Replied],
)
def test_the_same_kind_of_event_at_another_instant_gets_another_id(cls: type[lc.Event]) -> None:
    assert make(cls).event_id != make(cls, at=AT + timedelta(seconds=1)).event_id


def test_partial_refunds_at_different_instants_or_of_different_amounts_get_different_ids() -> None:
    base = make(lc.OrderRefunded)
    later = make(lc.OrderRefunded, at=AT + timedelta(minutes=5))
    other = make(lc.OrderRefunded, amount=Decimal("20.00"))
    assert len({base.event_id, later.event_id, other.event_id}) == 3


def test_a_contact_with_a_key_takes_its_id_from_the_key() -> None:
    a = make(lc.Contacted, key="c1:birthday:2026")
    b = make(lc.Contacted, key="c1:birthday:2026", at=AT + timedelta(hours=1))
    assert a.event_id == b.event_id


# -- immutability and privacy -------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=names(CLASSES))
def test_events_are_frozen(cls: type[lc.Event]) -> None:
    event = make(cls)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.customer_id = "c2"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.event_id = "other"  # type: ignore[misc]
    assert hash(event) == hash(make(cls))


def test_events_change_only_through_evolve_which_validates_again() -> None:
    paid = make(lc.OrderPaid)
    assert attrs.evolve(paid, amount=Decimal("1.00")).amount == Decimal("1.00")
    with pytest.raises(lc.InvalidEvent):
        attrs.evolve(paid, amount=Decimal("-1.00"))


PERSONAL = ("Zhang Wei", "Hangzhou", "tea sommelier", "+86 138 0013 8000", "wei@example.com")


def test_a_registration_repr_holds_no_personal_data() -> None:
    profile = lc.Profile(
        name=PERSONAL[0],
        city=PERSONAL[1],
        occupation=PERSONAL[2],
        birthday=lc.Birthday(month=2, day=29, year=1996),
        timezone="Asia/Shanghai",
        contacts=(
            lc.ContactPoint(channel="sms", address=PERSONAL[3]),
            lc.ContactPoint(channel="email", address=PERSONAL[4]),
        ),
    )
    for cls in (lc.CustomerRegistered, lc.ProfileUpdated):
        text = repr(make(cls, profile=profile))
        for value in (*PERSONAL, "1996", "29"):
            assert value not in text


SECRET = "my address is 12 Secret Lane"
TEXT_IN_REPR = [
    pytest.param(cls, field, id=f"{cls.__name__}.{field}")
    for cls, field in TEXT_FIELDS
    if field == "text"
] + [
    pytest.param(cls, field, id=f"{cls.__name__}.{field}")
    for cls, field in TEXT_FIELDS
    if field == "reason"
]


@pytest.mark.parametrize(("cls", "field"), TEXT_IN_REPR)
def test_free_text_stays_out_of_the_repr(cls: type[lc.Event], field: str) -> None:
    assert SECRET not in repr(make(cls, **{field: SECRET}))


# -- replay order and equality across DST -------------------------------------------------------

#: 02:45 CEST (00:45 UTC) comes before 02:30 CET (01:30 UTC), the second 02:30 of the night.
BEFORE_FOLD = datetime(2021, 10, 31, 2, 45, tzinfo=BERLIN)
AFTER_FOLD = datetime(2021, 10, 31, 2, 30, tzinfo=BERLIN, fold=1)


def test_the_fold_example_is_what_it_says() -> None:
    assert BEFORE_FOLD.astimezone(UTC) < AFTER_FOLD.astimezone(UTC)


def test_replay_order_is_by_instant_across_zones() -> None:
    a = make(lc.Engaged, at=datetime(2026, 1, 1, 9, tzinfo=SHANGHAI))  # 01:00 UTC
    b = make(lc.Engaged, at=datetime(2026, 1, 1, 2, tzinfo=UTC), kind="visit")
    assert sorted([b, a], key=sort_key) == [a, b]


def test_replay_order_is_by_instant_across_a_dst_fold() -> None:
    paid = make(lc.OrderPaid, at=BEFORE_FOLD)
    refund = make(lc.OrderRefunded, at=AFTER_FOLD)
    assert sorted([refund, paid], key=sort_key) == [paid, refund]


def test_the_same_fact_given_in_utc_is_the_same_event_in_a_dst_fold() -> None:
    paid = make(lc.OrderPaid, at=AFTER_FOLD)
    assert make(lc.OrderPaid, at=AFTER_FOLD.astimezone(UTC)) == paid


def test_the_same_fact_given_in_utc_is_the_same_event() -> None:
    assert make(lc.OrderPaid, at=AT.astimezone(UTC)) == make(lc.OrderPaid)


def test_an_order_paid_before_now_counts_when_now_is_after_a_dst_fold() -> None:
    paid = make(lc.OrderPaid, at=BEFORE_FOLD)
    assert lc.assess_stage([paid], lc.Policy(), AFTER_FOLD).stage is lc.Stage.FIRST_PURCHASE
