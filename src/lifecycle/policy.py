"""Policies are data: frozen, validated settings with defaults taken from common shop practice.

:class:`Policy` holds them all; each part can be replaced with ``attrs.evolve``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from os import PathLike
from typing import Any, Literal, TypeVar

import attrs

from lifecycle._settings import (
    load_settings,
    settings_from_dict,
    settings_from_toml,
    settings_to_toml,
)
from lifecycle._time import valid_zone_name
from lifecycle.cadence.policy import CadencePolicy
from lifecycle.calendar import WorkCalendar, work_calendar
from lifecycle.errors import PolicyError
from lifecycle.events import PARTNERSHIP_KINDS
from lifecycle.vocabulary import Stage

__all__ = [
    "Assignment",
    "ClawbackShortfall",
    "DispatchPolicy",
    "DowngradeStep",
    "LoyaltyPolicy",
    "OwnerPolicy",
    "PointsPolicy",
    "PointsPosting",
    "Policy",
    "QualificationWindow",
    "StagePolicy",
    "StatusPolicy",
    "Tier",
    "TierBenefits",
    "TierPolicy",
    "TierReview",
    "WritePolicy",
]

_E = TypeVar("_E", bound=StrEnum)


def _positive_int(key: str) -> Any:
    def check(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PolicyError(
                f"must be a whole number >= 1, got {value!r}", key=f"{key}.{attr.name}"
            )

    return check


def _non_negative_int(key: str) -> Any:
    def check(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PolicyError(
                f"must be a whole number >= 0, got {value!r}", key=f"{key}.{attr.name}"
            )

    return check


def _number_in(key: str, lo: float, hi: float) -> Any:
    def check(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise PolicyError(
                f"must be a number in [{lo}, {hi}], got {value!r}", key=f"{key}.{attr.name}"
            )

    return check


def _int_in(key: str, lo: int, hi: int) -> Any:
    def check(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise PolicyError(
                f"must be a whole number in [{lo}, {hi}], got {value!r}", key=f"{key}.{attr.name}"
            )

    return check


def _part(kind: type, key: str | None = None) -> Any:
    def check(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, kind):
            raise PolicyError(f"must be a {kind.__name__}", key=key or attr.name)

    return check


def _str_set(value: Iterable[str], key: str) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise PolicyError("give a list of strings, not one string", key=key)
    out = frozenset(value)
    if not all(isinstance(v, str) and v for v in out):
        raise PolicyError("must hold non-empty strings", key=key)
    return out


def _engagements(value: Iterable[str]) -> frozenset[str]:
    return _str_set(value, "stage.prospect_engagements")


def _partnership_kinds(value: Iterable[str]) -> frozenset[str]:
    return _str_set(value, "stage.partnership_kinds")


@attrs.frozen(kw_only=True)
class StagePolicy:
    """The evidence each relationship stage needs. Defaults follow the stage table.

    Day counts are calendar days in the customer's time zone; "within N days" includes day N.
    """

    prospect_engagements: frozenset[str] = attrs.field(
        default=frozenset({"inquiry", "chat", "add_to_cart", "coupon_claim"}),
        converter=_engagements,
    )
    """Engagement kinds that make a prospect (a plain visit does not)."""
    placed_order_is_engagement: bool = True
    """An order placed but never validly paid still shows intent to buy."""
    repeat_min_days: int = attrs.field(default=2, validator=_positive_int("stage"))
    """Distinct days with a valid order needed for a repeat buyer."""
    long_term_min_orders: int = attrs.field(default=3, validator=_positive_int("stage"))
    long_term_min_span_days: int = attrs.field(default=180, validator=_non_negative_int("stage"))
    long_term_max_idle_days: int = attrs.field(default=365, validator=_positive_int("stage"))
    """A long-term customer's last valid order is at most this many days old."""
    promoter_min_score: int = attrs.field(default=9, validator=_int_in("stage", 0, 10))
    """Lowest NPS answer that counts as a promoter; the latest NPS answer is the one read."""
    advocate_min_review_average: float = attrs.field(
        default=4.5, validator=_number_in("stage", 1, 5)
    )
    advocate_min_reviews: int = attrs.field(default=1, validator=_positive_int("stage"))
    complaint_free_days: int = attrs.field(default=90, validator=_non_negative_int("stage"))
    """An advocate has no complaint open, and none opened within this many days."""
    strategic_min_referrals: int = attrs.field(default=1, validator=_positive_int("stage"))
    """Referred customers with a valid order needed for a strategic collaborator."""
    strategic_min_orders: int = attrs.field(default=1, validator=_positive_int("stage"))
    """A strategic collaborator buys too: their own valid orders needed."""
    partnership_kinds: frozenset[str] = attrs.field(
        default=PARTNERSHIP_KINDS, converter=_partnership_kinds
    )
    """Partnership agreements that make a partner."""

    def __attrs_post_init__(self) -> None:
        if self.long_term_min_orders < self.repeat_min_days:
            raise PolicyError(
                "must be at least repeat_min_days: a long-term customer is a repeat buyer",
                key="stage.long_term_min_orders",
            )
        unknown = self.partnership_kinds - PARTNERSHIP_KINDS
        if unknown:
            raise PolicyError(
                f"unknown kinds {sorted(unknown)}; use {sorted(PARTNERSHIP_KINDS)}",
                key="stage.partnership_kinds",
            )


