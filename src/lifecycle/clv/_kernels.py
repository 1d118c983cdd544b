"""The elementwise passes of the value models over millions of customers, block by block.

Each pass walks the customer arrays in blocks of :data:`~lifecycle.clv._data.CHUNK` rows, so
its temporaries stay in the core's cache. numpy does the logarithms and exponentials (its SIMD
loops are the fastest here); the checks of the input and the arithmetic between them run as
compiled loops when numba is installed (the ``fast`` extra) and as numpy operations otherwise.
P(alive) and the expected purchases come out the same to the last bit either way (the same
operations in the same order); the likelihood's sums, added in another order, agree to about
1e-12. :func:`lifecycle._compiled.numpy_only` switches the compiled loops off (for the tests that compare them).

numba is imported, and each loop compiled (then cached on disk), the first time a pass is long
enough to use it, so importing the value models costs nothing more with the extra installed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from lifecycle._compiled import available, jit
from lifecycle.clv._data import CHUNK, Floats

__all__ = [
    "Index",
    "alive_probability",
    "compiled",
    "mixture_terms",
    "rfm_ok",
    "spend_sums",
]

#: row indices into small tables (32-bit where they fit: less to read per row)
Index = npt.NDArray[np.integer[Any]]

#: below this many rows the compiled loops are not worth their call
MIN_ROWS = 50_000


def compiled(n: int) -> bool:
    """Whether the compiled loops serve a pass over ``n`` rows."""
    return n >= MIN_ROWS and available()


@jit
def _rfm_ok_loop(x: Floats, tx: Floats, T: Floats) -> bool:
    ok = True
    for i in range(x.size):
        xi = x[i]
        ti = tx[i]
        big = T[i]
        ok &= (
            (xi >= 0.0)
            & (xi < math.inf)
            & (xi == math.floor(xi))
            & (ti >= 0.0)
            & (ti <= big)
            & (big < math.inf)
            & ((xi > 0.0) | (ti == 0.0))
        )
    return ok


@jit
def _gap_loop(tx: Floats, T: Floats, alpha: float, u: Floats) -> None:
    """u = (T - tx) / (alpha + tx), in place."""
    for i in range(tx.size):
        u[i] = (T[i] - tx[i]) / (alpha + tx[i])


@jit
def _odds_loop(x: Floats, u: Floats, r: float, table: Floats, log_a: float) -> None:
    """u = (log a - table[x]) + (r + x) u, in place (x whole numbers below the table's size)."""
    for i in range(x.size):
        xi = x[i]
        u[i] = (log_a - table[int(xi)]) + (r + xi) * u[i]


@jit
def _logistic_loop(x: Floats, e: Floats, out: Floats, one_at_zero: bool) -> None:
    """out = 1 / (1 + e), or 1 where x = 0 when ``one_at_zero``."""
    # two plain loops: the compiler turns each into vector instructions, not the one with a choice
    for i in range(x.size):
        out[i] = 1.0 / (1.0 + e[i])
    if one_at_zero:
        for i in range(x.size):
            if x[i] == 0.0:
                out[i] = 1.0


def rfm_ok(x: Floats, tx: Floats, T: Floats) -> bool:
    """Whether every row of equal-length float64 arrays is a valid (frequency, recency, T):
    finite, whole frequencies >= 0, 0 <= recency <= T, recency 0 without repeat purchases.
    (False sends the caller to the checks that name what is wrong.)"""
    if compiled(x.size):
        return bool(_rfm_ok_loop(x, tx, T))
    with np.errstate(invalid="ignore"):
        for start in range(0, x.size, CHUNK):
            xb, tb, bb = (a[start : start + CHUNK] for a in (x, tx, T))
            if not (
                np.isfinite(bb).all()
                and np.isfinite(xb).all()
                and xb.min() >= 0
                and np.array_equal(np.floor(xb), xb)
                and tb.min() >= 0
                and (bb >= tb).all()
                and not (tb[xb == 0] > 0).any()
            ):
                return False
    return True


def alive_probability(
    x: Floats,
    tx: Floats,
    T: Floats,
    params: tuple[float, float, float, float],
    shift: float,
    *,
    checked: bool,
) -> Floats | None:
    """P(alive) of the BG/NBD (``shift`` 0) or MBG/NBD (``shift`` 1) customers: the logistic of
    minus the log-odds of having dropped out,
    d = (ln a - ln(b + x + shift - 1)) + (r + x) ln(1 + (T - tx) / (alpha + tx)),
    1 for BG/NBD customers with no repeat purchase. Unless ``checked``, the rows are checked on
    the way; None means some row is not valid (nothing else is reported)."""
    r, alpha, a, b = params
    n = x.size
    out = np.empty(n)
    if n == 0:
        return out
    fast = compiled(n)
    if not checked and not fast and not rfm_ok(x, tx, T):
        return None
    top = float(x.max())  # valid frequencies are whole numbers >= 0
    if not (0 <= top < 2**24):
        return None
    with np.errstate(divide="ignore"):
        table = np.log(np.maximum(b + np.arange(int(top) + 1) + (shift - 1.0), 0.0))
    log_a = math.log(a)
    buf = np.empty(min(n, CHUNK))
    bg = shift == 0.0
    with np.errstate(divide="ignore", over="ignore"):
        for start in range(0, n, CHUNK):
            xb, tb, bb = (v[start : start + CHUNK] for v in (x, tx, T))
            u = buf[: xb.size]
            o = out[start : start + CHUNK]
            if fast:
                if not checked and not _rfm_ok_loop(xb, tb, bb):
                    return None
                _gap_loop(tb, bb, alpha, u)
                np.log1p(u, out=u)
                _odds_loop(xb, u, r, table, log_a)
                np.exp(u, out=u)
                _logistic_loop(xb, u, o, bg)
                continue
            np.subtract(bb, tb, out=u)
            np.divide(u, tb + alpha, out=u)
            np.log1p(u, out=u)
            u *= xb + r
            u += log_a - table[xb.astype(np.intp)]
            np.exp(u, out=u)
            u += 1.0
            np.divide(1.0, u, out=o)
            if bg:
                o[xb == 0] = 1.0
    return out


@jit
def _mixture_odds_loop(
    xi: Index,
    ti: Index,
    txi: Index,
    x: Floats,
    r: float,
    base: Floats,
    log_t: Floats,
    log_tx: Floats,
    d: Floats,
    e: Floats,
) -> None:
    """d = base[xi] + (r + x) (log_t[ti] - log_tx[txi]) and e = -|d|."""
    for i in range(xi.size):
        v = base[xi[i]] + (r + x[i]) * (log_t[ti[i]] - log_tx[txi[i]])
        d[i] = v
        e[i] = -abs(v)


@jit
def _mixture_sums_loop(
    xi: Index,
    ti: Index,
    txi: Index,
    x: Floats,
    r: float,
    w: Floats,
    log_t: Floats,
    log_tx: Floats,
    d: Floats,
    e: Floats,
    soft: Floats,
    sums: Floats,
    by_t: Floats,
    by_tx: Floats,
    by_x: Floats,
) -> None:
    """Add the block's weighted softplus(d), its share s = w sigmoid(d), s (log_t - log_tx) and
    s to ``sums``; s k by T and by recency, and s by frequency, to the three tables."""
    ll = 0.0
    s_gap = 0.0
    s_all = 0.0
    for i in range(xi.size):
        di = d[i]
        ei = e[i]
        wi = w[i]
        ll += wi * (max(di, 0.0) + soft[i])
        ws = wi * ((1.0 if di >= 0.0 else ei) / (1.0 + ei))
        wsk = ws * (r + x[i])
        s_gap += ws * (log_t[ti[i]] - log_tx[txi[i]])
        s_all += ws
        by_t[ti[i]] += wsk
        by_tx[txi[i]] += wsk
        by_x[xi[i]] += ws
    sums[0] += ll
    sums[1] += s_gap
    sums[2] += s_all


def mixture_terms(
    xi: Index,
    ti: Index,
    txi: Index,
    x: Floats,
    r: float,
    w: Floats,
    base: Floats,
    log_t: Floats,
    log_tx: Floats,
) -> tuple[float, float, float, Floats, Floats, Floats]:
    """The BG/NBD likelihood's mixture of the two ways a customer's record can end, summed
    over rows with weights ``w``: with k = r + x and d = base[xi] + k (log_t[ti] - log_tx[txi]),
    sum w softplus(d), sum s (log_t - log_tx) and sum s, where s = w sigmoid(d), and the sums
    of s k by T and by recency, and of s by frequency."""
    n = xi.size
    sums = np.zeros(3)
    by_t = np.zeros(log_t.size)
    by_tx = np.zeros(log_tx.size)
    by_x = np.zeros(base.size)
    size = min(n, CHUNK)
    d, e, soft = np.empty(size), np.empty(size), np.empty(size)
    fast = compiled(n)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        m = stop - start
        xb, tb, txb = xi[start:stop], ti[start:stop], txi[start:stop]
        xv, wb = x[start:stop], w[start:stop]
        db, eb, sb = d[:m], e[:m], soft[:m]
        if fast:
            _mixture_odds_loop(xb, tb, txb, xv, r, base, log_t, log_tx, db, eb)
            np.exp(eb, out=eb)
            np.log1p(eb, out=sb)
            _mixture_sums_loop(
                xb, tb, txb, xv, r, wb, log_t, log_tx, db, eb, sb, sums, by_t, by_tx, by_x
            )
            continue
        kb = xv + r
        gap = log_t[tb]
        gap -= log_tx[txb]
        np.multiply(kb, gap, out=db)
        db += base[xb]
        np.abs(db, out=eb)
        np.negative(eb, out=eb)
        np.exp(eb, out=eb)
        np.log1p(eb, out=sb)
        sb += np.maximum(db, 0.0)
        sums[0] += (wb * sb).sum()  # not `@`: BLAS would start threads for it
        share = np.where(db >= 0.0, 1.0, eb)
        share /= eb + 1.0
        share *= wb
        sums[1] += (share * gap).sum()
        sums[2] += share.sum()
        by_x += np.bincount(xb, weights=share, minlength=base.size)
        share *= kb
        by_t += np.bincount(tb, weights=share, minlength=log_t.size)
        by_tx += np.bincount(txb, weights=share, minlength=log_tx.size)
    return float(sums[0]), float(sums[1]), float(sums[2]), by_t, by_tx, by_x


def spend_sums(xm: Floats, w: Floats | None, wx: Floats, g: float) -> Floats:
    """The Gamma-Gamma likelihood's sums over customers: with s = g + xm,
    [sum w ln s, sum wx ln s, sum w / s, sum wx / s]; ``w`` None means every weight is 1 (then
    ``wx`` is the frequencies) and saves two products per row."""
    n = xm.size
    sums = np.zeros(4)
    size = min(n, CHUNK)
    s, log_s, prod = np.empty(size), np.empty(size), np.empty(size)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        m = stop - start
        sb, lb, pb = s[:m], log_s[:m], prod[:m]
        xmb, wxb = xm[start:stop], wx[start:stop]
        # numpy's sums here: they add pairwise, so millions of terms keep their precision
        np.add(xmb, g, out=sb)
        np.log(sb, out=lb)
        np.divide(1.0, sb, out=sb)
        if w is None:
            sums[0] += lb.sum()
            sums[2] += sb.sum()
        else:
            wb = w[start:stop]
            sums[0] += np.multiply(wb, lb, out=pb).sum()
            sums[2] += np.multiply(wb, sb, out=pb).sum()
        sums[1] += np.multiply(wxb, lb, out=pb).sum()
        sums[3] += np.multiply(wxb, sb, out=pb).sum()
    return sums


def spend_sums_curved(xm: Floats, w: Floats | None, wx: Floats, g: float) -> Floats:
    """:func:`spend_sums` and the Hessian's [sum w / s^2, sum wx / s^2] in the same pass."""
    n = xm.size
    sums = np.zeros(6)
    size = min(n, CHUNK)
    s, log_s, prod = np.empty(size), np.empty(size), np.empty(size)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        m = stop - start
        sb, lb, pb = s[:m], log_s[:m], prod[:m]
        wxb = wx[start:stop]
        np.add(xm[start:stop], g, out=sb)
        np.log(sb, out=lb)
        np.divide(1.0, sb, out=sb)
        wb = None if w is None else w[start:stop]
        sums[0] += lb.sum() if wb is None else np.multiply(wb, lb, out=pb).sum()
        sums[1] += np.multiply(wxb, lb, out=pb).sum()
        sums[2] += sb.sum() if wb is None else np.multiply(wb, sb, out=pb).sum()
        sums[3] += np.multiply(wxb, sb, out=pb).sum()
        np.multiply(sb, sb, out=sb)
        sums[4] += sb.sum() if wb is None else np.multiply(wb, sb, out=pb).sum()
        sums[5] += np.multiply(wxb, sb, out=pb).sum()
    return sums
