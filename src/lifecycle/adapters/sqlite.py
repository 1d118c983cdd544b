"""The embedded store: events, snapshots and the outbox in one SQLite file.

WAL mode, a busy timeout, ``BEGIN IMMEDIATE`` for every writer, secure deletion, a schema-version
table with forward migrations, and every driver error translated into a ``StoreError`` that
names the file.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from os import PathLike
from pathlib import Path
from typing import Any, Final, TypeVar

from lifecycle.errors import (
    ConcurrencyError,
    ConflictingEvent,
    ErasureIncomplete,
    InvalidEvent,
    StoreError,
)
from lifecycle.events import Event, Referred
from lifecycle.ports import OutboxEntry, OutboxState, PlanMark, Snapshot
from lifecycle.serde import (
    EventRow,
    body_fields,
    body_head,
    event_body,
    event_from_body,
    event_rows,
)
from lifecycle.vocabulary import Stage, Status

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

#: The layout of the file this release writes.
SCHEMA_VERSION: Final = 4

_T = TypeVar("_T")

_SCHEMA_V1 = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL,
    at_us INTEGER NOT NULL,
    rank INTEGER NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX events_by_customer ON events (customer_id, at_us, rank, event_id);
CREATE TABLE customers (
    customer_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE referrals (
    referred_id TEXT NOT NULL,
    referrer_id TEXT NOT NULL,
    PRIMARY KEY (referred_id, referrer_id)
) WITHOUT ROWID;
CREATE TABLE snapshots (
    customer_id TEXT PRIMARY KEY,
    stage INTEGER NOT NULL,
    status TEXT,
    as_of TEXT NOT NULL,
    valid_until TEXT,
    version INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX snapshots_by_stage ON snapshots (stage, status);
CREATE INDEX snapshots_by_expiry ON snapshots (valid_until);
CREATE TABLE outbox (
    key TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    due_at TEXT NOT NULL,
    rule TEXT,
    purpose TEXT,
    template TEXT,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TEXT,
    claimed_by TEXT,
    lease_until TEXT,
    last_error TEXT,
    updated_at TEXT
) WITHOUT ROWID;
CREATE INDEX outbox_by_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_by_customer ON outbox (customer_id);
"""

_SCHEMA_V3 = """
ALTER TABLE outbox ADD COLUMN valid_until TEXT;
ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN reason TEXT;
ALTER TABLE outbox ADD COLUMN contact_channel TEXT;
ALTER TABLE outbox ADD COLUMN text_en TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN text_zh TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN subject_en TEXT;
ALTER TABLE outbox ADD COLUMN subject_zh TEXT;
ALTER TABLE outbox ADD COLUMN settled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN in_doubt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN planned INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_live_claims ON outbox (customer_id, state, lease_until);
CREATE TABLE plan_marks (
    customer_id TEXT PRIMARY KEY,
    next_due TEXT NOT NULL,
    stamp INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX plan_marks_by_due ON plan_marks (next_due);
INSERT INTO plan_marks (customer_id, next_due, stamp) SELECT customer_id, '', 1 FROM customers
"""

_SCHEMA_V4 = """
ALTER TABLE snapshots ADD COLUMN state BLOB;
CREATE INDEX events_by_customer_seq ON events (customer_id, seq)
"""

#: The indexes of the events table by customer (as the migrations above made them). A batch at
#: least as large as the table already is, and of at least :data:`_BULK_EVENTS` events, goes in
#: without them and they are built again afterwards, inside the same transaction: sorting the
#: table once costs less than landing every row in two more B-trees.
_CUSTOMER_INDEXES: Final = (
    ("events_by_customer", "events (customer_id, at_us, rank, event_id)"),
    ("events_by_customer_seq", "events (customer_id, seq)"),
)
_BULK_EVENTS: Final = 50_000
_BY_CUSTOMER: Final = itemgetter(0)
_TYPE: Final = itemgetter(2)

#: Text older releases kept in an outbox entry's payload that now has a column of its own.
_MOVED_TEXTS: Final = (
    "text_en",
    "text_zh",
    "subject_en",
    "subject_zh",
    "reason",
    "contact_channel",
)
#: The attempt note older releases wrote into ``last_error``: attempt, kind, failures, doubt.
_OLD_NOTE: Final = re.compile(r"^#(\d+) ([a-z_]+) f(\d+)( doubt)?: (.*)$", re.DOTALL)


def _moved_instant(value: object) -> str | None:
    """An instant older releases kept as text, in this file's form; ``None`` when it is not an
    aware ISO 8601 instant (older releases ignored such a value too)."""
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return _ts(at) if at.tzinfo is not None else None


