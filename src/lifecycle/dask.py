"""The analytics and the value models on a Dask cluster, with the answers of one machine.

Each worker reads its own partitions of order lines (Parquet, CSV, any Dask DataFrame) into a
:class:`~lifecycle.analytics.Transactions` table (checked there), reduces it to its
:class:`~lifecycle.analytics.SummaryPartial` (one row per customer and day) and splits the
partial by a hash of the customer into buckets; each bucket's partials from every partition are
merged at once with the exact :func:`~lifecycle.analytics.merge` (a one-level tree: a bucket
holds every row of its customers, so no further level is needed). With ``combine=False`` the
partition's rows are split instead, unreduced, and each bucket's rows are reduced at once to
the same partial: it saves a sort per partition when customers seldom buy twice a day.
:meth:`~lifecycle.analytics.SummaryPartial.finish`, the RFM scores with learned cut points, the
predictions and the stage/status batch then run on each bucket as they run on one machine.
What crosses the network is each partition's partial once, to its buckets' workers (or each
line as four numbers, with ``combine=False``), distinct model rows and the small results; the
summaries stay on the workers.

Needs the ``dask`` extra (``dask[dataframe]`` and ``distributed``); the fits need ``clv``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import numpy.typing as npt

from lifecycle._display import frame, html_table, one_line
from lifecycle.analytics.batch import BatchAssessment, assess_all
from lifecycle.analytics.reports import (
    Cohorts,
    KpiCounts,
    Kpis,
    cohort_counts,
    cohorts_from_counts,
    kpi_counts,
    kpis_from_counts,
)
from lifecycle.analytics.segments import (
    ABCAnalysis,
    ParetoSummary,
    RFMPolicy,
    RFMScores,
    abc_classes,
    pareto,
    rfm_scores,
)
from lifecycle.analytics.summary import CustomerSummary, SummaryPartial, Unit, merge
from lifecycle.analytics.table import Transactions
from lifecycle.errors import DataError, MissingExtra
from lifecycle.events import Event, Referred
from lifecycle.policy import Policy

try:
    import dask
    import dask.dataframe as dd
    import pandas as pd
    from dask.delayed import Delayed, delayed
except ImportError as e:  # pragma: no cover - the extra is installed where tests run
    raise MissingExtra(package="dask", extra="dask", feature="lifecycle.dask") from e

if TYPE_CHECKING:
    from lifecycle.clv.betageo import BetaGeo, BetaGeoModel
    from lifecycle.clv.gammagamma import GammaGammaModel
    from lifecycle.clv.model import ValueModel
    from lifecycle.clv.pareto import ParetoNBD, ParetoNBDModel
    from lifecycle.clv.predictions import CustomerPredictions

__all__ = [
    "DaskPredictions",
    "DaskSummary",
    "abc",
    "assess_events",
    "cohorts",
    "customer_summary",
    "fit_purchases",
    "fit_spend",
    "kpis",
    "pareto_of",
    "predict",
    "progress",
    "rfm",
]

# -- buckets of customers -----------------------------------------------------------------------


def bucket_of(customer_id: npt.NDArray[Any], buckets: int) -> npt.NDArray[np.int64]:
    """Each customer's bucket, ``0..buckets-1``: the same on every process and machine."""
    if len(customer_id) == 0:
        return np.zeros(0, dtype=np.int64)
    hashed: npt.NDArray[np.uint64] = pd.util.hash_array(np.asarray(customer_id))
    return (hashed % np.uint64(buckets)).astype(np.int64)


def _bucket_order(customer_id: npt.NDArray[Any], buckets: int) -> tuple[Any, Any]:
    """Rows in bucket order (stable), and where each bucket begins and ends in that order."""
    which = bucket_of(customer_id, buckets)
    # small integers sort by radix (linear), where int64 would take a comparison sort
    small = which.astype(
        np.uint8 if buckets <= 256 else np.uint16 if buckets <= 65536 else np.int64
    )
    order = np.argsort(small, kind="stable")
    bounds = np.searchsorted(small[order], np.arange(buckets + 1))
    return order, bounds


#: The columns of a table a bucket's partial is reduced from (the rest are zeros or unused).
_ROW_COLUMNS = ("customer_id", "at_us", "day", "amount", "refund", "discount")


