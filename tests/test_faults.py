"""Nothing lost, nothing leaked, nothing halts: one test (or a few) per finding of the fault
and bad-input probe, numbered as the issue numbers them."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import lifecycle as lc
from lifecycle.adapters.channels import JsonLinesChannel, MemoryChannel
from lifecycle.adapters.memory import MemoryStore
from lifecycle.adapters.smtp import SMTPChannel
from lifecycle.cadence.rules import AfterEvent, Occurrence
from lifecycle.cli import main
from lifecycle.dispatch import DispatchOutcome
from lifecycle.io import read_orders
from lifecycle.ports import OutboxEntry
from lifecycle.report import Missing
from lifecycle.serde import event_body

NOW = datetime(2026, 5, 20, 12, tzinfo=UTC)
CANARY = "Canary0 Wei"
ADDRESS = "canary0@example.com"
SECRETS = (b"Canary0", b"canary0@", b"Wei")
EVERY = {"transactional", "service", "marketing"}


def _registered(cid: str = "c0", name: str = CANARY, email: str = ADDRESS) -> lc.Event:
    contact = lc.ContactPoint(channel="email", address=email, consent=EVERY)
    profile = lc.Profile(name=name, timezone="UTC", contacts=(contact,))
    return lc.CustomerRegistered(customer_id=cid, at=NOW - timedelta(days=30), profile=profile)


def _shipped(cid: str = "c0", order: str = "o1") -> list[lc.Event]:
    """A paid order shipped two hours ago: the shipping notice is due now."""
    return [
        lc.OrderPaid(
            customer_id=cid,
            order_id=order,
            amount=Decimal("10.00"),
            currency="CNY",
            at=NOW - timedelta(days=1),
        ),
        lc.OrderShipped(customer_id=cid, order_id=order, at=NOW - timedelta(hours=2)),
    ]


def _leaks(folder: Path, *secrets: bytes) -> dict[str, list[bytes]]:
    """Which of ``secrets`` each file in ``folder`` still holds, byte for byte."""
    found = {}
    for f in sorted(folder.iterdir()):
        data = f.read_bytes()
        hits = [s for s in secrets if s in data]
        if hits:
            found[f.name] = hits
    return found


def _run(*argv: str) -> tuple[int, str, str]:
    """The command line: exit code, standard output and standard error."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(list(argv), out=out)
    return code, out.getvalue(), err.getvalue()


# -- 1. erasure leaves the name in the database --------------------------------------------------


def test_1_erase_leaves_no_byte_of_a_sent_message_in_the_files(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    folder.mkdir()
    email = MemoryChannel("email")
    shop = lc.Lifecycle.open(folder / "shop.db", channels={"email": email}, busy_timeout=0.3)
    with shop:
        shop.record(_registered(), *_shipped())
        assert shop.dispatch(NOW).sent
        assert CANARY in email.sent[0].text
        # Another connection (a report, a dispatcher) holds the WAL while the erasure runs.
        reader = sqlite3.connect(folder / "shop.db")
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM events").fetchone()
        with pytest.raises(lc.ErasureIncomplete):
            shop.erase("c0", NOW)
        reader.rollback()
        reader.close()
        assert shop.erase("c0", NOW) == 0  # again: finishes what was left
        exported = shop.export("c0", NOW)
        assert all(s.decode() not in exported for s in SECRETS)
        sent = list(shop.store.outbox_entries(customer_id="c0"))
        assert [o.state for o in sent] == [lc.OutboxState.SENT]
        assert (sent[0].text_en, sent[0].subject_en, dict(sent[0].payload)) == ("", None, {})
        assert _leaks(folder, *SECRETS) == {}
    assert _leaks(folder, *SECRETS) == {}


# -- 2. one bad value stops the whole shop ------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"at": datetime(1, 1, 1, tzinfo=UTC)},
        {"at": datetime(9999, 12, 31, tzinfo=UTC)},
        {"at": datetime.min.replace(tzinfo=timezone(timedelta(hours=8)))},
        {"amount": Decimal("1E+1000000")},
        {"amount": Decimal("1E-1000000")},
        {"amount": "1e999999999"},
        {"discount": Decimal("100000000000")},
    ],
)
def test_2_an_extreme_instant_or_amount_is_refused_by_name(kwargs: dict[str, Any]) -> None:
    fields = {
        "customer_id": "c1",
        "order_id": "o1",
        "amount": Decimal("1"),
        "currency": "CNY",
        "at": NOW,
        **kwargs,
    }
    with pytest.raises(lc.InvalidEvent) as info:
        lc.OrderPaid(**fields)
    assert info.value.field == next(iter(kwargs))


