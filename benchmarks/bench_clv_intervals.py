"""Coverage of the per-customer 90 % intervals on simulated shops, with more shops than the test.

Each run simulates ``--shops`` shops of ``--customers`` customers from known BG/NBD and
Gamma-Gamma parameters, fits both models, and counts how often the intervals of four reference
customers' P(alive), expected purchases (90 days) and CLV hold the true values.

    .venv/bin/python benchmarks/bench_clv_intervals.py [--customers 1000] [--shops 400] [--seed 11]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from lifecycle.clv import (
    BetaGeo,
    GammaGamma,
    customer_lifetime_value,
    simulate_customers,
    value_intervals,
)

sys.path.insert(0, str(Path(__file__).parent))
from bench_store import machine, reference_loop

TRUTH = BetaGeo.from_params(r=0.8, alpha=60.0, a=0.8, b=3.0)
SPEND = GammaGamma.from_params(p=6.0, q=4.0, gamma=40.0)
REF_X = np.array([1.0, 3.0, 6.0, 2.0])
REF_TX = np.array([100.0, 250.0, 300.0, 30.0])
REF_T = np.array([300.0, 300.0, 320.0, 330.0])
REF_M = np.array([30.0, 45.0, 60.0, 20.0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--shops", type=int, default=400)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    print(f"machine: {machine()}; reference loop {reference_loop():.2f} s")
    rng = np.random.default_rng(args.seed)
    truth = (
        TRUTH.p_alive(REF_X, REF_TX, REF_T),
        TRUTH.expected_purchases(90.0, REF_X, REF_TX, REF_T),
        customer_lifetime_value(TRUTH, SPEND, REF_X, REF_TX, REF_T, REF_M),
    )
    hits = np.zeros((3, REF_X.size))
    start = time.perf_counter()
    for _ in range(args.shops):
        t = rng.integers(180, 365, args.customers).astype(float)
        sim = simulate_customers(TRUTH, t, rng, spend=SPEND)
        model = BetaGeo().fit(sim.frequency, sim.recency, sim.T)
        spend = GammaGamma().fit(sim.frequency, sim.monetary_value)
        out = value_intervals(
            model, REF_X, REF_TX, REF_T, horizon=90.0, spend=spend, monetary_value=REF_M
        )
        assert out.clv is not None
        for i, (interval, true) in enumerate(
            zip((out.p_alive, out.expected_purchases, out.clv), truth, strict=True)
        ):
            hits[i] += interval.covers(true)
    took = time.perf_counter() - start
    rates = hits / args.shops
    print(f"{args.shops} shops of {args.customers:,} customers, seed {args.seed}, {took:.0f} s")
    print("| quantity | customer 1 | 2 | 3 | 4 | all four |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, row in zip(("P(alive)", "expected purchases", "CLV"), rates, strict=True):
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in row) + f" | {row.mean():.3f} |")


if __name__ == "__main__":
    main()
