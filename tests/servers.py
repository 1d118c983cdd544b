"""The database servers the SQL store's tests run on, and a fresh schema on each per run.

The URLs default to the servers every machine of the project runs (PostgreSQL and MariaDB on
127.0.0.1) and can be changed with LIFECYCLE_TEST_POSTGRES and LIFECYCLE_TEST_MARIADB. A test
that needs a server nobody runs skips with a one-line reason; with LIFECYCLE_REQUIRE_SERVERS=1
(``.ci/run`` sets it) it fails instead, so CI proves the server stores every time.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

URLS = {
    "postgresql": os.environ.get(
        "LIFECYCLE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
    ),
    "mariadb": os.environ.get("LIFECYCLE_TEST_MARIADB", "mysql://root@127.0.0.1:3306/test"),
}
NAMES = {"postgresql": "PostgreSQL", "mariadb": "MariaDB"}
#: Every table of a store, without its prefix.
TABLES = ("events", "customers", "keys", "referrals", "snapshots", "outbox", "plan_marks")


def required() -> bool:
    return os.environ.get("LIFECYCLE_REQUIRE_SERVERS", "") not in ("", "0")


def unavailable(reason: str) -> None:
    """Skip (or, when servers are required, fail) the test with a one-line reason."""
    if required():
        pytest.fail(f"{reason} (LIFECYCLE_REQUIRE_SERVERS is set)", pytrace=False)
    pytest.skip(reason)


class Server:
    """One server, with a schema of its own for this test run (dropped at the end)."""

    def __init__(self, backend: str):
        self.backend = backend
        self.url = URLS[backend]
        self.schema = f"lct_{uuid.uuid4().hex[:10]}"
        try:
            import sqlalchemy as sa

            from lifecycle.adapters.sql import SQLStore
        except ImportError as e:
            unavailable(f"the sql extra is not installed ({e.name})")
        self.sa = sa
        self.SQLStore = SQLStore
        from lifecycle.adapters.sql import _normalise_url

        self.engine = sa.create_engine(_normalise_url(self.url), pool_size=10)
        try:
            with self.engine.connect():
                pass
        except sa.exc.SQLAlchemyError as e:
            self.engine.dispose()
            first = str(getattr(e, "orig", e)).strip().splitlines()[0]
            unavailable(f"no {NAMES[backend]} server at {self.url}: {first}")
        self._prefixes = iter(range(10**9))
        self._kit: Any = None

    @property
    def postgres(self) -> bool:
        return self.backend == "postgresql"

    def store(self, prefix: str | None = None, **options: Any) -> Any:
        """A new store in this run's schema, under a prefix of its own unless given."""
        if prefix is None:
            prefix = f"p{next(self._prefixes)}_"
        return self.SQLStore(self.engine, schema=self.schema, prefix=prefix, **options)

    def spec(self, prefix: str) -> dict[str, str]:
        """What a worker process needs to open the store under ``prefix``."""
        return {"url": self.url, "schema": self.schema, "prefix": prefix}

    def fresh_kit_store(self) -> Any:
        """An empty store for the conformance kit: one table set, emptied each time (creating
        tables on every test would take minutes on MariaDB)."""
        if self._kit is None:
            self._kit = self.store("kit_")
        with self.engine.begin() as conn:
            for name in TABLES:
                conn.execute(self.sa.text(f"DELETE FROM {self.table('kit_', name)}"))
            conn.execute(
                self.sa.text(
                    f"DELETE FROM {self.table('kit_', 'meta')} WHERE {self.quote('key')} "
                    "<> 'schema_version'"
                )
            )
        return self.store("kit_", create=False)

    def quote(self, name: str) -> str:
        return str(self.engine.dialect.identifier_preparer.quote(name))

    def table(self, prefix: str, name: str) -> str:
        return f"{self.quote(self.schema)}.{self.quote(prefix + name)}"

    def drop(self) -> None:
        with self.engine.begin() as conn:
            if self.postgres:
                conn.execute(
                    self.sa.text(f"DROP SCHEMA IF EXISTS {self.quote(self.schema)} CASCADE")
                )
            else:
                conn.execute(self.sa.text(f"DROP DATABASE IF EXISTS {self.quote(self.schema)}"))
        self.engine.dispose()


_servers: dict[str, Server] = {}


def server(backend: str) -> Server:
    """The server for ``backend``, connected once per test run."""
    if backend not in _servers:
        _servers[backend] = Server(backend)
    return _servers[backend]


def drop_all() -> Iterator[None]:
    yield
    for s in _servers.values():
        s.drop()
    _servers.clear()
