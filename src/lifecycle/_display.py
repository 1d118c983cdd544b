"""Rendering for people: amounts of money in reason texts, one-line reprs and small HTML tables
for terminals and notebooks, and DataFrames when pandas is installed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from html import escape
from typing import Any

from lifecycle.errors import MissingExtra

__all__ = [
    "REPR_WIDTH",
    "arrow",
    "arrow_table",
    "field_table",
    "frame",
    "html_table",
    "model_html",
    "model_repr",
    "money",
    "one_line",
    "pandas",
    "polars",
    "polars_frame",
]

#: The widest a result's ``repr`` gets: one line of a terminal.
REPR_WIDTH = 100

_SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def money(amount: Decimal, currency: str) -> str:
    """``amount`` as a reason text writes it: ``¥1,200`` or ``¥19.90``; ``XYZ 5`` without a symbol."""
    text = f"{amount:,.0f}" if amount == amount.to_integral_value() else f"{amount:,.2f}"
    symbol = _SYMBOLS.get(currency)
    return f"{symbol}{text}" if symbol else f"{currency} {text}"


def html_table(
    header: Sequence[object], rows: Sequence[Sequence[object]], *, caption: str | None = None
) -> str:
    """An HTML table with every cell escaped."""
    parts = ["<table>"]
    if caption:
        parts.append(f"<caption>{escape(caption)}</caption>")
    parts.append(
        "<thead><tr>" + "".join(f"<th>{escape(str(h))}</th>" for h in header) + "</tr></thead>"
    )
    parts.append("<tbody>")
    for row in rows:
        parts.append("<tr>" + "".join(f"<td>{escape(_text(v))}</td>" for v in row) + "</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def one_line(name: str, *parts: object) -> str:
    """``name(part, part, ...)`` on one line of at most :data:`REPR_WIDTH` characters: a
    result's ``repr`` says what it is and its headline figures, never every row."""
    text = " ".join(f"{name}({', '.join(str(p) for p in parts if p is not None)})".split())
    return text if len(text) <= REPR_WIDTH else text[: REPR_WIDTH - 4] + "...)"


def model_repr(
    name: str, variant: str, params: Mapping[str, float], fit: Any, unit_days: float | None = None
) -> str:
    """A fitted model on one line: its parameters, unit, customers and log-likelihood."""
    values = " ".join(f"{k}={v:.3g}" for k, v in params.items())
    unit = (
        None
        if unit_days is None
        else "in days"
        if unit_days == 1
        else f"in {unit_days:g}-day units"
    )
    customers = None if fit.n_customers is None else f"{fit.n_customers:,.0f} customers"
    ll = None if fit.log_likelihood is None else f"LL {fit.log_likelihood:,.0f}"
    return one_line(name, variant, values, unit, customers, ll)


def model_html(
    variant: str,
    params: Mapping[str, float],
    fit: Any,
    unit_days: float | None,
    **extra: float,
) -> str:
    """A fitted model's parameters with their standard errors, and how the fit went."""
    errors = fit.standard_errors or {}
    rows = [(k, f"{v:.4g}", _se(errors.get(k))) for k, v in params.items()]
    rows += [(k.replace("_", " "), f"{v:,.4g}", "") for k, v in extra.items()]
    notes = [variant]
    if unit_days is not None:
        notes.append(f"time unit {unit_days:g} days")
    if fit.n_customers is not None:
        notes.append(f"{fit.n_customers:,.0f} customers")
    if fit.log_likelihood is not None:
        notes.append(f"log-likelihood {fit.log_likelihood:,.2f}")
    if fit.convergence is not None:
        notes.append("converged" if fit.convergence.converged else "did NOT converge")
    return html_table(("parameter", "estimate", "std. error"), rows, caption=", ".join(notes))


def _se(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def field_table(rows: Sequence[tuple[str, object]], *, caption: str | None = None) -> str:
    """A two-column HTML table of named figures."""
    return html_table(("", ""), [(name, value) for name, value in rows], caption=caption)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}"
    return str(value)


def pandas() -> Any:
    """The pandas module, or :class:`~lifecycle.errors.MissingExtra` naming the extra."""
    try:
        import pandas as pd
    except ImportError as e:
        raise MissingExtra(package="pandas", extra="pandas", feature="to_pandas()") from e
    return pd


def frame(columns: Mapping[str, Any]) -> Any:
    """A DataFrame of ``columns``."""
    return pandas().DataFrame(dict(columns))


def arrow() -> Any:
    """The pyarrow module, or :class:`~lifecycle.errors.MissingExtra` naming the extra."""
    try:
        import pyarrow as pa
    except ImportError as e:
        raise MissingExtra(package="pyarrow", extra="arrow", feature="Arrow in and out") from e
    return pa


def polars() -> Any:
    """The polars module, or :class:`~lifecycle.errors.MissingExtra` naming the extra."""
    try:
        import polars as pl
    except ImportError as e:
        raise MissingExtra(package="polars", extra="polars", feature="polars in and out") from e
    return pl


def arrow_table(columns: Mapping[str, Any]) -> Any:
    """An Arrow table of numpy ``columns``: numbers and instants without a copy."""
    pa = arrow()
    arrays = []
    for values in columns.values():
        if getattr(values, "dtype", None) is not None and values.dtype.kind == "M":
            arrays.append(pa.array(values, type=pa.timestamp("us", tz="UTC")))
        else:
            arrays.append(pa.array(values))
    return pa.Table.from_arrays(arrays, names=list(columns))


def polars_frame(columns: Mapping[str, Any]) -> Any:
    """A polars DataFrame of numpy ``columns`` (numbers without a copy; instants in UTC)."""
    pl = polars()
    series = []
    for name, values in columns.items():
        s = pl.Series(name, values)
        if getattr(values, "dtype", None) is not None and values.dtype.kind == "M":
            s = s.dt.replace_time_zone("UTC")
        series.append(s)
    return pl.DataFrame(series)
