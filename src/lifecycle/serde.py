"""Events to and from plain dicts and JSON, exactly: ``Decimal`` stays ``Decimal``, zones stay.

Each dict carries ``type`` (the event type) and ``v`` (the schema version). A datetime is written
as ISO 8601 with its offset and, for an IANA zone, the zone name in brackets (RFC 9557), e.g.
``2026-11-11T20:05:00+08:00[Asia/Shanghai]``. Dicts of older schema versions are upgraded on
read; a dict from a newer version is refused rather than misread.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import cache
from json.encoder import encode_basestring  # C-accelerated
from typing import Any, Final
from zoneinfo import ZoneInfo

import attrs

from lifecycle._bounds import check_address
from lifecycle._time import to_utc, zone
from lifecycle.errors import InvalidEvent, LifecycleError
from lifecycle.events import EVENT_TYPES, Event

__all__ = [
    "SCHEMA_VERSION",
    "event_body",
    "event_from_body",
    "event_from_dict",
    "event_from_json",
    "event_rows",
    "event_to_dict",
    "event_to_json",
]

#: The version of the event dict layout this release writes.
SCHEMA_VERSION: Final = 3

_JSON: Final = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":"))


def _one_point_per_channel(body: dict[str, Any]) -> dict[str, Any]:
    """Version 1 profiles could hold several contact points on one channel; keep the first,
    the one ``Profile.contact`` returned."""
    profile = body.get("profile")
    if not isinstance(profile, dict) or not isinstance(profile.get("contacts"), list):
        return body
    seen: set[str] = set()
    kept = []
    for point in profile["contacts"]:
        channel = point.get("channel") if isinstance(point, dict) else None
        if isinstance(channel, str):
            if channel in seen:
                continue
            seen.add(channel)
        kept.append(point)
    return {**body, "profile": {**profile, "contacts": kept}}


def _addresses_in_syntax(body: dict[str, Any]) -> dict[str, Any]:
    """Version 3 holds one address per contact point in its channel's syntax (an e-mail
    address, an E.164 number). A contact point of an older dict whose address is not one (a
    national phone number, a list of e-mail addresses) is left out when read, so nothing is
    sent to it; the stored dict itself is not changed."""
    profile = body.get("profile")
    if not isinstance(profile, dict) or not isinstance(profile.get("contacts"), list):
        return body
    kept = []
    for point in profile["contacts"]:
        if isinstance(point, dict) and isinstance(point.get("channel"), str):
            try:
                check_address(point["channel"], point.get("address"))
            except InvalidEvent:
                continue
        kept.append(point)
    return {**body, "profile": {**profile, "contacts": kept}}


#: Upgrades from version N to N + 1, applied in turn to older dicts.
_MIGRATIONS: Final[dict[int, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    1: _one_point_per_channel,
    2: _addresses_in_syntax,
}


def encode_value(value: object) -> Any:
    """``value`` as JSON-ready data: enums as their values, decimals and times as text."""
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        text = value.isoformat()
        if isinstance(value.tzinfo, ZoneInfo):
            text += f"[{value.tzinfo.key}]"
        return text
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, frozenset):
        return sorted(encode_value(v) for v in value)
    if isinstance(value, tuple):
        return [encode_value(v) for v in value]
    if attrs.has(type(value)):
        fields = attrs.fields(type(value))  # type: ignore[arg-type]  # attrs.has narrows at run time only
        return {f.name: encode_value(getattr(value, f.name)) for f in fields}
    raise TypeError(f"cannot encode {type(value).__name__}")


def _identity(value: Any) -> Any:
    return value


def _encode_datetime(value: datetime) -> str:
    return _quoted_datetime(value)[1:-1]


def _quoted_datetime(value: datetime) -> str:
    """ISO text, with the IANA key of a ``ZoneInfo`` zone in brackets, as a JSON string (ISO
    text and zone keys need no escapes)."""
    tz = value.tzinfo
    if isinstance(tz, ZoneInfo):
        return f'"{value.isoformat()}[{tz.key}]"'
    return f'"{value.isoformat()}"'


def _encoder(tp: Any) -> Callable[[Any], Any]:
    """A function that encodes values of type ``tp``: built once per field, then reused."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = (a for a in typing.get_args(tp) if a is not type(None))
        enc = _encoder(inner)
        if enc is _identity:
            return _identity
        return lambda v: None if v is None else enc(v)
    if origin is tuple:
        item = _encoder(typing.get_args(tp)[0])
        return list if item is _identity else lambda v: [item(x) for x in v]
    if origin is frozenset:
        item = _encoder(typing.get_args(tp)[0])
        return sorted if item is _identity else lambda v: sorted(item(x) for x in v)
    if tp is datetime:
        return _encode_datetime
    if tp is Decimal:
        return str
    if isinstance(tp, type) and issubclass(tp, Enum):
        return lambda v: v.value
    if tp in (str, int, bool):
        return _identity
    if isinstance(tp, type) and attrs.has(tp):
        plan = _plan(tp)
        return lambda v: {name: enc(getattr(v, name)) for name, enc in plan}
    return encode_value


