"""The Pareto/NBD model: published CDNOW figures, an independent implementation, mpmath, and
the hypergeometric terms at extreme arguments."""

from __future__ import annotations

import json

import mpmath as mp
import numpy as np
import pytest

from lifecycle.clv import (
    BetaGeo,
    GammaGamma,
    ParetoNBD,
    ParetoNBDModel,
    customer_lifetime_value,
    simulate_customers,
)
from lifecycle.clv._special import pareto_log_tail
from lifecycle.datasets.cdnow import load_cdnow_summary
from lifecycle.errors import DataError
from lifecycle.status import AliveModel

CDNOW = load_cdnow_summary()
PUBLISHED = ParetoNBD.from_params(r=0.55, alpha=10.58, s=0.61, beta=11.67, time_unit_days=7)

# lifetimes 0.11.3 (ParetoNBDFitter, its own virtualenv) at the published parameters, weeks
X = np.array([0.0, 1, 2, 7, 14, 0, 3, 25])
TX = np.array([0.0, 1.71, 30.43, 29.43, 36.0, 0, 10.0, 37.5])
T = np.array([38.86, 38.86, 38.86, 35.71, 36.43, 32.0, 30.0, 38.0])
LIFETIMES_P_ALIVE = [
    0.29377395046742055,
    0.16699455052575482,
    0.8684109171320921,
    0.8573393465418211,
    0.9941570993830579,
    0.33967368447804785,
    0.3120920181167576,
    0.9929628985730902,
]
LIFETIMES_EXPECTED_39 = [
    0.10582535589031983,
    0.1695304684878937,
    1.450371374791711,
    4.483455205344023,
    9.88893987040086,
    0.13884279944312022,
    0.8572254151077745,
    16.866750793786526,
]
LIFETIMES_LOG_LIKELIHOOD = [
    -0.5170251508875388,
    -4.4507725494538155,
    -9.561981260842963,
    -21.205208443355424,
    -32.06858343069197,
    -0.4910410563372589,
    -10.684611557907651,
    -42.72494941939447,
]
LIFETIMES_NEW = [0.050685421319156945, 0.42465961851091355, 1.2023523628319928, 1.8899983705311565]
LIFETIMES_CDNOW_TOTAL = -9595.008530490335


@pytest.fixture(scope="module")
def fitted() -> ParetoNBDModel:
    return ParetoNBD().fit(CDNOW.frequency, CDNOW.recency, CDNOW.T, time_unit_days=7)


def test_pareto_nbd_on_cdnow_reproduces_the_published_estimates(fitted: ParetoNBDModel) -> None:
    published = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}
    for name, value in published.items():
        assert round(fitted.params[name], 2) == value
    assert round(fitted.log_likelihood or 0.0, 1) == -9595.0
    tight = {"r": 0.55328, "alpha": 10.5776, "s": 0.60621, "beta": 11.6679}
    for name, value in tight.items():
        assert fitted.params[name] == pytest.approx(value, rel=5e-5)
    assert fitted.log_likelihood == pytest.approx(-9594.974, abs=1e-3)
    assert fitted.convergence is not None
    assert fitted.convergence.gradient_norm < 1e-9
    assert fitted.n_customers == 2357


def test_predictions_agree_with_lifetimes_on_the_same_parameters() -> None:
    assert PUBLISHED.p_alive(X, TX, T) == pytest.approx(LIFETIMES_P_ALIVE, rel=1e-12)
    assert PUBLISHED.expected_purchases(39.0, X, TX, T) == pytest.approx(
        LIFETIMES_EXPECTED_39, rel=1e-12
    )
    assert PUBLISHED.expected_purchases_new(np.array([1.0, 10, 39, 78])) == pytest.approx(
        LIFETIMES_NEW, rel=1e-12
    )
    per_customer = [PUBLISHED.log_likelihood_of(X[i], TX[i], T[i]) for i in range(X.size)]
    assert per_customer == pytest.approx(LIFETIMES_LOG_LIKELIHOOD, rel=1e-12)
    total = PUBLISHED.log_likelihood_of(CDNOW.frequency, CDNOW.recency, CDNOW.T)
    assert total == pytest.approx(LIFETIMES_CDNOW_TOTAL, rel=1e-13)


