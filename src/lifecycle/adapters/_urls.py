"""Which database URLs the server store serves (decided without importing SQLAlchemy), and
which URLs a webhook may post to."""

from __future__ import annotations

import ipaddress
import re
from typing import Final
from urllib.parse import SplitResult, urlsplit

from lifecycle.errors import InvalidArgument

__all__ = ["DRIVERS", "check_webhook_url", "is_server_url", "shown_url"]

#: The driver a URL without one gets, by scheme: psycopg 3 and PyMySQL.
DRIVERS: Final = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}

_URL: Final = re.compile(r"^([a-z][a-z0-9]*)(\+[a-z0-9_]+)?://")


def is_server_url(target: object) -> bool:
    """Whether ``target`` is a PostgreSQL or MySQL/MariaDB URL (rather than a file path)."""
    if not isinstance(target, str):
        return False
    m = _URL.match(target)
    return m is not None and m[1] in DRIVERS


#: Hosts a webhook may reach over plain HTTP: nothing leaves the machine.
_LOOPBACK_NAMES: Final = frozenset({"localhost"})


def _loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_webhook_url(url: object, *, argument: str = "url") -> SplitResult:
    """``url`` split, when a webhook may post to it: ``https`` with a host (``http`` only to
    this machine), no user name or password in it, no fragment.

    The message of the error never repeats the URL: a robot's key is often in its query.

    Raises:
        InvalidArgument: naming ``argument``.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidArgument("must be a non-empty URL string", argument=argument)
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidArgument("must not contain spaces or control characters", argument=argument)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        raise InvalidArgument("is not a valid URL", argument=argument) from None
    if parts.scheme not in ("https", "http"):
        raise InvalidArgument("must be an https:// URL", argument=argument)
    if not host:
        raise InvalidArgument("has no host", argument=argument)
    if parts.scheme == "http" and not _loopback(host):
        raise InvalidArgument(
            "must be https:// (plain http only to localhost or 127.0.0.1)", argument=argument
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument(
            "must not carry a user name or password; give a secret instead", argument=argument
        )
    if parts.fragment:
        raise InvalidArgument("must not have a #fragment", argument=argument)
    return parts


def shown_url(parts: SplitResult) -> str:
    """The URL without its query: safe for logs, reprs and error messages."""
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