def _split_rows(table: Transactions, buckets: int) -> tuple[Any, ...]:
    """A table's rows as one piece per bucket: a dict of numpy columns (refund and discount
    only when some row has one), so only arrays cross the network, never Python objects."""
    order, bounds = _bucket_order(table.customer_id, buckets)
    names = [n for n in _ROW_COLUMNS if n not in ("refund", "discount") or getattr(table, n).any()]
    cols = {n: getattr(table, n)[order] for n in names}
    return tuple({n: v[bounds[k] : bounds[k + 1]] for n, v in cols.items()} for k in range(buckets))


def _bucket_partial(timezone: str, *pieces: dict[str, npt.NDArray[Any]]) -> SummaryPartial:
    """The partial of one bucket's rows from every partition, reduced at once by
    :meth:`SummaryPartial.of` (equal, exactly, to merging the partitions' partials)."""
    full = [p for p in pieces if len(p["day"])] or list(pieces[:1])

    def cat(name: str) -> npt.NDArray[Any]:
        if not any(name in p for p in full):
            return np.zeros(sum(len(p["day"]) for p in full), dtype=np.float64)
        return np.concatenate(
            [p[name] if name in p else np.zeros(len(p["day"]), dtype=np.float64) for p in full]
        )

    table = Transactions(
        customer_id=cat("customer_id"),
        at_us=cat("at_us"),
        amount=cat("amount"),
        refund=cat("refund"),
        discount=cat("discount"),
        order_id=None,
        category=None,
        day=cat("day"),
        timezone=timezone,
    )
    return SummaryPartial.of(table)


@attrs.frozen
class _Columns:
    """Which column of the order lines plays which part (as :meth:`Transactions.from_pandas`)."""

    customer_id: str = "customer_id"
    at: str = "at"
    amount: str = "amount"
    refund: str | None = None
    discount: str | None = None
    order_id: str | None = None
    timezone: str = "UTC"

    def table(self, part: Any) -> Transactions:
        return Transactions.from_pandas(
            part,
            customer_id=self.customer_id,
            at=self.at,
            amount=self.amount,
            refund=self.refund,
            discount=self.discount,
            order_id=self.order_id,
            timezone=self.timezone,
        )


def _partition_pieces(part: Any, columns: _Columns, buckets: int, combine: bool) -> tuple[Any, ...]:
    """One partition of order lines as its rows per bucket (or, with ``combine``, its partial
    per bucket), and its last day (or None)."""
    table = columns.table(part)
    last = int(table.day.max()) if len(table) else None
    if combine:
        partial = SummaryPartial.of(table)
        order, bounds = _bucket_order(partial.customer_id, buckets)
        pieces = [partial.take(order[bounds[k] : bounds[k + 1]]) for k in range(buckets)]
        return (*pieces, last)
    return (*_split_rows(table, buckets), last)


def _bucket(timezone: str, *pieces: Any) -> SummaryPartial:
    """One bucket's partial from its pieces of every partition: rows or partials."""
    if isinstance(pieces[0], SummaryPartial):
        full = [p for p in pieces if len(p)]  # an empty one's id column may be of another type
        return pieces[0] if not full else full[0] if len(full) == 1 else merge(*full)
    return _bucket_partial(timezone, *pieces)


def _last_day(*days: int | None) -> int:
    known = [d for d in days if d is not None]
    if not known:
        raise DataError("no transactions, so no last day to end at; give end=")
    return max(known)


def _finish(partial: SummaryPartial, end: datetime | date | int, unit: Unit) -> CustomerSummary:
    if isinstance(end, int):
        end = date.fromordinal(end + date(1970, 1, 1).toordinal())
    return partial.finish(end=end, unit=unit)


def _end_of(summary: CustomerSummary) -> date:
    return summary.end


def _concat(parts: Sequence[Any], names: Sequence[str]) -> dict[str, npt.NDArray[Any]]:
    """Columns of customer-disjoint parts, one after another, then in customer order."""
    full = [p for p in parts if len(p)] or list(parts[:1])
    cols = {n: np.concatenate([getattr(p, n) for p in full]) for n in names}
    order = np.argsort(cols["customer_id"], kind="stable")
    return {n: v[order] for n, v in cols.items()}


# -- the summary --------------------------------------------------------------------------------


