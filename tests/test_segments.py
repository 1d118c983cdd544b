"""RFM scores and segments, Pareto/ABC classes and k-means clusters over per-customer arrays."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lifecycle.analytics.segments import (
    FEATURES,
    SEGMENT_MAP,
    ABCClass,
    ABCPolicy,
    RFMPolicy,
    RFMScores,
    Segment,
    ValueGroup,
    abc_classes,
    cluster_customers,
    pareto,
    rfm_scores,
    rfm_segments,
    segment_table,
)
from lifecycle.errors import DataError, LifecycleError, PolicyError

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = settings(max_examples=60, deadline=None)


def _scores(days: list[float], freq: list[float], money: list[float], **kw: Any) -> RFMScores:
    return rfm_scores(np.array(days), np.array(freq), np.array(money), **kw)


def reference_score(value: float, cuts: tuple[float, ...], *, descending: bool) -> int:
    """One customer's score, written plainly: the interval (c_prev, c] that holds the value."""
    interval = sum(1 for c in cuts if value > c)
    return len(cuts) + 1 - interval if descending else 1 + interval


# -- RFM scores ---------------------------------------------------------------------------------


def test_scores_are_the_right_closed_quantile_interval_of_each_value() -> None:
    rng = np.random.default_rng(7)
    days, freq, money = rng.integers(0, 400, 500), rng.poisson(2, 500), rng.gamma(2, 80, 500)
    s = rfm_scores(days, freq, money)
    q = np.arange(1, 5) / 5
    assert s.cuts.recency_days == tuple(np.quantile(days, q))
    assert s.cuts.frequency == tuple(np.quantile(freq, q))
    assert s.cuts.monetary == tuple(np.quantile(money, q))
    for i in range(0, 500, 37):
        assert s.r[i] == reference_score(days[i], s.cuts.recency_days, descending=True)
        assert s.f[i] == reference_score(freq[i], s.cuts.frequency, descending=False)
        assert s.m[i] == reference_score(money[i], s.cuts.monetary, descending=False)


@pytest.mark.parametrize("high", [30, 10**9])  # counted, and (a wide span) partitioned
def test_whole_number_cuts_are_numpy_quantiles_however_wide_the_span(high: int) -> None:
    values = np.random.default_rng(1).integers(0, high, 101)
    s = rfm_scores(values, values, values, bins=7)
    assert s.cuts.monetary == tuple(np.quantile(values, np.arange(1, 7) / 7))


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(2).integers(0, 400, 300_000).astype(np.float64),  # counted
        np.r_[np.arange(300_000.0) % 97, 2.5],  # not all whole: partitioned
        np.array([3.0, 1e9, 7.0]),  # whole but widely spread: partitioned
    ],
)
def test_float_cuts_are_numpy_quantiles_whichever_way_they_are_found(values: np.ndarray) -> None:
    s = rfm_scores(values, values, values)
    assert s.cuts.recency_days == tuple(np.quantile(values, np.arange(1, 5) / 5))


def test_a_value_on_a_cut_point_falls_in_the_interval_below() -> None:
    cuts = RFMPolicy(recency_days=(30, 90, 180, 365), frequency=(1, 2, 4, 8), monetary=(1, 2, 3, 4))
    s = _scores([0, 30, 31, 90, 365, 366], [0, 1, 2, 3, 8, 9], [0] * 6, cuts=cuts)
    assert s.r.tolist() == [5, 5, 4, 4, 2, 1]  # "within 30 days" includes day 30
    assert s.f.tolist() == [1, 1, 2, 3, 4, 5]


def test_more_recent_customers_score_higher_on_recency() -> None:
    s = _scores([400, 1, 100, 250, 50], [1] * 5, [1] * 5)
    assert s.r.tolist() == [1, 5, 3, 2, 4]


def test_equal_values_always_share_a_score_even_across_a_quantile() -> None:
    freq = [0, 0, 0, 0, 0, 0, 1, 1, 2, 5]  # six of ten tied at the bottom, across two cuts
    s = _scores([1] * 10, freq, [1] * 10)
    assert s.cuts.frequency == pytest.approx((0.0, 0.0, 0.4, 1.2))
    assert s.f.tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]  # scores 2 and 3 stay empty


