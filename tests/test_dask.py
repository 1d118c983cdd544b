"""The analytics on a Dask cluster of two worker processes give the answers of one machine,
whatever the partitioning: customers split across partitions, empty partitions, one customer
with most of the lines."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("dask.dataframe", reason="the dask extra is not installed")
pytest.importorskip("distributed", reason="the dask extra is not installed")
pytest.importorskip("scipy", reason="the clv extra is not installed")

import dask
import dask.bag as db
import dask.dataframe as dd
import pandas as pd
from distributed import Client, LocalCluster

import lifecycle.dask as ldask
from lifecycle.analytics import (
    Transactions,
    abc_classes,
    assess_all,
    cohort_retention,
    kpis,
    pareto,
    rfm_scores,
    rfm_summary,
)
from lifecycle.clv import BetaGeo, ModifiedBetaGeo, ValueModel, predict_customers
from lifecycle.datasets import synthetic_shop
from lifecycle.errors import DataError
from lifecycle.policy import Policy


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def order_lines(seed: int = 0, customers: int = 400, lines: int = 6000) -> pd.DataFrame:
    """Order lines with a skewed customer (a tenth of the lines), discounts and refunds, and
    several lines on one day; in time order, as a log is stored."""
    gen = np.random.default_rng(seed)
    weight = gen.gamma(0.7, 1.0, customers)
    who = gen.choice(customers, lines, p=weight / weight.sum())
    who[gen.random(lines) < 0.1] = 7  # one customer with a tenth of the lines
    # each customer buys between a first day and a drop-out day
    first = gen.integers(0, 500, customers)
    life = np.minimum(first + gen.exponential(150.0, customers).astype(np.int64) + 1, 600)
    day = first[who] + (gen.random(lines) * (life - first)[who]).astype(np.int64)
    seconds = day * 86_400 + gen.integers(0, 86_400, lines)
    seconds[np.flatnonzero(who == 7)[:20]] = seconds[np.flatnonzero(who == 7)[0]]  # one day
    start = np.datetime64("2024-01-01T00:00:00", "us")
    offsets = np.sort(seconds) * 1_000_000
    who = who[np.argsort(seconds, kind="stable")]
    amount = np.round(gen.gamma(2.0, 30.0, lines), 2)
    refund = np.where(gen.random(lines) < 0.05, np.round(amount / 2, 2), 0.0)
    return pd.DataFrame(
        {
            "customer_id": who.astype(np.int64),
            "at": pd.DatetimeIndex(start + offsets.astype("timedelta64[us]")).tz_localize("UTC"),
            "amount": amount,
            "refund": refund,
            "discount": np.where(gen.random(lines) < 0.2, 5.0, 0.0),
        }
    )


def partitioned(frame: pd.DataFrame, cuts: list[int]) -> dd.DataFrame:
    """``frame`` in partitions cut at row positions ``cuts`` (repeated cuts: empty partitions)."""
    bounds = [0, *cuts, len(frame)]
    parts = [frame.iloc[a:b] for a, b in itertools.pairwise(bounds)]
    return dd.from_delayed([dask_value(p) for p in parts], meta=frame.iloc[:0])


def dask_value(part: pd.DataFrame) -> object:
    from dask import delayed

    return delayed(part)


LINES = order_lines()
SPLITS = {
    "one": [],
    "by-rows": [1500, 3000, 4500],
    "with-empty": [1000, 1000, 2500, 5999, 5999],
    "ragged": [1, 2, 3, 4000],
}


def in_memory(frame: pd.DataFrame, **options: object) -> Transactions:
    return Transactions.from_pandas(frame, refund="refund", discount="discount", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("combine", [False, True], ids=["rows", "partials"])
@pytest.mark.parametrize("split", sorted(SPLITS))
def test_the_summary_is_that_of_one_machine_bit_for_bit(
    client: Client, split: str, combine: bool
) -> None:
    lines = partitioned(LINES, SPLITS[split])
    got = ldask.customer_summary(
        lines, refund="refund", discount="discount", buckets=3, combine=combine
    ).compute()
    want = rfm_summary(in_memory(LINES))
    assert got.end == want.end
    for name, column in want.columns().items():
        other = got.columns()[name]
        assert other.dtype == column.dtype, name
        np.testing.assert_array_equal(other, column, err_msg=name)


def test_weeks_an_end_and_a_zone(client: Client) -> None:
    lines = partitioned(LINES, SPLITS["with-empty"])
    end = datetime(2025, 3, 1, tzinfo=UTC)
    got = ldask.customer_summary(
        lines, timezone="Asia/Shanghai", end=end, unit="weeks", buckets=5
    ).compute()
    want = rfm_summary(
        Transactions.from_pandas(LINES, timezone="Asia/Shanghai"), end=end, unit="weeks"
    )
    for name, column in want.columns().items():
        np.testing.assert_array_equal(got.columns()[name], column, err_msg=name)


def test_text_customer_ids(client: Client) -> None:
    frame = LINES.assign(customer_id=[f"c{c:04d}" for c in LINES.customer_id])
    got = ldask.customer_summary(partitioned(frame, [10, 3000]), buckets=4).compute()
    want = rfm_summary(Transactions.from_pandas(frame))
    assert got.customer_id.tolist() == want.customer_id.tolist()
    np.testing.assert_array_equal(got.monetary_value, want.monetary_value)


def test_the_dask_frame_of_the_summary(client: Client) -> None:
    summary = ldask.customer_summary(partitioned(LINES, [3000]), buckets=3)
    frame = summary.to_dask().compute().sort_index()
    want = rfm_summary(Transactions.from_pandas(LINES)).to_pandas()
    pd.testing.assert_frame_equal(frame, want)


def test_rfm_pareto_abc_and_cohorts(client: Client) -> None:
    lines = partitioned(LINES, SPLITS["ragged"])
    summary = ldask.customer_summary(lines, refund="refund", discount="discount", buckets=3)
    want = rfm_summary(in_memory(LINES))
    ids, scores = ldask.rfm(summary)
    expected = rfm_scores(want.days_since_last, want.frequency, want.total_spend)
    np.testing.assert_array_equal(ids, want.customer_id)
    assert scores.cuts == expected.cuts
    np.testing.assert_array_equal(scores.score, expected.score)
    p, q = ldask.pareto_of(summary), pareto(want.total_spend)
    assert (p.value_share_of_top, p.gini, p.customers_for_value) == (
        q.value_share_of_top,
        q.gini,
        q.customers_for_value,
    )
    np.testing.assert_array_equal(ldask.abc(summary).codes, abc_classes(want.total_spend).codes)
    got = ldask.cohorts(lines, buckets=4)
    ref = cohort_retention(Transactions.from_pandas(LINES))
    np.testing.assert_array_equal(got.cohorts, ref.cohorts)
    np.testing.assert_array_equal(got.counts, ref.counts)
    np.testing.assert_array_equal(got.rates, ref.rates)


@pytest.mark.parametrize("fitter", [BetaGeo(), ModifiedBetaGeo()], ids=["BG/NBD", "MBG/NBD"])
def test_fits_and_predictions_match(client: Client, fitter: BetaGeo) -> None:
    lines = partitioned(LINES, SPLITS["with-empty"])
    summary = ldask.customer_summary(lines, buckets=4)
    want = rfm_summary(Transactions.from_pandas(LINES))
    bg = ldask.fit_purchases(summary, fitter)
    ref = fitter.fit(want.frequency, want.recency, want.T)
    for name, value in ref.params.items():
        assert bg.params[name] == pytest.approx(value, rel=1e-10), name
    gg = ldask.fit_spend(summary)
    gg_ref = ValueModel.fit(want, models=("BG/NBD",), penalty=0).spend
    assert gg is not None
    assert gg_ref is not None
    for name, value in gg_ref.params.items():
        assert gg.params[name] == pytest.approx(value, rel=1e-10), name
    model = ValueModel(purchases=bg, spend=gg, horizon_days=90.0, clv_horizon_days=365.0)
    expected = predict_customers(model, want)
    for per_task in (1, 3, 8):  # buckets predicted alone, in uneven groups, all together
        got = ldask.predict(summary, model, buckets_per_task=per_task).compute()
        np.testing.assert_array_equal(got.customer_id, expected.customer_id)
        for name in ("p_alive", "expected_purchases", "clv"):
            np.testing.assert_allclose(
                getattr(got, name), getattr(expected, name), rtol=1e-12, atol=0, err_msg=name
            )


def test_predict_refuses_an_empty_group(client: Client) -> None:
    summary = ldask.customer_summary(partitioned(LINES, [2000]), buckets=2)
    model = ValueModel(purchases=ldask.fit_purchases(summary), spend=ldask.fit_spend(summary))
    with pytest.raises(DataError, match="buckets_per_task"):
        ldask.predict(summary, model, buckets_per_task=0)


def test_predictions_as_parquet(client: Client, tmp_path: object) -> None:
    summary = ldask.customer_summary(partitioned(LINES, [2000]), buckets=2)
    model = ValueModel(purchases=ldask.fit_purchases(summary), spend=ldask.fit_spend(summary))
    path = str(tmp_path) + "/predictions"
    ldask.predict(summary, model).to_parquet(path)
    back = pd.read_parquet(path).sort_values("customer_id")
    want = predict_customers(model, rfm_summary(Transactions.from_pandas(LINES)))
    np.testing.assert_allclose(back["clv"].to_numpy(), want.clv, rtol=1e-12)


def test_stage_and_status_on_event_partitions(client: Client) -> None:
    shop = synthetic_shop(150, seed=3)
    events = list(shop.events)
    policy = Policy(timezone="Asia/Shanghai")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    bag = db.from_sequence(events, npartitions=5)  # events of a customer in several partitions
    got = ldask.assess_events(bag, policy, now, buckets=3)
    want = assess_all(events, policy, now)
    assert got.customer_id.tolist() == want.customer_id.tolist()
    np.testing.assert_array_equal(got.stage, want.stage)
    np.testing.assert_array_equal(got.status, want.status)


def test_kpis_on_event_partitions(client: Client) -> None:
    shop = synthetic_shop(150, seed=5)
    events = list(shop.events)
    policy = Policy(timezone="Asia/Shanghai")
    end = shop.as_of
    start = end - timedelta(days=120)
    got = ldask.kpis(db.from_sequence(events, npartitions=4), policy, start=start, end=end)
    want = kpis(events, policy, start=start, end=end)
    assert want.referrals
    assert want.orders
    for name, value in want.to_dict().items():
        other = got.to_dict()[name]
        if isinstance(value, float):
            assert other == pytest.approx(value, rel=1e-12), name
        else:
            assert other == value, name


def test_bad_input_is_a_clear_error(client: Client) -> None:
    with pytest.raises(DataError, match="dask DataFrame"):
        ldask.customer_summary(LINES)  # type: ignore[arg-type]
    naive = LINES.assign(at=LINES["at"].dt.tz_localize(None))
    with pytest.raises(DataError, match="naive"):
        ldask.customer_summary(partitioned(naive, [3000]))


def test_progress_shows_the_dashboard(client: Client, capsys: pytest.CaptureFixture[str]) -> None:
    summary = ldask.customer_summary(partitioned(LINES, [3000]), buckets=2, show_progress=True)
    assert summary.end == rfm_summary(Transactions.from_pandas(LINES)).end
    out = capsys.readouterr().out
    assert "Dask dashboard: http" in out
    assert "100% Completed" in out


@settings(max_examples=25, deadline=None)
@given(
    cuts=st.lists(st.integers(0, len(LINES)), max_size=6).map(sorted),
    buckets=st.integers(1, 7),
    unit=st.sampled_from(["days", "weeks"]),
)
def test_any_partitioning_and_any_buckets_give_the_same_summary(
    cuts: list[int], buckets: int, unit: str
) -> None:
    """The invariant behind the cluster tests, on Dask's in-process scheduler."""
    with dask.config.set(scheduler="sync"):
        got = ldask.customer_summary(
            partitioned(LINES, cuts),
            refund="refund",
            buckets=buckets,
            unit=unit,  # type: ignore[arg-type]
        ).compute()
    want = WHOLE[unit]
    for name, column in want.columns().items():
        np.testing.assert_array_equal(got.columns()[name], column, err_msg=name)


WHOLE = {
    unit: rfm_summary(Transactions.from_pandas(LINES, refund="refund"), unit=unit)  # type: ignore[arg-type]
    for unit in ("days", "weeks")
}
