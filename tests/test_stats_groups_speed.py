"""Journeys per (group, state) summed by one bincount over the cells (stats/groups.py, the
speed work of issues 16 and 20) equal the general route through _sum_by, bit for bit, with
weights, every grouping and several orders."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import journeymodel.stats.groups as groups
from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import load_journeys


@pytest.fixture(scope="module")
def journeys():
    js = load_journeys(make_demo_data(300, seed=5).events)
    rng = np.random.default_rng(1)
    return replace(js, weight=rng.choice([0.0, 0.5, 1.0, 2.5], js.n_journeys))


@pytest.mark.parametrize("by", ["period:7D", "period:1M", "device", "persona"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_direct_cells_equal_the_general_route(journeys, monkeypatch, by, order):
    fast = groups.grouped_transitions(journeys, by, order)
    monkeypatch.setattr(groups, "DIRECT_CELLS", -1)  # every count through _sum_by
    general = groups.grouped_transitions(journeys, by, order)
    assert len(fast.visit_key) > 10
    for name in ("visit_group", "visit_key", "journeys", "group", "from_key", "to_key",
                 "count"):
        a, b = getattr(fast, name), getattr(general, name)
        assert a.dtype == b.dtype, name
        assert a.tobytes() == b.tobytes(), name
