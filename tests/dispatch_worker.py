"""A dispatcher process for the multi-process tests.

Usage: python dispatch_worker.py STORE OUT MODE WORKER
  STORE is a SQLite file, or the JSON of a server store's url, schema and prefix.
  MODE "run": dispatch for 60 steps of 10 s from T0 through a JSON-lines channel at OUT that
      fails at random (seeded by WORKER); prints "done sent=N failures=M".
  MODE "hang": dispatch at T0; the channel writes the message to OUT, prints "sent KEY" and
      then hangs, so the test can kill the process between send and mark.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime, timedelta

from lifecycle.adapters.channels import JsonLinesChannel
from lifecycle.cadence import CadencePolicy
from lifecycle.cadence.contact import Caps, ContactPolicy
from lifecycle.dispatch import dispatch
from lifecycle.errors import TransientChannelError
from lifecycle.policy import DispatchPolicy, Policy
from lifecycle.ports import Message, SendResult
from sqlite_worker import open_store

T0 = datetime(2026, 6, 1, 9, tzinfo=UTC)
# A lease longer than the simulated spread between workers: no claim runs out by accident.
DISPATCH = DispatchPolicy(lease_seconds=3600, backoff_base_seconds=5, backoff_max_seconds=30)
CONTACT = ContactPolicy(marketing=Caps(limits=((2, 7),)), service=Caps(limits=((10, 1),)))
POLICY = Policy(dispatch=DISPATCH, cadence=CadencePolicy(contact=CONTACT))


class Flaky(JsonLinesChannel):
    def __init__(self, path: str, rng: random.Random):
        super().__init__(path, name="email")
        self.rng = rng
        self.failures = 0

    def send(self, message: Message, *, idempotency_key: str) -> SendResult:
        if self.rng.random() < 0.2:
            self.failures += 1
            raise TransientChannelError("injected")
        return super().send(message, idempotency_key=idempotency_key)


class Hanging(JsonLinesChannel):
    def send(self, message: Message, *, idempotency_key: str) -> SendResult:
        result = super().send(message, idempotency_key=idempotency_key)
        print(f"sent {idempotency_key}", flush=True)
        time.sleep(600)
        return result


def main() -> int:
    target, out, mode, worker = sys.argv[1:5]
    store = open_store(target)
    try:
        if mode == "hang":
            dispatch(store, {"email": Hanging(out, name="email")}, POLICY, T0, worker=worker)
            return 1
        channel = Flaky(out, random.Random(worker))
        sent = 0
        for step in range(60):
            now = T0 + timedelta(seconds=10 * step)
            report = dispatch(store, {"email": channel}, POLICY, now, worker=worker)
            sent += len(report.sent)
        print(f"done sent={sent} failures={channel.failures}", flush=True)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
