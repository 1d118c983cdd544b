"""Arrow and polars in and out of the single-machine analytics: the same table as from pandas,
the same columns out, numbers shared rather than copied where the layout allows, and a clear
error for a frame of the wrong library."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from lifecycle.analytics import Transactions, rfm_scores, rfm_summary
from lifecycle.errors import DataError

pa = pytest.importorskip("pyarrow", reason="the arrow extra is not installed")
pl = pytest.importorskip("polars", reason="the polars extra is not installed")
pd = pytest.importorskip("pandas", reason="the pandas extra is not installed")


def frame() -> pd.DataFrame:
    gen = np.random.default_rng(1)
    n = 500
    at = np.datetime64("2025-01-01", "us") + gen.integers(0, 300 * 86_400_000_000, n).astype(
        "timedelta64[us]"
    )
    return pd.DataFrame(
        {
            "customer_id": gen.integers(0, 60, n),
            "at": pd.DatetimeIndex(at).tz_localize("UTC").tz_convert("Asia/Shanghai"),
            "amount": np.round(gen.gamma(2, 20, n), 2),
            "refund": np.zeros(n),
        }
    )


def same(a: Transactions, b: Transactions) -> None:
    for name in ("customer_id", "at_us", "amount", "refund", "discount", "day"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.timezone == b.timezone


def test_from_arrow_and_polars_equal_from_pandas() -> None:
    df = frame()
    want = Transactions.from_pandas(df, refund="refund", timezone="Asia/Shanghai")
    table = pa.Table.from_pandas(df, preserve_index=False)
    same(Transactions.from_arrow(table, refund="refund", timezone="Asia/Shanghai"), want)
    same(
        Transactions.from_arrow(table.to_batches()[0], refund="refund", timezone="Asia/Shanghai"),
        want,
    )
    same(
        Transactions.from_polars(pl.from_pandas(df), refund="refund", timezone="Asia/Shanghai"),
        want,
    )


def test_text_ids_from_polars() -> None:
    df = frame().assign(customer_id=lambda d: "c" + d.customer_id.astype(str))
    want = Transactions.from_pandas(df)
    same(Transactions.from_polars(pl.from_pandas(df)), want)


def test_a_polars_frame_passed_to_from_pandas_names_the_right_reader() -> None:
    with pytest.raises(DataError, match=r"got polars\.DataFrame; use Transactions\.from_polars"):
        Transactions.from_pandas(pl.from_pandas(frame()))
    with pytest.raises(DataError, match=r"use Transactions\.from_arrow"):
        Transactions.from_pandas(pa.Table.from_pandas(frame()))
    with pytest.raises(DataError, match=r"use Transactions\.from_pandas"):
        Transactions.from_polars(frame())


def test_naive_nulls_and_missing_columns_are_clear_errors() -> None:
    naive = pl.DataFrame(
        {"customer_id": [1], "at": [datetime(2026, 1, 1)], "amount": [1.0]}  # noqa: DTZ001
    )
    with pytest.raises(DataError, match="naive timestamps"):
        Transactions.from_polars(naive)
    nulls = pl.DataFrame(
        {"customer_id": [1, 2], "at": [datetime(2026, 1, 1, tzinfo=UTC)] * 2, "amount": [1.0, None]}
    )
    with pytest.raises(DataError, match=r"amount.*missing values"):
        Transactions.from_polars(nulls)
    with pytest.raises(DataError, match="no such column"):
        Transactions.from_polars(nulls, amount="price")
    with pytest.raises(DataError, match="timestamps"):
        Transactions.from_polars(nulls.with_columns(pl.lit(3).alias("at")))


def test_results_out_as_arrow_and_polars_without_copies() -> None:
    summary = rfm_summary(Transactions.from_pandas(frame()))
    table = summary.to_arrow()
    assert table.column_names == list(summary.columns())
    assert table.schema.field("first_at").type == pa.timestamp("us", tz="UTC")
    back = table.column("total_spend").to_numpy()
    assert np.shares_memory(back, summary.total_spend)
    polars = summary.to_polars()
    assert polars.schema["last_at"] == pl.Datetime("us", "UTC")
    np.testing.assert_array_equal(polars["frequency"].to_numpy(), summary.frequency)
    scores = rfm_scores(summary.days_since_last, summary.frequency, summary.total_spend)
    assert scores.to_arrow().column_names == ["r", "f", "m", "score"]
    np.testing.assert_array_equal(scores.to_polars()["score"].to_numpy(), scores.score)


def test_predictions_out_as_arrow_and_polars() -> None:
    clv = pytest.importorskip("lifecycle.clv")
    summary = rfm_summary(Transactions.from_pandas(frame()))
    model = clv.ValueModel(
        purchases=clv.BetaGeo.from_params(r=0.5, alpha=10.0, a=0.8, b=2.0),
        spend=clv.GammaGamma.from_params(p=2.0, q=3.0, gamma=20.0),
    )
    predictions = clv.predict_customers(model, summary)
    table = predictions.to_arrow()
    assert table.column_names == ["customer_id", "p_alive", "expected_purchases", "clv"]
    np.testing.assert_array_equal(table.column("clv").to_numpy(), predictions.clv)
    np.testing.assert_array_equal(
        predictions.to_polars()["p_alive"].to_numpy(), predictions.p_alive
    )
    assert len(predictions.to_pandas()) == len(summary)
    with pytest.raises(DataError, match="days"):
        clv.predict_customers(model, rfm_summary(Transactions.from_pandas(frame()), unit="weeks"))
