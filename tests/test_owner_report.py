"""Each owner's results over a window: figures worked out by hand for a small shop."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import lifecycle as lc
from lifecycle.cli import main
from lifecycle.events import (
    Contacted,
    Event,
    LeadCaptured,
    OrderPaid,
    OrderRefunded,
    OwnerAssigned,
    ReturnedToPool,
)
from lifecycle.ports import OutboxEntry
from lifecycle.vocabulary import ESCALATION_TEMPLATE

T0 = datetime(2026, 5, 4, 9, tzinfo=UTC)


def _d(n: float) -> datetime:
    return T0 + timedelta(days=n)


def _paid(cid: str, oid: str, day: float, amount: str, currency: str = "CNY") -> OrderPaid:
    return OrderPaid(
        customer_id=cid,
        order_id=f"{cid}-{oid}",
        at=_d(day),
        amount=Decimal(amount),
        currency=currency,
    )


def _events() -> list[Event]:
    return [
        *(LeadCaptured(customer_id=f"p{i}", at=_d(-10), source="fair") for i in range(4)),
        # p0: ann's from day 0; a first order, then a second partly refunded, then one in USD.
        OwnerAssigned(customer_id="p0", at=_d(0), owner_id="ann"),
        _paid("p0", "o1", 2, "100"),
        _paid("p0", "o2", 5, "50"),
        OrderRefunded(
            customer_id="p0", at=_d(6), order_id="p0-o2", amount=Decimal(20), currency="CNY"
        ),
        _paid("p0", "o3", 7, "10", "USD"),
        Contacted(customer_id="p0", at=_d(1.5), channel="task", rule="r", key="t1"),
        # p1: bob's, buys, goes back to the pool, ann claims and it buys again.
        OwnerAssigned(customer_id="p1", at=_d(0), owner_id="bob"),
        _paid("p1", "o1", 1, "200"),
        ReturnedToPool(customer_id="p1", at=_d(3), owner_id="bob"),
        OwnerAssigned(customer_id="p1", at=_d(4), owner_id="ann"),
        _paid("p1", "o2", 8, "70"),
        Contacted(customer_id="p1", at=_d(3), channel="task", rule="r", key="t4"),
        # p2: a buyer before the window, ann's from day 1, buys again.
        _paid("p2", "o1", -5, "999"),
        OwnerAssigned(customer_id="p2", at=_d(1), owner_id="ann"),
        _paid("p2", "o2", 3, "40"),
        # p3: in the pool all along: its order is nobody's.
        _paid("p3", "o1", 2, "500"),
        # after the window: not counted
        _paid("p2", "o3", 11, "1000"),
    ]


def _task(key: str, cid: str, due: float, until: float, **kw: object) -> OutboxEntry:
    return OutboxEntry(
        key=key,
        customer_id=cid,
        channel=str(kw.pop("channel", "task")),
        due_at=_d(due),
        valid_until=_d(until),
        **kw,  # type: ignore[arg-type]
    )


TASKS = [
    _task("t1", "p0", 1, 2),  # done on time (day 1.5)
    _task("t2", "p0", 3, 4),  # never done: overdue
    _task("t3", "p2", 9, 12),  # due, still open at the end: neither
    _task("t4", "p1", 2, 2.5),  # bob's, done late (day 3): overdue
    _task("t5", "p0", 5, 8, template=ESCALATION_TEMPLATE),  # an escalation of ann's task
    _task("t6", "p0", 5, 8, channel="sms"),  # a message, not a task
    _task("t7", "p3", 5, 8),  # a pool customer's task: nobody's
]


def _histories() -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = {}
    for e in _events():
        out.setdefault(e.customer_id, []).append(e)
    return out


def test_each_owners_figures_match_the_hand_count() -> None:
    report = lc.owner_report(_histories(), TASKS, lc.Policy(), _d(0), _d(10))
    ann, bob = report.owners
    assert ann == lc.OwnerResult(
        owner_id="ann",
        held=3,
        taken=3,
        tasks_due=3,
        done_on_time=1,
        overdue=1,
        escalated=1,
        first_purchases=1,
        repeat_purchases=3,
        revenue=Decimal(100 + 30 + 70 + 40),
        returned=0,
    )
    assert bob == lc.OwnerResult(
        owner_id="bob",
        held=0,
        taken=1,
        tasks_due=1,
        overdue=1,
        first_purchases=1,
        revenue=Decimal(200),
        returned=1,
    )


def test_a_window_counts_only_what_happened_in_it() -> None:
    report = lc.owner_report(_histories(), TASKS, lc.Policy(), _d(4), _d(12))
    ann, bob = report.owners
    # In the window: p0 and p1 made their second orders; p2 its third (no conversion).
    assert (ann.taken, ann.first_purchases, ann.repeat_purchases) == (1, 0, 2)
    assert ann.revenue == Decimal(30 + 70 + 1000)
    assert (bob.taken, bob.revenue, bob.returned) == (0, Decimal(0), 0)
    with pytest.raises(lc.InvalidArgument):
        lc.owner_report(_histories(), TASKS, lc.Policy(), _d(4), _d(4))


def test_the_report_reads_as_a_table_in_both_languages() -> None:
    report = lc.owner_report(_histories(), TASKS, lc.Policy(), _d(0), _d(10))
    assert repr(report).startswith("OwnerReport(2 owners")
    html = report._repr_html_()
    assert "<td>ann</td>" in html
    assert "¥240" in html
    rows = report.rows()
    assert rows[0]["revenue"] == "240"
    assert len(report.headers("zh")) == len(rows[0])
    assert json.loads(json.dumps(report.to_dict()))["owners"][1]["owner_id"] == "bob"
    pytest.importorskip("pandas")
    assert list(report.to_pandas()["held"]) == [3, 0]


def test_the_facade_reports_from_the_store_and_the_outbox() -> None:
    shop = lc.Lifecycle.in_memory(clock=lc.FixedClock(_d(10)))
    shop.record(_events())
    shop.store.append([], outbox=TASKS)
    assert shop.owner_report(_d(0)) == lc.owner_report(
        _histories(), TASKS, lc.Policy(), _d(0), _d(10)
    )


def test_lifecycle_report_by_owner_prints_the_table_and_json(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    with lc.Lifecycle.open(db, clock=lc.FixedClock(_d(10))) as shop:
        shop.record(_events())
    out = io.StringIO()
    at = _d(10).isoformat()
    assert (
        main(["report", "--by", "owner", "--db", str(db), "--at", at, "--days", "10"], out=out) == 0
    )
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Owners' results from 2026-05-04 to 2026-05-14")
    assert lines[1].split()[:3] == ["owner", "held", "taken"]
    assert lines[2].split()[0] == "ann"
    assert lines[2].split()[-2:] == ["240.00", "0"]
    out = io.StringIO()
    argv = ["report", "--by", "owner", "--db", str(db), "--at", at, "--format", "json"]
    assert main([*argv, "--since", _d(0).isoformat()], out=out) == 0
    assert json.loads(out.getvalue())["owners"][1]["returned"] == 1
    out = io.StringIO()
    assert (
        main(["report", "--by", "owner", "--db", str(db), "--at", at, "--lang", "zh"], out=out) == 0
    )
    assert "负责人" in out.getvalue()
