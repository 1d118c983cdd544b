"""Reports on the whole base: cohort retention, the stage funnel and the KPIs a shop tracks."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from lifecycle._display import frame, html_table, one_line, pandas
from lifecycle._time import require_aware, to_utc
from lifecycle.analytics._days import datetime_to_us
from lifecycle.analytics.batch import assess_all
from lifecycle.analytics.table import Transactions
from lifecycle.errors import DataError
from lifecycle.events import (
    ComplaintOpened,
    Event,
    FeedbackGiven,
    Referred,
    sort_key,
)
from lifecycle.policy import Policy
from lifecycle.stages import referral_periods, stage_history
from lifecycle.vocabulary import Job, Stage

__all__ = [
    "Cohorts",
    "Funnel",
    "FunnelStep",
    "KpiCounts",
    "Kpis",
    "cohort_counts",
    "cohort_retention",
    "cohorts_from_counts",
    "funnel_steps",
    "kpi_counts",
    "kpis",
    "kpis_from_counts",
    "stage_funnel",
]


# -- cohorts ------------------------------------------------------------------------------------


@attrs.frozen(eq=False)
class Cohorts:
    """Customers by the month of their first order, and who ordered again k months later.

    Attributes:
        cohorts: the first-order months (``datetime64[M]``), oldest first.
        sizes: customers in each cohort.
        counts: ``counts[i, k]``: customers of cohort ``i`` with an order in month ``i + k``.
        rates: ``counts / sizes``; NaN where month ``i + k`` lies after the data's last month.
    """

    cohorts: npt.NDArray[np.datetime64]
    sizes: npt.NDArray[np.int64]
    counts: npt.NDArray[np.int64]
    rates: npt.NDArray[np.float64]

    def to_pandas(self) -> Any:
        """Retention rates, one row per cohort and a column per month since (needs pandas)."""
        pd = pandas()
        return pd.DataFrame(
            self.rates,
            index=pd.Index([str(m) for m in self.cohorts], name="cohort"),
            columns=range(self.rates.shape[1]),
        ).assign(size=self.sizes)

    def __repr__(self) -> str:
        span = f"{self.cohorts[0]} to {self.cohorts[-1]}" if len(self.cohorts) else "none"
        return one_line(
            "Cohorts",
            f"{len(self.cohorts)} monthly cohorts {span}",
            f"{int(self.sizes.sum()):,} customers",
        )

    def _repr_html_(self) -> str:
        shown = min(self.rates.shape[1], 13)
        rows = [
            (str(m), n, *("" if np.isnan(r) else f"{r:.0%}" for r in self.rates[i, :shown]))
            for i, (m, n) in enumerate(zip(self.cohorts, self.sizes, strict=True))
        ]
        return html_table(("cohort", "customers", *range(shown)), rows, caption="Cohort retention")


def cohort_retention(table: Transactions) -> Cohorts:
    """Monthly cohort retention from the valid orders in ``table`` (months in its zone)."""
    return cohorts_from_counts([cohort_counts(table)])


def cohort_counts(table: Transactions) -> tuple[int, int, npt.NDArray[np.int64]]:
    """The first cohort month, the last month (both as months since 1970) and the customers
    counted per (cohort, months since): what :func:`cohorts_from_counts` adds up over tables of
    disjoint sets of customers."""
    if len(table) == 0:
        raise DataError("no transactions to build cohorts from")
    month = table.day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    ids, codes = np.unique(table.customer_id, return_inverse=True)
    first = np.full(len(ids), np.iinfo(np.int64).max)
    np.minimum.at(first, codes, month)
    cohort = first[codes]
    offset = month - cohort
    lo, hi = int(first.min()), int(month.max())
    n_cohorts, n_offsets = hi - lo + 1, hi - lo + 1
    # Distinct (customer, month) pairs, then count per (cohort, offset).
    pairs = np.unique(codes.astype(np.int64) * (n_offsets + 1) + offset)
    p_code, p_off = pairs // (n_offsets + 1), pairs % (n_offsets + 1)
    p_cohort = first[p_code] - lo
    counts = np.zeros((n_cohorts, n_offsets), dtype=np.int64)
    np.add.at(counts, (p_cohort, p_off), 1)
    return lo, hi, counts


def cohorts_from_counts(parts: Sequence[tuple[int, int, npt.NDArray[np.int64]]]) -> Cohorts:
    """The cohorts of customers counted by :func:`cohort_counts` in one or more parts (each
    customer in one part only)."""
    if not parts:
        raise DataError("no transactions to build cohorts from")
    lo = min(p[0] for p in parts)
    hi = max(p[1] for p in parts)
    n_cohorts, n_offsets = hi - lo + 1, hi - lo + 1
    counts = np.zeros((n_cohorts, n_offsets), dtype=np.int64)
    for p_lo, _, p_counts in parts:
        rows, cols = p_counts.shape
        counts[p_lo - lo : p_lo - lo + rows, :cols] += p_counts
    sizes = counts[:, 0].copy()
    observable = np.arange(n_offsets)[None, :] <= (hi - lo - np.arange(n_cohorts))[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(observable & (sizes[:, None] > 0), counts / sizes[:, None], np.nan)
    months = (np.arange(n_cohorts) + lo).astype("datetime64[M]")
    keep = sizes > 0
    return Cohorts(cohorts=months[keep], sizes=sizes[keep], counts=counts[keep], rates=rates[keep])


# -- the funnel ---------------------------------------------------------------------------------


@attrs.frozen
class FunnelStep:
    """One stage of the funnel.

    Attributes:
        stage: the stage.
        customers: customers in it now.
        reached: customers in it or beyond.
        conversion: ``reached`` over the previous stage's ``reached`` (None for the first).
        median_days_to_next: median days from entering this stage to entering the next one,
            over the customers who made that step; None when nobody did.
    """

    stage: Stage
    customers: int
    reached: int
    conversion: float | None
    median_days_to_next: float | None

    @property
    def job(self) -> Job:
        return self.stage.job

    def __repr__(self) -> str:
        conversion = None if self.conversion is None else f"{self.conversion:.1%} from previous"
        return one_line(
            "FunnelStep",
            f"{int(self.stage)} {self.stage.label_en}: {self.customers:,} now",
            f"{self.reached:,} reached",
            conversion,
        )

    def _repr_html_(self) -> str:
        return _steps_html((self,), "Funnel step")


@attrs.frozen
class Funnel:
    """Customers per stage, conversion between consecutive stages, and the four jobs."""

    steps: tuple[FunnelStep, ...]
    as_of: datetime

    @property
    def total(self) -> int:
        return sum(s.customers for s in self.steps)

    def __repr__(self) -> str:
        buyers = sum(s.customers for s in self.steps if s.stage >= Stage.FIRST_PURCHASE)
        return one_line(
            "Funnel",
            f"as of {self.as_of:%Y-%m-%d}",
            f"{self.total:,} customers",
            f"{buyers:,} buyers",
        )

    def to_pandas(self) -> Any:
        """The steps as a DataFrame (needs pandas)."""
        return frame(
            {
                "stage": [s.stage.name.lower() for s in self.steps],
                "job": [s.job.label_en for s in self.steps],
                "customers": [s.customers for s in self.steps],
                "reached": [s.reached for s in self.steps],
                "conversion": [s.conversion for s in self.steps],
                "median_days_to_next": [s.median_days_to_next for s in self.steps],
            }
        )

    def _repr_html_(self) -> str:
        return _steps_html(self.steps, f"Stage funnel as of {self.as_of:%Y-%m-%d}")

    def jobs(self) -> dict[Job, int]:
        """Customers per relationship-management job."""
        out = dict.fromkeys(Job, 0)
        for s in self.steps:
            out[s.job] += s.customers
        return out


def _steps_html(steps: Sequence[FunnelStep], caption: str) -> str:
    rows = [
        (
            s.job.label_en,
            f"{int(s.stage)} {s.stage.label_en}",
            s.customers,
            s.reached,
            "" if s.conversion is None else f"{s.conversion:.1%}",
            "" if s.median_days_to_next is None else f"{s.median_days_to_next:.0f}",
        )
        for s in steps
    ]
    head = ("job", "stage", "customers", "reached", "from previous", "days to next")
    return html_table(head, rows, caption=caption)


def stage_funnel(
    events: Iterable[Event], policy: Policy, now: datetime, *, timing: bool = True
) -> Funnel:
    """The stage funnel at ``now``.

    Counts come from :func:`assess_all`. With ``timing`` (default), each customer's stage
    history is replayed to measure the time from one stage to the next, which costs about a
    millisecond per customer.
    """
    now = to_utc(require_aware(now, "now"))
    events = list(events)
    batch = assess_all(events, policy, now)
    counts = batch.stage_counts()
    waits: dict[Stage, list[float]] = {s: [] for s in Stage}
    if timing:
        by_customer: dict[str, list[Event]] = {}
        for e in events:
            by_customer.setdefault(e.customer_id, []).append(e)
        periods = referral_periods(by_customer, policy, now)
        for cid, history in by_customer.items():
            entered: dict[Stage, datetime] = {}
            for change in stage_history(history, policy, now, referrals=periods.get(cid)):
                entered.setdefault(change.stage, change.since)
            for stage in Stage:
                nxt = Stage(stage + 1) if stage < Stage.PARTNER else None
                if nxt is not None and stage in entered and nxt in entered:
                    days = (entered[nxt] - entered[stage]).total_seconds() / 86400
                    if days >= 0:
                        waits[stage].append(days)
    return Funnel(steps=funnel_steps(counts, waits), as_of=now)


def funnel_steps(
    counts: Mapping[Stage, int], waits: Mapping[Stage, Sequence[float]] | None = None
) -> tuple[FunnelStep, ...]:
    """The funnel from customers per stage (and, when known, the days each took to the next
    stage): who reached each stage, and the conversion from the one before."""
    steps = []
    previous: int | None = None
    for stage in Stage:
        reached = sum(n for s, n in counts.items() if s >= stage)
        days = (waits or {}).get(stage)
        steps.append(
            FunnelStep(
                stage=stage,
                customers=counts.get(stage, 0),
                reached=reached,
                conversion=None if previous is None else (reached / previous if previous else 0.0),
                median_days_to_next=statistics.median(days) if days else None,
            )
        )
        previous = reached
    return tuple(steps)


# -- KPIs ---------------------------------------------------------------------------------------


@attrs.frozen
class Kpis:
    """The figures a shop tracks over ``[start, end)``; None where there is nothing to measure.

    Attributes:
        buyers: customers with a valid order in the period.
        orders: valid orders in the period.
        revenue: their net amount.
        average_order_value: revenue / orders (客单价).
        orders_per_customer: orders / buyers.
        repurchase_rate: share of the period's buyers who bought on two or more days in it (复购率).
        retention_rate: share of the previous period's buyers (a period as long, just before)
            who bought again in this one; ``churn_rate`` is its complement.
        returning_revenue_share: share of revenue from customers whose first order was earlier.
        discount_share: share of orders bought at a discount (price sensitivity).
        complaint_rate: complaints opened per valid order (投诉率).
        nps: promoters minus detractors, in points, over each customer's latest NPS answer.
        csat: share of CSAT answers of 4 or 5 (满意度).
        referrals: customers referred in the period; ``referrals_converted``: of those, the ones
            with a valid order by ``end``.
    """

    start: datetime
    end: datetime
    buyers: int
    orders: int
    revenue: float
    average_order_value: float | None
    orders_per_customer: float | None
    repurchase_rate: float | None
    retention_rate: float | None
    churn_rate: float | None
    returning_revenue_share: float | None
    discount_share: float | None
    complaint_rate: float | None
    nps: float | None
    csat: float | None
    referrals: int
    referrals_converted: int

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in attrs.fields(Kpis)}

    def __repr__(self) -> str:
        return one_line(
            "Kpis",
            f"{self.start:%Y-%m-%d} to {self.end:%Y-%m-%d}: {self.buyers:,} buyers",
            f"{self.orders:,} orders",
            f"revenue {self.revenue:,.2f}",
        )

    def _repr_html_(self) -> str:
        rows = [(k, v) for k, v in self.to_dict().items() if k not in ("start", "end")]
        return html_table(
            ("KPI", "value"), rows, caption=f"{self.start:%Y-%m-%d} to {self.end:%Y-%m-%d}"
        )


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def kpis(
    events: Sequence[Event],
    policy: Policy,
    *,
    start: datetime,
    end: datetime,
    currency: str | None = None,
) -> Kpis:
    """The KPIs of ``events`` over ``[start, end)`` (orders valid as of ``end``)."""
    counts = kpi_counts(events, policy, start=start, end=end, currency=currency)
    return kpis_from_counts([counts], converted=len(counts.referred & counts.buyer_ids))


@attrs.frozen(eq=False)
class KpiCounts:
    """What :func:`kpis` counts, for some customers: counts over disjoint sets of customers
    add up (:func:`kpis_from_counts`). ``buyer_ids`` are every customer with a valid order by
    ``end``; ``referred`` the customers referred in the period."""

    start: datetime
    end: datetime
    buyers: int
    orders: int
    revenue: float
    items: int
    repeaters: int
    earlier: int
    retained: int
    returning_revenue: float
    discounted: int
    complaints: int
    promoters: int
    detractors: int
    nps_answers: int
    csat_good: int
    csat_answers: int
    referred: frozenset[str]
    buyer_ids: frozenset[str]


def kpi_counts(
    events: Sequence[Event],
    policy: Policy,
    *,
    start: datetime,
    end: datetime,
    currency: str | None = None,
) -> KpiCounts:
    """The counts behind :func:`kpis` over ``[start, end)``, for the customers of ``events``
    (every event of each of them)."""
    events = list(events)  # read twice: the orders, then the rest
    start = to_utc(require_aware(start, "start"))
    end = to_utc(require_aware(end, "end"))
    if start >= end:
        raise DataError("start must be before end", column="start")
    table = Transactions.from_events(events, policy=policy, at=end, currency=currency)
    s_us, e_us = datetime_to_us(start), datetime_to_us(end)
    prev_us = s_us - (e_us - s_us)
    inside = (table.at_us >= s_us) & (table.at_us < e_us)
    before = (table.at_us >= prev_us) & (table.at_us < s_us)
    ids = table.customer_id[inside]
    net = table.net[inside]
    buyers, per_buyer = np.unique(ids, return_counts=True)
    # Repeat buyers: two or more distinct days in the period.
    days = np.unique(np.rec.fromarrays([ids.astype(str), table.day[inside]]))
    day_counts = np.unique(days["f0"], return_counts=True)[1] if len(days) else np.zeros(0)
    repeaters = int(np.sum(day_counts >= 2))
    earlier = set(table.customer_id[before].tolist())
    retained = len(earlier & set(buyers.tolist()))
    codes = np.unique(table.customer_id, return_inverse=True)[1] if len(table) else np.zeros(0, int)
    first_us = np.full(int(codes.max()) + 1 if len(codes) else 0, np.iinfo(np.int64).max)
    np.minimum.at(first_us, codes, table.at_us)
    returning = first_us[codes[inside]] < s_us

    complaints = 0
    nps_latest: dict[str, tuple[tuple[datetime, int, str], int]] = {}
    csat: list[int] = []
    referred: set[str] = set()
    for e in events:
        at = sort_key(e)[0]
        if not start <= at < end:
            continue
        match e:
            case ComplaintOpened():
                complaints += 1
            case FeedbackGiven(kind="nps", score=score):
                key = sort_key(e)
                if e.customer_id not in nps_latest or nps_latest[e.customer_id][0] < key:
                    nps_latest[e.customer_id] = (key, score)
            case FeedbackGiven(kind="csat", score=score):
                csat.append(score)
            case Referred(referred_id=rid):
                referred.add(rid)
    scores = [score for _, score in nps_latest.values()]
    return KpiCounts(
        start=start,
        end=end,
        buyers=len(buyers),
        orders=int(inside.sum()),
        revenue=float(net.sum()),
        items=int(per_buyer.sum()),
        repeaters=repeaters,
        earlier=len(earlier),
        retained=retained,
        returning_revenue=float(net[returning].sum()),
        discounted=int((table.discount[inside] > 0).sum()),
        complaints=complaints,
        promoters=sum(s >= 9 for s in scores),
        detractors=sum(s <= 6 for s in scores),
        nps_answers=len(scores),
        csat_good=sum(s >= 4 for s in csat),
        csat_answers=len(csat),
        referred=frozenset(referred),
        buyer_ids=frozenset(str(c) for c in table.customer_id.tolist()),
    )


def kpis_from_counts(parts: Sequence[KpiCounts], *, converted: int) -> Kpis:
    """The KPIs of the customers counted in ``parts`` (disjoint sets of customers, one
    period); ``converted`` is how many of the referred customers have a valid order by the
    end, wherever they were counted."""
    if not parts:
        raise DataError("no counts to report")

    def total(name: str) -> Any:
        return sum(getattr(p, name) for p in parts)

    buyers, orders, revenue = total("buyers"), total("orders"), float(total("revenue"))
    nps_answers = total("nps_answers")
    nps = 100 * (total("promoters") - total("detractors")) / nps_answers if nps_answers else None
    retention = _share(total("retained"), total("earlier"))
    return Kpis(
        start=parts[0].start,
        end=parts[0].end,
        buyers=buyers,
        orders=orders,
        revenue=revenue,
        average_order_value=_share(revenue, orders),
        orders_per_customer=_share(float(total("items")), buyers),
        repurchase_rate=_share(total("repeaters"), buyers),
        retention_rate=retention,
        churn_rate=None if retention is None else 1 - retention,
        returning_revenue_share=_share(float(total("returning_revenue")), revenue),
        discount_share=_share(total("discounted"), orders),
        complaint_rate=_share(total("complaints"), orders),
        nps=nps,
        csat=_share(total("csat_good"), total("csat_answers")),
        referrals=len(frozenset().union(*(p.referred for p in parts))),
        referrals_converted=converted,
    )
