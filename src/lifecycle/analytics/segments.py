"""Who the valuable customers are: RFM scores and named segments, Pareto/ABC classes, k-means.

Pure numpy over aligned per-customer arrays (one entry per customer); nothing loops over
customers. Results are frozen objects holding read-only arrays.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

import attrs
import numpy as np
import numpy.typing as npt

from lifecycle._display import arrow_table, field_table, html_table, one_line, pandas, polars_frame
from lifecycle.errors import DataError, PolicyError

__all__ = [
    "FEATURES",
    "SEGMENT_MAP",
    "ABCAnalysis",
    "ABCClass",
    "ABCPolicy",
    "CustomerClusters",
    "ParetoSummary",
    "RFMPolicy",
    "RFMScores",
    "RFMSegments",
    "Segment",
    "ValueGroup",
    "abc_classes",
    "cluster_customers",
    "pareto",
    "rfm_scores",
    "rfm_segments",
    "segment_table",
]

Score = npt.NDArray[np.int16]
Floats = npt.NDArray[np.float64]
_Column = npt.NDArray[np.float64] | npt.NDArray[np.int64]

#: Rows per block when a step would otherwise build an (n, k) array for all customers at once.
_CHUNK = 1 << 14
#: Floats that are whole numbers spanning at most this many values are counted, not sorted.
_WHOLE_FLOAT_SPAN = 1 << 16


# -- shared helpers -----------------------------------------------------------------------------


def _column(values: npt.ArrayLike, name: str) -> _Column:
    """One per-customer array as int64 or float64, refused unless finite and >= 0."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataError(f"must be one-dimensional, got shape {arr.shape}", column=name)
    kind = arr.dtype.kind
    out: _Column
    if kind == "i" or (kind == "u" and arr.dtype.itemsize < 8):
        out = arr.astype(np.int64, copy=False)
    elif kind in "uf":
        out = arr.astype(np.float64, copy=False)
    else:
        raise DataError(f"must hold numbers, got dtype {arr.dtype}", column=name)
    if out.size:
        lo, hi = out.min(), out.max()  # NaN propagates through both, failing the test below
        if not (lo >= 0 and hi < np.inf):
            raise DataError(_what_is_wrong(out), column=name)
    return out


def _what_is_wrong(arr: _Column) -> str:
    for label, bad in (
        ("NaN", np.isnan(arr)),
        ("negative", arr < 0),
        ("infinite", np.isinf(arr)),
    ):
        count = int(np.count_nonzero(bad))
        if count:
            first = int(np.argmax(bad))
            return f"{count} value(s) are {label} (the first at index {first}); all must be >= 0"
    return "values must be finite and >= 0"  # pragma: no cover - the checks above cover it


def _same_length(**columns: _Column) -> int:
    sizes = {name: col.size for name, col in columns.items()}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{name}={size}" for name, size in sizes.items())
        raise DataError(f"arrays must have one entry per customer, got {listed}", column=None)
    return next(iter(sizes.values()))


