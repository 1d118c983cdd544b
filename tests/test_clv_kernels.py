"""The block-wise passes of the value models: compiled loops (numba) and numpy give the same
numbers, the distinct-row grouping matches a plain np.unique, and bad rows met on the fast path
raise the checks' errors."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle._compiled import numpy_only
from lifecycle.clv import BetaGeo, GammaGamma, ModifiedBetaGeo, _data, _kernels, simulate_customers
from lifecycle.clv.betageo import _build_likelihood
from lifecycle.errors import DataError

TRUTH = BetaGeo.from_params(r=0.243, alpha=4.414 * 7, a=0.793, b=2.426)
SPEND = GammaGamma.from_params(p=6.25, q=3.74, gamma=15.44)


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compiled loops for any size, and blocks of 1,000 rows, so small data crosses blocks."""
    monkeypatch.setattr(_kernels, "MIN_ROWS", 0)
    monkeypatch.setattr(_kernels, "CHUNK", 1000)
    monkeypatch.setattr(_data, "CHUNK", 1000)


def _customers(n: int, seed: int, weeks: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sim = simulate_customers(TRUTH, rng.integers(1, 3 * 365, n).astype(float), rng, spend=SPEND)
    tx = np.floor(sim.recency)
    div = 7.0 if weeks else 1.0
    return sim.frequency, tx / div, sim.T / div


def _reference_rows(columns: list[np.ndarray], weights: np.ndarray | None):
    stacked = np.stack(columns, axis=1)
    rows, inv = np.unique(stacked, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    counts = np.bincount(inv, weights=weights, minlength=rows.shape[0])
    return rows, counts, inv


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 400),
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([1.0, 7.0, 100.0]),
    spread=st.sampled_from([5, 3000, 2**20]),
    weighted=st.booleans(),
)
def test_unique_rows_match_np_unique(
    n: int, seed: int, scale: float, spread: int, weighted: bool
) -> None:
    """Both ways of counting packed keys (dense counts, a sort with the row under the key)
    give np.unique's rows, sums and row map."""
    rng = np.random.default_rng(seed)
    cols = [rng.integers(0, spread, n) / scale for _ in range(3)]
    w = rng.random(n) if weighted else None
    got_cols, got_counts, inv = _data.unique_rows(cols, w, inverse=True)
    rows, counts, ref_inv = _reference_rows(cols, w)
    np.testing.assert_array_equal(np.stack(got_cols, axis=1), rows)
    np.testing.assert_allclose(got_counts, counts, rtol=1e-12)
    assert inv is not None
    np.testing.assert_array_equal(inv, ref_inv)
    plain_cols, plain_counts, _ = _data.unique_rows(cols, w)
    np.testing.assert_array_equal(np.stack(plain_cols, axis=1), rows)
    np.testing.assert_allclose(plain_counts, counts, rtol=1e-12)


def test_unique_rows_off_the_grid_and_across_blocks(small_blocks: None) -> None:
    rng = np.random.default_rng(3)
    on = rng.integers(0, 50, 5000) / 7.0
    off = on.copy()
    off[4321] += 1e-9  # one value off the grid, in a later block than the sample sees first
    for col in (on, off):
        got, counts, inv = _data.unique_rows([col, on], inverse=True)
        rows, ref_counts, ref_inv = _reference_rows([col, on], None)
        np.testing.assert_array_equal(np.stack(got, axis=1), rows)
        np.testing.assert_array_equal(counts, ref_counts)
        np.testing.assert_array_equal(inv, ref_inv)


def test_per_distinct_is_the_function_of_every_row() -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(0, 30, 20_000).astype(float)
    t = rng.integers(0, 400, 20_000) / 7.0
    got = _data.per_distinct([x, t], lambda c: c[0] * 1000.0 + c[1])
    np.testing.assert_array_equal(got, x * 1000.0 + t)


@pytest.mark.parametrize("model_cls", [BetaGeo, ModifiedBetaGeo])
@pytest.mark.parametrize("weeks", [False, True])
def test_compiled_and_numpy_predictions_agree_bitwise(
    small_blocks: None, model_cls: type[BetaGeo], weeks: bool
) -> None:
    pytest.importorskip("numba")
    x, tx, T = _customers(7_321, 11, weeks)
    model = model_cls.from_params(r=0.3, alpha=20.0 / (7 if weeks else 1), a=0.8, b=2.5)
    alive = model.p_alive(x, tx, T)
    expected = model.expected_purchases(4.0, x, tx, T)
    with numpy_only():
        alive_np = model.p_alive(x, tx, T)
        expected_np = model.expected_purchases(4.0, x, tx, T)
    np.testing.assert_array_equal(alive, alive_np)
    np.testing.assert_array_equal(expected, expected_np)
    # and both equal the per-customer formula
    one = [
        model.p_alive(float(a), float(b), float(c))
        for a, b, c in zip(x[:50], tx[:50], T[:50], strict=True)
    ]
    np.testing.assert_allclose(alive[:50], one, rtol=1e-13)


