"""Control groups, uplift and what-if: the holdout is one stable decision that the planner and
the dispatcher share, the uplift statistics hold their nominal rates on simulated shops, and
a replay under another policy moves exactly the customers that policy should move."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import attrs
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lifecycle as lc
from lifecycle.analytics import uplift
from lifecycle.analytics.uplift import fisher_exact, student_t_sf
from lifecycle.cadence import Campaign, WinBack, control_hold, holdout_draw
from lifecycle.cadence.planner import plan_customer, plan_customers
from lifecycle.cli import main
from lifecycle.config import policy_from_toml, policy_to_toml
from lifecycle.datasets import ExperimentShop, experiment_shop
from lifecycle.dispatch import DispatchOutcome, dispatch, to_outbox
from lifecycle.errors import PolicyError, UsageError
from lifecycle.experiments import enrolments, measure
from lifecycle.testing import strategies
from lifecycle.whatif import compare_policies

# -- the holdout: one stable decision -----------------------------------------------------------


def test_the_draw_is_the_same_in_another_process() -> None:
    ids = [f"c{i}" for i in range(5)]
    here = [holdout_draw("win_back", c, "s1") for c in ids]
    code = (
        "from lifecycle.cadence import holdout_draw; "
        f"print([holdout_draw('win_back', c, 's1') for c in {ids!r}])"
    )
    there = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PYTHONPATH": str(Path(lc.__file__).parents[1])},
    ).stdout
    assert there.strip() == repr(here)
    assert all(0 <= d < 1 for d in here)


@given(
    rule=st.text(min_size=1, max_size=20),
    customer=st.text(min_size=1, max_size=30),
    seed=st.text(max_size=10),
    shares=st.lists(st.floats(0, 0.999), min_size=2, max_size=2),
)
def test_the_groups_of_a_larger_share_contain_those_of_a_smaller_one(
    rule: str, customer: str, seed: str, shares: list[float]
) -> None:
    draw = holdout_draw(rule, customer, seed)
    assert 0 <= draw < 1
    assert draw == holdout_draw(rule, customer, seed)
    small, large = sorted(shares)
    held = [draw < share for share in (small, large)]
    assert held[0] <= held[1]


def _rule(holdout: float, rid: str = "promo", seed: str = "") -> Campaign:
    return Campaign(
        id=rid,
        name_en="a sale",
        name_zh="促销",
        start=datetime.fromisoformat("2026-09-01T10:00+08:00"),
        end=datetime.fromisoformat("2026-09-03T10:00+08:00"),
        purpose="marketing",
        channels=("email",),
        template="campaign",
        holdout=holdout,
        holdout_seed=seed,
    )


def test_the_control_share_is_within_binomial_tolerance() -> None:
    n, share = 20_000, 0.1
    rule = _rule(share)
    held = sum(control_hold(rule, rule.id, f"c{i}") is not None for i in range(n))
    assert abs(held - n * share) <= 4 * math.sqrt(n * share * (1 - share))


def test_raising_the_share_keeps_everyone_already_held_out() -> None:
    ids = [f"c{i}" for i in range(3000)]
    small = {c for c in ids if control_hold(_rule(0.1), "promo", c)}
    large = {c for c in ids if control_hold(_rule(0.2), "promo", c)}
    assert small < large


def test_another_rule_or_seed_draws_an_independent_group() -> None:
    ids = [f"c{i}" for i in range(20_000)]
    a = {c for c in ids if control_hold(_rule(0.5), "promo", c)}
    b = {c for c in ids if control_hold(_rule(0.5, "other"), "other", c)}
    c2 = {c for c in ids if control_hold(_rule(0.5, seed="spring"), "promo", c)}
    for other in (b, c2):
        overlap = len(a & other) / len(ids)
        assert abs(overlap - 0.25) < 4 * math.sqrt(0.25 * 0.75 / len(ids))


def test_a_share_outside_zero_to_one_is_refused_naming_the_key() -> None:
    for bad in (1.0, -0.1, "0.1", True):
        with pytest.raises(PolicyError, match=r"cadence\.rules\.promo\.holdout"):
            _rule(bad)  # type: ignore[arg-type]


def test_the_holdout_survives_the_policy_file() -> None:
    shop = experiment_shop(10)
    again = policy_from_toml(policy_to_toml(shop.policy))
    rule = again.cadence.rule("autumn_sale")
    assert rule.holdout == 0.2  # type: ignore[attr-defined]
    assert again.cadence.rules == shop.policy.cadence.rules


def _before_campaign(shop: ExperimentShop) -> dict[str, list[lc.Event]]:
    out: dict[str, list[lc.Event]] = defaultdict(list)
    for e in shop.events:
        if e.at < shop.since:
            out[e.customer_id].append(e)
    return out


def test_the_planner_holds_the_control_group_back_with_the_reason_control() -> None:
    shop = experiment_shop(400, seed=3, holdout=0.3)
    rule = shop.policy.cadence.rule(shop.rule)
    histories = _before_campaign(shop)
    plan = plan_customers(histories, shop.policy, rule.start)  # type: ignore[attr-defined]
    control = {c for c in histories if control_hold(rule, rule.id, c) is not None}
    assert {h.follow_up.customer_id for h in plan.held} == control
    assert {f.customer_id for f in plan.due} == set(histories) - control
    for h in plan.held:
        assert h.hold is lc.Hold.CONTROL
        assert h.outcome is lc.Outcome.SUPPRESSED
        assert h.reason.code == "cadence.control"
        assert "30%" in h.reason.en
        assert "对照组" in h.reason.zh


def test_the_dispatcher_does_not_send_to_a_customer_the_holdout_now_holds_out() -> None:
    shop = experiment_shop(60, seed=5, holdout=0.0)
    rule = shop.policy.cadence.rule(shop.rule)
    histories = _before_campaign(shop)
    store = lc.MemoryStore()
    store.append([e for h in histories.values() for e in h])
    at = rule.start  # type: ignore[attr-defined]
    plan = plan_customers(histories, shop.policy, at)
    assert len(plan.due) == 60
    store.append([], outbox=[to_outbox(f) for f in plan.due])
    held_out = attrs.evolve(rule, holdout=0.5)
    policy = attrs.evolve(shop.policy, cadence=attrs.evolve(shop.policy.cadence, rules=(held_out,)))
    email = lc.MemoryChannel("email")
    report = dispatch(store, {"email": email}, policy, at)
    control = {c for c in histories if control_hold(held_out, rule.id, c) is not None}
    assert 0 < len(control) < 60
    suppressed = {r.customer_id for r in report.results if r.outcome is DispatchOutcome.SUPPRESSED}
    assert suppressed == control
    assert {r.reason.code for r in report.results if r.customer_id in control} == {
        "cadence.control"
    }
    assert {m.customer_id for m in email.sent} == set(histories) - control


# -- the statistics -----------------------------------------------------------------------------


def test_the_t_distribution_and_fishers_test_match_reference_values() -> None:
    # Reference values from scipy.stats (t.sf, t.ppf, fisher_exact).
    assert student_t_sf(2.1, 7.5) == pytest.approx(0.035618535729039044, rel=1e-9)
    assert student_t_sf(-1, 12) == pytest.approx(0.8314754710232077, rel=1e-9)
    assert fisher_exact(3, 10, 9, 11) == pytest.approx(0.02997312285237981, rel=1e-9)
    assert fisher_exact(0, 20, 5, 20) == pytest.approx(0.04712404712404713, rel=1e-9)


def _binomial_tolerance(rate: float, n: int) -> float:
    return 3.5 * math.sqrt(rate * (1 - rate) / n)


SIMULATIONS = 300


def _simulate(
    rng: np.random.Generator, n_t: int, n_c: int, p_t: float, p_c: float
) -> lc.analytics.Uplift:
    def group(n: int, p: float) -> tuple[np.ndarray, np.ndarray]:
        buys = rng.random(n) < p
        orders = np.where(buys, 1 + rng.poisson(0.3, n), 0).astype(float)
        revenue = np.array([rng.lognormal(np.log(200) - 0.5, 1.0, int(k)).sum() for k in orders])
        return orders, revenue

    to, tr = group(n_t, p_t)
    co, cr = group(n_c, p_c)
    return uplift(to, tr, co, cr)


def test_the_intervals_cover_the_true_effect_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(7)
    truth = {"conversion": 0.05, "orders": 0.05 * 1.3, "revenue": 0.05 * 1.3 * 200}
    covered = dict.fromkeys(truth, 0)
    for _ in range(SIMULATIONS):
        result = _simulate(rng, 1600, 400, 0.15, 0.10)
        for name, true in truth.items():
            m = result.metric(name)
            covered[name] += m.low <= true <= m.high
    for name, hits in covered.items():
        assert abs(hits / SIMULATIONS - 0.95) <= _binomial_tolerance(0.95, SIMULATIONS), name


def test_with_no_effect_the_tests_reject_at_about_alpha() -> None:
    rng = np.random.default_rng(11)
    rejected = {"conversion": 0, "orders": 0, "revenue": 0}
    for _ in range(SIMULATIONS):
        result = _simulate(rng, 800, 800, 0.10, 0.10)
        for name in rejected:
            rejected[name] += result.metric(name).p_value < 0.05
    for name, hits in rejected.items():
        assert abs(hits / SIMULATIONS - 0.05) <= _binomial_tolerance(0.05, SIMULATIONS), name


def test_small_groups_warn_and_use_the_exact_test() -> None:
    result = uplift([1, 0, 0, 2, 0], [50, 0, 0, 90, 0], [0, 0, 0, 0], [0, 0, 0, 0])
    assert {w.code for w in result.warnings} == {
        "experiment.small_group",
        "experiment.few_conversions",
    }
    assert result.metric("conversion").test.startswith("Fisher")
    assert "too small to tell" in repr(result)
    big = _simulate(np.random.default_rng(1), 2000, 2000, 0.2, 0.1)
    assert big.warnings == ()
    assert big.metric("conversion").test.startswith("two-proportion")


def test_bad_arrays_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one customer"):
        uplift([], [], [1], [1])
    with pytest.raises(ValueError, match="finite"):
        uplift([1], [float("nan")], [1], [1])


# -- the report on simulated shops --------------------------------------------------------------


def _histories(shop: ExperimentShop) -> dict[str, list[lc.Event]]:
    out: dict[str, list[lc.Event]] = defaultdict(list)
    for e in shop.events:
        out[e.customer_id].append(e)
    return out


def test_the_groups_are_the_planners_and_everyone_the_campaign_reached() -> None:
    shop = experiment_shop(300, seed=2, holdout=0.25)
    histories = _histories(shop)
    groups = enrolments(histories, shop.policy, shop.rule, shop.since, shop.until)
    assert set(groups) == set(histories)
    contacted = {e.customer_id for e in shop.events if isinstance(e, lc.Contacted)}
    assert {c for c, g in groups.items() if not g.control} == contacted
    assert {g.at for g in groups.values()} == {shop.policy.cadence.rule(shop.rule).start}  # type: ignore[attr-defined]


def test_the_report_recovers_a_known_effect_within_its_interval() -> None:
    shops = 12
    covered = 0
    for seed in range(shops):
        shop = experiment_shop(800, seed=seed, holdout=0.3, base_rate=0.10, lift=0.06)
        result = measure(_histories(shop), shop.policy, shop.rule, shop.since, shop.until)
        c = result.metric("conversion")
        covered += c.low <= shop.conversion_lift <= c.high
    # P(fewer than 9 of 12 at a true 95%) is below 0.3%.
    assert covered >= 9


def test_with_no_effect_the_report_rarely_claims_one() -> None:
    shops = 12
    false = 0
    for seed in range(shops):
        shop = experiment_shop(600, seed=100 + seed, holdout=0.5, lift=0.0)
        result = measure(_histories(shop), shop.policy, shop.rule, shop.since, shop.until)
        false += result.metric("conversion").p_value < 0.05
    # P(3 or more of 12 at a true 5%) is about 2%.
    assert false <= 3


def _shop(data: ExperimentShop, policy: lc.Policy | None = None) -> lc.Lifecycle:
    shop = lc.Lifecycle.in_memory(policy=policy or data.policy, clock=lc.FixedClock(data.until))
    shop.record(data.events)
    return shop


def test_the_facade_measures_the_rule_and_refuses_a_rule_without_a_holdout() -> None:
    data = experiment_shop(300, seed=9)
    shop = _shop(data)
    result = shop.experiment(data.rule, data.since)
    assert result == measure(_histories(data), data.policy, data.rule, data.since, data.until)
    assert result.treated + result.control == 300
    rows = result.rows()
    assert [r["metric"] for r in rows] == ["conversion", "orders", "revenue"]
    plain = attrs.evolve(
        data.policy.cadence.rule(data.rule),  # type: ignore[misc]
        holdout=0.0,
    )
    shop.policy = attrs.evolve(
        data.policy, cadence=attrs.evolve(data.policy.cadence, rules=(plain,))
    )
    with pytest.raises(UsageError, match=r"cadence\.rules\.autumn_sale\.holdout"):
        shop.experiment(data.rule, data.since)
    with pytest.raises(UsageError, match="no rule"):
        shop.experiment("nope", data.since)


# -- what-if ------------------------------------------------------------------------------------


def test_a_policy_compared_with_itself_shows_no_difference() -> None:
    data = lc.datasets.synthetic_shop(60, seed=3)
    policy = lc.Policy(timezone=data.timezone)
    shop = lc.Lifecycle.in_memory(policy=policy, clock=lc.FixedClock(data.as_of))
    shop.record(data.events)
    result = shop.compare(policy, policy, since=data.as_of - timedelta(days=5))
    assert result.same
    assert result.differences == ()
    assert result.customers == 60
    assert result.stages_a == result.stages_b
    assert sum(result.stages_a.values()) == 60
    assert any(m.sent_a for m in result.messages)
    assert "0 judged differently" in repr(result)


def _spend(history: Sequence[lc.Event], until: object) -> Decimal:
    return sum(
        (e.amount for e in history if isinstance(e, lc.OrderPaid) and e.at < until),  # type: ignore[operator]
        Decimal(0),
    )


def test_a_lower_tier_threshold_moves_exactly_the_customers_it_should() -> None:
    data = experiment_shop(300, seed=4)
    levels = data.policy.loyalty.tiers.levels
    silver = next(t for t in levels if t.key == "silver")
    lower = tuple(
        attrs.evolve(t, min_spend=Decimal(300)) if t.key == "silver" else t for t in levels
    )
    new = attrs.evolve(
        data.policy,
        loyalty=attrs.evolve(
            data.policy.loyalty, tiers=attrs.evolve(data.policy.loyalty.tiers, levels=lower)
        ),
    )
    shop = _shop(data)
    result = shop.compare(None, new, since=data.since, step=timedelta(days=30))
    # Every order of this shop falls within a year of the end and no review has come yet:
    # the tier is the highest whose spend threshold the customer's total paid reaches.
    histories = _histories(data)
    assert silver.min_spend is not None
    expected = {
        c: ("member", "silver")
        for c, h in histories.items()
        if Decimal(300) <= _spend(h, data.until) < silver.min_spend
    }
    assert expected
    assert result.moved("tier") == expected
    assert {d.what for d in result.differences} == {"tier"}
    assert result.tiers_b["silver"] - result.tiers_a.get("silver", 0) == len(expected)
    for d in result.differences:
        assert "300" in d.reasons[0].en
    assert all(m.same for m in result.messages)


def test_a_holdout_shows_in_the_replayed_messages() -> None:
    data = experiment_shop(200, seed=6, holdout=0.0)
    rule = data.policy.cadence.rule(data.rule)
    with_holdout = attrs.evolve(
        data.policy,
        cadence=attrs.evolve(data.policy.cadence, rules=(attrs.evolve(rule, holdout=0.25),)),
    )
    histories = _before_campaign(data)
    shop = lc.Lifecycle.in_memory(policy=data.policy, clock=lc.FixedClock(data.until))
    shop.record([e for h in histories.values() for e in h])
    result = shop.compare(
        None, with_holdout, since=data.since, until=data.since + timedelta(days=2)
    )
    [m] = result.messages
    control = sum(
        control_hold(attrs.evolve(rule, holdout=0.25), rule.id, c) is not None for c in histories
    )
    assert (m.sent_a, m.sent_b) == (200, 200 - control)
    assert dict(m.held_b) == {"control": control}
    assert not result.same
    assert result.differences == ()


# -- the command line ---------------------------------------------------------------------------


def test_the_command_line_reports_an_experiment_and_a_what_if(tmp_path: Path) -> None:
    data = experiment_shop(300, seed=8)
    db = tmp_path / "shop.db"
    with lc.Lifecycle.open(db, policy=data.policy) as shop:
        shop.record(data.events)
    policy = tmp_path / "policy.toml"
    policy.write_text(policy_to_toml(data.policy), encoding="utf-8")
    at = data.until.isoformat()
    out = io.StringIO()
    code = main(
        ["experiment", data.rule, "--db", str(db), "--policy", str(policy), "--at", at,
         "--since", data.since.isoformat(), "--format", "json"],
        out=out,
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out.getvalue())
    assert doc["treated"] + doc["control"] == 300
    assert [m["metric"] for m in doc["metrics"]] == ["conversion", "orders", "revenue"]
    out = io.StringIO()
    code = main(
        ["experiment", data.rule, "--db", str(db), "--policy", str(policy), "--at", at,
         "--since", data.since.isoformat(), "--lang", "zh"],
        out=out,
    )  # fmt: skip
    assert code == 0
    assert "对照组" in out.getvalue()
    assert "转化率" in out.getvalue()
    out = io.StringIO()
    code = main(
        ["whatif", "--db", str(db), "--base", str(policy), "--policy", str(policy), "--at", at,
         "--step-days", "30"],
        out=out,
    )  # fmt: skip
    assert code == 0
    assert "decide alike" in out.getvalue()
    err = io.StringIO()
    assert main(["whatif", "--db", str(db), "--at", at], out=err) == 2


def test_who_is_in_is_judged_before_the_follow_up_so_buying_after_it_changes_nothing() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    rule = WinBack(
        id="win_back", template="win_back", purpose="marketing", channels=("sms",), holdout=0.5
    )
    policy = lc.Policy(timezone="Asia/Shanghai", cadence=lc.CadencePolicy(rules=(rule,)))
    sms = lc.ContactPoint(channel="sms", address="+8613800000001", consent={"marketing"})

    def order(cid: str, oid: str, at: datetime) -> list[lc.Event]:
        money = {"amount": Decimal(100), "currency": "CNY", "order_id": oid}
        return [
            lc.OrderPlaced(customer_id=cid, at=at, **money),  # type: ignore[arg-type]
            lc.OrderPaid(customer_id=cid, at=at, **money),  # type: ignore[arg-type]
        ]

    histories: dict[str, list[lc.Event]] = {}
    for i in range(40):
        cid = f"c{i:02d}"
        first = datetime(2025, 1, 1, 12, tzinfo=tz) + timedelta(days=i % 20)
        h: list[lc.Event] = [
            lc.CustomerRegistered(
                customer_id=cid, at=first - timedelta(days=1), profile=lc.Profile(contacts=(sms,))
            ),
            *order(cid, f"{cid}-1", first),
        ]
        if i % 2:  # comes back three days after turning at risk
            h += order(cid, f"{cid}-2", first + timedelta(days=184))
        histories[cid] = h
    since = datetime(2025, 6, 20, tzinfo=tz)
    until = datetime(2025, 8, 20, tzinfo=tz)
    groups = enrolments(histories, policy, "win_back", since, until)
    assert set(groups) == set(histories)
    for cid, g in groups.items():
        assert g.control == (control_hold(rule, "win_back", cid) is not None)
        assert g.at.astimezone(tz).hour == 10
        bought_again = [e.at for e in histories[cid] if isinstance(e, lc.OrderPaid)][1:]
        assert all(g.at < at for at in bought_again)
    result = measure(histories, policy, "win_back", since, until)
    assert result.treated + result.control == 40


# -- properties ---------------------------------------------------------------------------------

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HALF_HELD_OUT = attrs.evolve(
    lc.Policy(timezone="Asia/Shanghai"),
    cadence=attrs.evolve(
        lc.CadencePolicy(),
        rules=tuple(attrs.evolve(r, holdout=0.5) for r in lc.CadencePolicy().rules),  # type: ignore[misc]
    ),
)


def _instant(events: Sequence[lc.Event], days: int) -> datetime:
    return min(e.at for e in events) + timedelta(days=days, hours=7)


@PROPERTY
@given(strategies.histories(), st.integers(0, 900), st.sampled_from(["c1", "c2", "c3", "c4"]))
def test_a_held_out_customer_is_never_planned_a_message_of_the_rule(
    events: list[lc.Event], days: int, cid: str
) -> None:
    events = [attrs.evolve(e, customer_id=cid) for e in events]
    plan = plan_customer(events, HALF_HELD_OUT, _instant(events, days))
    for f in plan.due:
        assert control_hold(HALF_HELD_OUT.cadence.rule(f.rule), f.rule, cid) is None
    for h in plan.held:
        held_out = control_hold(HALF_HELD_OUT.cadence.rule(h.follow_up.rule), h.follow_up.rule, cid)
        if h.hold is lc.Hold.CONTROL:
            assert held_out is not None


@PROPERTY
@given(strategies.histories(), st.integers(30, 900))
def test_any_history_replayed_under_the_same_policy_twice_shows_no_difference(
    events: list[lc.Event], days: int
) -> None:
    until = _instant(events, days)
    result = compare_policies(
        {"c1": events}, HALF_HELD_OUT, HALF_HELD_OUT, until - timedelta(days=14), until,
        step=timedelta(days=7),
    )  # fmt: skip
    assert result.same
