"""Additive statistics of the Markov family (issue 14): transition counts, heuristics, totals and
the experience statistic of a log split anywhere, with parts that know only their own names,
summed in any order, equal those of the whole; so does the Markov model fitted from them."""

from __future__ import annotations

from dataclasses import replace
from functools import cache, reduce

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stats_helpers import split_parts

from journeymodel.analysis.experience import experience_dataset
from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import journeys_from_codes, load_journeys
from journeymodel.errors import InputError, OptionError
from journeymodel.models.markov.model import MarkovJourneyModel
from journeymodel.stats.experience import ExperienceStats, experience_stats
from journeymodel.stats.transitions import (
    MarkovStats,
    TransitionCounts,
    count_transitions,
    transition_stats,
)

PROPERTY = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


RARE = ("aa_rare", "kiosk", "zz_rare")  # touchpoints of a few events each


@cache
def demo(weighted: bool = False):
    """A demo log of 300 customers (times, sentiment, devices) where parts know different
    names: a few events are at rare touchpoints (sorted among the others) or on a rare device;
    every 29th journey has no touchpoint before its outcome; weighted: journey weights 0, 0.5,
    1 or 2.5."""
    js = load_journeys(make_demo_data(300, seed=3).events)
    rng = np.random.default_rng(0)
    names = tuple(sorted(js.touchpoints + RARE))
    codes = np.searchsorted(names, np.array(js.touchpoints)[js.codes])
    rare = rng.random(js.n_events) < 0.0025
    codes[rare] = np.searchsorted(names, rng.choice(RARE, int(rare.sum())))
    devices = tuple(sorted(js.devices + ("tablet",)))
    device = np.searchsorted(devices, np.array(js.devices)[js.device])
    device[rng.random(js.n_events) < 0.0008] = devices.index("tablet")
    lengths = js.lengths.copy()
    lengths[::29] = 0
    first = np.repeat(js.offsets[:-1], js.lengths)
    kept = np.arange(js.n_events) - first < np.repeat(lengths, js.lengths)
    js = replace(js, codes=codes[kept].astype(js.codes.dtype), touchpoints=names,
                 offsets=np.r_[0, np.cumsum(lengths)], times=js.times[kept],
                 sentiment=js.sentiment[kept], device=device[kept].astype(js.device.dtype),
                 devices=devices)
    if weighted:
        js = replace(js, weight=rng.choice([0.0, 0.5, 1.0, 2.5], js.n_journeys))
    return js


@st.composite
def split(draw):
    """(whole, parts): the demo log in 1-5 parts, by journey or by customer, in a random order."""
    js = demo(draw(st.booleans()))
    by_customer = draw(st.booleans())
    n = len(js.customers) if by_customer else js.n_journeys
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    labels = rng.integers(0, draw(st.integers(1, 5)), n)
    parts = split_parts(js, labels, by_customer=by_customer)
    return js, [parts[i] for i in rng.permutation(len(parts))]


def stage_posterior(js, names: tuple[str, ...], K: int = 3) -> np.ndarray:
    """A stage probability per event that depends only on the event (its touchpoint's name
    and time), so that a part and the whole give an event the same probabilities."""
    g = np.searchsorted(np.array(names), np.array(js.touchpoints)[js.codes]).astype(float)
    logits = np.cos(np.outer(g + 1.0, np.arange(1, K + 1)) + (js.times % 7919.0)[:, None])
    p = np.exp(2.0 * logits)
    return p / p.sum(axis=1, keepdims=True)


# -- the statistics add up ---------------------------------------------------------------------


@PROPERTY
@given(data=split(), order=st.integers(1, 4), collapse=st.booleans())
def test_markov_stats_of_parts_add_up_to_the_whole(data, order, collapse):
    whole, parts = data
    assert len(parts) == 1 or len({p.touchpoints for p in parts}) > 1  # their own names
    total = sum(transition_stats(p, order, collapse) for p in parts)
    expected = transition_stats(whole, order, collapse)
    assert isinstance(total, MarkovStats)
    assert total.equals(expected)
    assert total.touchpoints == whole.touchpoints
    t, e = total.transitions, expected.transitions  # same names, so the same keys
    np.testing.assert_array_equal(t.from_key, e.from_key)
    np.testing.assert_array_equal(t.to_key, e.to_key)
    np.testing.assert_allclose(t.count, e.count, rtol=1e-12)
    np.testing.assert_allclose(t.dwell_sum, e.dwell_sum, rtol=1e-9)
    np.testing.assert_allclose(total.heuristic_conversions, expected.heuristic_conversions,
                               rtol=1e-12, atol=1e-12)
    assert (total.start_min, total.start_max) == (expected.start_min, expected.start_max)
    assert total.conversions == pytest.approx(expected.conversions, rel=1e-12)


