"""The built-in channels pass the channel contract; SMTP runs against a real local server."""

from __future__ import annotations

import asyncio
import io
import json
import smtplib
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from pathlib import Path
from typing import Any, Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from lifecycle.adapters.channels import ConsoleChannel, JsonLinesChannel, MemoryChannel
from lifecycle.adapters.smtp import SMTPChannel
from lifecycle.errors import PermanentChannelError, TransientChannelError
from lifecycle.ports import Channel, Message
from lifecycle.testing.channel import ChannelContract

# -- memory -------------------------------------------------------------------------------------


class TestMemoryChannel(ChannelContract):
    def make_channel(self) -> Channel:
        return MemoryChannel()

    def delivered(self, channel: Channel) -> list[str]:
        assert isinstance(channel, MemoryChannel)
        return channel.keys()

    def make_failing_channel(self, kind: Literal["transient", "permanent"]) -> Channel:
        error = TransientChannelError if kind == "transient" else PermanentChannelError

        def fail(message: Message) -> None:
            raise error("simulated")

        return MemoryChannel(handler=fail)


class TestMemoryChannelWithoutDeduplication(TestMemoryChannel):
    def make_channel(self) -> Channel:
        return MemoryChannel(deduplicates=False)


# -- console ------------------------------------------------------------------------------------


class TestConsoleChannel(ChannelContract):
    def make_channel(self) -> Channel:
        self.stream = io.StringIO()
        return ConsoleChannel(stream=self.stream)

    def delivered(self, channel: Channel) -> list[str]:
        return [line.rsplit("(key ", 1)[1][:-1] for line in self.stream.getvalue().splitlines()]


def test_the_console_channel_writes_to_standard_output_by_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ConsoleChannel().send(ChannelContract().message(), idempotency_key="k1")
    assert "c1" in capsys.readouterr().out


def test_a_closed_stream_is_a_transient_failure() -> None:
    stream = io.StringIO()
    stream.close()
    with pytest.raises(TransientChannelError):
        ConsoleChannel(stream=stream).send(ChannelContract().message(), idempotency_key="k1")


# -- JSON lines ---------------------------------------------------------------------------------


class TestJsonLinesChannel(ChannelContract):
    deduplicate = False

    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path: Path) -> None:
        self.folder = tmp_path

    def make_channel(self) -> Channel:
        return JsonLinesChannel(self.folder / "out.jsonl", deduplicate=self.deduplicate)

    def delivered(self, channel: Channel) -> list[str]:
        path = self.folder / "out.jsonl"
        if not path.exists():
            return []
        return [json.loads(line)["key"] for line in path.read_text("utf-8").splitlines()]

    def make_failing_channel(self, kind: Literal["transient", "permanent"]) -> Channel | None:
        if kind == "permanent":
            return None
        return JsonLinesChannel(self.folder / "missing-folder" / "out.jsonl")


class TestJsonLinesChannelWithDeduplication(TestJsonLinesChannel):
    deduplicate = True


def test_each_line_is_one_whole_json_object_with_the_message(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    channel = JsonLinesChannel(path)
    channel.send(ChannelContract().message(), idempotency_key="c1:care:o1")
    (record,) = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert record["key"] == "c1:care:o1"
    assert record["text"] == "Your order has shipped. 您的订单已发货。"
    assert record["address"] == "customer@example.com"


def test_deduplication_sees_keys_written_by_another_channel_object(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    m = ChannelContract().message()
    assert not JsonLinesChannel(path, deduplicate=True).send(m, idempotency_key=m.key).duplicate
    assert JsonLinesChannel(path, deduplicate=True).send(m, idempotency_key=m.key).duplicate
    assert len(path.read_text("utf-8").splitlines()) == 1


def test_threads_appending_to_one_file_never_interleave_lines(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"

    def write(n: int) -> None:
        channel = JsonLinesChannel(path)
        for i in range(50):
            m = ChannelContract().message(key=f"k{n}-{i}")
            channel.send(m, idempotency_key=m.key)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    keys = [json.loads(line)["key"] for line in path.read_text("utf-8").splitlines()]
    assert sorted(keys) == sorted(f"k{n}-{i}" for n in range(4) for i in range(50))


# -- SMTP ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Inbox:
    """An aiosmtpd handler that keeps what arrives, or answers with a scripted failure."""

    def __init__(self) -> None:
        self.mails: list[Any] = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.rcpt_reply is not None:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply is not None:
            return self.data_reply
        self.mails.append(message_from_bytes(envelope.content))
        return "250 Message accepted"

    def keys(self) -> list[str]:
        return [str(m["X-Idempotency-Key"]) for m in self.mails]


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"shop", b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="session")
def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, certificate))
    return context


