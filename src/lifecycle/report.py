"""One report on the whole shop: stages, health, loyalty, value segments, the value model and
the KPIs, every figure labelled with the window it covers.

:func:`shop_report` is pure: it reads the histories, the policy, ``now`` and an optional fitted
value model, and calls the analytics functions (:mod:`lifecycle.analytics`, and
:mod:`lifecycle.clv` when scipy is installed). :meth:`lifecycle.Lifecycle.report` gathers the
shop's histories and calls it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum, IntEnum
from typing import Any

import attrs
import numpy as np

from lifecycle._display import frame, html_table, money, one_line
from lifecycle._ledger import fold
from lifecycle._time import require_aware, to_utc, zone
from lifecycle.analytics import (
    ABCClass,
    CustomerSummary,
    FunnelStep,
    Kpis,
    Segment,
    Transactions,
    abc_classes,
    assess_all,
    cluster_customers,
    funnel_steps,
    kpis,
    pareto,
    rfm_scores,
    rfm_segments,
    rfm_summary,
)
from lifecycle.assessment import referral_conversions
from lifecycle.errors import DataError, InvalidArgument, LifecycleError, ModelError
from lifecycle.events import Contacted, Event, OrderPaid, OwnerAssigned, ReturnedToPool, sort_key
from lifecycle.loyalty import points_ledger
from lifecycle.owners import ownership
from lifecycle.policy import Policy
from lifecycle.ports import OutboxEntry
from lifecycle.reasons import Reason, Skipped
from lifecycle.status import AliveModel, assess_status
from lifecycle.vocabulary import ESCALATION_TEMPLATE, OWNER_CHANNELS, Status

__all__ = [
    "ClusterSection",
    "CustomerValue",
    "HealthSection",
    "KpiPeriod",
    "KpiSection",
    "LoyaltySection",
    "Missing",
    "OtherCurrency",
    "OwnerReport",
    "OwnerResult",
    "ParetoSection",
    "SegmentSection",
    "ShopReport",
    "StageSection",
    "TierCount",
    "ValueCluster",
    "ValueSection",
    "Window",
    "owner_report",
    "shop_report",
]


def _plain(value: object) -> Any:
    """``value`` as JSON-ready data: enums by name or value, instants in ISO 8601, no NaN."""
    if isinstance(value, IntEnum):
        return value.name.lower()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    cls: type[Any] = type(value)
    if attrs.has(cls):
        return {f.name: _plain(getattr(value, f.name)) for f in attrs.fields(cls)}
    return value


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "-"


@attrs.frozen(kw_only=True)
class Window:
    """The span a figure covers, and its label: "now", "all time", "last 365 days".

    ``start`` equal to ``end`` is an instant; ``start`` is ``None`` for "all time" in a shop
    without events.
    """

    start: datetime | None
    end: datetime
    en: str
    zh: str

    @classmethod
    def now(cls, now: datetime) -> Window:
        return cls(start=now, end=now, en="now", zh="当前")

    @classmethod
    def all_time(cls, first: datetime | None, now: datetime) -> Window:
        return cls(start=first, end=now, en="all time", zh="全部时间")

    @classmethod
    def last(cls, days: int, now: datetime) -> Window:
        return cls(
            start=now - timedelta(days=days), end=now, en=f"last {days} days", zh=f"近{days}天"
        )

    @classmethod
    def next(cls, days: float, now: datetime) -> Window:
        return cls(
            start=now,
            end=now + timedelta(days=days),
            en=f"next {days:g} days",
            zh=f"未来{days:g}天",
        )

    def label(self, lang: str = "en") -> str:
        return self.zh if lang == "zh" else self.en

    def to_dict(self) -> dict[str, Any]:
        return dict(_plain(self))


@attrs.frozen(kw_only=True, repr=False)
class Missing:
    """A section the shop's data cannot give, and why."""

    reason: Reason

    def to_dict(self) -> dict[str, Any]:
        return {
            "available": False,
            "why": {k: _plain(getattr(self.reason, k)) for k in ("code", "en", "zh")},
        }

    def __repr__(self) -> str:
        return one_line("Missing", self.reason.code)

    def _repr_html_(self) -> str:
        return html_table(("not available",), [(self.reason.en,)])


class _Section:
    """What every section has: ``to_dict`` with ``available: true``, and a one-line repr of
    its headline figures."""

    def to_dict(self) -> dict[str, Any]:
        return {"available": True, **_plain(self)}

    def __repr__(self) -> str:
        return one_line(type(self).__name__, *self._headline())

    def _headline(self) -> tuple[object, ...]:  # pragma: no cover - every section has its own
        return ()


