"""Relationship health: active, at risk (churn early warning), lapsed, won back.

The default rule compares the days since the last valid order with the customer's own rhythm
(median gap between purchase days). Pass a fitted model (anything with ``p_alive``) and the
probability that the customer is still alive decides instead.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Protocol, runtime_checkable

import attrs

from lifecycle._display import field_table, one_line
from lifecycle._ledger import ORDER_EVENTS, Ledger, fold
from lifecycle._time import require_aware, to_utc
from lifecycle.events import CustomerRegistered, Event, ProfileUpdated
from lifecycle.policy import Policy, StatusPolicy
from lifecycle.reasons import Reason
from lifecycle.vocabulary import Status

__all__ = ["AliveModel", "StatusAssessment", "assess_status"]

#: The events the status reads: the orders (its valid days) and the profiles (the customer's
#: zone, for their calendar days). A ledger folded from these alone gives the same status.
STATUS_EVENTS = (*ORDER_EVENTS, CustomerRegistered, ProfileUpdated)


@runtime_checkable
class AliveModel(Protocol):
    """A fitted model that tells the probability a customer is still alive.

    The arguments follow the field's vocabulary, in days: ``frequency`` (repeat purchase days),
    ``recency`` (last - first purchase day) and ``T`` (now - first purchase day).
    """

    def p_alive(self, frequency: float, recency: float, T: float) -> float: ...


@attrs.frozen(kw_only=True)
class StatusAssessment:
    """A customer's status at ``as_of`` with the figures behind it.

    ``status`` is ``None`` for customers with no valid order. ``threshold_days`` is the idle time
    past which the customer counts as at risk under the rhythm rule; ``p_alive`` is set when a
    model decided.
    """

    status: Status | None
    reasons: tuple[Reason, ...]
    as_of: datetime
    days_since_last_order: int | None = None
    median_gap_days: float | None = None
    threshold_days: float | None = None
    p_alive: float | None = None

    def __repr__(self) -> str:
        status = "no status" if self.status is None else self.status.value
        since = None
        if self.days_since_last_order is not None:
            since = f"{self.days_since_last_order} days since the last order"
        alive = None if self.p_alive is None else f"P(alive) {self.p_alive:.0%}"
        return one_line("StatusAssessment", status, since, alive, f"as of {self.as_of:%Y-%m-%d}")

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [
            ("status", "no status" if self.status is None else self.status.label_en),
            ("as of", self.as_of.isoformat()),
            ("days since the last order", self.days_since_last_order),
            ("median gap (days)", self.median_gap_days),
            ("at risk after (days)", self.threshold_days),
            ("P(alive)", None if self.p_alive is None else f"{self.p_alive:.0%}"),
        ]
        rows = [r for r in rows if r[1] is not None]
        rows += [("why", r.en) for r in self.reasons]
        return field_table(rows)


def _median(sorted_values: Sequence[int]) -> float:
    n = len(sorted_values)
    mid = n // 2
    return float(sorted_values[mid]) if n % 2 else (sorted_values[mid - 1] + sorted_values[mid]) / 2


class Rhythm:
    """Walks purchase days in order, keeping the sorted gaps for the median: the rhythm rule's
    at-risk threshold (also read by the bulk planner's bounds)."""

    def __init__(self, policy: StatusPolicy):
        self.p = policy
        self.gaps: list[int] = []

    def threshold(self) -> tuple[float, float | None]:
        """(at-risk threshold in days, median gap or None when the fallback applies)."""
        if len(self.gaps) + 1 >= self.p.rhythm_min_days:
            median = _median(self.gaps)
            return self.p.at_risk_multiple * median, median
        return self.p.at_risk_multiple * self.p.fallback_gap_days, None


def classify(
    idle: int,
    threshold: float,
    p: StatusPolicy,
    alive: float | None,
) -> Status:
    """The status after ``idle`` days without a purchase day, given the rhythm's ``threshold``
    and, when a model decides, ``alive`` (its P(alive)): the one place the status is decided."""
    if idle > p.lapsed_days or (alive is not None and alive < p.lapsed_p_alive):
        return Status.LAPSED
    if alive is not None:
        return Status.AT_RISK if alive < p.at_risk_p_alive else Status.ACTIVE
    return Status.AT_RISK if idle > threshold else Status.ACTIVE


#: A model decides only from this many purchase days on: with one, BG/NBD-style models put
#: P(alive) at 1 whatever the idle time, so the rhythm rule (with its fallback gap) decides.
MODEL_MIN_PURCHASE_DAYS = 2


def _p_alive(
    model: AliveModel | None, days: Sequence[date], upto: int, today: date
) -> float | None:
    if model is None or upto < MODEL_MIN_PURCHASE_DAYS:
        return None
    first, last = days[0], days[upto - 1]
    return float(model.p_alive(upto - 1, (last - first).days, (today - first).days))


def _last_orders(ledger: Ledger) -> tuple[str, ...]:
    """The payment event of the latest valid order: what every status reason measures from."""
    orders = ledger.valid_orders()
    last = orders[-1].paid if orders else None
    return () if last is None else (last.event_id,)


def assess_status(
    history: Sequence[Event],
    policy: Policy,
    now: datetime,
    *,
    model: AliveModel | None = None,
) -> StatusAssessment:
    """The customer's relationship health at ``now``.

    Won back is the status from the first valid order after being at risk or lapsed until the
    next valid order (active again) or the next slide into risk.
    """
    now = to_utc(require_aware(now, "now"))
    return status_from_ledger(fold(history, policy, now), now, model=model)


def at_risk_since(ledger: Ledger, now: datetime, *, model: AliveModel | None = None) -> date | None:
    """The first day, since the last valid order, on which the customer counted as at risk
    (or lapsed), by the same rule :func:`status_from_ledger` applies at ``now`` (the rhythm,
    or the model's P(alive), which only falls as idle days pass); ``None`` while active."""
    return at_risk_day(sorted(ledger.valid_days), ledger.day(now), ledger.policy.status, model)


def at_risk_day(
    days: Sequence[date], today: date, p: StatusPolicy, model: AliveModel | None = None
) -> date | None:
    """:func:`at_risk_since` from the customer's days with a valid order (sorted) and their
    ``today``: what the planner's bounds read for many customers without a ledger each."""
    if not days:
        return None
    rhythm = Rhythm(p)
    rhythm.gaps = sorted((b - a).days for a, b in itertools.pairwise(days))
    threshold, _ = rhythm.threshold()

    def slipping(day: date) -> bool:
        alive = _p_alive(model, days, len(days), day)
        status = classify((day - days[-1]).days, threshold, p, alive)
        return status in (Status.AT_RISK, Status.LAPSED)

    lo, hi = days[-1], today
    if hi <= lo or not slipping(hi):
        return None
    while (hi - lo).days > 1:  # slipping(hi) holds and slipping(lo) does not
        mid = lo + timedelta(days=(hi - lo).days // 2)
        if slipping(mid):
            hi = mid
        else:
            lo = mid
    return hi


def status_from_ledger(
    ledger: Ledger, now: datetime, *, model: AliveModel | None = None, explain: bool = True
) -> StatusAssessment:
    """:func:`assess_status` on an already folded ledger; ``explain=False`` skips the reasons."""
    p = ledger.policy.status
    days = sorted(ledger.valid_days)
    if not days:
        return StatusAssessment(
            status=None,
            reasons=(
                Reason(
                    code="status.none",
                    en="No valid order yet, so no buying relationship to measure.",
                    zh="尚无有效订单，暂无购买关系状态。",
                ),
            ),
            as_of=now,
        )
    rhythm = Rhythm(p)
    rhythm.gaps = sorted((b - a).days for a, b in itertools.pairwise(days[:-1]))
    won_back_on: date | None = None
    if len(days) >= 2:
        # Won back depends only on the last pause: was the customer at risk or lapsed on the
        # day of their latest purchase, judged by the rhythm (or model) before it?
        gap = (days[-1] - days[-2]).days
        threshold, _ = rhythm.threshold()
        before = classify(gap, threshold, p, _p_alive(model, days, len(days) - 1, days[-1]))
        won_back_on = days[-1] if before in (Status.AT_RISK, Status.LAPSED) else None
        bisect.insort(rhythm.gaps, gap)
    today = ledger.day(now)
    idle = (today - days[-1]).days
    threshold, median = rhythm.threshold()
    alive = _p_alive(model, days, len(days), today)
    status = classify(idle, threshold, p, alive)
    if status is Status.ACTIVE and won_back_on is not None:
        status = Status.WON_BACK
    if not explain:
        return StatusAssessment(
            status=status,
            reasons=(),
            as_of=now,
            days_since_last_order=idle,
            median_gap_days=median,
            threshold_days=threshold if alive is None else None,
            p_alive=alive,
        )
    rhythm_en = (
        f"their median gap between purchases is {median:g} days"
        if median is not None
        else f"with fewer than {p.rhythm_min_days} purchase days the fallback gap is {p.fallback_gap_days} days"
    )
    rhythm_zh = (
        f"其购买间隔中位数为{median:g}天"
        if median is not None
        else f"购买天数少于{p.rhythm_min_days}天，按默认间隔{p.fallback_gap_days}天计"
    )
    last = f"{days[-1]}"
    if status is Status.LAPSED and (alive is None or idle > p.lapsed_days):
        reason = Reason(
            code="status.lapsed",
            en=f"No valid order for {idle} days (since {last}); lapsed after {p.lapsed_days}.",
            zh=f"已{idle}天无有效订单（最近一笔在{last}），超过{p.lapsed_days}天视为流失。",
        )
    elif alive is not None:
        cut = p.lapsed_p_alive if status is Status.LAPSED else p.at_risk_p_alive
        verdict = {Status.LAPSED: "lapsed", Status.AT_RISK: "at risk"}.get(status, "active")
        span = (today - days[0]).days
        reason = Reason(
            code=f"status.model.{status.value}",
            en=(
                f"The model puts the chance the customer is still active at {alive:.0%} "
                f"({verdict}, threshold {cut:.0%}), from {len(days)} purchase days over "
                f"{span} days, the last {idle} days ago."
            ),
            zh=(
                f"模型估计客户仍活跃的概率为{alive:.0%}（阈值{cut:.0%}），依据{span}天内的"
                f"{len(days)}个购买日，最近一次在{idle}天前。"
            ),
        )
    elif status is Status.AT_RISK:
        reason = Reason(
            code="status.at_risk",
            en=f"No valid order for {idle} days (since {last}); {rhythm_en}, so after {threshold:g} days they are at risk.",
            zh=f"已{idle}天无有效订单（最近一笔在{last}）；{rhythm_zh}，超过{threshold:g}天即为流失预警。",
        )
    elif status is Status.WON_BACK:
        reason = Reason(
            code="status.won_back",
            en=f"Came back with a valid order on {won_back_on} after a long pause.",
            zh=f"长时间未购买后于{won_back_on}重新下单，已挽回。",
        )
    else:
        reason = Reason(
            code="status.active",
            en=f"Last valid order {idle} days ago ({last}); {rhythm_en}, at risk only after {threshold:g} days.",
            zh=f"最近一笔有效订单在{idle}天前（{last}）；{rhythm_zh}，超过{threshold:g}天才预警。",
        )
    return StatusAssessment(
        status=status,
        reasons=(attrs.evolve(reason, evidence=_last_orders(ledger)),),
        as_of=now,
        days_since_last_order=idle,
        median_gap_days=median,
        threshold_days=threshold if alive is None else None,
        p_alive=alive,
    )