@pytest.fixture(scope="session")
def client_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


class Server:
    def __init__(self, inbox: Inbox, port: int):
        self.inbox = inbox
        self.port = port


@contextmanager
def _serving(inbox: Inbox, **kwargs: Any) -> Iterator[Server]:
    """A real SMTP server on a free 127.0.0.1 port, with its event loop closed afterwards."""
    loop = asyncio.new_event_loop()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(), loop=loop, **kwargs)
    controller.start()
    try:
        yield Server(inbox, controller.port)
    finally:
        controller.stop()
        loop.close()


@pytest.fixture
def plain_server() -> Iterator[Server]:
    with _serving(Inbox()) as server:
        yield server


@pytest.fixture
def starttls_server(server_tls: ssl.SSLContext) -> Iterator[Server]:
    kwargs = {
        "tls_context": server_tls,
        "require_starttls": True,
        "authenticator": _authenticate,
    }
    with _serving(Inbox(), **kwargs) as server:
        yield server


@pytest.fixture
def ssl_server(server_tls: ssl.SSLContext) -> Iterator[Server]:
    kwargs = {"authenticator": _authenticate, "auth_require_tls": False}
    with _serving(Inbox(), ssl_context=server_tls, **kwargs) as server:
        yield server


class TestSMTPChannel(ChannelContract):
    @pytest.fixture(autouse=True)
    def _server(self, starttls_server: Server, client_tls: ssl.SSLContext) -> None:
        self.server = starttls_server
        self.tls = client_tls

    def make_channel(self) -> Channel:
        return SMTPChannel(
            "127.0.0.1",
            self.server.port,
            sender="shop@example.com",
            username="shop",
            password="s3cret",
            ssl_context=self.tls,
            timeout=5,
        )

    def delivered(self, channel: Channel) -> list[str]:
        return self.server.inbox.keys()

    def make_failing_channel(self, kind: Literal["transient", "permanent"]) -> Channel:
        self.server.inbox.data_reply = (
            "451 4.3.0 try again later" if kind == "transient" else "554 5.6.0 rejected"
        )
        return self.make_channel()


def _mail() -> Message:
    return ChannelContract().message()


def test_starttls_with_login_delivers_one_mail_with_subject_and_ids(
    starttls_server: Server, client_tls: ssl.SSLContext
) -> None:
    channel = SMTPChannel(
        "127.0.0.1",
        starttls_server.port,
        sender="shop@example.com",
        username="shop",
        password="s3cret",
        ssl_context=client_tls,
        timeout=5,
    )
    result = channel.send(_mail(), idempotency_key="c1:care:o1")
    (mail,) = starttls_server.inbox.mails
    assert mail["To"] == "customer@example.com"
    assert mail["Subject"] == "Shipped"
    assert mail["Message-ID"] == result.provider_id
    assert "您的订单已发货" in mail.get_payload(decode=True).decode("utf-8")


def test_implicit_tls_delivers(ssl_server: Server, client_tls: ssl.SSLContext) -> None:
    channel = SMTPChannel(
        "127.0.0.1",
        ssl_server.port,
        sender="shop@example.com",
        security="ssl",
        username="shop",
        password="s3cret",
        ssl_context=client_tls,
        timeout=5,
    )
    channel.send(_mail(), idempotency_key="c1:care:o1")
    assert ssl_server.inbox.keys() == ["c1:care:o1"]


def test_a_plain_server_delivers_without_tls(plain_server: Server) -> None:
    channel = SMTPChannel("127.0.0.1", plain_server.port, sender="s@example.com", security="none")
    channel.send(_mail(), idempotency_key="k1")
    assert plain_server.inbox.keys() == ["k1"]


