"""The pool rules' cost: owner changes judged on every customer's history, and the owners' report.

Run: .venv/bin/python benchmarks/bench_owners.py [--sizes 1000,5000] [--claims 20]

For each size, a seeded synthetic shop is recorded into a fresh SQLite file; then, on it:
``Lifecycle.transfer_owner`` claiming one pool customer at a time (each claim reads every
history, decides and writes only if nothing changed), a direct ``OwnerAssigned`` through
``Lifecycle.record`` (judged by the same rules), a plain ``OrderPaid`` through ``record`` for
comparison (no owner event: the rules are not asked), and ``Lifecycle.owner_report`` over 90
days. Every owner change reads every customer's version; the last two columns time that read
both ways on the same file: ``store.version`` once per customer (how the pool view read them
before ``Store.versions``; on PostgreSQL/MariaDB one round trip each) and one
``store.versions()``. Figures are medians in milliseconds; the reference loop says how fast the
machine ran.

Measured on SQLite (``--sizes 5000,20000 --claims 10``; AMD EPYC, 2 cores shared with other
work, Python 3.11, reference loop 0.13-0.14 s; the release before ``Store.versions`` run right
after on the same machine):

    customers  claim ms before  claim ms after  version loop ms  versions ms
        5,000             85.3            49.3             34.7          1.3
       20,000            494.0           215.5            131.6         10.4
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import lifecycle as lc
from bench_store import machine, reference_loop
from lifecycle.datasets import synthetic_shop


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1e3:,.1f}"


def run(size: int, claims: int) -> list[str]:
    data = synthetic_shop(size, seed=1)
    policy = lc.Policy.from_dict({"timezone": data.timezone, "owners": {"capacity": 10 * claims}})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "shop.db"
        clock = lc.FixedClock(data.as_of)
        with lc.Lifecycle.open(path, policy=policy, clock=clock, synchronous="NORMAL") as shop:
            shop.record(data.events)
            ids = data.customer_ids
            claim, direct, plain = [], [], []
            for i in range(claims):
                start = time.perf_counter()
                shop.transfer_owner([ids[i]], "ann", kind="claim")
                claim.append(time.perf_counter() - start)
            for i in range(claims, 2 * claims):
                event = lc.OwnerAssigned(customer_id=ids[i], at=data.as_of, owner_id="bo")
                start = time.perf_counter()
                shop.record(event)
                direct.append(time.perf_counter() - start)
            for i in range(claims):
                order = lc.OrderPaid(
                    customer_id=ids[i],
                    order_id=f"bench-{i}",
                    at=data.as_of,
                    amount=Decimal("9.90"),
                    currency="CNY",
                )
                start = time.perf_counter()
                shop.record(order)
                plain.append(time.perf_counter() - start)
            loop, batch = [], []
            for _ in range(3):
                start = time.perf_counter()
                one_by_one = {c: shop.store.version(c) for c in shop.store.customer_ids()}
                loop.append(time.perf_counter() - start)
                start = time.perf_counter()
                everyone = shop.store.versions()
                batch.append(time.perf_counter() - start)
                assert everyone == one_by_one
            start = time.perf_counter()
            end = data.as_of + timedelta(seconds=1)  # the window holds the claims made at as_of
            report = shop.owner_report(data.as_of - timedelta(days=90), end)
            reported = time.perf_counter() - start
            assert [o.held for o in report.owners] == [claims, claims]
    return [
        f"{size:>8,}",
        f"{_ms(claim):>10}",
        f"{_ms(direct):>12}",
        f"{_ms(plain):>10}",
        f"{reported * 1e3:>12,.0f}",
        f"{_ms(loop):>15}",
        f"{_ms(batch):>11}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--claims", type=int, default=20)
    args = parser.parse_args()
    print(machine())
    print(f"reference loop (5M additions, best of 3): {reference_loop():.3f} s")
    head = ["customers", "claim ms", "OwnerAssigned", "order ms", "report ms"]
    head += ["version loop ms", "versions ms"]
    widths = (8, 10, 12, 10, 12, 15, 11)
    print("  ".join(f"{h:>{w}}" for h, w in zip(head, widths, strict=True)))
    for size in (int(s) for s in args.sizes.split(",")):
        print("  ".join(run(size, args.claims)))


if __name__ == "__main__":
    main()
