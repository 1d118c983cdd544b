"""Follow-up rules as data: when a customer should hear from the shop, why, and how.

Every rule has an id, a trigger (its kind and settings), a delay or window, the stages,
statuses and tiers it applies to, a purpose, channels in order of preference, a template, a
priority and stop conditions. A rule turns a customer's facts into :class:`Occurrence` s: one
per thing to say (an order shipped, a birthday this year), each with a stable occurrence id,
so planning twice gives the same keys. Hosts add rules as code by implementing
:class:`CadenceRule`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Protocol, runtime_checkable

import attrs

from lifecycle._display import money
from lifecycle._time import require_aware, to_utc
from lifecycle.calendar import festivals, lunar_birthday_on, solar_to_lunar
from lifecycle.customer import Birthday
from lifecycle.errors import PolicyError
from lifecycle.reasons import Reason
from lifecycle.vocabulary import RULE_CHANNELS, Purpose, Stage, Status, TierMove

if TYPE_CHECKING:
    from lifecycle.policy import Policy
    from lifecycle.record import CustomerRecord

__all__ = [
    "AfterEvent",
    "Anniversary",
    "CadenceRule",
    "Campaign",
    "EventTrigger",
    "Festival",
    "Occurrence",
    "Overdue",
    "Periodic",
    "PointsExpiry",
    "Replenishment",
    "Rule",
    "Segment",
    "SequenceStart",
    "SequenceStep",
    "StageEntry",
    "StepSequence",
    "Stop",
    "TierDowngradeWarning",
    "TierUpgrade",
    "WinBack",
    "default_rules",
    "rule_from_dict",
    "upgrade_posting",
]


@attrs.frozen(kw_only=True)
class Occurrence:
    """One thing a rule has to say to one customer.

    Attributes:
        occurrence: what makes it unique within the rule (an order id, a year, ...); with the
            customer and the rule it makes the follow-up's key.
        due_at: when it is due, before quiet hours and caps.
        valid_until: after this it is pointless (a birthday greeting after the day).
        reason: why the rule fires, in English and Chinese.
        values_en, values_zh: template fields for this occurrence (order id, occasion, ...).
        stopped: set when a stop condition has been met since the trigger.
        template: a template other than the rule's (a step of a sequence).
    """

    occurrence: str
    due_at: datetime = attrs.field(converter=to_utc)
    valid_until: datetime = attrs.field(converter=to_utc)
    reason: Reason
    values_en: Mapping[str, str] = attrs.field(factory=dict, eq=False)
    values_zh: Mapping[str, str] = attrs.field(factory=dict, eq=False)
    stopped: Reason | None = None
    template: str | None = None


@runtime_checkable
class CadenceRule(Protocol):
    """A follow-up rule; built-in rules and a host's own rules as code alike.

    ``occurrences`` reads the customer's facts and yields what is due or will be; the planner
    applies consent, quiet hours, caps and priority to them.
    """

    @property
    def id(self) -> str: ...

    @property
    def template(self) -> str: ...

    @property
    def purpose(self) -> Purpose: ...

    @property
    def channels(self) -> tuple[str, ...]: ...

    @property
    def priority(self) -> int: ...

    def occurrences(self, facts: CustomerRecord) -> Iterable[Occurrence]: ...


class Stop(StrEnum):
    """Stop conditions: an occurrence is suppressed once one of them happens after its trigger."""

    PAID = "paid"
    """The order was paid."""
    CANCELLED = "cancelled"
    """The order was cancelled."""
    DELIVERED = "delivered"
    """The order was delivered."""
    REVIEWED = "reviewed"
    """The customer posted a review."""
    RESOLVED = "resolved"
    """The complaint was resolved."""
    PURCHASED = "purchased"
    """The customer made a valid order."""
    REPLIED = "replied"
    """The customer replied."""


_STOP_WORDS: Final = {
    Stop.PAID: ("the order was paid", "订单已付款"),
    Stop.CANCELLED: ("the order was cancelled", "订单已取消"),
    Stop.DELIVERED: ("the order was delivered", "订单已送达"),
    Stop.REVIEWED: ("the customer posted a review", "客户已评价"),
    Stop.RESOLVED: ("the complaint was resolved", "投诉已解决"),
    Stop.PURCHASED: ("the customer bought again", "客户已再次购买"),
    Stop.REPLIED: ("the customer replied", "客户已回复"),
}


# -- converters and validators ------------------------------------------------------------------


def _key(inst: object, name: str) -> str:
    return f"cadence.rules.{getattr(inst, 'id', '?')}.{name}"


def _rule_id(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        raise PolicyError("must be a non-empty string without spaces", key="cadence.rules.id")


def _nonempty(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError("must be a non-empty string", key=_key(inst, attr.name))


def _to_purpose(value: object) -> Purpose:
    try:
        return Purpose(value)  # type: ignore[arg-type]  # a bad value raises ValueError
    except ValueError:
        raise PolicyError(
            f"unknown purpose {value!r}; use one of {[p.value for p in Purpose]}",
            key="cadence.rules.purpose",
        ) from None


def _to_channels(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise PolicyError("give a list of channels", key="cadence.rules.channels")
    out = tuple(value)
    bad = [c for c in out if c not in RULE_CHANNELS]
    if not out or bad:
        raise PolicyError(
            f"needs channels among {sorted(RULE_CHANNELS)}, got {list(out)}",
            key="cadence.rules.channels",
        )
    return out


def _stage(value: object) -> Stage:
    """A stage from a Stage, its number (1-8) or its name (``"long_term"``)."""
    if isinstance(value, Stage):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Stage(value)
    return Stage[str(value).upper()]


def _to_stages(value: object) -> frozenset[Stage]:
    if isinstance(value, str | int) or not isinstance(value, Iterable):
        raise PolicyError("give a list of stages", key="cadence.rules.stages")
    out = set()
    for v in value:
        try:
            out.add(_stage(v))
        except (KeyError, ValueError):
            raise PolicyError(
                f"unknown stage {v!r}; use one of {[s.name.lower() for s in Stage]}",
                key="cadence.rules.stages",
            ) from None
    return frozenset(out)


def _to_statuses(value: object) -> frozenset[Status]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise PolicyError("give a list of statuses", key="cadence.rules.statuses")
    try:
        return frozenset(Status(v) for v in value)
    except ValueError:
        raise PolicyError(
            f"unknown status; use {[s.value for s in Status]}", key="cadence.rules.statuses"
        ) from None


def _to_strs(value: object) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise PolicyError("give a list of strings", key="cadence.rules")
    out = frozenset(value)
    if not all(isinstance(v, str) and v for v in out):
        raise PolicyError("must hold non-empty strings", key="cadence.rules")
    return out


def _to_stops(value: object) -> frozenset[Stop]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise PolicyError("give a list of stop conditions", key="cadence.rules.stop")
    try:
        return frozenset(Stop(v) for v in value)
    except ValueError:
        raise PolicyError(
            f"unknown stop condition; use {[s.value for s in Stop]}", key="cadence.rules.stop"
        ) from None


def _hours(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise PolicyError(f"must be a number >= 0, got {value!r}", key=_key(inst, attr.name))


def _positive(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise PolicyError(f"must be a number > 0, got {value!r}", key=_key(inst, attr.name))


def _days(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PolicyError(
            f"must be a whole number of days >= 0, got {value!r}", key=_key(inst, attr.name)
        )


def _priority(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise PolicyError(
            f"must be a whole number 0-100, got {value!r}", key=_key(inst, "priority")
        )


def _share(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise PolicyError(f"must be a share in [0, 1), got {value!r}", key=_key(inst, attr.name))


def _seed(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or len(value.encode()) > 64:
        raise PolicyError("must be a string of at most 64 bytes", key=_key(inst, attr.name))


def _wall(value: object) -> time:
    if isinstance(value, time) and value.tzinfo is None:
        return value
    if isinstance(value, str):
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass
    raise PolicyError(
        f"must be a wall-clock time such as '10:00', got {value!r}", key="cadence.rules.send_at"
    )


def _hours_delta(hours: float) -> timedelta:
    return timedelta(hours=hours)


def _kind(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    expected = type(inst).KIND  # type: ignore[attr-defined]
    if value != expected:
        raise PolicyError(f"must be {expected!r} for this rule", key=_key(inst, "kind"))


# -- the common part ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Rule:
    """What every built-in rule has. Subclasses say when it fires.

    Attributes:
        id: unique within the policy; part of every follow-up key.
        template: the id of the message template.
        purpose: transactional, service or marketing: decides consent and caps.
        channels: allowed channels in order of preference (``"task"``: a job for the owner).
        priority: 0-100; higher wins when caps force a choice.
        stages, statuses, tiers: whom it applies to (empty: everyone).
        stop: stop conditions after the trigger.
        valid_hours: how long after it is due the message still makes sense.
        holdout: the share of the customers it fires for that it holds out as a control group
            (never sent, measured by :meth:`lifecycle.Lifecycle.experiment`); 0 holds out
            nobody. Who is held out is a keyed hash of ``holdout_seed``, the rule and the
            customer (:func:`lifecycle.cadence.gate.holdout_draw`): stable across runs.
        holdout_seed: change it to draw new groups for a new experiment on the same rule.
    """

    id: str = attrs.field(validator=_rule_id)
    template: str = attrs.field(validator=_nonempty)
    purpose: Purpose = attrs.field(converter=_to_purpose)
    channels: tuple[str, ...] = attrs.field(converter=_to_channels)
    priority: int = attrs.field(default=50, validator=_priority)
    stages: frozenset[Stage] = attrs.field(default=frozenset(), converter=_to_stages)
    statuses: frozenset[Status] = attrs.field(default=frozenset(), converter=_to_statuses)
    tiers: frozenset[str] = attrs.field(default=frozenset(), converter=_to_strs)
    stop: frozenset[Stop] = attrs.field(default=frozenset(), converter=_to_stops)
    valid_hours: float = attrs.field(default=72.0, validator=_positive)
    holdout: float = attrs.field(default=0.0, validator=_share)
    holdout_seed: str = attrs.field(default="", validator=_seed)
    kind: str = attrs.field(
        default=attrs.Factory(lambda self: type(self).KIND, takes_self=True), validator=_kind
    )
    """The rule's class as data (``"after_event"``, ``"festival"``, ...): how a policy file says
    which kind of rule a table is."""

    KIND: ClassVar[str] = "rule"

    @property
    def trigger(self) -> str:
        """The kind of trigger, e.g. ``"after_event:order_shipped"`` or ``"birthday"``."""
        return self.kind

    def applies(self, facts: CustomerRecord) -> bool:
        """Whether the customer is one the rule is for, at ``facts.now``."""
        if self.stages and facts.stage not in self.stages:
            return False
        if self.statuses and facts.status.status not in self.statuses:
            return False
        if self.tiers:
            tier = facts.tier
            key = tier.tier.key if tier is not None else facts.policy.loyalty.tiers.levels[0].key
            if key not in self.tiers:
                return False
        return True

    def occurrences(self, facts: CustomerRecord) -> Iterable[Occurrence]:
        """The occurrences for this customer; the base rule has none."""
        return ()

    def _valid(self, due: datetime) -> datetime:
        return due + _hours_delta(self.valid_hours)

    def _stopped(
        self,
        facts: CustomerRecord,
        since: datetime,
        *,
        order_id: str | None = None,
        complaint_id: str | None = None,
    ) -> Reason | None:
        """The first stop condition met after ``since`` (UTC), as a reason."""
        hits: list[tuple[datetime, Stop, str]] = []
        order = facts.orders.get(order_id) if order_id is not None else None
        for stop in self.stop:
            at: tuple[datetime, str] | None = None
            if stop is Stop.PAID and order is not None and order.paid is not None:
                at = (order.paid.at, order.paid.event_id)
            elif stop is Stop.CANCELLED and order is not None and order.cancelled is not None:
                at = (order.cancelled.at, order.cancelled.event_id)
            elif stop is Stop.DELIVERED and order is not None and order.delivered is not None:
                at = (order.delivered.at, order.delivered.event_id)
            elif stop is Stop.RESOLVED and complaint_id is not None:
                r = facts.resolved.get(complaint_id)
                if r is not None:
                    at = (r.at, r.event_id)
            elif stop is Stop.REVIEWED:
                rv = next(
                    (
                        r
                        for r in facts.reviews
                        if to_utc(r.at) > since and r.order_id in (None, order_id)
                    ),
                    None,
                )
                at = None if rv is None else (rv.at, rv.event_id)
            elif stop is Stop.PURCHASED:
                o = facts.bought_after(since)
                at = None if o is None or o.paid is None else (o.paid.at, o.paid.event_id)
            elif stop is Stop.REPLIED:
                rp = next((r for r in facts.replies if to_utc(r.at) > since), None)
                at = None if rp is None else (rp.at, rp.event_id)
            if at is not None and to_utc(at[0]) >= since:
                hits.append((to_utc(at[0]), stop, at[1]))
        if not hits:
            return None
        when, stop, evidence = min(hits)
        en, zh = _STOP_WORDS[stop]
        return Reason(
            code=f"cadence.stop.{stop.value}",
            en=f"Stopped: {en} ({facts.day(when)}).",
            zh=f"已停止：{zh}（{facts.day(when)}）。",
            evidence=(evidence,),
        )


def _reason(rule: Rule, en: str, zh: str, *evidence: str) -> Reason:
    return Reason(code=f"cadence.rule.{rule.id}", en=en, zh=zh, evidence=tuple(evidence))


# -- after an event -----------------------------------------------------------------------------


class EventTrigger(StrEnum):
    """The events an :class:`AfterEvent` rule follows."""

    ORDER_PLACED = "order_placed"
    ORDER_PAID = "order_paid"
    ORDER_SHIPPED = "order_shipped"
    ORDER_DELIVERED = "order_delivered"
    COMPLAINT_OPENED = "complaint_opened"
    COMPLAINT_RESOLVED = "complaint_resolved"
    REFERRAL_CONVERTED = "referral_converted"
    """A customer this one referred made a first valid order."""


_TRIGGER_WORDS: Final = {
    EventTrigger.ORDER_PLACED: ("order {id} was placed", "订单{id}已下单"),
    EventTrigger.ORDER_PAID: ("order {id} was paid", "订单{id}已付款"),
    EventTrigger.ORDER_SHIPPED: ("order {id} shipped", "订单{id}已发货"),
    EventTrigger.ORDER_DELIVERED: ("order {id} was delivered", "订单{id}已送达"),
    EventTrigger.COMPLAINT_OPENED: ("complaint {id} was opened", "投诉{id}已提交"),
    EventTrigger.COMPLAINT_RESOLVED: ("complaint {id} was resolved", "投诉{id}已解决"),
    EventTrigger.REFERRAL_CONVERTED: (
        "a referred customer made a first order",
        "推荐的客户已完成首单",
    ),
}


def _to_trigger(value: object) -> EventTrigger:
    try:
        return EventTrigger(value)  # type: ignore[arg-type]  # a bad value raises ValueError
    except ValueError:
        raise PolicyError(
            f"unknown trigger {value!r}; use {[t.value for t in EventTrigger]}",
            key="cadence.rules.on",
        ) from None


def _delay_words(hours: float) -> tuple[str, str]:
    if hours == 0:
        return "at once", "立即"
    if hours % 24 == 0:
        return f"{hours / 24:g} days later", f"{hours / 24:g}天后"
    return f"{hours:g} hours later", f"{hours:g}小时后"


@attrs.frozen(kw_only=True)
class AfterEvent(Rule):
    """A message ``delay_hours`` after an event: payment reminder, shipping notice, care
    message, review request, complaint answer, satisfaction check, referral thank-you.
    One per order, complaint or referral."""

    KIND: ClassVar[str] = "after_event"

    on: EventTrigger = attrs.field(converter=_to_trigger)
    delay_hours: float = attrs.field(default=0.0, validator=_hours)

    @property
    def trigger(self) -> str:
        return f"after_event:{self.on.value}"

    def _triggers(
        self, facts: CustomerRecord
    ) -> Iterable[tuple[str, datetime, str, dict[str, str]]]:
        """(occurrence, instant, evidence, template values) for each trigger event."""
        on = self.on
        if on in (EventTrigger.COMPLAINT_OPENED, EventTrigger.COMPLAINT_RESOLVED):
            source = facts.complaints if on is EventTrigger.COMPLAINT_OPENED else facts.resolved
            for cid, c in source.items():
                yield cid, c.at, c.event_id, {}
            return
        if on is EventTrigger.REFERRAL_CONVERTED:
            for rid, ref in facts.referred.items():
                first = facts.referrals.get(rid)
                if first is not None and first <= facts.now:
                    yield rid, first, ref.event_id, {}
            return
        for oid, o in facts.orders.items():
            event = {
                EventTrigger.ORDER_PLACED: o.placed,
                EventTrigger.ORDER_PAID: o.paid,
                EventTrigger.ORDER_SHIPPED: o.shipped,
                EventTrigger.ORDER_DELIVERED: o.delivered,
            }[on]
            if event is not None:
                values = {"order_id": oid}
                if o.shipped is not None:
                    values["carrier"] = o.shipped.carrier or ""
                    values["tracking"] = o.shipped.tracking or ""
                yield oid, event.at, event.event_id, values

    def occurrences(self, facts: CustomerRecord) -> Iterable[Occurrence]:
        if not self.applies(facts):
            return
        is_order = self.on.value.startswith("order_")
        is_complaint = self.on.value.startswith("complaint_")
        delay_en, delay_zh = _delay_words(self.delay_hours)
        for occurrence, at, evidence, values in self._triggers(facts):
            since = to_utc(at)
            due = since + _hours_delta(self.delay_hours)
            if not facts.in_window(due, self._valid(due)):
                continue
            en, zh = _TRIGGER_WORDS[self.on]
            yield Occurrence(
                occurrence=occurrence,
                due_at=due,
                valid_until=self._valid(due),
                reason=_reason(
                    self,
                    f"{en.format(id=occurrence).capitalize()} on {facts.day(at)}; "
                    f"{self.id.replace('_', ' ')} {delay_en}.",
                    f"{zh.format(id=occurrence)}（{facts.day(at)}），{delay_zh}发送。",
                    evidence,
                ),
                values_en=values,
                values_zh=values,
                stopped=self._stopped(
                    facts,
                    since,
                    order_id=occurrence if is_order else None,
                    complaint_id=occurrence if is_complaint else None,
                ),
            )


@attrs.frozen(kw_only=True)
class Overdue(Rule):
    """A shipped order not delivered by its expected date plus ``grace_days``: once per order.

    Stops when the order is delivered or cancelled.
    """

    KIND: ClassVar[str] = "overdue"

    grace_days: int = attrs.field(default=2, validator=_days)
    stop: frozenset[Stop] = attrs.field(
        default=frozenset({Stop.DELIVERED, Stop.CANCELLED}), converter=_to_stops
    )

    def occurrences(self, facts: CustomerRecord) -> Iterable[Occurrence]:
        if not self.applies(facts):
            return
        for oid, o in facts.orders.items():
            if o.shipped is None or o.shipped.expected_delivery is None:
                continue
            expected = to_utc(o.shipped.expected_delivery)
            due = expected + timedelta(days=self.grace_days)
            if not facts.in_window(due, self._valid(due)):
                continue
            values = {
                "order_id": oid,
                "carrier": o.shipped.carrier or "",
                "tracking": o.shipped.tracking or "",
            }
            yield Occurrence(
                occurrence=oid,
                due_at=due,
                valid_until=self._valid(due),
                reason=_reason(
                    self,
                    f"Order {oid} was expected by {facts.day(expected)} and is not delivered "
                    f"{self.grace_days} days later.",
                    f"订单{oid}预计{facts.day(expected)}送达，超期{self.grace_days}天仍未签收。",
                    o.shipped.event_id,
                ),
                values_en=values,
                values_zh=values,
                stopped=self._stopped(facts, to_utc(o.shipped.at), order_id=oid),
            )


# -- anniversaries and the calendar -------------------------------------------------------------


def _lunar_birthdays(born: date, today: date) -> list[tuple[int, date]]:
    """(lunar year, solar date) of the lunar birthdays around ``today``, in the years the lunar
    table covers; none when the birth or today lies outside it."""
    try:
        this_year = solar_to_lunar(today).year
        solar_to_lunar(born)
    except ValueError:
        return []
    out = []
    for ly in range(this_year - 1, this_year + 2):
        try:
            out.append((ly, lunar_birthday_on(born, ly)))
        except ValueError:
            continue  # a lunar year past the table's end
    return out


def _years_around(facts: CustomerRecord) -> range:
    y = facts.today.year
    return range(y - 1, y + 2)


@attrs.frozen(kw_only=True)
class Anniversary(Rule):
    """A greeting on a yearly date at ``send_at`` local time, ``lead_days`` early; valid to
    the end of the day.

    ``of="birthday"``: the profile's birthday; 29 February falls on 28 February in common years
    (``feb29="mar1"``: on 1 March); a profile with ``lunar_birthday`` and a birth year is
    greeted on the lunar birthday instead (once per lunar year). ``of="first_order"``: the
    anniversary of the first valid order.
    """

    KIND: ClassVar[str] = "anniversary"

    of: Literal["birthday", "first_order"] = attrs.field(default="birthday")
    lead_days: int = attrs.field(default=0, validator=_days)
    send_at: time = attrs.field(default=time(10), converter=_wall)
    feb29: Literal["feb28", "mar1"] = attrs.field(default="feb28")

    @of.validator
    def _check_of(self, attr: attrs.Attribute[Any], value: object) -> None:
        if value not in ("birthday", "first_order"):
            raise PolicyError("must be 'birthday' or 'first_order'", key=_key(self, "of"))

    @feb29.validator
    def _check_feb29(self, attr: attrs.Attribute[Any], value: object) -> None:
        if value not in ("feb28", "mar1"):
            raise PolicyError("must be 'feb28' or 'mar1'", key=_key(self, "feb29"))

    @property
    def trigger(self) -> str:
        return self.of

    def _dates(self, facts: CustomerRecord) -> Iterable[tuple[str, date, str, str, str]]:
        """(occurrence, date, English and Chinese description, evidence)."""
        if self.of == "birthday":
            b = facts.profile.birthday
            if b is None:
                return
            evidence = facts.registered.event_id if facts.registered is not None else ""
            if facts.profile.lunar_birthday and b.year is not None:
                lunar = _lunar_birthdays(date(b.year, b.month, b.day), facts.today)
                for ly, d in lunar:
                    yield f"lunar{ly}", d, "lunar birthday", "农历生日", evidence
                if lunar:
                    return
                # Outside the lunar table (a birth before 1900-01-31, or a day past 2100):
                # greet on the solar birthday rather than not at all.
            for y in _years_around(facts):
                yield str(y), b.in_year(y, feb29=self.feb29), "birthday", "生日", evidence
            return
        orders = facts.valid_orders()
        if not orders or orders[0].paid is None:
            return
        first = facts.day(orders[0].paid.at)
        b = Birthday(month=first.month, day=first.day)
        for y in _years_around(facts):
            if y > first.year:
                yield (
                    str(y),
                    b.in_year(y, feb29=self.feb29),
                    f"{y - first.year}-year anniversary of the first order ({first})",
                    f"首单{y - first.year}周年（{first}）",
                    orders[0].paid.event_id,
                )

    def occurrences(self, facts: CustomerRecord) -> Iterable[Occurrence]:
        if not self.applies(facts):
            return
        for occurrence, day, en, zh, evidence in self._dates(facts):
            due = facts.at(day - timedelta(days=self.lead_days), self.send_at)
            if not facts.in_window(due, facts.day_end(day)):
                continue
            yield Occurrence(
                occurrence=occurrence,
                due_at=due,
                valid_until=facts.day_end(day),
                reason=_reason(
                    self,
                    f"The customer's {en} is on {day}.",
                    f"客户{zh}：{day}。",
                    *([evidence] if evidence else []),
                ),
                values_en={"occasion": en},
                values_zh={"occasion": zh},
            )


@attrs.frozen(kw_only=True)
class Festival(Rule):
    """A greeting or promotion ``lead_days`` before a holiday or shop festival, at ``send_at``
    local time; valid to the end of the festival day.

    ``calendar`` is ``"shop"`` (520, 618, Qixi, 11.11, 12.12), ``"CN"`` (China, lunar festivals
    included, built in) or another country's ISO code (through the ``holidays`` library);
    ``names`` picks holidays by key (empty: all of the calendar).
    """

    KIND: ClassVar[str] = "festival"

    calendar: str = attrs.field(default="CN", validator=_nonempty)
    names: frozenset[str] = attrs.field(default=frozenset(), converter=_to_strs)
    lead_days: int = attrs.field(default=0, validator=_days)
    send_at: time = attrs.field(default=time(10), converter=_wall)

    @property
    def trigger(self) -> str:
        return f"festival:{self.calendar}"

    def occurrences(self, facts: CustomerRecord) -> Iterable[Occurrence]:
        if not self.applies(facts):
            return
        for y in _years_around(facts):
            for h in festivals(self.calendar, y):
                if self.names and h.key not in self.names:
                    continue
                due = facts.at(h.day - timedelta(days=self.lead_days), self.send_at)
                if not facts.in_window(due, facts.day_end(h.day)):
                    continue
                yield Occurrence(
                    occurrence=f"{h.key}:{y}",
                    due_at=due,
                    valid_until=facts.day_end(h.day),
                    reason=_reason(
                        self,
                        f"{h.name_en} is on {h.day}; sent {self.lead_days} days ahead.",
                        f"{h.name_zh}：{h.day}，提前{self.lead_days}天发送。",
                    ),
                    values_en={"occasion": h.name_en},
                    values_zh={"occasion": h.name_zh},
                )


# -- stage, tier, points ------------------------------------------------------------------------


def _to_stage(value: object) -> Stage:
    try:
        return _stage(value)
    except (KeyError, ValueError):
        raise PolicyError(
            f"unknown stage {value!r}; use one of {[s.name.lower() for s in Stage]}",
            key="cadence.rules.entered",
        ) from None


@attrs.frozen(kw_only=True)
class StageEntry(Rule):
    """A message when the customer enters stage ``entered`` (welcome to repeat or long-term
    customers, a referral invitation for advocates), ``delay_hours`` after the entry."""

    KIND: ClassVar[str] = "stage_entry"

    entered: Stage = attrs.field(converter=_to_stage)
    delay_hours: float = attrs.field(default=0.0, validator=_hours)
    valid_hours: float = attrs.field(default=14 * 24.0, validator=_positive)

    @property
    def trigger(self) -> str:
        return f"stage_entry:{self.entered.name.lower()}"

    def occurrences(self, facts: CustomerRecord) -> Iterable[Occurrence]:
        if not self.applies(facts) or facts.stage < self.entered:
            return
        for change in facts.stage_history:
            if change.stage is not self.entered:
                continue
            since = to_utc(change.since)
            due = since + _hours_delta(self.delay_hours)
            if not facts.in_window(due, self._valid(due)):
                continue
            yield Occurrence(
                occurrence=f"{self.entered.name.lower()}:{facts.day(since)}",
                due_at=due,
                valid_until=self._valid(due),
                reason=_reason(
                    self,
                    f"Became a {change.stage.label_en} on {facts.day(since)}.",
                    f"于{facts.day(since)}成为{change.stage.label_zh}。",
                    *change.evidence,
                ),
                values_en={"stage": change.stage.label_en},
                values_zh={"stage": change.stage.label_zh},
            )


def upgrade_posting(policy: Policy) -> int:
    """The most days after a payment at which it can still raise the tier (its points post
    after the return window): what :class:`TierUpgrade` and the planning bounds read."""
    return policy.loyalty.points.return_window_days + 1


@attrs.frozen(kw_only=True)
class TierUpgrade(Rule):
    """A congratulation when the customer moves up a loyalty tier."""

    KIND: ClassVar[str] = "tier_upgrade"

    valid_hours: float = attrs.field(default=7 * 24.0, validator=_positive)

    def occurrences(self, facts: CustomerRecord) -> Iterable[Occurrence]:
        if not self.applies(facts):
            return
        # Tiers rise when orders are paid or their points post: skip customers with no order
        # recent enough for an upgrade still in the window.
        posting = upgrade_posting(facts.policy)
        since = facts.floor - _hours_delta(self.valid_hours) - timedelta(days=posting)
        if not any(
            o.paid is not None and to_utc(o.paid.at) >= since for o in facts.orders.values()
        ):
            return
        for change in facts.tier_history:
            if change.move is not TierMove.UPGRADE:
                continue
            since = to_utc(change.since)
            yield Occurrence(
                occurrence=f"{change.tier.key}:{facts.day(since)}",
                due_at=since,
                valid_until=self._valid(since),
                reason=_reason(
                    self,
                    f"Moved up to {change.tier.label_en} on {facts.day(since)}.",
                    f"于{facts.day(since)}升级为{change.tier.label_zh}。",
                    *change.evidence,
                ),
                values_en={"tier": change.tier.label_en},
                values_zh={"tier": change.tier.label_zh},
            )


@attrs.frozen(kw_only=True)
class TierDowngradeWarning(Rule):
    """A warning ``days_before`` days before a tier is lost: "Gold ends on D unless ¥X more is
    spent", while the customer can still keep it."""

    KIND: ClassVar[str] = "tier_downgrade_warning"

    days_before: int = attrs.field(default=14, validator=_days)

    def occurrences(self, facts: CustomerRecord) -> Iterable[Occurrence]:
        if not self.applies(facts) or not facts.orders:
            return
        tier = facts.tier
        warning = None if tier is None else tier.warning
        if warning is None:
            return
        ends = to_utc(warning.at)
        currency = facts.policy.loyalty.currency
        if warning.spend_needed is not None:
            amount_en = amount_zh = money(warning.spend_needed, currency)
        elif warning.orders_needed is not None:
            amount_en = f"{warning.orders_needed} more order(s)"
            amount_zh = f"{warning.orders_needed}笔订单"
        else:
            amount_en, amount_zh = "a little more", "少量消费"
        day = str(warning.on)
        yield Occurrence(
            occurrence=f"{warning.tier.key}:{day}",
            due_at=ends - timedelta(days=self.days_before),
            valid_until=ends,
            reason=_reason(
                self,
                f"{warning.tier.label_en} ends on {day} unless {amount_en} more is spent.",
                f"{warning.tier.label_zh}资格将于{day}到期，除非再消费{amount_zh}。",
            ),
            values_en={"tier": warning.tier.label_en, "downgrade_date": day, "amount": amount_en},
            values_zh={"tier": warning.tier.label_zh, "downgrade_date": day, "amount": amount_zh},
        )