def _mp_log_likelihood(
    x: float, tx: float, t: float, r: float, a: float, s: float, b: float
) -> mp.mpf:
    """The note's equation (22) with its 2F1 terms at 40 digits: an independent reference."""
    x, tx, t, r, a, s, b = (mp.mpf(v) for v in (x, tx, t, r, a, s, b))
    rsx = r + s + x
    if a >= b:

        def f(u: mp.mpf) -> mp.mpf:
            return mp.hyp2f1(rsx, s + 1, rsx + 1, (a - b) / (a + u)) / (a + u) ** rsx
    else:

        def f(u: mp.mpf) -> mp.mpf:
            return mp.hyp2f1(rsx, r + x, rsx + 1, (b - a) / (b + u)) / (b + u) ** rsx

    a0 = f(tx) - f(t)
    head = mp.loggamma(r + x) - mp.loggamma(r) + r * mp.log(a) + s * mp.log(b)
    return head + mp.log(1 / ((a + t) ** (r + x) * (b + t) ** s) + s / rsx * a0)


@pytest.mark.parametrize(
    "params",
    [
        (0.55, 10.58, 0.61, 11.67),
        (2.6, 339.0, 0.107, 7.3),  # alpha 46 times beta: z near 1
        (0.3, 5.0, 1.0, 400.0),  # beta 80 times alpha, s = 1
        (1.7, 80.0, 3.2, 80.0),  # alpha = beta: z = 0
        (0.02, 0.5, 25.0, 900.0),
    ],
)
def test_the_likelihood_matches_mpmath(params: tuple[float, float, float, float]) -> None:
    model = ParetoNBD.from_params(r=params[0], alpha=params[1], s=params[2], beta=params[3])
    rows = [(0, 0, 50), (1, 3, 50), (4, 40, 41), (40, 300, 700), (400, 690, 700), (3, 10, 10)]
    for x, tx, t in rows:
        ours = model.log_likelihood_of(x, tx, t)
        with mp.workdps(40):
            ref = float(_mp_log_likelihood(x, tx, t, *params))
        assert ours == pytest.approx(ref, rel=1e-11, abs=1e-11), (x, tx, t)


def test_the_gradient_matches_finite_differences() -> None:
    x, tx, t = CDNOW.frequency * 3, CDNOW.recency * 7, CDNOW.T * 7
    for p in ((0.55, 74.0, 0.61, 81.0), (2.0, 300.0, 0.2, 9.0), (0.4, 6.0, 1.5, 200.0)):
        model = ParetoNBD.from_params(r=p[0], alpha=p[1], s=p[2], beta=p[3])
        theta = np.log(np.array(p))
        from lifecycle.clv.pareto import _build_likelihood  # the objective the fit uses

        lik = _build_likelihood(x, tx, t, None)
        _, grad = lik(theta)
        step = 1e-6
        numeric = [(lik(theta + e)[0] - lik(theta - e)[0]) / (2 * step) for e in np.eye(4) * step]
        assert grad == pytest.approx(numeric, rel=1e-5, abs=1e-8)
        assert model.log_likelihood_of(x, tx, t) == pytest.approx(-lik(theta)[0] * lik.total)


@pytest.mark.parametrize(
    ("c1", "b1", "z"),
    [
        (0.5, 1.6, 0.0),
        (0.5, 1.6, 0.3),
        (3.0, 0.2, 0.98),
        (0.05, 1.01, 0.999),
        (500.0, 1.6, 0.9),
        (2.0, 2.0, 0.5),
        (0.2, 50.0, 0.97),
        (1e-3, 1e-3, 0.7),
    ],
)
def test_the_continued_fraction_and_its_derivatives_match_mpmath(
    c1: float, b1: float, z: float
) -> None:
    from lifecycle.clv._special import _log_g  # the kernel itself, against 40 digits

    c2 = c1 + b1

    def log_g(a: mp.mpf, c: mp.mpf, zz: mp.mpf) -> mp.mpf:
        return mp.log(mp.hyp2f1(1, a, c, zz))

    got = _log_g(np.array([c1]), np.array([c2]), np.array([z]), True)
    with mp.workdps(40):
        want = (
            log_g(c1, c2, z),
            mp.diff(lambda a: log_g(a, c2, z), c1),
            mp.diff(lambda c: log_g(c1, c, z), c2),
            mp.diff(lambda zz: log_g(c1, c2, zz), z),
        )
    for ours, ref in zip(got, want, strict=True):
        assert float(ours[0]) == pytest.approx(float(ref), rel=1e-12, abs=1e-15)


