"""Core benchmark on the in-memory store: recording, assessing, and assess cost vs history length.

Run: .venv/bin/python benchmarks/bench_core.py [--sizes 5000,100000] [--lengths 10,100,1000,10000]

Prints the machine, then for each shop size the events recorded per second (one batch,
snapshots included) and the explained assessments per second over every customer; then the
median cost of one ``assess`` for a customer whose history holds 10 to 10,000 events.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import lifecycle as lc
from bench_store import machine, reference_loop
from lifecycle.datasets import synthetic_shop


def shop_figures(customers: int) -> str:
    started = time.perf_counter()
    data = synthetic_shop(customers, seed=1)
    generated = time.perf_counter() - started
    shop = lc.Lifecycle.in_memory(
        clock=lc.FixedClock(data.as_of), policy=lc.Policy(timezone=data.timezone)
    )
    started = time.perf_counter()
    shop.record(data.events)
    recorded = time.perf_counter() - started
    started = time.perf_counter()
    for cid in data.customer_ids:
        shop.assess(cid)
    assessed = time.perf_counter() - started
    n = len(data.events)
    return (
        f"shop {customers:>7,} customers {n:>9,} events  generate {generated:6.2f} s  "
        f"record {recorded:6.2f} s = {n / recorded:>8,.0f} events/s  "
        f"assess all {assessed:6.2f} s = {customers / assessed:>7,.0f} assessments/s"
    )


def long_history(length: int) -> list[lc.Event]:
    """One customer's history of ``length`` events: orders placed, paid, shipped, delivered."""
    t0 = datetime(2020, 1, 1, 9, tzinfo=ZoneInfo("Asia/Shanghai"))
    events: list[lc.Event] = []
    orders = max(1, length // 4)
    step = timedelta(days=6 * 365) / orders
    for k in range(orders):
        at = t0 + step * k
        oid = f"o{k}"
        money = {"amount": Decimal("99.00"), "currency": "CNY"}
        events += [
            lc.OrderPlaced(customer_id="c1", at=at, order_id=oid, **money),
            lc.OrderPaid(customer_id="c1", at=at + timedelta(minutes=5), order_id=oid, **money),
            lc.OrderShipped(customer_id="c1", at=at + timedelta(hours=20), order_id=oid),
            lc.OrderDelivered(customer_id="c1", at=at + timedelta(days=2), order_id=oid),
        ]
    return events[:length]


def assess_cost(length: int, repeats: int) -> float:
    events = long_history(length)
    now = max(e.at for e in events) + timedelta(days=1)
    shop = lc.Lifecycle.in_memory(clock=lc.FixedClock(now))
    shop.record(events)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        shop.assess("c1")
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,100000")
    parser.add_argument("--lengths", default="10,100,1000,10000")
    args = parser.parse_args()
    print(f"machine: {machine()}; reference loop {reference_loop():.2f} s")
    for size in (int(s) for s in args.sizes.split(",")):
        print(shop_figures(size), flush=True)
    for length in (int(s) for s in args.lengths.split(",")):
        cost = assess_cost(length, repeats=max(5, min(200, 20_000 // length)))
        print(f"assess  history of {length:>6,} events  median {cost * 1e3:8.3f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