def test_an_all_equal_column_scores_recent_but_low_value() -> None:
    s = _scores([3] * 4, [2] * 4, [50.0] * 4)
    assert s.r.tolist() == [5] * 4
    assert s.f.tolist() == s.m.tolist() == [1] * 4


@pytest.mark.parametrize(
    ("money", "expected"),
    [
        ([9.0], [1]),
        ([1.0, 2.0], [1, 5]),
        ([30.0, 10.0, 20.0], [5, 1, 3]),
        ([10.0, 20.0, 30.0, 40.0], [1, 2, 4, 5]),
    ],
)
def test_tiny_shops_of_one_to_four_customers(money: list[float], expected: list[int]) -> None:
    n = len(money)
    s = _scores([0] * n, [0] * n, money)
    assert s.m.tolist() == expected
    assert len(s) == n


def test_the_combined_score_reads_r_f_m_as_digits_and_total_adds_them() -> None:
    cuts = RFMPolicy(recency_days=(1, 2, 3, 4), frequency=(1, 2, 3, 4), monetary=(1, 2, 3, 4))
    s = _scores([0, 9, 2], [9, 0, 3], [3, 9, 0], cuts=cuts)
    assert s.score.tolist() == [553, 115, 431]
    assert s.total.tolist() == [13, 7, 8]


def test_scores_are_read_only_integer_arrays() -> None:
    s = _scores([1, 2], [1, 2], [1, 2])
    for arr in (s.r, s.f, s.m, s.score):
        assert arr.dtype.kind == "i"
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 3


def test_learned_cuts_score_new_data_on_the_same_scale() -> None:
    rng = np.random.default_rng(3)
    days, freq, money = rng.integers(0, 300, 200), rng.poisson(1, 200), rng.gamma(2, 50, 200)
    first = rfm_scores(days, freq, money)
    again = rfm_scores(days, freq, money, cuts=first.cuts)
    assert again.score.tolist() == first.score.tolist()
    newcomer = rfm_scores([0], [1000], [1e9], cuts=first.cuts)
    assert newcomer.score.tolist() == [555]


def test_fixed_and_learned_cuts_mix_per_dimension() -> None:
    s = _scores([1, 2, 3], [1, 2, 3], [10, 20, 30], cuts=RFMPolicy(monetary=(5, 15, 25, 35)))
    assert s.m.tolist() == [2, 3, 4]
    assert s.cuts.monetary == (5.0, 15.0, 25.0, 35.0)
    assert s.cuts.frequency == tuple(np.quantile([1, 2, 3], np.arange(1, 5) / 5))


def test_three_bins_score_one_to_three() -> None:
    s = _scores(list(range(9)), list(range(9)), list(range(9)), bins=3)
    assert set(s.f.tolist()) == {1, 2, 3}
    assert s.bins == 3
    assert len(s.cuts.monetary or ()) == 2


def test_an_empty_shop_scores_with_fixed_cuts_but_cannot_learn_them() -> None:
    cuts = RFMPolicy(recency_days=(1, 2, 3, 4), frequency=(1, 2, 3, 4), monetary=(1, 2, 3, 4))
    assert len(rfm_scores([], [], [], cuts=cuts)) == 0
    with pytest.raises(DataError, match="no customers"):
        rfm_scores([], [], [])


@pytest.mark.parametrize(
    ("days", "freq", "money", "argument", "message"),
    [
        ([1, 2], [1], [1, 2], None, "frequency=1"),
        ([1.0, math.nan], [1, 2], [1, 2], "recency_days", "1 value.*NaN.*index 1"),
        ([1, 2], [1, -2], [1, 2], "frequency", "negative"),
        ([1, 2], [1, 2], [1, math.inf], "monetary", "infinite"),
        ([[1, 2]], [1, 2], [1, 2], "recency_days", "one-dimensional"),
        ([1, 2], ["a", "b"], [1, 2], "frequency", "numbers"),
    ],
)
def test_bad_arrays_are_refused_naming_the_argument(
    days: object, freq: object, money: object, argument: str | None, message: str
) -> None:
    with pytest.raises(DataError, match=message) as caught:
        rfm_scores(days, freq, money)  # type: ignore[arg-type]
    assert caught.value.column == argument
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, LifecycleError)


