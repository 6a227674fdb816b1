"""Behavioural segments (issue 18): the mixture EM, recovery of a known mixture, BIC, seeds,
members, the persona column, statistics that add up, model files."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from journeymodel.data.journeys import journeys_from_codes, load_journeys
from journeymodel.data.mixtures import make_mixture_data, mixture_truth
from journeymodel.errors import InputError, ModelFileError, NotFittedError, OptionError
from journeymodel.io.persist import load_model
from journeymodel.models.segments import em
from journeymodel.models.segments.model import SegmentModel
from journeymodel.stats.segments import segment_stats


@pytest.fixture(scope="module")
def data():
    return make_mixture_data(1500, 3, journeys_per_customer=4, seed=3)


@pytest.fixture(scope="module")
def journeys(data):
    return load_journeys(data.events)


@pytest.fixture(scope="module")
def fitted(journeys):
    return SegmentModel(n_segments=3, seed=0).fit(journeys)


def _truth(data, ids):
    return data.segments.set_index("customer_id").loc[list(ids), "segment"].to_numpy()


# -- the EM ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["markov", "hmm"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_em_log_likelihood_never_decreases(journeys, kind, seed):
    stats = segment_stats(journeys)
    seqs = stats.sequences
    comp = (em.MarkovComponent(seqs.codes, seqs.offsets, len(seqs.symbols)) if kind == "markov"
            else em.HMMComponent(seqs.codes, seqs.offsets, len(seqs.symbols), 2))
    fit = em.fit_mixture(comp, em.customer_bags(stats), 4, restarts=2, seed=seed, max_iter=60,
                         tol=0.0, n_obs=seqs.n_obs, warn=False)
    steps = np.diff(fit.history)
    assert len(steps) > 10
    assert (steps >= -1e-8 * np.abs(fit.history[1:])).all(), steps.min()


def test_markov_log_likelihood_by_hand():
    """One customer with two journeys, one segment: the product of the chain's moves."""
    js = journeys_from_codes([["a", "b"], ["a"]], ["conversion", "dropoff"])
    js = _with_customers(js, ["c1", "c1"])
    stats = segment_stats(js)
    seqs = stats.sequences
    comp = em.MarkovComponent(seqs.codes, seqs.offsets, len(seqs.symbols))
    theta = comp.m_step(np.ones((seqs.n_sequences, 1)), np.full((1, 4, 6), 1 / 6))
    # start: a twice -> P(a)=1; from a: b once, dropoff once; from b: conversion
    _, ll = em.membership(comp, theta, np.ones(1), em.customer_bags(stats))
    assert ll[0] == pytest.approx(np.log(0.5) + np.log(0.5))


def _with_customers(js, ids):
    from dataclasses import replace

    uniq, cust = np.unique(ids, return_inverse=True)
    return replace(js, customer=cust.astype(np.int64), customers=uniq)


# -- recovery, selection, determinism --------------------------------------------------------


def test_recovers_three_persona_segments(data, journeys, fitted):
    members = fitted.predict(journeys).frame
    ari = adjusted_rand_score(_truth(data, members["customer_id"]), members["segment"])
    assert ari >= 0.9
    # shares close to the truth's (2:1.5:1), largest first
    assert np.allclose(fitted.weights_, np.sort(data.truth.shares)[::-1], atol=0.04)
    assert (np.diff(fitted.weights_) <= 0).all()


def test_bic_picks_the_true_number_of_segments(journeys):
    m = SegmentModel(n_segments="auto", auto_range=[2, 5], seed=0).fit(journeys)
    assert m.n_segments_ == 3
    assert m.selection_["n_segments"].tolist() == [2, 3, 4, 5]
    assert m.selection_.loc[m.selection_["bic"].idxmin(), "n_segments"] == 3


