"""The figures: each has a title and labelled axes, in English or Chinese."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

import lifecycle as lc
from lifecycle.analytics import Transactions, cohort_retention, plots, stage_funnel
from lifecycle.datasets import SyntheticShop, synthetic_shop

pytest.importorskip("matplotlib")


@cache
def data() -> SyntheticShop:
    return synthetic_shop(200, seed=2)


def figures(lang: str) -> list[object]:
    d = data()
    policy = lc.Policy(timezone=d.timezone)
    table = Transactions.from_events(d.events, policy=policy, at=d.as_of)
    rng = np.random.default_rng(0)
    r, f = rng.integers(1, 6, 100), rng.integers(1, 6, 100)
    return [
        plots.funnel_chart(stage_funnel(d.events, policy, d.as_of, timing=False), lang=lang),
        plots.cohort_heatmap(cohort_retention(table), lang=lang),
        plots.pareto_curve(table.net, lang=lang),
        plots.rfm_heatmap(r, f, lang=lang),
        plots.rfm_heatmap(r, f, rng.random(100), lang=lang),
        plots.cluster_scatter(
            rng.integers(0, 9, 100),
            rng.random(100) * 500,
            rng.integers(0, 3, 100),
            names={0: "key"},
            lang=lang,
        ),
    ]


def test_every_figure_has_a_title_and_axis_labels() -> None:
    for fig in figures("en"):
        ax = fig.axes[0]  # type: ignore[attr-defined]
        assert ax.get_title()
        assert ax.get_xlabel()
        fig.canvas.draw()  # type: ignore[attr-defined]  # renders without error


def test_chinese_without_a_cjk_font_falls_back_to_english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    with pytest.warns(plots.FontFallbackWarning, match="CJK"):
        fig = plots.pareto_curve([5, 3, 1], lang="zh")
    assert fig.axes[0].get_title() == "Pareto curve"


@pytest.mark.filterwarnings("ignore:Glyph")
def test_chinese_with_a_cjk_font(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plots, "cjk_font", lambda: "DejaVu Sans")
    fig = plots.pareto_curve([5, 3, 1], lang="zh")
    ax = fig.axes[0]
    assert ax.get_title() == "帕累托曲线（二八法则）"
    assert ax.title.get_fontfamily() == ["DejaVu Sans"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: plots.pareto_curve([]), "finite"),
        (lambda: plots.pareto_curve([1, -1]), "non-negative"),
        (lambda: plots.rfm_heatmap([1, 6], [1, 1]), "1..5"),
        (lambda: plots.rfm_heatmap([1], [1, 2]), "one length"),
        (lambda: plots.cluster_scatter([1], [1], [0, 1]), "one length"),
        (lambda: plots.pareto_curve([1], lang="fr"), "lang"),
    ],
)
def test_bad_input_is_a_clear_error(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
