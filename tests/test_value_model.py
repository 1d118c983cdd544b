"""The value model in the product: fitted on the shop, read by the status rule and assess."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache

import pytest

import lifecycle as lc
from lifecycle.datasets import SyntheticShop, synthetic_shop

clv = pytest.importorskip("lifecycle.clv")


@cache
def fitted() -> tuple[SyntheticShop, lc.Lifecycle, object]:
    data = synthetic_shop(1500, seed=5)
    shop = lc.Lifecycle.in_memory(
        clock=lc.FixedClock(data.as_of), policy=lc.Policy(timezone=data.timezone)
    )
    shop.record(data.events)
    model = shop.fit_value_model()
    return data, shop, model


def test_the_fitted_model_is_used_by_assess() -> None:
    data, shop, model = fitted()
    assert isinstance(model, clv.ValueModel)
    assert shop.model is model
    assert model.variant in ("BG/NBD", "MBG/NBD")
    assert isinstance(model, lc.AliveModel)
    assert isinstance(model, lc.ValueEstimator)
    buyers = [c for c in data.customer_ids if shop.assess(c).status is not None]
    for cid in buyers[:200]:
        a = shop.assess(cid)
        assert a.expected_purchases is not None
        assert a.expected_purchases >= 0
        assert a.clv is not None
        assert a.clv >= 0
        if a.p_alive is not None:
            assert 0 <= a.p_alive <= 1
            codes = {r.code for r in a.reasons}
            assert any(c.startswith("status.model.") for c in codes) or "status.lapsed" in codes
    prospect = next(c for c in data.customer_ids if shop.assess(c).status is None)
    assert (shop.assess(prospect).expected_purchases, shop.assess(prospect).clv) == (None, None)


def test_fit_events_is_the_model_the_facade_fits() -> None:
    data, _, model = fitted()
    policy = lc.Policy(timezone=data.timezone)
    assert clv.ValueModel.fit_events(data.events, policy, data.as_of) == model


def test_one_purchase_day_keeps_the_rhythm_rule() -> None:
    data, shop, _ = fitted()
    for cid in data.customer_ids:
        a = shop.assess(cid)
        if a.status is not None and a.status_detail.median_gap_days is None and a.p_alive is None:
            assert a.status_detail.threshold_days is not None
            return
    pytest.fail("no single-day buyer found")


def test_snapshots_follow_the_model() -> None:
    data, shop, _ = fitted()
    at_risk = set(shop.customers(status=lc.Status.AT_RISK))
    assert at_risk == {c for c in data.customer_ids if shop.assess(c).status is lc.Status.AT_RISK}


def test_the_model_round_trips_through_json() -> None:
    _, _, model = fitted()
    again = clv.ValueModel.from_json(model.to_json())  # type: ignore[attr-defined]
    assert again.purchases.params == pytest.approx(model.purchases.params)  # type: ignore[attr-defined]
    assert again.p_alive(2, 100, 300) == pytest.approx(model.p_alive(2, 100, 300))  # type: ignore[attr-defined]


def test_a_shop_without_repeat_buyers_cannot_be_modelled() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    shop = lc.Lifecycle.in_memory(clock=lc.FixedClock(t0 + timedelta(days=100)))
    shop.record(
        lc.OrderPaid(
            customer_id=f"c{i}",
            order_id=f"o{i}",
            amount=Decimal(10),
            currency="CNY",
            at=t0 + timedelta(days=i),
        )
        for i in range(5)
    )
    with pytest.raises(lc.DataError, match="repeat"):
        shop.fit_value_model()
    assert shop.model is None
