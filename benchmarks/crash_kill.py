"""Crash safety, at length: SIGKILL a writer mid-ingest many times and check the file each time.

Run: .venv/bin/python benchmarks/crash_kill.py [--kills 1000] [--seed 1]

Each round starts tests/sqlite_worker.py ingesting 20-event batches into one SQLite file, kills it
with SIGKILL after a random delay, reopens the file and checks that every acknowledged batch is
there whole, that no batch is there in part, and that PRAGMA integrity_check says ok.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_sqlite import check_after_crash, kill_during_ingest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    start = time.perf_counter()
    acked_total = 0
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "crash.db"
        for i in range(1, args.kills + 1):
            acked = kill_during_ingest(path, rng)
            check_after_crash(path, acked)
            acked_total += len(acked)
            if i % 100 == 0:
                print(
                    f"{i} kills, {acked_total} acknowledged batches verified, all whole", flush=True
                )
    print(
        f"kills={args.kills} acknowledged_batches={acked_total} lost=0 partial=0 "
        f"integrity=ok seconds={time.perf_counter() - start:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
