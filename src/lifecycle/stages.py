"""The eight relationship stages, derived from a customer's own events, with reasons.

Stage is the highest stage whose criteria hold at ``now``; see :class:`StagePolicy` for the
thresholds and :data:`STAGE_RULES` for the criteria. :func:`assess_stage` gives today's stage,
:func:`stage_history` every change.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeAlias

import attrs

from lifecycle._display import field_table, one_line
from lifecycle._ledger import Ledger, OrderState, customer_zone, fold, ordered
from lifecycle._time import require_aware, to_utc, zone
from lifecycle.events import (
    ConsentChanged,
    Contacted,
    CustomerRegistered,
    Event,
    OrderDelivered,
    OrderShipped,
    OwnerAssigned,
    PointsRedeemed,
    ProfileUpdated,
    Referred,
    Replied,
    ReturnedToPool,
    TierGranted,
    TierRevoked,
    sort_key,
)
from lifecycle.policy import Policy, StagePolicy
from lifecycle.reasons import Reason
from lifecycle.vocabulary import Stage

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "NO_COMPLAINT",
    "NO_STAGE_FACT",
    "STAGE_RULES",
    "Period",
    "StageAssessment",
    "StageChange",
    "StageFacts",
    "StageReplay",
    "StageRule",
    "assess_stage",
    "conversion_periods",
    "referral_periods",
    "stage_criteria",
    "stage_history",
    "stage_replay",
    "stage_table",
]


_PARTNER_ZH = {
    "agent": "代理商",
    "distributor": "经销商",
    "reseller": "分销商",
    "shareholder": "股东",
}


# -- the stage table ----------------------------------------------------------------------------
#
# Each stage's criterion is written once, as tests over a customer's StageFacts and the policy's
# thresholds. The tests use only comparisons, ``&`` and ``|``, so one test reads one customer's
# facts (Python numbers) and every customer's facts at once (numpy arrays): the judge below, the
# batch path (lifecycle.analytics.batch) and the docs (stage_table) all read this table.

Count: TypeAlias = "int | npt.NDArray[np.int64]"
Real: TypeAlias = "float | npt.NDArray[np.float64]"
Flag: TypeAlias = "bool | npt.NDArray[np.bool_]"

#: :attr:`StageFacts.complaint_age` of a customer who never complained: older than any window.
NO_COMPLAINT: Final = 1 << 40

#: Events that change none of the facts the stage table reads (:class:`StageFacts`) nor the
#: customer's zone: at their instants the stage cannot change, unless one is the customer's
#: first event. The stage history skips judging there; the planning bounds anchor elsewhere.
NO_STAGE_FACT: Final = (
    OrderShipped,
    OrderDelivered,
    Contacted,
    Replied,
    ConsentChanged,
    OwnerAssigned,
    ReturnedToPool,
    TierGranted,
    TierRevoked,
    PointsRedeemed,
)


class StageFacts(NamedTuple):
    """What the stage criteria read about a customer at one instant, before any threshold.

    Each field is a Python number for one customer, or a numpy array with one entry per
    customer. Days are calendar days in the customer's zone. (A named tuple: the judge builds
    one at every step of a stage history, and a tuple is built fastest.)
    """

    partner: Flag
    """An active partnership of a kind the policy counts."""
    converted: Count
    """Referred customers who have a valid order."""
    orders: Count
    """Valid orders (paid, not cancelled, not fully refunded)."""
    days: Count
    """Distinct days with a valid order."""
    span: Count
    """Days from the first to the last of those days (0 without any)."""
    idle: Count
    """Days from the last of those days to today (0 without any)."""
    nps: Count
    """The latest NPS answer (-1 without any)."""
    reviews: Count
    """Reviews posted."""
    review_average: Real
    """Their average rating (0.0 without any)."""
    open_complaints: Count
    """Complaints opened and not resolved."""
    complaint_age: Count
    """Days since the latest complaint was opened (:data:`NO_COMPLAINT` without any)."""
    engaged: Flag
    """An engagement that makes a prospect (or an order placed, when the policy says so)."""


Test: TypeAlias = "Callable[[StageFacts, StagePolicy], Flag]"


def partnership(f: StageFacts, p: StagePolicy) -> Flag:
    return f.partner


def referrals_converted(f: StageFacts, p: StagePolicy) -> Flag:
    return f.converted >= p.strategic_min_referrals


def own_orders(f: StageFacts, p: StagePolicy) -> Flag:
    return f.orders >= p.strategic_min_orders


def long_term_orders(f: StageFacts, p: StagePolicy) -> Flag:
    return f.orders >= p.long_term_min_orders


def long_term_span(f: StageFacts, p: StagePolicy) -> Flag:
    return f.span >= p.long_term_min_span_days


def recent_order(f: StageFacts, p: StagePolicy) -> Flag:
    return f.idle <= p.long_term_max_idle_days


def promoter(f: StageFacts, p: StagePolicy) -> Flag:
    return f.nps >= p.promoter_min_score


def well_reviewed(f: StageFacts, p: StagePolicy) -> Flag:
    return (f.reviews >= p.advocate_min_reviews) & (
        f.review_average >= p.advocate_min_review_average
    )


def trusted(f: StageFacts, p: StagePolicy) -> Flag:
    """A trust signal: a promoter's NPS answer, or reviews that average high enough."""
    return promoter(f, p) | well_reviewed(f, p)


