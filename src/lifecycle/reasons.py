"""Reasons: why a rule decided what it did, in words a shop owner reads, with the proof; and
what a run over many customers had to skip, with the error."""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = ["Lang", "Reason", "Skipped"]

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


@attrs.frozen(kw_only=True)
class Skipped:
    """A customer (or one rule of a customer) that a run over the shop left out, and why.

    Planning, dispatching and reporting go on for everyone else: one customer's history that
    cannot be read or judged, or a host rule that fails on it, never stops the shop.

    Attributes:
        customer_id: whose history it was.
        rule: the rule being planned, or ``None`` when the whole customer was skipped.
        error: the error, as its type and message (never personal data of ours).
    """

    customer_id: str
    rule: str | None
    error: str

    @classmethod
    def of(cls, customer_id: str, error: BaseException, rule: str | None = None) -> Skipped:
        """The record of ``error`` met on ``customer_id`` (and ``rule``)."""
        return cls(customer_id=customer_id, rule=rule, error=f"{type(error).__name__}: {error}")

    def __str__(self) -> str:
        where = self.customer_id if self.rule is None else f"{self.customer_id} ({self.rule})"
        return f"{where}: {self.error}"
