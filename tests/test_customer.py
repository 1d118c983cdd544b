"""Who a customer is: birthdays (29 February), contact points and consent, profiles and merging."""

from __future__ import annotations

import calendar
from datetime import date
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lifecycle as lc
from builders import PHONE, address_for
from lifecycle.testing.strategies import birthdays, contact_points, profiles


def refused(cls: type[Any], **kwargs: Any) -> lc.InvalidEvent:
    with pytest.raises(lc.InvalidEvent) as info:
        cls(**kwargs)
    return info.value


# -- birthdays ----------------------------------------------------------------------------------


@pytest.mark.parametrize("year", [None, 2000, 2024, 1904])
def test_29_february_is_a_birthday_without_a_year_or_in_a_leap_year(year: int | None) -> None:
    b = lc.Birthday(month=2, day=29, year=year)
    assert (b.month, b.day, b.year) == (2, 29, year)


@pytest.mark.parametrize("year", [2023, 1900, 2100, 2025])
def test_29_february_in_a_common_year_is_refused(year: int) -> None:
    assert refused(lc.Birthday, month=2, day=29, year=year).field == "birthday.day"


def test_a_birthday_on_29_february_falls_on_28_february_in_a_common_year_by_default() -> None:
    assert lc.Birthday(month=2, day=29).in_year(2025) == date(2025, 2, 28)


def test_a_birthday_on_29_february_can_fall_on_1_march_in_a_common_year() -> None:
    assert lc.Birthday(month=2, day=29).in_year(2025, feb29="mar1") == date(2025, 3, 1)


@pytest.mark.parametrize("rule", ["feb28", "mar1"])
def test_a_birthday_on_29_february_stays_on_29_february_in_a_leap_year(rule: str) -> None:
    assert lc.Birthday(month=2, day=29).in_year(2028, feb29=rule) == date(2028, 2, 29)


def test_an_unknown_rule_for_29_february_is_refused() -> None:
    with pytest.raises(ValueError, match="feb29"):
        lc.Birthday(month=2, day=29).in_year(2025, feb29="feb30")


@settings(max_examples=100, deadline=None)
@given(birthdays(), st.integers(1900, 2200), st.sampled_from(["feb28", "mar1"]))
def test_a_birthday_falls_on_its_own_day_or_next_to_29_february(
    birthday: lc.Birthday, year: int, rule: str
) -> None:
    day = birthday.in_year(year, feb29=rule)
    assert day.year == year
    if (birthday.month, birthday.day) == (2, 29) and not calendar.isleap(year):
        assert day == (date(year, 2, 28) if rule == "feb28" else date(year, 3, 1))
    else:
        assert (day.month, day.day) == (birthday.month, birthday.day)


def test_the_birthday_of_a_date_keeps_its_year() -> None:
    assert lc.Birthday.of(date(1996, 2, 29)) == lc.Birthday(month=2, day=29, year=1996)


@pytest.mark.parametrize("month", [0, 13, -1])
def test_a_month_outside_1_to_12_is_refused(month: int) -> None:
    assert refused(lc.Birthday, month=month, day=1).field == "birthday.month"


@pytest.mark.parametrize(
    ("month", "day"), [(1, 0), (1, 32), (4, 31), (6, 31), (9, 31), (11, 31), (2, 30)]
)
def test_a_day_the_month_does_not_have_is_refused(month: int, day: int) -> None:
    assert refused(lc.Birthday, month=month, day=day).field == "birthday.day"


@pytest.mark.parametrize(("month", "last"), [(1, 31), (4, 30), (12, 31), (2, 29)])
def test_the_last_day_of_each_month_is_a_birthday(month: int, last: int) -> None:
    assert lc.Birthday(month=month, day=last).day == last


@pytest.mark.parametrize("year", [1899, 10_000, 0])
def test_a_year_outside_1900_to_9999_is_refused(year: int) -> None:
    assert refused(lc.Birthday, month=1, day=1, year=year).field == "birthday.year"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("month", True),
        ("day", "1"),
        ("year", 1996.0),
        pytest.param("month", None),
        pytest.param("day", None),
    ],
)
def test_birthday_parts_that_are_not_integers_are_refused(field: str, value: object) -> None:
    kwargs: dict[str, Any] = {"month": 3, "day": 1, "year": 1996, field: value}
    assert refused(lc.Birthday, **kwargs).field == f"birthday.{field}"


def test_a_birthday_repr_holds_no_date() -> None:
    text = repr(lc.Birthday(month=7, day=14, year=1989))
    assert "7" not in text
    assert "14" not in text
    assert "1989" not in text


# -- contact points -----------------------------------------------------------------------------


@pytest.mark.parametrize("channel", sorted(lc.CONTACT_CHANNELS))
def test_every_known_channel_makes_a_contact_point(channel: str) -> None:
    assert lc.ContactPoint(channel=channel, address=address_for(channel)).channel == channel


