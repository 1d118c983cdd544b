"""The server store beyond the conformance kit: choosing it by URL, schemas and prefixes, the
host's transaction, upgrades, driver errors, and erasure by crypto-shredding proven on the
servers' own data files."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import lifecycle as lc

sys.path.insert(0, str(Path(__file__).parent))
import servers

pytest.importorskip("sqlalchemy", reason="the sql extra is not installed")
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lifecycle.adapters.sql import MAX_ID_BYTES, SCHEMA_VERSION, SQLStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BACKENDS = ["postgresql", "mariadb"]


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest) -> servers.Server:
    return servers.server(request.param)


@pytest.fixture
def store(server: servers.Server) -> Any:
    s = server.store()
    yield s
    s.drop_tables()
    s.close()


def _paid(cid: str, n: int, amount: str = "5.00") -> lc.OrderPaid:
    return lc.OrderPaid(
        customer_id=cid,
        at=T0 + timedelta(days=n),
        order_id=f"{cid}-{n}",
        amount=Decimal(amount),
        currency="CNY",
    )


# -- choosing, naming, upgrading ---------------------------------------------------------------


def test_lifecycle_open_chooses_the_server_store_by_url(server: servers.Server) -> None:
    prefix = "opened_"
    clock = lc.FixedClock(T0 + timedelta(days=5))
    with lc.Lifecycle.open(server.url, schema=server.schema, prefix=prefix, clock=clock) as shop:
        assert isinstance(shop.store, SQLStore)
        shop.record(_paid("c1", 0), _paid("c1", 1))
    with lc.Lifecycle.open(server.url, schema=server.schema, prefix=prefix, clock=clock) as shop:
        assert shop.assess("c1").stage is lc.Stage.REPEAT
        assert shop.customers(stage=lc.Stage.REPEAT) == ["c1"]
        assert isinstance(shop.store, SQLStore)
        shop.store.drop_tables()


def test_two_prefixes_in_one_schema_are_two_shops(server: servers.Server) -> None:
    a, b = server.store("shop_a_"), server.store("shop_b_")
    try:
        a.append([_paid("c1", 0)])
        b.append([_paid("c2", 0), _paid("c2", 1)])
        assert list(a.customer_ids()) == ["c1"]
        assert list(b.customer_ids()) == ["c2"]
        assert b.version("c1") == 0
    finally:
        for s in (a, b):
            s.drop_tables()
            s.close()


def test_tables_from_a_newer_release_are_refused_by_name(
    server: servers.Server, store: SQLStore
) -> None:
    meta = server.table(store.prefix, "meta")
    with server.engine.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE {meta} SET value = :v WHERE {server.quote('key')} = 'schema_version'"),
            {"v": str(SCHEMA_VERSION + 1)},
        )
    for create in (True, False):
        with pytest.raises(lc.StoreError, match="newer release") as info:
            server.store(store.prefix, create=create)
        assert store.prefix in str(info.value)


def test_opening_without_create_refuses_missing_tables(server: servers.Server) -> None:
    with pytest.raises(lc.StoreError, match="missing or older"):
        server.store("never_made_", create=False)


def test_an_unreachable_server_is_a_store_error_naming_it() -> None:
    with pytest.raises(lc.StoreError, match="cannot connect") as info:
        SQLStore("postgresql://nobody@127.0.0.1:1/none")
    assert "127.0.0.1:1" in str(info.value)


def test_a_url_of_another_database_is_refused() -> None:
    with pytest.raises(lc.StoreError, match="PostgreSQL and MySQL"):
        SQLStore("oracle://scott@127.0.0.1/orcl")


def test_an_id_too_long_for_the_index_is_refused_and_changes_nothing(store: SQLStore) -> None:
    long_id = "x" * (MAX_ID_BYTES + 1)
    with pytest.raises(lc.StoreError, match=f"at most {MAX_ID_BYTES} bytes"):
        store.append([_paid("c1", 0), _paid(long_id, 0)])
    assert store.version("c1") == 0
    assert store.append([_paid("c1", 0)]) == 1


# -- the host's transaction ---------------------------------------------------------------------


def test_the_shops_order_and_the_event_commit_or_roll_back_together(
    server: servers.Server, store: SQLStore
) -> None:
    orders = sa.Table(
        f"{store.prefix}shop_orders",
        sa.MetaData(schema=server.schema),
        sa.Column("order_id", sa.String(40), primary_key=True),
        sa.Column("total", sa.Numeric(12, 2), nullable=False),
    )
    orders.create(server.engine)
    clock = lc.FixedClock(T0 + timedelta(days=3))
    try:
        with server.engine.begin() as conn:
            conn.execute(orders.insert(), {"order_id": "c1-0", "total": Decimal("5.00")})
            lc.Lifecycle(store=store.within(conn), clock=clock).record(_paid("c1", 0))

        def refused_payment() -> None:
            with server.engine.begin() as conn:
                conn.execute(orders.insert(), {"order_id": "c1-1", "total": Decimal("5.00")})
                lc.Lifecycle(store=store.within(conn), clock=clock).record(_paid("c1", 1))
                raise RuntimeError("the payment provider said no")

        with pytest.raises(RuntimeError):
            refused_payment()
        with server.engine.connect() as conn:
            assert [r[0] for r in conn.execute(sa.select(orders.c.order_id))] == ["c1-0"]
        assert [e.event_id for e in store.history("c1")] == ["order_paid:c1-0"]
        snap = store.snapshot("c1")
        assert snap is not None
        assert snap.version == 1
    finally:
        orders.drop(server.engine)


def test_a_refused_record_inside_the_hosts_transaction_leaves_the_hosts_writes(
    server: servers.Server, store: SQLStore
) -> None:
    store.append([_paid("c1", 0)])
    notes = sa.Table(
        f"{store.prefix}shop_notes",
        sa.MetaData(schema=server.schema),
        sa.Column("note", sa.String(40), primary_key=True),
    )
    notes.create(server.engine)
    try:
        with server.engine.begin() as conn:
            conn.execute(notes.insert(), {"note": "kept"})
            shop = lc.Lifecycle(store=store.within(conn), clock=lc.FixedClock(T0))
            with pytest.raises(lc.ConflictingEvent):
                shop.record(_paid("c1", 0, amount="6.00"))
        with server.engine.connect() as conn:
            assert [r[0] for r in conn.execute(sa.select(notes.c.note))] == ["kept"]
    finally:
        notes.drop(server.engine)


# -- erasure: crypto-shredding ----------------------------------------------------------------

CANARY = "Canary Zhao 13912345678 canary@example.com"


def _record_the_canary(shop: lc.Lifecycle) -> None:
    profile = lc.Profile(
        name=CANARY,
        timezone="Asia/Shanghai",
        contacts=(lc.ContactPoint(channel="email", address="canary@example.com"),),
    )
    shop.record(
        lc.CustomerRegistered(customer_id="c1", at=T0, profile=profile),
        _paid("c1", 1),
        _paid("c1", 20),
        lc.ReviewPosted(customer_id="c1", at=T0 + timedelta(days=21), rating=5, text=CANARY),
    )
    shop.store.append(
        [],
        outbox=[
            lc.OutboxEntry(
                key="c1:hello",
                customer_id="c1",
                channel="email",
                due_at=T0 + timedelta(days=40),
                text_en=f"Hello {CANARY}",
                payload={"name": CANARY},
            )
        ],
    )
    shop.record([_paid(f"other{i}", i) for i in range(20)])


def _raw(server: servers.Server, store: SQLStore, name: str, columns: str) -> list[Any]:
    with server.engine.connect() as conn:
        return list(
            conn.execute(sa.text(f"SELECT {columns} FROM {server.table(store.prefix, name)}"))
        )


def _keys_left(rows: list[Any], master_key: bytes | None) -> list[bytes]:
    """Every data key the store still holds, unwrapped (the store's layout: a first byte 0
    for a plain key, 1 for one wrapped with the master key, then nonce and ciphertext)."""
    out = []
    for cid, stored in rows:
        data = bytes(stored)
        if data[:1] == b"\x00":
            out.append(data[1:])
        else:
            assert master_key is not None
            out.append(AESGCM(master_key).decrypt(data[1:13], data[13:], bytes(cid)))
    return out


def _table(path: str) -> bool:
    """Whether a scanned file holds a table or an index (not a log, undo or the doublewrite)."""
    return path.endswith(".ibd") or path.startswith("base/")


def _wal_position(server: servers.Server) -> str:
    """The write-ahead log file PostgreSQL writes now (the scan reads it and those after)."""
    if not server.postgres:
        return ""
    with server.engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT pg_walfile_name(pg_current_wal_lsn())")).scalar())


def _data_files(server: servers.Server, store: SQLStore, since: str) -> dict[str, bytes]:
    """The bytes of every data file of the store's tables (and their indexes and TOAST), and
    the write-ahead log the server wrote since ``since``, as the server keeps them on disk."""
    if server.postgres:
        return _postgres_files(server, since)
    return _mariadb_files(server, store)


def _postgres_files(server: servers.Server, since: str) -> dict[str, bytes]:
    with server.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        if not conn.execute(
            sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        ).scalar():
            servers.unavailable("the scan reads the data files as a PostgreSQL superuser")
        conn.execute(sa.text("CHECKPOINT"))  # the shared buffers on disk
        paths = conn.execute(
            sa.text(
                "SELECT pg_relation_filepath(c.oid) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s "
                "AND c.relkind IN ('r', 'i', 't') "
                "UNION SELECT pg_relation_filepath(t.oid) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "JOIN pg_class t ON t.oid = c.reltoastrelid OR t.oid IN "
                "(SELECT indexrelid FROM pg_index WHERE indrelid = c.reltoastrelid) "
                "WHERE n.nspname = :s"
            ),
            {"s": server.schema},
        ).scalars()
        files = {
            p: bytes(conn.execute(sa.text("SELECT pg_read_binary_file(:p)"), {"p": p}).scalar())
            for p in paths
            if p
        }
        wal = conn.execute(
            sa.text(
                "SELECT name FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$' AND name >= :w "
                "ORDER BY name"
            ),
            {"w": since},
        ).scalars()
        for name in wal:
            path = f"pg_wal/{name}"
            files[path] = bytes(
                conn.execute(sa.text("SELECT pg_read_binary_file(:p)"), {"p": path}).scalar()
            )
    return files


def _mariadb_files(server: servers.Server, store: SQLStore) -> dict[str, bytes]:
    with server.engine.connect() as conn:
        datadir = Path(conn.execute(sa.text("SELECT @@datadir")).scalar())
        names = ", ".join(server.table(store.prefix, t) for t in (*servers.TABLES, "meta"))
        conn.execute(sa.text(f"FLUSH TABLES {names} FOR EXPORT"))  # the buffer pool on disk
        conn.execute(sa.text("UNLOCK TABLES"))
    folder = datadir / server.schema
    if not os.access(folder, os.R_OK):
        servers.unavailable(f"cannot read MariaDB's data directory {datadir} from here")
    files = {str(p): p.read_bytes() for p in folder.glob(f"{store.prefix}*.ibd")}
    # The redo log, the system tablespace (undo and the doublewrite buffer), undo tablespaces.
    for p in [*datadir.glob("ib_logfile*"), datadir / "ibdata1", *datadir.glob("undo0*")]:
        if p.is_file():
            files[str(p)] = p.read_bytes()
    return files


@pytest.mark.parametrize("master_key", [None, bytes(range(32))], ids=["plain_keys", "wrapped"])
def test_erased_personal_data_is_unreadable_in_every_file_the_server_writes(
    server: servers.Server, master_key: bytes | None
) -> None:
    since = _wal_position(server)
    store = server.store(master_key=master_key)
    shop = lc.Lifecycle(store=store, clock=lc.FixedClock(T0 + timedelta(days=40)))
    try:
        _record_the_canary(shop)
        canary = CANARY.encode()
        # Sealed at rest: the personal data is in no file the server writes, not even now.
        for path, data in _data_files(server, store, since).items():
            assert canary not in data, path
            assert b"canary@example.com" not in data, path
        (stored_key,) = [
            bytes(k)
            for c, k in _raw(server, store, "keys", "customer_id, data_key")
            if bytes(c) == b"c1"
        ]
        sealed = [
            (bytes(e), bytes(b))
            for c, e, b in _raw(server, store, "events", "customer_id, event_id, body")
            if bytes(c) == b"c1"
        ]
        assert all(b[:1] == b"\x01" for _, b in sealed)  # every event of c1, sealed
        # The scan sees what the tables hold: the sealed rows and the key, before the erasure.
        before = b"".join(d for p, d in _data_files(server, store, since).items() if _table(p))
        assert sealed[0][1] in before
        assert stored_key[1:] in before
        total_before = sum(
            e.amount
            for h in store.histories(store.customer_ids()).values()
            for e in h
            if isinstance(e, lc.OrderPaid)
        )

        shop.erase("c1")

        # The key is gone from the table, and from its file (purge rewrote it).
        assert b"c1" not in [bytes(c) for (c,) in _raw(server, store, "keys", "customer_id")]
        files = _data_files(server, store, since)
        for path in filter(_table, files):
            # The log keeps the key until the server recycles it: see docs/storage.md.
            assert stored_key[1:] not in files[path], path
        for path, data in files.items():
            assert canary not in data, path
        # Copies of the old rows (a backup, a replica, rows MVCC still keeps) cannot be opened:
        # no key the store holds opens them.
        left = _keys_left(_raw(server, store, "keys", "customer_id, data_key"), master_key)
        assert len(left) == 20  # the other customers'
        for event_id, blob in sealed:
            for key in left:
                with pytest.raises(InvalidTag):
                    AESGCM(key).decrypt(blob[1:13], blob[13:], event_id)
        if master_key is not None:
            # The key a backup holds is wrapped: rotate the master key and destroy the old
            # one, and it opens nothing ever again.
            store.rotate_master_key(bytes(range(1, 33)))
            wrapped = stored_key[1:]
            with pytest.raises(InvalidTag):
                AESGCM(bytes(range(1, 33))).decrypt(wrapped[:12], wrapped[12:], b"c1")
            shop.store = server.store(store.prefix, master_key=bytes(range(1, 33)))
        # The figures stay: amounts and dates are not personal data.
        total_after = sum(
            e.amount
            for h in shop.store.histories(shop.store.customer_ids()).values()
            for e in h
            if isinstance(e, lc.OrderPaid)
        )
        assert total_after == total_before
        text = repr(shop.history("c1")) + shop.export("c1")
        assert "Canary" not in text
        assert "canary@" not in text
        assert shop.assess("c1").stage is lc.Stage.REPEAT
    finally:
        store.drop_tables()
        store.close()


def test_a_value_sealed_for_one_row_does_not_open_in_another(
    server: servers.Server, store: SQLStore
) -> None:
    store.append([_paid("c1", 0), _paid("c1", 1)])
    events = server.table(store.prefix, "events")
    with server.engine.begin() as conn:
        first = conn.execute(sa.text(f"SELECT body FROM {events} ORDER BY seq")).first()
        assert first is not None
        conn.execute(
            sa.text(f"UPDATE {events} SET body = :b WHERE event_id = :e"),
            {"b": bytes(first[0]), "e": b"order_paid:c1-1"},
        )
    with pytest.raises(lc.StoreError, match="does not open"):
        store.history("c1")


def test_a_store_without_the_master_key_refuses_wrapped_keys(server: servers.Server) -> None:
    store = server.store(master_key=bytes(32))
    try:
        store.append([_paid("c1", 0)])
        with pytest.raises(lc.StoreError, match="master_key"):
            server.store(store.prefix).history("c1")
        with pytest.raises(lc.StoreError, match="does not open"):
            server.store(store.prefix, master_key=bytes([1] * 32)).history("c1")
        assert server.store(store.prefix, master_key=bytes(32)).version("c1") == 1
    finally:
        store.drop_tables()
        store.close()