def no_open_complaint(f: StageFacts, p: StagePolicy) -> Flag:
    return f.open_complaints == 0


def no_recent_complaint(f: StageFacts, p: StagePolicy) -> Flag:
    return f.complaint_age > p.complaint_free_days


def repeat_days(f: StageFacts, p: StagePolicy) -> Flag:
    return f.days >= p.repeat_min_days


def bought(f: StageFacts, p: StagePolicy) -> Flag:
    return f.orders >= 1


def engaged(f: StageFacts, p: StagePolicy) -> Flag:
    return f.engaged


@attrs.frozen
class StageRule:
    """One row of the stage table: the stage, its criterion and the words for it.

    The criterion holds when every test holds (an empty one always holds). The words are
    :meth:`str.format` templates over the policy ``p`` and ``engagements``, ``partners`` and
    ``or_placed``.
    """

    stage: Stage
    criterion: tuple[Test, ...]
    en: str
    zh: str

    def holds(self, facts: StageFacts, policy: StagePolicy) -> Flag:
        """Whether the criterion holds: a bool for one customer, an array for many."""
        out: Flag = True
        for test in self.criterion:
            out = out & test(facts, policy)
        return out


_LONG_TERM: Final = (long_term_orders, long_term_span, recent_order)

#: The stage table, highest stage first: a customer is in the first stage whose criterion holds.
STAGE_RULES: Final[tuple[StageRule, ...]] = (
    StageRule(
        Stage.PARTNER,
        (partnership,),
        en="an active partnership agreement ({partners})",
        zh="有生效的合作协议（{partners}）",
    ),
    StageRule(
        Stage.STRATEGIC,
        (own_orders, referrals_converted),
        en=(
            "at least {p.strategic_min_orders} valid order(s) of their own, and at least "
            "{p.strategic_min_referrals} referred customer(s) with a valid order"
        ),
        zh="本人有{p.strategic_min_orders}笔以上有效订单，且转介绍的客户中至少{p.strategic_min_referrals}位已成交",
    ),
    StageRule(
        Stage.ADVOCATE,
        (*_LONG_TERM, trusted, no_open_complaint, no_recent_complaint),
        en=(
            "long-term, with an NPS answer of {p.promoter_min_score}+ or reviews averaging "
            "{p.advocate_min_review_average}+, no complaint open and none opened within "
            "{p.complaint_free_days} days"
        ),
        zh=(
            "长期客户，且净推荐值{p.promoter_min_score}分以上或评价平均"
            "{p.advocate_min_review_average}分以上，且无未解决投诉、{p.complaint_free_days}天内无新投诉"
        ),
    ),
    StageRule(
        Stage.LONG_TERM,
        _LONG_TERM,
        en=(
            "at least {p.long_term_min_orders} valid orders spanning at least "
            "{p.long_term_min_span_days} days, the last within {p.long_term_max_idle_days} days"
        ),
        zh=(
            "至少{p.long_term_min_orders}笔有效订单，跨度至少{p.long_term_min_span_days}天，"
            "最近一笔在{p.long_term_max_idle_days}天内"
        ),
    ),
    StageRule(
        Stage.REPEAT,
        (repeat_days,),
        en="valid orders on {p.repeat_min_days} different days",
        zh="在{p.repeat_min_days}个不同日期有有效订单",
    ),
    StageRule(
        Stage.FIRST_PURCHASE,
        (bought,),
        en="one valid order (paid, not cancelled, not fully refunded)",
        zh="一笔有效订单（已付款、未取消、未全额退款）",
    ),
    StageRule(
        Stage.PROSPECT,
        (engaged,),
        en="engaged ({engagements}{or_placed}), no valid order",
        zh="有互动（{engagements}{or_placed}），尚无有效订单",
    ),
    StageRule(
        Stage.SUSPECT,
        (),
        en="known to the shop (lead, visitor, follower), not engaged",
        zh="已知客户（线索、访客、关注者），尚无互动",
    ),
)
_RULE: Final = {rule.stage: rule for rule in STAGE_RULES}
_OR_PLACED: Final = {"en": ", or placed an order", "zh": "，或已下单"}


_CRITERIA: Final = tuple((rule.criterion, rule.stage) for rule in STAGE_RULES)


