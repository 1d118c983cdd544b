"""The Pareto/NBD model of repeat buying (Schmittlein, Morrison & Colombo 1987), the model the
BG/NBD approximates: fit, P(alive), expected purchases.

Customers buy as a Poisson process with rate lambda ~ Gamma(r, alpha) while alive, and live an
exponential time with rate mu ~ Gamma(s, beta), dying at any moment rather than only after a
purchase. The likelihood follows Fader, Hardie & Lee (2005), "A note on deriving the Pareto/NBD
model and related expressions", with its Gauss hypergeometric terms evaluated in log space
(:func:`lifecycle.clv._special.pareto_log_tail`). Times are in the fitted unit,
``time_unit_days`` days long.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, overload

import attrs
import numpy as np
import numpy.typing as npt
from scipy.special import digamma, expit, gammaln

from lifecycle._display import model_html, model_repr
from lifecycle.clv._data import (
    Floats,
    check_rfm,
    check_unit,
    check_weights,
    in_time_unit,
    unique_rows,
)
from lifecycle.clv._optimize import (
    Convergence,
    Matrix,
    Prior,
    check_penalty,
    fit_from_json,
    fit_to_json,
    frozen_matrix,
    maximise,
)
from lifecycle.clv._special import expm1_ratio, pareto_log_tail
from lifecycle.errors import DataError

__all__ = ["ParetoNBD", "ParetoNBDModel"]

_NAMES = ("r", "alpha", "s", "beta")
_VARIANT = "Pareto/NBD"


def _frozen(mapping: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType({k: float(v) for k, v in mapping.items()})


def _pieces(
    x: Floats,
    tx: Floats,
    T: Floats,
    p: tuple[float, float, float, float],
) -> tuple[Floats, Floats, Floats, Floats]:
    """Per row: E1 = -(r+x) ln(alpha+T) - s ln(beta+T), ln(s/(r+s+x)), ln F(t_x) and ln F(T)."""
    r, alpha, s, beta = p
    n = x.size
    (px, pt), _, inv = unique_rows([np.concatenate([x, x]), np.concatenate([tx, T])], inverse=True)
    assert inv is not None
    log_f, _ = pareto_log_tail(px, pt, r, alpha, s, beta, gradient=False)
    e1 = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    ls_a = math.log(s) - np.log(r + s + x)
    return e1, ls_a, log_f[inv[:n]], log_f[inv[n:]]


def _log_a0(lfx: Floats, lft: Floats) -> Floats:
    """ln(F(t_x) - F(T)), -inf where t_x = T."""
    with np.errstate(divide="ignore"):
        return np.asarray(lfx + np.log1p(-np.exp(np.minimum(lft - lfx, 0.0))), np.float64)


class _Likelihood:
    """Mean negative log-likelihood of compressed data and its gradient in log-parameters.

    Per customer: ln L = lnG(r+x) - lnG(r) + r ln(alpha) + s ln(beta)
    + logaddexp(E1, ln(s/(r+s+x)) + ln(F(t_x) - F(T))).

    The hypergeometric terms and everything but the mixing of the two components are computed
    once per distinct (x, t) pair; the rows only combine them, and their gradient weights are
    summed back onto the pairs with ``bincount``.
    """

    def __init__(self, x: Floats, tx: Floats, T: Floats, w: Floats):
        self.x, self.tx, self.T, self.w = x, tx, T, w
        self.total = float(w.sum())
        (self.xu,), self.xw, _ = unique_rows([x], w)
        n = x.size
        (px, pt), _, inv = unique_rows(
            [np.concatenate([x, x]), np.concatenate([tx, T])], inverse=True
        )
        assert inv is not None
        self.px, self.pt, self.ix, self.it = px, pt, inv[:n], inv[n:]
        self.wt_pair = np.bincount(self.it, weights=w, minlength=px.size)

    def __call__(self, theta: Floats) -> tuple[float, Floats]:
        with np.errstate(all="ignore"):
            return self._eval(theta)

    def _eval(self, theta: Floats) -> tuple[float, Floats]:
        r, alpha, s, beta = (float(v) for v in np.exp(theta))
        px, pt, ix, it, w = self.px, self.pt, self.ix, self.it, self.w
        n_pairs = px.size
        log_f, grad_f = pareto_log_tail(px, pt, r, alpha, s, beta)
        # per pair, as if its t were T: E1, and ln(s/(r+s+x))
        la, lb = np.log(alpha + pt), np.log(beta + pt)
        e1 = -(r + px) * la - s * lb
        inv_a = 1.0 / (r + s + px)
        ls_a = math.log(s) + np.log(inv_a)
        d = log_f - e1  # ln F(t) - E1(t), bounded: F(t) is E1(t) times a factor near 1
        e1_t = e1[it]
        dt = d[it]
        dx = log_f[ix] - e1_t
        lsa_t = ls_a[it]
        q = lsa_t + dx + np.log1p(-np.exp(np.minimum(dt - dx, 0.0)))
        bme = np.logaddexp(0.0, q)  # ln L2 - E1 per row
        ll = float(self.xw @ gammaln(r + self.xu))
        ll += self.total * (-gammaln(r) + r * math.log(alpha) + s * math.log(beta))
        ll += float(self.wt_pair @ e1) + float(w @ bme)
        # gradient weights of E1, of ln F(t_x) and of ln F(T), summed onto the pairs
        base = lsa_t - bme
        w1 = np.bincount(it, weights=w * np.exp(-bme), minlength=n_pairs)
        wx = np.bincount(ix, weights=w * np.exp(base + dx), minlength=n_pairs)
        wt = np.bincount(it, weights=w * np.exp(base + dt), minlength=n_pairs)
        g = np.empty(4)
        g[0] = (
            self.xw @ digamma(r + self.xu)
            + self.total * (math.log(alpha) - digamma(r))
            - w1 @ la
            - (wx - wt) @ inv_a
        )
        g[1] = self.total * r / alpha - w1 @ ((r + px) / (alpha + pt))
        g[2] = self.total * math.log(beta) - w1 @ lb + (wx - wt) @ (1.0 / s - inv_a)
        g[3] = self.total * s / beta - w1 @ (s / (beta + pt))
        g += grad_f @ (wx - wt)
        grad = -g * np.array([r, alpha, s, beta]) / self.total
        return -ll / self.total, grad


@attrs.frozen(kw_only=True)
class ParetoNBDModel:
    """A Pareto/NBD model with known parameters: fitted, built, or loaded.

    ``params`` maps ``r``, ``alpha`` (purchase rates ~ Gamma(r, alpha)), ``s``, ``beta``
    (drop-out rates ~ Gamma(s, beta)); ``alpha`` and ``beta`` are in the unit of time the model
    was fitted in, ``time_unit_days`` days long. ``standard_errors``, ``log_covariance`` (of the
    log-parameters, in the order of ``params``), ``log_likelihood``, ``convergence`` and
    ``n_customers`` are set for fitted models; ``penalty`` is the weight of the priors of a
    penalised fit (0: maximum likelihood).
    """

    params: Mapping[str, float] = attrs.field(converter=_frozen)
    time_unit_days: float = 1.0
    standard_errors: Mapping[str, float] | None = None
    log_likelihood: float | None = None
    convergence: Convergence | None = None
    n_customers: float | None = None
    log_covariance: Matrix | None = attrs.field(default=None, converter=frozen_matrix)
    penalty: float = 0.0

    def __attrs_post_init__(self) -> None:
        if set(self.params) != set(_NAMES):
            raise DataError("must hold exactly r, alpha, s and beta", column="params")
        for name in _NAMES:
            v = self.params[name]
            if not (math.isfinite(v) and v > 0):
                raise DataError(f"must be a finite number > 0, got {v!r}", column=name)
        check_unit(self.time_unit_days)

    @property
    def variant(self) -> Literal["Pareto/NBD"]:
        """``"Pareto/NBD"``."""
        return "Pareto/NBD"

    @property
    def names(self) -> tuple[str, ...]:
        """The parameter names, in the order of ``log_covariance``."""
        return _NAMES

    def __repr__(self) -> str:
        return model_repr("ParetoNBDModel", self.variant, self.params, self, self.time_unit_days)

    def _repr_html_(self) -> str:
        return model_html(self.variant, self.params, self, self.time_unit_days)

    @property
    def _p(self) -> tuple[float, float, float, float]:
        p = self.params
        return p["r"], p["alpha"], p["s"], p["beta"]

    def in_days(self) -> ParetoNBDModel:
        """The same model with days as its unit."""
        return self.in_unit(1.0)

    def in_unit(self, time_unit_days: float) -> ParetoNBDModel:
        """The same model measuring time in units of ``time_unit_days`` days (alpha and beta
        rescale)."""
        return in_time_unit(self, ("alpha", "beta"), time_unit_days)

    def with_log_params(self, theta: npt.ArrayLike) -> ParetoNBDModel:
        """The same model (unit) at other log-parameters, without fit statistics."""
        values = np.exp(np.asarray(theta, dtype=np.float64))
        return ParetoNBDModel(
            params=dict(zip(_NAMES, values.tolist(), strict=True)),
            time_unit_days=self.time_unit_days,
        )

    @overload
    def p_alive(self, frequency: float, recency: float, T: float) -> float: ...
    @overload
    def p_alive(
        self, frequency: npt.NDArray[Any], recency: npt.ArrayLike, T: npt.ArrayLike
    ) -> Floats: ...
    def p_alive(
        self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
    ) -> float | Floats:
        """Probability that each customer is still alive at T (Fader, Hardie & Lee 2005, note,
        eq. 18), as a logistic of a log-odds: finite for any history. Scalars in give a float
        out."""
        x, tx, big_t = check_rfm(frequency, recency, T)
        out = self._p_alive(x, tx, big_t)
        return float(out[0]) if np.ndim(frequency) == 0 and out.size == 1 else out

    def _p_alive(self, x: Floats, tx: Floats, T: Floats) -> Floats:
        (ux, utx, ut), _, inv = unique_rows(
            [np.ascontiguousarray(x), np.ascontiguousarray(tx), np.ascontiguousarray(T)],
            inverse=True,
        )
        assert inv is not None
        with np.errstate(all="ignore"):
            e1, ls_a, lfx, lft = _pieces(ux, utx, ut, self._p)
            out = expit(e1 - ls_a - _log_a0(lfx, lft))
        return np.asarray(out[inv], dtype=np.float64)

    @overload
    def expected_purchases(self, t: float, frequency: float, recency: float, T: float) -> float: ...
    @overload
    def expected_purchases(
        self,
        t: npt.ArrayLike,
        frequency: npt.NDArray[Any],
        recency: npt.ArrayLike,
        T: npt.ArrayLike,
    ) -> Floats: ...
    def expected_purchases(
        self, t: npt.ArrayLike, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
    ) -> float | Floats:
        """Expected repeat purchases in the next ``t`` time units given each customer's history
        (Schmittlein, Morrison & Colombo 1987; the note's eq. 20): P(alive) times
        (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)], exact at s = 1."""
        x, tx, big_t = check_rfm(frequency, recency, T)
        tt = np.broadcast_to(_horizon(t), x.shape)
        out = self._p_alive(x, tx, big_t) * self._alive_purchases(tt, x, big_t)
        return float(out[0]) if np.ndim(frequency) == 0 and out.size == 1 else out

    def _alive_purchases(self, t: Floats, x: Floats, T: Floats) -> Floats:
        """Expected purchases in (T, T+t] of customers alive at T (arrays of one shape)."""
        r, alpha, s, beta = self._p
        log1p_c = np.log1p(t / (beta + T))
        return np.asarray(
            (r + x) * (beta + T) / (alpha + T) * log1p_c * expm1_ratio(-(s - 1.0) * log1p_c),
            dtype=np.float64,
        )

    def expected_purchases_new(self, t: npt.ArrayLike) -> Floats:
        """Expected repeat purchases in ``t`` time units of a customer who has just made a first
        purchase: r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]."""
        tt = _horizon(t)
        zero = np.zeros_like(tt)
        return self._alive_purchases(tt, zero, zero)

    def log_likelihood_of(
        self,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
    ) -> float:
        """Total log-likelihood of the data under these parameters."""
        lik = _build_likelihood(frequency, recency, T, weights)
        f, _ = lik(np.log(np.array(self._p)))
        return float(-f * lik.total)

    def to_json(self) -> str:
        """The model as plain JSON (never pickle); :meth:`from_json` reads it back."""
        return fit_to_json(_VARIANT, self, time_unit_days=self.time_unit_days)

    @classmethod
    def from_json(cls, text: str) -> ParetoNBDModel:
        """A model saved by :meth:`to_json`."""
        return fit_from_json(
            text,
            {_VARIANT},
            lambda data, common: cls(time_unit_days=float(data["time_unit_days"]), **common),
        )


def _horizon(t: npt.ArrayLike) -> Floats:
    tt = np.asarray(t, dtype=np.float64)
    if not np.isfinite(tt).all() or (tt < 0).any():
        raise DataError("must be finite and >= 0", column="t")
    return tt


def _build_likelihood(
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    weights: npt.ArrayLike | None,
) -> _Likelihood:
    x, tx, big_t = check_rfm(frequency, recency, T)
    w = check_weights(weights, x.size)
    if w is not None:
        keep = w > 0
        x, tx, big_t, w = x[keep], tx[keep], big_t[keep], w[keep]
    (ux, utx, ut), counts, _ = unique_rows([x, tx, big_t], w)
    return _Likelihood(ux, utx, ut, counts)


@attrs.frozen
class ParetoNBD:
    """The Pareto/NBD model. ``ParetoNBD().fit(frequency, recency, T)`` returns a
    :class:`ParetoNBDModel`.

    ``penalty`` (default 0: maximum likelihood) is the weight 1/sd^2 of weak normal priors on
    the log-parameters, centred at r = s = 1, alpha = mean T / mean frequency and beta = mean T.
    """

    penalty: float = attrs.field(default=0.0, converter=check_penalty, kw_only=True)

    def fit(
        self,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
        *,
        time_unit_days: float = 1.0,
    ) -> ParetoNBDModel:
        """Maximum-likelihood (or, with ``penalty``, penalised) fit; arguments as
        :meth:`lifecycle.clv.BetaGeo.fit`.

        Raises:
            DataError: malformed input, or data that cannot identify the model (fewer than two
                customers, no repeat buyer).
            ConvergenceError: the optimiser did not reach a maximum.
        """
        unit = check_unit(time_unit_days)
        lik = _build_likelihood(frequency, recency, T, weights)
        if lik.total < 2:
            raise DataError("at least two customers are needed to fit a model", column="frequency")
        if not (lik.xu > 0).any():
            raise DataError("no customer made a repeat purchase", column="frequency")
        if lik.T.max() <= 0:
            raise DataError("every T is 0: no time was observed", column="T")
        start = _start_from(lik)
        prior = Prior(centre=start, penalty=self.penalty) if self.penalty > 0 else None
        # a parameter e^12 (160,000) times its start is on its way to the boundary, where the
        # hypergeometric terms need the deepest continued fractions: stop there
        res = maximise(_VARIANT, lik, start, lik.total, _NAMES, prior, leash=12.0)
        return ParetoNBDModel(
            params=dict(zip(_NAMES, res.params.tolist(), strict=True)),
            time_unit_days=unit,
            standard_errors=dict(zip(_NAMES, res.standard_errors.tolist(), strict=True)),
            log_likelihood=res.log_likelihood,
            convergence=res.convergence,
            n_customers=lik.total,
            log_covariance=res.log_covariance,
            penalty=self.penalty,
        )

    @staticmethod
    def from_params(
        *, r: float, alpha: float, s: float, beta: float, time_unit_days: float = 1.0
    ) -> ParetoNBDModel:
        """A model with known parameters (alpha and beta in units of ``time_unit_days`` days)."""
        return ParetoNBDModel(
            params={"r": r, "alpha": alpha, "s": s, "beta": beta}, time_unit_days=time_unit_days
        )


def _start_from(lik: _Likelihood) -> Floats:
    mean_x = float(lik.w @ lik.x) / lik.total
    mean_t = max(float(lik.w @ lik.T) / lik.total, 1e-6)
    return np.log(np.array([1.0, mean_t / max(mean_x, 1e-3), 1.0, mean_t], dtype=np.float64))
