"""A seeded shop that ran one experiment: a campaign with a holdout and a known true effect.

Every customer bought once before; a campaign selects them all and holds out a share as its
control group, by the same decision the planner makes (the plan at the campaign's start says
who is sent). The treated then order with a higher probability than the control, so the true
uplift of conversion, orders and revenue per customer is known and a report can be checked
against it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs
import numpy as np

from lifecycle._display import field_table, one_line
from lifecycle._time import require_aware, to_utc
from lifecycle.cadence.contact import Caps, ContactPolicy, QuietHours
from lifecycle.cadence.planner import plan_customers
from lifecycle.cadence.policy import CadencePolicy
from lifecycle.cadence.rules import Campaign
from lifecycle.customer import ContactPoint, Profile
from lifecycle.events import Contacted, CustomerRegistered, Event, OrderPaid, OrderPlaced, sort_key
from lifecycle.policy import Policy

__all__ = ["ExperimentShop", "experiment_shop"]

#: Each buyer makes one order plus a Poisson number of further ones with this mean.
_MORE_ORDERS = 0.3


@attrs.frozen(kw_only=True)
class ExperimentShop:
    """The events and policy of a shop that ran one campaign with a holdout, and the truth.

    Attributes:
        events: every event, sorted.
        policy: the shop's policy, with the campaign ``rule`` and its ``holdout``.
        rule: the campaign's rule id.
        since, until: the window to measure (the campaign's day to the end of the story).
        conversion_lift: the true difference in the share of customers who order.
        orders_lift: the true difference in orders per customer.
        revenue_lift: the true difference in revenue per customer.
    """

    events: tuple[Event, ...] = attrs.field(repr=False)
    policy: Policy = attrs.field(repr=False)
    rule: str
    since: datetime
    until: datetime
    conversion_lift: float
    orders_lift: float
    revenue_lift: float

    def __repr__(self) -> str:
        return one_line(
            "ExperimentShop",
            self.rule,
            f"{len(self.events):,} events",
            f"true conversion lift {self.conversion_lift:+.1%}",
        )

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [
            ("rule", self.rule),
            ("events", f"{len(self.events):,}"),
            ("window", f"{self.since:%Y-%m-%d} to {self.until:%Y-%m-%d}"),
            ("true conversion lift", f"{self.conversion_lift:+.2%}"),
            ("true orders lift", f"{self.orders_lift:+.3f}"),
            ("true revenue lift", f"{self.revenue_lift:+.2f}"),
        ]
        return field_table(rows, caption="A shop that ran an experiment")


def experiment_shop(
    customers: int = 2000,
    *,
    seed: int = 0,
    holdout: float = 0.2,
    base_rate: float = 0.10,
    lift: float = 0.05,
    mean_order: float = 200.0,
    days: int = 30,
    start: datetime | None = None,
    timezone: str = "Asia/Shanghai",
) -> ExperimentShop:
    """Generate a shop of ``customers`` past buyers and one campaign with a ``holdout``.

    Over the ``days`` after the campaign, a control customer orders with probability
    ``base_rate`` and a treated one with ``base_rate + lift``; a buyer makes 1 + Poisson(0.3)
    orders of lognormal amounts averaging ``mean_order`` (heavy-tailed, as shops are).
    Deterministic: the same arguments give the same events. ``start`` defaults to
    2026-09-01 00:00 in ``timezone``.

    Raises:
        ValueError: a count below 1, rates outside [0, 1], or a naive ``start``.
    """
    if isinstance(customers, bool) or not isinstance(customers, int) or customers < 1:
        raise ValueError(f"customers must be a whole number >= 1, got {customers!r}")
    if not (0 <= base_rate <= 1 and 0 <= base_rate + lift <= 1):
        raise ValueError("base_rate and base_rate + lift must be in [0, 1]")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days!r}")
    tz = ZoneInfo(timezone)
    start = datetime(2026, 9, 1, tzinfo=tz) if start is None else require_aware(start, "start")
    rng = np.random.default_rng(seed)
    campaign = Campaign(
        id="autumn_sale",
        name_en="the autumn sale",
        name_zh="秋季促销",
        start=start + timedelta(hours=10),
        end=start + timedelta(days=3),
        purpose="marketing",
        channels=("email",),
        template="campaign",
        holdout=holdout,
    )
    free = ContactPolicy(quiet=QuietHours(start="00:00", end="00:00"), marketing=Caps())
    policy = Policy(timezone=timezone, cadence=CadencePolicy(rules=(campaign,), contact=free))
    width = len(str(customers))
    ids = [f"x{i:0{width}d}" for i in range(customers)]
    histories: dict[str, list[Event]] = defaultdict(list)
    first = rng.uniform(60, 300, customers)
    for i, cid in enumerate(ids):
        profile = Profile(
            contacts=(
                ContactPoint(
                    channel="email",
                    address=f"{cid}@example.com",
                    consent={"transactional", "service", "marketing"},
                ),
            )
        )
        joined = start - timedelta(days=float(first[i]) + 30)
        histories[cid].append(CustomerRegistered(customer_id=cid, at=joined, profile=profile))
        histories[cid] += _order(
            cid, "o0", start - timedelta(days=float(first[i])), mean_order, rng
        )
    plan = plan_customers(histories, policy, campaign.start)
    treated = {f.customer_id: f for f in plan.due}
    for cid, f in treated.items():
        histories[cid].append(
            Contacted(
                customer_id=cid,
                at=to_utc(f.due_at),
                channel="email",
                purpose=f.purpose,
                rule=f.rule,
                template=f.template,
                key=f.key,
            )
        )
    for cid in ids:
        rate = base_rate + (lift if cid in treated else 0.0)
        if rng.random() >= rate:
            continue
        for n in range(1 + int(rng.poisson(_MORE_ORDERS))):
            at = campaign.start + timedelta(hours=1 + float(rng.uniform(0, days * 24 - 11)))
            histories[cid] += _order(cid, f"o{n + 1}", at, mean_order, rng)
    events = sorted((e for h in histories.values() for e in h), key=sort_key)
    per_buyer = 1 + _MORE_ORDERS
    return ExperimentShop(
        events=tuple(events),
        policy=policy,
        rule=campaign.id,
        since=start,
        until=start + timedelta(days=days),
        conversion_lift=lift,
        orders_lift=lift * per_buyer,
        revenue_lift=lift * per_buyer * mean_order,
    )


def _order(
    cid: str, order: str, at: datetime, mean: float, rng: np.random.Generator
) -> list[Event]:
    sigma = 1.0
    amount = float(rng.lognormal(np.log(mean) - sigma**2 / 2, sigma))
    value = Decimal(f"{max(amount, 1.0):.2f}")
    oid = f"{cid}-{order}"
    return [
        OrderPlaced(customer_id=cid, at=at, order_id=oid, amount=value, currency="CNY"),
        OrderPaid(customer_id=cid, at=at, order_id=oid, amount=value, currency="CNY"),
    ]
