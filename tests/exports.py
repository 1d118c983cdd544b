"""Generated shops written as real platforms export them: the column sets and quirks of the
classic Taobao/Tmall 订单报表, the current 千牛 sub-order export, the Shopify orders export and the
WooCommerce Customer / Order / Coupon Export.

Every value is generated (names from syllables, phones from a seeded generator); nothing comes
from anyone's data. Each order has a timeline, so a file can be written "as exported on day N"
and the test knows what is true on that day, independently of the importer.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

SH = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 1, 9, 0, tzinfo=SH)
CENT = Decimal("0.01")

_SURNAMES = "王李张刘陈杨赵黄周吴"
_GIVEN = "伟芳娜敏静丽强磊洋艳勇军杰娟涛明超秀霞平"
_ITEMS = ("龙井茶", "白茶", "茶杯", "茶具套装", "普洱", "红茶礼盒")
_EN_ITEMS = ("Tea cup", "Green tea", "Teapot", "Gift box", "Oolong")


@dataclass
class Customer:
    key: str  # the buyer nickname (Taobao) or e-mail (Shopify)
    name: str
    phone: str  # 11 digits
    email: str
    marketing: bool


@dataclass
class Order:
    order_id: str
    customer: Customer
    placed_at: datetime
    goods: Decimal
    postage: Decimal
    items: list[tuple[str, Decimal]]  # (title, line amount); lines add up to ``goods``
    pay_day: int | None  # day index on which it was paid (None: never)
    ship_day: int | None = None
    done_day: int | None = None
    close_day: int | None = None  # closed: unpaid → cancelled, paid → refunded in full
    refunds: list[tuple[int, Decimal]] = field(default_factory=list)  # (day, amount)

    @property
    def total(self) -> Decimal:
        return self.goods + self.postage

    def at(self, day: int) -> datetime:
        return self.placed_at + timedelta(days=day, minutes=7)

    # -- the truth on a day -------------------------------------------------------------------
    # Event days count from the order's placement; export days from START.

    def by(self, rel: int | None, day: int) -> bool:
        """Whether what happened ``rel`` days after placement had happened by export ``day``."""
        return rel is not None and (self.placed_at - START).days + rel <= day

    def paid_on(self, day: int) -> bool:
        return self.by(self.pay_day, day)

    def refunded_on(self, day: int) -> Decimal:
        if self.closed_on(day) and self.paid_on(day):
            return self.total
        return sum((a for d, a in self.refunds if self.by(d, day)), Decimal(0))

    def closed_on(self, day: int) -> bool:
        return self.by(self.close_day, day)

    def valid_on(self, day: int) -> bool:
        return self.paid_on(day) and not self.closed_on(day) and self.refunded_on(day) < self.total

    def net_on(self, day: int) -> Decimal:
        return self.total - self.refunded_on(day) if self.valid_on(day) else Decimal(0)

    def status_on(self, day: int) -> str:
        if self.closed_on(day):
            return "交易关闭"
        if not self.paid_on(day):
            return "等待买家付款"
        if self.by(self.done_day, day):
            return "交易成功"
        if self.by(self.ship_day, day):
            return "卖家已发货，等待买家确认"
        return "买家已付款，等待卖家发货"

    def shopify_status_on(self, day: int) -> str:
        if not self.paid_on(day):
            return "voided" if self.closed_on(day) else "pending"
        refunded = self.refunded_on(day)
        if refunded >= self.total:
            return "refunded"
        return "partially_refunded" if refunded else "paid"


def make_shop(seed: int, customers: int = 12, orders: int = 40, days: int = 10) -> list[Order]:
    """A seeded shop: orders placed over ``days`` days, each with its own timeline."""
    rng = random.Random(seed)
    people = []
    for i in range(customers):
        name = rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.randint(1, 2)))
        phone = "1" + rng.choice("3589") + "".join(rng.choice("0123456789") for _ in range(9))
        people.append(
            Customer(
                key=f"buyer_{i:03d}",
                name=name,
                phone=phone,
                email=f"buyer{i:03d}@example.com",
                marketing=rng.random() < 0.5,
            )
        )
    out = []
    for n in range(orders):
        placed = START + timedelta(
            days=rng.randrange(days), hours=rng.randrange(12), minutes=rng.randrange(60)
        )
        lines = [
            (rng.choice(_ITEMS), Decimal(rng.randint(500, 40000)) / 100)
            for _ in range(rng.choice((1, 1, 2, 3)))
        ]
        goods = sum((a for _, a in lines), Decimal(0))
        postage = rng.choice((Decimal(0), Decimal(0), Decimal("8.00")))
        o = Order(
            order_id=str(2800001000000000 + n * 7919),
            customer=rng.choice(people),
            placed_at=placed,
            goods=goods,
            postage=postage,
            items=lines,
            pay_day=None,
        )
        fate = rng.random()
        if fate < 0.15:
            o.close_day = rng.randint(0, 2)  # never paid, closed
        elif fate < 0.25:
            pass  # still waiting for payment
        else:
            o.pay_day = rng.choice((0, 0, 1))
            o.ship_day = o.pay_day + rng.randint(0, 2)
            if rng.random() < 0.7:
                o.done_day = o.ship_day + rng.randint(1, 4)
            roll = rng.random()
            if roll < 0.15:
                o.close_day = o.pay_day + rng.randint(1, 5)  # refunded in full, closed
                o.done_day = None
            elif roll < 0.45:
                first = (o.total * Decimal(rng.randint(5, 40)) / 100).quantize(CENT)
                o.refunds.append((o.pay_day + rng.randint(0, 3), first))
                if rng.random() < 0.4:
                    more = (o.total * Decimal(rng.randint(5, 30)) / 100).quantize(CENT)
                    o.refunds.append((o.pay_day + rng.randint(4, 6), more))
        out.append(o)
    return out


def day_of(o: Order) -> int:
    return (o.placed_at - START).days


def visible(shop: list[Order], day: int) -> list[Order]:
    """The orders an export made on ``day`` (days after START) lists."""
    return [o for o in shop if day_of(o) <= day]


def _t(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


def _csv(header: list[str], rows: list[list[str]], newline: str = "\r\n") -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


# -- Taobao/Tmall classic 订单报表 (ExportOrderList) ------------------------------------------------

#: The classic report's columns, in its order; several headers carry a trailing space, as the
#: platform writes them.
CLASSIC_HEADER = [
    "订单编号",
    "买家会员名",
    "买家支付宝账号",
    "买家应付货款",
    "买家应付邮费",
    "买家支付积分",
    "总金额",
    "返点积分",
    "买家实际支付金额",
    "买家实际支付积分",
    "订单状态",
    "买家留言",
    "收货人姓名",
    "收货地址 ",
    "运送方式",
    "联系电话 ",
    "联系手机",
    "订单创建时间",
    "订单付款时间 ",
    "宝贝标题 ",
    "宝贝种类 ",
    "物流单号 ",
    "物流公司",
    "订单备注",
    "宝贝总数量",
    "店铺Id",
    "店铺名称",
    "订单关闭原因",
    "卖家服务费",
    "买家服务费",
    "发票抬头",
    "是否手机订单",
    "分阶段订单信息",
    "特权订金订单id",
    "是否上传合同照片",
    "是否上传小票",
    "是否代付",
    "定金排名",
    "修改后的sku",
    "修改后的收货地址",
    "异常信息",
    "天猫卡券抵扣",
    "集分宝抵扣",
    "是否是O2O交易",
    "退款金额",
    "预约门店",
    "确认收货时间",
    "打款商家金额",
]


def classic_row(o: Order, day: int) -> list[str]:
    paid = o.paid_on(day)
    refunded = o.refunded_on(day)
    net = (o.total - refunded) if paid else Decimal(0)
    cells = dict.fromkeys(CLASSIC_HEADER, "")
    status = o.status_on(day)
    if status == "交易关闭" and not paid and int(o.order_id) % 2:
        # Some exports spell the close reason out, some with a half-width comma.
        status = "付款以前,卖家或买家主动关闭交易"
    cells.update(
        {
            "订单编号": f'="{o.order_id}"',
            "买家会员名": o.customer.key,
            "买家支付宝账号": "**",
            "买家应付货款": f"{o.goods:.2f}",
            "买家应付邮费": f"{o.postage:.2f}",
            "买家支付积分": "0",
            "总金额": f"{o.total:.2f}",
            "返点积分": "0",
            "买家实际支付金额": f"{net:.2f}",
            "买家实际支付积分": "0",
            "订单状态": status,
            "收货人姓名": o.customer.name,
            "收货地址 ": "浙江省 杭州市 西湖区 某路1号",
            "运送方式": "快递",
            "联系电话 ": "",
            "联系手机": f"'{o.customer.phone}",
            "订单创建时间": _t(o.placed_at),
            "订单付款时间 ": _t(o.at(o.pay_day)) if paid and o.pay_day is not None else "",
            "宝贝标题 ": "，".join(t for t, _ in o.items),
            "宝贝种类 ": str(len(o.items)),
            "宝贝总数量": str(len(o.items)),
            "店铺Id": "0",
            "店铺名称": "茶小铺",
            "是否手机订单": "手机订单",
            "退款金额": f"{refunded:.2f}元" if refunded else "0.00",
            "确认收货时间": _t(o.at(o.done_day))
            if o.by(o.done_day, day) and not o.closed_on(day)
            else "",
            "打款商家金额": f"{net:.2f}元" if status == "交易成功" else "0.00元",
        }
    )
    return [cells[h] for h in CLASSIC_HEADER]


def _quoted(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"' if "," in cell else cell


def write_classic(path: Path, shop: list[Order], day: int) -> Path:
    rows = [classic_row(o, day) for o in visible(shop, day)]
    # Written as the platform does: ="…" stays unquoted, only a cell holding a comma is quoted.
    lines = [",".join(_quoted(c) for c in r) for r in [CLASSIC_HEADER, *rows]]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    return path


# -- the current 千牛 export: one row per sub-order, no buyer and no phone -------------------------

QIANNIU_HEADER = [
    "子订单编号",
    "主订单编号",
    "商品标题",
    "商品价格",
    "购买数量",
    "外部系统编号",
    "商品属性",
    "套餐信息",
    "联系方式备注",
    "订单状态",
    "商家编码",
    "买家应付货款",
    "买家实付金额",
    "退款状态",
    "退款金额",
    "订单创建时间",
    "订单付款时间",
    "商品ID",
    "商家备注",
    "主订单买家留言",
    "发货时间",
    "物流单号",
    "物流公司",
    "收货人姓名",
    "收货地址",
]


def qianniu_rows(o: Order, day: int) -> list[list[str]]:
    """The order's lines; refunds are taken from the first line, postage sits on it too."""
    paid = o.paid_on(day)
    refunded = o.refunded_on(day)
    rows = []
    for i, (title, amount) in enumerate(o.items):
        line_total = amount + (o.postage if i == 0 else Decimal(0))
        line_refund = Decimal(0)
        if paid:
            if refunded >= o.total:
                line_refund = line_total
            elif i == 0:
                line_refund = refunded
        if line_refund > line_total:  # spread what the first line cannot take
            line_refund = line_total
        rows.append((i, title, amount, line_total, line_refund))
    # Put any refund left over on the later lines.
    left = refunded - sum(r[4] for r in rows) if paid else Decimal(0)
    out = []
    for i, title, amount, line_total, line_refund in rows:
        if left > 0 and line_refund < line_total:
            extra = min(left, line_total - line_refund)
            line_refund += extra
            left -= extra
        net = line_total - line_refund if paid else Decimal(0)
        cells = dict.fromkeys(QIANNIU_HEADER, "")
        cells.update(
            {
                "子订单编号": f"{o.order_id}{i + 1:02d}",
                "主订单编号": o.order_id,
                "商品标题": title,
                "商品价格": f"{amount:.2f}",
                "购买数量": "1",
                "订单状态": o.status_on(day),
                "买家应付货款": f"{line_total:.2f}",
                "买家实付金额": f"{net:.2f}",
                "退款状态": "退款成功" if line_refund else "",
                "退款金额": f"{line_refund:.2f}",
                "订单创建时间": _t(o.placed_at),
                "订单付款时间": _t(o.at(o.pay_day)) if paid and o.pay_day is not None else "",
                "商品ID": str(600000 + i),
                "发货时间": _t(o.at(o.ship_day)) if paid and o.by(o.ship_day, day) else "",
                "收货人姓名": o.customer.name,
                "收货地址": f"浙江省 杭州市 {o.customer.key} 路",
            }
        )
        out.append([cells[h] for h in QIANNIU_HEADER])
    return out


