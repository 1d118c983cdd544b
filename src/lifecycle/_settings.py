"""Frozen ``attrs`` settings from nested dicts and TOML, and back to commented TOML.

The machinery under :mod:`lifecycle.config` and :meth:`Policy.from_dict
<lifecycle.policy.Policy.from_dict>`: it knows attrs classes and type hints, not the policy,
so that the policy module can use it without importing its own consumers.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import re
import sys
import textwrap
import tomllib
import types
import typing
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from functools import cache
from os import PathLike
from pathlib import Path
from typing import Any, TypeVar

import attrs

from lifecycle.errors import PolicyError

_T = TypeVar("_T")

__all__ = ["load_settings", "settings_from_dict", "settings_from_toml", "settings_to_toml"]


def settings_from_dict(cls: type[_T], data: Mapping[str, Any]) -> _T:
    """A ``cls`` from nested dicts; keys left out keep their defaults.

    Raises:
        PolicyError: an unknown key or a bad value, naming the dotted key.
    """
    if not isinstance(data, Mapping):
        raise PolicyError("a policy is a table of settings")
    built: _T = _build(cls, data, "")
    return built


def settings_from_toml(cls: type[_T], text: str) -> _T:
    """A ``cls`` from TOML text; errors name the key and its line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PolicyError(f"not valid TOML: {e}") from None
    try:
        return settings_from_dict(cls, data)
    except PolicyError as e:
        line = _line_of(text, e.key) if e.key else None
        if line is None:
            raise
        raise PolicyError(f"{e.detail} (line {line})", key=e.key) from None


