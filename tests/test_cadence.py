"""Follow-up cadence: every rule kind, the contact policy and the planner's guarantees."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs
import pytest

import lifecycle as lc
from builders import PHONE, address_for
from lifecycle.cadence import (
    AfterEvent,
    CadencePolicy,
    Campaign,
    Caps,
    ContactPolicy,
    Festival,
    Hold,
    Occurrence,
    Outcome,
    QuietHours,
    Segment,
    SequenceStep,
    StepSequence,
    Template,
    default_templates,
)
from lifecycle.cadence.planner import Plan, plan_customer, plan_customers
from lifecycle.reasons import Reason
from lifecycle.record import CustomerRecord

SH = ZoneInfo("Asia/Shanghai")
ALL = ("transactional", "service", "marketing")
BASE = lc.Policy(timezone="Asia/Shanghai")


def at(
    y: int, m: int, d: int, h: int = 12, mi: int = 0, tz: ZoneInfo = SH, fold: int = 0
) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=tz, fold=fold)


JAN1 = at(2025, 1, 1)


def policy(*rule_ids: str, **changes: object) -> lc.Policy:
    """The default policy with only the rules named (all when none)."""
    cadence = BASE.cadence
    if rule_ids:
        cadence = attrs.evolve(cadence, rules=tuple(cadence.rule(r) for r in rule_ids))
    if changes:
        cadence = attrs.evolve(cadence, **changes)
    return attrs.evolve(BASE, cadence=cadence)


def registered(
    cid: str = "c1",
    *,
    when: datetime = JAN1,
    tz: str = "Asia/Shanghai",
    channels: Sequence[str] = ("sms",),
    consent: Iterable[str] = ALL,
    **profile: object,
) -> lc.CustomerRegistered:
    contacts = tuple(
        lc.ContactPoint(channel=c, address=address_for(c), consent=frozenset(consent))
        for c in channels
    )
    return lc.CustomerRegistered(
        customer_id=cid,
        at=when,
        profile=lc.Profile(name="Li", timezone=tz, contacts=contacts, **profile),  # type: ignore[arg-type]
    )


def money(
    cls: type[lc.OrderPlaced] | type[lc.OrderPaid], oid: str, when: datetime, **kw: object
) -> lc.Event:
    return cls(
        customer_id="c1", order_id=oid, at=when, amount=Decimal("100.00"), currency="CNY", **kw
    )  # type: ignore[arg-type]


def bought(oid: str, when: datetime, **kw: object) -> list[lc.Event]:
    return [money(lc.OrderPlaced, oid, when, **kw), money(lc.OrderPaid, oid, when, **kw)]


def plan(events: Sequence[lc.Event], now: datetime, pol: lc.Policy = BASE, **kw: object) -> Plan:
    return plan_customer(events, pol, now, **kw)  # type: ignore[arg-type]


def due(p: Plan, rule: str | None = None) -> list[lc.FollowUp]:
    return [f for f in p.due if rule is None or f.rule == rule]


def held(p: Plan, rule: str) -> list[lc.Held]:
    return [h for h in p.held if h.follow_up.rule == rule]


def sent(f: lc.FollowUp, when: datetime | None = None) -> lc.Contacted:
    """The Contacted event a dispatcher records after sending ``f``."""
    return lc.Contacted(
        customer_id=f.customer_id,
        at=when or f.due_at,
        channel=f.channel if f.channel in lc.CONTACT_CHANNELS else "sms",
        purpose=f.purpose,
        rule=f.rule,
        template=f.template,
        key=f.key,
    )


# -- after an event -----------------------------------------------------------------------------


def test_a_payment_reminder_follows_an_unpaid_order_once_and_stops_when_paid() -> None:
    h = [registered(), money(lc.OrderPlaced, "o1", at(2026, 3, 2, 10))]
    p = plan(h, at(2026, 3, 2, 11, 30), policy("payment_reminder"))
    [f] = due(p)
    assert f.key == "c1:payment_reminder:o1"
    assert f.due_at == at(2026, 3, 2, 11)
    assert "waiting for payment" in f.text_en
    assert "尚未付款" in f.text_zh
    paid = [*h, money(lc.OrderPaid, "o1", at(2026, 3, 2, 10, 30))]
    p = plan(paid, at(2026, 3, 2, 11, 30), policy("payment_reminder"))
    assert not p.due
    [h1] = p.held
    assert (h1.hold, h1.outcome) == (Hold.STOPPED, Outcome.SUPPRESSED)
    assert h1.reason.code == "cadence.stopped.paid"
    assert "paid" in h1.reason.en
    assert "付款" in h1.reason.zh


def test_a_cancelled_order_stops_the_payment_reminder() -> None:
    h = [
        registered(),
        money(lc.OrderPlaced, "o1", at(2026, 3, 2, 10)),
        lc.OrderCancelled(customer_id="c1", order_id="o1", at=at(2026, 3, 2, 10, 20)),
    ]
    [h1] = plan(h, at(2026, 3, 2, 12), policy("payment_reminder")).held
    assert h1.reason.code == "cadence.stopped.cancelled"


def shipped(when: datetime, expected: datetime | None = None) -> list[lc.Event]:
    return [
        registered(),
        *bought("o1", when - timedelta(days=1)),
        lc.OrderShipped(
            customer_id="c1",
            order_id="o1",
            at=when,
            carrier="SF",
            tracking="SF123",
            expected_delivery=expected,
        ),
    ]


def test_a_shipping_notice_due_at_2330_local_is_planned_for_0900_the_next_morning() -> None:
    h = shipped(at(2026, 3, 2, 23, 30))
    p = plan(h, at(2026, 3, 2, 23, 30), policy("shipping_notice"))
    assert not p.due
    [h1] = p.held
    assert (h1.hold, h1.outcome) == (Hold.QUIET_HOURS, Outcome.DEFERRED)
    assert h1.until == at(2026, 3, 3, 9) == h1.follow_up.due_at
    assert "09:00" in h1.reason.en
    assert "免打扰" in h1.reason.zh
    [f] = due(plan(h, at(2026, 3, 3, 9), policy("shipping_notice")))
    assert f.due_at == at(2026, 3, 3, 9)
    assert f.key == h1.follow_up.key
    assert f.text_en == "Hi Li, your order o1 has shipped with SF, tracking number SF123."
    assert f.text_zh == "Li您好，您的订单o1已发货，承运商SF，运单号SF123。"


@pytest.mark.parametrize(
    ("zone", "event", "expected"),
    [
        # Shanghai has no DST: 23:30 goes to 09:00 the next day.
        ("Asia/Shanghai", (2026, 3, 8, 23, 30, 0), (2026, 3, 9)),
        # Berlin springs forward at 02:00 on 29 March: 09:00 is CEST (+02:00).
        ("Europe/Berlin", (2026, 3, 28, 23, 30, 0), (2026, 3, 29)),
        # ... and falls back at 03:00 on 25 October: the 02:30 wall time happens twice.
        ("Europe/Berlin", (2026, 10, 25, 2, 30, 1), (2026, 10, 25)),
        # New York springs forward at 02:00 on 8 March and falls back on 1 November.
        ("America/New_York", (2026, 3, 7, 23, 30, 0), (2026, 3, 8)),
        ("America/New_York", (2026, 11, 1, 1, 30, 1), (2026, 11, 1)),
    ],
)
def test_quiet_hours_release_at_0900_local_on_dst_change_days(
    zone: str, event: tuple[int, int, int, int, int, int], expected: tuple[int, int, int]
) -> None:
    tz = ZoneInfo(zone)
    y, m, d, hh, mm, fold = event
    ship = at(y, m, d, hh, mm, tz=tz, fold=fold)
    nine = at(*expected, 9, tz=tz)
    h = [registered(tz=zone), *bought("o1", ship - timedelta(days=2))]
    h.append(lc.OrderShipped(customer_id="c1", order_id="o1", at=ship))
    [h1] = plan(h, ship, policy("shipping_notice")).held
    local = h1.follow_up.due_at.astimezone(tz)
    assert local.replace(tzinfo=None) == nine.replace(tzinfo=None)
    assert local.utcoffset() == nine.utcoffset()
    [f] = due(plan(h, nine, policy("shipping_notice")))
    assert f.due_at == nine


def test_a_shipping_notice_is_pointless_after_delivery() -> None:
    h = shipped(at(2026, 3, 2, 20))
    h.append(lc.OrderDelivered(customer_id="c1", order_id="o1", at=at(2026, 3, 2, 22)))
    [h1] = plan(h, at(2026, 3, 3, 9), policy("shipping_notice")).held
    assert h1.hold is Hold.STOPPED
    assert h1.reason.code == "cadence.stopped.delivered"


def delivered(when: datetime) -> list[lc.Event]:
    return [
        *shipped(when - timedelta(days=2)),
        lc.OrderDelivered(customer_id="c1", order_id="o1", at=when),
    ]


def test_care_message_three_days_and_review_request_seven_days_after_delivery() -> None:
    h = delivered(at(2026, 3, 2, 15))
    pol = policy("care_message", "review_request")
    assert not plan(h, at(2026, 3, 5, 14), pol).due
    assert [f.rule for f in plan(h, at(2026, 3, 5, 15), pol).due] == ["care_message"]
    p = plan(h, at(2026, 3, 9, 15), pol)
    assert [f.rule for f in p.due] == ["review_request"]
    assert [x.hold for x in held(p, "care_message")] == [Hold.EXPIRED]


def test_a_review_stops_the_review_request() -> None:
    h = delivered(at(2026, 3, 2, 15))
    h.append(lc.ReviewPosted(customer_id="c1", at=at(2026, 3, 4), rating=5, order_id="o1"))
    [h1] = plan(h, at(2026, 3, 9, 15), policy("review_request")).held
    assert h1.reason.code == "cadence.stopped.reviewed"


def test_a_complaint_becomes_a_task_for_the_owner_due_within_24_hours() -> None:
    h = [
        registered(channels=()),
        lc.ComplaintOpened(customer_id="c1", complaint_id="k1", at=at(2026, 3, 2, 14)),
    ]
    [f] = plan(h, at(2026, 3, 2, 14), policy("complaint_answer")).due
    assert (f.channel, f.purpose, f.key) == ("task", lc.Purpose.SERVICE, "c1:complaint_answer:k1")
    assert f.valid_until == at(2026, 3, 3, 14)
    late = plan(h, at(2026, 3, 3, 15), policy("complaint_answer"))
    assert [x.hold for x in late.held] == [Hold.EXPIRED]
    h.append(lc.ComplaintResolved(customer_id="c1", complaint_id="k1", at=at(2026, 3, 2, 16)))
    [h1] = plan(h, at(2026, 3, 2, 17), policy("complaint_answer")).held
    assert h1.reason.code == "cadence.stopped.resolved"


def test_a_satisfaction_check_follows_a_resolved_complaint_by_seven_days() -> None:
    h = [
        registered(),
        lc.ComplaintOpened(customer_id="c1", complaint_id="k1", at=at(2026, 3, 1)),
        lc.ComplaintResolved(customer_id="c1", complaint_id="k1", at=at(2026, 3, 2, 11)),
    ]
    [f] = plan(h, at(2026, 3, 9, 11), policy("satisfaction_check")).due
    assert f.due_at == at(2026, 3, 9, 11)


def test_a_referral_that_converts_earns_a_thank_you() -> None:
    referrer = [registered(), lc.Referred(customer_id="c1", referred_id="c2", at=at(2026, 3, 1))]
    friend: list[lc.Event] = [
        lc.OrderPaid(
            customer_id="c2",
            order_id="f1",
            at=at(2026, 3, 3, 15),
            amount=Decimal(50),
            currency="CNY",
        )
    ]
    p = plan_customers(
        {"c1": referrer, "c2": friend}, policy("referral_thanks"), at(2026, 3, 3, 16)
    )
    [f] = p.due
    assert (f.customer_id, f.key) == ("c1", "c1:referral_thanks:c2")
    assert not plan_customers({"c1": referrer}, policy("referral_thanks"), at(2026, 3, 3, 16)).due


# -- overdue ------------------------------------------------------------------------------------


def test_an_overdue_delivery_gives_a_notice_and_an_owner_task_once_per_order() -> None:
    h = shipped(at(2026, 3, 1, 10), expected=at(2026, 3, 3, 18))
    pol = policy("delivery_delayed", "delivery_delayed_task")
    assert not plan(h, at(2026, 3, 5, 17), pol).due
    p = plan(h, at(2026, 3, 5, 18), pol)
    assert sorted((f.rule, f.channel) for f in p.due) == [
        ("delivery_delayed", "sms"),
        ("delivery_delayed_task", "task"),
    ]
    again = plan([*h, *(sent(f) for f in p.due)], at(2026, 3, 5, 19), pol)
    assert not again.due
    assert {x.hold for x in again.held} == {Hold.DUPLICATE}
    h.append(lc.OrderDelivered(customer_id="c1", order_id="o1", at=at(2026, 3, 5, 12)))
    assert not plan(h, at(2026, 3, 5, 18), pol).due


# -- anniversaries ------------------------------------------------------------------------------


def test_a_29_february_birthday_is_greeted_on_28_february_2027() -> None:
    h = [registered(birthday=lc.Birthday(month=2, day=29, year=2000))]
    p = plan(h, at(2027, 2, 28, 12), policy("birthday"))
    [f] = p.due
    assert f.due_at == at(2027, 2, 28, 10)
    assert f.key == "c1:birthday:2027"
    assert f.valid_until == at(2027, 3, 1, 0)
    assert "Happy birthday, Li!" in f.text_en
    assert "回T退订" in f.text_zh
    assert not plan(h, at(2027, 3, 1, 12), policy("birthday")).due
    in_leap = plan(h, at(2028, 2, 29, 12), policy("birthday")).due
    assert [f.due_at for f in in_leap] == [at(2028, 2, 29, 10)]


def test_a_29_february_birthday_can_fall_on_1_march_by_policy() -> None:
    rule = attrs.evolve(BASE.cadence.rule("birthday"), feb29="mar1")  # type: ignore[misc]
    pol = attrs.evolve(BASE, cadence=attrs.evolve(BASE.cadence, rules=(rule,)))
    h = [registered(birthday=lc.Birthday(month=2, day=29))]
    [f] = plan(h, at(2027, 3, 1, 12), pol).due
    assert f.due_at == at(2027, 3, 1, 10)


def test_a_lunar_birthday_is_greeted_on_its_lunar_date() -> None:
    # Born 1990-08-04 = lunar 6/14; in lunar 2026 that is 2026-07-27.
    h = [registered(birthday=lc.Birthday(month=8, day=4, year=1990), lunar_birthday=True)]
    [f] = plan(h, at(2026, 7, 27, 12), policy("birthday")).due
    assert f.key == "c1:birthday:lunar2026"
    assert f.due_at == at(2026, 7, 27, 10)
    assert "lunar" in f.reason.en
    assert "农历" in f.reason.zh
    assert not plan(h, at(2026, 8, 4, 12), policy("birthday")).due


def test_a_lunar_birthday_outside_the_lunar_table_is_greeted_on_the_solar_date() -> None:
    # The lunar table starts on 1900-01-31 (lunar new year 1900); earlier births have no
    # lunar date there, so the solar birthday stands in rather than no greeting at all.
    h = [registered(birthday=lc.Birthday(month=1, day=1, year=1900), lunar_birthday=True)]
    [f] = plan(h, at(2026, 1, 1, 12), policy("birthday")).due
    assert f.key == "c1:birthday:2026"
    assert f.due_at == at(2026, 1, 1, 10)


def test_a_lunar_birthday_in_the_lunar_tables_last_year_is_still_lunar() -> None:
    # Lunar 2101 is past the table: that year is skipped, 2100 is greeted by the lunar date.
    h = [registered(birthday=lc.Birthday(month=8, day=4, year=1990), lunar_birthday=True)]
    [f] = plan(h, at(2100, 7, 20, 12), policy("birthday")).due
    assert f.key == "c1:birthday:lunar2100"
    assert not plan(h, at(2100, 8, 4, 12), policy("birthday")).due


def test_the_first_order_anniversary_is_greeted_a_year_later() -> None:
    h = [registered(), *bought("o1", at(2025, 6, 10, 20))]
    [f] = plan(h, at(2026, 6, 10, 12), policy("first_order_anniversary")).due
    assert f.key == "c1:first_order_anniversary:2026"


# -- holidays and festivals ---------------------------------------------------------------------


def test_spring_festival_greeting_goes_a_day_ahead_to_buyers_only() -> None:
    buyer = [registered(), *bought("o1", at(2025, 6, 1))]
    # Spring Festival 2026 is 17 February.
    [f] = plan(buyer, at(2026, 2, 16, 10), policy("spring_festival")).due
    assert f.key == "c1:spring_festival:spring_festival:2026"
    assert "Spring Festival" in f.text_en
    assert "春节" in f.text_zh
    assert not plan([registered()], at(2026, 2, 16, 10), policy("spring_festival")).due


def test_qixi_follows_the_lunar_calendar() -> None:
    h = [registered(), *bought("o1", at(2025, 6, 1)), *bought("o2", at(2025, 9, 1))]
    # Qixi (7th day of the 7th lunar month) is 19 August 2026; sent a day ahead.
    [f] = plan(h, at(2026, 8, 18, 10), policy("qixi")).due
    assert f.key == "c1:qixi:qixi:2026"
    assert "七夕" in f.text_zh


def test_other_countries_holidays_come_from_the_holidays_library() -> None:
    rule = Festival(
        id="thanksgiving",
        calendar="US",
        names={"thanksgiving_day"},
        purpose="marketing",
        channels=("email",),
        template="holiday_greeting",
    )
    pol = attrs.evolve(BASE, cadence=attrs.evolve(BASE.cadence, rules=(rule,)))
    h = [registered(tz="America/New_York", channels=("email",))]
    [f] = plan(h, at(2026, 11, 26, 11, tz=ZoneInfo("America/New_York")), pol).due
    assert f.due_at == at(2026, 11, 26, 10, tz=ZoneInfo("America/New_York"))
    assert "Thanksgiving" in f.text_en


# -- stage entry, tier, points ------------------------------------------------------------------


def test_becoming_a_repeat_buyer_earns_a_welcome() -> None:
    h = [registered(), *bought("o1", at(2026, 1, 5)), *bought("o2", at(2026, 3, 2, 15))]
    [f] = plan(h, at(2026, 3, 2, 16), policy("welcome_repeat")).due
    assert f.key == "c1:welcome_repeat:repeat:2026-03-02"
    assert "repeat buyer" in f.reason.en


def test_becoming_an_advocate_earns_a_referral_invitation() -> None:
    h = [
        registered(),
        *bought("o1", at(2025, 1, 5)),
        *bought("o2", at(2025, 5, 5)),
        *bought("o3", at(2025, 9, 5)),
    ]
    h.append(lc.FeedbackGiven(customer_id="c1", at=at(2025, 9, 10), score=10))
    [f] = plan(h, at(2025, 9, 10, 13), policy("referral_invite")).due
    assert f.rule == "referral_invite"
    assert "Invite a friend" in f.text_en


def test_a_tier_upgrade_is_congratulated() -> None:
    h = [
        registered(),
        lc.OrderPaid(
            customer_id="c1",
            order_id="big",
            at=at(2026, 3, 2, 14),
            amount=Decimal(6000),
            currency="CNY",
        ),
    ]
    [f] = plan(h, at(2026, 3, 2, 15), policy("tier_upgrade")).due
    assert "Gold" in f.text_en
    assert "金卡会员" in f.text_zh


def test_points_about_to_expire_get_a_reminder() -> None:
    h = [registered(), *bought("o1", at(2024, 4, 1, 12))]
    # The lot of 100 points expires at the end of 2026-04-01: 30 days ahead is 2026-03-02.
    p = plan(h, at(2026, 3, 3, 12), policy("points_expiring"))
    [f] = p.due
    assert "100" in f.text_en
    assert "2026-04-01" in f.text_en


# -- the owner's rhythm -------------------------------------------------------------------------


def test_prospects_are_followed_up_1_3_and_7_days_after_engaging_then_no_more() -> None:
    h: list[lc.Event] = [
        registered(),
        lc.Engaged(customer_id="c1", kind="inquiry", at=at(2026, 3, 1, 10)),
    ]
    pol = policy("prospect_follow_up")
    assert not plan(h, at(2026, 3, 2, 9), pol).due
    done = []
    for now in (at(2026, 3, 2, 10), at(2026, 3, 4, 10), at(2026, 3, 8, 10)):
        [f] = plan(h, now, pol).due
        assert f.channel == "task"
        done.append(f.key)
        h.append(sent(f, now))
    assert done == [f"c1:prospect_follow_up:{h[1].event_id}:{k}" for k in (1, 2, 3)]
    assert not plan(h, at(2026, 4, 1, 10), pol).due


def test_the_rhythm_counts_from_the_last_contact_of_any_kind() -> None:
    h: list[lc.Event] = [
        registered(),
        lc.Engaged(customer_id="c1", kind="chat", at=at(2026, 3, 1, 10)),
    ]
    # The owner chatted on day 1 for another reason: step 2 is due 2 days after that chat.
    h.append(lc.Contacted(customer_id="c1", channel="wechat", at=at(2026, 3, 2, 16)))
    pol = policy("prospect_follow_up")
    assert not plan(h, at(2026, 3, 4, 10), pol).due
    [f] = plan(h, at(2026, 3, 4, 16), pol).due
    assert f.key.endswith(":2")


def test_long_term_customers_hear_from_their_owner_monthly() -> None:
    h = [
        registered(),
        *bought("o1", at(2025, 1, 5)),
        *bought("o2", at(2025, 5, 5)),
        *bought("o3", at(2025, 9, 5)),
    ]
    h.append(lc.Contacted(customer_id="c1", channel="phone", at=at(2025, 10, 1, 10)))
    pol = policy("long_term_follow_up")
    assert not plan(h, at(2025, 10, 31, 9), pol).due
    [f] = plan(h, at(2025, 10, 31, 10), pol).due
    assert f.channel == "task"
    assert "every 30 days" in f.reason.en
    h.append(sent(f, at(2025, 10, 31, 11)))
    assert not plan(h, at(2025, 11, 15), pol).due
    [g] = plan(h, at(2025, 11, 30, 11), pol).due
    assert g.key != f.key


# -- replenishment and win-back -----------------------------------------------------------------


def test_replenishment_reminds_before_supply_runs_out_unless_bought_again() -> None:
    h = [registered(), *bought("o1", at(2026, 3, 1, 12), categories=("tea",))]
    pol = policy("replenish")
    # Tea lasts 45 days; the reminder goes 3 days before: 42 days after the payment.
    assert not plan(h, at(2026, 4, 12, 11), pol).due
    [f] = plan(h, at(2026, 4, 12, 12), pol).due
    assert f.key == "c1:replenish:o1:tea"
    h += bought("o2", at(2026, 4, 5), categories=("tea",))
    p = plan(h, at(2026, 4, 12, 12), pol)
    assert not p.due
    assert [x.reason.code for x in p.held] == ["cadence.stopped.purchased"]


def test_win_back_when_at_risk_and_a_stronger_offer_if_still_at_risk() -> None:
    h = [registered(), *bought("o1", at(2025, 1, 1))]
    pol = policy("win_back", "win_back_final")
    # One purchase day: the fallback gap is 90 days, x2: at risk from day 181 (2025-07-01).
    assert not plan(h, at(2025, 6, 30, 12), pol).due
    [f] = plan(h, at(2025, 7, 1, 12), pol).due
    assert f.rule == "win_back"
    h.append(sent(f))
    [g] = plan(h, at(2025, 7, 15, 12), pol).due
    assert g.rule == "win_back_final"
    h += bought("o2", at(2025, 7, 10))
    assert not plan(h, at(2025, 7, 15, 12), pol).due


# -- campaigns, sequences, rules as code --------------------------------------------------------


def campaign_policy(segment: Segment) -> lc.Policy:
    rule = Campaign(
        id="spring_tea",
        name_en="the spring tea sale",
        name_zh="春茶节",
        segment=segment,
        start=at(2026, 4, 1, 10),
        end=at(2026, 4, 3, 22),
        purpose="marketing",
        channels=("wechat", "sms"),
        template="campaign",
    )
    return attrs.evolve(BASE, cadence=attrs.evolve(BASE.cadence, rules=(rule,)))


def test_a_campaign_reaches_the_segment_it_selects_within_its_window() -> None:
    pol = campaign_policy(Segment(categories={"tea"}, min_spend=Decimal(50), tags={"vip"}))
    tea = {"categories": ("tea",)}
    histories: dict[str, list[lc.Event]] = {
        "c1": [registered("c1", tags={"vip"}), *bought("o1", at(2026, 1, 1), **tea)],
        "c2": [registered("c2"), *bought("o2", at(2026, 1, 1), **tea)],
        "c3": [
            registered("c3", tags={"vip"}, consent=("transactional",)),
            *bought("o3", at(2026, 1, 1), **tea),
        ],
    }
    for cid, events in histories.items():
        histories[cid] = [attrs.evolve(e, customer_id=cid, event_id="") for e in events]
    p = plan_customers(histories, pol, at(2026, 4, 1, 12))
    assert [f.customer_id for f in p.due] == ["c1"]
    assert [(x.follow_up.customer_id, x.hold) for x in p.held] == [("c3", Hold.NO_CONSENT)]
    assert "春茶节" in p.due[0].text_zh
    late = plan_customers(histories, pol, at(2026, 4, 4, 12))
    assert not late.due


def test_a_sequence_steps_on_until_the_customer_replies() -> None:
    steps = (SequenceStep(after_days=0, template="t1"), SequenceStep(after_days=2, template="t2"))
    rule = StepSequence(
        id="nurture", start="lead", steps=steps, purpose="service", channels=("sms",), template="t1"
    )
    templates = (
        Template(id="t1", en="Welcome to {shop_name}", zh="欢迎来到{shop_name}"),
        Template(id="t2", en="Questions, {customer_name}?", zh="{customer_name}，有问题吗？"),
    )
    pol = attrs.evolve(BASE, cadence=CadencePolicy(rules=(rule,), templates=templates))
    h: list[lc.Event] = [registered(), lc.LeadCaptured(customer_id="c1", at=at(2026, 3, 1, 10))]
    [f] = plan(h, at(2026, 3, 1, 10), pol).due
    assert f.text_en == "Welcome to our shop"
    h.append(sent(f))
    [g] = plan(h, at(2026, 3, 3, 10), pol).due
    assert g.text_zh == "Li，有问题吗？"
    h.append(lc.Replied(customer_id="c1", channel="sms", at=at(2026, 3, 2)))
    [x] = [x for x in plan(h, at(2026, 3, 3, 10), pol).held if x.hold is Hold.STOPPED]
    assert x.reason.code == "cadence.stopped.replied"


@attrs.frozen
class VipCall:
    """A host's rule as code: call big spenders on the 1st of each month."""

    id: str = "vip_call"
    template: str = "owner_follow_up"
    purpose: lc.Purpose = lc.Purpose.SERVICE
    channels: tuple[str, ...] = ("phone",)
    priority: int = 70

    def occurrences(self, facts: CustomerRecord) -> Iterable[Occurrence]:
        spend = sum((o.net_amount for o in facts.valid_orders()), Decimal(0))
        if spend >= 1000:
            day = facts.today.replace(day=1)
            due = facts.at(day, time(10))
            yield Occurrence(
                occurrence=day.isoformat(),
                due_at=due,
                valid_until=facts.day_end(day),
                reason=Reason(code="vip", en=f"Spent {spend}.", zh=f"消费{spend}。"),
            )


