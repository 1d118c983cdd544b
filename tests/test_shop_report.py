"""The shop report: every section present, labelled with its window, JSON-ready, and equal to
what the analytics functions give on their own."""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import numpy as np
import pytest

import lifecycle as lc
from lifecycle.analytics import (
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
from lifecycle.datasets import synthetic_shop
from lifecycle.events import Event
from lifecycle.report import (
    ClusterSection,
    KpiSection,
    Missing,
    ParetoSection,
    SegmentSection,
    ValueSection,
    Window,
)

clv = pytest.importorskip("lifecycle.clv")

SECTIONS = ("stages", "health", "loyalty", "segments", "pareto", "clusters", "value", "kpis")


@pytest.fixture(scope="module")
def shop() -> tuple[dict[str, list[Event]], lc.Policy, datetime]:
    data = synthetic_shop(400, seed=3)
    histories: dict[str, list[Event]] = {}
    for e in data.events:
        histories.setdefault(e.customer_id, []).append(e)
    return histories, lc.Policy(timezone=data.timezone), data.as_of


@pytest.fixture(scope="module")
def report(shop: tuple[dict[str, list[Event]], lc.Policy, datetime]) -> lc.ShopReport:
    return lc.shop_report(*shop)


def events_of(histories: dict[str, list[Event]]) -> list[Event]:
    return [e for h in histories.values() for e in h]


def test_every_section_is_there(report: lc.ShopReport) -> None:
    assert tuple(report.sections()) == SECTIONS
    for name, section in report.sections().items():
        assert not isinstance(section, Missing), (name, section)
    assert report.customers == 400


def test_to_dict_is_complete_and_json_ready(report: lc.ShopReport) -> None:
    data = report.to_dict()
    head = {"as_of", "timezone", "customers", "currency", "other_currencies", "skipped"}
    assert set(data) == head | set(SECTIONS)
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    for name, section in report.sections().items():
        assert data[name]["available"] is True
        assert set(data[name]) == {"available"} | {f.name for f in attrs.fields(type(section))}


def test_every_figure_is_labelled_with_its_window(report: lc.ShopReport) -> None:
    data = report.to_dict()

    def windows(value: Any) -> list[dict[str, Any]]:
        if isinstance(value, dict):
            found = [v for k, v in value.items() if k.endswith("window")]
            return found + [w for v in value.values() for w in windows(v)]
        if isinstance(value, list):
            return [w for v in value for w in windows(v)]
        return []

    for name in SECTIONS:
        assert windows(data[name]), name
    labels = {w["en"] for name in SECTIONS for w in windows(data[name])}
    assert labels == {"now", "all time", "last 365 days", "next 30 days", "next 365 days"}
    for w in windows(data):
        assert w["zh"]
        assert w["end"]
    assert isinstance(report.kpis, KpiSection)
    recent = report.kpis.periods[-1].window
    assert recent.start is not None
    assert recent.end - recent.start == timedelta(days=365)
    assert report.kpis.periods[0].window.en == "all time"


def test_the_sections_equal_the_analytics_functions(
    shop: tuple[dict[str, list[Event]], lc.Policy, datetime], report: lc.ShopReport
) -> None:
    histories, policy, now = shop
    events = events_of(histories)
    batch = assess_all(events, policy, now, tiers=True)
    assert report.stages.steps == funnel_steps(batch.stage_counts())
    assert report.health.counts == batch.status_counts()
    assert {t.key: t.customers for t in report.loyalty.tiers if t.customers} == batch.tier_counts()

    summary = rfm_summary(Transactions.from_events(events, policy=policy, at=now), end=now)
    segments = rfm_segments(
        rfm_scores(summary.days_since_last, summary.orders, summary.total_spend)
    )
    assert isinstance(report.segments, SegmentSection)
    assert report.segments.counts == dict(segments.counts)

    p, abc = pareto(summary.total_spend), abc_classes(summary.total_spend)
    assert isinstance(report.pareto, ParetoSection)
    assert (report.pareto.value_share_of_top, report.pareto.gini) == (p.value_share_of_top, p.gini)
    assert report.pareto.customers_for_value == p.customers_for_value
    assert report.pareto.abc_counts == dict(abc.counts)

    clusters = cluster_customers(summary.days_since_last, summary.orders, summary.total_spend)
    assert isinstance(report.clusters, ClusterSection)
    assert [c.customers for c in report.clusters.clusters] == clusters.sizes.tolist()
    assert [c.spend for c in report.clusters.clusters] == clusters.means[:, 2].tolist()

    assert isinstance(report.kpis, KpiSection)
    for period in report.kpis.periods:
        start = period.window.start
        assert start is not None
        assert period.kpis == kpis(events, policy, start=start, end=now)


def test_points_outstanding_add_up_the_ledgers(
    shop: tuple[dict[str, list[Event]], lc.Policy, datetime], report: lc.ShopReport
) -> None:
    histories, policy, now = shop
    referrals = lc.referral_conversions(histories, policy, now)
    statements = [
        lc.points_ledger(h, policy, now, referrals=referrals.get(cid))
        for cid, h in histories.items()
    ]
    assert report.loyalty.points_outstanding == sum(s.balance for s in statements)
    assert report.loyalty.points_expiring == sum(s.expiring(30).points for s in statements)


def test_the_value_section_is_the_fitted_model(
    shop: tuple[dict[str, list[Event]], lc.Policy, datetime], report: lc.ShopReport
) -> None:
    histories, policy, now = shop
    events = events_of(histories)
    summary = rfm_summary(Transactions.from_events(events, policy=policy, at=now), end=now)
    model = clv.ValueModel.fit(summary)
    value = report.value
    assert isinstance(value, ValueSection)
    assert value.fitted is True
    assert (value.model, value.customers) == (model.variant, len(summary))
    assert value.params == dict(model.purchases.params)
    assert value.reason == model.reason
    assert model.variant in value.reason
    assert value.boundary == model.boundary
    assert value.candidates == {c.model: c.log_likelihood for c in model.candidates}
    assert model.spend_check is not None
    assert value.spend_note == model.spend_check.describe()
    assert "correlation" in value.spend_note
    statuses = Counter(
        lc.assess_status(histories[c], policy, now, model=model).status
        for c in summary.customer_id.tolist()
    )
    assert value.statuses == {s: statuses[s] for s in lc.Status}
    values = model.clv(summary.frequency, summary.recency, summary.T, summary.monetary_value)
    assert values is not None
    assert [c.clv for c in value.top] == sorted(values.tolist(), reverse=True)[:5]
    assert value.clv_total == pytest.approx(float(values.sum()))
    # The shop's own model is used as it is, not fitted again.
    again = lc.shop_report(histories, policy, now, model=model)
    assert isinstance(again.value, ValueSection)
    assert again.value.fitted is False
    assert attrs.evolve(again.value, fitted=True) == value


@pytest.mark.parametrize(("customers", "seed"), [(500, 1), (1000, 2)])
def test_every_synthetic_shop_gets_a_value_section(customers: int, seed: int) -> None:
    data = synthetic_shop(customers, seed=seed)
    histories: dict[str, list[Event]] = {}
    for e in data.events:
        histories.setdefault(e.customer_id, []).append(e)
    value = lc.shop_report(histories, lc.Policy(timezone=data.timezone), data.as_of).value
    assert isinstance(value, ValueSection)
    assert value.clv_total is not None
    assert np.isfinite(value.clv_total)
    assert set(value.candidates) == {"BG/NBD", "MBG/NBD", "Pareto/NBD"}
    assert "<table" in value._repr_html_()


def test_the_facade_reports_its_store(
    shop: tuple[dict[str, list[Event]], lc.Policy, datetime], report: lc.ShopReport
) -> None:
    histories, policy, now = shop
    facade = lc.Lifecycle.in_memory(policy=policy, clock=lc.FixedClock(now))
    facade.record(events_of(histories))
    assert facade.report() == report
    assert facade.model is None  # the report's fit is not kept


def test_a_value_model_that_cannot_be_had_is_a_section_that_says_why(
    shop: tuple[dict[str, list[Event]], lc.Policy, datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    histories, policy, now = shop
    unfitted = lc.shop_report(histories, policy, now, fit=False).value
    assert isinstance(unfitted, Missing)
    assert unfitted.reason.code == "report.no_model"

    class Rhythm:
        def p_alive(self, frequency: float, recency: float, T: float) -> float:
            return 1.0

    foreign = lc.shop_report(histories, policy, now, model=Rhythm()).value
    assert isinstance(foreign, Missing)
    assert "Rhythm" in foreign.reason.en

    monkeypatch.setitem(sys.modules, "lifecycle.clv", None)  # as without scipy
    no_extra = lc.shop_report(histories, policy, now).value
    assert isinstance(no_extra, Missing)
    assert "pip install 'lifecycle[clv]'" in no_extra.reason.en
    assert no_extra.to_dict()["available"] is False


def test_a_shop_without_repeat_buyers_or_orders_still_reports() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    paid = [
        lc.OrderPaid(
            customer_id=f"c{i}",
            order_id=f"o{i}",
            amount=Decimal("10.00"),
            currency="CNY",
            at=now - timedelta(days=10 + i),
        )
        for i in range(2)
    ]
    report = lc.shop_report({e.customer_id: [e] for e in paid}, lc.Policy(), now)
    assert isinstance(report.clusters, Missing)
    assert isinstance(report.value, Missing)
    assert report.value.reason.code == "report.no_fit"
    json.dumps(report.to_dict(), allow_nan=False)
    empty = lc.shop_report({}, lc.Policy(), now)
    assert empty.customers == 0
    assert isinstance(empty.segments, Missing)
    assert empty.segments.reason.code == "report.no_orders"
    json.dumps(empty.to_dict(), allow_nan=False)


def test_the_report_shows_in_notebooks(report: lc.ShopReport) -> None:
    html = report._repr_html_()
    for caption in ("Stages (now)", "RFM segments (all time)", "KPIs", "next 365 days"):
        assert caption in html


def test_windows_label_themselves_in_both_languages() -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    w = Window.last(365, now)
    assert (w.label("en"), w.label("zh")) == ("last 365 days", "近365天")
    assert w.to_dict()["start"] == "2025-11-01T00:00:00+00:00"


def test_referral_conversions_name_only_referred_customers_who_bought() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    day = datetime(2026, 1, 5, tzinfo=UTC)
    histories: dict[str, list[Event]] = {
        "a": [
            lc.Referred(customer_id="a", referred_id="b", at=day),
            lc.Referred(customer_id="a", referred_id="c", at=day),
        ],
        "b": [
            lc.OrderPaid(
                customer_id="b",
                order_id="o1",
                amount=Decimal("5"),
                currency="CNY",
                at=day + timedelta(days=3),
            )
        ],
        "c": [lc.Engaged(customer_id="c", kind="browse", at=day)],
    }
    got = lc.referral_conversions(histories, lc.Policy(), now)
    assert got == {"a": {"b": day + timedelta(days=3)}}
    assert got["a"]["b"] == lc.first_valid_order_at(histories["b"], lc.Policy(), now)


def test_the_vectorised_clv_agrees_with_one_customer_at_a_time(
    shop: tuple[dict[str, list[Event]], lc.Policy, datetime],
) -> None:
    histories, policy, now = shop
    summary = rfm_summary(
        Transactions.from_events(events_of(histories), policy=policy, at=now), end=now
    )
    model = clv.ValueModel.fit(summary)
    values = model.clv(summary.frequency, summary.recency, summary.T, summary.monetary_value)
    assert values is not None
    for i in np.arange(0, len(summary), 37):
        _, one = model.customer_value(
            float(summary.frequency[i]),
            float(summary.recency[i]),
            float(summary.T[i]),
            float(summary.monetary_value[i]),
        )
        assert one == pytest.approx(float(values[i]))
