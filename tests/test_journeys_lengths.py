"""Touchpoints per journey (issue 20 counts them per journey, not per row: an outcome row can
only end a journey): equal to a row-by-row count on random logs."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from journeymodel.data.events import read_events
from journeymodel.data.journeys import build_journeys
from journeymodel.data.options import ReadOptions
from journeymodel.errors import DataWarning


def _count_by_rows(events, gap):
    """Touchpoints of each journey, walking the rows (the segmentation rules, by hand)."""
    outcome_labels = {"conversion", "churn"}
    counts = []
    for i in range(len(events.customer)):
        label = events.labels[events.touchpoint[i]]
        new = (i == 0 or events.customer[i] != events.customer[i - 1]
               or events.labels[events.touchpoint[i - 1]] in outcome_labels
               or (gap is not None and events.time[i] - events.time[i - 1] > gap))
        if new:
            counts.append(0)
        counts[-1] += label not in outcome_labels
    return counts


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(1, 80), st.integers(0, 2**32 - 1), st.sampled_from(["none", "5", "20"]))
def test_lengths_equal_a_row_by_row_count(n, seed, gap):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "customer_id": rng.choice(["a", "b", "c"], n),
        "timestamp": rng.integers(0, 60, n),
        "touchpoint": rng.choice(["web", "email", "conversion", "churn"], n,
                                 p=[0.4, 0.3, 0.2, 0.1]),
    })
    df.loc[0, "touchpoint"] = "web"  # a log of outcomes only is refused
    options = ReadOptions(gap=gap)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        events = read_events(df, options)
        js = build_journeys(events, options)
    expected = _count_by_rows(events, None if gap == "none" else float(gap))
    assert js.lengths.tolist() == expected
    assert js.offsets[-1] == len(js.codes)