def test_a_host_registers_its_own_rule_as_code() -> None:
    pol = attrs.evolve(BASE, cadence=attrs.evolve(BASE.cadence, rules=(VipCall(),)))
    h = [
        registered(channels=("phone",), consent=("transactional", "service")),
        lc.OrderPaid(
            customer_id="c1", order_id="o1", at=at(2026, 2, 1), amount=Decimal(1500), currency="CNY"
        ),
    ]
    [f] = plan(h, at(2026, 3, 1, 11), pol).due
    assert (f.channel, f.contact_channel, f.key) == ("task", "phone", "c1:vip_call:2026-03-01")
    with pytest.raises(lc.PolicyError) as e:
        CadencePolicy(rules=(object(),))  # type: ignore[arg-type]
    assert e.value.key == "cadence.rules"


# -- consent and do-not-contact -----------------------------------------------------------------


def birthday_history(**kw: object) -> list[lc.Event]:
    return [registered(birthday=lc.Birthday(month=3, day=3), **kw)]  # type: ignore[arg-type]


def test_marketing_needs_marketing_consent_transactional_does_not() -> None:
    h = birthday_history(consent=("transactional",))
    [x] = plan(h, at(2026, 3, 3, 12), policy("birthday")).held
    assert (x.hold, x.outcome, x.follow_up.channel) == (Hold.NO_CONSENT, Outcome.SUPPRESSED, None)
    assert "marketing" in x.reason.en
    assert "营销" in x.reason.zh
    ship = shipped(at(2026, 3, 2, 12))
    ship[0] = registered(consent=())
    assert [f.rule for f in plan(ship, at(2026, 3, 2, 12), policy("shipping_notice")).due] == [
        "shipping_notice"
    ]


