"""Stage and status of every customer at once: the per-customer rules in vectorised form.

:func:`assess_all` reads the events once into columns, gathers every customer's stage facts
with numpy group-bys and reads the stage table (:data:`lifecycle.stages.STAGE_RULES`) on them
as arrays; the status follows the rhythm rule. It gives exactly what :func:`lifecycle.assess`
gives customer by customer (the tests hold it to that on generated shops), several times faster.
:func:`assess_stored` does the same from the few fields of stored events the facts come from
(a store's ``event_fields``), without building the events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt

from lifecycle._display import frame, html_table, one_line
from lifecycle._time import require_aware, to_utc, zone
from lifecycle.analytics._days import datetime_to_us, local_days
from lifecycle.events import (
    ComplaintOpened,
    ComplaintResolved,
    CustomerRegistered,
    Engaged,
    Event,
    FeedbackGiven,
    OrderCancelled,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
    PartnershipEnded,
    PartnershipSigned,
    ProfileUpdated,
    Referred,
    ReviewPosted,
    sort_key,
)
from lifecycle.loyalty import assess_tier
from lifecycle.policy import Policy, StagePolicy
from lifecycle.reasons import Skipped
from lifecycle.stages import NO_COMPLAINT, STAGE_RULES, StageFacts
from lifecycle.vocabulary import Stage, Status

__all__ = [
    "BatchAssessment",
    "assess_all",
    "assess_stored",
    "stored_fields",
    "stored_rows",
]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Status codes in :attr:`BatchAssessment.status`; 0 is "no status" (never bought).
STATUS_CODES: tuple[Status | None, ...] = (
    None,
    Status.ACTIVE,
    Status.AT_RISK,
    Status.LAPSED,
    Status.WON_BACK,
)
_NONE, _ACTIVE, _AT_RISK, _LAPSED, _WON_BACK = range(5)


@attrs.frozen(eq=False)
class BatchAssessment:
    """Every customer's stage and status at ``as_of``, as arrays in customer-id order.

    Attributes:
        customer_id: the customers, sorted.
        stage: ``Stage`` values (1-8) as integers.
        status: indices into :data:`STATUS_CODES` (0 = no status yet).
        as_of: the instant assessed.
        tier: loyalty tier keys, when asked for.
        skipped: customers left out because their history could not be read (a store's
            batch assessment; see ``Lifecycle.assess_all``).
    """

    customer_id: npt.NDArray[Any]
    stage: npt.NDArray[np.int8]
    status: npt.NDArray[np.int8]
    as_of: datetime
    tier: npt.NDArray[Any] | None = None
    """Each customer's loyalty tier key (``None`` when not asked for)."""
    skipped: tuple[Skipped, ...] = ()

    @classmethod
    def of_parts(
        cls,
        decided: Iterable[tuple[str, Stage, Status | None]],
        as_of: datetime,
        skipped: Iterable[Skipped] = (),
    ) -> BatchAssessment:
        """The batch of customers decided apart, each as (customer id, stage, status): put in
        customer-id order, in the codes of :data:`STATUS_CODES`."""
        rows = sorted(decided, key=lambda r: r[0])
        code = {s: i for i, s in enumerate(STATUS_CODES)}
        return cls(
            customer_id=np.array([r[0] for r in rows], dtype=object),
            stage=np.array([int(r[1]) for r in rows], dtype=np.int8),
            status=np.array([code[r[2]] for r in rows], dtype=np.int8),
            as_of=as_of,
            skipped=tuple(sorted(skipped, key=lambda k: k.customer_id)),
        )

    @classmethod
    def of_values(
        cls, rows: Sequence[tuple[str, int, str | None]], as_of: datetime
    ) -> BatchAssessment:
        """The batch of customers given as (customer id, stage value, status value or
        ``None``), in customer-id order: a store's stored stages, read as plain values."""
        code = {None if s is None else s.value: i for i, s in enumerate(STATUS_CODES)}
        return cls(
            customer_id=np.array([r[0] for r in rows], dtype=object),
            stage=np.array([r[1] for r in rows], dtype=np.int8),
            status=np.array([code[r[2]] for r in rows], dtype=np.int8),
            as_of=as_of,
        )

    @classmethod
    def joined(
        cls, parts: Iterable[BatchAssessment], as_of: datetime, skipped: Iterable[Skipped] = ()
    ) -> BatchAssessment:
        """The customers of ``parts`` (each customer in one of them) in one batch, in
        customer-id order."""
        parts = list(parts)
        ids = np.concatenate([p.customer_id for p in parts]).astype(object)
        order = np.argsort(ids.astype(str), kind="stable")
        return cls(
            customer_id=ids[order],
            stage=np.concatenate([p.stage for p in parts]).astype(np.int8)[order],
            status=np.concatenate([p.status for p in parts]).astype(np.int8)[order],
            as_of=as_of,
            skipped=tuple(sorted(skipped, key=lambda k: k.customer_id)),
        )

    def only(self, customer_ids: Iterable[str]) -> BatchAssessment:
        """The batch of those of ``customer_ids`` it holds (tiers left out)."""
        wanted = set(customer_ids)
        keep = np.array([cid in wanted for cid in self.customer_id.tolist()], dtype=bool)
        return BatchAssessment(
            customer_id=self.customer_id[keep],
            stage=self.stage[keep],
            status=self.status[keep],
            as_of=self.as_of,
            skipped=self.skipped,
        )

    def __len__(self) -> int:
        return len(self.customer_id)

    def to_pandas(self) -> Any:
        """One row per customer: stage, status and (when assessed) tier (needs pandas)."""
        columns: dict[str, Any] = {
            "customer_id": self.customer_id,
            "stage": [s.name.lower() for s in self.stages()],
            "status": [None if s is None else s.value for s in self.statuses()],
        }
        if self.tier is not None:
            columns["tier"] = self.tier
        return frame(columns).set_index("customer_id")

    def __repr__(self) -> str:
        return one_line(
            "BatchAssessment", f"{len(self):,} customers", f"as of {self.as_of:%Y-%m-%d}"
        )

    def _repr_html_(self) -> str:
        rows = [(s.label_en, n) for s, n in self.stage_counts().items()]
        rows += [(s.label_en, n) for s, n in self.status_counts().items()]
        return html_table(
            ("", "customers"), rows, caption=f"{len(self):,} customers as of {self.as_of:%Y-%m-%d}"
        )

    def stages(self) -> list[Stage]:
        return [Stage(int(s)) for s in self.stage]

    def statuses(self) -> list[Status | None]:
        return [STATUS_CODES[int(s)] for s in self.status]

    def of(self, customer_id: str) -> tuple[Stage, Status | None]:
        """One customer's stage and status."""
        i = int(np.searchsorted(self.customer_id, customer_id))
        if i >= len(self) or self.customer_id[i] != customer_id:
            raise KeyError(customer_id)
        return Stage(int(self.stage[i])), STATUS_CODES[int(self.status[i])]

    def tier_counts(self) -> dict[str, int]:
        """Customers per tier key (only when tiers were assessed)."""
        if self.tier is None:
            raise ValueError("tiers were not assessed; call assess_all(..., tiers=True)")
        keys, counts = np.unique(self.tier.astype(str), return_counts=True)
        return {str(k): int(n) for k, n in zip(keys, counts, strict=True)}

    def stage_counts(self) -> dict[Stage, int]:
        """Customers per stage, every stage listed."""
        counts = np.bincount(self.stage, minlength=len(Stage) + 1)
        return {s: int(counts[s]) for s in Stage}

    def status_counts(self) -> dict[Status, int]:
        """Customers per status, every status listed (customers without one left out)."""
        counts = np.bincount(self.status, minlength=len(STATUS_CODES))
        return {s: int(counts[i]) for i, s in enumerate(STATUS_CODES) if s is not None}


