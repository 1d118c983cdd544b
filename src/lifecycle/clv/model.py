"""The value model a shop fits on its own customers: P(alive), expected purchases and CLV.

:class:`ValueModel` pairs a BG/NBD purchase model in days with a Gamma-Gamma spend model. It is
what :meth:`lifecycle.Lifecycle.fit_value_model` fits and what the status rule and
:func:`lifecycle.assess` read: it satisfies :class:`lifecycle.AliveModel` and
:class:`lifecycle.ValueEstimator`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from lifecycle._display import one_line
from lifecycle.analytics.summary import CustomerSummary, rfm_summary
from lifecycle.analytics.table import Transactions
from lifecycle.clv._data import Floats
from lifecycle.clv.betageo import BetaGeo, BetaGeoModel, ModifiedBetaGeo
from lifecycle.clv.gammagamma import GammaGamma, GammaGammaModel
from lifecycle.clv.value import customer_lifetime_value
from lifecycle.errors import DataError, ModelError
from lifecycle.events import Event
from lifecycle.policy import Policy

__all__ = ["ValueModel"]


@attrs.frozen(kw_only=True)
class ValueModel:
    """A purchase model in days and, when the shop has repeat buyers who spend differently, a
    spend model.

    Attributes:
        purchases: the purchase model, times in days: BG/NBD or MBG/NBD, whichever fits the
            shop's data better (MBG/NBD lets a customer drop out right after the first
            purchase, which shops with many one-time buyers show, and where BG/NBD's drop-out
            parameters can run off to infinity).
        spend: the Gamma-Gamma model; ``None`` when it could not be fitted (too few repeat
            buyers, or all spending alike): CLV is then unavailable.
        horizon_days: the expected-purchases horizon ``assess`` reports (default 90).
        clv_horizon_days: the CLV horizon (default 365).
        annual_discount_rate: the discount rate of the CLV (default 10 %).
        customers: how many customers the model was fitted on.
    """

    purchases: BetaGeoModel
    spend: GammaGammaModel | None
    horizon_days: float = 90.0
    clv_horizon_days: float = 365.0
    annual_discount_rate: float = 0.1
    customers: int = 0

    @classmethod
    def fit_events(
        cls, events: Iterable[Event], policy: Policy, at: datetime, **settings: Any
    ) -> ValueModel:
        """Fit both models on the valid orders among ``events`` up to ``at``, as the policy
        counts them (its currency, its zone).

        Raises:
            DataError: the orders cannot identify the purchase model (e.g. no repeat buyer).
            ConvergenceError: the optimiser did not converge.
        """
        table = Transactions.from_events(list(events), policy=policy, at=at)
        return cls.fit(rfm_summary(table, end=at, unit="days"), **settings)

    @classmethod
    def fit(cls, summary: CustomerSummary, **settings: Any) -> ValueModel:
        """Fit both models on a per-customer summary in days.

        Raises:
            DataError: the summary is in weeks, or cannot identify the purchase model.
            ConvergenceError: the optimiser did not converge.
        """
        if summary.unit != "days":
            raise DataError(
                "fit on a summary in days (rfm_summary(..., unit='days'))", column="unit"
            )
        purchases = _best_purchase_model(summary)
        spend: GammaGammaModel | None
        try:
            spend = GammaGamma().fit(summary.frequency, summary.monetary_value)
        except DataError:
            spend = None
        return cls(purchases=purchases, spend=spend, customers=len(summary), **settings)

    @property
    def variant(self) -> str:
        """``"BG/NBD"`` or ``"MBG/NBD"``."""
        return str(self.purchases.variant)

    def __repr__(self) -> str:
        spend = "Gamma-Gamma" if self.spend is not None else "no spend model"
        return one_line(
            "ValueModel",
            f"{self.variant} + {spend}",
            f"{self.customers:,} customers",
            f"horizon {self.horizon_days:g} days",
            f"CLV {self.clv_horizon_days:g} days at {self.annual_discount_rate:.0%}",
        )

    def _repr_html_(self) -> str:
        spend = (
            "<p>No spend model: CLV unavailable.</p>"
            if self.spend is None
            else self.spend._repr_html_()
        )
        head = (
            f"<p>Value model on {self.customers:,} customers: expected purchases over "
            f"{self.horizon_days:g} days, CLV over {self.clv_horizon_days:g} days at "
            f"{self.annual_discount_rate:.0%} a year.</p>"
        )
        return head + self.purchases._repr_html_() + spend

    def p_alive(self, frequency: float, recency: float, T: float) -> float:
        """The probability the customer is still active (times in days)."""
        return float(self.purchases.p_alive(frequency, recency, T))

    def customer_value(
        self, frequency: float, recency: float, T: float, monetary_value: float
    ) -> tuple[float, float | None]:
        """Expected purchases within ``horizon_days`` and the CLV over ``clv_horizon_days``
        (``None`` without a spend model, or with a spend model that cannot price this
        customer)."""
        expected = float(
            self.purchases.expected_purchases(self.horizon_days, frequency, recency, T)
        )
        try:
            clv = self.clv(
                np.array([frequency]),
                np.array([recency]),
                np.array([T]),
                np.array([monetary_value]),
            )
        except DataError:
            return expected, None
        return expected, None if clv is None else float(clv[0])

    def clv(
        self,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,
        monetary_value: npt.ArrayLike,
    ) -> Floats | None:
        """Each customer's lifetime value over ``clv_horizon_days``, discounted (times in
        days); ``None`` without a spend model. Customers without repeat purchases are priced
        at the population's mean spend.

        Raises:
            DataError: malformed input.
        """
        if self.spend is None:
            return None
        x = np.asarray(frequency)
        return customer_lifetime_value(
            self.purchases,
            self.spend,
            x,
            recency,
            T,
            np.where(x > 0, monetary_value, 0.0),
            horizon_days=self.clv_horizon_days,
            annual_discount_rate=self.annual_discount_rate,
        )

    def to_json(self) -> str:
        """Both models and the settings as JSON."""
        return json.dumps(
            {
                "purchases": json.loads(self.purchases.to_json()),
                "spend": None if self.spend is None else json.loads(self.spend.to_json()),
                "horizon_days": self.horizon_days,
                "clv_horizon_days": self.clv_horizon_days,
                "annual_discount_rate": self.annual_discount_rate,
                "customers": self.customers,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ValueModel:
        data = json.loads(text)
        return cls(
            purchases=BetaGeoModel.from_json(json.dumps(data["purchases"])),
            spend=None
            if data["spend"] is None
            else GammaGammaModel.from_json(json.dumps(data["spend"])),
            horizon_days=float(data["horizon_days"]),
            clv_horizon_days=float(data["clv_horizon_days"]),
            annual_discount_rate=float(data["annual_discount_rate"]),
            customers=int(data["customers"]),
        )


def _best_purchase_model(summary: CustomerSummary) -> BetaGeoModel:
    """BG/NBD and MBG/NBD fitted on the same data; the higher likelihood wins."""
    fits: list[BetaGeoModel] = []
    failures: list[ModelError | DataError] = []
    for model in (BetaGeo(), ModifiedBetaGeo()):
        try:
            fits.append(model.fit(summary.frequency, summary.recency, summary.T))
        except (ModelError, DataError) as e:
            failures.append(e)
    if not fits:
        raise failures[0]
    return max(fits, key=lambda m: float("-inf") if m.log_likelihood is None else m.log_likelihood)
