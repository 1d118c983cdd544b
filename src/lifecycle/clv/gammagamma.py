"""The Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005, "RFM and CLV";
Colombo & Jiang 1999): fit, and the expected spend per transaction of each customer.

Each transaction's value is Gamma(p, nu) with the customer's nu ~ Gamma(q, gamma), independent of
how often they buy. Only customers with a repeat purchase inform the fit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

import attrs
import numpy as np
import numpy.typing as npt
from scipy.special import digamma, gammaln, polygamma

from lifecycle._display import model_html, model_repr
from lifecycle.clv._data import Floats, as_column, check_weights, unique_rows
from lifecycle.clv._kernels import spend_sums, spend_sums_curved
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
from lifecycle.errors import DataError

__all__ = ["GammaGamma", "GammaGammaModel"]

_NAMES = ("p", "q", "gamma")


def _frozen(mapping: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType({k: float(v) for k, v in mapping.items()})


def _check_spend(frequency: npt.ArrayLike, monetary_value: npt.ArrayLike) -> tuple[Floats, Floats]:
    x = as_column(frequency, "frequency")
    m = as_column(monetary_value, "monetary_value")
    n = max(x.size, m.size)
    for arr, name in ((x, "frequency"), (m, "monetary_value")):
        if arr.size not in (1, n):
            raise DataError(f"has {arr.size} values where {n} were expected", column=name)
    x, m = np.broadcast_to(x, (n,)), np.broadcast_to(m, (n,))
    if (x < 0).any() or (x != np.floor(x)).any():
        raise DataError("must be whole numbers >= 0 (repeat purchases)", column="frequency")
    if (m < 0).any():
        raise DataError("must be >= 0", column="monetary_value")
    if ((x > 0) & (m <= 0)).any():
        raise DataError("must be > 0 for customers with repeat purchases", column="monetary_value")
    return x, m


class _Likelihood:
    """Mean negative log-likelihood of the mean spends zbar of x transactions, and its gradient
    in log-parameters (Fader, Hardie & Lee 2005, RFM and CLV, eq. 4 with zbar ~ Gamma(px, nu x)):
    lnG(px+q) - lnG(px) - lnG(q) + q ln(gamma) + (px-1) ln zbar + px ln x - (px+q) ln(gamma + x zbar).
    """

    def __init__(self, x: Floats, m: Floats, w: Floats):
        xu, xw, _ = unique_rows([x], w)
        self.xu, self.xw = xu[0], xw
        self.w = w
        self.unit: Floats | None = None if (w == 1.0).all() else w  # None: all weights 1
        self.wx = w * x
        self.xm = x * m
        self.total = float(w.sum())
        # the parts that do not move with the parameters
        self.sum_wx_log = float((self.wx * np.log(self.xm)).sum())
        self.sum_w_logm = float((w * np.log(m)).sum())

    def __call__(self, theta: Floats) -> tuple[float, Floats]:
        f, g, _ = self._evaluate(theta, curved=False)
        return f, g

    def hessian(self, theta: Floats) -> Floats:
        """The exact Hessian of the mean negative log-likelihood in log-parameters."""
        return self._evaluate(theta, curved=True)[2]

    def with_hessian(self, theta: Floats) -> tuple[float, Floats, Floats]:
        """Value, gradient and exact Hessian from one pass over the customers."""
        return self._evaluate(theta, curved=True)

    def _evaluate(self, theta: Floats, *, curved: bool) -> tuple[float, Floats, Floats]:
        """With P = (p, q, gamma), d2/dtheta_i dtheta_j = P_i P_j d2/dP_i dP_j + [i = j] P_i d/dP_i."""
        with np.errstate(all="ignore"):
            p, q, g = np.exp(theta)
            px = p * self.xu
            ll = float(self.xw @ (gammaln(px + q) - gammaln(px)))
            ll += self.total * (q * math.log(g) - gammaln(q))
            ll += p * self.sum_wx_log - self.sum_w_logm
            kernel = spend_sums_curved if curved else spend_sums
            sums = kernel(self.xm, self.unit, self.wx, float(g))
            w_log, wx_log, w_inv, wx_inv = sums[:4]
            ll -= p * wx_log + q * w_log
            dq = digamma(px + q)
            grad = np.array(
                [
                    self.xw @ (self.xu * (dq - digamma(px))) + self.sum_wx_log - wx_log,
                    self.xw @ dq + self.total * (math.log(g) - digamma(q)) - w_log,
                    self.total * q / g - p * wx_inv - q * w_inv,
                ]
            )
            scale = np.array([p, q, g])
            hess = np.full((3, 3), np.nan)
            if curved:
                w_inv2, wx_inv2 = sums[4:]
                t1q, t1p = polygamma(1, px + q), polygamma(1, px)
                pq = float(self.xw @ (self.xu * t1q))
                qq = float(self.xw @ t1q) - self.total * float(polygamma(1, q))
                gg = -self.total * q / g**2 + p * wx_inv2 + q * w_inv2
                h = np.array(
                    [
                        [float(self.xw @ (self.xu**2 * (t1q - t1p))), pq, -wx_inv],
                        [pq, qq, self.total / g - w_inv],
                        [-wx_inv, self.total / g - w_inv, gg],
                    ]
                )
                hess = -(h * np.outer(scale, scale) + np.diag(grad * scale)) / self.total
            return -ll / self.total, -grad * scale / self.total, np.asarray(hess, np.float64)


@attrs.frozen(kw_only=True)
class GammaGammaModel:
    """A Gamma-Gamma spend model with known parameters ``p``, ``q``, ``gamma``: fitted, built or
    loaded. ``standard_errors``, ``log_covariance`` (of the log-parameters, in the order p, q,
    gamma), ``log_likelihood``, ``convergence`` and ``n_customers`` are set for fitted models;
    ``penalty`` is the weight of the priors of a penalised fit (0: maximum likelihood)."""

    params: Mapping[str, float] = attrs.field(converter=_frozen)
    standard_errors: Mapping[str, float] | None = None
    log_likelihood: float | None = None
    convergence: Convergence | None = None
    n_customers: float | None = None
    log_covariance: Matrix | None = attrs.field(default=None, converter=frozen_matrix)
    penalty: float = 0.0

    def __attrs_post_init__(self) -> None:
        if set(self.params) != set(_NAMES):
            raise DataError("must hold exactly p, q and gamma", column="params")
        for name in _NAMES:
            v = self.params[name]
            if not (math.isfinite(v) and v > 0):
                raise DataError(f"must be a finite number > 0, got {v!r}", column=name)

    def __repr__(self) -> str:
        return model_repr("GammaGammaModel", "Gamma-Gamma", self.params, self)

    def _repr_html_(self) -> str:
        return model_html("Gamma-Gamma", self.params, self, None, mean_spend=self.mean_spend)

    @property
    def mean_spend(self) -> float:
        """Population mean spend per transaction, p gamma / (q - 1); infinite when q <= 1."""
        p, q, g = (self.params[n] for n in _NAMES)
        return p * g / (q - 1.0) if q > 1.0 else math.inf

    def expected_spend(self, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike) -> Floats:
        """Expected spend per transaction of each customer given x repeat transactions of mean
        ``monetary_value`` (Fader, Hardie & Lee 2005, RFM and CLV, eq. 5):
        p (gamma + x zbar) / (p x + q - 1), the population mean for x = 0.

        Raises:
            DataError: q <= 1 and some customer has no repeat purchase (the population mean is
                infinite), or malformed input.
        """
        x, m = _check_spend(frequency, monetary_value)
        p, q, g = (self.params[n] for n in _NAMES)
        den = p * x + q - 1.0
        if (den <= 0).any():
            raise DataError(
                "the expected spend is infinite where p*frequency + q <= 1", column="frequency"
            )
        return np.asarray(p * (g + x * m) / den, dtype=np.float64)

    @property
    def names(self) -> tuple[str, ...]:
        """The parameter names, in the order of ``log_covariance``."""
        return _NAMES

    def with_log_params(self, theta: npt.ArrayLike) -> GammaGammaModel:
        """The same model at other log-parameters, without fit statistics."""
        values = np.exp(np.asarray(theta, dtype=np.float64))
        return GammaGammaModel(params=dict(zip(_NAMES, values.tolist(), strict=True)))

    def to_json(self) -> str:
        """The model as plain JSON (never pickle); :meth:`from_json` reads it back."""
        return fit_to_json("Gamma-Gamma", self)

    @classmethod
    def from_json(cls, text: str) -> GammaGammaModel:
        """A model saved by :meth:`to_json`."""
        return fit_from_json(text, {"Gamma-Gamma"}, lambda data, common: cls(**common))


@attrs.frozen
class GammaGamma:
    """The Gamma-Gamma spend model. ``GammaGamma().fit(frequency, monetary_value)`` returns a
    :class:`GammaGammaModel`; customers without repeat purchases are left out of the fit.

    ``penalty`` (default 0: maximum likelihood) is the weight 1/sd^2 of weak normal priors on
    the log-parameters, centred at p = 1, q = 3 and gamma = twice the mean spend."""

    penalty: float = attrs.field(default=0.0, converter=check_penalty, kw_only=True)

    def fit(
        self,
        frequency: npt.ArrayLike,
        monetary_value: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
    ) -> GammaGammaModel:
        """Maximum-likelihood fit on customers with frequency > 0.

        Args:
            frequency: repeat purchases per customer.
            monetary_value: mean value of those repeat purchases.
            weights: customers per row, default 1.

        Raises:
            DataError: malformed input, or fewer than two repeat buyers.
            ConvergenceError: the optimiser did not reach a maximum.
        """
        x, m = _check_spend(frequency, monetary_value)
        w = check_weights(weights, x.size)
        keep = x > 0 if w is None else (x > 0) & (w > 0)
        x, m = x[keep], m[keep]
        w = np.ones(x.size) if w is None else w[keep]
        if w.sum() < 2:
            raise DataError(
                "at least two customers with repeat purchases are needed", column="frequency"
            )
        (ux, um), counts, _ = unique_rows([x, m], w, sort=False)
        lik = _Likelihood(ux, um, counts)
        # sums, not `@`: BLAS would start threads for a dot product this long
        mean = float((counts * um).sum()) / lik.total
        var = float((counts * (um - mean) ** 2).sum()) / lik.total
        if var <= 0:
            raise DataError(
                "every customer has the same spend: nothing to fit", column="monetary_value"
            )
        # moments of the population mean give a start near the maximum
        start = np.log(np.array([1.0, 3.0, 2.0 * mean]))
        prior = Prior(centre=start, penalty=self.penalty) if self.penalty > 0 else None
        res = maximise("Gamma-Gamma", lik, start, lik.total, _NAMES, prior)
        return GammaGammaModel(
            params=dict(zip(_NAMES, res.params.tolist(), strict=True)),
            standard_errors=dict(zip(_NAMES, res.standard_errors.tolist(), strict=True)),
            log_likelihood=res.log_likelihood,
            convergence=res.convergence,
            n_customers=lik.total,
            log_covariance=res.log_covariance,
            penalty=self.penalty,
        )

    @staticmethod
    def from_params(*, p: float, q: float, gamma: float) -> GammaGammaModel:
        """A model with known parameters."""
        return GammaGammaModel(params={"p": p, "q": q, "gamma": gamma})
