"""The summary's grouping as compiled loops (numba, the ``fast`` extra): one pass over the rows
sorted by customer and day for the customer-day totals, one over the customer-days for the
customer totals and median gaps. They give the numpy path's numbers exactly (integer sums,
the same medians); :mod:`lifecycle.analytics.summary` chooses between them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lifecycle._compiled import available, jit

__all__ = [
    "MIN_ROWS",
    "compiled",
    "count_runs",
    "customer_totals",
    "day_totals",
    "gather",
    "sorted_groups",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: below this many rows the compiled loops are not worth their call
MIN_ROWS = 50_000


def compiled(n: int) -> bool:
    """Whether the compiled loops serve a summary of ``n`` rows."""
    return n >= MIN_ROWS and available()


@jit
def _sorted_groups_loop(codes: IntArray, days: IntArray, cmin: int, dmin: int, span: int) -> int:
    n = codes.size
    prev = (codes[0] - cmin) * span + (days[0] - dmin)
    groups = 1
    ok = True
    for i in range(1, n):
        k = (codes[i] - cmin) * span + (days[i] - dmin)
        groups += k != prev
        ok &= k >= prev
        prev = k
    return groups if ok else -1


def sorted_groups(codes: IntArray, days: IntArray, cmin: int, dmin: int, span: int) -> int:
    """The number of (code, day) groups when the rows are already in (code, day) order, else
    -1. The key ``(code - cmin) * span + day - dmin`` must fit in 63 bits."""
    if codes.size == 0:
        return 0
    return int(_sorted_groups_loop(codes, days, cmin, dmin, span))


@jit
def _count_runs_loop(key: IntArray, shift: int) -> int:
    groups = 1
    prev = key[0] >> shift
    for i in range(1, key.size):
        k = key[i] >> shift
        groups += k != prev
        prev = k
    return groups


@jit
def _gather_loop(key: IntArray, shift: int, values: IntArray, out: IntArray) -> None:
    mask = (1 << shift) - 1
    for i in range(key.size):
        out[i] = values[key[i] & mask]


def gather(key: IntArray, shift: int, values: IntArray) -> IntArray:
    """``values`` in the order of the rows numbered in the low ``shift`` bits of ``key``: the
    random reads in a loop of their own, which keeps many of them in flight at once (in the
    grouping loop they would wait on each other)."""
    out = np.empty_like(values)
    _gather_loop(key, shift, values, out)
    return out


@jit
def _day_totals_loop(
    key: IntArray,
    shift: int,
    codes: IntArray,
    days: IntArray,
    cmin: int,
    dmin: int,
    span: int,
    spend: IntArray,
    orders: IntArray,
    refunds: IntArray,
    discounted: IntArray,
    first_us: IntArray,
    last_us: IntArray,
    out_key: IntArray,
    out_spend: IntArray,
    out_orders: IntArray,
    out_refunds: IntArray,
    out_discounted: IntArray,
    out_lo: IntArray,
    out_hi: IntArray,
) -> None:
    """The totals of each run of equal keys (``key``'s high bits, or the (code, day) key when
    ``key`` is empty) over rows already in key order; an empty column is not there."""
    packed = key.size > 0
    counted = orders.size > 0
    with_refunds = refunds.size > 0
    with_discounts = discounted.size > 0
    g = -1
    prev = -1  # keys are >= 0
    for j in range(spend.size):
        k = key[j] >> shift if packed else (codes[j] - cmin) * span + (days[j] - dmin)
        lo = first_us[j]
        hi = last_us[j]
        if k != prev:
            g += 1
            prev = k
            out_key[g] = k
            out_spend[g] = spend[j]
            out_orders[g] = orders[j] if counted else 1
            out_refunds[g] = refunds[j] if with_refunds else 0
            out_discounted[g] = discounted[j] if with_discounts else 0
            out_lo[g] = lo
            out_hi[g] = hi
        else:
            out_spend[g] += spend[j]
            out_orders[g] += orders[j] if counted else 1
            if with_refunds:
                out_refunds[g] += refunds[j]
            if with_discounts:
                out_discounted[g] += discounted[j]
            if lo < out_lo[g]:
                out_lo[g] = lo
            if hi > out_hi[g]:
                out_hi[g] = hi


_NONE = np.zeros(0, dtype=np.int64)


def count_runs(key: IntArray, shift: int) -> int:
    """The number of runs of equal ``key >> shift`` in sorted keys."""
    return int(_count_runs_loop(key, shift)) if key.size else 0


def day_totals(
    key: IntArray | None,
    shift: int,
    codes: IntArray,
    days: IntArray,
    cmin: int,
    dmin: int,
    span: int,
    groups: int,
    spend: IntArray,
    orders: IntArray | None,
    refunds: IntArray | None,
    discounted: IntArray | None,
    first_us: IntArray,
    last_us: IntArray | None,
) -> tuple[IntArray, ...]:
    """Each of the ``groups`` (code, day) groups' key ``(code - cmin) * span + day - dmin``,
    spend, orders, refunds, discounted orders, first and last instant.

    The rows are in (code, day) order: either the columns were gathered in the order of the
    sorted ``key`` (the group key above ``shift`` bits; see :func:`gather`), or ``key`` is
    None and the rows came in that order (:func:`sorted_groups`). ``None`` columns mean one
    order per row, no refunds, no discounts, and ``last_us`` equal to ``first_us``."""
    out = tuple(np.empty(groups, dtype=np.int64) for _ in range(7))
    if groups:
        _day_totals_loop(
            _NONE if key is None else key,
            shift,
            codes,
            days,
            cmin,
            dmin,
            span,
            spend,
            _NONE if orders is None else orders,
            _NONE if refunds is None else refunds,
            _NONE if discounted is None else discounted,
            first_us,
            first_us if last_us is None else last_us,
            *out,
        )
    return out


@jit
def _customer_totals_loop(
    day: IntArray,
    spend: IntArray,
    orders: IntArray,
    refunds: IntArray,
    discounted: IntArray,
    starts: IntArray,
    out_spend: IntArray,
    out_orders: IntArray,
    out_refunds: IntArray,
    out_discounted: IntArray,
    out_median: FloatArray,
) -> None:
    customers = starts.size
    n = day.size
    widest = 1
    for c in range(customers):
        end = starts[c + 1] if c + 1 < customers else n
        widest = max(widest, end - starts[c])
    buf = np.empty(widest, dtype=np.int64)
    for c in range(customers):
        s = starts[c]
        end = starts[c + 1] if c + 1 < customers else n
        total = 0
        count = 0
        refunded = 0
        cheaper = 0
        for i in range(s, end):
            total += spend[i]
            count += orders[i]
            refunded += refunds[i]
            cheaper += discounted[i]
        out_spend[c] = total
        out_orders[c] = count
        out_refunds[c] = refunded
        out_discounted[c] = cheaper
        m = end - s - 1  # gaps between purchase days
        if m == 0:
            out_median[c] = np.nan
        elif m == 1:
            out_median[c] = float(day[s + 1] - day[s])
        elif m == 2:
            out_median[c] = (float(day[s + 1] - day[s]) + float(day[s + 2] - day[s + 1])) / 2
        else:
            if m <= 32:  # insertion sort: far quicker than a general sort on a few values
                for i in range(m):
                    g = day[s + i + 1] - day[s + i]
                    k = i
                    while k > 0 and buf[k - 1] > g:
                        buf[k] = buf[k - 1]
                        k -= 1
                    buf[k] = g
            else:
                for i in range(m):
                    buf[i] = day[s + i + 1] - day[s + i]
                buf[:m].sort()
            out_median[c] = (float(buf[(m - 1) // 2]) + float(buf[m // 2])) / 2


def customer_totals(
    day: IntArray,
    spend: IntArray,
    orders: IntArray,
    refunds: IntArray,
    discounted: IntArray,
    starts: IntArray,
) -> tuple[IntArray, IntArray, IntArray, IntArray, FloatArray]:
    """Each customer's spend, orders, refunds and discounted orders, and the median gap between
    its purchase days (NaN with one day), from customer-day rows in (customer, day) order whose
    customers begin at ``starts``."""
    size = starts.size
    total, count, refunded, cheaper = (np.empty(size, dtype=np.int64) for _ in range(4))
    median = np.empty(size)
    if size:
        _customer_totals_loop(
            day, spend, orders, refunds, discounted, starts, total, count, refunded, cheaper, median
        )
    return total, count, refunded, cheaper, median
