"""A writer process for the store tests: records batches into a store and says which committed.

Usage: python sqlite_worker.py STORE MODE WORKER BATCHES
  STORE is a SQLite file, or the JSON of a server store's url, schema and prefix.
  MODE "ingest": batch n is 20 events of customer b{WORKER}-{n}; prints "ack n" after each commit.
  MODE "shared": batch n is 5 orders spread over customers s0..s4, shared by every worker.
  MODE "one": batch n is one order of customer "one", shared by every worker.
Every worker runs with the default policy: conflicts retry within its time budget.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import lifecycle as lc

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def open_store(target: str) -> lc.Store:
    """The store a test names: a SQLite file, or a server store given as JSON."""
    if target.startswith("{"):
        from lifecycle.adapters.sql import SQLStore

        spec = json.loads(target)
        return SQLStore(spec["url"], schema=spec["schema"], prefix=spec["prefix"])
    from lifecycle.adapters.sqlite import SQLiteStore

    return SQLiteStore(target, synchronous="NORMAL")


def batch(mode: str, worker: str, n: int) -> list[lc.Event]:
    if mode == "ingest":
        cid = f"b{worker}-{n}"
        return [
            lc.OrderPaid(
                customer_id=cid,
                at=T0 + timedelta(days=i),
                order_id=f"{cid}-o{i}",
                amount=Decimal("10.00"),
                currency="CNY",
                items=("x" * 200,),
            )
            for i in range(20)
        ]
    if mode == "one":
        return [
            lc.OrderPaid(
                customer_id="one",
                at=T0 + timedelta(minutes=n),
                order_id=f"{worker}-{n}",
                amount=Decimal("1.00"),
                currency="CNY",
            )
        ]
    return [
        lc.OrderPaid(
            customer_id=f"s{i}",
            at=T0 + timedelta(minutes=n),
            order_id=f"{worker}-{n}-{i}",
            amount=Decimal("1.00"),
            currency="CNY",
        )
        for i in range(5)
    ]


def main() -> int:
    target, mode, worker, batches = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    shop = lc.Lifecycle(store=open_store(target), clock=lc.FixedClock(T0 + timedelta(days=30)))
    errors = 0
    for n in range(batches):
        try:
            shop.record(batch(mode, worker, n))
        except lc.LifecycleError as e:
            errors += 1
            print(f"error {n} {type(e).__name__}: {e}", flush=True)
            continue
        print(f"ack {n}", flush=True)
    shop.close()
    print(f"done errors={errors}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
