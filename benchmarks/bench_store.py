"""Store benchmark: SQLite, PostgreSQL and MariaDB side by side.

Run: .venv/bin/python benchmarks/bench_store.py [--sizes 5000,100000]
         [--backends sqlite,postgresql,mariadb] [--runs 3] [--probes 200] [--ticks 5]
         [--file /tmp/shop1m.db --customers 1000000]

Prints the machine and how fast it runs at the moment (a reference loop: about 0.37 s when the
host is quiet, up to 0.6 s when it is busy) and the host's load averages, then for each size
and store: events recorded per second into a fresh store (one batch, one transaction, snapshots
included; the median and the best of ``--runs`` runs up to 5,000 customers, one run above, and
per CPU-second of this process, which other work on a shared host changes less than the wall
clock), the median cost of one
``assess``, ``assess_all`` (every customer's stage and status at once), the first dispatch (it
plans every customer into the outbox and sends what is due) and the median dispatch tick a
minute apart with nothing new. With ``--file``, the SQLite file of the synthetic shop of
``--customers`` customers (seed 1) is built there once, batch by batch, and kept for later runs;
the run then times ``assess_all`` on it, at the shop's end (the snapshots hold), a day later
(those of customers whose status or stage time alone changes do not) and a day before the end
(none holds: every customer goes through the batch path). The servers are those of the
tests (LIFECYCLE_TEST_POSTGRES, LIFECYCLE_TEST_MARIADB), with their default settings; the
SQLite file is synchronous=FULL, the default.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import lifecycle as lc
from lifecycle.adapters.channels import MemoryChannel
from lifecycle.adapters.sql import SQLStore
from lifecycle.datasets import synthetic_shop
from lifecycle.vocabulary import RULE_CHANNELS


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def reference_loop() -> float:
    """Seconds for a fixed pure-Python loop (best of three): how fast the machine runs now.

    A shared virtual machine runs faster or slower with its host's load; printing this beside
    the figures says which phase they were taken in.
    """
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(5_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return best


def load() -> str:
    """The host's load averages (1, 5, 15 minutes): other work sharing the cores."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load unknown"
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


SERVERS = {
    "postgresql": os.environ.get(
        "LIFECYCLE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
    ),
    "mariadb": os.environ.get("LIFECYCLE_TEST_MARIADB", "mysql://root@127.0.0.1:3306/test"),
}


@contextmanager
def opened(backend: str, folder: Path, name: str, **kw: Any) -> Iterator[lc.Lifecycle]:
    """A lifecycle on a fresh store of ``backend``: a SQLite file, or tables in a schema of
    their own on the server (dropped afterwards)."""
    if backend == "sqlite":
        with lc.Lifecycle.open(folder / f"{name}.db", **kw) as shop:
            yield shop
        return
    schema = f"lcbench_{os.getpid()}"
    shop = lc.Lifecycle.open(SERVERS[backend], schema=schema, prefix=f"{name}_", **kw)
    try:
        yield shop
    finally:
        store = shop.store
        assert isinstance(store, SQLStore)
        store.drop_tables()
        shop.close()


