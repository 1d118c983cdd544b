"""Who a customer is: the profile, birthdays, contact points and consent per purpose.

Personal data (name, birthday, addresses) is kept out of ``repr`` so it never lands in logs.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import date
from enum import StrEnum
from functools import cache
from typing import Any, Literal

import attrs

from lifecycle._bounds import check_address, check_name
from lifecycle._time import valid_zone_name
from lifecycle.errors import InvalidEvent
from lifecycle.vocabulary import CONTACT_CHANNELS, Purpose

__all__ = [
    "Birthday",
    "ContactPoint",
    "Gender",
    "Profile",
]


class Gender(StrEnum):
    """Gender as the customer gave it."""

    FEMALE = "female"
    MALE = "male"
    OTHER = "other"


def _to_purposes(value: Iterable[Purpose | str]) -> frozenset[Purpose]:
    if isinstance(value, str):
        raise InvalidEvent(
            "give consent as a collection of purposes, not one string", field="consent"
        )
    try:
        return frozenset(Purpose(v) for v in value)
    except ValueError as e:
        raise InvalidEvent(
            f"unknown purpose; use one of {sorted(p.value for p in Purpose)}", field="consent"
        ) from e


def _nonempty_str(field: str, value: object) -> str:
    return check_name(value, field)


@attrs.frozen(kw_only=True)
class Birthday:
    """A birthday: month and day, and the year when the customer gave it.

    29 February is allowed; with a year, that year must be a leap year.
    """

    month: int
    day: int
    year: int | None = None

    def __attrs_post_init__(self) -> None:
        for name, value in (("month", self.month), ("day", self.day), ("year", self.year)):
            if name == "year" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidEvent("must be an integer", field=f"birthday.{name}")
        if not 1 <= self.month <= 12:
            raise InvalidEvent("month must be 1-12", field="birthday.month")
        if self.year is not None and not 1900 <= self.year <= 9999:
            raise InvalidEvent("year must be 1900-9999", field="birthday.year")
        # 2000 is a leap year, so it admits 29 February when no year is given.
        year = 2000 if self.year is None else self.year
        if not 1 <= self.day <= calendar.monthrange(year, self.month)[1]:
            raise InvalidEvent("no such day in that month", field="birthday.day")

    @classmethod
    def of(cls, value: date) -> Birthday:
        """The birthday of someone born on ``value``."""
        return cls(month=value.month, day=value.day, year=value.year)

    def in_year(self, year: int, *, feb29: Literal["feb28", "mar1"] = "feb28") -> date:
        """The date the birthday falls on in ``year``.

        Args:
            feb29: where 29 February goes in a common year: ``"feb28"`` or ``"mar1"``.
        """
        if feb29 not in ("feb28", "mar1"):
            raise ValueError(f"feb29 must be 'feb28' or 'mar1', not {feb29!r}")
        if self.month == 2 and self.day == 29 and not calendar.isleap(year):
            return date(year, 2, 28) if feb29 == "feb28" else date(year, 3, 1)
        return date(year, self.month, self.day)

    def __repr__(self) -> str:
        return "Birthday(<redacted>)"


@attrs.frozen(kw_only=True)
class ContactPoint:
    """One way to reach the customer, and the purposes they consent to on it.

    ``address`` is one address in the channel's syntax: an e-mail address
    (``name@example.com``, no display name or list), an E.164 phone number for SMS and phone
    (``+86 138 0013 8000`` is kept as ``+8613800138000``), one line for the other channels
    (several for a postal address); never a control character. ``consent`` defaults to
    transactional messages only: marketing needs an explicit opt-in.
    """

    channel: str = attrs.field()
    address: str = attrs.field(repr=False)
    consent: frozenset[Purpose] = attrs.field(
        default=frozenset({Purpose.TRANSACTIONAL}), converter=_to_purposes
    )

    @channel.validator
    def _check_channel(self, _: attrs.Attribute[str], value: str) -> None:
        if value not in CONTACT_CHANNELS:
            raise InvalidEvent(
                f"unknown channel {value!r}; use one of {sorted(CONTACT_CHANNELS)}",
                field="contacts.channel",
            )

    def __attrs_post_init__(self) -> None:
        # One address in the channel's syntax; phone numbers are kept in E.164 form.
        object.__setattr__(self, "address", check_address(self.channel, self.address))

    def allows(self, purpose: Purpose | str) -> bool:
        """Whether the customer consents to ``purpose`` on this contact point."""
        return Purpose(purpose) in self.consent


def _to_tags(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        raise InvalidEvent("give tags as a collection of strings, not one string", field="tags")
    tags = frozenset(value)
    for tag in tags:
        _nonempty_str("tags", tag)
    return tags


def _to_contacts(value: Iterable[ContactPoint]) -> tuple[ContactPoint, ...]:
    contacts = tuple(value)
    for c in contacts:
        if not isinstance(c, ContactPoint):
            raise InvalidEvent("contacts must be ContactPoint objects", field="contacts")
    channels = [c.channel for c in contacts]
    for channel in channels:
        if channels.count(channel) > 1:
            # Consent is kept per channel and purpose, so two points on one channel would
            # leave it unclear which consent holds.
            raise InvalidEvent(
                f"one contact point per channel; {channel!r} appears twice", field="contacts"
            )
    return contacts


def _optional_gender(value: Gender | str | None) -> Gender | None:
    if value is None:
        return None
    try:
        return Gender(value)
    except ValueError as e:
        raise InvalidEvent(
            f"unknown gender; use one of {sorted(g.value for g in Gender)} or None", field="gender"
        ) from e


@attrs.frozen(kw_only=True)
class Profile:
    """What the shop knows about who the customer is.

    Every field is optional: a profile grows as the customer tells more. ``timezone`` is an IANA
    name and drives every calendar rule for the customer (day boundaries, birthdays, quiet
    hours); without one, the policy's shop time zone is used.
    """

    name: str | None = attrs.field(default=None, repr=False)
    gender: Gender | None = attrs.field(default=None, converter=_optional_gender, repr=False)
    birthday: Birthday | None = attrs.field(default=None, repr=False)
    lunar_birthday: bool = False
    timezone: str | None = None
    locale: str | None = None
    city: str | None = attrs.field(default=None, repr=False)
    occupation: str | None = attrs.field(default=None, repr=False)
    tags: frozenset[str] = attrs.field(default=frozenset(), converter=_to_tags, repr=False)
    source: str | None = None
    referred_by: str | None = attrs.field(default=None, repr=False)
    contacts: tuple[ContactPoint, ...] = attrs.field(default=(), converter=_to_contacts)

    def __attrs_post_init__(self) -> None:
        if self.timezone is not None and not valid_zone_name(self.timezone):
            raise InvalidEvent("not an IANA time zone name", field="timezone")
        if self.birthday is not None and not isinstance(self.birthday, Birthday):
            raise InvalidEvent("must be a Birthday", field="birthday")
        if not isinstance(self.lunar_birthday, bool):
            raise InvalidEvent("must be true or false", field="lunar_birthday")
        for name in ("name", "locale", "city", "occupation", "source", "referred_by"):
            value = getattr(self, name)
            if value is not None:
                _nonempty_str(name, value)

    def contact(self, channel: str) -> ContactPoint | None:
        """The contact point on ``channel``, if any."""
        return next((c for c in self.contacts if c.channel == channel), None)

    def merge(self, update: Profile) -> Profile:
        """This profile with every field that ``update`` sets taken from ``update``."""
        defaults = _profile_defaults()
        changes = {
            name: value
            for name, default in defaults.items()
            if (value := getattr(update, name)) != default
        }
        if not changes:
            return self
        if all(getattr(self, name) == defaults[name] for name in defaults.keys() - changes):
            return update  # nothing of ours survives the update
        return attrs.evolve(self, **changes)


@cache
def _profile_defaults() -> dict[str, Any]:
    """Each ``Profile`` field's default value, by name."""
    empty = Profile()
    return {f.name: getattr(empty, f.name) for f in attrs.fields(Profile)}