def _frozen(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    arr.flags.writeable = False
    return arr


def _whole(value: object, name: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lo:
        raise DataError(f"must be a whole number >= {lo}, got {value!r}", column=name)
    return int(value)


def _share(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise DataError(f"must be a number in (0, 1], got {value!r}", column=name)
    return float(value)


def _rounding_slack(total: float, n: int) -> float:
    """A bound on the rounding error of a running sum of ``n`` non-negative terms."""
    return total * max(n, 1) * 4 * float(np.finfo(np.float64).eps)


# -- RFM scores ---------------------------------------------------------------------------------

_RFM = "analytics.rfm"


def _to_cuts(value: object, field: str) -> tuple[float, ...] | None:
    key = f"{_RFM}.{field}"
    if value is None:
        return None
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise PolicyError("give a list of cut points, lowest first", key=key)
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
            raise PolicyError(f"cut points must be numbers, got {v!r}", key=key)
        f = float(v)
        if not math.isfinite(f) or f < 0:
            raise PolicyError(f"cut points must be finite and >= 0, got {v!r}", key=key)
        out.append(f)
    if any(b < a for a, b in itertools.pairwise(out)):
        raise PolicyError(f"cut points must not decrease, got {out}", key=key)
    return tuple(out)


def _recency_cuts(value: object) -> tuple[float, ...] | None:
    return _to_cuts(value, "recency_days")


def _frequency_cuts(value: object) -> tuple[float, ...] | None:
    return _to_cuts(value, "frequency")


def _monetary_cuts(value: object) -> tuple[float, ...] | None:
    return _to_cuts(value, "monetary")


def _check_bins(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= 9:
        raise PolicyError(
            f"must be a whole number in [2, 9] (one digit per score), got {value!r}",
            key=f"{_RFM}.bins",
        )


@attrs.frozen(kw_only=True)
class RFMPolicy:
    """How many scores, and the cut points that separate them; ``None`` learns them from data.

    Each dimension is cut into right-closed intervals in its own unit, like ``pandas.cut``:
    with cut points ``c1 <= ... <= c(bins-1)`` a value ``x <= c1`` is in the first interval,
    ``c1 < x <= c2`` in the second, and so on. F and M score the interval's number (1 is the
    lowest); R counts down, so fewer days since the last order score higher and "within 30
    days" includes day 30. Learned cut points are the ``j/bins`` quantiles (linear
    interpolation, as ``numpy.quantile`` and ``pandas.qcut``).
    """

    bins: int = attrs.field(default=5, validator=_check_bins)
    recency_days: tuple[float, ...] | None = attrs.field(default=None, converter=_recency_cuts)
    """Cut points in days since the last order, lowest first."""
    frequency: tuple[float, ...] | None = attrs.field(default=None, converter=_frequency_cuts)
    """Cut points in the frequency's unit (repeat purchases, or orders)."""
    monetary: tuple[float, ...] | None = attrs.field(default=None, converter=_monetary_cuts)
    """Cut points in money."""

    def __attrs_post_init__(self) -> None:
        for name in ("recency_days", "frequency", "monetary"):
            cuts = getattr(self, name)
            if cuts is not None and len(cuts) != self.bins - 1:
                raise PolicyError(
                    f"{self.bins} scores need {self.bins - 1} cut points, got {len(cuts)}",
                    key=f"{_RFM}.{name}",
                )


@attrs.frozen(kw_only=True, eq=False)
class RFMScores:
    """Recency, frequency and monetary scores, ``1..bins`` per customer, and the cut points used.

    ``score`` is ``R*100 + F*10 + M`` (555 is the best customer with five bins); ``total`` is
    ``R + F + M``. ``rfm_scores(..., cuts=result.cuts)`` scores new data on the same scale.
    """

    r: Score
    f: Score
    m: Score
    score: Score
    cuts: RFMPolicy
    """The cut points used, every dimension filled in."""

    @property
    def bins(self) -> int:
        return self.cuts.bins

    @property
    def total(self) -> Score:
        """``R + F + M`` per customer."""
        return self.r + self.f + self.m

    def __len__(self) -> int:
        return int(self.r.size)

    def grid(self) -> npt.NDArray[np.int64]:
        """Customers by R score (rows, 1 first) and F score (columns, 1 first)."""
        k = self.bins
        cells = (self.r.astype(np.int64) - 1) * k + (self.f.astype(np.int64) - 1)
        return np.bincount(cells, minlength=k * k).reshape(k, k)

    def __repr__(self) -> str:
        if not len(self):
            return one_line("RFMScores", "0 customers", f"{self.bins} bins")
        means = f"mean R {self.r.mean():.1f} F {self.f.mean():.1f} M {self.m.mean():.1f}"
        return one_line("RFMScores", f"{len(self):,} customers", f"{self.bins} bins", means)

    def _repr_html_(self) -> str:
        grid = self.grid()
        rows = [(f"R {r}", *grid[r - 1]) for r in range(self.bins, 0, -1)]
        head = ("", *(f"F {f}" for f in range(1, self.bins + 1)))
        return html_table(head, rows, caption=f"RFM scores: {len(self):,} customers by R and F")

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` with columns r, f, m, score (needs pandas)."""
        return pandas().DataFrame(self.columns())

    def columns(self) -> dict[str, Score]:
        """The per-customer columns by name: r, f, m, score."""
        return {"r": self.r, "f": self.f, "m": self.m, "score": self.score}

    def to_arrow(self) -> Any:
        """A ``pyarrow.Table`` with columns r, f, m, score (needs pyarrow)."""
        return arrow_table(self.columns())

    def to_polars(self) -> Any:
        """A polars DataFrame with columns r, f, m, score (needs polars)."""
        return polars_frame(self.columns())


def rfm_scores(
    recency_days: npt.ArrayLike,
    frequency: npt.ArrayLike,
    monetary: npt.ArrayLike,
    *,
    bins: int | None = None,
    cuts: RFMPolicy | None = None,
) -> RFMScores:
    """Score every customer 1..bins on recency, frequency and monetary value.

    Equal values always get equal scores: a value equal to a cut point belongs to the
    interval below it (see :class:`RFMPolicy`). With learned cut points and many ties (most
    customers bought once), a tied block that straddles a quantile stays whole, so some
    scores can be rarer than ``1/bins`` or absent; an all-equal column scores R = bins and
    F = M = 1 for everyone.

    Args:
        recency_days: days since each customer's last order.
        frequency: purchases per customer (repeat purchases or orders; the scale is relative).
        monetary: money per customer (average or total spend).
        bins: the number of scores, 2..9; default 5, or that of ``cuts``.
        cuts: fixed cut points; dimensions left ``None`` are learned from the data.

    Raises:
        DataError: arrays of different lengths, values that are NaN, infinite or negative,
            learning cut points from no customers, or ``bins`` that disagrees with ``cuts``.
        PolicyError: ``bins`` outside 2..9.
    """
    if cuts is None:
        policy = RFMPolicy() if bins is None else RFMPolicy(bins=bins)
    elif not isinstance(cuts, RFMPolicy):
        raise DataError(f"must be an RFMPolicy, got {type(cuts).__name__}", column="cuts")
    elif bins is not None and bins != cuts.bins:
        raise DataError(f"is {bins} but cuts has {cuts.bins} scores", column="bins")
    else:
        policy = cuts
    d = _column(recency_days, "recency_days")
    fr = _column(frequency, "frequency")
    mo = _column(monetary, "monetary")
    _same_length(recency_days=d, frequency=fr, monetary=mo)
    k = policy.bins
    d_cuts = (
        _quantile_cuts(d, k, "recency_days") if policy.recency_days is None else policy.recency_days
    )
    f_cuts = _quantile_cuts(fr, k, "frequency") if policy.frequency is None else policy.frequency
    m_cuts = _quantile_cuts(mo, k, "monetary") if policy.monetary is None else policy.monetary
    r = k - _cuts_below(d, d_cuts)  # fewer days, higher score
    f = 1 + _cuts_below(fr, f_cuts)
    m = 1 + _cuts_below(mo, m_cuts)
    score = r * np.int16(100)
    score += f * np.int16(10)
    score += m
    used = RFMPolicy(bins=k, recency_days=d_cuts, frequency=f_cuts, monetary=m_cuts)
    return RFMScores(r=_frozen(r), f=_frozen(f), m=_frozen(m), score=_frozen(score), cuts=used)


def _cuts_below(x: _Column, cuts: tuple[float, ...]) -> Score:
    """How many cut points lie strictly below each value: its interval, counted from 0."""
    out = np.zeros(x.size, dtype=np.int16)
    for start in range(0, x.size, _CHUNK):  # blocks that stay in cache across the cuts
        block, acc = x[start : start + _CHUNK], out[start : start + _CHUNK]
        for c in cuts:
            np.add(acc, block > c, out=acc)
    return out


def _quantile_cuts(x: _Column, bins: int, name: str) -> tuple[float, ...]:
    """The ``j/bins`` quantiles of ``x``, equal to ``numpy.quantile``'s default (linear) method.

    Whole numbers over a modest span (days, order counts) are counted rather than partitioned:
    the same order statistics, in one pass.
    """
    n = x.size
    if n == 0:
        raise DataError("cannot learn cut points from no customers", column=name)
    q = np.arange(1, bins, dtype=np.float64) / bins
    virtual = (n - 1) * q
    lower = np.floor(virtual)
    gamma = virtual - lower
    lo_i = lower.astype(np.intp)
    hi_i = np.minimum(lo_i + 1, n - 1)
    wanted = np.concatenate((lo_i, hi_i))
    counts = _counts_of_whole_numbers(x)
    if counts is not None:
        low, tally = counts
        at_or_below = np.cumsum(tally)
        values = (low + np.searchsorted(at_or_below, wanted, side="right")).astype(np.float64)
    else:
        values = np.partition(x, np.unique(wanted))[wanted].astype(np.float64)
    a, b = values[: bins - 1], values[bins - 1 :]
    diff = b - a
    # numpy's lerp: from the nearer end, so that gamma = 1 gives b exactly
    cut = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
    return tuple(float(c) for c in cut)


def _counts_of_whole_numbers(x: _Column) -> tuple[int, npt.NDArray[np.intp]] | None:
    """The lowest value and how many customers hold each value from it, when counting is cheap.

    That is for whole numbers spanning fewer values than there are customers, such as days or
    order counts, whether held as integers or (as summaries often give them) as floats.
    """
    n = x.size
    low, high = x.min(), x.max()
    span = int(high - low)
    if x.dtype.kind == "i":
        if span >= max(n, 4096):
            return None
        return int(low), np.bincount(x - low if low else x, minlength=span + 1)
    if span > min(n, _WHOLE_FLOAT_SPAN) or low != math.floor(low):
        return None
    tally = np.zeros(span + 1, dtype=np.intp)
    step = _CHUNK * 16
    for start in range(0, n, step):  # in blocks: no full-size temporaries
        block = x[start : start + step]
        ints = block.astype(np.int64)
        if not np.array_equal(ints, block):
            return None
        tally += np.bincount(ints - int(low), minlength=span + 1)
    return int(low), tally


# -- named segments -----------------------------------------------------------------------------


class Segment(StrEnum):
    """The standard RFM segments, best first; see :data:`SEGMENT_MAP` for the rule."""

    CHAMPIONS = "champions"
    LOYAL = "loyal"
    POTENTIAL_LOYALISTS = "potential_loyalists"
    NEW = "new"
    PROMISING = "promising"
    NEED_ATTENTION = "need_attention"
    ABOUT_TO_SLEEP = "about_to_sleep"
    AT_RISK = "at_risk"
    CANT_LOSE = "cant_lose"
    HIBERNATING = "hibernating"
    LOST = "lost"

    @property
    def code(self) -> int:
        """The segment's number in :attr:`RFMSegments.codes` (its position, best first)."""
        return _SEGMENT_CODES[self]

    @property
    def label_en(self) -> str:
        return _SEGMENT_LABELS[self][0]

    @property
    def label_zh(self) -> str:
        return _SEGMENT_LABELS[self][1]

    def label(self, lang: str = "en") -> str:
        return self.label_zh if lang == "zh" else self.label_en


_SEGMENT_CODES = {s: i for i, s in enumerate(Segment)}
_SEGMENT_LABELS = {
    Segment.CHAMPIONS: ("champions", "冠军客户"),
    Segment.LOYAL: ("loyal customers", "忠诚客户"),
    Segment.POTENTIAL_LOYALISTS: ("potential loyalists", "潜在忠诚客户"),
    Segment.NEW: ("new customers", "新客户"),
    Segment.PROMISING: ("promising", "有潜力客户"),
    Segment.NEED_ATTENTION: ("need attention", "需要关注客户"),
    Segment.ABOUT_TO_SLEEP: ("about to sleep", "即将沉睡客户"),
    Segment.AT_RISK: ("at risk", "有流失风险客户"),
    Segment.CANT_LOSE: ("can't lose them", "重要挽留客户"),
    Segment.HIBERNATING: ("hibernating", "沉睡客户"),
    Segment.LOST: ("lost", "已流失客户"),
}

#: The segment map on 1-5 scores: (segment, R range, F range), ranges inclusive. It is the
#: widely used R x F grid, with its lowest corner split into hibernating (R 2) and lost (R 1).
#: Every (R, F) cell belongs to exactly one segment.
SEGMENT_MAP: tuple[tuple[Segment, tuple[int, int], tuple[int, int]], ...] = (
    (Segment.CHAMPIONS, (5, 5), (4, 5)),
    (Segment.LOYAL, (3, 4), (4, 5)),
    (Segment.POTENTIAL_LOYALISTS, (4, 5), (2, 3)),
    (Segment.NEW, (5, 5), (1, 1)),
    (Segment.PROMISING, (4, 4), (1, 1)),
    (Segment.NEED_ATTENTION, (3, 3), (3, 3)),
    (Segment.ABOUT_TO_SLEEP, (3, 3), (1, 2)),
    (Segment.AT_RISK, (1, 2), (3, 4)),
    (Segment.CANT_LOSE, (1, 2), (5, 5)),
    (Segment.HIBERNATING, (2, 2), (1, 2)),
    (Segment.LOST, (1, 1), (1, 2)),
)


@functools.cache
def _segment_grid() -> npt.NDArray[np.int8]:
    """Segment code by ``6 * R + F``: the map as a lookup table."""
    grid = np.full((6, 6), -1, dtype=np.int8)
    for segment, (r0, r1), (f0, f1) in SEGMENT_MAP:
        grid[r0 : r1 + 1, f0 : f1 + 1] = segment.code
    return _frozen(grid.ravel())


@attrs.frozen(kw_only=True, eq=False)
class RFMSegments:
    """The segment of every customer, as codes (``Segment.code``), and how many are in each."""

    codes: npt.NDArray[np.int8]
    counts: Mapping[Segment, int]
    """Customers per segment, every segment listed, best first."""

    def segment(self, customer: int) -> Segment:
        """The segment of the customer at position ``customer``."""
        return _SEGMENTS[int(self.codes[customer])]

    def mask(self, segment: Segment) -> npt.NDArray[np.bool_]:
        """Which customers are in ``segment``."""
        return np.equal(self.codes, segment.code)

    def labels(self, lang: str = "en") -> npt.NDArray[np.str_]:
        """The segment label of every customer, in English or (``"zh"``) Chinese."""
        return np.array([s.label(lang) for s in Segment])[self.codes]

    def __len__(self) -> int:
        return int(self.codes.size)

    def __repr__(self) -> str:
        top = sorted(self.counts.items(), key=lambda kv: -kv[1])[:3]
        return one_line(
            "RFMSegments", f"{len(self):,} customers", *(f"{s.value} {n:,}" for s, n in top)
        )

    def _repr_html_(self) -> str:
        total = max(len(self), 1)
        rows = [(s.label_en, s.label_zh, n, f"{n / total:.1%}") for s, n in self.counts.items()]
        return html_table(("segment", "细分", "customers", "share"), rows, caption="RFM segments")

    def to_pandas(self) -> Any:
        """A categorical ``pandas.Series`` of segment values (needs pandas)."""
        pd = pandas()
        return pd.Series(pd.Categorical.from_codes(self.codes, [s.value for s in Segment]))


_SEGMENTS = tuple(Segment)


def rfm_segments(scores: RFMScores, *, by: Literal["f", "fm"] = "f") -> RFMSegments:
    """Name each customer's segment from their R score and F (or F and M) score.

    Args:
        scores: five-bin RFM scores.
        by: ``"f"`` reads the map with the F score; ``"fm"`` with the mean of F and M,
            rounded half up, so that big spenders who buy rarely count as frequent ones.

    Raises:
        DataError: scores with other than five bins, or an unknown ``by``.
    """
    if scores.bins != 5:
        raise DataError(
            f"the segment map reads scores 1-5, got {scores.bins} bins", column="scores"
        )
    if by == "f":
        axis = scores.f
    elif by == "fm":
        axis = (scores.f + scores.m + 1) // 2
    else:
        raise DataError(f"must be 'f' or 'fm', got {by!r}", column="by")
    codes = _segment_grid()[scores.r * np.int16(6) + axis]
    tally = np.bincount(codes, minlength=len(_SEGMENTS))
    counts = MappingProxyType({s: int(tally[s.code]) for s in Segment})
    return RFMSegments(codes=_frozen(codes), counts=counts)


def segment_table() -> str:
    """The segment map as Markdown, as the docs show it."""

    def span(lo: int, hi: int) -> str:
        return str(lo) if lo == hi else f"{lo}-{hi}"

    rows = ["| segment | label | 中文 | R | F |", "|---|---|---|---|---|"]
    rows += [
        f"| `{s.name}` | {s.label_en} | {s.label_zh} | {span(*r)} | {span(*f)} |"
        for s, r, f in SEGMENT_MAP
    ]
    return "\n".join(rows)


# -- Pareto and ABC -----------------------------------------------------------------------------


def _value_column(values: npt.ArrayLike) -> tuple[Floats, float]:
    v = _column(values, "values").astype(np.float64, copy=False)
    if v.size == 0:
        raise DataError("needs at least one customer", column="values")
    with np.errstate(over="ignore"):  # an overflow is reported below, as an error
        total = float(v.sum())
    if total <= 0:
        raise DataError("the total is zero: no value to share out", column="values")
    if not math.isfinite(total):
        raise DataError("the total overflows a float; scale the values down", column="values")
    return v, total


@attrs.frozen(kw_only=True, eq=False)
class ParetoSummary:
    """How concentrated value is: the 80/20 figures, the Pareto curve and the Gini coefficient.

    The curve runs over customers from the most valuable down and is linear between
    customers, so a fraction of a customer contributes that fraction of their value.
    """

    customers: int
    total: float
    top_fraction: float
    value_share_of_top: float
    """The share of the total that the top ``top_fraction`` of customers bring."""
    value_fraction: float
    customers_for_value: int
    """The fewest customers (the most valuable) whose value reaches ``value_fraction``."""
    customer_share_for_value: float
    """``customers_for_value`` as a share of all customers."""
    curve_customers: Floats
    """Cumulative share of customers, 0 to 1."""
    curve_value: Floats
    """Cumulative share of value brought by those customers, 0 to 1."""
    gini: float
    """0 when everyone brings the same, approaching 1 when one customer brings everything."""

    def __repr__(self) -> str:
        return one_line(
            "ParetoSummary",
            f"{self.customers:,} customers",
            f"top {self.top_fraction:.0%} bring {self.value_share_of_top:.0%}",
            f"{self.value_fraction:.0%} from {self.customer_share_for_value:.0%}",
            f"Gini {self.gini:.2f}",
        )

    def _repr_html_(self) -> str:
        rows = [
            ("customers", f"{self.customers:,}"),
            ("total", f"{self.total:,.2f}"),
            (f"share of the top {self.top_fraction:.0%}", f"{self.value_share_of_top:.1%}"),
            (
                f"customers bringing {self.value_fraction:.0%}",
                f"{self.customers_for_value:,} ({self.customer_share_for_value:.1%})",
            ),
            ("Gini", f"{self.gini:.3f}"),
        ]
        return field_table(rows, caption="Pareto (80/20)")

    def to_pandas(self) -> Any:
        """The curve as a ``pandas.DataFrame`` (needs pandas)."""
        return pandas().DataFrame({"customers": self.curve_customers, "value": self.curve_value})


def pareto(
    values: npt.ArrayLike,
    *,
    top_fraction: float = 0.2,
    value_fraction: float = 0.8,
    points: int | None = 101,
) -> ParetoSummary:
    """The 80/20 view of per-customer value (revenue, margin).

    Args:
        values: value per customer, >= 0.
        top_fraction: the head of customers whose share of value is wanted.
        value_fraction: the share of value whose customers are counted.
        points: curve points, evenly spaced in customer share; ``None`` gives one per
            customer (and the origin).

    Raises:
        DataError: an empty or all-zero array, NaN or negative values, fractions outside
            (0, 1], fewer than two points.
    """
    top = _share(top_fraction, "top_fraction")
    want = _share(value_fraction, "value_fraction")
    if points is not None:
        _whole(points, "points", 2)
    v, total = _value_column(values)
    n = v.size
    desc = np.sort(v)[::-1]
    cum = np.empty(n + 1)
    cum[0] = 0.0
    np.cumsum(desc, out=cum[1:])
    x_all = np.arange(n + 1) / n
    y_all = cum / cum[-1]
    head = float(np.interp(top, x_all, y_all))
    needed = int(np.count_nonzero(cum[:-1] < want * total - _rounding_slack(total, n)))
    area = (y_all[:-1].sum() + y_all[1:].sum()) / (2 * n)
    if points is None:
        xs, ys = x_all, y_all
    else:
        xs = np.linspace(0.0, 1.0, points)
        ys = np.interp(xs, x_all, y_all)
    return ParetoSummary(
        customers=n,
        total=total,
        top_fraction=top,
        value_share_of_top=head,
        value_fraction=want,
        customers_for_value=needed,
        customer_share_for_value=needed / n,
        curve_customers=_frozen(xs),
        curve_value=_frozen(ys),
        gini=float(max(0.0, 2 * area - 1)),
    )


def _check_share(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise PolicyError(
            f"must be a number in (0, 1], got {value!r}", key=f"analytics.abc.{attr.name}"
        )


@attrs.frozen(kw_only=True)
class ABCPolicy:
    """Cumulative value shares that close class A and class B; the rest is class C."""

    a: float = attrs.field(default=0.8, validator=_check_share)
    b: float = attrs.field(default=0.95, validator=_check_share)

    def __attrs_post_init__(self) -> None:
        if not self.a < self.b:
            raise PolicyError(f"must be above a ({self.a}), got {self.b}", key="analytics.abc.b")


class ABCClass(StrEnum):
    """ABC class by share of value: A the few who bring most, C the many who bring little."""

    A = "A"
    B = "B"
    C = "C"

    @property
    def code(self) -> int:
        """The class's number in :attr:`ABCAnalysis.codes`: 0 for A, 1 for B, 2 for C."""
        return "ABC".index(self.value)

    @property
    def label_en(self) -> str:
        return f"class {self.value}"

    @property
    def label_zh(self) -> str:
        return f"{self.value}类客户"

    def label(self, lang: str = "en") -> str:
        return self.label_zh if lang == "zh" else self.label_en


@attrs.frozen(kw_only=True, eq=False)
class ABCAnalysis:
    """The ABC class of every customer (codes 0, 1, 2 for A, B, C) and each class's totals."""

    codes: npt.NDArray[np.int8]
    counts: Mapping[ABCClass, int]
    value_shares: Mapping[ABCClass, float]
    """The share of the total value each class brings."""
    policy: ABCPolicy

    def classes(self) -> npt.NDArray[np.str_]:
        """``"A"``, ``"B"`` or ``"C"`` per customer."""
        return np.array(["A", "B", "C"])[self.codes]

    def __len__(self) -> int:
        return int(self.codes.size)

    def __repr__(self) -> str:
        return one_line(
            "ABCAnalysis",
            *(f"{c.value} {self.counts[c]:,} ({self.value_shares[c]:.0%})" for c in ABCClass),
        )

    def _repr_html_(self) -> str:
        rows = [
            (c.label_en, c.label_zh, self.counts[c], f"{self.value_shares[c]:.1%}")
            for c in ABCClass
        ]
        caption = f"ABC classes (A to {self.policy.a:.0%}, B to {self.policy.b:.0%} of value)"
        return html_table(("class", "类别", "customers", "share of value"), rows, caption=caption)

    def to_pandas(self) -> Any:
        """A categorical ``pandas.Series`` of classes (needs pandas)."""
        pd = pandas()
        return pd.Series(pd.Categorical.from_codes(self.codes, ["A", "B", "C"]))


def abc_classes(values: npt.ArrayLike, *, a: float = 0.8, b: float = 0.95) -> ABCAnalysis:
    """Class A, B or C for every customer by cumulative share of value.

    Customers are ranked by value, highest first, equal values in the order given. A
    customer is in A when the customers ranked above them bring less than ``a`` of the
    total (so A is the fewest customers reaching ``a``, and the top customer is always A),
    else in B when those above bring less than ``b``, else in C. Customers who bring
    nothing are C.

    Raises:
        DataError: an empty or all-zero array, NaN or negative values.
        PolicyError: ``a`` or ``b`` outside (0, 1], or ``a >= b``.
    """
    policy = ABCPolicy(a=a, b=b)
    v, total = _value_column(values)
    order = np.argsort(-v, kind="stable")
    ranked = v[order]
    before = np.empty_like(ranked)
    before[0] = 0.0
    np.cumsum(ranked[:-1], out=before[1:])
    slack = _rounding_slack(total, v.size)
    ranked_codes = (before >= policy.a * total - slack).astype(np.int8)
    ranked_codes += before >= policy.b * total - slack
    codes = np.empty(v.size, dtype=np.int8)
    codes[order] = ranked_codes
    tally = np.bincount(ranked_codes, minlength=3)
    sums = np.bincount(ranked_codes, weights=ranked, minlength=3)
    return ABCAnalysis(
        codes=_frozen(codes),
        counts=MappingProxyType({c: int(tally[c.code]) for c in ABCClass}),
        value_shares=MappingProxyType({c: float(sums[c.code] / total) for c in ABCClass}),
        policy=policy,
    )


# -- k-means clusters ---------------------------------------------------------------------------


class ValueGroup(StrEnum):
    """The three clusters of ``cluster_customers(k=3)``, by value."""

    KEY = "key"
    ORDINARY = "ordinary"
    SMALL = "small"

    @property
    def label_en(self) -> str:
        return f"{self.value} customers"

    @property
    def label_zh(self) -> str:
        return {"key": "重点客户", "ordinary": "普通客户", "small": "小客户"}[self.value]

    def label(self, lang: str = "en") -> str:
        return self.label_zh if lang == "zh" else self.label_en


#: The columns of :attr:`CustomerClusters.centres` and :attr:`CustomerClusters.means`.
FEATURES = ("recency_days", "frequency", "monetary")


@attrs.frozen(kw_only=True, eq=False)
class CustomerClusters:
    """Customers grouped by k-means on RFM, cluster 0 the most valuable.

    Columns of ``centres`` and ``means`` are recency_days, frequency, monetary in the units
    given. ``centres`` are the k-means centres mapped back from the log scale the fit runs on
    (a typical member); ``means`` are the plain averages of the members.
    """

    labels: npt.NDArray[np.intp]
    centres: Floats
    means: Floats
    sizes: npt.NDArray[np.int64]
    inertia: float
    """Sum of squared distances to the centres, in standardised log1p units."""
    iterations: int
    """Lloyd iterations of the best start."""

    @property
    def k(self) -> int:
        return int(self.sizes.size)

    @property
    def groups(self) -> tuple[ValueGroup, ...] | None:
        """Key, ordinary and small customers when ``k == 3``; otherwise ``None``."""
        return tuple(ValueGroup) if self.k == 3 else None

    def names(self, lang: str = "en") -> tuple[str, ...]:
        """A name per cluster: the value group when ``k == 3``, else the value rank."""
        if self.groups is not None:
            return tuple(g.label(lang) for g in self.groups)
        if lang == "zh":
            return tuple(f"价值第{i}档（共{self.k}档）" for i in range(1, self.k + 1))
        return tuple(f"value rank {i} of {self.k}" for i in range(1, self.k + 1))

    def __len__(self) -> int:
        return int(self.labels.size)

    def __repr__(self) -> str:
        sizes = (f"{name} {int(n):,}" for name, n in zip(self.names(), self.sizes, strict=True))
        return one_line("CustomerClusters", f"k={self.k}", *sizes)

    def _repr_html_(self) -> str:
        rows = [
            (name, int(n), f"{days:.0f}", f"{orders:.1f}", f"{spend:,.0f}")
            for name, n, (days, orders, spend) in zip(
                self.names(), self.sizes, self.means, strict=True
            )
        ]
        head = ("cluster", "customers", "days since last", "frequency", "monetary")
        return html_table(head, rows, caption=f"{self.k} clusters, k-means on RFM (means)")

    def to_pandas(self) -> Any:
        """The centres, means and sizes as a ``pandas.DataFrame``, one row per cluster."""
        cols: dict[str, Any] = {"name": self.names(), "size": self.sizes}
        cols |= {f"centre_{f}": self.centres[:, j] for j, f in enumerate(FEATURES)}
        cols |= {f"mean_{f}": self.means[:, j] for j, f in enumerate(FEATURES)}
        return pandas().DataFrame(cols)


def cluster_customers(
    recency_days: npt.ArrayLike,
    frequency: npt.ArrayLike,
    monetary: npt.ArrayLike,
    *,
    k: int = 3,
    rng: np.random.Generator | None = None,
    n_init: int = 4,
    max_iter: int = 300,
    tol: float = 1e-4,
) -> CustomerClusters:
    """Group customers by k-means (k-means++ starts) on standardised ``log1p`` of R, F and M.

    The log scale keeps a few big spenders from owning a cluster each; standardising gives
    the three dimensions equal weight. Clusters are then ordered by value: the sum of the
    centre's standardised frequency and monetary, highest first (ties: the more recent).

    Args:
        rng: the source of the random starts; default ``numpy.random.default_rng(0)``, so the
            result is the same on every run.
        n_init: starts tried; the one with the lowest inertia wins.
        max_iter: Lloyd iterations per start at most.
        tol: stop when the centres move less than this (squared, standardised units).

    Raises:
        DataError: bad arrays (see :func:`rfm_scores`), fewer than ``k`` distinct
            customers, or bad options.
    """
    k = _whole(k, "k", 1)
    n_init = _whole(n_init, "n_init", 1)
    max_iter = _whole(max_iter, "max_iter", 1)
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not tol >= 0:
        raise DataError(f"must be a number >= 0, got {tol!r}", column="tol")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise DataError("must be a numpy.random.Generator", column="rng")
    cols = (
        _column(recency_days, "recency_days"),
        _column(frequency, "frequency"),
        _column(monetary, "monetary"),
    )
    n = _same_length(recency_days=cols[0], frequency=cols[1], monetary=cols[2])
    if n < k:
        raise DataError(f"{k} clusters need at least {k} customers, got {n}", column="k")
    raw = np.stack([c.astype(np.float64, copy=False) for c in cols])
    logs = np.log1p(raw)
    mean = logs.mean(axis=1)
    std = logs.std(axis=1)
    std[std == 0] = 1.0  # a constant dimension separates nobody; leave it at zero
    z = (logs - mean[:, None]) / std[:, None]
    gen = np.random.default_rng(0) if rng is None else rng
    best: tuple[float, Floats, npt.NDArray[np.intp], int] | None = None
    for _ in range(n_init):
        run = _lloyd(z, _seed(z, k, gen), max_iter, tol)
        if best is None or run[0] < best[0]:
            best = run
    assert best is not None  # n_init >= 1
    inertia, centres, labels, iterations = best
    value = centres[:, 1] + centres[:, 2]
    order = np.lexsort((centres[:, 0], -value))
    rank = np.empty(k, dtype=np.intp)
    rank[order] = np.arange(k)
    labels = rank[labels]
    centres = centres[order]
    sizes = np.bincount(labels, minlength=k)
    sums = np.stack([np.bincount(labels, weights=raw[j], minlength=k) for j in range(3)], axis=1)
    means = np.divide(sums, sizes[:, None], out=np.full((k, 3), np.nan), where=sizes[:, None] > 0)
    plain = np.expm1(centres * std + mean)
    return CustomerClusters(
        labels=_frozen(labels),
        centres=_frozen(plain),
        means=_frozen(means),
        sizes=_frozen(sizes.astype(np.int64)),
        inertia=inertia,
        iterations=iterations,
    )


def _sq_dist(z: Floats, point: Floats) -> Floats:
    """Squared distance of every customer (columns of ``z``) to one point."""
    out = np.zeros(z.shape[1])
    _add_sq_dist(z, point, out, np.empty(min(z.shape[1], _CHUNK)))
    return out


def _add_sq_dist(z: Floats, point: Floats, out: Floats, scratch: Floats, start: int = 0) -> None:
    """Add the squared distances of customers ``start:start+len(out)`` to ``point`` to ``out``.

    Block by block, in place: the working set stays in cache and nothing is allocated.
    """
    for lo in range(0, out.size, scratch.size):
        hi = min(out.size, lo + scratch.size)
        diff, acc = scratch[: hi - lo], out[lo:hi]
        for j in range(z.shape[0]):
            np.subtract(z[j, start + lo : start + hi], point[j], out=diff)
            np.multiply(diff, diff, out=diff)
            np.add(acc, diff, out=acc)


def _seed(z: Floats, k: int, gen: np.random.Generator) -> Floats:
    """Greedy k-means++: each new centre is the best of a few D²-weighted draws."""
    n = z.shape[1]
    trials = 2 + int(math.log(k))
    chosen = [int(gen.integers(n))]
    d2 = _sq_dist(z, z[:, chosen[0]])
    for _ in range(1, k):
        cum = np.cumsum(d2)
        if not cum[-1] > 0:
            raise DataError(f"{k} clusters need at least {k} distinct customers", column="k")
        # side="right" never lands on a customer already at distance 0
        picks = np.searchsorted(cum, gen.random(trials) * cum[-1], side="right")
        picks = np.minimum(picks, n - 1)
        candidates = [np.minimum(d2, _sq_dist(z, z[:, p])) for p in picks.tolist()]
        potentials = [float(c.sum()) for c in candidates]
        best = int(np.argmin(potentials))
        chosen.append(int(picks[best]))
        d2 = candidates[best]
    return z[:, chosen].T.copy()


def _assign(z: Floats, centres: Floats) -> tuple[npt.NDArray[np.intp], Floats]:
    """The nearest centre of every customer (the first, on a tie) and the squared distance."""
    n, k = z.shape[1], centres.shape[0]
    labels = np.zeros(n, dtype=np.intp)
    nearest = np.zeros(n)
    size = min(n, _CHUNK)
    dist, scratch, closer = np.empty(size), np.empty(size), np.empty(size, dtype=np.bool_)
    for start in range(0, n, size):
        stop = min(n, start + size)
        m = stop - start
        best, block = nearest[start:stop], labels[start:stop]
        _add_sq_dist(z, centres[0], best, scratch[:m], start)
        for c in range(1, k):
            here = dist[:m]
            here.fill(0.0)
            _add_sq_dist(z, centres[c], here, scratch[:m], start)
            np.less(here, best, out=closer[:m])
            np.copyto(block, c, where=closer[:m])
            np.minimum(best, here, out=best)
    return labels, nearest


def _update(z: Floats, labels: npt.NDArray[np.intp], nearest: Floats, k: int) -> Floats:
    """Each cluster's mean; an emptied cluster restarts at the customer farthest from theirs."""
    counts = np.bincount(labels, minlength=k)
    sums = np.stack(
        [np.bincount(labels, weights=z[j], minlength=k) for j in range(z.shape[0])], axis=1
    )
    centres = sums / np.maximum(counts, 1)[:, None]
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        far = nearest.copy()
        for c in empty.tolist():
            i = int(np.argmax(far))
            centres[c] = z[:, i]
            far[i] = -1.0
    return centres


def _lloyd(
    z: Floats, centres: Floats, max_iter: int, tol: float
) -> tuple[float, Floats, npt.NDArray[np.intp], int]:
    """Lloyd's iterations from ``centres`` until no customer moves (or the centres hardly do)."""
    k = centres.shape[0]
    labels, nearest = _assign(z, centres)
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        moved = _update(z, labels, nearest, k)
        shift = float(((moved - centres) ** 2).sum())
        centres = moved
        new_labels, nearest = _assign(z, centres)
        settled = bool(np.array_equal(new_labels, labels))
        labels = new_labels
        if settled or shift <= tol:
            break
    return float(nearest.sum()), centres, labels, iterations
