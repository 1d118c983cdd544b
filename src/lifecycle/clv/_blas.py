"""One BLAS thread while a value model is fitted.

scipy's L-BFGS-B works on matrices a few rows wide through the OpenBLAS that numpy and scipy
bundle; on threads those calls cost far more than they compute (and the idle threads spin,
taking the cores the likelihood needs): a fit of a few thousand customers took ten times longer.
:func:`one_thread` sets the bundled OpenBLAS libraries to one thread for the fit and puts the
previous number back. Where no such library is found (another BLAS), it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy
import scipy

__all__ = ["one_thread"]

_SUFFIXES = ("", "64_")


@functools.cache
def _libraries() -> tuple[tuple[Any, Any], ...]:
    """(get, set) of the number of threads of every bundled OpenBLAS found."""
    found = []
    for package in (numpy, scipy):
        libs = Path(package.__file__ or ".").parent.parent / f"{package.__name__}.libs"
        for path in sorted(libs.glob("libscipy_openblas*.so*")) if libs.is_dir() else []:
            try:
                lib = ctypes.CDLL(str(path))
            except OSError:
                continue
            for suffix in _SUFFIXES:
                get = getattr(lib, f"scipy_openblas_get_num_threads{suffix}", None)
                put = getattr(lib, f"scipy_openblas_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    get.restype = ctypes.c_int
                    put.argtypes = [ctypes.c_int]
                    found.append((get, put))
                    break
    return tuple(found)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Within the block, the bundled OpenBLAS libraries run on one thread."""
    libs = _libraries()
    before = [int(get()) for get, _ in libs]
    for _, put in libs:
        put(1)
    try:
        yield
    finally:
        for (_, put), n in zip(libs, before, strict=True):
            put(n)