@attrs.frozen(kw_only=True)
class PointsExpiry(Rule):
    """A reminder ``days_before`` days before points expire, while some are left to spend."""

    KIND: ClassVar[str] = "points_expiry"

    days_before: int = attrs.field(default=30, validator=_days)

    def occurrences(self, facts: CustomerRecord) -> Iterable[Occurrence]:
        months = facts.policy.loyalty.points.expiry_months
        if months is None or not self.applies(facts):
            return
        # Points expire ``months`` after posting: only a payment that old can have some due.
        oldest = facts.now + timedelta(days=self.days_before) - timedelta(days=28 * months)
        if not any(
            o.paid is not None and to_utc(o.paid.at) <= oldest for o in facts.orders.values()
        ):
            return
        if facts.points is None:
            return
        expiring = facts.points.expiring(self.days_before)
        first = expiring.first_at
        if expiring.points <= 0 or first is None:
            return
        expires = to_utc(first)
        due = expires - timedelta(days=self.days_before)
        # A lot expires at the end of its last day, i.e. at the next midnight: name that day.
        day = str(facts.day(expires - timedelta(seconds=1)))
        values = {"points": str(expiring.points), "expiry_date": day}
        yield Occurrence(
            occurrence=day,
            due_at=due,
            valid_until=expires,
            reason=_reason(
                self,
                f"{expiring.points} points expire on {day}.",
                f"{expiring.points}积分将于{day}过期。",
            ),
            values_en=values,
            values_zh=values,
        )


