"""8 dispatcher processes on the server store, at length: every message once, no cap broken.

Run: .venv/bin/python benchmarks/dispatch_processes.py [--customers 200] [--backends postgresql,mariadb]

The check of tests/test_sql_processes.py (3 transactional and 2 of 4 marketing messages per
customer, a channel failing 1 time in 5, 8 processes) with more customers: 200 send 1,000
messages. Prints the seconds each server took.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import servers
from test_sql_processes import check_dispatchers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--backends", default="postgresql,mariadb")
    args = parser.parse_args()
    try:
        for backend in args.backends.split(","):
            with tempfile.TemporaryDirectory() as folder:
                start = time.perf_counter()
                sent = check_dispatchers(servers.server(backend), Path(folder), args.customers)
                print(
                    f"{backend:<10} 8 dispatchers sent {sent:,} messages, each once, caps kept, "
                    f"in {time.perf_counter() - start:.0f} s",
                    flush=True,
                )
    finally:
        for _ in servers.drop_all():
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