def test_one_segment_when_customers_are_alike():
    d = make_mixture_data(800, 3, journeys_per_customer=3, separation=0.0, seed=4)
    m = SegmentModel(n_segments="auto", auto_range=[1, 3], seed=0).fit(load_journeys(d.events))
    assert m.n_segments_ == 1


def test_same_seed_same_bits(journeys, fitted):
    again = SegmentModel(n_segments=3, seed=0).fit(journeys)
    xr.testing.assert_identical(again.to_datatree().to_dataset(),
                                fitted.to_datatree().to_dataset())
    other = SegmentModel(n_segments=3, seed=5, restarts=1).fit(journeys)
    assert not np.array_equal(other.history_, fitted.history_)


def test_names_say_what_distinguishes_segments(data, fitted):
    truth = data.truth
    for k, name in enumerate(fitted.segment_names_):
        assert name.split(" ")[0].count("+") == 1
        # the named touchpoints are the most used ones of the segment
        mix = fitted.profile_.touchpoints[k, :-1]
        top = {fitted.symbols_[i] for i in np.argsort(-mix)[:3]}
        assert set(name.split(" ")[0].split("+")) <= top
    assert len(set(fitted.segment_names_)) == 3
    assert truth.n_segments == 3


def test_hmm_segments_fit_and_predict(journeys):
    m = SegmentModel(n_segments=2, kind="hmm", n_stages=2, restarts=1, seed=0).fit(journeys)
    assert m.emissionprob_.shape == (2, 2, len(m.symbols_))
    assert np.allclose(m.exitprob_.sum(-1), 1.0)
    frame = m.predict(journeys).frame
    assert np.allclose(frame.filter(like="p_").sum(axis=1), 1.0)


# -- members and the persona column ---------------------------------------------------------------


def test_members_file_columns_and_probabilities(journeys, fitted):
    frame = fitted.predict(journeys).frame
    names = fitted.segment_names_
    assert list(frame.columns) == ["customer_id", "segment", "probability",
                                   *[f"p_{n}" for n in names]]
    assert len(frame) == len(np.unique(journeys.customers))
    p = frame[[f"p_{n}" for n in names]].to_numpy()
    assert np.allclose(p.sum(axis=1), 1.0)
    assert np.allclose(frame["probability"], p.max(axis=1))
    assert (frame["segment"].to_numpy() == np.asarray(names, object)[p.argmax(1)]).all()


def test_more_journeys_more_certainty(fitted, journeys):
    frame = fitted.predict(journeys).frame
    n = pd.Series(journeys.customers[journeys.customer]).value_counts()
    sure = frame.set_index("customer_id")["probability"]
    few, many = sure[n[n == 1].index].mean(), sure[n[n >= 5].index].mean()
    assert many > few


def test_persona_log_round_trip(data, fitted, tmp_path):
    from journeymodel.models.segments.personas import persona_log

    frame, n = persona_log(fitted, data.events)
    assert len(frame) == len(data.events) and n == 1500
    members = fitted.predict(load_journeys(data.events)).frame.set_index("customer_id")
    assert (frame["persona"].to_numpy() == members.loc[frame["customer_id"], "segment"]
            .to_numpy()).all()
    js = load_journeys(frame, persona_col="persona")
    assert set(js.personas) == set(fitted.segment_names_)
    with pytest.raises(InputError, match="already has a column 'persona'"):
        persona_log(fitted, frame)


# -- statistics and errors -----------------------------------------------------------------------


def test_statistics_of_parts_add_up(journeys):
    from tests.stats_helpers import split_parts

    whole = segment_stats(journeys)
    labels = np.random.default_rng(0).integers(0, 3, size=len(journeys.customers))
    parts = split_parts(journeys, labels, by_customer=True)
    total = sum(segment_stats(p) for p in parts[::-1])
    assert total.equals(whole)
    a = SegmentModel(n_segments=2, restarts=1, seed=0).fit_stats(total)
    b = SegmentModel(n_segments=2, restarts=1, seed=0).fit_stats(whole)
    assert np.allclose(np.sort(a.weights_), np.sort(b.weights_), atol=1e-6)


