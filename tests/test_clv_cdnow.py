"""The bundled CDNOW data and its loaders."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from lifecycle.datasets.cdnow import load_cdnow_summary, load_cdnow_transactions


def test_the_summary_is_the_2357_customer_cohort_in_weeks() -> None:
    s = load_cdnow_summary()
    assert s.frequency.size == 2357
    assert s.time_unit_days == 7.0
    assert (s.frequency > 0).sum() == 946
    assert (s.recency <= s.T).all()
    assert s.monetary_value[0] == 22.35


def test_the_master_file_holds_every_purchase_of_23570_customers() -> None:
    t = load_cdnow_transactions()
    assert t.customer_id.size == 69_659
    assert np.unique(t.customer_id).size == 23_570
    assert str(t.date.min()) == "1997-01-01"
    assert str(t.date.max()) == "1998-06-30"
    summary = t.summary()
    assert summary.frequency.size == 23_570
    assert summary.time_unit_days == 1.0
    assert ((summary.recency <= summary.T) & (summary.T >= 0)).all()
    assert ((summary.frequency == 0) == (summary.recency == 0)).all()


def test_importing_lifecycle_does_not_import_scipy() -> None:
    code = "import sys, lifecycle, lifecycle.datasets.cdnow; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
