"""Input checks and the compression of customer arrays to distinct rows with counts.

The likelihoods depend on the data only through the distinct (frequency, recency, T) rows, so a
fit over millions of customers runs over the few distinct rows. Columns that hold exact multiples
of a simple grid (days, or weeks to two decimals) are packed into one integer key and counted with
``bincount``; anything else falls back to a sort.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs
import numpy as np
import numpy.typing as npt

from lifecycle.errors import DataError

__all__ = [
    "Floats",
    "as_column",
    "check_rfm",
    "check_unit",
    "check_weights",
    "in_time_unit",
    "per_distinct",
    "rfm_arrays",
    "unique_rows",
]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

_SCALES = (1.0, 7.0, 24.0, 100.0, 1000.0)


def as_column(value: npt.ArrayLike, field: str) -> Floats:
    """A 1-D float64 array of finite values (a scalar becomes a one-element array)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError("must be numbers", column=field) from e
    if arr.ndim > 1:
        raise DataError(f"must be one-dimensional, got shape {arr.shape}", column=field)
    arr = arr.reshape(-1)
    if not np.isfinite(arr).all():
        raise DataError("must be finite (no NaN or infinity)", column=field)
    return arr


def check_unit(time_unit_days: float) -> float:
    """A model's time unit in days: a finite number > 0."""
    unit = float(time_unit_days)
    if not (math.isfinite(unit) and unit > 0):
        raise DataError("must be a finite number of days > 0", column="time_unit_days")
    return unit


_M = TypeVar("_M")


def in_time_unit(model: _M, rates: Sequence[str], time_unit_days: float) -> _M:
    """``model`` (a fitted purchase model: attrs, with ``params``, ``standard_errors`` and
    ``time_unit_days``) measuring time in units of ``time_unit_days`` days: the scale
    parameters named in ``rates`` rescale with their standard errors; the log-parameters only
    shift, so their covariance stays."""
    unit = check_unit(time_unit_days)
    m: Any = model
    factor = m.time_unit_days / unit
    params = dict(m.params, **{k: m.params[k] * factor for k in rates})
    se = m.standard_errors
    if se is not None:
        se = dict(se, **{k: se[k] * factor for k in rates})
    out: _M = attrs.evolve(m, params=params, standard_errors=se, time_unit_days=unit)
    return out


def _same_length(arrays: Sequence[Floats], names: Sequence[str]) -> int:
    n = max(a.size for a in arrays)
    for a, name in zip(arrays, names, strict=True):
        if a.size not in (1, n):
            raise DataError(f"has {a.size} values where {n} were expected", column=name)
    return n


