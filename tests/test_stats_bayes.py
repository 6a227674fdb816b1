"""Additive statistics of the Bayesian models (issue 14): conversion counts and per-customer
summaries of a log split anywhere, with parts that know only their own names, summed in any
order, equal those of the whole; so do the churn likelihoods' data and the fitted models."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stats_helpers import split_parts

from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import CENSORED, journeys_from_codes, load_journeys
from journeymodel.errors import InputError, OptionError
from journeymodel.models.churn import data as cd
from journeymodel.models.churn.model import ChurnModel, prepare
from journeymodel.models.conversion.model import ConversionModel
from journeymodel.stats.conversion import (
    DIRECT,
    NO_PERSONA,
    ConversionCounts,
    count_conversions,
    merge_levels,
)
from journeymodel.stats.customers import CustomerStats, customer_stats

GROUPINGS = [("persona",), ("first_touchpoint",), ("persona", "first_touchpoint")]
PROPERTY = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@cache
def demo(seed: int = 3):
    """A demo log of 300 customers, with some journeys' persona and touchpoints removed so that
    the catch-all levels ``(none)`` and ``(direct)`` occur."""
    js = load_journeys(make_demo_data(300, seed=seed).events)
    lengths = js.lengths.copy()
    lengths[::37] = 0  # journeys with no touchpoint before their outcome
    keep = np.repeat(np.arange(js.n_journeys), js.lengths)
    first = np.repeat(js.offsets[:-1], js.lengths)
    kept = np.arange(js.n_events) - first < np.repeat(lengths, js.lengths)
    offsets = np.r_[0, np.cumsum(lengths)]
    persona = np.where(np.isin(js.customer, np.arange(0, 300, 41)), -1, js.persona)
    assert (keep[kept] == np.repeat(np.arange(js.n_journeys), lengths)).all()
    return replace(js, codes=js.codes[kept], offsets=offsets, times=js.times[kept],
                   sentiment=None if js.sentiment is None else js.sentiment[kept],
                   device=None if js.device is None else js.device[kept],
                   persona=persona.astype(js.persona.dtype))


@st.composite
def split(draw):
    """The demo log in 1-5 parts, by journey or by customer (a customer's journeys all in one
    part), in a random order."""
    js = demo()
    by_customer = draw(st.booleans())
    n = len(js.customers) if by_customer else js.n_journeys
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, draw(st.integers(1, 5)), n)
    parts = split_parts(js, labels, by_customer=by_customer)
    return [parts[i] for i in rng.permutation(len(parts))]


# -- conversion counts -------------------------------------------------------------------------


@PROPERTY
@given(parts=split(), by=st.sampled_from(GROUPINGS))
def test_conversion_counts_of_parts_add_up_to_the_whole(parts, by):
    whole = count_conversions(demo(), by)
    total = sum(count_conversions(part, by) for part in parts)
    assert whole.levels[-1][-1] in (NO_PERSONA, DIRECT)  # the catch-alls occur...
    assert total.levels == whole.levels  # ...and stay last, in the whole log's order
    np.testing.assert_array_equal(total.trials, whole.trials)
    np.testing.assert_array_equal(total.conversions, whole.conversions)
    assert (total.censored, total.recent) == (whole.censored, whole.recent)
    assert total.equals(whole)


@PROPERTY
@given(parts=split())
def test_conversion_counts_add_associatively_and_commutatively(parts):
    by = ("persona", "first_touchpoint")
    counts = [count_conversions(part, by) for part in parts]
    left = counts[0]
    for c in counts[1:]:
        left = left + c
    right = counts[-1]
    for c in counts[-2::-1]:
        right = c + right
    assert left.equals(right) and right.equals(sum(reversed(counts)))
    assert left.levels == right.levels


def test_conversion_counts_merge_vocabularies_by_hand():
    a = ConversionCounts(("persona", "first_touchpoint"), (("b", NO_PERSONA), ("web", DIRECT)),
                         np.array([[1, 2], [3, 4]]), np.array([[1, 0], [1, 1]]), 5, 1)
    b = ConversionCounts(("persona", "first_touchpoint"), (("a", "b"), ("app", "web")),
                         np.array([[10, 20], [30, 40]]), np.array([[1, 2], [3, 4]]), 0, 0)
    total = a + b
    assert total.levels == (("a", "b", NO_PERSONA), ("app", "web", DIRECT))
    assert total.trials.tolist() == [[10, 20, 0], [30, 41, 2], [0, 3, 4]]
    assert total.conversions.tolist() == [[1, 2, 0], [3, 5, 0], [0, 1, 1]]
    assert (total.censored, total.recent, total.in_flight) == (5, 1, 4)
    assert (0 + a) is a and total.equals(b + a) and not total.equals(a)
    one = ConversionCounts(("persona",), (("a",),), np.array([1]), np.array([0]), 0)
    padded = ConversionCounts(("persona",), (("b", "a"),), np.array([0, 1]), np.array([0, 0]), 0)
    assert not one.equals(padded)  # an extra level, even empty, is another shape to fit
    assert padded.equals(ConversionCounts(("persona",), (("a", "b"),), np.array([1, 0]),
                                          np.array([0, 0]), 0))
    union, ia, ib = merge_levels(("x",), ("y",), NO_PERSONA)
    assert union == ("x", "y") and ia.tolist() == [0] and ib.tolist() == [1]


def test_conversion_counts_of_different_groupings_are_refused():
    a = ConversionCounts(("persona",), (("a",),), np.array([1]), np.array([0]), 0)
    b = ConversionCounts(("first_touchpoint",), (("a",),), np.array([1]), np.array([0]), 0)
    with pytest.raises(OptionError, match=r"different groupings cannot be added "
                                          r"\(by=\['persona'\] and by=\['first_touchpoint'\]\)"):
        a + b
    assert not a.equals(b)
    with pytest.raises(OptionError, match="grouped by \\['first_touchpoint'\\] and the model by "
                                          "\\['persona'\\]"):
        ConversionModel().fit_stats(b)


def test_conversion_fit_stats_of_summed_parts_equals_fit_of_the_whole():
    """The same counts, so the same posterior draw for draw (tiny sampling runs)."""
    js = demo()
    labels = np.random.default_rng(1).integers(0, 3, len(js.customers))
    parts = split_parts(js, labels, by_customer=True)
    kw = dict(by=["persona", "first_touchpoint"], draws=30, tune=30, chains=1, seed=4)
    with pytest.warns(Warning):  # 30 draws do not converge
        whole = ConversionModel(**kw).fit(js)
    model = ConversionModel(**kw)
    with pytest.warns(Warning):
        summed = model.fit_stats(sum(model.stats_of(part) for part in reversed(parts)))
    post, other = (m.posterior_["posterior"].to_dataset() for m in (whole, summed))
    for name in post.data_vars:
        np.testing.assert_array_equal(post[name].values, other[name].values)
    assert summed.rates().index.tolist() == whole.rates().index.tolist()
    assert summed.ledger_.source == "<counts>"


# -- per-customer summaries --------------------------------------------------------------------


@PROPERTY
@given(parts=split())
def test_customer_summaries_of_parts_add_up_to_the_whole(parts):
    whole = customer_stats(demo())
    stats = [customer_stats(part) for part in parts]
    total = sum(stats)
    assert total.equals(whole) and whole.equals(total)
    assert total.equals(sum(reversed(stats)))
    if len(parts) > 1:  # a sum lists customers in sorted id order, as a vocabulary
        assert (total.ids[:-1] < total.ids[1:]).all()
    assert set(total.personas) == set(demo().personas)


def _likelihood_data(stats: CustomerStats, model: str, unit: str, origin: str):
    cust = cd.customers_of(stats)
    resolved = "first_transaction" if model == "bgnbd" else cd.resolve_origin(origin, cust)
    return cust, prepare(model, stats, cust, cd.UNIT_SECONDS[unit], resolved)


@PROPERTY
@given(parts=split(), case=st.sampled_from([("sbg", "M", "auto"), ("weibull", "M", "first_event"),
                                             ("weibull", "W", "first_conversion"),
                                             ("bgnbd", "W", "auto"), ("bgnbd", "D", "auto")]))
def test_churn_likelihood_data_of_summed_parts_equal_the_whole(parts, case):
    """The distinct tuples each churn likelihood reads (and the per-persona counts) are the
    same from summed parts as from the whole log; prior centres, means over customers, equal
    to float rounding (the customers come in another order)."""
    model, unit, origin = case
    whole_cust, whole = _likelihood_data(customer_stats(demo()), model, unit, origin)
    cust, summed = _likelihood_data(sum(customer_stats(part) for part in parts), model, unit,
                                    origin)
    assert cust.personas == whole_cust.personas
    assert summed.data.keys() == whole.data.keys()
    for key, value in whole.data.items():
        np.testing.assert_array_equal(summed.data[key], value, err_msg=key)
    np.testing.assert_allclose(summed.prior_loc, whole.prior_loc, rtol=1e-12)
    np.testing.assert_array_equal(summed.customers, whole.customers)
    np.testing.assert_array_equal(summed.events, whole.events)
    assert summed.notes == whole.notes


def test_churn_fit_stats_of_summed_parts_equals_fit_of_the_whole():
    """sbg reads per-period counts and fixed prior centres: the same draws from summed parts
    (customers in another order) as from the whole log (tiny sampling runs)."""
    js = demo()
    labels = np.random.default_rng(2).integers(0, 3, js.n_journeys)
    parts = split_parts(js, labels)  # by journey: customers' journeys in several parts
    kw = dict(model="sbg", draws=30, tune=30, chains=1, seed=4)
    with pytest.warns(Warning):  # 30 draws do not converge
        whole = ChurnModel(**kw).fit(js)
    model = ChurnModel(**kw)
    with pytest.warns(Warning):
        summed = model.fit_stats(sum(model.stats_of(part) for part in reversed(parts)))
    post, other = (m.posterior_["posterior"].to_dataset() for m in (whole, summed))
    for name in post.data_vars:
        np.testing.assert_array_equal(post[name].values, other[name].values)
    assert summed.personas_ == whole.personas_ and summed.info_["notes"] == whole.info_["notes"]
    np.testing.assert_array_equal(summed.customers_, whole.customers_)
    assert summed.ledger_.source == "<customer statistics>"


def test_customer_summaries_by_hand():
    js = journeys_from_codes([["web"], ["app"], ["web"], []],
                             ["conversion", "churn", "conversion", "conversion"])
    js = replace(js, customer=np.array([0, 1, 0, 0]), customers=np.array(["bob", "ann"]),
                 persona=np.array([-1, 0, -1, -1], np.int32), personas=("gold",),
                 start=np.array([1.0, 2.0, 5.0, 5.2]), end=np.array([1.5, 3.0, 5.1, 5.9]),
                 value=np.array([10.0, 0.0, 5.0, 1.0]), time_kind="period",
                 observed_until=9.0)
    s = customer_stats(js)
    assert s.ids.tolist() == ["bob", "ann"]  # in the order of the log's customer codes
    assert s.first.tolist() == [1.0, 2.0] and s.last.tolist() == [5.9, 3.0]
    assert np.isnan(s.first_churn[0]) and s.first_churn[1] == 3.0
    assert s.first_conversion[0] == 1.5 and np.isnan(s.first_conversion[1])
    assert s.journeys.tolist() == [3, 1] and s.conversions.tolist() == [3, 0]
    assert s.spend.tolist() == [16.0, 0.0]
    # bob's conversions on days 1 and 5 (twice): two transaction days
    assert s.day_customer.tolist() == [0, 0] and s.day.tolist() == [1.0, 5.0]
    # a part that knows bob's persona, later than his first event: the known one wins
    other = replace(js.take([2]), persona=np.array([0], np.int32), personas=("silver",))
    total = s + customer_stats(other)
    assert total.ids.tolist() == ["ann", "bob"]  # a sum: sorted ids
    assert [total.personas[p] if p >= 0 else None for p in total.persona] == ["gold", "silver"]
    assert total.day_customer.tolist() == [1, 1] and total.day.tolist() == [1.0, 5.0]
    assert total.journeys.tolist() == [1, 4] and total.equals(total.by_id())
    assert (0 + s) is s


def test_customer_summaries_persona_at_the_earliest_first_event():
    base = dict(time_kind="period", observed_until=9.0, ids=np.array(["c"]),
                last=np.array([2.0]), first_conversion=np.array([np.nan]),
                first_churn=np.array([np.nan]), journeys=np.array([1]),
                conversions=np.array([0]), spend=np.array([0.0]),
                day_customer=np.zeros(0, np.int64), day=np.zeros(0))
    early = CustomerStats(persona=np.array([0]), personas=("b",), first=np.array([1.0]),
                          **base)
    late = CustomerStats(persona=np.array([0]), personas=("a",), first=np.array([2.0]),
                         **base)
    tie = replace(late, first=np.array([1.0]))
    for total in (early + late, late + early):
        assert total.personas[total.persona[0]] == "b" and total.first.tolist() == [1.0]
    for total in (early + tie, tie + early):  # a tie: the lower name, whatever the order
        assert total.personas[total.persona[0]] == "a"


def test_customer_summaries_of_different_time_axes_are_refused():
    s = customer_stats(demo())
    with pytest.raises(OptionError, match=r"different time axes cannot be added "
                                          r"\('datetime' and 'period'\)"):
        s + replace(s, time_kind="period")
    assert not s.equals(replace(s, time_kind="period"))
    assert not s.equals(replace(s, spend=s.spend + 1.0))


def test_churn_fit_stats_refuses_summaries_without_customers():
    paths = journeys_from_codes([["web"]], ["conversion"])
    stats = customer_stats(replace(paths, time_kind="period", start=np.array([0.0]),
                                   end=np.array([1.0]), observed_until=2.0))
    assert len(stats) == 0
    with pytest.raises(InputError, match="churn models need customers and event times"):
        ChurnModel("sbg").fit_stats(stats)
    with pytest.raises(InputError, match="churn models need event times; this input has none"):
        ChurnModel("sbg").fit(paths)


def test_churn_data_of_a_part_without_churn_events_still_adds():
    """A part may hold no churn event and no conversion: its summary adds all the same, and
    only the model refuses data that lack them altogether."""
    js = demo()
    open_ = js.outcome == CENSORED
    quiet, rest = (customer_stats(js.take(np.flatnonzero(m))) for m in (open_, ~open_))
    assert np.isnan(quiet.first_churn).all() and len(quiet.day) == 0
    with pytest.raises(InputError, match="bgnbd needs transactions"):
        cd.rfm(quiet, cd.UNIT_SECONDS["W"])
    assert (quiet + rest).equals(customer_stats(js))