def test_an_opt_out_stops_marketing_but_not_what_the_law_requires() -> None:
    h = [
        *shipped(at(2026, 3, 3, 12)),
        lc.ConsentChanged(
            customer_id="c1", channel="sms", purpose="marketing", granted=False, at=at(2026, 3, 1)
        ),
    ]
    h[0] = registered(birthday=lc.Birthday(month=3, day=3))
    p = plan(h, at(2026, 3, 3, 12), policy("birthday", "shipping_notice"))
    assert [f.rule for f in p.due] == ["shipping_notice"]
    [x] = p.held
    assert (x.hold, x.reason.code) == (Hold.DO_NOT_CONTACT, "cadence.do_not_contact")
    assert "opted out" in x.reason.en


def test_consent_changes_apply_in_order() -> None:
    h = [
        *birthday_history(consent=("transactional",)),
        lc.ConsentChanged(
            customer_id="c1", channel="sms", purpose="marketing", granted=True, at=at(2026, 1, 1)
        ),
    ]
    assert due(plan(h, at(2026, 3, 3, 12), policy("birthday")))
    h.append(
        lc.ConsentChanged(
            customer_id="c1", channel="sms", purpose="marketing", granted=False, at=at(2026, 2, 1)
        )
    )
    assert not due(plan(h, at(2026, 3, 3, 12), policy("birthday")))


