"""Out-of-sample checks of a purchase model: fit on a calibration period, predict the holdout
period that follows, and compare with what the customers did (Fader, Hardie & Lee 2005: the
conditional expectations by frequency and the tracking plot of cumulative repeat purchases).

:func:`calibration_holdout` splits a transaction table; :meth:`CalibrationHoldout.check` scores a
model on it; :meth:`CalibrationHoldout.compare` fits every candidate on the calibration period
and ranks them by their error in the holdout.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from lifecycle._display import field_table, html_table, one_line
from lifecycle._time import require_aware, zone
from lifecycle.analytics.summary import CustomerSummary, rfm_summary
from lifecycle.analytics.table import Transactions
from lifecycle.clv._data import Floats
from lifecycle.clv.model import VARIANTS, Candidate, PurchaseVariant, ValueModel, fit_candidate
from lifecycle.clv.value import PurchaseModel
from lifecycle.errors import DataError

__all__ = [
    "CalibrationHoldout",
    "FrequencyBucket",
    "HoldoutCheck",
    "ModelComparison",
    "TrackingCurve",
    "calibration_holdout",
]

Ints = npt.NDArray[np.int64]
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _day(value: date | datetime, timezone: str, name: str) -> int:
    """Days since 1970-01-01 of ``value``: a date, or an aware datetime's date in ``timezone``."""
    if isinstance(value, datetime):
        return require_aware(value, name).astimezone(zone(timezone)).date().toordinal() - (
            _EPOCH_ORDINAL
        )
    if isinstance(value, date):
        return value.toordinal() - _EPOCH_ORDINAL
    raise DataError(f"must be a date or an aware datetime, not {type(value).__name__}", column=name)


@attrs.frozen(kw_only=True)
class FrequencyBucket:
    """Customers with one calibration frequency (the last bucket: that many or more), and their
    mean repeat purchases in the holdout, actual and predicted."""

    label: str
    customers: int
    actual: float
    predicted: float


@attrs.frozen(kw_only=True, eq=False)
class TrackingCurve:
    """Cumulative repeat purchases of the cohort, day by day from its first purchase to the end
    of the holdout: ``day`` (dates), ``actual`` and ``predicted`` (the model's expectation for
    customers who had made their first purchase by then), and ``calibration_end``."""

    day: npt.NDArray[np.datetime64]
    actual: Floats
    predicted: Floats
    calibration_end: np.datetime64


@attrs.frozen(kw_only=True, eq=False)
class HoldoutCheck:
    """How well a model fitted on the calibration period predicts the holdout.

    Attributes:
        model: the model's name.
        customers: customers of the calibration cohort.
        holdout_days: the length of the holdout.
        actual: each customer's repeat purchase days in the holdout.
        predicted: each customer's expected repeat purchases in the holdout, given the
            calibration history.
        mae: mean absolute error per customer.
        rmse: root mean squared error per customer.
        total_actual, total_predicted: the holdout's repeat purchases, all customers together.
        buckets: mean actual and predicted holdout purchases by calibration frequency.
        tracking: the cumulative curve over calibration and holdout.
    """

    model: str
    customers: int
    holdout_days: int
    actual: Floats
    predicted: Floats
    mae: float
    rmse: float
    total_actual: float
    total_predicted: float
    buckets: tuple[FrequencyBucket, ...]
    tracking: TrackingCurve

    def __repr__(self) -> str:
        return one_line(
            "HoldoutCheck",
            self.model,
            f"{self.customers:,} customers",
            f"{self.holdout_days} days",
            f"MAE {self.mae:.3g}",
            f"actual {self.total_actual:,.0f} / predicted {self.total_predicted:,.0f}",
        )

    def to_dict(self) -> dict[str, Any]:
        """The summary figures and the buckets as plain values."""
        return {
            "model": self.model,
            "customers": self.customers,
            "holdout_days": self.holdout_days,
            "mae": self.mae,
            "rmse": self.rmse,
            "total_actual": self.total_actual,
            "total_predicted": self.total_predicted,
            "buckets": [attrs.asdict(b) for b in self.buckets],
        }

    def _repr_html_(self) -> str:
        rows = [
            (b.label, f"{b.customers:,}", f"{b.actual:.3f}", f"{b.predicted:.3f}")
            for b in self.buckets
        ]
        caption = (
            f"{self.model}, holdout of {self.holdout_days} days, {self.customers:,} customers: "
            f"{self.total_actual:,.0f} repeat purchases, {self.total_predicted:,.0f} predicted; "
            f"MAE per customer {self.mae:.3f}"
        )
        head = ("calibration frequency", "customers", "holdout actual", "holdout predicted")
        return html_table(head, rows, caption=caption)


