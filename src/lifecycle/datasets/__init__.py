"""Data to try the library on: a seeded synthetic shop and the CDNOW purchase records.

``synthetic_shop()`` draws a realistic shop (every stage and status represented) for tests,
benchmarks, docs and first steps. ``load_cdnow_summary()`` and ``load_cdnow_transactions()``
load the CDNOW data of Fader, Hardie & Lee (2005), bundled with the package.
"""

from lifecycle.datasets.cdnow import (
    CdnowSummary,
    CdnowTransactions,
    load_cdnow_summary,
    load_cdnow_transactions,
)
from lifecycle.datasets.experiment import ExperimentShop, experiment_shop
from lifecycle.datasets.synthetic import SyntheticShop, synthetic_shop

__all__ = [
    "CdnowSummary",
    "CdnowTransactions",
    "ExperimentShop",
    "SyntheticShop",
    "experiment_shop",
    "load_cdnow_summary",
    "load_cdnow_transactions",
    "synthetic_shop",
]