@pytest.mark.parametrize("bins", [1, 10, True, 2.5])
def test_bins_outside_two_to_nine_are_a_policy_error(bins: object) -> None:
    with pytest.raises(PolicyError) as caught:
        rfm_scores([1], [1], [1], bins=bins)  # type: ignore[arg-type]
    assert caught.value.key == "analytics.rfm.bins"


@pytest.mark.parametrize(
    ("kwargs", "key", "message"),
    [
        ({"monetary": (1, 2, 3)}, "analytics.rfm.monetary", "need 4 cut points"),
        ({"frequency": (1, 3, 2, 4)}, "analytics.rfm.frequency", "must not decrease"),
        ({"recency_days": (-1, 2, 3, 4)}, "analytics.rfm.recency_days", "finite and >= 0"),
        ({"recency_days": (1, 2, 3, math.nan)}, "analytics.rfm.recency_days", "finite"),
        ({"monetary": "1,2,3,4"}, "analytics.rfm.monetary", "list of cut points"),
        ({"monetary": (1, 2, "3", 4)}, "analytics.rfm.monetary", "numbers"),
    ],
)
def test_bad_cut_points_are_a_policy_error_naming_the_key(
    kwargs: dict[str, object], key: str, message: str
) -> None:
    with pytest.raises(PolicyError, match=message) as caught:
        RFMPolicy(**kwargs)  # type: ignore[arg-type]
    assert caught.value.key == key


def test_repeated_cut_points_are_allowed_and_leave_a_score_empty() -> None:
    s = _scores([0] * 3, [0, 1, 5], [0] * 3, cuts=RFMPolicy(frequency=(0, 1, 1, 4)))
    assert s.f.tolist() == [1, 2, 5]


def test_bins_that_disagree_with_the_cuts_are_refused() -> None:
    with pytest.raises(DataError, match="cuts has 3 scores") as caught:
        _scores([1], [1], [1], bins=5, cuts=RFMPolicy(bins=3))
    assert caught.value.column == "bins"
    assert _scores([1], [1], [1], bins=3, cuts=RFMPolicy(bins=3)).bins == 3
    with pytest.raises(DataError, match="RFMPolicy"):
        _scores([1], [1], [1], cuts=(1, 2, 3, 4))


def test_to_pandas_without_pandas_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    s = _scores([1], [1], [1])
    with pytest.raises(ImportError, match="needs pandas"):
        s.to_pandas()


# -- named segments -----------------------------------------------------------------------------


def reference_segment(r: int, f: int) -> Segment:
    matches = [s for s, (r0, r1), (f0, f1) in SEGMENT_MAP if r0 <= r <= r1 and f0 <= f <= f1]
    assert len(matches) == 1, (r, f, matches)
    return matches[0]


ONE_TO_FIVE = RFMPolicy(recency_days=(1, 2, 3, 4), frequency=(1, 2, 3, 4), monetary=(1, 2, 3, 4))


def _grid_scores() -> RFMScores:
    """Every (R, F) cell once: R = 6 - days for days 1..5, F = freq for freq 1..5."""
    days, freq = np.meshgrid(np.arange(1, 6), np.arange(1, 6), indexing="ij")
    return rfm_scores(days.ravel(), freq.ravel(), np.ones(25), cuts=ONE_TO_FIVE)


def test_the_segment_map_covers_every_r_f_cell_exactly_once() -> None:
    for r in range(1, 6):
        for f in range(1, 6):
            reference_segment(r, f)


def test_every_named_segment_is_reachable_and_matches_the_map() -> None:
    scores = _grid_scores()
    seg = rfm_segments(scores)
    for i in range(25):
        assert seg.segment(i) is reference_segment(int(scores.r[i]), int(scores.f[i]))
    assert all(count > 0 for count in seg.counts.values())
    assert list(seg.counts) == list(Segment)
    assert sum(seg.counts.values()) == len(seg) == 25


