"""The value pipeline on a Dask cluster: order lines in Parquet -> customer summary -> BG/NBD
and Gamma-Gamma fits -> P(alive), expected purchases and 12-month CLV of every customer,
written back as Parquet.

Run: .venv/bin/python benchmarks/bench_dask.py [--lines 100000000] [--customers 10000000]
         [--single-lines 10000000] [--data /tmp/lifecycle-bench-dask] [--workers 2]
         [--cluster-lines 10000000]  (the cluster on the first files only, for quick runs)

The order lines are generated once (seeded, one Parquet file per million lines, numpy and
pyarrow in chunks, never Python objects per line) under ``--data``, which is outside the
repository: customers with gamma-distributed purchase rates, each buying between a first day
and a drop-out day over three years, instants in UTC, amounts in cents. Every file holds lines
of nearly every customer, so each bucket of customers collects pieces from every file.

The pipeline runs on a ``distributed.LocalCluster`` of ``--workers`` processes of ``--threads``
threads (one by default);
the memory of each worker process is sampled every half second (peak RSS). Then the same
pipeline runs in this one process on the first ``--single-lines`` lines, for comparison.
"""

from __future__ import annotations

import argparse
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np

from bench_store import machine, reference_loop

CHUNK = 1_000_000
START_US = 1_700_000_000 * 1_000_000  # 2023-11-14 UTC
DAYS = 3 * 365
DAY_US = 86_400 * 1_000_000