def load_settings(cls: type[_T], path: str | PathLike[str]) -> _T:
    """:func:`settings_from_toml` on the file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise PolicyError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise PolicyError(f"{path} is not UTF-8 text") from None
    return settings_from_toml(cls, text)


def settings_to_toml(settings: object) -> str:
    """``settings`` as TOML, each setting with its documentation as a comment."""
    lines = [
        "# lifecycle policy: every setting with its default. Delete what you keep as is.",
        "",
    ]
    _write(settings, [], lines)
    return "\n".join(lines).rstrip() + "\n"


# -- building -----------------------------------------------------------------------------------


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    fields = {f.name: f for f in attrs.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise PolicyError(
            f"unknown setting; {_dotted(prefix) or 'the policy'} has {sorted(fields)}",
            key=prefix + unknown[0],
        )
    hints = typing.get_type_hints(cls)
    kwargs = {name: _value(hints[name], value, prefix + name) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except PolicyError as e:
        if e.key and not e.key.startswith(prefix.rstrip(".")):
            raise PolicyError(e.detail, key=prefix + e.key.rsplit(".", 1)[-1]) from None
        raise
    except (TypeError, ValueError) as e:
        raise PolicyError(str(e), key=_dotted(prefix) or None) from None


def _dotted(prefix: str) -> str:
    return prefix.rstrip(".")


def _value(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (value is False and _can_be_off(tp)):
            return None  # ``false`` turns off a setting that can be None (see NOT_SET)
        if len(options) == 1:
            return _value(options[0], value, key)
        return value
    if isinstance(tp, type) and attrs.has(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise PolicyError(f"expected a table of settings, got {_kind(value)}", key=key)
        return _build(tp, value, key + ".")
    if origin in (tuple, frozenset, list, set):
        args = typing.get_args(tp)
        item = args[0] if args else Any
        if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
            raise PolicyError(f"expected a list, got {_kind(value)}", key=key)
        converted = [_value(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
        if origin is tuple:
            return tuple(converted)
        return frozenset(converted) if origin is frozenset else converted
    if origin in (dict, Mapping) or (isinstance(origin, type) and issubclass(origin, Mapping)):
        args = typing.get_args(tp)
        inner = args[1] if len(args) == 2 else Any
        if not isinstance(value, Mapping):
            raise PolicyError(f"expected a table, got {_kind(value)}", key=key)
        return {k: _value(inner, v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(value)
        except ValueError:
            raise PolicyError(
                f"unknown value {value!r}; use one of {[m.value for m in tp]}", key=key
            ) from None
    if tp is time and isinstance(value, str):
        try:
            return time.fromisoformat(value)
        except ValueError:
            raise PolicyError(f"expected a time such as '21:00', got {value!r}", key=key) from None
    if tp is date and isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise PolicyError(
                f"expected a date such as '2026-11-11', got {value!r}", key=key
            ) from None
    if tp is Decimal and isinstance(value, int | float | str) and not isinstance(value, bool):
        return Decimal(str(value))
    if tp is timedelta and isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(days=value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _kind(value: object) -> str:
    return {dict: "a table", list: "a list", str: "text", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def _line_of(text: str, key: str) -> int | None:
    """The line that sets dotted ``key`` in TOML ``text`` (best effort; None if not found).

    ``key`` may index an array of tables (``loyalty.tiers.levels[1].require``): the line is
    then looked for under the second ``[[loyalty.tiers.levels]]`` header.
    """
    tokens = [
        (m.group(1), None if m.group(2) is None else int(m.group(2)))
        for m in re.finditer(r"([^.\[\]]+)(?:\[(\d+)\])?", key)
    ]
    parts = [name for name, _ in tokens]
    indexed = next((i for i, (_, ix) in enumerate(tokens) if ix is not None), None)
    table: list[str] = []
    seen: dict[tuple[str, ...], int] = {}
    position: int | None = None

    def in_place(path: list[str]) -> bool:
        if indexed is None:
            return True
        return path[: indexed + 1] == parts[: indexed + 1] and position == tokens[indexed][1]

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        header = re.fullmatch(r"(\[\[?)\s*([^\]]+?)\s*\]\]?", line)
        if header:
            table = [p.strip() for p in header.group(2).split(".")]
            if header.group(1) == "[[":
                seen[tuple(table)] = seen.get(tuple(table), 0) + 1
                position = seen[tuple(table)] - 1
            else:
                position = None
            if table == parts and in_place(table):
                return number
            continue
        m = re.match(r"([A-Za-z0-9_.\-\"]+)\s*=", line)
        if not m:
            continue
        path = table + [p.strip('"') for p in m.group(1).split(".")]
        if (path == parts or (len(path) < len(parts) and parts[: len(path)] == path)) and in_place(
            path
        ):
            return number
    return None


# -- writing ------------------------------------------------------------------------------------

#: How TOML says "not set": a setting that can be ``None`` and is not by default is written
#: ``false`` (``expiry_months = false``: points never expire), and read back as ``None``.
NOT_SET = "false"


def _write(obj: Any, path: list[str], lines: list[str]) -> None:
    cls: Any = type(obj)
    docs = _field_docs(cls)
    hints = _hints(cls)
    nested: list[tuple[str, Any]] = []
    listed: list[tuple[str, tuple[Any, ...]]] = []
    for f in attrs.fields(cls):
        if not f.init:
            continue
        value = getattr(obj, f.name)
        key = ".".join([*path, f.name])
        if value is None:
            if f.default is None:
                continue  # left out, it reads back as its default: None
            if not _can_be_off(hints.get(f.name)):
                raise PolicyError("is None, which TOML cannot say here", key=key)
            text = NOT_SET
        elif attrs.has(type(value)):
            nested.append((f.name, value))
            continue
        elif isinstance(value, tuple) and value and all(attrs.has(type(v)) for v in value):
            listed.append((f.name, value))
            continue
        else:
            text = _toml_value(value, key)
        for doc_line in textwrap.wrap(docs.get(f.name, ""), 94):
            lines.append(f"# {doc_line}")
        lines.append(f"{f.name} = {text}")
    for name, value in nested:
        lines.append("")
        lines.append(f"[{'.'.join([*path, name])}]")
        doc = (inspect.getdoc(type(value)) or "").split("\n\n")[0].replace("\n", " ")
        for doc_line in textwrap.wrap(doc, 94):
            lines.append(f"# {doc_line}")
        _write(value, [*path, name], lines)
    for name, items in listed:
        for item in items:
            lines.append("")
            lines.append(f"[[{'.'.join([*path, name])}]]")
            _write(item, [*path, name], lines)


@cache
def _hints(cls: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError):  # pragma: no cover - a host's class with unresolvable hints
        return {}


def _can_be_off(tp: Any) -> bool:
    """Whether ``tp`` is ``X | None`` with no ``bool`` in ``X``, so ``false`` can mean None."""
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return False
    args = typing.get_args(tp)
    return type(None) in args and not any(_admits_false(a) for a in args)


def _admits_false(tp: Any) -> bool:
    if tp is bool or tp is Any:
        return True
    if typing.get_origin(tp) is typing.Literal:
        return False in typing.get_args(tp)
    return False


# TOML basic strings: escape the quote, the backslash and every control character.
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f]')


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    return _ESCAPES.get(ch) or f"\\u{ord(ch):04X}"


def _toml_string(value: str, key: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PolicyError(
            "holds a lone surrogate, which is not Unicode text: TOML cannot hold it", key=key
        ) from None
    return '"' + _NEEDS_ESCAPE.sub(_escape, value) + '"'


_TOML_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?([eE][+-]?\d+)?")


def _toml_decimal(value: Decimal, key: str) -> str:
    """A TOML number when it reads back as ``value`` exactly, else a string of its digits."""
    text = str(value)
    if _TOML_NUMBER.fullmatch(text):
        whole = text.lstrip("+-").isdigit()
        if (Decimal(text) if whole else Decimal(str(float(text)))) == value:
            return text
    return _toml_string(text, key)


def _toml_value(value: Any, key: str) -> str:
    """``value`` as a TOML value, or a :class:`PolicyError` naming ``key`` when TOML cannot
    hold it (nothing is left out silently)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return _toml_value(value.value, key)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # inf, nan, 1e+16: all TOML
    if isinstance(value, Decimal):
        return _toml_decimal(value, key)
    if isinstance(value, str):
        return _toml_string(value, key)
    if isinstance(value, datetime):
        moment: datetime = value
        offset = moment.utcoffset()
        if offset is None:
            raise PolicyError("is a naive date and time, which TOML cannot place", key=key)
        if offset % timedelta(minutes=1):  # TOML offsets are whole minutes
            moment = moment.astimezone(UTC)
        return moment.isoformat()  # a TOML offset date-time
    if isinstance(value, time | date):
        return f'"{value.isoformat()}"'
    if isinstance(value, timedelta):
        return repr(value.total_seconds() / 86400)
    if isinstance(value, frozenset | set):
        members = sorted(value, key=lambda v: (type(v).__name__, str(v)))
        return "[" + ", ".join(_toml_value(v, key) for v in members) + "]"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v, f"{key}[{i}]") for i, v in enumerate(value)) + "]"
    if isinstance(value, Mapping):
        pairs = [f"{_toml_key(k, key)} = {_toml_value(v, f'{key}.{k}')}" for k, v in value.items()]
        return "{ " + ", ".join(pairs) + " }" if pairs else "{}"
    raise PolicyError(f"a {type(value).__name__} cannot be written as TOML", key=key)