def _moved_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _typed_outbox(db: sqlite3.Connection) -> None:
    """Version 3: the outbox's texts, validity and attempt state move into typed columns.

    What cannot move (a validity or priority a host wrote in another form) stays in the
    payload. Entries of customers erased already keep no text.
    """
    for statement in _SCHEMA_V3.split(";"):
        if statement.strip():
            db.execute(statement)
    erased = {r[0] for r in db.execute("SELECT customer_id FROM events WHERE type = 'erased'")}
    rows = db.execute("SELECT key, customer_id, payload, last_error FROM outbox").fetchall()
    for key, customer_id, payload, last_error in rows:
        body = json.loads(payload)
        if not isinstance(body, dict):
            continue
        # Entries the planner made carried the reason and the validity in their payload.
        planned = "reason" in body and "valid_until" in body
        until = _moved_instant(body.get("valid_until"))
        if until is not None or body.get("valid_until") is None:
            body.pop("valid_until", None)
        priority = _moved_int(body.get("priority", 0))
        if priority is not None:
            body.pop("priority", None)
        texts = {k: body.pop(k, None) for k in _MOVED_TEXTS}
        if "text" in body and not texts["text_en"]:
            texts["text_en"] = body.pop("text")
        if "subject" in body and not texts["subject_en"]:
            texts["subject_en"] = body.pop("subject")
        texts = {k: None if v is None else str(v) for k, v in texts.items()}
        settled, failures, doubt, error = 0, 0, False, last_error
        note = _OLD_NOTE.match(last_error or "")
        if note is not None:
            settled, failures = int(note[1]), int(note[3])
            doubt = note[4] is not None or note[2] == "in_doubt"
            error = note[5]
        if customer_id in erased:
            texts = dict.fromkeys(texts)
            body, error = {}, None
        db.execute(
            "UPDATE outbox SET payload = ?, text_en = ?, text_zh = ?, subject_en = ?, "
            "subject_zh = ?, valid_until = ?, priority = ?, reason = ?, contact_channel = ?, "
            "settled = ?, failures = ?, in_doubt = ?, planned = ?, last_error = ? WHERE key = ?",
            (
                json.dumps(body, ensure_ascii=False, sort_keys=True),
                texts["text_en"] or "",
                texts["text_zh"] or "",
                texts["subject_en"],
                texts["subject_zh"],
                until,
                priority or 0,
                texts["reason"],
                texts["contact_channel"],
                settled,
                failures,
                int(doubt),
                int(planned),
                error,
                key,
            ),
        )


#: Forward migrations: what takes a file from version N - 1 to version N.
#: Version 2 stores event bodies without the customer and event ids (they are columns
#: already); it reads version-1 bodies as they are, so the step changes no data. Older
#: releases refuse a version-2 file rather than misread its bodies. Version 3 gives the
#: outbox typed columns (texts, subjects, validity, attempts settled, failures, in doubt)
#: and adds the planning index. Version 4 keeps each snapshot's folded state, and indexes a
#: customer's events in the order stored (what a snapshot has not folded yet).
_MIGRATIONS: Final[dict[int, str | Callable[[sqlite3.Connection], None]]] = {
    1: _SCHEMA_V1,
    2: "",
    3: _typed_outbox,
    4: _SCHEMA_V4,
}

#: ``plan_marks.next_due`` of a customer to plan at once (sorts before every instant), and of
#: one that time alone never makes due.
_PLAN_NOW: Final = ""
_PLAN_NEVER: Final = "9999"

_UNSENT = (OutboxState.PENDING.value, OutboxState.CLAIMED.value)
#: The longest busy timeout, in seconds (a day): SQLite takes it in milliseconds as an int.
_MAX_BUSY_TIMEOUT: Final = 86_400.0
_CHUNK = 500  # below SQLite's default limit on bound parameters


