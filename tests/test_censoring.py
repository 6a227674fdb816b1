"""Censored (in-flight) journeys in the Markov fit (issue 17): on a process with KNOWN transition
and drop-off probabilities and holding times, logs cut so that 0%, 15% and 40% of the journeys
are in flight give unbiased transition and drop-off probabilities with the survival term, and
the old behaviour (``censored="ignore"``, as ChannelAttribution) is biased low on drop-off;
attribution and pain points are built from the corrected chain; the statistics add up; model
files keep the correction."""

from __future__ import annotations

from functools import cache

import known_process as kp
import numpy as np
import pytest
import xarray as xr
from journeymodel.cli.app import main

from journeymodel.analysis.painpoints import state_leaks
from journeymodel.errors import OptionError
from journeymodel.io.persist import load_model
from journeymodel.models.markov.chain import build_chain
from journeymodel.models.markov.model import MarkovJourneyModel

SEEDS = (0, 1, 2)
SPAN = 60.0


@cache
def frame(seed: int, repeats: bool = False):
    return kp.simulate(20000, seed, span=SPAN, p=kp.P_REPEATS if repeats else kp.P)


@cache
def journeys(share: float, seed: int, repeats: bool = False):
    f = frame(seed, repeats)
    return kp.journeys(kp.cut(f, kp.cut_for_share(f, share, span=SPAN)))


def chain_probabilities(model) -> np.ndarray:
    """(3, 5): P(next | touchpoint) over a_web, b_email, c_call, conversion, dropoff."""
    P = model.transition_matrix()
    rows = list(kp.TOUCHPOINTS)
    return P.sel(from_state=rows, to_state=rows + ["(conversion)", "(dropoff)"]).values


def truth(repeats: bool) -> np.ndarray:
    """The chain's probabilities: with repeats merged, the next different event."""
    p = (kp.P_REPEATS if repeats else kp.P).copy()
    d = np.diag(p[:, :3]).copy()
    p[np.arange(3), np.arange(3)] = 0.0
    return p / (1 - d)[:, None]


def passes(model) -> np.ndarray:
    """Passes through each touchpoint state (observed + expected), (3,)."""
    c = model.expected_counts_
    n = np.bincount(np.searchsorted(model.chain_.keys, c.from_key), weights=c.count,
                    minlength=model.chain_.n)
    return n[[model.state_labels().index(t) for t in kp.TOUCHPOINTS]]


@pytest.mark.parametrize("repeats", [False, True], ids=["no-repeats", "repeats-merged"])
@pytest.mark.parametrize("share", [0.0, 0.15, 0.4])
def test_probabilities_are_unbiased_whatever_the_share_in_flight(share, repeats):
    """Pooled over 3 seeds of 20,000 customers: every transition and drop-off probability
    within 4 standard errors of the truth (binomial errors of the pooled passes: 0.003 to
    0.007); ignoring the censored last states, drop-off comes out more than 4 standard errors
    low as soon as journeys are in flight."""
    fits = {c: [MarkovJourneyModel(censored=c).fit(journeys(share, s, repeats)) for s in SEEDS]
            for c in ("survival", "ignore")}
    in_flight = np.mean([journeys(share, s, repeats).outcome_counts()["censored"]
                         / journeys(share, s, repeats).n_journeys for s in SEEDS])
    assert in_flight == pytest.approx(share, abs=0.02)
    true = truth(repeats)
    for how, models in fits.items():
        n = np.sum([passes(m) for m in models], axis=0)
        got = np.sum([chain_probabilities(m) * passes(m)[:, None] for m in models], axis=0)
        got /= n[:, None]
        se = np.sqrt(true * (1 - true) / n[:, None])
        z = np.divide(got - true, se, out=np.zeros_like(se), where=se > 0)
        if how == "survival":
            assert np.abs(z).max() < 4.0, z
        elif share == 0:
            assert np.allclose(got, chain_probabilities(models[0]) * 0 + got)
        else:
            assert np.all(z[:, 4] < -4), z


