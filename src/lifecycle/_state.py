"""A customer's folded history as bytes, kept in their snapshot, and its resumption.

A snapshot's ``state`` holds the :class:`~lifecycle._ledger.Ledger` of the customer's first
``version`` events and their stage changes so far. Reading the customer later folds only the
events stored since (:meth:`lifecycle.ports.Store.history_since`) on top of it, which gives
the same ledger as folding the whole history, as long as

- the policy is the one the state was folded under (its fingerprint),
- every event folded is at or before the instant asked for,
- every new event at or before that instant comes after the last event folded, in replay
  order (an event back-dated into the folded past makes the fold start over), and
- no new event moves the customer to another time zone (their calendar days regroup).

Otherwise :func:`resume` returns ``None`` and the caller folds the whole history. The stage
changes kept hold while no new event arrives, time has not reached the instant at which it
alone may change the stage, and the customers referred converted when they did then;
otherwise the caller replays the history for them, when they are asked for.

The state is JSON: the events the ledger keeps, each written once as a row
(:func:`lifecycle.serde.event_to_row`), and the ledger's fields referring to them.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, Final, cast

import attrs

from lifecycle._ledger import Ledger, OrderState, customer_zone
from lifecycle._time import to_utc, zone
from lifecycle.customer import Profile
from lifecycle.errors import InvalidEvent
from lifecycle.events import Event, ProfileUpdated, sort_key
from lifecycle.policy import Policy
from lifecycle.reasons import Reason
from lifecycle.serde import SCHEMA_VERSION as EVENT_SCHEMA
from lifecycle.serde import encode_value, event_from_dict, event_from_row, event_to_row
from lifecycle.stages import StageChange
from lifecycle.vocabulary import Purpose, Stage

__all__ = [
    "STATE_MIN_EVENTS",
    "Resumed",
    "canonical",
    "encode_state",
    "policy_fingerprint",
    "resume",
]

#: The layout of the state this release writes; a state of another layout is folded again.
STATE_VERSION: Final = 1

#: Snapshots keep a state only for customers with at least this many events: a shorter
#: history reads and folds in less time than a state decodes, and costs nothing to write.
STATE_MIN_EVENTS: Final = 200

#: Ledger attributes that are not part of the state: the policy is the caller's, the zone is
#: written by name.
_CONTEXT: Final = frozenset({"policy", "tz"})


@attrs.frozen
class Resumed:
    """What :func:`resume` gives: the ledger at the instant asked for and the first event
    stored after that instant, if any; :meth:`stage_history` tells whether the stage changes
    the state kept hold."""

    ledger: Ledger
    later: datetime | None
    _stages: tuple[StageChange, ...] | None
    _referrals: Mapping[str, datetime]

    def stage_history(self, referrals: Mapping[str, datetime]) -> tuple[StageChange, ...] | None:
        """The stage changes up to the instant asked for when the customers referred
        converted as ``referrals`` says (what the state read); ``None``: replay for them."""
        if self._stages is None or self._referrals != {
            rid: to_utc(t) for rid, t in referrals.items()
        }:
            return None
        return self._stages


def canonical(value: object) -> Any:
    """``value`` as plain data in a fixed order, the same in every process (sets sorted; a
    rule written as code by its class and id)."""
    if attrs.has(type(value)):
        fields = attrs.fields(cast("type[attrs.AttrsInstance]", type(value)))
        return [
            type(value).__qualname__,
            {f.name: canonical(getattr(value, f.name)) for f in fields if f.init},
        ]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return sorted(([canonical(k), canonical(v)] for k, v in value.items()), key=repr)
    if isinstance(value, set | frozenset):
        return sorted((canonical(v) for v in value), key=repr)
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, datetime | date | time | timedelta | Decimal):
        return str(value)
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}:{getattr(value, 'id', '')}"


_FINGERPRINT: list[tuple[Policy, str]] = []


def policy_fingerprint(policy: Policy) -> str:
    """A digest of ``policy``, the same in every process: a state folded under another
    policy is folded again. Worked out once for the policy last asked about."""
    if _FINGERPRINT and _FINGERPRINT[0][0] is policy:
        return _FINGERPRINT[0][1]
    text = json.dumps(canonical(policy), sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()
    _FINGERPRINT[:] = [(policy, digest)]
    return digest


def _instant(at: datetime) -> str:
    text = encode_value(at)
    assert isinstance(text, str)
    return text


def _read_instant(text: str) -> datetime:
    """An instant as :func:`lifecycle.serde.encode_value` writes it, zone name and all."""
    head, _, key = text.partition("[")
    at = datetime.fromisoformat(head)
    if key:
        at = at.astimezone(zone(key.rstrip("]")))
    return at


class _Writer:
    def __init__(self) -> None:
        self.rows: list[list[Any]] = []
        self.index: dict[str, int] = {}

    def event(self, e: Event) -> int:
        i = self.index.get(e.event_id)
        if i is None:
            i = self.index[e.event_id] = len(self.rows)
            self.rows.append(event_to_row(e))
        return i

    def value(self, v: Any) -> Any:
        if isinstance(v, Enum):  # before str and int: a StrEnum is a str
            if isinstance(v, Purpose):
                return ["Q", v.value]
            raise TypeError(f"a state has no form for {type(v).__name__}")
        if v is None or isinstance(v, bool | int | str):
            return v
        if isinstance(v, Event):
            return ["E", self.event(v)]
        if isinstance(v, OrderState):
            return [
                "O",
                [
                    v.order_id,
                    self.value(v.placed),
                    self.value(v.paid),
                    self.value(v.cancelled),
                    [self.event(r) for r in v.refunds],
                    self.value(v.shipped),
                    self.value(v.delivered),
                ],
            ]
        if isinstance(v, Profile):
            return ["P", encode_value(v)]
        if isinstance(v, date) and not isinstance(v, datetime):
            return ["D", v.isoformat()]
        if isinstance(v, Counter):
            return ["C", [[self.value(k), self.value(x)] for k, x in v.items()]]
        if isinstance(v, dict):
            return ["M", [[self.value(k), self.value(x)] for k, x in v.items()]]
        if isinstance(v, tuple):
            return ["T", [self.value(x) for x in v]]
        if isinstance(v, list):
            return ["L", [self.value(x) for x in v]]
        if isinstance(v, set | frozenset):
            return ["S", [self.value(x) for x in v]]
        raise TypeError(f"a state has no form for {type(v).__name__}")


class _Reader:
    def __init__(self, events: list[Event], customer_id: str):
        self.events = events
        self.customer_id = customer_id

    def value(self, v: Any) -> Any:
        if not isinstance(v, list):
            return v
        tag, body = v
        if tag == "E":
            return self.events[body]
        if tag == "Q":
            return Purpose(body)
        if tag == "O":
            oid, placed, paid, cancelled, refunds, shipped, delivered = body
            return OrderState(
                oid,
                placed=self.value(placed),
                paid=self.value(paid),
                cancelled=self.value(cancelled),
                refunds=[self.events[i] for i in refunds],
                shipped=self.value(shipped),
                delivered=self.value(delivered),
            )
        if tag == "P":
            # A profile travels as the body of a profile update: serde reads that.
            wrapper = event_from_dict(
                {
                    "type": ProfileUpdated.event_type,
                    "v": EVENT_SCHEMA,
                    "customer_id": self.customer_id,
                    "event_id": "state",
                    "at": "2000-01-01T00:00:00+00:00",
                    "profile": body,
                }
            )
            assert isinstance(wrapper, ProfileUpdated)
            return wrapper.profile
        if tag == "D":
            return date.fromisoformat(body)
        if tag == "C":
            return Counter({self.value(k): self.value(x) for k, x in body})
        if tag == "M":
            return {self.value(k): self.value(x) for k, x in body}
        if tag == "T":
            return tuple(self.value(x) for x in body)
        if tag == "L":
            return [self.value(x) for x in body]
        if tag == "S":
            return {self.value(x) for x in body}
        raise ValueError(f"unknown state tag {tag!r}")


def _change(c: StageChange) -> list[Any]:
    return [
        int(c.stage),
        _instant(c.since),
        c.rule,
        list(c.evidence),
        [[r.code, r.en, r.zh, list(r.evidence)] for r in c.reasons],
    ]


def _read_change(row: list[Any]) -> StageChange:
    stage, since, rule, evidence, reasons = row
    return StageChange(
        stage=Stage(stage),
        since=_read_instant(since),
        rule=rule,
        evidence=tuple(evidence),
        reasons=tuple(
            Reason(code=c, en=en, zh=zh, evidence=tuple(ev)) for c, en, zh, ev in reasons
        ),
    )


def encode_state(
    customer_id: str,
    ledger: Ledger,
    last: Event | None,
    fingerprint: str,
    *,
    stage_history: tuple[StageChange, ...],
    stages_until: datetime | None,
    referrals: Mapping[str, datetime],
) -> bytes | None:
    """The state of ``ledger``, which folded every stored event of the customer up to
    ``last`` (the last in replay order) under the policy of ``fingerprint``, with the stage
    changes so far, until when time alone leaves them so, and the referral conversions they
    read. ``None`` when some value has no form here (the snapshot then keeps no state)."""
    key = getattr(ledger.tz, "key", None)
    if not isinstance(key, str):
        return None
    writer = _Writer()
    try:
        fields = {
            name: writer.value(value)
            for name, value in vars(ledger).items()
            if name not in _CONTEXT
        }
    except TypeError:
        return None  # a value with no form here: the snapshot keeps no state
    doc = {
        "v": STATE_VERSION,
        "events": EVENT_SCHEMA,
        "policy": fingerprint,
        "customer": customer_id,
        "tz": key,
        "last": None if last is None else [_instant(to_utc(last.at)), last.rank, last.event_id],
        "rows": writer.rows,
        "ledger": fields,
        "stages": [_change(c) for c in stage_history],
        "stages_until": None if stages_until is None else _instant(to_utc(stages_until)),
        "referrals": {rid: _instant(to_utc(t)) for rid, t in sorted(referrals.items())},
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def resume(
    state: bytes,
    since: Sequence[Event],
    policy: Policy,
    fingerprint: str,
    now: datetime,
) -> Resumed | None:
    """The customer's ledger at ``now`` (UTC) from ``state`` and the events stored ``since``
    it (in replay order), or ``None`` when the whole history must be folded again (see the
    module)."""
    try:
        doc = json.loads(state)
        if (
            doc.get("v") != STATE_VERSION
            or doc.get("events") != EVENT_SCHEMA
            or doc.get("policy") != fingerprint
        ):
            return None
        last = doc["last"]
        last_key = None
        if last is not None:
            last_key = (to_utc(_read_instant(last[0])), int(last[1]), str(last[2]))
            if last_key[0] > now:
                return None  # the state holds events after ``now``
        new = [e for e in since if sort_key(e)[0] <= now]
        if last_key is not None and new and sort_key(new[0]) <= last_key:
            return None  # an event back-dated into the folded past
        tz = zone(doc["tz"])
        if customer_zone(new, policy, tz) != tz:
            return None
        reader = _Reader([event_from_row(row) for row in doc["rows"]], str(doc["customer"]))
        ledger = Ledger(policy, tz)
        kept = set(vars(ledger)) - _CONTEXT
        if kept != set(doc["ledger"]):
            return None  # a ledger of another shape
        for name, value in doc["ledger"].items():
            setattr(ledger, name, reader.value(value))
        stages: tuple[StageChange, ...] | None = None
        until = doc["stages_until"]
        used = {rid: to_utc(_read_instant(t)) for rid, t in doc["referrals"].items()}
        if not new and (until is None or now < to_utc(_read_instant(until))):
            stages = tuple(
                c for c in (_read_change(row) for row in doc["stages"]) if to_utc(c.since) <= now
            )
    except (ValueError, KeyError, TypeError, IndexError, InvalidEvent):
        return None  # a state this release cannot read is folded again
    for e in new:
        ledger.apply(e)
    ledger.applied += len(new)
    later = next((sort_key(e)[0] for e in since if sort_key(e)[0] > now), None)
    return Resumed(ledger, later, stages, used)