def write_qianniu(path: Path, shop: list[Order], day: int) -> Path:
    rows = [r for o in visible(shop, day) for r in qianniu_rows(o, day)]
    path.write_text(_csv(QIANNIU_HEADER, rows), encoding="utf-8-sig")
    return path


# -- the Shopify orders export: one row per line item --------------------------------------------

SHOPIFY_HEADER = [
    "Name",
    "Email",
    "Financial Status",
    "Paid at",
    "Fulfillment Status",
    "Fulfilled at",
    "Accepts Marketing",
    "Currency",
    "Subtotal",
    "Shipping",
    "Taxes",
    "Total",
    "Discount Code",
    "Discount Amount",
    "Shipping Method",
    "Created at",
    "Lineitem quantity",
    "Lineitem name",
    "Lineitem price",
    "Lineitem compare at price",
    "Lineitem sku",
    "Lineitem requires shipping",
    "Lineitem taxable",
    "Lineitem fulfillment status",
    "Billing Name",
    "Billing Street",
    "Billing Address1",
    "Billing Address2",
    "Billing Company",
    "Billing City",
    "Billing Zip",
    "Billing Province",
    "Billing Country",
    "Billing Phone",
    "Shipping Name",
    "Shipping Street",
    "Shipping Address1",
    "Shipping Address2",
    "Shipping Company",
    "Shipping City",
    "Shipping Zip",
    "Shipping Province",
    "Shipping Country",
    "Shipping Phone",
    "Notes",
    "Note Attributes",
    "Cancelled at",
    "Payment Method",
    "Payment Reference",
    "Refunded Amount",
    "Vendor",
    "Outstanding Balance",
    "Employee",
    "Location",
    "Device ID",
    "Id",
    "Tags",
    "Risk Level",
    "Source",
    "Lineitem discount",
    "Tax 1 Name",
    "Tax 1 Value",
    "Phone",
    "Receipt Number",
    "Duties",
    "Billing Province Name",
    "Shipping Province Name",
    "Payment ID",
    "Payment Terms Name",
    "Next Payment Due At",
    "Payment References",
]