@attrs.frozen(kw_only=True)
class StatusPolicy:
    """When a buying relationship counts as at risk, lapsed or won back.

    Rhythm rule (default): at risk when the days since the last valid order exceed
    ``at_risk_multiple`` times the customer's median gap between purchase days, or
    ``fallback_gap_days`` for customers with fewer than ``rhythm_min_days`` purchase days;
    lapsed after ``lapsed_days``. With a fitted model, P(alive) replaces the rhythm.
    """

    at_risk_multiple: float = attrs.field(default=2.0, validator=_number_in("status", 1, 100))
    fallback_gap_days: int = attrs.field(default=90, validator=_positive_int("status"))
    rhythm_min_days: int = attrs.field(default=3, validator=_positive_int("status"))
    lapsed_days: int = attrs.field(default=365, validator=_positive_int("status"))
    at_risk_p_alive: float = attrs.field(default=0.5, validator=_number_in("status", 0, 1))
    """With a model: at risk when P(alive) falls below this."""
    lapsed_p_alive: float = attrs.field(default=0.1, validator=_number_in("status", 0, 1))
    """With a model: lapsed when P(alive) falls below this (or after ``lapsed_days``)."""

    def __attrs_post_init__(self) -> None:
        if self.rhythm_min_days < 2:
            raise PolicyError(
                "needs at least 2 purchase days to have a gap", key="status.rhythm_min_days"
            )
        if self.lapsed_p_alive > self.at_risk_p_alive:
            raise PolicyError("must not exceed at_risk_p_alive", key="status.lapsed_p_alive")


# -- loyalty ------------------------------------------------------------------------------------


def _to_enum(kind: type[_E], value: object, key: str) -> _E:
    """The enum member for an option's value (a string, as TOML gives it)."""
    try:
        return kind(value)  # type: ignore[arg-type]  # a bad value raises ValueError
    except ValueError:
        raise PolicyError(
            f"unknown option {value!r}; use one of {[m.value for m in kind]}", key=key
        ) from None