def test_an_erased_customer_gets_nothing_but_what_the_law_requires() -> None:
    h = [*birthday_history(), lc.CustomerErased(customer_id="c1", at=at(2026, 3, 1))]
    [x] = plan(h, at(2026, 3, 3, 12), policy("birthday")).held
    assert x.hold is Hold.DO_NOT_CONTACT
    assert "erased" in x.reason.en


def test_the_customers_preferred_channel_wins_then_the_rules_order() -> None:
    h = birthday_history(channels=("email", "wechat"))
    [f] = plan(h, at(2026, 3, 3, 12), policy("birthday")).due
    assert f.channel == "email"
    h = [registered(birthday=lc.Birthday(month=3, day=3), channels=("post", "sms", "wechat"))]
    [f] = plan(h, at(2026, 3, 3, 12), policy("birthday")).due
    assert f.channel == "wechat"  # post is not allowed by the rule; wechat comes first in it


# -- caps, gaps, priority -----------------------------------------------------------------------


def three_marketing_rules() -> list[lc.Event]:
    h = [registered(birthday=lc.Birthday(month=6, day=15)), *bought("o1", at(2025, 6, 15, 9))]
    h += bought("o2", at(2026, 5, 12, 9), categories=("tea",))  # tea reminder due 2026-06-23
    return h


