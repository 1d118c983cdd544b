"""The shop's value model fits on every shop: it chooses among BG/NBD, MBG/NBD and Pareto/NBD,
holds boundary maxima with weak priors and says why, and handles spends the spend model cannot."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

import lifecycle as lc
from lifecycle.analytics import CustomerSummary, Transactions, rfm_summary
from lifecycle.clv import (
    DEFAULT_PENALTY,
    BetaGeo,
    ModifiedBetaGeo,
    ParetoNBD,
    ValueModel,
    boundary_reason,
    fit_candidate,
)
from lifecycle.datasets import synthetic_shop
from lifecycle.datasets.cdnow import load_cdnow_summary
from lifecycle.errors import ConvergenceError, DataError


def shop_summary(customers: int, seed: int) -> CustomerSummary:
    data = synthetic_shop(customers, seed=seed)
    policy = lc.Policy(timezone=data.timezone)
    table = Transactions.from_events(data.events, policy=policy, at=data.as_of)
    return rfm_summary(table, end=data.as_of, unit="days")


@pytest.mark.parametrize(
    ("customers", "seed"), [(300, 0), (500, 1), (800, 4), (1200, 9), (2000, 3)]
)
def test_the_value_model_fits_every_synthetic_shop(customers: int, seed: int) -> None:
    s = shop_summary(customers, seed)
    model = ValueModel.fit(s)
    assert [c.model for c in model.candidates] == ["BG/NBD", "MBG/NBD", "Pareto/NBD"]
    assert sum(c.chosen for c in model.candidates) == 1
    chosen = model.chosen
    assert chosen is not None
    assert chosen.model == model.variant
    fitted = [c for c in model.candidates if c.log_likelihood is not None]
    assert chosen.log_likelihood == max(c.log_likelihood for c in fitted)  # type: ignore[type-var]
    assert model.variant in model.reason
    alive = model.purchases.p_alive(s.frequency, s.recency, s.T)
    value = model.clv(s.frequency, s.recency, s.T, s.monetary_value)
    assert value is not None
    for out in (
        alive,
        value,
        model.purchases.expected_purchases(90.0, s.frequency, s.recency, s.T),
    ):
        assert np.isfinite(out).all()
    assert (value >= 0).all()
    assert ValueModel.from_json(model.to_json()) == model


def test_a_bgnbd_fit_that_does_not_converge_is_held_by_the_priors() -> None:
    s = shop_summary(500, 1)
    with pytest.raises(ConvergenceError):
        BetaGeo().fit(s.frequency, s.recency, s.T)
    model, candidate = fit_candidate("BG/NBD", s)
    assert model is not None
    assert candidate.boundary
    assert candidate.penalised
    assert model.penalty == DEFAULT_PENALTY
    assert "did not converge" in candidate.reason
    assert "weak priors" in candidate.reason
    # with the priors turned off the model is skipped, not raised
    none, failed = fit_candidate("BG/NBD", s, penalty=0.0)
    assert none is None
    assert failed.log_likelihood is None
    assert "could not be fitted" in failed.reason


def nbd_shop(n: int, seed: int) -> CustomerSummary:
    """Customers who buy as Poisson processes and never drop out (the NBD: BG/NBD at p = 0)."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    first = rng.integers(0, 200, n)
    rate = rng.gamma(2.0, 1 / 60.0, n)
    ids, days = [], []
    for i in range(n):
        span = 600 - first[i]
        k = rng.poisson(rate[i] * span)
        for d in np.concatenate([[0], np.sort(rng.integers(1, span + 1, k))]):
            ids.append(i)
            days.append(int(first[i] + d))
    at = np.array([start + timedelta(days=d, hours=12) for d in days])
    table = Transactions.from_arrays(
        np.array(ids), at, np.full(len(ids), 50.0) + rng.random(len(ids))
    )
    return rfm_summary(table, end=start + timedelta(days=600), unit="days")


