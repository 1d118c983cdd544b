"""The facade's batch assessment: every stored customer at once, equal to ``assess`` one by one."""

from __future__ import annotations

import pathlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lifecycle as lc
from lifecycle.adapters.sqlite import SQLiteStore
from lifecycle.analytics import BatchAssessment
from lifecycle.analytics.batch import assess_all, assess_stored, stored_fields, stored_rows
from lifecycle.datasets import synthetic_shop


def one_by_one(shop: lc.Lifecycle, at: datetime | None) -> dict[str, tuple[object, object]]:
    out: dict[str, tuple[object, object]] = {}
    for cid in shop.store.customer_ids():
        a = shop.assess(cid, at)
        out[cid] = (a.stage, a.status)
    return out


def batch(shop: lc.Lifecycle, at: datetime | None) -> dict[str, tuple[object, object]]:
    b = shop.assess_all(at)
    assert isinstance(b, BatchAssessment)
    assert list(b.customer_id) == sorted(b.customer_id)
    return {str(cid): b.of(str(cid)) for cid in b.customer_id}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    customers=st.integers(1, 120),
    days=st.sampled_from([None, -400, -30, 0, 1, 45, 400]),
)
def test_assess_all_equals_assess_customer_by_customer(
    seed: int, customers: int, days: int | None
) -> None:
    """Snapshots that hold answer for their customers, the batch path for the others (an
    instant before the snapshots, or after they expire): the same stage and status."""
    data = synthetic_shop(customers, seed=seed)
    shop = lc.Lifecycle.in_memory(
        clock=lc.FixedClock(data.as_of), policy=lc.Policy(timezone=data.timezone)
    )
    shop.record(data.events)
    at = None if days is None else data.as_of + timedelta(days=days)
    assert batch(shop, at) == one_by_one(shop, at)


@pytest.mark.parametrize("days", [None, -90, 60])
def test_assess_all_on_a_sqlite_file(tmp_path: pathlib.Path, days: int | None) -> None:
    data = synthetic_shop(300, seed=11)
    with lc.Lifecycle.open(
        tmp_path / "shop.db",
        clock=lc.FixedClock(data.as_of),
        policy=lc.Policy(timezone=data.timezone),
    ) as shop:
        shop.record(data.events)
        at = None if days is None else data.as_of + timedelta(days=days)
        got = shop.assess_all(at)
        assert len(got) == 300
        assert batch(shop, at) == one_by_one(shop, at)
        assert sum(got.stage_counts().values()) == 300


def test_assess_all_stores_nothing_and_an_empty_shop_has_no_one() -> None:
    shop = lc.Lifecycle.in_memory(clock=lc.FixedClock(datetime(2026, 1, 1, tzinfo=UTC)))
    empty = shop.assess_all()
    assert len(empty) == 0
    assert empty.skipped == ()


def test_assess_all_skips_a_customer_whose_history_cannot_be_read(
    tmp_path: pathlib.Path,
) -> None:
    data = synthetic_shop(40, seed=2)
    with lc.Lifecycle.open(
        tmp_path / "shop.db",
        clock=lc.FixedClock(data.as_of),
        policy=lc.Policy(timezone=data.timezone),
    ) as shop:
        shop.record(data.events)
        store = shop.store
        assert isinstance(store, SQLiteStore)
        bad = data.customer_ids[3]
        store._db.execute("UPDATE events SET body = 'not json' WHERE customer_id = ?", (bad,))
        earlier = data.as_of - timedelta(days=1)  # no snapshot holds: every history is read
        got = shop.assess_all(earlier)
        assert [s.customer_id for s in got.skipped] == [bad]
        assert bad not in set(got.customer_id)
        assert len(got) == 39


