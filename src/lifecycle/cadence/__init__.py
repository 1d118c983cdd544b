"""Follow-up cadence: rules, the contact policy (consent, quiet hours, caps) and the planner.

The rules and the policy are data (:class:`CadencePolicy`, held by ``Policy.cadence``); the
planner (:func:`plan_customer`, :func:`plan_customers`) turns a history into a :class:`Plan`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lifecycle.cadence.contact import (
    Caps,
    ContactPolicy,
    QuietHours,
    first_instant_at,
    next_allowed,
)
from lifecycle.cadence.gate import Hold, Outcome, Verdict, contact_gate
from lifecycle.cadence.policy import CadencePolicy
from lifecycle.cadence.rules import (
    RULE_CHANNELS,
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

if TYPE_CHECKING:
    from lifecycle.cadence.facts import CustomerFacts, OrderFacts
    from lifecycle.cadence.planner import (
        FollowUp,
        Held,
        Plan,
        plan_customer,
        plan_customers,
    )

__all__ = [
    "OPT_OUT_MARKERS",
    "RULE_CHANNELS",
    "TEMPLATE_FIELDS",
    "AfterEvent",
    "Anniversary",
    "CadencePolicy",
    "CadenceRule",
    "Campaign",
    "Caps",
    "ContactPolicy",
    "CustomerFacts",
    "EventTrigger",
    "Festival",
    "FollowUp",
    "Held",
    "Hold",
    "Occurrence",
    "OrderFacts",
    "Outcome",
    "Overdue",
    "Periodic",
    "Plan",
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
    "default_rules",
    "default_templates",
    "first_instant_at",
    "next_allowed",
    "plan_customer",
    "plan_customers",
    "render",
    "rule_from_dict",
]

# The planner reads stages, status and loyalty, which import the policy that holds this
# package's CadencePolicy: it loads on first use so that either import order works.
_LAZY = {
    "CustomerFacts": "lifecycle.cadence.facts",
    "OrderFacts": "lifecycle.cadence.facts",
    "FollowUp": "lifecycle.cadence.planner",
    "Held": "lifecycle.cadence.planner",
    "Plan": "lifecycle.cadence.planner",
    "plan_customer": "lifecycle.cadence.planner",
    "plan_customers": "lifecycle.cadence.planner",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lifecycle.cadence' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
