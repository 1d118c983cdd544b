"""Reading a shop's order export as events, and writing CSV that spreadsheets cannot exploit.

:func:`read_orders` turns a CSV (or, with the ``excel`` extra, an ``.xlsx``) export into
``OrderPlaced`` / ``OrderPaid`` / ``OrderCancelled`` / ``OrderRefunded`` / ``OrderDelivered``
events and one ``CustomerRegistered`` per buyer, with event ids derived from the order ids, so
importing the same file twice records nothing new. Two presets map the columns: ``"generic"``
(English headers) and ``"taobao"`` (a Taobao/Tmall seller export with Chinese headers).

Every problem is reported by row and column; by default one bad row refuses the whole file.
"""

from __future__ import annotations

import codecs
import csv
import io
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

import attrs

from lifecycle._display import field_table, one_line
from lifecycle._time import valid_zone_name, zone
from lifecycle.customer import ContactPoint, Profile
from lifecycle.errors import ImportFailed, InvalidEvent, MissingExtra
from lifecycle.events import (
    CustomerRegistered,
    Event,
    OrderCancelled,
    OrderDelivered,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
)

__all__ = [
    "PRESETS",
    "ColumnMapping",
    "OrderImport",
    "RowProblem",
    "read_orders",
    "safe_cell",
    "write_csv",
]


@attrs.frozen
class RowProblem:
    """What is wrong with one row: its line number (the header is line 1) and column."""

    row: int
    column: str | None
    problem: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column!r}" if self.column else "")
        return f"{where}: {self.problem}"


@attrs.frozen(kw_only=True)
class ColumnMapping:
    """Which header holds which fact. Only ``order_id``, ``customer_id``, ``amount`` and
    ``placed_at`` are required; the others may be ``None`` when the export lacks them.

    ``status_*`` hold the status texts that mean paid-and-open, closed (cancelled) and
    completed (delivered); ``paid_amount`` (what the buyer actually paid) wins over ``amount``
    (what was due) when both are present.
    """

    order_id: str
    customer_id: str
    amount: str
    placed_at: str
    paid_amount: str | None = None
    paid_at: str | None = None
    status: str | None = None
    refund: str | None = None
    delivered_at: str | None = None
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    item: str | None = None
    category: str | None = None
    currency: str | None = None
    unpaid_statuses: frozenset[str] = frozenset()
    closed_statuses: frozenset[str] = frozenset()
    completed_statuses: frozenset[str] = frozenset()

    def required(self) -> tuple[str, ...]:
        return (self.order_id, self.customer_id, self.amount, self.placed_at)


#: The column presets: a generic English export and a Taobao/Tmall seller export.
PRESETS: Mapping[str, ColumnMapping] = {
    "generic": ColumnMapping(
        order_id="order_id",
        customer_id="customer_id",
        amount="amount",
        placed_at="placed_at",
        paid_amount="paid_amount",
        paid_at="paid_at",
        status="status",
        refund="refund",
        delivered_at="delivered_at",
        name="name",
        phone="phone",
        email="email",
        item="item",
        category="category",
        currency="currency",
        unpaid_statuses=frozenset({"pending", "unpaid"}),
        closed_statuses=frozenset({"cancelled", "canceled", "closed"}),
        completed_statuses=frozenset({"completed", "delivered"}),
    ),
    "taobao": ColumnMapping(
        order_id="订单编号",
        customer_id="买家会员名",
        amount="买家应付货款",
        paid_amount="买家实际支付金额",
        placed_at="订单创建时间",
        paid_at="订单付款时间",
        status="订单状态",
        refund="退款金额",
        delivered_at="确认收货时间",
        name="收货人姓名",
        phone="联系手机",
        item="宝贝标题",
        category="宝贝种类",
        unpaid_statuses=frozenset({"等待买家付款"}),
        closed_statuses=frozenset({"交易关闭"}),
        completed_statuses=frozenset({"交易成功"}),
    ),
}

_DEFAULT_ZONES = {"generic": "UTC", "taobao": "Asia/Shanghai"}
_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d",
)
#: Cells longer than this are refused: no honest order export has them.
MAX_CELL = 10_000


@attrs.frozen
class OrderImport:
    """The events read from a file, and the rows left out (only with ``skip_bad``)."""

    events: tuple[Event, ...]
    orders: int
    customers: int
    rejected: tuple[RowProblem, ...]

    def __repr__(self) -> str:
        return one_line(
            "OrderImport",
            f"{self.orders:,} orders",
            f"{self.customers:,} customers",
            f"{len(self.events):,} events",
            f"{len(self.rejected):,} rows rejected",
        )

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [
            ("orders", f"{self.orders:,}"),
            ("customers", f"{self.customers:,}"),
            ("events", f"{len(self.events):,}"),
            ("rows rejected", f"{len(self.rejected):,}"),
        ]
        rows += [("rejected", str(p)) for p in self.rejected[:10]]
        return field_table(rows, caption="Order import")