def _shopify_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S %z")


def shopify_rows(o: Order, day: int) -> list[list[str]]:
    paid = o.paid_on(day)
    refunded = o.refunded_on(day)
    rows = []
    for i, (title, amount) in enumerate(o.items):
        cells = dict.fromkeys(SHOPIFY_HEADER, "")
        cells.update(
            {
                "Name": f"#{o.order_id[-6:]}",
                "Email": o.customer.email.upper()
                if i == 0 and int(o.order_id) % 3 == 0
                else o.customer.email,
                "Lineitem quantity": "1",
                "Lineitem name": title,
                "Lineitem price": f"{amount:.2f}",
                "Lineitem sku": f"SKU-{i}",
                "Lineitem requires shipping": "true",
                "Lineitem taxable": "true",
                "Lineitem fulfillment status": "fulfilled"
                if paid and o.by(o.ship_day, day)
                else "pending",
                "Vendor": "Tea House",
            }
        )
        if i == 0 or int(o.order_id) % 2:  # some exports repeat the time on every line
            cells["Created at"] = _shopify_time(o.placed_at)
        if i == 0:
            shipped = paid and o.by(o.ship_day, day)
            cells.update(
                {
                    "Financial Status": o.shopify_status_on(day),
                    "Paid at": _shopify_time(o.at(o.pay_day))
                    if paid and o.pay_day is not None
                    else "",
                    "Fulfillment Status": "fulfilled" if shipped else "unfulfilled",
                    "Fulfilled at": _shopify_time(o.at(o.ship_day))
                    if shipped and o.ship_day is not None
                    else "",
                    "Accepts Marketing": "yes" if o.customer.marketing else "no",
                    "Currency": "USD",
                    "Subtotal": f"{o.goods:.2f}",
                    "Shipping": f"{o.postage:.2f}",
                    "Taxes": "0.00",
                    "Total": f"{o.total:.2f}",
                    "Discount Amount": "0.00",
                    "Shipping Method": "Standard",
                    "Billing Name": f"Buyer {o.customer.key}",
                    "Billing Country": "US",
                    "Cancelled at": _shopify_time(o.at(o.close_day))
                    if o.close_day is not None and o.closed_on(day)
                    else "",
                    "Payment Method": "Shopify Payments",
                    "Refunded Amount": f"{refunded:.2f}" if refunded else "",
                    "Outstanding Balance": "0.00",
                    "Id": str(5000000000 + int(o.order_id) % 1000000),
                    "Risk Level": "Low",
                    "Source": "web",
                    "Phone": f"+1 415-555-{int(o.customer.phone[-4:]):04d}",
                }
            )
        rows.append([cells[h] for h in SHOPIFY_HEADER])
    return rows


