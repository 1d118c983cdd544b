"""Properties of the planner over generated histories, zones and instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import attrs
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import lifecycle as lc
from builders import marketing_consent
from lifecycle.cadence import Hold, next_allowed
from lifecycle.cadence.planner import plan_customer
from lifecycle.testing.strategies import aware_datetimes, histories

ZONES = (
    "Asia/Shanghai",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST
    "America/Havana",  # DST at midnight: some local midnights do not exist
    "America/Santiago",  # DST at midnight, southern hemisphere
    "Asia/Kolkata",
    "Pacific/Chatham",
)
START = datetime(2024, 1, 1, tzinfo=UTC)
POLICY = lc.Policy(timezone="Asia/Shanghai")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=histories(start=START, days=400, zones=ZONES),
    anywhere=aware_datetimes(min_value=START, max_value=START + timedelta(days=420), zones=ZONES),
    pick=st.integers(0, 10_000),
    after=st.integers(0, 60 * 24 * 45),
    near=st.booleans(),
    eager=st.booleans(),
    horizon_hours=st.sampled_from([0, 6, 48]),
)
@example(  # planned in the repeated hour of a DST fold (the later of the two 01:00s)
    events=[
        lc.LeadCaptured(
            customer_id="c1", at=datetime(2024, 1, 1, 8, tzinfo=ZoneInfo("Asia/Shanghai"))
        )
    ],
    anywhere=datetime(2024, 11, 3, 1, fold=1, tzinfo=ZoneInfo("America/New_York")),
    pick=0,
    after=0,
    near=False,
    eager=True,
    horizon_hours=0,
)
def test_no_planned_marketing_message_breaks_caps_quiet_hours_or_consent(
    events: list[lc.Event],
    anywhere: datetime,
    pick: int,
    after: int,
    near: bool,
    eager: bool,
    horizon_hours: int,
) -> None:
    # Mostly plan shortly after one of the events, where follow-ups cluster.
    now = events[pick % len(events)].at + timedelta(minutes=after) if near else anywhere
    if eager:
        # A customer who consents to everything on two channels and has a birthday soon, so
        # that marketing follow-ups compete; later events may still withdraw consent.
        events = [
            lc.ProfileUpdated(
                customer_id="c1",
                at=START - timedelta(days=1),
                profile=lc.Profile(
                    birthday=lc.Birthday(month=now.month, day=now.day),
                    contacts=(
                        lc.ContactPoint(channel="wechat", address="w", consent=lc.Purpose),
                        lc.ContactPoint(
                            channel="sms", address="+8613800000001", consent=lc.Purpose
                        ),
                    ),
                ),
            ),
            *events,
        ]
    horizon = timedelta(hours=horizon_hours)
    plan = plan_customer(events, POLICY, now, horizon=horizon)
    assert plan == plan_customer(events, POLICY, now, horizon=horizon)
    keys = [f.key for f in plan.due]
    assert len(keys) == len(set(keys))
    facts = lc.CustomerRecord("c1", events, POLICY, now)
    contact = POLICY.cadence.contact
    counted = [
        c.at.astimezone(UTC)
        for c in facts.contacts
        if c.purpose is lc.Purpose.MARKETING or (c.rule is None and c.purpose is None)
    ]
    sends = {f.key: max(f.due_at, now).astimezone(UTC) for f in plan.due}
    marketing = [f for f in plan.due if f.purpose is lc.Purpose.MARKETING]
    for f in plan.due:
        local = sends[f.key].astimezone(facts.tz)
        assert not contact.quiet.contains(local.time()), (f.key, local)
        assert sends[f.key] < f.valid_until
    for f in marketing:
        assert f.channel in lc.CONTACT_CHANNELS
        assert facts.erased is None
        assert marketing_consent(events, now, f.channel)
        others = counted + [sends[g.key] for g in marketing if g is not f]
        assert contact.marketing.violation(sends[f.key], others) is None, f.key
    # Sending what was due and planning again never plans the same key twice.
    done = [
        lc.Contacted(
            customer_id=f.customer_id,
            at=sends[f.key],
            channel="sms",
            purpose=f.purpose,
            rule=f.rule,
            key=f.key,
        )
        for f in plan.due
    ]
    # Step in UTC: wall-clock arithmetic in the zone would drop ``fold`` and step back an hour.
    later = plan_customer([*events, *done], POLICY, now.astimezone(UTC) + horizon, horizon=horizon)
    assert not set(later.keys()) & set(keys)
    for h in later.held:
        if h.follow_up.key in keys:
            assert h.hold is Hold.DUPLICATE


BIRTHDAY_ONLY = attrs.evolve(
    POLICY, cadence=attrs.evolve(POLICY.cadence, rules=(POLICY.cadence.rule("birthday"),))
)


@st.composite
def birthdays(draw: st.DrawFn) -> lc.Birthday:
    if draw(st.booleans()):
        return lc.Birthday(month=2, day=29)
    return draw(
        st.builds(
            lambda m, d: lc.Birthday(
                month=m, day=min(d, [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1])
            ),
            st.integers(1, 12),
            st.integers(1, 31),
        )
    )


@settings(max_examples=20, deadline=None)
@given(
    birthday=birthdays(),
    zone=st.sampled_from(ZONES),
    year=st.integers(2025, 2030),
    hour=st.sampled_from([10, 12, 20]),
)
def test_a_birthday_rule_fires_exactly_once_per_customer_per_year(
    birthday: lc.Birthday, zone: str, year: int, hour: int
) -> None:
    tz = ZoneInfo(zone)
    events: list[lc.Event] = [
        lc.CustomerRegistered(
            customer_id="c1",
            at=datetime(2020, 1, 1, tzinfo=UTC),
            profile=lc.Profile(
                timezone=zone,
                birthday=birthday,
                contacts=(
                    lc.ContactPoint(channel="sms", address="+8613800000001", consent={"marketing"}),
                ),
            ),
        )
    ]
    sent: list[date] = []
    day = date(year, 1, 1)
    while day.year == year:
        now = next_allowed(
            datetime.combine(day, time(hour), tzinfo=tz), tz, POLICY.cadence.contact.quiet
        )
        for f in plan_customer(events, BIRTHDAY_ONLY, now).due:
            sent.append(now.astimezone(tz).date())
            events.append(
                lc.Contacted(
                    customer_id="c1",
                    at=now,
                    channel="sms",
                    purpose="marketing",
                    rule=f.rule,
                    key=f.key,
                )
            )
        day += timedelta(days=1)
    assert sent == [birthday.in_year(year)]
