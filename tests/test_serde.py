"""Events to dicts and JSON and back: exact for every event class, zones, folds and Decimals;
newer schema versions and malformed input refused naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lifecycle as lc
from lifecycle.testing.strategies import DEFAULT_ZONES, aware_datetimes, events

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
AT = datetime(2026, 11, 11, 20, 5, tzinfo=SHANGHAI)
CLASSES = list(lc.EVENT_TYPES.values())
#: IANA zones, and fixed offsets that carry no zone name.
ZONES = (
    *DEFAULT_ZONES,
    UTC,
    timezone(timedelta(hours=5, minutes=45)),
    timezone(-timedelta(hours=3, minutes=30)),
)
instants = aware_datetimes(zones=ZONES)


def paid(**changes: Any) -> lc.OrderPaid:
    fields: dict[str, Any] = {
        "customer_id": "c1",
        "at": AT,
        "order_id": "o1",
        "amount": Decimal("199.00"),
        "currency": "CNY",
        **changes,
    }
    return lc.OrderPaid(**fields)


def refused(data: Any) -> lc.InvalidEvent:
    with pytest.raises(lc.InvalidEvent) as info:
        lc.event_from_dict(data)
    return info.value


def datetimes_of(event: lc.Event) -> list[tuple[str, datetime]]:
    return [
        (f.name, value)
        for f in attrs.fields(type(event))
        if f.init and isinstance(value := getattr(event, f.name), datetime)
    ]


def exists(value: datetime) -> bool:
    """Whether the wall time is on the zone's clock (not in a DST gap)."""
    back = value.astimezone(UTC).astimezone(value.tzinfo)
    return back.replace(tzinfo=None) == value.replace(tzinfo=None)


def ambiguous(value: datetime) -> bool:
    """Whether the wall time occurs twice (in a DST fold)."""
    return exists(value) and value.utcoffset() != value.replace(fold=1 - value.fold).utcoffset()


def assert_same_times(decoded: lc.Event, original: lc.Event) -> None:
    for (name, got), (_, want) in zip(datetimes_of(decoded), datetimes_of(original), strict=True):
        assert got.astimezone(UTC) == want.astimezone(UTC), name
        if isinstance(want.tzinfo, ZoneInfo):
            assert isinstance(got.tzinfo, ZoneInfo), name
            assert got.tzinfo.key == want.tzinfo.key, name
        if exists(want):
            assert got.utcoffset() == want.utcoffset(), name
            assert got.replace(tzinfo=None) == want.replace(tzinfo=None), name
        if ambiguous(want):
            assert got.fold == want.fold, name


# -- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=[c.__name__ for c in CLASSES])
@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_every_event_class_survives_a_dict_and_a_json_round_trip(
    cls: type[lc.Event], data: st.DataObject
) -> None:
    event = data.draw(events(classes=[cls], at=instants))
    as_dict = lc.event_to_dict(event)
    assert json.loads(json.dumps(as_dict)) == as_dict  # only JSON types
    for decoded in (lc.event_from_dict(as_dict), lc.event_from_json(lc.event_to_json(event))):
        assert type(decoded) is cls
        assert decoded.event_id == event.event_id
        assert_same_times(decoded, event)
        if all(exists(t) for _, t in datetimes_of(event)):
            assert decoded == event


@settings(max_examples=100, deadline=None)
@given(events(at=instants))
def test_any_event_survives_a_json_round_trip(event: lc.Event) -> None:
    decoded = lc.event_from_json(lc.event_to_json(event))
    assert_same_times(decoded, event)
    assert lc.event_to_dict(decoded)["event_id"] == event.event_id
    if all(exists(t) for _, t in datetimes_of(event)):
        assert decoded == event
        assert lc.event_to_json(decoded) == lc.event_to_json(event)


@settings(max_examples=100, deadline=None)
@given(aware_datetimes(zones=ZONES))
def test_an_instant_keeps_its_zone_offset_and_fold(at: datetime) -> None:
    decoded = lc.event_from_dict(lc.event_to_dict(lc.Engaged(customer_id="c1", at=at, kind="chat")))
    assert_same_times(decoded, lc.Engaged(customer_id="c1", at=at, kind="chat"))


@pytest.mark.parametrize("fold", [0, 1])
def test_both_readings_of_an_ambiguous_wall_time_keep_their_fold_and_offset(fold: int) -> None:
    at = datetime(2021, 10, 31, 2, 30, tzinfo=BERLIN, fold=fold)
    decoded = lc.event_from_dict(lc.event_to_dict(paid(at=at)))
    assert decoded.at.fold == fold
    assert decoded.at.utcoffset() == at.utcoffset()
    assert decoded.at.tzinfo is BERLIN