@attrs.frozen(kw_only=True, eq=False)
class ModelComparison:
    """Candidates fitted on the calibration period and checked on the holdout; ``best`` has
    the lowest mean absolute error."""

    candidates: tuple[Candidate, ...]
    checks: tuple[HoldoutCheck, ...]
    best: str

    def __repr__(self) -> str:
        scores = ", ".join(f"{c.model} MAE {c.mae:.3g}" for c in self.checks)
        return one_line("ModelComparison", f"best {self.best}", scores)

    def _repr_html_(self) -> str:
        by_name = {c.model: c for c in self.checks}
        rows = []
        for cand in self.candidates:
            check = by_name.get(cand.model)
            rows.append(
                (
                    cand.model + (" (best)" if cand.model == self.best else ""),
                    "-" if cand.log_likelihood is None else f"{cand.log_likelihood:,.1f}",
                    "-" if check is None else f"{check.mae:.4f}",
                    "-" if check is None else f"{check.total_predicted:,.0f}",
                    "-" if check is None else f"{check.total_actual:,.0f}",
                    "yes" if cand.boundary else "no",
                )
            )
        head = ("model", "log-likelihood", "holdout MAE", "predicted", "actual", "boundary")
        return html_table(head, rows, caption="Purchase models, calibration and holdout")


@attrs.frozen(kw_only=True, eq=False)
class CalibrationHoldout:
    """A transaction table split at ``calibration_end`` (inclusive) and ``holdout_end``.

    Attributes:
        summary: the calibration summary in days: the customers whose first purchase is on or
            before ``calibration_end``.
        holdout: each of those customers' repeat purchase days in the holdout, aligned.
        holdout_days: days from ``calibration_end`` (exclusive) to ``holdout_end``.
        calibration_end, holdout_end: the last days of the periods.
        first_day: each customer's first purchase day (days since 1970-01-01), aligned.
        repeat_by_day: the cohort's repeat purchase days on each day from ``start`` to
            ``holdout_end``.
        start: the cohort's first purchase day (days since 1970-01-01).
    """

    summary: CustomerSummary
    holdout: Floats
    holdout_days: int
    calibration_end: date
    holdout_end: date
    first_day: Ints
    repeat_by_day: Floats
    start: int

    def __repr__(self) -> str:
        return one_line(
            "CalibrationHoldout",
            f"{len(self.summary):,} customers",
            f"calibration to {self.calibration_end}",
            f"holdout to {self.holdout_end} ({self.holdout_days} days)",
        )

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [
            ("customers", f"{len(self.summary):,}"),
            ("calibration ends", self.calibration_end.isoformat()),
            ("holdout ends", self.holdout_end.isoformat()),
            ("holdout days", self.holdout_days),
            ("repeat purchase days in the holdout", f"{float(np.sum(self.holdout)):,.0f}"),
        ]
        return field_table(rows, caption="Calibration and holdout")

    def check(self, model: PurchaseModel | ValueModel, *, max_frequency: int = 7) -> HoldoutCheck:
        """Score ``model`` (fitted on :attr:`summary`, any time unit) on the holdout."""
        if max_frequency < 1:
            raise DataError(f"must be >= 1, got {max_frequency}", column="max_frequency")
        purchases = model.purchases if isinstance(model, ValueModel) else model
        days = purchases.in_days()
        s = self.summary
        predicted = np.asarray(
            days.expected_purchases(float(self.holdout_days), s.frequency, s.recency, s.T),
            dtype=np.float64,
        )
        actual = self.holdout
        err = predicted - actual
        x = np.minimum(np.asarray(s.frequency, dtype=np.int64), max_frequency)
        buckets = []
        for k in range(max_frequency + 1):
            rows = x == k
            n = int(rows.sum())
            label = f"{k}+" if k == max_frequency else str(k)
            buckets.append(
                FrequencyBucket(
                    label=label,
                    customers=n,
                    actual=float(actual[rows].mean()) if n else 0.0,
                    predicted=float(predicted[rows].mean()) if n else 0.0,
                )
            )
        return HoldoutCheck(
            model=str(purchases.variant),
            customers=len(s),
            holdout_days=self.holdout_days,
            actual=actual,
            predicted=predicted,
            mae=float(np.abs(err).mean()) if err.size else 0.0,
            rmse=float(np.sqrt((err**2).mean())) if err.size else 0.0,
            total_actual=float(actual.sum()),
            total_predicted=float(predicted.sum()),
            buckets=tuple(buckets),
            tracking=self._tracking(days),
        )

    def _tracking(self, model: PurchaseModel) -> TrackingCurve:
        span = self.repeat_by_day.size
        newcomers = np.bincount(self.first_day - self.start, minlength=span).astype(np.float64)
        # expected repeat purchases within t days of a first purchase, t = 0 .. span - 1
        per_customer = np.asarray(model.expected_purchases_new(np.arange(span, dtype=np.float64)))
        predicted = np.convolve(newcomers, per_customer)[:span]
        days = np.datetime64("1970-01-01", "D") + np.arange(self.start, self.start + span)
        cal_end = np.datetime64(self.calibration_end, "D")
        return TrackingCurve(
            day=days,
            actual=np.cumsum(self.repeat_by_day),
            predicted=predicted,
            calibration_end=cal_end,
        )

    def compare(
        self, models: Sequence[PurchaseVariant] = VARIANTS, *, penalty: float | None = None
    ) -> ModelComparison:
        """Fit each of ``models`` on the calibration period (as :meth:`ValueModel.fit` does,
        boundary maxima held by weak priors) and check it on the holdout.

        Raises:
            DataError: no model could be fitted on the calibration period.
        """
        fitted = [fit_candidate(v, self.summary, penalty) for v in models]
        checks = tuple(self.check(m) for m, _ in fitted if m is not None)
        if not checks:
            raise DataError(
                "no purchase model could be fitted on the calibration period",
                column="frequency",
            )
        best = min(checks, key=lambda c: c.mae).model
        return ModelComparison(
            candidates=tuple(attrs.evolve(c, chosen=c.model == best) for _, c in fitted),
            checks=checks,
            best=best,
        )