def test_2_extreme_cells_in_a_csv_are_rejected_rows_and_the_shop_runs(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        "order_id,customer_id,amount,placed_at,paid_at\n"
        "o1,good,10.00,2026-05-10 10:00:00,2026-05-10 10:01:00\n"
        "o2,old,10.00,0001-01-01 00:00:00,0001-01-01 00:01:00\n"
        "o3,rich,1e999999999,2026-05-10 10:00:00,2026-05-10 10:01:00\n",
        encoding="utf-8",
    )
    got = read_orders(path, skip_bad=True)
    assert sorted(p.row for p in got.rejected) == [3, 4]
    shop = lc.Lifecycle.in_memory(channels={"email": MemoryChannel("email")})
    shop.record(got.events)
    assert shop.customers() == ["good"]
    assert shop.plan(NOW).skipped == ()
    assert shop.dispatch(NOW).skipped == ()
    assert shop.report(NOW).customers == 1


def _store_raw(path: Path, event: lc.Event, body: str, at_us: int) -> None:
    """Store ``event`` with ``body`` as an older release could have: past today's checks."""
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO events (customer_id, at_us, rank, event_id, type, body) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (event.customer_id, at_us, event.rank, event.event_id, event.event_type, body),
    )
    db.execute(
        "INSERT INTO customers (customer_id, version) VALUES (?, 1) "
        "ON CONFLICT (customer_id) DO UPDATE SET version = version + 1",
        (event.customer_id,),
    )
    db.execute(
        "INSERT OR REPLACE INTO plan_marks (customer_id, next_due, stamp) VALUES (?, '', 9)",
        (event.customer_id,),
    )
    db.commit()
    db.close()


@pytest.fixture
def shop_with_a_bad_customer(tmp_path: Path) -> Path:
    """A shop file where customer ``bad`` has an order paid in year 1 (stored by an older
    release), and ``c0`` has a shipping notice due."""
    path = tmp_path / "shop.db"
    with lc.Lifecycle.open(path) as shop:
        shop.record(_registered(), *_shipped())
    paid = lc.OrderPaid(
        customer_id="bad", order_id="ob", amount=Decimal("5"), currency="CNY", at=NOW
    )
    body = event_body(paid).replace(NOW.isoformat().replace("+00:00", ""), "0001-01-01T00:00:00")
    assert "0001-01-01" in body
    _store_raw(path, paid, body, -62135596800 * 10**6)
    return path


def test_2_a_history_that_cannot_be_planned_is_skipped_and_the_rest_is_sent(
    shop_with_a_bad_customer: Path,
) -> None:
    email = MemoryChannel("email")
    with lc.Lifecycle.open(shop_with_a_bad_customer, channels={"email": email}) as shop:
        plan = shop.plan(NOW)
        assert [f.customer_id for f in plan.due] == ["c0"]
        assert [(s.customer_id, s.rule) for s in plan.skipped] == [("bad", None)]
        assert "InvalidEvent" in plan.skipped[0].error
        report = shop.dispatch(NOW)
        assert report.sent == ("c0:shipping_notice:o1",)
        assert [s.customer_id for s in report.skipped] == ["bad"]
        shop_report = shop.report(NOW)
        assert shop_report.customers == 1
        assert [s.customer_id for s in shop_report.skipped] == ["bad"]


def test_2_a_host_rule_that_fails_on_one_customer_is_reported_with_the_rule() -> None:
    class Fragile(AfterEvent):
        def occurrences(self, facts: Any) -> Iterator[Occurrence]:
            if facts.customer_id == "bad":
                raise OverflowError("date value out of range")
            yield from super().occurrences(facts)

    rules = (
        Fragile(
            id="fragile",
            on="order_shipped",
            purpose=lc.Purpose.TRANSACTIONAL,
            channels=("email",),
            template="shipping_notice",
        ),
    )
    policy = lc.Policy(cadence=lc.CadencePolicy(rules=rules))
    shop = lc.Lifecycle.in_memory(policy=policy, channels={"email": MemoryChannel("email")})
    shop.record(_registered(), *_shipped(), _registered("bad", "B", "b@example.com"))
    shop.record(*_shipped("bad", "ob"))
    plan = shop.plan(NOW)
    assert [f.customer_id for f in plan.due] == ["c0"]
    assert [(s.customer_id, s.rule) for s in plan.skipped] == [("bad", "fragile")]
    assert plan.skipped[0].error == "OverflowError: date value out of range"
    report = shop.dispatch(NOW)
    assert report.sent == ("c0:fragile:o1",)
    assert [(s.customer_id, s.rule) for s in report.skipped] == [("bad", "fragile")]


