"""Special functions for the BG/NBD family, in forms that stay exact at extreme arguments.

The expected number of purchases of an alive customer is (Fader, Hardie & Lee 2005, eq. 10)

    h = (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) * 2F1(r+x, b+x; a+b+x-1; z)],

with z = t/(alpha+T+t). The 2F1 factor overflows for large x and the bracket cancels near a = 1
and for short horizons. Euler's transformation turns it into 2F1(a+b-1-r, a-1; a+b+x-1; z),
whose series has small numerator parameters and converges fast; splitting off its first term and
dividing the (a-1) out analytically leaves sums with no cancellation at a = 1 and no overflow.

The Pareto/NBD likelihood's hypergeometric terms (:func:`pareto_log_tail`) get the same treatment.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import hyp2f1

from lifecycle.clv._data import Floats

__all__ = ["alive_expected_purchases", "expm1_ratio", "pareto_log_tail"]

_SERIES_MAX_C = 30.0  # beyond t/(alpha+T) = 30 the series needs too many terms; use hyp2f1


def expm1_ratio(y: Floats) -> Floats:
    """expm1(y) / y, equal to 1 at y = 0, without cancellation."""
    out = np.ones_like(y)
    small = np.abs(y) < 1e-5
    big = ~small
    out[big] = np.expm1(y[big]) / y[big]
    ys = y[small]
    out[small] = 1.0 + ys / 2 * (1.0 + ys / 3)
    return out


def alive_expected_purchases(
    t: Floats, x: Floats, T: Floats, r: float, alpha: float, a: float, b: float, shift: float
) -> Floats:
    """Expected purchases in (T, T+t] of a customer known to be alive at T.

    ``shift`` is 0 for BG/NBD and 1 for MBG/NBD, where the posterior of p is Beta(a, b+x+1).
    Arrays broadcast; returns float64.
    """
    t, x, T = np.broadcast_arrays(
        np.asarray(t, np.float64), np.asarray(x, np.float64), np.asarray(T, np.float64)
    )
    out = np.zeros(t.shape)
    c = t / (alpha + T)
    # with a large a the series' terms and the closed form's 2F1 grow like (1+c)^(a-1) before
    # they cancel: past e^20 the expectation over p is taken by quadrature instead
    steep = (a - 1.0) * np.log1p(c) > _STEEP_LOG
    if steep.any():
        out[steep] = _quadrature(t[steep], x[steep], T[steep], r, alpha, a, b, shift)
    # the series converges geometrically for short horizons, and like n^-(x+r+2-a) for any
    # horizon once x is large; only small x with a long horizon needs the closed form
    series = ((c <= _SERIES_MAX_C) | (x >= 20)) & (t > 0) & ~steep
    if series.any():
        out[series] = _series(t[series], x[series], T[series], r, alpha, a, b, shift)
    far = ~series & (t > 0) & ~steep
    if far.any():
        out[far] = _hyp2f1_form(t[far], x[far], T[far], r, alpha, a, b, shift)
    # scipy's 2F1 gives up (inf or NaN) for some large parameters near z = 1 (a = 2, b = 168,
    # x = 3, t/(alpha+T) = 31 is one), and the series may not converge within its limit
    # (a = 2, b = 13246, x = 30, t/(alpha+T) = 265): the quadrature holds everywhere
    lost = ~np.isfinite(out)
    if lost.any():
        out[lost] = _quadrature(t[lost], x[lost], T[lost], r, alpha, a, b, shift)
    return out


_STEEP_LOG = 20.0
_STEP = 0.5  # the largest step in logit(p): the density's poles lie pi from the real line


def _quadrature(
    t: Floats, x: Floats, T: Floats, r: float, alpha: float, a: float, b: float, shift: float
) -> Floats:
    """h = E[(1 - (1 + c p)^-(r+x)) / p] over the posterior p ~ Beta(a, b+x+shift) of an alive
    customer (the Gamma(r+x, alpha+T) rate integrated out), c = t/(alpha+T).

    Taken in u = logit(p), where the density p^a (1-p)^b' / B(a, b') is smooth and decays like
    e^(a u) and e^(-b' u) on the two sides, by the trapezoidal rule around the mode log(a/b')
    out to where the density has fallen by e^-45 (and at least 12 Laplace standard deviations
    sqrt(1/a + 1/b')), on steps of at most a quarter of that deviation; the weights are
    normalised by their own sum. Every term is positive: no cancellation, no overflow, however
    large a, b, x or t.
    """
    bp = b + x + shift
    k = r + x
    c = t / (alpha + T)
    mode = np.log(a / bp)
    sd = np.sqrt(1.0 / a + 1.0 / bp)
    lo = mode - np.maximum(12.0 * sd, 45.0 / a)
    hi = mode + np.maximum(12.0 * sd, 45.0 / bp)
    count = int(np.ceil(((hi - lo) / np.minimum(0.25 * sd, _STEP)).max())) if t.size else 0
    step = (hi - lo) / count if count else hi
    top = a * -np.log1p(np.exp(-mode)) + bp * -np.log1p(np.exp(mode))
    num = np.zeros(t.shape)
    den = np.zeros(t.shape)
    for j in range(count + 1):
        u = lo + j * step
        log_p = -np.log1p(np.exp(-u))
        log_q = -np.log1p(np.exp(u))
        w = np.exp(a * log_p + bp * log_q - top)
        p = np.exp(log_p)
        num += w * (-np.expm1(-k * np.log1p(c * p)) / p)
        den += w
    return np.asarray(num / den, dtype=np.float64)


def _series(
    t: Floats, x: Floats, T: Floats, r: float, alpha: float, a: float, b: float, shift: float
) -> Floats:
    """h = C L e1(-(a-1)L) - (1+c)^(1-a) sum_{n>=1} u_n, u_n = (A)_n (a)_(n-1) z^n / ((C+1)_(n-1) n!),
    with C = a+b+x+shift-1, A = a+b+shift-1-r, L = log1p(c), c = t/(alpha+T)."""
    c = t / (alpha + T)
    z = t / (alpha + T + t)
    log1p_c = np.log1p(c)
    big_c = a + b + x + shift - 1.0
    big_a = a + b + shift - 1.0 - r
    head = big_c * log1p_c * expm1_ratio(-(a - 1.0) * log1p_c)
    u = big_a * z
    total = u.copy()
    active = np.arange(u.size)
    n = 1
    limit = int(40 * (1 + float(np.minimum(c, _SERIES_MAX_C).max()))) + 2000
    while active.size and n < limit:
        ua = u[active]
        ua = ua * ((big_a + n) * (a + n - 1.0) / ((big_c[active] + n) * (n + 1.0))) * z[active]
        u[active] = ua
        total[active] += ua
        n += 1
        if n % 8 == 0:
            keep = np.abs(ua) > 1e-17 * np.abs(total[active])
            active = active[keep]
    out = head - np.exp(-(a - 1.0) * log1p_c) * total
    out[active] = np.nan  # not converged within the limit: the caller takes another way
    return np.asarray(out, dtype=np.float64)


def _hyp2f1_form(
    t: Floats, x: Floats, T: Floats, r: float, alpha: float, a: float, b: float, shift: float
) -> Floats:
    """The Euler-transformed closed form for long horizons; a within 1e-4 of 1 is interpolated
    between a = 1 -+ 1e-4, where the (a-1) division is still accurate."""
    delta = 1e-4
    if abs(a - 1.0) < delta:
        lo = _closed(t, x, T, r, alpha, 1.0 - delta, b, shift)
        hi = _closed(t, x, T, r, alpha, 1.0 + delta, b, shift)
        w = (a - (1.0 - delta)) / (2 * delta)
        return np.asarray((1 - w) * lo + w * hi, dtype=np.float64)
    return _closed(t, x, T, r, alpha, a, b, shift)


def _closed(
    t: Floats, x: Floats, T: Floats, r: float, alpha: float, a: float, b: float, shift: float
) -> Floats:
    big_c = a + b + x + shift - 1.0
    z = t / (alpha + T + t)
    log1p_c = np.log1p(t / (alpha + T))
    f = hyp2f1(a + b + shift - 1.0 - r, a - 1.0, big_c, z)
    return np.asarray(big_c / (a - 1.0) * (1.0 - np.exp((1.0 - a) * log1p_c) * f), np.float64)


_CF_MAX_DEPTH = 600  # reached within ~1e-3 of z = 1 (alpha and beta 1,000 times apart), where
# only an optimiser heading for the boundary goes; past it the value is approximate (about 1e-6)


def pareto_log_tail(
    x: Floats, t: Floats, r: float, alpha: float, s: float, beta: float, *, gradient: bool = True
) -> tuple[Floats, Floats]:
    """log F(t) of the Pareto/NBD likelihood and its gradient in (r, alpha, s, beta).

    F(t) = (r+s+x) * integral from t to infinity of (alpha+u)^-(r+x) (beta+u)^-(s+1) du, so the
    likelihood's A0 term (Fader, Hardie & Lee 2005, "A note on deriving the Pareto/NBD model")
    is F(t_x) - F(T). With m = max(alpha, beta) it is 2F1(a, b1; a+1; z) / (m+t)^a, a = r+s+x,
    z = |alpha-beta| / (m+t), b1 = s+1 (alpha >= beta) or r+x. Euler's transformation turns
    the 2F1 into (1-z)^(1-b1) G with G = 2F1(1, a+1-b1; a+1; z), which lies between 1 and
    1/(1-z): no overflow for any x, and logs throughout. G comes from Gauss's continued fraction
    (:func:`_log_g`). Returns ``(log_f, grad)`` with ``grad`` of shape (4, n) (zeros when
    ``gradient`` is False).
    """
    x, t = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(t, np.float64))
    la, lb = np.log(alpha + t), np.log(beta + t)
    grad = np.zeros((4, x.size))
    if alpha >= beta:
        c1 = r + x
        z = (alpha - beta) / (alpha + t)
    else:
        c1 = np.full(x.size, s + 1.0)
        z = (beta - alpha) / (beta + t)
    c2 = r + s + x + 1.0
    log_g, dg1, dg2, dgz = _log_g(c1, c2, z, gradient)
    if alpha >= beta:
        log_f = -(r + x) * la - s * lb + log_g
        if gradient:
            grad[0] = -la + dg1 + dg2
            grad[1] = -(r + x) / (alpha + t) + dgz * (beta + t) / (alpha + t) ** 2
            grad[2] = -lb + dg2
            grad[3] = -s / (beta + t) - dgz / (alpha + t)
    else:
        log_f = (1.0 - r - x) * la - (s + 1.0) * lb + log_g
        if gradient:
            grad[0] = -la + dg2
            grad[1] = (1.0 - r - x) / (alpha + t) - dgz / (beta + t)
            grad[2] = -lb + dg1 + dg2
            grad[3] = -(s + 1.0) / (beta + t) + dgz * (alpha + t) / (beta + t) ** 2
    return np.asarray(log_f, np.float64), grad


def _log_g(
    c1: Floats, c2: Floats, z: Floats, gradient: bool
) -> tuple[Floats, Floats, Floats, Floats]:
    """log G, G = 2F1(1, c1; c2; z) = sum_n (c1)_n / (c2)_n z^n with 0 < c1 < c2 and
    0 <= z < 1, and the derivatives of log G in c1, c2 and z.

    Gauss's continued fraction for 2F1(a+1, b; c+1; z) / 2F1(a, b; c; z) at a = 0, b = c1,
    c = c2 - 1 gives G = 1 / (1 - k1 z / (1 - k2 z / (1 - ...))) with every k_j > 0 and
    k_j -> 1/4, so every partial denominator lies in (0, 1]: no cancellation. It converges like
    q^j with q = (1 - sqrt(1-z)) / (1 + sqrt(1-z)), about 120 levels at z = 0.98 where the
    power series needs 2,000 terms. It is evaluated from the bottom up, from its limit
    (1 + sqrt(1-z)) / 2, with the derivatives carried along (forward mode); rows sorted by
    depth so each level works on a contiguous prefix.
    """
    n_rows = z.size
    sq = np.sqrt(1.0 - z)
    q = (1.0 - sq) / (1.0 + sq)
    with np.errstate(divide="ignore"):
        depth = np.where(q > 0, np.ceil(38.0 / -np.log(np.where(q > 0, q, 0.5))), 0.0)
    depth = np.minimum(depth + 8.0, _CF_MAX_DEPTH).astype(np.int64)
    order = np.argsort(-depth, kind="stable")
    d_sorted = depth[order]
    c1s, c2s, zs = c1[order], c2[order] - 1.0, z[order]  # c2s is c = c2 - 1
    # each row starts from the fixed point of its own tail's two alternating coefficients
    # (f_odd = 1 - k_odd z / f_even and back), which k_j -> 1/4 approach only like 1/j
    f, fz = _cf_tail(c1s, c2s, zs, d_sorted)
    f1 = np.zeros(n_rows)
    f2 = np.zeros(n_rows)
    top = int(d_sorted[0]) if n_rows else 0
    for j in range(top, 0, -1):
        m = int(np.searchsorted(-d_sorted, -j, side="right"))  # rows with depth >= j
        a1, c, zz, fn = c1s[:m], c2s[:m], zs[:m], f[:m]
        n = (j - 1) // 2
        if j % 2:  # k_(2n+1) = (c1+n)(c+n) / ((c+2n)(c+2n+1))
            k = (a1 + n) * (c + n) / ((c + 2 * n) * (c + 2 * n + 1))
            g1 = 1.0 / (a1 + n)
            g2 = 1.0 / (c + n) - 1.0 / (c + 2 * n) - 1.0 / (c + 2 * n + 1)
        else:  # k_(2n+2) = (n+1)(c-c1+n+1) / ((c+2n+1)(c+2n+2))
            k = (n + 1) * (c - a1 + n + 1) / ((c + 2 * n + 1) * (c + 2 * n + 2))
            g1 = -1.0 / (c - a1 + n + 1)
            g2 = 1.0 / (c - a1 + n + 1) - 1.0 / (c + 2 * n + 1) - 1.0 / (c + 2 * n + 2)
        kz_f = k * zz / fn
        if gradient:
            # f_j = 1 - k z / f_(j+1): d f_j = -kz/f (dlog k + dlog z - d f_(j+1) / f_(j+1))
            f1[:m] = -kz_f * (g1 - f1[:m] / fn)
            f2[:m] = -kz_f * (g2 - f2[:m] / fn)
            fz[:m] = -kz_f * (1.0 / np.where(zz > 0, zz, 1.0) - fz[:m] / fn)
            fz[:m] = np.where(zz > 0, fz[:m], -k * (1.0 / fn))
        f[:m] = 1.0 - kz_f
    log_g = np.empty(n_rows)
    d1 = np.empty(n_rows)
    d2 = np.empty(n_rows)
    dz = np.empty(n_rows)
    # G = 1 / f_1
    log_g[order] = -np.log(f)
    d1[order] = -f1 / f
    d2[order] = -f2 / f
    dz[order] = -fz / f
    if not gradient:
        d1[:] = d2[:] = dz[:] = 0.0
    return log_g, d1, d2, dz


def _cf_tail(
    c1: Floats, c: Floats, z: Floats, depth: npt.NDArray[np.int64]
) -> tuple[Floats, Floats]:
    """The value at level ``depth`` + 1 of the continued fraction's tail and its derivative in
    z, from the 2-periodic fraction whose coefficients are those of the levels just below."""
    j = depth + 1
    n_odd = (j - 1) // 2 + (j % 2 == 0)  # the odd level at or after j
    n_even = (j - 1) // 2
    k_odd = (c1 + n_odd) * (c + n_odd) / ((c + 2 * n_odd) * (c + 2 * n_odd + 1))
    k_even = (n_even + 1) * (c - c1 + n_even + 1) / ((c + 2 * n_even + 1) * (c + 2 * n_even + 2))
    first, second = np.where(j % 2 == 1, k_odd, k_even), np.where(j % 2 == 1, k_even, k_odd)
    # f1 = 1 - first z / f2, f2 = 1 - second z / f1  =>  f1^2 - (1 + (first - second) z) f1
    # + first z = 0, the root near 1
    b = 1.0 + (first - second) * z
    disc = np.sqrt(np.maximum(b * b - 4.0 * first * z, 0.0))
    f = (b + disc) / 2.0
    db = first - second
    ddisc = np.where(disc > 0, (b * db - 2.0 * first) / np.where(disc > 0, disc, 1.0), 0.0)
    return f, (db + ddisc) / 2.0
