"""Session fixtures shared by the test modules: the database servers' schemas are dropped at
the end of the run."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import servers


@pytest.fixture(scope="session", autouse=True)
def _drop_server_schemas() -> Iterator[None]:
    yield from servers.drop_all()