def test_a_customer_split_across_parts_counts_once(journeys):
    from tests.stats_helpers import split_parts

    parts = split_parts(journeys, np.random.default_rng(1).integers(0, 2, len(journeys)))
    total = sum(segment_stats(p) for p in parts)
    assert total.equals(segment_stats(journeys))


def test_user_errors(journeys):
    with pytest.raises(OptionError, match="kind must be one of"):
        SegmentModel(kind="lda").fit(journeys)
    with pytest.raises(OptionError, match="n_segments must be a whole number"):
        SegmentModel(n_segments=0).fit(journeys)
    with pytest.raises(OptionError, match="auto_range"):
        SegmentModel(n_segments="auto", auto_range=[3, 2]).fit(journeys)
    paths = journeys_from_codes([["a"], ["b"]], ["conversion", "dropoff"])
    with pytest.raises(InputError, match="no customer ids"):
        SegmentModel().fit(paths)
    few = _with_customers(paths, ["x", "y"])
    with pytest.raises(InputError, match="fewer than the 3 segments"):
        SegmentModel(n_segments=3).fit(few)
    with pytest.raises(NotFittedError):
        SegmentModel().predict(journeys)


def test_mixture_generator_checks_its_knobs():
    with pytest.raises(OptionError, match="separation"):
        mixture_truth(3, separation=1.5)
    with pytest.raises(OptionError, match="journeys_per_customer"):
        make_mixture_data(10, 2, journeys_per_customer=0.5)
    a, b = make_mixture_data(50, 2, seed=9), make_mixture_data(50, 2, seed=9)
    pd.testing.assert_frame_equal(a.events, b.events)


# -- model files --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["markov", "hmm"])
def test_model_file_round_trip(journeys, fitted, kind, tmp_path):
    m = fitted if kind == "markov" else SegmentModel(
        n_segments=2, kind="hmm", n_stages=2, restarts=1, seed=0).fit(journeys)
    path = m.save(tmp_path / "s.nc")
    back = load_model(path)
    xr.testing.assert_identical(back.to_datatree().to_dataset(), m.to_datatree().to_dataset())
    pd.testing.assert_frame_equal(back.predict(journeys).frame, m.predict(journeys).frame)
    assert back.summary().json == m.summary().json


def test_damaged_model_file_is_refused(fitted, tmp_path):
    path = fitted.save(tmp_path / "s.nc")
    tree = xr.open_datatree(path, engine="h5netcdf").load()
    tree["theta"] = tree["theta"] * 0.5
    bad = tmp_path / "bad.nc"
    tree.to_netcdf(bad, engine="h5netcdf")
    with pytest.raises(ModelFileError, match="theta: rows must sum to 1"):
        load_model(bad)


# -- report section -----------------------------------------------------------------------------


def test_report_section_shows_segments_side_by_side(fitted):
    from journeymodel.report.palette import palette_for
    from journeymodel.report.sections.segments import segments_section

    section = segments_section(fitted, "s.nc", palette_for([fitted]))
    figure, sizes, paths = section.items
    assert figure.png.startswith(b"\x89PNG") and figure.size[0] > 1000
    assert list(sizes.frame.index) == fitted.segment_names_
    assert list(paths.frame.columns) == fitted.segment_names_
    assert ("customers", "1,500") in section.facts


def test_report_page_has_the_segments_section(fitted, tmp_path):
    from journeymodel.report.build import build_report

    report = build_report([fitted], tmp_path / "map.html")
    assert [s.id for s in report.sections] == ["segments", "data"]
    assert "Behavioural segments (segments)" in report.path.read_text()


# -- statistics: a property ---------------------------------------------------------------------


