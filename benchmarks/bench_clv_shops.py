"""The shop's value model on 50 synthetic shops of different sizes and seeds: the purchase model
chosen, which candidates lay on the boundary (and were held by weak priors), and the time.

    .venv/bin/python benchmarks/bench_clv_shops.py [--shops 50]

Every shop must fit: a row that says FAILED is a bug. The time is ``ValueModel.fit`` on the
shop's summary in days (the three purchase models and the spend model), not the generation.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

import lifecycle as lc
from lifecycle.analytics import Transactions, rfm_summary
from lifecycle.clv import ValueModel
from lifecycle.datasets import synthetic_shop

sys.path.insert(0, str(Path(__file__).parent))
from bench_store import machine, reference_loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shops", type=int, default=50)
    args = parser.parse_args()
    print(f"machine: {machine()}; reference loop {reference_loop():.2f} s")
    rng = np.random.default_rng(18)
    sizes = np.unique(np.round(np.exp(rng.uniform(math.log(150), math.log(6000), args.shops))))
    while sizes.size < args.shops:
        sizes = np.unique(np.append(sizes, rng.integers(150, 6000)))
    print("| shop | customers | seed | buyers | repeat buyers | chosen | LL | boundary | fit s |")
    print("|---:|---:|---:|---:|---:|---|---:|---|---:|")
    chosen: Counter[str] = Counter()
    boundary: Counter[str] = Counter()
    times = []
    failed = 0
    for i, size in enumerate(sizes[: args.shops].astype(int).tolist()):
        seed = 100 + i
        data = synthetic_shop(size, seed=seed)
        policy = lc.Policy(timezone=data.timezone)
        table = Transactions.from_events(data.events, policy=policy, at=data.as_of)
        summary = rfm_summary(table, end=data.as_of, unit="days")
        start = time.perf_counter()
        try:
            model = ValueModel.fit(summary)
        except lc.LifecycleError as e:
            failed += 1
            print(f"| {i + 1} | {size:,} | {seed} | {len(summary):,} | - | FAILED: {e} | | | |")
            continue
        took = time.perf_counter() - start
        times.append(took)
        s = summary
        values = model.clv(s.frequency, s.recency, s.T, s.monetary_value)
        alive = model.purchases.p_alive(s.frequency, s.recency, s.T)
        finite = np.isfinite(alive).all() and (values is None or np.isfinite(values).all())
        held = [c.model for c in model.candidates if c.boundary]
        chosen[model.variant + (" (boundary)" if model.boundary else "")] += 1
        boundary.update(held)
        ll = model.chosen.log_likelihood if model.chosen else None
        print(
            f"| {i + 1} | {size:,} | {seed} | {len(s):,} | {int((s.frequency > 0).sum()):,} "
            f"| {model.variant} | {ll:,.1f} | {', '.join(held) or '-'} "
            f"| {took:.2f}{'' if finite else ' NaN!'} |",
            flush=True,
        )
    print()
    print(f"shops: {len(times) + failed}, fitted: {len(times)}, failed: {failed}")
    print("chosen: " + ", ".join(f"{k} {v}" for k, v in sorted(chosen.items())))
    print("boundary candidates: " + ", ".join(f"{k} {v}" for k, v in sorted(boundary.items())))
    if times:
        print(
            f"fit time: median {np.median(times):.2f} s, max {max(times):.2f} s, "
            f"total {sum(times):.1f} s"
        )


if __name__ == "__main__":
    main()