def test_posterior_attribution_and_pain_points_use_the_corrected_chain():
    """40% in flight: the posterior concentration is observed + expected counts; removal
    attribution and pain-point drop rates agree with those of the complete log, unlike the old
    fit's."""
    cut, done = journeys(0.4, 0), journeys(0.0, 0)
    fixed = MarkovJourneyModel().fit(cut)
    old = MarkovJourneyModel(censored="ignore").fit(cut)
    full = MarkovJourneyModel().fit(done)
    conc = build_chain(fixed.counts_ + fixed.censored_counts_)[0].conc
    assert np.allclose(fixed.chain_.conc.toarray(), conc.toarray())
    assert fixed.censored_counts_.count.sum() == pytest.approx(
        cut.outcome_counts()["censored"])  # each in-flight journey allocated once
    share = {m: m.attribution("removal", n_draws=0).removal_effect for m in (fixed, old, full)}
    assert np.abs(share[fixed] - share[full]).max() < 0.03
    assert np.abs(share[old] - share[full]).max() > 2 * np.abs(share[fixed] - share[full]).max()
    draws = fixed.attribution("removal", n_draws=200, seed=1)
    assert np.all(draws.conversions_low <= draws.conversions)

    def rates(m):
        leaks, _ = state_leaks(m)
        fi = np.searchsorted(m.chain_.keys, m.expected_counts_.from_key)
        c = m.expected_counts_
        n = np.bincount(fi, weights=c.count, minlength=m.chain_.n)
        k = np.bincount(fi[c.to_key == -2], weights=c.count[c.to_key == -2],
                        minlength=m.chain_.n)
        return (k / np.maximum(n, 1e-300))[1:], leaks

    (r_fixed, leaks), (r_old, _) = rates(fixed), rates(old)
    assert np.allclose(r_fixed, kp.P[:, 4], atol=0.015)
    assert np.all(r_old < kp.P[:, 4] - 0.03)
    assert {i["name"] for i in leaks} == {"a_web"}  # the true leak: drop-off 0.2 against 0.1
    assert leaks[0]["drop_rate"] == pytest.approx(r_fixed[0])


def test_higher_orders_fit_and_stay_close():
    """Order 2 on the 15%-in-flight log: rows of windows ending in a touchpoint average to
    that touchpoint's truth (the process is order 1)."""
    m = MarkovJourneyModel(order=2).fit(journeys(0.15, 0))
    P = m.transition_matrix()
    labels = m.state_labels()
    visits = np.bincount(np.searchsorted(m.chain_.keys, m.expected_counts_.from_key),
                         weights=m.expected_counts_.count, minlength=m.chain_.n)
    for i, t in enumerate(kp.TOUCHPOINTS):
        rows = [j for j, lab in enumerate(labels) if lab.endswith(t) and " > " in lab]
        drop = P.sel(to_state="(dropoff)").values[rows]
        assert np.average(drop, weights=visits[rows]) == pytest.approx(kp.P[i, 4], abs=0.015)


def test_statistics_of_parts_give_the_same_model():
    js = journeys(0.4, 1)
    half = np.arange(js.n_journeys) % 2 == 0
    model = MarkovJourneyModel()
    parts = model.stats_of(js.take(half)) + model.stats_of(js.take(~half))
    assert parts.equals(model.stats_of(js))
    a, b = MarkovJourneyModel().fit_stats(parts), MarkovJourneyModel().fit(js)
    assert np.allclose(a.chain_.conc.toarray(), b.chain_.conc.toarray())
    assert np.allclose(a.holding_.cdf, b.holding_.cdf)


def test_model_file_keeps_the_correction_and_holding_times(tmp_path):
    m = MarkovJourneyModel(order=2).fit(journeys(0.4, 2))
    back = load_model(m.save(tmp_path / "m.nc"))
    assert back.censored == "survival"
    assert np.array_equal(back.censored_counts_.count, m.censored_counts_.count)
    assert np.array_equal(back.censored_counts_.to_key, m.censored_counts_.to_key)
    xr.testing.assert_identical(back.holding_.to_dataset(), m.holding_.to_dataset())
    assert np.allclose(back.chain_.conc.toarray(), m.chain_.conc.toarray())
    a, b = (x.attribution("removal", n_draws=50, seed=3) for x in (m, back))
    assert np.array_equal(a.conversions_low, b.conversions_low)


def test_ignore_keeps_the_old_fit_and_paths_have_no_holding_times():
    js = journeys(0.15, 0)
    old = MarkovJourneyModel(censored="ignore").fit(js)
    assert len(old.censored_counts_.count) == 0
    assert np.allclose(old.chain_.conc.toarray(), build_chain(old.counts_)[0].conc.toarray())
    assert "add their steps but no outcome" in old.counts_text()
    assert "chance of moving on or dropping off" in MarkovJourneyModel().fit(js).counts_text()
    from journeymodel.data.journeys import journeys_from_codes

    paths = MarkovJourneyModel().fit(journeys_from_codes([["a", "b"], ["a"]],
                                                         ["conversion", "censored"]))
    assert paths.holding_ is None and len(paths.censored_counts_.count) == 0
    with pytest.raises(OptionError, match=r"censored must be one of \('survival', 'ignore'\)"):
        MarkovJourneyModel(censored="drop").fit(js)


