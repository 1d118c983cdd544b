"""The bounds every value crosses at the event boundary: texts, amounts and addresses.

One place for them, so that events, profiles, the importer and the stores agree: what passes
here can be stored, folded, summed and sent without an overflow, an encoding error or a
header injection further on. Instants are bounded by :func:`lifecycle._time.require_aware`.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Final

from lifecycle.errors import InvalidEvent

__all__ = [
    "AMOUNT_PLACES",
    "MAX_AMOUNT",
    "MAX_NAME_LENGTH",
    "MAX_TEXT_LENGTH",
    "check_address",
    "check_amount",
    "check_name",
    "check_text",
    "normalise_phone",
]

#: The longest id, kind, name or other one-line text, in characters.
MAX_NAME_LENGTH: Final = 512
#: The longest free text (feedback, reviews, complaints, replies, reasons), in characters.
MAX_TEXT_LENGTH: Final = 10_000
#: The largest amount of money one event carries (exclusive): 100 billion units.
MAX_AMOUNT: Final = Decimal(10) ** 11
#: Decimal places an amount may have: what the analytics sum exactly (1/10,000 of a unit).
AMOUNT_PLACES: Final = 4
_QUANTUM: Final = Decimal(1).scaleb(-AMOUNT_PLACES)

#: C0 and C1 control characters and the Unicode line and paragraph separators.
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: In free text: the same, but tabs and line breaks are text.
_TEXT_CONTROL: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

# RFC 5322 addr-spec in its dot-atom form (no quoted local parts, no domain literals, no
# display names, no lists); letters beyond ASCII allowed as RFC 6531 does.
_ATEXT: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u00a0-\U0010ffff]"
_LABEL: Final = r"[A-Za-z0-9\u00a0-\U0010ffff](?:[A-Za-z0-9\-\u00a0-\U0010ffff]{0,61}[A-Za-z0-9\u00a0-\U0010ffff])?"
_EMAIL: Final = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*@{_LABEL}(?:\.{_LABEL})+")
#: E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
_E164: Final = re.compile(r"\+[1-9][0-9]{6,14}")
#: What people write between the digits of a phone number.
_PHONE_SEPARATORS: Final = re.compile(r"[ \-.()\u00a0]")
#: Channels whose address is a phone number, and the channel whose address is an e-mail.
_PHONE_CHANNELS: Final = frozenset({"sms", "phone"})
#: A postal address may run over several lines.
_MULTILINE_CHANNELS: Final = frozenset({"post"})


def _valid_unicode(value: str, field: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidEvent(
            "not valid Unicode (a lone surrogate); decode the text before sending it",
            field=field,
        ) from None


def check_name(value: object, field: str, *, max_length: int = MAX_NAME_LENGTH) -> str:
    """An id, kind, name or other one-line text: a non-empty string of valid Unicode, with no
    control characters, at most ``max_length`` characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidEvent("must be a non-empty string", field=field)
    if len(value) > max_length:
        raise InvalidEvent(f"longer than {max_length} characters", field=field)
    _valid_unicode(value, field)
    if _CONTROL.search(value):
        raise InvalidEvent("holds a control character (a line break, NUL, ...)", field=field)
    return value


def check_text(value: object, field: str) -> str:
    """Free text: a string of valid Unicode, at most :data:`MAX_TEXT_LENGTH` characters;
    tabs and line breaks allowed, other control characters not."""
    if not isinstance(value, str):
        raise InvalidEvent("must be a string", field=field)
    if len(value) > MAX_TEXT_LENGTH:
        raise InvalidEvent(f"longer than {MAX_TEXT_LENGTH} characters", field=field)
    _valid_unicode(value, field)
    if _TEXT_CONTROL.search(value):
        raise InvalidEvent("holds a control character", field=field)
    return value


def check_amount(value: Decimal, field: str) -> Decimal:
    """Money: finite, not negative, below :data:`MAX_AMOUNT`, at most :data:`AMOUNT_PLACES`
    decimal places."""
    if not value.is_finite():
        raise InvalidEvent("must be a finite number", field=field)
    if value < 0:
        raise InvalidEvent("must not be negative", field=field)
    if value >= MAX_AMOUNT:
        raise InvalidEvent(f"must be less than {MAX_AMOUNT:,}", field=field)
    try:
        exact = value.quantize(_QUANTUM) == value
    except InvalidOperation:  # pragma: no cover - below MAX_AMOUNT the quantum always fits
        exact = False
    if not exact:
        raise InvalidEvent(f"has more than {AMOUNT_PLACES} decimal places", field=field)
    return value


def normalise_phone(value: str) -> str | None:
    """``value`` as an E.164 number (``+8613800138000``), the separators people write
    (spaces, hyphens, dots, brackets) dropped; ``None`` when it is not one."""
    compact = _PHONE_SEPARATORS.sub("", value)
    return compact if _E164.fullmatch(compact) else None


def check_address(channel: str, value: object, field: str = "contacts.address") -> str:
    """One address in the syntax of ``channel``, as stored.

    E-mail: one RFC 5322 addr-spec (``name@example.com``; no display name, no list), at most
    254 characters. SMS and phone: one E.164 number, written with or without separators and
    stored without them. Other channels (WeChat, app push, post): one line of text (a postal
    address may have several). No address holds a control character.
    """
    if channel in _MULTILINE_CHANNELS:
        text = check_text(value, field)
        if not text.strip():
            raise InvalidEvent("must be a non-empty string", field=field)
        if "\r" in text or "\t" in text:
            raise InvalidEvent("holds a control character", field=field)
        return text
    text = check_name(value, field, max_length=MAX_NAME_LENGTH)
    if channel == "email":
        local = text.rpartition("@")[0]
        if len(text) > 254 or len(local) > 64 or not _EMAIL.fullmatch(text):
            raise InvalidEvent(
                "must be one e-mail address such as name@example.com (no display name, no list)",
                field=field,
            )
        return text
    if channel in _PHONE_CHANNELS:
        phone = normalise_phone(text)
        if phone is None:
            raise InvalidEvent(
                "must be one phone number in E.164 form, such as +8613800138000",
                field=field,
            )
        return phone
    return text
