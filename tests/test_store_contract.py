"""Both shipped stores pass the conformance suite that host stores run."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from lifecycle.adapters.memory import MemoryStore
from lifecycle.adapters.sqlite import SQLiteStore
from lifecycle.ports import Store
from lifecycle.testing.store import StoreContract


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
