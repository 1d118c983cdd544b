"""The errors the customer-value models raise, under :class:`lifecycle.errors.LifecycleError`.

::

    LifecycleError
    └── ModelError                        a model cannot be fitted or used
        ├── InvalidData (ValueError)      input that is malformed or cannot identify the model
        └── ConvergenceError              the fit did not reach a maximum of the likelihood
"""

from __future__ import annotations

from typing import Any

from lifecycle.errors import LifecycleError

__all__ = ["ConvergenceError", "InvalidData", "ModelError"]


class ModelError(LifecycleError):
    """A customer-value model cannot be fitted or used; no result was made."""


class InvalidData(ModelError, ValueError):
    """Input arrays that are malformed, or that cannot identify the model.

    Attributes:
        field: the offending argument, when one is to blame.
    """

    def __init__(self, message: str, *, field: str | None = None):
        self.field = field
        self.detail = message
        super().__init__(f"{field}: {message}" if field else message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.detail,), {"field": self.field}))


class ConvergenceError(ModelError):
    """The optimiser did not reach a maximum of the likelihood.

    Attributes:
        model: the model's name (``"BG/NBD"``, ...).
        reason: what went wrong, in words.
    """

    def __init__(self, model: str, reason: str):
        self.model = model
        self.reason = reason
        super().__init__(f"{model} fit did not converge: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.model, self.reason))


def _rebuild(cls: type[Exception], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Exception:
    return cls(*args, **kwargs)
