"""Every shipped store passes the conformance suite that host stores run: in memory, SQLite,
and the server store on PostgreSQL and MariaDB."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

from lifecycle.adapters.memory import MemoryStore
from lifecycle.adapters.sqlite import SQLiteStore
from lifecycle.ports import Store
from lifecycle.testing.store import StoreContract

sys.path.insert(0, str(Path(__file__).parent))
import servers


class TestMemoryStore(StoreContract):
    def make_store(self) -> Store:
        return MemoryStore()


class TestSQLiteStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path: Path) -> None:
        self.folder = tmp_path
        self.count = itertools.count()

    def make_store(self) -> Store:
        return SQLiteStore(self.folder / f"store-{next(self.count)}.db", synchronous="NORMAL")


class _ServerStore(StoreContract):
    backend = ""
    random_walks = 8  # each step is a dozen round trips to the server

    @pytest.fixture(autouse=True)
    def _server(self) -> None:
        self.server = servers.server(self.backend)

    def make_store(self) -> Store:
        store: Store = self.server.fresh_kit_store()
        return store


class TestPostgreSQLStore(_ServerStore):
    backend = "postgresql"


class TestMariaDBStore(_ServerStore):
    backend = "mariadb"


def test_the_kit_imports_from_the_package() -> None:
    from lifecycle import testing

    assert testing.StoreContract is StoreContract
    for capability in (
        testing.EventLogContract,
        testing.SnapshotContract,
        testing.OutboxContract,
        testing.ErasureContract,
        testing.PlanIndexContract,
    ):
        assert issubclass(StoreContract, capability)
