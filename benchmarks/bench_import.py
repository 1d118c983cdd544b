"""Import benchmark: a classic Taobao 订单报表 the size of a busy shop's, day after day.

Run: .venv/bin/python benchmarks/bench_import.py [--orders 28010] [--customers 20000]

Writes a generated GBK ExportOrderList (48 columns, ``="…"`` order numbers, ``'`` phones) of
``--orders`` orders as exported on day 10, and the same shop as exported on day 40 (newer
statuses, refunds, more orders); then times, into a fresh SQLite shop file: reading the first
file, importing it, importing the second (the incremental day), and importing the second again
(nothing new). Prints orders per second for each step and the machine it ran on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import lifecycle as lc
from bench_store import machine, reference_loop
from exports import make_shop, visible, write_classic
from lifecycle.io import read_orders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=28010)
    parser.add_argument("--customers", type=int, default=20000)
    args = parser.parse_args()
    print(f"machine: {machine()}; reference loop {reference_loop():.3f} s")
    shop_data = make_shop(seed=0, customers=args.customers, orders=args.orders, days=40)
    clock = lc.FixedClock(datetime(2026, 5, 1, tzinfo=ZoneInfo("Asia/Shanghai")))
    with tempfile.TemporaryDirectory() as folder:
        day1 = write_classic(Path(folder) / "day10.csv", shop_data, 10)
        day2 = write_classic(Path(folder) / "day40.csv", shop_data, 40)
        n1, n2 = len(visible(shop_data, 10)), len(visible(shop_data, 40))
        started = time.perf_counter()
        read_orders(day1, preset="taobao")
        took = time.perf_counter() - started
        print(f"read {n1:,} orders (day 10): {took:.2f} s, {n1 / took:,.0f} orders/s")
        with lc.Lifecycle.open(Path(folder) / "shop.db", clock=clock, synchronous="NORMAL") as shop:
            for label, path, n in (
                ("import day 10 into a new shop", day1, n1),
                ("import day 40 (incremental)", day2, n2),
                ("import day 40 again", day2, n2),
            ):
                started = time.perf_counter()
                summary = shop.import_orders(path, preset="taobao")
                took = time.perf_counter() - started
                print(f"{label}: {took:.2f} s, {n / took:,.0f} orders/s; {summary.line()}")


if __name__ == "__main__":
    main()