def _to_decimal(value: object, key: str) -> Decimal:
    """A non-negative ``Decimal`` from a Decimal, int or numeric string; floats are refused."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise PolicyError(
            f"must be a Decimal, int or numeric string (not a float), got {value!r}", key=key
        )
    try:
        out = Decimal(value)
    except InvalidOperation:
        raise PolicyError(f"not a number: {value!r}", key=key) from None
    if not out.is_finite() or out < 0:
        raise PolicyError(f"must be a finite number >= 0, got {value!r}", key=key)
    return out


def _optional_positive_int(key: str) -> Any:
    def check(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            _positive_int(key)(inst, attr, value)

    return check


def _label(key: str) -> Any:
    def check(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            raise PolicyError("must be a non-empty string", key=f"{key}.{attr.name}")

    return check


def _bool(key: str) -> Any:
    def check(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, bool):
            raise PolicyError(f"must be true or false, got {value!r}", key=f"{key}.{attr.name}")

    return check


_BENEFITS = "loyalty.tiers.levels.benefits"
_LEVEL = "loyalty.tiers.levels"
_TIERS = "loyalty.tiers"
_POINTS = "loyalty.points"


class QualificationWindow(StrEnum):
    """Which orders count towards a tier."""

    LIFETIME = "lifetime"
    """Every valid order ever."""
    ROLLING = "rolling"
    """Valid orders paid within the last ``window_days`` days."""
    CALENDAR_YEAR = "calendar_year"
    """This calendar year or the last complete one, whichever qualifies higher."""
    MEMBERSHIP_YEAR = "membership_year"
    """This membership year or the last complete one, whichever qualifies higher."""


class TierReview(StrEnum):
    """When a tier is reviewed, and the customer may lose it."""

    NEVER = "never"
    """A tier once reached is kept."""
    TIER_ANNIVERSARY = "tier_anniversary"
    """Every ``review_months`` months after the tier was reached."""
    MEMBERSHIP_ANNIVERSARY = "membership_anniversary"
    """On each anniversary of the membership after the tier was reached."""


class DowngradeStep(StrEnum):
    """How far a customer who fails a review falls."""

    ONE_TIER = "one_tier"
    """To the tier just below."""
    TO_QUALIFIED = "to_qualified"
    """Straight to the tier the customer qualifies for then."""


class PointsPosting(StrEnum):
    """When the points of an order post (become usable)."""

    PAYMENT = "payment"
    DELIVERY = "delivery"
    RETURN_WINDOW = "return_window"
    """``return_window_days`` after delivery, once the order can no longer be returned."""


class ClawbackShortfall(StrEnum):
    """What a claw-back does when the points it takes back were already spent."""

    NEGATIVE = "negative"
    """The balance goes below zero; later earnings pay it back first."""
    CAP = "cap"
    """The claw-back takes what is left and forgives the rest."""


def _discount_percent(value: object) -> Decimal:
    return _to_decimal(value, f"{_BENEFITS}.discount_percent")


def _points_multiplier(value: object) -> Decimal:
    return _to_decimal(value, f"{_BENEFITS}.points_multiplier")


def _min_spend(value: object) -> Decimal | None:
    return None if value is None else _to_decimal(value, f"{_LEVEL}.min_spend")


def _window(value: object) -> QualificationWindow:
    return _to_enum(QualificationWindow, value, f"{_TIERS}.window")


def _review(value: object) -> TierReview:
    return _to_enum(TierReview, value, f"{_TIERS}.review")


def _downgrade(value: object) -> DowngradeStep:
    return _to_enum(DowngradeStep, value, f"{_TIERS}.downgrade")


def _posting(value: object) -> PointsPosting:
    return _to_enum(PointsPosting, value, f"{_POINTS}.posting")


def _shortfall(value: object) -> ClawbackShortfall:
    return _to_enum(ClawbackShortfall, value, f"{_POINTS}.clawback_shortfall")


def _earn_rate(value: object) -> Decimal:
    return _to_decimal(value, f"{_POINTS}.earn_rate")


@attrs.frozen(kw_only=True)
class TierBenefits:
    """What a tier gives, as data: the shop's systems read it; the library uses two of them.

    ``points_multiplier`` scales the points orders earn; ``birthday_gift`` posts the birthday
    bonus of :class:`PointsPolicy`.
    """

    discount_percent: Decimal = attrs.field(default=Decimal(0), converter=_discount_percent)
    points_multiplier: Decimal = attrs.field(default=Decimal(1), converter=_points_multiplier)
    free_shipping: bool = attrs.field(default=False, validator=_bool(_BENEFITS))
    dedicated_service: bool = attrs.field(default=False, validator=_bool(_BENEFITS))
    """A dedicated service channel (专属客服)."""
    birthday_gift: bool = attrs.field(default=False, validator=_bool(_BENEFITS))

    def __attrs_post_init__(self) -> None:
        if self.discount_percent > 100:
            raise PolicyError("must be at most 100", key=f"{_BENEFITS}.discount_percent")


def _benefits(value: object) -> TierBenefits:
    if isinstance(value, TierBenefits):
        return value
    if isinstance(value, Mapping):
        return TierBenefits(**value)
    raise PolicyError("must be a TierBenefits or a mapping", key=_BENEFITS)


@attrs.frozen(kw_only=True)
class Tier:
    """One loyalty tier: its key, labels, what qualifies for it and what it gives.

    A tier with no threshold is the base tier every customer holds. With several thresholds,
    ``require="any"`` qualifies on any one of them, ``"all"`` needs every one.
    """

    key: str = attrs.field(validator=_label(_LEVEL))
    label_en: str = attrs.field(validator=_label(_LEVEL))
    label_zh: str = attrs.field(validator=_label(_LEVEL))
    min_spend: Decimal | None = attrs.field(default=None, converter=_min_spend)
    """Valid spend (paid minus refunded) in the window, in the policy's currency."""
    min_orders: int | None = attrs.field(default=None, validator=_optional_positive_int(_LEVEL))
    """Valid orders paid in the window."""
    min_points: int | None = attrs.field(default=None, validator=_optional_positive_int(_LEVEL))
    """Points orders earned in the window, before tier multipliers (a tier never feeds itself)."""
    require: Literal["any", "all"] = attrs.field(default="any")
    benefits: TierBenefits = attrs.field(factory=TierBenefits, converter=_benefits)

    @require.validator
    def _check_require(self, attr: attrs.Attribute[Any], value: object) -> None:
        if value not in ("any", "all"):
            raise PolicyError(f"must be 'any' or 'all', got {value!r}", key=f"{_LEVEL}.require")

    @property
    def is_base(self) -> bool:
        """Whether the tier needs nothing: the one every customer holds."""
        return self.min_spend is None and self.min_orders is None and self.min_points is None

    def label(self, lang: str = "en") -> str:
        return self.label_zh if lang == "zh" else self.label_en

    def __str__(self) -> str:
        return self.label_en