def test_three_marketing_rules_due_the_same_day_give_one_send_and_two_deferrals() -> None:
    # On 15 June: the birthday (priority 45), the 618 sale 3 days ahead (25) and a tea
    # replenishment reminder (30, tea bought 42 days before).
    h = [
        registered(birthday=lc.Birthday(month=6, day=15)),
        *bought("o1", at(2026, 5, 4, 12), categories=("tea",)),
    ]
    fest = Festival(
        id="summer_sale",
        calendar="shop",
        names={"618"},
        lead_days=3,
        purpose="marketing",
        channels=("sms",),
        template="festival_sale",
        priority=25,
    )
    replenish = attrs.evolve(BASE.cadence.rule("replenish"), priority=30)  # type: ignore[misc]
    rules = (BASE.cadence.rule("birthday"), fest, replenish)
    pol = attrs.evolve(BASE, cadence=attrs.evolve(BASE.cadence, rules=rules))
    p = plan(h, at(2026, 6, 15, 12), pol)
    assert [f.rule for f in p.due] == ["birthday"]
    assert sorted((x.follow_up.rule, x.hold, x.outcome, x.until) for x in p.held) == [
        ("replenish", Hold.LOWER_PRIORITY, Outcome.DEFERRED, at(2026, 6, 17, 12)),
        ("summer_sale", Hold.LOWER_PRIORITY, Outcome.DEFERRED, at(2026, 6, 17, 12)),
    ]
    for x in p.held:
        assert "birthday" in x.reason.en
        assert "birthday" in x.reason.zh
    assert plan(h, at(2026, 6, 15, 12), pol) == p  # deterministic


