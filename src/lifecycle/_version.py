"""The package version, read by the build and by ``lifecycle.__version__``."""

__version__ = "0.1.0.dev0"
