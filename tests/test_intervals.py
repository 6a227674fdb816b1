"""The one HDI (journeymodel.fit.intervals.hdi) agrees with ArviZ's and is used everywhere."""

import arviz as az
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from journeymodel.errors import OptionError
from journeymodel.fit.intervals import hdi


@pytest.mark.parametrize("n", [2, 3, 333, 600, 4000])
@pytest.mark.parametrize("prob", [0.5, 0.89, 0.94])
def test_hdi_equals_arviz(n, prob):
    x = np.random.default_rng(n).gamma(2.0, size=(n, 3))
    low, high = hdi(x, prob)
    ref = az.hdi(xr.DataArray(x, dims=["draw", "p"]), prob=prob, dim=["draw"])
    np.testing.assert_array_equal(low, ref.sel(ci_bound="lower").values)
    np.testing.assert_array_equal(high, ref.sel(ci_bound="upper").values)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=60), st.floats(0.05, 0.95))
def test_hdi_holds_its_share_and_is_the_shortest(values, prob):
    x = np.array(values)
    low, high = hdi(x, prob)
    s = np.sort(x)
    k = min(max(int(np.floor(prob * len(s))), 1), len(s) - 1)
    assert low <= high
    assert np.count_nonzero((x >= low) & (x <= high)) >= k + 1
    assert high - low == pytest.approx(np.min(s[k:] - s[:-k]))


def test_hdi_along_another_axis():
    x = np.random.default_rng(0).normal(size=(3, 500))
    low, high = hdi(x, 0.9, axis=1)
    ref_low, ref_high = hdi(x.T, 0.9)
    np.testing.assert_array_equal(low, ref_low)
    np.testing.assert_array_equal(high, ref_high)


@pytest.mark.parametrize("prob", [0.0, 1.0, -0.2, 1.5])
def test_hdi_refuses_a_probability_outside_0_1(prob):
    with pytest.raises(OptionError, match=r"interval probability must be in \(0, 1\)"):
        hdi(np.arange(10.0), prob)
