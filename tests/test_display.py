"""Notebook rendering: HTML tables and DataFrames."""

from __future__ import annotations

from datetime import timedelta
from functools import cache

import pytest

import lifecycle as lc
from lifecycle._display import html_table
from lifecycle.analytics import (
    Transactions,
    assess_all,
    cohort_retention,
    kpis,
    rfm_summary,
    stage_funnel,
)
from lifecycle.datasets import SyntheticShop, synthetic_shop


@cache
def shop() -> tuple[SyntheticShop, lc.Lifecycle]:
    data = synthetic_shop(150, seed=8)
    s = lc.Lifecycle.in_memory(
        clock=lc.FixedClock(data.as_of), policy=lc.Policy(timezone=data.timezone)
    )
    s.record(data.events)
    return data, s


def test_html_cells_are_escaped() -> None:
    html = html_table(["<h>"], [["<script>alert(1)</script>"]], caption="a & b")
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "a &amp; b" in html


def test_every_report_renders_and_converts() -> None:
    pd = pytest.importorskip("pandas")
    data, s = shop()
    policy = s.policy
    table = Transactions.from_events(data.events, policy=policy, at=data.as_of)
    objects = [
        s.assess(data.customer_ids[3]),
        stage_funnel(data.events, policy, data.as_of, timing=False),
        cohort_retention(table),
        kpis(data.events, policy, start=data.as_of - timedelta(days=90), end=data.as_of),
        assess_all(data.events, policy, data.as_of, tiers=True),
        rfm_summary(table),
    ]
    for obj in objects:
        html = obj._repr_html_()  # type: ignore[attr-defined]
        assert html.startswith("<table>")
    for obj in objects[1:3] + objects[4:]:
        assert isinstance(obj.to_pandas(), pd.DataFrame)  # type: ignore[attr-defined]
    a = s.assess(data.customer_ids[3])
    assert a.to_dict()["customer_id"] == data.customer_ids[3]


def test_a_plan_renders_and_converts() -> None:
    pd = pytest.importorskip("pandas")
    _, s = shop()
    plan = s.plan()
    assert plan._repr_html_().startswith("<table>")
    frame = plan.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == len(plan.due) + len(plan.held)
