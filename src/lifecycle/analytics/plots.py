"""Figures of the analytics results (needs the ``plots`` extra: matplotlib).

Each function takes a result object (a :class:`~lifecycle.analytics.Funnel`,
:class:`~lifecycle.analytics.Cohorts`, :class:`~lifecycle.analytics.RFMScores`,
:class:`~lifecycle.analytics.ParetoSummary`, :class:`~lifecycle.analytics.CustomerClusters`, a
fitted value model, the shop report) and returns the :class:`matplotlib.axes.Axes` it drew on,
with labelled axes and a title in English (``lang="en"``) or Chinese (``lang="zh"``). Pass
``ax=`` to draw into a figure of your own (``fig, ax = plt.subplots()``); without it each
function makes a new figure (``ax.figure``) without pyplot, so it touches no global state and
works on servers without a display. Chinese needs a CJK-capable font; when none is installed
the labels fall back to English with a warning saying so.
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from lifecycle.analytics.reports import Cohorts
from lifecycle.analytics.segments import CustomerClusters, ParetoSummary, RFMScores
from lifecycle.analytics.summary import CustomerSummary
from lifecycle.analytics.table import Transactions
from lifecycle.errors import DataError, MissingExtra

__all__ = [
    "CJK_FONTS",
    "cluster_scatter",
    "cohort_heatmap",
    "funnel_chart",
    "holdout_by_frequency",
    "p_alive_matrix",
    "pareto_curve",
    "rfm_heatmap",
    "tier_mix",
    "tracking_plot",
    "value_tracking",
]

#: Font families tried, in order, for Chinese labels.
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Heiti SC",
    "Arial Unicode MS",
)


class FontFallbackWarning(UserWarning):
    """Chinese labels were asked for, but no CJK font is installed: English is drawn instead."""


def _figure_class() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise MissingExtra(
            package="matplotlib", extra="plots", feature="lifecycle.analytics.plots"
        ) from e
    return Figure


@cache
def cjk_font() -> str | None:
    """The first installed font family from :data:`CJK_FONTS`, or None."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


class _Text:
    """Picks the language and font of a figure's labels."""

    def __init__(self, lang: str):
        if lang not in ("en", "zh"):
            raise ValueError(f"lang must be 'en' or 'zh', not {lang!r}")
        self.font = cjk_font() if lang == "zh" else None
        if lang == "zh" and self.font is None:
            warnings.warn(
                "no CJK font installed (tried " + ", ".join(CJK_FONTS[:3]) + ", ...); "
                "labels are drawn in English",
                FontFallbackWarning,
                stacklevel=3,
            )
        self.lang = "zh" if self.font is not None else "en"

    def __call__(self, en: str, zh: str) -> str:
        return zh if self.lang == "zh" else en

    def axes(self, ax: Any, size: tuple[float, float] = (7.0, 4.5)) -> Any:
        """``ax``, or the axes of a new figure of ``size`` inches."""
        if ax is not None:
            return ax
        fig = _figure_class()(figsize=size, layout="constrained")
        if self.font is not None:
            fig.set_label(f"lifecycle:{self.lang}")
        return fig.add_subplot()

    def legend(self, ax: Any) -> None:
        """The axes' legend, in the labels' font."""
        legend = ax.legend()
        if self.font is not None:
            for text in legend.get_texts():
                text.set_fontfamily(self.font)

    def style(self, ax: Any) -> None:
        if self.font is None:
            return
        for item in (
            ax.title,
            ax.xaxis.label,
            ax.yaxis.label,
            *ax.get_xticklabels(),
            *ax.get_yticklabels(),
        ):
            item.set_fontfamily(self.font)


def _need(value: object, kind: type | tuple[type, ...], hint: str) -> None:
    if not isinstance(value, kind):
        raise DataError(f"expected {hint}, got {type(value).__name__}", column="result")


