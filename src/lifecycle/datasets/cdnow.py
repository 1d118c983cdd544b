"""The CDNOW purchase data (Fader, Hardie & Lee 2005), bundled, with numpy loaders.

The 2,357-customer cohort summarised in weeks is the one the BG/NBD and Gamma-Gamma papers fit;
the master file holds every purchase of all 23,570 customers. See ``data/README.md`` for sources.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import attrs
import numpy as np
import numpy.typing as npt

__all__ = ["CdnowSummary", "CdnowTransactions", "load_cdnow_summary", "load_cdnow_transactions"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Days = npt.NDArray[np.datetime64]


@attrs.frozen(kw_only=True, eq=False)
class CdnowSummary:
    """The 2,357-customer cohort over its 39-week calibration period, aligned arrays:
    ``customer_id``, ``frequency`` (repeat purchases), ``recency`` and ``T`` (weeks), and
    ``monetary_value`` (mean dollar value of the repeat purchases, 0 without one).
    ``time_unit_days`` is 7."""

    customer_id: Ints
    frequency: Floats
    recency: Floats
    T: Floats
    monetary_value: Floats
    time_unit_days: float = 7.0


@attrs.frozen(kw_only=True, eq=False)
class CdnowTransactions:
    """All 69,659 purchase records of the 23,570 customers: ``customer_id``, ``date``
    (``datetime64[D]``), ``cds`` (number of CDs) and ``dollars``, in file order."""

    customer_id: Ints
    date: Days
    cds: Ints
    dollars: Floats

    def summary(self, observation_end: dt.date = dt.date(1998, 6, 30)) -> CdnowSummary:
        """Per-customer frequency, recency and T in days at ``observation_end``, counting
        purchase days (several orders on one day are one purchase), the field's convention.
        ``monetary_value`` is the mean value of the repeat purchase days. Purchases after
        ``observation_end`` are ignored; customers who first bought after it are left out."""
        end = np.datetime64(observation_end, "D")
        keep = self.date <= end
        ids, days, dollars = self.customer_id[keep], self.date[keep], self.dollars[keep]
        day_num = days.astype(np.int64)
        order = np.lexsort((day_num, ids))
        ids, day_num, dollars = ids[order], day_num[order], dollars[order]
        new_day = np.ones(ids.size, dtype=bool)
        new_day[1:] = (ids[1:] != ids[:-1]) | (day_num[1:] != day_num[:-1])
        day_index = np.cumsum(new_day) - 1
        day_value = np.bincount(day_index, weights=dollars)
        d_ids, d_days = ids[new_day], day_num[new_day]
        first = np.ones(d_ids.size, dtype=bool)
        first[1:] = d_ids[1:] != d_ids[:-1]
        cust = np.cumsum(first) - 1
        n_days = np.bincount(cust)
        first_day = d_days[first]
        last_day = np.maximum.reduceat(d_days, np.flatnonzero(first))
        repeat_value = np.bincount(cust, weights=np.where(first, 0.0, day_value))
        frequency = (n_days - 1).astype(np.float64)
        monetary = np.divide(
            repeat_value, frequency, out=np.zeros_like(repeat_value), where=frequency > 0
        )
        return CdnowSummary(
            customer_id=d_ids[first],
            frequency=frequency,
            recency=(last_day - first_day).astype(np.float64),
            T=(end.astype(np.int64) - first_day).astype(np.float64),
            monetary_value=monetary,
            time_unit_days=1.0,
        )


def _text(name: str) -> str:
    # The files ship inside the package (the wheel and sdist include them), next to this module.
    return (Path(__file__).parent / "data" / name).read_text(encoding="utf-8")


def load_cdnow_summary() -> CdnowSummary:
    """The 2,357-customer CDNOW cohort of Fader, Hardie & Lee (2005), in weeks, with the mean
    spend of the repeat purchases (``cdnow_customers_summary_with_transactions.csv``)."""
    rows = _text("cdnow_customers_summary_with_transactions.csv").splitlines()[1:]
    table = np.array([[float(v) for v in row.split(",")] for row in rows if row.strip()])
    return CdnowSummary(
        customer_id=table[:, 0].astype(np.int64),
        frequency=table[:, 1].copy(),
        recency=table[:, 2].copy(),
        T=table[:, 3].copy(),
        monetary_value=table[:, 4].copy(),
    )


def load_cdnow_transactions() -> CdnowTransactions:
    """Every purchase record of the 23,570 CDNOW customers (``CDNOW_master.txt``)."""
    lines = _text("CDNOW_master.txt").split()
    table = np.array(lines[4:], dtype=np.float64).reshape(-1, 4)
    ymd = table[:, 1].astype(np.int64)
    months = (ymd // 10000 - 1970) * 12 + (ymd // 100 % 100 - 1)
    dates = months.astype("datetime64[M]").astype("datetime64[D]") + (ymd % 100 - 1).astype(
        "timedelta64[D]"
    )
    return CdnowTransactions(
        customer_id=table[:, 0].astype(np.int64),
        date=dates,
        cds=table[:, 2].astype(np.int64),
        dollars=table[:, 3].copy(),
    )