@attrs.frozen(kw_only=True, repr=False)
class StageSection(_Section):
    """Customers per stage, who reached each stage, and the conversion from the one before."""

    window: Window
    customers: int
    steps: tuple[FunnelStep, ...]

    def _headline(self) -> tuple[object, ...]:
        buyers = sum(s.customers for s in self.steps if int(s.stage) >= 3)
        return (self.window.en, f"{self.customers:,} customers", f"{buyers:,} buyers")

    def _repr_html_(self) -> str:
        rows = [
            (
                f"{int(s.stage)} {s.stage.label_en}",
                s.customers,
                _share(s.customers, self.customers),
                s.reached,
                "" if s.conversion is None else f"{s.conversion:.1%}",
            )
            for s in self.steps
        ]
        head = ("stage", "customers", "share", "reached", "from previous")
        return html_table(head, rows, caption=f"Stages ({self.window.en})")


@attrs.frozen(kw_only=True, repr=False)
class HealthSection(_Section):
    """The status mix of the buying relationships, by the rhythm rule (``rule``)."""

    window: Window
    rule: str
    counts: Mapping[Status, int]

    @property
    def buyers(self) -> int:
        return sum(self.counts.values())

    def _headline(self) -> tuple[object, ...]:
        return (self.window.en, *(f"{k.value} {n:,}" for k, n in self.counts.items()))

    def _repr_html_(self) -> str:
        rows = [(s.label_en, n, _share(n, self.buyers)) for s, n in self.counts.items()]
        caption = f"Health of {self.buyers:,} buyers ({self.window.en}, {self.rule} rule)"
        return html_table(("status", "customers", "share"), rows, caption=caption)


@attrs.frozen(kw_only=True)
class TierCount:
    """Customers holding one loyalty tier."""

    key: str
    en: str
    zh: str
    customers: int

    def label(self, lang: str = "en") -> str:
        return self.zh if lang == "zh" else self.en


@attrs.frozen(kw_only=True, repr=False)
class LoyaltySection(_Section):
    """Customers per tier (every tier, lowest first) and the points outstanding.

    ``points_expiring`` expire within ``expiring_window`` unless spent first.
    """

    window: Window
    tiers: tuple[TierCount, ...]
    points_outstanding: int
    points_expiring: int
    expiring_window: Window

    def _headline(self) -> tuple[object, ...]:
        tiers = (f"{t.key} {t.customers:,}" for t in self.tiers)
        return (*tiers, f"{self.points_outstanding:,} points")

    def _repr_html_(self) -> str:
        total = sum(t.customers for t in self.tiers)
        rows: list[tuple[object, ...]] = [
            (t.en, t.customers, _share(t.customers, total)) for t in self.tiers
        ]
        rows.append((f"points outstanding ({self.window.en})", self.points_outstanding, ""))
        rows.append((f"points expiring ({self.expiring_window.en})", self.points_expiring, ""))
        return html_table(("tier", "customers", "share"), rows, caption="Loyalty")


@attrs.frozen(kw_only=True, repr=False)
class SegmentSection(_Section):
    """Buyers per RFM segment (every segment, best first)."""

    window: Window
    buyers: int
    counts: Mapping[Segment, int]

    def _headline(self) -> tuple[object, ...]:
        top = sorted(self.counts.items(), key=lambda kv: -kv[1])[:3]
        return (f"{self.buyers:,} buyers", *(f"{s.value} {n:,}" for s, n in top))

    def _repr_html_(self) -> str:
        rows = [(s.label_en, n, _share(n, self.buyers)) for s, n in self.counts.items()]
        return html_table(
            ("segment", "customers", "share"), rows, caption=f"RFM segments ({self.window.en})"
        )


