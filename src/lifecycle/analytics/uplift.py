"""Uplift of a treated group over a control group: the difference, its interval and p-value.

Pure numpy and the standard library (no scipy): conversion (the share who ordered) is compared
with Newcombe's hybrid score interval and the two-proportion z-test, or Fisher's exact test when
an expected count is below 5; orders and revenue per customer with Welch's t (unequal
variances), whose Student t distribution is computed here from the regularised incomplete beta.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from statistics import NormalDist
from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt

from lifecycle._display import html_table, one_line, pandas
from lifecycle.reasons import Reason, Skipped

__all__ = ["Uplift", "UpliftMetric", "fisher_exact", "student_t_sf", "uplift"]

_NORMAL: Final = NormalDist()
#: Below this many customers in a group, or this many who ordered, the report warns.
MIN_GROUP: Final = 30
MIN_CONVERSIONS: Final = 5


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def student_t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom (the normal's for huge ``df``)."""
    if math.isinf(df) or df > 1e7:
        return 1.0 - _NORMAL.cdf(t)
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def _t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile (p > 0.5) of Student's t, by bisection on :func:`student_t_sf`."""
    lo, hi = 0.0, max(10.0, 2 * _NORMAL.inv_cdf(p))
    while student_t_sf(hi, df) > 1 - p:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if student_t_sf(mid, df) > 1 - p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2


def fisher_exact(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of Fisher's exact test for x1 of n1 against x2 of n2: the probability,
    with the margins fixed, of a table no more likely than the one observed."""
    total, hits = n1 + n2, x1 + x2
    lo, hi = max(0, hits - n2), min(hits, n1)

    def logp(k: int) -> float:
        return (
            math.lgamma(n1 + 1)
            - math.lgamma(k + 1)
            - math.lgamma(n1 - k + 1)
            + math.lgamma(n2 + 1)
            - math.lgamma(hits - k + 1)
            - math.lgamma(n2 - hits + k + 1)
            - math.lgamma(total + 1)
            + math.lgamma(hits + 1)
            + math.lgamma(total - hits + 1)
        )

    observed = logp(x1)
    p = sum(math.exp(logp(k)) for k in range(lo, hi + 1) if logp(k) <= observed + 1e-7)
    return min(1.0, p)


def _wilson(x: int, n: int, z: float) -> tuple[float, float]:
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@attrs.frozen(kw_only=True)
class UpliftMetric:
    """One measure compared: the treated and control values, the difference (treated minus
    control), its interval at the report's level, the p-value and the test that gave it."""

    name: str
    treated: float
    control: float
    difference: float
    low: float
    high: float
    p_value: float
    test: str

    @property
    def relative(self) -> float | None:
        """The difference as a share of the control value (``None`` when that is 0)."""
        return None if self.control == 0 else self.difference / self.control


def _proportions(x1: int, n1: int, x2: int, n2: int, alpha: float) -> UpliftMetric:
    z = _NORMAL.inv_cdf(1 - alpha / 2)
    p1, p2 = x1 / n1, x2 / n2
    d = p1 - p2
    l1, u1 = _wilson(x1, n1, z)
    l2, u2 = _wilson(x2, n2, z)
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    pooled = (x1 + x2) / (n1 + n2)
    expected = min(pooled * n1, pooled * n2, (1 - pooled) * n1, (1 - pooled) * n2)
    if expected < 5:
        p, test = fisher_exact(x1, n1, x2, n2), "Fisher's exact test"
    else:
        se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        p = 2 * (1 - _NORMAL.cdf(abs(d) / se0)) if se0 > 0 else 1.0
        test = "two-proportion z-test"
    return UpliftMetric(
        name="conversion",
        treated=p1,
        control=p2,
        difference=d,
        low=low,
        high=high,
        p_value=p,
        test=test + ", Newcombe interval",
    )


def _means(
    name: str, a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], alpha: float
) -> UpliftMetric:
    m1, m2 = float(a.mean()), float(b.mean())
    v1 = float(a.var(ddof=1)) / a.size if a.size > 1 else 0.0
    v2 = float(b.var(ddof=1)) / b.size if b.size > 1 else 0.0
    se = math.sqrt(v1 + v2)
    d = m1 - m2
    if se == 0:
        return UpliftMetric(
            name=name, treated=m1, control=m2, difference=d, low=d, high=d,
            p_value=1.0 if d == 0 else 0.0, test="Welch's t-test",
        )  # fmt: skip
    parts = [v**2 / (n - 1) for v, n in ((v1, a.size), (v2, b.size)) if n > 1 and v > 0]
    df = (v1 + v2) ** 2 / sum(parts) if parts else math.inf
    t = d / se
    q = _t_quantile(1 - alpha / 2, df)
    return UpliftMetric(
        name=name,
        treated=m1,
        control=m2,
        difference=d,
        low=d - q * se,
        high=d + q * se,
        p_value=min(1.0, 2 * student_t_sf(abs(t), df)),
        test="Welch's t-test",
    )