@PROPERTY
@given(data=split())
def test_experience_stats_with_stages_of_parts_add_up_to_the_whole(data):
    whole, parts = data
    names = whole.touchpoints

    def stats(js):
        return experience_stats(js, stage_posterior=stage_posterior(js, names),
                                stage_names=["early", "middle", "late"])

    total = sum(stats(p) for p in parts)
    expected = stats(whole)
    assert isinstance(total, ExperienceStats)
    assert total.equals(expected)
    assert total.stages == ("early", "middle", "late")  # equal names keep their order
    xr.testing.assert_allclose(experience_dataset(total), experience_dataset(expected))


@PROPERTY
@given(data=split(), order=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_markov_stats_add_associatively_and_commutatively(data, order, seed):
    _, parts = data
    stats = [transition_stats(p, order) for p in parts]
    left = reduce(lambda a, b: a + b, stats)
    right = reduce(lambda a, b: b + a, stats[::-1])
    rng = np.random.default_rng(seed)
    shuffled = sum(stats[i] for i in rng.permutation(len(stats)))
    assert left.equals(right) and left.equals(shuffled) and right.equals(shuffled)
    assert (0 + stats[0]) is stats[0] and (stats[0] + 0) is stats[0]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=split(), order=st.integers(1, 3), collapse=st.booleans(),
       prior=st.sampled_from([0.0, 0.5]))
