"""E-mail through any SMTP server, on the standard library's :mod:`smtplib`.

Plain, STARTTLS or implicit TLS; optional login; a timeout on every socket operation. SMTP
replies map to the channel errors: 4xx and lost connections are transient, 5xx permanent.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Literal, NoReturn

from lifecycle._bounds import check_address
from lifecycle.errors import (
    ChannelError,
    InvalidEvent,
    PermanentChannelError,
    TransientChannelError,
)
from lifecycle.ports import Message, SendResult

__all__ = ["SMTPChannel"]

Security = Literal["starttls", "ssl", "none"]


def _kind(code: int) -> type[ChannelError]:
    return TransientChannelError if 400 <= code < 500 else PermanentChannelError


def _raise(e: Exception, host: str) -> NoReturn:
    """Translate an smtplib or socket failure into a transient or permanent ChannelError."""
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in e.recipients.values()]
        kind = TransientChannelError if codes and all(400 <= c < 500 for c in codes) else None
        raise (kind or PermanentChannelError)(
            f"smtp {host}: recipient refused ({', '.join(map(str, codes))})"
        ) from e
    if isinstance(e, smtplib.SMTPResponseException):
        raise _kind(e.smtp_code)(f"smtp {host}: {e.smtp_code} {_text(e.smtp_error)}") from e
    if isinstance(e, smtplib.SMTPNotSupportedError):
        raise PermanentChannelError(f"smtp {host}: {e}") from e
    if isinstance(e, ssl.SSLCertVerificationError):
        raise PermanentChannelError(f"smtp {host}: certificate not trusted: {e}") from e
    if isinstance(e, smtplib.SMTPServerDisconnected | smtplib.SMTPException | OSError):
        raise TransientChannelError(f"smtp {host}: {type(e).__name__}: {e}") from e
    raise e  # pragma: no cover - only the kinds above reach here


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


class SMTPChannel:
    """Sends each message as one e-mail; connects for every message and always quits.

    The idempotency key travels as ``X-Idempotency-Key`` and, hashed, as the ``Message-ID``,
    so a receiving system that drops repeated ids drops a resend; SMTP itself cannot
    deduplicate, so ``deduplicates`` is false.

    Args:
        host, port: the server (``port`` defaults to 587, or 465 with ``security="ssl"``).
        sender: the ``From`` address.
        security: ``"starttls"`` (default), ``"ssl"`` (implicit TLS) or ``"none"``.
        username, password: log in with these when given.
        timeout: seconds for connecting and for each reply.
        ssl_context: certificates and protocols for TLS; the system default when ``None``.
        name: the channel's name.
    """

    deduplicates = False

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        sender: str,
        security: Security = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        name: str = "email",
    ):
        if security not in ("starttls", "ssl", "none"):
            raise ValueError(f"security must be 'starttls', 'ssl' or 'none', not {security!r}")
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        self.host = host
        self.port = port if port is not None else (465 if security == "ssl" else 587)
        self.sender = sender
        self.security = security
        self.timeout = timeout
        self._username = username
        self._password = password
        self._context = ssl_context
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def _email(self, message: Message, key: str) -> EmailMessage:
        """The e-mail for ``message``, to its one address; nothing is sent when the address
        is not one addr-spec (a list, a display name, a line break) or a header cannot be
        written: those are permanent failures, and no server was contacted."""
        if not message.address:
            raise PermanentChannelError(
                f"message {message.key!r}: the customer has no e-mail address"
            )
        try:
            check_address("email", message.address)
        except InvalidEvent:
            raise PermanentChannelError(
                f"message {message.key!r}: the address is not one e-mail address; nothing sent"
            ) from None
        try:
            mail = EmailMessage()
            mail["From"] = self.sender
            mail["To"] = message.address
            mail["Subject"] = message.subject or ""
            mail["Date"] = formatdate(localtime=False, usegmt=True)
            domain = self.sender.rpartition("@")[2] or "localhost"
            mail["Message-ID"] = f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"
            mail["X-Idempotency-Key"] = key
            mail.set_content(message.text)
        except (ValueError, TypeError, UnicodeError) as e:  # a header with a line break, ...
            raise PermanentChannelError(
                f"message {message.key!r}: cannot be written as an e-mail ({type(e).__name__}); "
                "nothing sent"
            ) from None
        if len(mail.get_all("To", [])) != 1 or "," in str(mail["To"]):
            raise PermanentChannelError(
                f"message {message.key!r}: more than one recipient; nothing sent"
            )
        return mail

    def _connect(self) -> smtplib.SMTP:
        context = self._context or ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.security == "ssl":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.security == "starttls":
                smtp.starttls(context=context)
            if self._username is not None and self._password is not None:
                smtp.login(self._username, self._password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: Message, *, idempotency_key: str) -> SendResult:
        mail = self._email(message, idempotency_key)
        try:
            smtp = self._connect()
            try:
                smtp.send_message(mail)
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()  # the message was accepted; a failed goodbye changes nothing
        except (smtplib.SMTPException, OSError) as e:
            _raise(e, self.host)
        return SendResult(provider_id=str(mail["Message-ID"]))

    def close(self) -> None:
        """Nothing held between messages."""

    def __repr__(self) -> str:
        return f"SMTPChannel({self.host!r}, {self.port}, security={self.security!r})"
