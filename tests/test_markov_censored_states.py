"""The censored journeys' last states (stats.transitions.censored_states), built from their last
events alone (issue 20), against the last state of the full state sequences, at every order,
with and without merged repeats, on a log with repeated touchpoints cut mid-stream."""

from __future__ import annotations

import known_process as kp
import numpy as np
import pytest

from journeymodel.data.journeyset import CENSORED
from journeymodel.stats.holding import bin_of, grid_edges
from journeymodel.stats.transitions import censored_states, state_sequences

SPAN = 60.0


def _journeys():
    frame = kp.simulate(3000, 5, span=SPAN, p=kp.P_REPEATS)
    return kp.journeys(kp.cut(frame, kp.cut_for_share(frame, 0.4, span=SPAN)))


@pytest.mark.parametrize("collapse", [True, False])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_last_states_match_the_state_sequences(order, collapse):
    js = _journeys()
    cens = np.flatnonzero((js.outcome == CENSORED) & (js.lengths > 0))
    assert len(cens) > 100  # the cut leaves many journeys in flight
    seq = state_sequences(js.take(cens), order, collapse)
    last_key = seq.keys[seq.offsets[1:] - 1]
    elapsed = js.observed_until - js.times[js.offsets[cens + 1] - 1]
    cell = last_key * 1000 + bin_of(elapsed, grid_edges(js.time_kind))
    cells, inverse = np.unique(cell, return_inverse=True)
    expect = np.bincount(inverse, weights=js.weight[cens])
    got = censored_states(js, order, collapse)
    np.testing.assert_array_equal(got.key, cells // 1000)
    np.testing.assert_array_equal(got.bin, cells % 1000)
    np.testing.assert_allclose(got.count, expect, rtol=1e-12)
    assert got.key.dtype == np.int64 and got.bin.dtype == np.int64
