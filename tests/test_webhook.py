"""The webhook channel against a receiver on 127.0.0.1: the conformance kit for each preset,
the formats and signatures the receivers check, and how replies map to the channel errors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import pickle
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecycle.adapters.channel_config import channels_from_dict, channels_from_toml
from lifecycle.adapters.channels import JsonLinesChannel, MemoryChannel
from lifecycle.adapters.memory import MemoryStore
from lifecycle.adapters.smtp import SMTPChannel
from lifecycle.adapters.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookChannel,
    dingtalk_sign,
    sign,
    verify_signature,
)
from lifecycle.cli import main
from lifecycle.clock import FixedClock, SystemClock
from lifecycle.customer import ContactPoint, Profile
from lifecycle.dispatch import DispatchOutcome, dispatch
from lifecycle.errors import (
    InDoubtChannelError,
    InvalidArgument,
    PermanentChannelError,
    TransientChannelError,
)
from lifecycle.events import CustomerRegistered
from lifecycle.policy import DispatchPolicy, Policy
from lifecycle.ports import Channel, Message, OutboxEntry
from lifecycle.testing.channel import ChannelContract
from webhook_server import (
    DINGTALK_SECRET,
    DINGTALK_TOKEN,
    SECRET,
    WECOM_KEY,
    Receiver,
    receiver,
)

T0 = datetime(2026, 3, 1, 10, tzinfo=UTC)


def free_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def task(key: str = "c1:owner_follow_up:1", text: str = "Call the customer back today") -> Message:
    return Message(
        key=key,
        customer_id="c1",
        channel="task",
        text=text,
        subject="Follow-up due",
        rule="owner_follow_up",
        purpose="service",
    )


# -- the conformance kit, one receiver per preset ---------------------------------------------


class _Kit(ChannelContract):
    preset: Literal["json", "wecom", "dingtalk"]
    rx: Receiver

    @pytest.fixture(autouse=True)
    def _receiver(self) -> Iterator[None]:
        with receiver(self.preset) as rx:
            self.rx = rx
            yield

    def secret(self) -> str | None:
        return {"json": SECRET, "wecom": None, "dingtalk": DINGTALK_SECRET}[self.preset]

    def make_channel(self) -> Channel:
        return WebhookChannel(self.rx.url(), preset=self.preset, secret=self.secret(), timeout=5)

    def delivered(self, channel: Channel) -> list[str] | None:
        return list(self.rx.accepted)

    def make_failing_channel(self, kind: Literal["transient", "permanent"]) -> Channel | None:
        if kind == "transient":  # nothing listens there: the connection is refused
            return WebhookChannel(
                f"http://127.0.0.1:{free_port()}/hook", preset=self.preset, secret=self.secret()
            )
        if self.preset == "wecom":  # a key the robot does not know
            return WebhookChannel(
                self.rx.url("/cgi-bin/webhook/send?key=wrong"), preset="wecom", timeout=5
            )
        return WebhookChannel(self.rx.url(), preset=self.preset, secret="not-the-secret", timeout=5)


class TestGenericWebhookChannel(_Kit):
    preset = "json"


class TestWeComWebhookChannel(_Kit):
    preset = "wecom"


class TestDingTalkWebhookChannel(_Kit):
    preset = "dingtalk"


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with receiver("json") as r:
        yield r


# -- formats and signatures -------------------------------------------------------------------


def test_the_generic_body_is_the_json_lines_record_and_is_signed(rx: Receiver) -> None:
    c = WebhookChannel(rx.url(), secret=SECRET, clock=FixedClock(T0))
    rx.answer = (200, {}, b"")
    c.send(task(), idempotency_key="c1:owner_follow_up:1")
    (r,) = rx.received
    body = r.json()
    assert body["key"] == "c1:owner_follow_up:1"
    assert body["text"] == "Call the customer back today"
    assert body["channel"] == "task"
    assert r.key == "c1:owner_follow_up:1"
    assert r.headers[TIMESTAMP_HEADER.lower()] == str(int(T0.timestamp()))
    assert verify_signature(
        SECRET,
        r.body,
        timestamp=r.headers[TIMESTAMP_HEADER.lower()],
        signature=r.headers[SIGNATURE_HEADER.lower()],
        now=T0 + timedelta(seconds=3),
    )
    # The same record as the JSON-lines handoff file writes: one shape for both.
    assert set(body) == {
        "key",
        "customer_id",
        "channel",
        "address",
        "lang",
        "subject",
        "text",
        "purpose",
        "rule",
        "template",
        "payload",
    }


def test_an_unsigned_channel_sends_no_signature_headers(rx: Receiver) -> None:
    rx.answer = (200, {}, b"")
    WebhookChannel(rx.url()).send(task(), idempotency_key="k1")
    (r,) = rx.received
    assert SIGNATURE_HEADER.lower() not in r.headers
    assert TIMESTAMP_HEADER.lower() not in r.headers


def test_the_receiver_refuses_a_wrong_secret_permanently(rx: Receiver) -> None:
    c = WebhookChannel(rx.url(), secret="wrong")
    with pytest.raises(PermanentChannelError, match="HTTP 401"):
        c.send(task(), idempotency_key="k1")
    assert rx.accepted == []


def test_wecom_markdown_and_text_bodies() -> None:
    md = WebhookChannel("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", preset="wecom")
    body = md.body(task(), "k1")
    assert body["msgtype"] == "markdown"
    assert set(body) == {"msgtype", "markdown"}
    content = body["markdown"]["content"]
    assert content.startswith("**Follow-up due**\nCall the customer back today")
    assert "c1" in content
    text = WebhookChannel(
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
        preset="wecom",
        msgtype="text",
        mention=["zhangsan", "@all"],
    ).body(task(), "k1")
    assert text["msgtype"] == "text"
    assert text["text"]["mentioned_list"] == ["zhangsan", "@all"]
    assert text["text"]["content"].startswith("Follow-up due\nCall the customer back today")


@pytest.mark.parametrize("msgtype", ["markdown", "text"])
def test_wecom_content_is_cut_to_the_robots_byte_limit(
    msgtype: Literal["markdown", "text"],
) -> None:
    with receiver("wecom") as rx:
        c = WebhookChannel(rx.url(), preset="wecom", msgtype=msgtype, mention=["lisi"])
        c.send(task(text="跟进客户。" * 2000), idempotency_key="k1")
        assert rx.accepted == ["k1"]  # the receiver checks the limit
        content = rx.received[0].json()[msgtype]["content"]
        assert len(content.encode()) <= (4096 if msgtype == "markdown" else 2048)
        assert "…" in content
        if msgtype == "markdown":
            assert content.endswith("<@lisi>")  # the mention survives the cut


def test_dingtalk_markdown_body_and_signed_query() -> None:
    with receiver("dingtalk") as rx:
        clock = FixedClock(SystemClock().now())
        c = WebhookChannel(rx.url(), preset="dingtalk", secret=DINGTALK_SECRET, clock=clock)
        c.send(task(), idempotency_key="k1")
        (r,) = rx.received
        assert rx.accepted == ["k1"]
        body = r.json()
        assert body["msgtype"] == "markdown"
        assert body["markdown"]["title"] == "Follow-up due"
        assert "Call the customer back today" in body["markdown"]["text"]
        assert r.query["access_token"] == [DINGTALK_TOKEN]
        stamp = int(r.query["timestamp"][0])
        assert stamp == int(clock.now().timestamp() * 1000)


def test_dingtalk_sign_is_base64_of_the_hmac_of_timestamp_newline_secret() -> None:
    expected = base64.b64encode(
        hmac.new(b"SECxyz", b"1700000000000\nSECxyz", hashlib.sha256).digest()
    ).decode()
    assert dingtalk_sign("SECxyz", 1700000000000) == expected


def test_a_dingtalk_robot_without_a_secret_gets_no_signature() -> None:
    c = WebhookChannel("https://oapi.dingtalk.com/robot/send?access_token=t", preset="dingtalk")
    assert c._target(T0) == "/robot/send?access_token=t"


# -- verify_signature -------------------------------------------------------------------------


def test_verify_signature_refuses_tampering_staleness_and_garbage() -> None:
    body = b'{"key": "k1"}'
    stamp = str(int(T0.timestamp()))
    good = sign("s3cret", stamp, body)
    assert good.startswith("sha256=")
    assert verify_signature("s3cret", body, timestamp=stamp, signature=good, now=T0)
    assert not verify_signature("s3cret", body + b" ", timestamp=stamp, signature=good, now=T0)
    assert not verify_signature("other", body, timestamp=stamp, signature=good, now=T0)
    later = T0 + timedelta(minutes=6)
    assert not verify_signature("s3cret", body, timestamp=stamp, signature=good, now=later)
    assert verify_signature(
        "s3cret", body, timestamp=stamp, signature=good, now=later, tolerance=timedelta(minutes=10)
    )
    assert not verify_signature("s3cret", body, timestamp="soon", signature=good, now=T0)
    assert not verify_signature("s3cret", body, timestamp=stamp, signature="sha256=00", now=T0)


@given(
    secret=st.text(min_size=1, max_size=40),
    body=st.binary(max_size=200),
    flip=st.integers(min_value=0, max_value=10_000),
)
def test_a_signature_verifies_exactly_its_own_body(secret: str, body: bytes, flip: int) -> None:
    stamp = str(int(T0.timestamp()))
    signature = sign(secret, stamp, body)
    assert verify_signature(secret, body, timestamp=stamp, signature=signature, now=T0)
    if body:
        i = flip % len(body)
        changed = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
        assert not verify_signature(secret, changed, timestamp=stamp, signature=signature, now=T0)
    other = str(int(T0.timestamp()) + 1)
    assert not verify_signature(secret, body, timestamp=other, signature=signature, now=T0)


# -- replies and their kinds ------------------------------------------------------------------

STATUS_KINDS: list[tuple[int, type[Exception] | None]] = [
    (200, None),
    (201, None),
    (202, None),
    (204, None),
    (408, TransientChannelError),
    (425, TransientChannelError),
    (429, TransientChannelError),
    (500, TransientChannelError),
    (502, TransientChannelError),
    (503, TransientChannelError),
    (504, TransientChannelError),
    (301, PermanentChannelError),
    (302, PermanentChannelError),
    (400, PermanentChannelError),
    (401, PermanentChannelError),
    (403, PermanentChannelError),
    (404, PermanentChannelError),
    (410, PermanentChannelError),
    (413, PermanentChannelError),
    (422, PermanentChannelError),
]


@pytest.mark.parametrize(("status", "kind"), STATUS_KINDS, ids=[str(s) for s, _ in STATUS_KINDS])
def test_http_statuses_map_to_their_kind(
    rx: Receiver, status: int, kind: type[Exception] | None
) -> None:
    rx.answer = (status, {}, b"")
    c = WebhookChannel(rx.url())
    if kind is None:
        assert c.send(task(), idempotency_key="k1") is not None
    else:
        with pytest.raises(kind, match=f"HTTP {status}"):
            c.send(task(), idempotency_key="k1")


def test_retry_after_in_seconds_and_as_a_date(rx: Receiver) -> None:
    c = WebhookChannel(rx.url(), clock=FixedClock(T0))
    rx.answer = (429, {"Retry-After": "120"}, b"")
    with pytest.raises(TransientChannelError) as info:
        c.send(task(), idempotency_key="k1")
    assert info.value.retry_after == timedelta(seconds=120)
    rx.answer = (503, {"Retry-After": "Sun, 01 Mar 2026 10:30:00 GMT"}, b"")
    with pytest.raises(TransientChannelError) as info:
        c.send(task(), idempotency_key="k1")
    assert info.value.retry_after == timedelta(minutes=30)
    rx.answer = (503, {"Retry-After": "whenever"}, b"")
    with pytest.raises(TransientChannelError) as info:
        c.send(task(), idempotency_key="k1")
    assert info.value.retry_after is None
    rx.answer = (503, {"Retry-After": "99999999"}, b"")
    with pytest.raises(TransientChannelError) as info:
        c.send(task(), idempotency_key="k1")
    assert info.value.retry_after == timedelta(days=1)  # capped


def test_a_refused_connection_is_transient_and_names_no_secret() -> None:
    c = WebhookChannel(f"http://127.0.0.1:{free_port()}/h?token=TOPSECRET")
    with pytest.raises(TransientChannelError, match="not sent") as info:
        c.send(task(), idempotency_key="k1")
    assert "TOPSECRET" not in str(info.value)


def test_no_answer_after_sending_is_in_doubt(rx: Receiver) -> None:
    rx.delay = 1.0
    c = WebhookChannel(rx.url(), secret=SECRET, timeout=0.2)
    with pytest.raises(InDoubtChannelError, match="may have arrived"):
        c.send(task(), idempotency_key="k1")
    assert [r.key for r in rx.received] == ["k1"]  # it did arrive


@pytest.mark.parametrize(
    ("preset", "code", "kind"),
    [
        ("wecom", 45009, TransientChannelError),
        ("wecom", -1, TransientChannelError),
        ("wecom", 93000, PermanentChannelError),
        ("wecom", 40058, PermanentChannelError),
        ("dingtalk", 130101, TransientChannelError),
        ("dingtalk", 410100, TransientChannelError),
        ("dingtalk", 310000, PermanentChannelError),
        ("dingtalk", 300001, PermanentChannelError),
    ],
)
def test_robot_errcodes_map_to_their_kind(
    preset: Literal["wecom", "dingtalk"], code: int, kind: type[Exception]
) -> None:
    with receiver(preset) as rx:
        rx.answer = (200, {}, json.dumps({"errcode": code, "errmsg": "said"}).encode())
        with pytest.raises(kind, match=f"errcode {code}"):
            WebhookChannel(rx.url(), preset=preset).send(task(), idempotency_key="k1")


def test_a_robot_reply_without_errcode_is_in_doubt() -> None:
    with receiver("wecom") as rx:
        rx.answer = (200, {}, b"<html>proxy</html>")
        with pytest.raises(InDoubtChannelError):
            WebhookChannel(rx.url(), preset="wecom").send(task(), idempotency_key="k1")


def test_a_closed_channel_refuses_to_send(rx: Receiver) -> None:
    c = WebhookChannel(rx.url())
    c.close()
    with pytest.raises(PermanentChannelError, match="closed"):
        c.send(task(), idempotency_key="k1")
    assert rx.received == []


def test_a_key_that_cannot_be_a_header_is_permanent_and_nothing_is_sent(rx: Receiver) -> None:
    with pytest.raises(PermanentChannelError, match="nothing sent"):
        WebhookChannel(rx.url()).send(task(), idempotency_key="k1\r\nX-Evil: 1")
    assert rx.received == []


# -- through the dispatcher: in doubt and Retry-After ---------------------------------------------


def _shop(channel: str = "task") -> MemoryStore:
    store = MemoryStore()
    contact = ContactPoint(channel="email", address="c1@example.com")
    store.append(
        [CustomerRegistered(customer_id="c1", at=T0, profile=Profile(contacts=(contact,)))],
        outbox=[
            OutboxEntry(
                key="c1:order_update:o1",
                customer_id="c1",
                channel=channel,
                due_at=T0,
                rule="order_update",
                purpose="transactional",
                template="order_update",
                text_en="Your order has shipped.",
                subject_en="Shipped",
            )
        ],
    )
    return store


def test_the_dispatcher_reports_an_unanswered_send_in_doubt_and_does_not_resend(
    rx: Receiver,
) -> None:
    rx.delay = 1.0
    c = WebhookChannel(rx.url(), secret=SECRET, timeout=0.2)
    store = _shop()
    now = T0 + timedelta(minutes=1)
    (result,) = dispatch(store, {"task": c}, Policy(), now, worker="w1").results
    assert result.outcome is DispatchOutcome.IN_DOUBT
    assert result.reason.code == "dispatch.unanswered"
    assert "may have arrived" in result.reason.text("en")
    assert len(dispatch(store, {"task": c}, Policy(), now + timedelta(hours=1), worker="w2")) == 0
    assert len(rx.received) == 1


def test_an_unanswered_send_is_retried_when_the_receiver_deduplicates(rx: Receiver) -> None:
    rx.delay = 1.0
    c = WebhookChannel(rx.url(), secret=SECRET, timeout=0.2, deduplicates=True)
    (result,) = dispatch(_shop(), {"task": c}, Policy(), T0, worker="w1").results
    assert result.outcome is DispatchOutcome.RETRY


def test_the_dispatcher_waits_at_least_as_long_as_retry_after() -> None:
    def busy(message: Message) -> None:
        raise TransientChannelError("HTTP 429", retry_after=timedelta(hours=2))

    policy = Policy(dispatch=DispatchPolicy(backoff_base_seconds=60))
    (result,) = dispatch(
        _shop(), {"task": MemoryChannel("task", handler=busy)}, policy, T0, worker="w1"
    ).results
    assert result.outcome is DispatchOutcome.RETRY
    assert result.next_attempt_at == T0 + timedelta(hours=2)

    def short(message: Message) -> None:
        raise TransientChannelError("HTTP 429", retry_after=timedelta(seconds=1))

    (result,) = dispatch(
        _shop(), {"task": MemoryChannel("task", handler=short)}, policy, T0, worker="w1"
    ).results
    assert result.next_attempt_at is not None
    assert result.next_attempt_at > T0 + timedelta(seconds=1)  # the backoff is longer


# -- construction, URLs and secrets -----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "ftp://example.com/hook",
        "https:///nohost",
        "https://user:pw@example.com/hook",
        "https://example.com/hook#frag",
        "https://example.com/ho ok",
        "",
        "not a url",
        "https://example.com:99999/hook",
    ],
)
def test_a_url_a_webhook_may_not_post_to_is_refused(url: str) -> None:
    with pytest.raises(InvalidArgument, match="'url'") as info:
        WebhookChannel(url)
    if "pw" in url:
        assert "pw" not in str(info.value)


def test_plain_http_is_allowed_to_this_machine_only() -> None:
    for url in ("http://127.0.0.1:8080/h", "http://localhost/h", "http://[::1]:9/h"):
        WebhookChannel(url)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"preset": "slack"}, "preset"),
        ({"msgtype": "card"}, "msgtype"),
        ({"preset": "wecom", "secret": "s"}, "secret"),
        ({"secret": ""}, "secret"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"preset": "dingtalk", "deduplicates": True}, "deduplicates"),
        ({"mention": "zhangsan"}, "mention"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_settings_name_their_argument(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        WebhookChannel("https://example.com/hook", **kwargs)
    assert info.value.argument == argument


def test_the_repr_and_errors_hold_no_secret() -> None:
    c = WebhookChannel(
        "https://oapi.dingtalk.com/robot/send?access_token=TOKEN123",
        preset="dingtalk",
        secret="SECRET456",
    )
    text = repr(c)
    assert "TOKEN123" not in text
    assert "SECRET456" not in text
    assert "oapi.dingtalk.com" in text
    wecom = WebhookChannel(
        f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={WECOM_KEY}", preset="wecom"
    )
    assert WECOM_KEY not in repr(wecom)


def test_robot_errors_hold_no_key() -> None:
    with receiver("wecom") as rx:
        c = WebhookChannel(rx.url("/cgi-bin/webhook/send?key=LEAKME"), preset="wecom")
        with pytest.raises(PermanentChannelError) as info:
            c.send(task(), idempotency_key="k1")
    assert "LEAKME" not in str(info.value)
    assert "93000" in str(info.value)


# -- channels from TOML -----------------------------------------------------------------------


def test_channels_from_toml_route_tasks_to_a_robot_with_the_url_from_the_environment() -> None:
    text = """
