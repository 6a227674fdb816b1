"""Additive statistics of the stages model (issue 14): the distinct encoded sequences and the
journey totals of a log split anywhere, with parts that know only their own touchpoints, summed
in any order, equal those of the whole; so do the HMM's E-steps over parts of the sequences, and
a model fitted from the summed statistics equals the model fitted on the whole log."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stats_helpers import split_parts

from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import journeys_from_codes, load_journeys
from journeymodel.errors import InputError, OptionError
from journeymodel.fit import hmm
from journeymodel.models.stages.model import StageModel
from journeymodel.stats.sequences import (
    JourneyTotals,
    SequenceStats,
    StageStats,
    journey_totals,
    sequence_stats,
    stage_stats,
)
from journeymodel.stats.vocab import align

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")
PROPERTY = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
PARAMETERS = ("startprob_", "transmat_", "emissionprob_", "exitprob_", "mean_position_")


@cache
def demo():
    """A demo log of 300 customers (968 journeys, 9 touchpoints, with times)."""
    return load_journeys(make_demo_data(300, seed=3).events)


@cache
def whole_model() -> StageModel:
    return StageModel(n_stages=3, restarts=1, seed=0).fit(demo())


@st.composite
def split(draw):
    """The demo log in 1-5 parts, or in 40-80 small ones (which miss touchpoints), by journey
    or by customer, in a random order."""
    js = demo()
    by_customer = draw(st.booleans())
    n = len(js.customers) if by_customer else js.n_journeys
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_parts = draw(st.integers(1, 5) | st.integers(40, 80))
    parts = split_parts(js, rng.integers(0, n_parts, n), by_customer=by_customer)
    return [parts[i] for i in rng.permutation(len(parts))]


# -- the statistics ----------------------------------------------------------------------------


@PROPERTY
@given(parts=split())
def test_sequence_stats_of_parts_add_up_to_the_whole(parts):
    whole = sequence_stats(demo())
    total = sum(sequence_stats(part) for part in parts)
    # small parts usually know fewer touchpoints (not always: 40 parts that each knew all 9
    # were drawn once, so it is not asserted; the doctest of SequenceStats merges two)
    assert total.touchpoints == whole.touchpoints  # the sorted union, (direct) last
    assert total.equals(whole)
    assert total.n_sequences == whole.n_sequences  # each distinct sequence once
    assert total.n_obs == pytest.approx(whole.n_obs, rel=1e-12)


@PROPERTY
@given(parts=split(), seed=st.integers(0, 2**32 - 1))
def test_sums_are_associative_and_commutative(parts, seed):
    stats = [stage_stats(part) for part in parts]
    order = np.random.default_rng(seed).permutation(len(stats))
    left = sum(stats)
    right = sum(stats[i] for i in order)
    nested = stats[0] + (sum(stats[1:]) if len(stats) > 1 else 0)
    assert left.equals(right) and left.equals(nested)


@PROPERTY
@given(parts=split())
def test_journey_totals_of_parts_add_up_to_the_whole(parts):
    js = demo()
    whole = journey_totals(js)
    total = sum(journey_totals(part) for part in parts)
    assert total.equals(whole)
    assert (total.n_journeys, total.n_events) == (js.n_journeys, js.n_events)
    assert total.outcome_counts() == js.outcome_counts()
    timing, expected = total.timing(), whole.timing()
    assert timing["origin"] == expected["origin"] and timing["span"] == expected["span"]
    assert timing["step_gap"] == pytest.approx(expected["step_gap"], rel=1e-12)


def test_hand_computed_sum():
    """Two parts with different vocabularies: the sum's codes over (ad, call, web, (direct)),
    each code ``touchpoint * 5 + status`` (continue 0, conversion 1, churn 2, dropoff 3,
    censored 4)."""
    a = stage_stats(journeys_from_codes([["web", "ad"], ["web"], ["web"]],
                                        ["churn", "censored", "censored"], weights=[1, 2, 1]))
    b = stage_stats(journeys_from_codes([["call", "web"], ["web"], [], []],
                                        ["dropoff", "censored", "conversion", "censored"]))
    total = b + a
    assert total.sequences.touchpoints == ("ad", "call", "web")
    # b's sequences first: call, web-dropoff = (5, 13); web-censored = 14; direct-conversion =
    # 16 (the empty censored journey carries nothing); then a's new one: web, ad-churn = (10, 2)
    assert total.sequences.codes.tolist() == [5, 13, 14, 16, 10, 2]
    assert total.sequences.offsets.tolist() == [0, 2, 3, 4, 6]
    assert total.sequences.weight.tolist() == [1.0, 4.0, 1.0, 1.0]
    assert total.sequences.n_obs == 2 + 4 + 1 + 2
    assert total.totals.n_journeys == 7
    assert total.totals.outcome_counts() == {"conversion": 1, "churn": 1, "dropoff": 1,
                                             "censored": 5}
    assert (a + b).equals(total) and not a.equals(total)
    assert 0 + a is a and sum([a]) is a


def test_settings_must_agree():
    js = journeys_from_codes([["a"]], ["conversion"])
    a = journey_totals(js)
    b = JourneyTotals("period", None, 1, 1, np.zeros(4), 0, 0.0, 1.0, 1.0, 1.0)
    with pytest.raises(OptionError, match="different settings cannot be added.*'none'.*"
                                          "'period'"):
        a + b
    with pytest.raises(TypeError):
        sequence_stats(js) + a


# -- the E-step --------------------------------------------------------------------------------


@PROPERTY
@given(parts=split(), seed=st.integers(0, 2**32 - 1))
def test_e_steps_of_parts_add_up_to_the_whole(parts, seed):
    """Each part's sequences, recoded to the whole's alphabet, under the same parameters: the
    E-steps summed (in any order) are the E-step of the whole's distinct sequences."""
    whole = sequence_stats(demo())
    p = hmm.random_params(3, whole.n_symbols, np.random.default_rng(seed))
    e_whole = hmm.forward_backward(whole.codes, whole.offsets, p, whole.weight)
    steps, weights = [], []
    for part in parts:
        s = sequence_stats(part)
        s = s.recoded(whole.touchpoints, align(s.touchpoints, whole.touchpoints)[1])
        steps.append(hmm.forward_backward(s.codes, s.offsets, p, s.weight))
        weights.append(s.weight)
    total = sum(steps)
    for name in ("start_counts", "trans_counts", "emission_counts"):
        np.testing.assert_allclose(getattr(total, name), getattr(e_whole, name), rtol=1e-9,
                                   atol=1e-9)
    assert total.total(np.concatenate(weights)) == pytest.approx(e_whole.total(whole.weight),
                                                                 rel=1e-10)
    assert total.total(np.concatenate(weights)) == pytest.approx(
        sum(e.total(w) for e, w in zip(steps, weights, strict=True)), rel=1e-12)
    # one EM iteration from the summed E-steps is the iteration on the whole
    for a, b in zip(vars(hmm.m_step(total, p)).values(), vars(hmm.m_step(e_whole, p)).values(),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_e_step_sum_concatenates_in_order():
    p = hmm.HMMParams(np.array([0.6, 0.4]), np.array([[0.7, 0.3], [0.2, 0.8]]),
                      np.array([[0.9, 0.1], [0.3, 0.7]]))
    a = hmm.forward_backward(np.array([0, 1, 1]), np.array([0, 2, 3]), p, posteriors=True)
    b = hmm.forward_backward(np.array([0, 0]), np.array([0, 2]), p, posteriors=True)
    both = hmm.forward_backward(np.array([0, 1, 1, 0, 0]), np.array([0, 2, 3, 5]), p,
                                posteriors=True)
    total = a + b
    np.testing.assert_allclose(total.log_likelihood, both.log_likelihood, rtol=1e-12)
    np.testing.assert_allclose(total.posteriors, both.posteriors, rtol=1e-12)
    assert (a + hmm.forward_backward(np.array([0]), np.array([0, 1]), p)).posteriors is None
    other = hmm.forward_backward(np.array([0]), np.array([0, 1]), hmm.HMMParams(
        np.array([1.0]), np.array([[1.0]]), np.array([[0.5, 0.25, 0.25]])))
    with pytest.raises(OptionError, match=r"E-steps of different models.*\(2, 2\).*\(1, 3\)"):
        a + other


# -- the model ---------------------------------------------------------------------------------


def test_fit_is_fit_stats_of_stats_of():
    js = demo()
    m = whole_model()
    s = StageModel(n_stages=3, restarts=1, seed=0).fit_stats(m.stats_of(js))
    for name in PARAMETERS:
        np.testing.assert_array_equal(getattr(s, name), getattr(m, name))
    assert (s.log_likelihood_, s.n_iter_, s.stage_names_, s.timing_) == (
        m.log_likelihood_, m.n_iter_, m.stage_names_, m.timing_)
    # what fit adds from the events: the experience, the ledger and the vocabularies
    assert s.experience_ is None and m.experience_ is not None
    for key in ("n_journeys", "n_events", "outcome_counts", "time_kind", "gap",
                "observed_until", "touchpoints"):
        assert getattr(s.journeys_, key) == getattr(m.journeys_, key)
    assert s.summary().notes[0] == m.summary().notes[0]  # the counts line


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=split())
def test_model_fitted_on_summed_stats_equals_model_fitted_on_whole(parts):
    m = whole_model()
    s = StageModel(n_stages=3, restarts=1, seed=0).fit_stats(
        sum(StageModel().stats_of(part) for part in parts))
    for name in PARAMETERS:
        np.testing.assert_allclose(getattr(s, name), getattr(m, name), rtol=1e-8, atol=1e-10)
    assert s.log_likelihood_ == pytest.approx(m.log_likelihood_, rel=1e-10)
    assert s.stage_names_ == m.stage_names_ and s.n_parameters_ == m.n_parameters_


def test_model_from_stats_saves_and_loads(tmp_path):
    stats = stage_stats(demo())
    m = StageModel(n_stages=2, restarts=1, seed=0).fit_stats(stats)
    back = StageModel.load(m.save(tmp_path / "s.nc"))
    xr.testing.assert_identical(back.to_datatree(), m.to_datatree())
    assert back.experience_ is None and "experience" not in back.to_datatree().children
    assert back.ledger_.source == "<statistics>"
    assert len(back.simulate(50, seed=1)) > 0


def test_fit_stats_refuses_statistics_without_steps():
    empty = journeys_from_codes([[], []], ["censored", "censored"], touchpoints=("a",))
    stats = stage_stats(empty)
    assert isinstance(stats, StageStats) and isinstance(stats.sequences, SequenceStats)
    with pytest.raises(InputError, match=r"no journey has a touchpoint .*\(2 journeys, all "
                                         "empty and censored\\)"):
        StageModel().fit_stats(stats)
