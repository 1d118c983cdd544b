"""A seeded synthetic shop: realistic customer histories that reach every stage and status.

The generator draws each customer's story with numpy from one seed, so the same arguments
always give the same events, on any machine. Buyers purchase as a Poisson process at their own
rate until they drop out (the story behind the BG/NBD model), so a base of first-time, repeat
and long-term buyers, pauses, lapses and comebacks appears without being scripted. Around them:
leads and prospects who never buy, orders that are cancelled, refunded in part or in full,
shipped and delivered (some late), reviews, NPS answers, complaints (a few still open),
referrals that convert, partnerships (some ended), consent changes, and profiles with
birthdays (29 February among them) in several time zones, DST ones included.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar
from zoneinfo import ZoneInfo

import attrs
import numpy as np

from lifecycle._bulk import collector_paused
from lifecycle._display import field_table, one_line
from lifecycle._time import require_aware, valid_zone_name
from lifecycle.customer import Birthday, ContactPoint, Gender, Profile
from lifecycle.events import (
    ComplaintOpened,
    ComplaintResolved,
    ConsentChanged,
    CustomerRegistered,
    Engaged,
    Event,
    FeedbackGiven,
    LeadCaptured,
    OrderCancelled,
    OrderDelivered,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
    OrderShipped,
    PartnershipEnded,
    PartnershipSigned,
    Referred,
    ReviewPosted,
    sort_key,
)
from lifecycle.vocabulary import Purpose

__all__ = ["SyntheticShop", "synthetic_shop"]

_T = TypeVar("_T")

_DAY = 86400.0
_YEAR = 365.25 * _DAY

#: Customer time zones and their weights: mostly the shop's, some abroad, DST zones among them.
_ZONES = (
    (None, 0.80),
    ("America/New_York", 0.06),
    ("Europe/London", 0.05),
    ("Australia/Sydney", 0.03),
    ("Asia/Tokyo", 0.03),
    ("America/Los_Angeles", 0.03),
)
_CITIES = ("Shanghai", "Hangzhou", "Beijing", "Shenzhen", "Chengdu", "Guangzhou", "Wuhan")
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗"
_GIVEN = "伟芳娜敏静丽强磊洋艳勇军杰娟涛明超秀霞平刚桂英华"
_CATEGORIES = ("tea", "apparel", "beauty", "home", "snacks", "electronics", "baby")
_SOURCES = ("search", "livestream", "ads", "social", "marketplace", "offline")
_TAGS = ("price_sensitive", "gift_buyer", "vip_candidate", "new_parent", "student", "office")
_OCCUPATIONS = ("teacher", "engineer", "designer", "nurse", "manager", "student", "owner")
_ENGAGEMENTS = ("inquiry", "chat", "add_to_cart", "coupon_claim")
_CARRIERS = ("SF", "YTO", "ZTO", "JD")
_PARTNERSHIPS = ("agent", "distributor", "reseller", "shareholder")

# The mix of customers. Quotas (not coin flips) so that even a small shop has every kind.
_SUSPECT, _PROSPECT, _BUYER = 0, 1, 2
_MIX = ((_SUSPECT, 0.14), (_PROSPECT, 0.16), (_BUYER, 0.70))


class _Draw:
    """Scalar draws from a numpy generator, buffered: one numpy call per 8,192 numbers.

    Calling numpy once per number costs more than the rest of the generator together.
    """

    _BLOCK = 8192

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._u: list[float] = []
        self._z: list[float] = []

    def random(self) -> float:
        if not self._u:
            self._u = self.rng.random(self._BLOCK).tolist()
        return self._u.pop()

    def normal(self) -> float:
        if not self._z:
            self._z = self.rng.standard_normal(self._BLOCK).tolist()
        return self._z.pop()

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()

    def exponential(self, mean: float) -> float:
        return -mean * math.log1p(-self.random())

    def lognormal(self, mu: float, sigma: float) -> float:
        return math.exp(mu + sigma * self.normal())

    def integers(self, low: int, high: int | None = None) -> int:
        """A whole number in [low, high), or in [0, low) with one argument."""
        if high is None:
            low, high = 0, low
        return low + min(int(self.random() * (high - low)), high - low - 1)

    def pick(self, items: Sequence[_T]) -> _T:
        return items[self.integers(len(items))]

    def weighted(self, cumulative: Sequence[float]) -> int:
        """An index drawn with the probabilities whose running sums are ``cumulative``."""
        return min(
            bisect.bisect_right(cumulative, self.random() * cumulative[-1]), len(cumulative) - 1
        )

    def poisson(self, lam: float) -> int:
        k, p, u = 0, math.exp(-lam), self.random()
        total = p
        while u > total and k < 1000:
            k += 1
            p *= lam / k
            total += p
        return k

    def sample(self, items: Sequence[_T], k: int) -> list[_T]:
        """``k`` distinct items, in the order drawn."""
        pool = list(items)
        out = []
        for _ in range(min(k, len(pool))):
            out.append(pool.pop(self.integers(len(pool))))
        return out


@attrs.frozen(kw_only=True)
class SyntheticShop:
    """A generated shop: its events in time order and the instant its story ends.

    Attributes:
        events: every event, sorted by instant (then kind and id).
        as_of: the end of the story; assess at this instant to see the shop as generated.
        customer_ids: every customer, in id order.
        timezone: the shop's IANA time zone (customers without their own zone live in it).
        seed: the seed the shop was drawn from.
    """

    events: tuple[Event, ...] = attrs.field(repr=False)
    as_of: datetime
    customer_ids: tuple[str, ...] = attrs.field(repr=False)
    timezone: str
    seed: int

    def __len__(self) -> int:
        return len(self.events)

    def __repr__(self) -> str:
        return one_line(
            "SyntheticShop",
            f"{len(self.customer_ids):,} customers",
            f"{len(self.events):,} events",
            f"as of {self.as_of:%Y-%m-%d}",
            f"seed {self.seed}",
        )

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [
            ("customers", f"{len(self.customer_ids):,}"),
            ("events", f"{len(self.events):,}"),
            ("as of", self.as_of.isoformat()),
            ("time zone", self.timezone),
            ("seed", self.seed),
        ]
        return field_table(rows, caption="Synthetic shop")


def synthetic_shop(
    customers: int = 5000,
    *,
    seed: int = 0,
    end: datetime | None = None,
    years: float = 2.0,
    timezone: str = "Asia/Shanghai",
    currency: str = "CNY",
) -> SyntheticShop:
    """Generate a shop of ``customers`` customers whose story runs ``years`` up to ``end``.

    Deterministic: the same arguments give the same events. ``end`` defaults to
    2026-11-01 00:00 in ``timezone`` (never to the clock, so results do not drift).

    Raises:
        ValueError: for a customer count below 1, ``years`` outside (0, 50], a naive ``end`` or
            an unknown time zone.
    """
    if isinstance(customers, bool) or not isinstance(customers, int) or customers < 1:
        raise ValueError(f"customers must be a whole number >= 1, got {customers!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    if not 0 < years <= 50:
        raise ValueError(f"years must be in (0, 50], got {years!r}")
    if not valid_zone_name(timezone):
        raise ValueError(f"not an IANA time zone name: {timezone!r}")
    shop_zone = ZoneInfo(timezone)
    if end is None:
        end = datetime(2026, 11, 1, tzinfo=shop_zone)
    require_aware(end, "end")
    generator = _Generator(customers, seed, end, years, shop_zone, currency)
    with collector_paused(customers >= 1000):
        events = generator.run()
        events.sort(key=sort_key)
    return SyntheticShop(
        events=tuple(events),
        as_of=end,
        customer_ids=generator.ids,
        timezone=timezone,
        seed=seed,
    )


def _quota(n: int, rng: np.random.Generator) -> np.ndarray:
    kinds = np.empty(n, dtype=np.int8)
    start = 0
    for kind, share in _MIX:
        count = max(1, round(share * n)) if kind != _BUYER else n - start
        kinds[start : start + count] = kind
        start += count
    if start < n:
        kinds[start:] = _BUYER
    rng.shuffle(kinds)
    return kinds


def _money(value: float) -> Decimal:
    return Decimal(f"{max(value, 0.01):.2f}")


class _Generator:
    """One run of the generator; all randomness comes from ``rng``."""

    def __init__(
        self,
        n: int,
        seed: int,
        end: datetime,
        years: float,
        shop_zone: ZoneInfo,
        currency: str,
    ) -> None:
        self.n = n
        self.rng = np.random.default_rng(seed)
        self.draw = _Draw(self.rng)
        self.end_ts = end.timestamp()
        self.start_ts = self.end_ts - years * _YEAR
        self.shop_zone = shop_zone
        self.currency = currency
        width = max(5, len(str(n)))
        self.ids = tuple(f"c{i:0{width}d}" for i in range(1, n + 1))
        self.events: list[Event] = []
        self._zones: dict[str, ZoneInfo] = {}

    # -- helpers --------------------------------------------------------------------------------

    def when(self, ts: float, zone: ZoneInfo) -> datetime:
        """The instant ``ts`` (POSIX seconds, whole seconds) as a local time in ``zone``."""
        return datetime.fromtimestamp(int(ts), tz=UTC).astimezone(zone)

    def zone(self, name: str | None) -> ZoneInfo:
        if name is None:
            return self.shop_zone
        z = self._zones.get(name)
        if z is None:
            z = self._zones[name] = ZoneInfo(name)
        return z

    # -- the whole shop -------------------------------------------------------------------------

    def run(self) -> list[Event]:
        rng, n = self.rng, self.n
        kinds = _quota(n, rng)
        span = self.end_ts - self.start_ts
        # Acquisition: when the customer first became known; the base grows over time.
        acquired = self.start_ts + span * np.sqrt(rng.random(n))
        # Buyers: the first order follows acquisition by a few days; then orders come at the
        # customer's own rate per year, and after each one the customer may drop out for good
        # with their own probability (the BG/NBD story: gamma rates, beta drop-out).
        first_order = acquired + rng.exponential(4 * _DAY, n)
        rate = rng.gamma(0.9, 2.6, n) + 0.15
        dropout = rng.beta(0.7, 3.0, n)
        buyers = np.flatnonzero((kinds == _BUYER) & (first_order < self.end_ts - 3600))
        kinds[(kinds == _BUYER) & (first_order >= self.end_ts - 3600)] = _PROSPECT

        # Flags on buyers, by quota so a small shop still has a few of each.
        nb = len(buyers)
        order = rng.permutation(buyers)
        cut = 0

        def take(share: float) -> np.ndarray:
            nonlocal cut
            count = min(max(1, round(share * nb)), nb - cut) if nb else 0
            chosen = order[cut : cut + count]
            cut += count
            return chosen

        partners = take(0.02)
        referrers = take(0.07)
        loyal = take(0.12)  # steady buyers who speak well of the shop: advocates in waiting
        comeback = take(0.04)  # a long pause, then a return
        partner_set = set(partners.tolist())
        loyal_set = set(loyal.tolist())
        comeback_set = set(comeback.tolist())
        for i in np.concatenate([partners, loyal, referrers]):
            # Steady buyers from early on, still buying.
            acquired[i] = self.start_ts + span * 0.4 * self.draw.random()
            first_order[i] = acquired[i] + self.draw.exponential(3 * _DAY)
            rate[i] = max(rate[i], 3.0 + self.draw.random() * 4)
            dropout[i] = min(dropout[i], 0.05)

        referred_by = self._referrals(referrers, first_order, acquired, kinds)
        for i in range(n):
            cid = self.ids[i]
            profile_zone = self._draw_zone()
            zone = self.zone(profile_zone)
            self._acquire(i, cid, acquired[i], kinds[i], profile_zone, zone, referred_by.get(i))
            if kinds[i] == _SUSPECT:
                continue
            if kinds[i] == _PROSPECT:
                self._prospect(cid, acquired[i], zone)
                continue
            self._buyer(
                i,
                cid,
                zone,
                first_order[i],
                rate[i],
                dropout[i],
                loyal=i in loyal_set,
                comeback=i in comeback_set,
            )
            if i in partner_set:
                self._partnership(cid, first_order[i], zone)
        return self.events

    def _draw_zone(self) -> str | None:
        return _ZONE_NAMES[self.draw.weighted(_ZONE_CUMULATIVE)]

    def _referrals(
        self,
        referrers: np.ndarray,
        first_order: np.ndarray,
        acquired: np.ndarray,
        kinds: np.ndarray,
    ) -> dict[int, int]:
        """Pick, for each referrer, customers acquired after their first order; most buy."""
        rng = self.draw
        taken: dict[int, int] = {}
        by_time = np.argsort(acquired, kind="stable")
        sorted_acq = acquired[by_time]
        referrer_set = set(referrers.tolist())
        for r in referrers.tolist():
            start = int(np.searchsorted(sorted_acq, first_order[r] + _DAY))
            if start >= len(by_time):
                continue
            wanted = 1 + rng.poisson(0.8)
            # Draw a few candidates acquired later and prefer the buyers among them, so most
            # referrals convert (which makes the referrer a strategic collaborator).
            candidates = [
                int(by_time[rng.integers(start, len(by_time))]) for _ in range(4 * wanted)
            ]
            candidates.sort(key=lambda c: kinds[c] != _BUYER)
            for referred in candidates[:wanted]:
                if referred not in taken and referred not in referrer_set:
                    taken[referred] = r
        return taken

    # -- one customer ---------------------------------------------------------------------------

    def _profile(
        self, i: int, zone_name: str | None, referred_by: str | None, source: str
    ) -> Profile:
        rng = self.draw
        name = _SURNAMES[rng.integers(len(_SURNAMES))] + _GIVEN[rng.integers(len(_GIVEN))]
        birthday = None
        if rng.random() < 0.75:
            if rng.random() < 0.02:
                leap = rng.pick((1980, 1984, 1988, 1992, 1996, 2000, 2004))
                birthday = Birthday(month=2, day=29, year=leap if rng.random() < 0.5 else None)
            else:
                month = rng.integers(1, 13)
                day = rng.integers(1, 29)
                year = rng.integers(1960, 2007) if rng.random() < 0.7 else None
                birthday = Birthday(month=month, day=day, year=year)
        marketing = rng.random() < 0.6
        consent = {Purpose.TRANSACTIONAL, Purpose.SERVICE}
        if marketing:
            consent.add(Purpose.MARKETING)
        contacts = [ContactPoint(channel="sms", address=f"+86 138{i:08d}", consent=consent)]
        if rng.random() < 0.5:
            contacts.append(
                ContactPoint(channel="email", address=f"customer{i}@example.com", consent=consent)
            )
        if rng.random() < 0.4:
            contacts.append(ContactPoint(channel="wechat", address=f"wx_{i}", consent=consent))
        abroad = zone_name is not None
        return Profile(
            name=name,
            gender=(Gender.FEMALE, Gender.MALE, Gender.OTHER)[rng.weighted((0.6, 0.98, 1.0))],
            birthday=birthday,
            lunar_birthday=birthday is not None and not abroad and rng.random() < 0.05,
            timezone=zone_name,
            locale="en-US" if abroad and rng.random() < 0.7 else "zh-CN",
            city=None if abroad else rng.pick(_CITIES),
            occupation=rng.pick(_OCCUPATIONS) if rng.random() < 0.5 else None,
            tags=frozenset(rng.sample(_TAGS, rng.integers(3))),
            source=source,
            referred_by=referred_by,
            contacts=tuple(contacts),
        )

    def _acquire(
        self,
        i: int,
        cid: str,
        ts: float,
        kind: int,
        zone_name: str | None,
        zone: ZoneInfo,
        referrer: int | None,
    ) -> None:
        rng = self.draw
        source = "referral" if referrer is not None else rng.pick(_SOURCES)
        referrer_id = self.ids[referrer] if referrer is not None else None
        at = self.when(ts, zone)
        if referrer is not None:
            self.events.append(Referred(customer_id=referrer_id or "", at=at, referred_id=cid))
        if kind == _SUSPECT or rng.random() < 0.5:
            self.events.append(LeadCaptured(customer_id=cid, at=at, source=source))
            if rng.random() < 0.3:
                visit = ts + rng.exponential(10 * _DAY)
                if visit < self.end_ts:
                    self.events.append(
                        Engaged(customer_id=cid, at=self.when(visit, zone), kind="visit")
                    )
        if kind == _SUSPECT and rng.random() < 0.7:
            return
        profile = self._profile(i, zone_name, referrer_id, source)
        self.events.append(CustomerRegistered(customer_id=cid, at=at, profile=profile))
        if rng.random() < 0.08:
            # Changing one's mind about marketing, some time later.
            later = ts + rng.uniform(30, 400) * _DAY
            if later < self.end_ts:
                granted = Purpose.MARKETING not in profile.contacts[0].consent
                self.events.append(
                    ConsentChanged(
                        customer_id=cid,
                        at=self.when(later, zone),
                        channel="sms",
                        purpose=Purpose.MARKETING,
                        granted=granted,
                    )
                )

    def _prospect(self, cid: str, ts: float, zone: ZoneInfo) -> None:
        rng = self.draw
        t = ts
        for _ in range(1 + rng.poisson(1.2)):
            t += rng.exponential(5 * _DAY)
            if t >= self.end_ts:
                return
            kind = rng.pick(_ENGAGEMENTS)
            self.events.append(Engaged(customer_id=cid, at=self.when(t, zone), kind=kind))
        if rng.random() < 0.2:
            # Placed an order and never paid, or cancelled it: intent, no purchase.
            t += rng.exponential(2 * _DAY)
            if t >= self.end_ts:
                return
            oid = f"{cid}-o1"
            amount = _money(rng.lognormal(5.0, 0.6))
            self.events.append(
                OrderPlaced(
                    customer_id=cid,
                    at=self.when(t, zone),
                    order_id=oid,
                    amount=amount,
                    currency=self.currency,
                )
            )
            if rng.random() < 0.5 and t + 3600 < self.end_ts:
                self.events.append(
                    OrderCancelled(customer_id=cid, at=self.when(t + 3600, zone), order_id=oid)
                )

    def _buyer(
        self,
        i: int,
        cid: str,
        zone: ZoneInfo,
        first: float,
        rate: float,
        dropout: float,
        *,
        loyal: bool,
        comeback: bool,
    ) -> None:
        rng = self.draw
        if rng.random() < 0.6:
            t = first - rng.uniform(0.2, 3) * _DAY
            if t > self.start_ts:
                kind = rng.pick(_ENGAGEMENTS)
                self.events.append(Engaged(customer_id=cid, at=self.when(t, zone), kind=kind))
        stop = self.end_ts - 3600
        times = [first]
        t = first
        while rng.random() >= dropout:
            t += rng.exponential(_YEAR / rate)
            if t >= stop:
                break
            times.append(t)
        if comeback and len(times) >= 2:
            # A long pause then a return: shift everything after the second order.
            pause = rng.uniform(200, 420) * _DAY
            times = times[:2] + [x + pause for x in times[2:] if x + pause < self.end_ts - 3600]
            back = times[1] + pause
            if back < self.end_ts - 3600 and (len(times) == 2 or times[2] > back):
                times.insert(2, back)
        spend = rng.lognormal(5.2, 0.5)
        for k, ts in enumerate(times, start=1):
            self._order(cid, f"{cid}-o{k}", ts, zone, spend)
        nps_at = times[-1] + rng.uniform(3, 20) * _DAY
        if (loyal or rng.random() < 0.3) and nps_at < self.end_ts:
            score = rng.pick((9, 10, 10)) if loyal else rng.weighted(_NPS_CUMULATIVE)
            self.events.append(
                FeedbackGiven(customer_id=cid, at=self.when(nps_at, zone), score=score, kind="nps")
            )

    def _order(self, cid: str, oid: str, ts: float, zone: ZoneInfo, spend: float) -> None:
        rng, events, cur = self.draw, self.events, self.currency
        amount = _money(spend * rng.lognormal(0.0, 0.35))
        category = rng.pick(_CATEGORIES)
        discount = _money(float(amount) * 0.1) if rng.random() < 0.3 else Decimal(0)
        events.append(
            OrderPlaced(
                customer_id=cid,
                at=self.when(ts, zone),
                order_id=oid,
                amount=amount,
                currency=cur,
                items=(f"sku-{category}-{rng.integers(1, 40)}",),
                categories=(category,),
                discount=discount,
            )
        )
        if rng.random() < 0.04:
            cancel = ts + rng.uniform(0.1, 6) * 3600
            if cancel < self.end_ts:
                events.append(
                    OrderCancelled(customer_id=cid, at=self.when(cancel, zone), order_id=oid)
                )
            return
        paid = ts + rng.uniform(30, 1800)
        if paid >= self.end_ts:
            return
        events.append(
            OrderPaid(
                customer_id=cid,
                at=self.when(paid, zone),
                order_id=oid,
                amount=amount,
                currency=cur,
                items=(f"sku-{category}-1",),
                categories=(category,),
                discount=discount,
            )
        )
        shipped = paid + rng.uniform(4, 40) * 3600
        if shipped >= self.end_ts:
            return
        expected = shipped + 3 * _DAY
        events.append(
            OrderShipped(
                customer_id=cid,
                at=self.when(shipped, zone),
                order_id=oid,
                carrier=rng.pick(_CARRIERS),
                tracking=f"T{oid}",
                expected_delivery=self.when(expected, zone),
            )
        )
        late = rng.random() < 0.06
        delivered = shipped + (rng.uniform(4, 9) if late else rng.uniform(1, 3)) * _DAY
        if delivered >= self.end_ts:
            return
        events.append(OrderDelivered(customer_id=cid, at=self.when(delivered, zone), order_id=oid))
        roll = rng.random()
        if roll < 0.03 or (late and roll < 0.3):
            self._complaint(cid, oid, delivered + rng.uniform(0.1, 2) * _DAY, zone)
        if rng.random() < 0.05:
            refund_at = delivered + rng.uniform(1, 7) * _DAY
            if refund_at < self.end_ts:
                full = rng.random() < 0.4
                refund = amount if full else _money(float(amount) * rng.uniform(0.1, 0.6))
                events.append(
                    OrderRefunded(
                        customer_id=cid,
                        at=self.when(refund_at, zone),
                        order_id=oid,
                        amount=min(refund, amount),
                        currency=cur,
                    )
                )
        if rng.random() < 0.25:
            review_at = delivered + rng.uniform(1, 10) * _DAY
            if review_at < self.end_ts:
                rating = rng.weighted(_RATING_CUMULATIVE) + 1
                events.append(
                    ReviewPosted(
                        customer_id=cid,
                        at=self.when(review_at, zone),
                        rating=rating,
                        order_id=oid,
                    )
                )

    def _complaint(self, cid: str, oid: str, ts: float, zone: ZoneInfo) -> None:
        if ts >= self.end_ts:
            return
        complaint_id = f"{oid}-k"
        self.events.append(
            ComplaintOpened(
                customer_id=cid, at=self.when(ts, zone), complaint_id=complaint_id, order_id=oid
            )
        )
        resolved = ts + self.draw.exponential(2 * _DAY)
        if self.draw.random() < 0.9 and resolved < self.end_ts:
            self.events.append(
                ComplaintResolved(
                    customer_id=cid, at=self.when(resolved, zone), complaint_id=complaint_id
                )
            )

    def _partnership(self, cid: str, first: float, zone: ZoneInfo) -> None:
        rng = self.draw
        signed = first + rng.uniform(30, 200) * _DAY
        if signed >= self.end_ts:
            signed = (first + self.end_ts) / 2
        kind = rng.pick(_PARTNERSHIPS)
        self.events.append(
            PartnershipSigned(customer_id=cid, at=self.when(signed, zone), kind=kind)
        )
        if rng.random() < 0.25:
            ended = signed + rng.uniform(60, 300) * _DAY
            if ended < self.end_ts:
                self.events.append(
                    PartnershipEnded(customer_id=cid, at=self.when(ended, zone), kind=kind)
                )


#: NPS answers 0-10 of ordinary buyers: about 40 % promoters, 25 % detractors.
_NPS_CUMULATIVE = tuple(itertools.accumulate((2, 1, 2, 2, 3, 5, 10, 15, 20, 20, 20)))
#: Review ratings 1-5.
_RATING_CUMULATIVE = tuple(itertools.accumulate((4, 4, 10, 27, 55)))
_ZONE_NAMES = tuple(z for z, _ in _ZONES)
_ZONE_CUMULATIVE = tuple(itertools.accumulate(w for _, w in _ZONES))