def _default_tiers() -> tuple[Tier, ...]:
    return (
        Tier(key="member", label_en="Member", label_zh="普通会员"),
        Tier(
            key="silver",
            label_en="Silver",
            label_zh="银卡会员",
            min_spend=Decimal(1000),
            benefits=TierBenefits(
                discount_percent=Decimal(2), points_multiplier=Decimal("1.2"), birthday_gift=True
            ),
        ),
        Tier(
            key="gold",
            label_en="Gold",
            label_zh="金卡会员",
            min_spend=Decimal(5000),
            benefits=TierBenefits(
                discount_percent=Decimal(5),
                points_multiplier=Decimal("1.5"),
                free_shipping=True,
                birthday_gift=True,
            ),
        ),
        Tier(
            key="platinum",
            label_en="Platinum",
            label_zh="铂金会员",
            min_spend=Decimal(20000),
            benefits=TierBenefits(
                discount_percent=Decimal(8),
                points_multiplier=Decimal(2),
                free_shipping=True,
                dedicated_service=True,
                birthday_gift=True,
            ),
        ),
    )


def _tiers(value: object) -> tuple[Tier, ...]:
    if isinstance(value, str | Mapping) or not isinstance(value, Iterable):
        raise PolicyError("give a list of tiers, lowest first", key=_LEVEL)
    out = tuple(v if isinstance(v, Tier) else _tier_from(v) for v in value)
    return out


def _tier_from(value: object) -> Tier:
    if not isinstance(value, Mapping):
        raise PolicyError("each tier must be a Tier or a mapping", key=_LEVEL)
    return Tier(**value)


