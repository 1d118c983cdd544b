"""The stage table, row by row and edge by edge."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

import lifecycle as lc
from builders import POLICY, History, codes, day
from lifecycle import Stage

# -- the stage type -----------------------------------------------------------------------------


def test_stages_are_ordered_and_labelled_in_two_languages() -> None:
    assert list(Stage) == sorted(Stage)
    assert Stage.PARTNER > Stage.STRATEGIC > Stage.ADVOCATE > Stage.LONG_TERM
    assert Stage.REPEAT.label_en == "repeat buyer"
    assert Stage.REPEAT.label_zh == "重复购买客户"
    assert [s.label_zh for s in Stage] == [
        "猜想客户",
        "预期客户",
        "首次成交客户",
        "重复购买客户",
        "长期客户",
        "拥护者客户",
        "战略合作客户",
        "合伙人",
    ]


def test_stages_map_to_the_four_jobs_of_relationship_management() -> None:
    assert [s.job for s in Stage] == [
        lc.Job.SELECT,
        lc.Job.ACQUIRE,
        lc.Job.ACQUIRE,
        lc.Job.RETAIN,
        lc.Job.RETAIN,
        lc.Job.GROW,
        lc.Job.GROW,
        lc.Job.GROW,
    ]


# -- 1 suspect, 2 prospect ----------------------------------------------------------------------


def test_a_lead_is_a_suspect() -> None:
    a = History().lead(0).stage(10)
    assert a.stage is Stage.SUSPECT
    assert a.rule == "stage.suspect"
    assert "douyin" in a.reasons[0].en


def test_a_plain_visit_is_not_engagement() -> None:
    assert History().lead(0).engaged(1, "visit").stage(10).stage is Stage.SUSPECT


@pytest.mark.parametrize("kind", ["inquiry", "chat", "add_to_cart", "coupon_claim"])
def test_engagement_makes_a_prospect(kind: str) -> None:
    a = History().lead(0).engaged(1, kind).stage(10)
    assert a.stage is Stage.PROSPECT
    assert kind in a.reasons[0].en


def test_an_unpaid_order_makes_a_prospect_not_a_buyer() -> None:
    assert History().placed("o1", 1).stage(10).stage is Stage.PROSPECT


def test_a_cancelled_order_leaves_a_prospect_and_says_so() -> None:
    a = History().placed("o1", 1).paid("o1", 1).cancel("o1", 2).stage(10)
    assert a.stage is Stage.PROSPECT
    assert "order.cancelled" in codes(a.reasons)


def test_events_after_now_are_not_seen() -> None:
    h = History().lead(0).engaged(5)
    assert h.stage(4).stage is Stage.SUSPECT
    assert h.stage(5).stage is Stage.PROSPECT


# -- 3 first purchase, 4 repeat -----------------------------------------------------------------


def test_one_valid_order_is_a_first_time_buyer() -> None:
    a = History().orders(0).stage(1)
    assert a.stage is Stage.FIRST_PURCHASE
    assert a.evidence == ("order_paid:c1-o1",)


def test_two_orders_on_the_same_day_are_not_repeat_buying() -> None:
    a = History().paid("o1", 0, hour=9).paid("o2", 0, hour=18).stage(1)
    assert a.stage is Stage.FIRST_PURCHASE
    assert "stage.not_repeat.same_day" in codes(a.reasons)


def test_days_are_the_customers_own_calendar_days() -> None:
    # 23:30 and 00:30 in Shanghai: one UTC day, two local days.
    h = History().paid("o1", 0, hour=23).paid("o2", 1, hour=0)
    assert h.events[0].at.utctimetuple().tm_yday == h.events[1].at.utctimetuple().tm_yday
    assert h.stage(2).stage is Stage.REPEAT
    # The same instants seen by a customer in UTC fall on one day.
    h.zone("UTC")
    assert h.stage(2).stage is Stage.FIRST_PURCHASE


def test_orders_on_two_days_make_a_repeat_buyer() -> None:
    a = History().orders(0, 1).stage(2)
    assert a.stage is Stage.REPEAT
    assert a.evidence == ("order_paid:c1-o1", "order_paid:c1-o2")


def test_a_full_refund_undoes_an_order() -> None:
    h = History().orders(0, 10).refund("c1-o2", 12)
    a = h.stage(20)
    assert a.stage is Stage.FIRST_PURCHASE
    assert "order.refunded" in codes(a.reasons)


def test_a_partial_refund_keeps_the_order_valid() -> None:
    a = History().orders(0, 10).refund("c1-o2", 12, "40.00").stage(20)
    assert a.stage is Stage.REPEAT
    assert "order.partly_refunded" in codes(a.reasons)


def test_refunds_in_parts_that_add_up_undo_the_order() -> None:
    h = (
        History()
        .orders(0, 10)
        .refund("c1-o2", 12, "40.00")
        .add(
            lc.OrderRefunded(
                customer_id="c1", at=day(13), order_id="c1-o2", amount="60.00", currency="CNY"
            )
        )
    )
    assert h.stage(20).stage is Stage.FIRST_PURCHASE


# -- 5 long-term --------------------------------------------------------------------------------


def test_three_orders_spanning_exactly_180_days_are_long_term() -> None:
    a = History().orders(0, 90, 180).stage(181)
    assert a.stage is Stage.LONG_TERM
    assert a.rule == "stage.long_term"


def test_three_orders_spanning_179_days_are_not_long_term() -> None:
    a = History().orders(0, 90, 179).stage(181)
    assert a.stage is Stage.REPEAT
    assert "stage.not_long_term.span" in codes(a.reasons)


def test_two_orders_however_far_apart_are_not_long_term() -> None:
    a = History().orders(0, 300).stage(301)
    assert a.stage is Stage.REPEAT
    assert "stage.not_long_term.orders" in codes(a.reasons)


def test_long_term_holds_365_days_after_the_last_order_and_ends_the_day_after() -> None:
    h = History().orders(0, 90, 180)
    assert h.stage(180 + 365).stage is Stage.LONG_TERM
    a = h.stage(180 + 366)
    assert a.stage is Stage.REPEAT
    assert "stage.not_long_term.idle" in codes(a.reasons)
    assert "366 days" in next(r.en for r in a.reasons if r.code == "stage.not_long_term.idle")


def test_one_time_buyer_is_never_long_term() -> None:
    h = History().orders(0)
    for d in (1, 181, 365, 1000):
        assert h.stage(d).stage is Stage.FIRST_PURCHASE


def test_refunding_one_of_three_orders_drops_long_term_and_says_why() -> None:
    h = History().orders(0, 90, 180)
    assert h.stage(200).stage is Stage.LONG_TERM
    a = h.refund("c1-o2", 190).stage(200)
    assert a.stage is Stage.REPEAT
    assert {"stage.not_long_term.orders", "order.refunded"} <= set(codes(a.reasons))


# -- 6 advocate ---------------------------------------------------------------------------------


def _long_term() -> History:
    return History().orders(0, 90, 180)


@pytest.mark.parametrize(
    ("score", "stage"), [(9, Stage.ADVOCATE), (10, Stage.ADVOCATE), (8, Stage.LONG_TERM)]
)
def test_a_promoter_score_makes_a_long_term_customer_an_advocate(score: int, stage: Stage) -> None:
    assert _long_term().nps(181, score).stage(200).stage is stage


def test_the_latest_nps_answer_counts() -> None:
    a = _long_term().nps(100, 10).nps(181, 6).stage(200)
    assert a.stage is Stage.LONG_TERM
    assert "stage.not_advocate.no_trust_signal" in codes(a.reasons)
    assert "6" in next(r.en for r in a.reasons if r.code == "stage.not_advocate.no_trust_signal")


def test_csat_feedback_is_not_a_promoter_score() -> None:
    h = _long_term().add(lc.FeedbackGiven(customer_id="c1", at=day(181), score=5, kind="csat"))
    assert h.stage(200).stage is Stage.LONG_TERM


def test_reviews_averaging_4_5_make_an_advocate() -> None:
    assert _long_term().review(10, 4).review(100, 5).stage(200).stage is Stage.ADVOCATE


def test_reviews_averaging_below_4_5_do_not() -> None:
    assert (
        _long_term().review(10, 4).review(100, 5).review(150, 4).stage(200).stage is Stage.LONG_TERM
    )


def test_a_promoter_is_not_an_advocate_without_being_long_term() -> None:
    assert History().orders(0, 10).nps(11, 10).stage(20).stage is Stage.REPEAT


def test_an_open_complaint_blocks_advocacy() -> None:
    a = _long_term().nps(181, 10).complaint("k1", 20).stage(200)
    assert a.stage is Stage.LONG_TERM
    assert "stage.not_advocate.open_complaint" in codes(a.reasons)


@pytest.mark.parametrize(
    ("opened_days_ago", "stage"),
    [(89, Stage.LONG_TERM), (90, Stage.LONG_TERM), (91, Stage.ADVOCATE)],
)
def test_a_resolved_complaint_blocks_advocacy_for_90_days(
    opened_days_ago: int, stage: Stage
) -> None:
    now = 200
    h = (
        _long_term()
        .nps(181, 10)
        .complaint("k1", now - opened_days_ago)
        .resolved("k1", now - opened_days_ago + 1)
    )
    a = h.stage(now)
    assert a.stage is stage
    if stage is Stage.LONG_TERM:
        assert "stage.not_advocate.recent_complaint" in codes(a.reasons)


def test_an_advocate_who_stops_buying_for_over_a_year_is_neither_advocate_nor_long_term() -> None:
    assert _long_term().nps(181, 10).stage(180 + 366).stage is Stage.REPEAT


# -- 7 strategic --------------------------------------------------------------------------------


def test_a_buyer_whose_referral_bought_is_a_strategic_collaborator() -> None:
    h = History().orders(0).refer("r1", 5)
    a = h.stage(30, referrals={"r1": day(20)})
    assert a.stage is Stage.STRATEGIC
    assert "r1" in a.reasons[0].en


def test_a_referral_who_never_buys_does_not_make_a_strategic_collaborator() -> None:
    a = History().orders(0).refer("r1", 5).stage(30, referrals={})
    assert a.stage is Stage.FIRST_PURCHASE
    assert "stage.not_strategic.no_conversion" in codes(a.reasons)


def test_a_referral_counts_from_the_day_the_referred_customer_buys() -> None:
    h = History().orders(0).refer("r1", 5)
    assert h.stage(19, referrals={"r1": day(20)}).stage is Stage.FIRST_PURCHASE
    assert h.stage(20, referrals={"r1": day(20)}).stage is Stage.STRATEGIC


def test_a_referrer_who_does_not_buy_is_not_strategic() -> None:
    a = History().lead(0).refer("r1", 5).stage(30, referrals={"r1": day(20)})
    assert a.stage is Stage.SUSPECT
    assert "stage.not_strategic.no_orders" in codes(a.reasons)


# -- 8 partner ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(lc.PARTNERSHIP_KINDS))
def test_an_active_partnership_makes_a_partner(kind: str) -> None:
    a = History().lead(0).partner(kind, 10).stage(20)
    assert a.stage is Stage.PARTNER
    assert kind in a.reasons[0].en


def test_an_ended_partnership_no_longer_makes_a_partner_and_says_so() -> None:
    a = History().orders(0, 10).partner("reseller", 20).partner_ended("reseller", 30).stage(40)
    assert a.stage is Stage.REPEAT
    assert "stage.not_partner.ended" in codes(a.reasons)


def test_a_partnership_signed_again_is_active_again() -> None:
    h = History().partner("agent", 1).partner_ended("agent", 2).partner("agent", 3)
    assert h.stage(4).stage is Stage.PARTNER


def test_policy_can_narrow_which_partnerships_count() -> None:
    policy = lc.Policy(stage=lc.StagePolicy(partnership_kinds={"shareholder"}))
    h = History().lead(0).partner("agent", 1)
    assert lc.assess_stage(h.events, policy, day(2)).stage is Stage.SUSPECT


# -- reasons ------------------------------------------------------------------------------------


def test_every_reason_reads_in_english_and_chinese() -> None:
    a = (
        _long_term()
        .nps(181, 10)
        .complaint("k1", 150)
        .refer("r1", 5)
        .refund("c1-o1", 1, "10")
        .stage(200)
    )
    for r in a.reasons:
        assert r.en
        assert r.zh
        assert r.text("zh") == r.zh
        assert r.text("en") == r.en


def test_evidence_points_at_real_events() -> None:
    h = _long_term().nps(181, 10)
    a = h.stage(200)
    ids = {e.event_id for e in h.events}
    for r in a.reasons:
        assert set(r.evidence) <= ids


# -- stage history ------------------------------------------------------------------------------


def test_stage_history_tells_each_change_with_its_date_and_reason() -> None:
    h = History().lead(-10).engaged(-5).orders(0, 30, 200).nps(210, 10)
    changes = lc.stage_history(h.events, POLICY, day(300))
    assert [c.stage for c in changes] == [
        Stage.SUSPECT,
        Stage.PROSPECT,
        Stage.FIRST_PURCHASE,
        Stage.REPEAT,
        Stage.LONG_TERM,
        Stage.ADVOCATE,
    ]
    assert changes[3].since == day(30)
    assert changes[3].evidence[-1] == "order_paid:c1-o2"
    assert str(changes[3]).startswith("repeat buyer since 2025-01-31")


def test_stage_history_shows_time_lowering_the_stage_at_local_midnight() -> None:
    h = History().orders(0, 90, 180)
    changes = lc.stage_history(h.events, POLICY, day(1000))
    assert changes[-1].stage is Stage.REPEAT
    assert changes[-1].rule == "stage.repeat"
    assert "stage.not_long_term.idle" in codes(changes[-1].reasons)
    assert changes[-1].since == day(180 + 366, hour=0)


def test_stage_history_shows_a_complaint_window_closing() -> None:
    h = _long_term().nps(181, 10).complaint("k1", 185).resolved("k1", 186)
    changes = lc.stage_history(h.events, POLICY, day(400))
    assert [c.stage for c in changes][-2:] == [Stage.LONG_TERM, Stage.ADVOCATE]
    assert changes[-1].since == day(185 + 91, hour=0)


def test_stage_history_ends_at_the_current_stage() -> None:
    h = _long_term().nps(181, 10).refer("r1", 190)
    refs = {"r1": day(250)}
    changes = lc.stage_history(h.events, POLICY, day(300), referrals=refs)
    assert changes[-1].stage is h.stage(300, referrals=refs).stage is Stage.STRATEGIC
    assert changes[-1].since == day(250)


def test_stage_history_follows_the_zone_the_customer_had_at_each_instant() -> None:
    # Two orders at 10:36 and 13:30 UTC: one day in Shanghai (the shop's zone), two days in
    # Lord Howe (UTC+10:30), the zone the customer's profile names only three days later.
    from datetime import datetime
    from decimal import Decimal

    utc = ZoneInfo("UTC")
    paid = [
        lc.OrderPaid(
            customer_id="c1",
            at=datetime(2023, 5, 15, h, m, tzinfo=utc),
            order_id=f"o{h}",
            amount=Decimal("10"),
            currency="CNY",
        )
        for h, m in ((10, 36), (13, 30))
    ]
    moved = lc.ProfileUpdated(
        customer_id="c1",
        at=datetime(2023, 5, 18, 0, 0, tzinfo=utc),
        profile=lc.Profile(timezone="Australia/Lord_Howe"),
    )
    events = [*paid, moved]
    now = datetime(2023, 5, 20, tzinfo=utc)
    changes = lc.stage_history(events, POLICY, now)
    assert [c.stage for c in changes] == [Stage.FIRST_PURCHASE, Stage.REPEAT]
    assert changes[1].since == moved.at  # the days regroup when the zone becomes known
    for c in changes:
        assert lc.assess_stage(events, POLICY, c.since).stage is c.stage


def test_stage_history_is_empty_without_events() -> None:
    assert lc.stage_history([], POLICY, day(0)) == ()


def test_stage_history_handles_a_dst_change_in_the_customers_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    h = History().zone("Europe/Berlin").orders(0, 90, 180)
    changes = lc.stage_history(h.events, POLICY, day(1000))
    assert changes[-1].stage is Stage.REPEAT
    local = changes[-1].since.astimezone(berlin)
    assert (local.hour, local.minute) == (0, 0)
    assert local.date() == day(180).astimezone(berlin).date() + timedelta(days=366)