#: A stored event as :meth:`lifecycle.ports.EventFields.event_fields` gives it: customer id,
#: instant (microseconds since 1970 UTC), event type, then the values of the fields read.
StoredRow = tuple[Any, ...]

#: What the batch reads of each event type it needs: the facts it enters (types that enter one
#: fact keep their replay order together: a later profile's zone replaces an earlier one, a
#: resolution closes a complaint, an end closes a partnership) and the fields it reads, as
#: dotted paths into the event (and into its stored JSON, where decimals are text).
_READS: Final[dict[type[Event], tuple[str, tuple[str, ...]]]] = {
    CustomerRegistered: ("zone", ("profile.timezone",)),
    ProfileUpdated: ("zone", ("profile.timezone",)),
    Engaged: ("engaged", ("kind",)),
    OrderPlaced: ("placed", ()),
    OrderPaid: ("paid", ("order_id", "amount")),
    OrderCancelled: ("cancelled", ("order_id",)),
    OrderRefunded: ("refunded", ("order_id", "amount")),
    FeedbackGiven: ("feedback", ("kind", "score")),
    ReviewPosted: ("review", ("rating",)),
    ComplaintOpened: ("complaint", ("complaint_id",)),
    ComplaintResolved: ("complaint", ("complaint_id",)),
    Referred: ("referral", ("referred_id",)),
    PartnershipSigned: ("partnership", ("kind",)),
    PartnershipEnded: ("partnership", ("kind",)),
}
_FACT_OF: Final = {cls.event_type: fact for cls, (fact, _) in _READS.items()}
_OPENED: Final = ComplaintOpened.event_type
_SIGNED: Final = PartnershipSigned.event_type