@attrs.frozen(kw_only=True)
class TierPolicy:
    """Tiers, lowest first, and how customers reach, keep and lose them.

    Defaults: Member, Silver (¥1,000), Gold (¥5,000) and Platinum (¥20,000) of valid spend
    within a rolling 365 days; upgrade at once; review 12 months after reaching a tier; a
    customer who no longer qualifies keeps the tier for a 30-day grace period (保级), then
    drops one tier.
    """

    levels: tuple[Tier, ...] = attrs.field(factory=_default_tiers, converter=_tiers)
    window: QualificationWindow = attrs.field(
        default=QualificationWindow.ROLLING,
        converter=_window,
    )
    window_days: int = attrs.field(default=365, validator=_positive_int(_TIERS))
    """The length of a rolling window in calendar days, today included."""
    review: TierReview = attrs.field(default=TierReview.TIER_ANNIVERSARY, converter=_review)
    review_months: int = attrs.field(default=12, validator=_positive_int(_TIERS))
    """Months between tier-anniversary reviews."""
    downgrade: DowngradeStep = attrs.field(default=DowngradeStep.ONE_TIER, converter=_downgrade)
    grace_days: int = attrs.field(default=30, validator=_non_negative_int(_TIERS))
    """Days a customer who fails a review keeps the tier, to requalify (保级)."""

    def __attrs_post_init__(self) -> None:
        if not self.levels:
            raise PolicyError("needs at least one tier", key=_LEVEL)
        if not self.levels[0].is_base:
            raise PolicyError(
                "the lowest tier must have no threshold: every customer holds it", key=_LEVEL
            )
        keys = [t.key for t in self.levels]
        if len(set(keys)) != len(keys):
            raise PolicyError(f"tier keys must be unique, got {keys}", key=_LEVEL)
        for t in self.levels[1:]:
            if t.is_base:
                raise PolicyError(f"tier {t.key!r} needs a threshold", key=_LEVEL)

    def index(self, key: str) -> int | None:
        """The position of the tier called ``key``, lowest 0; ``None`` if there is none."""
        for i, t in enumerate(self.levels):
            if t.key == key:
                return i
        return None


@attrs.frozen(kw_only=True)
class PointsPolicy:
    """How points are earned, posted, spent, expired and clawed back.

    Defaults: 1 point per whole currency unit of the amount paid, times the tier's multiplier,
    posted on payment; 10 points for a review (one per order), 100 for a referred customer's
    first order, 100 on the birthday for tiers with the birthday gift; each lot expires 24
    months after it posted; a refund claws back in proportion, and may take the balance
    below zero.
    """

    earn_rate: Decimal = attrs.field(default=Decimal(1), converter=_earn_rate)
    """Points per currency unit of the valid amount (fractions of a point are dropped)."""
    posting: PointsPosting = attrs.field(default=PointsPosting.PAYMENT, converter=_posting)
    return_window_days: int = attrs.field(default=7, validator=_non_negative_int(_POINTS))
    expiry_months: int | None = attrs.field(default=24, validator=_optional_positive_int(_POINTS))
    """Months after posting that a lot expires, at the end of that day; ``None``: never."""
    review_bonus: int = attrs.field(default=10, validator=_non_negative_int(_POINTS))
    referral_bonus: int = attrs.field(default=100, validator=_non_negative_int(_POINTS))
    birthday_bonus: int = attrs.field(default=100, validator=_non_negative_int(_POINTS))
    clawback_shortfall: ClawbackShortfall = attrs.field(
        default=ClawbackShortfall.NEGATIVE,
        converter=_shortfall,
    )


def _currency(value: object, key: str) -> str:
    ok = isinstance(value, str) and len(value) == 3 and value.isascii() and value.isalpha()
    if not ok:
        raise PolicyError("must be a three-letter ISO 4217 code such as 'CNY'", key=key)
    assert isinstance(value, str)
    return value.upper()


def _loyalty_currency(value: object) -> str:
    return _currency(value, "loyalty.currency")


def _shop_currency(value: object) -> str:
    return _currency(value, "currency")


@attrs.frozen(kw_only=True)
class LoyaltyPolicy:
    """Tiers and points. Amounts (thresholds, earn rate) are in ``currency``.

    Orders in another currency count as orders but add no spend and earn no points.
    """

    currency: str = attrs.field(default="CNY", converter=_loyalty_currency)
    tiers: TierPolicy = attrs.field(
        factory=TierPolicy, validator=_part(TierPolicy, "loyalty.tiers")
    )
    points: PointsPolicy = attrs.field(
        factory=PointsPolicy, validator=_part(PointsPolicy, "loyalty.points")
    )


