"""Policies from TOML files and dicts, and the default policy written out as commented TOML.

One file configures every part of :class:`~lifecycle.policy.Policy` (stages, status, loyalty,
cadence, ...): each table is a part, each key a setting. An unknown key or a bad value is a
:class:`~lifecycle.errors.PolicyError` naming the dotted key and, for a file, the line.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from typing import Any

from lifecycle._settings import (
    load_settings,
    settings_from_dict,
    settings_from_toml,
    settings_to_toml,
)
from lifecycle.policy import Policy

__all__ = ["load_policy", "policy_from_dict", "policy_from_toml", "policy_to_toml"]


def policy_from_dict(data: Mapping[str, Any]) -> Policy:
    """A :class:`Policy` from nested dicts: ``{"timezone": ..., "stage": {...}, ...}``.

    Keys left out keep their defaults.

    Raises:
        PolicyError: an unknown key or a bad value, naming the dotted key.
    """
    return settings_from_dict(Policy, data)


def policy_from_toml(text: str) -> Policy:
    """A :class:`Policy` from TOML text; errors name the key and its line."""
    return settings_from_toml(Policy, text)


def load_policy(path: str | PathLike[str]) -> Policy:
    """:func:`policy_from_toml` on the file at ``path``."""
    return load_settings(Policy, path)


def policy_to_toml(policy: Policy | None = None) -> str:
    """The policy (default: the defaults) as TOML, each setting with its documentation as a
    comment: a file to start from."""
    return settings_to_toml(policy if policy is not None else Policy())