@pytest.mark.parametrize("channel", ["fax", "SMS", "", "task"])
def test_an_unknown_channel_is_refused(channel: str) -> None:
    assert refused(lc.ContactPoint, channel=channel, address="x").field == "contacts.channel"


@pytest.mark.parametrize("address", ["", "  ", None, 13800138000])
def test_an_empty_address_is_refused(address: object) -> None:
    assert refused(lc.ContactPoint, channel="sms", address=address).field == "contacts.address"


def test_consent_defaults_to_transactional_messages_only() -> None:
    point = lc.ContactPoint(channel="email", address="a@example.com")
    assert point.consent == frozenset({lc.Purpose.TRANSACTIONAL})
    assert point.allows(lc.Purpose.TRANSACTIONAL)
    assert not point.allows("marketing")
    assert not point.allows(lc.Purpose.SERVICE)


def test_consent_is_given_per_purpose_by_name_or_member() -> None:
    point = lc.ContactPoint(
        channel="wechat", address="wx-1", consent=["marketing", lc.Purpose.SERVICE]
    )
    assert point.consent == frozenset({lc.Purpose.MARKETING, lc.Purpose.SERVICE})
    assert point.allows("marketing")
    assert not point.allows("transactional")


def test_consent_to_nothing_is_allowed() -> None:
    point = lc.ContactPoint(channel="post", address="1 Tea Street\nHangzhou", consent=())
    assert not any(point.allows(p) for p in lc.Purpose)


def test_an_unknown_purpose_is_refused() -> None:
    error = refused(lc.ContactPoint, channel="sms", address=PHONE, consent=["spam"])
    assert error.field == "consent"


def test_asking_about_an_unknown_purpose_is_an_error() -> None:
    with pytest.raises(ValueError, match="spam"):
        lc.ContactPoint(channel="sms", address=PHONE).allows("spam")


@pytest.mark.parametrize(
    ("channel", "address", "stored"),
    [
        ("sms", "+86 138 0013 8000", "+8613800138000"),
        ("phone", "+1 (555) 555-0100", "+15555550100"),
        ("email", "wei.zhang+shop@example.com", "wei.zhang+shop@example.com"),
        ("email", "李@例子.中国", "李@例子.中国"),
        ("wechat", "wx_wei-88", "wx_wei-88"),
        ("post", "1 Tea Street\nHangzhou", "1 Tea Street\nHangzhou"),
    ],
)
def test_an_address_in_the_channels_syntax_is_kept(channel: str, address: str, stored: str) -> None:
    assert lc.ContactPoint(channel=channel, address=address).address == stored


@pytest.mark.parametrize(
    ("channel", "address"),
    [
        ("email", "me@example.com, v1@third.party, v2@third.party"),
        ("email", "Wei <me@example.com>"),
        ("email", "me@example.com\r\nBcc: v@third.party"),
        ("email", "no-at-sign.example.com"),
        ("email", "me@localhost"),
        ("email", "a" * 65 + "@example.com"),
        ("sms", "13800138000"),
        ("sms", "+86 138 0013 8000; +1 555 555 0100"),
        ("sms", "+0 123 4567"),
        ("phone", "+1555"),
        ("wechat", "wx\nBcc"),
        ("post", "1 Tea Street\r\nHangzhou"),
        ("wechat", "\ud800"),
    ],
)
def test_an_address_outside_the_channels_syntax_is_refused(channel: str, address: str) -> None:
    assert refused(lc.ContactPoint, channel=channel, address=address).field == "contacts.address"


def test_a_contact_point_repr_holds_no_address() -> None:
    assert "13800138000" not in repr(lc.ContactPoint(channel="sms", address="+86 13800138000"))


@settings(max_examples=50, deadline=None)
@given(contact_points())
def test_drawn_contact_points_only_consent_to_known_purposes(point: lc.ContactPoint) -> None:
    assert point.channel in lc.CONTACT_CHANNELS
    assert all(isinstance(p, lc.Purpose) for p in point.consent)


# -- profiles -----------------------------------------------------------------------------------


def test_an_empty_profile_is_valid() -> None:
    p = lc.Profile()
    assert p.timezone is None
    assert p.contacts == ()
    assert p.tags == frozenset()


@pytest.mark.parametrize(
    "zone", ["Asia/Shanghai", "Europe/Berlin", "Australia/Lord_Howe", "America/New_York", "UTC"]
)
def test_an_iana_zone_is_a_profile_time_zone(zone: str) -> None:
    assert lc.Profile(timezone=zone).timezone == zone


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "utc", "Asia/Shanghai ", "+08:00", "../etc"])
def test_a_name_that_is_not_an_iana_zone_is_refused(zone: str) -> None:
    assert refused(lc.Profile, timezone=zone).field == "timezone"