def _warn(code: str, en: str, zh: str) -> Reason:
    return Reason(code=f"experiment.{code}", en=en, zh=zh)


@attrs.frozen(kw_only=True)
class Uplift:
    """What a rule's follow-ups changed: treated against control customers over a window.

    Attributes:
        rule: the rule measured.
        treated, control: how many customers each group holds.
        metrics: conversion, orders per customer and revenue per customer.
        alpha: one minus the intervals' level.
        detectable: the smallest conversion difference the groups detect with 80% power at
            ``alpha`` (two-sided), given the control's rate.
        warnings: why the result may not tell (groups too small, too few who ordered).
        currency: the revenue's currency.
        since, until: the window, as ISO 8601 text (empty when the arrays came without one).
        skipped: customers whose history could not be read or replayed, left out.
    """

    rule: str
    treated: int
    control: int
    metrics: tuple[UpliftMetric, ...]
    alpha: float
    detectable: float
    warnings: tuple[Reason, ...] = ()
    currency: str = ""
    since: str = ""
    until: str = ""
    skipped: tuple[Skipped, ...] = ()

    def metric(self, name: str) -> UpliftMetric:
        """The metric called ``name`` (``"conversion"``, ``"orders"``, ``"revenue"``)."""
        return next(m for m in self.metrics if m.name == name)

    def rows(self) -> list[dict[str, Any]]:
        """One row per metric, as plain values (JSON-ready)."""
        return [
            {
                "metric": m.name,
                "treated": m.treated,
                "control": m.control,
                "difference": m.difference,
                "low": m.low,
                "high": m.high,
                "p_value": m.p_value,
                "test": m.test,
            }
            for m in self.metrics
        ]

    def to_dict(self) -> dict[str, Any]:
        """The whole result as plain values."""
        return {
            "rule": self.rule,
            "since": self.since,
            "until": self.until,
            "treated": self.treated,
            "control": self.control,
            "alpha": self.alpha,
            "detectable_conversion_difference": self.detectable,
            "currency": self.currency,
            "metrics": self.rows(),
            "warnings": [w.en for w in self.warnings],
            "skipped": [str(s) for s in self.skipped],
        }

    def to_pandas(self) -> Any:
        """:meth:`rows` as a DataFrame (needs pandas)."""
        return pandas().DataFrame(self.rows())

    def __repr__(self) -> str:
        c = self.metric("conversion")
        return one_line(
            "Uplift",
            self.rule,
            f"{self.treated:,} treated / {self.control:,} control",
            f"conversion {c.difference:+.1%} [{c.low:+.1%}, {c.high:+.1%}] p={c.p_value:.3g}",
            "too small to tell" if self.warnings else None,
        )

    def _repr_html_(self) -> str:
        level = f"{1 - self.alpha:.0%}"
        head = ("metric", "treated", "control", "difference", f"{level} interval", "p", "test")
        cells = [
            (
                m.name,
                f"{m.treated:.4g}",
                f"{m.control:.4g}",
                f"{m.difference:+.4g}",
                f"[{m.low:+.4g}, {m.high:+.4g}]",
                f"{m.p_value:.3g}",
                m.test,
            )
            for m in self.metrics
        ]
        caption = f"{self.rule}: {self.treated:,} treated, {self.control:,} control"
        html = html_table(head, cells, caption=caption)
        if self.warnings:
            html += "".join(f"<p>{escape(w.en)}</p>" for w in self.warnings)
        return html


