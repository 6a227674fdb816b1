"""Censored (in-flight) journeys in the stages HMM (issue 17): on a process with KNOWN
parameters (tests/known_process.py, an order-1 chain that a 3-stage HMM represents exactly:
one stage per touchpoint), logs cut so that 0%, 15% and 40% of the journeys are in flight give
unbiased P(conversion) from the start and drop-off probabilities with the survival term, and
biased ones with ``censored="ignore"`` (exit factor 1, the fit before issue 17); the
likelihood with the survival term is the one written down (checked by enumerating stage
paths); EM never decreases it; the statistics keep the elapsed time and add up."""

from __future__ import annotations

import itertools
from dataclasses import replace
from functools import cache

import known_process as kp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeymodel.errors import OptionError
from journeymodel.fit import hmm
from journeymodel.io.persist import load_model
from journeymodel.models.markov.censoring import bin_middles
from journeymodel.models.stages.censoring import censored_cells
from journeymodel.models.stages.fit import absorption
from journeymodel.models.stages.model import StageModel
from journeymodel.stats.sequences import N_STATUS, UNKNOWN, StageStats

SEEDS = (0, 1, 2)
SPAN = 60.0
N = 8000
TRUE_CONVERSION = float(kp.START @ np.linalg.solve(np.eye(3) - kp.P[:, :3], kp.P[:, 3]))


@cache
def journeys(share: float, seed: int, n: int = N):
    f = kp.simulate(n, seed, span=SPAN)
    return kp.journeys(kp.cut(f, kp.cut_for_share(f, share, span=SPAN)))


@cache
def fitted(share: float, seed: int, censored: str) -> StageModel:
    return StageModel(n_stages=3, seed=seed, restarts=1, censored=censored).fit(
        journeys(share, seed))


def dropoff_by_touchpoint(m: StageModel) -> np.ndarray:
    """P(drop-off after a touchpoint) = the exit of the stage emitting it (one each here)."""
    stage = np.argmax(m.emissionprob_[:, :3], axis=0)
    assert len(set(stage.tolist())) == 3  # one stage per touchpoint
    return m.exitprob_[stage, 3]


def p_conversion(m: StageModel) -> float:
    return float(m.startprob_ @ absorption(m.stage_fit())[:, 0])


@pytest.mark.parametrize("share", [0.0, 0.15, 0.4])
def test_conversion_and_dropoff_are_unbiased_whatever_the_share_in_flight(share):
    """3 seeds x 8,000 customers: P(conversion) from the start within 0.012 of the truth
    (0.654; its standard error over the pooled journeys is about 0.003) and drop-off after
    each touchpoint within 4 binomial standard errors (plus 0.004 for the holding times'
    smoothing, see journeymodel/stats/holding.py); ignoring the censored journeys' time
    silent, P(conversion) comes out high and drop-off low as soon as journeys are in flight."""
    share_real = np.mean([journeys(share, s).outcome_counts()["censored"]
                          / journeys(share, s).n_journeys for s in SEEDS])
    assert share_real == pytest.approx(share, abs=0.02)
    for how in ("survival", "ignore"):
        models = [fitted(share, s, how) for s in SEEDS]
        conv = np.mean([p_conversion(m) for m in models])
        events = np.sum([np.bincount(journeys(share, s).codes, minlength=3)[
            [journeys(share, s).touchpoints.index(t) for t in kp.TOUCHPOINTS]]
            for s in SEEDS], axis=0)
        drop = np.mean([dropoff_by_touchpoint(m) for m in models], axis=0)
        se = np.sqrt(kp.P[:, 4] * (1 - kp.P[:, 4]) / events)
        if how == "survival" or share == 0.0:
            assert conv == pytest.approx(TRUE_CONVERSION, abs=0.012), how
            assert np.all(np.abs(drop - kp.P[:, 4]) < 4 * se + 0.004), (how, drop)
        else:
            assert conv > TRUE_CONVERSION + 0.03
            assert np.all(drop < kp.P[:, 4] - 4 * se)


def test_em_never_decreases_the_likelihood_with_the_survival_term():
    for seed in SEEDS:
        m = StageModel(n_stages=3, seed=seed, restarts=2, warmup=None).fit(journeys(0.4, seed))
        h = np.asarray(m.history_)
        assert len(h) > 5
        assert np.all(np.diff(h) >= -1e-9 * abs(h[-1]))


