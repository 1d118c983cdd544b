"""An owner process for the pool tests: takes customers out of the shared pool, racing others.

Usage: python owner_worker.py STORE MODE OWNER CUSTOMERS START
  STORE is a SQLite file, or the JSON of a server store's url, schema and prefix.
  MODE "claim": claims each of p0..p{CUSTOMERS-1} for OWNER through ``transfer_owner``.
  MODE "event": records an ``OwnerAssigned`` of each to OWNER directly.
  START is the wall-clock instant (seconds since the epoch) the processes' clocks count from.
Prints "took CID" for each customer it got, "refused CID RULE" for each the rules refused.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime, timedelta

import lifecycle as lc
from sqlite_worker import open_store

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
POLICY = lc.Policy.from_dict(
    {"owners": {"capacity": 6, "daily_claim_quota": 4}, "writes": {"retry_budget_seconds": 120}}
)


class _Ticking:
    """T0 plus the seconds since ``start`` (the same wall-clock instant in every process):
    instants move on and agree between processes, as real clocks do, within T0's day."""

    def __init__(self, start: float) -> None:
        self._start = start

    def now(self) -> datetime:
        # The real clock on purpose: the processes must agree on the order of their writes.
        return T0 + timedelta(seconds=time.time() - self._start)  # noqa: TID251


def main() -> int:
    target, mode, owner, customers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    shop = lc.Lifecycle(store=open_store(target), policy=POLICY, clock=_Ticking(float(sys.argv[5])))
    ids = [f"p{i}" for i in range(customers)]
    random.Random(owner).shuffle(ids)
    for cid in ids:
        if mode == "claim":
            changes = shop.transfer_owner([cid], owner, kind="claim")
            (decision,) = changes.decisions
            if decision.changed:
                print(f"took {cid}", flush=True)
            else:
                print(f"refused {cid} {decision.reason.code}", flush=True)
            continue
        try:
            shop.record(lc.OwnerAssigned(customer_id=cid, at=shop.clock.now(), owner_id=owner))
        except lc.OwnerRuleBroken as e:
            print(f"refused {cid} {e.rule}", flush=True)
        else:
            print(f"took {cid}", flush=True)
    shop.close()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
