"""The whole picture of one customer at one instant: stage, status, tier, points, reasons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from math import floor

import attrs

from lifecycle._ledger import Ledger, fold
from lifecycle._time import require_aware, to_utc
from lifecycle.events import Event, sort_key
from lifecycle.loyalty import TierAssessment, TierProgress, _loyalty_at
from lifecycle.policy import Policy, Tier
from lifecycle.reasons import Reason
from lifecycle.stages import Stage, StageAssessment, _Judge
from lifecycle.status import AliveModel, Status, StatusAssessment, status_from_ledger

__all__ = ["Assessment", "assess", "first_valid_order_at", "stage_and_status"]


@attrs.frozen(kw_only=True)
class Assessment:
    """What a customer is to the shop at ``as_of``.

    Attributes:
        customer_id: who.
        stage: the relationship stage (see :class:`Stage`).
        status: relationship health, ``None`` before the first valid order.
        tier: the loyalty tier held (the base tier for everyone who has reached none).
        points: the points balance.
        tier_progress: what the next tier needs, ``None`` at the top.
        reasons: the stage's reasons, then the status's, then the tier's.
        as_of: the instant assessed.
        stage_detail: the full stage assessment (rule, evidence).
        status_detail: the full status assessment (idle days, rhythm, P(alive)).
        tier_detail: the full tier assessment (totals, review date, downgrade warning).
        valid_until: the first later instant at which time alone may change the assessment
            (``None`` when only new events can); stored snapshots use it to stay correct.
    """

    customer_id: str
    stage: Stage
    status: Status | None
    tier: Tier
    points: int
    tier_progress: TierProgress | None
    reasons: tuple[Reason, ...]
    as_of: datetime
    stage_detail: StageAssessment = attrs.field(repr=False)
    status_detail: StatusAssessment = attrs.field(repr=False)
    tier_detail: TierAssessment = attrs.field(repr=False)
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
        head += f" · {self.tier.label(lang)}"
        head += f" · {self.points}分" if lang == "zh" else f" · {self.points} points"
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


def _relationship(
    history: Sequence[Event],
    policy: Policy,
    now: datetime,
    referrals: Mapping[str, datetime],
    model: AliveModel | None,
    explain: bool,
) -> tuple[StageAssessment, StatusAssessment, list[datetime | None]]:
    """Stage and status at ``now`` (UTC), and the instants at which time alone may change them."""
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
    return stage, status, bounds


def stage_and_status(
    history: Sequence[Event],
    policy: Policy,
    now: datetime,
    *,
    referrals: Mapping[str, datetime] | None = None,
    model: AliveModel | None = None,
) -> tuple[Stage, Status | None, datetime | None]:
    """Stage, status and until when time alone leaves them unchanged, without the reasons.

    What stored snapshots hold; cheaper than :func:`assess`, which adds tier and points.
    """
    now = to_utc(require_aware(now, "now"))
    refs = {rid: to_utc(t) for rid, t in (referrals or {}).items()}
    stage, status, bounds = _relationship(history, policy, now, refs, model, explain=False)
    valid_until = min((b for b in bounds if b is not None and b > now), default=None)
    return stage.stage, status.status, valid_until


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
    """Stage, status, tier and points of one customer at ``now`` from their events.

    Args:
        customer_id: whose history this is.
        history: the customer's events in any order; those after ``now`` are ignored.
        policy: the thresholds.
        now: the instant to assess at; aware.
        referrals: first valid order time of each customer this one referred (for the
            strategic stage and the referral bonus).
        model: a fitted model for the status; without one the rhythm rule decides.
        explain: ``False`` skips building reasons (``reasons`` is empty), for bulk work such
            as refreshing snapshots.
    """
    now = to_utc(require_aware(now, "now"))
    referrals = {rid: to_utc(t) for rid, t in (referrals or {}).items()}
    stage, status, bounds = _relationship(history, policy, now, referrals, model, explain)
    loyalty = _loyalty_at(history, policy, now, referrals, explain)
    bounds.append(loyalty.valid_until)
    valid_until = min((b for b in bounds if b is not None and b > now), default=None)
    return Assessment(
        customer_id=customer_id,
        stage=stage.stage,
        status=status.status,
        tier=loyalty.tier.tier,
        points=loyalty.points,
        tier_progress=loyalty.tier.progress,
        reasons=stage.reasons + status.reasons + loyalty.tier.reasons,
        as_of=now,
        stage_detail=stage,
        status_detail=status,
        tier_detail=loyalty.tier,
        valid_until=valid_until,
    )