@pytest.mark.parametrize("fold", [0, 1])
def test_a_wall_time_in_a_dst_gap_survives_a_round_trip(fold: int) -> None:
    event = paid(at=datetime(2021, 3, 28, 2, 30, tzinfo=BERLIN, fold=fold))
    assert lc.event_from_dict(lc.event_to_dict(event)) == event


def test_a_zoned_instant_is_written_with_its_offset_and_zone_name() -> None:
    assert lc.event_to_dict(paid())["at"] == "2026-11-11T20:05:00+08:00[Asia/Shanghai]"
    assert lc.event_to_dict(paid(at=AT.astimezone(UTC)))["at"] == "2026-11-11T12:05:00+00:00"


def test_a_fixed_offset_comes_back_as_that_offset() -> None:
    at = datetime(2026, 1, 1, 9, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))
    decoded = lc.event_from_dict(lc.event_to_dict(paid(at=at)))
    assert decoded.at.utcoffset() == at.utcoffset()
    assert decoded == paid(at=at)


@pytest.mark.parametrize("text", ["0.10", "199.00", "0.00", "1E+3", "99999999999.9999"])
def test_decimals_keep_their_exact_digits(text: str) -> None:
    event = paid(amount=Decimal(text), discount=Decimal(text))
    as_dict = lc.event_to_dict(event)
    assert as_dict["amount"] == text
    for decoded in (lc.event_from_dict(as_dict), lc.event_from_json(lc.event_to_json(event))):
        assert isinstance(decoded, lc.OrderPaid)
        assert str(decoded.amount) == text
        assert str(decoded.discount) == text


def test_the_dict_names_its_type_and_schema_version() -> None:
    as_dict = lc.event_to_dict(paid())
    assert as_dict["type"] == "order_paid"
    assert as_dict["v"] == lc.SCHEMA_VERSION


def test_json_keeps_non_ascii_text_as_is() -> None:
    event = lc.FeedbackGiven(customer_id="客户-1", at=AT, score=10, text="很好")
    text = lc.event_to_json(event)
    assert "很好" in text
    assert lc.event_from_json(text) == event


def test_a_nested_profile_survives_a_round_trip() -> None:
    profile = lc.Profile(
        name="Wei",
        gender="female",
        birthday=lc.Birthday(month=2, day=29),
        timezone="Australia/Lord_Howe",
        tags=["vip", "tea"],
        contacts=(lc.ContactPoint(channel="sms", address="+8613800000001", consent=["marketing"]),),
    )
    event = lc.CustomerRegistered(customer_id="c1", at=AT, profile=profile)
    assert lc.event_from_json(lc.event_to_json(event)) == event


def test_a_version_1_profile_keeps_the_first_contact_point_of_each_channel() -> None:
    # Version 1 allowed two points on one channel; Profile.contact read the first.
    points = [
        {"channel": "sms", "address": "+86 138 0000 0001", "consent": ["marketing"]},
        {"channel": "email", "address": "a@b.c", "consent": []},
        {"channel": "sms", "address": "+86 138 0000 0002", "consent": []},
    ]
    old = {
        "type": "registered",
        "v": 1,
        "customer_id": "c1",
        "event_id": "registered:c1",
        "at": "2026-01-01T10:00:00+08:00[Asia/Shanghai]",
        "profile": {"contacts": points},
    }
    event = lc.event_from_dict(old)
    assert isinstance(event, lc.CustomerRegistered)
    assert [c.address for c in event.profile.contacts] == ["+8613800000001", "a@b.c"]
    assert event.profile.contact("sms") == lc.ContactPoint(
        channel="sms", address="+86 138 0000 0001", consent={lc.Purpose.MARKETING}
    )
    # The current version refuses what version 1 tolerated.
    assert refused({**old, "v": lc.SCHEMA_VERSION}).field == "contacts"


# -- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [lc.SCHEMA_VERSION + 1, 99])
def test_a_dict_from_a_newer_schema_version_is_refused_naming_v(version: int) -> None:
    data = {**lc.event_to_dict(paid()), "v": version}
    error = refused(data)
    assert error.field == "v"
    assert str(version) in str(error)


@pytest.mark.parametrize("version", [None, 0, -1, "1", 1.0, True])
def test_a_missing_or_bad_schema_version_is_refused_naming_v(version: object) -> None:
    data = {**lc.event_to_dict(paid()), "v": version}
    if version is None:
        del data["v"]
    assert refused(data).field == "v"


@pytest.mark.parametrize("kind", ["order_teleported", None, 3, ""])
def test_an_unknown_or_missing_type_is_refused_naming_type(kind: object) -> None:
    data = {**lc.event_to_dict(paid()), "type": kind}
    if kind is None:
        del data["type"]
    assert refused(data).field == "type"


def test_an_unknown_field_is_refused_naming_it() -> None:
    assert refused({**lc.event_to_dict(paid()), "colour": "red"}).field == "colour"