def generate(path: Path, lines: int, customers: int, seed: int = 0) -> None:
    """``lines`` order lines of ``customers`` customers, one Parquet file per million lines."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    marker = path / f"done-{lines}-{customers}-{seed}"
    if marker.exists():
        return
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    gen = np.random.default_rng(seed)
    rate = gen.gamma(0.5, 1.0, customers)
    cdf = np.cumsum(rate)
    cdf /= cdf[-1]
    first = gen.integers(0, DAYS, customers)
    last = np.minimum(first + gen.exponential(200.0, customers).astype(np.int64) + 1, DAYS)
    price = gen.gamma(2.0, 20.0, customers)
    started = time.perf_counter()
    for i, lo in enumerate(range(0, lines, CHUNK)):
        n = min(CHUNK, lines - lo)
        who = np.searchsorted(cdf, gen.random(n), side="right").astype(np.int64)
        np.minimum(who, customers - 1, out=who)
        day = first[who] + (gen.random(n) * (last - first)[who]).astype(np.int64)
        at = START_US + day * DAY_US + gen.integers(0, DAY_US, n)
        amount = np.round(price[who] * gen.gamma(4.0, 0.25, n), 2) + 0.01
        table = pa.table(
            {
                "customer_id": who,
                "at": pa.array(at, type=pa.timestamp("us", tz="UTC")),
                "amount": amount,
            }
        )
        pq.write_table(table, path / f"part-{i:05d}.parquet", row_group_size=CHUNK)
    marker.touch()
    print(f"generated {lines:,} lines in {time.perf_counter() - started:.1f} s under {path}")


class PeakMemory:
    """Samples every worker's resident memory every half second and keeps the peak of each."""

    def __init__(self, client: object):
        self.client = client
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self.client.run(_rss)  # type: ignore[attr-defined]
            except Exception:  # a worker restarting: sample again later
                rss = {}
            for worker, value in rss.items():
                self.peak[worker] = max(self.peak.get(worker, 0), value)
            self._stop.wait(0.5)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def on_cluster(
    path: Path,
    out: Path,
    workers: int,
    threads: int,
    memory_limit: str,
    buckets: int,
    cluster_lines: int,
    keep_malloc_default: bool = False,
    combine: bool = True,
) -> dict[str, float]:
    import dask
    import dask.dataframe as dd
    from distributed import Client, LocalCluster, futures_of, wait

    import lifecycle.dask as ldask
    from lifecycle.clv import ValueModel

    times: dict[str, float] = {}
    # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's
    # mmap threshold at 128 KiB: every numpy temporary above it is mapped and unmapped, and the
    # value models' many medium-sized steps run 3-5 times slower. Left unset, glibc adapts.
    trim = None if keep_malloc_default is False else 65536
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": trim}),
        LocalCluster(
            n_workers=workers,
            processes=True,
            threads_per_worker=threads,
            memory_limit=memory_limit,
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,
        PeakMemory(client) as memory,
    ):
        print(f"dashboard: {client.dashboard_link}")
        start = time.perf_counter()
        files = sorted(str(f) for f in path.glob("part-*.parquet"))[
            : max(1, cluster_lines // CHUNK)
        ]
        lines = dd.read_parquet(files, columns=["customer_id", "at", "amount"])
        summary = ldask.customer_summary(lines, buckets=buckets, combine=combine)
        wait(futures_of(list(summary.parts)))  # persisted: computing on the workers until here
        times["summary"] = time.perf_counter() - start
        t = time.perf_counter()
        bg = ldask.fit_purchases(summary)
        gg = ldask.fit_spend(summary)
        times["fits"] = time.perf_counter() - t
        t = time.perf_counter()
        model = ValueModel(purchases=bg, spend=gg, horizon_days=365.0, clv_horizon_days=365.0)
        shutil.rmtree(out, ignore_errors=True)
        ldask.predict(summary, model).to_parquet(str(out))
        times["predict+write"] = time.perf_counter() - t
        times["total"] = time.perf_counter() - start
        print(f"  {bg!r}\n  {gg!r}")
    for worker, peak in sorted(memory.peak.items()):
        print(f"  peak memory {worker}: {peak / 2**30:.2f} GiB")
    times["peak_gib"] = max(memory.peak.values(), default=0) / 2**30
    return times


def in_one_process(path: Path, lines: int, out: Path) -> dict[str, float]:
    import pyarrow.parquet as pq

    from lifecycle.analytics import Transactions, rfm_summary
    from lifecycle.clv import BetaGeo, GammaGamma, ValueModel, predict_customers

    files = sorted(path.glob("part-*.parquet"))[: max(1, lines // CHUNK)]
    times: dict[str, float] = {}
    start = time.perf_counter()
    import pyarrow as pa

    table = pa.concat_tables([pq.read_table(f) for f in files])
    summary = rfm_summary(Transactions.from_arrow(table))
    times["summary"] = time.perf_counter() - start
    t = time.perf_counter()
    bg = BetaGeo().fit(summary.frequency, summary.recency, summary.T)
    gg = GammaGamma().fit(summary.frequency, summary.monetary_value)
    times["fits"] = time.perf_counter() - t
    t = time.perf_counter()
    model = ValueModel(purchases=bg, spend=gg, horizon_days=365.0, clv_horizon_days=365.0)
    predictions = predict_customers(model, summary)
    pq.write_table(predictions.to_arrow(), out)
    times["predict+write"] = time.perf_counter() - t
    times["total"] = time.perf_counter() - start
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000_000)
    parser.add_argument("--customers", type=int, default=10_000_000)
    parser.add_argument("--single-lines", type=int, default=10_000_000)
    parser.add_argument("--data", type=Path, default=Path("/tmp/lifecycle-bench-dask"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="threads per worker")
    parser.add_argument(
        "--cluster-lines",
        type=int,
        default=None,
        help="run the cluster on the first lines only (whole files; default: all --lines)",
    )
    parser.add_argument("--memory-limit", default="8GiB")
    parser.add_argument(
        "--rows",
        action="store_true",
        help="split order lines unreduced (customer_summary(combine=False)) instead of partials",
    )
    parser.add_argument("--buckets", type=int, default=32)
    parser.add_argument(
        "--dask-malloc-default",
        action="store_true",
        help="keep the nanny's MALLOC_TRIM_THRESHOLD_=65536 (slower value models)",
    )
    args = parser.parse_args()
    print(f"machine: {machine()}; load {os.getloadavg()[0]:.2f}; reference loop", end=" ")
    print(f"{reference_loop():.2f} s")
    data = args.data / "lines"
    generate(data, args.lines, args.customers)
    fmt = "  ".join
    cluster_lines = (
        args.lines if args.cluster_lines is None else min(args.cluster_lines, args.lines)
    )
    cluster = on_cluster(
        data,
        args.data / "predictions",
        args.workers,
        args.threads,
        args.memory_limit,
        args.buckets,
        cluster_lines,
        args.dask_malloc_default,
        not args.rows,
    )
    print(
        f"cluster, {cluster_lines:,} lines, {args.workers} workers x {args.threads} threads: "
        + fmt(f"{k} {v:.1f}" + ("" if k == "peak_gib" else " s") for k, v in cluster.items())
    )
    if args.single_lines:
        one = in_one_process(data, args.single_lines, args.data / "predictions-one.parquet")
        print(
            f"one process, {args.single_lines:,} lines: "
            + fmt(f"{k} {v:.1f} s" for k, v in one.items())
        )
    print(f"load after: {os.getloadavg()[0]:.2f}; reference loop {reference_loop():.2f} s")


if __name__ == "__main__":
    main()