def test_assess_all_reads_the_value_model_like_assess() -> None:
    pytest.importorskip("lifecycle.clv")
    data = synthetic_shop(1500, seed=5)
    shop = lc.Lifecycle.in_memory(
        clock=lc.FixedClock(data.as_of), policy=lc.Policy(timezone=data.timezone)
    )
    shop.record(data.events)
    shop.fit_value_model()
    for at in (None, data.as_of + timedelta(days=90)):
        got = shop.assess_all(at)
        for cid in data.customer_ids[:150]:
            a = shop.assess(cid, at)
            assert got.of(cid) == (a.stage, a.status)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    customers=st.integers(1, 80),
    days=st.sampled_from([-400, -30, 0, 45]),
    placed_engages=st.booleans(),
)
def test_the_stored_fields_give_what_the_events_give(
    seed: int, customers: int, days: int, placed_engages: bool
) -> None:
    """The batch from a SQLite store's event fields equals the batch from the decoded events,
    customer by customer (policies that count placed orders as engagement or not)."""
    data = synthetic_shop(customers, seed=seed)
    stage = lc.StagePolicy(placed_order_is_engagement=placed_engages)
    policy = lc.Policy(timezone=data.timezone, stage=stage)
    at = data.as_of + timedelta(days=days)
    store = SQLiteStore(":memory:")
    try:
        store.append(data.events)
        ids = sorted(store.customer_ids())
        rows = stored_rows(lambda c, f: store.event_fields(c, f, at), ids, policy)
        got = assess_stored(rows, ids, policy, at)
        want = assess_all(data.events, policy, at)
        assert list(got.customer_id) == list(want.customer_id)
        assert got.stage.tolist() == want.stage.tolist()
        assert got.status.tolist() == want.status.tolist()
    finally:
        store.close()


def test_events_stored_by_an_older_release_are_decoded_and_upgraded(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body of an older schema version is read through the event decoder (and its upgrade),
    the others of the same batch as stored: the same fields either way."""
    data = synthetic_shop(30, seed=4)
    with lc.Lifecycle.open(
        tmp_path / "shop.db",
        clock=lc.FixedClock(data.as_of),
        policy=lc.Policy(timezone=data.timezone),
    ) as shop:
        shop.record(data.events)
        store = shop.store
        assert isinstance(store, SQLiteStore)
        fields = stored_fields()
        ids = sorted(store.customer_ids())
        before = store.event_fields(ids, fields, data.as_of)
        old = next(e.customer_id for e in data.events if isinstance(e, lc.OrderPaid))
        store._db.execute(
            "UPDATE events SET body = replace(body, '\"v\":3,', '\"v\":2,') WHERE customer_id = ?",
            (old,),
        )
        decoded: list[str] = []
        older_fields = SQLiteStore._older_fields

        def spy(self: SQLiteStore, db: Any, customer_ids: Any, *args: Any) -> Any:
            decoded.extend(customer_ids)
            return older_fields(self, db, customer_ids, *args)

        monkeypatch.setattr(SQLiteStore, "_older_fields", spy)
        assert store.event_fields(ids, fields, data.as_of) == before
        assert decoded == [old]
        earlier = data.as_of - timedelta(days=1)
        assert batch(shop, earlier) == one_by_one(shop, earlier)


@pytest.mark.parametrize("days", [-1, 0, 1, 400])
def test_snapshot_stages_are_the_snapshots_that_hold(tmp_path: pathlib.Path, days: int) -> None:
    data = synthetic_shop(60, seed=9)
    with lc.Lifecycle.open(
        tmp_path / "shop.db",
        clock=lc.FixedClock(data.as_of),
        policy=lc.Policy(timezone=data.timezone),
    ) as shop:
        shop.record(data.events)
        store = shop.store
        assert isinstance(store, SQLiteStore)
        at = data.as_of + timedelta(days=days)
        want = [
            (s.customer_id, int(s.stage), None if s.status is None else s.status.value)
            for s in store.snapshots(holding_at=at)
        ]
        assert store.snapshot_stages(at) == want
        assert (len(want) == 0) == (days < 0)
