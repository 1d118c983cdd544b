"""Policies: defaults follow the stage table in the design, bad values are refused naming the
key, and policies are frozen data."""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest

import lifecycle as lc

# -- defaults -----------------------------------------------------------------------------------


def test_stage_defaults_match_the_stage_table() -> None:
    p = lc.StagePolicy()
    # PROSPECT: inquiry, chat, add-to-cart, coupon claim (a plain visit is not engagement)
    assert p.prospect_engagements == frozenset({"inquiry", "chat", "add_to_cart", "coupon_claim"})
    assert p.placed_order_is_engagement is True
    # REPEAT: two or more valid orders on different days
    assert p.repeat_min_days == 2
    # LONG_TERM: at least 3 valid orders spanning at least 180 days, the last within 365 days
    assert p.long_term_min_orders == 3
    assert p.long_term_min_span_days == 180
    assert p.long_term_max_idle_days == 365
    # ADVOCATE: NPS 9-10 or reviews averaging >= 4.5 of 5, no complaint in the last 90 days
    assert p.promoter_min_score == 9
    assert p.advocate_min_review_average == 4.5
    assert p.advocate_min_reviews == 1
    assert p.complaint_free_days == 90
    # STRATEGIC: buys, and at least one referred customer made a valid order
    assert p.strategic_min_referrals == 1
    assert p.strategic_min_orders == 1
    # PARTNER: agent, distributor, reseller or shareholder agreement
    assert p.partnership_kinds == frozenset({"agent", "distributor", "reseller", "shareholder"})
    assert p.partnership_kinds == lc.PARTNERSHIP_KINDS


def test_status_defaults() -> None:
    s = lc.StatusPolicy()
    assert s.at_risk_multiple == 2.0
    assert s.fallback_gap_days == 90
    assert s.rhythm_min_days == 3
    assert s.lapsed_days == 365
    assert s.at_risk_p_alive == 0.5
    assert s.lapsed_p_alive == 0.1


def test_the_policy_holds_the_defaults_and_the_shop_zone_defaults_to_utc() -> None:
    p = lc.Policy()
    assert p.timezone == "UTC"
    assert p.stage == lc.StagePolicy()
    assert p.status == lc.StatusPolicy()


def test_every_engagement_that_makes_a_prospect_is_a_known_engagement_kind() -> None:
    assert lc.StagePolicy().prospect_engagements <= lc.ENGAGEMENT_KINDS
    assert "visit" not in lc.StagePolicy().prospect_engagements


# -- validation ---------------------------------------------------------------------------------

BAD_STAGE = [
    ("repeat_min_days", 0),
    ("repeat_min_days", True),
    ("repeat_min_days", 2.0),
    ("repeat_min_days", "2"),
    ("long_term_min_orders", 0),
    ("long_term_min_span_days", -1),
    ("long_term_min_span_days", 180.0),
    ("long_term_min_span_days", None),
    ("long_term_max_idle_days", 0),
    ("promoter_min_score", 11),
    ("promoter_min_score", -1),
    ("promoter_min_score", True),
    ("advocate_min_review_average", 5.5),
    ("advocate_min_review_average", 0.5),
    ("advocate_min_review_average", math.nan),
    ("advocate_min_review_average", "4.5"),
    ("advocate_min_reviews", 0),
    ("complaint_free_days", -1),
    ("strategic_min_referrals", 0),
    ("strategic_min_orders", 0),
]


@pytest.mark.parametrize(("field", "value"), BAD_STAGE)
def test_a_bad_stage_value_is_refused_naming_the_key(field: str, value: object) -> None:
    with pytest.raises(lc.PolicyError) as info:
        lc.StagePolicy(**{field: value})
    assert info.value.key == f"stage.{field}"
    assert f"stage.{field}" in str(info.value)


BAD_STATUS = [
    ("at_risk_multiple", 0.5),
    ("at_risk_multiple", math.inf),
    ("at_risk_multiple", math.nan),
    ("fallback_gap_days", 0),
    ("lapsed_days", 0),
    ("lapsed_days", 365.0),
    ("at_risk_p_alive", 1.5),
    ("at_risk_p_alive", -0.1),
    ("lapsed_p_alive", 2),
]