@pytest.mark.parametrize(
    ("rcpt", "data", "expected"),
    [
        ("450 4.2.1 mailbox busy", None, TransientChannelError),
        ("550 5.1.1 no such user", None, PermanentChannelError),
        (None, "451 4.3.0 try again later", TransientChannelError),
        (None, "552 5.3.4 message too big", PermanentChannelError),
    ],
)
def test_smtp_replies_map_4xx_to_transient_and_5xx_to_permanent(
    plain_server: Server, rcpt: str | None, data: str | None, expected: type[Exception]
) -> None:
    plain_server.inbox.rcpt_reply, plain_server.inbox.data_reply = rcpt, data
    channel = SMTPChannel("127.0.0.1", plain_server.port, sender="s@example.com", security="none")
    with pytest.raises(expected):
        channel.send(_mail(), idempotency_key="k1")
    assert plain_server.inbox.mails == []


def test_a_wrong_password_is_permanent(starttls_server: Server, client_tls: ssl.SSLContext) -> None:
    channel = SMTPChannel(
        "127.0.0.1",
        starttls_server.port,
        sender="s@example.com",
        username="shop",
        password="wrong",
        ssl_context=client_tls,
        timeout=5,
    )
    with pytest.raises(PermanentChannelError):
        channel.send(_mail(), idempotency_key="k1")


def test_an_untrusted_certificate_is_permanent(starttls_server: Server) -> None:
    channel = SMTPChannel("127.0.0.1", starttls_server.port, sender="s@example.com", timeout=5)
    with pytest.raises(PermanentChannelError):
        channel.send(_mail(), idempotency_key="k1")


def test_a_server_without_starttls_is_permanent(plain_server: Server) -> None:
    channel = SMTPChannel("127.0.0.1", plain_server.port, sender="s@example.com", timeout=5)
    with pytest.raises(PermanentChannelError):
        channel.send(_mail(), idempotency_key="k1")


def test_a_refused_connection_is_transient() -> None:
    channel = SMTPChannel("127.0.0.1", _free_port(), sender="s@example.com", security="none")
    with pytest.raises(TransientChannelError):
        channel.send(_mail(), idempotency_key="k1")


def test_a_silent_server_times_out_as_transient() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        channel = SMTPChannel(
            "127.0.0.1", port, sender="s@example.com", security="none", timeout=0.2
        )
        with pytest.raises(TransientChannelError):
            channel.send(_mail(), idempotency_key="k1")


def test_a_customer_without_an_address_is_permanent() -> None:
    channel = SMTPChannel("127.0.0.1", 25, sender="s@example.com")
    m = ChannelContract().message()
    with pytest.raises(PermanentChannelError):
        channel.send(
            Message(key=m.key, customer_id="c1", channel="email", text="hi"), idempotency_key="k"
        )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (smtplib.SMTPServerDisconnected("gone"), TransientChannelError),
        (smtplib.SMTPConnectError(421, b"busy"), TransientChannelError),
        (smtplib.SMTPConnectError(554, b"go away"), PermanentChannelError),
        (smtplib.SMTPAuthenticationError(454, b"temp"), TransientChannelError),
        (smtplib.SMTPAuthenticationError(535, b"bad"), PermanentChannelError),
        (smtplib.SMTPRecipientsRefused({"a@b": (451, b"later")}), TransientChannelError),
        (smtplib.SMTPRecipientsRefused({"a@b": (550, b"no")}), PermanentChannelError),
        (smtplib.SMTPNotSupportedError("no starttls"), PermanentChannelError),
        (TimeoutError("timed out"), TransientChannelError),
        (ConnectionResetError("reset"), TransientChannelError),
    ],
)
def test_every_smtplib_error_is_translated(
    monkeypatch: pytest.MonkeyPatch, error: Exception, expected: type[Exception]
) -> None:
    channel = SMTPChannel("127.0.0.1", 25, sender="s@example.com", security="none")

    def boom() -> smtplib.SMTP:
        raise error

    monkeypatch.setattr(channel, "_connect", boom)
    with pytest.raises(expected) as info:
        channel.send(_mail(), idempotency_key="k1")
    assert info.value.__cause__ is error


def test_smtp_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="security"):
        SMTPChannel("h", sender="s@example.com", security="tls")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="password"):
        SMTPChannel("h", sender="s@example.com", username="u")
    assert SMTPChannel("h", sender="s@example.com", security="ssl").port == 465
    assert SMTPChannel("h", sender="s@example.com").port == 587