def test_a_lower_priority_greeting_that_cannot_wait_expires_with_the_reason() -> None:
    h = [registered(birthday=lc.Birthday(month=6, day=15)), *bought("o1", at(2025, 6, 15, 9))]
    pol = policy("birthday", "first_order_anniversary")
    p = plan(h, at(2026, 6, 15, 12), pol)
    assert [f.rule for f in p.due] == ["birthday"]
    [x] = p.held
    assert (x.follow_up.rule, x.hold, x.outcome) == (
        "first_order_anniversary",
        Hold.EXPIRED,
        Outcome.SUPPRESSED,
    )
    assert "higher-priority birthday" in x.reason.en


def test_a_deferral_keeps_its_key_and_goes_out_when_the_gap_allows() -> None:
    fest = Festival(
        id="summer_sale",
        calendar="shop",
        names={"618"},
        lead_days=3,
        purpose="marketing",
        channels=("sms",),
        template="festival_sale",
        priority=25,
        valid_hours=24 * 10,
    )
    birthday = BASE.cadence.rule("birthday")
    pol = attrs.evolve(BASE, cadence=attrs.evolve(BASE.cadence, rules=(birthday, fest)))
    h = [registered(birthday=lc.Birthday(month=6, day=15))]
    p = plan(h, at(2026, 6, 15, 12), pol)
    [f] = p.due
    [x] = p.held
    assert (x.hold, x.outcome) == (Hold.LOWER_PRIORITY, Outcome.DEFERRED)
    assert x.until == at(2026, 6, 17, 12)  # 48 hours after the birthday greeting goes out
    h.append(sent(f, at(2026, 6, 15, 12)))
    [x2] = [x for x in plan(h, at(2026, 6, 16, 12), pol).held if x.hold is not Hold.DUPLICATE]
    assert (x2.hold, x2.until) == (Hold.MIN_GAP, at(2026, 6, 17, 12))
    [g] = plan(h, at(2026, 6, 17, 12), pol).due
    assert g.key == x.follow_up.key