@pytest.mark.parametrize(
    ("r", "f", "segment"),
    [
        (5, 5, Segment.CHAMPIONS),
        (3, 4, Segment.LOYAL),
        (4, 2, Segment.POTENTIAL_LOYALISTS),
        (5, 1, Segment.NEW),
        (4, 1, Segment.PROMISING),
        (3, 3, Segment.NEED_ATTENTION),
        (3, 2, Segment.ABOUT_TO_SLEEP),
        (2, 3, Segment.AT_RISK),
        (1, 5, Segment.CANT_LOSE),
        (2, 2, Segment.HIBERNATING),
        (1, 2, Segment.LOST),
    ],
)
def test_each_segment_at_a_cell_of_the_map(r: int, f: int, segment: Segment) -> None:
    seg = rfm_segments(_scores([6 - r], [f], [1], cuts=ONE_TO_FIVE))
    assert seg.segment(0) is segment
    assert seg.codes.tolist() == [segment.code]
    assert seg.mask(segment).tolist() == [True]


def test_by_fm_reads_the_map_with_f_and_m_averaged_half_up() -> None:
    s = _scores([0, 0, 0], [1, 1, 4], [2, 1, 5], cuts=ONE_TO_FIVE)  # R 5; F, M = 1,2 1,1 4,5
    assert [rfm_segments(s).segment(i) for i in range(3)] == [
        Segment.NEW,
        Segment.NEW,
        Segment.CHAMPIONS,
    ]
    by_fm = rfm_segments(s, by="fm")
    assert [by_fm.segment(i) for i in range(3)] == [
        Segment.POTENTIAL_LOYALISTS,
        Segment.NEW,
        Segment.CHAMPIONS,
    ]
    with pytest.raises(DataError, match="'f' or 'fm'"):
        rfm_segments(s, by="m")  # type: ignore[arg-type]


def test_the_segment_map_needs_five_bins() -> None:
    with pytest.raises(DataError, match="1-5"):
        rfm_segments(_scores([1, 2], [1, 2], [1, 2], bins=3))


def test_segments_have_english_and_chinese_labels() -> None:
    assert Segment.CANT_LOSE.label_en == "can't lose them"
    assert Segment.CHAMPIONS.label("zh") == "冠军客户"
    assert Segment.LOST.label() == "lost"
    labels = {s.label_zh for s in Segment} | {s.label_en for s in Segment}
    assert len(labels) == 2 * len(Segment)
    seg = rfm_segments(_scores([0, 9], [9, 0], [1, 1], cuts=ONE_TO_FIVE))
    assert seg.labels().tolist() == ["champions", "lost"]
    assert seg.labels("zh").tolist() == ["冠军客户", "已流失客户"]


def test_the_segment_table_in_the_docs_is_the_one_the_code_generates() -> None:
    page = (ROOT / "docs" / "segments.md").read_text(encoding="utf-8")
    table = page.split("<!-- segment-table:start -->\n")[1].split("\n<!-- segment-table:end -->")[0]
    assert table == segment_table()
    assert re.search(r"\| `CHAMPIONS` \| champions \| 冠军客户 \| 5 \| 4-5 \|", table)


# -- Pareto -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3, 5, 7, 10, 1000])
def test_when_everyone_brings_the_same_the_top_fifth_brings_a_fifth(n: int) -> None:
    p = pareto(np.full(n, 0.1))
    assert p.value_share_of_top == pytest.approx(0.2)
    assert p.customers_for_value == math.ceil(0.8 * n - 1e-9)
    assert p.gini == pytest.approx(0.0, abs=1e-12)
    assert p.curve_value == pytest.approx(p.curve_customers)


def test_one_customer_bringing_everything() -> None:
    p = pareto([0, 0, 100, 0, 0, 0, 0, 0, 0, 0])
    assert p.value_share_of_top == 1.0
    assert (p.customers_for_value, p.customer_share_for_value) == (1, 0.1)
    assert p.gini == pytest.approx(0.9)