@attrs.frozen(kw_only=True, repr=False)
class ParetoSection(_Section):
    """The 80/20 figures of revenue per buyer (:func:`~lifecycle.analytics.pareto`) and the ABC
    classes (:func:`~lifecycle.analytics.abc_classes`)."""

    window: Window
    buyers: int
    revenue: float
    top_fraction: float
    value_share_of_top: float
    value_fraction: float
    customers_for_value: int
    customer_share_for_value: float
    gini: float
    abc_counts: Mapping[ABCClass, int]
    abc_value_shares: Mapping[ABCClass, float]

    def _headline(self) -> tuple[object, ...]:
        return (
            f"{self.buyers:,} buyers",
            f"top {self.top_fraction:.0%} bring {self.value_share_of_top:.0%}",
            f"Gini {self.gini:.2f}",
        )

    def _repr_html_(self) -> str:
        rows: list[tuple[object, ...]] = [
            (f"revenue of the top {self.top_fraction:.0%}", f"{self.value_share_of_top:.1%}"),
            (
                f"buyers making {self.value_fraction:.0%} of revenue",
                f"{self.customers_for_value:,} ({self.customer_share_for_value:.1%})",
            ),
            ("Gini", f"{self.gini:.2f}"),
        ]
        rows += [
            (c.label_en, f"{n:,} ({self.abc_value_shares[c]:.0%} of revenue)")
            for c, n in self.abc_counts.items()
        ]
        return html_table(("", ""), rows, caption=f"Pareto and ABC ({self.window.en})")


@attrs.frozen(kw_only=True)
class ValueCluster:
    """One k-means cluster on RFM: its name, size and the plain means of its members."""

    key: str
    en: str
    zh: str
    customers: int
    orders: float
    days_since_last: float
    spend: float

    def label(self, lang: str = "en") -> str:
        return self.zh if lang == "zh" else self.en


@attrs.frozen(kw_only=True, repr=False)
class ClusterSection(_Section):
    """Buyers grouped by :func:`~lifecycle.analytics.cluster_customers`, most valuable first."""

    window: Window
    clusters: tuple[ValueCluster, ...]

    def _headline(self) -> tuple[object, ...]:
        return tuple(f"{c.key} {c.customers:,}" for c in self.clusters)

    def _repr_html_(self) -> str:
        rows = [
            (c.en, c.customers, f"{c.orders:.1f}", f"{c.days_since_last:.0f}", f"{c.spend:,.0f}")
            for c in self.clusters
        ]
        head = ("cluster", "customers", "orders", "days since", "spend")
        return html_table(head, rows, caption=f"Clusters, k-means on RFM ({self.window.en})")


@attrs.frozen(kw_only=True)
class CustomerValue:
    """One customer's predicted value: P(alive) now and the CLV over the model's horizon."""

    customer_id: str
    orders: int
    p_alive: float
    clv: float


@attrs.frozen(kw_only=True, repr=False)
class ValueSection(_Section):
    """The value model: which one, its parameters, the churn warning by P(alive), and the
    customers of the highest predicted value.

    Attributes:
        window: the orders the model was fitted on (all time).
        model: ``"BG/NBD"``, ``"MBG/NBD"`` or ``"Pareto/NBD"``.
        fitted: ``True`` when fitted for this report, ``False`` when the shop's own model.
        customers: buyers the model was fitted on.
        params: the purchase model's parameters (times in days).
        reason: why this purchase model: how it was fitted and the likelihoods it beat.
        boundary: the maximum-likelihood fit lay on the boundary of the parameter space (no
            measurable drop-out, or every customer alike) and weak priors hold it.
        candidates: every purchase model tried and its log-likelihood (``None``: not fitted).
        spend_note: how the spend model was fitted (zero-value repeat buyers left out) and the
            frequency-spend correlation its independence assumption needs small.
        spend_independent: ``False`` when that correlation is beyond 0.3.
        spend_params: the Gamma-Gamma parameters; ``None`` without a spend model.
        at_risk_p_alive: the P(alive) under which a buyer is at risk.
        statuses: the status mix when the model decides it (:func:`lifecycle.assess_status`).
        clv_window: the horizon of the CLV.
        top: the customers of the highest CLV, highest first.
        clv_total: the CLV of every buyer together.
        clv_missing: why there is no CLV, when there is none.
    """

    window: Window
    model: str
    fitted: bool
    customers: int
    params: Mapping[str, float]
    spend_params: Mapping[str, float] | None
    reason: str
    boundary: bool
    candidates: Mapping[str, float | None]
    spend_note: str | None
    spend_independent: bool
    at_risk_p_alive: float
    statuses: Mapping[Status, int]
    clv_window: Window
    top: tuple[CustomerValue, ...]
    clv_total: float | None
    clv_missing: Reason | None

    def _headline(self) -> tuple[object, ...]:
        clv = "no CLV" if self.clv_total is None else f"CLV {self.clv_total:,.0f}"
        return (self.model, f"{self.customers:,} buyers", clv, self.clv_window.en)

    def _repr_html_(self) -> str:
        rows = [(c.customer_id, c.orders, f"{c.p_alive:.0%}", f"{c.clv:,.0f}") for c in self.top]
        params = ", ".join(f"{k} {v:.3g}" for k, v in self.params.items())
        caption = (
            f"{self.model} on {self.customers:,} buyers ({params}); {self.reason} "
            f"{self.statuses.get(Status.AT_RISK, 0):,} at risk by P(alive); "
            f"CLV ({self.clv_window.en})"
        )
        if self.spend_note:
            caption += f"; {self.spend_note}"
        return html_table(("customer", "orders", "P(alive)", "CLV"), rows, caption=caption)


