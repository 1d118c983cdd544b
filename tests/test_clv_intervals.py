"""Per-customer intervals: they cover the truth at their nominal rate, and behave."""

from __future__ import annotations

import numpy as np
import pytest

from lifecycle.clv import (
    BetaGeo,
    GammaGamma,
    ParetoNBD,
    customer_lifetime_value,
    simulate_customers,
    value_intervals,
)
from lifecycle.datasets.cdnow import load_cdnow_summary
from lifecycle.errors import DataError

TRUTH = BetaGeo.from_params(r=0.8, alpha=60.0, a=0.8, b=3.0)
SPEND = GammaGamma.from_params(p=6.0, q=4.0, gamma=40.0)
# reference customers (days): frequency, recency, T, mean repeat spend
REF_X = np.array([1.0, 3.0, 6.0, 2.0])
REF_TX = np.array([100.0, 250.0, 300.0, 30.0])
REF_T = np.array([300.0, 300.0, 320.0, 330.0])
REF_M = np.array([30.0, 45.0, 60.0, 20.0])


def test_ninety_percent_intervals_cover_the_truth_ninety_percent_of_the_time() -> None:
    """Fit on 200 simulated shops of 1,000 customers; the intervals of four customers'
    P(alive), expected purchases (90 days) and CLV hold the true values 90 % +- 2 % of the time
    (each quantity over 800 intervals; benchmarks/bench_clv_intervals.py runs more)."""
    rng = np.random.default_rng(2026)
    truth = (
        TRUTH.p_alive(REF_X, REF_TX, REF_T),
        TRUTH.expected_purchases(90.0, REF_X, REF_TX, REF_T),
        customer_lifetime_value(TRUTH, SPEND, REF_X, REF_TX, REF_T, REF_M),
    )
    reps = 200
    hits = np.zeros(3)
    for _ in range(reps):
        sim = simulate_customers(
            TRUTH, rng.integers(180, 365, 1000).astype(float), rng, spend=SPEND
        )
        model = BetaGeo().fit(sim.frequency, sim.recency, sim.T)
        spend = GammaGamma().fit(sim.frequency, sim.monetary_value)
        out = value_intervals(
            model, REF_X, REF_TX, REF_T, horizon=90.0, spend=spend, monetary_value=REF_M
        )
        assert out.clv is not None
        for i, (interval, true) in enumerate(
            zip((out.p_alive, out.expected_purchases, out.clv), truth, strict=True)
        ):
            hits[i] += interval.covers(true).sum()
    coverage = hits / (reps * REF_X.size)
    assert np.abs(coverage - 0.9).max() <= 0.02, coverage


@pytest.fixture(scope="module")
def cdnow_intervals() -> object:
    data = load_cdnow_summary()
    model = ParetoNBD().fit(data.frequency, data.recency, data.T, time_unit_days=7)
    spend = GammaGamma().fit(data.frequency, data.monetary_value)
    return model, spend, data


def test_intervals_hold_the_estimate_and_stay_in_range(cdnow_intervals: object) -> None:
    model, spend, data = cdnow_intervals  # type: ignore[misc]
    out = value_intervals(
        model,
        data.frequency,
        data.recency,
        data.T,
        horizon=39.0,
        spend=spend,
        monetary_value=np.where(data.frequency > 0, data.monetary_value, 0.0),
        level=0.95,
    )
    assert len(out) == data.frequency.size
    for interval in (out.p_alive, out.expected_purchases, out.clv):
        assert interval is not None
        assert np.isfinite(interval.lower).all()
        assert np.isfinite(interval.upper).all()
        assert (interval.lower <= interval.estimate + 1e-12).all()
        assert (interval.estimate <= interval.upper + 1e-12).all()
    assert (out.p_alive.lower >= 0).all()
    assert (out.p_alive.upper <= 1).all()
    assert np.allclose(out.p_alive.estimate, model.p_alive(data.frequency, data.recency, data.T))
    narrower = value_intervals(model, data.frequency, data.recency, data.T, horizon=39.0, level=0.5)
    assert (
        narrower.p_alive.upper - narrower.p_alive.lower
        <= out.p_alive.upper - out.p_alive.lower + 1e-12
    ).all()
    assert "intervals" in out._repr_html_()
    assert set(out.columns()) >= {"clv", "clv_lower", "clv_upper", "p_alive_lower"}


def test_a_model_built_from_parameters_has_no_intervals() -> None:
    with pytest.raises(DataError, match="covariance"):
        value_intervals(TRUTH, REF_X, REF_TX, REF_T, horizon=90.0)


def test_a_level_outside_zero_and_one_is_refused(cdnow_intervals: object) -> None:
    model, _, data = cdnow_intervals  # type: ignore[misc]
    with pytest.raises(DataError, match="level"):
        value_intervals(model, data.frequency, data.recency, data.T, horizon=1.0, level=1.0)


def test_the_shops_value_model_gives_intervals_with_worthless_buyers_at_zero() -> None:
    import lifecycle as lc
    from lifecycle.analytics import Transactions, rfm_summary
    from lifecycle.clv import ValueModel
    from lifecycle.datasets import synthetic_shop

    data = synthetic_shop(600, seed=4)
    table = Transactions.from_events(
        data.events, policy=lc.Policy(timezone=data.timezone), at=data.as_of
    )
    s = rfm_summary(table, end=data.as_of, unit="days")
    model = ValueModel.fit(s)
    monetary = s.monetary_value.copy()
    worthless = np.flatnonzero(s.frequency > 0)[:3]
    monetary[worthless] = 0.0
    out = model.intervals(s.frequency, s.recency, s.T, monetary)
    assert out.clv is not None
    assert (out.clv.upper[worthless] == 0).all()
    assert out.horizon == model.horizon_days
    clv = model.clv(s.frequency, s.recency, s.T, monetary)
    assert clv is not None
    assert np.allclose(out.clv.estimate, clv)
    assert "<table" in model._repr_html_()
