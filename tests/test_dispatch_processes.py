"""Dispatchers in separate processes on one SQLite file: no message twice, caps kept, kills."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from lifecycle.adapters.channels import JsonLinesChannel
from lifecycle.adapters.sqlite import SQLiteStore
from lifecycle.customer import ContactPoint, Profile
from lifecycle.dispatch import DispatchOutcome, dispatch, in_doubt
from lifecycle.events import Contacted, CustomerRegistered
from lifecycle.ports import OutboxEntry, OutboxState, Store

sys.path.insert(0, str(Path(__file__).parent))
from dispatch_worker import DISPATCH, POLICY, T0

WORKER = Path(__file__).with_name("dispatch_worker.py")
CUSTOMERS = 100
ALL = frozenset({"transactional", "service", "marketing"})


def _seed(path: Path, customers: int, transactional: int, marketing: int) -> None:
    store = SQLiteStore(path, synchronous="NORMAL")
    seed(store, customers, transactional, marketing)
    store.close()


def seed(store: Store, customers: int, transactional: int, marketing: int) -> None:
    """Customers with an e-mail address and every consent, and their messages due at T0."""
    events, outbox = [], []
    for i in range(customers):
        cid = f"c{i:03}"
        profile = Profile(
            contacts=(ContactPoint(channel="email", address=f"{cid}@x.cn", consent=ALL),)
        )
        events.append(
            CustomerRegistered(customer_id=cid, at=T0 - timedelta(days=9), profile=profile)
        )
        for purpose, count in (("transactional", transactional), ("marketing", marketing)):
            outbox += [
                OutboxEntry(
                    key=f"{cid}:{purpose}:{n}",
                    customer_id=cid,
                    channel="email",
                    due_at=T0 - timedelta(minutes=n),
                    rule=purpose,
                    purpose=purpose,
                    text_en="hi",
                )
                for n in range(count)
            ]
    store.append(events, outbox=outbox)


def spawn(target: Path | str, out: Path, mode: str, worker: str) -> subprocess.Popen[str]:
    """A dispatcher process on ``target`` (a SQLite file, or a server store's JSON)."""
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(target), str(out), mode, worker],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines(out: Path) -> list[dict[str, str]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text("utf-8").splitlines()]


def test_eight_dispatcher_processes_never_send_a_message_twice_nor_break_a_cap(
    tmp_path: Path,
) -> None:
    path, out = tmp_path / "shop.db", tmp_path / "sent.jsonl"
    _seed(path, customers=CUSTOMERS, transactional=3, marketing=4)
    procs = [spawn(path, out, "run", f"w{i}") for i in range(8)]
    results = [p.communicate(timeout=120) for p in procs]
    failures = 0
    for (stdout, stderr), p in zip(results, procs, strict=True):
        assert p.returncode == 0, stderr
        assert stdout.startswith("done"), stdout + stderr
        failures += int(stdout.split("failures=")[1])
    store = SQLiteStore(path)
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
        assert len(sent) == CUSTOMERS * 3 + CUSTOMERS * 2
        for cid in (f"c{i:03}" for i in range(CUSTOMERS)):
            contacts = [e for e in store.history(cid) if isinstance(e, Contacted)]
            marketing = [c for c in contacts if c.purpose == "marketing"]
            assert len(marketing) == 2, cid  # the cap (2 in 7 days) holds across processes
            assert len(contacts) == 5
        waiting = [e for e in entries.values() if e.state is OutboxState.PENDING]
        assert len(waiting) == CUSTOMERS * 2
        assert all(
            e.next_attempt_at and e.next_attempt_at >= T0 + timedelta(days=7) for e in waiting
        )
        assert not [
            e for e in entries.values() if e.state in (OutboxState.CLAIMED, OutboxState.FAILED)
        ]
        assert failures > 0
        assert store.integrity_check() == "ok"
    finally:
        store.close()


@pytest.mark.parametrize("deduplicate", [False, True])
def test_a_dispatcher_killed_between_send_and_mark_never_sends_twice_silently(
    tmp_path: Path, deduplicate: bool
) -> None:
    path, out = tmp_path / "shop.db", tmp_path / "sent.jsonl"
    _seed(path, customers=1, transactional=1, marketing=0)
    proc = spawn(path, out, "hang", "doomed")
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("sent "), line + proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    key = line.split()[1]
    assert [r["key"] for r in lines(out)] == [key]

    store = SQLiteStore(path)
    try:
        entry = store.outbox_entry(key)
        assert entry is not None
        assert entry.state is OutboxState.CLAIMED
        channel = JsonLinesChannel(out, name="email", deduplicate=deduplicate)
        early = dispatch(store, {"email": channel}, POLICY, T0 + timedelta(seconds=5), worker="b")
        assert len(early) == 0  # the lease still holds
        report = dispatch(store, {"email": channel}, POLICY, T0 + DISPATCH.lease, worker="b")
        (r,) = report.results
        assert r.doubt
        assert [x["key"] for x in lines(out)] == [key]  # never delivered twice
        if deduplicate:  # resent under the same key; the channel drops the repeat
            assert r.outcome is DispatchOutcome.SENT
            assert [c.key for c in store.history("c000") if isinstance(c, Contacted)] == [key]
        else:  # cannot tell: reported, not resent
            assert r.outcome is DispatchOutcome.IN_DOUBT
            assert [e.key for e in in_doubt(store)] == [key]
    finally:
        store.close()