def stage_of(facts: StageFacts, policy: StagePolicy) -> Stage:
    """The highest stage whose criterion holds, for one customer's facts."""
    for criterion, stage in _CRITERIA:
        for test in criterion:
            if not test(facts, policy):
                break
        else:
            return stage
    raise AssertionError("the lowest stage always holds")  # pragma: no cover


@attrs.frozen(kw_only=True)
class StageAssessment:
    """A customer's stage at ``as_of``, the rule that decided it and the reasons.

    ``reasons[0]`` is the deciding rule; later reasons say why no higher stage holds and which
    events no longer count.
    """

    stage: Stage
    rule: str
    evidence: tuple[str, ...]
    reasons: tuple[Reason, ...]
    as_of: datetime

    def __repr__(self) -> str:
        return one_line(
            "StageAssessment",
            self.stage.label_en,
            f"rule {self.rule}",
            f"as of {self.as_of:%Y-%m-%d}",
        )

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [
            ("stage", f"{int(self.stage)} {self.stage.label_en} ({self.stage.label_zh})"),
            ("rule", self.rule),
            ("as of", self.as_of.isoformat()),
        ]
        rows += [("why", r.en) for r in self.reasons]
        return field_table(rows)


@attrs.frozen(kw_only=True)
class StageChange:
    """One step of a customer's stage history: ``stage`` since ``since``, and why.

    ``since`` is in the customer's time zone, so its date is the customer's calendar date.
    """

    stage: Stage
    since: datetime
    rule: str
    evidence: tuple[str, ...]
    reasons: tuple[Reason, ...]

    def __repr__(self) -> str:
        return one_line(
            "StageChange", f"{self.stage.label_en} since {self.since:%Y-%m-%d}", f"rule {self.rule}"
        )

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [
            ("stage", f"{int(self.stage)} {self.stage.label_en} ({self.stage.label_zh})"),
            ("since", self.since.isoformat()),
            ("rule", self.rule),
        ]
        rows += [("why", r.en) for r in self.reasons]
        return field_table(rows)

    def __str__(self) -> str:
        return f"{self.stage.label_en} since {self.since.date().isoformat()}: {self.reasons[0]}"

    def to_dict(self) -> dict[str, Any]:
        """The change as plain values (JSON-ready)."""
        return {
            "stage": self.stage.name.lower(),
            "since": self.since.isoformat(),
            "rule": self.rule,
            "evidence": list(self.evidence),
            "reasons": [{"code": r.code, "en": r.en, "zh": r.zh} for r in self.reasons],
        }


# -- the rules ----------------------------------------------------------------------------------


def _money(o: OrderState) -> str:
    assert o.paid is not None
    return f"{o.paid.currency} {o.paid.amount}"


