"""Messages as HTTP POSTs to a webhook, on the standard library's :mod:`http.client`: signed
JSON for a host's own receiver, and the 企业微信 (WeCom) and 钉钉 (DingTalk) group robots, so
owner tasks and escalations land in the sales team's chat.

Replies map to the channel errors: 2xx is sent; 408, 425, 429, 5xx, refused connections and
timeouts before the request went out are transient (``Retry-After`` honoured); other 4xx and
3xx are permanent; no answer after the request went out is in doubt.
"""

from __future__ import annotations

import base64
import hmac
import http.client
import json
import ssl
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal, NoReturn
from urllib.parse import SplitResult, quote_plus

from lifecycle._version import __version__
from lifecycle.adapters._urls import check_webhook_url, shown_url
from lifecycle.adapters.channels import message_record
from lifecycle.clock import Clock, SystemClock
from lifecycle.errors import (
    ChannelError,
    InDoubtChannelError,
    InvalidArgument,
    PermanentChannelError,
    TransientChannelError,
)
from lifecycle.ports import Message, SendResult

__all__ = [
    "KEY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookChannel",
    "dingtalk_sign",
    "sign",
    "verify_signature",
]

Preset = Literal["json", "wecom", "dingtalk"]
MsgType = Literal["markdown", "text"]

#: The header that carries the idempotency key: the same for every try of one message.
KEY_HEADER: Final = "Idempotency-Key"
#: The header with the send instant, in whole seconds since the Unix epoch.
TIMESTAMP_HEADER: Final = "X-Lifecycle-Timestamp"
#: The header with ``sha256=`` and the hex HMAC-SHA256 of ``timestamp + "." + body``.
SIGNATURE_HEADER: Final = "X-Lifecycle-Signature"