# -- rhythm, replenishment, win-back ------------------------------------------------------------


def _to_days_tuple(value: object) -> tuple[int, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise PolicyError("give a list of days", key="cadence.rules.after_days")
    out = tuple(value)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in out) or list(
        out
    ) != sorted(out):
        raise PolicyError(
            "must be whole numbers of days >= 0 in increasing order", key="cadence.rules.after_days"
        )
    return out


def _optional_days(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise PolicyError(
            f"must be a whole number >= 1 or None, got {value!r}", key=_key(inst, attr.name)
        )


@attrs.frozen(kw_only=True)
class Periodic(Rule):
    """The owner's follow-up rhythm for the stages of ``stages``, measured from the last contact.

    With ``after_days`` (prospects: 1, 3 and 7 days after engaging): step k is due that many
    days after the engagement, counted on from the last contact since, and the rhythm stops
    after the last step. With ``every_days`` (long-term customers: 30): due that many days
    after the last contact of any kind (or the stage entry), so a customer just contacted for
    another reason is not contacted again too soon, and none goes longer than the rhythm.
    """

    KIND: ClassVar[str] = "periodic"

    after_days: tuple[int, ...] = attrs.field(default=(), converter=_to_days_tuple)
    every_days: int | None = attrs.field(default=None, validator=_optional_days)

    def __attrs_post_init__(self) -> None:
        if (not self.after_days) == (self.every_days is None):
            raise PolicyError("give either after_days or every_days", key=_key(self, "every_days"))

    @property
    def trigger(self) -> str:
        return "periodic"

    def occurrences(self, facts: CustomerRecord) -> Iterable[Occurrence]:
        if not self.applies(facts):
            return
        values_en = {"stage": facts.stage.label_en}
        values_zh = {"stage": facts.stage.label_zh}
        if self.after_days:
            engaged = [
                e for e in facts.engagements if e.kind in facts.policy.stage.prospect_engagements
            ]
            if not engaged:
                return
            anchor = engaged[-1]
            start = to_utc(anchor.at)
            since = [c for c in facts.contacts if to_utc(c.at) > start]
            k = len(since)
            if k >= len(self.after_days):
                return
            if k == 0:
                due = start + timedelta(days=self.after_days[0])
            else:
                step = self.after_days[k] - self.after_days[k - 1]
                due = to_utc(since[-1].at) + timedelta(days=step)
            valid = max(self._valid(due), due + timedelta(days=1))
            yield Occurrence(
                occurrence=f"{anchor.event_id}:{k + 1}",
                due_at=due,
                valid_until=valid,
                reason=_reason(
                    self,
                    f"Follow-up {k + 1} of {len(self.after_days)} after the customer engaged "
                    f"({anchor.kind}) on {facts.day(anchor.at)}.",
                    f"客户于{facts.day(anchor.at)}互动（{anchor.kind}），第{k + 1}/{len(self.after_days)}次跟进。",
                    anchor.event_id,
                    *(c.event_id for c in since[-1:]),
                ),
                values_en=values_en,
                values_zh=values_zh,
            )
            return
        assert self.every_days is not None
        last = facts.contacts[-1] if facts.contacts else None
        if last is not None:
            anchor_at, occurrence, evidence = (
                to_utc(last.at),
                f"after:{last.event_id}",
                last.event_id,
            )
            en, zh = f"last contacted on {facts.day(last.at)}", f"上次联系于{facts.day(last.at)}"
        else:
            entry = next((c for c in reversed(facts.stage_history) if c.stage is facts.stage), None)
            if entry is None:
                return
            anchor_at = to_utc(entry.since)
            occurrence = f"since:{facts.day(entry.since)}"
            evidence = entry.evidence[0] if entry.evidence else ""
            en, zh = (
                f"never contacted since {facts.day(entry.since)}",
                f"自{facts.day(entry.since)}起未联系",
            )
        due = anchor_at + timedelta(days=self.every_days)
        yield Occurrence(
            occurrence=occurrence,
            due_at=due,
            valid_until=due + timedelta(days=self.every_days),
            reason=_reason(
                self,
                f"The {facts.stage.label_en} rhythm is every {self.every_days} days; {en}.",
                f"{facts.stage.label_zh}跟进频率为每{self.every_days}天一次，{zh}。",
                *([evidence] if evidence else []),
            ),
            values_en=values_en,
            values_zh=values_zh,
        )


def _to_cycles(value: object) -> Mapping[str, int]:
    if not isinstance(value, Mapping):
        raise PolicyError("give a mapping of SKU or category to days", key="cadence.rules.cycles")
    out = {}
    for k, v in value.items():
        if (
            not isinstance(k, str)
            or not k
            or isinstance(v, bool)
            or not isinstance(v, int)
            or v < 1
        ):
            raise PolicyError(
                f"{k!r}: a usage cycle is a whole number of days >= 1", key="cadence.rules.cycles"
            )
        out[k] = v
    return dict(sorted(out.items()))


_DEFAULT_CYCLES: Final = {
    "tea": 45,
    "beauty": 60,
    "snacks": 30,
    "baby": 30,
    "pet_food": 30,
    "coffee": 30,
}


@attrs.frozen(kw_only=True)
class Replenishment(Rule):
    """For consumables: a reminder ``lead_days`` before the customer's supply runs out.

    ``cycles`` maps a SKU or a category to its usage cycle in days, counted from the payment;
    a SKU's cycle wins over its category's. Stops when the customer buys it again.
    """

    KIND: ClassVar[str] = "replenishment"

    cycles: Mapping[str, int] = attrs.field(
        factory=lambda: dict(_DEFAULT_CYCLES), converter=_to_cycles, eq=False
    )
    lead_days: int = attrs.field(default=3, validator=_days)
    stop: frozenset[Stop] = attrs.field(default=frozenset({Stop.PURCHASED}), converter=_to_stops)

    def occurrences(self, facts: CustomerRecord) -> Iterable[Occurrence]:
        if not self.applies(facts) or not self.cycles:
            return
        for o in facts.valid_orders():
            paid = o.paid
            assert paid is not None
            item = next((s for s in paid.items if s in self.cycles), None) or next(
                (c for c in paid.categories if c in self.cycles), None
            )
            if item is None:
                continue
            since = to_utc(paid.at)
            cycle = self.cycles[item]
            due = since + timedelta(days=max(cycle - self.lead_days, 0))
            if not facts.in_window(due, self._valid(due)):
                continue
            again = facts.bought_after(since, item=item)
            stopped = None
            if again is not None and again.paid is not None:
                stopped = Reason(
                    code="cadence.stop.purchased",
                    en=f"Stopped: the customer bought {item} again ({facts.day(again.paid.at)}).",
                    zh=f"已停止：客户已再次购买{item}（{facts.day(again.paid.at)}）。",
                    evidence=(again.paid.event_id,),
                )
            yield Occurrence(
                occurrence=f"{o.order_id}:{item}",
                due_at=due,
                valid_until=self._valid(due),
                reason=_reason(
                    self,
                    f"Bought {item} on {facts.day(since)}; it lasts about {cycle} days.",
                    f"{facts.day(since)}购买了{item}，约可使用{cycle}天。",
                    paid.event_id,
                ),
                values_en={"item": item},
                values_zh={"item": item},
                stopped=stopped,
            )


@attrs.frozen(kw_only=True)
class WinBack(Rule):
    """Win-back while the customer is at risk: ``after_days`` after the status turned at risk
    (0: at once; a second rule with, say, 14 sends a stronger offer if still at risk)."""

    KIND: ClassVar[str] = "win_back"

    after_days: int = attrs.field(default=0, validator=_days)
    send_at: time = attrs.field(default=time(10), converter=_wall)
    statuses: frozenset[Status] = attrs.field(
        factory=lambda: _to_statuses(["at_risk"]), converter=_to_statuses
    )
    stop: frozenset[Stop] = attrs.field(default=frozenset({Stop.PURCHASED}), converter=_to_stops)
    valid_hours: float = attrs.field(default=7 * 24.0, validator=_positive)

    def occurrences(self, facts: CustomerRecord) -> Iterable[Occurrence]:
        if not self.applies(facts):
            return
        last = facts.ledger.last_day
        turned = facts.at_risk_since  # by the rhythm, or by the fitted model's P(alive)
        if last is None or turned is None:
            return
        due = facts.at(turned + timedelta(days=self.after_days), self.send_at)
        yield Occurrence(
            occurrence=f"{last}",
            due_at=due,
            valid_until=self._valid(due),
            reason=_reason(
                self,
                f"At risk since {turned}: no valid order since {last}.",
                f"自{turned}起流失预警：{last}后无有效订单。",
            ),
        )


# -- campaigns and sequences --------------------------------------------------------------------


def _aware(value: object, key: str) -> datetime:
    try:
        return to_utc(require_aware(value, key))
    except ValueError as e:
        raise PolicyError(str(e), key=key) from None


def _last_after(value: object) -> datetime | None:
    return None if value is None else _aware(value, "cadence.rules.segment.last_order_after")


def _last_before(value: object) -> datetime | None:
    return None if value is None else _aware(value, "cadence.rules.segment.last_order_before")


def _campaign_start(value: object) -> datetime:
    return _aware(value, "cadence.rules.start")


def _campaign_end(value: object) -> datetime:
    return _aware(value, "cadence.rules.end")


def _to_money(value: object) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, float) and math.isfinite(value):
        value = str(value)  # as TOML writes a decimal amount with few digits
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise PolicyError(
            "must be a Decimal, int or numeric string", key="cadence.rules.segment.min_spend"
        )
    try:
        amount = Decimal(value)
    except ArithmeticError:
        raise PolicyError(
            "must be a Decimal, int or numeric string", key="cadence.rules.segment.min_spend"
        ) from None
    if not amount.is_finite():
        raise PolicyError("must be a finite amount", key="cadence.rules.segment.min_spend")
    return amount