@st.composite
def _split(draw):
    """A small mixture log in 1-5 parts or 30-60 small ones (missing touchpoints), by journey or
    by customer, in a random order."""
    js = _small()
    by_customer = draw(st.booleans())
    n = len(js.customers) if by_customer else js.n_journeys
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_parts = draw(st.integers(1, 5) | st.integers(30, 60))
    from tests.stats_helpers import split_parts

    parts = split_parts(js, rng.integers(0, n_parts, n), by_customer=by_customer)
    return [parts[i] for i in rng.permutation(len(parts))]


@functools.cache
def _small():
    """200 customers cut at two thirds of their time span (journeys in flight, issue 17)."""
    events = make_mixture_data(200, 2, n_touchpoints=8, seed=2).events
    cut = events["timestamp"].min() + (events["timestamp"].max()
                                       - events["timestamp"].min()) * 2 / 3
    return load_journeys(events[events["timestamp"] <= cut], observed_until=cut.isoformat())


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=_split())
def test_statistics_of_any_split_add_up_and_fit_the_same(parts):
    whole = segment_stats(_small())
    total = sum(segment_stats(p) for p in parts)
    assert total.equals(whole)
    assert (whole.sequences.elapsed_bins >= 0).sum() > 10  # the in-flight journeys' bins
    a = SegmentModel(n_segments=2, restarts=1, seed=0).fit_stats(total)
    b = SegmentModel(n_segments=2, restarts=1, seed=0).fit_stats(whole)
    assert a.log_likelihood_ == pytest.approx(b.log_likelihood_, rel=1e-6)


def test_members_in_the_order_customers_appear(fitted):
    log = pd.DataFrame({"customer_id": [10, 10, 9, 2, 9], "timestamp": [1, 2, 3, 4, 5],
                        "touchpoint": ["web", "conversion", "app", "call", "email"]})
    frame = fitted.predict(load_journeys(log)).frame
    assert frame["customer_id"].tolist() == ["10", "9", "2"]


def _damage_cases():
    """(node, variable, how) for a segments file: a variable dropped, NaN, a probability above
    1, a segment index out of range, numbers where text belongs."""
    return [("/", "weight", "drop"), ("/", "theta", "drop"), ("/", "outcomes", "nan"),
            ("/", "steps", "nan"), ("/", "history", "nan"), ("/", "theta", "big"),
            ("/", "weight", "big"), ("/paths", "segment", "big"),
            ("/transitions", "segment", "big"), ("/transitions", "probability", "big"),
            ("/paths", "path", "number"), ("/paths", "share", "drop"),
            ("/selection", "bic", "nan"), ("/transitions", "from", "drop")]


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    return fitted.save(tmp_path_factory.mktemp("segments_file") / "s.nc")


@pytest.mark.parametrize(("node", "var", "how"), _damage_cases())
def test_every_damage_gives_a_model_file_error(saved, tmp_path, node, var, how):
    from tests.model_files import rewrite

    src = saved

    def edit(nodes, attrs):
        ds = nodes[node]
        if how == "drop":
            nodes[node] = ds.drop_vars(var)
            return
        value = {"nan": np.nan, "big": 1e6 if var != "segment" else 99, "number": 1.0}[how]
        dtype = np.int64 if var == "segment" else np.float64
        nodes[node] = ds.assign({var: (ds[var].dims, np.full(ds[var].shape, value, dtype))})

    bad = rewrite(src, tmp_path / "bad.nc", edit)
    with pytest.raises(ModelFileError, match="bad.nc"):
        load_model(bad)


def test_damaged_holding_times_are_named(saved, tmp_path):
    from tests.model_files import rewrite

    def edit(nodes, attrs):
        ds = nodes["/holding"]
        nodes["/holding"] = ds.assign(cdf=(ds["cdf"].dims, np.full(ds["cdf"].shape, 0.5)))

    with pytest.raises(ModelFileError, match="bad.nc.*group 'holding': damaged holding times"):
        load_model(rewrite(saved, tmp_path / "bad.nc", edit))