def check_rfm(
    frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> tuple[Floats, Floats, Floats]:
    """Validated, equal-length (frequency, recency, T) arrays; scalars broadcast."""
    x = as_column(frequency, "frequency")
    tx = as_column(recency, "recency")
    big_t = as_column(T, "T")
    n = _same_length((x, tx, big_t), ("frequency", "recency", "T"))
    x, tx, big_t = (np.broadcast_to(a, (n,)) for a in (x, tx, big_t))
    if (x < 0).any() or (x != np.floor(x)).any():
        raise DataError("must be whole numbers >= 0 (repeat purchases)", column="frequency")
    if (tx < 0).any():
        raise DataError("must be >= 0", column="recency")
    if (tx > big_t).any():
        raise DataError("must not exceed T (the last purchase is before the end)", column="recency")
    if ((x == 0) & (tx > 0)).any():
        raise DataError("must be 0 where frequency is 0 (no repeat purchase)", column="recency")
    return x, tx, big_t


def rfm_arrays(
    frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> tuple[Floats, Floats, Floats] | None:
    """The three columns as float64 arrays, unchecked, when they are already one-dimensional
    arrays of one length (the hot path checks them on its way through); None otherwise (the
    caller then goes through :func:`check_rfm`)."""
    cols = []
    for value in (frequency, recency, T):
        if not isinstance(value, np.ndarray) or value.ndim != 1 or value.dtype.kind not in "fiu":
            return None
        cols.append(np.asarray(value, dtype=np.float64))
    if not cols[0].size == cols[1].size == cols[2].size:
        return None
    return cols[0], cols[1], cols[2]


def check_weights(weights: npt.ArrayLike | None, n: int) -> Floats | None:
    """Validated per-row weights (customer counts), or None for all ones."""
    if weights is None:
        return None
    w = as_column(weights, "weights")
    if w.size != n:
        raise DataError(f"has {w.size} values where {n} were expected", column="weights")
    if (w < 0).any():
        raise DataError("must be >= 0", column="weights")
    return w


#: rows per block of the elementwise passes: blocks that stay in the core's cache make a chain
#: of numpy operations run at the speed of its arithmetic, not of memory
CHUNK = 1 << 15


def _grid_codes(col: Floats) -> tuple[Ints, float, float, int] | None:
    """Exact integer codes k with (k + lo) / scale == value, with scale, lo and the code range;
    None when the column is not on one of the simple grids."""
    if col.size == 0:
        return None
    sample = col[:: max(1, col.size // 997)]
    for scale in _SCALES:
        if not np.array_equal(np.rint(sample * scale) / scale, sample):
            continue
        if np.abs(sample).max() * scale >= 2**52:
            return None
        full = _codes_on(col, scale)
        if full is None:
            continue
        lo = int(full.min())
        hi = int(full.max())
        if hi - lo > 2**40:
            return None
        if lo:
            full -= lo
        return full, scale, float(lo), hi - lo + 1
    return None


def _on_some_grid(sample: Floats) -> bool:
    return any(np.array_equal(np.rint(sample * scale) / scale, sample) for scale in _SCALES)


def _codes_on(col: Floats, scale: float) -> Ints | None:
    """rint(col * scale) as integers when every value is exactly code / scale (and below
    2**52 / scale), else None; block by block, so the temporaries stay in cache."""
    n = col.size
    full = np.empty(n, dtype=np.int64)
    buf = np.empty(min(n, CHUNK))
    for start in range(0, n, CHUNK):
        c = col[start : start + CHUNK]
        b = buf[: c.size]
        if scale == 1.0:
            np.rint(c, out=b)
        else:
            np.multiply(c, scale, out=b)
            np.rint(b, out=b)
        if not np.abs(b).max() < 2**52:
            return None
        full[start : start + c.size] = b
        if scale != 1.0:
            np.divide(b, scale, out=b)
        if not np.array_equal(b, c):
            return None
    return full


def unique_rows(
    columns: Sequence[Floats],
    weights: Floats | None = None,
    *,
    inverse: bool = False,
    sort: bool = True,
) -> tuple[list[Floats], Floats, Ints | None]:
    """The distinct rows of equal-length columns, their summed weights (row counts without
    weights), and optionally the map from each input row to its distinct row.

    With ``sort=False``, columns off the simple grids come back as they are (a sort would cost
    more than it saves for continuous values such as mean spends)."""
    n = columns[0].size
    packed = _pack(columns)
    if packed is not None:
        key, size, grids = packed
        if size <= max(1 << 22, 2 * n):
            counts = np.bincount(key, weights=weights, minlength=size)
            present = counts > 0 if weights is None else np.bincount(key, minlength=size) > 0
            keys = np.flatnonzero(present)
            inv = None
            if inverse:
                rank = np.cumsum(present) - 1
                inv = rank[key]
            return _decode(keys, grids), counts[keys].astype(np.float64), inv
        keys, sums, inv_u = _sorted_groups(key, size, weights, inverse)
        return _decode(keys, grids), sums, inv_u
    if not sort:
        w = np.ones(n) if weights is None else weights
        return list(columns), w, np.arange(n) if inverse else None
    stacked = np.stack(columns, axis=1)
    rows, inv_u = np.unique(stacked, axis=0, return_inverse=True)
    inv_u = inv_u.reshape(-1)
    counts = np.bincount(inv_u, weights=weights, minlength=rows.shape[0])
    return (
        [np.ascontiguousarray(rows[:, i]) for i in range(rows.shape[1])],
        counts.astype(np.float64),
        inv_u if inverse else None,
    )


def per_distinct(columns: Sequence[Floats], fn: Callable[[list[Floats]], Floats]) -> Floats:
    """``fn`` of every row of equal-length columns, computed once per distinct row: ``fn`` takes
    the distinct rows' columns and gives one value per distinct row."""
    n = columns[0].size
    packed = _pack(columns)
    if packed is not None and packed[1] <= max(1 << 22, 2 * n):
        key, size, grids = packed
        present = np.zeros(size, dtype=bool)
        present[key] = True
        keys = np.flatnonzero(present)
        table = np.zeros(size)  # read only where a row's key points
        table[keys] = fn(_decode(keys, grids))
        return np.asarray(table.take(key), dtype=np.float64)
    cols, _, inv = unique_rows(columns, inverse=True)
    assert inv is not None
    return np.asarray(fn(cols)[inv], dtype=np.float64)


def _sorted_groups(
    key: Ints, size: int, weights: Floats | None, inverse: bool
) -> tuple[Ints, Floats, Ints | None]:
    """The distinct keys (ascending), their summed weights, and optionally each row's group, by
    a sort of plain integers: with the row number packed under the key where a permutation is
    needed (numpy sorts integers several times faster than it argsorts them)."""
    n = key.size
    row_bits = max(1, (n - 1).bit_length())
    need_order = inverse or weights is not None
    if need_order and (size - 1).bit_length() + row_bits <= 63:
        packed = key << row_bits
        packed |= np.arange(n, dtype=np.int64)
        packed.sort()
        order = packed & ((1 << row_bits) - 1)
        packed >>= row_bits
        sorted_key = packed
    elif need_order:
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
    else:
        order = None
        sorted_key = np.sort(key)
    change = np.empty(n, dtype=bool)
    change[:1] = True
    np.not_equal(sorted_key[1:], sorted_key[:-1], out=change[1:])
    starts = np.flatnonzero(change)
    keys = sorted_key[starts]
    if weights is None:
        counts = np.diff(np.append(starts, n)).astype(np.float64)
    else:
        assert order is not None
        counts = np.add.reduceat(weights[order], starts) if n else np.zeros(0)
    inv = None
    if inverse:
        assert order is not None
        inv = np.empty(n, dtype=np.int64)
        inv[order] = np.cumsum(change) - 1
    return keys, np.asarray(counts, dtype=np.float64), inv


def _decode(keys: Ints, grids: list[tuple[float, float, int]]) -> list[Floats]:
    """The column values of packed keys (exact: they were checked to round-trip)."""
    out: list[Floats] = []
    rest = keys
    for scale, lo, span in reversed(grids):
        out.append(np.asarray((rest % span + lo) / scale, dtype=np.float64))
        rest = rest // span
    return out[::-1]


def _pack(columns: Sequence[Floats]) -> tuple[Ints, int, list[tuple[float, float, int]]] | None:
    """One int64 key per row from the exact grid codes of every column, the key space size,
    and each column's (scale, lo, span)."""
    key: Ints | None = None
    size = 1
    grids = []
    if not all(col.size and _on_some_grid(col[:: max(1, col.size // 997)]) for col in columns):
        return None  # a column's sample is off every grid: no full pass over any column
    for col in columns:
        coded = _grid_codes(col)
        if coded is None:
            return None
        codes, scale, lo, span = coded
        if size * span > 2**62:
            return None
        if key is None:
            key = codes
        else:
            key *= span
            key += codes
        size *= span
        grids.append((scale, lo, span))
    assert key is not None
    return key, size, grids