@attrs.frozen(kw_only=True)
class Segment:
    """Which customers a campaign selects; every condition given must hold (empty: any).

    Consent is not a condition here: the contact policy applies it to every message.
    """

    stages: frozenset[Stage] = attrs.field(default=frozenset(), converter=_to_stages)
    statuses: frozenset[Status] = attrs.field(default=frozenset(), converter=_to_statuses)
    tags: frozenset[str] = attrs.field(default=frozenset(), converter=_to_strs)
    """The customer has at least one of these tags."""
    categories: frozenset[str] = attrs.field(default=frozenset(), converter=_to_strs)
    """The customer bought at least one of these categories (valid orders)."""
    min_spend: Decimal | None = attrs.field(default=None, converter=_to_money)
    """Net spend over all valid orders, in any currency."""
    last_order_after: datetime | None = attrs.field(default=None, converter=_last_after)
    last_order_before: datetime | None = attrs.field(default=None, converter=_last_before)

    def matches(self, facts: CustomerRecord) -> bool:
        if self.stages and facts.stage not in self.stages:
            return False
        if self.statuses and facts.status.status not in self.statuses:
            return False
        if self.tags and not self.tags & facts.profile.tags:
            return False
        orders = facts.valid_orders()
        if self.categories and not any(
            set(o.paid.categories) & self.categories for o in orders if o.paid is not None
        ):
            return False
        if (
            self.min_spend is not None
            and sum((o.net_amount for o in orders), Decimal(0)) < self.min_spend
        ):
            return False
        last = to_utc(orders[-1].paid.at) if orders and orders[-1].paid is not None else None
        if self.last_order_after is not None and (last is None or last < self.last_order_after):
            return False
        return not (
            self.last_order_before is not None and (last is None or last >= self.last_order_before)
        )