@pytest.mark.parametrize(("field", "value"), BAD_STATUS)
def test_a_bad_status_value_is_refused_naming_the_key(field: str, value: object) -> None:
    with pytest.raises(lc.PolicyError) as info:
        lc.StatusPolicy(**{field: value})
    assert info.value.key == f"status.{field}"


@pytest.mark.parametrize(
    ("cls", "kwargs", "key"),
    [
        (lc.StagePolicy, {"repeat_min_days": 4}, "stage.long_term_min_orders"),
        (lc.StagePolicy, {"long_term_min_orders": 1}, "stage.long_term_min_orders"),
        (lc.StagePolicy, {"partnership_kinds": {"agent", "franchise"}}, "stage.partnership_kinds"),
        (lc.StatusPolicy, {"rhythm_min_days": 1}, "status.rhythm_min_days"),
        (lc.StatusPolicy, {"lapsed_p_alive": 0.6}, "status.lapsed_p_alive"),
        (lc.Policy, {"timezone": "Mars/Olympus"}, "timezone"),
        (lc.Policy, {"timezone": ""}, "timezone"),
        (lc.Policy, {"timezone": 8}, "timezone"),
    ],
)
def test_values_that_contradict_each_other_are_refused_naming_the_key(
    cls: type[Any], kwargs: dict[str, Any], key: str
) -> None:
    with pytest.raises(lc.PolicyError) as info:
        cls(**kwargs)
    assert info.value.key == key


@pytest.mark.parametrize("field", ["prospect_engagements", "partnership_kinds"])
def test_one_string_for_a_set_is_refused_naming_the_key(field: str) -> None:
    with pytest.raises(lc.PolicyError) as info:
        lc.StagePolicy(**{field: "agent"})
    assert info.value.key == f"stage.{field}"


@pytest.mark.parametrize(
    ("field", "value"), [("stage", {"repeat_min_days": 3}), ("status", "strict")]
)
def test_a_part_of_the_policy_that_is_not_a_policy_is_refused_naming_the_key(
    field: str, value: object
) -> None:
    with pytest.raises(lc.PolicyError) as info:
        lc.Policy(**{field: value})
    assert info.value.key == field


def test_the_edges_of_each_range_are_accepted() -> None:
    lc.StagePolicy(promoter_min_score=0, advocate_min_review_average=1, complaint_free_days=0)
    lc.StagePolicy(promoter_min_score=10, advocate_min_review_average=5, long_term_min_span_days=0)
    lc.StatusPolicy(at_risk_multiple=1, at_risk_p_alive=0, lapsed_p_alive=0, rhythm_min_days=2)


def test_sets_of_names_become_frozensets() -> None:
    p = lc.StagePolicy(
        prospect_engagements=["chat", "chat", "inquiry"], partnership_kinds=["agent"]
    )
    assert p.prospect_engagements == frozenset({"chat", "inquiry"})
    assert p.partnership_kinds == frozenset({"agent"})


def test_a_policy_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"stage\.repeat_min_days"):
        lc.StagePolicy(repeat_min_days=0)


# -- frozen data --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        (lc.Policy(), "timezone"),
        (lc.StagePolicy(), "long_term_min_span_days"),
        (lc.StatusPolicy(), "lapsed_days"),
    ],
)
def test_policies_are_frozen(policy: object, field: str) -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(policy, field, 1)


def test_policies_change_through_evolve_which_validates_again() -> None:
    p = lc.Policy(timezone="Asia/Shanghai")
    lenient = attrs.evolve(p, stage=attrs.evolve(p.stage, long_term_min_span_days=90))
    assert lenient.stage.long_term_min_span_days == 90
    assert p.stage.long_term_min_span_days == 180
    with pytest.raises(lc.PolicyError):
        attrs.evolve(p.stage, long_term_min_span_days=-1)


def test_equal_policies_are_equal_and_hash_alike() -> None:
    a, b = lc.Policy(timezone="Asia/Shanghai"), lc.Policy(timezone="Asia/Shanghai")
    assert a == b
    assert hash(a) == hash(b)
    assert a != lc.Policy()