_PLANS: dict[type, tuple[tuple[str, Callable[[Any], Any]], ...]] = {}


def _plan(cls: type) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    """(field name, encoder) for each field of the attrs class ``cls``."""
    plan = _PLANS.get(cls)
    if plan is None:
        hints = _field_types(cls)
        fields = attrs.fields(cls)
        plan = _PLANS[cls] = tuple((f.name, _encoder(hints[f.name])) for f in fields if f.init)
    return plan


_EVENT_ENCODERS: dict[type, Callable[[Event], dict[str, Any]]] = {}


def _event_encoder(cls: type[Event]) -> Callable[[Event], dict[str, Any]]:
    """A function that turns one ``cls`` event into a dict, written out field by field.

    Generated once per class (as attrs generates ``__init__``): a loop over the fields costs
    more than the encoding itself, and bulk ingest encodes every event.
    """
    encoder = _EVENT_ENCODERS.get(cls)
    if encoder is None:
        namespace: dict[str, Any] = {}
        items = [f"'type': {cls.event_type!r}", f"'v': {SCHEMA_VERSION}"]
        for i, (name, enc) in enumerate(_plan(cls)):
            if enc is _identity:
                items.append(f"{name!r}: e.{name}")
            else:
                namespace[f"enc{i}"] = enc
                items.append(f"{name!r}: enc{i}(e.{name})")
        source = "def encode(e):\n    return {" + ", ".join(items) + "}\n"
        exec(compile(source, f"<lifecycle event encoder {cls.__name__}>", "exec"), namespace)
        encoder = _EVENT_ENCODERS[cls] = namespace["encode"]
    return encoder


def event_to_dict(event: Event) -> dict[str, Any]:
    """The event as a dict of JSON-ready values, with its ``type`` and schema version ``v``."""
    return _event_encoder(type(event))(event)


def event_to_json(event: Event) -> str:
    """The event as compact JSON (non-ASCII kept as is): ``event_to_dict`` encoded."""
    return _json_writer(type(event))(event)


_JSON_WRITERS: dict[tuple[type, bool], Callable[[Event], str]] = {}

#: The fields a store keeps in columns of their own, left out of the body it stores.
_ID_FIELDS: Final = frozenset({"customer_id", "event_id"})


def event_body(event: Event) -> str:
    """:func:`event_to_json` without ``customer_id`` and ``event_id``: for stores that keep
    those in columns of their own. :func:`event_from_body` puts them back."""
    writer = _BODY_WRITERS.get(type(event))
    if writer is None:
        writer = _BODY_WRITERS[type(event)] = _json_writer(type(event), with_ids=False)
    return writer(event)


