"""Value analytics over the whole customer base, on numpy.

A columnar transaction table (:class:`Transactions`), per-customer summaries that merge across
partitions (:func:`rfm_summary`, :class:`SummaryPartial`), and reports built on them.
"""

from lifecycle.analytics.batch import BatchAssessment, assess_all
from lifecycle.analytics.reports import (
    Cohorts,
    Funnel,
    FunnelStep,
    Kpis,
    cohort_retention,
    kpis,
    stage_funnel,
)
from lifecycle.analytics.summary import CustomerSummary, SummaryPartial, merge, rfm_summary
from lifecycle.analytics.table import Transactions

__all__ = [
    "BatchAssessment",
    "Cohorts",
    "CustomerSummary",
    "Funnel",
    "FunnelStep",
    "Kpis",
    "SummaryPartial",
    "Transactions",
    "assess_all",
    "cohort_retention",
    "kpis",
    "merge",
    "rfm_summary",
    "stage_funnel",
]
