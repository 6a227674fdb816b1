"""take_rows (issue 20): the gathers and compressions of the event reader, in two threads and
by slices, equal numpy's fancy and boolean indexing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import journeymodel.data.ordering as ordering
from journeymodel.data.ordering import take_rows


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.integers(0, 300), st.integers(0, 2**32 - 1), st.booleans(),
       st.sampled_from([0, 1, 5, 10**6]))
def test_take_rows_equals_indexing(n, seed, as_mask, few):
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(-5, 5, n), rng.random(n), rng.integers(0, 9, n).astype(np.int32)]
    index = rng.random(n) < rng.random() if as_mask else rng.integers(0, max(n, 1),
                                                                      rng.integers(0, 2 * n + 1))
    if not as_mask and n == 0:
        index = np.zeros(0, np.int64)
    old = ordering.THREAD_ROWS, ordering.FEW_DROPPED
    try:
        ordering.THREAD_ROWS, ordering.FEW_DROPPED = 1, few  # threads and slices always
        got = take_rows(arrays, index)
    finally:
        ordering.THREAD_ROWS, ordering.FEW_DROPPED = old
    for a, g in zip(arrays, got, strict=True):
        assert g.dtype == a.dtype
        np.testing.assert_array_equal(g, a[index])


@pytest.mark.parametrize("dropped", [[], [0], [7], [0, 1, 2], [3, 4, 9], list(range(10))])
def test_a_few_dropped_rows_by_slices(dropped):
    a = np.arange(10.0)
    keep = np.ones(10, bool)
    keep[dropped] = False
    np.testing.assert_array_equal(take_rows([a], keep)[0], a[keep])


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.lists(st.booleans(), max_size=60), st.sampled_from([0, 3, 10**6]))
def test_dropping_rows_in_place_moves_the_kept_ones_to_the_head(keep, few):
    keep = np.array(keep, bool)
    a = np.arange(len(keep)) * 10
    expected = a[keep]
    old = ordering.FEW_DROPPED
    try:
        ordering.FEW_DROPPED = few
        got = take_rows([a], keep, in_place=True)[0]
    finally:
        ordering.FEW_DROPPED = old
    np.testing.assert_array_equal(got, expected)
    if np.count_nonzero(~keep) <= few:  # by slices: the head of the same memory
        assert np.shares_memory(got, a) or got.size == 0