#: :func:`event_body`'s writers by class, found with one lookup: bulk ingest writes many.
_BODY_WRITERS: dict[type[Event], Callable[[Event], str]] = {}

#: A stored event's row: customer id, instant (whole microseconds since 1970 UTC), rank,
#: event id, type and :func:`event_body`.
EventRow = tuple[str, int, int, str, str, str]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def event_rows(events: Iterable[Event]) -> list[EventRow]:
    """Each event as the row a store keeps: ``(customer_id, at_us, rank, event_id, type,
    body)``, ``at_us`` the instant of :func:`~lifecycle.events.sort_key` in whole
    microseconds since 1970 UTC and ``body`` as :func:`event_body` writes it.

    One generated function per class writes the whole row (the same field layout as
    :func:`event_body`): bulk ingest writes every event, and a call per column would cost more
    than the columns themselves.
    """
    writers = _ROW_WRITERS
    out = []
    for e in events:
        write = writers.get(type(e))
        if write is None:
            write = _row_writer(type(e))
        out.append(write(e))
    return out


_ROW_WRITERS: dict[type[Event], Callable[[Event], EventRow]] = {}


def _row_writer(cls: type[Event]) -> Callable[[Event], EventRow]:
    namespace = _writer_namespace()
    namespace.update(epoch=_EPOCH, micro=_MICROSECOND)
    head = {"type": cls.event_type, "v": SCHEMA_VERSION}
    body = _json_expression(cls, head, _ID_FIELDS, namespace)
    # The instant of ``sort_key``, already in UTC (kept by every event when made).
    source = (
        "def write(o):\n"
        f"    return (o.customer_id, (o._sort_key[0] - epoch) // micro, {cls.rank!r}, o.event_id, "
        f"{cls.event_type!r}, {body})\n"
    )
    exec(compile(source, f"<lifecycle row writer {cls.__name__}>", "exec"), namespace)
    writer: Callable[[Event], EventRow] = namespace["write"]
    _ROW_WRITERS[cls] = writer
    return writer


def event_from_body(body: str | bytes, *, customer_id: str, event_id: str) -> Event:
    """Rebuild an event from :func:`event_body` output (or full :func:`event_to_json`)."""
    try:
        data = json.loads(body)
    except ValueError as e:
        raise InvalidEvent("not valid JSON", event_id=event_id) from e
    if not isinstance(data, dict):
        raise InvalidEvent("an event body must be a JSON object", event_id=event_id)
    data.setdefault("customer_id", customer_id)
    data.setdefault("event_id", event_id)
    return event_from_dict(data)


def body_head(event_type: str) -> str:
    """How :func:`event_body` begins for an event of ``event_type`` of this schema version: a
    stored body that begins so is read as written, any other is decoded (and upgraded)."""
    return f'{{"type":{encode_basestring(event_type)},"v":{SCHEMA_VERSION},'


def body_fields(
    body: str | bytes, paths: Sequence[str], *, customer_id: str, event_id: str
) -> tuple[Any, ...]:
    """The values at ``paths`` (dotted, such as ``profile.timezone``) of a stored event, as
    :func:`event_to_dict` writes them (``None`` where absent): the body decoded, upgraded from
    an older schema version and checked like any event read."""
    data: Any = event_to_dict(event_from_body(body, customer_id=customer_id, event_id=event_id))
    out = []
    for path in paths:
        value = data
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        out.append(value)
    return tuple(out)


