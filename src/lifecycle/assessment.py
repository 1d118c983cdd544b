"""The whole picture of one customer at one instant: stage, status and their reasons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from math import floor

import attrs

from lifecycle._ledger import Ledger, fold
from lifecycle._time import require_aware, to_utc
from lifecycle.events import Event, sort_key
from lifecycle.policy import Policy
from lifecycle.reasons import Reason
from lifecycle.stages import Stage, StageAssessment, _Judge
from lifecycle.status import AliveModel, Status, StatusAssessment, status_from_ledger

__all__ = ["Assessment", "assess", "first_valid_order_at"]


@attrs.frozen(kw_only=True)
class Assessment:
    """What a customer is to the shop at ``as_of``.

    Attributes:
        customer_id: who.
        stage: the relationship stage (see :class:`Stage`).
        status: relationship health, ``None`` before the first valid order.
        reasons: the stage's reasons, then the status's.
        as_of: the instant assessed.
        stage_detail: the full stage assessment (rule, evidence).
        status_detail: the full status assessment (idle days, rhythm, P(alive)).
        valid_until: the first later instant at which time alone may change the assessment
            (``None`` when only new events can); stored snapshots use it to stay correct.
    """

    customer_id: str
    stage: Stage
    status: Status | None
    reasons: tuple[Reason, ...]
    as_of: datetime
    stage_detail: StageAssessment = attrs.field(repr=False)
    status_detail: StatusAssessment = attrs.field(repr=False)
    valid_until: datetime | None = attrs.field(default=None, repr=False)

    @property
    def p_alive(self) -> float | None:
        """P(alive) when a model decided the status."""
        return self.status_detail.p_alive

    def explain(self, lang: str = "en") -> str:
        """The reasons as lines of text in ``lang`` (``"en"`` or ``"zh"``)."""
        head = f"{self.stage.label(lang)}"
        if self.status is not None:
            head += f" · {self.status.label(lang)}"
        return "\n".join(
            [head, *(f"- {r.text('zh' if lang == 'zh' else 'en')}" for r in self.reasons)]
        )


def first_valid_order_at(
    history: Sequence[Event], policy: Policy, now: datetime
) -> datetime | None:
    """When the customer's first order still valid at ``now`` was paid, if any."""
    orders = fold(history, policy, to_utc(require_aware(now, "now"))).valid_orders()
    return orders[0].paid.at if orders and orders[0].paid is not None else None


def _midnight_after(day: date, days: int, ledger: Ledger) -> datetime:
    return datetime.combine(day + timedelta(days=days), time(0), tzinfo=ledger.tz)


def assess(
    customer_id: str,
    history: Sequence[Event],
    policy: Policy,
    now: datetime,
    *,
    referrals: Mapping[str, datetime] | None = None,
    model: AliveModel | None = None,
    explain: bool = True,
) -> Assessment:
    """Stage and status of one customer at ``now`` from their events, in one pass.

    Args:
        customer_id: whose history this is.
        history: the customer's events in any order; those after ``now`` are ignored.
        policy: the thresholds.
        now: the instant to assess at; aware.
        referrals: first valid order time of each customer this one referred.
        model: a fitted model for the status; without one the rhythm rule decides.
        explain: ``False`` skips building reasons (``reasons`` is empty), for bulk work such
            as refreshing snapshots.
    """
    now = to_utc(require_aware(now, "now"))
    referrals = {rid: to_utc(t) for rid, t in (referrals or {}).items()}
    ledger = fold(history, policy, now)
    judge = _Judge(ledger, referrals, now)
    if explain:
        stage = judge.decide()
    else:
        stage = StageAssessment(stage=judge.stage(), rule="", evidence=(), reasons=(), as_of=now)
    status = status_from_ledger(ledger, now, model=model, explain=explain)
    bounds = [judge.next_boundary()]
    bounds += [at for at in (sort_key(e)[0] for e in history) if at > now]
    bounds += [t for t in referrals.values() if t > now]
    last = ledger.last_day
    if last is not None:
        if model is not None:
            bounds.append(_midnight_after(ledger.day(now), 1, ledger))
        else:
            bounds.append(_midnight_after(last, policy.status.lapsed_days + 1, ledger))
            if status.threshold_days is not None:
                bounds.append(_midnight_after(last, floor(status.threshold_days) + 1, ledger))
    valid_until = min((b for b in bounds if b is not None and b > now), default=None)
    return Assessment(
        customer_id=customer_id,
        stage=stage.stage,
        status=status.status,
        reasons=stage.reasons + status.reasons,
        as_of=now,
        stage_detail=stage,
        status_detail=status,
        valid_until=valid_until,
    )