def test_no_measurable_drop_out_is_named_and_fitted_anyway() -> None:
    s = nbd_shop(600, 7)
    with pytest.raises(DataError, match="flat"):
        BetaGeo().fit(s.frequency, s.recency, s.T)
    for variant in ("BG/NBD", "MBG/NBD", "Pareto/NBD"):
        model, candidate = fit_candidate(variant, s)
        assert model is not None
        assert candidate.boundary
        assert candidate.penalised
        assert "no measurable drop-out" in candidate.reason
        assert boundary_reason(model) is not None
    value = ValueModel.fit(s)
    alive = value.purchases.p_alive(s.frequency, s.recency, s.T)
    assert np.isfinite(alive).all()
    assert alive.mean() > 0.9  # nobody leaves in these data
    # Maximum likelihood only: whether an optimiser stops at a flat ridge or on the boundary
    # depends on the last bits of the arithmetic (numpy's version); either way nothing
    # unflagged is returned.
    try:
        unpenalised = ValueModel.fit(s, penalty=0.0)
    except DataError as e:
        assert "no purchase model could be fitted" in str(e)
    else:
        chosen = next(c for c in unpenalised.candidates if c.chosen)
        assert chosen.boundary and not chosen.penalised
        assert "no measurable drop-out" in chosen.reason


def test_the_priors_are_weak_where_the_data_speak() -> None:
    data = load_cdnow_summary()
    for fitter in (BetaGeo, ModifiedBetaGeo, ParetoNBD):
        mle = fitter().fit(data.frequency, data.recency, data.T, time_unit_days=7)
        held = fitter(penalty=DEFAULT_PENALTY).fit(
            data.frequency, data.recency, data.T, time_unit_days=7
        )
        se = mle.standard_errors
        assert se is not None
        for name, value in mle.params.items():
            assert abs(held.params[name] - value) < 0.2 * se[name], (fitter, name)
        assert held.log_likelihood == pytest.approx(mle.log_likelihood, abs=0.5)
        assert held.penalty == DEFAULT_PENALTY
        assert json.loads(held.to_json())["penalty"] == DEFAULT_PENALTY


def test_a_penalty_for_every_model_fits_every_model_with_priors() -> None:
    s = shop_summary(800, 4)
    model = ValueModel.fit(s, penalty=1.0)
    assert all(c.penalised for c in model.candidates)
    assert model.purchases.penalty == 1.0
    with pytest.raises(DataError, match="models"):
        ValueModel.fit(s, models=("BG/NBD", "Weibull"))  # type: ignore[arg-type]


def test_zero_value_repeat_buyers_are_left_out_of_the_spend_model_and_counted() -> None:
    s = shop_summary(800, 4)
    rng = np.random.default_rng(0)
    repeat = np.flatnonzero(s.frequency > 0)
    free = rng.choice(repeat, 25, replace=False)
    monetary = s.monetary_value.copy()
    monetary[free] = 0.0
    monetary[free[:5]] = -10.0  # refunds worth more than the purchases
    changed = CustomerSummary(
        **{**s.columns(), "monetary_value": monetary, "end": s.end, "unit": s.unit}
    )
    model = ValueModel.fit(changed)
    check = model.spend_check
    assert check is not None
    assert check.repeat_buyers == repeat.size
    assert check.zero_value == 25
    assert check.fitted_on == repeat.size - 25
    kept = (s.frequency > 0) & (monetary > 0)
    expected = np.corrcoef(s.frequency[kept], monetary[kept])[0, 1]
    assert check.correlation == pytest.approx(expected)
    assert check.independent == (abs(expected) <= 0.3)
    assert "25 with zero-value" in check.describe()
    value = model.clv(changed.frequency, changed.recency, changed.T, monetary)
    assert value is not None
    assert (value[free] == 0).all()
    assert (value[kept] > 0).all()
    spend = model.spend
    assert spend is not None
    assert spend.n_customers == repeat.size - 25


def test_shops_without_repeat_buyers_cannot_be_modelled() -> None:
    s = nbd_shop(50, 1)
    once = CustomerSummary(
        **{
            **s.columns(),
            "frequency": np.zeros(len(s), dtype=np.int64),
            "recency": np.zeros(len(s)),
            "monetary_value": np.zeros(len(s)),
            "end": s.end,
            "unit": s.unit,
        }
    )
    with pytest.raises(DataError, match="repeat"):
        ValueModel.fit(once)
