"""Reasons: why a rule decided what it did, in words a shop owner reads, with the proof."""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = ["Lang", "Reason"]

Lang = Literal["en", "zh"]


@attrs.frozen(kw_only=True)
class Reason:
    """One reason behind a result.

    Attributes:
        code: a stable identifier of the rule, e.g. ``"stage.repeat"`` or
            ``"stage.not_long_term.idle"``; hosts can match on it.
        en: the reason in English.
        zh: the reason in Chinese (zh-CN).
        evidence: ids of the events that prove it.
    """

    code: str
    en: str
    zh: str
    evidence: tuple[str, ...] = ()

    def text(self, lang: Lang = "en") -> str:
        """The reason in ``lang``."""
        return self.zh if lang == "zh" else self.en

    def __str__(self) -> str:
        return self.en
