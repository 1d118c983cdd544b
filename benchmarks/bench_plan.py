"""Planning benchmark: one day of follow-ups for a synthetic shop.

Run: .venv/bin/python benchmarks/bench_plan.py [--customers 100000] [--reference 20000]

Prints the machine and the reference loop, then how long generating the shop took and how
long planning one day for every customer took with :func:`plan_bulk` (bounds over the whole
shop, the reference planner for the customers some rule may reach), with customers per
second and the size of the plan. With ``--reference N`` the reference planner
(:func:`plan_customers`) also plans the first N customers, for its rate in the same run, and
both plans of those customers are checked equal. Last, the bounds alone and the share of
customers they send to the reference planner.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections import Counter, defaultdict
from datetime import timedelta

import lifecycle as lc
from bench_store import machine, reference_loop
from lifecycle._bulk import collector_paused
from lifecycle.assessment import referral_conversions
from lifecycle.cadence.planner import plan_bulk, plan_customers
from lifecycle.cadence.reach import reach
from lifecycle.datasets import synthetic_shop


def load() -> str:
    """The machine's load averages: other work running beside the benchmark."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument(
        "--reference", type=int, default=0, help="also plan this many with plan_customers"
    )
    args = parser.parse_args(argv)
    print(machine())
    print(f"reference loop {reference_loop():.3f} s  {load()}")
    started = time.perf_counter()
    data = synthetic_shop(args.customers, seed=1)
    histories: dict[str, list[lc.Event]] = defaultdict(list)
    for e in data.events:
        histories[e.customer_id].append(e)
    generated = time.perf_counter() - started
    policy = lc.Policy(timezone=data.timezone)
    day = timedelta(days=1)
    print(
        f"shop {args.customers:,} customers {len(data.events):,} events  generate {generated:.1f} s"
    )
    now = data.as_of
    del data

    started, cpu = time.perf_counter(), time.process_time()
    plan = plan_bulk(histories, policy, now, horizon=day)
    planned, cpu = time.perf_counter() - started, time.process_time() - cpu
    holds = Counter(h.hold.value for h in plan.held)
    print(
        f"plan_bulk one day {planned:.1f} s ({cpu:.1f} CPU-s) = "
        f"{args.customers / planned:,.0f} customers/s  "
        f"(peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.1f} GB)"
    )
    print(f"due {len(plan.due):,}  held {len(plan.held):,}  {dict(sorted(holds.items()))}")

    if args.reference:
        some = {cid: histories[cid] for cid in sorted(histories)[: args.reference]}
        started = time.perf_counter()
        ref = plan_customers(some, policy, now, horizon=day)
        took = time.perf_counter() - started
        bulk = plan_bulk(some, policy, now, horizon=day)
        same = ref.due == bulk.due and ref.held == bulk.held and ref.next_due == bulk.next_due
        print(
            f"plan_customers {len(some):,} customers {took:.1f} s = "
            f"{len(some) / took:,.0f} customers/s  (same plan as plan_bulk: {same})"
        )
    print(f"reference loop {reference_loop():.3f} s  {load()}")
    started = time.perf_counter()
    ids = sorted(histories)
    with collector_paused():
        hits, _ = reach(
            histories,
            policy,
            now,
            ids=ids,
            rules=policy.cadence.rules,
            referrals=referral_conversions(histories, policy, now),
            end=now + day,
        )
    bounds = time.perf_counter() - started
    hit = hits.any(axis=0)
    print(
        f"bounds alone {bounds:.1f} s; they send {hit.sum():,} customers "
        f"({hit.mean():.1%}), {hits.sum():,} (customer, rule) pairs, to the reference planner"
    )
    print(load())
    return 0


if __name__ == "__main__":
    sys.exit(main())
