"""The hostile-value probe at length: many more cases than ``make test`` draws.

Run: .venv/bin/python benchmarks/probe_hostile.py [--events 3000] [--sqlite 300] [--imports 600]

Draws events of every class with hostile fields (instants past 1970-2200, amounts past the
ceiling and the precision, surrogates, control characters, huge texts, address lists), the
same through the SQLite store, and order exports with hostile cells, and runs each through
:mod:`lifecycle.testing.probe`: a case *holds* when it ends in acceptance with the right
state or a ``LifecycleError`` naming the problem, with the shop still planning, dispatching,
reporting and sending the good customer's notice; otherwise it *broke*, and the first few
breaks are printed. Exits 1 when anything broke.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lifecycle as lc
from bench_store import machine
from lifecycle.testing.probe import probe_case, probe_rows
from lifecycle.testing.strategies import HostileCase, hostile_cases, hostile_rows


class Tally:
    def __init__(self, name: str) -> None:
        self.name = name
        self.tried = 0
        self.accepted = 0
        self.broke: list[str] = []
        self.started = time.perf_counter()

    def line(self) -> str:
        held = self.tried - len(self.broke)
        took = time.perf_counter() - self.started
        built = f"events the library built: {self.accepted:,}; " if self.accepted else ""
        return (
            f"{self.name:<22} tried {self.tried:>6,}  held {held:>6,}  broke {len(self.broke):>4,}"
            f"  ({built}{took:.0f} s)"
        )


def _settings(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def _accepted(case: HostileCase) -> bool:
    try:
        case.build()
    except Exception:
        return False
    return True


def probe_events(n: int, tally: Tally, make: object = None) -> None:
    @_settings(n)
    @given(hostile_cases())
    def run(case: HostileCase) -> None:
        tally.tried += 1
        tally.accepted += _accepted(case)
        if make is None:
            broke = probe_case(case)
        else:
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "shop.db"
                broke = probe_case(case, lambda: lc.Lifecycle.open(path, synchronous="NORMAL"))
        if broke is not None:
            tally.broke.append(f"{case.cls.__name__}: {broke}")

    run()


def probe_imports(n: int, tally: Tally) -> None:
    @_settings(n)
    @given(st.lists(hostile_rows(), min_size=1, max_size=6))
    def run(rows: list[dict[str, str]]) -> None:
        tally.tried += 1
        with tempfile.TemporaryDirectory() as folder:
            broke = probe_rows(rows, Path(folder))
        if broke is not None:
            tally.broke.append(broke)

    run()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--sqlite", type=int, default=300)
    parser.add_argument("--imports", type=int, default=600)
    args = parser.parse_args()
    print(f"lifecycle {lc.__version__}; {machine()}")
    tallies = [Tally("events, memory store"), Tally("events, SQLite store"), Tally("import rows")]
    probe_events(args.events, tallies[0])
    print(tallies[0].line(), flush=True)
    probe_events(args.sqlite, tallies[1], make="sqlite")
    print(tallies[1].line(), flush=True)
    probe_imports(args.imports, tallies[2])
    print(tallies[2].line(), flush=True)
    tried = sum(t.tried for t in tallies)
    broke = [b for t in tallies for b in t.broke]
    print(f"{'all':<22} tried {tried:>6,}  held {tried - len(broke):>6,}  broke {len(broke):>4,}")
    for text, count in Counter(broke).most_common(10):
        print(f"  broke x{count}: {text}")
    return 1 if broke else 0


if __name__ == "__main__":
    sys.exit(main())
