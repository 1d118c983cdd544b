"""Planning benchmark: one day of follow-ups for a synthetic shop.

Run: .venv/bin/python benchmarks/bench_plan.py [--customers 100000]

Prints the machine, then how long generating the shop and planning one day for every
customer took, with customers per second and the size of the plan.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from datetime import timedelta

import lifecycle as lc
from bench_store import machine
from lifecycle.cadence.planner import plan_customers
from lifecycle.datasets import synthetic_shop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    args = parser.parse_args(argv)
    print(machine())
    started = time.perf_counter()
    data = synthetic_shop(args.customers, seed=1)
    histories: dict[str, list[lc.Event]] = defaultdict(list)
    for e in data.events:
        histories[e.customer_id].append(e)
    generated = time.perf_counter() - started
    policy = lc.Policy(timezone=data.timezone)
    started = time.perf_counter()
    plan = plan_customers(histories, policy, data.as_of, horizon=timedelta(days=1))
    planned = time.perf_counter() - started
    holds = Counter(h.hold.value for h in plan.held)
    print(
        f"shop {args.customers:,} customers {len(data.events):,} events  "
        f"generate {generated:.1f} s  plan one day {planned:.1f} s = "
        f"{args.customers / planned:,.0f} customers/s"
    )
    print(f"due {len(plan.due):,}  held {len(plan.held):,}  {dict(sorted(holds.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