class StageJudge:
    """Reads a ledger at one instant and decides the stage by :data:`STAGE_RULES`, with reasons."""

    def __init__(self, ledger: Ledger, converted: Mapping[str, datetime], now: datetime):
        self.lg = ledger
        self.p = ledger.policy.stage
        self.now = now
        self.today = ledger.day(now)
        self.converted = {
            rid: ref
            for rid, ref in ledger.referrals.items()
            if rid in converted and converted[rid] <= now
        }
        self.facts = self._facts()
        self._stage = stage_of(self.facts, self.p)

    def _facts(self) -> StageFacts:
        """The ledger's facts at ``now``, as the stage table reads them."""
        lg = self.lg
        first, last = lg.first_day, lg.last_day
        nps, complaint, average = lg.latest_nps, lg.last_complaint, lg.review_average
        # Positional, in field order: a named tuple is built three times faster so, and a
        # stage history builds one at every step.
        return StageFacts(
            not self.p.partnership_kinds.isdisjoint(lg.partnerships),  # partner
            len(self.converted),  # converted
            lg.valid_count,  # orders
            len(lg.valid_days),  # days
            0 if first is None or last is None else (last - first).days,  # span
            0 if last is None else (self.today - last).days,  # idle
            -1 if nps is None else nps.score,  # nps
            lg.review_count,  # reviews
            0.0 if average is None else average,  # review_average
            len(lg.open_complaints),  # open_complaints
            NO_COMPLAINT if complaint is None else (self.today - lg.day(complaint.at)).days,
            lg.engagement is not None,  # engaged
        )

    def stage(self) -> Stage:
        """The stage alone: what :meth:`decide` decides, without building reasons."""
        return self._stage

    def decide(self) -> StageAssessment:
        f = self.facts
        stage = self._stage
        notes: list[Reason] = []
        for rule in STAGE_RULES:
            if rule.stage is stage:
                break
            notes += self.why_not(rule.stage, f)
        reasons = self.why(stage, f)
        notes += self.undone()
        return StageAssessment(
            stage=stage,
            rule=reasons[0].code,
            evidence=reasons[0].evidence,
            reasons=tuple(reasons + notes),
            as_of=self.now,
        )

    # why a stage holds, and why a higher one does not: the table decided, these explain

    def why(self, stage: Stage, f: StageFacts) -> list[Reason]:
        match stage:
            case Stage.PARTNER:
                return [self.partner()]
            case Stage.STRATEGIC:
                return [self.strategic()]
            case Stage.ADVOCATE:
                return [self.trust(f), self.long_term(f)]
            case Stage.LONG_TERM:
                return [self.long_term(f)]
            case Stage.REPEAT:
                return [self.repeat()]
            case Stage.FIRST_PURCHASE:
                return [self.first_purchase()]
            case Stage.PROSPECT:
                return [self.prospect()]
        return [self.suspect()]

    def why_not(self, stage: Stage, f: StageFacts) -> list[Reason]:
        match stage:
            case Stage.PARTNER:
                return self.not_partner()
            case Stage.STRATEGIC:
                return self.not_strategic(f)
            case Stage.ADVOCATE:
                return self.not_advocate(f)
            case Stage.LONG_TERM:
                return self.not_long_term(f)
            case Stage.REPEAT:
                return self.not_repeat()
        return []

    def partner(self) -> Reason:
        active = {k: e for k, e in self.lg.partnerships.items() if k in self.p.partnership_kinds}
        kind, event = min(active.items(), key=lambda kv: sort_key(kv[1]))
        d = self.lg.day(event.at)
        return Reason(
            code="stage.partner",
            en=f"Active {kind} partnership since {d}.",
            zh=f"自{d}起为{_PARTNER_ZH[kind]}合作伙伴。",
            evidence=tuple(e.event_id for e in active.values()),
        )

    def not_partner(self) -> list[Reason]:
        return [
            Reason(
                code="stage.not_partner.ended",
                en=f"The {kind} partnership ended on {self.lg.day(e.at)}.",
                zh=f"{_PARTNER_ZH[kind]}合作已于{self.lg.day(e.at)}结束。",
                evidence=(e.event_id,),
            )
            for kind, e in self.lg.ended_partnerships.items()
        ]

    def strategic(self) -> Reason:
        n = len(self.converted)
        ids = ", ".join(sorted(self.converted))
        return Reason(
            code="stage.strategic",
            en=f"Buys, and brought {n} customer(s) who bought: {ids}.",
            zh=f"本人有成交，且转介绍的{n}位客户已成交：{ids}。",
            evidence=tuple(e.event_id for e in self.converted.values()),
        )

    def not_strategic(self, f: StageFacts) -> list[Reason]:
        waiting = sorted(set(self.lg.referrals) - set(self.converted))
        if waiting:
            ids = ", ".join(waiting)
            return [
                Reason(
                    code="stage.not_strategic.no_conversion",
                    en=f"Referred {ids}, who has not made a valid order yet.",
                    zh=f"已转介绍{ids}，但对方尚无有效订单。",
                    evidence=tuple(self.lg.referrals[r].event_id for r in waiting),
                )
            ]
        if self.converted and not own_orders(f, self.p):
            return [
                Reason(
                    code="stage.not_strategic.no_orders",
                    en="Brought customers who bought, but has no valid order of their own.",
                    zh="转介绍的客户已成交，但本人尚无有效订单。",
                    evidence=tuple(e.event_id for e in self.converted.values()),
                )
            ]
        return []

    def _order_ids(self) -> tuple[str, ...]:
        return tuple(o.paid.event_id for o in self.lg.valid_orders() if o.paid is not None)

    def long_term(self, f: StageFacts) -> Reason:
        lg = self.lg
        span, idle = f.span, f.idle
        return Reason(
            code="stage.long_term",
            en=(
                f"{lg.valid_count} valid orders from {lg.first_day} to {lg.last_day} "
                f"({span} days), the latest {idle} days ago."
            ),
            zh=(
                f"{lg.first_day}至{lg.last_day}共{lg.valid_count}笔有效订单（跨度{span}天），"
                f"最近一笔在{idle}天前。"
            ),
            evidence=self._order_ids(),
        )

    def not_long_term(self, f: StageFacts) -> list[Reason]:
        lg, p = self.lg, self.p
        span, idle = f.span, f.idle
        if not repeat_days(f, p):
            return []
        ids = self._order_ids()
        if not long_term_orders(f, p):
            return [
                Reason(
                    code="stage.not_long_term.orders",
                    en=f"{lg.valid_count} valid orders; long-term needs {p.long_term_min_orders}.",
                    zh=f"有效订单{lg.valid_count}笔；长期客户需要{p.long_term_min_orders}笔。",
                    evidence=ids,
                )
            ]
        if not long_term_span(f, p):
            return [
                Reason(
                    code="stage.not_long_term.span",
                    en=f"Valid orders span {span} days; long-term needs {p.long_term_min_span_days}.",
                    zh=f"有效订单跨度{span}天；长期客户需要{p.long_term_min_span_days}天。",
                    evidence=ids,
                )
            ]
        return [
            Reason(
                code="stage.not_long_term.idle",
                en=(
                    f"No valid order for {idle} days (since {lg.last_day}); long-term needs one "
                    f"within {p.long_term_max_idle_days}."
                ),
                zh=(
                    f"已{idle}天没有有效订单（最近一笔在{lg.last_day}）；"
                    f"长期客户需要{p.long_term_max_idle_days}天内有订单。"
                ),
                evidence=ids[-1:],
            )
        ]

    def trust(self, f: StageFacts) -> Reason:
        lg = self.lg
        nps = lg.latest_nps
        if promoter(f, self.p):
            assert nps is not None
            return Reason(
                code="stage.advocate.promoter",
                en=f"Promoter: NPS answer {nps.score} on {lg.day(nps.at)}.",
                zh=f"推荐者：{lg.day(nps.at)}净推荐值评分{nps.score}。",
                evidence=(nps.event_id,),
            )
        avg = f.review_average
        return Reason(
            code="stage.advocate.reviews",
            en=f"Reviews average {avg:.2f} of 5 over {lg.review_count} review(s).",
            zh=f"{lg.review_count}条评价平均{avg:.2f}分（满分5分）。",
            evidence=tuple(lg.review_ids),
        )

    def not_advocate(self, f: StageFacts) -> list[Reason]:
        """Why a long-term customer is no advocate (a customer who is not long-term is told why
        not long-term instead)."""
        p = self.p
        if not _RULE[Stage.LONG_TERM].holds(f, p):
            return []
        notes = [] if trusted(f, p) else [self.no_trust_signal()]
        lg = self.lg
        if not no_open_complaint(f, p):
            oldest = min(lg.open_complaints.values(), key=sort_key)
            notes.append(
                Reason(
                    code="stage.not_advocate.open_complaint",
                    en=f"Complaint {oldest.complaint_id} opened on {lg.day(oldest.at)} is still open.",
                    zh=f"{lg.day(oldest.at)}的投诉{oldest.complaint_id}尚未解决。",
                    evidence=(oldest.event_id,),
                )
            )
        elif not no_recent_complaint(f, p):
            c = lg.last_complaint
            assert c is not None
            notes.append(
                Reason(
                    code="stage.not_advocate.recent_complaint",
                    en=(
                        f"Complaint {c.complaint_id} was opened on {lg.day(c.at)}, within the last "
                        f"{p.complaint_free_days} days."
                    ),
                    zh=f"{lg.day(c.at)}有投诉{c.complaint_id}，在最近{p.complaint_free_days}天内。",
                    evidence=(c.event_id,),
                )
            )
        return notes

    def no_trust_signal(self) -> Reason:
        lg, p = self.lg, self.p
        nps, avg = lg.latest_nps, lg.review_average
        parts_en, parts_zh = [], []
        if nps is not None:
            parts_en.append(f"latest NPS answer is {nps.score}")
            parts_zh.append(f"最近一次净推荐值评分为{nps.score}")
        if avg is not None:
            parts_en.append(f"reviews average {avg:.2f}")
            parts_zh.append(f"评价平均{avg:.2f}分")
        detail_en = f" ({'; '.join(parts_en)})" if parts_en else ""
        detail_zh = f"（{'；'.join(parts_zh)}）" if parts_zh else ""
        return Reason(
            code="stage.not_advocate.no_trust_signal",
            en=(
                f"No trust signal yet{detail_en}: an advocate gives an NPS of "
                f"{p.promoter_min_score}+ or reviews averaging {p.advocate_min_review_average}+."
            ),
            zh=(
                f"尚无信任信号{detail_zh}：拥护者需净推荐值{p.promoter_min_score}分以上"
                f"或评价平均{p.advocate_min_review_average}分以上。"
            ),
            evidence=((nps.event_id,) if nps is not None else ()) + tuple(lg.review_ids),
        )

    def repeat(self) -> Reason:
        lg = self.lg
        days = len(lg.valid_days)
        return Reason(
            code="stage.repeat",
            en=f"{lg.valid_count} valid orders on {days} different days, first {lg.first_day}, latest {lg.last_day}.",
            zh=f"在{days}个不同日期共有{lg.valid_count}笔有效订单，首单{lg.first_day}，最近{lg.last_day}。",
            evidence=self._order_ids(),
        )

    def not_repeat(self) -> list[Reason]:
        lg = self.lg
        if lg.valid_count <= 1:
            return []
        return [
            Reason(
                code="stage.not_repeat.same_day",
                en=(
                    f"{lg.valid_count} valid orders, all on {lg.first_day}: a repeat buyer buys "
                    f"on {self.p.repeat_min_days} different days."
                ),
                zh=f"{lg.valid_count}笔有效订单都在{lg.first_day}同一天：重复购买需在{self.p.repeat_min_days}个不同日期下单。",
                evidence=self._order_ids(),
            )
        ]

    def first_purchase(self) -> Reason:
        o = self.lg.valid_orders()[0]
        assert o.paid is not None
        return Reason(
            code="stage.first_purchase",
            en=f"One valid order: {o.order_id} on {self.lg.day(o.paid.at)} ({_money(o)}).",
            zh=f"有一笔有效订单：{o.order_id}（{self.lg.day(o.paid.at)}，{_money(o)}）。",
            evidence=(o.paid.event_id,),
        )

    def prospect(self) -> Reason:
        e = self.lg.engagement
        assert e is not None
        what = getattr(e, "kind", None) or f"order {getattr(e, 'order_id', '')}"
        return Reason(
            code="stage.prospect",
            en=f"Engaged ({what}) on {self.lg.day(e.at)}, no valid order yet.",
            zh=f"{self.lg.day(e.at)}有互动（{what}），尚无有效订单。",
            evidence=(e.event_id,),
        )

    def suspect(self) -> Reason:
        e = self.lg.lead or self.lg.first_seen
        if e is None:
            return Reason(
                code="stage.suspect",
                en="Known to the shop, no events yet.",
                zh="已知客户，尚无任何记录。",
            )
        source = f" ({self.lg.lead.source})" if self.lg.lead is not None else ""
        return Reason(
            code="stage.suspect",
            en=f"Known to the shop since {self.lg.day(e.at)}{source}, not engaged yet.",
            zh=f"自{self.lg.day(e.at)}起为已知客户{source}，尚无互动。",
            evidence=(e.event_id,),
        )

    def undone(self) -> list[Reason]:
        out = []
        for o in self.lg.undone_orders():
            if o.cancelled is not None:
                out.append(
                    Reason(
                        code="order.cancelled",
                        en=f"Order {o.order_id} was cancelled on {self.lg.day(o.cancelled.at)} and does not count.",
                        zh=f"订单{o.order_id}已于{self.lg.day(o.cancelled.at)}取消，不计入。",
                        evidence=(o.cancelled.event_id,),
                    )
                )
            else:
                out.append(
                    Reason(
                        code="order.refunded",
                        en=f"Order {o.order_id} was fully refunded ({_money(o)}) and does not count.",
                        zh=f"订单{o.order_id}已全额退款（{_money(o)}），不计入。",
                        evidence=tuple(r.event_id for r in o.refunds),
                    )
                )
        for o in self.lg.partly_refunded_orders():
            assert o.paid is not None
            out.append(
                Reason(
                    code="order.partly_refunded",
                    en=f"Order {o.order_id} was partly refunded ({o.paid.currency} {o.refunded} of {o.paid.amount}); it still counts.",
                    zh=f"订单{o.order_id}部分退款（{o.paid.amount}中退{o.refunded}），仍计入。",
                    evidence=tuple(r.event_id for r in o.refunds),
                )
            )
        return out

    def boundaries(self) -> list[datetime]:
        """The instants at which time alone may change the stage: the starts of the days after
        the last valid order's idle limit and after the latest complaint's window."""
        days: list[date] = []
        if self.lg.last_day is not None:
            days.append(self.lg.last_day + timedelta(days=self.p.long_term_max_idle_days + 1))
        c = self.lg.last_complaint
        if c is not None:
            days.append(self.lg.day(c.at) + timedelta(days=self.p.complaint_free_days + 1))
        return [_midnight(d, self.lg) for d in days]

    def next_boundary(self) -> datetime | None:
        """The earliest instant after ``now`` at which time alone may change the stage."""
        return min((t for t in self.boundaries() if t > self.now), default=None)


