"""The statistic of `journeymodel compare` adds up (stats/groups.py, issue 16 for issue 15): a
demo log split at random into parts that know only their own names (touchpoints, devices,
personas), by journey or by customer, gives statistics that summed in any order equal those of
the whole, and the same comparison."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeymodel.analysis.compare import compare, compare_stats
from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import load_journeys
from journeymodel.stats.groups import grouped_transitions
from tests.stats_helpers import split_parts

PROPERTY = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
GROUPINGS = ("period:7D", "period:1M", "device", "persona")


@cache
def demo(weighted: bool):
    """300 demo customers; weighted: journey weights 0, 0.5, 1 or 2.5."""
    js = load_journeys(make_demo_data(300, seed=3).events)
    if weighted:
        rng = np.random.default_rng(0)
        js = replace(js, weight=rng.choice([0.0, 0.5, 1.0, 2.5], js.n_journeys))
    return js


@st.composite
def split(draw):
    """(whole, parts): the demo log in 1-5 parts, by journey or by customer, in a random
    order (every part keeps the log's end of observation, as Dask's first pass gives it)."""
    js = demo(draw(st.booleans()))
    by_customer = draw(st.booleans())
    n = len(js.customers) if by_customer else js.n_journeys
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    labels = rng.integers(0, draw(st.integers(1, 5)), n)
    parts = split_parts(js, labels, by_customer=by_customer)
    return js, [parts[i] for i in rng.permutation(len(parts))]


@PROPERTY
@given(data=split(), by=st.sampled_from(GROUPINGS), order=st.integers(1, 3),
       collapse=st.booleans())
def test_statistics_of_parts_add_up_to_those_of_the_whole(data, by, order, collapse):
    whole, parts = data
    stats = [grouped_transitions(p, by, order, collapse) for p in parts]
    total = grouped_transitions(whole, by, order, collapse)
    assert sum(stats).equals(total)
    assert sum(stats[::-1]).equals(total)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=split(), by=st.sampled_from(GROUPINGS))
def test_a_comparison_from_summed_parts_is_that_of_the_whole(data, by):
    whole, parts = data
    try:
        expected = json.dumps(compare(whole, by=by).to_json())
    except Exception as exc:  # noqa: BLE001 - the same refusal from the parts
        expected = repr(exc)
    try:
        got = json.dumps(compare_stats(sum(grouped_transitions(p, by) for p in parts))
                         .to_json())
    except Exception as exc:  # noqa: BLE001
        got = repr(exc)
    assert got == expected
