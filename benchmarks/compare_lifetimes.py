"""Side by side with lifetimes 0.11.3, run from its own virtualenv in a subprocess.

    python3 -m venv /tmp/lifetimes-venv && /tmp/lifetimes-venv/bin/pip install lifetimes==0.11.3
    .venv/bin/python benchmarks/compare_lifetimes.py [--python /tmp/lifetimes-venv/bin/python]

Reports agreement of P(alive) and expected purchases on every customer of the CDNOW master file
(in days, given the same parameters), fitted parameters, fit times, and where lifetimes fails.

Then, at ``--shape-sizes`` customers of the two shapes of ``bench_clv.py`` in weeks (CDNOW-like;
acquired continuously over three years, few repeated rows), with the number of distinct
(frequency, recency, T) rows: BG/NBD fit, P(alive), expected purchases in 4 weeks and the
Gamma-Gamma fit, ours (median of three) beside lifetimes (one run; its fits only up to
``--lifetimes-fit-max`` customers, as they take minutes beyond), in the same run. And the
summary of ``--summary`` transactions (the log of ``bench_clv.py``, customer by customer and in
time order) beside lifetimes' ``summary_data_from_transaction_data`` (distinct days, as ours).

Wall and CPU seconds are both given, lifetimes' too (the machine may be shared: the CPU
seconds are close to what the passes take on a quiet one; ours are the fewest of three runs);
"lifetimes / ours" is the ratio of wall seconds, and of CPU seconds after it.
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lifecycle.analytics import Transactions, rfm_summary
from lifecycle.clv import BetaGeo, simulate_customers
from lifecycle.datasets.cdnow import load_cdnow_summary, load_cdnow_transactions

sys.path.insert(0, str(Path(__file__).parent))
from bench_clv import SHAPES, logs, shape_row, timed
from bench_store import load, machine, reference_loop

LIFETIMES = r"""
import sys, time, warnings
import numpy as np, pandas as pd
warnings.simplefilter("ignore")
from lifetimes import BetaGeoFitter
d = np.load(sys.argv[1])
out = {}
m = BetaGeoFitter()
m.params_ = pd.Series(dict(zip(["r", "alpha", "a", "b"], d["params"])))
x, tx, T = d["x"], d["tx"], d["T"]
out["p_alive"] = np.asarray(m.conditional_probability_alive(x, tx, T), float)
out["expected"] = np.asarray(
    m.conditional_expected_number_of_purchases_up_to_time(30.0, x, tx, T), float)
for name in ("cohort", "master"):
    f = BetaGeoFitter()
    s = time.perf_counter()
    f.fit(d[name + "_x"], d[name + "_tx"], d[name + "_T"])
    out[name + "_time"] = time.perf_counter() - s
    out[name + "_params"] = f.params_[["r", "alpha", "a", "b"]].to_numpy(float)
for n in d["sizes"]:
    f = BetaGeoFitter()
    s = time.perf_counter()
    try:
        f.fit(d[f"sim{n}_x"], d[f"sim{n}_tx"], d[f"sim{n}_T"])
        out[f"sim{n}_time"] = time.perf_counter() - s
    except Exception as e:
        out[f"sim{n}_time"] = -1.0
np.savez(sys.argv[2], **out)
"""

LIFETIMES_SHAPE = r"""
import sys, time, warnings
import numpy as np, pandas as pd
warnings.simplefilter("ignore")
from lifetimes import BetaGeoFitter, GammaGammaFitter
d = np.load(sys.argv[1])
x, tx, T, m = d["x"], d["tx"], d["T"], d["m"]
out = {}
def timed(name, fn):
    s, c = time.perf_counter(), time.process_time()
    try:
        fn()
        out[name] = [time.perf_counter() - s, time.process_time() - c]
    except Exception:
        out[name] = [-1.0, -1.0]
bg = BetaGeoFitter()
bg.params_ = pd.Series(dict(zip(["r", "alpha", "a", "b"], d["params"])))
timed("p_alive", lambda: bg.conditional_probability_alive(x, tx, T))
timed("expected", lambda: bg.conditional_expected_number_of_purchases_up_to_time(4.0, x, tx, T))
if bool(d["fit"]):
    timed("fit", lambda: BetaGeoFitter().fit(x, tx, T))
    keep = x > 0
    timed("gamma_gamma", lambda: GammaGammaFitter().fit(x[keep], m[keep]))
