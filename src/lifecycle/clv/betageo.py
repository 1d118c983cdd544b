"""The BG/NBD model of repeat buying (Fader, Hardie & Lee 2005) and its MBG/NBD variant
(Batislam, Denizel & Filiztekin 2007): fit, P(alive), expected purchases, purchase counts.

Customers buy as a Poisson process with rate lambda ~ Gamma(r, alpha) and, after each repeat
purchase (MBG/NBD: also at the first), drop out for good with probability p ~ Beta(a, b). Times
are in the fitted unit, ``time_unit_days`` days long (1 = days, what ``lifecycle.status`` expects).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, overload

import attrs
import numpy as np
import numpy.typing as npt
from scipy.special import betainc, betaln, digamma, expit, gammaln

from lifecycle._display import model_html, model_repr
from lifecycle.clv._data import (
    Floats,
    check_rfm,
    check_unit,
    check_weights,
    in_time_unit,
    per_distinct,
    rfm_arrays,
    unique_rows,
)
from lifecycle.clv._kernels import Index, alive_probability, mixture_terms
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
from lifecycle.clv._special import alive_expected_purchases
from lifecycle.errors import DataError

__all__ = ["BetaGeo", "BetaGeoModel", "ModifiedBetaGeo"]

_NAMES = ("r", "alpha", "a", "b")
Variant = Literal["BG/NBD", "MBG/NBD"]
_SHIFT: dict[str, float] = {"BG/NBD": 0.0, "MBG/NBD": 1.0}


def _frozen(mapping: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType({k: float(v) for k, v in mapping.items()})


def _check_params(values: Mapping[str, float]) -> None:
    for name in _NAMES:
        v = values[name]
        if not (math.isfinite(v) and v > 0):
            raise DataError(f"must be a finite number > 0, got {v!r}", column=name)


def _narrow(index: npt.NDArray[np.int64]) -> Index:
    """Row indices in 32 bits where they fit: less to read per row."""
    return index.astype(np.int32) if index.size < 2**31 else index


class _Likelihood:
    """Mean negative log-likelihood of compressed data and its gradient in log-parameters.

    Per customer (Fader, Hardie & Lee 2005, eq. 6; MBG/NBD with s = 1):
    ln L = lnG(r+x) - lnG(r) + r ln(alpha) - lnB(a,b) + logaddexp(A1, A2), where
    A1 = lnB(a, b+x+s) - (r+x) ln(alpha+T) and
    A2 = lnB(a+1, b+x+s-1) - (r+x) ln(alpha+t_x), present when x > 0 or s = 1.
    """

    def __init__(self, x: Floats, tx: Floats, T: Floats, w: Floats, shift: float):
        self.shift = shift
        self.total = float(w.sum())
        self.T = T
        self.w = w
        (self.xu,), self.xw, xinv = unique_rows([x], w, inverse=True)
        # -(r+x) ln(alpha+T) summed per distinct T: weights and weighted frequencies
        (self.tu,), self.tw, tinv = unique_rows([T], w, inverse=True)
        assert xinv is not None
        assert tinv is not None
        self.twx = np.bincount(tinv, weights=w * x, minlength=self.tu.size)
        mix = (x > 0) | (shift > 0)
        (self.txu,), _, txinv = unique_rows([tx[mix]], inverse=True)
        assert txinv is not None
        self.mix_w = w[mix]
        self.mix_x = x[mix]
        self.mix_xi = _narrow(xinv[mix])
        self.mix_ti = _narrow(tinv[mix])
        self.mix_txi = _narrow(txinv)

    def __call__(self, theta: Floats) -> tuple[float, Floats]:
        with np.errstate(all="ignore"):
            return self._eval(theta)

    def _eval(self, theta: Floats) -> tuple[float, Floats]:
        r, alpha, a, b = np.exp(theta)
        s = self.shift
        xu, xw = self.xu, self.xw
        bx = b + xu + s
        # terms in x alone, summed over the distinct frequencies
        ll = float(xw @ (gammaln(r + xu) + betaln(a, bx)))
        ll += self.total * (-gammaln(r) + r * math.log(alpha) - betaln(a, b))
        g = np.zeros(4)
        g[0] = xw @ digamma(r + xu) + self.total * (math.log(alpha) - digamma(r))
        g[1] = self.total * r / alpha
        dab = digamma(a + bx)
        g[2] = xw @ (digamma(a) - dab) - self.total * (digamma(a) - digamma(a + b))
        g[3] = xw @ (digamma(bx) - dab) - self.total * (digamma(b) - digamma(a + b))
        # -(r+x) ln(alpha+T), over the distinct T
        log_t = np.log(alpha + self.tu)
        inv_t = 1.0 / (alpha + self.tu)
        ll -= r * (self.tw @ log_t) + self.twx @ log_t
        g[0] -= self.tw @ log_t
        g[1] -= r * (self.tw @ inv_t) + self.twx @ inv_t
        # the second (alive-until-t_x) component, through D = A2 - A1
        if self.mix_w.size:
            log_tx = np.log(alpha + self.txu)
            inv_tx = 1.0 / (alpha + self.txu)
            b1 = b + xu + s - 1.0
            log_b1 = np.log(np.where(b1 > 0, b1, 1.0))  # b1 <= 0 only where x = 0 in BG/NBD
            soft, s_gap, s_all, by_t, by_tx, by_x = mixture_terms(
                self.mix_xi,
                self.mix_ti,
                self.mix_txi,
                self.mix_x,
                r,
                self.mix_w,
                math.log(a) - log_b1,
                log_t,
                log_tx,
            )
            ll += soft
            g[0] += s_gap
            g[1] += by_t @ inv_t - by_tx @ inv_tx
            g[2] += s_all / a
            g[3] -= by_x @ np.exp(-log_b1)
        grad = -g * np.array([r, alpha, a, b]) / self.total
        return -ll / self.total, grad


@attrs.frozen(kw_only=True)
class BetaGeoModel:
    """A BG/NBD (or MBG/NBD) model with known parameters: fitted, built, or loaded.

    ``params`` maps ``r``, ``alpha``, ``a``, ``b``; ``alpha`` is in the unit of time the model
    was fitted in, ``time_unit_days`` days long. ``standard_errors`` (from the inverse Hessian),
    ``log_covariance`` (the covariance of the log-parameters, in the order of ``params``, which
    the intervals propagate), ``log_likelihood``, ``convergence`` and ``n_customers`` are set
    for fitted models; ``penalty`` is the weight of the priors of a penalised fit (0: maximum
    likelihood).
    """

    params: Mapping[str, float] = attrs.field(converter=_frozen)
    variant: Variant = "BG/NBD"
    time_unit_days: float = 1.0
    standard_errors: Mapping[str, float] | None = None
    log_likelihood: float | None = None
    convergence: Convergence | None = None
    n_customers: float | None = None
    log_covariance: Matrix | None = attrs.field(default=None, converter=frozen_matrix)
    penalty: float = 0.0

    def __attrs_post_init__(self) -> None:
        if set(self.params) != set(_NAMES):
            raise DataError("must hold exactly r, alpha, a and b", column="params")
        _check_params(self.params)
        check_unit(self.time_unit_days)
        if self.variant not in _SHIFT:
            raise DataError("must be 'BG/NBD' or 'MBG/NBD'", column="variant")

    def __repr__(self) -> str:
        return model_repr("BetaGeoModel", self.variant, self.params, self, self.time_unit_days)

    def _repr_html_(self) -> str:
        return model_html(self.variant, self.params, self, self.time_unit_days)

    @property
    def _p(self) -> tuple[float, float, float, float]:
        p = self.params
        return p["r"], p["alpha"], p["a"], p["b"]

    def in_days(self) -> BetaGeoModel:
        """The same model with days as its unit: what :class:`lifecycle.status.AliveModel` wants."""
        return self.in_unit(1.0)

    def in_unit(self, time_unit_days: float) -> BetaGeoModel:
        """The same model measuring time in units of ``time_unit_days`` days (alpha rescales)."""
        return in_time_unit(self, ("alpha",), time_unit_days)

    @property
    def names(self) -> tuple[str, ...]:
        """The parameter names, in the order of ``log_covariance``."""
        return _NAMES

    def with_log_params(self, theta: npt.ArrayLike) -> BetaGeoModel:
        """The same model (unit, variant) at other log-parameters, without fit statistics."""
        values = np.exp(np.asarray(theta, dtype=np.float64))
        return BetaGeoModel(
            params=dict(zip(_NAMES, values.tolist(), strict=True)),
            variant=self.variant,
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
        """Probability that each customer is still alive at T (Fader, Hardie & Lee 2005,
        "Computing P(alive)"), 1 for BG/NBD customers with no repeat purchase.

        Computed as a logistic of a log-odds, so it is finite for any frequency and T.
        Scalars in give a float out.
        """
        cols = rfm_arrays(frequency, recency, T)
        found = None
        if cols is not None:  # checked on the way; a bad row sends it to check_rfm
            found = alive_probability(*cols, self._p, self._shift, checked=False)
        if found is None:
            found = self._p_alive(*check_rfm(frequency, recency, T))
        out = found
        return float(out[0]) if np.ndim(frequency) == 0 and out.size == 1 else out

    def _log_odds_dead(self, x: Floats, tx: Floats, T: Floats) -> Floats:
        r, alpha, a, b = self._p
        s = _SHIFT[self.variant]
        with np.errstate(divide="ignore"):
            return np.asarray(
                math.log(a)
                - np.log(np.maximum(b + x + s - 1.0, 0.0))
                + (r + x) * np.log1p((T - tx) / (alpha + tx)),
                np.float64,
            )

    def _p_alive(self, x: Floats, tx: Floats, T: Floats) -> Floats:
        """P(alive) of checked rows."""
        found = alive_probability(x, tx, T, self._p, self._shift, checked=True)
        if found is not None:
            return found
        d = self._log_odds_dead(x, tx, T)
        out = np.asarray(expit(-d), dtype=np.float64)
        if self.variant == "BG/NBD":
            out[x == 0] = 1.0
        return out

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
        (Fader, Hardie & Lee 2005, eq. 10): P(alive) times the purchases of an alive customer.

        Customers sharing (frequency, T, t) are computed once, so millions of rows cost little.
        """
        cols = rfm_arrays(frequency, recency, T)
        alive = None
        if cols is not None:  # checked on the way; a bad row sends it to check_rfm
            alive = alive_probability(*cols, self._p, self._shift, checked=False)
        if cols is None or alive is None:
            cols = check_rfm(frequency, recency, T)
            alive = self._p_alive(*cols)
        x, _, big_t = cols
        tt = _horizon(t)
        out = alive
        out *= self._alive_purchases(tt if tt.ndim == 0 else np.broadcast_to(tt, x.shape), x, big_t)
        return float(out[0]) if np.ndim(frequency) == 0 and out.size == 1 else out

    def _alive_purchases(self, t: Floats, x: Floats, T: Floats) -> Floats:
        """Expected purchases in (T, T+t] of customers alive at T (x and T of one shape, t of
        theirs or a single horizon)."""
        r, alpha, a, b = self._p
        columns = [np.ascontiguousarray(x), np.ascontiguousarray(T)]
        if t.ndim:
            columns.append(np.ascontiguousarray(t))

        def alive_purchases(c: list[Floats]) -> Floats:
            horizon = c[2] if len(c) > 2 else np.full(c[0].shape, float(t))
            return alive_expected_purchases(horizon, c[0], c[1], r, alpha, a, b, self._shift)

        return per_distinct(columns, alive_purchases)

    @property
    def _shift(self) -> float:
        return _SHIFT[self.variant]

    def expected_purchases_new(self, t: npt.ArrayLike) -> Floats:
        """Expected repeat purchases in ``t`` time units of a customer who has just made a first
        purchase (Fader, Hardie & Lee 2005, eq. 9)."""
        tt = _horizon(t)
        r, alpha, a, b = self._p
        h = alive_expected_purchases(tt, np.zeros_like(tt), np.zeros_like(tt), r, alpha, a, b, 0.0)
        if self.variant == "MBG/NBD":
            # dropout is possible at time 0: a newcomer is alive with probability b/(a+b)
            h = (
                b
                / (a + b)
                * alive_expected_purchases(
                    tt, np.zeros_like(tt), np.zeros_like(tt), r, alpha, a, b, 1.0
                )
            )
        return h

    def probability_of_purchases(self, k: npt.ArrayLike, t: npt.ArrayLike) -> Floats:
        """P(X(t) = k): probability that a new customer makes exactly ``k`` repeat purchases in
        ``t`` time units (Fader, Hardie & Lee 2005, eq. 8; BG/NBD only)."""
        if self.variant != "BG/NBD":
            raise DataError("is available for BG/NBD models only", column="variant")
        kk = np.asarray(k, dtype=np.float64)
        if not np.isfinite(kk).all() or (kk < 0).any() or (kk != np.floor(kk)).any():
            raise DataError("must be whole numbers >= 0", column="k")
        tt = _horizon(t)
        kk, tt = np.broadcast_arrays(kk, tt)
        r, alpha, a, b = self._p
        with np.errstate(divide="ignore", invalid="ignore"):
            log_nb = (
                gammaln(r + kk)
                - gammaln(r)
                - gammaln(kk + 1.0)
                + r * np.log(alpha / (alpha + tt))
                + np.where(kk > 0, kk * np.log(tt / (alpha + tt)), 0.0)
            )
        first = np.exp(betaln(a, b + kk) - betaln(a, b) + log_nb)
        # 1 - (NB cdf at k-1) is the regularised incomplete beta I_{t/(alpha+t)}(k, r)
        tail = np.where(kk > 0, betainc(np.maximum(kk, 1.0), r, tt / (alpha + tt)), 0.0)
        second = np.where(
            kk > 0,
            np.exp(betaln(a + 1.0, b + np.maximum(kk, 1.0) - 1.0) - betaln(a, b)) * tail,
            0.0,
        )
        return np.asarray(first + second, dtype=np.float64)

    def log_likelihood_of(
        self,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
    ) -> float:
        """Total log-likelihood of the data under these parameters."""
        lik = _build_likelihood(frequency, recency, T, weights, self._shift)
        f, _ = lik(np.log(np.array(self._p)))
        return float(-f * lik.total)

    def to_json(self) -> str:
        """The model as plain JSON (never pickle); :meth:`from_json` reads it back."""
        return fit_to_json(self.variant, self, time_unit_days=self.time_unit_days)

    @classmethod
    def from_json(cls, text: str) -> BetaGeoModel:
        """A model saved by :meth:`to_json`."""
        return fit_from_json(
            text,
            _SHIFT,
            lambda data, common: cls(
                variant=data["model"], time_unit_days=float(data["time_unit_days"]), **common
            ),
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
    shift: float,
) -> _Likelihood:
    x, tx, big_t = check_rfm(frequency, recency, T)
    w = check_weights(weights, x.size)
    if w is not None:
        keep = w > 0
        x, tx, big_t, w = x[keep], tx[keep], big_t[keep], w[keep]
    (ux, utx, ut), counts, _ = unique_rows([x, tx, big_t], w)
    return _Likelihood(ux, utx, ut, counts, shift)