@attrs.frozen(eq=False)
class DaskSummary:
    """The customer summary as one :class:`~lifecycle.analytics.CustomerSummary` per bucket of
    customers (disjoint), held on the cluster.

    Attributes:
        parts: the buckets' summaries, as Dask delayed values (persisted by default).
        end: the last day observed.
        unit: ``"days"`` or ``"weeks"``.
    """

    parts: tuple[Delayed, ...]
    end: date
    unit: str

    def __len__(self) -> int:
        return len(self.parts)

    def __repr__(self) -> str:
        return one_line(
            "DaskSummary", f"{len(self.parts)} buckets", f"end {self.end}", f"in {self.unit}"
        )

    def _repr_html_(self) -> str:
        rows = [("buckets", len(self.parts)), ("end", self.end), ("unit", self.unit)]
        return html_table(("", ""), rows, caption="Customer summary on a Dask cluster")

    def map(self, func: Callable[[CustomerSummary], Any]) -> list[Delayed]:
        """``func`` applied to each bucket's summary, lazily."""
        return [delayed(func, pure=True)(p) for p in self.parts]

    def compute(self) -> CustomerSummary:
        """The whole summary on this machine, in customer order: equal, bit for bit, to
        :func:`~lifecycle.analytics.rfm_summary` of all the order lines."""
        parts = dask.compute(*self.parts)
        names = [f.name for f in attrs.fields(CustomerSummary) if f.name not in ("end", "unit")]
        return CustomerSummary(**_concat(parts, names), end=self.end, unit=self.unit)

    def to_dask(self) -> Any:
        """The summary as a Dask DataFrame, one partition per bucket, indexed by customer."""
        frames = self.map(_summary_frame)
        meta = dask.compute(frames[0])[0].iloc[:0]
        return dd.from_delayed(frames, meta=meta, verify_meta=False)


def _summary_frame(summary: CustomerSummary) -> Any:
    return summary.to_pandas()


def customer_summary(
    lines: Any,
    *,
    customer_id: str = "customer_id",
    at: str = "at",
    amount: str = "amount",
    refund: str | None = None,
    discount: str | None = None,
    order_id: str | None = None,
    timezone: str = "UTC",
    end: datetime | date | None = None,
    unit: Unit = "days",
    buckets: int | None = None,
    combine: bool = True,
    persist: bool = True,
    show_progress: bool = False,
) -> DaskSummary:
    """The per-customer summary of a Dask DataFrame of order lines (columns named as in
    :meth:`~lifecycle.analytics.Transactions.from_pandas`; ``at`` time-zone aware).

    Each partition is reduced to its partial (one row per customer and day), split by buckets
    of customers, and each bucket's partials from every partition are merged at once and
    finished. ``end`` defaults to the data's last day. ``buckets`` (default: as many as
    partitions, at most 64) sets how many summaries the customers are spread over.
    ``combine=False`` splits the partition's rows unreduced instead (the same summary; a sort
    per partition less, worth it when customers seldom buy twice a day, more rows on the wire
    when they buy several lines a day).
    With ``persist`` the summaries stay on the workers for what follows.

    Raises:
        DataError: a column that cannot be read (raised when the partition is computed), no
            transactions and no ``end``.
    """
    if not isinstance(lines, dd.DataFrame):
        raise DataError(
            f"expected a dask DataFrame of order lines, got {type(lines).__name__}",
            column="lines",
        )
    if unit not in ("days", "weeks"):
        raise DataError(f"unit must be 'days' or 'weeks', not {unit!r}", column="unit")
    k = min(max(lines.npartitions, 1), 64) if buckets is None else int(buckets)
    if k < 1:
        raise DataError("must be >= 1", column="buckets")
    columns = _Columns(customer_id, at, amount, refund, discount, order_id, timezone)
    pieces = [
        delayed(_partition_pieces, nout=k + 1, pure=True)(part, columns, k, combine)
        for part in lines.to_delayed()
    ]
    merged = [delayed(_bucket, pure=True)(timezone, *[p[b] for p in pieces]) for b in range(k)]
    stop: Any = end if end is not None else delayed(_last_day, pure=True)(*[p[k] for p in pieces])
    parts = [delayed(_finish, pure=True)(m, stop, unit) for m in merged]
    if persist:
        # the last day with the summaries: computed apart, it would read every partition again
        *parts, stop = dask.persist(*parts, stop)
        if show_progress:
            progress(*parts)
    if end is None:
        last = dask.compute(stop)[0]
        end_date = date.fromordinal(last + date(1970, 1, 1).toordinal())
    else:
        end_date = dask.compute(delayed(_end_of)(parts[0]))[0]
    return DaskSummary(parts=tuple(parts), end=end_date, unit=unit)


