"""Every public result type shows itself: a ``repr`` that fits one terminal line and a compact
``_repr_html_`` for notebooks, its cells escaped and free of personal data."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from functools import cache
from typing import Any

import attrs
import numpy as np
import pytest

import lifecycle as lc
from lifecycle import analytics as la
from lifecycle import report as rp
from lifecycle._display import REPR_WIDTH
from lifecycle.datasets import synthetic_shop
from lifecycle.owners import assign, ownership, sweep

clv = pytest.importorskip("lifecycle.clv")


@cache
def results() -> dict[type, Any]:
    """One instance of every public result type, from a small synthetic shop."""
    data = synthetic_shop(300, seed=4)
    policy = lc.Policy(timezone=data.timezone)
    channels = {c: lc.MemoryChannel() for c in ("sms", "email", "wechat", "app_push", "task")}
    shop = lc.Lifecycle.in_memory(clock=lc.FixedClock(data.as_of), policy=policy, channels=channels)
    recorded = shop.record(data.events)
    cid = data.customer_ids[5]
    history = shop.history(cid)
    table = la.Transactions.from_events(data.events, policy=policy, at=data.as_of)
    summary = la.rfm_summary(table, end=data.as_of)
    scores = la.rfm_scores(summary.days_since_last, summary.frequency, summary.total_spend)
    funnel = la.stage_funnel(data.events, policy, data.as_of, timing=False)
    model = shop.fit_value_model()
    split = clv.calibration_holdout(
        table,
        calibration_end=data.as_of - timedelta(days=180),
        holdout_end=data.as_of,
    )
    comparison = split.compare()
    report = shop.report(fit=False)
    plan = shop.plan()
    histories = {c: shop.history(c) for c in data.customer_ids[:20]}
    stages = list(shop.stage_history(cid))
    assessment = shop.assess(cid)
    tiers = lc.tier_history(history, policy, data.as_of)
    found = [
        shop,
        data,
        recorded,
        table,
        la.SummaryPartial.of(table),
        summary,
        la.assess_all(data.events, policy, data.as_of, tiers=True),
        la.cohort_retention(table),
        funnel,
        funnel.steps[2],
        la.kpis(data.events, policy, start=data.as_of - timedelta(days=90), end=data.as_of),
        scores,
        la.rfm_segments(scores),
        la.pareto(summary.total_spend),
        la.abc_classes(summary.total_spend),
        la.cluster_customers(summary.days_since_last, summary.orders, summary.total_spend),
        model,
        model.purchases,
        model.spend,
        model.purchases.convergence,
        clv.simulate_customers(model.purchases, np.full(50, 100.0), np.random.default_rng(0)),
        split,
        split.check(model.purchases),
        comparison,
        clv.ParetoNBD().fit(summary.frequency, summary.recency, summary.T),
        model.intervals(summary.frequency[:20], summary.recency[:20], summary.T[:20]),
        clv.predict_customers(model, summary),
        report,
        *report.sections().values(),
        rp.Missing(reason=lc.Reason(code="x", en="why <b>", zh="为什么")),
        assessment,
        assessment.stage_detail,
        assessment.status_detail,
        assessment.tier_detail,
        lc.points_ledger(history, policy, data.as_of),
        stages[-1],
        *tiers[-1:],
        plan,
        *plan.due[:1],
        *plan.held[:1],
        shop.dispatch(),
        ownership(cid, history, policy.owners, data.as_of),
        assign(histories, ["ann", "bob"], policy.owners, data.as_of),
        sweep(histories, policy.owners, data.as_of + timedelta(days=400)),
        la.uplift([1, 0, 2, 0], [90, 0, 150, 0], [0, 1, 0], [0, 60, 0], rule="promo"),
        shop.compare(policy, policy, since=data.as_of - timedelta(days=2)),
        shop.owner_report(data.as_of - timedelta(days=365)),
    ]
    return {type(r): r for r in found if r is not None}


RESULT_TYPES = sorted(results(), key=lambda t: t.__name__)


@pytest.mark.parametrize("cls", RESULT_TYPES, ids=[t.__name__ for t in RESULT_TYPES])
def test_a_result_repr_fits_one_terminal_line(cls: type) -> None:
    text = repr(results()[cls])
    assert "\n" not in text
    assert len(text) <= REPR_WIDTH, text
    assert text.startswith(cls.__name__ + "(")


@pytest.mark.parametrize("cls", RESULT_TYPES, ids=[t.__name__ for t in RESULT_TYPES])
def test_a_result_shows_a_compact_table_in_a_notebook(cls: type) -> None:
    html = results()[cls]._repr_html_()
    assert html.startswith(("<table>", "<p>", "<div")), html[:80]
    assert "<table>" in html
    assert len(html) < 20_000
    assert "<b>" not in html  # cells are escaped


PUBLIC_MODULES = [lc, la, clv, rp]
NOT_RESULTS = {
    # settings, events, vocabulary and parts of other results
    "Birthday", "ContactPoint", "Profile", "Reason", "LunarDate", "Holiday", "Snapshot",
    "OutboxEntry", "Message", "SendResult", "CustomerRecord", "Window", "TierCount",
    "ValueCluster", "CustomerValue", "KpiPeriod", "TierProgress", "DowngradeWarning",
    "PointsLot", "PointsEntry", "ExpiringPoints", "PendingPoints", "OwnerDecision",
    "PoolWarning", "Dispatched", "Occurrence", "SequenceStep", "BetaGeo", "ModifiedBetaGeo",
    "GammaGamma", "ParetoNBD", "Candidate", "SpendCheck", "FrequencyBucket", "TrackingCurve",
    "Interval", "Skipped", "OtherCurrency", "UpliftMetric", "PolicyDifference", "RuleMessages",
    "Enrolment", "OwnerResult",
}  # fmt: skip


def test_every_public_result_type_is_covered() -> None:
    """A new result type must join ``results()``: the public attrs classes that are not
    settings, events or parts of another result."""
    covered = {t.__name__ for t in results()}
    public = set()
    for module in PUBLIC_MODULES:
        for name in module.__all__:
            obj = getattr(module, name)
            if not (isinstance(obj, type) and attrs.has(obj)):
                continue
            if issubclass(obj, lc.Event) or name.endswith(("Policy", "Benefits")):
                continue
            if obj.__module__.startswith(("lifecycle.cadence.rules", "lifecycle.cadence.contact")):
                continue
            if obj.__module__ == "lifecycle.cadence.templates" or name in ("Tier",):
                continue
            public.add(name)
    assert public - NOT_RESULTS - covered == set()


def test_a_repr_names_no_personal_data() -> None:
    secret = "Zhang Wei"
    shop = lc.Lifecycle.in_memory()
    at = lc.SystemClock().now()
    shop.record(
        lc.CustomerRegistered(customer_id="c1", at=at, profile=lc.Profile(name=secret)),
        lc.OrderPaid(customer_id="c1", order_id="o1", at=at, amount=Decimal(5), currency="CNY"),
    )
    shown = [shop.assess("c1"), shop.plan(), shop]
    for obj in shown:
        assert secret not in repr(obj)
        assert secret not in obj._repr_html_()  # type: ignore[attr-defined]
