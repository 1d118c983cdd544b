"""The shared words of the domain: stages and their jobs, health statuses, contact purposes,
tier moves and the channel names.

A leaf module: it imports nothing of ``lifecycle`` but the standard library, so that policies,
rules and the modules that judge customers can all name these without importing each other.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Final

__all__ = [
    "CONTACT_CHANNELS",
    "ESCALATION_TEMPLATE",
    "FOLLOW_UP_CHANNELS",
    "OWNER_CHANNELS",
    "PERSONAL_CHANNELS",
    "RULE_CHANNELS",
    "Job",
    "Purpose",
    "Stage",
    "Status",
    "TierMove",
]


class Job(IntEnum):
    """The four jobs of relationship management, which the stages map to."""

    SELECT = 1
    ACQUIRE = 2
    RETAIN = 3
    GROW = 4

    @property
    def label_en(self) -> str:
        return _JOB_LABELS[self][0]

    @property
    def label_zh(self) -> str:
        return _JOB_LABELS[self][1]

    def label(self, lang: str = "en") -> str:
        return self.label_zh if lang == "zh" else self.label_en


_JOB_LABELS = {
    Job.SELECT: ("select", "选择客户"),
    Job.ACQUIRE: ("acquire", "获取客户"),
    Job.RETAIN: ("retain", "保持客户"),
    Job.GROW: ("grow value", "发展客户"),
}


class Stage(IntEnum):
    """The depth of the relationship, from an imagined profile to a business partner.

    Stages are ordered: ``Stage.REPEAT > Stage.FIRST_PURCHASE``.
    """

    SUSPECT = 1
    PROSPECT = 2
    FIRST_PURCHASE = 3
    REPEAT = 4
    LONG_TERM = 5
    ADVOCATE = 6
    STRATEGIC = 7
    PARTNER = 8

    @property
    def label_en(self) -> str:
        """English label, e.g. ``"repeat buyer"``."""
        return _STAGE_LABELS[self][0]

    @property
    def label_zh(self) -> str:
        """zh-CN label, e.g. ``"重复购买客户"``."""
        return _STAGE_LABELS[self][1]

    def label(self, lang: str = "en") -> str:
        return self.label_zh if lang == "zh" else self.label_en

    @property
    def job(self) -> Job:
        """The relationship-management job this stage belongs to."""
        return _STAGE_JOBS[self]


_STAGE_LABELS = {
    Stage.SUSPECT: ("suspect", "猜想客户"),
    Stage.PROSPECT: ("prospect", "预期客户"),
    Stage.FIRST_PURCHASE: ("first-time buyer", "首次成交客户"),
    Stage.REPEAT: ("repeat buyer", "重复购买客户"),
    Stage.LONG_TERM: ("long-term customer", "长期客户"),
    Stage.ADVOCATE: ("advocate", "拥护者客户"),
    Stage.STRATEGIC: ("strategic collaborator", "战略合作客户"),
    Stage.PARTNER: ("partner", "合伙人"),
}
_STAGE_JOBS = {
    Stage.SUSPECT: Job.SELECT,
    Stage.PROSPECT: Job.ACQUIRE,
    Stage.FIRST_PURCHASE: Job.ACQUIRE,
    Stage.REPEAT: Job.RETAIN,
    Stage.LONG_TERM: Job.RETAIN,
    Stage.ADVOCATE: Job.GROW,
    Stage.STRATEGIC: Job.GROW,
    Stage.PARTNER: Job.GROW,
}


class Status(StrEnum):
    """The health of a buying relationship. Customers who never bought have none."""

    ACTIVE = "active"
    AT_RISK = "at_risk"
    LAPSED = "lapsed"
    WON_BACK = "won_back"

    @property
    def label_en(self) -> str:
        return _STATUS_LABELS[self][0]

    @property
    def label_zh(self) -> str:
        return _STATUS_LABELS[self][1]

    def label(self, lang: str = "en") -> str:
        return self.label_zh if lang == "zh" else self.label_en


_STATUS_LABELS = {
    Status.ACTIVE: ("active", "活跃"),
    Status.AT_RISK: ("at risk", "流失预警"),
    Status.LAPSED: ("lapsed", "已流失"),
    Status.WON_BACK: ("won back", "已挽回"),
}


class Purpose(StrEnum):
    """Why the shop contacts a customer; consent is given per purpose."""

    TRANSACTIONAL = "transactional"
    """About an order the customer placed: payment, shipping, delivery."""
    SERVICE = "service"
    """Care and service: complaint answers, satisfaction checks, care messages."""
    MARKETING = "marketing"
    """Promotions, greetings, win-back, campaigns."""


class TierMove(StrEnum):
    """How a customer came to hold a tier."""

    JOINED = "joined"
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    GRANTED = "granted"
    REVOKED = "revoked"
    GRANT_ENDED = "grant_ended"
    REVOCATION_ENDED = "revocation_ended"


#: The channels a contact point can name.
CONTACT_CHANNELS: Final[frozenset[str]] = frozenset(
    {"sms", "email", "phone", "wechat", "app_push", "post"}
)

#: Channels that make a job for the customer's owner rather than a message to the customer.
OWNER_CHANNELS: Final[frozenset[str]] = frozenset({"task", "visit"})

#: Contact channels a person works (a call): a rule that picks one makes a task for the owner,
#: which still needs the customer's consent on that channel.
PERSONAL_CHANNELS: Final[frozenset[str]] = frozenset({"phone"})

#: Channels on which the owner reaches the customer in person: a logged contact on one of them
#: is the owner's own follow-up, and a follow-up planned on one becomes a task for the owner.
FOLLOW_UP_CHANNELS: Final[frozenset[str]] = OWNER_CHANNELS | PERSONAL_CHANNELS

#: The template of an escalation: an owner task not done for ``owners.escalate_after_days``,
#: given to the owner's lead. Sending one reaches the lead, not the customer: it is no contact
#: with the customer and no follow-up.
ESCALATION_TEMPLATE: Final = "owner_escalation"

#: Channels a rule may name: the contact channels, ``"task"`` (a job for the customer's owner)
#: and ``"visit"``. Phone calls and visits become tasks.
RULE_CHANNELS: Final[frozenset[str]] = CONTACT_CHANNELS | OWNER_CHANNELS