def measure(
    backend: str,
    folder: Path,
    customers: int,
    runs: int,
    probes: int,
    ticks: int,
    dispatching: bool = True,
) -> tuple[int, list[float], list[float], float, float, float, float, int]:
    """Record the shop into ``runs`` fresh stores (the seconds of each); on the last, the median
    ``assess`` over ``probes`` customers, the first dispatch (plans everyone, sends what is
    due) and the median dispatch tick a minute apart with nothing new."""
    data = synthetic_shop(customers, seed=1)
    policy = lc.Policy(timezone=data.timezone)
    channels = {name: MemoryChannel(name) for name in RULE_CHANNELS}
    times: list[float] = []
    cpus: list[float] = []  # this process's CPU seconds: what the other work on the host leaves
    for run in range(runs):
        with opened(
            backend,
            folder,
            f"b{customers}r{run}",
            clock=lc.FixedClock(data.as_of),
            policy=policy,
            channels=channels,
        ) as shop:
            start, cpu = time.perf_counter(), time.process_time()
            shop.record(data.events)
            times.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
            if run < runs - 1:
                continue
            ids = list(data.customer_ids)
            step = max(1, len(ids) // probes)
            costs = []
            for cid in ids[::step][:probes]:
                start = time.perf_counter()
                shop.assess(cid)
                costs.append(time.perf_counter() - start)
            start = time.perf_counter()
            everyone = shop.assess_all()
            assess_all = time.perf_counter() - start
            assert len(everyone) == customers
            if not dispatching:
                return len(data.events), times, cpus, statistics.median(costs), assess_all, 0, 0, 0
            start = time.perf_counter()
            first = shop.dispatch()
            first_tick = time.perf_counter() - start
            shop.dispatch(data.as_of + timedelta(minutes=1))  # re-plans those just contacted
            tick_times = []
            for i in range(ticks):
                start = time.perf_counter()
                shop.dispatch(data.as_of + timedelta(minutes=2 + i))
                tick_times.append(time.perf_counter() - start)
    return (
        len(data.events),
        times,
        cpus,
        statistics.median(costs),
        assess_all,
        first_tick,
        statistics.median(tick_times),
        len(first.sent),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,100000")
    parser.add_argument("--backends", default="sqlite,postgresql,mariadb")
    parser.add_argument(
        "--runs", type=int, default=3, help="ingest runs at 5,000 customers or fewer"
    )
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--ticks", type=int, default=5)
    parser.add_argument(
        "--no-dispatch", action="store_true", help="time ingest and assessment only"
    )
    parser.add_argument("--file", type=Path, help="a SQLite file to build once and keep")
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"machine: {machine()}; reference loop {reference_loop():.2f} s; {load()}", flush=True)
    if args.file is not None:
        assess_all_of(args.file, args.customers)
        print(f"reference loop {reference_loop():.2f} s; {load()}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for size in (int(s) for s in args.sizes.split(",")):
            for backend in args.backends.split(","):
                n, times, cpus, assess, assess_all, first, tick, sent = measure(
                    backend,
                    folder,
                    size,
                    args.runs if size <= 5000 else 1,
                    args.probes,
                    args.ticks,
                    not args.no_dispatch,
                )
                median, best = statistics.median(times), min(times)
                print(
                    f"{backend:<10} {size:>7,} customers {n:>9,} events  "
                    f"ingest {n / median:>7,.0f} events/s (median of {len(times)}, best "
                    f"{n / best:,.0f}; {n / statistics.median(cpus):,.0f} per CPU-second)  "
                    f"assess {assess * 1e3:5.2f} ms  "
                    f"assess_all {assess_all:6.2f} s  first dispatch "
                    f"{first:6.2f} s ({sent:,} sent)  idle tick {tick * 1e3:7.1f} ms",
                    flush=True,
                )
    print(f"reference loop {reference_loop():.2f} s; {load()}")
    drop_schemas(args.backends.split(","))
    return 0


def build_once(path: Path, customers: int) -> None:
    """The synthetic shop of ``customers`` customers in a SQLite file at ``path``, recorded
    100,000 customers a batch (kept: later runs reuse it)."""
    if path.exists():
        return
    started = time.perf_counter()
    gc.disable()  # millions of events: a full collection would walk them again and again
    data = synthetic_shop(customers, seed=1)
    by_customer: dict[str, list[lc.Event]] = {}
    for e in data.events:
        by_customer.setdefault(e.customer_id, []).append(e)
    gc.enable()
    ids = list(data.customer_ids)
    part = path.with_suffix(".part")
    part.unlink(missing_ok=True)
    policy = lc.Policy(timezone=data.timezone)
    with lc.Lifecycle.open(part, clock=lc.FixedClock(data.as_of), policy=policy) as shop:
        for i in range(0, len(ids), 100_000):
            shop.record([e for c in ids[i : i + 100_000] for e in by_customer[c]])
    part.rename(path)
    print(f"built {path} ({len(data.events):,} events) in {time.perf_counter() - started:.0f} s")


def assess_all_of(path: Path, customers: int) -> None:
    """Time ``assess_all`` on the shop's file: at its end, a day later and a day before."""
    build_once(path, customers)
    one = synthetic_shop(1, seed=1)  # every synthetic shop ends at the same instant
    end, policy = one.as_of, lc.Policy(timezone=one.timezone)
    moments = {
        "the shop's end: the snapshots hold": end,
        "a day later: some do not": end + timedelta(days=1),
        "a day before: none holds, all through the batch path": end - timedelta(days=1),
    }
    with lc.Lifecycle.open(path, clock=lc.FixedClock(end), policy=policy) as shop:
        for what, at in moments.items():
            start, cpu = time.perf_counter(), time.process_time()
            batch = shop.assess_all(at)
            took, cpu = time.perf_counter() - start, time.process_time() - cpu
            print(
                f"sqlite assess_all {len(batch):>9,} customers at {at:%Y-%m-%d %H:%M}  "
                f"{took:6.2f} s ({cpu:6.2f} s CPU) = {len(batch) / took:>9,.0f} customers/s"
                f"  ({what})",
                flush=True,
            )


def drop_schemas(backends: list[str]) -> None:
    """Drop the schema the benchmark made on each server."""
    for backend in backends:
        if backend == "sqlite":
            continue
        engine = sa.create_engine(
            SERVERS[backend]
            .replace("postgresql://", "postgresql+psycopg://")
            .replace("mysql://", "mysql+pymysql://")
        )
        name = engine.dialect.identifier_preparer.quote(f"lcbench_{os.getpid()}")
        with engine.begin() as conn:
            kind = "SCHEMA" if engine.dialect.name == "postgresql" else "DATABASE"
            conn.execute(
                sa.text(f"DROP {kind} IF EXISTS {name}" + (" CASCADE" if kind == "SCHEMA" else ""))
            )
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
