"""Value analytics over the whole customer base, on numpy.

A columnar transaction table (:class:`Transactions`), per-customer summaries that merge across
partitions (:func:`rfm_summary`, :class:`SummaryPartial`), and reports built on them.
"""

from lifecycle.analytics.batch import BatchAssessment, assess_all
from lifecycle.analytics.summary import CustomerSummary, SummaryPartial, merge, rfm_summary
from lifecycle.analytics.table import Transactions

__all__ = [
    "BatchAssessment",
    "CustomerSummary",
    "SummaryPartial",
    "Transactions",
    "assess_all",
    "merge",
    "rfm_summary",
]
