"""The value models need scipy: without it, importing :mod:`lifecycle.clv` (or any of its modules)
is a :class:`~lifecycle.errors.MissingExtra` naming the extra, not a bare ModuleNotFoundError."""

from lifecycle.errors import MissingExtra

try:
    import scipy  # noqa: F401  # imported for its presence only
except ImportError as e:
    raise MissingExtra(package="scipy", extra="clv", feature="lifecycle.clv (value models)") from e
