"""A policy written with ``to_toml`` reads back as itself: every setting, ``None`` and control
characters included."""

from __future__ import annotations

import tomllib
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings

import lifecycle as lc
from lifecycle.config import policy_from_toml, policy_to_toml
from lifecycle.testing.strategies import policies


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies())
def test_every_policy_round_trips_through_toml(policy: lc.Policy) -> None:
    text = policy.to_toml()
    tomllib.loads(text)  # a valid TOML file, whatever the text it holds
    assert lc.Policy.from_toml(text) == policy


def test_a_setting_turned_off_is_written_false_and_read_back_as_none() -> None:
    policy = lc.Policy(
        loyalty=lc.LoyaltyPolicy(points=lc.PointsPolicy(expiry_months=None)),
        owners=lc.OwnerPolicy(high_value_stage=None),
    )
    text = policy_to_toml(policy)
    assert "\nexpiry_months = false\n" in text
    assert "\nhigh_value_stage = false\n" in text
    assert policy_from_toml(text) == policy
    never = policy_from_toml("[loyalty.points]\nexpiry_months = false\n")
    assert never.loyalty.points.expiry_months is None


def test_true_is_not_a_way_to_say_a_number() -> None:
    with pytest.raises(lc.PolicyError) as info:
        policy_from_toml("[loyalty.points]\nexpiry_months = true\n")
    assert info.value.key == "loyalty.points.expiry_months"


def test_control_characters_in_templates_are_escaped() -> None:
    template = lc.Template(id="crlf", en="Line one\r\nline two\tend\x7f", zh="第一行\r\n第二行")
    policy = lc.Policy(
        cadence=lc.CadencePolicy(templates=(*lc.CadencePolicy().templates, template))
    )
    text = policy_to_toml(policy)
    assert '"Line one\\r\\nline two\\tend\\u007F"' in text
    assert policy_from_toml(text) == policy


def test_decimals_keep_every_digit() -> None:
    exact = Decimal("0.12345678901234567890123")
    policy = lc.Policy(loyalty=lc.LoyaltyPolicy(points=lc.PointsPolicy(earn_rate=exact)))
    back = policy_from_toml(policy_to_toml(policy))
    assert back.loyalty.points.earn_rate == exact
    assert "earn_rate = 1\n" in policy_to_toml()  # a plain number stays a number


def test_what_toml_cannot_hold_is_refused_naming_the_key() -> None:
    template = lc.Template(id="bad", en="lone \ud800 surrogate", zh="好")
    policy = lc.Policy(
        cadence=lc.CadencePolicy(templates=(*lc.CadencePolicy().templates, template))
    )
    with pytest.raises(lc.PolicyError, match="surrogate") as info:
        policy_to_toml(policy)
    assert info.value.key == "cadence.templates.en"


def test_a_campaign_spend_with_few_digits_round_trips() -> None:
    """TOML writes such an amount as a float; the segment reads it back as the same Decimal."""
    from datetime import UTC, datetime

    from lifecycle.cadence.rules import Segment

    campaign = lc.Campaign(
        id="c",
        name_en="Sale",
        name_zh="促销",
        channels=("email",),
        purpose=lc.Purpose.MARKETING,
        template="holiday_greeting",
        segment=Segment(min_spend=Decimal("0.00655205712232018")),
        start=datetime(2026, 1, 1, tzinfo=UTC),
        end=datetime(2026, 2, 1, tzinfo=UTC),
    )
    policy = lc.Policy(cadence=lc.CadencePolicy(rules=(campaign,)))
    assert lc.Policy.from_toml(policy.to_toml()) == policy
    with pytest.raises(lc.PolicyError):
        Segment(min_spend=float("nan"))  # type: ignore[arg-type]