def test_compiled_and_numpy_likelihoods_agree(small_blocks: None) -> None:
    pytest.importorskip("numba")
    x, tx, T = _customers(20_000, 12, True)
    theta = np.log(np.array([0.25, 4.0, 0.8, 2.4]))
    for shift in (0.0, 1.0):
        lik = _build_likelihood(x, tx, T, None, shift)
        f, g = lik(theta)
        with numpy_only():
            f_np, g_np = lik(theta)
        assert f == pytest.approx(f_np, rel=1e-12)
        np.testing.assert_allclose(g, g_np, rtol=1e-10, atol=1e-14)
    fit = BetaGeo().fit(x, tx, T, time_unit_days=7)
    with numpy_only():
        fit_np = BetaGeo().fit(x, tx, T, time_unit_days=7)
    for k in fit.params:
        assert fit.params[k] == pytest.approx(fit_np.params[k], rel=1e-8)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize(
    ("row", "column"),
    [
        ((np.nan, 0.0, 3.0), "frequency"),
        ((1.5, 1.0, 3.0), "frequency"),
        ((-1.0, 0.0, 3.0), "frequency"),
        ((2.0, -1.0, 3.0), "recency"),
        ((2.0, 4.0, 3.0), "recency"),
        ((0.0, 1.0, 3.0), "recency"),
        ((2.0, 1.0, np.inf), "T"),
    ],
)
def test_bad_rows_on_the_fast_path_raise_the_checks_error(
    small_blocks: None, compiled: bool, row: tuple[float, float, float], column: str
) -> None:
    if compiled:
        pytest.importorskip("numba")
    x, tx, T = _customers(3_000, 13, False)
    x[2500], tx[2500], T[2500] = row
    model = BetaGeo.from_params(r=0.3, alpha=20.0, a=0.8, b=2.5)
    with numpy_only() if not compiled else contextlib.nullcontext():
        with pytest.raises(DataError) as alive_error:
            model.p_alive(x, tx, T)
        with pytest.raises(DataError) as expected_error:
            model.expected_purchases(4.0, x, tx, T)
    assert alive_error.value.column == expected_error.value.column == column


def test_gamma_gamma_sums_cross_blocks(small_blocks: None) -> None:
    rng = np.random.default_rng(21)
    sim = simulate_customers(TRUTH, rng.integers(1, 400, 9_000).astype(float), rng, spend=SPEND)
    fit = GammaGamma().fit(sim.frequency, sim.monetary_value)
    keep = sim.frequency > 0
    xm = sim.frequency[keep] * sim.monetary_value[keep]
    w = np.ones(xm.size)
    sums = _kernels.spend_sums(xm, w, sim.frequency[keep], 15.0)
    s = 15.0 + xm
    x = sim.frequency[keep]
    expected = [np.log(s).sum(), (x * np.log(s)).sum(), (1 / s).sum(), (x / s).sum()]
    np.testing.assert_allclose(sums, expected, rtol=1e-12)
    unit = _kernels.spend_sums(xm, None, sim.frequency[keep], 15.0)
    np.testing.assert_allclose(unit, expected, rtol=1e-12)
    assert fit.convergence is not None
    assert fit.convergence.converged


def test_value_models_import_and_run_without_numba() -> None:
    code = (
        "import sys; sys.modules['numba'] = None\n"
        "import numpy as np\n"
        "from lifecycle.clv import BetaGeo, _kernels\n"
        "assert not _kernels.compiled(10**9)\n"
        "m = BetaGeo.from_params(r=0.3, alpha=20.0, a=0.8, b=2.5)\n"
        "x = np.arange(100_000) % 5.0\n"
        "print(m.p_alive(x, x, x + 3).sum() > 0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "True"


def test_fits_hold_blas_to_one_thread_and_put_the_count_back() -> None:
    from lifecycle.clv import _blas

    libs = _blas._libraries()
    before = [get() for get, _ in libs]
    with _blas.one_thread():
        assert all(get() == 1 for get, _ in libs)
    assert [get() for get, _ in libs] == before


def test_the_gamma_gamma_hessian_is_exact_and_the_fit_reaches_the_maximum() -> None:
    from lifecycle.clv._optimize import _hessian
    from lifecycle.clv.gammagamma import _Likelihood

    rng = np.random.default_rng(5)
    truth = BetaGeo.from_params(r=0.243, alpha=30.9, a=0.793, b=2.426)
    spend = GammaGamma.from_params(p=6.25, q=3.74, gamma=15.44)
    sim = simulate_customers(truth, rng.integers(273, 357, 200_000).astype(float), rng, spend=spend)
    keep = sim.frequency > 0
    x, m = sim.frequency[keep], sim.monetary_value[keep]
    lik = _Likelihood(x, m, rng.integers(1, 4, x.size).astype(float))
    for theta in (np.log([6.0, 3.7, 15.0]), np.log([1.0, 3.0, 60.0])):
        f, g, h = lik.with_hessian(theta)
        assert (f, *g) == pytest.approx((*[lik(theta)[0]], *lik(theta)[1]), rel=1e-14)
        np.testing.assert_allclose(h, _hessian(lik, theta), rtol=1e-6, atol=1e-9)
    fitted = GammaGamma().fit(x, m)
    assert fitted.convergence is not None
    assert fitted.convergence.gradient_norm < 1e-10
