"""Follow-up cadence as policy: rules, the contact policy (consent, quiet hours, caps) and
templates, all data held by :class:`CadencePolicy` (``Policy.cadence``), and the contact gate
that applies the contact policy to one message (:func:`contact_gate`).

The package holds what the policy module imports and what needs no judgement: the planner
(:mod:`lifecycle.cadence.planner`, which turns a history into a plan) and the customer facts
it reads (:mod:`lifecycle.record`) judge stages, status and tiers, so they are modules
of their own that this package does not import.
"""

from __future__ import annotations

from lifecycle.cadence.contact import (
    Caps,
    ContactPolicy,
    QuietHours,
    first_instant_at,
    next_allowed,
)
from lifecycle.cadence.gate import (
    Hold,
    Outcome,
    Verdict,
    contact_gate,
    control_hold,
    holdout_draw,
)
from lifecycle.cadence.policy import CadencePolicy
from lifecycle.cadence.rules import (
    AfterEvent,
    Anniversary,
    CadenceRule,
    Campaign,
    EventTrigger,
    Festival,
    Occurrence,
    Overdue,
    Periodic,
    PointsExpiry,
    Replenishment,
    Rule,
    Segment,
    SequenceStart,
    SequenceStep,
    StageEntry,
    StepSequence,
    Stop,
    TierDowngradeWarning,
    TierUpgrade,
    WinBack,
    default_rules,
    rule_from_dict,
)
from lifecycle.cadence.templates import (
    OPT_OUT_MARKERS,
    TEMPLATE_FIELDS,
    Template,
    default_templates,
    render,
)

__all__ = [
    "OPT_OUT_MARKERS",
    "TEMPLATE_FIELDS",
    "AfterEvent",
    "Anniversary",
    "CadencePolicy",
    "CadenceRule",
    "Campaign",
    "Caps",
    "ContactPolicy",
    "EventTrigger",
    "Festival",
    "Hold",
    "Occurrence",
    "Outcome",
    "Overdue",
    "Periodic",
    "PointsExpiry",
    "QuietHours",
    "Replenishment",
    "Rule",
    "Segment",
    "SequenceStart",
    "SequenceStep",
    "StageEntry",
    "StepSequence",
    "Stop",
    "Template",
    "TierDowngradeWarning",
    "TierUpgrade",
    "Verdict",
    "WinBack",
    "contact_gate",
    "control_hold",
    "default_rules",
    "default_templates",
    "first_instant_at",
    "holdout_draw",
    "next_allowed",
    "render",
    "rule_from_dict",
]