def calibration_holdout(
    table: Transactions, *, calibration_end: date | datetime, holdout_end: date | datetime
) -> CalibrationHoldout:
    """Split ``table`` into a calibration period up to ``calibration_end`` and a holdout up to
    ``holdout_end`` (days in the table's zone; datetimes count by their date there).

    The calibration cohort is every customer with a purchase on or before ``calibration_end``;
    their purchase days after it, up to ``holdout_end``, are the holdout. Purchases are
    counted by day, as the summary counts them.

    Raises:
        DataError: ``holdout_end`` not after ``calibration_end``, or no customer in the
            calibration period.
    """
    cal = _day(calibration_end, table.timezone, "calibration_end")
    end = _day(holdout_end, table.timezone, "holdout_end")
    if end <= cal:
        raise DataError("must be after calibration_end", column="holdout_end")
    summary = rfm_summary(table, end=date.fromordinal(cal + _EPOCH_ORDINAL), unit="days")
    if len(summary) == 0:
        raise DataError("no customer bought in the calibration period", column="calibration_end")
    # distinct (customer, day) purchase days up to the holdout's end, for the cohort
    keep = table.day <= end
    ids, days = table.customer_id[keep], table.day[keep]
    uid, inv = np.unique(ids, return_inverse=True)
    inv = inv.reshape(-1)
    order = np.lexsort((days, inv))
    cust, day = inv[order], days[order]
    new = np.ones(cust.size, dtype=bool)
    new[1:] = (cust[1:] != cust[:-1]) | (day[1:] != day[:-1])
    cust, day = cust[new], day[new]
    first = np.ones(cust.size, dtype=bool)
    first[1:] = cust[1:] != cust[:-1]
    first_of = np.full(uid.size, np.iinfo(np.int64).max)
    first_of[cust[first]] = day[first]
    in_cohort = first_of[cust] <= cal
    repeat = in_cohort & ~first
    # align to the summary's customers
    pos = _positions(summary.customer_id, uid)
    held = np.bincount(cust[repeat & (day > cal)], minlength=uid.size).astype(np.float64)
    start = int(first_of[first_of <= cal].min())
    span = end - start + 1
    by_day = np.bincount(day[repeat] - start, minlength=span).astype(np.float64)
    return CalibrationHoldout(
        summary=summary,
        holdout=held[pos],
        holdout_days=end - cal,
        calibration_end=date.fromordinal(cal + _EPOCH_ORDINAL),
        holdout_end=date.fromordinal(end + _EPOCH_ORDINAL),
        first_day=first_of[pos].astype(np.int64),
        repeat_by_day=by_day,
        start=start,
    )


def _positions(wanted: npt.NDArray[Any], ids: npt.NDArray[Any]) -> Ints:
    """Index into the sorted unique ``ids`` of each of ``wanted`` (all present)."""
    pos = np.searchsorted(ids, wanted)
    if not np.array_equal(ids[np.minimum(pos, ids.size - 1)], wanted):
        lookup = {v: i for i, v in enumerate(ids.tolist())}
        pos = np.array([lookup[v] for v in wanted.tolist()], dtype=np.int64)
    return np.asarray(pos, dtype=np.int64)
