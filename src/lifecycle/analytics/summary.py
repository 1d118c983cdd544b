"""Per-customer summaries from the transaction table, by sorting and grouping.

The summary is built in two steps so that it can run on partitions: :meth:`SummaryPartial.of`
reduces any slice of the transactions to one row per customer and day (the sufficient
statistics), partials :func:`merge` exactly (money is counted in integer units of 1/10,000, so
sums do not depend on the order of addition), and :meth:`SummaryPartial.finish` computes the
summary. ``rfm_summary(table)`` does all three on one machine.

The rows are sorted once by packed (customer, day) keys, or not at all when they come in that
order; the grouping after the sort runs as compiled loops with the ``fast`` extra (numba, see
:mod:`lifecycle.analytics._grouping`) and as numpy operations otherwise, with the same result.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from typing import Any, Literal

import attrs
import numpy as np
import numpy.typing as npt

import lifecycle.analytics._grouping as grouping
from lifecycle._display import arrow_table, field_table, frame, html_table, one_line, polars_frame
from lifecycle._time import require_aware, zone
from lifecycle.analytics._days import datetime_to_us, local_days
from lifecycle.analytics.table import Transactions
from lifecycle.errors import DataError

__all__ = ["CustomerSummary", "SummaryPartial", "merge", "rfm_summary"]

#: Money is summed in integer units of 1/SCALE of the currency: exact and order-free.
SCALE = 10_000
_EPOCH_DAY = date(1970, 1, 1).toordinal()

Unit = Literal["days", "weeks"]
_UNIT_DAYS = {"days": 1.0, "weeks": 7.0}

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


#: rows per block of :func:`_units` (its temporary stays in the core's cache)
_BLOCK = 1 << 15


def _units(money: FloatArray) -> IntArray:
    """``money`` in whole units of 1/SCALE, block by block: no temporary as long as the column."""
    units = np.empty(len(money), dtype=np.int64)
    buf = np.empty(min(len(money), _BLOCK))
    for start in range(0, len(money), _BLOCK):
        scaled = buf[: len(money[start : start + _BLOCK])]
        np.multiply(money[start : start + _BLOCK], SCALE, out=scaled)
        # whole numbers: the cast is exact
        np.rint(scaled, out=units[start : start + _BLOCK], casting="unsafe")
    return units


def _group_starts(sorted_keys: npt.NDArray[Any]) -> IntArray:
    """Indices where a new group begins in an array sorted by group."""
    if len(sorted_keys) == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.empty(len(sorted_keys), dtype=bool)
    change[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=change[1:])
    return np.flatnonzero(change)


def _customer_codes(ids: npt.NDArray[Any]) -> tuple[IntArray, npt.NDArray[Any] | None]:
    """Integer codes that sort like the ids, and the ids of the codes (None: the ids are the codes)."""
    if ids.dtype.kind == "i" or (ids.dtype.kind == "u" and (not len(ids) or ids.max() < 2**63)):
        return ids.astype(np.int64, copy=False), None
    uniques, codes = np.unique(ids, return_inverse=True)
    return codes.astype(np.int64), uniques


#: Below this many rows one thread sorts and gathers; above, the cores share the work (numpy
#: releases the GIL while it sorts and gathers, so threads run side by side).
_PARALLEL_ROWS = 1_000_000


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _workers(rows: int) -> int:
    return min(_cores(), 8) if rows >= _PARALLEL_ROWS else 1


def _sort(keys: IntArray) -> None:
    """Sort ``keys`` in place: numpy's SIMD sort of plain integers (quicker on one core than
    sorting slices on several and merging them)."""
    keys.sort()


def _segment_sums(values: IntArray, starts: IntArray) -> IntArray:
    """The sums of the runs of ``values`` that begin at ``starts``: differences of a running
    sum, exact for integers (they wrap modulo 2**64 alike), and faster than ``reduceat``."""
    if not len(starts):
        return values[:0].copy()
    running: IntArray = np.cumsum(values)
    out: IntArray = running[np.append(starts[1:], len(values)) - 1]
    out[1:] -= running[starts[1:] - 1]
    return out


def _segment_extremes(ufunc: np.ufunc, values: IntArray, starts: IntArray) -> IntArray:
    """``ufunc`` (minimum or maximum) over each run of ``values`` beginning at ``starts``;
    runs of one row are read as they are, and ``reduceat`` works on the longer runs only."""
    n = len(values)
    if not len(starts):
        return values[:0].copy()
    out = values[starts]
    sizes = np.diff(np.append(starts, n))
    longer = np.flatnonzero(sizes > 1)
    if len(longer):
        bounds = np.empty(2 * len(longer), dtype=np.int64)
        bounds[0::2] = starts[longer]
        bounds[1::2] = starts[longer] + sizes[longer]
        # a run that ends at the last row: its end is left out, reduceat runs to the end (no
        # padded copy of the values)
        cut = bounds[:-1] if bounds[-1] == n else bounds
        out[longer] = ufunc.reduceat(values, cut)[0::2]
    return out


def _side_by_side(rows: int, *tasks: Callable[[], Any]) -> list[Any]:
    """The results of ``tasks``, run on threads when the data is large enough to gain."""
    if _workers(rows) < 2:
        return [task() for task in tasks]
    with ThreadPoolExecutor(len(tasks)) as pool:
        return [f.result() for f in [pool.submit(task) for task in tasks]]


def _key_bounds(codes: IntArray, days: IntArray) -> tuple[int, int, int, int]:
    """The smallest code and day, the days' span, and the number of values the (code, day) key
    ``(code - cmin) * span + day - dmin`` can take (rows must be non-empty)."""
    cmin, dmin = int(codes.min()), int(days.min())
    span = int(days.max()) - dmin + 1
    return cmin, dmin, span, (int(codes.max()) - cmin + 1) * span


def _packed_key(codes: IntArray, days: IntArray, bounds: tuple[int, int, int, int]) -> IntArray:
    """The (code, day) keys, computed in place where it can be: at ten million rows every
    temporary costs page faults."""
    cmin, dmin, span, _ = bounds
    key = codes - cmin
    key *= span
    key += days
    key -= dmin
    return key


def _in_order(key: IntArray) -> bool:
    """Whether ``key`` never decreases (a log written customer by customer needs no sort)."""
    return bool(len(key) < 2 or (key[1:] >= key[:-1]).all())


def _split_keys(code: IntArray, bounds: tuple[int, int, int, int]) -> tuple[IntArray, IntArray]:
    """The codes and days of packed (code, day) keys (``code`` is overwritten)."""
    cmin, dmin, span, _ = bounds
    day = np.empty_like(code)  # not a view of the keys: a partial would keep them all alive
    np.divmod(code, span, out=(code, day))
    code += cmin
    day += dmin
    return code, day


def _sort_groups(
    codes: IntArray, days: IntArray
) -> tuple[IntArray | None, IntArray, IntArray, IntArray]:
    """Sort rows by (customer code, day).

    Returns the permutation (None when the rows are in that order already), where each group
    starts, and each group's code and day.
    """
    n = len(codes)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty
    bounds = _key_bounds(codes, days)
    groups = bounds[3]
    if groups < 2**62:
        key = _packed_key(codes, days, bounds)
        order: IntArray | None = None
        row_bits = max(1, (n - 1).bit_length())
        if _in_order(key):
            sorted_key = key
        elif groups < 2 ** (63 - row_bits):
            # Pack the row number under the key and sort plain integers: a sort is about twice
            # as fast as an argsort, and the low bits give back the permutation.
            key <<= row_bits
            order = np.arange(n, dtype=np.int64)
            key |= order
            _sort(key)
            np.bitwise_and(key, (1 << row_bits) - 1, out=order)  # the row numbers' buffer again
            key >>= row_bits
            sorted_key = key
        else:
            order = np.argsort(key)
            sorted_key = key[order]
        starts = _group_starts(sorted_key)
        code, day = _split_keys(sorted_key[starts], bounds)
        return order, starts, code, day
    order = np.lexsort((days, codes))
    c, d = codes[order], days[order]
    change = np.ones(n, dtype=bool)
    change[1:] = (c[1:] != c[:-1]) | (d[1:] != d[:-1])
    starts = np.flatnonzero(change)
    return order, starts, c[starts], d[starts]


def _day_totals_compiled(
    codes: IntArray,
    days: IntArray,
    spend: IntArray,
    orders: IntArray | None,
    refunds: IntArray | None,
    discounted: IntArray | None,
    first_us: IntArray,
    last_us: IntArray | None,
) -> tuple[IntArray, ...] | None:
    """The customer-day rows by the compiled loops (the columns of :func:`_day_totals_numpy`);
    None when the keys with the row number under them would not fit in 63 bits, or no rows."""
    n = len(codes)
    if n == 0:
        return None
    bounds = _key_bounds(codes, days)
    cmin, dmin, span, groups = bounds
    row_bits = max(1, (n - 1).bit_length())
    if groups >= 2 ** (63 - row_bits):
        return None
    extras = (orders, refunds, discounted)
    count = grouping.sorted_groups(codes, days, cmin, dmin, span)
    key = None
    if count < 0:  # not in order: sort the keys with the row number in their low bits
        key = sorted_key = _packed_key(codes, days, bounds)
        key <<= row_bits
        key |= np.arange(n, dtype=np.int64)
        _sort(key)
        count = grouping.count_runs(key, row_bits)

        def gather(values: IntArray | None) -> IntArray | None:
            return None if values is None else grouping.gather(sorted_key, row_bits, values)

        # The random reads of the gathers cost the most after the sort: one core each.
        (spend, orders, refunds, discounted), (first_us, last_us) = _side_by_side(
            n,
            lambda: (grouping.gather(sorted_key, row_bits, spend), *map(gather, extras)),
            lambda: (grouping.gather(sorted_key, row_bits, first_us), gather(last_us)),
        )
    out = grouping.day_totals(
        key, row_bits, codes, days, cmin, dmin, span, count,
        spend, orders, refunds, discounted, first_us, last_us,
    )  # fmt: skip
    code, day = _split_keys(out[0], bounds)
    return (code, day, *out[1:])


@attrs.frozen(eq=False)
class SummaryPartial:
    """One row per customer and calendar day, sorted by customer then day.

    Partials of any split of a table merge into the partial of the whole table, exactly.
    """

    customer_id: npt.NDArray[Any]
    day: IntArray
    spend: IntArray
    """Net spend (amount minus refunds) in units of 1/SCALE."""
    orders: IntArray
    refunds: IntArray
    discounted: IntArray
    """Orders bought at a discount."""
    first_us: IntArray
    last_us: IntArray
    timezone: str

    def __len__(self) -> int:
        return len(self.day)

    def __repr__(self) -> str:
        customers = len(np.unique(self.customer_id)) if len(self) else 0
        return one_line(
            "SummaryPartial", f"{len(self):,} customer-days", f"{customers:,} customers"
        )

    def _repr_html_(self) -> str:
        customers = len(np.unique(self.customer_id)) if len(self) else 0
        rows = [("customer-days", f"{len(self):,}"), ("customers", f"{customers:,}")]
        return field_table(rows, caption=f"Summary partial ({self.timezone})")

    @classmethod
    def of(cls, table: Transactions) -> SummaryPartial:
        """Reduce a table (or any slice of one) to customer-day rows."""
        refunds = _units(table.refund) if table.refund.any() else None
        discounted = (table.discount > 0).astype(np.int64) if table.discount.any() else None
        return _reduce(
            table.customer_id,
            table.day,
            _units(table.amount if refunds is None else table.net),
            None,
            refunds,
            discounted,
            table.at_us,
            None,
            table.timezone,
        )

    def take(self, rows: npt.NDArray[Any]) -> SummaryPartial:
        """The partial of some of its rows (a boolean mask or positions in order), for example
        the customers of one partition of a distributed run."""
        return _take(self, rows)

    def merge(self, *others: SummaryPartial) -> SummaryPartial:
        """This partial and ``others`` as one."""
        return merge(self, *others)

    def finish(self, *, end: datetime | date | None = None, unit: Unit = "days") -> CustomerSummary:
        """The summary of every customer with a purchase day on or before ``end``.

        ``end`` is the end of the observation (an aware datetime, whose date in the table's
        zone counts, or a date), defaulting to the data's last day, never to the clock.
        Purchases after ``end`` are left out, as in a calibration period.
        """
        if unit not in _UNIT_DAYS:
            raise DataError(f"unit must be 'days' or 'weeks', not {unit!r}", column="unit")
        if end is None:
            if len(self) == 0:
                raise DataError("no transactions, so no last day to end at; give end=")
            end_day = int(self.day.max())
        elif isinstance(end, datetime):
            us = np.array([datetime_to_us(require_aware(end, "end"))], dtype=np.int64)
            end_day = int(local_days(us, zone(self.timezone))[0])
        elif isinstance(end, date):
            end_day = end.toordinal() - _EPOCH_DAY
        else:
            raise DataError(f"end must be a datetime or a date, not {type(end).__name__}")
        keep = self.day <= end_day
        return _finish(self if keep.all() else _take(self, keep), end_day, unit)


def _take(p: SummaryPartial, rows: npt.NDArray[Any]) -> SummaryPartial:
    return SummaryPartial(
        customer_id=p.customer_id[rows],
        day=p.day[rows],
        spend=p.spend[rows],
        orders=p.orders[rows],
        refunds=p.refunds[rows],
        discounted=p.discounted[rows],
        first_us=p.first_us[rows],
        last_us=p.last_us[rows],
        timezone=p.timezone,
    )


def _reduce(
    ids: npt.NDArray[Any],
    day: IntArray,
    spend: IntArray,
    orders: IntArray | None,
    refunds: IntArray | None,
    discounted: IntArray | None,
    first_us: IntArray,
    last_us: IntArray | None,
    timezone: str,
) -> SummaryPartial:
    """Group rows by (customer, day). ``None`` columns mean: one order per row, no refunds,
    no discounts, and ``last_us`` equal to ``first_us`` (a table's rows, not a partial's)."""
    codes, uniques = _customer_codes(ids)
    columns = (spend, orders, refunds, discounted, first_us, last_us)
    grouped = _day_totals_compiled(codes, day, *columns) if grouping.compiled(len(ids)) else None
    if grouped is None:
        grouped = _day_totals_numpy(codes, day, *columns)
    g_codes, g_day, total, counts, refunded, cheaper, lo, hi = grouped
    return SummaryPartial(
        customer_id=g_codes.astype(ids.dtype, copy=False) if uniques is None else uniques[g_codes],
        day=g_day,
        spend=total,
        orders=counts,
        refunds=refunded,
        discounted=cheaper,
        first_us=lo,
        last_us=hi,
        timezone=timezone,
    )


def _day_totals_numpy(
    codes: IntArray,
    day: IntArray,
    spend: IntArray,
    orders: IntArray | None,
    refunds: IntArray | None,
    discounted: IntArray | None,
    first_us: IntArray,
    last_us: IntArray | None,
) -> tuple[IntArray, ...]:
    """Each (customer code, day)'s code, day, spend, orders, refunds, discounted orders, first
    and last instant, by numpy sorting and grouping."""
    order, starts, g_codes, g_day = _sort_groups(codes, day)
    size = len(starts)

    def gather(values: IntArray) -> IntArray:
        return values if order is None else values[order]

    def add(values: IntArray | None) -> IntArray:
        if values is None:
            return np.zeros(size, dtype=np.int64)
        return _segment_sums(gather(values), starts)

    def instants() -> tuple[IntArray, IntArray]:
        at_sorted = gather(first_us)
        lo = _segment_extremes(np.minimum, at_sorted, starts)
        if last_us is not None:
            at_sorted = gather(last_us)
        hi = _segment_extremes(np.maximum, at_sorted, starts)
        return lo, hi

    if orders is None:
        counts = np.empty(size, dtype=np.int64)
        np.subtract(starts[1:], starts[:-1], out=counts[:-1])
        counts[-1:] = len(codes) - starts[-1:]
    else:
        counts = add(orders)
    # The two gathers in the permuted order cost the most after the sort: one per core.
    total, (lo, hi) = _side_by_side(len(codes), lambda: add(spend), instants)
    return g_codes, g_day, total, counts, add(refunds), add(discounted), lo, hi


def merge(*partials: SummaryPartial) -> SummaryPartial:
    """Partials of disjoint slices of one table, combined: equal to the partial of the whole."""
    if not partials:
        raise DataError("nothing to merge")
    zones = {p.timezone for p in partials}
    if len(zones) > 1:
        raise DataError(f"partials count days in different zones {sorted(zones)}")
    kinds = {p.customer_id.dtype.kind in "iu" for p in partials if len(p)}
    if len(kinds) > 1:
        raise DataError("partials mix integer and text customer ids", column="customer_id")

    def cat(name: str) -> npt.NDArray[Any]:
        return np.concatenate([getattr(p, name) for p in partials])

    return _reduce(
        cat("customer_id"),
        cat("day"),
        cat("spend"),
        cat("orders"),
        cat("refunds"),
        cat("discounted"),
        cat("first_us"),
        cat("last_us"),
        partials[0].timezone,
    )


@attrs.frozen(eq=False)
class CustomerSummary:
    """One row per customer, in customer order, in the field's vocabulary.

    Attributes:
        customer_id: the customers.
        orders: valid orders.
        purchase_days: distinct calendar days with an order.
        frequency: repeat purchases: purchase days - 1.
        recency: last purchase day - first, in ``unit``.
        T: end of observation - first purchase day, in ``unit``.
        days_since_last: end - last purchase day, in ``unit`` (the R of RFM).
        first_at, last_at: the first and last order instants (UTC ``datetime64[us]``).
        total_spend: net spend (refunds deducted).
        mean_spend: total spend / orders.
        monetary_value: mean spend per repeat purchase day (the first day left out); 0 for
            customers without repeat purchases.
        refunds: refunded amounts.
        discounted_orders: orders bought at a discount.
        median_gap_days: median days between purchase days; NaN with one purchase day.
        end: the last day observed.
        unit: ``"days"`` or ``"weeks"``.
    """

    customer_id: npt.NDArray[Any]
    orders: IntArray
    purchase_days: IntArray
    frequency: IntArray
    recency: FloatArray
    T: FloatArray
    days_since_last: FloatArray
    first_at: npt.NDArray[np.datetime64]
    last_at: npt.NDArray[np.datetime64]
    total_spend: FloatArray
    mean_spend: FloatArray
    monetary_value: FloatArray
    refunds: FloatArray
    discounted_orders: IntArray
    median_gap_days: FloatArray
    end: date
    unit: str

    def __len__(self) -> int:
        return len(self.customer_id)

    def columns(self) -> dict[str, npt.NDArray[Any]]:
        """The per-customer columns by name."""
        return {
            f.name: getattr(self, f.name)
            for f in attrs.fields(CustomerSummary)
            if f.name not in ("end", "unit")
        }

    def to_pandas(self) -> Any:
        """The summary as a pandas DataFrame indexed by customer (pandas must be installed)."""
        return frame(self.columns()).set_index("customer_id")

    def to_arrow(self) -> Any:
        """The summary as a ``pyarrow.Table``, one row per customer (numbers are not copied)."""
        return arrow_table(self.columns())

    def to_polars(self) -> Any:
        """The summary as a polars DataFrame, one row per customer (numbers are not copied)."""
        return polars_frame(self.columns())

    def __repr__(self) -> str:
        return one_line(
            "CustomerSummary", f"{len(self):,} customers", f"end {self.end}", f"in {self.unit}"
        )

    def _repr_html_(self) -> str:
        head = ("customer", "orders", "frequency", "recency", "T", "spend", "monetary value")
        rows = [
            (
                self.customer_id[i],
                self.orders[i],
                self.frequency[i],
                self.recency[i],
                self.T[i],
                self.total_spend[i],
                self.monetary_value[i],
            )
            for i in range(min(len(self), 10))
        ]
        more = f", first 10 of {len(self):,}" if len(self) > 10 else ""
        return html_table(head, rows, caption=f"Customer summary ({self.unit}{more})")


def _finish(p: SummaryPartial, end_day: int, unit: Unit) -> CustomerSummary:
    n_rows = len(p)
    starts = _group_starts(p.customer_id) if n_rows else np.zeros(0, dtype=np.int64)
    lasts = np.empty_like(starts)  # each customer's last row
    np.subtract(starts[1:], 1, out=lasts[:-1])
    lasts[-1:] = n_rows - 1
    days = lasts - starts
    days += 1
    frequency = days - 1
    first_day = p.day[starts]
    last_day = p.day[lasts]
    scale = _UNIT_DAYS[unit]
    if grouping.compiled(n_rows):
        spend, orders, refunds, discounted, gaps = grouping.customer_totals(
            p.day, p.spend, p.orders, p.refunds, p.discounted, starts
        )
    else:

        def sums() -> list[IntArray]:
            columns = (p.spend, p.orders, p.refunds, p.discounted)
            return [_segment_sums(values, starts) for values in columns]

        # The median gaps take about as long as all the sums: one core each.
        gaps, (spend, orders, refunds, discounted) = _side_by_side(
            n_rows, lambda: _median_gaps(p.day, starts, days), sums
        )
    # without repeat purchases the repeat spend is 0, so the mean over max(frequency, 1) is 0
    monetary = (spend - p.spend[starts]) / np.maximum(frequency, 1)
    monetary /= SCALE
    total = spend / SCALE

    def span(later: IntArray | int, earlier: IntArray) -> FloatArray:
        # days in floats (exact: far below 2**53), divided in place: one new array
        out: FloatArray = np.subtract(later, earlier, dtype=np.float64)
        out /= scale
        return out

    return CustomerSummary(
        customer_id=p.customer_id[starts],
        orders=orders,
        purchase_days=days,
        frequency=frequency,
        recency=span(last_day, first_day),
        T=span(end_day, first_day),
        days_since_last=span(end_day, last_day),
        # a customer's days are in order, and a later day's instants are later; the gathers
        # are new arrays, so the instants are views of them, not copies
        first_at=p.first_us[starts].view("datetime64[us]"),
        last_at=p.last_us[lasts].view("datetime64[us]"),
        total_spend=total,
        mean_spend=total / np.maximum(orders, 1),
        monetary_value=monetary,
        refunds=refunds / SCALE,
        discounted_orders=discounted,
        median_gap_days=gaps,
        end=date.fromordinal(end_day + _EPOCH_DAY),
        unit=unit,
    )


def _median_gaps(day: IntArray, starts: IntArray, days: IntArray) -> FloatArray:
    """The median gap between consecutive purchase days of each customer.

    ``day`` is sorted by customer then day, customer ``c`` owning ``days[c]`` rows from
    ``starts[c]``, so its gaps are ``diff(day)[starts[c] : starts[c] + days[c] - 1]``.
    Customers are taken in buckets by their number of gaps (up to 2, 4, 8, ...): a bucket's
    gaps are laid out one customer per row of a matrix as wide as the bucket allows, padded
    with a sentinel that sorts last, and sorted along the rows. Short rows sort far faster
    than one sort of every gap, and no row is more than twice as wide as its gaps.
    """
    out = np.full(len(starts), np.nan)
    if len(day) < 2:
        return out
    gaps64 = np.diff(day)
    top = int(gaps64.max(initial=0))
    dtype = np.int16 if top < 2**15 - 1 else np.int32 if top < 2**31 - 1 else np.int64
    sentinel = np.iinfo(dtype).max
    m = days - 1
    widest = 2 ** max(1, int(m.max()) - 1).bit_length()
    # Padded at the end, so a row that starts near the end reads sentinels past it.
    gaps = np.full(len(gaps64) + widest, sentinel, dtype=dtype)
    gaps[: len(gaps64)] = gaps64
    # One or two gaps (most customers with a repeat day) need no sort: (g + g) / 2 = g and
    # (g0 + g1) / 2 are exact in floats whatever the order, as the bucket's sorted pair gives.
    few = np.flatnonzero((m == 1) | (m == 2))
    first = gaps[starts[few]].astype(np.float64)
    second = np.where(m[few] == 2, gaps[starts[few] + 1], first)
    out[few] = (first + second) / 2
    # the rest by bucket: 2^(e-1) < m <= 2^e with e the bit length of m - 1, found once
    many = np.flatnonzero(m > 2)
    level = np.frexp((m[many] - 1).astype(np.float64))[1].astype(np.int8)
    for e in np.unique(level).tolist():
        width = 2**e
        who = many[level == e]
        count = m[who]
        column = np.arange(width)
        rows = gaps[starts[who][:, None] + column]
        rows[column >= count[:, None]] = sentinel  # another customer's gaps: pad
        rows.sort(axis=1)
        lo = np.take_along_axis(rows, ((count - 1) // 2)[:, None], axis=1)[:, 0]
        hi = np.take_along_axis(rows, (count // 2)[:, None], axis=1)[:, 0]
        out[who] = (lo.astype(np.float64) + hi) / 2
    return out


def rfm_summary(
    table: Transactions, *, end: datetime | date | None = None, unit: Unit = "days"
) -> CustomerSummary:
    """The per-customer summary of ``table``: frequency, recency, T, spend and rhythm.

    ``end`` defaults to the data's last day (never the clock); see :meth:`SummaryPartial.finish`.
    """
    return SummaryPartial.of(table).finish(end=end, unit=unit)
