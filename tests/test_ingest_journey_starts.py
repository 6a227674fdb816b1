"""Journey starts found by blocks of rows equal the whole-array expressions they replace
(issue 20: no array of n time differences)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from journeymodel.data import journeys


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 400), st.integers(0, 2**32 - 1), st.sampled_from([None, 0.0, 0.5, 3.0]),
       st.integers(1, 70), st.booleans())
def test_journey_starts_equal_the_whole_array_expressions(n, seed, gap, block, nan):
    rng = np.random.default_rng(seed)
    cust = np.sort(rng.integers(0, max(n // 4, 1), n))
    outcome = rng.choice(np.array([-1, -1, -1, 0, 1, 2], np.int8), n)
    time = np.sort(rng.random(n) * 10)
    if nan:
        time[rng.integers(0, n, 2)] = np.nan
    expected = np.ones(n, bool)
    expected[1:] = (cust[1:] != cust[:-1]) | (outcome[:-1] >= 0)
    if gap is not None:
        with np.errstate(invalid="ignore"):
            expected[1:] |= np.diff(time) > gap
    old_block = journeys._BLOCK
    journeys._BLOCK = block  # blocks smaller than the rows: every boundary is crossed
    try:
        got = journeys._journey_starts(cust, outcome, time, gap)
    finally:
        journeys._BLOCK = old_block
    np.testing.assert_array_equal(got, expected)