def test_2_the_command_line_reports_skipped_customers_in_one_line(
    shop_with_a_bad_customer: Path,
) -> None:
    db = str(shop_with_a_bad_customer)
    at = "--at=2026-05-20T12:00+00:00"
    code, out, err = _run("plan", "--db", db, at)
    assert code == 0, err
    assert "shipping_notice" in out
    assert err.count("\n") == 1
    assert "1 customer(s) skipped" in err
    assert "bad" in err
    code, out, err = _run("plan", "--db", db, at, "--strict")
    assert code == 1
    assert "Traceback" not in err
    for command in ("report", "dispatch"):
        code, out, err = _run(command, "--db", db, at)
        assert code == 0, err
        assert "Traceback" not in err
        assert err.count("\n") == 1


# -- 3. erasure racing a writer -----------------------------------------------------------------


class _WriterAfterRead(MemoryStore):
    """A store where another writer records a new name right after the first history read:
    the moment the probe's racing process hit."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.writer: lc.Lifecycle | None = None

    def history(self, customer_id: str) -> tuple[lc.Event, ...]:
        history = super().history(customer_id)
        if self.armed and self.writer is not None:
            self.armed = False
            profile = lc.Profile(name="Canary1 Wei")
            self.writer.record(lc.ProfileUpdated(customer_id=customer_id, at=NOW, profile=profile))
        return history


def test_3_erase_redacts_what_another_writer_committed_a_moment_before() -> None:
    store = _WriterAfterRead()
    shop = lc.Lifecycle(store=store, clock=lc.FixedClock(NOW))
    store.writer = lc.Lifecycle(store=store, clock=lc.FixedClock(NOW))
    shop.record(_registered())
    store.armed = True
    shop.erase("c0", NOW + timedelta(minutes=1))
    assert not store.armed
    text = repr([lc.event_to_dict(e) for e in shop.history("c0")])
    assert "Canary" not in text
    assert "canary" not in text


def test_3_erase_in_one_process_while_another_renames_leaves_no_name(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    with lc.Lifecycle.open(path, synchronous="NORMAL") as shop:
        shop.record(_registered())
    script = textwrap.dedent(
        f"""
        import sys
        from datetime import datetime, timedelta, UTC
        import lifecycle as lc
        shop = lc.Lifecycle.open({str(path)!r}, synchronous="NORMAL")
        at = datetime(2026, 5, 20, 12, tzinfo=UTC)
        print("go", flush=True)
        for i in range(150):
            profile = lc.Profile(name=f"Canary{{i}} Wei")
            shop.record(lc.ProfileUpdated(customer_id="c0", at=at + timedelta(seconds=i),
                                          profile=profile))
        print("done", flush=True)
        """
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "go"
    with lc.Lifecycle.open(path, synchronous="NORMAL") as shop:
        while shop.store.version("c0") < 20:
            pass
        shop.erase("c0", NOW + timedelta(hours=1))
    _out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    with lc.Lifecycle.open(path) as shop:
        names = [
            e.profile.name
            for e in shop.history("c0")
            if isinstance(e, lc.CustomerRegistered | lc.ProfileUpdated)
        ]
        assert len(names) == 151
        assert set(names) == {None}


# -- 4. SMTP sends to extra recipients ----------------------------------------------------------


LIST = "me@example.com, v1@third.party, v2@third.party"


def test_4_a_contact_point_holds_one_address() -> None:
    with pytest.raises(lc.InvalidEvent) as info:
        lc.ContactPoint(channel="email", address=LIST)
    assert info.value.field == "contacts.address"
    assert "third.party" not in str(info.value)


def test_4_smtp_never_sends_to_a_list_of_addresses() -> None:
    # Port 9 (discard) on this machine: a send that got as far as connecting would fail
    # transiently; the refusal must come first, and be permanent.
    channel = SMTPChannel("127.0.0.1", 9, sender="shop@example.com", security="none", timeout=1)
    message = lc.Message(key="k1", customer_id="c0", channel="email", text="Hi", address=LIST)
    with pytest.raises(lc.PermanentChannelError, match="one e-mail address"):
        channel.send(message, idempotency_key="k1")


# -- 5. writers sharing a customer lose calls ---------------------------------------------------


class _Contended(MemoryStore):
    """A store whose appends meet another writer ``conflicts`` times first."""

    def __init__(self, conflicts: int) -> None:
        super().__init__()
        self.conflicts = conflicts

    def append(self, events: Any, snapshots: Any = (), **kwargs: Any) -> int:
        if self.conflicts > 0 and kwargs.get("expected_versions"):
            self.conflicts -= 1
            raise lc.ConcurrencyError(next(iter(kwargs["expected_versions"])))
        return super().append(events, snapshots, **kwargs)


def test_5_record_retries_with_backoff_within_the_policy_budget() -> None:
    quick = lc.Policy(writes=lc.WritePolicy(backoff_max_seconds=0.005))
    shop = lc.Lifecycle(store=_Contended(40), clock=lc.FixedClock(NOW), policy=quick)
    assert shop.record(*_shipped()).recorded == 2
    writes = lc.WritePolicy(retry_budget_seconds=0.05, backoff_base_seconds=0.01)
    tight = lc.Lifecycle(
        store=_Contended(10_000), clock=lc.FixedClock(NOW), policy=lc.Policy(writes=writes)
    )
    with pytest.raises(lc.ConcurrencyError):
        tight.record(*_shipped())


def test_5_the_retry_budget_is_policy_with_errors_naming_the_key() -> None:
    with pytest.raises(lc.PolicyError) as info:
        lc.Policy.from_dict({"writes": {"retry_budget_seconds": float("nan")}})
    assert info.value.key == "writes.retry_budget_seconds"
    assert lc.WritePolicy().backoff(3, 0.5) == pytest.approx(0.004)
    assert lc.WritePolicy().backoff(100, 0.999) <= lc.WritePolicy().backoff_max_seconds


# Processes: tests/test_sqlite.py runs eight writer processes on five shared customers with
# the default policy (tests/sqlite_worker.py), and every call lands.


# -- 6. mixed currencies break the report -------------------------------------------------------


def test_6_an_order_placed_in_one_currency_and_paid_in_another_is_refused() -> None:
    shop = lc.Lifecycle.in_memory()
    placed = lc.OrderPlaced(customer_id="c1", order_id="o1", amount=1, currency="CNY", at=NOW)
    paid = lc.OrderPaid(customer_id="c1", order_id="o1", amount=1, currency="USD", at=NOW)
    with pytest.raises(lc.InvalidEvent) as info:
        shop.record(placed, paid)
    assert info.value.field == "currency"
    shop.record(placed)
    with pytest.raises(lc.InvalidEvent):
        shop.record(paid)
    assert len(shop.history("c1")) == 1


def _two_currency_shop(path: Path) -> None:
    with lc.Lifecycle.open(path) as shop:
        for i, (currency, amount) in enumerate(
            [("CNY", "100.00"), ("CNY", "50.50"), ("USD", "20.00"), ("USD", "5.25")]
        ):
            shop.record(
                lc.OrderPaid(
                    customer_id=f"c{i}",
                    order_id=f"o{i}",
                    amount=Decimal(amount),
                    currency=currency,
                    at=NOW - timedelta(days=10 + i),
                )
            )


def test_6_the_report_counts_the_shops_currency_and_lists_the_others(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    _two_currency_shop(path)
    with lc.Lifecycle.open(path) as shop:
        report = shop.report(NOW, fit=False)
        assert report.currency == "CNY"
        assert [(o.currency, o.orders, o.revenue) for o in report.other_currencies] == [
            ("USD", 2, 25.25)
        ]
        assert not isinstance(report.kpis, Missing)
        assert report.kpis.periods[0].kpis.revenue == pytest.approx(150.50)
        usd = shop.report(NOW, fit=False, currency="usd")
        assert usd.kpis.periods[0].kpis.revenue == pytest.approx(25.25)  # type: ignore[union-attr]
    code, out, err = _run("report", "--db", str(path), "--at=2026-05-20T12:00+00:00")
    assert code == 0, err
    assert "USD 2 orders (25.25)" in out
    code, out, err = _run("report", "--db", str(path), "--currency", "USD", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["currency"] == "USD"


def test_6_the_policy_names_the_shops_currency() -> None:
    policy = lc.Policy.from_toml('currency = "usd"\n')
    assert (policy.currency, policy.loyalty.currency) == ("USD", "USD")
    with pytest.raises(lc.PolicyError) as info:
        lc.Policy.from_dict({"currency": "dollars"})
    assert info.value.key == "currency"


# -- 7. another application's database is modified ----------------------------------------------


def test_7_a_foreign_sqlite_file_is_refused_and_left_byte_for_byte(tmp_path: Path) -> None:
    app = tmp_path / "app.db"
    db = sqlite3.connect(app)
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO users (name) VALUES ('someone')")
    db.commit()
    db.close()
    before = app.read_bytes()
    with pytest.raises(lc.StoreError, match="without the lifecycle schema"):
        lc.Lifecycle.open(app)
    code, _out, err = _run("report", "--db", str(app))
    assert code == 1
    assert err.count("\n") == 1
    assert "without the lifecycle schema" in err
    assert app.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]


# -- 8. raw errors instead of library errors ----------------------------------------------------


def test_8_a_lone_surrogate_is_refused_by_the_event_for_every_store(tmp_path: Path) -> None:
    with pytest.raises(lc.InvalidEvent) as info:
        lc.FeedbackGiven(customer_id="c1", at=NOW, score=5, text="bad \ud800")
    assert info.value.field == "text"
    with pytest.raises(lc.InvalidEvent):
        lc.ReviewPosted(customer_id="c\udfff", at=NOW, rating=5)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda shop: shop.customers(stage="bogus"), lc.InvalidArgument),
        (lambda shop: shop.customers(status=42), lc.InvalidArgument),
        (lambda shop: shop.customers(status=[object()]), lc.InvalidArgument),
        (lambda shop: shop.assess("c1", at=datetime(9999, 12, 31, tzinfo=UTC)), lc.InvalidEvent),
        (lambda shop: shop.plan(datetime.max.replace(tzinfo=UTC)), lc.InvalidEvent),
        (lambda shop: shop.report(at=datetime(1, 1, 1, tzinfo=UTC)), lc.InvalidEvent),
    ],
)
def test_8_a_bad_argument_is_a_library_error(call: Any, error: type[Exception]) -> None:
    shop = lc.Lifecycle.in_memory()
    shop.record(*_shipped("c1"))
    with pytest.raises(error):
        call(shop)


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), -1.0, "30"])
def test_8_a_bad_busy_timeout_is_a_store_error(tmp_path: Path, timeout: Any) -> None:
    with pytest.raises(lc.StoreError, match="busy_timeout"):
        lc.Lifecycle.open(tmp_path / "shop.db", busy_timeout=timeout)
    assert not (tmp_path / "shop.db").exists()


@pytest.mark.parametrize("at", ["9999-12-31T23:59+00:00", "0001-01-01T00:00+14:00"])
def test_8_an_instant_out_of_range_on_the_command_line_is_one_line(tmp_path: Path, at: str) -> None:
    path = tmp_path / "shop.db"
    with lc.Lifecycle.open(path) as shop:
        shop.record(*_shipped())
    for command in ("report", "plan", "export c0"):
        code, _out, err = _run(*command.split(), "--db", str(path), f"--at={at}")
        assert code == 2
        assert "Traceback" not in err
        assert "out of range" in err


# -- 9. a CRLF reported in doubt; erase failing after it committed ------------------------------


def test_9_a_header_break_fails_permanently_and_nothing_is_in_doubt() -> None:
    channel = SMTPChannel("127.0.0.1", 9, sender="shop@example.com", security="none", timeout=1)
    message = lc.Message(
        key="k1",
        customer_id="c0",
        channel="email",
        text="Hi",
        address="me@example.com\r\nBcc: v@third.party",
    )
    with pytest.raises(lc.PermanentChannelError):
        channel.send(message, idempotency_key="k1")
    # Through the dispatcher: a host's entry whose key would break the idempotency header.
    store = MemoryStore()
    shop = lc.Lifecycle(store=store, channels={"email": channel}, clock=lc.FixedClock(NOW))
    shop.record(_registered())
    key = "host\r\nBcc: v@third.party"
    store.append([], outbox=[OutboxEntry(key=key, customer_id="c0", channel="email", due_at=NOW)])
    report = shop.dispatch(NOW)
    assert [r.outcome for r in report.results if r.key == key] == [DispatchOutcome.FAILED]
    assert lc.in_doubt(store) == []


ERASE_UNDER_LIMIT = """
import resource, signal, sys
from datetime import datetime, UTC
import lifecycle as lc
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
path, limit = sys.argv[1], int(sys.argv[2])
shop = lc.Lifecycle.open(path)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    count = shop.erase("c0", datetime(2026, 5, 21, tzinfo=UTC))
except lc.StoreError as e:
    print("StoreError", e)
    sys.exit(0)