def _midnight(day: date, ledger: Ledger) -> datetime:
    """The first instant of ``day`` in the customer's zone.

    Only the instant matters: a midnight inside a DST gap (fold 0) maps to the instant the day
    actually starts, and an ambiguous one (fold 0) to its first occurrence.
    """
    return datetime.combine(day, time(0), tzinfo=ledger.tz)


# -- public functions ---------------------------------------------------------------------------


def assess_stage(
    history: Sequence[Event],
    policy: Policy,
    now: datetime,
    *,
    referrals: Mapping[str, datetime] | None = None,
) -> StageAssessment:
    """The customer's stage at ``now`` from their events at or before ``now``.

    Args:
        history: the customer's events, in any order.
        policy: the thresholds (``policy.stage``) and the shop's time zone.
        now: the instant to assess at; aware.
        referrals: for each customer this one referred, when that customer's first valid order
            was paid (customers with no valid order are left out). The facade fills it in.
    """
    now = to_utc(require_aware(now, "now"))
    ledger = fold(history, policy, now)
    return StageJudge(ledger, referrals or {}, now).decide()


Period: TypeAlias = tuple[datetime, datetime | None]
"""From ``since`` (included) until ``until`` (excluded; ``None``: still)."""


def conversion_periods(
    history: Sequence[Event], policy: Policy, now: datetime
) -> tuple[Period, ...]:
    """The periods up to ``now`` in which the customer had a valid order, oldest first.

    A customer referred by another counts as converted in these periods, as an assessment at
    each instant reads it: an order paid and later refunded counted until the refund.
    """
    now = to_utc(require_aware(now, "now"))
    ledger = Ledger(policy, zone(policy.timezone))  # valid or not does not depend on the zone
    events = ordered(history, now)
    out: list[Period] = []
    since: datetime | None = None
    for i, event in enumerate(events):
        ledger.apply(event)
        at = sort_key(event)[0]
        if i + 1 < len(events) and sort_key(events[i + 1])[0] == at:
            continue  # read the state once every event at this instant is in
        if ledger.valid_count and since is None:
            since = at
        elif not ledger.valid_count and since is not None:
            out.append((since, at))
            since = None
    if since is not None:
        out.append((since, None))
    return tuple(out)


