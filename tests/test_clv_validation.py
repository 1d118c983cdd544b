"""Calibration and holdout: the split, the checks of a model on the holdout, the comparison of
models, and their figures."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from lifecycle.analytics import Transactions
from lifecycle.clv import BetaGeo, ParetoNBD, calibration_holdout
from lifecycle.datasets.cdnow import load_cdnow_transactions
from lifecycle.errors import DataError

CAL, END = date(1997, 9, 30), date(1998, 6, 30)  # weeks 1-39 and 40-78 of the CDNOW cohort


@pytest.fixture(scope="module")
def cdnow() -> tuple[object, object]:
    t = load_cdnow_transactions()
    table = Transactions.from_arrays(t.customer_id, t.date.astype("datetime64[us]"), t.dollars)
    return t, calibration_holdout(table, calibration_end=CAL, holdout_end=END)


def test_the_split_counts_purchase_days_in_each_period(cdnow: tuple[object, object]) -> None:
    t, split = cdnow  # type: ignore[misc]
    # the same counts written out with numpy: distinct (customer, day), first day per customer
    pairs = np.unique(np.stack([t.customer_id, t.date.astype(np.int64)]), axis=1)
    ids, days = pairs
    cal, end = (np.datetime64(d, "D").astype(np.int64) for d in (CAL, END))
    first = {}
    for i, d in zip(ids.tolist(), days.tolist(), strict=True):
        first[i] = min(d, first.get(i, d))
    held = (days > cal) & (days <= end)
    assert len(split.summary) == 23_570
    assert split.holdout.sum() == held.sum() == 19_684
    assert split.holdout_days == 273
    order = np.argsort(split.summary.customer_id)
    per_customer = np.bincount(ids[held], minlength=ids.max() + 1)
    assert np.array_equal(split.holdout[order], per_customer[split.summary.customer_id[order]])
    assert split.first_day.tolist()[:5] == [
        first[c] for c in split.summary.customer_id[:5].tolist()
    ]
    repeats = (days <= end) & (days > np.array([first[c] for c in ids.tolist()]))
    assert split.repeat_by_day.sum() == repeats.sum()


def test_the_check_compares_each_customers_prediction_with_the_holdout(
    cdnow: tuple[object, object],
) -> None:
    _, split = cdnow  # type: ignore[misc]
    s = split.summary
    model = BetaGeo().fit(s.frequency, s.recency, s.T)
    check = split.check(model)
    predicted = model.expected_purchases(273.0, s.frequency, s.recency, s.T)
    assert np.allclose(check.predicted, predicted)
    assert check.mae == pytest.approx(np.abs(predicted - split.holdout).mean())
    assert check.total_actual == 19_684
    # figures an independent run (lifetimes 0.11.3 on the same split, in days) gave
    assert check.total_predicted == pytest.approx(16_873.737, rel=1e-6)
    assert check.mae == pytest.approx(0.8187423, rel=1e-6)
    assert [b.label for b in check.buckets] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert [b.customers for b in check.buckets] == [14119, 4442, 2064, 1084, 605, 348, 272, 636]
    assert check.buckets[1].actual == pytest.approx(0.7841062584421432)
    assert check.buckets[1].predicted == pytest.approx(0.519802723262729, rel=1e-6)
    # the tracking curve ends at every repeat purchase; its prediction is the sum over customers
    curve = check.tracking
    assert curve.actual[-1] == split.repeat_by_day.sum()
    i = int((np.datetime64(CAL, "D") - curve.day[0]).astype(int))
    ages = (np.datetime64(CAL, "D") - (np.datetime64("1970-01-01", "D") + split.first_day)).astype(
        int
    )
    assert curve.predicted[i] == pytest.approx(
        model.expected_purchases_new(ages.astype(float)).sum()
    )
    assert "MAE" in check._repr_html_()
    assert check.to_dict()["buckets"][0]["label"] == "0"


def test_models_are_compared_by_their_holdout_error(cdnow: tuple[object, object]) -> None:
    _, split = cdnow  # type: ignore[misc]
    comparison = split.compare()
    maes = {c.model: c.mae for c in comparison.checks}
    assert set(maes) == {"BG/NBD", "MBG/NBD", "Pareto/NBD"}
    assert comparison.best == min(maes, key=maes.__getitem__)
    assert sum(c.chosen for c in comparison.candidates) == 1
    assert "holdout MAE" in comparison._repr_html_()


def test_a_model_in_weeks_is_checked_in_days(cdnow: tuple[object, object]) -> None:
    _, split = cdnow  # type: ignore[misc]
    s = split.summary
    weeks = ParetoNBD().fit(s.frequency, s.recency / 7, s.T / 7, time_unit_days=7)
    days = ParetoNBD().fit(s.frequency, s.recency, s.T)
    assert split.check(weeks).mae == pytest.approx(split.check(days).mae, rel=1e-6)


def test_a_holdout_must_follow_the_calibration() -> None:
    table = Transactions.from_arrays(
        [1, 1, 2], [datetime(2024, 1, d, tzinfo=UTC) for d in (1, 5, 3)], [1.0, 2.0, 3.0]
    )
    with pytest.raises(DataError, match="after"):
        calibration_holdout(table, calibration_end=date(2024, 1, 5), holdout_end=date(2024, 1, 5))
    with pytest.raises(DataError, match="calibration"):
        calibration_holdout(table, calibration_end=date(2023, 1, 5), holdout_end=date(2024, 1, 5))
    split = calibration_holdout(
        table,
        calibration_end=datetime(2024, 1, 3, 12, tzinfo=UTC),
        holdout_end=date(2024, 1, 9),
    )
    assert split.holdout.tolist() == [1.0, 0.0]
    assert split.holdout_days == 6


def test_the_holdout_figures_have_titles_and_labels(cdnow: tuple[object, object]) -> None:
    pytest.importorskip("matplotlib")
    from lifecycle.analytics import plots

    _, split = cdnow  # type: ignore[misc]
    s = split.summary
    check = split.check(BetaGeo().fit(s.frequency, s.recency, s.T))
    for ax in (plots.holdout_by_frequency(check), plots.tracking_plot(check)):
        assert ax.get_title()
        assert ax.get_xlabel()
        assert ax.get_ylabel()
        ax.figure.canvas.draw()