def test_a_known_eighty_twenty_shop() -> None:
    p = pareto([5, 30, 50, 10, 5])
    assert p.value_share_of_top == pytest.approx(0.5)  # the top fifth is one customer: 50 of 100
    assert (p.customers_for_value, p.customer_share_for_value) == (2, 0.4)  # 50 + 30 = 80
    assert p.total == 100.0
    half = pareto([5, 30, 50, 10, 5], top_fraction=0.3, value_fraction=0.5)
    assert half.value_share_of_top == pytest.approx(0.65)  # 50 + half of 30
    assert half.customers_for_value == 1


def test_the_pareto_curve_runs_from_origin_to_one_and_is_concave() -> None:
    values = np.random.default_rng(5).pareto(1.5, 2000)
    p = pareto(values, points=51)
    assert p.curve_customers.size == p.curve_value.size == 51
    assert (p.curve_customers[0], p.curve_value[0]) == (0.0, 0.0)
    assert p.curve_customers[-1] == p.curve_value[-1] == pytest.approx(1.0)
    assert np.all(np.diff(p.curve_value, 2) <= 1e-12)
    every = pareto(values, points=None)
    assert every.curve_value.size == 2001


@pytest.mark.parametrize(
    ("values", "kwargs", "argument"),
    [
        ([], {}, "values"),
        ([0, 0], {}, "values"),
        ([1, -1], {}, "values"),
        ([1, 2], {"top_fraction": 0}, "top_fraction"),
        ([1, 2], {"value_fraction": 1.5}, "value_fraction"),
        ([1, 2], {"points": 1}, "points"),
        ([1e308, 1e308], {}, "values"),
    ],
)
def test_pareto_refuses_what_has_no_answer(
    values: list[float], kwargs: dict[str, object], argument: str
) -> None:
    with pytest.raises(DataError) as caught:
        pareto(values, **kwargs)  # type: ignore[arg-type]
    assert caught.value.column == argument


# -- ABC ----------------------------------------------------------------------------------------


def test_abc_classes_by_cumulative_share_with_ties_in_the_order_given() -> None:
    abc = abc_classes([5, 30, 50, 10, 5])
    # ranked 50, 30, 10, 5 (index 0), 5 (index 4); value above each: 0, 50, 80, 90, 95
    assert abc.classes().tolist() == ["B", "A", "A", "B", "C"]
    assert dict(abc.counts) == {ABCClass.A: 2, ABCClass.B: 2, ABCClass.C: 1}
    assert abc.value_shares[ABCClass.A] == pytest.approx(0.8)
    assert sum(abc.value_shares.values()) == pytest.approx(1.0)


def test_the_top_customer_is_class_a_even_alone_past_the_threshold() -> None:
    abc = abc_classes([1, 90, 9])
    assert abc.classes().tolist() == ["C", "A", "B"]  # 90 is over 80% alone


def test_customers_who_bring_nothing_are_class_c() -> None:
    abc = abc_classes([0, 1, 0], b=1.0)
    assert abc.classes().tolist() == ["C", "A", "C"]


def test_all_equal_customers_split_in_the_order_given() -> None:
    abc = abc_classes(np.full(20, 0.1))
    assert abc.classes().tolist() == ["A"] * 16 + ["B"] * 3 + ["C"]
    assert abc.codes.tolist()[:2] == [ABCClass.A.code, ABCClass.A.code]


def test_abc_thresholds_are_configurable() -> None:
    abc = abc_classes([5, 30, 50, 10, 5], a=0.5, b=0.9)
    assert abc.classes().tolist() == ["C", "B", "A", "B", "C"]
    assert abc.policy == ABCPolicy(a=0.5, b=0.9)
    assert ABCClass.A.label("zh") == "A类客户"
    assert ABCClass.C.label_en == "class C"


@pytest.mark.parametrize(
    ("a", "b", "key"),
    [
        (0.0, 0.9, "analytics.abc.a"),
        (0.8, 1.2, "analytics.abc.b"),
        (0.9, 0.9, "analytics.abc.b"),
        (0.95, 0.8, "analytics.abc.b"),
        ("0.8", 0.9, "analytics.abc.a"),
    ],
)
def test_bad_abc_thresholds_are_a_policy_error(a: object, b: object, key: str) -> None:
    with pytest.raises(PolicyError) as caught:
        abc_classes([1, 2, 3], a=a, b=b)  # type: ignore[arg-type]
    assert caught.value.key == key