def test_a_follow_up_deferred_past_its_validity_is_suppressed_as_expired() -> None:
    h = [
        *birthday_history(),
        lc.Contacted(
            customer_id="c1",
            channel="sms",
            purpose="marketing",
            rule="promo",
            at=at(2026, 3, 2, 20),
        ),
    ]
    [x] = plan(h, at(2026, 3, 3, 12), policy("birthday")).held
    assert (x.hold, x.outcome, x.until) == (Hold.EXPIRED, Outcome.SUPPRESSED, None)
    assert "frequency cap" in x.reason.en


def test_marketing_caps_two_in_seven_days_and_four_in_thirty() -> None:
    caps = ContactPolicy().marketing
    t0 = at(2026, 3, 1)
    assert caps.violation(t0 + timedelta(days=3), [t0]) is None
    assert caps.violation(t0 + timedelta(days=5), [t0, t0 + timedelta(days=3)]) == ("cap", t0)
    month = [t0, t0 + timedelta(days=7), t0 + timedelta(days=14), t0 + timedelta(days=21)]
    assert caps.violation(t0 + timedelta(days=28), month) is not None
    assert caps.violation(t0 + timedelta(days=30), month) is None
    assert caps.violation(t0 + timedelta(hours=47), [t0]) == ("min_gap", t0)
    assert caps.earliest(t0 + timedelta(days=5), [t0, t0 + timedelta(days=3)]) == t0 + timedelta(
        days=7
    )


def test_manual_contacts_count_in_the_same_budget_by_policy() -> None:
    h = [
        *birthday_history(),
        lc.Contacted(customer_id="c1", channel="phone", at=at(2026, 3, 2, 12)),
    ]
    [x] = plan(h, at(2026, 3, 3, 12), policy("birthday")).held
    assert x.hold is Hold.EXPIRED
    loose = attrs.evolve(BASE.cadence.contact, count_manual_contacts=False)
    assert plan(h, at(2026, 3, 3, 12), policy("birthday", contact=loose)).due


def test_service_messages_have_looser_limits_and_transactional_none() -> None:
    h: list[lc.Event] = [registered()]
    for i in range(6):
        h += bought(f"o{i}", at(2026, 3, 1, 10 + i))
        h.append(lc.OrderShipped(customer_id="c1", order_id=f"o{i}", at=at(2026, 3, 2, 10 + i)))
    p = plan(h, at(2026, 3, 2, 16), policy("shipping_notice"))
    assert len(p.due) == 6
    assert ContactPolicy().service.min_gap_hours < ContactPolicy().marketing.min_gap_hours


# -- the planner --------------------------------------------------------------------------------


def test_planning_twice_gives_the_same_keys_and_sending_is_recognised() -> None:
    h = [*delivered(at(2026, 3, 2, 15)), *birthday_history()[0:0]]
    now = at(2026, 3, 5, 15)
    first, second = plan(h, now), plan(h, now)
    assert first == second
    assert first.keys() == second.keys()
    assert first.keys()
    after = plan([*h, *(sent(f) for f in first.due)], now)
    assert not after.due
    assert {x.follow_up.key for x in after.held if x.hold is Hold.DUPLICATE} == set(first.keys())


def test_every_held_follow_up_says_why_in_english_and_chinese() -> None:
    h = three_marketing_rules()
    p = plan(h, at(2026, 6, 15, 23), horizon=timedelta(days=10))
    assert p.held
    for x in p.held:
        assert x.reason.code.startswith("cadence.")
        assert x.reason.en
        assert x.reason.zh
        assert (x.outcome is Outcome.DEFERRED) == (x.until is not None)


def test_a_customer_without_a_zone_lives_in_the_shops() -> None:
    h = shipped(at(2026, 3, 2, 23, 30))
    h[0] = lc.CustomerRegistered(
        customer_id="c1",
        at=at(2025, 1, 1),
        profile=lc.Profile(contacts=(lc.ContactPoint(channel="sms", address=PHONE),)),
    )
    [x] = plan(h, at(2026, 3, 2, 23, 30), policy("shipping_notice")).held
    assert x.until == at(2026, 3, 3, 9)
    assert x.follow_up.text_en.startswith("Hi there,")
    assert x.follow_up.text_zh.startswith("亲您好")


def test_plans_need_an_aware_now() -> None:
    with pytest.raises(lc.InvalidEvent):
        plan([registered()], datetime(2026, 3, 1))  # noqa: DTZ001


def test_the_default_rules_all_have_english_and_chinese_templates() -> None:
    cadence = BASE.cadence
    kinds = {type(r).__name__ for r in cadence.rules}
    assert kinds >= {
        "AfterEvent",
        "Overdue",
        "Anniversary",
        "Festival",
        "StageEntry",
        "Periodic",
        "Replenishment",
        "WinBack",
        "TierUpgrade",
        "PointsExpiry",
    }
    for r in cadence.rules:
        t = cadence.template(r.template)
        assert t.en
        assert t.zh
        assert t.purpose is r.purpose


# -- templates and policy loading ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "{customer.__class__}",
        "{0.__init__.__globals__}",
        "{customer_name.upper}",
        "{shop_name[0]}",
        "{}",
        "{customer_name!r}",
        "{customer_name:>99999}",
        "{nope}",
        "unbalanced {",
    ],
)
def test_templates_name_flat_fields_only(text: str) -> None:
    with pytest.raises(lc.PolicyError) as e:
        Template(id="bad", en=text, zh="好")
    assert e.value.key == "cadence.templates.bad.en"


def test_a_marketing_template_without_an_opt_out_is_rejected() -> None:
    with pytest.raises(lc.PolicyError, match="opt out") as e:
        Template(id="promo", purpose="marketing", en="Buy now!", zh="立即购买！回T退订")
    assert e.value.key == "cadence.templates.promo.en"
    Template(
        id="promo", purpose="marketing", en="Buy now! Reply STOP to opt out", zh="立即购买！回T退订"
    )


def test_rendering_substitutes_values_and_never_formats_them() -> None:
    t = Template(id="t", en="Hi {customer_name}, {{literal}}", zh="{customer_name}您好")
    assert (
        t.render({"customer_name": "{shop_name.__class__}"})
        == "Hi {shop_name.__class__}, {literal}"
    )
    assert t.render({}, "zh") == "您好"