# -- segments and reports -----------------------------------------------------------------------


def _distinct(values: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64]]:
    uniques, counts = np.unique(values, return_counts=True)
    return uniques, counts.astype(np.int64)


def _rfm_distinct(summary: CustomerSummary) -> tuple[Any, Any, Any]:
    return (
        _distinct(summary.days_since_last),
        _distinct(summary.frequency),
        _distinct(summary.total_spend),
    )


def _multiset(pairs: Iterable[tuple[npt.NDArray[Any], npt.NDArray[np.int64]]]) -> Any:
    """Every value as often as the buckets counted it, sorted."""
    pairs = list(pairs)
    values = np.concatenate([v for v, _ in pairs])
    counts = np.concatenate([c for _, c in pairs])
    order = np.argsort(values, kind="stable")
    return np.repeat(values[order], counts[order])


def _score(summary: CustomerSummary, cuts: RFMPolicy) -> RFMScores:
    return rfm_scores(summary.days_since_last, summary.frequency, summary.total_spend, cuts=cuts)


def rfm(summary: DaskSummary, *, bins: int | None = None, cuts: RFMPolicy | None = None) -> Any:
    """RFM scores of every customer (days since last order, repeat purchases, total spend), as
    :func:`~lifecycle.analytics.rfm_scores` gives them on the whole base: cut points not given
    are learned from the distinct values of all buckets with their counts, then each bucket is
    scored with them. Returns ``(customer_id, RFMScores)`` in customer order.
    """
    if cuts is None or None in (cuts.recency_days, cuts.frequency, cuts.monetary):
        distinct = dask.compute(*summary.map(_rfm_distinct))
        columns = [_multiset(d[i] for d in distinct) for i in range(3)]
        cuts = rfm_scores(*columns, bins=bins, cuts=cuts).cuts
    parts = dask.compute(*[delayed(_score)(p, cuts) for p in summary.parts])
    ids = dask.compute(*summary.map(lambda s: s.customer_id))
    names = ["customer_id", "r", "f", "m", "score"]
    rows = [_Rows(i, s.columns()) for i, s in zip(ids, parts, strict=True)]
    cols = _concat(rows, names)
    scores = RFMScores(r=cols["r"], f=cols["f"], m=cols["m"], score=cols["score"], cuts=cuts)
    return cols["customer_id"], scores


class _Rows:
    """Columns with a customer id, as ``_concat`` reads them."""

    def __init__(self, customer_id: npt.NDArray[Any], columns: dict[str, Any]):
        self.customer_id = customer_id
        for name, values in columns.items():
            setattr(self, name, values)

    def __len__(self) -> int:
        return len(self.customer_id)


def _value_column(summary: DaskSummary, column: str) -> npt.NDArray[Any]:
    parts = dask.compute(*summary.map(lambda s: _Rows(s.customer_id, {column: getattr(s, column)})))
    return _concat(parts, ["customer_id", column])[column]


def pareto_of(summary: DaskSummary, column: str = "total_spend", **options: Any) -> ParetoSummary:
    """:func:`~lifecycle.analytics.pareto` of one summary column (default: total spend),
    gathered in customer order (8 bytes per customer)."""
    return pareto(_value_column(summary, column), **options)


def abc(summary: DaskSummary, column: str = "total_spend", **options: Any) -> ABCAnalysis:
    """:func:`~lifecycle.analytics.abc_classes` of one summary column, in customer order."""
    return abc_classes(_value_column(summary, column), **options)


def _cohort_part(partial: SummaryPartial) -> Any:
    if not len(partial):
        return None
    table = Transactions.from_arrays(
        partial.customer_id,
        partial.first_us.astype("datetime64[us]"),
        np.zeros(len(partial)),
        timezone=partial.timezone,
    )
    return cohort_counts(table)


