"""The server store: events, snapshots and the outbox in PostgreSQL or MySQL/MariaDB tables.

One implementation on SQLAlchemy Core, the same tables and meaning on both servers, each doing
the heavy parts its own way (``COPY`` on PostgreSQL, multi-row inserts on MariaDB). Personal
data is sealed with a key per customer (AES-GCM) that erasure destroys: crypto-shredding, so
that no copy the server keeps (old row versions, index pages, the WAL, backups) stays readable.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Connection, Engine

from lifecycle.adapters._urls import DRIVERS
from lifecycle.errors import ConcurrencyError, ConflictingEvent, StoreError
from lifecycle.events import Event, Referred, sort_key
from lifecycle.ports import OutboxEntry, OutboxState, PlanMark, Snapshot
from lifecycle.serde import event_body, event_from_body
from lifecycle.vocabulary import Stage, Status

__all__ = ["SCHEMA_VERSION", "SQLStore"]

#: The layout of the tables this release writes.
SCHEMA_VERSION: Final = 1

#: The longest id (customer, event, outbox key) in UTF-8 bytes: MariaDB indexes no longer key.
MAX_ID_BYTES: Final = 255

_T = TypeVar("_T")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
#: ``plan_marks.next_due`` of a customer to plan at once, and of one only new events make due.
_PLAN_NOW: Final = -(2**62)
_PLAN_NEVER: Final = 2**62
_UNSENT: Final = (OutboxState.PENDING.value, OutboxState.CLAIMED.value)
_CHUNK: Final = 5000  # ids per IN list: well below both servers' limit on bound parameters
_DEADLOCK_RETRIES: Final = 5
#: From this many events on, PostgreSQL gets them by COPY.
_COPY_FROM: Final = 200

#: The first byte of a stored personal value: plain (no personal data left) or sealed.
_PLAIN: Final = b"\x00"
_SEALED: Final = b"\x01"
_NONCE: Final = 12


def _us(at: datetime) -> int:
    """An instant as whole microseconds since 1970 UTC: exact, and ordered like time."""
    return (at - _EPOCH) // _MICROSECOND


def _opt_us(at: datetime | None) -> int | None:
    return None if at is None else _us(at)


def _from_us(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + timedelta(microseconds=us)


def _b(text: str) -> bytes:
    return text.encode("utf-8")


def _opt_b(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8")


def _s(data: bytes | memoryview) -> str:
    return bytes(data).decode("utf-8")


def _opt_s(data: bytes | memoryview | None) -> str | None:
    return None if data is None else bytes(data).decode("utf-8")


def _chunks(items: Sequence[_T], size: int = _CHUNK) -> Iterator[Sequence[_T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _normalise_url(url: str | sa.URL) -> sa.URL:
    """``url`` with this store's driver when it names none (psycopg 3, PyMySQL)."""
    parsed = sa.make_url(url)
    driver = DRIVERS.get(parsed.drivername)
    if driver is not None:
        parsed = parsed.set(drivername=driver)
    backend = parsed.get_backend_name()
    if backend not in ("postgresql", "mysql", "mariadb"):
        raise StoreError(
            f"SQLStore runs on PostgreSQL and MySQL/MariaDB, not {parsed.drivername!r}"
        )
    if backend in ("mysql", "mariadb") and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


# -- sealing -----------------------------------------------------------------------------------

#: Keys of the shop's own settings in the meta table (:class:`lifecycle.ports.ShopSettings`).
_SETTING: Final = "shop."


