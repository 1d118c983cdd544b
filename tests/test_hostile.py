"""The standing probe: hostile values through every event class, record and the importer.

Each case ends in acceptance with the right state or a ``LifecycleError`` naming the problem,
and the shop still plans, dispatches and reports for everyone else. A bounded number of
examples here; ``benchmarks/probe_hostile.py`` runs many more.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lifecycle as lc
from lifecycle.testing.probe import probe_case, probe_rows
from lifecycle.testing.strategies import HostileCase, hostile_cases, hostile_rows

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("cls", sorted(lc.EVENT_TYPES.values(), key=lambda c: c.__name__))
def test_a_hostile_event_is_refused_by_name_or_recorded_and_the_shop_runs(
    cls: type[lc.Event],
) -> None:
    @settings(SETTINGS, max_examples=12)
    @given(hostile_cases([cls]))
    def probe(case: HostileCase) -> None:
        assert probe_case(case) is None

    probe()


@settings(SETTINGS, max_examples=15)
@given(hostile_cases())
def test_a_hostile_event_in_the_sqlite_store_too(case: HostileCase) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "shop.db"
        assert probe_case(case, lambda: lc.Lifecycle.open(path, synchronous="NORMAL")) is None


@settings(SETTINGS, max_examples=30)
@given(st.lists(hostile_rows(), min_size=1, max_size=4))
def test_hostile_rows_are_rejected_by_row_or_imported_and_the_shop_runs(
    rows: list[dict[str, str]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        assert probe_rows(rows, Path(folder)) is None
