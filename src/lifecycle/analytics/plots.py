"""Figures for the reports (needs the ``plots`` extra: matplotlib).

Each function returns a :class:`matplotlib.figure.Figure` with labelled axes and a title, in
English (``lang="en"``) or Chinese (``lang="zh"``). Figures are built without pyplot, so they
touch no global state and work on servers without a display. Chinese needs a CJK-capable font;
when none is installed the labels fall back to English with a warning saying so.
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from lifecycle.analytics.reports import Cohorts, Funnel

__all__ = [
    "CJK_FONTS",
    "cluster_scatter",
    "cohort_heatmap",
    "funnel_chart",
    "holdout_by_frequency",
    "p_alive_matrix",
    "pareto_curve",
    "rfm_heatmap",
    "tracking_plot",
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
        raise ImportError(
            "lifecycle.analytics.plots needs matplotlib: pip install 'lifecycle[plots]'"
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

    def figure(self, size: tuple[float, float] = (7.0, 4.5)) -> Any:
        fig = _figure_class()(figsize=size, layout="constrained")
        if self.font is not None:
            fig.set_label(f"lifecycle:{self.lang}")
        return fig

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


def funnel_chart(funnel: Funnel, *, lang: str = "en") -> Any:
    """Customers who reached each stage, with the conversion from the stage before."""
    t = _Text(lang)
    fig = t.figure()
    ax = fig.add_subplot()
    labels = [s.stage.label(t.lang) for s in funnel.steps]
    reached = [s.reached for s in funnel.steps]
    y = np.arange(len(labels))[::-1]
    ax.barh(y, reached, color="#4c72b0")
    for yi, step in zip(y, funnel.steps, strict=True):
        note = f"{step.reached:,}"
        if step.conversion is not None:
            note += f"  ({step.conversion:.0%})"
        ax.text(step.reached, yi, " " + note, va="center", fontsize=8)
    ax.set_yticks(y, labels)
    ax.set_xlabel(t("customers who reached the stage", "达到该阶段的客户数"))
    ax.set_title(t("Relationship stage funnel", "客户关系阶段漏斗"))
    ax.set_xlim(0, max([*reached, 1]) * 1.25)
    t.style(ax)
    return fig


def cohort_heatmap(cohorts: Cohorts, *, lang: str = "en") -> Any:
    """Retention by first-order month (rows) and months since (columns)."""
    t = _Text(lang)
    fig = t.figure((8.0, max(3.0, 0.3 * len(cohorts.cohorts) + 1.5)))
    ax = fig.add_subplot()
    image = ax.imshow(
        np.ma.masked_invalid(cohorts.rates), aspect="auto", cmap="Blues", vmin=0, vmax=1
    )
    ax.set_yticks(np.arange(len(cohorts.cohorts)), [str(m) for m in cohorts.cohorts])
    ax.set_xlabel(t("months since first order", "首单后月数"))
    ax.set_ylabel(t("first-order month", "首单月份"))
    ax.set_title(t("Cohort retention", "同期群留存率"))
    fig.colorbar(image, ax=ax, label=t("share who ordered", "再次下单比例"))
    t.style(ax)
    return fig


def pareto_curve(values: npt.ArrayLike, *, lang: str = "en") -> Any:
    """Cumulative share of revenue against the share of customers, best customers first."""
    t = _Text(lang)
    v = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    if v.size == 0 or not np.isfinite(v).all() or (v < 0).any() or v.sum() <= 0:
        raise ValueError("values must be finite, non-negative and not all zero")
    customers = np.arange(1, v.size + 1) / v.size
    revenue = np.cumsum(v) / v.sum()
    fig = t.figure()
    ax = fig.add_subplot()
    ax.plot(np.r_[0, customers], np.r_[0, revenue], color="#4c72b0")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    top = revenue[max(0, int(np.ceil(0.2 * v.size)) - 1)]
    ax.axvline(0.2, linestyle="--", color="#dd8452")
    ax.annotate(
        t(f"top 20%: {top:.0%} of revenue", f"前20%客户贡献{top:.0%}收入"),
        (0.2, top),
        xytext=(0.3, top * 0.85),
        arrowprops={"arrowstyle": "->"},
    )
    ax.set_xlabel(t("share of customers (best first)", "客户占比（价值从高到低）"))
    ax.set_ylabel(t("share of revenue", "收入占比"))
    ax.set_title(t("Pareto curve", "帕累托曲线（二八法则）"))
    t.style(ax)
    return fig


def rfm_heatmap(
    recency_score: npt.ArrayLike,
    frequency_score: npt.ArrayLike,
    value: npt.ArrayLike | None = None,
    *,
    bins: int = 5,
    lang: str = "en",
) -> Any:
    """Customers (or mean ``value``) by recency score (rows) and frequency score (columns)."""
    t = _Text(lang)
    r = np.asarray(recency_score, dtype=np.int64)
    f = np.asarray(frequency_score, dtype=np.int64)
    if r.shape != f.shape or r.ndim != 1:
        raise ValueError("recency and frequency scores must be 1-D arrays of one length")
    if ((r < 1) | (r > bins) | (f < 1) | (f > bins)).any():
        raise ValueError(f"scores must lie in 1..{bins}")
    cells = (r - 1) * bins + (f - 1)
    counts = np.bincount(cells, minlength=bins * bins).reshape(bins, bins).astype(np.float64)
    if value is None:
        grid, label = counts, t("customers", "客户数")
    else:
        v = np.asarray(value, dtype=np.float64)
        sums = np.bincount(cells, weights=v, minlength=bins * bins).reshape(bins, bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            grid = np.where(counts > 0, sums / counts, np.nan)
        label = t("mean value", "平均价值")
    fig = t.figure((6.0, 5.0))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(grid), origin="lower", cmap="YlOrRd")
    ticks = np.arange(bins)
    ax.set_xticks(ticks, [str(i + 1) for i in ticks])
    ax.set_yticks(ticks, [str(i + 1) for i in ticks])
    ax.set_xlabel(t("frequency score", "频次得分 F"))
    ax.set_ylabel(t("recency score", "近度得分 R"))
    ax.set_title(t("RFM: customers by recency and frequency", "RFM：按近度与频次分布"))
    fig.colorbar(image, ax=ax, label=label)
    t.style(ax)
    return fig


def cluster_scatter(
    frequency: npt.ArrayLike,
    monetary: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    names: dict[int, str] | None = None,
    lang: str = "en",
) -> Any:
    """Customers by orders and spend (log scales), coloured by cluster."""
    t = _Text(lang)
    x = np.asarray(frequency, dtype=np.float64)
    y = np.asarray(monetary, dtype=np.float64)
    k = np.asarray(labels)
    if not x.shape == y.shape == k.shape or x.ndim != 1:
        raise ValueError("frequency, monetary and labels must be 1-D arrays of one length")
    fig = t.figure()
    ax = fig.add_subplot()
    for cluster in np.unique(k):
        rows = k == cluster
        name = (names or {}).get(int(cluster), str(cluster))
        ax.scatter(x[rows] + 1, y[rows] + 1, s=6, alpha=0.5, label=f"{name} ({int(rows.sum()):,})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(t("orders + 1", "订单数 + 1"))
    ax.set_ylabel(t("spend + 1", "消费额 + 1"))
    ax.set_title(t("Customer clusters", "客户聚类"))
    legend = ax.legend(markerscale=3, fontsize=8)
    if t.font is not None:
        for text in legend.get_texts():
            text.set_fontfamily(t.font)
    t.style(ax)
    return fig


def p_alive_matrix(
    model: Any,
    *,
    T: float,
    max_frequency: int = 20,
    points: int = 60,
    lang: str = "en",
) -> Any:
    """P(alive) by frequency (rows) and recency (columns) for customers observed for ``T``.

    ``model`` is anything with a vectorised ``p_alive(frequency, recency, T)`` (a fitted
    ``lifecycle.clv`` purchase model); ``T`` is in the model's time unit.
    """
    t = _Text(lang)
    if not T > 0 or max_frequency < 1 or points < 2:
        raise ValueError("T must be > 0, max_frequency >= 1 and points >= 2")
    frequency = np.arange(max_frequency + 1, dtype=np.float64)
    recency = np.linspace(0.0, T, points)
    f, r = np.meshgrid(frequency, recency, indexing="ij")
    grid = np.asarray(model.p_alive(f.ravel(), np.where(f.ravel() > 0, r.ravel(), 0.0), T))
    grid = grid.reshape(f.shape)
    grid[0, 1:] = np.nan  # no repeat purchase: recency is 0 by definition
    fig = t.figure((7.0, 5.0))
    ax = fig.add_subplot()
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
    fig.colorbar(image, ax=ax, label=t("probability still active", "仍活跃的概率"))
    t.style(ax)
    return fig


def holdout_by_frequency(check: Any, *, lang: str = "en") -> Any:
    """Mean repeat purchases in the holdout by calibration frequency, actual and predicted.

    ``check`` is a :class:`lifecycle.clv.HoldoutCheck` (anything with ``buckets`` of ``label``,
    ``actual``, ``predicted`` and a ``model`` name).
    """
    t = _Text(lang)
    labels = [b.label for b in check.buckets]
    x = np.arange(len(labels))
    fig = t.figure()
    ax = fig.add_subplot()
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
    legend = ax.legend()
    if t.font is not None:
        for text in legend.get_texts():
            text.set_fontfamily(t.font)
    t.style(ax)
    return fig


def tracking_plot(check: Any, *, step_days: int = 7, lang: str = "en") -> Any:
    """Cumulative repeat purchases of the cohort over the calibration and holdout periods,
    actual and predicted, every ``step_days`` days, with the end of calibration marked.

    ``check`` is a :class:`lifecycle.clv.HoldoutCheck` (its ``tracking`` curve).
    """
    t = _Text(lang)
    if step_days < 1:
        raise ValueError("step_days must be >= 1")
    curve = check.tracking
    rows = np.arange(step_days - 1, len(curve.day), step_days)
    fig = t.figure()
    ax = fig.add_subplot()
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
    legend = ax.legend()
    if t.font is not None:
        for text in legend.get_texts():
            text.set_fontfamily(t.font)
    fig.autofmt_xdate()
    t.style(ax)
    return fig
