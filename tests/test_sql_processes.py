"""The server store under several processes: dispatchers that never send twice nor break a cap,
writers that lose no event, and a writer killed mid-batch that leaves no half batch."""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lifecycle.adapters.channels import JsonLinesChannel
from lifecycle.dispatch import dispatch
from lifecycle.events import Contacted
from lifecycle.ports import OutboxState

sys.path.insert(0, str(Path(__file__).parent))
import servers
from dispatch_worker import POLICY, T0
from test_dispatch_processes import lines, seed, spawn
from test_sqlite import kill_during_ingest
from test_sqlite import spawn as spawn_writer

BACKENDS = ["postgresql", "mariadb"]


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest) -> servers.Server:
    return servers.server(request.param)


def _target(server: servers.Server, prefix: str) -> str:
    return json.dumps(server.spec(prefix))


def test_eight_dispatcher_processes_send_every_message_once_within_the_caps(
    server: servers.Server, tmp_path: Path
) -> None:
    # 500 messages here; benchmarks/dispatch_processes.py runs the same check with 1,000.
    check_dispatchers(server, tmp_path, customers=100)


def check_dispatchers(server: servers.Server, folder: Path, customers: int) -> int:
    """8 dispatcher processes send 3 transactional and 2 of 4 marketing messages (the cap)
    to each customer through a channel failing 1 time in 5: every message once, no cap
    broken. Returns how many were sent."""
    store = server.store()
    seed(store, customers=customers, transactional=3, marketing=4)
    out = folder / "sent.jsonl"
    procs = [spawn(_target(server, store.prefix), out, "run", f"w{i}") for i in range(8)]
    results = [p.communicate(timeout=600) for p in procs]
    failures = 0
    for (stdout, stderr), p in zip(results, procs, strict=True):
        assert p.returncode == 0, stderr
        assert stdout.startswith("done"), stdout + stderr
        failures += int(stdout.split("failures=")[1])
    try:
        # A retry a worker scheduled after its last step gets one more look, with no failures.
        sweep = JsonLinesChannel(out, name="email")
        late = dispatch(store, {"email": sweep}, POLICY, T0 + timedelta(hours=1))
        assert all(r.outcome.value in ("sent", "deferred") for r in late)
        delivered = Counter(r["key"] for r in lines(out))
        entries = {e.key: e for e in store.outbox_entries()}
        sent = {k for k, e in entries.items() if e.state is OutboxState.SENT}
        assert max(delivered.values()) == 1  # no message twice
        assert set(delivered) == sent
        assert len(sent) == customers * 5
        histories = store.histories([f"c{i:03}" for i in range(customers)])
        for cid, history in histories.items():
            contacts = [e for e in history if isinstance(e, Contacted)]
            marketing = [c for c in contacts if c.purpose == "marketing"]
            assert len(marketing) == 2, cid  # the cap (2 in 7 days) holds across processes
            assert len(contacts) == 5, cid
        waiting = [e for e in entries.values() if e.state is OutboxState.PENDING]
        assert len(waiting) == customers * 2
        assert all(
            e.next_attempt_at and e.next_attempt_at >= T0 + timedelta(days=7) for e in waiting
        )
        assert not [
            e for e in entries.values() if e.state in (OutboxState.CLAIMED, OutboxState.FAILED)
        ]
        assert failures > 0
        return len(sent)
    finally:
        store.drop_tables()
        store.close()


def test_eight_writer_processes_lose_no_event(server: servers.Server) -> None:
    # The writers share five customers, so most batches meet another writer's: the store
    # refuses the stale one (ConcurrencyError) and the facade reads again and retries
    # (sqlite_worker.py raises its retries to 10,000).
    store = server.store()
    target = _target(server, store.prefix)
    procs = [spawn_writer(target, "shared", f"w{i}", 6) for i in range(8)]
    outputs = [p.communicate(timeout=600) for p in procs]
    try:
        for (out, err), p in zip(outputs, procs, strict=True):
            assert p.returncode == 0, err
            assert out.strip().endswith("done errors=0"), out + err
        assert sum(store.version(f"s{i}") for i in range(5)) == 8 * 6 * 5
        for i in range(5):
            snap = store.snapshot(f"s{i}")
            assert snap is not None
            assert snap.version == store.version(f"s{i}") == len(store.history(f"s{i}"))
    finally:
        store.drop_tables()
        store.close()


def test_a_writer_killed_mid_batch_leaves_no_half_batch(server: servers.Server) -> None:
    store = server.store()
    target = _target(server, store.prefix)
    rng = random.Random(11)
    acked: set[int] = set()
    try:
        for _ in range(5):
            acked = kill_during_ingest(target, rng)
            versions = {cid: store.version(cid) for cid in store.customer_ids()}
            for n in acked:
                assert versions.get(f"bk-{n}") == 20, n  # every acknowledged batch, whole
            assert set(versions.values()) <= {20}  # and no batch in part
            counts: dict[str, Any] = Counter(e.customer_id for e in _all_events(store))
            assert set(counts.values()) <= {20}
        assert acked  # the writer got somewhere before it was killed
    finally:
        store.drop_tables()
        store.close()


def _all_events(store: Any) -> list[Any]:
    return [e for h in store.histories(store.customer_ids()).values() for e in h]
