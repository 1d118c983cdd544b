"""Expected purchases and the customer lifetime value stay finite and exact when the fitted
``a`` is large (a shop whose customers almost never drop out early), where (1 + t/(alpha+T))^(a-1)
overflows in the closed form and the series: against an mpmath quadrature of the posterior."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lifecycle.clv import BetaGeo, GammaGamma, customer_lifetime_value


def _mp_alive_purchases(
    r: float, alpha: float, a: float, b: float, x: int, T: float, t: float
) -> float:
    """E[(1 - (1 + c p)^-(r+x)) / p] over p ~ Beta(a, b+x), c = t/(alpha+T), by mpmath's
    quadrature split around the posterior's mode (the expected purchases of an alive customer)."""
    with mp.workdps(30):
        c = mp.mpf(t) / (mp.mpf(alpha) + T)
        bp, k, am = mp.mpf(b) + x, mp.mpf(r) + x, mp.mpf(a)
        mean = am / (am + bp)
        sd = mp.sqrt(am * bp / ((am + bp) ** 2 * (am + bp + 1)))
        log_beta = mp.log(mp.beta(am, bp))

        def integrand(p: mp.mpf) -> mp.mpf:
            if not 0 < p < 1:
                return mp.mpf(0)
            density = mp.exp((am - 1) * mp.log(p) + (bp - 1) * mp.log1p(-p) - log_beta)
            return density * -mp.expm1(-k * mp.log1p(c * p)) / p

        tiny = mp.mpf(10) ** -20
        cuts = {
            min(max(mean + j * sd, tiny), 1 - tiny) for j in (-30, -10, -5, -2, 0, 2, 5, 10, 30)
        }
        return float(mp.quad(integrand, sorted({mp.mpf(0), mp.mpf(1), *cuts})))


def test_the_reported_shop_has_finite_expected_purchases_and_value() -> None:
    # a = 206 from a fit on ten million lines: x = 0, T = 2, t = 365 was NaN
    model = BetaGeo.from_params(r=1.0, alpha=2.0, a=206.0, b=1500.0)
    x, tx, T = np.zeros(3), np.zeros(3), np.array([2.0, 2.0, 40.0])
    got = model.expected_purchases(365.0, x, tx, T)
    assert np.isfinite(got).all()
    for i in range(3):
        want = _mp_alive_purchases(1.0, 2.0, 206.0, 1500.0, 0, float(T[i]), 365.0)
        assert math.isclose(got[i], want, rel_tol=1e-10)
    spend = GammaGamma.from_params(p=6.0, q=4.0, gamma=15.0)
    clv = customer_lifetime_value(model, spend, x, tx, T, np.zeros(3))
    assert np.isfinite(clv).all()
    assert (clv > 0).all()


@settings(max_examples=40, deadline=None)
@example(r=1.0, alpha=1.0, a=2.0, b=168.0, x=3, T=0.5, t=46.0)  # scipy's 2F1 gave NaN there
@example(r=1.0, alpha=1.0, a=2.0, b=13246.0, x=30, T=49.0, t=13245.0)  # the series stopped short
@given(
    r=st.floats(0.01, 50.0),
    alpha=st.floats(0.01, 1000.0),
    a=st.floats(1.5, 1e4),
    b=st.floats(1.0, 1e5),
    x=st.sampled_from([0, 1, 3, 30, 1000]),
    T=st.floats(0.5, 1000.0),
    t=st.floats(0.01, 1e5),
)
def test_expected_purchases_at_extreme_parameters_match_mpmath(
    r: float, alpha: float, a: float, b: float, x: int, T: float, t: float
) -> None:
    model = BetaGeo.from_params(r=r, alpha=alpha, a=a, b=b)
    # the expected purchases over P(alive) are those of an alive customer
    hist = np.array([float(x)]), np.array([0.0 if x == 0 else T]), np.array([T])
    got = model.expected_purchases(t, *hist)
    alive = model.p_alive(*hist)
    assert np.isfinite(got).all()
    want = _mp_alive_purchases(r, alpha, a, b, x, T, t)
    assert math.isclose(got[0] / alive[0], want, rel_tol=1e-8)
