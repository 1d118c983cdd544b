"""Per-customer intervals for P(alive), expected purchases and CLV, from the uncertainty of the
fitted parameters, by the delta method on scales where the estimates are close to normal.

The fits carry the covariance of their log-parameters (the inverse Hessian of the
log-likelihood). Each prediction g is moved to an unbounded scale h (the logit of P(alive), the
log of expected purchases and CLV); its gradient in the log-parameters comes from central
differences of the vectorised prediction (two evaluations per parameter, whatever the number of
customers), and h +- z sd, with sd^2 = J' Sigma J, maps back to an interval inside the
quantity's range. The spend model is fitted separately from the purchase model, so their
parameter errors are independent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
from scipy.special import expit, logit, ndtri

from lifecycle._display import arrow_table, html_table, one_line, polars_frame
from lifecycle.clv._data import Floats, check_rfm
from lifecycle.clv.gammagamma import GammaGammaModel
from lifecycle.clv.value import PurchaseModel, customer_lifetime_value
from lifecycle.errors import DataError

__all__ = ["CustomerIntervals", "Interval", "value_intervals"]

_STEP = 1e-5  # central-difference step in log-parameters


@attrs.frozen(kw_only=True, eq=False)
class Interval:
    """Aligned per-customer arrays: the ``estimate`` and the interval ``lower``..``upper``."""

    estimate: Floats
    lower: Floats
    upper: Floats

    def covers(self, truth: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Whether each interval holds the corresponding ``truth``."""
        t = np.asarray(truth, dtype=np.float64)
        return np.asarray((self.lower <= t) & (t <= self.upper))

    def zeroed(self, rows: npt.NDArray[np.bool_]) -> Interval:
        """The same intervals with ``rows`` set to exactly 0."""
        return Interval(
            estimate=np.where(rows, 0.0, self.estimate),
            lower=np.where(rows, 0.0, self.lower),
            upper=np.where(rows, 0.0, self.upper),
        )


@attrs.frozen(kw_only=True, eq=False)
class CustomerIntervals:
    """Each customer's predictions with intervals at ``level`` (e.g. 0.9 for 5 %..95 %).

    Attributes:
        level: the nominal coverage.
        horizon: the horizon of ``expected_purchases``, in the purchase model's time unit.
        p_alive: the probability of being alive.
        expected_purchases: expected repeat purchases within ``horizon``.
        clv: the lifetime value, when a spend model was given.
    """

    level: float
    horizon: float
    p_alive: Interval
    expected_purchases: Interval
    clv: Interval | None

    def __len__(self) -> int:
        return int(self.p_alive.estimate.size)

    def __repr__(self) -> str:
        return one_line(
            "CustomerIntervals",
            f"{len(self):,} customers",
            f"{self.level:.0%} intervals",
            "P(alive), purchases" + (", CLV" if self.clv is not None else ""),
        )

    def columns(self) -> dict[str, Floats]:
        """The per-customer columns by name (``p_alive``, ``p_alive_lower``, ...)."""
        out: dict[str, Floats] = {}
        for name in ("p_alive", "expected_purchases", "clv"):
            interval: Interval | None = getattr(self, name)
            if interval is not None:
                out[name] = interval.estimate
                out[f"{name}_lower"] = interval.lower
                out[f"{name}_upper"] = interval.upper
        return out

    def to_pandas(self) -> Any:
        """The columns as a pandas DataFrame (needs pandas)."""
        import pandas as pd  # the ``pandas`` extra

        return pd.DataFrame(self.columns())

    def to_arrow(self) -> Any:
        """The columns as a ``pyarrow.Table`` (needs pyarrow; numbers are not copied)."""
        return arrow_table(self.columns())

    def to_polars(self) -> Any:
        """The columns as a polars DataFrame (needs polars; numbers are not copied)."""
        return polars_frame(self.columns())

    def _repr_html_(self) -> str:
        cols = self.columns()
        shown = min(len(self), 10)
        names = ("p_alive", "expected_purchases", "clv")
        present = [n for n in names if n in cols]
        rows = [
            (
                i,
                *(
                    f"{cols[n][i]:.3g} [{cols[n + '_lower'][i]:.3g}, {cols[n + '_upper'][i]:.3g}]"
                    for n in present
                ),
            )
            for i in range(shown)
        ]
        caption = (
            f"{self.level:.0%} intervals, {len(self):,} customers"
            + (f" (first {shown})" if shown < len(self) else "")
            + f"; expected purchases within {self.horizon:g}"
        )
        return html_table(("customer", *present), rows, caption=caption)


def _covariance(model: Any, what: str) -> Floats:
    cov = model.log_covariance
    if cov is None:
        raise DataError(
            f"the {what} carries no covariance: intervals need a fitted model",
            column="log_covariance",
        )
    return np.asarray(cov, dtype=np.float64)


