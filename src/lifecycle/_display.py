"""Rendering for people: amounts of money in reason texts, small HTML tables for notebooks, and
DataFrames when pandas is installed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from html import escape
from typing import Any

from lifecycle.errors import MissingExtra

__all__ = ["frame", "html_table", "money", "pandas"]

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
