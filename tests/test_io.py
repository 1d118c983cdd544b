"""Importing order exports: presets, encodings, bad rows, idempotency, and safe CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lifecycle as lc
from lifecycle.errors import ImportFailed
from lifecycle.io import read_orders, safe_cell, write_csv

SH = ZoneInfo("Asia/Shanghai")

TAOBAO_HEADER = [
    "订单编号",
    "买家会员名",
    "买家应付货款",
    "买家实际支付金额",
    "订单状态",
    "订单创建时间",
    "订单付款时间",
    "退款金额",
    "收货人姓名",
    "联系手机",
    "宝贝标题",
    "宝贝种类",
]
TAOBAO_ROWS = [
    [
        "1001",
        "小王",
        "199.00",
        "189.00",
        "交易成功",
        "2026-11-11 00:05:01",
        "2026-11-11 00:06:10",
        "0.00",
        "王小明",
        "+8613800000001",
        "龙井茶",
        "1",
    ],
    [
        "1002",
        "小王",
        "59.90",
        "59.90",
        "交易关闭",
        "2026-11-12 10:00:00",
        "2026-11-12 10:01:00",
        "59.90",
        "王小明",
        "+8613800000001",
        "茶杯",
        "1",
    ],
    [
        "1003",
        "阿丽",
        "88.00",
        "",
        "等待买家付款",
        "2026-11-13 21:00:00",
        "",
        "",
        "李丽",
        "+8613900000002",
        "茶具",
        "1",
    ],
    [
        "1004",
        "阿丽",
        "120.00",
        "120.00",
        "交易关闭",
        "2026-11-14 09:00:00",
        "",
        "",
        "李丽",
        "+8613900000002",
        "茶叶",
        "1",
    ],
]


def write(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    buf = io.StringIO()
    csv.writer(buf).writerows([header, *rows])
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk"])
def test_a_taobao_export_in_any_common_encoding(tmp_path: Path, encoding: str) -> None:
    got = read_orders(
        write(tmp_path / "orders.csv", TAOBAO_HEADER, TAOBAO_ROWS, encoding), preset="taobao"
    )
    assert (got.orders, got.customers, got.rejected) == (4, 2, ())
    kinds = [(type(e).__name__, getattr(e, "order_id", None)) for e in got.events]
    assert ("OrderPaid", "1001") in kinds
    assert ("OrderRefunded", "1002") in kinds  # closed after payment, refunded in full
    assert ("OrderPaid", "1003") not in kinds  # waiting for payment
    assert ("OrderCancelled", "1004") in kinds  # closed without payment
    paid = next(e for e in got.events if isinstance(e, lc.OrderPaid) and e.order_id == "1001")
    assert paid.amount == Decimal("189.00")  # what the buyer actually paid
    assert paid.at == datetime(2026, 11, 11, 0, 6, 10, tzinfo=SH)
    assert paid.items == ("龙井茶",)
    reg = next(
        e for e in got.events if isinstance(e, lc.CustomerRegistered) and e.customer_id == "小王"
    )
    assert reg.profile.name == "王小明"
    contact = reg.profile.contact("sms")
    assert contact is not None
    assert not contact.allows("marketing")


def test_importing_twice_records_nothing_new(tmp_path: Path) -> None:
    path = write(tmp_path / "orders.csv", TAOBAO_HEADER, TAOBAO_ROWS)
    shop = lc.Lifecycle.in_memory(clock=lc.FixedClock(datetime(2026, 12, 1, tzinfo=SH)))
    first = shop.record(read_orders(path, preset="taobao").events)
    again = shop.record(read_orders(path, preset="taobao").events)
    assert first.recorded > 0
    assert again.recorded == 0
    assert shop.assess("小王").stage is lc.Stage.FIRST_PURCHASE


def test_a_generic_export_with_a_mapping(tmp_path: Path) -> None:
    header = ["id", "buyer", "total", "created", "paid", "status", "email"]
    rows = [
        [
            "o1",
            "c1",
            "10.50",
            "2026-03-08T01:30:00",
            "2026-03-08T01:31:00",
            "completed",
            "a@example.com",
        ],
        ["o2", "c2", "1,299.00", "2026-03-09 12:00", "", "pending", ""],
    ]
    got = read_orders(
        write(tmp_path / "x.csv", header, rows),
        mapping={
            "order_id": "id",
            "customer_id": "buyer",
            "amount": "total",
            "placed_at": "created",
            "paid_at": "paid",
            "email": "email",
        },
        tz="America/New_York",
    )
    paid = [e for e in got.events if isinstance(e, lc.OrderPaid)]
    assert [p.order_id for p in paid] == ["o1"]
    assert paid[0].at.utcoffset() is not None
    placed = next(e for e in got.events if isinstance(e, lc.OrderPlaced) and e.order_id == "o2")
    assert placed.amount == Decimal("1299.00")


def test_bad_rows_are_all_reported_and_nothing_is_imported(tmp_path: Path) -> None:
    rows = [
        *TAOBAO_ROWS,
        [
            "1005",
            "",
            "10",
            "10",
            "交易成功",
            "2026-11-15 10:00:00",
            "2026-11-15 10:00:01",
            "",
            "",
            "",
            "",
            "",
        ],
        ["1006", "小张", "-3", "", "交易成功", "2026-11-15 10:00:00", "", "", "", "", "", ""],
        ["1007", "小张", "10", "10", "交易成功", "yesterday", "", "", "", "", "", ""],
        [
            "1008",
            "小张",
            "10",
            "10",
            "交易成功",
            "2026-11-15 10:00:00",
            "2026-11-15 10:00:01",
            "20",
            "",
            "",
            "",
            "",
        ],
        ["1009", "小张"],
    ]
    path = write(tmp_path / "bad.csv", TAOBAO_HEADER, rows)
    with pytest.raises(ImportFailed) as info:
        read_orders(path, preset="taobao")
    problems = {(p.row, p.column) for p in info.value.problems}
    # Row 9 (paid 10 net of a refund of 20) is sound: 买家实际支付金额 is net of refunds.
    assert problems == {
        (6, "买家会员名"),
        (7, "买家应付货款"),
        (8, "订单创建时间"),
        (10, None),
    }
    assert "row 6, column '买家会员名': empty" in str(info.value)


def test_skip_bad_imports_the_rest_and_writes_the_rejects(tmp_path: Path) -> None:
    rows = [
        *TAOBAO_ROWS,
        ["1005", "", "10", "10", "交易成功", "2026-11-15 10:00:00", "", "", "", "", "", ""],
    ]
    rejects = tmp_path / "rejects.csv"
    got = read_orders(
        write(tmp_path / "o.csv", TAOBAO_HEADER, rows),
        preset="taobao",
        skip_bad=True,
        rejected_to=rejects,
    )
    assert got.orders == 4
    assert [p.row for p in got.rejected] == [6]
    text = rejects.read_text(encoding="utf-8")
    assert "1005" in text
    assert "empty" in text


def test_a_missing_column_names_what_the_file_has(tmp_path: Path) -> None:
    path = write(tmp_path / "o.csv", ["订单编号", "买家会员名"], [["1", "a"]])
    with pytest.raises(ImportFailed, match="missing column"):
        read_orders(path, preset="taobao")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\xff\xfe\x00\x00garbage\x00", "NUL|neither"),
        (b"\x81\x30\x81", "missing column|neither|empty"),
    ],
)
def test_unreadable_files_are_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(ImportFailed, match=message):
        read_orders(path, preset="taobao")


def test_unknown_presets_zones_and_mapping_fields() -> None:
    with pytest.raises(ImportFailed, match="preset"):
        read_orders("x.csv", preset="amazon")
    with pytest.raises(ImportFailed, match="time zone"):
        read_orders("x.csv", tz="Mars/Base")
    with pytest.raises(ImportFailed, match="mapping"):
        read_orders("x.csv", mapping={"buyer": "x"})
    with pytest.raises(ImportFailed, match="cannot read"):
        read_orders("/nonexistent/orders.csv")


def test_an_excel_export(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(TAOBAO_HEADER)
    for row in TAOBAO_ROWS:
        sheet.append(row)
    path = tmp_path / "orders.xlsx"
    book.save(path)
    got = read_orders(path, preset="taobao")
    assert got.orders == 4


FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


@pytest.mark.parametrize("cell", FORMULAS)
def test_csv_we_write_never_starts_a_formula(cell: str) -> None:
    assert safe_cell(cell).startswith("'")
    buf = io.StringIO()
    write_csv(buf, ["h"], [[cell]])
    assert buf.getvalue().splitlines()[1].lstrip('"').startswith("'")


def test_numbers_stay_numbers() -> None:
    assert safe_cell("-12.5") == "-12.5"
    assert safe_cell(3) == "3"
    assert safe_cell(None) == ""


cells = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            *FORMULAS,
            '"',
            '""',
            "a,b",
            "x\ny",
            "¥1,299.00",
            "2026-02-29 10:00",
            "1e309",
            "NaN",
            "9" * 400,
        ]
    ),
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.lists(cells, min_size=0, max_size=14), max_size=8),
    st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "latin-1"]),
    st.booleans(),
)
def test_malformed_files_give_only_clear_errors(
    tmp_path: Path, rows: list[list[str]], encoding: str, truncate: bool
) -> None:
    buf = io.StringIO()
    csv.writer(buf).writerows([TAOBAO_HEADER, *rows])
    raw = buf.getvalue().encode(encoding, errors="replace")
    if truncate:
        raw = raw[: len(raw) // 2]
    path = tmp_path / "fuzz.csv"
    path.write_bytes(raw)
    try:
        got = read_orders(path, preset="taobao")
    except ImportFailed:
        return
    for e in got.events:
        assert isinstance(e, lc.Event)


def test_an_unwritable_rejects_file_is_a_clear_error(tmp_path: Path) -> None:
    rows = [
        *TAOBAO_ROWS,
        ["1005", "", "10", "10", "交易成功", "2026-11-15 10:00:00", "", "", "", "", "", ""],
    ]
    rejects = tmp_path / "rejects"
    rejects.mkdir()
    with pytest.raises(ImportFailed, match="cannot write"):
        read_orders(
            write(tmp_path / "o.csv", TAOBAO_HEADER, rows),
            preset="taobao",
            skip_bad=True,
            rejected_to=rejects,
        )


def test_the_same_order_twice_counts_once(tmp_path: Path) -> None:
    got = read_orders(
        write(tmp_path / "o.csv", TAOBAO_HEADER, [TAOBAO_ROWS[0], TAOBAO_ROWS[0]]), preset="taobao"
    )
    assert got.orders == 1


def test_an_excel_file_is_closed_after_reading(tmp_path: Path) -> None:
    import os

    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    book.active.append(TAOBAO_HEADER)
    book.active.append(TAOBAO_ROWS[0])
    path = tmp_path / "orders.xlsx"
    book.save(path)
    assert read_orders(path, preset="taobao").orders == 1
    fds = Path("/proc/self/fd")
    if fds.exists():
        open_files = {os.path.realpath(fds / fd) for fd in os.listdir(fds)}
        assert str(path.resolve()) not in open_files
