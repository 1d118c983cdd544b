"""Per-customer summary benchmark, side by side with pandas and lifetimes.

Run: .venv/bin/python benchmarks/bench_analytics.py [--sizes 1000000,10000000]
         [--baseline-python /tmp/lifetimes-venv/bin/python]

The baselines run in their own virtualenv (so they never enter this project's environment):

    python3 -m venv /tmp/lifetimes-venv
    /tmp/lifetimes-venv/bin/pip install lifetimes==0.11.3 pandas numpy

For each size the same seeded transactions (customers, UTC instants over two years, amounts)
are summarised by ``lifecycle.analytics.rfm_summary``, by a plain pandas groupby + agg, and by
``lifetimes.utils.summary_data_from_transaction_data``; the table shows seconds, peak memory,
the ratio to ours, and numpy's bare sort of the same keys as the floor. Ours is the median of
five runs in one process (the first included); each baseline runs once in a fresh process.

Then, for each of ``--batch-sizes`` customers of a seeded synthetic shop, the median time of
three ``lifecycle.analytics.assess_all`` runs (stage and status of every customer at once).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np

import lifecycle as lc
from bench_store import machine, reference_loop
from lifecycle.analytics import Transactions, assess_all, rfm_summary
from lifecycle.datasets import synthetic_shop

BASELINE = textwrap.dedent(
    """
    import json, sys, time, resource
    import numpy as np
    import pandas as pd
    data = np.load(sys.argv[1])
    which = sys.argv[2]
    df = pd.DataFrame({
        "customer_id": data["customer"],
        "date": pd.to_datetime(data["at_us"], unit="us"),
        "amount": data["amount"],
    })
    end = df["date"].max()
    start = time.perf_counter()
    if which == "pandas":
        df["day"] = df["date"].dt.floor("D")
        per_day = df.groupby(["customer_id", "day"], sort=True)["amount"].sum().reset_index()
        g = per_day.groupby("customer_id")
        out = g.agg(first=("day", "min"), last=("day", "max"), days=("day", "size"),
                    total=("amount", "sum"))
        first_spend = g["amount"].first()
        out["frequency"] = out["days"] - 1
        out["recency"] = (out["last"] - out["first"]).dt.days
        out["T"] = (end.floor("D") - out["first"]).dt.days
        repeat = out["frequency"].where(out["frequency"] > 0)
        out["monetary_value"] = ((out["total"] - first_spend) / repeat).fillna(0)
    else:
        from lifetimes.utils import summary_data_from_transaction_data
        out = summary_data_from_transaction_data(
            df, "customer_id", "date", monetary_value_col="amount", observation_period_end=end)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rows": len(out), "peak_mb": peak}))
    """
)


def data(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(n)
    return {
        "customer": rng.integers(0, max(1, n // 10), n),
        "at_us": np.datetime64("2024-01-01", "us").astype(np.int64)
        + rng.integers(0, 730 * 86_400_000_000, n),
        "amount": np.round(rng.lognormal(4.0, 1.0, n), 2),
    }


def _summarise(d: dict[str, np.ndarray]) -> int:
    table = Transactions.from_arrays(
        d["customer"], d["at_us"].astype("datetime64[us]"), d["amount"]
    )
    return len(rfm_summary(table))


def ours(d: dict[str, np.ndarray], runs: int = 5) -> tuple[float, float, int]:
    """The median time of ``runs`` summaries, then the peak memory of one more (traced)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        customers = _summarise(d)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    _summarise(d)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return sorted(times)[len(times) // 2], peak, customers


def batch_figures(customers: int, runs: int = 3) -> str:
    """The median time of ``runs`` batch assessments of a synthetic shop."""
    shop = synthetic_shop(customers, seed=1)
    policy = lc.Policy(timezone=shop.timezone)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        assess_all(shop.events, policy, shop.as_of)
        times.append(time.perf_counter() - start)
    seconds = sorted(times)[len(times) // 2]
    return (
        f"assess_all {customers:>9,} customers {len(shop.events):>10,} events  "
        f"median {seconds:6.2f} s = {customers / seconds:>9,.0f} customers/s"
    )


def baseline(python: str, path: Path, which: str) -> dict[str, float] | None:
    try:
        done = subprocess.run(
            [python, "-c", BASELINE, str(path), which],
            capture_output=True,
            text=True,
            check=True,
            timeout=1800,
        )
    except (OSError, subprocess.SubprocessError) as e:
        print(f"  {which}: could not run ({e})", file=sys.stderr)
        return None
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--baseline-python", default="/tmp/lifetimes-venv/bin/python")
    parser.add_argument("--skip", default="", help="comma-separated baselines to skip")
    parser.add_argument("--batch-sizes", default="10000,100000")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    print(f"machine: {machine()}; reference loop {reference_loop():.2f} s")
    print(
        f"{'transactions':>13} {'customers':>10} {'bare sort':>10} {'lifecycle':>10} "
        f"{'peak MB':>8} {'pandas':>8} {'ratio':>6} {'lifetimes':>10} {'ratio':>6}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            d = data(n)
            path = Path(tmp) / f"tx-{n}.npz"
            np.savez(path, **d)
            keys = d["customer"].astype(np.int64)
            start = time.perf_counter()
            np.sort(keys)
            bare = time.perf_counter() - start
            seconds, peak, customers = ours(d)
            cells = []
            for which in ("pandas", "lifetimes"):
                r = None if which in skip else baseline(args.baseline_python, path, which)
                cells.append(
                    f"{r['seconds']:8.2f} {r['seconds'] / seconds:5.1f}x"
                    if r
                    else f"{'-':>8} {'-':>6}"
                )
            print(
                f"{n:>13,} {customers:>10,} {bare:>9.2f}s {seconds:>9.2f}s {peak:>8.0f} "
                f"{cells[0]} {cells[1]:>17}",
                flush=True,
            )
    for customers in (int(s) for s in args.batch_sizes.split(",") if s):
        print(batch_figures(customers), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