@pytest.mark.parametrize("field", ["name", "locale", "city", "occupation", "source", "referred_by"])
@pytest.mark.parametrize("value", ["", "   ", 7])
def test_empty_profile_text_is_refused_naming_the_field(field: str, value: object) -> None:
    assert refused(lc.Profile, **{field: value}).field == field


def test_gender_takes_a_name_or_a_member() -> None:
    assert lc.Profile(gender="female").gender is lc.Gender.FEMALE
    assert lc.Profile(gender=lc.Gender.OTHER).gender is lc.Gender.OTHER


def test_an_unknown_gender_is_refused() -> None:
    assert refused(lc.Profile, gender="unknown").field == "gender"


def test_tags_become_a_frozenset_and_one_string_is_refused() -> None:
    assert lc.Profile(tags=["vip", "tea", "vip"]).tags == frozenset({"vip", "tea"})
    assert refused(lc.Profile, tags="vip").field == "tags"
    assert refused(lc.Profile, tags=["vip", ""]).field == "tags"


def test_contacts_must_be_contact_points() -> None:
    assert refused(lc.Profile, contacts=[{"channel": "sms"}]).field == "contacts"
    assert lc.Profile(contacts=[lc.ContactPoint(channel="sms", address=PHONE)]).contacts[0].address


def test_a_birthday_must_be_a_birthday() -> None:
    assert refused(lc.Profile, birthday=date(1996, 2, 29)).field == "birthday"
    assert refused(lc.Profile, lunar_birthday=1).field == "lunar_birthday"


def test_a_profile_has_one_contact_point_per_channel() -> None:
    sms = lc.ContactPoint(channel="sms", address=PHONE)
    p = lc.Profile(contacts=(sms, lc.ContactPoint(channel="email", address="a@b.c")))
    assert p.contact("sms") is sms
    assert p.contact("wechat") is None
    # Consent is per channel and purpose: two points on one channel would contradict it.
    e = refused(
        lc.Profile, contacts=(sms, lc.ContactPoint(channel="sms", address="+8613800000002"))
    )
    assert e.field == "contacts"
    assert "'sms' appears twice" in str(e)


def test_a_profile_repr_holds_no_name_city_occupation_address_or_birthday() -> None:
    p = lc.Profile(
        name="Zhang Wei",
        city="Hangzhou",
        occupation="tea sommelier",
        birthday=lc.Birthday(month=2, day=29, year=1996),
        contacts=(lc.ContactPoint(channel="email", address="wei@example.com"),),
    )
    text = repr(p)
    for secret in ("Zhang Wei", "Hangzhou", "tea sommelier", "wei@example.com", "1996"):
        assert secret not in text


def test_profiles_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        lc.Profile().timezone = "UTC"  # type: ignore[misc]


# -- merging ------------------------------------------------------------------------------------


def test_merge_takes_every_field_the_update_sets() -> None:
    old = lc.Profile(name="Wei", city="Hangzhou", timezone="Asia/Shanghai", tags=["vip"])
    new = old.merge(lc.Profile(city="Shanghai", locale="zh-CN"))
    assert new.name == "Wei"
    assert new.city == "Shanghai"
    assert new.locale == "zh-CN"
    assert new.timezone == "Asia/Shanghai"
    assert new.tags == frozenset({"vip"})


def test_merge_replaces_collections_whole() -> None:
    old = lc.Profile(tags=["vip"], contacts=(lc.ContactPoint(channel="sms", address=PHONE),))
    update = lc.Profile(tags=["tea"], contacts=(lc.ContactPoint(channel="email", address="a@b.c"),))
    new = old.merge(update)
    assert new.tags == frozenset({"tea"})
    assert [c.channel for c in new.contacts] == ["email"]


def test_merge_leaves_both_profiles_unchanged() -> None:
    old, update = lc.Profile(city="Hangzhou"), lc.Profile(city="Shanghai")
    old.merge(update)
    assert (old.city, update.city) == ("Hangzhou", "Shanghai")


@settings(max_examples=60, deadline=None)
@given(profiles())
def test_merging_an_empty_update_changes_nothing(profile: lc.Profile) -> None:
    assert profile.merge(lc.Profile()) == profile


@settings(max_examples=60, deadline=None)
@given(profiles())
def test_merging_into_an_empty_profile_gives_the_update(profile: lc.Profile) -> None:
    assert lc.Profile().merge(profile) == profile
    assert profile.merge(profile) == profile


@settings(max_examples=60, deadline=None)
@given(profiles(), profiles())
def test_a_merge_holds_each_field_from_the_update_or_else_the_old_profile(
    old: lc.Profile, update: lc.Profile
) -> None:
    merged = old.merge(update)
    empty = lc.Profile()
    for f in attrs.fields(lc.Profile):
        given_value = getattr(update, f.name)
        expected = getattr(old, f.name) if given_value == getattr(empty, f.name) else given_value
        assert getattr(merged, f.name) == expected
