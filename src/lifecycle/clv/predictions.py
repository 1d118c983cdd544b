"""Every customer's P(alive), expected purchases and lifetime value from a fitted value model, as
one table: what a shop writes back next to its customers (pandas, Arrow, polars or Parquet)."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from lifecycle._display import arrow_table, frame, html_table, one_line, polars_frame
from lifecycle.analytics.summary import CustomerSummary
from lifecycle.clv._data import Floats
from lifecycle.clv.model import ValueModel
from lifecycle.errors import DataError

__all__ = ["CustomerPredictions", "predict_customers"]


@attrs.frozen(eq=False)
class CustomerPredictions:
    """One row per customer of a summary, in its order.

    Attributes:
        customer_id: the customers.
        p_alive: the probability each is still a customer.
        expected_purchases: expected repeat purchases within ``horizon_days``.
        clv: the discounted value over ``clv_horizon_days``; ``None`` without a spend model.
        horizon_days, clv_horizon_days: the horizons of the model used.
    """

    customer_id: npt.NDArray[Any]
    p_alive: Floats
    expected_purchases: Floats
    clv: Floats | None
    horizon_days: float
    clv_horizon_days: float

    def __len__(self) -> int:
        return len(self.customer_id)

    def columns(self) -> dict[str, npt.NDArray[Any]]:
        """The per-customer columns by name (``clv`` only with a spend model)."""
        out: dict[str, npt.NDArray[Any]] = {
            "customer_id": self.customer_id,
            "p_alive": self.p_alive,
            "expected_purchases": self.expected_purchases,
        }
        if self.clv is not None:
            out["clv"] = self.clv
        return out

    def to_pandas(self) -> Any:
        """The predictions as a pandas DataFrame indexed by customer (needs pandas)."""
        return frame(self.columns()).set_index("customer_id")

    def to_arrow(self) -> Any:
        """The predictions as a ``pyarrow.Table`` (needs pyarrow; numbers are not copied)."""
        return arrow_table(self.columns())

    def to_polars(self) -> Any:
        """The predictions as a polars DataFrame (needs polars; numbers are not copied)."""
        return polars_frame(self.columns())

    def __repr__(self) -> str:
        value = f"CLV {self.clv_horizon_days:g} days" if self.clv is not None else "no CLV"
        return one_line(
            "CustomerPredictions",
            f"{len(self):,} customers",
            f"purchases within {self.horizon_days:g} days",
            value,
        )

    def _repr_html_(self) -> str:
        cols = self.columns()
        names = [n for n in cols if n != "customer_id"]
        shown = min(len(self), 10)
        rows = [(self.customer_id[i], *(cols[n][i] for n in names)) for i in range(shown)]
        more = f", first 10 of {len(self):,}" if len(self) > 10 else ""
        return html_table(("customer", *names), rows, caption=f"Customer predictions{more}")


def predict_customers(model: ValueModel, summary: CustomerSummary) -> CustomerPredictions:
    """P(alive), expected purchases within ``model.horizon_days`` and (with a spend model) CLV
    over ``model.clv_horizon_days`` of every customer of ``summary`` (in days), as the model
    computes them one by one.

    Raises:
        DataError: a summary in weeks (the value model counts in days).
    """
    if summary.unit != "days":
        raise DataError("predict on a summary in days (unit='days')", column="unit")
    x, tx, big_t = summary.frequency, summary.recency, summary.T
    purchases = model.purchases
    p_alive = np.asarray(purchases.p_alive(x, tx, big_t), dtype=np.float64)
    expected = purchases.expected_purchases(model.horizon_days, x, tx, big_t)
    clv = model.clv(x, tx, big_t, summary.monetary_value)
    return CustomerPredictions(
        customer_id=summary.customer_id,
        p_alive=p_alive,
        expected_purchases=np.asarray(expected, dtype=np.float64),
        clv=clv,
        horizon_days=model.horizon_days,
        clv_horizon_days=model.clv_horizon_days,
    )
