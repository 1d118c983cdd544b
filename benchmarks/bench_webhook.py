"""Webhook channel benchmark: what one send costs against a receiver on 127.0.0.1.

Run: .venv/bin/python benchmarks/bench_webhook.py [--messages 500]

A threaded ``http.server`` on 127.0.0.1 answers every POST at once (``{"errcode": 0}``). For
each preset the table shows the median and 95th percentile milliseconds of one
``WebhookChannel.send`` (a new connection per message, body rendered, signed when the preset
signs), beside the floor: a bare ``http.client`` POST of the same bytes on a new connection.
The receiver is local, so the figures are the channel's own overhead, not a network's; each
row warms up with 20 sends first.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench_store import machine, reference_loop
from lifecycle.adapters.webhook import WebhookChannel
from lifecycle.ports import Message


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        reply = b'{"errcode": 0, "errmsg": "ok"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _timed(n: int, one: Callable[[int], object]) -> list[float]:
    for i in range(20):  # warm up: connections, caches
        one(-1 - i)
    out = []
    for i in range(n):
        start = time.perf_counter()
        one(i)
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=500)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    print(f"machine: {machine()}")
    print(f"reference loop: {reference_loop():.3f} s (5M additions, best of 3)")
    text = "Call back about the refund today; 客户等待回复。" * 4

    def message(i: int) -> Message:
        return Message(
            key=f"c{i}:owner_follow_up:1",
            customer_id=f"c{i}",
            channel="task",
            text=text,
            subject="Follow-up due",
            rule="owner_follow_up",
        )

    url = f"http://127.0.0.1:{port}/cgi-bin/webhook/send?key=k"
    channels = {
        "json, signed": WebhookChannel(url, secret="s3cret"),
        "wecom markdown": WebhookChannel(url, preset="wecom"),
        "dingtalk markdown, signed": WebhookChannel(url, preset="dingtalk", secret="SEC"),
    }
    body = b'{"msgtype": "markdown", "markdown": {"content": "' + text.encode() + b'"}}'

    def bare(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("POST", "/cgi-bin/webhook/send?key=k", body=body)
            conn.getresponse().read()
        finally:
            conn.close()

    rows = [("bare http.client POST (floor)", _timed(args.messages, bare))]
    for name, channel in channels.items():

        def send(i: int, c: WebhookChannel = channel) -> object:
            return c.send(message(i), idempotency_key=f"k{i}")

        rows.append((name, _timed(args.messages, send)))
    print(f"{args.messages} messages each, one connection per message\n")
    print(f"{'':32} {'median ms':>10} {'p95 ms':>8} {'msg/s':>8}")
    for name, ms in rows:
        p95 = statistics.quantiles(ms, n=20)[18]
        print(
            f"{name:32} {statistics.median(ms):10.3f} {p95:8.3f} {1000 / statistics.mean(ms):8.0f}"
        )
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    sys.exit(main())