def cohorts(
    lines: Any,
    *,
    customer_id: str = "customer_id",
    at: str = "at",
    amount: str = "amount",
    timezone: str = "UTC",
    buckets: int | None = None,
) -> Cohorts:
    """Monthly cohort retention of a Dask DataFrame of order lines, as
    :func:`~lifecycle.analytics.cohort_retention` gives it: each bucket of customers counts its
    (cohort, month) pairs; the counts add up."""
    k = min(max(lines.npartitions, 1), 64) if buckets is None else int(buckets)
    columns = _Columns(customer_id, at, amount, timezone=timezone)
    pieces = [
        delayed(_partition_pieces, nout=k + 1, pure=True)(part, columns, k, False)
        for part in lines.to_delayed()
    ]
    counts = dask.compute(
        *[
            delayed(_cohort_part)(delayed(_bucket_partial)(timezone, *[p[b] for p in pieces]))
            for b in range(k)
        ]
    )
    return cohorts_from_counts([c for c in counts if c is not None])


# -- the value models ---------------------------------------------------------------------------


def _distinct_rfm(summary: CustomerSummary) -> tuple[list[Any], Any]:
    from lifecycle.clv._data import unique_rows

    cols, counts, _ = unique_rows(
        [summary.frequency.astype(np.float64), summary.recency, summary.T]
    )
    return cols, counts


def _spend_rows(summary: CustomerSummary) -> _Rows:
    repeat = summary.frequency > 0
    return _Rows(
        summary.customer_id[repeat],
        {"x": summary.frequency[repeat], "m": summary.monetary_value[repeat]},
    )


def _merge_distinct(*parts: tuple[list[Any], Any]) -> tuple[list[Any], Any]:
    """Distinct rows of every bucket with their counts, merged into the distinct rows of all."""
    from lifecycle.clv._data import unique_rows

    width = len(parts[0][0])
    cols = [np.concatenate([p[0][i] for p in parts]) for i in range(width)]
    weights = np.concatenate([p[1] for p in parts])
    rows, counts, _ = unique_rows(cols, weights)
    return rows, counts


def _fit_distinct(fitter: Any, unit_days: float, *parts: tuple[list[Any], Any]) -> Any:
    (x, tx, big_t), counts = _merge_distinct(*parts)
    return fitter.fit(x, tx, big_t, weights=counts, time_unit_days=unit_days)


def fit_purchases(
    summary: DaskSummary, fitter: BetaGeo | ParetoNBD | None = None
) -> BetaGeoModel | ParetoNBDModel:
    """A purchase model (default BG/NBD; any of ``BetaGeo()``, ``ModifiedBetaGeo()``,
    ``ParetoNBD()``) fitted on the distinct (frequency, recency, T) rows of all customers with
    their counts: the likelihood of the whole base, so the fit of one machine. The rows are
    gathered on one worker, which fits and sends back the model."""
    from lifecycle.clv.betageo import BetaGeo

    fitter = BetaGeo() if fitter is None else fitter
    unit_days = 7.0 if summary.unit == "weeks" else 1.0
    model: BetaGeoModel | ParetoNBDModel = dask.compute(
        delayed(_fit_distinct)(fitter, unit_days, *summary.map(_distinct_rfm))
    )[0]
    return model


def fit_spend(summary: DaskSummary, penalty: float | None = None) -> GammaGammaModel | None:
    """The Gamma-Gamma spend model as :meth:`~lifecycle.clv.ValueModel.fit` fits it (repeat
    buyers whose repeat purchases have a value; weak priors when the maximum is on the
    boundary; ``None`` when it cannot be fitted), on the repeat buyers' frequency and mean
    spend gathered in customer order (16 bytes per repeat buyer: mean spends are continuous,
    so distinct rows would be nearly as many, and the order of the sums is kept). The rows are
    gathered on one worker, which fits and sends back the model."""
    model: GammaGammaModel | None = dask.compute(
        delayed(_fit_spend_rows)(penalty, *summary.map(_spend_rows))
    )[0]
    return model


def _fit_spend_rows(penalty: float | None, *parts: _Rows) -> GammaGammaModel | None:
    from lifecycle.clv.model import fit_spend_model

    cols = _concat(parts, ["customer_id", "x", "m"])
    model, _ = fit_spend_model(cols["x"], cols["m"], penalty)
    return model