@attrs.frozen(kw_only=True)
class KpiPeriod:
    """The KPIs (:func:`~lifecycle.analytics.kpis`) over one window."""

    window: Window
    kpis: Kpis


@attrs.frozen(kw_only=True, repr=False)
class KpiSection(_Section):
    """The KPIs over each window: all time, and the recent days."""

    periods: tuple[KpiPeriod, ...]

    def _headline(self) -> tuple[object, ...]:
        return tuple(f"{p.window.en}: {p.kpis.orders:,} orders" for p in self.periods)

    def _repr_html_(self) -> str:
        names = [f.name for f in attrs.fields(Kpis) if f.name not in ("start", "end")]
        rows = [(n, *(getattr(p.kpis, n) for p in self.periods)) for n in names]
        return html_table(("KPI", *(p.window.en for p in self.periods)), rows, caption="KPIs")


@attrs.frozen(kw_only=True)
class OtherCurrency:
    """Valid orders paid in a currency other than the report's, left out of its figures."""

    currency: str
    orders: int
    revenue: float
    """What those orders brought, net of refunds, in ``currency``."""


@attrs.frozen(kw_only=True, repr=False)
class ShopReport:
    """The whole shop at ``as_of``; every section labels its window.

    A section the data cannot give (RFM segments of two buyers, a value model without scipy or
    without repeat buyers) is a :class:`Missing` that says why. Money is counted in
    ``currency``; valid orders in other currencies are listed in ``other_currencies`` and left
    out of the figures. ``skipped`` lists customers whose history could not be read.
    """

    as_of: datetime
    timezone: str
    customers: int
    stages: StageSection
    health: HealthSection
    loyalty: LoyaltySection
    segments: SegmentSection | Missing
    pareto: ParetoSection | Missing
    clusters: ClusterSection | Missing
    value: ValueSection | Missing
    kpis: KpiSection | Missing
    currency: str = "CNY"
    other_currencies: tuple[OtherCurrency, ...] = ()
    skipped: tuple[Skipped, ...] = ()

    def __repr__(self) -> str:
        missing = [name for name, s in self.sections().items() if isinstance(s, Missing)]
        return one_line(
            "ShopReport",
            f"{self.customers:,} customers",
            f"as of {self.as_of:%Y-%m-%d}",
            self.timezone,
            f"{len(self.sections()) - len(missing)} sections",
            f"missing {', '.join(missing)}" if missing else None,
        )

    def sections(self) -> dict[str, Any]:
        """The sections by name, in the order they are shown."""
        return {
            f.name: value
            for f in attrs.fields(ShopReport)
            if isinstance(value := getattr(self, f.name), _Section | Missing)
        }

    def to_dict(self) -> dict[str, Any]:
        """Every section and figure as plain values (JSON-ready)."""
        head: dict[str, Any] = {
            "as_of": self.as_of.isoformat(),
            "timezone": self.timezone,
            "customers": self.customers,
            "currency": self.currency,
            "other_currencies": _plain(self.other_currencies),
            "skipped": [_plain(s) for s in self.skipped],
        }
        return head | {name: s.to_dict() for name, s in self.sections().items()}

    def _repr_html_(self) -> str:
        as_of = self.as_of.astimezone(zone(self.timezone))
        title = f"<p>{self.customers:,} customers as of {as_of:%Y-%m-%d %H:%M} {self.timezone}</p>"
        return title + "".join(s._repr_html_() for s in self.sections().values())


# -- building -----------------------------------------------------------------------------------


def _missing(code: str, en: str, zh: str) -> Missing:
    return Missing(reason=Reason(code=f"report.{code}", en=en, zh=zh))