def test_a_rule_must_use_a_known_template_of_its_purpose() -> None:
    bad = attrs.evolve(BASE.cadence.rule("birthday"), template="nope")  # type: ignore[misc]
    with pytest.raises(lc.PolicyError) as e:
        CadencePolicy(rules=(bad,))
    assert e.value.key == "cadence.rules.birthday.template"
    wrong = attrs.evolve(BASE.cadence.rule("birthday"), template="care_message")  # type: ignore[misc]
    with pytest.raises(lc.PolicyError, match="service"):
        CadencePolicy(rules=(wrong,))
    with pytest.raises(lc.PolicyError, match="duplicate"):
        CadencePolicy(rules=(BASE.cadence.rule("birthday"),) * 2)


@pytest.mark.parametrize(
    ("build", "key"),
    [
        (
            lambda: AfterEvent(
                id="x", on="nope", purpose="service", channels=("sms",), template="t"
            ),
            "cadence.rules.on",
        ),
        (
            lambda: AfterEvent(
                id="x", on="order_paid", purpose="nope", channels=("sms",), template="t"
            ),
            "cadence.rules.purpose",
        ),
        (
            lambda: AfterEvent(
                id="x", on="order_paid", purpose="service", channels=("fax",), template="t"
            ),
            "cadence.rules.channels",
        ),
        (
            lambda: AfterEvent(
                id="x",
                on="order_paid",
                purpose="service",
                channels=("sms",),
                template="t",
                priority=101,
            ),
            "cadence.rules.x.priority",
        ),
        (
            lambda: AfterEvent(
                id="x",
                on="order_paid",
                purpose="service",
                channels=("sms",),
                template="t",
                stages=["vip"],
            ),
            "cadence.rules.stages",
        ),
        (lambda: QuietHours(start="25:00"), "cadence.contact.quiet.start"),
        (lambda: Caps(limits=[(0, 7)]), "cadence.contact.caps.limits"),
    ],
)
def test_bad_rule_settings_name_the_key(build: object, key: str) -> None:
    with pytest.raises(lc.PolicyError) as e:
        build()  # type: ignore[operator]
    assert e.value.key == key


def test_the_policy_holds_the_cadence_part_with_defaults() -> None:
    assert isinstance(lc.Policy().cadence, CadencePolicy)
    q = lc.Policy().cadence.contact.quiet
    assert (q.start, q.end) == (time(21), time(9))
    with pytest.raises(lc.PolicyError) as e:
        lc.Policy(cadence="no")  # type: ignore[arg-type]
    assert e.value.key == "cadence"


def test_rules_and_templates_load_from_plain_data() -> None:
    cadence = CadencePolicy(
        rules=[
            {
                "kind": "after_event",
                "id": "thanks",
                "on": "order_paid",
                "delay_hours": 2,
                "purpose": "service",
                "channels": ["wechat"],
                "template": "thanks",
                "stages": ["first_purchase", 4],
                "stop": ["cancelled"],
            },
            {
                "kind": "festival",
                "id": "d11",
                "calendar": "shop",
                "names": ["double11"],
                "lead_days": 2,
                "send_at": "11:30",
                "purpose": "marketing",
                "channels": ["sms"],
                "template": "festival_sale",
            },
        ],
        templates=[
            {"id": "thanks", "en": "Thanks, {customer_name}!", "zh": "谢谢{customer_name}！"},
            *default_templates(),
        ],
    )
    thanks, d11 = cadence.rules
    assert isinstance(thanks, AfterEvent)
    assert thanks.kind == "after_event"
    assert thanks.stages == {lc.Stage.FIRST_PURCHASE, lc.Stage.REPEAT}
    assert isinstance(d11, Festival)
    assert d11.send_at == time(11, 30)
    with pytest.raises(lc.PolicyError) as e:
        CadencePolicy(rules=[{"kind": "telepathy", "id": "x"}])
    assert e.value.key == "cadence.rules.x.kind"
    with pytest.raises(lc.PolicyError) as e:
        CadencePolicy(rules=[{"kind": "festival", "id": "x", "colour": "red"}])
    assert e.value.key == "cadence.rules.x.colour"


def test_a_tier_downgrade_warning_goes_out_days_before_the_tier_ends() -> None:
    utc = ZoneInfo("UTC")
    history: list[lc.Event] = [
        lc.CustomerRegistered(
            customer_id="g",
            at=datetime(2025, 1, 1, tzinfo=utc),
            profile=lc.Profile(
                contacts=(
                    lc.ContactPoint(
                        channel="sms", address=PHONE, consent={"transactional", "service"}
                    ),
                )
            ),
        ),
        lc.OrderPaid(
            customer_id="g",
            order_id="o1",
            amount=Decimal("6000"),
            currency="CNY",
            at=datetime(2025, 1, 10, 12, tzinfo=utc),
        ),
    ]
    policy = lc.Policy()
    warning = lc.assess_tier(history, policy, datetime(2026, 1, 20, tzinfo=utc)).warning
    assert warning is not None
    early = lc.plan_customer(history, policy, datetime(2026, 1, 20, tzinfo=utc))
    assert "tier_downgrade_warning" not in {f.rule for f in early.due}
    plan = lc.plan_customer(history, policy, datetime(2026, 1, 27, 12, tzinfo=utc))
    (sent,) = [f for f in plan.due if f.rule == "tier_downgrade_warning"]
    assert str(warning.on) in sent.reason.en
    assert "¥5,000" in sent.reason.en
    # Spending enough keeps the tier, and the warning is no longer planned.
    kept = [
        *history,
        lc.OrderPaid(
            customer_id="g",
            order_id="o2",
            amount=Decimal("5000"),
            currency="CNY",
            at=datetime(2026, 1, 9, tzinfo=utc),
        ),
    ]
    later = lc.plan_customer(kept, policy, datetime(2026, 1, 27, 12, tzinfo=utc))
    assert "tier_downgrade_warning" not in {f.rule for f in later.due}