def _toml_key(name: object, key: str) -> str:
    text = str(name)
    return text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else _toml_string(text, key)


def _field_docs(cls: type) -> dict[str, str]:
    """The docstrings written under each field of ``cls``'s class body (and its bases')."""
    return _docs_of(cls)


@cache
def _docs_of(cls: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        out.update(_module_docs(klass.__module__).get(klass.__qualname__, {}))
    return out


@cache
def _module_docs(module: str) -> dict[str, dict[str, str]]:
    """The field docstrings of every class of ``module``, by qualified name.

    The module is read and parsed once: ``inspect.getsource`` on each class would parse the
    whole module again for every class (about a second for the policy's classes).
    """
    found = sys.modules.get(module)
    try:
        tree = ast.parse(inspect.getsource(found)) if found is not None else None
    except (OSError, TypeError, SyntaxError):
        tree = None
    out: dict[str, dict[str, str]] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if not isinstance(node, ast.ClassDef):
                continue
            name = prefix + node.name
            docs = out.setdefault(name, {})
            for stmt, after in itertools.pairwise(node.body):
                if (
                    isinstance(stmt, ast.AnnAssign)
                    and isinstance(stmt.target, ast.Name)
                    and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)
                ):
                    docs[stmt.target.id] = " ".join(after.value.value.split())
            visit(node.body, name + ".")

    if tree is not None:
        visit(tree.body, "")
    return out