def test_likelihood_of_censored_journeys_by_enumerating_stage_paths():
    """log P(journey) of censored sequences = log of the sum over stage paths of start,
    transitions, emissions and exits, times the written-down exit factor f(last stage) built
    with explicit loops over the next events and the holding times' survival."""
    js = journeys(0.4, 0, 600)
    m = StageModel(n_stages=2, seed=0, restarts=1).fit(js)
    seqs = m.stats_of(js).sequences
    cells = censored_cells(seqs, m.holding_)
    params = cells.finish(m.params_)
    ll = hmm.forward_backward(cells.codes, seqs.offsets, params).log_likelihood
    h = m.holding_
    e_mid = bin_middles(h.edges)
    checked = 0
    for j in np.flatnonzero(seqs.elapsed_bins >= 0)[:8]:
        codes = seqs.codes[seqs.offsets[j]:seqs.offsets[j + 1]]
        if len(codes) > 5:
            continue
        x, status = codes // N_STATUS, codes % N_STATUS
        assert status[-1] == UNKNOWN
        a = h.touchpoints.index(seqs.symbols[x[-1]])
        e = min(e_mid[seqs.elapsed_bins[j]], np.nextafter(h.edges[-1], 0))

        def f(z, a=a, e=e):
            out = m.exitprob_[z, 3]
            out += m.exitprob_[z, 1] * h.sf(a, 3, e) + m.exitprob_[z, 2] * h.sf(a, 4, e)
            for z2, w in itertools.product(range(2), range(3)):
                out += (m.exitprob_[z, 0] * m.transmat_[z, z2] * m.emissionprob_[z2, w]
                        * h.sf(a, w, e))
            return out

        total = 0.0
        for path in itertools.product(range(2), repeat=len(codes)):
            p = m.startprob_[path[0]]
            for t, z in enumerate(path):
                p *= m.emissionprob_[z, x[t]]
                p *= m.exitprob_[z, status[t]] if status[t] < UNKNOWN else f(z)
                if t + 1 < len(path):
                    p *= m.transmat_[z, path[t + 1]]
            total += p
        assert ll[j] == pytest.approx(np.log(total), rel=1e-10)
        checked += 1
    assert checked >= 3


def test_identical_censored_sequences_silent_for_different_times_stay_apart():
    js = journeys(0.4, 0, 2000)
    s = StageModel().stats_of(js).sequences
    bins = s.elapsed_bins
    cens = (s.codes[s.offsets[1:] - 1] % N_STATUS) == UNKNOWN
    assert np.all(bins[cens] >= 0) and np.all(bins[~cens] == -1)
    paths = [tuple(p) for p in s.as_lists()]
    assert len(set(paths)) < len(paths)  # one path in several bins
    assert len(set(zip(paths, bins.tolist(), strict=True))) == len(paths)