def write_shopify(path: Path, shop: list[Order], day: int) -> Path:
    rows = [r for o in visible(shop, day) for r in shopify_rows(o, day)]
    path.write_text(_csv(SHOPIFY_HEADER, rows, newline="\n"), encoding="utf-8")
    return path


# -- what is true on a day, computed from the timelines ---------------------------------------------


def truth(
    shop: list[Order], day: int, key: str = "key", *, paid_when_placed: bool = False
) -> dict[str, tuple[int, Decimal, int]]:
    """Per customer (by ``key``): valid orders, net revenue of them, days with a valid order
    (paid days; the days they were placed for exports with no payment time)."""
    out: dict[str, tuple[int, Decimal, set[object]]] = {}
    for o in visible(shop, day):
        cid = getattr(o.customer, key)
        n, net, days = out.get(cid, (0, Decimal(0), set()))
        if o.valid_on(day):
            n += 1
            net += o.net_on(day)
            paid = o.placed_at if paid_when_placed else o.at(o.pay_day or 0)
            days = days | {paid.date()}
        out[cid] = (n, net, days)
    return {cid: (n, net, len(days)) for cid, (n, net, days) in out.items()}


# -- the WooCommerce Customer / Order / Coupon Export: "Default" and "Default - One Row per Item"

#: The "Default" order format's columns (the extension's built-in format definition); its
#: ``order_date`` key is written as the column ``date``.
WOO_HEADER = [
    "order_id",
    "order_number",
    "order_number_formatted",
    "date",
    "status",
    "shipping_total",
    "shipping_tax_total",
    "fee_total",
    "fee_tax_total",
    "tax_total",
    "discount_total",
    "order_total",
    "refunded_total",
    "order_currency",
    "payment_method",
    "shipping_method",
    "customer_id",
    "billing_first_name",
    "billing_last_name",
    "billing_company",
    "billing_email",
    "billing_phone",
    "billing_address_1",
    "billing_address_2",
    "billing_postcode",
    "billing_city",
    "billing_state",
    "billing_country",
    "shipping_first_name",
    "shipping_last_name",
    "shipping_address_1",
    "shipping_address_2",
    "shipping_postcode",
    "shipping_city",
    "shipping_state",
    "shipping_country",
    "shipping_company",
    "customer_note",
    "line_items",
    "shipping_items",
    "fee_items",
    "tax_items",
    "coupon_items",
    "refunds",
    "order_notes",
    "download_permissions_granted",
]

