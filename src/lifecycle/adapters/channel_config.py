"""Channels from a TOML file: which channel name goes where (a webhook, an SMTP server, a
JSON-lines file, the console), with secrets read from environment variables the file names.

::

    [channels.task]                       # owner tasks and escalations
    type = "webhook"
    preset = "wecom"
    url_env = "LIFECYCLE_WECOM_URL"       # the robot's key is in its URL: keep it out of files

An unknown key or a bad value is an :class:`~lifecycle.errors.InvalidArgument` naming the
dotted key (``channels.task.url``); no message repeats a value, so no secret reaches a log.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any, Final

from lifecycle.adapters.channels import ConsoleChannel, JsonLinesChannel
from lifecycle.adapters.smtp import SMTPChannel
from lifecycle.adapters.webhook import WebhookChannel
from lifecycle.errors import InvalidArgument
from lifecycle.ports import Channel

__all__ = ["channels_from_dict", "channels_from_toml", "load_channels"]


class _Table:
    """One channel's table: typed reads that name the dotted key, and a check for leftovers."""

    def __init__(self, where: str, data: Mapping[str, Any], env: Mapping[str, str]):
        self.where = where
        self.data = dict(data)
        self.env = env
        self.used: set[str] = {"type"}

    def key(self, name: str) -> str:
        return f"{self.where}.{name}"

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        self.used.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        if isinstance(value, bool) and kind is not bool:
            raise InvalidArgument("has the wrong type", argument=self.key(name))
        if not isinstance(value, kind):
            raise InvalidArgument("has the wrong type", argument=self.key(name))
        return value

    def secret(self, name: str, *, required: bool = False) -> str | None:
        """``name`` given in the file, or read from the variable ``name_env`` names."""
        literal = self.get(name, str)
        variable = self.get(f"{name}_env", str)
        if literal is not None and variable is not None:
            raise InvalidArgument(
                f"give {name} or {name}_env, not both", argument=self.key(f"{name}_env")
            )
        if variable is not None:
            value = self.env.get(variable)
            if not value:
                raise InvalidArgument(
                    f"the environment variable {variable} is not set",
                    argument=self.key(f"{name}_env"),
                )
            return value
        if required and not literal:
            raise InvalidArgument(f"give {name} or {name}_env", argument=self.key(name))
        return literal  # type: ignore[no-any-return]  # checked to be a str above

    def finish(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            raise InvalidArgument("unknown key", argument=self.key(extra[0]))


def _webhook(name: str, t: _Table) -> Channel:
    url = t.secret("url", required=True)
    assert url is not None
    timeout = t.get("timeout_seconds", (int, float), 10.0)
    mention = t.get("mention", list, [])
    args: dict[str, Any] = {
        "preset": t.get("preset", str, "json"),
        "secret": t.secret("secret"),
        "msgtype": t.get("msgtype", str, "markdown"),
        "mention": mention,
        "timeout": timeout,
        "deduplicates": t.get("deduplicates", bool, False),
    }
    t.finish()
    try:
        return WebhookChannel(url, name=name, **args)
    except InvalidArgument as e:
        known = {"timeout": "timeout_seconds"}.get(e.argument, e.argument)
        raise InvalidArgument(e.detail, argument=t.key(known)) from None


def _smtp(name: str, t: _Table) -> Channel:
    host = t.get("host", str)
    sender = t.get("sender", str)
    if not host:
        raise InvalidArgument("give the SMTP server's host name", argument=t.key("host"))
    if not sender:
        raise InvalidArgument("give the From address", argument=t.key("sender"))
    port = t.get("port", int)
    security = t.get("security", str, "starttls")
    if security not in ("starttls", "ssl", "none"):
        raise InvalidArgument("must be 'starttls', 'ssl' or 'none'", argument=t.key("security"))
    username = t.get("username", str)
    password = t.secret("password")
    if (username is None) != (password is None):
        raise InvalidArgument("give both username and password, or neither", argument=t.where)
    timeout = t.get("timeout_seconds", (int, float), 30.0)
    t.finish()
    return SMTPChannel(
        host,
        port,
        sender=sender,
        security=security,
        username=username,
        password=password,
        timeout=float(timeout),
        name=name,
    )


def _file(name: str, t: _Table) -> Channel:
    path = t.get("path", str)
    if not path:
        raise InvalidArgument("give the file's path", argument=t.key("path"))
    deduplicate = t.get("deduplicate", bool, True)
    t.finish()
    return JsonLinesChannel(path, name=name, deduplicate=deduplicate)


def _console(name: str, t: _Table) -> Channel:
    t.finish()
    return ConsoleChannel(name)


#: How each ``type`` is built.
_TYPES: Final[Mapping[str, Callable[[str, _Table], Channel]]] = {
    "webhook": _webhook,
    "smtp": _smtp,
    "file": _file,
    "console": _console,
}


def channels_from_dict(
    data: Mapping[str, Any], *, env: Mapping[str, str] | None = None
) -> dict[str, Channel]:
    """The channels of ``{"channels": {name: {"type": ..., ...}}}``, by name.

    ``env`` is where ``*_env`` keys are looked up (the process environment by default).

    Raises:
        InvalidArgument: naming the dotted key; nothing is built.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    extra = sorted(set(data) - {"channels"})
    if extra:
        raise InvalidArgument("unknown table; channels go under [channels.NAME]", argument=extra[0])
    tables = data.get("channels", {})
    if not isinstance(tables, Mapping):
        raise InvalidArgument("must be a table of channels", argument="channels")
    built: dict[str, Channel] = {}
    try:
        for name, table in tables.items():
            where = f"channels.{name}"
            if not isinstance(table, Mapping):
                raise InvalidArgument("must be a table", argument=where)
            kind = table.get("type")
            if not isinstance(kind, str) or kind not in _TYPES:
                raise InvalidArgument(
                    f"type must be one of {', '.join(sorted(_TYPES))}", argument=f"{where}.type"
                )
            built[name] = _TYPES[kind](name, _Table(where, table, environ))
    except BaseException:
        for channel in built.values():
            channel.close()
        raise
    return built


def channels_from_toml(text: str, *, env: Mapping[str, str] | None = None) -> dict[str, Channel]:
    """:func:`channels_from_dict` on TOML text; a syntax error names its line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InvalidArgument(f"not valid TOML: {e}", argument="channels") from None
    return channels_from_dict(data, env=env)


def load_channels(
    path: str | PathLike[str], *, env: Mapping[str, str] | None = None
) -> dict[str, Channel]:
    """:func:`channels_from_toml` on the file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"cannot read {path}: {e}", argument="channels") from None
    return channels_from_toml(text, env=env)
