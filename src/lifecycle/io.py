"""Reading a shop's order export as orders and events, and writing CSV that spreadsheets cannot
exploit.

:func:`read_orders` reads a CSV (or, with the ``excel`` extra, an ``.xlsx``) export as it comes
from the platform: one :class:`ExportedOrder` per order (rows of one order's line items are
merged), each turned into events by :func:`order_events` with ids derived from the order id.
:meth:`lifecycle.Lifecycle.import_orders` records them day after day: an order seen again with
a newer status becomes new events (a payment, a refund, a cancellation, a shipment), never a
changed old one, so re-importing a file records nothing.

The presets (:data:`PRESETS`) read Taobao/Tmall (the classic 订单报表 and the current 千牛
export), Shopify and WooCommerce exports; a :class:`ColumnMapping` (from a dict, ``--map`` text
or a TOML file) reads the rest. Every problem is reported by row and column; by default one bad row
refuses the whole file.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import hmac
import io
import re
import sys
import tomllib
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from os import PathLike
from pathlib import Path
from typing import Any, Final, TextIO

import attrs

from lifecycle._bounds import check_address, check_amount, check_name
from lifecycle._display import field_table, one_line
from lifecycle._time import require_aware, to_utc, valid_zone_name, zone
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
    OrderShipped,
    ProfileUpdated,
)
from lifecycle.vocabulary import Purpose

__all__ = [
    "PRESETS",
    "PRESET_DEFAULTS",
    "ColumnMapping",
    "ExportedOrder",
    "ImportPreview",
    "ImportSummary",
    "OrderImport",
    "RowProblem",
    "ShopDefaults",
    "customer_profiles",
    "load_mapping",
    "merge_profile",
    "normalise_email",
    "normalise_phone",
    "order_events",
    "parse_mapping",
    "preview_orders",
    "profile_events",
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


def _unquote(value: str) -> str:
    """A cell without the quoting spreadsheets and exports wrap around ids and numbers:
    ``="2800001072071915"`` and ``'13544676165``."""
    v = value.strip()
    if v.startswith('="') and v.endswith('"') and len(v) >= 3:
        return v[2:-1].strip()
    if v.startswith("'") and len(v) > 1:
        return v[1:].strip()
    return v


def _norm_status(value: str) -> str:
    return unicodedata.normalize("NFKC", _unquote(value)).strip().casefold()


