"""A webhook receiver on 127.0.0.1 for the webhook channel's tests: it checks each request's
format and signature as the real receivers do (a host's own, 企业微信, 钉钉) and answers as told.

The checks here are written from the receivers' published formats, not from the channel's
code, so a channel that drifts from them fails.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lifecycle.clock import SystemClock

#: The WeCom robot key and the DingTalk token and secret the receiver expects.
WECOM_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
DINGTALK_TOKEN = "tok-0123456789"
DINGTALK_SECRET = "SEC0123456789abcdef"
#: The generic receiver's shared secret.
SECRET = "whsec-test-0123456789"


class Received:
    """One request as the receiver saw it."""

    def __init__(self, path: str, headers: dict[str, str], body: bytes):
        self.path = path
        self.headers = headers
        self.body = body
        self.query = parse_qs(urlsplit(path).query)

    @property
    def key(self) -> str | None:
        return self.headers.get("idempotency-key")

    def json(self) -> Any:
        return json.loads(self.body)


#: What the receiver answers: (status, headers, body) — or None to check as the preset does.
Answer = tuple[int, dict[str, str], bytes]


def _generic(r: Received) -> Answer:
    """A host's receiver: the signature over timestamp "." body, fresh within five minutes."""
    stamp = r.headers.get("x-lifecycle-timestamp", "")
    given = r.headers.get("x-lifecycle-signature", "")
    expected = (
        "sha256="
        + hmac.new(SECRET.encode(), stamp.encode() + b"." + r.body, hashlib.sha256).hexdigest()
    )
    if not stamp.isdigit() or abs(SystemClock().now().timestamp() - int(stamp)) > 300:
        return 401, {}, b"stale"
    if not hmac.compare_digest(given, expected):
        return 401, {}, b"bad signature"
    body = r.json()
    if r.headers.get("content-type", "").split(";")[0] != "application/json":
        return 415, {}, b""
    if body.get("key") != r.key or not body.get("text") or "customer_id" not in body:
        return 422, {}, b"bad body"
    return 204, {}, b""


def _robot(code: int, msg: str = "ok") -> Answer:
    return (
        200,
        {"Content-Type": "application/json"},
        json.dumps({"errcode": code, "errmsg": msg}).encode(),
    )


def _wecom(r: Received) -> Answer:
    if urlsplit(r.path).path != "/cgi-bin/webhook/send" or r.query.get("key") != [WECOM_KEY]:
        return _robot(93000, "invalid webhook url")
    body = r.json()
    kind = body.get("msgtype")
    if kind not in ("markdown", "text") or set(body) - {"msgtype", kind}:
        return _robot(40008, "invalid message type")
    content = body[kind].get("content")
    if not isinstance(content, str) or not content:
        return _robot(40008, "empty content")
    if len(content.encode()) > (4096 if kind == "markdown" else 2048):
        return _robot(40058, "content exceed max length")
    return _robot(0)


def _dingtalk(r: Received) -> Answer:
    if urlsplit(r.path).path != "/robot/send" or r.query.get("access_token") != [DINGTALK_TOKEN]:
        return _robot(300001, "token is not exist")
    stamp = r.query.get("timestamp", [""])[0]
    given = r.query.get("sign", [""])[0]  # parse_qs has undone the URL encoding
    to_sign = f"{stamp}\n{DINGTALK_SECRET}".encode()
    expected = base64.b64encode(
        hmac.new(DINGTALK_SECRET.encode(), to_sign, hashlib.sha256).digest()
    ).decode()
    if not stamp.isdigit() or abs(SystemClock().now().timestamp() * 1000 - int(stamp)) > 3_600_000:
        return _robot(310000, "sign not match, timestamp is invalid")
    if given != expected:
        return _robot(310000, "sign not match")
    body = r.json()
    kind = body.get("msgtype")
    if kind == "markdown":
        md = body.get("markdown", {})
        if not md.get("title") or not md.get("text"):
            return _robot(40035, "missing title or text")
    elif kind == "text":
        if not body.get("text", {}).get("content"):
            return _robot(40035, "missing content")
    else:
        return _robot(40035, "bad msgtype")
    return _robot(0)


CHECKS: dict[str, Callable[[Received], Answer]] = {
    "json": _generic,
    "wecom": _wecom,
    "dingtalk": _dingtalk,
}


class Receiver:
    """The server's state: what arrived, and how to answer the next requests."""

    def __init__(self, preset: str):
        self.preset = preset
        self.received: list[Received] = []
        self.accepted: list[str] = []
        self.answer: Answer | None = None
        self.delay = 0.0
        self.lock = threading.Lock()
        self.port = 0

    def url(self, path: str | None = None) -> str:
        if path is None:
            path = {
                "json": "/hooks/lifecycle",
                "wecom": f"/cgi-bin/webhook/send?key={WECOM_KEY}",
                "dingtalk": f"/robot/send?access_token={DINGTALK_TOKEN}",
            }[self.preset]
        return f"http://127.0.0.1:{self.port}{path}"

    def handle(self, r: Received) -> Answer:
        with self.lock:
            self.received.append(r)
            told = self.answer
        answer = told if told is not None else CHECKS[self.preset](r)
        ok = (
            told is None
            and 200 <= answer[0] < 300
            and (self.preset == "json" or json.loads(answer[2]).get("errcode") == 0)
        )
        if ok and r.key is not None:
            with self.lock:
                self.accepted.append(r.key)
        return answer


@contextmanager
def receiver(preset: str = "json") -> Iterator[Receiver]:
    """A receiver for ``preset`` listening on 127.0.0.1, on a port of its own."""
    state = Receiver(preset)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            r = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            try:
                status, headers, reply = state.handle(r)
            except ValueError:
                status, headers, reply = 400, {}, b"not JSON"
            if state.delay:
                time.sleep(state.delay)
            try:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
            except OSError:
                pass  # the client gave up waiting

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
