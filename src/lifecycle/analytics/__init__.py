"""Value analytics over the whole customer base, on numpy.

A columnar transaction table (:class:`Transactions`), per-customer summaries that merge across
partitions (:func:`rfm_summary`, :class:`SummaryPartial`), every customer's stage and status at
once (:func:`assess_all`), segmentation (RFM scores and segments, Pareto/ABC, value clusters)
and reports (cohorts, the stage funnel, KPIs). Figures are in :mod:`lifecycle.analytics.plots`.
"""

from lifecycle.analytics.batch import BatchAssessment, assess_all
from lifecycle.analytics.reports import (
    Cohorts,
    Funnel,
    FunnelStep,
    Kpis,
    cohort_retention,
    funnel_steps,
    kpis,
    stage_funnel,
)
from lifecycle.analytics.segments import (
    FEATURES,
    SEGMENT_MAP,
    ABCAnalysis,
    ABCClass,
    ABCPolicy,
    CustomerClusters,
    ParetoSummary,
    RFMPolicy,
    RFMScores,
    RFMSegments,
    Segment,
    ValueGroup,
    abc_classes,
    cluster_customers,
    pareto,
    rfm_scores,
    rfm_segments,
    segment_table,
)
from lifecycle.analytics.summary import CustomerSummary, SummaryPartial, merge, rfm_summary
from lifecycle.analytics.table import Transactions
from lifecycle.analytics.uplift import Uplift, UpliftMetric, uplift

__all__ = [
    "FEATURES",
    "SEGMENT_MAP",
    "ABCAnalysis",
    "ABCClass",
    "ABCPolicy",
    "BatchAssessment",
    "Cohorts",
    "CustomerClusters",
    "CustomerSummary",
    "Funnel",
    "FunnelStep",
    "Kpis",
    "ParetoSummary",
    "RFMPolicy",
    "RFMScores",
    "RFMSegments",
    "Segment",
    "SummaryPartial",
    "Transactions",
    "Uplift",
    "UpliftMetric",
    "ValueGroup",
    "abc_classes",
    "assess_all",
    "cluster_customers",
    "cohort_retention",
    "funnel_steps",
    "kpis",
    "merge",
    "pareto",
    "rfm_scores",
    "rfm_segments",
    "rfm_summary",
    "segment_table",
    "stage_funnel",
    "uplift",
]