@attrs.frozen(kw_only=True)
class Campaign(Rule):
    """A one-off promotion to the customers ``segment`` selects, sent between ``start`` and
    ``end``."""

    KIND: ClassVar[str] = "campaign"

    name_en: str = attrs.field(validator=_nonempty)
    name_zh: str = attrs.field(validator=_nonempty)
    segment: Segment = attrs.field(factory=Segment)
    start: datetime = attrs.field(converter=_campaign_start)
    end: datetime = attrs.field(converter=_campaign_end)

    def __attrs_post_init__(self) -> None:
        if self.end <= self.start:
            raise PolicyError("must be after start", key=_key(self, "end"))

    def occurrences(self, facts: CustomerRecord) -> Iterable[Occurrence]:
        if not self.applies(facts) or not self.segment.matches(facts):
            return
        yield Occurrence(
            occurrence="once",
            due_at=self.start,
            valid_until=self.end,
            reason=_reason(
                self,
                f"Selected for the campaign {self.name_en}.",
                f"入选活动：{self.name_zh}。",
            ),
            values_en={"campaign": self.name_en},
            values_zh={"campaign": self.name_zh},
        )


class SequenceStart(StrEnum):
    """What starts a :class:`StepSequence`."""

    REGISTERED = "registered"
    LEAD = "lead"
    ENGAGED = "engaged"
    FIRST_ORDER = "first_order"


