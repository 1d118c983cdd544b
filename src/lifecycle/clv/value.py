"""Customer lifetime value from a purchase model and a spend model: the discounted expected
spend over a horizon (Fader, Hardie & Lee 2005, "RFM and CLV", with discrete discounting)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from lifecycle.clv._data import Floats, check_rfm, unique_rows
from lifecycle.clv.betageo import BetaGeoModel
from lifecycle.clv.gammagamma import GammaGammaModel
from lifecycle.clv.pareto import ParetoNBDModel
from lifecycle.errors import DataError

__all__ = ["PurchaseModel", "customer_lifetime_value"]

#: a fitted purchase model: BG/NBD, MBG/NBD or Pareto/NBD
PurchaseModel = BetaGeoModel | ParetoNBDModel


def customer_lifetime_value(
    purchases: PurchaseModel,
    spend: GammaGammaModel,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    monetary_value: npt.ArrayLike,
    *,
    horizon_days: float = 365.0,
    annual_discount_rate: float = 0.1,
    step_days: float = 30.0,
    margin: float = 1.0,
) -> Floats:
    """Discounted expected value of each customer's purchases over the next ``horizon_days``.

    The horizon is cut into steps of ``step_days``; the purchases expected in each step (from
    ``purchases``, given the history) times the expected spend per transaction (from ``spend``,
    given ``frequency`` and ``monetary_value``) times ``margin`` are discounted to today at
    ``annual_discount_rate`` from the end of the step. ``recency`` and ``T`` are in the purchase
    model's unit (``purchases.time_unit_days`` days).

    Raises:
        DataError: a negative horizon, a step <= 0, a rate <= -1, or malformed input.
    """
    for name, number, ok in (
        ("horizon_days", horizon_days, horizon_days >= 0),
        ("step_days", step_days, step_days > 0),
        ("annual_discount_rate", annual_discount_rate, annual_discount_rate > -1),
        ("margin", margin, True),
    ):
        if not math.isfinite(number) or not ok:
            raise DataError(f"cannot be {number!r}", column=name)
    x, tx, big_t = check_rfm(frequency, recency, T)
    per_purchase = spend.expected_spend(x, monetary_value) * margin
    alive = purchases._p_alive(x, tx, big_t)
    (ux, ut), _, inv = unique_rows([x, big_t], inverse=True)
    assert inv is not None
    unit = purchases.time_unit_days
    steps = max(1, math.ceil(horizon_days / step_days - 1e-12)) if horizon_days > 0 else 0
    if steps == 0:
        return np.zeros(x.size)
    ends = np.minimum(np.arange(1, steps + 1) * step_days, horizon_days)
    # every step's cumulative expectation in one call: rows (step, distinct customer)
    cum = purchases._alive_purchases(
        np.repeat(ends / unit, ux.size), np.tile(ux, steps), np.tile(ut, steps)
    ).reshape(steps, ux.size)
    per_step = np.diff(cum, axis=0, prepend=0.0)
    discount = (1.0 + annual_discount_rate) ** (-ends / 365.0)
    value = discount @ per_step
    return np.asarray(alive * value[inv] * per_purchase, dtype=np.float64)
