"""Built-in channels: memory (for tests), console, and a JSON-lines file.

Each keeps the :class:`~lifecycle.ports.Channel` contract; the SMTP e-mail channel lives in
:mod:`lifecycle.adapters.smtp`.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import IO, Any

from lifecycle.errors import PermanentChannelError, TransientChannelError
from lifecycle.ports import Message, SendResult

try:  # POSIX: whole lines and cross-process deduplication under an advisory lock
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["ConsoleChannel", "JsonLinesChannel", "MemoryChannel", "message_record"]


class MemoryChannel:
    """Records every accepted message in ``.sent``; the reference channel and a test fake.

    Args:
        name: the channel's name.
        deduplicates: when true (the default), a key already in ``.sent`` is dropped and
            reported as a duplicate; when false, a repeat is recorded again, so tests can see it.
        handler: called with each message before it is accepted; raise a ``ChannelError``
            kind from it to simulate a failure.
    """

    def __init__(
        self,
        name: str = "memory",
        *,
        deduplicates: bool = True,
        handler: Callable[[Message], None] | None = None,
    ):
        self._name = name
        self._deduplicates = deduplicates
        self.handler = handler
        self.sent: list[Message] = []
        self.calls = 0
        self._keys: set[str] = set()
        self._lock = threading.Lock()
        self.closed = False

    @property
    def name(self) -> str:
        return self._name

    @property
    def deduplicates(self) -> bool:
        return self._deduplicates

    def send(self, message: Message, *, idempotency_key: str) -> SendResult:
        with self._lock:
            if self.closed:
                raise PermanentChannelError(f"channel {self._name!r} is closed")
            self.calls += 1
            if self.handler is not None:
                self.handler(message)
            if self._deduplicates and idempotency_key in self._keys:
                return SendResult(duplicate=True)
            self._keys.add(idempotency_key)
            self.sent.append(message)
            return SendResult(provider_id=idempotency_key)

    def keys(self) -> list[str]:
        """The idempotency keys of ``.sent``, in order."""
        with self._lock:
            return [m.key for m in self.sent]

    def close(self) -> None:
        self.closed = True

    def __repr__(self) -> str:
        return f"MemoryChannel({self._name!r}, sent={len(self.sent)})"


class ConsoleChannel:
    """Writes one line per message to a text stream (standard output by default).

    For demos and dry runs: nothing leaves the machine. It cannot deduplicate.
    """

    deduplicates = False

    def __init__(self, name: str = "console", *, stream: IO[str] | None = None):
        self._name = name
        self._stream = stream

    @property
    def name(self) -> str:
        return self._name

    def send(self, message: Message, *, idempotency_key: str) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        subject = f" [{message.subject}]" if message.subject else ""
        try:
            stream.write(
                f"{message.channel} -> {message.customer_id}{subject}: {message.text} "
                f"(key {idempotency_key})\n"
            )
            stream.flush()
        except (OSError, ValueError) as e:
            raise TransientChannelError(f"console: {e}") from e

    def close(self) -> None:
        """Nothing to release: the stream belongs to the caller."""

    def __repr__(self) -> str:
        return f"ConsoleChannel({self._name!r})"


def message_record(message: Message, key: str) -> dict[str, Any]:
    """``message`` under ``key`` as one JSON-ready object: the line a
    :class:`JsonLinesChannel` writes and the body a generic webhook posts."""
    return {
        "key": key,
        "customer_id": message.customer_id,
        "channel": message.channel,
        "address": message.address,
        "lang": message.lang,
        "subject": message.subject,
        "text": message.text,
        "purpose": message.purpose,
        "rule": message.rule,
        "template": message.template,
        "payload": dict(message.payload),
    }


class JsonLinesChannel:
    """Appends one JSON object per message to a file, flushed and fsynced before ``send`` returns.

    A handoff file for another system (a queue loader, a mail merge). Several processes may
    share the file: on POSIX each line is written under an exclusive advisory lock, so lines
    never interleave. With ``deduplicate=True`` a key already in the file is dropped (read
    under the same lock), so the channel ``deduplicates``.

    Args:
        path: the file; created if missing, never truncated.
        name: the channel's name.
        deduplicate: drop keys already written (POSIX only).
    """

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        name: str = "file",
        deduplicate: bool = False,
    ):
        if deduplicate and fcntl is None:  # pragma: no cover - Windows
            raise PermanentChannelError("deduplication needs POSIX file locks")
        self.path = Path(path)
        self._name = name
        self._deduplicate = deduplicate
        self._lock = threading.Lock()
        self._keys: set[str] = set()
        self._read_to = 0
        self._closed = False

    @property
    def name(self) -> str:
        return self._name

    @property
    def deduplicates(self) -> bool:
        return self._deduplicate

    def _catch_up(self, fd: int) -> None:
        """Learn the keys written since the last look, by this or another process."""
        size = os.fstat(fd).st_size
        if size <= self._read_to:
            return
        chunk = os.pread(fd, size - self._read_to, self._read_to)
        end = chunk.rfind(b"\n") + 1
        for line in chunk[:end].splitlines():
            try:
                self._keys.add(json.loads(line)["key"])
            except (ValueError, KeyError, TypeError):
                continue  # a foreign or damaged line carries no key to honour
        self._read_to += end

    def send(self, message: Message, *, idempotency_key: str) -> SendResult:
        line = (
            json.dumps(message_record(message, idempotency_key), ensure_ascii=False, sort_keys=True)
            + "\n"
        ).encode("utf-8")
        with self._lock:
            if self._closed:
                raise PermanentChannelError(f"channel {self._name!r} is closed")
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            except OSError as e:
                raise TransientChannelError(f"{self.path}: cannot open: {e.strerror}") from e
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                if self._deduplicate:
                    self._catch_up(fd)
                    if idempotency_key in self._keys:
                        return SendResult(duplicate=True)
                os.write(fd, line)
                os.fsync(fd)
                if self._deduplicate:
                    self._keys.add(idempotency_key)
                return SendResult()
            except OSError as e:
                raise TransientChannelError(f"{self.path}: cannot write: {e.strerror}") from e
            finally:
                os.close(fd)  # closing also releases the lock

    def forget(self, customer_id: str) -> int:
        """Drop ``customer_id``'s personal data from the file: each of their lines keeps its
        key, customer, channel, language, purpose, rule and template (what deduplication and
        an audit need) and loses its address, subject, text and payload.

        :meth:`lifecycle.Lifecycle.erase` calls it for each channel that has it. The file is
        rewritten in place under the same lock the writers take, each line padded to its old
        length so that other processes' read positions stay valid, and fsynced. Copies made
        elsewhere (backups, the receiving system, the file system's free blocks) are the
        host's. Returns how many lines changed.
        """
        with self._lock:
            try:
                fd = os.open(self.path, os.O_RDWR)
            except FileNotFoundError:
                return 0
            except OSError as e:
                raise PermanentChannelError(f"{self.path}: cannot open: {e.strerror}") from e
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                size = os.fstat(fd).st_size
                lines = os.pread(fd, size, 0).split(b"\n")
                changed = 0
                for i, line in enumerate(lines):
                    redacted = _forgotten(line, customer_id)
                    if redacted is not None:
                        lines[i] = redacted
                        changed += 1
                if changed:
                    os.pwrite(fd, b"\n".join(lines), 0)
                    os.fsync(fd)
                return changed
            except OSError as e:
                raise PermanentChannelError(f"{self.path}: cannot rewrite: {e.strerror}") from e
            finally:
                os.close(fd)

    def close(self) -> None:
        self._closed = True

    def __repr__(self) -> str:
        return f"JsonLinesChannel({str(self.path)!r})"


#: What a line of an erased customer keeps empty.
_PERSONAL_FIELDS = {"address": "", "subject": "", "text": "", "payload": {}}


def _forgotten(line: bytes, customer_id: str) -> bytes | None:
    """``line`` without the personal fields, padded with spaces to its length, when it is a
    line of ``customer_id`` that holds any; ``None`` otherwise."""
    try:
        record = json.loads(line)
    except ValueError:
        return None  # a foreign or damaged line
    if not isinstance(record, dict) or record.get("customer_id") != customer_id:
        return None
    present = {k: v for k, v in _PERSONAL_FIELDS.items() if record.get(k) not in (v, None)}
    if not present:
        return None
    record.update(present)
    # Compact: every value became its shortest form, so the line cannot grow.
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(text) > len(line):  # a foreign line written with escapes: blank it whole
        return b" " * len(line)
    return text + b" " * (len(line) - len(text))