def test_an_unknown_nested_field_is_refused_naming_its_path() -> None:
    data = lc.event_to_dict(lc.CustomerRegistered(customer_id="c1", at=AT))
    data["profile"]["colour"] = "red"
    assert refused(data).field == "profile.colour"


@pytest.mark.parametrize("field", ["order_id", "amount", "currency", "customer_id", "at"])
def test_a_missing_required_field_is_refused_naming_it(field: str) -> None:
    data = lc.event_to_dict(paid())
    del data[field]
    assert refused(data).field == field


def test_a_missing_event_id_is_derived_again() -> None:
    data = lc.event_to_dict(paid())
    del data["event_id"]
    assert lc.event_from_dict(data) == paid()


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "",
        "2026-13-01T00:00:00+08:00",
        "2026-11-11T20:05:00",  # no offset
        "2026-11-11T20:05:00+08:00[Mars/Olympus]",
        "2026-11-11T20:05:00+08:00[../../etc/passwd]",
        "2026-11-11T20:05:00+08:00[]",
    ],
)
@pytest.mark.parametrize("field", ["at", "expected_delivery"])
def test_a_malformed_timestamp_is_refused_naming_the_field(text: str, field: str) -> None:
    data = lc.event_to_dict(lc.OrderShipped(customer_id="c1", at=AT, order_id="o1"))
    data[field] = text
    assert refused(data).field == field


@pytest.mark.parametrize("value", [1_700_000_000, None, ["2026-11-11"]])
def test_a_timestamp_that_is_not_a_string_is_refused_naming_the_field(value: object) -> None:
    assert refused({**lc.event_to_dict(paid()), "at": value}).field == "at"


def test_a_timestamp_without_offset_is_refused_even_with_a_zone_name() -> None:
    refused({**lc.event_to_dict(paid()), "at": "2026-11-11T20:05:00[Asia/Shanghai]"})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", 199.0),
        ("amount", 199),
        ("amount", "a lot"),
        ("customer_id", 42),
        ("items", "sku-1"),
        ("items", [1]),
        ("event_id", None),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_naming_the_field(field: str, value: object) -> None:
    assert refused({**lc.event_to_dict(paid()), field: value}).field == field


@pytest.mark.parametrize(("field", "value"), [("granted", "yes"), ("purpose", "spam")])
def test_a_bad_consent_value_is_refused_naming_the_field(field: str, value: object) -> None:
    event = lc.ConsentChanged(
        customer_id="c1", at=AT, channel="sms", purpose="service", granted=True
    )
    assert refused({**lc.event_to_dict(event), field: value}).field == field


def test_a_bad_nested_value_is_refused_naming_its_path() -> None:
    data = lc.event_to_dict(lc.CustomerRegistered(customer_id="c1", at=AT))
    data["profile"]["name"] = 42
    assert refused(data).field == "profile.name"


def test_a_value_that_breaks_an_event_rule_is_refused_naming_the_field() -> None:
    assert refused({**lc.event_to_dict(paid()), "amount": "-1.00"}).field == "amount"


@pytest.mark.parametrize("data", [[], "order_paid", None, 42])
def test_something_other_than_a_mapping_is_refused(data: object) -> None:
    refused(data)


@pytest.mark.parametrize("text", ["", "{", "[1, 2", "not json"])
def test_text_that_is_not_json_is_refused(text: str) -> None:
    with pytest.raises(lc.InvalidEvent):
        lc.event_from_json(text)


@settings(max_examples=300, deadline=None)
@given(events())
def test_the_json_writer_equals_encoding_the_dict(event: lc.Event) -> None:
    # event_to_json writes text straight away; it must be exactly the dict, encoded.
    assert lc.event_to_json(event) == json.dumps(
        lc.event_to_dict(event), ensure_ascii=False, separators=(",", ":")
    )


@settings(max_examples=200, deadline=None)
@given(events())
def test_a_body_without_ids_round_trips_with_the_ids_given_back(event: lc.Event) -> None:
    from lifecycle.serde import event_body, event_from_body

    body = event_body(event)
    assert '"customer_id"' not in body
    assert '"event_id"' not in body
    again = event_from_body(body, customer_id=event.customer_id, event_id=event.event_id)
    assert again == event
    # A full document reads the same way (bodies written before ids moved to columns).
    full = lc.event_to_json(event)
    assert event_from_body(full, customer_id=event.customer_id, event_id=event.event_id) == event


@settings(max_examples=200, deadline=None)
@given(st.lists(events(at=instants), max_size=5))
def test_a_store_row_is_the_instant_rank_type_and_body_of_the_event(
    batch: list[lc.Event],
) -> None:
    from lifecycle.serde import event_body, event_rows

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert event_rows(batch) == [
        (
            e.customer_id,
            (e.at.astimezone(UTC) - epoch) // timedelta(microseconds=1),
            e.rank,
            e.event_id,
            e.event_type,
            event_body(e),
        )
        for e in batch
    ]
