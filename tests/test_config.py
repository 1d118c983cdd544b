"""Policies from TOML and dicts: every part configurable, mistakes named by key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

import lifecycle as lc
from lifecycle.config import load_policy, policy_from_dict, policy_from_toml, policy_to_toml


def test_the_default_policy_round_trips_through_toml() -> None:
    text = policy_to_toml()
    assert policy_from_toml(text) == lc.Policy()
    assert "# Distinct days with a valid order needed for a repeat buyer." in text
    assert "[stage]" in text
    assert "[status]" in text


def test_a_partial_file_changes_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        'timezone = "Asia/Shanghai"\n\n[stage]\nrepeat_min_days = 3\nlong_term_min_orders = 4\n'
        "prospect_engagements = ['chat']\n\n[status]\nlapsed_days = 400\n",
        encoding="utf-8",
    )
    policy = load_policy(path)
    assert policy.timezone == "Asia/Shanghai"
    assert policy.stage.repeat_min_days == 3
    assert policy.stage.prospect_engagements == frozenset({"chat"})
    assert policy.status.lapsed_days == 400
    assert policy.status.fallback_gap_days == lc.StatusPolicy().fallback_gap_days


def test_a_dict_works_the_same() -> None:
    policy = policy_from_dict({"stage": {"complaint_free_days": 30}})
    assert policy.stage.complaint_free_days == 30


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("[stage]\nrepeat_min_days = 2\nrepeat_min_dayz = 3\n", "stage.repeat_min_dayz", 3),
        ("[stage]\n\nrepeat_min_days = 0\n", "stage.repeat_min_days", 3),
        ("timezone = 'Mars/Base'\n", "timezone", 1),
        ("[status]\nat_risk_multiple = 'twice'\n", "status.at_risk_multiple", 2),
        ("[stages]\nrepeat_min_days = 2\n", "stages", 1),
        ("stage = 3\n", "stage", 1),
    ],
)
def test_mistakes_name_the_key_and_the_line(text: str, key: str, line: int) -> None:
    with pytest.raises(lc.PolicyError) as info:
        policy_from_toml(text)
    assert info.value.key == key
    assert f"line {line}" in str(info.value)


def test_broken_toml_and_missing_files_are_clear() -> None:
    with pytest.raises(lc.PolicyError, match="not valid TOML"):
        policy_from_toml("[stage\n")
    with pytest.raises(lc.PolicyError, match="cannot read"):
        load_policy("/nonexistent/policy.toml")
    with pytest.raises(lc.PolicyError, match="table"):
        policy_from_dict(["x"])  # type: ignore[arg-type]


def test_the_policy_class_reads_and_writes_toml(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[stage]\nrepeat_min_days = 3\n", encoding="utf-8")
    assert lc.Policy.from_toml(path).stage.repeat_min_days == 3
    assert lc.Policy.from_toml(str(path)).stage.repeat_min_days == 3
    assert lc.Policy.from_toml("[stage]\ncomplaint_free_days = 4\n").stage.complaint_free_days == 4
    assert lc.Policy.from_dict({"status": {"lapsed_days": 200}}).status.lapsed_days == 200
    policy = lc.Policy(timezone="Asia/Shanghai")
    assert lc.Policy.from_toml(policy.to_toml()) == policy