#: Replies worth another try; every other non-2xx reply is permanent.
_TRANSIENT_STATUS: Final = frozenset({408, 425, 429})
#: Robot error codes that pass: busy, and sending too fast for the robot's rate limit.
_TRANSIENT_ERRCODES: Final[Mapping[str, frozenset[int]]] = {
    "wecom": frozenset({-1, 45009}),
    "dingtalk": frozenset({-1, 130101, 410100, 90030}),
}
#: WeCom's limits on a message's content, in UTF-8 bytes.
_WECOM_LIMITS: Final[Mapping[str, int]] = {"markdown": 4096, "text": 2048}
#: The most of a reply read; robots answer a few dozen bytes.
_MAX_REPLY: Final = 64 * 1024
#: The longest wait a ``Retry-After`` may ask for.
_MAX_RETRY_AFTER: Final = timedelta(days=1)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Lifecycle-Signature`` value: ``sha256=`` and the hex HMAC-SHA256, keyed with
    ``secret``, of the timestamp header's text, a ``.`` and the raw body."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, "sha256")
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    body: bytes,
    *,
    timestamp: str,
    signature: str,
    now: datetime,
    tolerance: timedelta = timedelta(minutes=5),
) -> bool:
    """Whether a request a :class:`WebhookChannel` signed with ``secret`` is genuine and
    fresh: for a receiver, given the raw body and the two headers' values.

    The signature is compared in constant time; a timestamp more than ``tolerance`` away from
    ``now`` fails, so a captured request cannot be replayed later.
    """
    try:
        sent = datetime.fromtimestamp(int(timestamp), UTC)
    except (ValueError, OverflowError, OSError):
        return False
    if abs(now - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature.strip())


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's ``sign`` query parameter: base64 of the HMAC-SHA256, keyed with ``secret``,
    of ``f"{timestamp_ms}\\n{secret}"`` (before URL encoding)."""
    text = f"{timestamp_ms}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode("utf-8"), text, "sha256").digest()).decode()


def _fit(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` UTF-8 bytes on a character boundary, marked with an ellipsis."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "…"


def _footer(message: Message) -> str:
    rule = f" · {message.rule}" if message.rule else ""
    return f"{message.customer_id}{rule} · {message.key}"


class WebhookChannel:
    """POSTs each message as JSON to a webhook; one connection per message, always closed.

    Presets:

    - ``"json"`` (default): the same JSON object per message as
      :class:`~lifecycle.adapters.channels.JsonLinesChannel` writes, for a host's own
      receiver. With ``secret``, each request carries ``X-Lifecycle-Timestamp`` and
      ``X-Lifecycle-Signature`` (see :func:`sign` and :func:`verify_signature`).
    - ``"wecom"``: a 企业微信 group robot (``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…``),
      ``{"msgtype": "markdown"|"text", …}``, content cut to WeCom's byte limits. The robot's
      key in the URL is its only secret.
    - ``"dingtalk"``: a 钉钉 custom robot (``https://oapi.dingtalk.com/robot/send?access_token=…``),
      ``{"msgtype": "markdown"|"text", …}``; with ``secret`` (the robot's 加签 secret) each
      request carries DingTalk's ``timestamp`` and ``sign`` query parameters.

    The robots answer ``{"errcode": …}``: 0 is sent, their busy and rate-limit codes are
    transient, any other code permanent. Every request carries the idempotency key in
    ``Idempotency-Key``; the robots do not deduplicate, so ``deduplicates`` is false unless
    the host's receiver drops repeated keys and says so with ``deduplicates=True``.

    Args:
        url: where to post: ``https://`` (``http://`` only to this machine), no user name or
            password in it.
        preset: ``"json"``, ``"wecom"`` or ``"dingtalk"``.
        secret: the signing secret (``"json"`` and ``"dingtalk"``).
        msgtype: the robots' message type, ``"markdown"`` (default) or ``"text"``.
        mention: the robot's user ids to @-mention in each message, or ``"@all"``.
        name: the channel's name (``"task"`` for owner tasks).
        timeout: seconds for connecting, and for the reply once the request is sent.
        deduplicates: the receiver drops a repeated ``Idempotency-Key`` (``"json"`` only).
        clock: where the signing instant comes from (the system clock by default).
        ssl_context: certificates and protocols for HTTPS; the system default when ``None``.
    """

    def __init__(
        self,
        url: str,
        *,
        preset: Preset = "json",
        secret: str | None = None,
        msgtype: MsgType = "markdown",
        mention: Sequence[str] = (),
        name: str = "task",
        timeout: float = 10.0,
        deduplicates: bool = False,
        clock: Clock | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ):
        if preset not in ("json", "wecom", "dingtalk"):
            raise InvalidArgument(
                f"must be 'json', 'wecom' or 'dingtalk', not {preset!r}", argument="preset"
            )
        if msgtype not in ("markdown", "text"):
            raise InvalidArgument(
                f"must be 'markdown' or 'text', not {msgtype!r}", argument="msgtype"
            )
        if secret is not None and (not isinstance(secret, str) or not secret):
            raise InvalidArgument("must be a non-empty string", argument="secret")
        if secret is not None and preset == "wecom":
            raise InvalidArgument(
                "the WeCom robot does not sign; its key in the URL is the secret",
                argument="secret",
            )
        if deduplicates and preset != "json":
            raise InvalidArgument(
                f"the {preset} robot does not drop repeated keys", argument="deduplicates"
            )
        if isinstance(mention, str) or not all(isinstance(m, str) and m for m in mention):
            raise InvalidArgument("must be a list of user ids", argument="mention")
        if mention and preset == "json":
            raise InvalidArgument("only the robots mention users", argument="mention")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise InvalidArgument("must be a number of seconds above 0", argument="timeout")
        if not isinstance(name, str) or not name:
            raise InvalidArgument("must be a non-empty string", argument="name")
        self._parts: SplitResult = check_webhook_url(url)
        self.preset: Preset = preset
        self.msgtype: MsgType = msgtype
        self.mention = tuple(mention)
        self.timeout = float(timeout)
        self._secret = secret
        self._name = name
        self._deduplicates = deduplicates
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._context = ssl_context
        self._where = shown_url(self._parts)
        self._closed = False

    @property
    def name(self) -> str:
        return self._name

    @property
    def deduplicates(self) -> bool:
        return self._deduplicates

    # -- what goes out ----------------------------------------------------------------------

    def body(self, message: Message, idempotency_key: str) -> dict[str, Any]:
        """The JSON object posted for ``message``: the preset's format."""
        if self.preset == "json":
            return message_record(message, idempotency_key)
        subject = (message.subject or "").strip()
        if self.preset == "wecom":
            return self._wecom(message, subject)
        return self._dingtalk(message, subject)

    def _wecom(self, message: Message, subject: str) -> dict[str, Any]:
        limit = _WECOM_LIMITS[self.msgtype]
        if self.msgtype == "text":
            head = f"{subject}\n" if subject else ""
            content = f"{head}{message.text}\n({_footer(message)})"
            text: dict[str, Any] = {"content": _fit(content, limit)}
            if self.mention:
                text["mentioned_list"] = list(self.mention)
            return {"msgtype": "text", "text": text}
        head = f"**{subject}**\n" if subject else ""
        tags = "".join(f"<@{m}>" for m in self.mention if m != "@all")
        tail = f'\n<font color="comment">{_footer(message)}</font>'
        tail += f"\n{tags}" if tags else ""
        room = max(limit - len(tail.encode("utf-8")), limit // 2)
        content = _fit(_fit(f"{head}{message.text}", room) + tail, limit)
        return {"msgtype": "markdown", "markdown": {"content": content}}

    def _dingtalk(self, message: Message, subject: str) -> dict[str, Any]:
        title = subject or (message.text.strip().splitlines() or [message.key])[0][:64]
        users = [m for m in self.mention if m != "@all"]
        at = {"atUserIds": users, "isAtAll": "@all" in self.mention}
        tags = "".join(f" @{m}" for m in users)  # DingTalk shows a mention only in the text
        if self.msgtype == "text":
            head = f"{subject}\n" if subject else ""
            content = f"{head}{message.text}\n({_footer(message)}){tags}"
            return {"msgtype": "text", "text": {"content": content}, "at": at}
        head = f"#### {subject}\n\n" if subject else ""
        text = f"{head}{message.text}\n\n> {_footer(message)}{tags}"
        return {"msgtype": "markdown", "markdown": {"title": title, "text": text}, "at": at}

    def _target(self, now: datetime) -> str:
        """The request target: path and query, with DingTalk's signature when it signs."""
        path = self._parts.path or "/"
        query = self._parts.query
        if self.preset == "dingtalk" and self._secret is not None:
            stamp = int(now.timestamp() * 1000)
            signed = f"timestamp={stamp}&sign={quote_plus(dingtalk_sign(self._secret, stamp))}"
            query = f"{query}&{signed}" if query else signed
        return f"{path}?{query}" if query else path

    def _headers(self, body: bytes, key: str, now: datetime) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "User-Agent": f"lifecycle/{__version__}",
            KEY_HEADER: key,
        }
        if self.preset == "json" and self._secret is not None:
            stamp = str(int(now.timestamp()))
            headers[TIMESTAMP_HEADER] = stamp
            headers[SIGNATURE_HEADER] = sign(self._secret, stamp, body)
        return headers

    # -- sending ----------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        host = self._parts.hostname or ""
        if self._parts.scheme == "https":
            context = self._context or ssl.create_default_context()
            return http.client.HTTPSConnection(
                host, self._parts.port, timeout=self.timeout, context=context
            )
        return http.client.HTTPConnection(host, self._parts.port, timeout=self.timeout)

    def send(self, message: Message, *, idempotency_key: str) -> SendResult:
        if self._closed:
            raise PermanentChannelError(f"channel {self._name!r} is closed")
        if any(c in idempotency_key for c in "\r\n\0") or not idempotency_key.isprintable():
            raise PermanentChannelError(
                f"message {message.key!r}: the key cannot travel in a header; nothing sent"
            )
        now = self._clock.now()
        try:
            body = json.dumps(self.body(message, idempotency_key), ensure_ascii=False).encode()
        except (TypeError, ValueError) as e:
            raise PermanentChannelError(
                f"message {message.key!r}: cannot be written as JSON ({type(e).__name__}); "
                "nothing sent"
            ) from None
        headers = self._headers(body, idempotency_key, now)
        conn = self._connection()
        try:
            try:
                conn.connect()
            except ssl.SSLCertVerificationError as e:
                raise PermanentChannelError(
                    f"webhook {self._where}: certificate not trusted: {e.verify_message}"
                ) from None
            except OSError as e:
                raise TransientChannelError(
                    f"webhook {self._where}: cannot connect ({type(e).__name__}); not sent"
                ) from None
            try:
                conn.request("POST", self._target(now), body=body, headers=headers)
            except (OSError, http.client.HTTPException) as e:
                raise TransientChannelError(
                    f"webhook {self._where}: the request was cut off ({type(e).__name__}); "
                    "not sent whole"
                ) from None
            try:
                response = conn.getresponse()
                status, reply = response.status, response.read(_MAX_REPLY)
                retry_after = response.getheader("Retry-After")
            except (OSError, http.client.HTTPException) as e:
                raise InDoubtChannelError(
                    f"webhook {self._where}: sent, but no answer within {self.timeout:g}s "
                    f"({type(e).__name__}); it may have arrived"
                ) from None
        finally:
            conn.close()
        return self._outcome(status, reply, retry_after, now)

    def _outcome(
        self, status: int, reply: bytes, retry_after: str | None, now: datetime
    ) -> SendResult:
        """What a reply means: a receipt, or the channel error of its kind."""
        if status in _TRANSIENT_STATUS or 500 <= status < 600:
            raise TransientChannelError(
                f"webhook {self._where}: HTTP {status}",
                retry_after=_retry_after(retry_after, now),
            )
        if 300 <= status < 400:
            raise PermanentChannelError(
                f"webhook {self._where}: HTTP {status}; redirects are not followed, give the "
                "final URL"
            )
        if not 200 <= status < 300:
            raise PermanentChannelError(f"webhook {self._where}: HTTP {status}")
        if self.preset == "json":
            return SendResult()
        return self._robot_reply(reply)

    def _robot_reply(self, reply: bytes) -> SendResult:
        try:
            answer = json.loads(reply)
            code = int(answer["errcode"])
        except (ValueError, TypeError, KeyError):
            raise InDoubtChannelError(
                f"webhook {self._where}: HTTP 2xx without the robot's errcode; it may have arrived"
            ) from None
        if code == 0:
            return SendResult()
        said = str(answer.get("errmsg", ""))[:120]
        kind: type[ChannelError] = (
            TransientChannelError
            if code in _TRANSIENT_ERRCODES[self.preset]
            else PermanentChannelError
        )
        _fail(kind, f"webhook {self._where}: {self.preset} errcode {code}: {said}")

    def close(self) -> None:
        """Nothing is held between messages; later sends are refused."""
        self._closed = True

    def __repr__(self) -> str:
        signed = ", signed" if self._secret is not None else ""
        return f"WebhookChannel({self._name!r}, preset={self.preset!r}, {self._where!r}{signed})"


def _fail(kind: type[ChannelError], text: str) -> NoReturn:
    raise kind(text)


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A ``Retry-After`` header (seconds, or an HTTP date) as a wait from ``now``, capped."""
    if value is None:
        return None
    value = value.strip()
    wait: timedelta
    if value.isdigit():
        wait = timedelta(seconds=int(value[:9]))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        wait = when - now
    return min(max(wait, timedelta(0)), _MAX_RETRY_AFTER)