print("erased", count)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")
def test_9_erase_near_a_file_size_limit_succeeds_and_leaves_no_byte(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    folder.mkdir()
    path = folder / "shop.db"
    with lc.Lifecycle.open(path, synchronous="NORMAL") as shop:
        shop.record(_registered())
        filler = [
            lc.OrderPaid(
                customer_id=f"f{i}",
                order_id=f"of{i}",
                amount=Decimal("1"),
                currency="CNY",
                at=NOW - timedelta(days=3),
                items=("x" * 400,),
            )
            for i in range(3000)
        ]
        shop.record(filler)
    size = path.stat().st_size
    assert size > 1_000_000
    done = subprocess.run(
        [sys.executable, "-c", ERASE_UNDER_LIMIT, str(path), str(size)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("erased 1"), done.stdout
    assert _leaks(folder, *SECRETS) == {}


# -- 10. the channel log and the rejected rows keep an erased customer --------------------------


def test_10_erase_scrubs_the_json_lines_log_and_keeps_its_keys(tmp_path: Path) -> None:
    log = tmp_path / "outbox.jsonl"
    channel = JsonLinesChannel(log, name="email", deduplicate=True)
    shop = lc.Lifecycle.in_memory(channels={"email": channel})
    shop.record(_registered(), *_shipped())
    shop.record(_registered("c1", "Other Person", "other@example.com"), *_shipped("c1", "o2"))
    assert len(shop.dispatch(NOW).sent) == 2
    size = log.stat().st_size
    shop.erase("c0", NOW)
    data = log.read_bytes()
    assert all(s not in data for s in SECRETS)
    assert b"Other Person" in data
    assert b"other@example.com" in data
    assert log.stat().st_size == size
    records = [json.loads(line) for line in data.splitlines()]
    assert sorted(r["key"] for r in records) == ["c0:shipping_notice:o1", "c1:shipping_notice:o2"]
    again = JsonLinesChannel(log, name="email", deduplicate=True)
    message = lc.Message(key="c0:shipping_notice:o1", customer_id="c0", channel="email", text="")
    assert again.send(message, idempotency_key=message.key).duplicate


def test_10_the_command_line_erases_from_a_dispatch_log(tmp_path: Path) -> None:
    path, log = tmp_path / "shop.db", tmp_path / "sent.jsonl"
    with lc.Lifecycle.open(path) as shop:
        shop.record(_registered(), *_shipped())
    at = "--at=2026-05-20T12:00+00:00"
    code, _out, err = _run("dispatch", "--db", str(path), "--to", str(log), at)
    assert code == 0, err
    assert b"Canary0" in log.read_bytes()
    code, _out, err = _run("erase", "c0", "--db", str(path), "--yes", "--log", str(log), at)
    assert code == 0, err
    assert _leaks(tmp_path, *SECRETS) == {}


def test_10_the_privacy_page_says_where_erase_reaches_and_what_is_the_hosts() -> None:
    page = (Path(__file__).parents[1] / "docs" / "privacy.md").read_text(encoding="utf-8")
    for needle in ("rejected.csv", "JsonLinesChannel", "forget", "--log", "-wal", "-shm"):
        assert needle in page, needle


# -- 11. erasing twice fails --------------------------------------------------------------------


def test_11_erasing_twice_is_harmless() -> None:
    shop = lc.Lifecycle.in_memory()
    shop.record(_registered(), *_shipped())
    assert shop.erase("c0", NOW) == 1
    assert shop.erase("c0", NOW + timedelta(days=1)) == 0
    assert sum(isinstance(e, lc.CustomerErased) for e in shop.history("c0")) == 1


def test_11_erase_while_another_writer_holds_the_customer_retries() -> None:
    store = _Contended(0)
    shop = lc.Lifecycle(store=store, clock=lc.FixedClock(NOW))
    shop.record(_registered())
    store.conflicts = 8
    assert shop.erase("c0", NOW) == 1
    assert "Canary" not in shop.export("c0", NOW)