def test_model_fitted_from_summed_stats_equals_the_model_fitted_on_the_whole(
        data, order, collapse, prior):
    whole, parts = data
    model = MarkovJourneyModel(order=order, prior=prior, collapse_repeats=collapse)
    fitted = model.fit(whole)
    from_stats = MarkovJourneyModel(order=order, prior=prior, collapse_repeats=collapse
                                    ).fit_stats(sum(model.stats_of(p) for p in parts))
    xr.testing.assert_allclose(from_stats.transition_matrix(), fitted.transition_matrix())
    for name in ("p_conversion_", "expected_steps_", "mean_dwell_", "conversion_value_"):
        np.testing.assert_allclose(getattr(from_stats, name), getattr(fitted, name),
                                   rtol=1e-9, atol=1e-12, err_msg=name)
    for method in ("removal", "first", "last", "linear"):
        a = from_stats.attribution(method, n_draws=0)
        b = fitted.attribution(method, n_draws=0)
        assert a.channels == b.channels
        np.testing.assert_allclose(a.conversions, b.conversions, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(a.value, b.value, rtol=1e-9, atol=1e-9)
    for method, (conv, value) in fitted.heuristics_.items():
        np.testing.assert_allclose(from_stats.heuristics_[method][0], conv, atol=1e-12)
        np.testing.assert_allclose(from_stats.heuristics_[method][1], value, atol=1e-9)
    assert from_stats.start_range_ == fitted.start_range_
    assert from_stats.total_conversions_ == pytest.approx(fitted.total_conversions_)
    assert from_stats.journeys_.outcome_counts == pytest.approx(fitted.journeys_.outcome_counts)
    xr.testing.assert_allclose(from_stats.experience_, fitted.experience_)


def test_fit_is_fit_stats_of_stats_of_with_the_journeys_remembered(tmp_path):
    js = demo()
    model = MarkovJourneyModel(order="auto", seed=2)
    fitted = MarkovJourneyModel(order="auto", seed=2).fit(js)
    stats = model.stats_of(js)  # the order is chosen on the journeys
    assert stats.transitions.order == fitted.order_
    from_stats = model.fit_stats(stats)
    assert from_stats.order_ == fitted.order_ and from_stats.order_table_ is None
    assert fitted.order_table_ is not None
    np.testing.assert_array_equal(from_stats.chain_.conc.toarray(), fitted.chain_.conc.toarray())
    assert from_stats.ledger_.source == "<statistics>"
    assert from_stats.journeys_.n_events == fitted.journeys_.n_events == js.n_events
    assert from_stats.journeys_.touchpoints == fitted.journeys_.touchpoints
    loaded = MarkovJourneyModel.load(from_stats.save(tmp_path / "from_stats.nc"))
    xr.testing.assert_identical(loaded.transition_matrix(), fitted.transition_matrix())
    xr.testing.assert_identical(loaded.experience_, fitted.experience_)
    assert loaded.journeys_.outcome_counts == fitted.journeys_.outcome_counts


# -- hand-computed ------------------------------------------------------------------------------


def test_two_parts_with_their_own_touchpoints_by_hand():
    a = journeys_from_codes([["a", "b"]], ["conversion"])  # knows a, b
    b = journeys_from_codes([["b", "c"], ["c"]], ["dropoff", "conversion"],
                            weights=[2.0, 1.0])  # knows b, c
    s = count_transitions(a, 2) + count_transitions(b, 2)
    # union (a, b, c), base 4: window (a, b) = 1*4 + 2 = 6, (b, c) = 2*4 + 3 = 11, (c) = 3
    assert s.touchpoints == ("a", "b", "c")
    assert list(zip(s.from_key.tolist(), s.to_key.tolist(), s.count.tolist(), strict=True)) == [
        (0, 3, 1.0), (0, 6, 1.0), (0, 11, 2.0), (3, -1, 1.0), (6, -1, 1.0), (11, -2, 2.0)]
    # in their own vocabularies (base 3) the parts' windows were (a, b) = 5, (b, c) = 5, (c) = 2
    assert count_transitions(a, 2).from_key.tolist() == [0, 5]
    assert count_transitions(b, 2).from_key.tolist() == [0, 0, 2, 5]
    m = MarkovJourneyModel(order=2).fit_stats(transition_stats(a, 2) + transition_stats(b, 2))
    assert m.state_labels() == ["(start)", "c", "a > b", "b > c"]
    np.testing.assert_allclose(m.p_conversion_, [0.5, 1.0, 1.0, 0.0])
    assert m.heuristics_["first"][0].tolist() == [1.0, 0.0, 1.0]  # a, b, c
    assert m.heuristics_["linear"][0].tolist() == [0.5, 0.5, 1.0]
    assert m.total_conversions_ == 2.0


def test_experience_moments_merge_by_chans_formula_by_hand():
    def scored(paths, outcomes, sentiment, weights=None):
        js = journeys_from_codes(paths, outcomes, weights=weights)
        return replace(js, sentiment=np.array(sentiment))

    a = experience_stats(scored([["web", "web"]], ["dropoff"], [0.2, 0.4]))
    b = experience_stats(scored([["web"], ["call"]], ["conversion", "censored"], [1.0, -1.0],
                                weights=[2.0, 1.0]))
    s = a + b
    assert s.touchpoints == ("call", "web")
    # web: values 0.2, 0.4 (weight 1) and 1.0 (weight 2): mean 2.6 / 4 = 0.65, sum of squared
    # deviations 0.45^2 + 0.25^2 + 2 * 0.35^2 = 0.51, sum of squared weights 1 + 1 + 4 = 6
    assert s.tp.sw.tolist() == [1.0, 4.0] and s.tp.sw2.tolist() == [1.0, 6.0]
    np.testing.assert_allclose(s.tp.mean, [-1.0, 0.65])
    np.testing.assert_allclose(s.tp.ss, [0.0, 0.51])
    np.testing.assert_allclose(s.overall.mean, [(0.6 + 2.0 - 1.0) / 5])
    # positions 1 and 2: step 1 holds 0.2 (w 1), 1.0 (w 2), -1.0 (w 1); step 2 holds 0.4
    np.testing.assert_allclose(s.pos.mean[:2], [(0.2 + 2.0 - 1.0) / 4, 0.4])
    # pairs: start > web (a: known; b: known, converted), web > web (a: dropped), start > call
    # (in flight: no known sequel, but its sentiment counts)
    pairs = list(zip(s.pairs.frm.tolist(), s.pairs.to.tolist(), s.pairs.n.tolist(),
                     s.pairs.dropped.tolist(), s.pairs.converted.tolist(), strict=True))
    assert pairs == [(-1, 0, 0.0, 0.0, 0.0), (-1, 1, 3.0, 0.0, 2.0), (1, 1, 1.0, 1.0, 0.0)]
    assert s.pairs.sentiment.sw.tolist() == [1.0, 3.0, 1.0]
    ds = experience_dataset(s)
    assert ds["pair_from"].values.tolist() == ["(start)", "web"]  # pairs with a known sequel
    assert s.tp_journeys.tolist() == [1, 2] and (s.n_events, s.scored_events) == (4, 4)


# -- what cannot be added -----------------------------------------------------------------------


def test_counts_of_different_orders_or_repeat_handling_are_refused():
    js = journeys_from_codes([["a", "b"]], ["conversion"])
    with pytest.raises(OptionError, match=r"same order and repeat handling \(got order 1 with "
                                          r"collapse_repeats=True and order 2"):
        count_transitions(js, 1) + count_transitions(js, 2)
    with pytest.raises(OptionError, match=r"collapse_repeats=True and order 1 with "
                                          r"collapse_repeats=False"):
        transition_stats(js, 1) + transition_stats(js, 1, collapse=False)
    timed = replace(js, time_kind="period")
    with pytest.raises(OptionError, match=r"same time axis \(got 'none' and 'period'\)"):
        transition_stats(js, 1) + transition_stats(timed, 1)
    staged = experience_stats(js, stage_posterior=np.ones((2, 1)))
    with pytest.raises(OptionError, match=r"both have stages or both have none"):
        staged + experience_stats(js)
    assert isinstance(count_transitions(js, 1) + count_transitions(js, 1), TransitionCounts)


def test_fit_stats_refuses_stats_of_another_order_and_empty_stats():
    js = journeys_from_codes([["a", "b"]], ["conversion"])
    with pytest.raises(OptionError, match=r"counted at order 2 with collapse_repeats=True; "
                                          r"the model has order=1"):
        MarkovJourneyModel(order=1).fit_stats(transition_stats(js, 2))
    with pytest.raises(InputError, match=r"no journey has a touchpoint"):
        MarkovJourneyModel().fit_stats(transition_stats(journeys_from_codes([[]],
                                                                            ["conversion"]), 1))
    with pytest.raises(InputError, match=r"no journey has ended"):
        MarkovJourneyModel().fit_stats(transition_stats(journeys_from_codes([["a"]],
                                                                            ["censored"]), 1))