def test_cli_censored_option(tmp_path, capsys):
    log = kp.cut(frame(0), kp.cut_for_share(frame(0), 0.4, span=SPAN))
    events = tmp_path / "events.csv"
    log.events.to_csv(events, index=False)
    common = ["fit", "markov", str(events), "--gap", f"{kp.GAP_DAYS:g}D", "--observed-until",
              log.observed_until.isoformat()]
    out = {}
    for how in ("survival", "ignore"):
        assert main([*common, "-o", str(tmp_path / f"{how}.nc"), "--censored", how]) == 0
        out[how] = load_model(tmp_path / f"{how}.nc")
    drop = {h: chain_probabilities(m)[:, 4] for h, m in out.items()}
    assert np.all(drop["ignore"] < drop["survival"] - 0.02)
    capsys.readouterr()
    assert main([*common, "-o", str(tmp_path / "x.nc"), "--censored", "drop"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "'drop' is not one of 'survival', 'ignore'" in err[0]


def test_em_reaches_the_maximum_likelihood():
    """Against a direct maximisation (scipy, softmax parameters) of each row's likelihood:
    observed moves sum n_k log p_k, plus per censored cell c log(sum_k p_k S_k(e) + p_drop)."""
    from scipy.optimize import minimize

    from journeymodel.models.markov.censoring import bin_middles
    from journeymodel.stats.transitions import censored_states

    js = journeys(0.4, 2)
    m = MarkovJourneyModel().fit(js)
    cens = censored_states(js, 1)
    e_mid = bin_middles(m.holding_.edges)
    em = chain_probabilities(m)
    c = m.counts_
    for a, name in enumerate(kp.TOUCHPOINTS):
        key = m.chain_.keys[m.state_labels().index(name)]
        row = c.from_key == key
        to = c.to_key[row]
        n = c.count[row]
        target = np.where(to >= 0, to % (len(kp.TOUCHPOINTS) + 1) - 1,
                          np.where(to == -1, 3, -1))  # -1: drop-off
        cells = cens.key == key
        e = e_mid[cens.bin[cells]]
        S = np.array([np.ones_like(e) if t < 0 else m.holding_.sf(a, t, e) for t in target])

        def nll(theta, n=n, w=cens.count[cells], S=S):
            p = np.exp(theta - theta.max())
            p /= p.sum()
            return -(n @ np.log(p) + w @ np.log(p @ S))

        best = minimize(nll, np.log(n), method="BFGS", options={"gtol": 1e-9})
        p = np.exp(best.x - best.x.max())
        p /= p.sum()
        cols = [t if t >= 0 else 4 for t in target]
        assert np.allclose(em[a, cols], p, atol=2e-5)


@pytest.mark.parametrize("order, repeats", [(1, False), (1, True), (2, False)])
def test_squarem_reaches_the_plain_em_fixed_point_in_fewer_steps(order, repeats):
    """Issue 20: the SQUAREM-accelerated EM gives the plain EM's expected counts (to 1e-8 of
    the censored total) in fewer steps."""
    from journeymodel.models.markov.censoring import censored_allocation
    from journeymodel.stats.transitions import censored_states

    js = journeys(0.4, 3, repeats)
    m = MarkovJourneyModel(order=order).fit(js)
    cens = censored_states(js, order, collapse=m.collapse_repeats)
    plain_steps, fast_steps = [], []
    plain = censored_allocation(m.counts_, cens, m.holding_, accelerate=False,
                                steps=plain_steps)
    fast = censored_allocation(m.counts_, cens, m.holding_, steps=fast_steps)
    # over the union of pairs: a pair the plain EM leaves at 1e-15 may be exactly 0 here
    f = np.concatenate([fast.from_key, plain.from_key])
    t = np.concatenate([fast.to_key, plain.to_key])
    _, pair = np.unique(np.stack([f, t]), axis=1, return_inverse=True)
    diff = np.bincount(pair.ravel(), weights=np.concatenate([fast.count, -plain.count]))
    assert np.abs(diff).max() <= 1e-8 * cens.count.sum()
    assert fast.count.sum() > 0.5 * cens.count.sum()  # the censored journeys were allocated
    assert fast_steps[0] < plain_steps[0], (fast_steps, plain_steps)
