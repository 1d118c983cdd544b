"""assess and plan of one long history on SQLite: read from the snapshot's folded state and
the events since, against a replay of the whole history, interleaved in one run.

Run: .venv/bin/python benchmarks/bench_snapshot_state.py [--lengths 1000,10000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import lifecycle as lc
from bench_core import long_history
from bench_store import machine, reference_loop


def _shop(folder: Path, name: str, events: list[lc.Event], state: bool) -> lc.Lifecycle:
    now = max(e.at for e in events) + timedelta(days=1)
    shop = lc.Lifecycle.open(folder / name, clock=lc.FixedClock(now))
    shop.state_from = 0 if state else sys.maxsize
    shop.record(events)
    return shop


def _median(f: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        f()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="1000,10000")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {machine()}; reference loop {reference_loop():.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        for length in (int(x) for x in args.lengths.split(",")):
            events = long_history(length)
            with_state = _shop(Path(tmp), f"s{length}.db", events, state=True)
            replayed = _shop(Path(tmp), f"r{length}.db", events, state=False)
            snap = with_state.store.snapshot("c1")
            size = len(snap.state) if snap is not None and snap.state is not None else 0
            figures: dict[str, list[float]] = {}
            for _ in range(2):  # interleaved, so that drift hits both alike
                for label, shop in (("state", with_state), ("replay", replayed)):
                    figures.setdefault(f"assess {label}", []).append(
                        _median(lambda s=shop: s.assess("c1"), args.repeats)
                    )
                    figures.setdefault(f"plan {label}", []).append(
                        _median(lambda s=shop: s.plan(customers=["c1"]), args.repeats)
                    )
            best = {k: min(v) for k, v in figures.items()}
            print(
                f"history {length:>7,} events  state {size / 1e6:5.2f} MB  "
                f"assess {best['assess state'] * 1e3:8.1f} ms (replay "
                f"{best['assess replay'] * 1e3:8.1f} ms, {best['assess replay'] / best['assess state']:.2f}x)  "
                f"plan {best['plan state'] * 1e3:8.1f} ms (replay "
                f"{best['plan replay'] * 1e3:8.1f} ms, {best['plan replay'] / best['plan state']:.2f}x)",
                flush=True,
            )
            with_state.close()
            replayed.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
