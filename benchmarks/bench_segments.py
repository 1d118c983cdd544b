"""Segmentation benchmark: RFM scores against plain ``pandas.qcut``; Pareto, ABC and k-means.

Run: .venv/bin/python benchmarks/bench_segments.py [--sizes 1000000,10000000] [--repeat 3]
     [--pandas-python /tmp/pandas-venv/bin/python] [--cluster-size 1000000]

pandas is not a dependency: it runs in its own virtualenv, in a subprocess, e.g.
``python3 -m venv /tmp/pandas-venv && /tmp/pandas-venv/bin/pip install pandas numpy``.
Both sides read the same arrays from .npy files and are timed on the scoring alone (best of
``--repeat``). pandas gets ``qcut(x, 5, labels=False, duplicates="drop") + 1`` per column (R is 6 minus that
score of ``recency_days``); where its bin edges are unique the scores must be identical to ours, and the
agreement is printed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench_store import machine
from lifecycle.analytics.segments import (
    abc_classes,
    cluster_customers,
    pareto,
    rfm_scores,
    rfm_segments,
)

PANDAS_SIDE = r"""
import json, sys, time
import numpy as np, pandas as pd
folder, repeat = sys.argv[1], int(sys.argv[2])
cols = {name: pd.Series(np.load(f"{folder}/{name}.npy")) for name in ("days", "freq", "money")}

def score():
    out, unique = {}, {}
    for name, x in (("r", cols["days"]), ("f", cols["freq"]), ("m", cols["money"])):
        labels, edges = pd.qcut(x, 5, labels=False, retbins=True, duplicates="drop")
        out[name] = 5 - labels.to_numpy() if name == "r" else labels.to_numpy() + 1
        unique[name] = len(edges) == 6
    return out, unique

best = float("inf")
for _ in range(repeat):
    start = time.perf_counter()
    scores, unique = score()
    best = min(best, time.perf_counter() - start)
for name, arr in scores.items():
    np.save(f"{folder}/pandas_{name}.npy", arr)
print(json.dumps({"seconds": best, "unique": unique, "pandas": pd.__version__}))
"""


def shop(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-customer columns shaped like ``rfm_summary``'s: float whole days, int repeat
    purchases, skewed spend."""
    rng = np.random.default_rng(seed)
    days = np.floor(np.minimum(rng.exponential(180, n), 1500))
    freq = rng.geometric(0.45, n).astype(np.int64) - 1  # most customers never come back
    money = rng.lognormal(5.0, 1.1, n) * (1 + freq)
    return days, freq, money


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def pandas_side(python: str, folder: Path, repeat: int) -> dict[str, Any] | None:
    if not Path(python).exists():
        return None
    done = subprocess.run(
        [python, "-c", PANDAS_SIDE, str(folder), str(repeat)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def row(task: str, n: int, ours: float, theirs: float | None = None) -> str:
    line = f"{task:<36} {n:>12,} {ours:>10.3f} s"
    if theirs is not None:
        line += f" {theirs:>10.3f} s {theirs / ours:>8.1f}x"
    return line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pandas-python", default="/tmp/pandas-venv/bin/python")
    ap.add_argument("--cluster-size", type=int, default=1_000_000)
    args = ap.parse_args()
    print(f"machine: {machine()}, numpy {np.__version__}")
    print(f"{'task':<36} {'customers':>12} {'lifecycle':>12} {'pandas':>12} {'ratio':>9}")
    notes = []
    for n in (int(s) for s in args.sizes.split(",")):
        days, freq, money = shop(n)
        ours, scores = best_of(args.repeat, lambda d=days, f=freq, m=money: rfm_scores(d, f, m))
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for name, arr in (("days", days), ("freq", freq), ("money", money)):
                np.save(folder / f"{name}.npy", arr)
            theirs = pandas_side(args.pandas_python, folder, args.repeat)
            if theirs is not None:
                agree = []
                for dim in ("r", "f", "m"):
                    same = float(
                        np.mean(np.load(folder / f"pandas_{dim}.npy") == getattr(scores, dim))
                    )
                    edges = "unique edges" if theirs["unique"][dim] else "duplicate edges dropped"
                    agree.append(f"{dim.upper()} {100 * same:.3f} % ({edges})")
                notes.append(f"{n:,}: scores equal to pandas: " + ", ".join(agree))
        print(row("RFM scores, 3 columns vs qcut", n, ours, theirs and theirs["seconds"]))
        took, _ = best_of(args.repeat, lambda s=scores: rfm_segments(s))
        print(row("RFM segments", n, took))
        del days, freq, money, scores
    n = args.cluster_size
    days, freq, money = shop(n, seed=2)
    took, _ = best_of(args.repeat, lambda: pareto(money))
    print(row("pareto", n, took))
    took, _ = best_of(args.repeat, lambda: abc_classes(money))
    print(row("abc_classes", n, took))
    took, clusters = best_of(1, lambda: cluster_customers(days, freq, money))
    print(row("cluster_customers k=3, n_init=4", n, took))
    notes.append(
        f"k-means: {clusters.iterations} iterations in the best start, sizes "
        f"{clusters.sizes.tolist()}"
    )
    if theirs is not None:
        notes.append(f"pandas {theirs['pandas']} in {args.pandas_python} (a separate venv)")
    else:
        notes.append(f"pandas side skipped: no {args.pandas_python}")
    for note in notes:
        print(note)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