def _json_piece(tp: Any, value: str, namespace: dict[str, Any], i: int) -> str:
    """A Python expression that writes ``value`` (of type ``tp``) as the JSON of its encoding."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            inner = _json_piece(options[0], value, namespace, i)
            return f"('null' if {value} is None else {inner})"
    if origin in (tuple, frozenset) and args and _is_text(args[0]):
        items = value if args[0] is str else f"[x.value for x in {value}]"
        if origin is frozenset:
            items = f"sorted({items})"
        return f"'[' + ','.join(map(quote, {items})) + ']'"
    if origin is tuple and args and isinstance(args[0], type) and attrs.has(args[0]):
        name = _register(namespace, _object_writer(args[0]))
        return f"'[' + ','.join(map({name}, {value})) + ']'"
    if tp is str:
        return f"quote({value})"
    if _is_text(tp):
        return f"quote({value}.value)"
    if tp is bool:
        return f"('true' if {value} else 'false')"
    if tp is int:
        return f"str({value})"
    if tp is datetime:
        return f"quoted_datetime({value})"
    if tp is Decimal:
        return f"'\"' + str({value}) + '\"'"
    if isinstance(tp, type) and attrs.has(tp):
        return f"{_register(namespace, _object_writer(tp))}({value})"
    namespace[f"enc{i}"] = _encoder(tp)
    return f"dumps(enc{i}({value}))"


def _is_text(tp: Any) -> bool:
    """Strings, and enums whose values are strings: written as JSON strings."""
    if tp is str:
        return True
    return (
        isinstance(tp, type)
        and issubclass(tp, Enum)
        and all(isinstance(m.value, str) for m in tp.__members__.values())
    )


def _register(namespace: dict[str, Any], function: Callable[[Any], str]) -> str:
    """Put ``function`` in a generated writer's namespace; the name to call it by."""
    name = f"write{len(namespace)}"
    namespace[name] = function
    return name


_OBJECT_WRITERS: dict[type, Callable[[Any], str]] = {}


def _object_writer(cls: type) -> Callable[[Any], str]:
    """A function that writes one ``cls`` value (an attrs class inside events) as JSON."""
    writer = _OBJECT_WRITERS.get(cls)
    if writer is None:
        writer = _OBJECT_WRITERS[cls] = _generate_writer(cls, {}, frozenset())
    return writer


def _writer_namespace() -> dict[str, Any]:
    return {"quote": encode_basestring, "quoted_datetime": _quoted_datetime, "dumps": _JSON.encode}


def _generate_writer(cls: type, head: dict[str, Any], skip: frozenset[str]) -> Callable[[Any], str]:
    """Compile a function that writes a ``cls`` value as the JSON object ``head`` followed by
    the value's fields (those not in ``skip``), each written by :func:`_json_piece`."""
    namespace = _writer_namespace()
    source = f"def write(o):\n    return {_json_expression(cls, head, skip, namespace)}\n"
    exec(compile(source, f"<lifecycle writer {cls.__name__}>", "exec"), namespace)
    writer: Callable[[Any], str] = namespace["write"]
    return writer


def _json_expression(
    cls: type, head: dict[str, Any], skip: frozenset[str], namespace: dict[str, Any]
) -> str:
    """A Python expression that writes the ``cls`` value ``o`` as :func:`_generate_writer`
    says (the helpers it calls go into ``namespace``)."""
    hints = _field_types(cls)
    text = _JSON.encode(head)[:-1]  # "{...": the constant members, still open
    parts: list[str] = []
    comma = "," if head else ""
    for i, (name, _) in enumerate(_plan(cls)):
        if name in skip:
            continue
        parts += [repr(f"{text}{comma}{_JSON.encode(name)}:")]
        parts += [_json_piece(hints[name], f"o.{name}", namespace, i)]
        text, comma = "", ","
    parts.append(repr(text + "}"))
    return "''.join((" + ", ".join(parts) + ",))"


def _json_writer(cls: type[Event], *, with_ids: bool = True) -> Callable[[Event], str]:
    """A function that writes one ``cls`` event as JSON, equal to encoding its dict (without
    the id fields unless ``with_ids``).

    Generated once per class: building the dict and walking it again in the encoder costs
    more than writing the text straight away, and bulk ingest writes every event.
    """
    writer = _JSON_WRITERS.get((cls, with_ids))
    if writer is None:
        head = {"type": cls.event_type, "v": SCHEMA_VERSION}
        skip = frozenset() if with_ids else _ID_FIELDS
        writer = _JSON_WRITERS[(cls, with_ids)] = _generate_writer(cls, head, skip)
    return writer


@cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(tp: Any, value: Any, field: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = (a for a in args if a is not type(None))
        return _decode(inner, value, field)
    if origin is tuple:
        if not isinstance(value, list):
            raise InvalidEvent("expected a list", field=field)
        return tuple(_decode(typing.get_args(tp)[0], v, field) for v in value)
    if origin is frozenset:
        if not isinstance(value, list):
            raise InvalidEvent("expected a list", field=field)
        return frozenset(_decode(typing.get_args(tp)[0], v, field) for v in value)
    if tp is datetime:
        return _decode_datetime(value, field)
    if tp is Decimal:
        if not isinstance(value, str):
            raise InvalidEvent("expected a decimal string", field=field)
        try:
            return Decimal(value)
        except InvalidOperation as e:
            raise InvalidEvent("not a decimal number", field=field) from e
    if tp is date:
        try:
            return date.fromisoformat(value)
        except (TypeError, ValueError) as e:
            raise InvalidEvent("not an ISO date", field=field) from e
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(value)
        except ValueError as e:
            raise InvalidEvent(f"not a valid {tp.__name__}", field=field) from e
    if isinstance(tp, type) and attrs.has(tp):
        if not isinstance(value, Mapping):
            raise InvalidEvent("expected an object", field=field)
        return _build(tp, value, prefix=f"{field}.")
    if tp in (str, int, bool):
        if type(value) is not tp:
            raise InvalidEvent(f"expected {tp.__name__}", field=field)
        return value
    raise InvalidEvent(f"cannot decode a value of type {tp!r}", field=field)


def _decode_datetime(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidEvent("expected an ISO 8601 timestamp", field=field)
    key = None
    if value.endswith("]") and "[" in value:
        value, key = value[:-1].split("[", 1)
    try:
        at = datetime.fromisoformat(value)
    except ValueError as e:
        raise InvalidEvent("not a valid ISO 8601 timestamp", field=field) from e
    if at.tzinfo is None:
        raise InvalidEvent("timestamp has no offset", field=field)
    if key is None:
        return at
    try:
        tz = zone(key)
    except (ValueError, KeyError) as e:
        raise InvalidEvent(f"unknown time zone {key!r}", field=field) from e
    # Put the written wall time back in its zone, choosing the fold that has the written offset:
    # that keeps wall times in DST gaps and folds exactly as they were.
    wall = at.replace(tzinfo=None)
    for fold in (0, 1):
        candidate = wall.replace(tzinfo=tz, fold=fold)
        if candidate.utcoffset() == at.utcoffset():
            return candidate
    return at.astimezone(tz)


def _build(cls: type, data: Mapping[str, Any], *, prefix: str = "") -> Any:
    hints = _field_types(cls)
    names = {f.name for f in attrs.fields(cls) if f.init}
    unknown = set(data) - names
    if unknown:
        raise InvalidEvent("unknown field", field=prefix + sorted(unknown)[0])
    kwargs = {k: _decode(hints[k], v, prefix + k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except LifecycleError:
        raise
    except TypeError as e:
        missing = [
            f.name
            for f in attrs.fields(cls)
            if f.init and f.name not in data and f.default is attrs.NOTHING
        ]
        raise InvalidEvent(
            "missing required field", field=prefix + (missing[0] if missing else "?")
        ) from e


def _decoder(tp: Any, namespace: dict[str, Any], i: int, value: str) -> str:
    """A Python expression that decodes ``value`` (JSON data) into a ``tp`` value, for the
    common shapes; anything else goes through :func:`_decode`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            inner = _decoder(options[0], namespace, i, value)
            return f"(None if {value} is None else {inner})"
    if origin is tuple and args and args[0] is str:
        return f"strings({value})"
    if origin in (tuple, frozenset) and args:
        item = _decoder(args[0], namespace, i * 100 + 1, "x")
        kind = "tuple" if origin is tuple else "frozenset"
        return f"{kind}({item} for x in items({value}))"
    if isinstance(tp, type) and attrs.has(tp):
        namespace[f"obj{i}"] = _nested_reader(tp)
        return f"obj{i}({value})"
    if tp in (str, int, bool):
        namespace[f"t{i}"] = tp
        return f"({value} if type({value}) is t{i} else fail())"
    if tp is datetime:
        return f"read_datetime({value}, '')"
    if tp is Decimal:
        return f"Decimal({value} if type({value}) is str else fail())"
    if isinstance(tp, type) and issubclass(tp, Enum):
        namespace[f"enum{i}"] = tp
        return f"enum{i}({value})"
    namespace[f"tp{i}"] = tp
    return f"decode(tp{i}, {value}, '')"


def _strings(value: Any) -> tuple[str, ...]:
    if type(value) is not list or not all(type(x) is str for x in value):
        raise TypeError("expected a list of strings")
    return tuple(value)


def _fail() -> Any:
    raise TypeError("unexpected type")


def _items(value: Any) -> list[Any]:
    if type(value) is not list:
        raise TypeError("expected a list")
    return value


def _nested_reader(cls: type) -> Callable[[Any], Any]:
    """A function that builds a ``cls`` (an attrs value inside an event, such as a profile)
    from a dict holding exactly its fields."""
    names, read = _reader(cls)

    def read_nested(value: Any) -> Any:
        if type(value) is not dict or value.keys() != names:
            raise TypeError(f"expected the fields of {cls.__name__}")
        return read(value)

    return read_nested


_READERS: dict[type, tuple[frozenset[str], Callable[[Mapping[str, Any]], Any]]] = {}


def _reader(cls: type) -> tuple[frozenset[str], Callable[[Mapping[str, Any]], Any]]:
    """The field names of ``cls`` and a function that builds a ``cls`` from a dict holding
    exactly those fields (``type`` and ``v`` removed).

    Generated once per class, like the writers: the generic walk over the type hints costs
    more than the decoding. Any failure is left to :func:`_build`, which names the field.
    """
    reader = _READERS.get(cls)
    if reader is None:
        namespace: dict[str, Any] = {
            "cls": cls,
            "Decimal": Decimal,
            "read_datetime": _decode_datetime,
            "decode": _decode,
            "strings": _strings,
            "fail": _fail,
            "items": _items,
        }
        hints = _field_types(cls)
        names = [f.name for f in attrs.fields(cls) if f.init]
        args = [
            f"{name}={_decoder(hints[name], namespace, i, f'd[{name!r}]')}"
            for i, name in enumerate(names)
        ]
        source = "def read(d):\n    return cls(" + ", ".join(args) + ")\n"
        exec(compile(source, f"<lifecycle reader {cls.__name__}>", "exec"), namespace)
        reader = _READERS[cls] = (frozenset(names), namespace["read"])
    return reader


def event_to_row(event: Event) -> list[Any]:
    """The event as a compact JSON-ready list: its type, the schema version, then the values
    of :func:`event_to_dict` in field order. For state the library keeps for itself."""
    return list(_event_encoder(type(event))(event).values())


def event_from_row(row: Sequence[Any]) -> Event:
    """Rebuild an event from :func:`event_to_row` output that the library wrote itself.

    The fields are set as written, without the event classes' checks (they ran when the
    event was made), which makes this several times cheaper than :func:`event_from_dict`.

    Raises:
        InvalidEvent: the row is not one of this release's layout.
    """
    kind = row[0] if row else None
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None or len(row) < 2 or row[1] != SCHEMA_VERSION:
        raise InvalidEvent("not an event row of this release")
    width, read = _row_reader(cls)
    if len(row) != width:
        raise InvalidEvent("an event row of another length")
    try:
        event: Event = read(row)
    except (TypeError, ValueError, KeyError, InvalidOperation) as e:
        raise InvalidEvent("an event row that does not decode") from e
    return event


def _read_instant(value: str, field: str) -> datetime:
    """An instant written by :func:`_encode_datetime`, as :func:`_decode_datetime` reads it,
    with a shorter way for the common case (a wall time that is neither in a gap nor a fold)."""
    head, _, key = value.partition("[")
    at = datetime.fromisoformat(head)
    if not key:
        return at
    wall = at.replace(tzinfo=zone(key[:-1]))
    if wall.utcoffset() == at.utcoffset() and wall.fold == 0:
        return wall
    return _decode_datetime(value, field)


_ROW_READERS: dict[type, tuple[int, Callable[[Sequence[Any]], Any]]] = {}


def _row_reader(cls: type) -> tuple[int, Callable[[Sequence[Any]], Any]]:
    """The length of a ``cls`` row and a function that rebuilds the event from one, setting
    each field as attrs' own ``__init__`` would store it after its checks."""
    reader = _ROW_READERS.get(cls)
    if reader is None:
        namespace: dict[str, Any] = {
            "cls": cls,
            "new": object.__new__,
            "put": object.__setattr__,
            "to_utc": to_utc,
            "Decimal": Decimal,
            "read_datetime": _read_instant,
            "decode": _decode,
            "strings": tuple,
            "fail": _fail,
            "items": _items,
        }
        hints = _field_types(cls)
        plan = _plan(cls)
        lines = ["def read(r):", "    e = new(cls)"]
        for i, (name, _) in enumerate(plan):
            value = _decoder(hints[name], namespace, i, f"r[{i + 2}]")
            lines.append(f"    put(e, {name!r}, {value})")
        rank = getattr(cls, "rank")  # noqa: B009  # an Event class, typed as ``type`` here
        lines.append(f"    put(e, '_sort_key', (to_utc(e.at), {rank}, e.event_id))")
        lines.append("    return e")
        source = "\n".join(lines) + "\n"
        exec(compile(source, f"<lifecycle row reader {cls.__name__}>", "exec"), namespace)
        reader = _ROW_READERS[cls] = (len(plan) + 2, namespace["read"])
    return reader


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Rebuild an event from :func:`event_to_dict` output, upgrading older schema versions.

    Raises:
        InvalidEvent: unknown type, a newer schema version, or a field that does not decode.
    """
    if type(data) is dict and data.get("v") == SCHEMA_VERSION:
        cls = EVENT_TYPES.get(data.get("type"))  # type: ignore[arg-type]
        if cls is not None:
            names, read = _reader(cls)
            body = {k: v for k, v in data.items() if k != "type" and k != "v"}
            if body.keys() == names:
                try:
                    fast: Event = read(body)
                except Exception:  # the generic path below names the problem
                    pass
                else:
                    return fast
    if not isinstance(data, Mapping):
        raise InvalidEvent("an event dict must be a mapping")
    body = dict(data)
    kind = body.pop("type", None)
    version = body.pop("v", None)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidEvent("missing or bad schema version", field="v")
    if version > SCHEMA_VERSION:
        raise InvalidEvent(
            f"written by a newer release (schema version {version}, this release reads up to "
            f"{SCHEMA_VERSION}); upgrade lifecycle to read it",
            field="v",
        )
    while version < SCHEMA_VERSION:
        body = _MIGRATIONS[version](body)
        version += 1
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidEvent(f"unknown event type {kind!r}", field="type")
    event: Event = _build(cls, body)
    return event


def event_from_json(text: str | bytes) -> Event:
    """Rebuild an event from :func:`event_to_json` output."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise InvalidEvent("not valid JSON") from e
    return event_from_dict(data)