@attrs.frozen(eq=False)
class DaskPredictions:
    """Every customer's predictions, one :class:`~lifecycle.clv.CustomerPredictions` per task
    (a few buckets of customers), held on the cluster."""

    parts: tuple[Delayed, ...]

    def __repr__(self) -> str:
        return one_line("DaskPredictions", f"{len(self.parts)} parts")

    def _repr_html_(self) -> str:
        return html_table(("", ""), [("parts", len(self.parts))], caption="Predictions on Dask")

    def compute(self) -> CustomerPredictions:
        """All predictions on this machine, in customer order."""
        from lifecycle.clv.predictions import CustomerPredictions

        parts = dask.compute(*self.parts)
        names = list(parts[0].columns())
        cols = _concat(parts, names)
        return CustomerPredictions(
            customer_id=cols["customer_id"],
            p_alive=cols["p_alive"],
            expected_purchases=cols["expected_purchases"],
            clv=cols.get("clv"),
            horizon_days=parts[0].horizon_days,
            clv_horizon_days=parts[0].clv_horizon_days,
        )

    def to_dask(self) -> Any:
        """The predictions as a Dask DataFrame, one partition per part."""
        frames = [delayed(lambda p: frame(p.columns()), pure=True)(p) for p in self.parts]
        meta = dask.compute(frames[0])[0].iloc[:0]
        return dd.from_delayed(frames, meta=meta, verify_meta=False)

    def to_parquet(self, path: str, **options: Any) -> None:
        """Write the predictions as Parquet, one file per part (``options`` go to Dask)."""
        self.to_dask().to_parquet(path, write_index=False, **options)


#: Buckets predicted together: each call of the value model prices the distinct (frequency,
#: T) rows of its customers over the CLV steps, a cost that hardly grows with the customers
#: (nearly every bucket has nearly every such row), so a few larger calls do it a few times.
PREDICT_BUCKETS = 8


def _predict_group(model: ValueModel, *parts: CustomerSummary) -> CustomerPredictions:
    from lifecycle.clv.predictions import predict_customers

    if len(parts) == 1:
        return predict_customers(model, parts[0])
    names = [f.name for f in attrs.fields(CustomerSummary) if f.name not in ("end", "unit")]
    whole = CustomerSummary(**_concat(parts, names), end=parts[0].end, unit=parts[0].unit)
    return predict_customers(model, whole)


def predict(
    summary: DaskSummary,
    model: ValueModel,
    *,
    persist: bool = True,
    buckets_per_task: int = PREDICT_BUCKETS,
) -> DaskPredictions:
    """P(alive), expected purchases and CLV of every customer by
    :func:`~lifecycle.clv.predict_customers` (a summary in days), ``buckets_per_task``
    buckets at a time (one partition of predictions each, in customer order)."""
    if summary.unit != "days":
        raise DataError("predict on a summary in days (unit='days')", column="unit")
    if buckets_per_task < 1:
        raise DataError("must be >= 1", column="buckets_per_task")
    step = int(buckets_per_task)
    parts = [
        delayed(_predict_group, pure=True)(model, *summary.parts[i : i + step])
        for i in range(0, len(summary.parts), step)
    ]
    if persist:
        parts = list(dask.persist(*parts))
    return DaskPredictions(parts=tuple(parts))


# -- stages and statuses ------------------------------------------------------------------------


def _referrals(events: Sequence[Event]) -> list[tuple[str, str]]:
    return [(e.customer_id, e.referred_id) for e in events if isinstance(e, Referred)]


def _route(
    events: Sequence[Event], referrers: dict[str, list[str]], buckets: int
) -> tuple[list[Event], ...]:
    """Events by the bucket of their customer, and by the buckets of whoever referred them
    (a referrer's stage reads the first orders of the customers it referred)."""
    out: tuple[list[Event], ...] = tuple([] for _ in range(buckets))
    if not events:
        return out
    ids = np.array([e.customer_id for e in events], dtype=object)
    own = bucket_of(ids, buckets)
    for e, b in zip(events, own.tolist(), strict=True):
        out[b].append(e)
        for referrer in referrers.get(e.customer_id, ()):
            rb = int(bucket_of(np.array([referrer], dtype=object), buckets)[0])
            if rb != b:
                out[rb].append(e)
    return out


def _assess_bucket(
    bucket: int, buckets: int, policy: Policy, now: datetime, tiers: bool, *parts: list[Event]
) -> BatchAssessment:
    batch = assess_all([e for p in parts for e in p], policy, now, tiers=tiers)
    mine = bucket_of(batch.customer_id, buckets) == bucket
    return BatchAssessment(
        customer_id=batch.customer_id[mine],
        stage=batch.stage[mine],
        status=batch.status[mine],
        as_of=batch.as_of,
        tier=None if batch.tier is None else batch.tier[mine],
    )