# -- k-means clusters ---------------------------------------------------------------------------


def _blobs(per: int = 7000, seed: int = 11) -> tuple[np.ndarray, ...]:
    """Three well-separated groups: key (recent, frequent, big), ordinary, small."""
    rng = np.random.default_rng(seed)
    spec = [(6, 30, 8000), (60, 5, 600), (400, 0.3, 40)]  # days, repeat orders, money
    days = np.concatenate([rng.normal(np.log1p(d), 0.15, per) for d, _, _ in spec])
    freq = np.concatenate([rng.normal(np.log1p(f), 0.1, per) for _, f, _ in spec])
    money = np.concatenate([rng.normal(np.log1p(m), 0.15, per) for _, _, m in spec])
    truth = np.repeat(np.arange(3), per)
    order = rng.permutation(truth.size)
    cols = [np.expm1(np.maximum(c, 0))[order] for c in (days, freq, money)]
    return (*cols, truth[order])


def test_kmeans_recovers_well_separated_groups_ordered_by_value() -> None:
    days, freq, money, truth = _blobs()
    c = cluster_customers(days, freq, money)
    assert c.labels.tolist() == truth.tolist()  # 21,000 customers: more than one block
    assert c.sizes.tolist() == [7000, 7000, 7000]
    assert c.groups == (ValueGroup.KEY, ValueGroup.ORDINARY, ValueGroup.SMALL)
    assert c.names("zh") == ("重点客户", "普通客户", "小客户")
    assert c.names() == ("key customers", "ordinary customers", "small customers")
    assert FEATURES == ("recency_days", "frequency", "monetary")
    assert c.centres[0] == pytest.approx([6, 30, 8000], rel=0.05)
    assert c.centres[2] == pytest.approx([400, 0.3, 40], rel=0.05)
    assert c.means[1] == pytest.approx([60, 5, 600], rel=0.05)
    assert c.inertia > 0
    assert 1 <= c.iterations <= 300


def test_kmeans_is_deterministic_for_a_generator_and_by_default() -> None:
    rng = np.random.default_rng(2)
    days, freq, money = rng.integers(0, 500, 3000), rng.poisson(2, 3000), rng.gamma(2, 90, 3000)
    one = cluster_customers(days, freq, money, k=4, rng=np.random.default_rng(9))
    two = cluster_customers(days, freq, money, k=4, rng=np.random.default_rng(9))
    assert one.labels.tolist() == two.labels.tolist()
    assert one.centres.tolist() == two.centres.tolist()
    assert one.inertia == two.inertia
    plain = cluster_customers(days, freq, money)
    assert plain.labels.tolist() == cluster_customers(days, freq, money).labels.tolist()


def test_clusters_other_than_three_are_named_by_value_rank() -> None:
    rng = np.random.default_rng(4)
    days, freq, money = rng.integers(0, 500, 600), rng.poisson(2, 600), rng.gamma(2, 90, 600)
    c = cluster_customers(days, freq, money, k=4, n_init=2)
    assert c.groups is None
    assert c.names() == tuple(f"value rank {i} of 4" for i in range(1, 5))
    assert c.names("zh")[0] == "价值第1档（共4档）"
    assert c.sizes.sum() == 600
    # ordered by standardised log frequency + monetary, highest first:
    logs = np.log1p(np.stack([days, freq, money]).astype(float))
    z = (np.log1p(c.centres) - logs.mean(axis=1)) / logs.std(axis=1)
    assert np.all(np.diff(z[:, 1] + z[:, 2]) <= 1e-9)


def test_one_cluster_holds_everyone() -> None:
    c = cluster_customers([1, 2, 3], [1, 2, 3], [1, 2, 3], k=1)
    assert c.labels.tolist() == [0, 0, 0]
    assert c.means[0] == pytest.approx([2, 2, 2])


