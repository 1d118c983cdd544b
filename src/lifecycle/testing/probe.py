"""A standing probe: hostile values through events, :meth:`~lifecycle.Lifecycle.record` and the
importer, each case ending in acceptance with the right state or a ``LifecycleError``, with
the shop still planning, dispatching and reporting for everyone else.

:func:`probe_case` and :func:`probe_rows` return ``None`` when a case held, or what broke; the
test suite asserts ``None`` for a bounded number of drawn cases
(:func:`lifecycle.testing.strategies.hostile_cases`, ``hostile_rows``) and
``benchmarks/probe_hostile.py`` counts them over many more.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Final

from lifecycle.adapters.channels import MemoryChannel
from lifecycle.customer import ContactPoint, Profile
from lifecycle.errors import LifecycleError
from lifecycle.events import CustomerRegistered, OrderPaid, OrderShipped
from lifecycle.io import read_orders
from lifecycle.service import Lifecycle
from lifecycle.testing.strategies import HostileCase

__all__ = ["GOOD", "NOW", "probe_case", "probe_rows", "shop_with_a_good_customer"]

#: The instant every probe runs at.
NOW: Final = datetime(2026, 5, 20, 12, tzinfo=UTC)
#: The customer whose shipping notice must go out whatever the other cases do.
GOOD: Final = "good-customer"
_NOTICE: Final = f"{GOOD}:shipping_notice:good-order"


def shop_with_a_good_customer(make: Callable[[], Lifecycle] | None = None) -> Lifecycle:
    """A shop (in memory unless ``make`` gives one) with an ``email`` channel and one customer
    whose shipping notice is due at :data:`NOW`."""
    shop = make() if make is not None else Lifecycle.in_memory()
    shop.channels.setdefault("email", MemoryChannel("email"))
    contact = ContactPoint(channel="email", address="good@example.com")
    shop.record(
        CustomerRegistered(
            customer_id=GOOD, at=NOW - timedelta(days=3), profile=Profile(contacts=(contact,))
        ),
        OrderPaid(
            customer_id=GOOD,
            order_id="good-order",
            amount=Decimal("10.00"),
            currency="CNY",
            at=NOW - timedelta(days=1),
        ),
        OrderShipped(customer_id=GOOD, order_id="good-order", at=NOW - timedelta(hours=1)),
    )
    return shop


def _broke(stage: str, error: BaseException) -> str:
    return f"{stage}: {type(error).__name__}: {str(error)[:200]}"


def _runs(shop: Lifecycle, customers: Sequence[str]) -> str | None:
    """Plan, dispatch, report, assess and export still work, and the good customer's notice
    goes out."""
    try:
        plan = shop.plan(NOW)
        if any(s.customer_id == GOOD for s in plan.skipped):
            return "plan skipped the good customer"
        if _NOTICE not in plan.keys():  # noqa: SIM118  # a Plan is not a container of keys
            return "plan lost the good customer's notice"
        report = shop.dispatch(NOW)
        if _NOTICE not in report.sent:
            return f"dispatch did not send the good customer's notice: {report.counts()}"
        shop.report(NOW, fit=False)
        for cid in customers:
            shop.assess(cid, NOW)
            shop.export(cid, NOW)
    except LifecycleError as e:
        return _broke("running the shop", e)
    except Exception as e:
        return _broke("running the shop (not a LifecycleError)", e)
    return None


def probe_case(case: HostileCase, make: Callable[[], Lifecycle] | None = None) -> str | None:
    """Build ``case``'s event and record it next to a good customer; ``None`` when every
    step ended as it should, else what broke."""
    try:
        event = case.build()
    except LifecycleError:
        return None  # refused by name: the shop never saw it
    except Exception as e:
        return _broke(f"building {case.cls.__name__}", e)
    shop = shop_with_a_good_customer(make)
    try:
        try:
            shop.record(event)
        except LifecycleError:
            if event.customer_id != GOOD and shop.store.history(event.customer_id):
                return "a refused event left a trace"
            return _runs(shop, [GOOD])
        except Exception as e:
            return _broke(f"recording {case.cls.__name__}", e)
        stored = shop.store.events_by_id([event.event_id]).get(event.event_id)
        if stored is None or (stored != event and stored != event.redacted()):
            return f"recorded {case.cls.__name__} does not read back equal"
        return _runs(shop, sorted({GOOD, event.customer_id}))
    finally:
        shop.close()


_HEADER: Final = (
    "order_id",
    "customer_id",
    "amount",
    "placed_at",
    "paid_at",
    "currency",
    "name",
    "phone",
    "email",
)


def probe_rows(
    rows: Sequence[dict[str, str]],
    folder: Path,
    make: Callable[[], Lifecycle] | None = None,
) -> str | None:
    """Import a generic export holding a good order and ``rows``, record what it gives next
    to a good customer; ``None`` when every step ended as it should, else what broke."""
    path = folder / "orders.csv"
    good = {
        "order_id": "good-row",
        "customer_id": "good-buyer",
        "amount": "12.00",
        "placed_at": "2026-05-10 10:00:00",
        "paid_at": "2026-05-10 10:01:00",
    }
    try:
        with path.open("w", encoding="utf-8", newline="", errors="surrogatepass") as f:
            writer = csv.DictWriter(f, _HEADER, restval="")
            writer.writeheader()
            writer.writerow(good)
            writer.writerows(rows)
    except (csv.Error, UnicodeError):
        return None  # not a file anyone could have written
    try:
        got = read_orders(path, skip_bad=True, rejected_to=folder / "orders.rejected.csv")
    except LifecycleError:
        return None
    except Exception as e:
        return _broke("reading the file", e)
    if not any(e.customer_id == "good-buyer" for e in got.events):
        return "the good row was lost"
    shop = shop_with_a_good_customer(make)
    try:
        try:
            shop.record(got.events)
        except LifecycleError:
            return _runs(shop, [GOOD])
        except Exception as e:
            return _broke("recording the import", e)
        return _runs(shop, sorted({GOOD, *(e.customer_id for e in got.events)}))
    finally:
        shop.close()