def _floats(values: Sequence[float] | npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    out = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(out)) or np.any(out < 0):
        raise ValueError(f"{name} must be finite and >= 0")
    return out


def uplift(
    treated_orders: npt.ArrayLike,
    treated_revenue: npt.ArrayLike,
    control_orders: npt.ArrayLike,
    control_revenue: npt.ArrayLike,
    *,
    rule: str = "",
    alpha: float = 0.05,
    currency: str = "",
    since: str = "",
    until: str = "",
) -> Uplift:
    """Compare per-customer orders and revenue of a treated and a control group.

    Conversion is the share with at least one order (Newcombe's hybrid score interval for the
    difference; the pooled two-proportion z-test, or Fisher's exact test when an expected
    count is below 5). Orders and revenue per customer use Welch's t: revenue is heavy-tailed,
    so its interval is trustworthy only with groups of some hundreds (see docs/experiments.md).

    Raises:
        ValueError: an empty group, negative or non-finite values, or ``alpha`` outside (0, 1).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    to, tr = _floats(treated_orders, "treated_orders"), _floats(treated_revenue, "treated_revenue")
    co, cr = _floats(control_orders, "control_orders"), _floats(control_revenue, "control_revenue")
    if to.size != tr.size or co.size != cr.size:
        raise ValueError("orders and revenue must give one value per customer")
    if to.size == 0 or co.size == 0:
        raise ValueError("each group needs at least one customer")
    n1, n2 = int(to.size), int(co.size)
    x1, x2 = int((to > 0).sum()), int((co > 0).sum())
    metrics = (
        _proportions(x1, n1, x2, n2, alpha),
        _means("orders", to, co, alpha),
        _means("revenue", tr, cr, alpha),
    )
    z = _NORMAL.inv_cdf(1 - alpha / 2) + _NORMAL.inv_cdf(0.8)
    base = x2 / n2
    spread = max(base * (1 - base), 1 / (4 * min(n1, n2)))
    detectable = z * math.sqrt(spread * (1 / n1 + 1 / n2))
    warnings: list[Reason] = []
    if min(n1, n2) < MIN_GROUP:
        warnings.append(
            _warn(
                "small_group",
                f"Too small to tell: {min(n1, n2):,} customers in the smaller group (fewer than "
                f"{MIN_GROUP}); the intervals are wide and the tests approximate.",
                f"样本过小：较小的一组只有 {min(n1, n2):,} 位客户（少于 {MIN_GROUP}），"
                "区间很宽，检验只是近似。",
            )
        )
    if min(x1, x2) < MIN_CONVERSIONS:
        warnings.append(
            _warn(
                "few_conversions",
                f"Too few customers ordered to tell ({min(x1, x2):,} in one group, fewer than "
                f"{MIN_CONVERSIONS}); orders and revenue per customer rest on a handful of buyers.",
                f"下单客户过少（某组仅 {min(x1, x2):,} 位，少于 {MIN_CONVERSIONS}），"
                "人均订单和收入只由少数买家决定。",
            )
        )
    return Uplift(
        rule=rule,
        treated=n1,
        control=n2,
        metrics=metrics,
        alpha=alpha,
        detectable=detectable,
        warnings=tuple(warnings),
        currency=currency,
        since=since,
        until=until,
    )
