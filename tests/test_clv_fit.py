"""Fitting the BG/NBD, MBG/NBD and Gamma-Gamma models: published figures, recovery, errors."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest

from lifecycle.clv import (
    BetaGeo,
    BetaGeoModel,
    GammaGamma,
    GammaGammaModel,
    ModifiedBetaGeo,
    simulate_customers,
)
from lifecycle.clv._optimize import maximise
from lifecycle.datasets.cdnow import load_cdnow_summary
from lifecycle.errors import ConvergenceError, DataError, LifecycleError, ModelError
from lifecycle.status import AliveModel

CDNOW = load_cdnow_summary()


@pytest.fixture(scope="module")
def bgnbd() -> BetaGeoModel:
    return BetaGeo().fit(CDNOW.frequency, CDNOW.recency, CDNOW.T, time_unit_days=7)


@pytest.fixture(scope="module")
def gg() -> GammaGammaModel:
    return GammaGamma().fit(CDNOW.frequency, CDNOW.monetary_value)


def test_bgnbd_on_cdnow_reproduces_the_published_estimates(bgnbd: BetaGeoModel) -> None:
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert round(bgnbd.params[name], 3) == value
    assert round(bgnbd.log_likelihood or 0.0, 1) == -9582.4


def test_bgnbd_on_cdnow_reaches_the_polished_maximum(bgnbd: BetaGeoModel) -> None:
    mle = {"r": 0.24259291, "alpha": 4.41353156, "a": 0.79288615, "b": 2.42575344}
    for name, value in mle.items():
        assert bgnbd.params[name] == pytest.approx(value, rel=2e-8)
    assert bgnbd.log_likelihood == pytest.approx(-9582.4255606, abs=1e-6)
    assert bgnbd.convergence is not None
    assert bgnbd.convergence.converged
    assert bgnbd.convergence.gradient_norm < 1e-9
    assert bgnbd.n_customers == 2357


def test_bgnbd_standard_errors_come_from_the_hessian(bgnbd: BetaGeoModel) -> None:
    se = bgnbd.standard_errors
    assert se is not None
    expected = {"r": 0.0126, "alpha": 0.378, "a": 0.186, "b": 0.705}
    for name, value in expected.items():
        assert se[name] == pytest.approx(value, rel=5e-3)


def test_gamma_gamma_on_cdnow_reproduces_the_published_estimates(gg: GammaGammaModel) -> None:
    assert gg.params["p"] == pytest.approx(6.25, abs=0.01)
    assert gg.params["q"] == pytest.approx(3.74, abs=0.01)
    assert gg.params["gamma"] == pytest.approx(15.44, abs=0.01)
    mle = {"p": 6.2488, "q": 3.7446, "gamma": 15.4477}
    for name, value in mle.items():
        assert gg.params[name] == pytest.approx(value, abs=6e-5)
    assert gg.n_customers == 946


def test_weights_give_the_same_fit_as_repeated_rows() -> None:
    x, tx, t = CDNOW.frequency[:600], CDNOW.recency[:600], CDNOW.T[:600]
    w = np.arange(600) % 3 + 1.0
    weighted = BetaGeo().fit(x, tx, t, weights=w)
    n = w.astype(int)
    repeated = BetaGeo().fit(np.repeat(x, n), np.repeat(tx, n), np.repeat(t, n))
    for name in ("r", "alpha", "a", "b"):
        assert weighted.params[name] == pytest.approx(repeated.params[name], rel=1e-7)


def test_the_time_unit_only_rescales_alpha(bgnbd: BetaGeoModel) -> None:
    in_days = BetaGeo().fit(CDNOW.frequency, CDNOW.recency * 7, CDNOW.T * 7)
    assert in_days.params["alpha"] == pytest.approx(bgnbd.params["alpha"] * 7, rel=1e-7)
    converted = bgnbd.in_days()
    assert converted.time_unit_days == 1.0
    assert converted.params["alpha"] == pytest.approx(in_days.params["alpha"], rel=1e-7)
    assert converted.p_alive(3, 70.0, 210.0) == pytest.approx(bgnbd.p_alive(3, 10.0, 30.0))


def test_a_model_in_days_is_an_alive_model(bgnbd: BetaGeoModel) -> None:
    model = bgnbd.in_days()
    assert isinstance(model, AliveModel)
    assert isinstance(model.p_alive(2, 30, 90), float)


def test_mbgnbd_fits_cdnow_and_never_calls_one_time_buyers_certainly_alive() -> None:
    m = ModifiedBetaGeo().fit(CDNOW.frequency, CDNOW.recency, CDNOW.T, time_unit_days=7)
    assert m.variant == "MBG/NBD"
    assert m.log_likelihood == pytest.approx(-9582.13, abs=0.01)
    assert 0 < m.p_alive(0, 0.0, 30.0) < 1


@pytest.mark.parametrize("variant", [BetaGeo, ModifiedBetaGeo])
def test_estimates_approach_the_truth_as_the_sample_grows(variant: type[BetaGeo]) -> None:
    truth = {"r": 0.5, "alpha": 8.0, "a": 0.7, "b": 2.5}
    model = BetaGeo.from_params(**truth)
    if variant is ModifiedBetaGeo:
        model = BetaGeoModel(params=truth, variant="MBG/NBD")
    errors = []
    for n in (2_000, 20_000, 200_000):
        rng = np.random.default_rng(7)
        sim = simulate_customers(model, rng.integers(20, 60, n).astype(float), rng)
        fit = variant().fit(sim.frequency, sim.recency, sim.T)
        errors.append(max(abs(math.log(fit.params[k] / v)) for k, v in truth.items()))
    assert errors[2] < errors[0]
    se = fit.standard_errors
    assert se is not None
    for name, value in truth.items():  # within 4 standard errors at n = 200,000
        assert abs(fit.params[name] - value) < 4 * se[name]


def test_gamma_gamma_estimates_approach_the_truth() -> None:
    truth = GammaGamma.from_params(p=6.0, q=4.0, gamma=15.0)
    purchases = BetaGeo.from_params(r=2.0, alpha=10.0, a=0.5, b=5.0)
    errors = []
    for n in (2_000, 100_000):
        rng = np.random.default_rng(3)
        sim = simulate_customers(purchases, np.full(n, 52.0), rng, spend=truth)
        fit = GammaGamma().fit(sim.frequency, sim.monetary_value)
        errors.append(max(abs(math.log(fit.params[k] / v)) for k, v in truth.params.items()))
    assert errors[1] < errors[0]
    assert errors[1] < 0.05


def test_simulated_spends_match_the_mean_spend() -> None:
    rng = np.random.default_rng(5)
    sim = simulate_customers(
        BetaGeo.from_params(r=1.0, alpha=5.0, a=1.0, b=3.0),
        np.full(1000, 30.0),
        rng,
        spend=GammaGamma.from_params(p=2.0, q=3.0, gamma=10.0),
    )
    assert sim.spends.size == sim.frequency.sum()
    i = int(np.argmax(sim.frequency))
    chunk = sim.spends[sim.spend_offsets[i] : sim.spend_offsets[i + 1]]
    assert chunk.mean() == pytest.approx(sim.monetary_value[i])
    assert ((sim.recency <= sim.T) & ((sim.frequency > 0) | (sim.recency == 0))).all()


BAD = [
    ("frequency", {"frequency": [1.0, np.nan], "recency": [1.0, 0.0], "T": [2.0, 2.0]}),
    ("frequency", {"frequency": [1.0, -1.0], "recency": [1.0, 0.0], "T": [2.0, 2.0]}),
    ("frequency", {"frequency": [1.5, 0.0], "recency": [1.0, 0.0], "T": [2.0, 2.0]}),
    ("recency", {"frequency": [1.0, 0.0], "recency": [3.0, 0.0], "T": [2.0, 2.0]}),
    ("recency", {"frequency": [1.0, 0.0], "recency": [1.0, 0.5], "T": [2.0, 2.0]}),
    ("T", {"frequency": [1.0, 0.0], "recency": [1.0, 0.0], "T": [2.0, np.inf]}),
    ("frequency", {"frequency": [0.0, 0.0, 0.0], "recency": [0.0, 0.0, 0.0], "T": [2.0, 3.0, 4.0]}),
    ("frequency", {"frequency": [2.0], "recency": [1.0], "T": [2.0]}),
    ("frequency", {"frequency": [1.0, 0.0], "recency": [1.0, 0.0], "T": [2.0, 2.0, 3.0]}),
]


@pytest.mark.parametrize(("field", "data"), BAD)
def test_data_that_cannot_be_fitted_raise_a_clear_error(
    field: str, data: dict[str, object]
) -> None:
    with pytest.raises(DataError) as info:
        BetaGeo().fit(**data)  # type: ignore[arg-type]
    assert info.value.column == field
    assert isinstance(info.value, ModelError | LifecycleError | ValueError)


def test_a_flat_likelihood_is_not_reported_as_a_fit() -> None:
    # everyone bought once more at the same moment: nothing separates the parameters
    with pytest.raises(ModelError):
        BetaGeo().fit(np.ones(50), np.full(50, 5.0), np.full(50, 5.0))


def test_gamma_gamma_rejects_unusable_data() -> None:
    with pytest.raises(DataError, match="at least two"):
        GammaGamma().fit([0, 0, 1], [0.0, 0.0, 10.0])
    with pytest.raises(DataError) as info:
        GammaGamma().fit([1, 2], [10.0, 0.0])
    assert info.value.column == "monetary_value"
    with pytest.raises(DataError):
        GammaGamma().fit([1, 2, 3], [10.0, 10.0, 10.0])


def test_an_optimiser_that_stops_short_raises_a_convergence_error() -> None:
    def slope(theta: np.ndarray) -> tuple[float, np.ndarray]:
        return float(theta @ theta) ** 0.5 + 1e-3 * float(theta[0]), theta * 0 + 1e-3

    with pytest.raises((ConvergenceError, DataError)):
        maximise("test", slope, np.zeros(2), 1.0, ("u", "v"))
    err = ConvergenceError("BG/NBD", "gradient 1e-3")
    assert "did not converge" in str(err)
    assert pickle.loads(pickle.dumps(err)).reason == "gradient 1e-3"
    inv = pickle.loads(pickle.dumps(DataError("bad", column="T")))
    assert inv.column == "T"
    assert str(inv) == "column 'T': bad"


def test_models_round_trip_through_json(bgnbd: BetaGeoModel, gg: GammaGammaModel) -> None:
    again = BetaGeoModel.from_json(bgnbd.to_json())
    assert again == bgnbd
    assert GammaGammaModel.from_json(gg.to_json()) == gg
    built = BetaGeo.from_params(r=1, alpha=2, a=3, b=4, time_unit_days=7)
    assert BetaGeoModel.from_json(built.to_json()) == built
    assert json.loads(built.to_json())["model"] == "BG/NBD"
    with pytest.raises(DataError):
        BetaGeoModel.from_json(gg.to_json())
    with pytest.raises(DataError):
        GammaGammaModel.from_json("{not json")


def test_fitted_models_are_immutable(bgnbd: BetaGeoModel) -> None:
    with pytest.raises(TypeError):
        bgnbd.params["r"] = 1.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        bgnbd.log_likelihood = 0.0  # type: ignore[misc]


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_from_params_rejects_parameters_outside_the_model(bad: float) -> None:
    with pytest.raises(DataError) as info:
        BetaGeo.from_params(r=1.0, alpha=1.0, a=bad, b=1.0)
    assert info.value.column == "a"
    with pytest.raises(DataError):
        GammaGamma.from_params(p=1.0, q=bad, gamma=1.0)