def funnel_chart(funnel: Any, *, ax: Any = None, lang: str = "en") -> Any:
    """Customers who reached each stage, with the conversion from the stage before.

    ``funnel`` is a :class:`~lifecycle.analytics.Funnel` or the report's stage section.
    """
    steps = getattr(funnel, "steps", None)
    if not isinstance(steps, tuple) or not steps:
        raise DataError(
            "expected a Funnel (lifecycle.analytics.stage_funnel) or ShopReport.stages",
            column="result",
        )
    t = _Text(lang)
    ax = t.axes(ax)
    labels = [s.stage.label(t.lang) for s in steps]
    reached = [s.reached for s in steps]
    y = np.arange(len(labels))[::-1]
    ax.barh(y, reached, color="#4c72b0")
    for yi, step in zip(y, steps, strict=True):
        note = f"{step.reached:,}"
        if step.conversion is not None:
            note += f"  ({step.conversion:.0%})"
        ax.text(step.reached, yi, " " + note, va="center", fontsize=8)
    ax.set_yticks(y, labels)
    ax.set_xlabel(t("customers who reached the stage", "达到该阶段的客户数"))
    ax.set_title(t("Relationship stage funnel", "客户关系阶段漏斗"))
    ax.set_xlim(0, max([*reached, 1]) * 1.25)
    t.style(ax)
    return ax


def cohort_heatmap(cohorts: Cohorts, *, ax: Any = None, lang: str = "en") -> Any:
    """Retention by first-order month (rows) and months since (columns)."""
    _need(cohorts, Cohorts, "Cohorts (lifecycle.analytics.cohort_retention)")
    t = _Text(lang)
    ax = t.axes(ax, (8.0, max(3.0, 0.3 * len(cohorts.cohorts) + 1.5)))
    image = ax.imshow(
        np.ma.masked_invalid(cohorts.rates), aspect="auto", cmap="Blues", vmin=0, vmax=1
    )
    ax.set_yticks(np.arange(len(cohorts.cohorts)), [str(m) for m in cohorts.cohorts])
    ax.set_xlabel(t("months since first order", "首单后月数"))
    ax.set_ylabel(t("first-order month", "首单月份"))
    ax.set_title(t("Cohort retention", "同期群留存率"))
    ax.figure.colorbar(image, ax=ax, label=t("share who ordered", "再次下单比例"))
    t.style(ax)
    return ax


def pareto_curve(pareto: ParetoSummary, *, ax: Any = None, lang: str = "en") -> Any:
    """Cumulative share of value against the share of customers, best customers first, with
    the top share marked."""
    _need(pareto, ParetoSummary, "a ParetoSummary (lifecycle.analytics.pareto)")
    t = _Text(lang)
    ax = t.axes(ax)
    ax.plot(pareto.curve_customers, pareto.curve_value, color="#4c72b0")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    top, share = pareto.top_fraction, pareto.value_share_of_top
    ax.axvline(top, linestyle="--", color="#dd8452")
    ax.annotate(
        t(
            f"top {top:.0%}: {share:.0%} of value (Gini {pareto.gini:.2f})",
            f"前{top:.0%}客户贡献{share:.0%}价值（基尼系数{pareto.gini:.2f}）",
        ),
        (top, share),
        xytext=(min(top + 0.1, 0.6), share * 0.85),
        arrowprops={"arrowstyle": "->"},
    )
    ax.set_xlabel(t("share of customers (best first)", "客户占比（价值从高到低）"))
    ax.set_ylabel(t("share of value", "价值占比"))
    ax.set_title(t("Pareto curve", "帕累托曲线（二八法则）"))
    t.style(ax)
    return ax


