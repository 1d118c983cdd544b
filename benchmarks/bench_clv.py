"""Fit and prediction time and peak memory of the BG/NBD, Pareto/NBD and Gamma-Gamma models,
and of the per-customer intervals.

Customers are simulated from the CDNOW BG/NBD parameters in days: acquired over 12 weeks and
observed 39 weeks after the last acquisition, recency in whole days, as a shop's data would be.
The Pareto/NBD is fitted on the same customers; "ratio" is its fit time over the BG/NBD's (the
aim: at most 3 at a million customers). "intervals" is ``value_intervals`` (P(alive), expected
purchases in 30 days and CLV, 90 %) for every customer.

    .venv/bin/python benchmarks/bench_clv.py [--sizes 2357,100000,1000000,10000000]
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lifecycle.clv import BetaGeo, GammaGamma, ParetoNBD, simulate_customers, value_intervals

sys.path.insert(0, str(Path(__file__).parent))
from bench_store import machine, reference_loop

TRUTH = BetaGeo.from_params(r=0.243, alpha=4.414 * 7, a=0.793, b=2.426)
SPEND = GammaGamma.from_params(p=6.25, q=3.74, gamma=15.44)


def measure(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Seconds of one call (untraced: tracing allocations slows loops of small arrays) and the
    peak traced MiB of a second call."""
    start = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - start
    tracemalloc.start()
    fn()
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
    ParetoNBD().fit(x[:1000], tx[:1000], T[:1000])
    fit_s, fit_mib, model = measure(lambda: BetaGeo().fit(x, tx, T))
    pnbd_s, pnbd_mib, pnbd = measure(lambda: ParetoNBD().fit(x, tx, T))
    alive_s, _, _ = measure(lambda: model.p_alive(x, tx, T))
    exp_s, _, _ = measure(lambda: model.expected_purchases(30.0, x, tx, T))
    pnbd_alive_s, _, _ = measure(lambda: pnbd.p_alive(x, tx, T))
    gg_s, _, gg = measure(lambda: GammaGamma().fit(x, sim.monetary_value))
    m = np.where(x > 0, sim.monetary_value, 0.0)
    iv_s, iv_mib, _ = measure(
        lambda: value_intervals(model, x, tx, T, horizon=30.0, spend=gg, monetary_value=m)
    )
    shown = f"{rows:,}" if rows >= 0 else "-"
    print(
        f"| {n:,} | {shown} | {fit_s:.3f} | {fit_mib:.0f} | {pnbd_s:.3f} | {pnbd_mib:.0f} "
        f"| {pnbd_s / fit_s:.1f} | {alive_s:.3f} | {pnbd_alive_s:.3f} | {exp_s:.3f} "
        f"| {gg_s:.3f} | {iv_s:.2f} | {iv_mib:.0f} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="2357,100000,1000000,10000000")
    args = parser.parse_args()
    print(f"machine: {machine()}, numpy {np.__version__}; reference loop {reference_loop():.2f} s")
    print(
        "| customers | distinct rows | BG/NBD fit s | fit peak MiB | Pareto/NBD fit s | "
        "peak MiB | ratio | BG P(alive) s | Pareto P(alive) s | E[purchases 30d] s | "
        "Gamma-Gamma fit s | intervals s | intervals MiB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in (int(s) for s in args.sizes.split(",")):
        run(n)


if __name__ == "__main__":
    main()