def shop_report(
    histories: Mapping[str, Sequence[Event]],
    policy: Policy,
    now: datetime,
    *,
    model: AliveModel | None = None,
    fit: bool = True,
    recent_days: int = 365,
    expiring_days: int = 30,
    top: int = 5,
    currency: str | None = None,
) -> ShopReport:
    """The report on every customer in ``histories`` at ``now``.

    Args:
        histories: each customer's events; those after ``now`` are ignored.
        policy: the shop's policy.
        now: the instant reported on; aware.
        model: the shop's fitted value model (a :class:`lifecycle.clv.ValueModel`); without
            one, and with ``fit``, one is fitted on the valid orders up to ``now``.
        recent_days: the recent window of the KPIs, beside all time.
        expiring_days: the window of the points about to expire.
        top: how many customers of the highest CLV to list.
        currency: the currency money is counted in (default: the policy's); valid orders in
            others are listed apart in :attr:`ShopReport.other_currencies`.
    """
    now = to_utc(require_aware(now, "now"))
    money = _report_currency(policy.currency if currency is None else currency)
    events = [e for h in histories.values() for e in h]
    batch = assess_all(events, policy, now, tiers=True)
    first = min((t for e in events if (t := sort_key(e)[0]) <= now), default=None)
    all_time = Window.all_time(first, now)
    at_now = Window.now(now)
    summary: CustomerSummary | Missing
    try:
        table = Transactions.from_events(events, policy=policy, at=now, currency=money)
        summary = (
            rfm_summary(table, end=now)
            if len(table)
            else _missing("no_orders", "No valid order yet.", "尚无有效订单。")
        )
    except DataError as e:
        summary = _missing(
            "no_summary", f"The orders cannot be summarised: {e}", f"无法汇总订单：{e}"
        )
    statuses = batch.status_counts()
    return ShopReport(
        as_of=now,
        timezone=policy.timezone,
        customers=len(batch),
        stages=StageSection(
            window=at_now, customers=len(batch), steps=funnel_steps(batch.stage_counts())
        ),
        health=HealthSection(window=at_now, rule="rhythm", counts=statuses),
        loyalty=_loyalty(histories, policy, now, batch.tier_counts(), expiring_days),
        segments=_segments(summary, all_time),
        pareto=_pareto(summary, all_time),
        clusters=_clusters(summary, all_time),
        value=_value(summary, histories, policy, now, model, fit, top, all_time),
        kpis=_kpis(events, policy, now, first, recent_days, money),
        currency=money,
        other_currencies=_other_currencies(events, policy, now, money),
    )


def _report_currency(value: object) -> str:
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isalpha():
        raise InvalidArgument("a three-letter ISO 4217 code such as 'CNY'", argument="currency")
    return value.upper()


def _other_currencies(
    events: Sequence[Event], policy: Policy, now: datetime, currency: str
) -> tuple[OtherCurrency, ...]:
    """The valid orders of ``events`` in currencies other than ``currency``, per currency."""
    others = sorted(
        {e.currency for e in events if isinstance(e, OrderPaid) and e.currency != currency}
    )
    out = []
    for code in others:
        table = Transactions.from_events(events, policy=policy, at=now, currency=code)
        if len(table):
            out.append(
                OtherCurrency(currency=code, orders=len(table), revenue=float(table.net.sum()))
            )
    return tuple(out)


def _loyalty(
    histories: Mapping[str, Sequence[Event]],
    policy: Policy,
    now: datetime,
    tiers: Mapping[str, int],
    expiring_days: int,
) -> LoyaltySection:
    conversions = referral_conversions(histories, policy, now)
    balance = expiring = 0
    for cid, history in histories.items():
        statement = points_ledger(history, policy, now, referrals=conversions.get(cid))
        balance += statement.balance
        expiring += statement.expiring(expiring_days).points
    return LoyaltySection(
        window=Window.now(now),
        tiers=tuple(
            TierCount(key=t.key, en=t.label_en, zh=t.label_zh, customers=tiers.get(t.key, 0))
            for t in policy.loyalty.tiers.levels
        ),
        points_outstanding=balance,
        points_expiring=expiring,
        expiring_window=Window.next(expiring_days, now),
    )


def _segments(summary: CustomerSummary | Missing, window: Window) -> SegmentSection | Missing:
    if isinstance(summary, Missing):
        return summary
    try:
        scores = rfm_scores(summary.days_since_last, summary.orders, summary.total_spend)
    except DataError as e:
        return _missing("no_segments", f"No RFM segments: {e}", f"无法进行 RFM 分群：{e}")
    segments = rfm_segments(scores)
    return SegmentSection(window=window, buyers=len(summary), counts=dict(segments.counts))


