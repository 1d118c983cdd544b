"""Dispatch benchmark: planning and sending for a synthetic shop, and the cost of a tick.

Run: .venv/bin/python benchmarks/bench_dispatch.py [--sizes 1000,10000,100000] [--ticks 20]

For each size, a synthetic shop is recorded into a fresh SQLite file; then it prints how long
``plan()`` of the whole shop took, how long the first ``dispatch()`` took (it plans every
customer into the outbox and sends what is due), and the median time of a dispatch tick a
minute later with nothing due (after one tick that re-plans the customers just contacted).
A dispatcher that runs every minute pays the tick; it should not grow with the shop.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import lifecycle as lc
from bench_store import machine, reference_loop
from lifecycle.adapters.channels import MemoryChannel
from lifecycle.datasets import synthetic_shop
from lifecycle.vocabulary import RULE_CHANNELS


def run(customers: int, ticks: int, folder: Path) -> None:
    data = synthetic_shop(customers, seed=0)
    policy = lc.Policy(timezone=data.timezone)
    channels = {name: MemoryChannel(name) for name in RULE_CHANNELS}
    shop = lc.Lifecycle.open(
        folder / f"shop-{customers}.db",
        policy=policy,
        clock=lc.FixedClock(data.as_of),
        channels=channels,
    )
    try:
        started = time.perf_counter()
        shop.record(data.events)
        recorded = time.perf_counter() - started
        started = time.perf_counter()
        plan = shop.plan()
        planned = time.perf_counter() - started
        started = time.perf_counter()
        first = shop.dispatch()
        dispatched = time.perf_counter() - started
        settle = shop.dispatch(data.as_of + timedelta(minutes=1))
        times, plans = [], []
        for i in range(ticks):
            at = data.as_of + timedelta(minutes=2 + i)
            started = time.perf_counter()
            report = shop.dispatch(at)
            times.append(time.perf_counter() - started)
            plans.append(getattr(report, "planned", -1))
        print(
            f"{customers:>9,} customers {len(data.events):>10,} events  record {recorded:6.1f} s  "
            f"plan {planned:6.2f} s ({len(plan.due):,} due)  first dispatch {dispatched:6.2f} s "
            f"({len(first.sent):,} sent, {getattr(first, 'planned', '?')} planned)  "
            f"next tick planned {getattr(settle, 'planned', '?')}  "
            f"idle tick median {statistics.median(times) * 1000:7.2f} ms "
            f"(min {min(times) * 1000:.2f}, max {max(times) * 1000:.2f}; planned {set(plans)})"
        )
    finally:
        shop.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--ticks", type=int, default=20)
    args = parser.parse_args(argv)
    print(machine())
    print(f"reference loop {reference_loop():.2f} s")
    with tempfile.TemporaryDirectory() as folder:
        for n in (int(s) for s in args.sizes.split(",")):
            run(n, args.ticks, Path(folder))
    print(f"reference loop {reference_loop():.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