[channels.task]
type = "webhook"
preset = "wecom"
url_env = "WECOM_URL"
msgtype = "text"
mention = ["zhangsan"]
timeout_seconds = 5

[channels.escalation]
type = "webhook"
preset = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send?access_token=t"
secret_env = "DINGTALK_SECRET"

[channels.email]
type = "smtp"
host = "smtp.example.com"
sender = "shop@example.com"
username = "shop"
password_env = "SMTP_PASSWORD"

[channels.sms]
type = "file"
path = "/tmp/sms.jsonl"

[channels.wechat]
type = "console"
"""
    env = {
        "WECOM_URL": f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={WECOM_KEY}",
        "DINGTALK_SECRET": "SEC1",
        "SMTP_PASSWORD": "pw",
    }
    channels = channels_from_toml(text, env=env)
    assert sorted(channels) == ["email", "escalation", "sms", "task", "wechat"]
    t = channels["task"]
    assert isinstance(t, WebhookChannel)
    assert (t.name, t.preset, t.msgtype, t.mention, t.timeout) == (
        "task",
        "wecom",
        "text",
        ("zhangsan",),
        5.0,
    )
    assert isinstance(channels["email"], SMTPChannel)
    assert isinstance(channels["sms"], JsonLinesChannel)
    assert channels["sms"].deduplicates
    assert all(isinstance(c, Channel) for c in channels.values())


@pytest.mark.parametrize(
    ("table", "env", "argument"),
    [
        ({"type": "pigeon"}, {}, "channels.task.type"),
        ({"type": "webhook"}, {}, "channels.task.url"),
        ({"type": "webhook", "url_env": "NOPE"}, {}, "channels.task.url_env"),
        (
            {"type": "webhook", "url": "https://x.example/h", "colour": "red"},
            {},
            "channels.task.colour",
        ),
        ({"type": "webhook", "url": "http://x.example/h?key=SECRETKEY"}, {}, "channels.task.url"),
        (
            {"type": "webhook", "url": "https://x.example/h", "timeout_seconds": "5"},
            {},
            "channels.task.timeout_seconds",
        ),
        (
            {"type": "webhook", "url": "https://x.example/h", "timeout_seconds": -1},
            {},
            "channels.task.timeout_seconds",
        ),
        (
            {"type": "webhook", "url": "https://x.example/h", "preset": "wecom", "secret": "s"},
            {},
            "channels.task.secret",
        ),
        (
            {"type": "webhook", "url": "https://x.example/h", "secret": "a", "secret_env": "S"},
            {"S": "b"},
            "channels.task.secret_env",
        ),
        ({"type": "smtp", "sender": "a@example.com"}, {}, "channels.task.host"),
        ({"type": "file"}, {}, "channels.task.path"),
    ],
)
def test_a_bad_channel_table_names_its_key_and_no_secret(
    table: dict[str, Any], env: dict[str, str], argument: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        channels_from_dict({"channels": {"task": table}}, env=env)
    assert info.value.argument == argument
    assert "SECRETKEY" not in str(info.value)


def test_a_channels_file_with_a_stray_table_or_bad_toml_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="'task'"):
        channels_from_dict({"task": {"type": "console"}})
    with pytest.raises(InvalidArgument, match="line"):
        channels_from_toml("[channels.task\ntype = 1")


def test_the_command_line_routes_a_channel_to_a_webhook(
    tmp_path: Path, rx: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(tmp_path / "d.db")
    out = io.StringIO()
    assert main(["demo", "--customers", "200", "--db", db], out=out) == 0
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    conf = tmp_path / "channels.toml"
    conf.write_text(
        f'[channels.sms]\ntype = "webhook"\nurl = "{rx.url()}"\nsecret_env = "HOOK_SECRET"\n',
        encoding="utf-8",
    )
    out = io.StringIO()
    argv = ["dispatch", "--db", db, "--at", "2026-11-03T12:00+08:00", "--channels", str(conf)]
    assert main([*argv, "--format", "json"], out=out) == 0
    sent = [r["key"] for r in json.loads(out.getvalue()) if r["outcome"] == "sent"]
    assert sent
    assert sorted(rx.accepted) == sorted(sent)  # each signed and checked by the receiver


def test_a_bad_channels_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "d.db")
    assert main(["demo", "--customers", "20", "--db", db], out=io.StringIO()) == 0
    conf = tmp_path / "channels.toml"
    conf.write_text('[channels.task]\ntype = "webhook"\nurl = "http://x.example/h?key=K9"\n')
    code = main(["dispatch", "--db", db, "--channels", str(conf)], out=io.StringIO())
    err = capsys.readouterr().err
    assert code != 0
    assert "channels.task.url" in err
    assert "K9" not in err
    assert "Traceback" not in err


def test_dingtalk_mentions_go_in_at_and_in_the_text() -> None:
    c = WebhookChannel(
        "https://oapi.dingtalk.com/robot/send?access_token=t",
        preset="dingtalk",
        mention=["manager01", "@all"],
    )
    body = c.body(task(), "k1")
    assert body["at"] == {"atUserIds": ["manager01"], "isAtAll": True}
    assert body["markdown"]["text"].endswith(" @manager01")


def test_a_retry_after_survives_pickling() -> None:
    error = TransientChannelError("HTTP 429", retry_after=timedelta(seconds=30))
    back = pickle.loads(pickle.dumps(error))
    assert (type(back), str(back), back.retry_after) == (
        TransientChannelError,
        "HTTP 429",
        timedelta(seconds=30),
    )
    assert InDoubtChannelError("no answer").args == ("no answer",)