def assess_events(
    events: Any, policy: Policy, now: datetime, *, buckets: int | None = None, tiers: bool = False
) -> BatchAssessment:
    """Every customer's stage and status (and tier) at ``now`` from a Dask bag of events, as
    :func:`~lifecycle.analytics.assess_all` decides them: events are routed to buckets hashed
    by customer (a referred customer's events also go to the referrer's bucket) and each
    bucket is assessed on its own."""
    parts = events.to_delayed()
    k = min(max(len(parts), 1), 64) if buckets is None else int(buckets)
    pairs = dask.compute(*[delayed(_referrals)(p) for p in parts])
    referrers: dict[str, list[str]] = {}
    for referrer, referred in (pair for ps in pairs for pair in ps):
        referrers.setdefault(referred, []).append(referrer)
    routed = [delayed(_route, nout=k, pure=True)(p, referrers, k) for p in parts]
    batches = dask.compute(
        *[
            delayed(_assess_bucket)(b, k, policy, now, tiers, *[r[b] for r in routed])
            for b in range(k)
        ]
    )
    names = ["customer_id", "stage", "status"] + ([] if not tiers else ["tier"])
    cols = _concat(batches, names)
    return BatchAssessment(
        customer_id=cols["customer_id"],
        stage=cols["stage"],
        status=cols["status"],
        as_of=batches[0].as_of,
        tier=cols.get("tier"),
    )


def _kpi_bucket(
    policy: Policy,
    start: datetime,
    end: datetime,
    currency: str | None,
    *parts: list[Event],
) -> KpiCounts:
    return kpi_counts(
        [e for p in parts for e in p], policy, start=start, end=end, currency=currency
    )


def kpis(
    events: Any,
    policy: Policy,
    *,
    start: datetime,
    end: datetime,
    currency: str | None = None,
    buckets: int | None = None,
) -> Kpis:
    """The KPIs of a Dask bag of events over ``[start, end)``, as
    :func:`~lifecycle.analytics.kpis` gives them: each bucket of customers is counted by
    :func:`~lifecycle.analytics.reports.kpi_counts` and the counts add up; the customers
    referred in the period are gathered (a set of ids) and each bucket tells how many of them
    it counts as buyers. Sums of money are added per bucket, so they may differ from one
    machine's in the last bits."""
    parts = events.to_delayed()
    k = min(max(len(parts), 1), 64) if buckets is None else int(buckets)
    routed = [delayed(_route, nout=k, pure=True)(p, {}, k) for p in parts]
    counted = dask.persist(
        *[
            delayed(_kpi_bucket)(policy, start, end, currency, *[r[b] for r in routed])
            for b in range(k)
        ]
    )
    referred = frozenset().union(*dask.compute(*[delayed(_referred)(c) for c in counted]))
    converted = sum(dask.compute(*[delayed(_converted)(c, referred) for c in counted]))
    light = dask.compute(*[delayed(_without_buyers)(c) for c in counted])
    return kpis_from_counts(light, converted=converted)


def _referred(counts: KpiCounts) -> frozenset[str]:
    return counts.referred


def _converted(counts: KpiCounts, referred: frozenset[str]) -> int:
    return len(referred & counts.buyer_ids)


def _without_buyers(counts: KpiCounts) -> KpiCounts:
    return attrs.evolve(counts, buyer_ids=frozenset())


# -- progress -----------------------------------------------------------------------------------


def progress(*collections: Any) -> None:
    """Show how far the computation of ``collections`` (persisted Dask values) has got: the
    dashboard link, then a progress bar (a widget in a notebook, text in a terminal).

    Without a distributed client, a text bar over the local scheduler is shown instead."""
    try:
        from distributed import get_client
        from distributed import progress as bar
    except ImportError as e:  # pragma: no cover
        raise MissingExtra(package="distributed", extra="dask", feature="progress") from e
    try:
        client = get_client()
    except ValueError:
        from dask.diagnostics import ProgressBar

        with ProgressBar(out=sys.stdout):
            dask.compute(*collections)
        return
    link = client.dashboard_link
    if link:
        print(f"Dask dashboard: {link}", file=sys.stdout)
    bar(*collections)
