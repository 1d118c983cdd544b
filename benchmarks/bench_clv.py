"""Fit and prediction time and peak memory of the BG/NBD and Gamma-Gamma models.

Customers are simulated from the CDNOW parameters in days: acquired over 12 weeks and observed
39 weeks after the last acquisition, recency in whole days, as a shop's data would be.

    .venv/bin/python benchmarks/bench_clv.py [--sizes 2357,100000,1000000,10000000]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from lifecycle.clv import BetaGeo, GammaGamma, simulate_customers

TRUTH = BetaGeo.from_params(r=0.243, alpha=4.414 * 7, a=0.793, b=2.426)
SPEND = GammaGamma.from_params(p=6.25, q=3.74, gamma=15.44)


def measure(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Seconds and peak traced MiB of one call."""
    tracemalloc.start()
    start = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return elapsed, peak, out


def run(n: int) -> None:
    """Simulate n customers, time the fits and predictions, print one table row."""
    rng = np.random.default_rng(n)
    T = rng.integers(273, 273 + 84, n).astype(np.float64)
    sim = simulate_customers(TRUTH, T, rng, spend=SPEND)
    x, T = sim.frequency, sim.T
    tx = np.floor(sim.recency)
    rows = np.unique(np.stack([x, tx, T]), axis=1).shape[1] if n <= 1_000_000 else -1
    BetaGeo().fit(x[:1000], tx[:1000], T[:1000])  # warm up scipy's lazy imports
    fit_s, fit_mib, model = measure(lambda: BetaGeo().fit(x, tx, T))
    alive_s, _, _ = measure(lambda: model.p_alive(x, tx, T))
    exp_s, _, _ = measure(lambda: model.expected_purchases(30.0, x, tx, T))
    gg_s, _, _ = measure(lambda: GammaGamma().fit(x, sim.monetary_value))
    shown = f"{rows:,}" if rows >= 0 else "-"
    print(
        f"| {n:,} | {shown} | {fit_s:.3f} | {fit_mib:.0f} | {alive_s:.3f} | {exp_s:.3f} "
        f"| {gg_s:.3f} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="2357,100000,1000000,10000000")
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    print(
        "| customers | distinct rows | BG/NBD fit s | fit peak MiB | P(alive) s | "
        "E[purchases 30d] s | Gamma-Gamma fit s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in (int(s) for s in args.sizes.split(",")):
        run(n)


if __name__ == "__main__":
    main()