def referral_periods(
    histories: Mapping[str, Sequence[Event]], policy: Policy, now: datetime
) -> dict[str, dict[str, tuple[Period, ...]]]:
    """For each customer of ``histories`` who referred others: the :func:`conversion_periods`
    of each customer they referred (found in ``histories``), as :func:`stage_history` takes
    them. Customers whose referred customers never had a valid order are left out."""
    periods: dict[str, tuple[Period, ...]] = {}
    out: dict[str, dict[str, tuple[Period, ...]]] = {}
    for cid, history in histories.items():
        for e in history:
            if not isinstance(e, Referred) or e.referred_id not in histories:
                continue
            rid = e.referred_id
            if rid not in periods:
                periods[rid] = conversion_periods(histories[rid], policy, now)
            if periods[rid]:
                out.setdefault(cid, {})[rid] = periods[rid]
    return out


def stage_history(
    history: Sequence[Event],
    policy: Policy,
    now: datetime,
    *,
    referrals: Mapping[str, datetime | Sequence[Period]] | None = None,
) -> tuple[StageChange, ...]:
    """Every stage change the events imply, up to ``now``, oldest first.

    Stages change when an event arrives and when time passes a threshold (a long-term customer
    idle for over a year, a complaint leaving the complaint-free window, a referred customer's
    first order).

    Args:
        history: the customer's events, in any order.
        policy: the thresholds and the shop's time zone.
        now: the end of the replay; aware.
        referrals: for each customer this one referred, when that customer's first valid order
            was paid, or the periods in which they had a valid order
            (:func:`conversion_periods`), so that a referral whose order was refunded later
            counts in between, as an assessment then says. The facade passes the periods.
    """
    return stage_timeline(history, policy, now, referrals=referrals)[0]


