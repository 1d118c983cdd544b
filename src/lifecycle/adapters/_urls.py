"""Which database URLs the server store serves: decided without importing SQLAlchemy."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["DRIVERS", "is_server_url"]

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
