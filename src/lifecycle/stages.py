"""The eight relationship stages, derived from a customer's own events, with reasons.

Stage is the highest stage whose criteria hold at ``now``; see :class:`StagePolicy` for the
thresholds. :func:`assess_stage` gives today's stage, :func:`stage_history` every change.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import attrs

from lifecycle._ledger import Ledger, OrderState, customer_zone, fold, ordered
from lifecycle._time import require_aware, to_utc, zone
from lifecycle.events import Event, sort_key
from lifecycle.policy import Policy, StagePolicy
from lifecycle.reasons import Reason
from lifecycle.vocabulary import Stage

__all__ = [
    "StageAssessment",
    "StageChange",
    "assess_stage",
    "stage_criteria",
    "stage_history",
    "stage_table",
]


_PARTNER_ZH = {
    "agent": "代理商",
    "distributor": "经销商",
    "reseller": "分销商",
    "shareholder": "股东",
}


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
    """Reads a ledger at one instant and decides the stage, with reasons."""

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

    # criteria, each returning (holds, reason)

    def partner(self) -> tuple[bool, list[Reason]]:
        active = {k: e for k, e in self.lg.partnerships.items() if k in self.p.partnership_kinds}
        if active:
            kind, event = min(active.items(), key=lambda kv: sort_key(kv[1]))
            d = self.lg.day(event.at)
            return True, [
                Reason(
                    code="stage.partner",
                    en=f"Active {kind} partnership since {d}.",
                    zh=f"自{d}起为{_PARTNER_ZH[kind]}合作伙伴。",
                    evidence=tuple(e.event_id for e in active.values()),
                )
            ]
        notes = [
            Reason(
                code="stage.not_partner.ended",
                en=f"The {kind} partnership ended on {self.lg.day(e.at)}.",
                zh=f"{_PARTNER_ZH[kind]}合作已于{self.lg.day(e.at)}结束。",
                evidence=(e.event_id,),
            )
            for kind, e in self.lg.ended_partnerships.items()
        ]
        return False, notes

    def strategic(self) -> tuple[bool, list[Reason]]:
        n = len(self.converted)
        if (
            n >= self.p.strategic_min_referrals
            and self.lg.valid_count >= self.p.strategic_min_orders
        ):
            ids = ", ".join(sorted(self.converted))
            return True, [
                Reason(
                    code="stage.strategic",
                    en=f"Buys, and brought {n} customer(s) who bought: {ids}.",
                    zh=f"本人有成交，且转介绍的{n}位客户已成交：{ids}。",
                    evidence=tuple(e.event_id for e in self.converted.values()),
                )
            ]
        waiting = sorted(set(self.lg.referrals) - set(self.converted))
        notes = []
        if waiting:
            ids = ", ".join(waiting)
            notes.append(
                Reason(
                    code="stage.not_strategic.no_conversion",
                    en=f"Referred {ids}, who has not made a valid order yet.",
                    zh=f"已转介绍{ids}，但对方尚无有效订单。",
                    evidence=tuple(self.lg.referrals[r].event_id for r in waiting),
                )
            )
        elif n and self.lg.valid_count < self.p.strategic_min_orders:
            notes.append(
                Reason(
                    code="stage.not_strategic.no_orders",
                    en="Brought customers who bought, but has no valid order of their own.",
                    zh="转介绍的客户已成交，但本人尚无有效订单。",
                    evidence=tuple(e.event_id for e in self.converted.values()),
                )
            )
        return False, notes

    def long_term(self) -> tuple[bool, list[Reason]]:
        lg, p = self.lg, self.p
        if lg.first_day is None or lg.last_day is None:
            return False, []
        span = (lg.last_day - lg.first_day).days
        idle = (self.today - lg.last_day).days
        orders = lg.valid_orders()
        ids = tuple(o.paid.event_id for o in orders if o.paid is not None)
        if (
            lg.valid_count >= p.long_term_min_orders
            and span >= p.long_term_min_span_days
            and idle <= p.long_term_max_idle_days
        ):
            return True, [
                Reason(
                    code="stage.long_term",
                    en=(
                        f"{lg.valid_count} valid orders from {lg.first_day} to {lg.last_day} "
                        f"({span} days), the latest {idle} days ago."
                    ),
                    zh=(
                        f"{lg.first_day}至{lg.last_day}共{lg.valid_count}笔有效订单（跨度{span}天），"
                        f"最近一笔在{idle}天前。"
                    ),
                    evidence=ids,
                )
            ]
        if len(lg.valid_days) < p.repeat_min_days:
            return False, []
        if lg.valid_count < p.long_term_min_orders:
            why = Reason(
                code="stage.not_long_term.orders",
                en=f"{lg.valid_count} valid orders; long-term needs {p.long_term_min_orders}.",
                zh=f"有效订单{lg.valid_count}笔；长期客户需要{p.long_term_min_orders}笔。",
                evidence=ids,
            )
        elif span < p.long_term_min_span_days:
            why = Reason(
                code="stage.not_long_term.span",
                en=f"Valid orders span {span} days; long-term needs {p.long_term_min_span_days}.",
                zh=f"有效订单跨度{span}天；长期客户需要{p.long_term_min_span_days}天。",
                evidence=ids,
            )
        else:
            why = Reason(
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
        return False, [why]

    def trust(self) -> tuple[bool, list[Reason]]:
        lg, p = self.lg, self.p
        nps = lg.latest_nps
        if nps is not None and nps.score >= p.promoter_min_score:
            return True, [
                Reason(
                    code="stage.advocate.promoter",
                    en=f"Promoter: NPS answer {nps.score} on {lg.day(nps.at)}.",
                    zh=f"推荐者：{lg.day(nps.at)}净推荐值评分{nps.score}。",
                    evidence=(nps.event_id,),
                )
            ]
        avg = lg.review_average
        if (
            avg is not None
            and lg.review_count >= p.advocate_min_reviews
            and avg >= p.advocate_min_review_average
        ):
            return True, [
                Reason(
                    code="stage.advocate.reviews",
                    en=f"Reviews average {avg:.2f} of 5 over {lg.review_count} review(s).",
                    zh=f"{lg.review_count}条评价平均{avg:.2f}分（满分5分）。",
                    evidence=tuple(lg.review_ids),
                )
            ]
        parts_en, parts_zh = [], []
        if nps is not None:
            parts_en.append(f"latest NPS answer is {nps.score}")
            parts_zh.append(f"最近一次净推荐值评分为{nps.score}")
        if avg is not None:
            parts_en.append(f"reviews average {avg:.2f}")
            parts_zh.append(f"评价平均{avg:.2f}分")
        detail_en = f" ({'; '.join(parts_en)})" if parts_en else ""
        detail_zh = f"（{'；'.join(parts_zh)}）" if parts_zh else ""
        return False, [
            Reason(
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
        ]

    def complaint_free(self) -> tuple[bool, list[Reason]]:
        lg = self.lg
        if lg.open_complaints:
            oldest = min(lg.open_complaints.values(), key=sort_key)
            return False, [
                Reason(
                    code="stage.not_advocate.open_complaint",
                    en=f"Complaint {oldest.complaint_id} opened on {lg.day(oldest.at)} is still open.",
                    zh=f"{lg.day(oldest.at)}的投诉{oldest.complaint_id}尚未解决。",
                    evidence=(oldest.event_id,),
                )
            ]
        c = lg.last_complaint
        if c is not None and (self.today - lg.day(c.at)).days <= self.p.complaint_free_days:
            return False, [
                Reason(
                    code="stage.not_advocate.recent_complaint",
                    en=(
                        f"Complaint {c.complaint_id} was opened on {lg.day(c.at)}, within the last "
                        f"{self.p.complaint_free_days} days."
                    ),
                    zh=f"{lg.day(c.at)}有投诉{c.complaint_id}，在最近{self.p.complaint_free_days}天内。",
                    evidence=(c.event_id,),
                )
            ]
        return True, []

    def repeat(self) -> tuple[bool, list[Reason]]:
        lg = self.lg
        days = len(lg.valid_days)
        orders = lg.valid_orders()
        ids = tuple(o.paid.event_id for o in orders if o.paid is not None)
        if days >= self.p.repeat_min_days:
            return True, [
                Reason(
                    code="stage.repeat",
                    en=f"{lg.valid_count} valid orders on {days} different days, first {lg.first_day}, latest {lg.last_day}.",
                    zh=f"在{days}个不同日期共有{lg.valid_count}笔有效订单，首单{lg.first_day}，最近{lg.last_day}。",
                    evidence=ids,
                )
            ]
        if lg.valid_count > 1:
            return False, [
                Reason(
                    code="stage.not_repeat.same_day",
                    en=(
                        f"{lg.valid_count} valid orders, all on {lg.first_day}: a repeat buyer buys "
                        f"on {self.p.repeat_min_days} different days."
                    ),
                    zh=f"{lg.valid_count}笔有效订单都在{lg.first_day}同一天：重复购买需在{self.p.repeat_min_days}个不同日期下单。",
                    evidence=ids,
                )
            ]
        return False, []

    def first_purchase(self) -> tuple[bool, list[Reason]]:
        orders = self.lg.valid_orders()
        if not orders:
            return False, []
        o = orders[0]
        assert o.paid is not None
        return True, [
            Reason(
                code="stage.first_purchase",
                en=f"One valid order: {o.order_id} on {self.lg.day(o.paid.at)} ({_money(o)}).",
                zh=f"有一笔有效订单：{o.order_id}（{self.lg.day(o.paid.at)}，{_money(o)}）。",
                evidence=(o.paid.event_id,),
            )
        ]

    def prospect(self) -> tuple[bool, list[Reason]]:
        e = self.lg.engagement
        if e is None:
            return False, []
        what = getattr(e, "kind", None) or f"order {getattr(e, 'order_id', '')}"
        return True, [
            Reason(
                code="stage.prospect",
                en=f"Engaged ({what}) on {self.lg.day(e.at)}, no valid order yet.",
                zh=f"{self.lg.day(e.at)}有互动（{what}），尚无有效订单。",
                evidence=(e.event_id,),
            )
        ]

    def suspect(self) -> list[Reason]:
        e = self.lg.lead or self.lg.first_seen
        if e is None:
            return [
                Reason(
                    code="stage.suspect",
                    en="Known to the shop, no events yet.",
                    zh="已知客户，尚无任何记录。",
                )
            ]
        source = f" ({self.lg.lead.source})" if self.lg.lead is not None else ""
        return [
            Reason(
                code="stage.suspect",
                en=f"Known to the shop since {self.lg.day(e.at)}{source}, not engaged yet.",
                zh=f"自{self.lg.day(e.at)}起为已知客户{source}，尚无互动。",
                evidence=(e.event_id,),
            )
        ]

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

    def stage(self) -> Stage:
        """The stage alone, from running totals: what :meth:`decide` decides, cheaply."""
        lg, p = self.lg, self.p
        if any(k in p.partnership_kinds for k in lg.partnerships):
            return Stage.PARTNER
        if (
            len(self.converted) >= p.strategic_min_referrals
            and lg.valid_count >= p.strategic_min_orders
        ):
            return Stage.STRATEGIC
        if (
            lg.first_day is not None
            and lg.last_day is not None
            and lg.valid_count >= p.long_term_min_orders
            and (lg.last_day - lg.first_day).days >= p.long_term_min_span_days
            and (self.today - lg.last_day).days <= p.long_term_max_idle_days
        ):
            nps = lg.latest_nps
            avg = lg.review_average
            trusted = (nps is not None and nps.score >= p.promoter_min_score) or (
                avg is not None
                and lg.review_count >= p.advocate_min_reviews
                and avg >= p.advocate_min_review_average
            )
            last = lg.last_complaint
            calm = not lg.open_complaints and (
                last is None or (self.today - lg.day(last.at)).days > p.complaint_free_days
            )
            return Stage.ADVOCATE if trusted and calm else Stage.LONG_TERM
        if len(lg.valid_days) >= p.repeat_min_days:
            return Stage.REPEAT
        if lg.valid_count >= 1:
            return Stage.FIRST_PURCHASE
        return Stage.PROSPECT if lg.engagement is not None else Stage.SUSPECT

    def decide(self) -> StageAssessment:
        notes: list[Reason] = []
        decided: tuple[Stage, list[Reason]] | None = None
        ok, r = self.partner()
        if ok:
            decided = (Stage.PARTNER, r)
        else:
            notes += r
            ok, r = self.strategic()
            if ok:
                decided = (Stage.STRATEGIC, r)
            else:
                notes += r
        if decided is None:
            lt, lt_r = self.long_term()
            if lt:
                trust, trust_r = self.trust()
                calm, calm_r = self.complaint_free()
                if trust and calm:
                    decided = (Stage.ADVOCATE, trust_r + lt_r)
                else:
                    decided = (Stage.LONG_TERM, lt_r)
                    notes += ([] if trust else trust_r) + calm_r
            else:
                notes += lt_r
        if decided is None:
            ok, r = self.repeat()
            if ok:
                decided = (Stage.REPEAT, r)
            else:
                notes += r
                ok, r = self.first_purchase()
                if ok:
                    decided = (Stage.FIRST_PURCHASE, r)
                else:
                    ok, r = self.prospect()
                    decided = (Stage.PROSPECT, r) if ok else (Stage.SUSPECT, self.suspect())
        stage, reasons = decided
        notes += self.undone()
        return StageAssessment(
            stage=stage,
            rule=reasons[0].code,
            evidence=reasons[0].evidence,
            reasons=tuple(reasons + notes),
            as_of=self.now,
        )

    def next_boundary(self) -> datetime | None:
        """The earliest instant after ``now`` at which time alone may change the stage."""
        days: list[date] = []
        if self.lg.last_day is not None:
            days.append(self.lg.last_day + timedelta(days=self.p.long_term_max_idle_days + 1))
        c = self.lg.last_complaint
        if c is not None:
            days.append(self.lg.day(c.at) + timedelta(days=self.p.complaint_free_days + 1))
        out = [_midnight(d, self.lg) for d in days]
        return min((t for t in out if t > self.now), default=None)


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


def stage_history(
    history: Sequence[Event],
    policy: Policy,
    now: datetime,
    *,
    referrals: Mapping[str, datetime] | None = None,
) -> tuple[StageChange, ...]:
    """Every stage change the events imply, up to ``now``, oldest first.

    Stages change when an event arrives and when time passes a threshold (a long-term customer
    idle for over a year, a complaint leaving the complaint-free window, a referred customer's
    first order).
    """
    now = to_utc(require_aware(now, "now"))
    converted = {rid: to_utc(t) for rid, t in (referrals or {}).items()}
    events = ordered(history, now)
    if not events:
        return ()
    # The customer's zone as known at each instant, as an assessment then would read it.
    ledger = Ledger(policy, zone(policy.timezone))
    changes: list[StageChange] = []
    conversion_times = sorted(t for t in converted.values() if t <= now)
    pending: list[datetime] = []
    i = 0
    current: Stage | None = None
    while True:
        candidates = []
        if i < len(events):
            candidates.append(to_utc(events[i].at))
        if pending:
            candidates.append(pending[0])
        if not candidates:
            break
        t = min(candidates)
        if t > now:
            break
        while pending and pending[0] <= t:
            heapq.heappop(pending)
        start = i
        while i < len(events) and to_utc(events[i].at) == t:
            i += 1
        tz = customer_zone(events[start:i], policy, ledger.tz)
        if tz != ledger.tz:
            # A profile moved the customer to another zone: their calendar days regroup, so
            # the replay so far starts again in the new zone (this happens rarely).
            ledger = Ledger(policy, tz)
            start = 0
        for e in events[start:i]:
            ledger.apply(e)
        judge = StageJudge(ledger, converted, t)
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
        boundary = judge.next_boundary()
        if boundary is not None:
            heapq.heappush(pending, boundary)
        for ct in conversion_times:
            if ct > t:
                heapq.heappush(pending, ct)
                break
    return tuple(changes)


def stage_criteria(policy: StagePolicy | None = None, lang: str = "en") -> dict[Stage, str]:
    """The entry evidence of each stage under ``policy``, in words (``lang`` "en" or "zh").

    The stage tables in the docs are this function's output, so they always match the code.
    """
    p = policy or StagePolicy()
    engagements = ", ".join(sorted(p.prospect_engagements))
    partners = ", ".join(sorted(p.partnership_kinds))
    if lang == "zh":
        return {
            Stage.SUSPECT: "已知客户（线索、访客、关注者），尚无互动",
            Stage.PROSPECT: f"有互动（{engagements}"
            + ("，或已下单" if p.placed_order_is_engagement else "")
            + "），尚无有效订单",
            Stage.FIRST_PURCHASE: "一笔有效订单（已付款、未取消、未全额退款）",
            Stage.REPEAT: f"在{p.repeat_min_days}个不同日期有有效订单",
            Stage.LONG_TERM: (
                f"至少{p.long_term_min_orders}笔有效订单，跨度至少{p.long_term_min_span_days}天，"
                f"最近一笔在{p.long_term_max_idle_days}天内"
            ),
            Stage.ADVOCATE: (
                f"长期客户，且净推荐值{p.promoter_min_score}分以上或评价平均"
                f"{p.advocate_min_review_average}分以上，且无未解决投诉、"
                f"{p.complaint_free_days}天内无新投诉"
            ),
            Stage.STRATEGIC: (
                f"本人有{p.strategic_min_orders}笔以上有效订单，且转介绍的客户中至少"
                f"{p.strategic_min_referrals}位已成交"
            ),
            Stage.PARTNER: f"有生效的合作协议（{partners}）",
        }
    return {
        Stage.SUSPECT: "known to the shop (lead, visitor, follower), not engaged",
        Stage.PROSPECT: f"engaged ({engagements}"
        + (", or placed an order" if p.placed_order_is_engagement else "")
        + "), no valid order",
        Stage.FIRST_PURCHASE: "one valid order (paid, not cancelled, not fully refunded)",
        Stage.REPEAT: f"valid orders on {p.repeat_min_days} different days",
        Stage.LONG_TERM: (
            f"at least {p.long_term_min_orders} valid orders spanning at least "
            f"{p.long_term_min_span_days} days, the last within {p.long_term_max_idle_days} days"
        ),
        Stage.ADVOCATE: (
            f"long-term, with an NPS answer of {p.promoter_min_score}+ or reviews averaging "
            f"{p.advocate_min_review_average}+, no complaint open and none opened within "
            f"{p.complaint_free_days} days"
        ),
        Stage.STRATEGIC: (
            f"at least {p.strategic_min_orders} valid order(s) of their own, and at least "
            f"{p.strategic_min_referrals} referred customer(s) with a valid order"
        ),
        Stage.PARTNER: f"an active partnership agreement ({partners})",
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