def stage_timeline(
    history: Sequence[Event],
    policy: Policy,
    now: datetime,
    *,
    referrals: Mapping[str, datetime | Sequence[Period]] | None = None,
) -> tuple[tuple[StageChange, ...], datetime | None]:
    """:func:`stage_history`, and the first instant after ``now`` at which time alone may add
    a change (``None``: only new events can). Up to that instant, and with no new event, the
    changes stay the history's: what a snapshot keeps."""
    replay = stage_replay(history, policy, now, referrals=referrals)
    return replay.changes, replay.until


class StageReplay(NamedTuple):
    """What one replay of a history gives: :func:`stage_timeline`'s changes and instant, the
    events at or before ``now`` in replay order, and their fold (the ledger ``fold`` gives;
    ``None`` when there is no event)."""

    changes: tuple[StageChange, ...]
    until: datetime | None
    events: list[Event]
    ledger: Ledger | None


def stage_replay(
    history: Sequence[Event],
    policy: Policy,
    now: datetime,
    *,
    referrals: Mapping[str, datetime | Sequence[Period]] | None = None,
) -> StageReplay:
    """:func:`stage_timeline` with the fold it makes on the way, for a caller that needs both
    (a snapshot): one pass over the history instead of two."""
    now = to_utc(require_aware(now, "now"))
    periods = {
        rid: ((to_utc(p), None),)
        if isinstance(p, datetime)
        else tuple((to_utc(a), None if b is None else to_utc(b)) for a, b in p)
        for rid, p in (referrals or {}).items()
    }
    events = ordered(history, now)
    if not events:
        return StageReplay((), None, events, None)
    # The customer's zone as known at each instant, as an assessment then would read it.
    ledger = Ledger(policy, zone(policy.timezone))
    changes: list[StageChange] = []
    conversion_times = sorted(
        {t for ps in periods.values() for p in ps for t in p if t is not None and t <= now}
    )
    pending: list[datetime] = []
    instants = [sort_key(e)[0] for e in events]  # UTC, worked out when the event was made
    n = len(events)
    i = 0
    current: Stage | None = None
    seen: tuple[object, ...] = ()
    signed: tuple[object, ...] = ()
    while True:
        if i < n:
            t = instants[i]
            if pending and pending[0] < t:
                t = pending[0]
        elif pending:
            t = pending[0]
        else:
            break
        if t > now:
            break
        timed = False  # a time boundary or a conversion falls at t
        while pending and pending[0] <= t:
            heapq.heappop(pending)
            timed = True
        start = i
        facts = timed or current is None
        while i < n and instants[i] == t:
            if not facts and not isinstance(events[i], NO_STAGE_FACT):
                facts = True
            i += 1
        if not facts:
            # Only events that change no fact the stage table reads, and no boundary: the
            # stage, its boundaries and the zone stay as they were.
            for e in events[start:i]:
                ledger.apply(e)
            continue
        if timed or any(isinstance(e, _ZONED) for e in events[start:i]):
            tz = customer_zone(events[start:i], policy, ledger.tz)
            if tz != ledger.tz:
                # A profile moved the customer to another zone: their calendar days regroup,
                # so the replay so far starts again in the new zone (this happens rarely).
                ledger = Ledger(policy, tz)
                start = 0
            for e in events[start:i]:
                ledger.apply(e)
        else:
            for e in events[start:i]:
                ledger.apply(e)
            # Should the facts the stage table reads that do not move with time come out as
            # they were, the stage stays (those that move with time change it only at the
            # boundaries, which are timed).
            if _signature(ledger) == signed:
                continue
        converted = (
            {
                rid: since
                for rid, ps in periods.items()
                for since, until in ps
                if since <= t and (until is None or t < until)
            }
            if periods
            else {}
        )
        judge = StageJudge(ledger, converted, t)
        signed = _signature(ledger)
        # Reasons are built only where the stage changes: a long replay stays linear.
        if judge.stage() != current:
            result = judge.decide()
            current = result.stage
            changes.append(
                StageChange(
                    stage=result.stage,
                    since=t.astimezone(ledger.tz),
                    rule=result.rule,
                    evidence=result.evidence,
                    reasons=result.reasons,
                )
            )
        # The boundaries move only with the last valid day, the latest complaint and the zone.
        marks = (ledger.last_day, ledger.last_complaint, ledger.tz)
        if marks != seen:
            seen = marks
            for boundary in judge.boundaries():
                if boundary > t:
                    heapq.heappush(pending, boundary)
        for ct in conversion_times:
            if ct > t:
                heapq.heappush(pending, ct)
                break
    until = next((p for p in sorted(pending) if p > now), None)
    ledger.applied = len(events)  # as fold_ordered leaves it
    return StageReplay(tuple(changes), until, events, ledger)