def rfm_heatmap(
    scores: RFMScores,
    value: npt.ArrayLike | None = None,
    *,
    ax: Any = None,
    lang: str = "en",
) -> Any:
    """The RFM grid: customers (or the mean of ``value``, one per customer in the order
    scored) by recency score (rows) and frequency score (columns)."""
    _need(scores, RFMScores, "RFMScores (lifecycle.analytics.rfm_scores)")
    t = _Text(lang)
    bins = scores.bins
    counts = scores.grid().astype(np.float64)
    if value is None:
        grid, label = counts, t("customers", "客户数")
    else:
        v = np.asarray(value, dtype=np.float64)
        if v.shape != (len(scores),):
            raise DataError(f"needs one value per customer ({len(scores)})", column="value")
        cells = (scores.r.astype(np.int64) - 1) * bins + (scores.f.astype(np.int64) - 1)
        sums = np.bincount(cells, weights=v, minlength=bins * bins).reshape(bins, bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            grid = np.where(counts > 0, sums / counts, np.nan)
        label = t("mean value", "平均价值")
    ax = t.axes(ax, (6.0, 5.0))
    image = ax.imshow(np.ma.masked_invalid(grid), origin="lower", cmap="YlOrRd")
    ticks = np.arange(bins)
    ax.set_xticks(ticks, [str(i + 1) for i in ticks])
    ax.set_yticks(ticks, [str(i + 1) for i in ticks])
    ax.set_xlabel(t("frequency score", "频次得分 F"))
    ax.set_ylabel(t("recency score", "近度得分 R"))
    ax.set_title(t("RFM: customers by recency and frequency", "RFM：按近度与频次分布"))
    ax.figure.colorbar(image, ax=ax, label=label)
    t.style(ax)
    return ax


def cluster_scatter(
    clusters: CustomerClusters,
    summary: CustomerSummary | None = None,
    *,
    ax: Any = None,
    lang: str = "en",
) -> Any:
    """The clusters by frequency and spend (log scales): each cluster's mean as a labelled
    marker sized by its members and, with the ``summary`` the clusters were found on (one row
    per customer, in the same order), every customer coloured by cluster."""
    _need(clusters, CustomerClusters, "CustomerClusters (lifecycle.analytics.cluster_customers)")
    t = _Text(lang)
    ax = t.axes(ax)
    names = clusters.names(t.lang)
    colours = [f"C{i % 10}" for i in range(clusters.k)]
    if summary is not None:
        _need(summary, CustomerSummary, "a CustomerSummary")
        if len(summary) != len(clusters):
            raise DataError(
                f"has {len(summary)} customers, the clusters {len(clusters)}", column="summary"
            )
        for i in range(clusters.k):
            rows = clusters.labels == i
            ax.scatter(
                summary.orders[rows] + 1,
                summary.total_spend[rows] + 1,
                s=5,
                alpha=0.35,
                color=colours[i],
            )
    sizes = clusters.sizes.astype(np.float64)
    for i in range(clusters.k):
        _, frequency, monetary = clusters.means[i]
        ax.scatter(
            frequency + 1,
            monetary + 1,
            s=60 + 600 * sizes[i] / max(sizes.sum(), 1),
            color=colours[i],
            edgecolor="black",
            label=f"{names[i]} ({int(sizes[i]):,})",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(t("frequency + 1", "购买频次 + 1"))
    ax.set_ylabel(t("spend + 1", "消费额 + 1"))
    ax.set_title(t("Customer clusters (means marked)", "客户聚类（标记为均值）"))
    legend = ax.legend(fontsize=8)
    if t.font is not None:
        for text in legend.get_texts():
            text.set_fontfamily(t.font)
    t.style(ax)
    return ax


def _purchase_model(model: Any) -> Any:
    """The purchase model in days of a :class:`~lifecycle.clv.ValueModel` or a fitted
    BG/NBD-family model."""
    purchases = getattr(model, "purchases", model)
    if not (hasattr(purchases, "p_alive") and hasattr(purchases, "in_days")):
        raise DataError(
            "expected a fitted lifecycle.clv model (ValueModel or BetaGeoModel)", column="model"
        )
    return purchases


def p_alive_matrix(
    model: Any,
    *,
    T: float,
    max_frequency: int = 20,
    points: int = 60,
    ax: Any = None,
    lang: str = "en",
) -> Any:
    """P(alive) by frequency (rows) and recency (columns) for customers observed for ``T``.

    ``model`` is a fitted :class:`~lifecycle.clv.ValueModel` (``T`` in days) or a
    :class:`~lifecycle.clv.BetaGeoModel` (``T`` in the model's time unit).
    """
    purchases = _purchase_model(model)
    t = _Text(lang)
    if not T > 0 or max_frequency < 1 or points < 2:
        raise DataError("T must be > 0, max_frequency >= 1 and points >= 2", column="T")
    frequency = np.arange(max_frequency + 1, dtype=np.float64)
    recency = np.linspace(0.0, T, points)
    f, r = np.meshgrid(frequency, recency, indexing="ij")
    grid = np.asarray(purchases.p_alive(f.ravel(), np.where(f.ravel() > 0, r.ravel(), 0.0), T))
    grid = grid.reshape(f.shape)
    grid[0, 1:] = np.nan  # no repeat purchase: recency is 0 by definition
    ax = t.axes(ax, (7.0, 5.0))
    image = ax.imshow(
        np.ma.masked_invalid(grid),
        origin="lower",
        aspect="auto",
        cmap="RdYlGn",
        vmin=0,
        vmax=1,
        extent=(0.0, T, -0.5, max_frequency + 0.5),
    )
    ax.set_xlabel(t("recency (time from first to last purchase)", "最近购买距首购的时间"))
    ax.set_ylabel(t("frequency (repeat purchases)", "重复购买次数"))
    ax.set_title(t(f"P(alive) of customers observed for {T:g}", f"观察期为{T:g}时的存活概率"))
    ax.figure.colorbar(image, ax=ax, label=t("probability still active", "仍活跃的概率"))
    t.style(ax)
    return ax


def tier_mix(report: Any, *, ax: Any = None, lang: str = "en") -> Any:
    """Customers per loyalty tier, lowest tier first, from the shop report (or its loyalty
    section)."""
    loyalty = getattr(report, "loyalty", report)
    tiers = getattr(loyalty, "tiers", None)
    if not isinstance(tiers, tuple):
        raise DataError("expected a ShopReport or its loyalty section", column="result")
    t = _Text(lang)
    ax = t.axes(ax)
    counts = [tier.customers for tier in tiers]
    total = max(sum(counts), 1)
    x = np.arange(len(tiers))
    ax.bar(x, counts, color="#c44e52")
    for xi, n in zip(x, counts, strict=True):
        ax.text(xi, n, f"{n:,} ({n / total:.0%})", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [tier.label(t.lang) for tier in tiers])
    ax.set_ylabel(t("customers", "客户数"))
    ax.set_title(
        t(
            f"Tier mix ({loyalty.points_outstanding:,} points outstanding)",
            f"会员等级分布（未用积分{loyalty.points_outstanding:,}）",
        )
    )
    ax.set_ylim(0, max([*counts, 1]) * 1.15)
    t.style(ax)
    return ax


def value_tracking(model: Any, table: Transactions, *, ax: Any = None, lang: str = "en") -> Any:
    """Repeat purchases day by day, as they happened and as the fitted purchase model expects
    them (cumulative): the tracking plot of Fader, Hardie & Lee that shows whether the model
    follows the shop's own history.

    The expected curve sums, over the customers' first-purchase days, the purchases a new
    customer makes in the days since (:meth:`~lifecycle.clv.BetaGeoModel.expected_purchases_new`).
    A repeat purchase is a later purchase day of a customer, as the model counts them.
    """
    _need(table, Transactions, "Transactions (lifecycle.analytics.Transactions)")
    purchases = _purchase_model(model).in_days()
    if len(table) == 0:
        raise DataError("no transactions to track", column="table")
    _, codes = np.unique(table.customer_id, return_inverse=True)
    pairs = np.unique(np.stack([codes.astype(np.int64), table.day.astype(np.int64)]), axis=1)
    first = np.full(int(codes.max()) + 1, np.iinfo(np.int64).max)
    np.minimum.at(first, pairs[0], pairs[1])
    start, end = int(first.min()), int(pairs[1].max())
    span = end - start + 1
    repeat = pairs[1][pairs[1] > first[pairs[0]]]
    actual = np.cumsum(np.bincount(repeat - start, minlength=span))
    births = np.bincount(first - start, minlength=span).astype(np.float64)
    per_customer = np.asarray(purchases.expected_purchases_new(np.arange(span, dtype=np.float64)))
    expected = np.convolve(births, per_customer)[:span]
    days = (np.arange(span) + start).astype("datetime64[D]")
    t = _Text(lang)
    ax = t.axes(ax, (8.0, 4.5))
    ax.plot(days, actual, color="#4c72b0", label=t("actual", "实际"))
    ax.plot(days, expected, color="#dd8452", linestyle="--", label=t("model", "模型"))
    ax.set_xlabel(t("day", "日期"))
    ax.set_ylabel(t("cumulative repeat purchases", "累计重复购买次数"))
    ax.set_title(t("Tracking: actual and expected repeat purchases", "跟踪：实际与预期重复购买"))
    t.legend(ax)
    ax.tick_params(axis="x", labelrotation=30)
    t.style(ax)
    return ax


def holdout_by_frequency(check: Any, *, ax: Any = None, lang: str = "en") -> Any:
    """Mean repeat purchases in the holdout by calibration frequency, actual and predicted.

    ``check`` is a :class:`lifecycle.clv.HoldoutCheck` (anything with ``buckets`` of ``label``,
    ``actual``, ``predicted`` and a ``model`` name).
    """
    t = _Text(lang)
    labels = [b.label for b in check.buckets]
    x = np.arange(len(labels))
    ax = t.axes(ax)
    ax.plot(
        x, [b.actual for b in check.buckets], marker="o", color="#4c72b0", label=t("actual", "实际")
    )
    ax.plot(
        x,
        [b.predicted for b in check.buckets],
        marker="s",
        linestyle="--",
        color="#dd8452",
        label=t(f"predicted ({check.model})", f"预测（{check.model}）"),
    )
    ax.set_xticks(x, labels)
    ax.set_xlabel(t("repeat purchases in the calibration period", "校准期内重复购买次数"))
    ax.set_ylabel(t("mean repeat purchases in the holdout", "验证期平均重复购买次数"))
    ax.set_title(t("Holdout purchases by calibration frequency", "按校准期频次的验证期购买"))
    t.legend(ax)
    t.style(ax)
    return ax


def tracking_plot(check: Any, *, step_days: int = 7, ax: Any = None, lang: str = "en") -> Any:
    """Cumulative repeat purchases of the cohort over the calibration and holdout periods,
    actual and predicted, every ``step_days`` days, with the end of calibration marked.

    ``check`` is a :class:`lifecycle.clv.HoldoutCheck` (its ``tracking`` curve).
    """
    t = _Text(lang)
    if step_days < 1:
        raise DataError("step_days must be >= 1", column="step_days")
    curve = check.tracking
    rows = np.arange(step_days - 1, len(curve.day), step_days)
    ax = t.axes(ax)
    ax.plot(curve.day[rows], curve.actual[rows], color="#4c72b0", label=t("actual", "实际"))
    ax.plot(
        curve.day[rows],
        curve.predicted[rows],
        linestyle="--",
        color="#dd8452",
        label=t(f"predicted ({check.model})", f"预测（{check.model}）"),
    )
    ax.axvline(curve.calibration_end, linestyle=":", color="grey")
    ax.set_xlabel(t("date", "日期"))
    ax.set_ylabel(t("cumulative repeat purchases", "累计重复购买次数"))
    ax.set_title(t("Tracking: calibration, then holdout", "累计购买跟踪：校准期与验证期"))
    t.legend(ax)
    ax.figure.autofmt_xdate()
    t.style(ax)
    return ax
