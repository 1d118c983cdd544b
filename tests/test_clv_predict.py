"""Predictions against high-precision references computed with mpmath, at ordinary and extreme
arguments, and the customer lifetime value."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

from lifecycle.clv import BetaGeo, BetaGeoModel, GammaGamma, customer_lifetime_value
from lifecycle.datasets.cdnow import load_cdnow_summary
from lifecycle.errors import DataError

mp.mp.dps = 60

PARAMS = [
    (0.243, 4.414, 0.793, 2.426),  # CDNOW
    (0.2, 3.0, 0.2, 0.3),  # a + b < 1
    (0.243, 4.414, 1.0, 2.426),  # a = 1 exactly
    (0.243, 4.414, 1.0 + 1e-9, 2.426),  # a next to 1
    (1e-3, 1e-3, 1e-3, 1e-3),  # tiny
    (500.0, 2e4, 80.0, 900.0),  # huge
    (3.0, 0.5, 4.0, 0.7),
]
HISTORIES = [  # (frequency, recency, T)
    (0, 0.0, 38.86),
    (1, 1.71, 38.86),
    (2, 30.43, 38.86),
    (40, 38.0, 39.0),
    (1000, 20.0, 39.0),
    (1_000_000, 5e5, 1e6),
    (3, 0.5, 1e6),
    (5, 0.0, 0.5),
]


def _mp_p_alive(r: float, alpha: float, a: float, b: float, x: int, tx: float, T: float) -> mp.mpf:
    r, alpha, a, b, tx, T = map(mp.mpf, (r, alpha, a, b, tx, T))
    if x == 0:
        return mp.mpf(1)
    return 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x))


def _mp_alive_purchases(
    r: float, alpha: float, a: float, b: float, x: int, T: float, t: float
) -> mp.mpf:
    """Fader, Hardie & Lee (2005) eq. 10 without the P(alive) factor, Euler-transformed so that
    mpmath's series converges quickly for huge x; a = 1 is taken as a limit."""
    with mp.workdps(120):  # the bracket cancels to ~(a - 1) t / T: carry enough digits
        r, alpha, b, T, t = map(mp.mpf, (r, alpha, b, T, t))
        a = mp.mpf(a) if a != 1.0 else mp.mpf(1) + mp.mpf(10) ** -30
        z = t / (alpha + T + t)
        c = t / (alpha + T)
        big_c = a + b + x - 1
        f = mp.hyp2f1(a + b - 1 - r, a - 1, big_c, z)
        return +(big_c / (a - 1) * (1 - (1 + c) ** (1 - a) * f))


def _mp_paper_alive_purchases(
    r: float, alpha: float, a: float, b: float, x: int, T: float, t: float
) -> mp.mpf:
    """Eq. 10 exactly as printed, for a cross-check of the transformation."""
    r, alpha, a, b, T, t = map(mp.mpf, (r, alpha, a, b, T, t))
    z = t / (alpha + T + t)
    return (
        (a + b + x - 1)
        / (a - 1)
        * (
            1
            - ((alpha + T) / (alpha + T + t)) ** (r + x) * mp.hyp2f1(r + x, b + x, a + b + x - 1, z)
        )
    )


def test_the_transformed_reference_is_the_printed_formula() -> None:
    for args in [(0.243, 4.414, 0.793, 2.426, 2, 38.86, 39.0), (0.2, 3.0, 0.2, 0.3, 0, 10.0, 5.0)]:
        assert mp.almosteq(_mp_alive_purchases(*args), _mp_paper_alive_purchases(*args), 1e-40)


def test_the_reference_is_the_expected_purchases_of_an_alive_customer() -> None:
    # E over p ~ Beta(a, b+x) of (1 - (1 + p t/(alpha+T))^-(r+x)) / p, by quadrature
    r, alpha, a, b, x, T, t = 0.243, 4.414, 0.793, 2.426, 2, 38.86, 39.0
    c, k, beta = t / (alpha + T), r + x, b + x
    integrand = lambda p: (1 - (1 + p * c) ** -k) / p * p ** (a - 1) * (1 - p) ** (beta - 1)  # noqa: E731
    value = mp.quad(integrand, [0, 1]) / mp.beta(a, beta)
    assert mp.almosteq(value, _mp_alive_purchases(r, alpha, a, b, x, T, t), 1e-12)