def _delta(h: Callable[[Floats], Floats], theta: Floats, cov: Floats, estimate_h: Floats) -> Floats:
    """The variance of h at ``theta`` under ``cov``: J' cov J with J by central differences."""
    jac = np.empty((theta.size, estimate_h.size))
    for j in range(theta.size):
        step = np.zeros(theta.size)
        step[j] = _STEP
        jac[j] = (h(theta + step) - h(theta - step)) / (2 * _STEP)
    jac = np.where(np.isfinite(jac), jac, 0.0)
    return np.asarray(np.einsum("in,ij,jn->n", jac, cov, jac), dtype=np.float64)


def _interval(
    estimate: Floats,
    h_estimate: Floats,
    variance: Floats,
    z: float,
    back: Callable[[Floats], Floats],
) -> Interval:
    sd = np.sqrt(np.clip(variance, 0.0, None))
    finite = np.isfinite(h_estimate) & np.isfinite(sd)
    lower = np.where(finite, back(np.where(finite, h_estimate - z * sd, 0.0)), estimate)
    upper = np.where(finite, back(np.where(finite, h_estimate + z * sd, 0.0)), estimate)
    return Interval(estimate=estimate, lower=lower, upper=upper)


def value_intervals(
    purchases: PurchaseModel,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    *,
    horizon: float,
    spend: GammaGammaModel | None = None,
    monetary_value: npt.ArrayLike | None = None,
    clv_horizon_days: float = 365.0,
    annual_discount_rate: float = 0.1,
    level: float = 0.9,
) -> CustomerIntervals:
    """P(alive), expected purchases within ``horizon`` and, with ``spend`` and
    ``monetary_value``, CLV over ``clv_horizon_days``, each with an interval at ``level``.

    Times are in the purchase model's unit. Vectorised: a million customers take a few
    evaluations of each prediction. The intervals reflect the uncertainty of the parameters
    (how well the shop's data pin the model down), not the randomness of the customer's own
    future purchases.

    Raises:
        DataError: a model without a covariance (built from parameters), a level outside
            (0, 1), or malformed input.
    """
    if not 0 < level < 1:
        raise DataError(f"must be in (0, 1), got {level!r}", column="level")
    x, tx, big_t = check_rfm(frequency, recency, T)
    theta = np.log(np.array([purchases.params[n] for n in purchases.names]))
    cov = _covariance(purchases, "purchase model")
    z = float(ndtri(0.5 + level / 2))
    tt = np.full(x.size, float(horizon))

    def alive(th: Floats) -> Floats:
        return purchases.with_log_params(th)._p_alive(x, tx, big_t)

    def log_expected(th: Floats) -> Floats:
        model = purchases.with_log_params(th)
        with np.errstate(divide="ignore"):
            return np.asarray(
                np.log(model._p_alive(x, tx, big_t)) + np.log(model._alive_purchases(tt, x, big_t)),
                np.float64,
            )

    with np.errstate(all="ignore"):
        pa = alive(theta)
        h_pa = logit(pa)
        p_alive = _interval(
            pa, h_pa, _delta(lambda th: logit(alive(th)), theta, cov, h_pa), z, expit
        )
        h_e = log_expected(theta)
        expected = _interval(np.exp(h_e), h_e, _delta(log_expected, theta, cov, h_e), z, np.exp)
    clv: Interval | None = None
    if spend is not None and monetary_value is not None:
        phi = np.log(np.array([spend.params[n] for n in spend.names]))
        cov_s = _covariance(spend, "spend model")
        m = np.asarray(monetary_value, dtype=np.float64)

        # CLV = (purchases part)(theta) * expected spend(phi): the log separates, and the two
        # fits' errors are independent, so the variances add
        def log_clv(th: Floats) -> Floats:
            value = customer_lifetime_value(
                purchases.with_log_params(th),
                spend,
                x,
                tx,
                big_t,
                m,
                horizon_days=clv_horizon_days,
                annual_discount_rate=annual_discount_rate,
            )
            with np.errstate(divide="ignore"):
                return np.asarray(np.log(value), np.float64)

        def log_spend(ph: Floats) -> Floats:
            return np.asarray(np.log(spend.with_log_params(ph).expected_spend(x, m)), np.float64)

        with np.errstate(all="ignore"):
            h_c = log_clv(theta)
            variance = _delta(log_clv, theta, cov, h_c) + _delta(
                log_spend, phi, cov_s, log_spend(phi)
            )
            clv = _interval(np.exp(h_c), h_c, variance, z, np.exp)
    return CustomerIntervals(
        level=level,
        horizon=float(horizon),
        p_alive=p_alive,
        expected_purchases=expected,
        clv=clv,
    )
