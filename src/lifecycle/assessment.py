"""The whole picture of one customer at one instant: stage, status, tier, points, reasons."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from math import floor
from typing import Any, Protocol, runtime_checkable

import attrs

from lifecycle._display import html_table, one_line
from lifecycle._ledger import ORDER_EVENTS, Ledger, fold
from lifecycle._time import require_aware, to_utc
from lifecycle.events import Event, Referred
from lifecycle.loyalty import TierAssessment, TierProgress, loyalty_from_ledger
from lifecycle.policy import Policy, Tier
from lifecycle.reasons import Reason
from lifecycle.record import CustomerRecord
from lifecycle.stages import StageAssessment, StageJudge
from lifecycle.status import AliveModel, StatusAssessment, status_from_ledger
from lifecycle.vocabulary import Stage, Status

__all__ = [
    "Assessment",
    "ValueEstimator",
    "assess",
    "first_valid_order_at",
    "referral_conversions",
    "stage_and_status",
]


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
        expected_purchases: purchases expected over the value model's horizon (with a model
            that predicts value; ``None`` otherwise or before the first valid order).
        clv: the customer's lifetime value over the model's horizon, discounted.
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
    expected_purchases: float | None = None
    clv: float | None = None

    @property
    def p_alive(self) -> float | None:
        """P(alive) when a model decided the status."""
        return self.status_detail.p_alive

    def __repr__(self) -> str:
        status = "no status" if self.status is None else self.status.value
        return one_line(
            "Assessment",
            f"{self.customer_id}: {self.stage.label_en} · {status} · {self.tier.label('en')}",
            f"{self.points:,} points",
            f"as of {self.as_of:%Y-%m-%d}",
        )

    def _repr_html_(self) -> str:
        """A table for notebooks: the figures, then the reasons."""
        rows: list[tuple[str, object]] = [
            ("customer", self.customer_id),
            ("as of", self.as_of.isoformat()),
            ("stage", f"{self.stage.label_en} ({self.stage.label_zh})"),
            ("status", None if self.status is None else self.status.label_en),
            ("tier", self.tier.label("en")),
            ("points", self.points),
        ]
        if self.p_alive is not None:
            rows.append(("P(alive)", f"{self.p_alive:.0%}"))
        if self.clv is not None:
            rows.append(("CLV", f"{self.clv:,.2f}"))
        rows += [("why", r.en) for r in self.reasons]
        return html_table(("", ""), rows)

    def to_dict(self) -> dict[str, Any]:
        """The figures and reasons as plain values (JSON-ready)."""
        return {
            "customer_id": self.customer_id,
            "as_of": self.as_of.isoformat(),
            "stage": self.stage.name.lower(),
            "status": None if self.status is None else self.status.value,
            "tier": self.tier.key,
            "points": self.points,
            "p_alive": self.p_alive,
            "expected_purchases": self.expected_purchases,
            "clv": self.clv,
            "reasons": [{"code": r.code, "en": r.en, "zh": r.zh} for r in self.reasons],
        }

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
    mine = [e for e in history if isinstance(e, ORDER_EVENTS)]  # all the valid orders read
    orders = fold(mine, policy, to_utc(require_aware(now, "now"))).valid_orders()
    return orders[0].paid.at if orders and orders[0].paid is not None else None


def referral_conversions(
    histories: Mapping[str, Sequence[Event]], policy: Policy, now: datetime
) -> dict[str, dict[str, datetime]]:
    """The ``referrals`` each customer's assessment takes, for a whole shop at once.

    For every customer who referred others in ``histories``: when each customer they referred
    first made an order still valid at ``now`` (those who have not are left out). Customers
    who referred nobody who bought are left out.
    """
    referred = {
        cid: {e.referred_id for e in history if isinstance(e, Referred)}
        for cid, history in histories.items()
    }
    return conversions_among(referred, histories, policy, now)


def conversions_among(
    referred: Mapping[str, Collection[str]],
    histories: Mapping[str, Sequence[Event]],
    policy: Policy,
    now: datetime,
) -> dict[str, dict[str, datetime]]:
    """For each customer of ``referred`` (customer id to the ids they referred): when each of
    those whose history ``histories`` holds first made an order still valid at ``now``."""
    now = to_utc(require_aware(now, "now"))
    wanted = {r for ids in referred.values() for r in ids if r in histories}
    first = {
        r: t for r in wanted if (t := first_valid_order_at(histories[r], policy, now)) is not None
    }
    out: dict[str, dict[str, datetime]] = {}
    for cid, ids in referred.items():
        converted = {r: first[r] for r in sorted(ids) if r in first}
        if converted:
            out[cid] = converted
    return out


def _midnight_after(day: date, days: int, ledger: Ledger) -> datetime:
    return datetime.combine(day + timedelta(days=days), time(0), tzinfo=ledger.tz)


def _relationship(
    record: CustomerRecord, explain: bool
) -> tuple[StageAssessment, StatusAssessment, list[datetime | None]]:
    """Stage and status at the record's instant, and the instants at which time alone (or
    the next event) may change them."""
    ledger, now, policy = record.ledger, record.now, record.policy
    referrals = record.referrals
    judge = StageJudge(ledger, referrals, now)
    if explain:
        stage = judge.decide()
    else:
        stage = StageAssessment(stage=judge.stage(), rule="", evidence=(), reasons=(), as_of=now)
    status = status_from_ledger(ledger, now, model=record.model, explain=explain)
    bounds = [judge.next_boundary(), record.next_event_at]
    bounds += [t for t in referrals.values() if t > now]
    last = ledger.last_day
    if last is not None:
        if status.p_alive is not None:
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
    record = CustomerRecord("", history, policy, now, referrals=referrals, model=model)
    return stage_and_status_of(record)


def stage_and_status_of(record: CustomerRecord) -> tuple[Stage, Status | None, datetime | None]:
    """:func:`stage_and_status` of a record already read."""
    stage, status, bounds = _relationship(record, explain=False)
    now = record.now
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
    record = CustomerRecord(customer_id, history, policy, now, referrals=referrals, model=model)
    return assess_record(record, explain=explain)


def assess_record(record: CustomerRecord, *, explain: bool = True) -> Assessment:
    """:func:`assess` of a record already read (from a snapshot's state, say)."""
    now = record.now
    stage, status, bounds = _relationship(record, explain)
    loyalty = loyalty_from_ledger(record.ledger, now, referrals=record.referrals, explain=explain)
    expected, clv = _value(record.ledger, now, record.model)
    bounds.append(loyalty.valid_until)
    valid_until = min((b for b in bounds if b is not None and b > now), default=None)
    return Assessment(
        customer_id=record.customer_id,
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
        expected_purchases=expected,
        clv=clv,
    )


@runtime_checkable
class ValueEstimator(Protocol):
    """A fitted model that also predicts purchases and value (e.g. ``lifecycle.clv.ValueModel``).

    Arguments are in days: ``frequency`` (repeat purchase days), ``recency``, ``T``, and
    ``monetary_value`` (mean spend of the repeat purchase days).
    """

    def customer_value(
        self, frequency: float, recency: float, T: float, monetary_value: float
    ) -> tuple[float, float | None]:
        """Expected purchases over the model's horizon, and the CLV (``None`` if unknown)."""
        ...


def _value(
    ledger: Ledger, now: datetime, model: AliveModel | None
) -> tuple[float | None, float | None]:
    if not isinstance(model, ValueEstimator):
        return None, None
    spend: dict[date, float] = {}
    for o in ledger.valid_orders():
        assert o.paid is not None  # valid orders are paid
        day = ledger.day(o.paid.at)
        spend[day] = spend.get(day, 0.0) + float(o.net_amount)
    if not spend:
        return None, None
    days = sorted(spend)
    repeat = [spend[d] for d in days[1:]]
    return model.customer_value(
        len(days) - 1,
        (days[-1] - days[0]).days,
        (ledger.day(now) - days[0]).days,
        sum(repeat) / len(repeat) if repeat else 0.0,
    )
