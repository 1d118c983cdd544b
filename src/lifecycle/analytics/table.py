"""The columnar transaction table: one row per valid order, as numpy arrays.

Build it from events (the same valid orders the per-customer rules count), from numpy arrays,
or from a pandas DataFrame, an Arrow table or a polars DataFrame. Instants are UTC microseconds; calendar days are taken in the
table's time zone (the shop's), so "a day" means the same thing here as in the rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from lifecycle._display import arrow, field_table
from lifecycle._ledger import fold
from lifecycle._time import require_aware, to_utc, valid_zone_name, zone
from lifecycle.analytics._days import datetime_to_us, local_days
from lifecycle.errors import DataError
from lifecycle.events import Event, sort_key
from lifecycle.policy import Policy

__all__ = ["Transactions"]


def _column(name: str, values: Any, n: int | None, dtype: Any = None) -> npt.NDArray[Any]:
    try:
        arr = np.array(values, dtype=dtype)  # a copy: the table never changes with its input
    except (TypeError, ValueError) as e:
        raise DataError(f"cannot be read as {dtype or 'an array'}: {e}", column=name) from None
    if arr.ndim != 1:
        raise DataError(f"must be one-dimensional, got shape {arr.shape}", column=name)
    if n is not None and len(arr) != n:
        raise DataError(f"has {len(arr)} rows, expected {n}", column=name)
    return arr


def _money(name: str, values: Any, n: int) -> npt.NDArray[np.float64]:
    arr = _column(name, values, n, np.float64)
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"row {row}: must be a finite amount >= 0, got {arr[row]}", column=name)
    return arr


def _instants(values: Any, n: int) -> npt.NDArray[np.int64]:
    """UTC microseconds from datetime64 values (taken as UTC) or aware datetimes."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataError(f"must be one-dimensional, got shape {arr.shape}", column="at")
    if len(arr) != n:
        raise DataError(f"has {len(arr)} rows, expected {n}", column="at")
    if np.issubdtype(arr.dtype, np.datetime64):
        if np.isnat(arr).any():
            row = int(np.flatnonzero(np.isnat(arr))[0])
            raise DataError(f"row {row}: missing instant (NaT)", column="at")
        # datetime64[us] counts microseconds since 1970: the integers are the instants. A copy,
        # so that changing the caller's array later cannot move the table's instants.
        return np.array(arr, dtype="datetime64[us]").view(np.int64)
    if arr.dtype == object:
        out = np.empty(n, dtype=np.int64)
        for i, v in enumerate(arr.tolist()):
            if not isinstance(v, datetime):
                raise DataError(
                    f"row {i}: expected a datetime, got {type(v).__name__}", column="at"
                )
            try:
                aware = require_aware(v, "at")
            except ValueError:
                raise DataError(
                    f"row {i}: naive datetime; give it a time zone", column="at"
                ) from None
            out[i] = datetime_to_us(aware)
        return out
    raise DataError(
        f"expected datetime64 values (UTC) or aware datetimes, got {arr.dtype}", column="at"
    )