def test_kmeans_needs_k_distinct_customers() -> None:
    with pytest.raises(DataError, match="at least 3 customers"):
        cluster_customers([1, 2], [1, 2], [1, 2])
    with pytest.raises(DataError, match="3 distinct customers"):
        cluster_customers([1, 1, 2, 2], [1, 1, 2, 2], [5, 5, 6, 6])


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"k": 0}, "k"),
        ({"n_init": 0}, "n_init"),
        ({"max_iter": 1.5}, "max_iter"),
        ({"tol": -1}, "tol"),
        ({"rng": 42}, "rng"),
    ],
)
def test_bad_kmeans_options_are_refused(kwargs: dict[str, object], argument: str) -> None:
    with pytest.raises(DataError) as caught:
        cluster_customers([1, 2, 3], [1, 2, 3], [1, 2, 3], **kwargs)  # type: ignore[arg-type]
    assert caught.value.column == argument


# -- properties ---------------------------------------------------------------------------------

counts = st.integers(min_value=1, max_value=60)


def _columns(n: int, kind: str) -> st.SearchStrategy[np.ndarray]:
    if kind == "int":
        return hnp.arrays(np.int64, n, elements=st.integers(0, 30))
    return hnp.arrays(np.float64, n, elements=st.floats(0, 1e6, allow_subnormal=False))


@st.composite
def rfm_inputs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    n = draw(counts)
    days = draw(_columns(n, draw(st.sampled_from(["int", "float"]))))
    freq = draw(_columns(n, "int"))
    money = draw(_columns(n, "float"))
    return days, freq, money, draw(st.integers(2, 9))


@SETTINGS
@given(rfm_inputs())
def test_scores_stay_in_range_and_never_fall_as_the_input_rises(
    data: tuple[np.ndarray, np.ndarray, np.ndarray, int],
) -> None:
    days, freq, money, bins = data
    s = rfm_scores(days, freq, money, bins=bins)
    for values, score, sign in ((days, s.r, -1), (freq, s.f, 1), (money, s.m, 1)):
        assert score.min() >= 1
        assert score.max() <= bins
        order = np.argsort(values, kind="stable")
        assert np.all(np.diff(score[order].astype(int)) * sign >= 0)
        for v in np.unique(values):  # equal values, equal scores
            assert np.unique(score[values == v]).size == 1
    assert s.score.tolist() == (100 * s.r + 10 * s.f + s.m).tolist()


@SETTINGS
@given(rfm_inputs(), st.randoms(use_true_random=False))
def test_permuting_customers_permutes_their_scores(
    data: tuple[np.ndarray, np.ndarray, np.ndarray, int], rnd: object
) -> None:
    days, freq, money, bins = data
    perm = np.random.default_rng(rnd.randint(0, 2**32)).permutation(days.size)  # type: ignore[attr-defined]
    whole = rfm_scores(days, freq, money, bins=bins)
    shuffled = rfm_scores(days[perm], freq[perm], money[perm], bins=bins)
    assert shuffled.score.tolist() == whole.score[perm].tolist()
    assert shuffled.cuts == whole.cuts


@SETTINGS
@given(counts.flatmap(lambda n: _columns(n, "int")), st.integers(2, 9))
def test_whole_number_cuts_equal_numpy_quantile(values: np.ndarray, bins: int) -> None:
    s = rfm_scores(values, values, values.astype(np.float64), bins=bins)
    expected = tuple(np.quantile(values, np.arange(1, bins) / bins))
    assert s.cuts.frequency == s.cuts.monetary == s.cuts.recency_days == expected


@SETTINGS
@given(counts.flatmap(lambda n: _columns(n, "float")))
def test_abc_classes_never_improve_as_value_falls_and_a_matches_pareto(values: np.ndarray) -> None:
    if values.sum() <= 0:
        values = values + 1.0
    abc = abc_classes(values)
    order = np.argsort(-values, kind="stable")
    assert np.all(np.diff(abc.codes[order].astype(int)) >= 0)
    p = pareto(values)
    assert abc.counts[ABCClass.A] == p.customers_for_value
    assert p.value_share_of_top >= 0.2 - 1e-9  # the head never brings less than its share
    assert 0.0 <= p.gini < 1.0