def test_huge_frequencies_and_times_stay_finite() -> None:
    model = ParetoNBD.from_params(r=0.55, alpha=10.58, s=0.61, beta=11.67)
    x = np.array([0.0, 1e4, 1e6, 5.0, 3e3])
    tx = np.array([0.0, 1e5, 9e6, 1e7, 1.0])
    t = np.array([1e7, 1e5, 1e7, 1e7, 1e6])
    for out in (
        model.p_alive(x, tx, t),
        model.expected_purchases(52.0, x, tx, t),
        pareto_log_tail(x, t, 0.55, 10.58, 0.61, 11.67)[0],
    ):
        assert np.isfinite(out).all()
    assert ((model.p_alive(x, tx, t) >= 0) & (model.p_alive(x, tx, t) <= 1)).all()


def test_estimates_approach_the_truth() -> None:
    truth = ParetoNBD.from_params(r=0.7, alpha=50.0, s=0.8, beta=120.0)
    rng = np.random.default_rng(4)
    sim = simulate_customers(truth, rng.integers(200, 500, 20_000).astype(float), rng)
    fit = ParetoNBD().fit(sim.frequency, np.floor(sim.recency), sim.T)
    se = fit.standard_errors
    assert se is not None
    for name, value in truth.params.items():
        assert abs(fit.params[name] - value) < 4 * se[name], name


def test_the_time_unit_rescales_alpha_and_beta(fitted: ParetoNBDModel) -> None:
    days = fitted.in_days()
    assert days.params["alpha"] == pytest.approx(fitted.params["alpha"] * 7)
    assert days.params["beta"] == pytest.approx(fitted.params["beta"] * 7)
    assert days.p_alive(2, 30.43 * 7, 38.86 * 7) == pytest.approx(fitted.p_alive(2, 30.43, 38.86))
    assert isinstance(days, AliveModel)
    assert isinstance(fitted.p_alive(2, 30.43, 38.86), float)


def test_it_prices_customer_lifetime_value(fitted: ParetoNBDModel) -> None:
    spend = GammaGamma().fit(CDNOW.frequency, CDNOW.monetary_value)
    value = customer_lifetime_value(
        fitted, spend, CDNOW.frequency, CDNOW.recency, CDNOW.T, CDNOW.monetary_value
    )
    assert np.isfinite(value).all()
    assert (value >= 0).all()
    # against the step sum written out for one customer, 12 months of 30 days and a last 5
    i = 5
    days = fitted.in_days()
    ends = np.minimum(np.arange(1, 14) * 30.0, 365.0)
    cum = np.array(
        [
            days.expected_purchases(e, CDNOW.frequency[i], CDNOW.recency[i] * 7, CDNOW.T[i] * 7)
            for e in ends
        ]
    )
    steps = np.diff(cum, prepend=0.0)
    expected = (steps * 1.1 ** (-ends / 365)).sum() * spend.expected_spend(
        CDNOW.frequency[i], CDNOW.monetary_value[i]
    )[0]
    assert value[i] == pytest.approx(expected, rel=1e-10)


def test_the_model_round_trips_through_json(fitted: ParetoNBDModel) -> None:
    back = ParetoNBDModel.from_json(fitted.to_json())
    assert back == fitted
    assert json.loads(fitted.to_json())["model"] == "Pareto/NBD"
    with pytest.raises(DataError):
        ParetoNBDModel.from_json(BetaGeo.from_params(r=1, alpha=1, a=1, b=1).to_json())


def test_data_that_cannot_identify_the_model_raise() -> None:
    with pytest.raises(DataError, match="repeat"):
        ParetoNBD().fit([0, 0, 0], [0, 0, 0], [5, 6, 7])
    with pytest.raises(DataError):
        ParetoNBD().fit([1], [1], [2])
    with pytest.raises(DataError, match="penalty"):
        ParetoNBD(penalty=-1.0)