np.savez(sys.argv[2], **out)
"""

LIFETIMES_SUMMARY = r"""
import sys, time, warnings
import numpy as np, pandas as pd
warnings.simplefilter("ignore")
from lifetimes.utils import summary_data_from_transaction_data
d = np.load(sys.argv[1])
frame = pd.DataFrame({"id": d["ids"], "date": d["at"], "amount": d["amount"]})
s, c = time.perf_counter(), time.process_time()
summary_data_from_transaction_data(frame, "id", "date", monetary_value_col="amount", freq="D")
np.savez(sys.argv[2], summary=[time.perf_counter() - s, time.process_time() - c])
"""


def shown(seconds: float) -> str:
    return "failed" if seconds < 0 else "-" if np.isnan(seconds) else f"{seconds:.3f}"


#: (figure, lifetimes' wall and CPU seconds, ours): every ratio printed, for the targets table
RATIOS: list[tuple[str, float, float, float, float]] = []


def ratio(theirs: float, ours: float) -> str:
    return f"{theirs / ours:.1f}x" if theirs > 0 else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--python", default="/tmp/lifetimes-venv/bin/python")
    parser.add_argument("--sizes", default="2357,100000,1000000")
    parser.add_argument("--shape-sizes", default="1000000,10000000")
    parser.add_argument("--lifetimes-fit-max", type=int, default=1_000_000)
    parser.add_argument("--summary", type=int, default=10_000_000)
    args = parser.parse_args()
    print(
        f"machine: {machine()}, numpy {np.__version__}; reference loop {reference_loop():.2f} s, "
        f"{load()}"
    )
    sizes = [int(s) for s in args.sizes.split(",")]
    cohort = load_cdnow_summary()
    master = load_cdnow_transactions().summary()
    data: dict[str, object] = {
        "cohort_x": cohort.frequency,
        "cohort_tx": cohort.recency,
        "cohort_T": cohort.T,
        "master_x": master.frequency,
        "master_tx": master.recency,
        "master_T": master.T,
        "sizes": np.array(sizes),
    }
    ours: dict[str, float] = {}
    for name, s in (("cohort", cohort), ("master", master)):
        start = time.perf_counter()
        fit = BetaGeo().fit(s.frequency, s.recency, s.T)
        ours[name + "_time"] = time.perf_counter() - start
        data[name + "_ours"] = np.array([fit.params[k] for k in ("r", "alpha", "a", "b")])
    model = BetaGeo().fit(master.frequency, master.recency, master.T)
    data.update(
        params=np.array([model.params[k] for k in ("r", "alpha", "a", "b")]),
        x=master.frequency,
        tx=master.recency,
        T=master.T,
    )
    truth = BetaGeo.from_params(r=0.243, alpha=4.414 * 7, a=0.793, b=2.426)
    warm = SHAPES["continuous 3 years, weeks"](300_000)  # builds the compiled loops (fast extra)
    BetaGeo().fit(*warm[:3], time_unit_days=7).expected_purchases(4.0, *warm[:3])
    for n in sizes:
        rng = np.random.default_rng(n)
        sim = simulate_customers(truth, rng.integers(273, 357, n).astype(float), rng)
        data[f"sim{n}_x"], data[f"sim{n}_tx"], data[f"sim{n}_T"] = (
            sim.frequency,
            np.floor(sim.recency),
            sim.T,
        )
        start = time.perf_counter()
        BetaGeo().fit(sim.frequency, np.floor(sim.recency), sim.T)
        ours[f"sim{n}_time"] = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        inp, outp = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(inp, **data)  # type: ignore[arg-type]
        subprocess.run([args.python, "-c", LIFETIMES, str(inp), str(outp)], check=True)
        theirs = dict(np.load(outp))
    alive = model.p_alive(master.frequency, master.recency, master.T)
    expected = model.expected_purchases(30.0, master.frequency, master.recency, master.T)
    print(f"CDNOW master file: {master.frequency.size:,} customers, days, same parameters")
    print("| quantity | max relative difference | lifetimes NaN/inf | ours NaN/inf |")
    print("|---|---:|---:|---:|")
    for name, mine, other in (
        ("P(alive)", alive, theirs["p_alive"]),
        ("E[purchases in 30 days]", expected, theirs["expected"]),
    ):
        ok = np.isfinite(other)
        rel = np.abs(mine[ok] - other[ok]) / np.maximum(np.abs(mine[ok]), 1e-300)
        print(f"| {name} | {rel.max():.1e} | {(~ok).sum()} | {(~np.isfinite(mine)).sum()} |")
    print("\n| fitted on | parameter | ours | lifetimes | relative difference |")
    print("|---|---|---:|---:|---:|")
    for name in ("cohort", "master"):
        for i, k in enumerate(("r", "alpha", "a", "b")):
            a, b = data[name + "_ours"][i], theirs[name + "_params"][i]  # type: ignore[index]
            print(f"| {name} | {k} | {a:.8g} | {b:.8g} | {abs(a - b) / a:.1e} |")
    print("\n| fit | customers | ours s | lifetimes s |")
    print("|---|---:|---:|---:|")
    rows = [
        ("CDNOW cohort (weeks)", "cohort", cohort.frequency.size),
        ("CDNOW master (days)", "master", master.frequency.size),
    ]
    rows += [("simulated (days)", f"sim{n}", n) for n in sizes]
    for label, key, n in rows:
        t = float(theirs[key + "_time"])
        shown = "failed" if t < 0 else f"{t:.2f}"
        print(f"| {label} | {n:,} | {ours[key + '_time']:.3f} | {shown} |")
    shape_sizes = [int(s) for s in args.shape_sizes.split(",") if s]
    if shape_sizes:
        shapes(args.python, shape_sizes, args.lifetimes_fit_max)
    if args.summary:
        summaries(args.python, args.summary)
    targets()
    print(f"\nreference loop {reference_loop():.2f} s, {load()}")


def targets() -> None:
    """The targets against lifetimes: a BG/NBD fit at least 50 times as fast at a million
    customers of either shape, and no function slower than its lifetimes counterpart; met when
    the ratio of wall seconds, or of CPU seconds, reaches it."""
    if not RATIOS:
        return
    print("\n| figure | target: lifetimes / ours | wall | CPU | met |")
    print("|---|---:|---:|---:|---|")
    for name, wall, cpu, mine, mine_cpu in RATIOS:
        goal = 50.0 if name.startswith("BG/NBD fit") and ", 1,000,000" in name else 1.0
        by_wall, by_cpu = wall / mine, cpu / mine_cpu if cpu > 0 else 0.0
        met = "yes" if by_wall >= goal else "yes (CPU)" if by_cpu >= goal else "NO"
        print(f"| {name} | >= {goal:g} | {by_wall:.1f}x | {by_cpu:.1f}x | {met} |")


def shapes(python: str, sizes: list[int], fit_max: int) -> None:
    """Ours beside lifetimes on the two shapes, each size and shape in the same run."""
    print(
        "\n| shape | customers | distinct rows | function | ours s | ours CPU s | lifetimes s "
        "| lifetimes CPU s | lifetimes / ours |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    params = np.array([0.243, 4.414, 0.793, 2.426])
    for n in sizes:
        for label, make in SHAPES.items():
            ours = shape_row(label, n)
            x, tx, T, m = make(n)
            with tempfile.TemporaryDirectory() as tmp:
                inp, outp = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
                np.savez(inp, x=x, tx=tx, T=T, m=m, params=params, fit=n <= fit_max)
                del x, tx, T, m
                subprocess.run([python, "-c", LIFETIMES_SHAPE, str(inp), str(outp)], check=True)
                theirs = dict(np.load(outp))
            for key, name in (
                ("fit", "BG/NBD fit"),
                ("p_alive", "P(alive)"),
                ("expected", "E[X(4 weeks)]"),
                ("gamma_gamma", "Gamma-Gamma fit"),
            ):
                wall, cpu = theirs.get(key, (np.nan, np.nan))
                mine, mine_cpu = ours[key]
                if wall > 0:
                    RATIOS.append((f"{name}, {label}, {n:,}", wall, cpu, mine, mine_cpu))
                print(
                    f"| {label} | {n:,} | {int(ours['rows']):,} | {name} | {mine:.3f} "
                    f"| {mine_cpu:.3f} | {shown(wall)} | {shown(cpu)} | {ratio(wall, mine)}, "
                    f"{ratio(cpu, mine_cpu)} CPU |",
                    flush=True,
                )


def summaries(python: str, n: int) -> None:
    """Our summary (median of three) beside lifetimes' (one run) on ``n`` transactions, in days
    (lifetimes' purchases are distinct days, as ours)."""
    print(
        "\n| summary of a log written | transactions | ours s | ours CPU s | lifetimes s "
        "| lifetimes CPU s | lifetimes / ours |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for layout, (customers, at, amount) in logs(n).items():
        table = Transactions.from_arrays(customers, at, amount)
        rfm_summary(Transactions.from_arrays(customers[:200_000], at[:200_000], amount[:200_000]))
        mine, mine_cpu = timed(functools.partial(rfm_summary, table))
        del table
        with tempfile.TemporaryDirectory() as tmp:
            inp, outp = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
            np.savez(inp, ids=customers, at=at, amount=amount)
            subprocess.run([python, "-c", LIFETIMES_SUMMARY, str(inp), str(outp)], check=True)
            wall, cpu = np.load(outp)["summary"]
        RATIOS.append((f"summary, {layout}, {customers.size:,}", wall, cpu, mine, mine_cpu))
        print(
            f"| {layout} | {customers.size:,} | {mine:.3f} | {mine_cpu:.3f} | {shown(wall)} "
            f"| {shown(cpu)} | {ratio(wall, mine)}, {ratio(cpu, mine_cpu)} CPU |",
            flush=True,
        )


if __name__ == "__main__":
    main()