@attrs.frozen
class BetaGeo:
    """The BG/NBD model (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way").

    ``BetaGeo().fit(frequency, recency, T)`` returns a :class:`BetaGeoModel`.
    """

    variant: Variant = attrs.field(default="BG/NBD", init=False)
    #: weight of weak normal priors on the log-parameters (1/sd^2, centred at 1 for r, a and b
    #: and at mean T / mean frequency for alpha); 0 (the default) fits by maximum likelihood
    penalty: float = attrs.field(default=0.0, converter=check_penalty, kw_only=True)

    def fit(
        self,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
        *,
        time_unit_days: float = 1.0,
    ) -> BetaGeoModel:
        """Maximum-likelihood fit.

        Args:
            frequency: repeat purchases per customer (whole numbers).
            recency: time from first to last purchase, 0 with no repeat purchase.
            T: time from first purchase to the end of observation.
            weights: customers per row (for data already counted), default 1.
            time_unit_days: how many days one unit of recency and T is (7 for weeks).

        Raises:
            DataError: malformed input, or data that cannot identify the model (fewer than two
                customers, no repeat buyer).
            ConvergenceError: the optimiser did not reach a maximum.
        """
        unit = check_unit(time_unit_days)
        lik = _build_likelihood(frequency, recency, T, weights, _SHIFT[self.variant])
        if lik.total < 2:
            raise DataError("at least two customers are needed to fit a model", column="frequency")
        if not (lik.xu > 0).any():
            raise DataError("no customer made a repeat purchase", column="frequency")
        if lik.tu.max() <= 0:
            raise DataError("every T is 0: no time was observed", column="T")
        start = _start_from(lik)
        prior = Prior(centre=start, penalty=self.penalty) if self.penalty > 0 else None
        res = maximise(self.variant, lik, start, lik.total, _NAMES, prior)
        return BetaGeoModel(
            params=dict(zip(_NAMES, res.params.tolist(), strict=True)),
            variant=self.variant,
            time_unit_days=unit,
            standard_errors=dict(zip(_NAMES, res.standard_errors.tolist(), strict=True)),
            log_likelihood=res.log_likelihood,
            convergence=res.convergence,
            n_customers=lik.total,
            log_covariance=res.log_covariance,
            penalty=self.penalty,
        )

    @classmethod
    def from_params(
        cls, *, r: float, alpha: float, a: float, b: float, time_unit_days: float = 1.0
    ) -> BetaGeoModel:
        """A model with known parameters (alpha in units of ``time_unit_days`` days)."""
        return BetaGeoModel(
            params={"r": r, "alpha": alpha, "a": a, "b": b},
            variant=attrs.fields(cls).variant.default,
            time_unit_days=time_unit_days,
        )


def _start_from(lik: _Likelihood) -> Floats:
    mean_x = float(lik.xw @ lik.xu) / lik.total
    mean_t = float(lik.tw @ lik.tu) / lik.total
    alpha = max(mean_t, 1e-6) / max(mean_x, 1e-3)
    return np.log(np.array([1.0, alpha, 1.0, 1.0], dtype=np.float64))


@attrs.frozen
class ModifiedBetaGeo(BetaGeo):
    """The MBG/NBD variant (Batislam, Denizel & Filiztekin 2007): customers may also drop out
    right after their first purchase, so one-time buyers are not certainly alive."""

    variant: Variant = attrs.field(default="MBG/NBD", init=False)