def stored_fields() -> dict[str, tuple[str, ...]]:
    """The fields :func:`assess_stored` reads, by event type: what to ask
    :meth:`lifecycle.ports.EventFields.event_fields` for. Placed orders are left out: they
    count only as engagement, which a payment gives too (:func:`stored_rows` reads them for
    the customers who paid nothing yet)."""
    return {cls.event_type: paths for cls, (_, paths) in _READS.items() if cls is not OrderPlaced}


#: Reads the stored rows of some customers' events of the types given (``event_fields`` of a
#: store, its instant fixed).
RowReader = Callable[[Iterable[str], Mapping[str, Sequence[str]]], list[StoredRow]]


def stored_rows(read: RowReader, customer_ids: Sequence[str], policy: Policy) -> list[StoredRow]:
    """What :func:`assess_stored` reads to decide ``customer_ids``: their events of
    :func:`stored_fields`, those of the customers they referred, and the placed orders of
    those of them who paid nothing (when the policy counts a placed order as engagement: a
    payment already did; placed orders of a customer then come after their other events)."""
    fields = stored_fields()
    rows = read(customer_ids, fields)
    kind = Referred.event_type
    referred = {r[3] for r in rows if r[2] == kind}.difference(customer_ids)
    if referred:
        rows += read(referred, fields)
    if policy.stage.placed_order_is_engagement:
        kind = OrderPaid.event_type
        paid = {r[0] for r in rows if r[2] == kind}
        unpaid = [c for c in customer_ids if c not in paid]
        if unpaid:
            rows += read(unpaid, {OrderPlaced.event_type: ()})
    return rows


def _row_writer(cls: type[Event]) -> Callable[[Event, int], StoredRow]:
    """A function that gives an event of ``cls`` as the row a store's ``event_fields`` gives."""
    _, paths = _READS[cls]
    if not paths:
        return lambda e, at_us: (e.customer_id, at_us, e.event_type)
    get = attrgetter(*paths)
    if len(paths) == 1:
        return lambda e, at_us: (e.customer_id, at_us, e.event_type, get(e))
    return lambda e, at_us: (e.customer_id, at_us, e.event_type, *get(e))


_ROW_WRITERS: Final = {cls: _row_writer(cls) for cls in _READS}