def _pareto(summary: CustomerSummary | Missing, window: Window) -> ParetoSection | Missing:
    if isinstance(summary, Missing):
        return summary
    try:
        p = pareto(summary.total_spend)
        abc = abc_classes(summary.total_spend)
    except DataError as e:
        return _missing("no_pareto", f"No 80/20 figures: {e}", f"无法计算二八法则：{e}")
    return ParetoSection(
        window=window,
        buyers=p.customers,
        revenue=p.total,
        top_fraction=p.top_fraction,
        value_share_of_top=p.value_share_of_top,
        value_fraction=p.value_fraction,
        customers_for_value=p.customers_for_value,
        customer_share_for_value=p.customer_share_for_value,
        gini=p.gini,
        abc_counts=dict(abc.counts),
        abc_value_shares=dict(abc.value_shares),
    )


def _clusters(summary: CustomerSummary | Missing, window: Window) -> ClusterSection | Missing:
    if isinstance(summary, Missing):
        return summary
    try:
        found = cluster_customers(summary.days_since_last, summary.orders, summary.total_spend)
    except DataError as e:
        return _missing(
            "no_clusters",
            f"Too few buyers who differ for clusters: {e}.",
            f"差异客户太少，无法聚类：{e}。",
        )
    keys = [g.value for g in found.groups] if found.groups else [str(i + 1) for i in range(found.k)]
    return ClusterSection(
        window=window,
        clusters=tuple(
            ValueCluster(
                key=key,
                en=en,
                zh=zh,
                customers=int(found.sizes[i]),
                orders=float(found.means[i, 1]),
                days_since_last=float(found.means[i, 0]),
                spend=float(found.means[i, 2]),
            )
            for i, (key, en, zh) in enumerate(
                zip(keys, found.names("en"), found.names("zh"), strict=True)
            )
        ),
    )


def _value(
    summary: CustomerSummary | Missing,
    histories: Mapping[str, Sequence[Event]],
    policy: Policy,
    now: datetime,
    model: AliveModel | None,
    fit: bool,
    top: int,
    window: Window,
) -> ValueSection | Missing:
    try:
        from lifecycle.clv import ValueModel
    except ImportError:
        return _missing(
            "no_clv_extra",
            "The value model needs the clv extra: pip install 'lifecycle[clv]'.",
            "价值模型需要 clv 扩展：pip install 'lifecycle[clv]'。",
        )
    if isinstance(summary, Missing):
        return summary
    fitted = model is None
    if model is None:
        if not fit:
            return _missing("no_model", "No value model fitted.", "尚未拟合价值模型。")
        try:
            model = ValueModel.fit(summary)
        except (ModelError, DataError) as e:
            return _missing(
                "no_fit", f"The value model cannot be fitted: {e}", f"无法拟合价值模型：{e}"
            )
    if not isinstance(model, ValueModel):
        name = type(model).__name__
        return _missing(
            "foreign_model",
            f"The shop's model ({name}) is not a lifecycle.clv.ValueModel.",
            f"店铺的模型（{name}）不是 lifecycle.clv.ValueModel。",
        )
    counts = dict.fromkeys(Status, 0)
    for cid in summary.customer_id.tolist():
        status = assess_status(histories[cid], policy, now, model=model).status
        if status is not None:
            counts[status] += 1
    s = summary
    alive = model.purchases.p_alive(s.frequency, s.recency, s.T)
    missing: Reason | None = None
    try:
        clv = model.clv(s.frequency, s.recency, s.T, s.monetary_value)
    except (ModelError, DataError) as e:
        clv, missing = None, Reason(code="report.no_clv", en=f"No CLV: {e}", zh=f"无法计算CLV：{e}")
    if clv is None and missing is None:
        missing = Reason(
            code="report.no_spend_model",
            en="No CLV: too few repeat buyers, or all spending alike, for the spend model.",
            zh="无法计算CLV：复购客户太少或消费额相同，无法拟合消费模型。",
        )
    best = () if clv is None else np.argsort(-clv, kind="stable")[:top].tolist()
    check = model.spend_check
    return ValueSection(
        window=window,
        model=model.variant,
        fitted=fitted,
        customers=model.customers,
        params=dict(model.purchases.params),
        spend_params=None if model.spend is None else dict(model.spend.params),
        reason=model.reason,
        boundary=model.boundary,
        candidates={c.model: c.log_likelihood for c in model.candidates},
        spend_note=None if check is None else check.describe(),
        spend_independent=check is None or check.independent,
        at_risk_p_alive=policy.status.at_risk_p_alive,
        statuses=counts,
        clv_window=Window.next(model.clv_horizon_days, now),
        top=tuple(
            CustomerValue(
                customer_id=str(s.customer_id[i]),
                orders=int(s.orders[i]),
                p_alive=float(alive[i]),
                clv=float(clv[i]),
            )
            for i in best
            if clv is not None
        ),
        clv_total=None if clv is None else float(clv.sum()),
        clv_missing=missing,
    )


