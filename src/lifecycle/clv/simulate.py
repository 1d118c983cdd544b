"""Draw customer histories from known BG/NBD, MBG/NBD or Pareto/NBD and Gamma-Gamma parameters:
for tests, docs, benchmarks and for checking what a fit can recover."""

from __future__ import annotations

import attrs
import numpy as np
import numpy.typing as npt

from lifecycle._display import field_table, one_line
from lifecycle.clv._data import Floats, as_column
from lifecycle.clv.betageo import BetaGeoModel
from lifecycle.clv.gammagamma import GammaGammaModel
from lifecycle.clv.pareto import ParetoNBDModel
from lifecycle.errors import DataError

__all__ = ["SimulatedCustomers", "simulate_customers"]

Ints = npt.NDArray[np.int64]


@attrs.frozen(kw_only=True, eq=False)
class SimulatedCustomers:
    """Aligned per-customer arrays, in the purchase model's time unit: ``frequency``,
    ``recency``, ``T``, ``monetary_value`` (mean repeat spend, 0 without repeats; all 0 without
    a spend model), and every repeat transaction's value in ``spends``, customer ``i``'s at
    ``spends[spend_offsets[i]:spend_offsets[i + 1]]``."""

    frequency: Floats
    recency: Floats
    T: Floats
    monetary_value: Floats
    spends: Floats
    spend_offsets: Ints

    def __repr__(self) -> str:
        n = int(self.frequency.size)
        mean = f"mean frequency {self.frequency.mean():.2f}" if n else None
        return one_line(
            "SimulatedCustomers", f"{n:,} customers", mean, f"{self.spends.size:,} repeat spends"
        )

    def _repr_html_(self) -> str:
        n = int(self.frequency.size)
        rows: list[tuple[str, object]] = [("customers", f"{n:,}")]
        if n:
            rows += [
                ("mean frequency", f"{self.frequency.mean():.3f}"),
                ("mean recency", f"{self.recency.mean():.3f}"),
                ("mean T", f"{self.T.mean():.3f}"),
                ("repeat spends", f"{self.spends.size:,}"),
            ]
        return field_table(rows, caption="Simulated customers")


def simulate_customers(
    purchases: BetaGeoModel | ParetoNBDModel,
    T: npt.ArrayLike,
    rng: np.random.Generator,
    *,
    spend: GammaGammaModel | None = None,
) -> SimulatedCustomers:
    """One customer per value of ``T`` (time from first purchase to the end of observation).

    Each customer draws lambda ~ Gamma(r, alpha) and p ~ Beta(a, b); purchase times are a
    Poisson process and the customer drops out after each repeat purchase with probability p
    (MBG/NBD: also at the first). A Pareto/NBD customer draws mu ~ Gamma(s, beta) and lives an
    exponential time of rate mu instead. With ``spend``, each repeat transaction is worth
    Gamma(p, nu) with nu ~ Gamma(q, gamma) per customer.
    """
    big_t = as_column(T, "T")
    if (big_t < 0).any():
        raise DataError("must be >= 0", column="T")
    n = big_t.size
    if isinstance(purchases, ParetoNBDModel):
        x, recency = _pareto_histories(purchases, big_t, rng)
        return _with_spend(x, recency, big_t, rng, spend)
    r, alpha, a, b = purchases._p
    lam = rng.gamma(r, 1.0 / alpha, n)
    drop = rng.beta(a, b, n)
    # the number of repeat purchases the latent process makes in (0, T] ...
    made = rng.poisson(lam * big_t)
    # ... and how many the customer lives through: dropout after the j-th with probability p
    # (drawn in floating point: with p near 0 the count may exceed any integer type)
    with np.errstate(divide="ignore", invalid="ignore"):
        lives = np.floor(np.log1p(-rng.random(n)) / np.log1p(-drop))
    lives = np.where(np.isnan(lives), 0.0, lives)
    if purchases.variant == "BG/NBD":
        lives += 1.0
    x = np.minimum(made, lives).astype(np.int64)
    # given `made` uniform arrival times, the x-th is T times a Beta(x, made - x + 1)
    has = x > 0
    recency = np.zeros(n)
    recency[has] = big_t[has] * rng.beta(x[has], made[has] - x[has] + 1)
    return _with_spend(x, recency, big_t, rng, spend)


def _pareto_histories(
    model: ParetoNBDModel, big_t: Floats, rng: np.random.Generator
) -> tuple[Ints, Floats]:
    """Purchases of customers alive for min(lifetime, T): a Poisson count, the last of them at
    that span times a Beta(x, 1)."""
    r, alpha, s, beta = model._p
    n = big_t.size
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    lifetime = rng.exponential(1.0, n) / mu
    span = np.minimum(lifetime, big_t)
    x = rng.poisson(lam * span).astype(np.int64)
    has = x > 0
    recency = np.zeros(n)
    recency[has] = span[has] * rng.beta(x[has], 1.0)
    return x, recency


def _with_spend(
    x: Ints,
    recency: Floats,
    big_t: Floats,
    rng: np.random.Generator,
    spend: GammaGammaModel | None,
) -> SimulatedCustomers:
    n = x.size
    has = x > 0
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(x, out=offsets[1:])
    monetary = np.zeros(n)
    spends = np.zeros(int(offsets[-1]))
    if spend is not None:
        sp, sq, sg = (spend.params[k] for k in ("p", "q", "gamma"))
        nu = rng.gamma(sq, 1.0 / sg, n)
        spends = rng.gamma(sp, 1.0, spends.size) / np.repeat(nu, x)
        sums = np.bincount(np.repeat(np.arange(n), x), weights=spends, minlength=n)
        monetary[has] = sums[has] / x[has]
    return SimulatedCustomers(
        frequency=x.astype(np.float64),
        recency=recency,
        T=big_t.copy(),
        monetary_value=monetary,
        spends=spends,
        spend_offsets=offsets,
    )
