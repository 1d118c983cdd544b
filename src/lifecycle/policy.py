"""Policies are data: frozen, validated settings with defaults taken from common shop practice.

:class:`Policy` holds them all; each part can be replaced with ``attrs.evolve``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from lifecycle._time import valid_zone_name
from lifecycle.errors import PolicyError
from lifecycle.events import PARTNERSHIP_KINDS

__all__ = ["Policy", "StagePolicy", "StatusPolicy"]


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


def _part(kind: type) -> Any:
    def check(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, kind):
            raise PolicyError(f"must be a {kind.__name__}", key=attr.name)

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


def _check_zone(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not valid_zone_name(value):
        raise PolicyError(f"not an IANA time zone name: {value!r}", key="timezone")


@attrs.frozen(kw_only=True)
class Policy:
    """Every policy the library consults, in one object.

    ``timezone`` is the shop's zone, used for customers whose profile names none.
    """

    timezone: str = attrs.field(default="UTC", validator=_check_zone)
    stage: StagePolicy = attrs.field(factory=StagePolicy, validator=_part(StagePolicy))
    status: StatusPolicy = attrs.field(factory=StatusPolicy, validator=_part(StatusPolicy))