@attrs.frozen(eq=False)
class Transactions:
    """One row per valid order.

    Attributes:
        customer_id: who ordered (any hashable ids: integers or strings).
        at_us: when, as UTC microseconds since 1970.
        amount: what was paid.
        refund: what was refunded of it (partial refunds; a fully refunded order is no row).
        discount: the discount the order was bought at (0 when none).
        order_id: the order ids, when known.
        category: each order's (first) category, when known.
        day: the calendar day of each order in ``timezone``, as days since 1970-01-01.
        timezone: the IANA zone whose calendar days ``day`` counts.
    """

    customer_id: npt.NDArray[Any]
    at_us: npt.NDArray[np.int64]
    amount: npt.NDArray[np.float64]
    refund: npt.NDArray[np.float64]
    discount: npt.NDArray[np.float64]
    order_id: npt.NDArray[Any] | None
    category: npt.NDArray[Any] | None
    day: npt.NDArray[np.int64]
    timezone: str

    def __len__(self) -> int:
        return len(self.at_us)

    def __repr__(self) -> str:
        customers = len(np.unique(self.customer_id)) if len(self) else 0
        return (
            f"Transactions({len(self)} orders, {customers} customers, timezone={self.timezone!r})"
        )

    def _repr_html_(self) -> str:
        customers = len(np.unique(self.customer_id)) if len(self) else 0
        rows: list[tuple[str, object]] = [
            ("orders", f"{len(self):,}"),
            ("customers", f"{customers:,}"),
        ]
        if len(self):
            first, last = (np.datetime64(int(d), "D") for d in (self.day.min(), self.day.max()))
            rows += [
                ("days", f"{first} to {last}"),
                ("net amount", f"{float(self.net.sum()):,.2f}"),
            ]
        return field_table(rows, caption=f"Transactions ({self.timezone})")

    @property
    def net(self) -> npt.NDArray[np.float64]:
        """What the shop kept of each order: amount minus refund."""
        return self.amount - self.refund

    @classmethod
    def from_arrays(
        cls,
        customer_id: Any,
        at: Any,
        amount: Any,
        *,
        refund: Any = None,
        discount: Any = None,
        order_id: Any = None,
        category: Any = None,
        timezone: str = "UTC",
    ) -> Transactions:
        """A table from columns of equal length.

        ``at`` holds numpy ``datetime64`` values, read as UTC instants, or aware datetimes.
        Raises :class:`DataError` naming the column (and row) that cannot be used.
        """
        if not isinstance(timezone, str) or not valid_zone_name(timezone):
            raise DataError(f"not an IANA time zone name: {timezone!r}", column="timezone")
        ids = _column("customer_id", customer_id, None)
        n = len(ids)
        if ids.dtype == object or ids.dtype.kind == "f":
            missing = np.array([v is None or v != v for v in ids.tolist()], dtype=bool)
            if missing.any():
                row = int(np.flatnonzero(missing)[0])
                raise DataError(f"row {row}: missing customer id", column="customer_id")
        at_us = _instants(at, n)
        paid = _money("amount", amount, n)
        refunds = np.zeros(n) if refund is None else _money("refund", refund, n)
        over = None if refund is None else refunds > paid
        if over is not None and over.any():
            row = int(np.flatnonzero(over)[0])
            raise DataError(
                f"row {row}: refund {refunds[row]} exceeds the amount {paid[row]}", column="refund"
            )
        discounts = np.zeros(n) if discount is None else _money("discount", discount, n)
        orders = None if order_id is None else _column("order_id", order_id, n)
        categories = None if category is None else _column("category", category, n)
        return cls(
            customer_id=ids,
            at_us=at_us,
            amount=paid,
            refund=refunds,
            discount=discounts,
            order_id=orders,
            category=categories,
            day=local_days(at_us, zone(timezone)),
            timezone=timezone,
        )

    @classmethod
    def from_events(
        cls,
        events: Iterable[Event],
        *,
        policy: Policy | None = None,
        at: datetime | None = None,
        currency: str | None = None,
    ) -> Transactions:
        """The valid orders among ``events`` at ``at`` (default: after every event).

        Valid means what the stage rules count: paid, not cancelled, not fully refunded.
        Days are taken in ``policy.timezone``. Orders in another currency than ``currency``
        are left out; without ``currency``, mixed currencies are an error.
        """
        policy = policy if policy is not None else Policy()
        by_customer: dict[str, list[Event]] = {}
        for e in events:
            by_customer.setdefault(e.customer_id, []).append(e)
        now = None if at is None else to_utc(require_aware(at, "at"))
        rows: list[tuple[str, datetime, float, float, float, str, str]] = []
        currencies: set[str] = set()
        for cid, history in by_customer.items():
            until = now if now is not None else max(sort_key(e)[0] for e in history)
            for o in fold(history, policy, until).valid_orders():
                paid = o.paid
                assert paid is not None  # valid orders are paid
                if currency is not None and paid.currency != currency.upper():
                    continue
                currencies.add(paid.currency)
                rows.append(
                    (
                        cid,
                        paid.at,
                        float(paid.amount),
                        float(o.refunded),
                        float(paid.discount),
                        o.order_id,
                        paid.categories[0] if paid.categories else "",
                    )
                )
        if len(currencies) > 1:
            raise DataError(
                f"orders in several currencies {sorted(currencies)}; pick one with currency=",
                column="currency",
            )
        rows.sort(key=lambda r: (r[0], to_utc(r[1]), r[5]))
        columns: Sequence[Any] = list(zip(*rows, strict=True)) if rows else [()] * 7
        ids, instants, amounts, refunds, discounts, order_ids, categories = columns
        return cls.from_arrays(
            np.array(ids, dtype=object),
            np.array(instants, dtype=object),
            np.array(amounts, dtype=np.float64),
            refund=np.array(refunds, dtype=np.float64),
            discount=np.array(discounts, dtype=np.float64),
            order_id=np.array(order_ids, dtype=object),
            category=np.array(categories, dtype=object),
            timezone=policy.timezone,
        )

    @classmethod
    def from_pandas(
        cls,
        frame: Any,
        *,
        customer_id: str = "customer_id",
        at: str = "at",
        amount: str = "amount",
        refund: str | None = None,
        discount: str | None = None,
        order_id: str | None = None,
        category: str | None = None,
        timezone: str = "UTC",
    ) -> Transactions:
        """A table from a pandas DataFrame's columns (named by the keyword arguments).

        A time-zone-aware ``at`` column is converted to UTC; a naive one is refused, since it
        does not say which instants it means. A polars frame or an Arrow table is refused with
        the constructor that reads it (:meth:`from_polars`, :meth:`from_arrow`).
        """
        _require_frame_of("pandas", frame, "from_pandas")
        names = {
            "customer_id": customer_id,
            "at": at,
            "amount": amount,
            "refund": refund,
            "discount": discount,
            "order_id": order_id,
            "category": category,
        }
        for role, name in names.items():
            if name is not None and name not in frame.columns:
                raise DataError(f"no such column in the frame (as {role})", column=name)
        stamps = frame[at]
        tz = getattr(getattr(stamps, "dt", None), "tz", None)
        if tz is None:
            raise DataError(
                "naive timestamps; localise them first (Series.dt.tz_localize)", column=at
            )
        instants = stamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")

        def get(name: str | None) -> Any:
            return None if name is None else frame[name].to_numpy()

        return cls.from_arrays(
            frame[customer_id].to_numpy(),
            instants,
            frame[amount].to_numpy(),
            refund=get(refund),
            discount=get(discount),
            order_id=get(order_id),
            category=get(category),
            timezone=timezone,
        )

    @classmethod
    def from_arrow(
        cls,
        table: Any,
        *,
        customer_id: str = "customer_id",
        at: str = "at",
        amount: str = "amount",
        refund: str | None = None,
        discount: str | None = None,
        order_id: str | None = None,
        category: str | None = None,
        timezone: str = "UTC",
    ) -> Transactions:
        """A table from a ``pyarrow.Table`` or ``RecordBatch`` (needs the ``arrow`` extra).

        ``at`` must be an Arrow timestamp with a time zone (naive timestamps are refused, as in
        :meth:`from_pandas`). Numeric columns of one chunk without nulls are read without a
        copy before the table takes its own; a null anywhere is an error naming the column.
        """
        pa = arrow()
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if not isinstance(table, pa.Table):
            _require_frame_of("pyarrow", table, "from_arrow")
            raise DataError(f"expected a pyarrow.Table, got {_type_name(table)}", column="table")
        names = {
            "customer_id": customer_id,
            "at": at,
            "amount": amount,
            "refund": refund,
            "discount": discount,
            "order_id": order_id,
            "category": category,
        }
        for role, name in names.items():
            if name is not None and name not in table.column_names:
                raise DataError(f"no such column in the table (as {role})", column=name)
        stamps = table.column(at)
        if not pa.types.is_timestamp(stamps.type):
            raise DataError(
                f"expected timestamps with a time zone, got Arrow type {stamps.type}", column=at
            )
        if stamps.type.tz is None:
            raise DataError(
                "naive timestamps; give them a time zone (e.g. cast to timestamp[us, UTC])",
                column=at,
            )

        def get(name: str | None) -> Any:
            if name is None:
                return None
            column = table.column(name)
            if column.null_count:
                raise DataError(f"{column.null_count} missing values (nulls)", column=name)
            return column.to_numpy()

        instants = stamps.cast(pa.timestamp("us", tz="UTC"))
        if instants.null_count:
            raise DataError(f"{instants.null_count} missing instants (nulls)", column=at)
        return cls.from_arrays(
            get(customer_id),
            instants.to_numpy().astype("datetime64[us]", copy=False),
            get(amount),
            refund=get(refund),
            discount=get(discount),
            order_id=get(order_id),
            category=get(category),
            timezone=timezone,
        )

    @classmethod
    def from_polars(
        cls,
        frame: Any,
        *,
        customer_id: str = "customer_id",
        at: str = "at",
        amount: str = "amount",
        refund: str | None = None,
        discount: str | None = None,
        order_id: str | None = None,
        category: str | None = None,
        timezone: str = "UTC",
    ) -> Transactions:
        """A table from a polars DataFrame (needs the ``polars`` and ``arrow`` extras).

        ``at`` must be a ``Datetime`` with a time zone; the frame is read through Arrow, which
        shares polars' memory for numeric columns. Arguments as in :meth:`from_arrow`.
        """
        _require_frame_of("polars", frame, "from_polars")
        arrow()  # polars hands its columns over through pyarrow: a MissingExtra without it
        return cls.from_arrow(
            frame.to_arrow(),
            customer_id=customer_id,
            at=at,
            amount=amount,
            refund=refund,
            discount=discount,
            order_id=order_id,
            category=category,
            timezone=timezone,
        )


_READERS = {"pandas": "from_pandas", "polars": "from_polars", "pyarrow": "from_arrow"}


def _type_name(value: object) -> str:
    kind = type(value)
    return f"{kind.__module__.split('.')[0]}.{kind.__qualname__}"


def _require_frame_of(library: str, frame: object, method: str) -> None:
    """A clear error when ``frame`` comes from another library than ``method`` reads."""
    origin = type(frame).__module__.split(".")[0]
    if origin == library:
        return
    other = _READERS.get(origin)
    hint = f"; use Transactions.{other}" if other else ""
    raise DataError(
        f"Transactions.{method} reads a {library} frame, got {_type_name(frame)}{hint}",
        column="frame",
    )