def _check_zone(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not valid_zone_name(value):
        raise PolicyError(f"not an IANA time zone name: {value!r}", key="timezone")


#: The languages messages and reports are written in.
_LANGUAGES = ("en", "zh")


def _check_language(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if value not in _LANGUAGES:
        raise PolicyError(f"must be one of {list(_LANGUAGES)}, got {value!r}", key="language")


# -- dispatch -----------------------------------------------------------------------------------


def _number(key: str, lo: float, hi: float | None = None) -> Any:
    def check(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= lo
        if not ok or (hi is not None and value >= hi):  # type: ignore[operator]
            bound = f">= {lo:g}" if hi is None else f"in [{lo:g}, {hi:g})"
            raise PolicyError(f"must be a number {bound}, got {value!r}", key=f"{key}.{attr.name}")

    return check


@attrs.frozen(kw_only=True)
class DispatchPolicy:
    """How the dispatcher claims, retries and treats messages whose outcome is unknown.

    Attributes:
        lease_seconds: how long a claim holds; longer than one send can take.
        max_attempts: transient failures allowed before a message is given up.
        backoff_base_seconds, backoff_max_seconds: the first retry delay, doubled after each
            failure, capped at the maximum.
        jitter: the share of each delay taken off at random, derived from the key so that
            the schedule is reproducible while retries of many messages spread out.
        resend_in_doubt: resend a message whose earlier attempt may have gone out on a channel
            that cannot deduplicate (accepting a possible duplicate); by default such a
            message is failed and reported as in doubt.
        batch_size: entries claimed at once. Larger batches claim faster, but when a
            dispatcher dies every unsettled entry of its batch is in doubt.
    """

    lease_seconds: float = attrs.field(default=300.0, validator=_number("dispatch", 1))
    max_attempts: int = attrs.field(default=8, validator=_positive_int("dispatch"))
    backoff_base_seconds: float = attrs.field(default=60.0, validator=_number("dispatch", 0.001))
    backoff_max_seconds: float = attrs.field(
        default=6 * 3600.0, validator=_number("dispatch", 0.001)
    )
    jitter: float = attrs.field(default=0.5, validator=_number("dispatch", 0, 1))
    resend_in_doubt: bool = False
    batch_size: int = attrs.field(default=1, validator=_positive_int("dispatch"))

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)

    def backoff(self, key: str, failures: int) -> timedelta:
        """The delay before the retry that follows failure number ``failures`` of ``key``."""
        base = self.backoff_base_seconds * 2 ** max(0, min(failures - 1, 40))
        delay = min(self.backoff_max_seconds, base)
        return timedelta(seconds=delay * (1 - self.jitter * _unit(f"{key}:{failures}")))


def _unit(text: str) -> float:
    """A number in [0, 1) derived from ``text``: jitter that replays the same every time."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


@attrs.frozen(kw_only=True)
class WritePolicy:
    """How a write that meets another writer on the same customer tries again.

    :meth:`lifecycle.Lifecycle.record` (and ``erase``) re-read and retry after a
    ``ConcurrencyError``, waiting a random share of an exponentially growing delay ("full
    jitter", so writers that collided do not collide again in step), until the budget is
    spent; only then does the ``ConcurrencyError`` reach the caller.

    Attributes:
        retry_budget_seconds: how long one call keeps retrying, in all.
        backoff_base_seconds: the longest first wait; it doubles after each conflict.
        backoff_max_seconds: the cap on any one wait.
    """

    retry_budget_seconds: float = attrs.field(default=30.0, validator=_number("writes", 0))
    backoff_base_seconds: float = attrs.field(default=0.002, validator=_number("writes", 0))
    backoff_max_seconds: float = attrs.field(default=0.5, validator=_number("writes", 0))

    def __attrs_post_init__(self) -> None:
        for name in ("retry_budget_seconds", "backoff_base_seconds", "backoff_max_seconds"):
            if not math.isfinite(getattr(self, name)):
                raise PolicyError("must be a finite number", key=f"writes.{name}")
        if self.backoff_max_seconds < self.backoff_base_seconds:
            raise PolicyError(
                "must be at least backoff_base_seconds", key="writes.backoff_max_seconds"
            )

    def backoff(self, conflicts: int, draw: float) -> float:
        """Seconds to wait after conflict number ``conflicts`` (from 1), for a ``draw`` in
        [0, 1): a random share of the doubled and capped delay."""
        ceiling = self.backoff_base_seconds * 2.0 ** max(0, min(conflicts - 1, 40))
        return min(self.backoff_max_seconds, ceiling) * draw


# -- owners -------------------------------------------------------------------------------------


class Assignment(StrEnum):
    """How new and pool customers are spread over owners."""

    ROUND_ROBIN = "round_robin"
    """In turn, after the owner who got the last assignment."""
    LEAST_LOADED = "least_loaded"
    """To the owner holding the fewest customers (ties in list order)."""


_days = _non_negative_int("owners")


def _assignment(value: object) -> Assignment:
    try:
        return Assignment(value)  # type: ignore[arg-type]
    except ValueError:
        raise PolicyError(
            f"must be one of {[a.value for a in Assignment]}, got {value!r}",
            key="owners.assignment",
        ) from None


def _workdays(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise PolicyError(
            f"must be a country code such as 'CN', got {value!r}", key="owners.workdays"
        )
    try:
        work_calendar(value)
    except ValueError as e:
        raise PolicyError(str(e), key="owners.workdays") from None


def _optional_days(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _days(inst, attr, value)


def _leads(value: object) -> Mapping[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v for k, v in value.items()
    ):
        raise PolicyError("must be a table of owner = lead (non-empty texts)", key="owners.leads")
    return dict(sorted(value.items()))


def _owner_zone(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not valid_zone_name(value):
        raise PolicyError(f"unknown time zone {value!r}", key="owners.workday_zone")


@attrs.frozen(kw_only=True)
class OwnerPolicy:
    """The rules of ownership and the shared pool.

    Attributes:
        assignment: round robin (default) or least loaded.
        capacity: the most customers one owner holds.
        follow_up_days: days without a follow-up after which a customer returns to the pool.
        high_value_days: the same for high-value customers (longer).
        high_value_stage: customers at or above this stage are high value (``None``: none are).
        high_value_spend: customers whose net paid amount reaches this are high value.
        warning_days: warn the owner this many days before the customer returns.
        cooldown_days: an owner cannot take back a customer they lost for this many days.
        orders_restart_clock: a paid order while owned counts as a follow-up.
        workdays: a country (ISO code, e.g. ``"CN"``) whose working days the follow-up,
            high-value and warning days count, and on which owner tasks fall: weekends and
            official holidays are skipped, make-up workdays (调休) count. ``None``: every
            calendar day counts. Needs the ``calendar`` extra.
        workday_zone: the zone whose calendar days are the owners' working days.
        daily_claim_quota: the most customers one owner takes out of the pool on one working
            day (a claim, an assignment, an import; a transfer between owners is not a take),
            the day counted in ``workday_zone``. ``None``: no quota.
        deal_days: days after leaving the pool, or after the last valid order, without a
            valid (paid, not refunded) order, after which a customer returns to the pool.
            ``None``: only the follow-up rule reclaims.
        max_protected: the most customers one owner protects from reclaim at a time.
        protection_days: how long a protection (``OwnerProtected``) lasts, in calendar days.
        escalate_after_days: an owner task still not done this many days after it was first
            due is escalated to the owner's lead (a task for the lead, with the reason);
            ``None``: never escalated (the task is still carried over).
        leads: each owner's lead, ``{owner: lead}``, for escalations.
    """

    assignment: Assignment = attrs.field(default=Assignment.ROUND_ROBIN, converter=_assignment)
    capacity: int = attrs.field(default=200, validator=_days)
    follow_up_days: int = attrs.field(default=15, validator=_days)
    high_value_days: int = attrs.field(default=30, validator=_days)
    high_value_stage: Stage | None = Stage.LONG_TERM
    high_value_spend: Decimal | None = None
    warning_days: int = attrs.field(default=3, validator=_days)
    cooldown_days: int = attrs.field(default=30, validator=_days)
    orders_restart_clock: bool = True
    workdays: str | None = attrs.field(default=None, validator=_workdays)
    workday_zone: str = attrs.field(default="UTC", validator=_owner_zone)
    daily_claim_quota: int | None = attrs.field(default=None, validator=_optional_days)
    deal_days: int | None = attrs.field(default=None, validator=_optional_days)
    max_protected: int = attrs.field(default=5, validator=_days)
    protection_days: int = attrs.field(default=7, validator=_days)
    escalate_after_days: int | None = attrs.field(default=3, validator=_optional_days)
    # A table is not hashable: equal policies still hash alike on the other fields.
    leads: Mapping[str, str] = attrs.field(factory=dict, converter=_leads, hash=False)

    def calendar(self) -> WorkCalendar | None:
        """The owners' :class:`~lifecycle.calendar.WorkCalendar`; ``None`` counts every day."""
        return None if self.workdays is None else work_calendar(self.workdays)

    def __attrs_post_init__(self) -> None:
        if self.capacity < 1:
            raise PolicyError("must be at least 1", key="owners.capacity")
        if self.high_value_days < self.follow_up_days:
            raise PolicyError("must be at least follow_up_days", key="owners.high_value_days")
        if self.warning_days >= self.follow_up_days:
            raise PolicyError("must be less than follow_up_days", key="owners.warning_days")
        if self.deal_days is not None and self.warning_days >= self.deal_days:
            raise PolicyError("must be more than warning_days", key="owners.deal_days")


@attrs.frozen(kw_only=True)
class Policy:
    """Every policy the library consults, in one object.

    ``timezone`` is the shop's zone, used for customers whose profile names none;
    ``language`` (``"en"`` or ``"zh"``) the language of messages to customers whose profile
    names no locale. ``currency`` is the shop's currency: reports count money in it and list
    orders in other currencies apart. Loyalty amounts are in it too: left out, it is
    ``loyalty.currency``; given, ``loyalty.currency`` follows it when the loyalty policy is
    the default one, and must equal it otherwise.
    """

    timezone: str = attrs.field(default="UTC", validator=_check_zone)
    language: str = attrs.field(default="en", validator=_check_language)
    stage: StagePolicy = attrs.field(factory=StagePolicy, validator=_part(StagePolicy))
    status: StatusPolicy = attrs.field(factory=StatusPolicy, validator=_part(StatusPolicy))
    loyalty: LoyaltyPolicy = attrs.field(factory=LoyaltyPolicy, validator=_part(LoyaltyPolicy))
    currency: str = attrs.field(
        default=attrs.Factory(
            lambda self: getattr(self.loyalty, "currency", "CNY"), takes_self=True
        ),
        converter=_shop_currency,
    )
    """The shop's currency (ISO 4217): reports count money in it, other currencies apart."""
    cadence: CadencePolicy = attrs.field(factory=CadencePolicy, validator=_part(CadencePolicy))
    dispatch: DispatchPolicy = attrs.field(factory=DispatchPolicy, validator=_part(DispatchPolicy))
    owners: OwnerPolicy = attrs.field(factory=OwnerPolicy, validator=_part(OwnerPolicy))
    writes: WritePolicy = attrs.field(factory=WritePolicy, validator=_part(WritePolicy))

    def __attrs_post_init__(self) -> None:
        if self.loyalty.currency != self.currency:
            if self.loyalty != LoyaltyPolicy():
                raise PolicyError(
                    f"loyalty amounts are in the shop's currency {self.currency}; set both "
                    "to the same code",
                    key="loyalty.currency",
                )
            loyalty = attrs.evolve(self.loyalty, currency=self.currency)
            object.__setattr__(self, "loyalty", loyalty)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """A policy from nested dicts; keys left out keep their defaults.

        Raises:
            PolicyError: an unknown key or a bad value, naming the dotted key.
        """
        return settings_from_dict(cls, data)

    @classmethod
    def from_toml(cls, source: str | PathLike[str]) -> Policy:
        """A policy from a TOML file (a path) or TOML text (a string holding a newline or
        ``=``); errors name the key and its line."""
        if isinstance(source, str) and ("\n" in source or "=" in source):
            return settings_from_toml(cls, source)
        return load_settings(cls, source)

    def to_toml(self) -> str:
        """This policy as commented TOML (every setting, with its documentation)."""
        return settings_to_toml(self)