_WOO_ITEM_COLUMNS = [
    "item_id",
    "item_product_id",
    "item_name",
    "item_sku",
    "item_quantity",
    "item_subtotal",
    "item_subtotal_tax",
    "item_total",
    "item_total_tax",
    "item_refunded",
    "item_refunded_qty",
    "item_meta",
]

#: "Default - One Row per Item": the order's columns repeated on each item's row, item_*
#: columns instead of line_items, and no order_number_formatted or refunds column.
WOO_ITEMS_HEADER = [
    h
    for h in WOO_HEADER
    if h not in ("order_number_formatted", "line_items", "refunds", "shipping_items")
]
WOO_ITEMS_HEADER[WOO_ITEMS_HEADER.index("customer_note") + 1 : 0] = [
    *_WOO_ITEM_COLUMNS,
    "shipping_items",
]


def woo_id(o: Order) -> str:
    """The order's id in WooCommerce: a WordPress post id."""
    return str(1000 + int(o.order_id) % 100000)


def woo_status_on(o: Order, day: int) -> str:
    """WooCommerce's order status (``WC_Order::get_status``, no ``wc-`` prefix)."""
    if not o.paid_on(day):
        if o.closed_on(day):
            return "cancelled"
        return "on-hold" if int(o.order_id) % 2 else "pending"  # bank transfer: on-hold
    if o.refunded_on(day) >= o.total:
        return "refunded"
    return "completed" if o.by(o.ship_day, day) else "processing"