def safe_cell(value: object) -> str:
    """``value`` as CSV cell text that no spreadsheet runs as a formula.

    Text starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading
    apostrophe (the OWASP advice for CSV injection); numbers are left alone.
    """
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        try:
            Decimal(text)
        except InvalidOperation:
            return "'" + text
    return text


def write_csv(out: TextIO, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Write rows as CSV with every cell made safe by :func:`safe_cell`."""
    writer = csv.writer(out)
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])


# -- reading --------------------------------------------------------------------------------------


def _decode(raw: bytes, encoding: str | None) -> str:
    if encoding is not None:
        try:
            return raw.decode(encoding)
        except LookupError:
            raise ImportFailed(f"unknown encoding {encoding!r}") from None
        except UnicodeDecodeError as e:
            raise ImportFailed(f"not valid {encoding} at byte {e.start}") from None
    for bom, name in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if raw.startswith(bom):
            try:
                return raw.decode(name)
            except UnicodeDecodeError as e:
                raise ImportFailed(
                    f"the file starts as {name.upper()} but breaks at byte {e.start} "
                    "(truncated or mixed encodings?)"
                ) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030")  # a superset of GBK and GB2312
    except UnicodeDecodeError as e:
        raise ImportFailed(
            f"the file is neither UTF-8 nor GB18030/GBK (bad byte at {e.start}); "
            "give encoding= if you know it"
        ) from None


def _rows_from_csv(text: str) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    if "\x00" in text:
        raise ImportFailed("the file holds NUL bytes: not a CSV text file")
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFailed("the file is empty") from None
    except csv.Error as e:
        raise ImportFailed(f"row 1: {e}") from None

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for row in reader:
                yield reader.line_num, row
        except csv.Error as e:
            raise ImportFailed(f"row {reader.line_num}: {e}") from None

    return [h.strip().lstrip("\ufeff") for h in header], rows()


def _rows_from_excel(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    try:
        import openpyxl
    except ImportError as e:
        raise MissingExtra(package="openpyxl", extra="excel", feature="reading Excel files") from e
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many kinds for a damaged file
        raise ImportFailed(f"{path}: not a readable Excel file ({type(e).__name__})") from None
    try:
        values = list(book.worksheets[0].iter_rows(values_only=True))
    finally:
        book.close()
    if not values:
        raise ImportFailed(f"{path}: the sheet is empty")
    header = ["" if v is None else str(v).strip() for v in values[0]]

    def cell(v: object) -> str:
        if isinstance(v, datetime):
            return v.strftime("%Y-%m-%d %H:%M:%S")
        return "" if v is None else str(v)

    def rows() -> Iterator[tuple[int, list[str]]]:
        for i, row in enumerate(values[1:], start=2):
            yield i, [cell(v) for v in row]

    return header, rows()


class _Row:
    """One row's cells by header, with parsers that record what is wrong."""

    def __init__(self, line: int, cells: Mapping[str, str], tz: Any, problems: list[RowProblem]):
        self.line, self.cells, self.tz, self.problems = line, cells, tz, problems

    def text(self, column: str | None, *, required: bool = False) -> str | None:
        if column is None:
            return None
        value = self.cells.get(column, "").strip()
        if len(value) > MAX_CELL:
            self.problems.append(
                RowProblem(self.line, column, f"longer than {MAX_CELL} characters")
            )
            return None
        if value.startswith("'") and len(value) > 1 and value[1] in "=+-@":
            value = value[1:]  # a cell our own exports made safe
        if not value:
            if required:
                self.problems.append(RowProblem(self.line, column, "empty"))
            return None
        return value

    def money(self, column: str | None, *, required: bool = False) -> Decimal | None:
        value = self.text(column, required=required)
        if value is None:
            return None
        cleaned = value.replace(",", "").replace("¥", "").replace("￥", "").replace("$", "").strip()
        try:
            amount = Decimal(cleaned)
        except InvalidOperation:
            self.problems.append(RowProblem(self.line, column, f"not an amount: {value[:40]!r}"))
            return None
        if not amount.is_finite() or amount < 0:
            self.problems.append(
                RowProblem(self.line, column, f"not an amount >= 0: {value[:40]!r}")
            )
            return None
        return amount

    def instant(self, column: str | None, *, required: bool = False) -> datetime | None:
        value = self.text(column, required=required)
        if value is None:
            return None
        parsed: datetime | None = None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            for fmt in _TIME_FORMATS:
                try:
                    parsed = datetime.strptime(value, fmt)  # noqa: DTZ007  # zone added below
                    break
                except ValueError:
                    continue
        if parsed is None:
            self.problems.append(
                RowProblem(self.line, column, f"not a date and time: {value[:40]!r}")
            )
            return None
        if parsed.tzinfo is None:
            # A wall time in the file's zone; in a DST fold the earlier instant is taken.
            parsed = parsed.replace(tzinfo=self.tz)
        return parsed


def read_orders(
    source: str | Path,
    *,
    preset: str = "generic",
    mapping: ColumnMapping | Mapping[str, str] | None = None,
    tz: str | None = None,
    currency: str = "CNY",
    encoding: str | None = None,
    skip_bad: bool = False,
    rejected_to: str | Path | None = None,
    progress: TextIO | None = None,
) -> OrderImport:
    """Read an order export as events.

    Args:
        source: a CSV file (UTF-8 with or without BOM, or GB18030/GBK) or an ``.xlsx`` file.
        preset: ``"generic"`` or ``"taobao"``: the column mapping to start from.
        mapping: a :class:`ColumnMapping`, or a dict of fields to headers that overrides the
            preset's (e.g. ``{"customer_id": "buyer"}``).
        tz: the IANA zone the file's times are written in (default: UTC for the generic preset,
            Asia/Shanghai for Taobao); times that carry an offset keep it.
        currency: the currency of the amounts, unless a currency column says otherwise.
        encoding: the file's encoding, when guessing is not enough.
        skip_bad: leave bad rows out (they are listed in ``rejected`` and, with
            ``rejected_to``, written there as CSV) instead of refusing the whole file.
        progress: where to draw a progress line (default: stderr, only when it is a terminal).

    Raises:
        ImportFailed: the file cannot be read, or (without ``skip_bad``) has bad rows: all of
            them are listed, and no event is returned.
    """
    if preset not in PRESETS:
        raise ImportFailed(f"unknown preset {preset!r}; use one of {sorted(PRESETS)}")
    cols = _mapping(preset, mapping)
    zone_name = tz or _DEFAULT_ZONES[preset]
    if not valid_zone_name(zone_name):
        raise ImportFailed(f"not an IANA time zone name: {zone_name!r}")
    path = Path(source)
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            header, rows = _rows_from_excel(path)
        else:
            header, rows = _rows_from_csv(_decode(path.read_bytes(), encoding))
    except OSError as e:
        raise ImportFailed(f"cannot read {path}: {e.strerror}") from None
    missing = [c for c in cols.required() if c not in header]
    if missing:
        raise ImportFailed(
            f"{path.name}: missing column(s) {missing}; the file has {header[:12]}"
            + (" ..." if len(header) > 12 else "")
        )
    bar = _Progress(progress if progress is not None else sys.stderr, path.name)
    events: dict[str, Event] = {}
    customers: dict[str, Profile] = {}
    first_seen: dict[str, datetime] = {}
    problems: list[RowProblem] = []
    bad_rows: list[tuple[int, list[str]]] = []
    orders = 0
    tzinfo = zone(zone_name)
    for line, values in rows:
        bar.tick()
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            problems.append(
                RowProblem(line, None, f"has {len(values)} cells, the header has {len(header)}")
            )
            bad_rows.append((line, values))
            continue
        row_problems: list[RowProblem] = []
        parsed = _order_events(
            _Row(line, dict(zip(header, values, strict=True)), tzinfo, row_problems), cols, currency
        )
        if row_problems or parsed is None:
            problems.extend(row_problems)
            bad_rows.append((line, values))
            continue
        cid, profile, at, new = parsed
        clash = next((e for e in new if e.event_id in events and events[e.event_id] != e), None)
        if clash is not None:
            problems.append(
                RowProblem(
                    line,
                    cols.order_id,
                    f"order {getattr(clash, 'order_id', '?')!r} appears twice with different data",
                )
            )
            bad_rows.append((line, values))
            continue
        if new[0].event_id not in events:  # the same order twice, identical, counts once
            orders += 1
        for event in new:
            events[event.event_id] = event
        if profile is not None:
            customers[cid] = customers.get(cid, Profile()).merge(profile)
        if cid not in first_seen or at < first_seen[cid]:
            first_seen[cid] = at
    bar.done()
    if problems and not skip_bad:
        raise ImportFailed(f"{path.name}: {len(problems)} bad row(s), nothing imported", problems)
    if bad_rows and rejected_to is not None:
        by_line = {p.row: p for p in problems}
        try:
            with open(rejected_to, "w", encoding="utf-8", newline="") as f:
                write_csv(
                    f,
                    ["row", "problem", *header],
                    ([line, str(by_line.get(line, "")), *cells] for line, cells in bad_rows),
                )
        except OSError as e:
            raise ImportFailed(
                f"cannot write the rejected rows to {rejected_to}: {e.strerror}"
            ) from None
    registered = [
        CustomerRegistered(
            customer_id=cid, at=first_seen[cid], profile=customers.get(cid, Profile())
        )
        for cid in sorted(first_seen)
    ]
    return OrderImport(
        events=(*registered, *events.values()),
        orders=orders,
        customers=len(first_seen),
        rejected=tuple(problems),
    )


def _mapping(preset: str, mapping: ColumnMapping | Mapping[str, str] | None) -> ColumnMapping:
    base = PRESETS[preset]
    if mapping is None:
        return base
    if isinstance(mapping, ColumnMapping):
        return mapping
    fields = {f.name for f in attrs.fields(ColumnMapping)}
    unknown = sorted(set(mapping) - fields)
    if unknown:
        raise ImportFailed(f"unknown mapping field(s) {unknown}; use {sorted(fields)}")
    changes: dict[str, Any] = dict(mapping)
    return attrs.evolve(base, **changes)


def _order_events(
    row: _Row, cols: ColumnMapping, default_currency: str
) -> tuple[str, Profile | None, datetime, list[Event]] | None:
    order_id = row.text(cols.order_id, required=True)
    cid = row.text(cols.customer_id, required=True)
    due = row.money(cols.amount, required=True)
    paid_amount = row.money(cols.paid_amount)
    placed_at = row.instant(cols.placed_at, required=True)
    paid_at = row.instant(cols.paid_at)
    delivered_at = row.instant(cols.delivered_at)
    refund = row.money(cols.refund)
    status = row.text(cols.status)
    currency = row.text(cols.currency) or default_currency
    item, category = row.text(cols.item), row.text(cols.category)
    name, phone, email = row.text(cols.name), row.text(cols.phone), row.text(cols.email)
    if row.problems or order_id is None or cid is None or due is None or placed_at is None:
        return None
    amount = paid_amount if paid_amount is not None else due
    extra: dict[str, Any] = {}
    if item:
        extra["items"] = (item,)
    if category:
        extra["categories"] = (category,)
    new: list[Event] = []
    try:
        new.append(
            OrderPlaced(
                customer_id=cid,
                at=placed_at,
                order_id=order_id,
                amount=due,
                currency=currency,
                **extra,
            )
        )
        unpaid = status is not None and status in cols.unpaid_statuses
        if paid_at is not None and not unpaid:
            if paid_at < placed_at:
                row.problems.append(RowProblem(row.line, cols.paid_at, "paid before it was placed"))
                return None
            new.append(
                OrderPaid(
                    customer_id=cid,
                    at=paid_at,
                    order_id=order_id,
                    amount=amount,
                    currency=currency,
                    **extra,
                )
            )
            if refund:
                if refund > amount:
                    row.problems.append(
                        RowProblem(
                            row.line, cols.refund, f"refund {refund} exceeds the {amount} paid"
                        )
                    )
                    return None
                new.append(
                    OrderRefunded(
                        customer_id=cid,
                        at=paid_at,
                        order_id=order_id,
                        amount=refund,
                        currency=currency,
                    )
                )
            closed = status is not None and status in cols.closed_statuses
            if closed and not refund:
                new.append(OrderCancelled(customer_id=cid, at=paid_at, order_id=order_id))
            if delivered_at is not None and not closed:
                new.append(
                    OrderDelivered(
                        customer_id=cid, at=max(delivered_at, paid_at), order_id=order_id
                    )
                )
        elif status is not None and status in cols.closed_statuses:
            new.append(OrderCancelled(customer_id=cid, at=placed_at, order_id=order_id))
        contacts = []
        if phone:
            contacts.append(ContactPoint(channel="sms", address=phone))
        if email:
            contacts.append(ContactPoint(channel="email", address=email))
        profile = Profile(name=name, contacts=tuple(contacts)) if (name or contacts) else None
    except InvalidEvent as e:
        row.problems.append(RowProblem(row.line, e.field, e.detail))
        return None
    return cid, profile, placed_at, new


class _Progress:
    """A one-line progress count on a terminal; silent otherwise."""

    def __init__(self, out: TextIO, label: str):
        self.out, self.label, self.count = out, label, 0
        self.live = bool(getattr(out, "isatty", lambda: False)())

    def tick(self) -> None:
        self.count += 1
        if self.live and self.count % 5000 == 0:
            self.out.write(f"\r{self.label}: {self.count:,} rows")
            self.out.flush()

    def done(self) -> None:
        if self.live and self.count >= 5000:
            self.out.write(f"\r{self.label}: {self.count:,} rows\n")
            self.out.flush()