class _Columns:
    """The facts the rules read, gathered from the rows of the events read, each customer's
    in replay order."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self.ids: dict[str, int] = {}
        self.zone_rows: list[tuple[int, str]] = []
        self.engaged: list[int] = []
        self.orders: dict[tuple[int, str], int] = {}
        # Each paid order's first payment: order, customer, instant (three columns).
        self.paid_order: list[int] = []
        self.paid_customer: list[int] = []
        self.paid_at: list[int] = []
        self.amount: dict[int, Decimal] = {}
        self.cancelled: set[int] = set()
        self.refunded: dict[int, Decimal] = {}
        self.nps: list[tuple[int, int]] = []
        self.reviews: list[tuple[int, int]] = []
        self.complaints: dict[tuple[int, str], int] = {}
        self.complaint_rows: list[tuple[int, int, bool, int]] = []  # complaint, customer, open, at
        self.referrals: list[tuple[int, str]] = []
        self.partnerships: list[tuple[int, str, bool]] = []

    def code(self, customer_id: str) -> int:
        c = self.ids.get(customer_id)
        if c is None:
            c = self.ids[customer_id] = len(self.ids)
        return c

    def order(self, c: int, order_id: str) -> int:
        key = (c, order_id)
        o = self.orders.get(key)
        if o is None:
            o = self.orders[key] = len(self.orders)
        return o

    def enter(self, rows: Iterable[StoredRow]) -> None:
        """Enter the facts of each row, in one loop without a call per row: at millions of
        rows, the calls would cost more than the facts."""
        placed_engages = self.policy.stage.placed_order_is_engagement
        kinds = self.policy.stage.prospect_engagements
        code, order = self.code, self.order
        engaged, zones = self.engaged, self.zone_rows
        orders, amount = self.orders, self.amount
        paid_order, paid_customer, paid_at = self.paid_order, self.paid_customer, self.paid_at
        complaints, complaint_rows = self.complaints, self.complaint_rows
        last, c = None, 0
        for r in rows:
            if r[0] != last:  # each customer's rows come together
                last = r[0]
                c = code(last)
            fact = _FACT_OF[r[2]]
            if fact == "placed":
                if placed_engages:
                    engaged.append(c)
            elif fact == "paid":
                key = (c, r[3])
                o = orders.get(key)
                if o is None:
                    o = orders[key] = len(orders)
                if o not in amount:  # the first payment of an order counts
                    amount[o] = Decimal(r[4])
                    paid_order.append(o)
                    paid_customer.append(c)
                    paid_at.append(r[1])
                if placed_engages:
                    engaged.append(c)
            elif fact == "engaged":
                if r[3] in kinds:
                    engaged.append(c)
            elif fact == "zone":
                if r[3]:
                    zones.append((c, r[3]))
            elif fact == "review":
                self.reviews.append((c, r[3]))
            elif fact == "feedback":
                if r[3] == "nps":
                    self.nps.append((c, r[4]))
            elif fact == "complaint":
                k = complaints.setdefault((c, r[3]), len(complaints))
                complaint_rows.append((k, c, r[2] == _OPENED, r[1]))
            elif fact == "cancelled":
                self.cancelled.add(order(c, r[3]))
            elif fact == "refunded":
                o = order(c, r[3])
                self.refunded[o] = self.refunded.get(o, Decimal(0)) + Decimal(r[4])
            elif fact == "referral":
                self.referrals.append((c, r[3]))
            elif fact == "partnership":
                self.partnerships.append((c, r[3], r[2] == _SIGNED))


def _last_per_group(groups: IntArray, n: int) -> IntArray:
    """For each group 0..n-1, the index of its last row (rows in replay order), or -1."""
    out = np.full(n, -1, dtype=np.int64)
    out[groups] = np.arange(len(groups))  # later rows overwrite earlier ones
    return out


def assess_all(
    events: Iterable[Event], policy: Policy, now: datetime, *, tiers: bool = False
) -> BatchAssessment:
    """The stage and status (and with ``tiers``, the loyalty tier) of every customer at ``now``.

    Equal, customer by customer, to :func:`lifecycle.assess` on each customer's history with
    the referrals the facade passes (the first valid orders of the customers they referred).
    Stage and status are decided with numpy group-bys; the tier replays each customer's
    qualification windows, reviews and grace periods with :func:`lifecycle.assess_tier`, which
    costs about a millisecond per buyer.
    """
    now = to_utc(require_aware(now, "now"))
    now_us = datetime_to_us(now)
    cols = _Columns(policy)
    upto = []
    for e in events:
        cols.code(e.customer_id)  # customers whose events all lie ahead are suspects
        if sort_key(e)[0] <= now:
            upto.append(e)
    upto.sort(key=sort_key)
    writers = _ROW_WRITERS
    cols.enter(
        writers[type(e)](e, datetime_to_us(sort_key(e)[0])) for e in upto if type(e) in writers
    )
    batch = _decide(cols, policy, now, now_us)
    if not tiers:
        return batch
    by_customer: dict[str, list[Event]] = {}
    for e in upto:
        by_customer.setdefault(e.customer_id, []).append(e)
    base = policy.loyalty.tiers.levels[0].key
    keys = np.array(
        [
            assess_tier(by_customer[c], policy, now).tier.key if c in by_customer else base
            for c in batch.customer_id.tolist()
        ],
        dtype=object,
    )
    return attrs.evolve(batch, tier=keys)


def assess_stored(
    rows: Iterable[StoredRow], customer_ids: Iterable[str], policy: Policy, now: datetime
) -> BatchAssessment:
    """The stage and status at ``now`` of ``customer_ids`` and of every customer in ``rows``,
    from the fields of their stored events (:func:`stored_rows`) instead of the events.

    ``rows``: the events of those types at or before ``now``, each customer's in replay order,
    as a store's :meth:`~lifecycle.ports.EventFields.event_fields` gives them (placed orders,
    whose order does not matter, may come apart: :func:`stored_rows`). Decided by the
    same columns and rules as :func:`assess_all`, without building an event: a batch over a
    large store spends most of its time otherwise decoding events whose facts it never reads.
    """
    now = to_utc(require_aware(now, "now"))
    cols = _Columns(policy)
    code = cols.code
    for cid in customer_ids:
        code(cid)  # their events may all lie ahead, or be of types the batch does not read
    cols.enter(rows)
    return _decide(cols, policy, now, datetime_to_us(now))


def _decide(cols: _Columns, policy: Policy, now: datetime, now_us: int) -> BatchAssessment:
    sp, tp = policy.stage, policy.status
    names = np.array(list(cols.ids), dtype=object)
    n = len(names)
    # Customer codes were given in first-seen order; answer in id order.
    rank = np.empty(n, dtype=np.int64)
    order = np.argsort(names.astype(str), kind="stable")
    rank[order] = np.arange(n)

    # -- zones and calendar days ---------------------------------------------------------------
    zone_of = np.full(n, policy.timezone, dtype=object)
    if cols.zone_rows:
        zc = np.array([c for c, _ in cols.zone_rows], dtype=np.int64)
        zn = np.array([z for _, z in cols.zone_rows], dtype=object)
        last = _last_per_group(zc, n)
        has = last >= 0
        zone_of[has] = zn[last[has]]
    # Few zones among many customers: a dictionary numbers them faster than a sort.
    zone_codes: dict[str, int] = {}
    zone_index = np.array(
        [zone_codes.setdefault(z, len(zone_codes)) for z in zone_of.tolist()], dtype=np.int64
    )
    zone_names = list(zone_codes)

    def days_of(customers: IntArray, at_us: IntArray) -> IntArray:
        """Each instant's calendar day in its customer's zone."""
        out = np.empty(len(at_us), dtype=np.int64)
        zi = zone_index[customers]
        for k, name in enumerate(zone_names):
            rows = zi == k
            if rows.any():
                out[rows] = local_days(at_us[rows], zone(str(name)))
        return out

    today = days_of(np.arange(n, dtype=np.int64), np.full(n, now_us, dtype=np.int64))

    # -- valid orders ----------------------------------------------------------------------------
    p_order = np.array(cols.paid_order, dtype=np.int64)
    p_cust = np.array(cols.paid_customer, dtype=np.int64)
    p_at = np.array(cols.paid_at, dtype=np.int64)
    undone = np.array(
        [
            o in cols.cancelled or (o in cols.refunded and cols.refunded[o] >= cols.amount[o])
            for o in p_order.tolist()
        ],
        dtype=bool,
    )
    v_cust, v_at = p_cust[~undone], p_at[~undone]
    v_day = days_of(v_cust, v_at)
    valid_count = np.bincount(v_cust, minlength=n)
    # Distinct purchase days, sorted by customer then day.
    if len(v_day):
        span = int(v_day.max()) - int(v_day.min()) + 1
        key = np.sort(v_cust * span + (v_day - v_day.min()))
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]  # np.unique, without its hash
        d_cust, d_day = key // span, key % span + v_day.min()
    else:
        d_cust = d_day = np.zeros(0, dtype=np.int64)
    days_n = np.bincount(d_cust, minlength=n)
    starts = np.concatenate(([0], np.cumsum(days_n)[:-1])).astype(np.int64)
    has_days = days_n > 0
    if len(d_day):
        top = len(d_day) - 1
        first_day = np.where(has_days, d_day[np.minimum(starts, top)], 0)
        last_day = np.where(has_days, d_day[np.clip(starts + days_n - 1, 0, top)], 0)
    else:
        first_day = last_day = np.zeros(n, dtype=np.int64)

    # -- feedback, reviews, complaints, referrals, partnerships ---------------------------------
    nps = np.full(n, -1, dtype=np.int64)
    if cols.nps:
        answers = np.array(cols.nps, dtype=np.int64)
        last = _last_per_group(answers[:, 0], n)
        has = last >= 0
        nps[has] = answers[last[has], 1]
    review_n = np.zeros(n, dtype=np.int64)
    review_sum = np.zeros(n, dtype=np.int64)
    if cols.reviews:
        rv = np.array(cols.reviews, dtype=np.int64)
        review_n = np.bincount(rv[:, 0], minlength=n)
        review_sum = np.bincount(rv[:, 0], weights=rv[:, 1], minlength=n).astype(np.int64)

    open_complaints = np.zeros(n, dtype=np.int64)
    complaint_age = np.full(n, NO_COMPLAINT, dtype=np.int64)
    if cols.complaint_rows:
        cr = np.array(cols.complaint_rows, dtype=np.int64)
        last = _last_per_group(cr[:, 0], len(cols.complaints))
        still_open = cr[last, 2] == 1
        open_complaints = np.bincount(cr[last[still_open], 1], minlength=n)
        opened = cr[cr[:, 2] == 1]
        if len(opened):
            last_open = _last_per_group(opened[:, 1], n)
            has = last_open >= 0
            c_day = days_of(opened[last_open[has], 1], opened[last_open[has], 3])
            complaint_age[has] = today[has] - c_day

    converted = np.zeros(n, dtype=np.int64)
    if cols.referrals:
        pairs = {(c, rid) for c, rid in cols.referrals}
        ref_cust = np.array([c for c, _ in pairs], dtype=np.int64)
        ref_code = np.array([cols.ids.get(rid, -1) for _, rid in pairs], dtype=np.int64)
        bought = np.zeros(len(ref_code), dtype=bool)
        known = ref_code >= 0
        bought[known] = valid_count[ref_code[known]] > 0
        converted = np.bincount(ref_cust[bought], minlength=n)

    partner = np.zeros(n, dtype=bool)
    if cols.partnerships:
        kinds = sorted({k for _, k, _ in cols.partnerships})
        kind_code = {k: i for i, k in enumerate(kinds)}
        pr = np.array(
            [
                (c * len(kinds) + kind_code[k], c, s, k in sp.partnership_kinds)
                for c, k, s in cols.partnerships
            ],
            dtype=np.int64,
        )
        last = _last_per_group(pr[:, 0], n * len(kinds))
        last = last[last >= 0]
        active = (pr[last, 2] == 1) & (pr[last, 3] == 1)
        partner[pr[last[active], 1]] = True

    engaged = np.zeros(n, dtype=bool)
    engaged[np.array(cols.engaged, dtype=np.int64)] = True

    # -- the stage: the stage table, read for every customer at once ---------------------------
    facts = StageFacts(
        partner=partner,
        converted=converted,
        orders=valid_count,
        days=days_n,
        span=last_day - first_day,
        idle=np.where(has_days, today - last_day, 0),
        nps=nps,
        reviews=review_n,
        review_average=review_sum / np.maximum(review_n, 1),
        open_complaints=open_complaints,
        complaint_age=complaint_age,
        engaged=engaged,
    )
    stage = _stages(facts, sp)

    # -- the status ---------------------------------------------------------------------------
    status = np.zeros(n, dtype=np.int8)
    if len(d_day):
        status = _status(d_cust, d_day, days_n, starts, today, n, tp)
    out_order = order
    return BatchAssessment(
        customer_id=names[out_order],
        stage=stage[out_order],
        status=status[out_order],
        as_of=now,
    )


def _stages(facts: StageFacts, policy: StagePolicy) -> npt.NDArray[np.int8]:
    """Each customer's stage: the highest whose criterion in the stage table holds."""
    n = len(np.asarray(facts.orders))
    return np.select(
        [np.broadcast_to(rule.holds(facts, policy), (n,)) for rule in STAGE_RULES],
        [rule.stage.value for rule in STAGE_RULES],
    ).astype(np.int8)