def _kpis(
    events: Sequence[Event],
    policy: Policy,
    now: datetime,
    first: datetime | None,
    days: int,
    currency: str,
) -> KpiSection | Missing:
    windows = [Window.all_time(first, now)] if first is not None and first < now else []
    windows.append(Window.last(days, now))
    try:
        periods = tuple(
            KpiPeriod(
                window=w,
                kpis=kpis(events, policy, start=w.start or now, end=now, currency=currency),
            )
            for w in windows
        )
    except DataError as e:
        return _missing("no_kpis", f"No KPIs: {e}", f"无法计算关键指标：{e}")
    return KpiSection(periods=periods)


# -- per owner ----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class OwnerResult:
    """One owner's results over a window.

    Attributes:
        owner_id: the owner.
        held: customers the owner holds at the end of the window.
        taken: customers given to the owner in the window (from the pool or from another owner).
        tasks_due: owner tasks (owner channels) due in the window for customers the owner held
            when they fell due; escalations to leads are counted apart.
        done_on_time: of those, tasks done (sent to the owner, ``Contacted`` under the task's
            key) before they expired.
        overdue: of those, tasks not done and expired by the end of the window.
        escalated: tasks of the owner's customers escalated to the owner's lead in the window.
        first_purchases: customers whose first valid order was paid in the window while the
            owner held them.
        repeat_purchases: customers whose second valid order was paid in the window while the
            owner held them (they became repeat buyers).
        revenue: what valid orders paid in the window, while the owner held the customer,
            brought net of refunds, in the report's currency.
        returned: customers the owner lost to the pool in the window (reclaimed or given back).
    """

    owner_id: str
    held: int = 0
    taken: int = 0
    tasks_due: int = 0
    done_on_time: int = 0
    overdue: int = 0
    escalated: int = 0
    first_purchases: int = 0
    repeat_purchases: int = 0
    revenue: Decimal = Decimal(0)
    returned: int = 0


_OWNER_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("owner_id", "owner", "负责人"),
    ("held", "held", "持有客户"),
    ("taken", "taken", "新增"),
    ("tasks_due", "tasks due", "应跟进"),
    ("done_on_time", "on time", "按时完成"),
    ("overdue", "overdue", "逾期"),
    ("escalated", "escalated", "已升级"),
    ("first_purchases", "first buys", "首购"),
    ("repeat_purchases", "repeat buys", "复购"),
    ("revenue", "revenue", "销售额"),
    ("returned", "to pool", "退回公海"),
)


@attrs.frozen(kw_only=True, repr=False)
class OwnerReport:
    """Each owner's results over ``[since, until)``: customers held and taken, follow-up
    tasks due, done on time and overdue, conversions to first and repeat purchase, revenue and
    customers returned to the pool. ``skipped`` lists customers whose history could not be
    read."""

    since: datetime
    until: datetime
    currency: str
    owners: tuple[OwnerResult, ...]
    skipped: tuple[Skipped, ...] = ()

    def __repr__(self) -> str:
        return one_line(
            "OwnerReport",
            f"{len(self.owners):,} owners",
            f"{self.since:%Y-%m-%d} to {self.until:%Y-%m-%d}",
            f"{sum(o.held for o in self.owners):,} customers held",
            f"revenue {money(sum((o.revenue for o in self.owners), Decimal(0)), self.currency)}",
        )

    def rows(self, lang: str = "en") -> list[dict[str, Any]]:
        """One row per owner, as plain values (JSON-ready; revenue as a decimal string)."""
        del lang  # the figures read the same in every language; headers() names them
        return [
            {k: str(v) if isinstance(v, Decimal) else v for k, v in attrs.asdict(o).items()}
            for o in self.owners
        ]

    def headers(self, lang: str = "en") -> list[str]:
        """The column headings in ``lang`` (``"en"`` or ``"zh"``), in the order of :meth:`rows`."""
        return [zh if lang == "zh" else en for _, en, zh in _OWNER_COLUMNS]

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "currency": self.currency,
            "owners": self.rows(),
            "skipped": [_plain(s) for s in self.skipped],
        }

    def to_pandas(self) -> Any:
        """The rows as a DataFrame (needs pandas), one row per owner."""
        return frame(
            {
                key: [
                    float(v) if isinstance(v := getattr(o, key), Decimal) else v
                    for o in self.owners
                ]
                for key, _, _ in _OWNER_COLUMNS
            }
        )

    def _repr_html_(self) -> str:
        rows = [
            [
                money(v, self.currency) if isinstance(v := getattr(o, key), Decimal) else v
                for key, _, _ in _OWNER_COLUMNS
            ]
            for o in self.owners
        ]
        caption = f"Owners from {self.since:%Y-%m-%d} to {self.until:%Y-%m-%d}"
        return html_table(self.headers(), rows, caption=caption)


