"""Small builders for readable histories in tests: days are counted from ``T0``."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import lifecycle as lc
from lifecycle.events import sort_key

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=TZ)
POLICY = lc.Policy(timezone="Asia/Shanghai")
#: A phone number in E.164 form, for SMS and phone contact points.
PHONE = "+8613800000001"


def address_for(channel: str) -> str:
    """An address in ``channel``'s syntax: a phone number, an e-mail address or a handle."""
    if channel in ("sms", "phone"):
        return PHONE
    if channel == "email":
        return "customer@example.com"
    return f"{channel}-address"


def day(n: float, hour: int = 12) -> datetime:
    """Noon (or ``hour``) in Shanghai, ``n`` days after 2025-01-01."""
    return T0.replace(hour=hour) + timedelta(days=n)


class History:
    """A customer's events, built fluently."""

    def __init__(self, customer_id: str = "c1"):
        self.cid = customer_id
        self.events: list[lc.Event] = []

    def add(self, event: lc.Event) -> History:
        self.events.append(event)
        return self

    def lead(self, d: float, source: str = "douyin") -> History:
        return self.add(lc.LeadCaptured(customer_id=self.cid, at=day(d), source=source))

    def engaged(self, d: float, kind: str = "chat") -> History:
        return self.add(lc.Engaged(customer_id=self.cid, at=day(d), kind=kind))

    def placed(self, order: str, d: float, amount: str = "100.00") -> History:
        return self.add(
            lc.OrderPlaced(
                customer_id=self.cid,
                at=day(d),
                order_id=order,
                amount=Decimal(amount),
                currency="CNY",
            )
        )

    def paid(self, order: str, d: float, amount: str = "100.00", hour: int = 12) -> History:
        return self.add(
            lc.OrderPaid(
                customer_id=self.cid,
                at=day(d, hour),
                order_id=order,
                amount=Decimal(amount),
                currency="CNY",
            )
        )

    def orders(self, *days: float) -> History:
        for i, d in enumerate(days, 1):
            self.paid(f"{self.cid}-o{i}", d)
        return self

    def refund(self, order: str, d: float, amount: str = "100.00") -> History:
        return self.add(
            lc.OrderRefunded(
                customer_id=self.cid,
                at=day(d),
                order_id=order,
                amount=Decimal(amount),
                currency="CNY",
            )
        )

    def cancel(self, order: str, d: float) -> History:
        return self.add(lc.OrderCancelled(customer_id=self.cid, at=day(d), order_id=order))

    def nps(self, d: float, score: int) -> History:
        return self.add(lc.FeedbackGiven(customer_id=self.cid, at=day(d), score=score))

    def review(self, d: float, rating: int) -> History:
        return self.add(lc.ReviewPosted(customer_id=self.cid, at=day(d), rating=rating))

    def complaint(self, complaint_id: str, d: float) -> History:
        return self.add(
            lc.ComplaintOpened(customer_id=self.cid, at=day(d), complaint_id=complaint_id)
        )

    def resolved(self, complaint_id: str, d: float) -> History:
        return self.add(
            lc.ComplaintResolved(customer_id=self.cid, at=day(d), complaint_id=complaint_id)
        )

    def refer(self, referred: str, d: float) -> History:
        return self.add(lc.Referred(customer_id=self.cid, at=day(d), referred_id=referred))

    def partner(self, kind: str, d: float) -> History:
        return self.add(lc.PartnershipSigned(customer_id=self.cid, at=day(d), kind=kind))

    def partner_ended(self, kind: str, d: float) -> History:
        return self.add(lc.PartnershipEnded(customer_id=self.cid, at=day(d), kind=kind))

    def zone(self, name: str, d: float = -100) -> History:
        return self.add(
            lc.CustomerRegistered(
                customer_id=self.cid, at=day(d), profile=lc.Profile(timezone=name)
            )
        )

    def stage(self, at: float, referrals: dict[str, datetime] | None = None) -> lc.StageAssessment:
        return lc.assess_stage(self.events, POLICY, day(at), referrals=referrals)

    def status(self, at: float, model: lc.AliveModel | None = None) -> lc.StatusAssessment:
        return lc.assess_status(self.events, POLICY, day(at), model=model)


def codes(reasons: tuple[lc.Reason, ...]) -> list[str]:
    return [r.code for r in reasons]


def marketing_consent(events: list[lc.Event], at: datetime, channel: str) -> bool:
    """Marketing consent on ``channel`` at ``at``, replayed independently of the library."""
    state = False
    for e in sorted(events, key=sort_key):
        if e.at > at:
            break
        if isinstance(e, lc.CustomerRegistered | lc.ProfileUpdated):
            cp = e.profile.contact(channel)
            if cp is not None:
                state = lc.Purpose.MARKETING in cp.consent
        elif (
            isinstance(e, lc.ConsentChanged)
            and e.channel == channel
            and e.purpose is lc.Purpose.MARKETING
        ):
            state = e.granted
    return state