def woo_order_cells(o: Order, day: int) -> dict[str, str]:
    """The order-level cells, as the extension writes them (``wc_format_decimal(…, 2)``)."""
    paid = o.paid_on(day)
    refunded = o.refunded_on(day) if paid else Decimal(0)
    guest = int(o.customer.key[-3:]) % 2 == 0  # guests have customer_id 0
    first, last = o.customer.name[1:], o.customer.name[:1]  # given name, surname
    items = ";".join(
        f"id:{900 + i}|name:{t}|product_id:{300 + i}|sku:SKU-{i}|quantity:1|subtotal:{a:.2f}"
        f"|subtotal_tax:0.00|total:{a:.2f}|total_tax:0.00|refunded:0.00|refunded_qty:0|meta:"
        for i, (t, a) in enumerate(o.items)
    )
    return {
        "order_id": woo_id(o),
        "date": _t(o.placed_at),  # the site's local time, no offset
        "status": woo_status_on(o, day),
        "shipping_total": f"{o.postage:.2f}",
        "shipping_tax_total": "0.00",
        "fee_total": "0.00",
        "fee_tax_total": "0.00",
        "tax_total": "0.00",
        "discount_total": "0.00",
        "order_total": f"{o.total:.2f}",  # the order's total: refunds are not taken off
        "refunded_total": f"{refunded:.2f}",
        "order_currency": "USD",
        "payment_method": "bacs" if int(o.order_id) % 2 else "stripe",
        "shipping_method": "Flat rate" if o.postage else "Free shipping",
        "customer_id": "0" if guest else str(int(o.customer.key[-3:]) + 2),
        "billing_first_name": first,
        "billing_last_name": last,
        "billing_email": o.customer.email.upper() if int(o.order_id) % 3 == 0 else o.customer.email,
        "billing_phone": f"+1 415-555-{int(o.customer.phone[-4:]):04d}",
        "billing_address_1": "1 Tea Street",
        "billing_city": "Springfield",
        "billing_country": "US",
        "shipping_first_name": first,
        "shipping_last_name": last,
        "shipping_country": "US",
        "line_items": items,
        "shipping_items": f"id:1|method_id:flat_rate|method_title:Flat rate|total:{o.postage:.2f}",
        "refunds": f"id:1|date:{_t(o.placed_at)}|amount:{refunded:.2f}|reason:" if refunded else "",
        "order_notes": "Order status changed from Pending payment to Processing." if paid else "",
        "download_permissions_granted": "1" if paid else "0",
    }


def woo_rows(o: Order, day: int) -> list[list[str]]:
    cells = dict.fromkeys(WOO_HEADER, "") | woo_order_cells(o, day)
    return [[cells[h] for h in WOO_HEADER]]


def woo_item_rows(o: Order, day: int) -> list[list[str]]:
    base = dict.fromkeys(WOO_ITEMS_HEADER, "") | woo_order_cells(o, day)
    rows = []
    for i, (title, amount) in enumerate(o.items):
        cells = base | {
            "item_id": str(900 + i),
            "item_product_id": str(300 + i),
            "item_name": title,
            "item_sku": f"SKU-{i}",
            "item_quantity": "1",
            "item_subtotal": f"{amount:.2f}",
            "item_subtotal_tax": "0.00",
            "item_total": f"{amount:.2f}",
            "item_total_tax": "0.00",
            "item_refunded": "0.00",
            "item_refunded_qty": "0",
        }
        rows.append([cells.get(h, "") for h in WOO_ITEMS_HEADER])
    return rows


def write_woocommerce(path: Path, shop: list[Order], day: int) -> Path:
    """The "Default" format: one row per order (PHP's fputcsv, ``\\n`` line ends, no BOM)."""
    rows = [r for o in visible(shop, day) for r in woo_rows(o, day)]
    path.write_text(_csv(WOO_HEADER, rows, newline="\n"), encoding="utf-8")
    return path


def write_woocommerce_items(path: Path, shop: list[Order], day: int) -> Path:
    """The "Default - One Row per Item" format."""
    rows = [r for o in visible(shop, day) for r in woo_item_rows(o, day)]
    path.write_text(_csv(WOO_ITEMS_HEADER, rows, newline="\n"), encoding="utf-8")
    return path