def _status(
    d_cust: IntArray,
    d_day: IntArray,
    days_n: IntArray,
    starts: IntArray,
    today: IntArray,
    n: int,
    tp: Any,
) -> npt.NDArray[np.int8]:
    """The rhythm rule of :mod:`lifecycle.status`, for every customer at once."""
    ends = starts + days_n
    has = days_n > 0
    last_day = np.where(has, d_day[np.maximum(ends - 1, 0)], 0)
    # Gaps between consecutive purchase days, per customer, in time order.
    gaps = np.diff(d_day)
    g_cust = d_cust[1:]
    within = d_cust[1:] == d_cust[:-1]
    gaps, g_cust = gaps[within], g_cust[within]
    m = np.maximum(days_n - 1, 0)  # gaps per customer
    g_start = np.concatenate(([0], np.cumsum(m)[:-1])).astype(np.int64)
    # The last gap of each customer, in time order (before sorting).
    last_gap = np.where(m > 0, gaps[np.maximum(g_start + m - 1, 0)] if len(gaps) else 0, 0)
    span = int(gaps.max()) + 1 if len(gaps) else 1
    sorted_key = np.sort(g_cust * span + gaps)  # by customer, then gap
    sorted_gaps = sorted_key - np.repeat(np.arange(n) * span, m)

    def median(count: IntArray, skip: IntArray | None) -> npt.NDArray[np.float64]:
        """Median of each customer's first ``count`` sorted gaps, one occurrence of ``skip`` left out."""
        lo_k = (count - 1) // 2
        hi_k = count // 2

        def at(k: IntArray) -> npt.NDArray[np.int64]:
            if skip is not None:
                k = k + (k >= skip)
            idx = np.clip(g_start + k, 0, max(len(sorted_gaps) - 1, 0))
            return sorted_gaps[idx] if len(sorted_gaps) else np.zeros(len(k), dtype=np.int64)

        return (at(lo_k) + at(hi_k)) / 2

    fallback = tp.at_risk_multiple * tp.fallback_gap_days
    with np.errstate(invalid="ignore"):
        threshold = np.where(
            days_n >= tp.rhythm_min_days, tp.at_risk_multiple * median(m, None), fallback
        )
        # Before the last purchase day: the gaps without the last one.
        skip_at = np.zeros(n, dtype=np.int64)
        if len(sorted_gaps):
            first_equal = np.searchsorted(sorted_key, np.arange(n) * span + last_gap)
            skip_at = first_equal - g_start
        before = np.where(
            days_n - 1 >= tp.rhythm_min_days,
            tp.at_risk_multiple * median(m - 1, skip_at),
            fallback,
        )
    won = (m > 0) & ((last_gap > tp.lapsed_days) | (last_gap > before))
    idle = today - last_day
    status = np.where(
        idle > tp.lapsed_days,
        _LAPSED,
        np.where(idle > threshold, _AT_RISK, np.where(won, _WON_BACK, _ACTIVE)),
    )
    return np.where(has, status, _NONE).astype(np.int8)
