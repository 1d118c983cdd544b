"""The embedded SQLite store: the file, crashes, concurrency, failures and privacy."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lifecycle as lc
from lifecycle.adapters.sqlite import SCHEMA_VERSION, SQLiteStore
from lifecycle.testing.strategies import events

WORKER = Path(__file__).with_name("sqlite_worker.py")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _paid(cid: str, n: int) -> lc.OrderPaid:
    return lc.OrderPaid(
        customer_id=cid,
        at=T0 + timedelta(days=n),
        order_id=f"{cid}-{n}",
        amount=Decimal("5.00"),
        currency="CNY",
    )


def test_the_file_uses_wal_secure_delete_and_a_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT value FROM lifecycle_meta WHERE key = 'schema_version'").fetchone()[
        0
    ] == str(SCHEMA_VERSION)
    db.close()


def test_lifecycle_open_uses_the_file_and_reopens_it(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    with lc.Lifecycle.open(path, clock=lc.FixedClock(T0 + timedelta(days=5))) as shop:
        shop.record(_paid("c1", 0), _paid("c1", 1))
    with lc.Lifecycle.open(path, clock=lc.FixedClock(T0 + timedelta(days=5))) as shop:
        assert shop.assess("c1").stage is lc.Stage.REPEAT
        assert shop.customers(stage=lc.Stage.REPEAT) == ["c1"]


def test_a_file_from_a_newer_release_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    db.execute(
        "UPDATE lifecycle_meta SET value = ? WHERE key = 'schema_version'",
        (str(SCHEMA_VERSION + 1),),
    )
    db.commit()
    db.close()
    with pytest.raises(lc.StoreError, match="newer release") as info:
        SQLiteStore(path)
    assert str(path) in str(info.value)


def test_a_corrupt_file_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(lc.StoreError, match="not a lifecycle database or is corrupt") as info:
        SQLiteStore(path)
    assert str(path) in str(info.value)


def test_a_lock_held_past_the_timeout_is_a_store_error_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    store = SQLiteStore(path, busy_timeout=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(lc.StoreError, match="locked") as info:
            store.append([_paid("c1", 0)])
        assert str(path) in str(info.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.version("c1") == 0
    assert store.append([_paid("c1", 0)]) == 1
    store.close()


def test_a_full_disk_is_a_store_error_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    shop = lc.Lifecycle.open(path, clock=lc.FixedClock(T0 + timedelta(days=500)))
    shop.record([_paid("small", n) for n in range(3)])
    store = shop.store
    assert isinstance(store, SQLiteStore)
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages + 2}")
    big = [
        lc.OrderPaid(
            customer_id="big",
            at=T0 + timedelta(hours=n),
            order_id=f"big-{n}",
            amount="1",
            currency="CNY",
            items=("y" * 500,),
        )
        for n in range(400)
    ]
    with pytest.raises(lc.StoreError, match="full") as info:
        shop.record(big)
    assert str(path) in str(info.value)
    assert store.version("big") == 0
    assert store.snapshot("big") is None
    assert store.integrity_check() == "ok"
    shop.close()
    with lc.Lifecycle.open(path) as again:
        assert again.store.version("small") == 3
        assert isinstance(again.store, SQLiteStore)
        assert again.store.integrity_check() == "ok"
        again.record(big)
        assert again.store.version("big") == 400


def spawn(target: Path | str, mode: str, worker: str, batches: int) -> subprocess.Popen[str]:
    """A writer process on ``target`` (a SQLite file, or a server store's JSON)."""
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(target), mode, worker, str(batches)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_eight_writer_processes_lose_nothing_and_never_see_a_busy_error(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    SQLiteStore(path).close()
    procs = [spawn(path, "shared", f"w{i}", 15) for i in range(8)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for (out, err), p in zip(outputs, procs, strict=True):
        assert p.returncode == 0, err
        assert out.strip().endswith("done errors=0"), out + err
    store = SQLiteStore(path)
    assert sum(store.version(f"s{i}") for i in range(5)) == 8 * 15 * 5
    for i in range(5):
        snap = store.snapshot(f"s{i}")
        assert snap is not None
        assert snap.version == store.version(f"s{i}")
    assert store.integrity_check() == "ok"
    store.close()


def kill_during_ingest(target: Path | str, rng: random.Random) -> set[int]:
    """SIGKILL a writer after a random delay: the batches it said were committed."""
    proc = spawn(target, "ingest", "k", 100_000)
    acked: set[int] = set()
    assert proc.stdout is not None
    deadline = time.monotonic() + rng.uniform(0.05, 0.6)
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("ack "):
            acked.add(int(line.split()[1]))
    proc.send_signal(signal.SIGKILL)
    rest, _ = proc.communicate()
    acked |= {int(x.split()[1]) for x in rest.splitlines() if x.startswith("ack ")}
    return acked


def check_after_crash(path: Path, acked: set[int]) -> None:
    """Every acknowledged batch is there whole; no batch is there in part; the file is sound."""
    store = SQLiteStore(path)
    try:
        assert store.integrity_check() == "ok"
        versions = {cid: store.version(cid) for cid in store.customer_ids()}
        for n in acked:
            assert versions.get(f"bk-{n}") == 20, n
        assert set(versions.values()) <= {20}
    finally:
        store.close()


def test_killing_a_writer_mid_ingest_keeps_every_acknowledged_batch_whole(tmp_path: Path) -> None:
    rng = random.Random(7)
    path = tmp_path / "crash.db"
    for _ in range(24):
        acked = kill_during_ingest(path, rng)
        check_after_crash(path, acked)


def _bytes_of(path: Path) -> bytes:
    out = b""
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(path) + suffix)
        if p.exists():
            out += p.read_bytes()
    return out


def test_erased_personal_data_is_nowhere_in_the_files(tmp_path: Path) -> None:
    path = tmp_path / "privacy.db"
    shop = lc.Lifecycle.open(path, clock=lc.FixedClock(T0 + timedelta(days=40)))
    secrets = [
        "Zhang Weiwei",
        "+86 139 1234 5678",
        "weiwei@example.com",
        "the parcel was crushed",
        "my cat loved it",
    ]
    profile = lc.Profile(
        name=secrets[0],
        timezone="Asia/Shanghai",
        contacts=(
            lc.ContactPoint(channel="sms", address=secrets[1]),
            lc.ContactPoint(channel="email", address=secrets[2]),
        ),
    )
    shop.record(
        lc.CustomerRegistered(customer_id="c1", at=T0, profile=profile),
        _paid("c1", 1),
        _paid("c1", 20),
        lc.ComplaintOpened(
            customer_id="c1", at=T0 + timedelta(days=2), complaint_id="k1", text=secrets[3]
        ),
        lc.ReviewPosted(customer_id="c1", at=T0 + timedelta(days=21), rating=5, text=secrets[4]),
        lc.FeedbackGiven(
            customer_id="c1", at=T0 + timedelta(days=22), score=9, text=secrets[4] + " too"
        ),
    )
    shop.record([_paid(f"other{i}", i) for i in range(50)])
    assert all(s.encode() in _bytes_of(path) for s in secrets[:1])
    totals_before = sum(
        e.amount
        for c in shop.store.customer_ids()
        for e in shop.store.history(c)
        if isinstance(e, lc.OrderPaid)
    )
    shop.erase("c1")
    raw = _bytes_of(path)
    for s in secrets:
        assert s.encode() not in raw, s
    totals_after = sum(
        e.amount
        for c in shop.store.customer_ids()
        for e in shop.store.history(c)
        if isinstance(e, lc.OrderPaid)
    )
    assert totals_after == totals_before
    shop.close()
    raw = _bytes_of(path)
    for s in secrets:
        assert s.encode() not in raw, s


def test_a_version_1_file_with_full_bodies_opens_and_reads(tmp_path: Path) -> None:
    from lifecycle.adapters.sqlite import _SCHEMA_V1

    path = tmp_path / "v1.db"
    event = lc.OrderPaid(
        customer_id="c1",
        order_id="o1",
        amount="10.00",
        currency="CNY",
        at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA_V1)
    db.execute("CREATE TABLE lifecycle_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO lifecycle_meta VALUES ('schema_version', '1')")
    db.execute(
        "INSERT INTO events (event_id, customer_id, at_us, rank, type, body) VALUES (?, ?, ?, ?, ?, ?)",
        (event.event_id, "c1", 0, event.rank, event.event_type, lc.event_to_json(event)),
    )
    db.execute("INSERT INTO customers VALUES ('c1', 1)")
    db.commit()
    db.close()
    store = SQLiteStore(path)
    assert store.history("c1") == (event,)
    store.close()
    check = sqlite3.connect(path)
    assert check.execute(
        "SELECT value FROM lifecycle_meta WHERE key = 'schema_version'"
    ).fetchone() == (str(SCHEMA_VERSION),)
    check.close()


def test_a_version_2_outbox_moves_its_texts_and_attempt_notes_into_typed_fields(
    tmp_path: Path,
) -> None:
    from lifecycle.adapters.sqlite import _SCHEMA_V1

    path = tmp_path / "v2.db"
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA_V1)
    db.execute("CREATE TABLE lifecycle_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO lifecycle_meta VALUES ('schema_version', '2')")
    db.execute("INSERT INTO customers VALUES ('c1', 3)")
    payload = json.dumps(
        {
            "text_en": "Hi Ann",
            "text_zh": "安你好",
            "valid_until": "2026-05-08T10:00:00+00:00",
            "priority": 40,
            "reason": "cadence.win_back",
            "contact_channel": None,
            "coupon": "X1",
        }
    )
    rows = [
        ("c1:a:1", "pending", 2, "#1 transient f1: timeout"),
        ("c1:a:2", "failed", 3, "#3 in_doubt f2 doubt: boom"),
        ("c1:a:3", "pending", 2, None),
    ]
    for key, state, attempts, note in rows:
        db.execute(
            "INSERT INTO outbox VALUES (?, 'c1', 'sms', '2026-05-01T10:00:00.000000+00:00', 'a', "
            "'marketing', 'win_back', ?, ?, ?, NULL, NULL, NULL, ?, NULL)",
            (key, payload, state, attempts, note),
        )
    # A host's own entry with values in its own form, and a sent message to a customer erased
    # later (older releases kept its text).
    odd = json.dumps({"text": "hello", "valid_until": "soon", "priority": "high"})
    db.execute(
        "INSERT INTO outbox VALUES ('host-1', 'c2', 'sms', '2026-05-01T10:00:00.000000+00:00', "
        "NULL, NULL, NULL, ?, 'pending', 0, NULL, NULL, NULL, NULL, NULL)",
        (odd,),
    )
    db.execute(
        "INSERT INTO outbox VALUES ('c3:a:1', 'c3', 'sms', '2026-05-01T10:00:00.000000+00:00', "
        "'a', 'marketing', NULL, ?, 'sent', 1, NULL, NULL, NULL, NULL, NULL)",
        (json.dumps({"text_en": "Hi Secret Name", "reason": "x", "valid_until": None}),),
    )
    erased = lc.CustomerErased(customer_id="c3", at=datetime(2026, 5, 2, tzinfo=UTC))
    db.execute(
        "INSERT INTO events (event_id, customer_id, at_us, rank, type, body) VALUES (?, ?, ?, ?, ?, ?)",
        (erased.event_id, "c3", 0, erased.rank, erased.event_type, "{}"),
    )
    db.commit()
    db.close()
    store = SQLiteStore(path)
    first, second, third = (store.outbox_entry(k) for k, *_ in rows)
    assert first is not None
    assert second is not None
    assert third is not None
    assert (first.text_en, first.text_zh, first.priority, first.reason) == (
        "Hi Ann",
        "安你好",
        40,
        "cadence.win_back",
    )
    assert first.valid_until == datetime(2026, 5, 8, 10, tzinfo=UTC)
    assert dict(first.payload) == {"coupon": "X1"}
    assert (first.settled, first.failures, first.in_doubt, first.last_error) == (
        1,
        1,
        False,
        "timeout",
    )
    assert not first.abandoned
    assert (second.settled, second.failures, second.in_doubt) == (3, 2, True)
    assert third.abandoned  # claimed twice, never settled: its outcome is unknown
    assert first.planned
    host = store.outbox_entry("host-1")
    assert host is not None
    assert (host.text_en, host.valid_until, host.priority, host.planned) == (
        "hello",
        None,
        0,
        False,
    )
    assert dict(host.payload) == {"valid_until": "soon", "priority": "high"}
    gone = store.outbox_entry("c3:a:1")
    assert gone is not None
    assert (gone.text_en, dict(gone.payload)) == ("", {})
    assert list(store.planning_due(datetime(2026, 5, 1, tzinfo=UTC))) == ["c1"]
    store.close()


def _indexes(path: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(path)
    try:
        rows = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        )
        return sorted((name, " ".join(sql.split())) for name, sql in rows)
    finally:
        db.close()


def test_a_bulk_batch_builds_the_customer_indexes_again_and_reads_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch as large as the table goes in without the customer indexes, which are built
    once afterwards: the file then has the indexes a new file has, and reads the same."""
    import lifecycle.adapters.sqlite as sqlite_store

    SQLiteStore(tmp_path / "fresh.db").close()
    expected = _indexes(tmp_path / "fresh.db")
    monkeypatch.setattr(sqlite_store, "_BULK_EVENTS", 10)
    events = [_paid(f"c{i % 7}", i) for i in range(60)]
    with lc.Lifecycle.open(tmp_path / "bulk.db", clock=lc.FixedClock(T0)) as shop:
        assert shop.record(events[:40]).recorded == 40  # into an empty table: bulk
        assert shop.record(events[40:]).recorded == 20  # smaller than the table: row by row
        histories = {cid: shop.history(cid) for cid in shop.store.customer_ids()}
    assert _indexes(tmp_path / "bulk.db") == expected
    with lc.Lifecycle.open(tmp_path / "rows.db", clock=lc.FixedClock(T0)) as other:
        monkeypatch.setattr(sqlite_store, "_BULK_EVENTS", 10**9)
        other.record(events)
        assert {cid: other.history(cid) for cid in other.store.customer_ids()} == histories


def test_a_bulk_batch_with_a_taken_id_is_refused_and_keeps_the_indexes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lifecycle.adapters.sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "_BULK_EVENTS", 5)
    path = tmp_path / "shop.db"
    store = SQLiteStore(path)
    try:
        first = [_paid("c1", i) for i in range(3)]
        assert store.append(first) == 3
        clash = lc.OrderPaid(
            customer_id="c2",  # another customer's event under a taken id
            at=T0,
            order_id="x",
            amount=Decimal("1.00"),
            currency="CNY",
            event_id=first[0].event_id,
        )
        with pytest.raises(lc.ConflictingEvent):
            store.append([clash, *(_paid("c2", i) for i in range(10))])
        assert store.histories(["c1", "c2"]) == {"c1": tuple(first)}
        again = [*(_paid("c3", i) for i in range(10)), first[1]]  # a repeat: skipped
        assert store.append(again) == 10
        # The bulk batch's temporary data went back to the file's default, refused or not.
        assert store._db.execute("PRAGMA temp_store").fetchone()[0] == 0
    finally:
        store.close()
    fresh = tmp_path / "fresh.db"
    SQLiteStore(fresh).close()
    assert _indexes(path) == _indexes(fresh)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(customer_id=st.sampled_from(["c1", "c2", "c3"])), max_size=30))
def test_any_events_read_back_the_same_through_the_bulk_path(batch: list[lc.Event]) -> None:
    """The rows of a bulk batch (generated writers, indexes built afterwards, temporary data in
    memory) read back as the events given, as row-by-row inserts do."""
    import lifecycle.adapters.sqlite as sqlite_store

    batch = list({e.event_id: e for e in batch}.values())
    with tempfile.TemporaryDirectory() as tmp:
        stored = {}
        for name, threshold in (("bulk", 1), ("rows", 10**9)):
            store = SQLiteStore(Path(tmp) / f"{name}.db")
            original = sqlite_store._BULK_EVENTS
            sqlite_store._BULK_EVENTS = threshold
            try:
                assert store.append(batch) == len(batch)
                stored[name] = store.histories(["c1", "c2", "c3"])
            finally:
                sqlite_store._BULK_EVENTS = original
                store.close()
    assert stored["bulk"] == stored["rows"]
    for cid, history in stored["bulk"].items():
        given_ = sorted((e for e in batch if e.customer_id == cid), key=lambda e: e.event_id)
        assert sorted(history, key=lambda e: e.event_id) == given_


def test_snapshot_instants_a_batch_shares_are_written_once_each_and_the_fold_kept(
    tmp_path: Path,
) -> None:
    """A batch's snapshots write each instant once, as text; two instants a zone's clock reads
    alike (the hour repeated when summer time ends) are still two instants."""
    from zoneinfo import ZoneInfo

    from lifecycle.ports import Snapshot

    berlin = ZoneInfo("Europe/Berlin")
    first = datetime(2026, 10, 25, 2, 30, tzinfo=berlin)  # 00:30 UTC
    second = first.replace(fold=1)  # 01:30 UTC
    assert first == second  # one zone: compared by the clock
    assert first.astimezone(UTC) != second.astimezone(UTC)
    store = SQLiteStore(tmp_path / "shop.db")
    try:
        store.append([_paid(f"c{i}", i) for i in range(4)])
        until = [first, second, first, None]
        store.put_snapshots(
            [
                Snapshot(
                    customer_id=f"c{i}",
                    stage=lc.Stage.FIRST_PURCHASE,
                    status=lc.Status.ACTIVE,
                    as_of=T0,
                    valid_until=until[i],
                    version=1,
                )
                for i in (3, 1, 0, 2)  # not in key order: stored all the same
            ]
        )
        got = {s.customer_id: s.valid_until for s in store.snapshots()}
        rows = store._db.execute("SELECT as_of FROM snapshots").fetchall()
    finally:
        store.close()
    assert {c: None if t is None else t.astimezone(UTC) for c, t in got.items()} == {
        "c0": datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        "c1": datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
        "c2": datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        "c3": None,
    }
    assert {r[0] for r in rows} == {T0.isoformat(timespec="microseconds")}
