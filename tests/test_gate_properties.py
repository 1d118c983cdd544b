"""Properties of the contact gate: only its answer at the moment of sending lets a message out,
and the planner reads the status ``assess`` reports, with and without a fitted model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lifecycle as lc
from builders import address_for, marketing_consent
from lifecycle.adapters.channels import MemoryChannel
from lifecycle.adapters.memory import MemoryStore
from lifecycle.cadence import contact_gate
from lifecycle.cadence.planner import follow_up_key, occurrences_of, plan_customer
from lifecycle.dispatch import DispatchOutcome, dispatch, to_outbox
from lifecycle.events import sort_key
from lifecycle.record import CustomerRecord
from lifecycle.testing.strategies import aware_datetimes, histories
from lifecycle.vocabulary import RULE_CHANNELS

ZONES = ("Asia/Shanghai", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe")
START = datetime(2025, 1, 1, tzinfo=UTC)
POLICY = lc.Policy(timezone="Asia/Shanghai")
EVERYTHING = lc.Profile(
    contacts=tuple(
        lc.ContactPoint(channel=ch, address=address_for(ch), consent=set(lc.Purpose))
        for ch in ("sms", "wechat", "email", "app_push")
    )
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=histories(start=START, days=60, zones=ZONES),
    cut=st.integers(0, 10_000),
    pick=st.integers(0, 100),
    wait_minutes=st.sampled_from([0, 1, 10, 45, 90, 60 * 6, 60 * 30]),
    eager=st.booleans(),
    logged=st.sampled_from([None, 5, 60 * 11, 60 * 30, 60 * 47]),
)
def test_dispatch_sends_only_what_the_gate_lets_out_at_that_instant(
    events: list[lc.Event],
    cut: int,
    pick: int,
    wait_minutes: int,
    eager: bool,
    logged: int | None,
) -> None:
    if eager:  # consent to everything everywhere, so that plenty is planned
        events = [
            lc.ProfileUpdated(customer_id="c1", at=START - timedelta(days=1), profile=EVERYTHING),
            *events,
        ]
    events = sorted(events, key=sort_key)
    k = 1 + cut % len(events)
    before = events[:k]
    planned_at = before[-1].at.astimezone(UTC)
    store = MemoryStore()
    store.append(before)
    plan = plan_customer(before, POLICY, planned_at, horizon=timedelta(hours=36))
    entries = [to_outbox(f) for f in plan.due if f.channel is not None]
    store.append([], outbox=entries)
    # Send a while after one planned message falls due (or after planning).
    due = sorted(e.due_at for e in entries) or [planned_at]
    now = max(planned_at, due[pick % len(due)].astimezone(UTC)) + timedelta(minutes=wait_minutes)
    # Whatever happens between plan and send: payments, replies, consent changes, contacts,
    # and perhaps a call someone logged shortly before the send (it counts against the caps).
    store.append([e for e in events[k:] if e.at <= now])
    if logged is not None:
        call = lc.Contacted(
            customer_id="c1", at=now - timedelta(minutes=logged), channel="phone", key=None
        )
        store.append([call])
    channels = {ch: MemoryChannel(ch) for ch in RULE_CHANNELS}
    report = dispatch(store, channels, POLICY, now)
    sent = [r.key for r in report if r.outcome is DispatchOutcome.SENT]
    history = store.history("c1")
    contact = POLICY.cadence.contact
    quiet = contact.quiet
    for i, key in enumerate(sent):
        later = set(sent[i:])  # the history as it was just before this send
        prior = [e for e in history if not (isinstance(e, lc.Contacted) and e.key in later)]
        facts = CustomerRecord("c1", prior, POLICY, now, horizon=timedelta(days=400))
        entry = store.outbox_entry(key)
        assert entry is not None
        assert entry.valid_until is not None
        purpose = lc.Purpose(entry.purpose or "transactional")
        verdict = contact_gate(
            facts,
            channel=entry.channel,
            purpose=purpose,
            at=now,
            valid_until=entry.valid_until,
            via=entry.contact_channel,
        )
        assert verdict.allowed, (key, verdict.reason)
        # The same facts, checked independently of the gate.
        assert facts.erased is None
        assert now < entry.valid_until
        assert not quiet.contains(now.astimezone(facts.tz).time()), key
        if purpose is lc.Purpose.MARKETING and entry.channel not in ("task", "visit"):
            assert marketing_consent(prior, now, entry.contact_channel or entry.channel)
        if purpose is not lc.Purpose.TRANSACTIONAL and entry.channel not in ("task", "visit"):
            # The caps, counted here without the library: sends of the purpose on a customer
            # channel and contacts people logged, before this send.
            caps = contact.marketing if purpose is lc.Purpose.MARKETING else contact.service
            before = [
                e.at.astimezone(UTC)
                for e in prior
                if isinstance(e, lc.Contacted)
                and e.at.astimezone(UTC) <= now
                and (
                    (e.purpose is purpose and e.channel not in ("task", "visit"))
                    or (e.rule is None and e.purpose is None)
                )
            ]
            gap = timedelta(hours=caps.min_gap_hours)
            assert all(now - t >= gap for t in before), key
            for count, days in caps.limits:
                assert sum(now - t < timedelta(days=days) for t in before) < count, key
        rule = POLICY.cadence.rule(entry.rule or "")
        (occ,) = [
            o
            for o in occurrences_of(rule, facts)
            if follow_up_key("c1", rule.id, o.occurrence) == key
        ]
        assert occ.stopped is None, key
        assert occ.due_at <= now


class _Alive:
    """A fitted model whose P(alive) falls with the time since the first purchase."""

    def __init__(self, half_life: float) -> None:
        self.half_life = half_life

    def p_alive(self, frequency: float, recency: float, T: float) -> float:
        return float(0.5 ** ((T - recency) / self.half_life))

    def __repr__(self) -> str:
        return f"_Alive({self.half_life})"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=histories(start=START, days=500, zones=ZONES),
    now=aware_datetimes(min_value=START, max_value=START + timedelta(days=700), zones=ZONES),
    model=st.sampled_from([None, _Alive(30.0), _Alive(200.0)]),
)
def test_the_planner_reads_the_status_assess_reports(
    events: list[lc.Event], now: datetime, model: _Alive | None
) -> None:
    facts = CustomerRecord("c1", events, POLICY, now, model=model)
    assessed = lc.assess("c1", events, POLICY, now, model=model)
    assert facts.status.status is assessed.status
    assert facts.status.p_alive == assessed.p_alive
    since = facts.at_risk_since
    if assessed.status in (lc.Status.AT_RISK, lc.Status.LAPSED):
        assert since is not None
        assert facts.ledger.last_day is not None
        assert facts.ledger.last_day < since <= facts.today
        # The day before it turned, the same rule still found the customer active (when no
        # event came in between to change the picture).
        before = datetime.combine(since, datetime.min.time(), tzinfo=facts.tz) - timedelta(
            seconds=1
        )
        if all(e.at <= before for e in events if e.at <= now):
            earlier = lc.assess("c1", events, POLICY, before, model=model)
            assert earlier.status not in (lc.Status.AT_RISK, lc.Status.LAPSED)
    else:
        assert since is None
