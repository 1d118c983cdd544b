"""Compiled loops through numba (the ``fast`` extra), imported and built only when first needed.

Long passes over millions of rows (the value models' arithmetic, the summary's grouping) run
as compiled loops when numba is installed, and as numpy operations otherwise; both give the
same numbers. :func:`numpy_only` switches the compiled loops off everywhere (for the tests that
compare the two). numba is imported, and each loop compiled (then cached on disk), the first
time a pass asks for it, so importing the library costs nothing more with the extra installed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

__all__ = ["available", "jit", "numpy_only"]

_F = TypeVar("_F", bound=Callable[..., Any])

#: None until a pass asks whether numba is installed
_state: dict[str, bool | None] = {"compiled": None}
_jitted: dict[str, Any] = {}


def available() -> bool:
    """Whether the compiled loops can run (numba installed, and not switched off)."""
    if _state["compiled"] is None:
        try:
            import numba  # noqa: F401  # the `fast` extra; without it numpy does every step
        except ImportError:
            _state["compiled"] = False
        else:
            _state["compiled"] = True
    return bool(_state["compiled"])


@contextlib.contextmanager
def numpy_only() -> Iterator[None]:
    """Within the block, every pass runs as numpy operations."""
    before = _state["compiled"]
    _state["compiled"] = False
    try:
        yield
    finally:
        _state["compiled"] = before


def jit(fn: _F) -> _F:
    """``fn`` compiled by numba on its first call (call it only once :func:`available` said yes)."""
    key = f"{fn.__module__}.{fn.__qualname__}"

    def first_call(*args: Any) -> Any:
        loop = _jitted.get(key)
        if loop is None:
            import numba

            loop = _jitted[key] = numba.njit(cache=True, nogil=True)(fn)
        return loop(*args)

    first_call.__name__ = fn.__name__
    first_call.__doc__ = fn.__doc__
    return cast(_F, first_call)