class _Keys:
    """The customers' data keys for one transaction: seal and open their personal values."""

    def __init__(self, keys: Mapping[str, bytes]):
        self._ciphers = {cid: AESGCM(k) for cid, k in keys.items()}

    def seal(self, customer_id: str, data: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return _SEALED + nonce + self._ciphers[customer_id].encrypt(nonce, data, aad)

    def open(self, customer_id: str, blob: bytes | memoryview, aad: bytes) -> bytes:
        data = bytes(blob)
        if data[:1] == _PLAIN:
            return data[1:]
        cipher = self._ciphers.get(customer_id)
        if cipher is None:
            raise StoreError(
                f"customer {customer_id!r}: a sealed value whose key was destroyed (erased)"
            )
        try:
            return cipher.decrypt(data[1 : 1 + _NONCE], data[1 + _NONCE :], aad)
        except InvalidTag:
            raise StoreError(
                f"customer {customer_id!r}: a sealed value does not open with the customer's key"
            ) from None


def _wrap(master: AESGCM | None, customer_id: str, key: bytes) -> bytes:
    if master is None:
        return _PLAIN + key
    nonce = os.urandom(_NONCE)
    return _SEALED + nonce + master.encrypt(nonce, key, _b(customer_id))


def _unwrap(master: AESGCM | None, customer_id: str, stored: bytes | memoryview) -> bytes:
    data = bytes(stored)
    if data[:1] == _PLAIN:
        return data[1:]
    if master is None:
        raise StoreError("the customers' keys are wrapped: open the store with its master_key")
    try:
        return master.decrypt(data[1 : 1 + _NONCE], data[1 + _NONCE :], _b(customer_id))
    except InvalidTag:
        raise StoreError("the master_key does not open the customers' keys") from None


# -- the tables --------------------------------------------------------------------------------

#: An id: exact bytes (no collation folds case or trailing spaces), sorted like Python strings.
_Id = sa.LargeBinary().with_variant(mysql.VARBINARY(MAX_ID_BYTES), "mysql", "mariadb")
#: Free text and sealed values: bytes, so that any text (NUL included) is kept as given.
_Blob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


class _Tables:
    """The store's tables, named ``{prefix}events`` and so on, in ``schema``."""

    def __init__(self, schema: str | None, prefix: str):
        md = self.metadata = sa.MetaData(schema=schema)
        c = sa.Column
        self.meta = sa.Table(
            f"{prefix}meta",
            md,
            c("key", sa.String(64), primary_key=True),
            c("value", sa.Text, nullable=False),
        )
        self.events = sa.Table(
            f"{prefix}events",
            md,
            c("seq", sa.BigInteger, primary_key=True, autoincrement=True),
            c("event_id", _Id, nullable=False, unique=True),
            c("customer_id", _Id, nullable=False),
            c("at_us", sa.BigInteger, nullable=False),
            c("rank", sa.Integer, nullable=False),
            c("type", sa.String(64), nullable=False),
            c("body", _Blob, nullable=False),
            sa.Index(f"{prefix}events_by_customer", "customer_id", "seq"),
        )
        self.customers = sa.Table(
            f"{prefix}customers",
            md,
            c("customer_id", _Id, primary_key=True),
            c("version", sa.BigInteger, nullable=False),
        )
        self.keys = sa.Table(
            f"{prefix}keys",
            md,
            c("customer_id", _Id, primary_key=True),
            c("data_key", sa.LargeBinary, nullable=False),
        )
        self.referrals = sa.Table(
            f"{prefix}referrals",
            md,
            c("referred_id", _Id, primary_key=True),
            c("referrer_id", _Id, primary_key=True),
        )
        self.snapshots = sa.Table(
            f"{prefix}snapshots",
            md,
            c("customer_id", _Id, primary_key=True),
            c("stage", sa.SmallInteger, nullable=False),
            c("status", sa.String(16)),
            c("as_of", sa.BigInteger, nullable=False),
            c("valid_until", sa.BigInteger),
            c("version", sa.BigInteger, nullable=False),
            c("state", _Blob),
            sa.Index(f"{prefix}snapshots_by_stage", "stage", "status"),
            sa.Index(f"{prefix}snapshots_by_expiry", "valid_until"),
        )
        self.outbox = sa.Table(
            f"{prefix}outbox",
            md,
            c("key", _Id, primary_key=True),
            c("customer_id", _Id, nullable=False),
            c("channel", _Blob, nullable=False),
            c("due_at", sa.BigInteger, nullable=False),
            c("rule", _Blob),
            c("purpose", _Blob),
            c("template", _Blob),
            c("valid_until", sa.BigInteger),
            c("priority", sa.Integer, nullable=False),
            c("reason", _Blob),
            c("contact_channel", _Blob),
            c("planned", sa.Boolean, nullable=False),
            c("content", _Blob),  # sealed: texts, subjects and payload
            c("state", sa.String(16), nullable=False),
            c("attempts", sa.Integer, nullable=False),
            c("settled", sa.Integer, nullable=False),
            c("failures", sa.Integer, nullable=False),
            c("in_doubt", sa.Boolean, nullable=False),
            c("next_attempt_at", sa.BigInteger),
            c("claimed_by", _Blob),
            c("lease_until", sa.BigInteger),
            c("last_error", _Blob),  # sealed: an error may quote an address
            c("updated_at", sa.BigInteger),
            sa.Index(f"{prefix}outbox_by_due", "state", "next_attempt_at"),
            sa.Index(f"{prefix}outbox_by_customer", "customer_id", "state", "lease_until"),
        )
        self.plan_marks = sa.Table(
            f"{prefix}plan_marks",
            md,
            c("customer_id", _Id, primary_key=True),
            c("next_due", sa.BigInteger, nullable=False),
            c("stamp", sa.BigInteger, nullable=False),
            sa.Index(f"{prefix}plan_marks_by_due", "next_due"),
        )

    def all(self) -> list[sa.Table]:
        return list(self.metadata.sorted_tables)


_OUTBOX_PLAIN: Final = (
    "key",
    "customer_id",
    "channel",
    "due_at",
    "rule",
    "purpose",
    "template",
    "valid_until",
    "priority",
    "reason",
    "contact_channel",
    "planned",
    "content",
    "state",
    "attempts",
    "settled",
    "failures",
    "in_doubt",
    "next_attempt_at",
    "claimed_by",
    "lease_until",
    "last_error",
    "updated_at",
)


class SQLStore:
    """A :class:`~lifecycle.ports.Store` and :class:`~lifecycle.ports.PlanIndex` on PostgreSQL
    or MySQL/MariaDB, safe for many processes and threads.

    Args:
        engine_or_url: a SQLAlchemy ``Engine``, or a URL (``postgresql://user@host/db``,
            ``mysql://root@host/db``, ``mariadb://...``); a URL without a driver gets psycopg 3
            or PyMySQL. An engine given stays the host's: :meth:`close` leaves it open.
        schema: the PostgreSQL schema or MySQL database of the tables (created if missing);
            ``None`` means the connection's default.
        prefix: put before every table name, so that several shops share one schema.
        master_key: 32 bytes kept outside the database (a secret store, a KMS) that wraps the
            customers' data keys, so that a copy of the database alone (a backup, a replica, the
            WAL) opens nothing; ``None`` keeps the data keys unwrapped. See
            :meth:`rotate_master_key`.
        create: create the tables, or upgrade them, when needed.

    Raises:
        StoreError: the server cannot be reached, or its tables were written by a newer release.
    """

    def __init__(
        self,
        engine_or_url: Engine | str | sa.URL,
        *,
        schema: str | None = None,
        prefix: str = "lifecycle_",
        master_key: bytes | None = None,
        create: bool = True,
    ):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,30}", prefix or "_"):
            raise StoreError(f"a table prefix is letters, digits and '_', not {prefix!r}")
        self._own_engine = not isinstance(engine_or_url, Engine)
        if isinstance(engine_or_url, Engine):
            engine = engine_or_url
        else:
            engine = sa.create_engine(_normalise_url(engine_or_url), pool_recycle=1800)
        # Writers run read committed: every statement (and every lock) sees the latest
        # committed rows, the same on both servers (MariaDB's default, repeatable read, would
        # not). Readers keep the connection's level: setting it costs a round trip each time.
        self._engine = engine
        self._writer = engine.execution_options(isolation_level="READ COMMITTED")
        # Every read is one statement (values and keys joined): on PostgreSQL it runs without
        # a transaction around it, which saves two round trips (psycopg sets autocommit on the
        # client side).
        self._reader = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else engine
        )
        self._conn: Connection | None = None
        self.schema = schema
        self.prefix = prefix
        self._t = _Tables(schema, prefix)
        self._master = self._master_cipher(master_key)
        self._backend = engine.dialect.name
        self._postgres = self._backend == "postgresql"
        self._closed = False
        self._lock = threading.Lock()
        url = engine.url.render_as_string(hide_password=True)
        self._where = f"{url} {schema + '.' if schema else ''}{prefix}*"
        if create:
            self._migrate()
        else:
            self._check_version()

    @staticmethod
    def _master_cipher(master_key: bytes | None) -> AESGCM | None:
        if master_key is None:
            return None
        if len(master_key) != 32:
            raise StoreError("a master_key is 32 bytes (AES-256)")
        return AESGCM(master_key)

    # -- sharing a host's transaction ---------------------------------------------------------

    def within(self, connection: Connection) -> SQLStore:
        """This store on the host's ``connection``, inside the transaction it has begun.

        Every call then runs in a savepoint of that transaction (a refused call undoes its own
        writes and nothing of the host's), and commits when the host commits: the shop's order
        and the library's event are stored together or not at all. The view is for one thread,
        for as long as the transaction lasts; it does not purge after an erasure (do it with
        :meth:`purge` once the transaction is committed).
        """
        self._check_open()
        view = object.__new__(SQLStore)
        view.__dict__.update(self.__dict__)
        view._conn = connection
        view._own_engine = False
        view._lock = threading.Lock()
        return view

    # -- plumbing -----------------------------------------------------------------------------

    def _fail(self, e: BaseException) -> StoreError:
        orig = getattr(e, "orig", None) or e
        first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        if isinstance(e, sa.exc.OperationalError) and "connect" in first.lower():
            return StoreError(f"{self._where}: cannot connect: {first}")
        return StoreError(f"{self._where}: {first}")

    @staticmethod
    def _retryable(e: sa.exc.DBAPIError) -> bool:
        orig = e.orig
        code = getattr(orig, "sqlstate", None)
        if code in ("40P01", "40001"):  # deadlock, serialization failure
            return True
        args: tuple[Any, ...] = getattr(orig, "args", ())
        return bool(args) and args[0] in (1213, 1205)  # MariaDB: deadlock, lock wait timeout

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self._where}: the store is closed")

    def _write(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work`` in one transaction: all of it or none of it.

        A transaction the server chose as a deadlock's victim is run again (it changed
        nothing); the writers' locks are taken in id order, so that is rare.
        """
        self._check_open()
        for attempt in range(_DEADLOCK_RETRIES + 1):
            try:
                if self._conn is not None:
                    with self._lock, self._conn.begin_nested():
                        return work(self._conn)
                with self._writer.begin() as conn:
                    return work(conn)
            except sa.exc.DBAPIError as e:
                if self._conn is None and self._retryable(e) and attempt < _DEADLOCK_RETRIES:
                    time.sleep(0.001 * (attempt + 1))
                    continue
                raise self._fail(e) from e
            except sa.exc.SQLAlchemyError as e:
                raise self._fail(e) from e
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        self._check_open()
        try:
            if self._conn is not None:
                with self._lock:
                    yield self._conn
            else:
                with self._reader.connect() as conn:
                    yield conn
        except sa.exc.SQLAlchemyError as e:
            raise self._fail(e) from e

    def _name(self, table: sa.Table) -> str:
        """The table's name quoted for raw SQL, with its schema."""
        return self._engine.dialect.identifier_preparer.format_table(table)

    # -- schema -------------------------------------------------------------------------------

    @contextmanager
    def _migration_lock(self, conn: Connection) -> Iterator[None]:
        """One process at a time creates or upgrades the tables."""
        name = f"lifecycle:{self.schema or ''}:{self.prefix}"
        if self._postgres:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": name})
            yield
        else:
            conn.execute(sa.text("SELECT GET_LOCK(:n, 60)"), {"n": name[:64]})
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": name[:64]})

    def _stored_version(self, conn: Connection) -> int:
        if not sa.inspect(conn).has_table(self._t.meta.name, schema=self.schema):
            return 0
        row = conn.execute(
            sa.select(self._t.meta.c.value).where(self._t.meta.c.key == "schema_version")
        ).first()
        return int(row[0]) if row else 0

    def _refuse_newer(self, current: int) -> None:
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self._where}: written by a newer release (schema version {current}; this "
                f"release reads up to {SCHEMA_VERSION}); upgrade lifecycle to open it"
            )

    def _check_version(self) -> None:
        with self._reading() as conn:
            current = self._stored_version(conn)
        self._refuse_newer(current)
        if current < SCHEMA_VERSION:
            raise StoreError(
                f"{self._where}: the tables are missing or older (schema version {current}); "
                "open the store with create=True to create or upgrade them"
            )

    def _migrate(self) -> None:
        try:
            with self._engine.begin() as conn:
                if self.schema is not None:
                    conn.execute(sa.schema.CreateSchema(self.schema, if_not_exists=True))
            with self._engine.begin() as conn, self._migration_lock(conn):
                current = self._stored_version(conn)
                self._refuse_newer(current)
                if current < SCHEMA_VERSION:
                    # Version 1 is the first layout; later versions add their steps here.
                    self._t.metadata.create_all(conn, checkfirst=True)
                    self._set_meta(conn, "schema_version", str(SCHEMA_VERSION))
        except sa.exc.SQLAlchemyError as e:
            raise self._fail(e) from e

    def _set_meta(self, conn: Connection, key: str, value: str) -> None:
        self._upsert(conn, self._t.meta, [{"key": key, "value": value}], ["key"], ["value"])

    def _upsert(
        self,
        conn: Connection,
        table: sa.Table,
        rows: Sequence[Mapping[str, Any]],
        keys: Sequence[str],
        update: Sequence[str],
    ) -> None:
        """Insert ``rows``; a row whose ``keys`` are taken updates the ``update`` columns
        (none: the stored row stays as it is)."""
        if not rows:
            return
        stmt: Any
        if self._postgres:
            ins = postgresql.insert(table)
            if update:
                stmt = ins.on_conflict_do_update(
                    index_elements=list(keys), set_={c: ins.excluded[c] for c in update}
                )
            else:
                stmt = ins.on_conflict_do_nothing(index_elements=list(keys))
        else:
            mins = mysql.insert(table)
            cols = update or keys[:1]
            stmt = mins.on_duplicate_key_update(
                {c: (mins.inserted[c] if update else table.c[c]) for c in cols}
            )
        conn.execute(stmt, list(rows))

    # -- keys ---------------------------------------------------------------------------------

    def _keys(self, conn: Connection, customer_ids: Iterable[str], *, create: bool) -> _Keys:
        """The data keys of ``customer_ids``; with ``create``, a new key for each that has none."""
        ids = sorted(set(customer_ids))
        t = self._t.keys
        found: dict[str, bytes] = {}

        def read(some: Sequence[str]) -> None:
            for chunk in _chunks(some):
                for cid, stored in conn.execute(
                    sa.select(t.c.customer_id, t.c.data_key).where(
                        t.c.customer_id.in_([_b(c) for c in chunk])
                    )
                ):
                    c = _s(cid)
                    found[c] = _unwrap(self._master, c, stored)

        read(ids)
        missing = [c for c in ids if c not in found]
        if create and missing:
            fresh = {c: AESGCM.generate_key(bit_length=256) for c in missing}
            self._upsert(
                conn,
                t,
                [
                    {"customer_id": _b(c), "data_key": _wrap(self._master, c, k)}
                    for c, k in fresh.items()
                ],
                ["customer_id"],
                [],
            )
            read(missing)  # a writer in between may have made the key first: use theirs
        return _Keys(found)

    def _keyed(self, query: Any, customer_id: Any) -> Any:
        """``query`` with the data key of the row's customer as its last column: one
        statement reads the values and the key that opens them."""
        k = self._t.keys
        return query.add_columns(k.c.data_key).outerjoin(k, k.c.customer_id == customer_id)

    def _keys_of(self, rows: Iterable[Sequence[Any]], customer: int) -> _Keys:
        """The keys read by a :meth:`_keyed` query, by customer (column ``customer``)."""
        found: dict[str, bytes] = {}
        for r in rows:
            cid = _s(r[customer])
            if r[-1] is not None and cid not in found:
                found[cid] = _unwrap(self._master, cid, r[-1])
        return _Keys(found)

    # -- events -------------------------------------------------------------------------------

    def _lock_versions(self, conn: Connection, customer_ids: Iterable[str]) -> dict[str, int]:
        """The versions of the stored customers among ``customer_ids``, their rows locked until
        the transaction ends (in id order, so that writers never wait for each other in a
        circle)."""
        t = self._t.customers
        out: dict[str, int] = {}
        for chunk in _chunks(sorted(set(customer_ids))):
            rows = conn.execute(
                sa.select(t.c.customer_id, t.c.version)
                .where(t.c.customer_id.in_([_b(c) for c in chunk]))
                .order_by(t.c.customer_id)
                .with_for_update()
            )
            out.update((_s(c), int(v)) for c, v in rows)
        return out

    def _stored_events(self, conn: Connection, ids: Sequence[str]) -> dict[str, Event]:
        t = self._t.events
        rows: list[Sequence[Any]] = []
        for chunk in _chunks(ids):
            query = sa.select(t.c.event_id, t.c.customer_id, t.c.body).where(
                t.c.event_id.in_([_b(i) for i in chunk])
            )
            rows += conn.execute(self._keyed(query, t.c.customer_id)).all()
        keys = self._keys_of(rows, 1)
        out: dict[str, Event] = {}
        for e, c, b, _ in rows:
            eid, cid = _s(e), _s(c)
            out[eid] = event_from_body(keys.open(cid, b, bytes(e)), customer_id=cid, event_id=eid)
        return out

    def _insert_rows(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        """Insert event rows (event id, customer id, at, rank, type, body): COPY on
        PostgreSQL, multi-row inserts elsewhere."""
        t = self._t.events
        if self._postgres:
            raw: Any = conn.connection.dbapi_connection
            sql = (
                f"COPY {self._name(t)} (event_id, customer_id, at_us, rank, type, body) "
                "FROM STDIN (FORMAT BINARY)"
            )
            try:
                with raw.cursor() as cur, cur.copy(sql) as copy:
                    copy.set_types(["bytea", "bytea", "int8", "int4", "text", "bytea"])
                    for row in rows:
                        copy.write_row(row)
            except Exception as e:
                # The driver's own error, as SQLAlchemy would have wrapped it.
                state = getattr(e, "sqlstate", None)
                if state is None:
                    raise
                kind = sa.exc.IntegrityError if state.startswith("23") else sa.exc.DBAPIError
                raise kind(sql, None, e) from e
            return
        names = ("event_id", "customer_id", "at_us", "rank", "type", "body")
        for chunk in _chunks(rows, 1000):
            conn.execute(t.insert(), [dict(zip(names, r, strict=True)) for r in chunk])

    def _insert_events(self, conn: Connection, events: Sequence[Event]) -> dict[str, int]:
        """Insert the events not stored yet (ConflictingEvent on a clash): how many are new per
        customer. The customers' rows are locked already."""
        batch = {e.event_id: e for e in events}
        if len(batch) < len(events):  # ids repeat within the batch: same event, or a clash
            for e in events:
                if batch[e.event_id] != e:
                    raise ConflictingEvent(e.event_id)
        if not batch:
            return {}
        for e in batch.values():
            if len(_b(e.event_id)) > MAX_ID_BYTES or len(_b(e.customer_id)) > MAX_ID_BYTES:
                raise StoreError(
                    f"event {e.event_id[:40]!r}: ids are at most {MAX_ID_BYTES} bytes in UTF-8"
                )
        keys = self._keys(conn, {e.customer_id for e in batch.values()}, create=True)

        def row(e: Event) -> tuple[Any, ...]:
            eid = _b(e.event_id)
            body = keys.seal(e.customer_id, _b(event_body(e)), eid)
            return (eid, _b(e.customer_id), _us(sort_key(e)[0]), e.rank, e.event_type, body)

        rows = sorted((row(e) for e in batch.values()), key=lambda r: (r[1], r[2]))
        new = list(batch.values())
        if self._postgres and len(rows) < _COPY_FROM:
            # A few events (a dispatcher's, a web request's): one statement that skips the
            # ids taken, instead of a savepoint around COPY.
            t = self._t.events
            names = ("event_id", "customer_id", "at_us", "rank", "type", "body")
            ins = (
                postgresql.insert(t)
                .on_conflict_do_nothing(index_elements=["event_id"])
                .returning(t.c.event_id)
            )
            params = [dict(zip(names, r, strict=True)) for r in rows]
            result = conn.execute(ins, params[0]) if len(params) == 1 else conn.execute(ins, params)
            inserted = {bytes(r[0]) for r in result}
            if len(inserted) < len(rows):
                stored = self._stored_events(conn, [i for i in batch if _b(i) not in inserted])
                for event_id, event in stored.items():
                    if event != batch[event_id]:
                        raise ConflictingEvent(event_id)
                new = [e for e in batch.values() if _b(e.event_id) in inserted]
        else:
            new = self._insert_all(conn, batch, rows)
        counts: dict[str, int] = {}
        for e in new:
            counts[e.customer_id] = counts.get(e.customer_id, 0) + 1
        return counts

    def _insert_all(
        self, conn: Connection, batch: Mapping[str, Event], rows: list[tuple[Any, ...]]
    ) -> list[Event]:
        """Insert ``rows`` in bulk; the events that were new."""
        new = list(batch.values())
        # Usually every event is new (the facade has filtered repeats): insert them all at
        # once, and only when an id is taken, go back and sort repeats from conflicts.
        try:
            with conn.begin_nested():
                self._insert_rows(conn, rows)
        except sa.exc.IntegrityError:
            stored = self._stored_events(conn, list(batch))
            for event_id, event in stored.items():
                if event != batch[event_id]:
                    raise ConflictingEvent(event_id) from None
            new = [e for i, e in batch.items() if i not in stored]
            taken = {_b(i) for i in stored}
            self._insert_rows(conn, [r for r in rows if r[0] not in taken])
        return new

    def _store(
        self,
        conn: Connection,
        events: Sequence[Event],
        snapshots: Sequence[Snapshot],
        outbox: Sequence[OutboxEntry],
        expected: Mapping[str, int] | None,
    ) -> int:
        """Everything :meth:`append` and :meth:`settle` store, in the caller's transaction."""
        lock = (
            {e.customer_id for e in events}
            | set(expected or ())
            | {s.customer_id for s in snapshots}
        )
        versions = self._lock_versions(conn, lock)
        for cid, version in (expected or {}).items():
            if versions.get(cid, 0) != version:
                raise ConcurrencyError(cid)
        counts = self._insert_events(conn, events)
        if counts:
            t = self._t.customers
            ids = sorted(counts)
            stmt: Any
            if self._postgres:
                ins = postgresql.insert(t)
                stmt = ins.on_conflict_do_update(
                    index_elements=["customer_id"],
                    set_={"version": t.c.version + ins.excluded.version},
                )
            else:
                mins = mysql.insert(t)
                stmt = mins.on_duplicate_key_update(
                    {"version": t.c.version + mins.inserted.version}
                )
            conn.execute(stmt, [{"customer_id": _b(c), "version": counts[c]} for c in ids])
            # A customer new to this transaction was not locked before: another writer may
            # have added events too. Read the versions now that the rows are ours.
            unlocked = [c for c in ids if c not in versions]
            after = self._lock_versions(conn, unlocked) if unlocked else {}
            for cid in ids:
                if cid in versions:
                    versions[cid] += counts[cid]
                else:
                    versions[cid] = after[cid]
                    if expected is not None and cid in expected and after[cid] != counts[cid]:
                        raise ConcurrencyError(cid)
            self._referrals(conn, [e for e in events if isinstance(e, Referred)])
            self._plan_now(conn, ids)
        self._put_snapshots(conn, snapshots, versions)
        self._insert_outbox(conn, outbox)
        return sum(counts.values())

    def _referrals(self, conn: Connection, referred: Sequence[Referred]) -> None:
        pairs = sorted({(_b(e.referred_id), _b(e.customer_id)) for e in referred})
        self._upsert(
            conn,
            self._t.referrals,
            [{"referred_id": a, "referrer_id": b} for a, b in pairs],
            ["referred_id", "referrer_id"],
            [],
        )

    def _plan_now(self, conn: Connection, customer_ids: Sequence[str]) -> None:
        """Make these customers, and those who referred them, due for planning."""
        t = self._t.plan_marks
        if self._postgres:
            ins = postgresql.insert(t)
            stmt: Any = ins.on_conflict_do_update(
                index_elements=["customer_id"],
                set_={"next_due": ins.excluded.next_due, "stamp": t.c.stamp + 1},
            )
        else:
            mins = mysql.insert(t)
            # A literal 1: PyMySQL's many-row insert takes no parameter after its VALUES.
            stmt = mins.on_duplicate_key_update(
                {"next_due": mins.inserted.next_due, "stamp": t.c.stamp + sa.literal_column("1")}
            )
        conn.execute(
            stmt, [{"customer_id": _b(c), "next_due": _PLAN_NOW, "stamp": 1} for c in customer_ids]
        )
        r = self._t.referrals
        for chunk in _chunks(customer_ids):
            referrers = sorted(
                {
                    bytes(x)
                    for (x,) in conn.execute(
                        sa.select(r.c.referrer_id).where(
                            r.c.referred_id.in_([_b(c) for c in chunk])
                        )
                    )
                }
            )
            if referrers:
                conn.execute(
                    t.update()
                    .where(t.c.customer_id.in_(referrers))
                    .values(next_due=_PLAN_NOW, stamp=t.c.stamp + 1)
                )

    def _put_snapshots(
        self, conn: Connection, snapshots: Sequence[Snapshot], versions: Mapping[str, int]
    ) -> None:
        """Store the snapshots of the current version (``versions``, read under lock)."""
        keep = {s.customer_id: s for s in snapshots if versions.get(s.customer_id) == s.version}
        if not keep:
            return
        keys = self._keys(conn, [c for c, s in keep.items() if s.state is not None], create=True)
        rows = [
            {
                "customer_id": _b(c),
                "stage": int(s.stage),
                "status": None if s.status is None else s.status.value,
                "as_of": _us(s.as_of),
                "valid_until": _opt_us(s.valid_until),
                "version": s.version,
                "state": None if s.state is None else keys.seal(c, s.state, _b(c) + b"\x00state"),
            }
            for c, s in sorted(keep.items())
        ]
        self._upsert(
            conn,
            self._t.snapshots,
            rows,
            ["customer_id"],
            ["stage", "status", "as_of", "valid_until", "version", "state"],
        )

    def _insert_outbox(self, conn: Connection, outbox: Sequence[OutboxEntry]) -> None:
        if not outbox:
            return
        for o in outbox:
            if len(_b(o.key)) > MAX_ID_BYTES or len(_b(o.customer_id)) > MAX_ID_BYTES:
                raise StoreError(
                    f"outbox entry {o.key[:40]!r}: keys and customer ids are at most "
                    f"{MAX_ID_BYTES} bytes in UTF-8"
                )
        keys = self._keys(conn, {o.customer_id for o in outbox}, create=True)
        first: dict[str, OutboxEntry] = {}
        for o in outbox:
            first.setdefault(o.key, o)
        self._upsert(
            conn,
            self._t.outbox,
            [_outbox_row(o, keys) for _, o in sorted(first.items())],
            ["key"],
            [],
        )

    def append(
        self,
        events: Sequence[Event],
        snapshots: Sequence[Snapshot] = (),
        *,
        outbox: Sequence[OutboxEntry] = (),
        expected_versions: Mapping[str, int] | None = None,
    ) -> int:
        return self._write(
            lambda conn: self._store(conn, events, snapshots, outbox, expected_versions)
        )

    def events_by_id(self, event_ids: Iterable[str]) -> dict[str, Event]:
        with self._reading() as conn:
            return self._stored_events(conn, list(dict.fromkeys(event_ids)))

    def _read_events(
        self, conn: Connection, where: Any, *, since: tuple[str, int] | None = None
    ) -> dict[str, tuple[Event, ...]]:
        t = self._t.events
        query = sa.select(t.c.customer_id, t.c.event_id, t.c.body).where(where)
        if since is not None:
            cid, version = since
            stored = (
                sa.select(t.c.seq)
                .where(t.c.customer_id == _b(cid))
                .order_by(t.c.seq)
                .limit(2**62)
                .offset(max(version, 0))
                .subquery()
            )
            query = query.join_from(t, stored, stored.c.seq == t.c.seq)
        query = self._keyed(query, t.c.customer_id)
        rows = conn.execute(
            query.order_by(t.c.customer_id, t.c.at_us, t.c.rank, t.c.event_id)
        ).all()
        keys = self._keys_of(rows, 0)
        out: dict[str, list[Event]] = {}
        for c, e, body, _ in rows:
            cid, eid = _s(c), _s(e)
            event = event_from_body(keys.open(cid, body, bytes(e)), customer_id=cid, event_id=eid)
            out.setdefault(cid, []).append(event)
        return {c: tuple(h) for c, h in out.items()}

    def history(self, customer_id: str) -> tuple[Event, ...]:
        with self._reading() as conn:
            found = self._read_events(conn, self._t.events.c.customer_id == _b(customer_id))
        return found.get(customer_id, ())

    def histories(self, customer_ids: Iterable[str]) -> dict[str, tuple[Event, ...]]:
        out: dict[str, tuple[Event, ...]] = {}
        col = self._t.events.c.customer_id
        with self._reading() as conn:
            for chunk in _chunks(sorted(set(customer_ids))):
                out.update(self._read_events(conn, col.in_([_b(c) for c in chunk])))
        return out

    def history_since(self, customer_id: str, version: int) -> tuple[Event, ...]:
        col = self._t.events.c.customer_id
        with self._reading() as conn:
            found = self._read_events(conn, col == _b(customer_id), since=(customer_id, version))
        return found.get(customer_id, ())

    def version(self, customer_id: str) -> int:
        t = self._t.customers
        with self._reading() as conn:
            v = conn.execute(
                sa.select(t.c.version).where(t.c.customer_id == _b(customer_id))
            ).scalar()
        return int(v or 0)

    def versions(self, customer_ids: Iterable[str] | None = None) -> dict[str, int]:
        t = self._t.customers
        query = sa.select(t.c.customer_id, t.c.version).where(t.c.version > 0)
        with self._reading() as conn:
            if customer_ids is None:
                everyone = query.order_by(t.c.customer_id)
                return {_s(c): int(v) for c, v in conn.execute(everyone)}
            out: dict[str, int] = {}
            for chunk in _chunks(sorted(set(customer_ids))):
                rows = conn.execute(query.where(t.c.customer_id.in_([_b(c) for c in chunk])))
                out.update((_s(c), int(v)) for c, v in rows)
            return out

    def customer_ids(self) -> Iterator[str]:
        t = self._t.customers
        with self._reading() as conn:
            ids = [
                _s(c)
                for (c,) in conn.execute(
                    sa.select(t.c.customer_id).where(t.c.version > 0).order_by(t.c.customer_id)
                )
            ]
        return iter(ids)

    def referrers(self, customer_ids: Iterable[str]) -> dict[str, frozenset[str]]:
        t = self._t.referrals
        found: dict[str, set[str]] = {}
        with self._reading() as conn:
            for chunk in _chunks(sorted(set(customer_ids))):
                for referred, referrer in conn.execute(
                    sa.select(t.c.referred_id, t.c.referrer_id).where(
                        t.c.referred_id.in_([_b(c) for c in chunk])
                    )
                ):
                    found.setdefault(_s(referred), set()).add(_s(referrer))
        return {c: frozenset(r) for c, r in found.items()}

    # -- snapshots ----------------------------------------------------------------------------

    def put_snapshots(self, snapshots: Sequence[Snapshot]) -> None:
        def run(conn: Connection) -> None:
            versions = self._lock_versions(conn, {s.customer_id for s in snapshots})
            self._put_snapshots(conn, snapshots, versions)

        if snapshots:
            self._write(run)

    def snapshots(
        self,
        *,
        stages: Collection[Stage] | None = None,
        statuses: Collection[Status | None] | None = None,
        holding_at: datetime | None = None,
        expired_at: datetime | None = None,
    ) -> Iterator[Snapshot]:
        t = self._t.snapshots
        query = sa.select(
            t.c.customer_id, t.c.stage, t.c.status, t.c.as_of, t.c.valid_until, t.c.version
        )
        if stages is not None:
            query = query.where(t.c.stage.in_([int(s) for s in stages]))
        if statuses is not None:
            named = [s.value for s in statuses if s is not None]
            clause: Any = t.c.status.in_(named) if named else sa.false()
            if None in statuses:
                clause = sa.or_(clause, t.c.status.is_(None))
            query = query.where(clause)

        def holds(at: datetime) -> Any:
            us = _us(at)
            return sa.and_(t.c.as_of <= us, sa.or_(t.c.valid_until.is_(None), t.c.valid_until > us))

        if holding_at is not None:
            query = query.where(holds(holding_at))
        if expired_at is not None:
            query = query.where(sa.not_(holds(expired_at)))
        with self._reading() as conn:
            rows = conn.execute(query.order_by(t.c.customer_id)).all()
        return iter([_snapshot(r, None) for r in rows])

    def snapshot(self, customer_id: str) -> Snapshot | None:
        t = self._t.snapshots
        query = sa.select(
            t.c.customer_id,
            t.c.stage,
            t.c.status,
            t.c.as_of,
            t.c.valid_until,
            t.c.version,
            t.c.state,
        ).where(t.c.customer_id == _b(customer_id))
        with self._reading() as conn:
            row = conn.execute(self._keyed(query, t.c.customer_id)).first()
        if row is None:
            return None
        state = None
        if row[6] is not None:
            keys = self._keys_of([row], 0)
            state = keys.open(customer_id, row[6], _b(customer_id) + b"\x00state")
        return _snapshot(row, state)

    # -- privacy ------------------------------------------------------------------------------

    def forget(self, customer_id: str, redacted: Sequence[Event], at: datetime) -> None:
        """Erase the customer's personal data (see the port), and destroy their data key.

        Every event of the customer is rewritten in the clear, redacted where ``redacted``
        says (the others hold no personal data); the old rows, wherever the server still
        keeps them, are sealed with the destroyed key. Afterwards :meth:`purge` rewrites the
        key table, so the key leaves its file too.
        """

        def run(conn: Connection) -> None:
            self._lock_versions(conn, [customer_id])
            t = self._t.events
            cid = _b(customer_id)
            rows = conn.execute(
                sa.select(t.c.event_id, t.c.type, t.c.body).where(t.c.customer_id == cid)
            ).all()
            stored = {_s(e): (kind, bytes(b)) for e, kind, b in rows}
            for e in redacted:
                if e.event_id not in stored or stored[e.event_id][0] != e.event_type:
                    raise StoreError(
                        f"event {e.event_id!r} is not a stored event of this customer and type"
                    )
            keys = self._keys(conn, [customer_id], create=False)
            plain = {e.event_id: _PLAIN + _b(event_body(e)) for e in redacted}
            for event_id, (_, body) in stored.items():
                if event_id not in plain:
                    plain[event_id] = _PLAIN + keys.open(customer_id, body, _b(event_id))
            if plain:
                update = (
                    t.update()
                    .where(t.c.event_id == sa.bindparam("eid"))
                    .values(body=sa.bindparam("new_body"))
                )
                conn.execute(
                    update, [{"eid": _b(i), "new_body": b} for i, b in sorted(plain.items())]
                )
            s = self._t.snapshots
            conn.execute(s.update().where(s.c.customer_id == cid).values(state=None))
            o = self._t.outbox
            conn.execute(
                o.update()
                .where(o.c.customer_id == cid, o.c.state.in_(_UNSENT))
                .values(
                    state=OutboxState.CANCELLED.value,
                    claimed_by=None,
                    lease_until=None,
                    updated_at=_us(at),
                )
            )
            # Sent and failed entries too: texts, and errors that may quote an address.
            conn.execute(
                o.update()
                .where(o.c.customer_id == cid)
                .values(
                    content=None,
                    last_error=sa.case(
                        (
                            o.c.state == OutboxState.CANCELLED.value,
                            _PLAIN + b"customer erased",
                        ),
                        else_=None,
                    ),
                )
            )
            k = self._t.keys
            conn.execute(k.delete().where(k.c.customer_id == cid))

        self._write(run)
        if self._conn is None:
            self.purge()

    def purge(self) -> None:
        """Rewrite the key table, so that destroyed keys leave its file at once.

        A deleted row stays in the table's file until the server reuses its space;
        PostgreSQL's ``VACUUM FULL`` and MariaDB's ``OPTIMIZE TABLE`` write the live rows to a
        new file and drop the old one. The key table holds 60 bytes per customer, so this is
        quick; it briefly holds writers that make new keys.
        """
        self._check_open()
        name = self._name(self._t.keys)
        statement = f"VACUUM FULL {name}" if self._postgres else f"OPTIMIZE TABLE {name}"
        try:
            with self._engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.execute(sa.text(statement)).close()
        except sa.exc.SQLAlchemyError as e:
            raise self._fail(e) from e

    def rotate_master_key(self, new_master_key: bytes | None) -> None:
        """Wrap every customer's data key with ``new_master_key`` (``None``: unwrapped).

        Once the old master key is destroyed, the keys of customers erased before the rotation
        cannot be unwrapped from any copy that still holds them (an old backup, the WAL). The
        store uses the new key from now on.
        """
        new = self._master_cipher(new_master_key)

        def run(conn: Connection) -> None:
            t = self._t.keys
            rows = conn.execute(
                sa.select(t.c.customer_id, t.c.data_key).order_by(t.c.customer_id).with_for_update()
            ).all()
            update = (
                t.update()
                .where(t.c.customer_id == sa.bindparam("cid"))
                .values(data_key=sa.bindparam("wrapped"))
            )
            fresh = []
            for cid, stored in rows:
                c = _s(cid)
                fresh.append(
                    {"cid": bytes(cid), "wrapped": _wrap(new, c, _unwrap(self._master, c, stored))}
                )
            for chunk in _chunks(fresh, 1000):
                conn.execute(update, list(chunk))

        self._write(run)
        self._master = new
        if self._conn is None:
            self.purge()

    # -- outbox -------------------------------------------------------------------------------

    def _entries(self, conn: Connection, where: Any) -> list[OutboxEntry]:
        t = self._t.outbox
        query = sa.select(*(t.c[n] for n in _OUTBOX_PLAIN)).where(where)
        query = self._keyed(query.order_by(t.c.due_at, t.c.key), t.c.customer_id)
        rows = conn.execute(query).all()
        keys = self._keys_of(rows, 1)
        return [_outbox_entry(r, keys) for r in rows]

    def outbox_entry(self, key: str) -> OutboxEntry | None:
        with self._reading() as conn:
            found = self._entries(conn, self._t.outbox.c.key == _b(key))
        return found[0] if found else None

    def outbox_entries(
        self,
        *,
        states: Collection[OutboxState] | None = None,
        customer_id: str | None = None,
    ) -> Iterator[OutboxEntry]:
        t = self._t.outbox
        where: list[Any] = []
        if states is not None:
            where.append(t.c.state.in_([OutboxState(s).value for s in states]))
        if customer_id is not None:
            where.append(t.c.customer_id == _b(customer_id))
        with self._reading() as conn:
            found = self._entries(conn, sa.and_(sa.true(), *where))
        return iter(found)

    def claim(
        self, at: datetime, *, worker: str, lease: timedelta, limit: int = 100
    ) -> list[OutboxEntry]:
        now = _us(at)
        t = self._t.outbox

        def claimable(o: Any) -> Any:
            return sa.or_(
                sa.and_(o.c.state == "pending", o.c.next_attempt_at <= now),
                sa.and_(o.c.state == "claimed", o.c.lease_until <= now),
            )

        def run(conn: Connection) -> list[OutboxEntry]:
            # 1. Candidates, read without locks: each customer's oldest claimable entry, of
            # customers nobody holds.
            held = t.alias("held")
            live = sa.exists().where(
                held.c.customer_id == t.c.customer_id,
                held.c.state == "claimed",
                held.c.lease_until > now,
            )
            ranked = (
                sa.select(
                    t.c.customer_id,
                    t.c.next_attempt_at,
                    t.c.key,
                    sa.func.row_number()
                    .over(partition_by=t.c.customer_id, order_by=(t.c.next_attempt_at, t.c.key))
                    .label("n"),
                )
                .where(claimable(t), sa.not_(live))
                .subquery()
            )
            candidates = conn.execute(
                sa.select(ranked.c.customer_id)
                .where(ranked.c.n == 1)
                .order_by(ranked.c.next_attempt_at, ranked.c.key)
                .limit(limit)
            ).all()
            customers = sorted({bytes(c) for (c,) in candidates})
            if not customers:
                return []
            # 2. Hold those customers: lock every unsent entry of each, skipping rows another
            # dispatcher has locked. A customer with an entry we could not lock, or one under
            # a live claim (read from the locked rows: the latest committed state), is left.
            unsent = sa.and_(t.c.customer_id.in_(customers), t.c.state.in_(_UNSENT))
            locked = conn.execute(
                sa.select(t.c.key, t.c.customer_id, t.c.state, t.c.next_attempt_at, t.c.lease_until)
                .where(unsent)
                .order_by(t.c.customer_id, t.c.key)
                .with_for_update(skip_locked=True)
            ).all()
            every = conn.execute(sa.select(t.c.key, t.c.customer_id).where(unsent)).all()
            got = {bytes(r[0]) for r in locked}
            busy = {bytes(c) for k, c in every if bytes(k) not in got}
            chosen: dict[bytes, tuple[int, bytes]] = {}
            for key, cid, state, next_at, lease_until in locked:
                cid = bytes(cid)
                if state == "claimed" and lease_until is not None and lease_until > now:
                    busy.add(cid)
                ready = (state == "pending" and next_at is not None and next_at <= now) or (
                    state == "claimed" and lease_until is not None and lease_until <= now
                )
                if ready:
                    mine = (next_at, bytes(key))
                    if cid not in chosen or mine < chosen[cid]:
                        chosen[cid] = mine
            picks = sorted(v for c, v in chosen.items() if c not in busy)[:limit]
            keys = [k for _, k in picks]
            if not keys:
                return []
            conn.execute(
                t.update()
                .where(t.c.key.in_(keys))
                .values(
                    state="claimed",
                    claimed_by=_b(worker),
                    lease_until=_us(at + lease),
                    attempts=t.c.attempts + 1,
                    updated_at=now,
                )
            )
            out = self._entries(conn, t.c.key.in_(keys))
            out.sort(key=lambda e: (e.next_attempt_at or e.due_at, e.key))
            return out

        return self._write(run)

    def settle(
        self,
        key: str,
        *,
        worker: str,
        state: OutboxState,
        at: datetime,
        next_attempt_at: datetime | None = None,
        error: str | None = None,
        failures: int = 0,
        in_doubt: bool = False,
        events: Sequence[Event] = (),
        snapshots: Sequence[Snapshot] = (),
    ) -> bool:
        state = OutboxState(state)
        t = self._t.outbox

        def run(conn: Connection) -> bool:
            row = conn.execute(
                sa.select(t.c.state, t.c.claimed_by, t.c.customer_id)
                .where(t.c.key == _b(key))
                .with_for_update()
            ).first()
            if row is None or row[0] != OutboxState.CLAIMED.value or _opt_s(row[1]) != worker:
                return False
            self._store(conn, events, snapshots, (), None)
            values: dict[str, Any] = {
                "state": state.value,
                "claimed_by": None,
                "lease_until": None,
                "last_error": None,
                "settled": t.c.attempts,
                "failures": failures,
                "in_doubt": in_doubt,
                "updated_at": _us(at),
            }
            if state is OutboxState.PENDING and next_attempt_at is not None:
                values["next_attempt_at"] = _us(next_attempt_at)
            if error is not None:
                cid = _s(row[2])
                keys = self._keys(conn, [cid], create=True)
                values["last_error"] = keys.seal(cid, _b(error), _b(key) + b"\x00error")
            conn.execute(t.update().where(t.c.key == _b(key)).values(**values))
            return True

        return self._write(run)

    # -- the planning index -------------------------------------------------------------------

    def planning_due(self, at: datetime, *, limit: int | None = None) -> dict[str, int]:
        t = self._t.plan_marks
        query = (
            sa.select(t.c.customer_id, t.c.stamp)
            .where(t.c.next_due <= _us(at))
            .order_by(t.c.next_due, t.c.customer_id)
        )
        if limit is not None:
            query = query.limit(limit)
        with self._reading() as conn:
            rows = conn.execute(query).all()
        return {_s(c): int(s) for c, s in rows}

    def planned(self, marks: Sequence[PlanMark]) -> None:
        if not marks:
            return
        t = self._t.plan_marks
        update = (
            t.update()
            .where(t.c.customer_id == sa.bindparam("cid"), t.c.stamp == sa.bindparam("seen"))
            .values(next_due=sa.bindparam("due"))
        )
        rows = [
            {
                "cid": _b(m.customer_id),
                "seen": m.stamp,
                "due": _PLAN_NEVER if m.next_due is None else _us(m.next_due),
            }
            for m in sorted(marks, key=lambda m: m.customer_id)
        ]
        self._write(lambda conn: conn.execute(update, rows))

    def plan_fingerprint(self) -> str | None:
        t = self._t.meta
        with self._reading() as conn:
            v = conn.execute(sa.select(t.c.value).where(t.c.key == "plan_fingerprint")).scalar()
        return None if v is None else str(v)

    def replan_all(self, fingerprint: str) -> None:
        t = self._t.plan_marks

        def run(conn: Connection) -> None:
            conn.execute(t.update().values(next_due=_PLAN_NOW, stamp=t.c.stamp + 1))
            self._set_meta(conn, "plan_fingerprint", fingerprint)

        self._write(run)

    # -- the shop's settings ----------------------------------------------------------------

    def shop_settings(self) -> dict[str, str]:
        t = self._t.meta
        with self._reading() as conn:
            rows = conn.execute(
                sa.select(t.c.key, t.c.value).where(t.c.key.startswith(_SETTING))
            ).all()
        return {str(k)[len(_SETTING) :]: str(v) for k, v in rows}

    def put_shop_settings(self, values: Mapping[str, str]) -> None:
        def run(conn: Connection) -> None:
            for key, value in values.items():
                self._set_meta(conn, _SETTING + str(key), str(value))

        self._write(run)

    # -- resources ----------------------------------------------------------------------------

    def drop_tables(self) -> None:
        """Drop the store's tables (and nothing else of the schema): for tests and removal."""
        self._check_open()
        try:
            with self._engine.begin() as conn:
                self._t.metadata.drop_all(conn, checkfirst=True)
        except sa.exc.SQLAlchemyError as e:
            raise self._fail(e) from e

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._own_engine and self._conn is None:
            self._engine.dispose()

    def __repr__(self) -> str:
        return f"SQLStore({self._where!r})"


def _outbox_row(o: OutboxEntry, keys: _Keys) -> dict[str, Any]:
    content = json.dumps(
        {
            "text_en": o.text_en,
            "text_zh": o.text_zh,
            "subject_en": o.subject_en,
            "subject_zh": o.subject_zh,
            "payload": dict(o.payload),
        },
        ensure_ascii=False,
        sort_keys=True,
    )
    key = _b(o.key)
    return {
        "key": key,
        "customer_id": _b(o.customer_id),
        "channel": _b(o.channel),
        "due_at": _us(o.due_at),
        "rule": _opt_b(o.rule),
        "purpose": _opt_b(o.purpose),
        "template": _opt_b(o.template),
        "valid_until": _opt_us(o.valid_until),
        "priority": o.priority,
        "reason": _opt_b(o.reason),
        "contact_channel": _opt_b(o.contact_channel),
        "planned": o.planned,
        "content": keys.seal(o.customer_id, _b(content), key + b"\x00content"),
        "state": OutboxState(o.state).value,
        "attempts": o.attempts,
        "settled": o.settled,
        "failures": o.failures,
        "in_doubt": o.in_doubt,
        "next_attempt_at": _opt_us(o.next_attempt_at),
        "claimed_by": _opt_b(o.claimed_by),
        "lease_until": _opt_us(o.lease_until),
        "last_error": None
        if o.last_error is None
        else keys.seal(o.customer_id, _b(o.last_error), key + b"\x00error"),
        "updated_at": _opt_us(o.updated_at),
    }


def _outbox_entry(r: Sequence[Any], keys: _Keys) -> OutboxEntry:
    key, cid = _s(r[0]), _s(r[1])
    content: dict[str, Any] = {}
    if r[12] is not None:
        content = json.loads(keys.open(cid, r[12], _b(key) + b"\x00content"))
    error = None if r[21] is None else _s(keys.open(cid, r[21], _b(key) + b"\x00error"))
    due = _from_us(r[3])
    assert due is not None
    return OutboxEntry(
        key=key,
        customer_id=cid,
        channel=_s(r[2]),
        due_at=due,
        rule=_opt_s(r[4]),
        purpose=_opt_s(r[5]),
        template=_opt_s(r[6]),
        valid_until=_from_us(r[7]),
        priority=r[8],
        reason=_opt_s(r[9]),
        contact_channel=_opt_s(r[10]),
        planned=bool(r[11]),
        text_en=content.get("text_en", ""),
        text_zh=content.get("text_zh", ""),
        subject_en=content.get("subject_en"),
        subject_zh=content.get("subject_zh"),
        payload=content.get("payload", {}),
        state=OutboxState(r[13]),
        attempts=r[14],
        settled=r[15],
        failures=r[16],
        in_doubt=bool(r[17]),
        next_attempt_at=_from_us(r[18]),
        claimed_by=_opt_s(r[19]),
        lease_until=_from_us(r[20]),
        last_error=error,
        updated_at=_from_us(r[22]),
    )


def _snapshot(r: Sequence[Any], state: bytes | None) -> Snapshot:
    as_of = _from_us(r[3])
    assert as_of is not None
    return Snapshot(
        customer_id=_s(r[0]),
        stage=Stage(r[1]),
        status=None if r[2] is None else Status(r[2]),
        as_of=as_of,
        valid_until=_from_us(r[4]),
        version=int(r[5]),
        state=state,
    )
