"""R-hat and bulk ESS in numpy (journeymodel.fit.convergence) against ArviZ's, the reference."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeymodel.fit import convergence as cv


def _ar1(rng, chains, draws, phi, shift=()):
    """AR(1) chains (autocorrelation ``phi``), chain i shifted by ``shift[i]``."""
    x = np.zeros((chains, draws))
    noise = rng.normal(size=(chains, draws))
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x + np.asarray(shift or [0.0] * chains)[:, None]


def _arviz(draws):
    az = pytest.importorskip("arviz")
    import xarray as xr

    ds = xr.Dataset({"v": (("chain", "draw"), draws)})
    return (float(az.rhat(ds, method="rank")["v"]), float(az.ess(ds, method="bulk")["v"]))


@pytest.mark.parametrize(("chains", "draws", "phi", "shift"), [
    (4, 1000, 0.0, ()), (4, 1000, 0.9, ()), (2, 101, 0.5, ()), (4, 500, 0.3, (0, 0, 0, 2)),
    (3, 7, 0.0, ()), (1, 400, 0.7, ())])
def test_agree_with_arviz(chains, draws, phi, shift):
    x = _ar1(np.random.default_rng(chains * draws), chains, draws, phi, shift)
    r_ref, e_ref = _arviz(x)
    if chains < 2:
        assert np.isnan(cv.rhat_rank(x)) and np.isnan(r_ref)
    else:
        assert cv.rhat_rank(x) == pytest.approx(r_ref, rel=1e-12)
    assert cv.ess_bulk(x) == pytest.approx(e_ref, rel=1e-10)


def test_ties_constants_and_nan_as_arviz():
    rng = np.random.default_rng(5)
    ties = rng.integers(0, 4, size=(4, 200)).astype(float)  # many tied ranks
    r_ref, e_ref = _arviz(ties)
    assert cv.rhat_rank(ties) == pytest.approx(r_ref, rel=1e-12)
    assert cv.ess_bulk(ties) == pytest.approx(e_ref, rel=1e-10)
    constant = np.full((4, 100), 2.5)
    assert cv.ess_bulk(constant) == 400.0
    with_nan = rng.normal(size=(4, 100))
    with_nan[1, 3] = np.nan
    assert np.isnan(cv.rhat_rank(with_nan)) and np.isnan(cv.ess_bulk(with_nan))
    assert np.isnan(cv.rhat_rank(rng.normal(size=(4, 3))))  # fewer than 4 draws


def test_mixing_failures_are_seen():
    rng = np.random.default_rng(1)
    apart = _ar1(rng, 4, 500, 0.5, (0, 0, 0, 3))  # one chain elsewhere
    assert cv.rhat_rank(apart) > 1.1
    sticky = _ar1(rng, 4, 500, 0.99)  # strong autocorrelation: few effective draws
    assert cv.ess_bulk(sticky) < 100 < cv.ess_bulk(_ar1(rng, 4, 500, 0.0))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60))
def test_average_ranks_as_scipy(values):
    from scipy.stats import rankdata

    a = np.array(values)
    np.testing.assert_array_equal(cv.average_ranks(a), rankdata(a, method="average"))


@pytest.mark.parametrize("n", [1, 2, 7, 11, 97, 2000, 2001, 4002])
def test_next_regular_as_scipy(n):
    from scipy.fftpack import next_fast_len

    assert cv.next_regular(n) == next_fast_len(n)