def owner_report(
    histories: Mapping[str, Sequence[Event]],
    tasks: Iterable[OutboxEntry],
    policy: Policy,
    since: datetime,
    until: datetime,
    *,
    currency: str | None = None,
) -> OwnerReport:
    """Each owner's results over ``[since, until)``.

    Args:
        histories: every customer's events (those at or after ``until`` are ignored).
        tasks: the planned messages (outbox entries); those on owner channels are the tasks.
        currency: the currency revenue is counted in (default: the policy's); orders in
            others are left out.

    Who held a customer at an instant is the pool rules' answer
    (:func:`lifecycle.owners.ownership` at that instant); a valid order is the ledger's.
    """
    since = to_utc(require_aware(since, "since"))
    until = to_utc(require_aware(until, "until"))
    if until <= since:
        raise InvalidArgument("must be after since", argument="until")
    money_ = _report_currency(policy.currency if currency is None else currency)
    end = until - timedelta(microseconds=1)
    rows: dict[str, dict[str, Any]] = {}

    def row(owner: str) -> dict[str, Any]:
        return rows.setdefault(owner, {"owner_id": owner, "revenue": Decimal(0)})

    def bump(owner: str, key: str, by: int = 1) -> None:
        r = row(owner)
        r[key] = r.get(key, 0) + by

    def owner_at(cid: str, at: datetime) -> str | None:
        return ownership(cid, histories[cid], policy.owners, at).owner_id

    skipped: list[Skipped] = []
    owned = {
        cid
        for cid, h in histories.items()
        if any(isinstance(e, OwnerAssigned) and to_utc(e.at) < until for e in h)
    }
    done: dict[str, datetime] = {}
    for cid in sorted(owned):
        history = histories[cid]
        try:
            ledger = fold(list(history), policy, end)
        except LifecycleError as error:
            skipped.append(Skipped.of(cid, error))
            continue
        now_owner = ledger.owner.owner_id if ledger.owner is not None else None
        if now_owner is not None:
            bump(now_owner, "held")
        for e in history:
            at = to_utc(e.at)
            if isinstance(e, OwnerAssigned) and at < until:
                row(e.owner_id)  # every owner so far has a row, busy in the window or not
            if not since <= at < until:
                continue
            if isinstance(e, OwnerAssigned):
                bump(e.owner_id, "taken")
            elif isinstance(e, ReturnedToPool):
                previous = owner_at(cid, at - timedelta(microseconds=1))
                if previous is not None:
                    bump(previous, "returned")
            elif isinstance(e, Contacted) and e.key is not None:
                done.setdefault(e.key, at)
        for n, order in enumerate(ledger.valid_orders()):
            paid = order.paid
            assert paid is not None  # valid orders are paid
            at = to_utc(paid.at)
            if not since <= at < until:
                continue
            holder = owner_at(cid, at)
            if holder is None:
                continue
            if n == 0:
                bump(holder, "first_purchases")
            elif n == 1:
                bump(holder, "repeat_purchases")
            if paid.currency == money_:
                row(holder)["revenue"] += order.net_amount
    for task in tasks:
        due = to_utc(task.due_at)
        if task.channel not in OWNER_CHANNELS or not since <= due < until:
            continue
        if task.customer_id not in owned:
            continue
        holder = owner_at(task.customer_id, due)
        if holder is None:
            continue
        if task.template == ESCALATION_TEMPLATE:
            bump(holder, "escalated")
            continue
        bump(holder, "tasks_due")
        limit = to_utc(task.valid_until) if task.valid_until is not None else due
        sent = done.get(task.key)
        if sent is not None and sent <= limit:
            bump(holder, "done_on_time")
        elif limit < until and (sent is None or sent > limit):
            bump(holder, "overdue")
    owners = tuple(OwnerResult(**rows[o]) for o in sorted(rows))
    return OwnerReport(
        since=since, until=until, currency=money_, owners=owners, skipped=tuple(skipped)
    )