@attrs.frozen(kw_only=True)
class SequenceStep:
    """One step of a sequence: ``after_days`` after the start, with its own template."""

    after_days: int = attrs.field(validator=_days)
    template: str = attrs.field(validator=_nonempty)


def _to_steps(value: object) -> tuple[SequenceStep, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise PolicyError("give a list of steps", key="cadence.rules.steps")
    out = tuple(v if isinstance(v, SequenceStep) else SequenceStep(**v) for v in value)
    if not out or [s.after_days for s in out] != sorted(s.after_days for s in out):
        raise PolicyError("needs steps in order of after_days", key="cadence.rules.steps")
    return out


def _to_start(value: object) -> SequenceStart:
    try:
        return SequenceStart(value)  # type: ignore[arg-type]  # a bad value raises ValueError
    except ValueError:
        raise PolicyError(f"unknown start {value!r}", key="cadence.rules.start") from None


@attrs.frozen(kw_only=True)
class StepSequence(Rule):
    """Ordered steps with delays after a start event; stops when the customer replies or buys."""

    KIND: ClassVar[str] = "sequence"

    start: SequenceStart = attrs.field(converter=_to_start)
    steps: tuple[SequenceStep, ...] = attrs.field(converter=_to_steps)
    stop: frozenset[Stop] = attrs.field(
        default=frozenset({Stop.REPLIED, Stop.PURCHASED}), converter=_to_stops
    )

    def _start(self, facts: CustomerRecord) -> tuple[datetime, str] | None:
        if self.start is SequenceStart.REGISTERED and facts.registered is not None:
            return to_utc(facts.registered.at), facts.registered.event_id
        if self.start is SequenceStart.LEAD and facts.leads:
            return to_utc(facts.leads[0].at), facts.leads[0].event_id
        if self.start is SequenceStart.ENGAGED and facts.engagements:
            return to_utc(facts.engagements[0].at), facts.engagements[0].event_id
        orders = facts.valid_orders()
        if self.start is SequenceStart.FIRST_ORDER and orders and orders[0].paid is not None:
            return to_utc(orders[0].paid.at), orders[0].paid.event_id
        return None

    def occurrences(self, facts: CustomerRecord) -> Iterable[Occurrence]:
        if not self.applies(facts):
            return
        start = self._start(facts)
        if start is None:
            return
        at, evidence = start
        stopped = self._stopped(facts, at)
        for i, step in enumerate(self.steps, 1):
            due = at + timedelta(days=step.after_days)
            if not facts.in_window(due, self._valid(due)):
                continue
            yield Occurrence(
                occurrence=f"step{i}",
                due_at=due,
                valid_until=self._valid(due),
                reason=_reason(
                    self,
                    f"Step {i} of {len(self.steps)}, {step.after_days} days after {self.start.value} on {facts.day(at)}.",
                    f"第{i}/{len(self.steps)}步：{facts.day(at)}起第{step.after_days}天。",
                    evidence,
                ),
                stopped=stopped,
                template=step.template,
            )


def rule_from_dict(data: Mapping[str, Any]) -> Rule:
    """A built-in rule from a table of settings; ``kind`` says which (``"after_event"``, ...).

    Raises:
        PolicyError: an unknown kind or setting, or a bad value, naming the key.
    """
    kinds = {cls.KIND: cls for cls in _RULE_CLASSES}
    kind = data.get("kind")
    cls = kinds.get(kind) if isinstance(kind, str) else None
    rid = data.get("id", "?")
    if cls is None:
        raise PolicyError(
            f"unknown kind {kind!r}; use one of {sorted(kinds)}", key=f"cadence.rules.{rid}.kind"
        )
    names = {f.name for f in attrs.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise PolicyError(
            f"unknown setting for a {kind} rule; use {sorted(names)}",
            key=f"cadence.rules.{rid}.{unknown[0]}",
        )
    values = dict(data)
    if isinstance(values.get("segment"), Mapping):
        values["segment"] = Segment(**values["segment"])
    try:
        rule: Rule = cls(**values)
    except TypeError as e:
        raise PolicyError(str(e), key=f"cadence.rules.{rid}") from None
    return rule


# -- the defaults -------------------------------------------------------------------------------

_ORDER_CHANNELS: Final = ("app_push", "sms", "wechat", "email")
_CHAT_CHANNELS: Final = ("wechat", "app_push", "sms", "email")


def default_rules() -> tuple[CadenceRule, ...]:
    """The rules of common shop practice; each is policy, so replace or tune any of them."""
    T, S, M = Purpose.TRANSACTIONAL, Purpose.SERVICE, Purpose.MARKETING
    buyers = frozenset(s for s in Stage if s >= Stage.FIRST_PURCHASE)
    return (
        AfterEvent(
            id="payment_reminder",
            on="order_placed",
            delay_hours=1,
            valid_hours=23,
            purpose=T,
            channels=_ORDER_CHANNELS,
            template="payment_reminder",
            priority=90,
            stop={Stop.PAID, Stop.CANCELLED},
        ),
        AfterEvent(
            id="shipping_notice",
            on="order_shipped",
            purpose=T,
            channels=_ORDER_CHANNELS,
            template="shipping_notice",
            priority=100,
            valid_hours=72,
            stop={Stop.DELIVERED, Stop.CANCELLED},
        ),
        AfterEvent(
            id="care_message",
            on="order_delivered",
            delay_hours=3 * 24,
            valid_hours=48,
            purpose=S,
            channels=_CHAT_CHANNELS,
            template="care_message",
            priority=60,
            stop={Stop.CANCELLED},
        ),
        AfterEvent(
            id="review_request",
            on="order_delivered",
            delay_hours=7 * 24,
            valid_hours=72,
            purpose=S,
            channels=_CHAT_CHANNELS,
            template="review_request",
            priority=55,
            stop={Stop.REVIEWED, Stop.CANCELLED},
        ),
        AfterEvent(
            id="complaint_answer",
            on="complaint_opened",
            valid_hours=24,
            purpose=S,
            channels=("task",),
            template="complaint_answer",
            priority=95,
            stop={Stop.RESOLVED},
        ),
        AfterEvent(
            id="satisfaction_check",
            on="complaint_resolved",
            delay_hours=7 * 24,
            valid_hours=72,
            purpose=S,
            channels=_CHAT_CHANNELS,
            template="satisfaction_check",
            priority=70,
        ),
        AfterEvent(
            id="referral_thanks",
            on="referral_converted",
            valid_hours=72,
            purpose=S,
            channels=_CHAT_CHANNELS,
            template="referral_thanks",
            priority=65,
        ),
        Overdue(
            id="delivery_delayed",
            grace_days=2,
            purpose=S,
            channels=_ORDER_CHANNELS,
            template="delivery_delayed",
            priority=85,
        ),
        Overdue(
            id="delivery_delayed_task",
            grace_days=2,
            purpose=S,
            channels=("task",),
            template="delivery_delayed_task",
            priority=85,
        ),
        Anniversary(
            id="birthday",
            of="birthday",
            purpose=M,
            channels=_CHAT_CHANNELS,
            template="birthday",
            priority=45,
        ),
        Anniversary(
            id="first_order_anniversary",
            of="first_order",
            purpose=M,
            channels=_CHAT_CHANNELS,
            template="first_order_anniversary",
            priority=30,
            stages=buyers,
        ),
        Festival(
            id="spring_festival",
            calendar="CN",
            names={"spring_festival"},
            lead_days=1,
            purpose=M,
            channels=_CHAT_CHANNELS,
            template="holiday_greeting",
            priority=40,
            stages=buyers,
        ),
        Festival(
            id="mid_autumn",
            calendar="CN",
            names={"mid_autumn"},
            purpose=M,
            channels=_CHAT_CHANNELS,
            template="holiday_greeting",
            priority=35,
            stages=buyers,
        ),
        Festival(
            id="double11",
            calendar="shop",
            names={"double11"},
            lead_days=3,
            purpose=M,
            channels=_CHAT_CHANNELS,
            template="festival_sale",
            priority=25,
            stages=buyers,
        ),
        Festival(
            id="618",
            calendar="shop",
            names={"618"},
            lead_days=3,
            purpose=M,
            channels=_CHAT_CHANNELS,
            template="festival_sale",
            priority=25,
            stages=buyers,
        ),
        Festival(
            id="qixi",
            calendar="shop",
            names={"qixi", "520"},
            lead_days=1,
            purpose=M,
            channels=_CHAT_CHANNELS,
            template="festival_sale",
            priority=20,
            stages={Stage.REPEAT, Stage.LONG_TERM, Stage.ADVOCATE},
        ),
        StageEntry(
            id="welcome_repeat",
            entered="repeat",
            purpose=M,
            channels=_CHAT_CHANNELS,
            template="welcome_repeat",
            priority=50,
            stages={Stage.REPEAT},
        ),
        StageEntry(
            id="welcome_long_term",
            entered="long_term",
            purpose=M,
            channels=_CHAT_CHANNELS,
            template="welcome_long_term",
            priority=50,
            stages={Stage.LONG_TERM},
        ),
        StageEntry(
            id="referral_invite",
            entered="advocate",
            purpose=M,
            channels=_CHAT_CHANNELS,
            template="referral_invite",
            priority=50,
            stages={Stage.ADVOCATE},
        ),
        TierUpgrade(
            id="tier_upgrade",
            purpose=S,
            channels=_CHAT_CHANNELS,
            template="tier_upgrade",
            priority=60,
        ),
        TierDowngradeWarning(
            id="tier_downgrade_warning",
            days_before=14,
            purpose=S,
            channels=_CHAT_CHANNELS,
            template="tier_downgrade_warning",
            priority=55,
        ),
        PointsExpiry(
            id="points_expiring",
            days_before=30,
            purpose=S,
            channels=_CHAT_CHANNELS,
            template="points_expiring",
            priority=40,
        ),
        Periodic(
            id="prospect_follow_up",
            stages={Stage.PROSPECT},
            after_days=(1, 3, 7),
            purpose=S,
            channels=("task",),
            template="owner_follow_up",
            priority=40,
        ),
        Periodic(
            id="long_term_follow_up",
            stages={Stage.LONG_TERM, Stage.ADVOCATE},
            every_days=30,
            purpose=S,
            channels=("task",),
            template="owner_follow_up",
            priority=40,
        ),
        Periodic(
            id="partner_follow_up",
            stages={Stage.STRATEGIC, Stage.PARTNER},
            every_days=90,
            purpose=S,
            channels=("task",),
            template="owner_follow_up",
            priority=40,
        ),
        Replenishment(
            id="replenish",
            purpose=M,
            channels=_CHAT_CHANNELS,
            template="replenish",
            priority=55,
            lead_days=3,
            valid_hours=7 * 24,
        ),
        WinBack(
            id="win_back",
            after_days=0,
            purpose=M,
            channels=_CHAT_CHANNELS,
            template="win_back",
            priority=60,
        ),
        WinBack(
            id="win_back_final",
            after_days=14,
            purpose=M,
            channels=_CHAT_CHANNELS,
            template="win_back_final",
            priority=60,
        ),
    )


_RULE_CLASSES: Final[tuple[type[Rule], ...]] = (
    AfterEvent,
    Overdue,
    Anniversary,
    Festival,
    StageEntry,
    TierUpgrade,
    TierDowngradeWarning,
    PointsExpiry,
    Periodic,
    Replenishment,
    WinBack,
    Campaign,
    StepSequence,
)