def test_fit_from_summed_parts_equals_the_fit_of_the_whole():
    js = journeys(0.4, 1, 3000)
    model = StageModel(n_stages=3, seed=0, restarts=1)
    half = js.n_journeys // 2
    parts = [js.take(np.arange(half)), js.take(np.arange(half, js.n_journeys))]
    stats = sum(model.stats_of(p) for p in parts)
    assert stats.equals(model.stats_of(js))
    a = StageModel(n_stages=3, seed=0, restarts=1).fit_stats(stats)
    b = StageModel(n_stages=3, seed=0, restarts=1).fit(js)
    for name in ("startprob_", "transmat_", "emissionprob_", "exitprob_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=1e-6)


def test_ignore_is_the_fit_without_survival_and_both_agree_without_holding_times():
    js = journeys(0.4, 2, 3000)
    stats = StageModel().stats_of(js)
    ignore = StageModel(n_stages=3, seed=0, restarts=1, censored="ignore").fit_stats(stats)
    no_times = StageModel(n_stages=3, seed=0, restarts=1).fit_stats(
        StageStats(stats.sequences, stats.totals, None))
    np.testing.assert_array_equal(ignore.exitprob_, no_times.exitprob_)
    no_bins = replace(stats.sequences, elapsed_bin=None)
    also = StageModel(n_stages=3, seed=0, restarts=1).fit_stats(
        StageStats(no_bins, stats.totals, stats.holding))
    np.testing.assert_array_equal(ignore.exitprob_, also.exitprob_)
    survival = StageModel(n_stages=3, seed=0, restarts=1).fit_stats(stats)
    assert not np.allclose(survival.exitprob_, ignore.exitprob_, atol=1e-3)


def test_censored_option_is_checked_and_saved(tmp_path):
    with pytest.raises(OptionError, match=r"censored must be one of \('survival', 'ignore'\) "
                                          r"\(got 'drop'\)"):
        StageModel(censored="drop").fit(journeys(0.4, 0, 500))
    with pytest.raises(OptionError, match="engine 'hmmlearn' cannot fit the survival term"):
        StageModel(engine="hmmlearn").fit(journeys(0.4, 0, 500))
    m = StageModel(n_stages=2, seed=0, restarts=1, censored="ignore").fit(journeys(0.4, 0, 500))
    back = load_model(m.save(tmp_path / "m.nc"))
    assert back.censored == "ignore"
    np.testing.assert_array_equal(back.exitprob_, m.exitprob_)


def test_the_counts_line_says_how_in_flight_journeys_entered_and_files_keep_it(tmp_path):
    js = journeys(0.4, 0, 500)
    n = f"{js.outcome_counts()['censored']:,}"
    for how, said in (("survival", "given the time already spent silent"),
                      ("ignore", "add their steps but no outcome")):
        m = StageModel(n_stages=2, seed=0, restarts=1, censored=how).fit(js)
        back = load_model(m.save(tmp_path / f"{how}.nc"))
        assert back.censored_survival_ is (how == "survival")
        notes = " ".join(back.summary().notes)
        assert f"the {n} in-flight journeys" in notes and said in notes


def test_score_is_the_likelihood_the_fit_maximised():
    js = journeys(0.4, 0, 2000)
    for how in ("survival", "ignore"):
        m = StageModel(n_stages=3, seed=0, restarts=1, censored=how).fit(js)
        assert m.score(js) == pytest.approx(m.log_likelihood_, rel=1e-9)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), share=st.sampled_from([0.15, 0.4]), K=st.integers(1, 4))
def test_property_em_never_decreases_and_complete_keeps_the_counts(seed, share, K):
    """Any small log cut mid-stream and any K: EM's log-likelihood never decreases, and the
    completed counts keep every censored last step (one exit each) and add one unseen next
    step per continuing one."""
    js = journeys(share, seed % 7, 400)
    m = StageModel(n_stages=K, seed=seed, restarts=1, warmup=None, max_iter=1000).fit(js)
    h = np.asarray(m.history_)
    assert np.all(np.diff(h) >= -1e-9 * abs(h[-1]))
    seqs = m.stats_of(js).sequences
    cells = censored_cells(seqs, m.holding_)
    params = cells.finish(m.params_)
    e = hmm.forward_backward(cells.codes, seqs.offsets, params, seqs.weight)
    done = cells.complete(e, params)
    nb = cells.n_x * N_STATUS
    n_cens = e.emission_counts[:, nb:].sum()
    before = e.emission_counts[:, :nb].reshape(K, -1, N_STATUS)
    after = done.emission_counts.reshape(K, -1, N_STATUS)
    assert after[:, :, :4].sum() == pytest.approx(before[:, :, :4].sum() + n_cens, rel=1e-9)
    went_on = after[:, :, 0].sum() - before[:, :, 0].sum()
    assert done.trans_counts.sum() - e.trans_counts.sum() == pytest.approx(went_on, rel=1e-9)
    assert after[:, :, UNKNOWN].sum() - before[:, :, UNKNOWN].sum() == pytest.approx(
        went_on, rel=1e-9)


def test_a_damaged_censored_survival_record_is_refused(tmp_path):
    import json

    import xarray as xr

    from journeymodel.errors import ModelFileError
    from tests.model_files import set_attr

    m = StageModel(n_stages=2, seed=0, restarts=1).fit(journeys(0.4, 0, 500))
    path = m.save(tmp_path / "m.nc")
    fit = json.loads(xr.open_datatree(path).to_dataset().attrs["fit"])
    assert fit["censored_survival"] is True
    fit["censored_survival"] = "yes"
    bad = set_attr(path, tmp_path / "bad.nc", "fit", json.dumps(fit))
    with pytest.raises(ModelFileError, match=r"attribute 'fit': 'censored_survival' must be "
                                             r"boolean \(got 'yes'\)"):
        load_model(bad)