_ZONED: Final = (CustomerRegistered, ProfileUpdated)


def _signature(lg: Ledger) -> tuple[object, ...]:
    """The facts the stage table reads (:class:`StageFacts`) that do not move with time, as
    the ledger holds them: the idle days and the complaint's age move with time, and change
    the stage only at the boundaries :meth:`StageJudge.boundaries` gives."""
    return (
        tuple(lg.partnerships),
        len(lg.referrals),
        lg.valid_count,
        len(lg.valid_days),
        lg.first_day,
        lg.last_day,
        lg.latest_nps,
        lg.review_count,
        lg.review_total,
        len(lg.open_complaints),
        lg.last_complaint,
        lg.engagement is not None,
    )


def stage_criteria(policy: StagePolicy | None = None, lang: str = "en") -> dict[Stage, str]:
    """The entry evidence of each stage under ``policy``, in words (``lang`` "en" or "zh").

    The words are those of :data:`STAGE_RULES`, and the stage tables in the docs are this
    function's output, so they always match the code.
    """
    p = policy or StagePolicy()
    lang = "zh" if lang == "zh" else "en"
    words = {
        "p": p,
        "engagements": ", ".join(sorted(p.prospect_engagements)),
        "partners": ", ".join(sorted(p.partnership_kinds)),
        "or_placed": _OR_PLACED[lang] if p.placed_order_is_engagement else "",
    }
    return {
        rule.stage: (rule.zh if lang == "zh" else rule.en).format(**words)
        for rule in reversed(STAGE_RULES)
    }


def stage_table(policy: StagePolicy | None = None) -> str:
    """The stage table under ``policy`` as Markdown, as the docs show it."""
    en, zh = stage_criteria(policy, "en"), stage_criteria(policy, "zh")
    rows = [
        "| # | stage | label | 中文 | entry evidence | 判定依据 |",
        "|---|---|---|---|---|---|",
    ]
    rows += [
        f"| {s.value} | `{s.name}` | {s.label_en} | {s.label_zh} | {en[s]} | {zh[s]} |"
        for s in Stage
    ]
    return "\n".join(rows)