def _ts(at: datetime) -> str:
    """An instant as fixed-width UTC text, so that text order is time order."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def _us(at: datetime) -> int:
    """An instant as whole microseconds since 1970 UTC: exact, and ordered like time."""
    return (at - _EPOCH) // _MICROSECOND


def _opt_ts(at: datetime | None) -> str | None:
    return None if at is None else _ts(at)


def _from_ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _stored_rows(db: sqlite3.Connection) -> int:
    """About how many events the file holds (the highest row number: no table scan)."""
    row = db.execute("SELECT max(seq) FROM events").fetchone()
    return int(row[0] or 0)


class SQLiteStore:
    """A :class:`~lifecycle.ports.Store` in one SQLite file, safe for several processes.

    Args:
        path: the database file; created with its folder's permissions if missing.
        busy_timeout: how long a writer waits for another process's lock, in seconds, before
            the call fails with ``StoreError``.
        synchronous: SQLite's ``synchronous`` setting: ``"FULL"`` (default) survives power
            loss; ``"NORMAL"`` survives a killed process and is faster.
    """

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        busy_timeout: float = 30.0,
        synchronous: str = "FULL",
    ):
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise StoreError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        ok = isinstance(busy_timeout, int | float) and not isinstance(busy_timeout, bool)
        if not ok or not 0 <= busy_timeout <= _MAX_BUSY_TIMEOUT:
            raise StoreError(
                f"busy_timeout must be a number of seconds from 0 to {_MAX_BUSY_TIMEOUT:g}, "
                f"not {busy_timeout!r}"
            )
        self.path = Path(path)
        self.busy_timeout = float(busy_timeout)
        self._lock = threading.RLock()
        self._closed = False
        self._refuse_foreign()
        try:
            self._db = sqlite3.connect(
                self.path,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot open: {e}") from e
        try:
            self._configure(synchronous)
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    # -- plumbing -----------------------------------------------------------------------------

    def _refuse_foreign(self) -> None:
        """Refuse, before changing anything, a database file that holds tables but not ours.

        Another application's SQLite file must not get our tables or be switched to WAL.
        The file is read through a read-only connection, which writes nothing.
        """
        try:
            if str(self.path) == ":memory:" or self.path.stat().st_size == 0:
                return
        except OSError:
            return  # missing: it will be created (or opening it fails and says why)
        try:
            with self.path.open("rb") as f:
                header = f.read(16)
        except OSError as e:
            raise StoreError(f"{self.path}: cannot read: {e.strerror}") from None
        if header != b"SQLite format 3\x00":
            raise StoreError(
                f"{self.path}: the file is not a lifecycle database or is corrupt (not SQLite)"
            )
        try:
            probe = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=self.busy_timeout
            )
        except sqlite3.Error as e:
            raise self._fail(e) from e
        try:
            tables = {r[0] for r in probe.execute("SELECT name FROM sqlite_master")}
        except sqlite3.Error as e:
            raise self._fail(e) from e
        finally:
            probe.close()
        if tables and "lifecycle_meta" not in tables:
            raise StoreError(
                f"{self.path}: an SQLite database without the lifecycle schema (another "
                "application's?); refusing to change it"
            )

    def _fail(self, e: sqlite3.Error) -> StoreError:
        msg = str(e)
        if "locked" in msg or "busy" in msg:
            return StoreError(
                f"{self.path}: still locked by another writer after {self.busy_timeout:g} s"
            )
        if "full" in msg:
            return StoreError(f"{self.path}: the disk or the file is full; nothing was written")
        if "not a database" in msg or "malformed" in msg:
            return StoreError(
                f"{self.path}: the file is not a lifecycle database or is corrupt ({msg})"
            )
        return StoreError(f"{self.path}: {msg}")

    def _configure(self, synchronous: str) -> None:
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            # 8 KiB pages for a new file (an existing one keeps its own): fewer page splits
            # while a bulk ingest fills the event indexes.
            self._db.execute("PRAGMA page_size = 8192")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal" and str(self.path) != ":memory:":
                raise StoreError(f"{self.path}: cannot switch to WAL mode (got {mode!r})")
            self._db.execute(f"PRAGMA synchronous = {synchronous}")
            self._db.execute("PRAGMA secure_delete = ON")
            # A 64 MiB page cache, and a WAL of up to 5,000 pages (40 MiB at a new file's
            # 8 KiB) before it is copied back: a bulk ingest then writes each page once
            # instead of checkpointing inside the batch.
            self._db.execute("PRAGMA cache_size = -65536")
            self._db.execute("PRAGMA wal_autocheckpoint = 5000")
            self._db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as e:
            raise self._fail(e) from e

    def _migrate(self) -> None:
        def run(db: sqlite3.Connection) -> None:
            db.execute(
                "CREATE TABLE IF NOT EXISTS lifecycle_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            row = db.execute(
                "SELECT value FROM lifecycle_meta WHERE key = 'schema_version'"
            ).fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: written by a newer release (schema version {current}; this "
                    f"release reads up to {SCHEMA_VERSION}); upgrade lifecycle to open it"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                step = _MIGRATIONS[version]
                if callable(step):
                    step(db)
                else:
                    for statement in step.split(";"):
                        if statement.strip():
                            db.execute(statement)
                db.execute(
                    "INSERT OR REPLACE INTO lifecycle_meta (key, value) VALUES ('schema_version', ?)",
                    (str(version),),
                )

        self._write(run)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self.path}: the store is closed")

    def _write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` in one ``BEGIN IMMEDIATE`` transaction: all of it or none of it.

        The busy timeout makes SQLite wait for other writers; should the lock still be taken
        (a checkpoint, a long writer), the transaction is retried until ``busy_timeout``.
        """
        deadline = time.monotonic() + self.busy_timeout
        with self._lock:
            self._check_open()
            while True:
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as e:
                    if ("locked" in str(e) or "busy" in str(e)) and time.monotonic() < deadline:
                        time.sleep(0.005)
                        continue
                    raise self._fail(e) from e
                except sqlite3.Error as e:
                    raise self._fail(e) from e
                try:
                    result = work(self._db)
                    self._db.execute("COMMIT")
                    return result
                except BaseException as e:
                    self._rollback()
                    if isinstance(e, sqlite3.Error):
                        raise self._fail(e) from e
                    if isinstance(e, UnicodeError):  # events validate texts; a host's may not
                        raise StoreError(
                            f"{self.path}: a text that is not valid Unicode; nothing was written"
                        ) from e
                    raise

    def _rollback(self) -> None:
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the transaction is gone either way; the original error is what matters

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._check_open()
            try:
                yield self._db
            except sqlite3.Error as e:
                raise self._fail(e) from e

    # -- events -------------------------------------------------------------------------------

    def _stored_bodies(
        self, db: sqlite3.Connection, ids: Sequence[str]
    ) -> dict[str, tuple[str, str]]:
        """(customer id, body) of each stored event among ``ids``."""
        out: dict[str, tuple[str, str]] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            out.update(
                (
                    (event_id, (customer_id, body))
                    for event_id, customer_id, body in db.execute(
                        f"SELECT event_id, customer_id, body FROM events WHERE event_id IN ({marks})",
                        chunk,
                    )
                )
            )
        return out

    def _insert_events(self, db: sqlite3.Connection, events: Sequence[Event]) -> int:
        """Insert the events not stored yet; raise ConflictingEvent on a clash."""
        rows = event_rows(events)
        # By customer, as the customer index: its inserts then append instead of landing
        # anywhere, and each customer's rows sit together in the file. A stable sort on the id
        # alone keeps each customer's events in the order given (time order, usually) and
        # compares strings instead of tuples.
        rows.sort(key=_BY_CUSTOMER)
        bulk = len(rows) >= _BULK_EVENTS and len(rows) >= _stored_rows(db)
        if bulk:
            # Temporary data in memory while the batch goes in: the statement journals (old
            # images of pages the file held, no more than the file, which is no larger than
            # the batch) and the sorts that build the indexes again (about 60 bytes an event)
            # skip a temporary file. The database file's own journal and durability are
            # those of every transaction.
            db.execute("PRAGMA temp_store = MEMORY")
        try:
            return self._insert_rows(db, events, rows, bulk)
        finally:
            if bulk:
                db.execute("PRAGMA temp_store = DEFAULT")

    def _insert_rows(
        self, db: sqlite3.Connection, events: Sequence[Event], rows: list[EventRow], bulk: bool
    ) -> int:
        """:meth:`_insert_events` once the rows are written and sorted (``bulk``: without the
        customer indexes, built again afterwards)."""
        insert = (
            "INSERT INTO events (customer_id, at_us, rank, event_id, type, body) "
            "VALUES (?, ?, ?, ?, ?, ?)"
        )
        # Usually every event is new and given once (the facade has filtered repeats): insert
        # them all at once, and only when an id is taken, go back and sort repeats from
        # conflicts.
        db.execute("SAVEPOINT insert_events")
        new: Sequence[Event]
        inserted: list[EventRow]
        try:
            if bulk:
                for name, _ in _CUSTOMER_INDEXES:
                    db.execute(f"DROP INDEX IF EXISTS {name}")
            db.executemany(insert, rows)
            new, inserted = events, rows
        except sqlite3.IntegrityError:
            db.execute("ROLLBACK TO insert_events")  # the indexes dropped are back, too
            bulk = False
            batch = {e.event_id: e for e in events}
            if len(batch) < len(events):  # ids repeat within the batch: same event, or a clash
                for e in events:
                    if batch[e.event_id] != e:
                        raise ConflictingEvent(e.event_id) from None
            stored = self._stored_bodies(db, list(batch))
            for event_id, (customer_id, body) in stored.items():
                if (
                    event_from_body(body, customer_id=customer_id, event_id=event_id)
                    != batch[event_id]
                ):
                    raise ConflictingEvent(event_id) from None
            new = [e for i, e in batch.items() if i not in stored]
            fresh = {e.event_id for e in new}
            once = []  # each new event's row, once
            for r in rows:
                if r[3] in fresh:
                    fresh.discard(r[3])
                    once.append(r)
            db.executemany(insert, once)
            inserted = once
        if bulk:
            for name, columns in _CUSTOMER_INDEXES:
                db.execute(f"CREATE INDEX {name} ON {columns}")
        db.execute("RELEASE insert_events")
        if not new:
            return 0
        # Counted from the rows inserted, which are in customer order: so are the inserts below.
        counts = Counter(map(_BY_CUSTOMER, inserted))
        db.executemany(
            "INSERT INTO customers (customer_id, version) VALUES (?, ?) "
            "ON CONFLICT (customer_id) DO UPDATE SET version = version + excluded.version",
            list(counts.items()),
        )
        referrals = [(e.referred_id, e.customer_id) for e in new if isinstance(e, Referred)]
        if referrals:
            db.executemany(
                "INSERT OR IGNORE INTO referrals (referred_id, referrer_id) VALUES (?, ?)",
                referrals,
            )
        self._plan_now(db, list(counts))
        return len(new)

    def _plan_now(self, db: sqlite3.Connection, customer_ids: Sequence[str]) -> None:
        """Make these customers, and those who referred them, due for planning."""
        db.executemany(
            "INSERT INTO plan_marks (customer_id, next_due, stamp) VALUES (?, '', 1) "
            "ON CONFLICT (customer_id) DO UPDATE SET next_due = '', stamp = stamp + 1",
            [(c,) for c in customer_ids],
        )
        for chunk in _chunks(customer_ids):
            marks = ",".join("?" * len(chunk))
            db.execute(
                "UPDATE plan_marks SET next_due = '', stamp = stamp + 1 WHERE customer_id IN "
                f"(SELECT referrer_id FROM referrals WHERE referred_id IN ({marks}))",
                chunk,
            )

    def _put_snapshots(self, db: sqlite3.Connection, snapshots: Sequence[Snapshot]) -> None:
        if not snapshots:
            return
        # A batch's snapshots share their ``as_of`` and many share a ``valid_until`` (a
        # midnight): each instant is written as text once. The fold joins the key: instants of
        # one zone compare by their wall clock alone.
        texts: dict[tuple[datetime, int], str] = {}

        def text(at: datetime) -> str:
            key = (at, at.fold)
            out = texts.get(key)
            if out is None:
                out = texts[key] = _ts(at)
            return out

        rows = [
            (
                s.customer_id,
                int(s.stage),
                None if s.status is None else s.status.value,
                text(s.as_of),
                None if s.valid_until is None else text(s.valid_until),
                s.version,
                s.state,
                s.version,
                s.customer_id,
            )
            for s in snapshots
        ]
        rows.sort(key=_BY_CUSTOMER)  # in key order: the table's inserts append
        db.executemany(
            "INSERT OR REPLACE INTO snapshots "
            "(customer_id, stage, status, as_of, valid_until, version, state) "
            "SELECT ?, ?, ?, ?, ?, ?, ? "
            "WHERE ? = (SELECT version FROM customers WHERE customer_id = ?)",
            rows,
        )

    def append(
        self,
        events: Sequence[Event],
        snapshots: Sequence[Snapshot] = (),
        *,
        outbox: Sequence[OutboxEntry] = (),
        expected_versions: Mapping[str, int] | None = None,
    ) -> int:
        def run(db: sqlite3.Connection) -> int:
            if expected_versions:
                actual = self._versions(db, list(expected_versions))
                for cid, expected in expected_versions.items():
                    if actual.get(cid, 0) != expected:
                        raise ConcurrencyError(cid)
            added = self._insert_events(db, events)
            self._put_snapshots(db, snapshots)
            if outbox:
                db.executemany(
                    f"INSERT OR IGNORE INTO outbox ({_OUTBOX_COLUMNS}) VALUES ({_OUTBOX_MARKS})",
                    [_outbox_row(o) for o in outbox],
                )
            return added

        return self._write(run)

    def _versions(self, db: sqlite3.Connection, ids: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            out.update(
                db.execute(
                    f"SELECT customer_id, version FROM customers WHERE customer_id IN ({marks})",
                    chunk,
                )
            )
        return out

    def events_by_id(self, event_ids: Iterable[str]) -> dict[str, Event]:
        with self._reading() as db:
            return {
                i: event_from_body(b, customer_id=c, event_id=i)
                for i, (c, b) in self._stored_bodies(db, list(event_ids)).items()
            }

    def history(self, customer_id: str) -> tuple[Event, ...]:
        with self._reading() as db:
            rows = db.execute(
                "SELECT event_id, body FROM events WHERE customer_id = ? "
                "ORDER BY at_us, rank, event_id",
                (customer_id,),
            ).fetchall()
        return tuple(
            event_from_body(body, customer_id=customer_id, event_id=event_id)
            for event_id, body in rows
        )

    def histories(self, customer_ids: Iterable[str]) -> dict[str, tuple[Event, ...]]:
        out: dict[str, list[Event]] = {}
        with self._reading() as db:
            for chunk in _chunks(sorted(set(customer_ids))):
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT customer_id, event_id, body FROM events WHERE customer_id IN ({marks}) "
                    "ORDER BY customer_id, at_us, rank, event_id",
                    chunk,
                ).fetchall()
                for cid, event_id, body in rows:
                    event = event_from_body(body, customer_id=cid, event_id=event_id)
                    out.setdefault(cid, []).append(event)
        return {cid: tuple(events) for cid, events in out.items()}

    def event_fields(
        self,
        customer_ids: Iterable[str],
        fields: Mapping[str, Sequence[str]],
        until: datetime,
    ) -> list[tuple[Any, ...]]:
        """The fields SQLite's JSON functions read from the bodies as stored: no event is
        built. A body of another schema version is decoded and upgraded as events are."""
        kinds = list(fields)
        if not kinds:
            return []
        width = max(len(paths) for paths in fields.values())
        columns, args = [], []
        for k in range(width):
            cases = []
            for kind in kinds:
                if k < len(fields[kind]):
                    cases.append("WHEN ? THEN json_extract(body, ?)")
                    args += [kind, "$." + fields[kind][k]]
            columns.append(f"CASE type {' '.join(cases)} END" if cases else "NULL")
        # The body of this schema version begins with its type and version (serde.body_head);
        # the type of an event stored by an older release is read as NULL, and its customer's
        # events are all decoded instead.
        heads = " ".join("WHEN ? THEN ?" for _ in kinds)
        head_args = [x for kind in kinds for x in (kind, body_head(kind))]
        select = ", ".join(
            [
                "customer_id",
                "at_us",
                f"CASE WHEN instr(body, CASE type {heads} END) = 1 THEN type END",
                *columns,
            ]
        )
        where = "type IN ({}) AND at_us <= ?".format(",".join("?" * len(kinds)))
        where_args = [*kinds, _us(until)]
        out: list[tuple[Any, ...]] = []
        with self._reading() as db:
            for chunk in _chunks(sorted(set(customer_ids))):
                marks = ",".join("?" * len(chunk))
                try:
                    rows = db.execute(
                        f"SELECT {select} FROM events WHERE customer_id IN ({marks}) AND "
                        f"{where} ORDER BY customer_id, at_us, rank, event_id",
                        (*head_args, *args, *chunk, *where_args),
                    ).fetchall()
                except sqlite3.OperationalError as e:
                    if "JSON" not in str(e):
                        raise
                    raise InvalidEvent("a stored event is not valid JSON") from e
                if None in map(_TYPE, rows):
                    older = {r[0] for r in rows if r[2] is None}
                    rows = [r for r in rows if r[0] not in older]
                    rows += self._older_fields(db, sorted(older), fields, until, width)
                    rows.sort(key=_BY_CUSTOMER)  # stable: each customer's order stays
                out += rows
        return out

    def _older_fields(
        self,
        db: sqlite3.Connection,
        customer_ids: Sequence[str],
        fields: Mapping[str, Sequence[str]],
        until: datetime,
        width: int,
    ) -> list[tuple[Any, ...]]:
        """:meth:`event_fields` of customers some of whose events were stored by an older
        release: every body decoded (and upgraded) as an event is."""
        marks = ",".join("?" * len(customer_ids))
        out: list[tuple[Any, ...]] = []
        for cid, at_us, kind, event_id, body in db.execute(
            "SELECT customer_id, at_us, type, event_id, body FROM events "
            f"WHERE customer_id IN ({marks}) AND type IN ({','.join('?' * len(fields))}) "
            "AND at_us <= ? ORDER BY customer_id, at_us, rank, event_id",
            (*customer_ids, *fields, _us(until)),
        ):
            values = body_fields(body, fields[kind], customer_id=cid, event_id=event_id)
            out.append((cid, at_us, kind, *values, *(None,) * (width - len(values))))
        return out

    def history_since(self, customer_id: str, version: int) -> tuple[Event, ...]:
        with self._reading() as db:
            rows = db.execute(
                "SELECT event_id, body FROM (SELECT event_id, body, at_us, rank FROM events "
                "WHERE customer_id = ? ORDER BY seq LIMIT -1 OFFSET ?) "
                "ORDER BY at_us, rank, event_id",
                (customer_id, max(version, 0)),
            ).fetchall()
        return tuple(
            event_from_body(body, customer_id=customer_id, event_id=event_id)
            for event_id, body in rows
        )

    def version(self, customer_id: str) -> int:
        with self._reading() as db:
            row = db.execute(
                "SELECT version FROM customers WHERE customer_id = ?", (customer_id,)
            ).fetchone()
        return int(row[0]) if row else 0

    def versions(self, customer_ids: Iterable[str] | None = None) -> dict[str, int]:
        with self._reading() as db:
            if customer_ids is None:
                return dict(
                    db.execute("SELECT customer_id, version FROM customers ORDER BY customer_id")
                )
            return self._versions(db, sorted(set(customer_ids)))

    def customer_ids(self) -> Iterator[str]:
        with self._reading() as db:
            ids = [
                cid
                for (cid,) in db.execute("SELECT customer_id FROM customers ORDER BY customer_id")
            ]
        return iter(ids)

    def referrers(self, customer_ids: Iterable[str]) -> dict[str, frozenset[str]]:
        found: dict[str, set[str]] = {}
        with self._reading() as db:
            for chunk in _chunks(sorted(set(customer_ids))):
                marks = ",".join("?" * len(chunk))
                for referred, referrer in db.execute(
                    f"SELECT referred_id, referrer_id FROM referrals WHERE referred_id IN ({marks})",
                    chunk,
                ):
                    found.setdefault(referred, set()).add(referrer)
        return {c: frozenset(r) for c, r in found.items()}

    # -- snapshots ----------------------------------------------------------------------------

    def put_snapshots(self, snapshots: Sequence[Snapshot]) -> None:
        self._write(lambda db: self._put_snapshots(db, snapshots))

    def snapshots(
        self,
        *,
        stages: Collection[Stage] | None = None,
        statuses: Collection[Status | None] | None = None,
        holding_at: datetime | None = None,
        expired_at: datetime | None = None,
    ) -> Iterator[Snapshot]:
        where: list[str] = []
        args: list[Any] = []
        if stages is not None:
            where.append(f"stage IN ({','.join('?' * len(stages))})")
            args += [int(s) for s in stages]
        if statuses is not None:
            named = [s.value for s in statuses if s is not None]
            clause = f"status IN ({','.join('?' * len(named))})" if named else "0"
            if None in statuses:
                clause = f"({clause} OR status IS NULL)"
            where.append(clause)
            args += named
        if holding_at is not None:
            where.append("as_of <= ? AND (valid_until IS NULL OR valid_until > ?)")
            args += [_ts(holding_at)] * 2
        if expired_at is not None:
            where.append("NOT (as_of <= ? AND (valid_until IS NULL OR valid_until > ?))")
            args += [_ts(expired_at)] * 2
        sql = "SELECT customer_id, stage, status, as_of, valid_until, version FROM snapshots"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._reading() as db:
            rows = db.execute(sql + " ORDER BY customer_id", args).fetchall()
        return iter([_snapshot(r) for r in rows])

    def snapshot_stages(self, holding_at: datetime) -> list[tuple[str, int, str | None]]:
        at = _ts(holding_at)
        with self._reading() as db:
            return db.execute(
                "SELECT customer_id, stage, status FROM snapshots "
                "WHERE as_of <= ? AND (valid_until IS NULL OR valid_until > ?) "
                "ORDER BY customer_id",
                (at, at),
            ).fetchall()

    def snapshot(self, customer_id: str) -> Snapshot | None:
        with self._reading() as db:
            row = db.execute(
                "SELECT customer_id, stage, status, as_of, valid_until, version, state "
                "FROM snapshots WHERE customer_id = ?",
                (customer_id,),
            ).fetchone()
        return None if row is None else _snapshot(row)

    # -- privacy ------------------------------------------------------------------------------

    def forget(self, customer_id: str, redacted: Sequence[Event], at: datetime) -> None:
        def run(db: sqlite3.Connection) -> None:
            ids = [e.event_id for e in redacted]
            stored: dict[str, tuple[str, str]] = {}
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                for event_id, cid, kind in db.execute(
                    f"SELECT event_id, customer_id, type FROM events WHERE event_id IN ({marks})",
                    chunk,
                ):
                    stored[event_id] = (cid, kind)
            for e in redacted:
                if stored.get(e.event_id) != (customer_id, e.event_type):
                    raise StoreError(
                        f"event {e.event_id!r} is not a stored event of this customer and type"
                    )
            db.executemany(
                "UPDATE events SET body = ? WHERE event_id = ?",
                [(event_body(e), e.event_id) for e in redacted],
            )
            db.execute("UPDATE snapshots SET state = NULL WHERE customer_id = ?", (customer_id,))
            db.execute(
                "UPDATE outbox SET state = ?, claimed_by = NULL, lease_until = NULL, "
                "last_error = 'customer erased', updated_at = ? "
                f"WHERE customer_id = ? AND state IN ({','.join('?' * len(_UNSENT))})",
                (OutboxState.CANCELLED.value, _ts(at), customer_id, *_UNSENT),
            )
            # Sent and failed entries too: texts, and errors that may quote an address.
            db.execute(
                "UPDATE outbox SET payload = '{}', text_en = '', text_zh = '', subject_en = NULL, "
                "subject_zh = NULL, last_error = CASE WHEN state = ? THEN 'customer erased' END "
                "WHERE customer_id = ?",
                (OutboxState.CANCELLED.value, customer_id),
            )

        self._write(run)
        self._purge(customer_id)

    def _purge(self, customer_id: str) -> None:
        """Leave no copy of overwritten rows: ``secure_delete`` zeroed them in the pages the
        redaction wrote; copying those pages into the file and truncating the WAL removes the
        older page images. A reader in another process can hold the WAL for a while: try
        again until the busy timeout, then say the erasure is not finished."""
        deadline = time.monotonic() + self.busy_timeout
        with self._lock:
            self._check_open()
            while True:
                try:
                    busy = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                except sqlite3.Error as e:
                    raise ErasureIncomplete(customer_id, str(self._fail(e))) from e
                if not busy:
                    return
                if time.monotonic() >= deadline:
                    raise ErasureIncomplete(
                        customer_id, f"{self.path}: another connection holds the WAL"
                    )
                time.sleep(0.01)

    # -- outbox -------------------------------------------------------------------------------

    def outbox_entry(self, key: str) -> OutboxEntry | None:
        with self._reading() as db:
            row = db.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else _outbox_entry(row)

    def outbox_entries(
        self,
        *,
        states: Collection[OutboxState] | None = None,
        customer_id: str | None = None,
    ) -> Iterator[OutboxEntry]:
        where: list[str] = []
        args: list[Any] = []
        if states is not None:
            where.append(f"state IN ({','.join('?' * len(states))})")
            args += [OutboxState(s).value for s in states]
        if customer_id is not None:
            where.append("customer_id = ?")
            args.append(customer_id)
        sql = f"SELECT {_OUTBOX_COLUMNS} FROM outbox"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._reading() as db:
            rows = db.execute(sql + " ORDER BY due_at, key", args).fetchall()
        return iter([_outbox_entry(r) for r in rows])

    def claim(
        self, at: datetime, *, worker: str, lease: timedelta, limit: int = 100
    ) -> list[OutboxEntry]:
        now = _ts(at)

        def run(db: sqlite3.Connection) -> list[OutboxEntry]:
            # One dispatcher at a time sends to a customer: entries of a customer with a live
            # claim wait, and one call takes at most one entry per customer (its oldest due).
            keys = [
                k
                for (k,) in db.execute(
                    "SELECT key FROM (SELECT o.key, o.next_attempt_at, ROW_NUMBER() OVER "
                    "(PARTITION BY o.customer_id ORDER BY o.next_attempt_at, o.key) AS n "
                    "FROM outbox o WHERE ((o.state = 'pending' AND o.next_attempt_at <= ?) "
                    "OR (o.state = 'claimed' AND o.lease_until <= ?)) "
                    "AND NOT EXISTS (SELECT 1 FROM outbox c WHERE c.customer_id = o.customer_id "
                    "AND c.state = 'claimed' AND c.lease_until > ?)) "
                    "WHERE n = 1 ORDER BY next_attempt_at, key LIMIT ?",
                    (now, now, now, limit),
                )
            ]
            db.executemany(
                "UPDATE outbox SET state = 'claimed', claimed_by = ?, lease_until = ?, "
                "attempts = attempts + 1, updated_at = ? WHERE key = ?",
                [(worker, _ts(at + lease), now, k) for k in keys],
            )
            out = []
            for chunk in _chunks(keys):
                marks = ",".join("?" * len(chunk))
                out += [
                    _outbox_entry(r)
                    for r in db.execute(
                        f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE key IN ({marks})", chunk
                    )
                ]
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

        def run(db: sqlite3.Connection) -> bool:
            row = db.execute(
                "SELECT state, claimed_by FROM outbox WHERE key = ?", (key,)
            ).fetchone()
            if row is None or row[0] != OutboxState.CLAIMED.value or row[1] != worker:
                return False
            self._insert_events(db, events)
            self._put_snapshots(db, snapshots)
            retry = _opt_ts(next_attempt_at) if state is OutboxState.PENDING else None
            db.execute(
                "UPDATE outbox SET state = ?, next_attempt_at = COALESCE(?, next_attempt_at), "
                "claimed_by = NULL, lease_until = NULL, last_error = ?, settled = attempts, "
                "failures = ?, in_doubt = ?, updated_at = ? WHERE key = ?",
                (state.value, retry, error, failures, int(in_doubt), _ts(at), key),
            )
            return True

        return self._write(run)

    # -- the planning index -------------------------------------------------------------------

    def planning_due(self, at: datetime, *, limit: int | None = None) -> dict[str, int]:
        with self._reading() as db:
            rows = db.execute(
                "SELECT customer_id, stamp FROM plan_marks WHERE next_due <= ? "
                "ORDER BY next_due, customer_id LIMIT ?",
                (_ts(at), -1 if limit is None else limit),
            ).fetchall()
        return {r[0]: r[1] for r in rows}

    def planned(self, marks: Sequence[PlanMark]) -> None:
        def run(db: sqlite3.Connection) -> None:
            db.executemany(
                "UPDATE plan_marks SET next_due = ? WHERE customer_id = ? AND stamp = ?",
                [
                    (
                        _PLAN_NEVER if m.next_due is None else _ts(m.next_due),
                        m.customer_id,
                        m.stamp,
                    )
                    for m in marks
                ],
            )

        self._write(run)

    def plan_fingerprint(self) -> str | None:
        with self._reading() as db:
            row = db.execute(
                "SELECT value FROM lifecycle_meta WHERE key = 'plan_fingerprint'"
            ).fetchone()
        return None if row is None else str(row[0])

    def replan_all(self, fingerprint: str) -> None:
        def run(db: sqlite3.Connection) -> None:
            db.execute("UPDATE plan_marks SET next_due = '', stamp = stamp + 1")
            db.execute(
                "INSERT OR REPLACE INTO lifecycle_meta (key, value) VALUES ('plan_fingerprint', ?)",
                (fingerprint,),
            )

        self._write(run)

    # -- shop settings ----------------------------------------------------------------------
    # Kept in ``lifecycle_meta`` under ``shop.``-prefixed keys: no schema change.

    def shop_settings(self) -> dict[str, str]:
        with self._reading() as db:
            return _settings_in(db)

    def put_shop_settings(self, values: Mapping[str, str]) -> None:
        def run(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT OR REPLACE INTO lifecycle_meta (key, value) VALUES (?, ?)",
                [(_SETTING + str(k), str(v)) for k, v in values.items()],
            )

        self._write(run)

    # -- resources ----------------------------------------------------------------------------

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` for a sound file."""
        with self._reading() as db:
            return "; ".join(str(r[0]) for r in db.execute("PRAGMA integrity_check"))

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                try:
                    self._db.close()
                except sqlite3.Error as e:
                    raise self._fail(e) from e

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"


_SETTING: Final = "shop."


def _settings_in(db: sqlite3.Connection) -> dict[str, str]:
    rows = db.execute(
        "SELECT key, value FROM lifecycle_meta WHERE key >= ? AND key < ?",
        (_SETTING, _SETTING[:-1] + chr(ord(".") + 1)),
    )
    return {str(k)[len(_SETTING) :]: str(v) for k, v in rows}


_OUTBOX_COLUMNS = (
    "key, customer_id, channel, due_at, rule, purpose, template, payload, state, attempts, "
    "next_attempt_at, claimed_by, lease_until, last_error, updated_at, valid_until, priority, "
    "reason, contact_channel, text_en, text_zh, subject_en, subject_zh, settled, failures, "
    "in_doubt, planned"
)
_OUTBOX_MARKS = ", ".join("?" * len(_OUTBOX_COLUMNS.split(",")))


def _outbox_row(o: OutboxEntry) -> tuple[Any, ...]:
    return (
        o.key,
        o.customer_id,
        o.channel,
        _ts(o.due_at),
        o.rule,
        o.purpose,
        o.template,
        json.dumps(dict(o.payload), ensure_ascii=False, sort_keys=True),
        OutboxState(o.state).value,
        o.attempts,
        _opt_ts(o.next_attempt_at),
        o.claimed_by,
        _opt_ts(o.lease_until),
        o.last_error,
        _opt_ts(o.updated_at),
        _opt_ts(o.valid_until),
        o.priority,
        o.reason,
        o.contact_channel,
        o.text_en,
        o.text_zh,
        o.subject_en,
        o.subject_zh,
        o.settled,
        o.failures,
        int(o.in_doubt),
        int(o.planned),
    )


def _outbox_entry(r: Sequence[Any]) -> OutboxEntry:
    due = _from_ts(r[3])
    assert due is not None
    return OutboxEntry(
        key=r[0],
        customer_id=r[1],
        channel=r[2],
        due_at=due,
        rule=r[4],
        purpose=r[5],
        template=r[6],
        payload=json.loads(r[7]),
        state=OutboxState(r[8]),
        attempts=r[9],
        next_attempt_at=_from_ts(r[10]),
        claimed_by=r[11],
        lease_until=_from_ts(r[12]),
        last_error=r[13],
        updated_at=_from_ts(r[14]),
        valid_until=_from_ts(r[15]),
        priority=r[16],
        reason=r[17],
        contact_channel=r[18],
        text_en=r[19],
        text_zh=r[20],
        subject_en=r[21],
        subject_zh=r[22],
        settled=r[23],
        failures=r[24],
        in_doubt=bool(r[25]),
        planned=bool(r[26]),
    )


#: Stages and statuses by their stored values: a dictionary lookup costs a tenth of an enum
#: call, and listing every snapshot of a large shop makes two per row.
_STAGES: Final = {int(s): s for s in Stage}
_STATUSES: Final[dict[str | None, Status | None]] = {None: None, **{s.value: s for s in Status}}


def _snapshot(r: Sequence[Any]) -> Snapshot:
    valid_until = r[4]
    return Snapshot(
        customer_id=r[0],
        stage=_STAGES[r[1]],
        status=_STATUSES[r[2]],
        as_of=datetime.fromisoformat(r[3]),
        valid_until=None if valid_until is None else datetime.fromisoformat(valid_until),
        version=r[5],
        state=None if len(r) < 7 or r[6] is None else bytes(r[6]),
    )