@pytest.mark.parametrize("params", PARAMS)
def test_p_alive_matches_mpmath(params: tuple[float, float, float, float]) -> None:
    model = BetaGeo.from_params(**dict(zip(("r", "alpha", "a", "b"), params, strict=True)))
    x, tx, T = (np.array(col, dtype=float) for col in zip(*HISTORIES, strict=True))
    got = model.p_alive(x, tx, T)
    assert np.isfinite(got).all()
    for i, (xi, txi, Ti) in enumerate(HISTORIES):
        want = _mp_p_alive(*params, xi, txi, Ti)
        assert got[i] == pytest.approx(float(want), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("t", [1e-7, 1.0, 39.0, 2000.0])
def test_expected_purchases_match_mpmath(
    params: tuple[float, float, float, float], t: float
) -> None:
    model = BetaGeo.from_params(**dict(zip(("r", "alpha", "a", "b"), params, strict=True)))
    x, tx, T = (np.array(col, dtype=float) for col in zip(*HISTORIES, strict=True))
    got = model.expected_purchases(t, x, tx, T)
    assert np.isfinite(got).all()
    for i, (xi, txi, Ti) in enumerate(HISTORIES):
        want = _mp_p_alive(*params, xi, txi, Ti) * _mp_alive_purchases(*params, xi, Ti, t)
        # the long-horizon closed form (t > 30 (alpha + T)) is good to ~1e-8; the series to ~1e-11
        rel = 1e-7 if t > 30 * (params[1] + Ti) else 1e-10
        assert got[i] == pytest.approx(float(want), rel=rel, abs=1e-300), (xi, txi, Ti)


def test_expected_purchases_for_new_customers_match_equation_9() -> None:
    r, alpha, a, b = 0.243, 4.414, 0.793, 2.426
    model = BetaGeo.from_params(r=r, alpha=alpha, a=a, b=b)
    for t in (0.5, 39.0, 78.0):
        want = _mp_alive_purchases(r, alpha, a, b, 0, 0.0, t)
        assert model.expected_purchases_new(t) == pytest.approx(float(want), rel=1e-11)


def test_probability_of_purchases_matches_equation_8() -> None:
    r, alpha, a, b = map(mp.mpf, (0.243, 4.414, 0.793, 2.426))
    model = BetaGeo.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    t = mp.mpf(39)
    ks = np.arange(0, 60)
    got = model.probability_of_purchases(ks, 39.0)
    for k in (0, 1, 7, 59):

        def nb(j):
            return (
                mp.gamma(r + j)
                / (mp.gamma(r) * mp.factorial(j))
                * (alpha / (alpha + t)) ** r
                * (t / (alpha + t)) ** j
            )

        want = mp.beta(a, b + k) / mp.beta(a, b) * nb(k)
        if k > 0:
            want += (
                mp.beta(a + 1, b + k - 1) / mp.beta(a, b) * (1 - mp.fsum(nb(j) for j in range(k)))
            )
        assert got[k] == pytest.approx(float(want), rel=1e-10)
    assert model.probability_of_purchases(np.arange(0, 3000), 39.0).sum() == pytest.approx(
        1, abs=1e-6
    )


def test_the_likelihood_matches_mpmath_per_customer() -> None:
    params = (0.243, 4.414, 0.793, 2.426)
    model = BetaGeo.from_params(**dict(zip(("r", "alpha", "a", "b"), params, strict=True)))
    r, alpha, a, b = map(mp.mpf, params)
    for x, tx, T in [(0, 0.0, 38.86), (2, 30.43, 38.86), (1000, 20.0, 39.0)]:
        lead = mp.gamma(r + x) * alpha**r / mp.gamma(r)
        lik = mp.beta(a, b + x) / mp.beta(a, b) * lead / (alpha + T) ** (r + x)
        if x > 0:
            lik += mp.beta(a + 1, b + x - 1) / mp.beta(a, b) * lead / (alpha + tx) ** (r + x)
        assert model.log_likelihood_of([x], [tx], [T]) == pytest.approx(
            float(mp.log(lik)), rel=1e-12
        )


def test_predictions_stay_finite_for_a_million_varied_customers() -> None:
    rng = np.random.default_rng(0)
    n = 1_000_000
    T = rng.uniform(0, 1e5, n)
    x = rng.integers(0, 5000, n).astype(float)
    tx = np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0)
    model = BetaGeo.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    alive = model.p_alive(x, tx, T)
    assert ((alive >= 0) & (alive <= 1)).all()
    expected = model.expected_purchases(10.0, x[:20000], tx[:20000], T[:20000])
    assert np.isfinite(expected).all()
    assert (expected >= 0).all()


