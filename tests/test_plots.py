"""The figures: each takes a result object, returns the Axes it drew on, with a title and
labelled axes, in English or Chinese."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pytest

import lifecycle as lc
from lifecycle.analytics import (
    Transactions,
    cluster_customers,
    cohort_retention,
    pareto,
    plots,
    rfm_scores,
    rfm_summary,
    stage_funnel,
)
from lifecycle.datasets import SyntheticShop, synthetic_shop

pytest.importorskip("matplotlib")


@cache
def data() -> SyntheticShop:
    return synthetic_shop(300, seed=4)


@cache
def results() -> dict[str, Any]:
    d = data()
    policy = lc.Policy(timezone=d.timezone)
    table = Transactions.from_events(d.events, policy=policy, at=d.as_of)
    summary = rfm_summary(table, end=d.as_of)
    shop = lc.Lifecycle.in_memory(clock=lc.FixedClock(d.as_of), policy=policy)
    shop.record(d.events)
    out: dict[str, Any] = {
        "table": table,
        "summary": summary,
        "funnel": stage_funnel(d.events, policy, d.as_of, timing=False),
        "cohorts": cohort_retention(table),
        "scores": rfm_scores(summary.days_since_last, summary.frequency, summary.total_spend),
        "pareto": pareto(summary.total_spend),
        "clusters": cluster_customers(summary.days_since_last, summary.orders, summary.total_spend),
        "report": shop.report(fit=False),
    }
    if pytest.importorskip("scipy"):
        out["model"] = shop.fit_value_model()
    return out


def figures(lang: str) -> list[Any]:
    r = results()
    return [
        plots.funnel_chart(r["funnel"], lang=lang),
        plots.funnel_chart(r["report"].stages, lang=lang),
        plots.cohort_heatmap(r["cohorts"], lang=lang),
        plots.pareto_curve(r["pareto"], lang=lang),
        plots.rfm_heatmap(r["scores"], lang=lang),
        plots.rfm_heatmap(r["scores"], r["summary"].total_spend, lang=lang),
        plots.cluster_scatter(r["clusters"], lang=lang),
        plots.cluster_scatter(r["clusters"], r["summary"], lang=lang),
        plots.tier_mix(r["report"], lang=lang),
        plots.p_alive_matrix(r["model"], T=365.0, lang=lang),
        plots.value_tracking(r["model"], r["table"], lang=lang),
    ]


def test_every_figure_is_axes_with_a_title_and_axis_labels() -> None:
    from matplotlib.axes import Axes

    for ax in figures("en"):
        assert isinstance(ax, Axes)
        assert ax.get_title()
        assert ax.get_xlabel() or ax.get_xticklabels()
        ax.figure.canvas.draw()  # renders without error


def test_a_figure_draws_into_the_axes_given() -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert plots.pareto_curve(results()["pareto"], ax=right) is right
    assert plots.tier_mix(results()["report"], ax=left) is left
    assert len(fig.axes) == 2


def test_the_tracking_plot_ends_at_the_repeat_purchases_counted_independently() -> None:
    r = results()
    ax = plots.value_tracking(r["model"], r["table"])
    actual, expected = (line.get_ydata() for line in ax.get_lines())
    summary = r["summary"]
    assert actual[-1] == summary.frequency.sum()  # repeat purchase days, counted by the summary
    assert np.all(np.diff(expected) >= 0)
    # The model was fitted on these customers: it tracks their total within a third.
    assert expected[-1] == pytest.approx(actual[-1], rel=0.35)


def test_the_rfm_grid_counts_every_customer_once() -> None:
    scores = results()["scores"]
    ax = plots.rfm_heatmap(scores)
    grid = ax.get_images()[0].get_array()
    assert grid.sum() == len(scores)
    assert grid[4, 4] == np.count_nonzero((scores.r == 5) & (scores.f == 5))


def test_chinese_without_a_cjk_font_falls_back_to_english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    with pytest.warns(plots.FontFallbackWarning, match="CJK"):
        ax = plots.pareto_curve(results()["pareto"], lang="zh")
    assert ax.get_title() == "Pareto curve"


@pytest.mark.filterwarnings("ignore:Glyph")
def test_chinese_with_a_cjk_font(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plots, "cjk_font", lambda: "DejaVu Sans")
    for ax in figures("zh"):
        assert ax.title.get_fontfamily() == ["DejaVu Sans"]
    ax = plots.pareto_curve(results()["pareto"], lang="zh")
    assert ax.get_title() == "帕累托曲线（二八法则）"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: plots.pareto_curve([1.0, 2.0]), "ParetoSummary"),  # type: ignore[arg-type]
        (lambda: plots.rfm_heatmap(np.ones(3)), "RFMScores"),  # type: ignore[arg-type]
        (lambda: plots.rfm_heatmap(results()["scores"], [1.0]), "one value per customer"),
        (lambda: plots.cluster_scatter(results()["clusters"], object()), "CustomerSummary"),
        (lambda: plots.funnel_chart(object()), "Funnel"),
        (lambda: plots.p_alive_matrix(object(), T=1.0), "fitted"),
        (lambda: plots.tier_mix(object()), "ShopReport"),
        (lambda: plots.pareto_curve(results()["pareto"], lang="fr"), "lang"),
    ],
)
def test_bad_input_is_a_clear_error(call: Any, message: str) -> None:
    with pytest.raises((lc.DataError, ValueError, TypeError), match=message):
        call()
