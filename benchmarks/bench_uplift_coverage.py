"""Coverage and false positives of the uplift report on simulated shops, with more shops than
the tests.

Each shop is ``lifecycle.datasets.experiment_shop``: past buyers, a campaign whose holdout keeps
a control group (the planner's own decision), the messages it lets out recorded as sent, and
orders in the 30 days after with a known lift. The report (replay, groups, statistics) runs
on each; the script counts how often the 95 % intervals hold the true differences, and, on
shops with no effect, how often the tests reject at 5 %. A last part runs the statistics alone
on small groups, where Welch's t on heavy-tailed revenue is known to undercover.

    .venv/bin/python benchmarks/bench_uplift_coverage.py [--shops 200] [--customers 1000]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from lifecycle.analytics import uplift
from lifecycle.datasets import experiment_shop
from lifecycle.events import Event
from lifecycle.experiments import measure

sys.path.insert(0, str(Path(__file__).parent))
from bench_store import machine, reference_loop

METRICS = ("conversion", "orders", "revenue")


def _band(rate: float, n: int) -> str:
    half = 1.96 * math.sqrt(rate * (1 - rate) / n)
    return f"[{rate - half:.3f}, {rate + half:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shops", type=int, default=200)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--holdout", type=float, default=0.3)
    parser.add_argument("--lift", type=float, default=0.05)
    args = parser.parse_args()
    print(f"machine: {machine()}; reference loop {reference_loop():.2f} s")
    covered = dict.fromkeys(METRICS, 0)
    rejected = dict.fromkeys(METRICS, 0)
    start = time.perf_counter()
    for seed in range(args.shops):
        for lift, tally in ((args.lift, covered), (0.0, rejected)):
            shop = experiment_shop(
                args.customers, seed=seed + (0 if lift else 100_000), holdout=args.holdout,
                lift=lift,
            )  # fmt: skip
            histories: dict[str, list[Event]] = defaultdict(list)
            for e in shop.events:
                histories[e.customer_id].append(e)
            result = measure(histories, shop.policy, shop.rule, shop.since, shop.until)
            truth = {
                "conversion": shop.conversion_lift,
                "orders": shop.orders_lift,
                "revenue": shop.revenue_lift,
            }
            for name in METRICS:
                m = result.metric(name)
                if lift:
                    tally[name] += m.low <= truth[name] <= m.high
                else:
                    tally[name] += m.p_value < 0.05
    took = time.perf_counter() - start
    n = args.shops
    print(
        f"{n} shops with a lift of {args.lift:+.0%} and {n} with none, {args.customers:,} "
        f"customers each, holdout {args.holdout:.0%}: {took:.1f} s"
    )
    print(f"95% interval coverage (binomial 95% band {_band(0.95, n)}):")
    for name in METRICS:
        print(f"  {name:<11} {covered[name] / n:.3f}")
    print(f"false positive rate at alpha 0.05 (binomial 95% band {_band(0.05, n)}):")
    for name in METRICS:
        print(f"  {name:<11} {rejected[name] / n:.3f}")

    rng = np.random.default_rng(5)
    print("statistics alone, revenue per customer (lognormal order values), 2,000 draws each:")
    for sigma in (1.0, 2.0):
        for size in (40, 100, 400, 1600):
            hits = 0
            for _ in range(2000):
                groups = []
                for p in (0.15, 0.10):
                    buys = rng.random(size) < p
                    orders = np.where(buys, 1 + rng.poisson(0.3, size), 0)
                    values = rng.lognormal(np.log(200) - sigma**2 / 2, sigma, int(orders.sum()))
                    owner = np.repeat(np.arange(size), orders)
                    revenue = np.bincount(owner, weights=values, minlength=size)
                    groups += [orders.astype(float), revenue]
                m = uplift(*groups).metric("revenue")
                hits += m.low <= 0.05 * 1.3 * 200 <= m.high
            print(f"  sigma {sigma:.0f}, {size:>5} customers a group: coverage {hits / 2000:.3f}")


if __name__ == "__main__":
    main()