def test_scalars_in_give_floats_out() -> None:
    model = BetaGeo.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    assert isinstance(model.p_alive(2, 30.43, 38.86), float)
    assert isinstance(model.expected_purchases(39, 2, 30.43, 38.86), float)
    with pytest.raises(DataError):
        model.p_alive(2, 40.0, 38.86)
    with pytest.raises(DataError):
        model.expected_purchases(-1.0, 2, 30.43, 38.86)


def test_gamma_gamma_expected_spend_is_the_weighted_mean_of_population_and_customer() -> None:
    gg = GammaGamma.from_params(p=6.25, q=3.74, gamma=15.44)
    x = np.array([0.0, 1.0, 10.0])
    m = np.array([0.0, 20.0, 50.0])
    got = gg.expected_spend(x, m)
    pop = 6.25 * 15.44 / 2.74
    for i in range(3):
        weight = 6.25 * x[i] / (6.25 * x[i] + 2.74)
        assert got[i] == pytest.approx((1 - weight) * pop + weight * m[i], rel=1e-13)
    with pytest.raises(DataError):
        GammaGamma.from_params(p=1.0, q=0.5, gamma=1.0).expected_spend([0], [0.0])


def test_clv_is_the_discounted_sum_of_expected_purchases_times_spend() -> None:
    data = load_cdnow_summary()
    bg = BetaGeo.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426, time_unit_days=7)
    gg = GammaGamma.from_params(p=6.25, q=3.74, gamma=15.44)
    x, tx, T, m = data.frequency, data.recency, data.T, data.monetary_value
    value = customer_lifetime_value(
        bg, gg, x, tx, T, m, horizon_days=364, annual_discount_rate=0.0, step_days=364
    )
    undiscounted = bg.expected_purchases(52, x, tx, T) * gg.expected_spend(x, m)
    np.testing.assert_allclose(value, undiscounted, rtol=1e-12)
    monthly = customer_lifetime_value(
        bg, gg, x, tx, T, m, horizon_days=364, annual_discount_rate=0.1, step_days=28
    )
    steps = np.arange(1, 14) * 4.0
    cum = np.array([bg.expected_purchases(s, x, tx, T) for s in steps])
    inc = np.diff(np.vstack([np.zeros(x.size), cum]), axis=0)
    discount = 1.1 ** (-steps * 7 / 365)
    np.testing.assert_allclose(
        monthly, (inc * discount[:, None]).sum(0) * gg.expected_spend(x, m), rtol=1e-12
    )
    assert (monthly < value + 1e-12).all()
    with pytest.raises(DataError):
        customer_lifetime_value(bg, gg, x, tx, T, m, step_days=0)


def test_mbgnbd_predictions_match_the_shifted_formulas() -> None:
    r, alpha, a, b = 0.5, 6.0, 0.9, 1.6
    model = BetaGeoModel(params={"r": r, "alpha": alpha, "a": a, "b": b}, variant="MBG/NBD")
    for x, tx, T in [(0, 0.0, 30.0), (3, 20.0, 30.0)]:
        want_alive = 1 / (
            1 + mp.mpf(a) / (b + x) * ((alpha + mp.mpf(T)) / (alpha + mp.mpf(tx))) ** (r + x)
        )
        assert model.p_alive(x, tx, T) == pytest.approx(float(want_alive), rel=1e-12)
        # the posterior of p given alive is Beta(a, b + x + 1): eq. 10 with b -> b + 1
        want = want_alive * _mp_alive_purchases(r, alpha, a, b + 1, x, T, 20.0)
        assert model.expected_purchases(20.0, x, tx, T) == pytest.approx(float(want), rel=1e-10)