def _statuses(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        raise ImportFailed("give statuses as a list of texts, not one text")
    return frozenset(_norm_status(v) for v in value)


def _key_columns(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(c.strip() for c in value.split(",") if c.strip())
    return tuple(value)


@attrs.frozen(kw_only=True)
class ColumnMapping:
    """Which header holds which fact, and what the texts and amounts of the export mean.

    A header may name alternatives, ``"总金额|买家应付货款"``: the first of them that the file
    has and that is not empty on a row gives the value. ``order_id``, ``amount`` and
    ``placed_at`` are required, and a customer: the ``customer_id`` column or, when the export
    has none, ``customer_key`` (columns whose values together name the customer, e.g.
    ``("收货人姓名", "联系手机")``; hashed with ``hash_customer_key``).

    Amounts: ``amount`` is what was due; ``paid_amount`` what the buyer paid (default: the due
    amount), net of refunds when ``paid_is_net`` (Taobao's 买家实际支付金额) and gross otherwise;
    ``refund`` the total refunded so far. ``line_id`` names a line-item column: rows of one order
    with distinct line ids are its lines, and their amounts add up (``line_amounts``) or, for
    exports that write the order's totals on its first row only, do not.

    Statuses: ``unpaid_statuses`` mean placed and not paid, ``closed_statuses`` cancelled or
    closed, ``refunded_statuses`` refunded in full (when the refund column is empty or zero),
    ``completed_statuses`` finished, ``paid_statuses`` paid: for exports with no payment time
    (WooCommerce's), a row in one of them counts as paid when it was placed. Texts are compared
    after Unicode NFKC normalisation, so full-width punctuation matches.
    """

    order_id: str
    customer_id: str | None
    amount: str
    placed_at: str
    paid_amount: str | None = None
    paid_at: str | None = None
    status: str | None = None
    refund: str | None = None
    shipped_at: str | None = None
    delivered_at: str | None = None
    cancelled_at: str | None = None
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    marketing: str | None = None
    item: str | None = None
    category: str | None = None
    currency: str | None = None
    discount: str | None = None
    line_id: str | None = None
    line_amounts: bool = False
    paid_is_net: bool = False
    customer_key: tuple[str, ...] = attrs.field(default=(), converter=_key_columns)
    hash_customer_key: bool = False
    unpaid_statuses: frozenset[str] = attrs.field(default=frozenset(), converter=_statuses)
    closed_statuses: frozenset[str] = attrs.field(default=frozenset(), converter=_statuses)
    refunded_statuses: frozenset[str] = attrs.field(default=frozenset(), converter=_statuses)
    completed_statuses: frozenset[str] = attrs.field(default=frozenset(), converter=_statuses)
    paid_statuses: frozenset[str] = attrs.field(default=frozenset(), converter=_statuses)

    def required(self) -> tuple[str, ...]:
        """The required headers (each possibly with alternatives), the customer's included."""
        customer = self.customer_key or ((self.customer_id,) if self.customer_id else ())
        return (self.order_id, *customer, self.amount, self.placed_at)


@attrs.frozen(kw_only=True)
class ShopDefaults:
    """What a platform's exports imply about the shop: the zone its times are written in, and
    the language its customers read (``None``: the export does not say)."""

    timezone: str | None = None
    language: str | None = None


_TAOBAO_UNPAID = ("等待买家付款",)
_TAOBAO_CLOSED = (
    "交易关闭",
    "付款以前，卖家或买家主动关闭交易",
    "付款以后用户退款成功，交易自动关闭",
)
_TAOBAO_DONE = ("交易成功",)

_TAOBAO = ColumnMapping(
    order_id="订单编号",
    customer_id="买家会员名",
    amount="总金额|买家应付货款",
    paid_amount="买家实际支付金额",
    paid_is_net=True,
    placed_at="订单创建时间",
    paid_at="订单付款时间",
    status="订单状态",
    refund="退款金额",
    shipped_at="发货时间",
    delivered_at="确认收货时间",
    name="收货人姓名",
    phone="联系手机",
    item="宝贝标题",
    unpaid_statuses=_TAOBAO_UNPAID,
    closed_statuses=_TAOBAO_CLOSED,
    completed_statuses=_TAOBAO_DONE,
)

#: The column presets. ``taobao`` and ``tmall``: the classic seller-centre 订单报表
#: (ExportOrderList); ``qianniu``: the current 千牛 order export, one row per sub-order and no
#: buyer column; ``shopify``: the Shopify admin's orders export, one row per line item;
#: ``woocommerce``: the Customer / Order / Coupon Export extension's "Default" and "Default -
#: One Row per Item" order CSV; ``generic``: English headers named like the fields. The howto pages give the source of each
#: column's meaning.
PRESETS: Final[Mapping[str, ColumnMapping]] = {
    "generic": ColumnMapping(
        order_id="order_id",
        customer_id="customer_id",
        amount="amount",
        placed_at="placed_at",
        paid_amount="paid_amount",
        paid_at="paid_at",
        status="status",
        refund="refund",
        shipped_at="shipped_at",
        delivered_at="delivered_at",
        cancelled_at="cancelled_at",
        name="name",
        phone="phone",
        email="email",
        marketing="accepts_marketing",
        item="item",
        category="category",
        currency="currency",
        discount="discount",
        unpaid_statuses=("pending", "unpaid"),
        closed_statuses=("cancelled", "canceled", "closed", "voided"),
        refunded_statuses=("refunded",),
        completed_statuses=("completed", "delivered"),
    ),
    "taobao": _TAOBAO,
    "tmall": _TAOBAO,
    "qianniu": ColumnMapping(
        order_id="主订单编号|订单编号",
        customer_id="买家会员名|买家昵称",
        line_id="子订单编号",
        line_amounts=True,
        amount="买家应付货款",
        paid_amount="买家实付金额|买家实际支付金额",
        paid_is_net=True,
        placed_at="订单创建时间",
        paid_at="订单付款时间",
        status="订单状态",
        refund="退款金额",
        shipped_at="发货时间",
        delivered_at="确认收货时间",
        name="收货人姓名",
        phone="联系手机|收货人手机号",
        item="商品标题|宝贝标题",
        unpaid_statuses=_TAOBAO_UNPAID,
        closed_statuses=_TAOBAO_CLOSED,
        completed_statuses=_TAOBAO_DONE,
    ),
    "shopify": ColumnMapping(
        order_id="Name",
        customer_id="Email|Phone",
        amount="Total",
        placed_at="Created at",
        paid_at="Paid at",
        status="Financial Status",
        refund="Refunded Amount",
        shipped_at="Fulfilled at",
        cancelled_at="Cancelled at",
        name="Billing Name|Shipping Name",
        phone="Phone|Billing Phone|Shipping Phone",
        email="Email",
        marketing="Accepts Marketing",
        item="Lineitem name",
        currency="Currency",
        discount="Discount Amount",
        unpaid_statuses=("pending", "authorized", "expired"),
        closed_statuses=("voided",),
        refunded_statuses=("refunded",),
    ),
    # The columns of the extension's built-in order formats (their keys are guaranteed stable by
    # its developer documentation); ``date`` is the column of the ``order_date`` key. There is
    # no payment time: processing, completed and refunded are WooCommerce's paid statuses.
    "woocommerce": ColumnMapping(
        order_id="order_id",
        customer_id="billing_email|billing_phone",
        amount="order_total",
        placed_at="date|order_date",
        status="status",
        refund="refunded_total",
        name="billing_full_name|billing_first_name",
        phone="billing_phone",
        email="billing_email",
        item="item_name",
        currency="order_currency",
        discount="discount_total",
        unpaid_statuses=("pending", "on-hold", "failed", "checkout-draft"),
        closed_statuses=("cancelled",),
        refunded_statuses=("refunded",),
        completed_statuses=("completed",),
        paid_statuses=("processing", "completed", "refunded"),
    ),
}

#: What each preset proposes for the shop: the zone its times are in and its customers'
#: language. The first import into a new shop records them (see ``Lifecycle.import_orders``).
PRESET_DEFAULTS: Final[Mapping[str, ShopDefaults]] = {
    "generic": ShopDefaults(),
    "taobao": ShopDefaults(timezone="Asia/Shanghai", language="zh"),
    "tmall": ShopDefaults(timezone="Asia/Shanghai", language="zh"),
    "qianniu": ShopDefaults(timezone="Asia/Shanghai", language="zh"),
    "shopify": ShopDefaults(language="en"),
    # WordPress writes the site's local time and the export does not say which zone that is;
    # stores sell in every language.
    "woocommerce": ShopDefaults(),
}

_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S %z",
    "%Y-%m-%d %H:%M %z",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d",
)
#: Cells longer than this are refused: no honest order export has them.
MAX_CELL = 10_000
_YES = frozenset({"yes", "y", "true", "1", "是", "subscribed", "opted_in"})
_NO = frozenset({"no", "n", "false", "0", "否", "not_subscribed", "unsubscribed", "opted_out"})
_CN_MOBILE = re.compile(r"1[3-9]\d{9}")
_EMAIL = re.compile(r"[^@\s,;<>()\[\]\"']+@[^@\s,;<>()\[\]\"']+\.[^@\s,;<>()\[\]\"'.]+")


# -- what a file holds ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ExportedOrder:
    """One order as an export shows it, its rows merged: the state it has reached.

    ``paid`` is the gross amount paid (net exports have their refunds added back), ``refunded``
    the total refunded so far; ``closed`` says the order was cancelled or closed. ``row`` is the
    first row the order was read from.
    """

    order_id: str
    customer_id: str
    row: int
    placed_at: datetime
    amount: Decimal
    currency: str
    paid_at: datetime | None = None
    paid: Decimal | None = None
    refunded: Decimal = Decimal(0)
    closed: bool = False
    closed_at: datetime | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    discount: Decimal = Decimal(0)
    items: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    profile: Profile | None = attrs.field(default=None, repr=False)


@attrs.frozen
class OrderImport:
    """What :func:`read_orders` read: the orders, their events for a new shop, and the rows
    left out (only with ``skip_bad``).

    ``events`` are the registrations and order events of a shop that holds none of these
    customers yet; :meth:`lifecycle.Lifecycle.import_orders` works out what a shop that has
    seen earlier files still needs. ``defaults`` is what the file implies about the shop (the
    zone its times were read in, the preset's language).
    """

    events: tuple[Event, ...]
    orders: int
    customers: int
    rejected: tuple[RowProblem, ...]
    exported: tuple[ExportedOrder, ...] = attrs.field(default=(), repr=False)
    defaults: ShopDefaults = ShopDefaults()
    source: str = ""

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


@attrs.frozen(kw_only=True)
class ImportSummary:
    """What an import did, order by order and customer by customer.

    Attributes:
        orders_new: orders the shop did not know.
        orders_updated: known orders that reached a newer state (paid, refunded, cancelled,
            shipped, delivered).
        orders_unchanged: known orders with nothing new.
        refused: rows left out: bad rows of the file, and orders that contradict what earlier
            imports recorded (only with ``skip_bad``; otherwise the import is refused whole).
        customers_new, customers_updated: customers registered, and profiles updated.
        fresh_histories: orders of erased customers that started a fresh history.
        recorded: events recorded.
        defaults: the shop defaults this import recorded, if it was the first.
    """

    source: str
    orders_new: int
    orders_updated: int
    orders_unchanged: int
    refused: tuple[RowProblem, ...]
    customers_new: int
    customers_updated: int
    fresh_histories: int
    recorded: int
    defaults: ShopDefaults | None = None

    @property
    def orders(self) -> int:
        """Orders read and imported (new, updated or unchanged)."""
        return self.orders_new + self.orders_updated + self.orders_unchanged

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        return {
            "file": self.source,
            "orders": {
                "new": self.orders_new,
                "updated": self.orders_updated,
                "unchanged": self.orders_unchanged,
                "refused": len(self.refused),
            },
            "customers": {"new": self.customers_new, "updated": self.customers_updated},
            "fresh_histories": self.fresh_histories,
            "recorded": self.recorded,
            "refused": [
                {"row": p.row, "column": p.column, "problem": p.problem} for p in self.refused
            ],
            "defaults": None if self.defaults is None else attrs.asdict(self.defaults),
        }

    def line(self, lang: str = "en") -> str:
        """One line saying what was new, updated, unchanged and refused."""
        if lang == "zh":
            return (
                f"订单：新增 {self.orders_new:,}，更新 {self.orders_updated:,}，"
                f"未变 {self.orders_unchanged:,}，拒绝 {len(self.refused):,}；"
                f"客户：新增 {self.customers_new:,}，资料更新 {self.customers_updated:,}；"
                f"写入事件 {self.recorded:,} 条"
            )
        return (
            f"orders: {self.orders_new:,} new, {self.orders_updated:,} updated, "
            f"{self.orders_unchanged:,} unchanged, {len(self.refused):,} refused; "
            f"customers: {self.customers_new:,} new, {self.customers_updated:,} updated; "
            f"{self.recorded:,} events recorded"
        )


@attrs.frozen(kw_only=True)
class ImportPreview:
    """The first orders of a file as the import reads them, and which columns it used.

    ``columns`` maps each field to the header that gives it; ``ignored`` lists the headers no
    field reads.
    """

    columns: Mapping[str, str]
    ignored: tuple[str, ...]
    orders: tuple[ExportedOrder, ...]
    problems: tuple[RowProblem, ...]
    defaults: ShopDefaults

    def __repr__(self) -> str:
        return one_line(
            "ImportPreview",
            f"{len(self.orders):,} orders",
            f"{len(self.columns):,} columns read",
            f"{len(self.ignored):,} ignored",
            f"{len(self.problems):,} problems",
        )

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [(field, header) for field, header in self.columns.items()]
        rows += [("ignored", ", ".join(self.ignored))]
        rows += [("problem", str(p)) for p in self.problems[:10]]
        return field_table(rows, caption="Import preview")


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


# -- mappings -------------------------------------------------------------------------------------

_FIELDS: Final = {f.name: f for f in attrs.fields(ColumnMapping)}
_FLAGS: Final = frozenset({"line_amounts", "paid_is_net", "hash_customer_key"})
_LISTS: Final = frozenset(
    {
        "customer_key",
        "unpaid_statuses",
        "closed_statuses",
        "refunded_statuses",
        "completed_statuses",
        "paid_statuses",
    }
)


def _mapping(preset: str, mapping: ColumnMapping | Mapping[str, Any] | None) -> ColumnMapping:
    if preset not in PRESETS:
        raise ImportFailed(f"unknown preset {preset!r}; use one of {sorted(PRESETS)}")
    base = PRESETS[preset]
    if mapping is None:
        return base
    if isinstance(mapping, ColumnMapping):
        return mapping
    unknown = sorted(set(mapping) - set(_FIELDS))
    if unknown:
        raise ImportFailed(f"unknown mapping field(s) {unknown}; use {sorted(_FIELDS)}")
    changes: dict[str, Any] = {}
    for name, value in mapping.items():
        if name in _FLAGS:
            if not isinstance(value, bool):
                raise ImportFailed(f"mapping field {name!r} must be true or false")
        elif name in _LISTS:
            if not isinstance(value, str) and not (
                isinstance(value, Sequence | frozenset | set)
                and all(isinstance(v, str) and v for v in value)
            ):
                raise ImportFailed(f"mapping field {name!r} must be a list of texts")
        elif value is not None and (not isinstance(value, str) or not value.strip()):
            raise ImportFailed(f"mapping field {name!r} must name a column")
        changes[name] = value.strip() if isinstance(value, str) and name not in _LISTS else value
    return attrs.evolve(base, **changes)


def parse_mapping(text: str) -> dict[str, Any]:
    """A mapping from ``--map`` text: ``"order_id=订单号,paid_at=付款时间"``.

    Values name a header (``A|B`` for alternatives); ``customer_key`` takes ``+``-joined
    columns; ``paid_is_net``, ``line_amounts`` and ``hash_customer_key`` take true/false.
    """
    out: dict[str, Any] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ImportFailed(f"--map: {part.strip()!r} is not field=column")
        if key in _FLAGS:
            if value.lower() not in ("true", "false"):
                raise ImportFailed(f"--map: {key} takes true or false, not {value!r}")
            out[key] = value.lower() == "true"
        elif key in _LISTS:
            out[key] = tuple(v.strip() for v in value.split("+") if v.strip())
        else:
            out[key] = value
    _mapping("generic", out)  # unknown fields are named now, not at import time
    return out


def load_mapping(path: str | PathLike[str]) -> dict[str, Any]:
    """A mapping from a TOML file: ``field = "column"`` lines (lists for ``customer_key`` and
    the status sets, booleans for the flags), optionally under a ``[columns]`` table."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ImportFailed(f"cannot read the mapping {path}: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ImportFailed(f"{path}: not a TOML file ({e})") from None
    if isinstance(data.get("columns"), dict):
        data = {**{k: v for k, v in data.items() if k != "columns"}, **data["columns"]}
    _mapping("generic", data)
    return data


# -- cells ----------------------------------------------------------------------------------------


def normalise_phone(value: str) -> str | None:
    """A phone number in E.164 form (``+8613800000001``), or ``None`` when it is none.

    Chinese mobile numbers get +86 whether or not they carry it; other numbers need their
    ``+`` (or ``00``) country code. Masked numbers (``138****0001``), landlines without a
    country code and text are not numbers one can send to. Of several numbers in a cell, the
    first usable one is taken.
    """
    text = unicodedata.normalize("NFKC", _unquote(value))
    for part in re.split(r"[,;/，；、\s]{2,}|[,;/，；、]", text):
        cleaned = re.sub(r"[\s\-().]", "", part.strip())
        if cleaned.startswith("00"):
            cleaned = "+" + cleaned[2:]
        if cleaned.startswith("+"):
            digits = cleaned[1:]
            if not digits.isdigit() or not 8 <= len(digits) <= 15:
                continue
            if digits.startswith("86") and not _CN_MOBILE.fullmatch(digits[2:]):
                continue
            return "+" + digits
        if _CN_MOBILE.fullmatch(cleaned):
            return "+86" + cleaned
        if cleaned.startswith("86") and _CN_MOBILE.fullmatch(cleaned[2:]):
            return "+" + cleaned
    return None


def normalise_email(value: str) -> str | None:
    """An e-mail address, trimmed and lower-cased, or ``None`` when ``value`` is not one."""
    text = unicodedata.normalize("NFKC", _unquote(value)).strip().lower()
    return text if _EMAIL.fullmatch(text) else None


def _secret_digest(secret: bytes, text: str) -> str:
    return hmac.new(secret, text.encode("utf-8"), hashlib.sha256).hexdigest()


# -- decoding -------------------------------------------------------------------------------------


def _gb_plausible(text: str) -> bool:
    """Whether GB18030-decoded ``text`` reads as Chinese: nearly every non-ASCII character in
    GB2312 (Big5 and Shift_JIS bytes decode to rare or GBK-only characters) and no kana."""
    wide = [c for c in text[:20000] if ord(c) > 127]
    if not wide:
        return True
    if any("\u3040" <= c <= "\u30ff" for c in wide):
        return False
    common = 0
    for c in wide:
        try:
            c.encode("gb2312")
            common += 1
        except UnicodeEncodeError:
            pass
    return common >= 0.9 * len(wide)


def _detected(raw: bytes) -> str | None:
    """The encoding charset-normalizer (the ``encodings`` extra) guesses, if installed."""
    try:
        from charset_normalizer import from_bytes
    except ImportError:
        return None
    best = from_bytes(raw).best()
    return None if best is None else str(best.encoding)


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
    gb: str | None
    try:
        gb = raw.decode("gb18030")  # a superset of GBK and GB2312
    except UnicodeDecodeError:
        gb = None
    if gb is not None and _gb_plausible(gb):
        return gb
    guess = _detected(raw)
    if guess is not None:
        if guess.replace("_", "").lower() in ("gb2312", "gbk", "gb18030", "hz"):
            guess = "gb18030"
        try:
            return raw.decode(guess)
        except (LookupError, UnicodeDecodeError):
            pass
    hint = (
        "give encoding= (--encoding) if you know it"
        if guess is not None
        else "give encoding= (--encoding) if you know it, or install lifecycle[encodings] "
        "to detect it"
    )
    raise ImportFailed(
        "the file is neither UTF-8 nor GB18030/GBK (Big5, Shift_JIS or another encoding?); " + hint
    )


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

    return [_header_cell(h) for h in header], rows()


def _header_cell(value: object) -> str:
    # Header cells come with trailing spaces (订单付款时间 ), a BOM or full-width spaces.
    return "" if value is None else str(value).replace("\ufeff", "").strip()


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
    header = [_header_cell(v) for v in values[0]]

    def cell(v: object) -> str:
        if isinstance(v, datetime):
            return v.strftime("%Y-%m-%d %H:%M:%S")
        return "" if v is None else str(v)

    def rows() -> Iterator[tuple[int, list[str]]]:
        for i, row in enumerate(values[1:], start=2):
            yield i, [cell(v) for v in row]

    return header, rows()


# -- rows -----------------------------------------------------------------------------------------


class _Columns:
    """The mapping resolved against a file's header: the columns each field reads."""

    def __init__(self, cols: ColumnMapping, header: Sequence[str]):
        present = set(header)
        self.by_field: dict[str, tuple[str, ...]] = {}
        for name in _FIELDS:
            spec = getattr(cols, name)
            if name in _FLAGS or name in _LISTS or spec is None:
                continue
            alternatives = [a.strip() for a in str(spec).split("|") if a.strip()]
            self.by_field[name] = tuple(a for a in alternatives if a in present)
        self.key = tuple(cols.customer_key)
        missing_key = [c for c in self.key if c not in present]
        if missing_key:
            raise ImportFailed(f"customer key column(s) {missing_key} not in the file")

    def __getitem__(self, name: str) -> tuple[str, ...]:
        return self.by_field.get(name, ())

    def label(self, name: str) -> str | None:
        found = self.by_field.get(name)
        return found[0] if found else None

    def used(self) -> set[str]:
        return {c for cs in self.by_field.values() for c in cs} | set(self.key)


class _Row:
    """One row's cells by header, with parsers that record what is wrong."""

    def __init__(
        self,
        line: int,
        cells: Mapping[str, str],
        columns: _Columns,
        tz: Any,
        problems: list[RowProblem],
    ):
        self.line, self.cells, self.columns, self.tz = line, cells, columns, tz
        self.problems = problems

    def problem(self, field: str | None, text: str) -> None:
        column = None if field is None else (self.columns.label(field) or field)
        self.problems.append(RowProblem(self.line, column, text))

    def raw(self, column: str) -> str:
        value = self.cells.get(column, "").strip()
        if len(value) > MAX_CELL:
            self.problems.append(
                RowProblem(self.line, column, f"longer than {MAX_CELL} characters")
            )
            return ""
        return value

    def text(self, field: str, *, required: bool = False, clean: bool = True) -> str | None:
        """The first non-empty cell among the field's columns."""
        for column in self.columns[field]:
            value = self.raw(column)
            if clean:
                value = _unquote(value)
            elif value.startswith("'") and len(value) > 1 and value[1] in "=+-@":
                value = value[1:]  # a cell our own exports made safe
            if value:
                return value
        if required:
            self.problem(field, "empty")
        return None

    def money(self, field: str, *, required: bool = False) -> Decimal | None:
        value = self.text(field, required=required)
        if value is None:
            return None
        cleaned = unicodedata.normalize("NFKC", value)
        for mark in (",", "¥", "$", "€", "£", "元", " "):
            cleaned = cleaned.replace(mark, "")
        try:
            amount = Decimal(cleaned)
        except InvalidOperation:
            self.problem(field, f"not an amount: {value[:40]!r}")
            return None
        if not amount.is_finite() or amount < 0:
            self.problem(field, f"not an amount >= 0: {value[:40]!r}")
            return None
        return amount

    def instant(self, field: str, *, required: bool = False) -> datetime | None:
        value = self.text(field, required=required)
        if value is None:
            return None
        value = unicodedata.normalize("NFKC", value)
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
            self.problem(field, f"not a date and time: {value[:40]!r}")
            return None
        if parsed.tzinfo is None:
            # A wall time in the file's zone; in a DST fold the earlier instant is taken.
            parsed = parsed.replace(tzinfo=self.tz)
        return parsed

    def flag(self, field: str) -> bool | None:
        value = self.text(field)
        if value is None:
            return None
        folded = unicodedata.normalize("NFKC", value).strip().casefold()
        if folded in _YES:
            return True
        if folded in _NO:
            return False
        self.problem(field, f"not yes or no: {value[:40]!r}")
        return None


#: Where an order stands, as far as a row shows: placed and unpaid, open (paid or not said),
#: closed. A later state wins when rows or files are merged.
_UNPAID, _OPEN, _CLOSED = 0, 1, 2


@attrs.define
class _Obs:
    """What one row (or one line item, its rows merged) says about an order."""

    line: int
    customer_id: str
    placed_at: datetime
    due: Decimal | None
    paid: Decimal | None  # gross
    paid_at: datetime | None
    refunded: Decimal
    state: int | None  # None: the row does not say
    full_refund: bool
    closed_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    currency: str
    discount: Decimal | None
    items: list[str]
    categories: list[str]
    name: str | None
    phone: str | None
    email: str | None
    marketing: bool | None


def _customer(row: _Row, cols: ColumnMapping, secret: bytes) -> str | None:
    """The customer's id: the buyer column, or the customer key (normalised, maybe hashed)."""
    if row.columns.key:
        parts = []
        for column in row.columns.key:
            value = _unquote(row.raw(column))
            if not value:
                row.problems.append(
                    RowProblem(row.line, column, "empty (part of the customer key)")
                )
                return None
            parts.append(_identity(column, value, row.columns))
        joined = "|".join(parts)
        if cols.hash_customer_key:
            return "h-" + _secret_digest(secret, joined)[:24]
        return joined
    text = row.text("customer_id", required=True)
    if text is None:
        return None
    column = next(c for c in row.columns["customer_id"] if _unquote(row.raw(c)))
    return _identity(column, text, row.columns)


def _has_value(row: _Row, field: str) -> bool:
    return any(_unquote(row.raw(c)) for c in row.columns[field])


def _identity(column: str, value: str, columns: _Columns) -> str:
    """A customer key part as one form of it: phones in E.164, e-mails lower-cased."""
    if column in columns["phone"]:
        return normalise_phone(value) or value
    if column in columns["email"]:
        return normalise_email(value) or value.strip().lower()
    return value


def _observe(
    row: _Row, cols: ColumnMapping, currency: str, secret: bytes, known: _Obs | None
) -> _Obs | None:
    """One row read into an observation; problems go to ``row.problems``.

    ``known`` is what earlier rows of the same order said: a line-item row that leaves the
    customer or the order's time empty takes them from there.
    """
    if known is not None and not _has_value(row, "customer_id") and not row.columns.key:
        cid: str | None = known.customer_id
    else:
        cid = _customer(row, cols, secret)
    due = row.money("amount")
    paid_col = row.money("paid_amount")
    placed_at = row.instant("placed_at", required=known is None)
    if placed_at is None and known is not None and not row.problems:
        placed_at = known.placed_at
    paid_at = row.instant("paid_at")
    refund = row.money("refund")
    status = row.text("status")
    closed_at = row.instant("cancelled_at")
    shipped_at = row.instant("shipped_at")
    delivered_at = row.instant("delivered_at")
    discount = row.money("discount")
    marketing = row.flag("marketing")
    phone_text = row.text("phone")
    email_text = row.text("email")
    item, category = row.text("item", clean=False), row.text("category", clean=False)
    name = row.text("name", clean=False)
    cur = (row.text("currency") or currency).strip().upper()
    if row.problems or cid is None or placed_at is None:
        return None
    norm = None if status is None else _norm_status(status)
    state = None if norm is None else _OPEN
    if norm is not None and norm in cols.unpaid_statuses:
        state = _UNPAID
    if (norm is not None and norm in cols.closed_statuses) or closed_at is not None:
        state = _CLOSED
    full_refund = norm is not None and norm in cols.refunded_statuses and not refund
    refunded = refund or Decimal(0)
    if paid_at is None and norm is not None and norm in cols.paid_statuses:
        paid_at = placed_at  # the export has no payment time; the status says it was paid
    paid: Decimal | None = None
    if paid_at is not None and state != _UNPAID:
        if paid_col is not None:
            paid = paid_col + refunded if cols.paid_is_net else paid_col
        else:
            paid = due
    return _Obs(
        line=row.line,
        customer_id=cid,
        placed_at=placed_at,
        due=due,
        paid=paid,
        paid_at=paid_at if paid is not None else None,
        refunded=refunded,
        state=state,
        full_refund=full_refund,
        closed_at=closed_at,
        shipped_at=shipped_at,
        delivered_at=delivered_at,
        currency=cur,
        discount=discount,
        items=[item] if item else [],
        categories=[category] if category else [],
        name=name,
        phone=None if phone_text is None else normalise_phone(phone_text),
        email=None if email_text is None else normalise_email(email_text),
        marketing=marketing,
    )


def _merge_obs(a: _Obs, b: _Obs, *, money: bool = True) -> str | None:
    """Fold ``b`` (another row of the same order or line) into ``a``; the text of a
    contradiction, if any. Each fact keeps its first value; the state, the refunds and the
    times of progress move forward only. Without ``money`` the amounts are left alone (the
    lines of a line-item export each have their own)."""
    if a.customer_id != b.customer_id:
        return "the same order with another customer on an earlier row"
    if money:
        if a.paid is not None and b.paid is not None and a.paid != b.paid:
            return f"the same order paid {a.paid} on an earlier row and {b.paid} here"
        if a.currency != b.currency and b.due is not None:
            return "the same order in another currency on an earlier row"
        a.due = a.due if a.due is not None else b.due
        if a.paid is None and b.paid is not None:
            a.paid, a.paid_at = b.paid, b.paid_at
        a.refunded = max(a.refunded, b.refunded)
    elif a.paid_at is None:
        a.paid_at = b.paid_at
    a.full_refund = a.full_refund or b.full_refund
    if b.state is not None:
        a.state = b.state if a.state is None else max(a.state, b.state)
    for name in ("closed_at", "shipped_at", "delivered_at", "discount", "name", "phone", "email"):
        if getattr(a, name) is None:
            setattr(a, name, getattr(b, name))
    if b.marketing is not None:
        a.marketing = b.marketing
    a.items.extend(i for i in b.items if i not in a.items)
    a.categories.extend(c for c in b.categories if c not in a.categories)
    return None


@attrs.define
class _Draft:
    """An order being read: its order-level observation and, for line-item exports, lines."""

    order_id: str
    first: _Obs
    lines: dict[str, _Obs] = attrs.field(factory=dict)


def _finish(draft: _Draft, cols: ColumnMapping, problems: list[RowProblem]) -> ExportedOrder | None:
    """The draft as an order, checked (the one place per-order rules live)."""
    o = draft.first
    if draft.lines:
        lines = list(draft.lines.values())
        o.due = sum((x.due or Decimal(0) for x in lines), Decimal(0))
        paid_lines = [x for x in lines if x.paid is not None]
        o.paid = sum((x.paid or Decimal(0) for x in paid_lines), Decimal(0)) if paid_lines else None
        o.paid_at = min((x.paid_at for x in paid_lines if x.paid_at), default=None)
        o.refunded = sum((x.refunded for x in lines), Decimal(0))
        o.discount = sum((x.discount or Decimal(0) for x in lines), Decimal(0))
        # Closed when every line is; unpaid while no line is open; otherwise the order stands
        # for its open lines.
        states = {_OPEN if x.state is None else x.state for x in lines}
        o.state = (
            _CLOSED
            if states == {_CLOSED}
            else _UNPAID
            if _OPEN not in states and _UNPAID in states
            else _OPEN
        )
    if o.due is None:
        problems.append(RowProblem(o.line, _label(cols.amount), "empty"))
        return None
    paid = o.paid
    if paid is not None and o.state == _UNPAID:
        paid = None
    refunded = o.refunded
    if paid is not None and o.full_refund and refunded == 0:
        refunded = paid
    problem = _check_order(o, paid, refunded)
    if problem is not None:
        column, text = problem
        problems.append(RowProblem(o.line, _label(getattr(cols, column, None)) or column, text))
        return None
    profile = _profile_of(o)
    try:
        return ExportedOrder(
            order_id=draft.order_id,
            customer_id=o.customer_id,
            row=o.line,
            placed_at=o.placed_at,
            amount=o.due,
            currency=o.currency,
            paid_at=o.paid_at if paid is not None else None,
            paid=paid,
            refunded=refunded if paid is not None else Decimal(0),
            closed=o.state == _CLOSED,
            closed_at=o.closed_at,
            shipped_at=o.shipped_at,
            delivered_at=o.delivered_at,
            discount=o.discount or Decimal(0),
            items=tuple(o.items),
            categories=tuple(o.categories),
            profile=profile,
        )
    except InvalidEvent as e:
        problems.append(RowProblem(o.line, e.field, e.detail))
        return None


def _label(spec: str | None) -> str | None:
    return None if spec is None else spec.split("|")[0].strip()


def _check_order(o: _Obs, paid: Decimal | None, refunded: Decimal) -> tuple[str, str] | None:
    """What is wrong with an order as read, as (field, text); ``None`` when nothing is.

    The one place per-order validation lives: extend it here. Instants, amounts, names and
    addresses meet the bounds every event meets (:mod:`lifecycle._bounds`), so a row the
    events would refuse is a bad row, not a failed import.
    """
    if len(o.currency) != 3 or not o.currency.isascii() or not o.currency.isalpha():
        return "currency", f"not a three-letter currency code: {o.currency[:10]!r}"
    instants = {
        "placed_at": o.placed_at,
        "paid_at": o.paid_at,
        "closed_at": o.closed_at,
        "shipped_at": o.shipped_at,
        "delivered_at": o.delivered_at,
    }
    amounts = {"amount": o.due, "paid": paid, "refund": refunded, "discount": o.discount}
    try:
        for name, at in instants.items():
            if at is not None:
                require_aware(at, name)
        for name, amount in amounts.items():
            if amount is not None:
                check_amount(amount, name)
        if o.name is not None:
            check_name(o.name, "name")
        if o.phone:
            check_address("sms", o.phone, "phone")
        if o.email:
            check_address("email", o.email, "email")
    except InvalidEvent as e:
        return e.field or "row", e.detail
    if paid is not None and o.paid_at is not None and o.paid_at < o.placed_at:
        return "paid_at", "paid before it was placed"
    if paid is not None and refunded > paid:
        return "refund", f"refund {refunded} exceeds the {paid} paid"
    return None


def _profile_of(o: _Obs) -> Profile | None:
    contacts = []
    if o.phone:
        contacts.append(ContactPoint(channel="sms", address=o.phone))
    if o.email:
        consent = {Purpose.TRANSACTIONAL}
        if o.marketing:
            consent.add(Purpose.MARKETING)
        contacts.append(ContactPoint(channel="email", address=o.email, consent=consent))
    if not (o.name or contacts):
        return None
    return Profile(name=o.name, contacts=tuple(contacts))


def merge_profile(current: Profile, update: Profile) -> Profile:
    """``current`` with what ``update`` sets, contact points merged channel by channel (an
    address or consent given on one channel leaves the others as they were)."""
    merged = current.merge(update)
    if update.contacts and current.contacts:
        by_channel = {c.channel: c for c in current.contacts}
        by_channel.update({c.channel: c for c in update.contacts})
        merged = attrs.evolve(merged, contacts=tuple(by_channel.values()))
    return merged


# -- reading --------------------------------------------------------------------------------------


@attrs.frozen
class _Read:
    header: tuple[str, ...]
    columns: _Columns
    orders: tuple[ExportedOrder, ...]
    problems: tuple[RowProblem, ...]
    bad_rows: tuple[tuple[int, list[str]], ...]
    zone_name: str


def _read(
    source: str | Path,
    *,
    preset: str,
    mapping: ColumnMapping | Mapping[str, Any] | None,
    tz: str | None,
    currency: str,
    encoding: str | None,
    customer_key: Sequence[str] | str | None,
    hash_customer_key: bool | None,
    key_secret: bytes | None,
    progress: TextIO | None,
    limit: int | None = None,
) -> _Read:
    cols = _mapping(preset, mapping)
    if customer_key:
        cols = attrs.evolve(cols, customer_key=customer_key)
    if hash_customer_key is not None:
        cols = attrs.evolve(cols, hash_customer_key=hash_customer_key)
    zone_name = tz or PRESET_DEFAULTS[preset].timezone or "UTC"
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
    columns = _Columns(cols, header)
    customer = cols.customer_id if not cols.customer_key else None
    missing = [
        spec
        for spec in cols.required()
        if spec not in columns.key and spec != customer and not _has(spec, header)
    ]
    if missing:
        if customer is not None and not columns["customer_id"]:
            missing.insert(1, customer)
        raise ImportFailed(
            f"{path.name}: missing column(s) {missing}; the file has {list(header[:12])}"
            + (" ..." if len(header) > 12 else "")
        )
    if not cols.customer_key and not columns["customer_id"]:
        wanted = (cols.customer_id or "").replace("|", " or ")
        raise ImportFailed(
            f"{path.name}: no buyer column{f' ({wanted})' if wanted else ''} in this export; "
            "name the customer key, e.g. --customer-key 收货人姓名,联系手机 "
            "(customer_key= in Python; add --hash-customer-key to store a hash)"
        )
    bar = _Progress(progress if progress is not None else sys.stderr, path.name)
    secret = key_secret or b""
    tzinfo = zone(zone_name)
    drafts: dict[str, _Draft] = {}
    problems: list[RowProblem] = []
    bad: dict[int, list[str]] = {}
    bad_orders: set[str] = set()
    rows_of: dict[str, list[tuple[int, list[str]]]] = {}
    lines_mode = cols.line_amounts and bool(columns["line_id"])
    for line, values in rows:
        bar.tick()
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            problems.append(
                RowProblem(line, None, f"has {len(values)} cells, the header has {len(header)}")
            )
            bad[line] = values
            continue
        row_problems: list[RowProblem] = []
        row = _Row(line, dict(zip(header, values, strict=True)), columns, tzinfo, row_problems)
        oid = row.text("order_id", required=True)
        known = drafts.get(oid) if oid is not None else None
        obs = (
            _observe(row, cols, currency, secret, None if known is None else known.first)
            if oid is not None
            else None
        )
        if row_problems or oid is None or obs is None:
            problems.extend(row_problems)
            bad[line] = values
            if oid is not None:
                bad_orders.add(oid)
            continue
        if oid not in drafts and limit is not None and len(drafts) >= limit:
            break
        rows_of.setdefault(oid, []).append((line, values))
        line_id = row.text("line_id") if lines_mode else None
        draft = known
        clash: str | None = None
        if draft is None:
            draft = drafts[oid] = _Draft(
                oid, attrs.evolve(obs, items=list(obs.items), categories=list(obs.categories))
            )
            if line_id is not None:
                draft.lines[line_id] = obs
        else:
            clash = _merge_obs(draft.first, obs, money=line_id is None)
            if clash is None and line_id is not None:
                same_line = draft.lines.get(line_id)
                if same_line is None:
                    draft.lines[line_id] = obs
                else:
                    clash = _merge_obs(same_line, obs)
        if clash is not None:
            problems.append(RowProblem(line, columns.label("order_id"), clash))
            bad[line] = values
            bad_orders.add(oid)
    bar.done()
    orders: list[ExportedOrder] = []
    for oid, draft in drafts.items():
        if oid in bad_orders:
            # One bad row spoils its order: the other rows of it go to the side file too.
            for line, values in rows_of.get(oid, ()):
                bad.setdefault(line, values)
            continue
        found: list[RowProblem] = []
        order = _finish(draft, cols, found)
        if order is None:
            problems.extend(found)
            for line, values in rows_of.get(oid, ()):
                bad.setdefault(line, values)
            continue
        orders.append(order)
    return _Read(
        header=tuple(header),
        columns=columns,
        orders=tuple(orders),
        problems=tuple(sorted(problems, key=lambda p: p.row)),
        bad_rows=tuple(sorted(bad.items())),
        zone_name=zone_name,
    )


def _has(spec: str, header: Sequence[str]) -> bool:
    return any(a.strip() in header for a in spec.split("|"))


def read_orders(
    source: str | Path,
    *,
    preset: str = "generic",
    mapping: ColumnMapping | Mapping[str, Any] | None = None,
    tz: str | None = None,
    currency: str = "CNY",
    encoding: str | None = None,
    skip_bad: bool = False,
    rejected_to: str | Path | None = None,
    customer_key: Sequence[str] | str | None = None,
    hash_customer_key: bool | None = None,
    key_secret: bytes | None = None,
    language: str | None = None,
    with_events: bool = True,
    progress: TextIO | None = None,
) -> OrderImport:
    """Read an order export as orders and events.

    Args:
        source: a CSV file (UTF-8 with or without BOM, GB18030/GBK, or with the ``encodings``
            extra any encoding charset-normalizer recognises) or an ``.xlsx`` file.
        preset: one of :data:`PRESETS`: the column mapping to start from.
        mapping: a :class:`ColumnMapping`, or a dict of fields that overrides the preset's
            (e.g. ``{"customer_id": "buyer"}``; see :func:`parse_mapping`).
        tz: the IANA zone the file's times are written in (default: the preset's, UTC for
            generic and Shopify); times that carry an offset keep it.
        currency: the currency of the amounts, unless a currency column says otherwise.
        encoding: the file's encoding, when guessing is not enough.
        skip_bad: leave bad rows out (they are listed in ``rejected`` and, with
            ``rejected_to``, written there as CSV to be fixed and imported again) instead of
            refusing the whole file.
        customer_key: columns whose values together name the customer (for exports without a
            buyer column); phones and e-mails in them are normalised first.
        hash_customer_key: store a keyed hash of the customer key instead of its text.
        key_secret: the key of that hash (the shop's, from ``Lifecycle.import_orders``).
        language: the shop's language to propose (default: the preset's).
        with_events: work out ``events`` (a new shop's events); ``Lifecycle.import_orders``
            works from the orders and needs none.
        progress: where to draw a progress line (default: stderr, only when it is a terminal).

    Raises:
        ImportFailed: the file cannot be read, or (without ``skip_bad``) has bad rows: all of
            them are listed, and nothing is returned.
    """
    got = _read(
        source,
        preset=preset,
        mapping=mapping,
        tz=tz,
        currency=currency,
        encoding=encoding,
        customer_key=customer_key,
        hash_customer_key=hash_customer_key,
        key_secret=key_secret,
        progress=progress,
    )
    path = Path(source)
    if got.problems and not skip_bad:
        raise ImportFailed(
            f"{path.name}: {len(got.problems)} bad row(s), nothing imported", got.problems
        )
    if got.bad_rows and rejected_to is not None:
        _write_rejected(rejected_to, got.header, got.bad_rows, got.problems)
    events: list[Event] = []
    if with_events:
        for cid, (profile, at) in customer_profiles(got.orders).items():
            events.append(CustomerRegistered(customer_id=cid, at=at, profile=profile))
        for order in got.orders:
            new, _ = order_events(order)
            events.extend(new)
    proposed = PRESET_DEFAULTS[preset]
    return OrderImport(
        events=tuple(events),
        orders=len(got.orders),
        customers=len({o.customer_id for o in got.orders}),
        rejected=got.problems,
        exported=got.orders,
        defaults=ShopDefaults(
            timezone=tz or proposed.timezone, language=language or proposed.language
        ),
        source=str(source),
    )


def _write_rejected(
    to: str | Path,
    header: Sequence[str],
    bad_rows: Sequence[tuple[int, list[str]]],
    problems: Sequence[RowProblem],
) -> None:
    """The bad rows, as the file had them, after a row number and the problem: fix the cells
    and import this file again (the two extra columns are ignored)."""
    by_line: dict[int, list[str]] = {}
    for p in problems:
        by_line.setdefault(p.row, []).append(str(p))
    try:
        with open(to, "w", encoding="utf-8", newline="") as f:
            write_csv(
                f,
                ["row", "problem", *header],
                (
                    [line, "; ".join(by_line.get(line, ["another row of this order is bad"]))]
                    + [_keep_text(v) for v in cells]
                    for line, cells in bad_rows
                ),
            )
    except OSError as e:
        raise ImportFailed(f"cannot write the rejected rows to {to}: {e.strerror}") from None


def _keep_text(value: str) -> str:
    """A cell written back as the text it meant: ``="123"`` becomes ``123``."""
    v = value.strip()
    return v[2:-1] if v.startswith('="') and v.endswith('"') and len(v) >= 3 else value


def preview_orders(
    source: str | Path,
    *,
    rows: int = 5,
    preset: str = "generic",
    mapping: ColumnMapping | Mapping[str, Any] | None = None,
    tz: str | None = None,
    currency: str = "CNY",
    encoding: str | None = None,
    customer_key: Sequence[str] | str | None = None,
    hash_customer_key: bool | None = None,
) -> ImportPreview:
    """The first ``rows`` orders of a file as :func:`read_orders` reads them, with the columns
    it recognised and those it ignores; nothing is refused (problems are listed)."""
    got = _read(
        source,
        preset=preset,
        mapping=mapping,
        tz=tz,
        currency=currency,
        encoding=encoding,
        customer_key=customer_key,
        hash_customer_key=hash_customer_key,
        key_secret=None,
        progress=None,
        limit=rows,
    )
    used = got.columns.used()
    columns = {name: cs[0] for name, cs in got.columns.by_field.items() if cs}
    if got.columns.key:
        columns["customer_key"] = "+".join(got.columns.key)
    proposed = PRESET_DEFAULTS[preset]
    return ImportPreview(
        columns=columns,
        ignored=tuple(h for h in got.header if h and h not in used),
        orders=got.orders[:rows],
        problems=got.problems,
        defaults=ShopDefaults(timezone=tz or proposed.timezone, language=proposed.language),
    )


# -- from orders to events ------------------------------------------------------------------------


def customer_profiles(orders: Iterable[ExportedOrder]) -> dict[str, tuple[Profile, datetime]]:
    """Each customer's profile from their orders (the latest order's details win, channel by
    channel), and their first order's instant."""
    out: dict[str, tuple[Profile, datetime]] = {}
    for o in sorted(orders, key=lambda o: (to_utc(o.placed_at), o.order_id)):
        profile, first = out.get(o.customer_id, (Profile(), o.placed_at))
        if o.profile is not None:
            profile = merge_profile(profile, o.profile)
        out[o.customer_id] = (profile, first)
    return out


def order_events(
    order: ExportedOrder, stored: Sequence[Event] = ()
) -> tuple[list[Event], str | None]:
    """The events that bring what is recorded of an order (``stored``: its events, any
    customer) up to what the export shows, and the text of a contradiction, if any (then no
    event).

    Each fact has one event with an id derived from the order id: the placement, the payment,
    a cancellation, a shipment, a delivery. Refunds are recorded as the export's total grows:
    an ``OrderRefunded`` for the difference, with the new total in its id, so the same total
    seen again records nothing and an older file (a smaller total) changes nothing.
    """
    oid, cid = order.order_id, order.customer_id
    placed = paid = cancelled = shipped = delivered = None
    refunded = Decimal(0)
    for e in stored:
        match e:
            case OrderPlaced():
                placed = placed or e
            case OrderPaid():
                paid = paid or e
            case OrderCancelled():
                cancelled = cancelled or e
            case OrderShipped():
                shipped = shipped or e
            case OrderDelivered():
                delivered = delivered or e
            case OrderRefunded(amount=amount):
                refunded += amount
    if stored:
        cid = stored[0].customer_id
    new: list[Event] = []
    extra: dict[str, Any] = {"items": order.items, "categories": order.categories}
    if placed is None and paid is None:
        new.append(
            OrderPlaced(
                customer_id=cid,
                at=order.placed_at,
                order_id=oid,
                amount=order.amount,
                currency=order.currency,
                discount=order.discount,
                **extra,
            )
        )
    if order.paid is not None and order.paid_at is not None:
        if paid is None:
            paid = OrderPaid(
                customer_id=cid,
                at=order.paid_at,
                order_id=oid,
                amount=order.paid,
                currency=order.currency,
                discount=order.discount,
                **extra,
            )
            new.append(paid)
        elif paid.amount != order.paid or paid.currency != order.currency:
            return [], (
                f"order {oid!r} was paid {paid.currency} {paid.amount} in an earlier import; "
                f"this file says {order.currency} {order.paid}"
            )
        if order.refunded > refunded:
            if order.refunded > paid.amount:
                return (
                    [],
                    f"order {oid!r}: refunds of {order.refunded} exceed the {paid.amount} paid",
                )
            at = order.paid_at
            if order.closed_at is not None and order.closed_at >= order.paid_at:
                at = order.closed_at
            new.append(
                OrderRefunded(
                    customer_id=cid,
                    at=at,
                    order_id=oid,
                    amount=order.refunded - refunded,
                    currency=paid.currency,
                    event_id=f"order_refunded:{oid}:total:{order.refunded.normalize():f}",
                )
            )
            refunded = order.refunded
    fully_refunded = paid is not None and refunded >= paid.amount
    if order.closed and cancelled is None and not fully_refunded:
        start = order.paid_at if paid is not None and order.paid_at else order.placed_at
        at = order.closed_at if order.closed_at is not None and order.closed_at >= start else start
        cancelled = OrderCancelled(customer_id=cid, at=at, order_id=oid)
        new.append(cancelled)
    if paid is not None and order.paid_at is not None:
        if order.shipped_at is not None and shipped is None:
            new.append(
                OrderShipped(customer_id=cid, at=max(order.shipped_at, order.paid_at), order_id=oid)
            )
        if order.delivered_at is not None and delivered is None and cancelled is None:
            new.append(
                OrderDelivered(
                    customer_id=cid, at=max(order.delivered_at, order.paid_at), order_id=oid
                )
            )
    return new, None


def profile_events(
    customer_id: str,
    profile: Profile,
    first_at: datetime,
    last_at: datetime,
    current: Profile | None,
) -> list[Event]:
    """What a customer's profile read from a file adds to the shop: a registration for a new
    customer (``current`` is ``None``), a ``ProfileUpdated`` when the profile changes what the
    shop holds (its id derived from the new profile, so importing it again adds nothing), or
    nothing."""
    if current is None:
        return [CustomerRegistered(customer_id=customer_id, at=first_at, profile=profile)]
    target = merge_profile(current, profile)
    if target == current:
        return []
    digest = hashlib.sha256(repr(_profile_key(target)).encode("utf-8")).hexdigest()[:16]
    stamp = to_utc(last_at).strftime("%Y%m%dT%H%M%S")
    return [
        ProfileUpdated(
            customer_id=customer_id,
            at=last_at,
            profile=target,
            event_id=f"profile_updated:{customer_id}:{stamp}:{digest}",
        )
    ]


def _profile_key(p: Profile) -> tuple[Any, ...]:
    """A stable form of a profile for its update's id."""
    return (
        p.name,
        None if p.gender is None else p.gender.value,
        p.timezone,
        p.locale,
        p.city,
        sorted(p.tags),
        sorted((c.channel, c.address, sorted(q.value for q in c.consent)) for c in p.contacts),
    )


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
