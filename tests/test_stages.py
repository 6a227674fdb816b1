"""StageModel: encoding, agreement with hmmlearn, recovery, stable labels, prediction,
simulation, persistence and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp

from journeymodel.data.journeys import OUTCOMES, journeys_from_codes, load_journeys
from journeymodel.errors import InputError, NotFittedError, OptionError
from journeymodel.fit import hmm
from journeymodel.models.stages.fit import StageFit, absorption, combine
from journeymodel.models.stages.model import StageModel
from journeymodel.models.stages.summary import funnel_structure
from journeymodel.stats.sequences import DIRECT, encode

pytestmark = pytest.mark.filterwarnings("ignore:Setting the shape:DeprecationWarning")

TPS = ("ad", "app", "call", "email", "reviews", "social", "store", "web")
TRUTH = StageFit(
    startprob=np.array([0.7, 0.3, 0.0, 0.0]),
    transmat=np.array([[0.60, 0.30, 0.07, 0.03], [0.08, 0.60, 0.27, 0.05],
                       [0.02, 0.15, 0.60, 0.23], [0.02, 0.05, 0.18, 0.75]]),
    #                 ad    app   call  email review social store web  (direct)
    emission=np.array([[0.40, 0.02, 0.02, 0.10, 0.04, 0.30, 0.02, 0.10, 0.0],
                       [0.05, 0.03, 0.05, 0.12, 0.40, 0.05, 0.05, 0.25, 0.0],
                       [0.02, 0.05, 0.30, 0.05, 0.05, 0.02, 0.40, 0.11, 0.0],
                       [0.02, 0.40, 0.05, 0.25, 0.02, 0.02, 0.04, 0.20, 0.0]]),
    exit=np.array([[0.84, 0.01, 0.0, 0.15], [0.81, 0.04, 0.0, 0.15],
                   [0.68, 0.20, 0.0, 0.12], [0.76, 0.08, 0.04, 0.12]]),
    log_likelihood=0.0, n_parameters=0, history=[], n_iter=0, converged=True)


def simulate_truth(n: int, seed: int, truth: StageFit = TRUTH, censor: float = 0.0):
    """Journeys drawn from ``truth`` (independent of StageModel.simulate), as a JourneySet.

    With ``censor`` > 0, that share of journeys is cut at a random step and marked censored.
    """
    rng = np.random.default_rng(seed)
    B = truth.params.emissionprob.reshape(4, -1, 5).copy()
    B[:, :, 4] = 0
    p = hmm.HMMParams(truth.startprob, truth.transmat, B.reshape(4, -1))
    stops = [x * 5 + e for x in range(len(TPS) + 1) for e in (1, 2, 3)]
    codes, offsets, _ = hmm.sample(p, n, stop_symbols=stops, seed=rng)
    seqs, outs = [], []
    for j in range(n):
        c = codes[offsets[j]:offsets[j + 1]]
        x, status = c // 5, c % 5
        out = OUTCOMES[status[-1] - 1] if status[-1] in (1, 2, 3) else "censored"
        if rng.random() < censor:
            x, out = x[:rng.integers(1, len(x) + 1)], "censored"
        seqs.append([TPS[i] for i in x])
        outs.append(out)
    return journeys_from_codes(seqs, outs, touchpoints=TPS)


@pytest.fixture(scope="module")
def small():
    return simulate_truth(3000, seed=1, censor=0.1)


@pytest.fixture(scope="module")
def fitted(small):
    return StageModel(n_stages=4, seed=0, restarts=2).fit(small)


def test_encode_hand_case():
    js = journeys_from_codes([["a", "b"], [], ["b"], [], ["a", "b"]],
                             ["conversion", "churn", "censored", "censored", "conversion"])
    enc = encode(js, ("a", "b", DIRECT), dedupe=False)
    # (touchpoint * 5 + status): continue 0, conversion 1, churn 2, dropoff 3, censored 4
    assert enc.codes.tolist() == [0, 6, 12, 9, 0, 6]
    assert enc.offsets.tolist() == [0, 2, 3, 4, 6]
    assert enc.journey.tolist() == [0, 1, 2, 4]
    dd = encode(js, ("a", "b", DIRECT))
    assert dd.weight.tolist() == [2.0, 1.0, 1.0] and dd.codes.tolist() == [0, 6, 12, 9]


def test_log_likelihood_and_posteriors_agree_with_hmmlearn(fitted, small):
    from hmmlearn.hmm import CategoricalHMM

    done = small.take(np.flatnonzero(small.outcome != 3)[:800])
    enc = encode(done, fitted.symbols_, dedupe=False)
    B = fitted.params_.emissionprob.reshape(4, -1, 5).copy()
    B[:, :, 4] = 0.0  # no censored step: the known-status columns form a distribution
    ref = CategoricalHMM(n_components=4, n_features=enc.n_symbols)
    ref.startprob_, ref.transmat_, ref.emissionprob_ = (
        fitted.startprob_, fitted.transmat_, B.reshape(4, -1))
    ll_ref, post_ref = ref.score_samples(enc.codes[:, None], np.diff(enc.offsets))
    assert fitted.score(done) == pytest.approx(ll_ref, rel=1e-6)
    post = fitted.decode(done)[[f"p_S{k}" for k in range(1, 5)]].to_numpy()
    np.testing.assert_allclose(post, post_ref, rtol=1e-6, atol=1e-10)


def test_censored_likelihood_is_marginal_over_outcomes(fitted, small):
    from hmmlearn.hmm import CategoricalHMM

    cens = small.take(np.flatnonzero(small.outcome == 3)[:30])
    enc = encode(cens, fitted.symbols_, dedupe=False)
    B = fitted.params_.emissionprob.reshape(4, -1, 5).copy()
    B[:, :, 4] = 0.0
    ref = CategoricalHMM(n_components=4, n_features=enc.n_symbols)
    ref.startprob_, ref.transmat_, ref.emissionprob_ = (
        fitted.startprob_, fitted.transmat_, B.reshape(4, -1))
    total = 0.0
    for j in range(len(enc.offsets) - 1):
        seq = enc.codes[enc.offsets[j]:enc.offsets[j + 1]].copy()
        lls = []
        for status in range(4):  # the unobserved exit after the last step, summed out
            seq[-1] = seq[-1] // 5 * 5 + status
            lls.append(ref.score(seq[:, None]))
        total += logsumexp(lls)
    assert fitted.score(cens) == pytest.approx(total, rel=1e-9)


def _matched(est: StageModel, truth: StageFit):
    cost = np.abs(est.emissionprob_[:, None, :] - truth.emission[None, :, :]).sum(-1)
    _, col = linear_sum_assignment(cost)
    inv = np.argsort(col)  # est stage matched to truth stage k is inv[k]
    return inv


@pytest.mark.slow
def test_recovers_known_four_stage_model():
    js = simulate_truth(20_000, seed=7, censor=0.05)
    m = StageModel(n_stages=4, seed=3, restarts=3).fit(js)
    inv = _matched(m, TRUTH)
    np.testing.assert_allclose(m.emissionprob_[inv], TRUTH.emission, atol=0.03)
    np.testing.assert_allclose(m.transmat_[np.ix_(inv, inv)], TRUTH.transmat, atol=0.03)
    np.testing.assert_allclose(m.exitprob_[inv], TRUTH.exit, atol=0.03)
    assert m.converged_


def test_recovers_at_smaller_n_with_looser_tolerance(fitted):
    inv = _matched(fitted, TRUTH)
    np.testing.assert_allclose(fitted.emissionprob_[inv], TRUTH.emission, atol=0.06)
    np.testing.assert_allclose(fitted.transmat_[np.ix_(inv, inv)], TRUTH.transmat, atol=0.08)
    # canonical order by mean position recovers the truth's funnel order here
    assert inv.tolist() == [0, 1, 2, 3]


def test_same_seed_same_labels_and_other_seeds_same_order(small, fitted):
    again = StageModel(n_stages=4, seed=0, restarts=2).fit(small)
    xr.testing.assert_identical(again.to_datatree(), fitted.to_datatree())
    other = StageModel(n_stages=4, seed=11, restarts=2).fit(small)
    np.testing.assert_allclose(other.emissionprob_, fitted.emissionprob_, atol=0.02)
    assert other.stage_names_ == fitted.stage_names_


def test_log_likelihood_history_never_decreases(fitted):
    h = fitted.history_
    assert (np.diff(h) >= -1e-9 * np.abs(h[1:])).all()
    assert fitted.log_likelihood_ == pytest.approx(h[-1])


def test_weights_equal_duplicated_journeys():
    js = simulate_truth(400, seed=3)
    doubled = js.take(np.repeat(np.arange(js.n_journeys), 2))
    from dataclasses import replace

    weighted = replace(js, weight=np.full(js.n_journeys, 2.0))
    a = StageModel(n_stages=3, seed=1, restarts=1).fit(weighted)
    b = StageModel(n_stages=3, seed=1, restarts=1).fit(doubled)
    np.testing.assert_allclose(a.emissionprob_, b.emissionprob_, rtol=1e-8)
    assert a.log_likelihood_ == pytest.approx(b.log_likelihood_, rel=1e-10)


def test_hmmlearn_engine_matches_numba(small):
    part = small.take(np.arange(300))
    kw = dict(n_stages=3, seed=2, restarts=1, max_iter=6)
    with pytest.warns(Warning):  # 6 iterations do not converge
        a = StageModel(**kw).fit(part)
    with pytest.warns(Warning):
        b = StageModel(engine="hmmlearn", **kw).fit(part)
    np.testing.assert_allclose(a.emissionprob_, b.emissionprob_, rtol=1e-6)
    np.testing.assert_allclose(a.exitprob_, b.exitprob_, rtol=1e-6)
    assert a.log_likelihood_ == pytest.approx(b.log_likelihood_, rel=1e-9)


def test_funnel_topology(small):
    m = StageModel(n_stages=4, topology="funnel", seed=0, restarts=2).fit(small)
    # the constraint holds in the funnel's fitted order ...
    o = funnel_structure(m)
    start, trans = m.startprob_[o], m.transmat_[np.ix_(o, o)]
    assert (start[2:] == 0).all()
    assert (np.tril(trans, -2) == 0).all()
    assert (np.diag(trans, -1) > 0).any()  # returns one stage back are allowed
    assert m.n_parameters_ == (2 - 1) + (4 + 4 + 3 + 2 - 4) + 4 * (8 - 1) + 4 * (4 - 1)
    # ... and the stages are numbered in journey order, like a free model's
    assert (np.diff(m.mean_position_) >= 0).all()
    assert sorted(m.funnel_rank_.tolist()) == [0, 1, 2, 3]


@pytest.mark.parametrize("seed", [0, 1])
def test_funnel_main_flow_goes_forward_on_the_demo_data(seed):
    """Issue 13: with 3 stages the fitted funnel began with a side stage ("engage", 19% of
    starts) and listed it before "entry" (81%), so the main flow read backwards."""
    from journeymodel.data.datasets import make_demo_data

    js = load_journeys(make_demo_data(2000, seed=0).events)
    m = StageModel(n_stages=3, topology="funnel", seed=seed).fit(js)
    assert (np.diff(m.mean_position_) >= 0).all()
    assert m.startprob_[0] == m.startprob_.max()  # most journeys start in S1
    assert m.stage_names_[0].startswith("S1: entry")
    # the stage converting most comes after the entry (its role name depends on the local
    # optimum EM reaches: with the censored journeys' survival term, seed 1 names it "engage")
    assert int(np.argmax(m.exitprob_[:, 1])) > 0
    # the fitted funnel order is kept and said when it differs
    res = m.summary()
    o = funnel_structure(m)
    assert res.json["funnel_order"] == [f"S{k + 1}" for k in o]
    if (o != np.arange(3)).any():
        assert any(n.startswith("funnel fitted as ") for n in res.notes)


def test_funnel_rank_survives_save_and_load(tmp_path):
    from journeymodel.data.datasets import make_demo_data

    js = load_journeys(make_demo_data(300, seed=0).events)
    m = StageModel(n_stages=3, topology="funnel", seed=0, restarts=1).fit(js)
    back = StageModel.load(m.save(tmp_path / "f.nc"))
    np.testing.assert_array_equal(back.funnel_rank_, m.funnel_rank_)
    free = StageModel(n_stages=2, seed=0, restarts=1).fit(js)
    assert StageModel.load(free.save(tmp_path / "g.nc")).funnel_rank_ is None


def test_summary_counts_line(small):
    m = StageModel(n_stages=2, seed=0, restarts=1).fit(small)
    oc = small.outcome_counts()
    line = m.summary().notes[0]
    assert line.startswith("counts: 2 stages fitted to ")
    assert f"of {small.n_journeys:,} journeys ({oc['conversion']:,.0f} conversions" in line


def test_absorption_matches_simulation(fitted):
    sim = fitted.simulate(20_000, seed=5)
    js = load_journeys(sim, gap="none")
    ends = absorption(fitted.stage_fit())
    expected = fitted.startprob_ @ ends
    shares = js.outcome_counts()
    assert shares["conversion"] / 20_000 == pytest.approx(expected[0], abs=0.012)
    # dropoffs leave no row: with gap none they read back as censored journeys
    assert shares["censored"] / 20_000 == pytest.approx(expected[2], abs=0.012)


def test_simulate_schema_and_seed(fitted):
    a = fitted.simulate(200, seed=1)
    assert list(a.columns) == ["customer_id", "timestamp", "touchpoint"]
    pd.testing.assert_frame_equal(a, fitted.simulate(200, seed=1))
    assert set(a["touchpoint"]) <= set(TPS) | {"conversion", "churn"}
    assert a["customer_id"].nunique() <= 200


def test_predict_in_flight(fitted, small):
    res = fitted.predict(small)
    f = res.frame
    assert len(f) == int((small.outcome == 3).sum()) == res.json["n_in_flight"]
    stages = f[[f"p_S{k}" for k in range(1, 5)]].to_numpy()
    np.testing.assert_allclose(stages.sum(1), 1.0)
    nxt = f[[f"next_{t}" for t in TPS]].to_numpy()
    np.testing.assert_allclose(nxt.sum(1), 1.0)
    outs = f[["p_conversion", "p_churn", "p_dropoff"]].to_numpy()
    np.testing.assert_allclose(outs.sum(1), 1.0, atol=1e-9)
    # a journey with no touchpoint yet converts with the model's overall probability
    empty = journeys_from_codes([[]], ["censored"], touchpoints=TPS)
    p0 = fitted.predict(empty).frame["p_conversion"].iloc[0]
    assert p0 == pytest.approx(fitted.startprob_ @ absorption(fitted.stage_fit())[:, 0])


def test_predict_current_stage_is_filtered_posterior(fitted, small):
    cens = small.take(np.flatnonzero(small.outcome == 3)[:50])
    f = fitted.predict(cens).frame
    dec = fitted.decode(cens)
    last = dec.groupby("journey").tail(1)
    np.testing.assert_allclose(f[[f"p_S{k}" for k in range(1, 5)]].to_numpy(),
                               last[[f"p_S{k}" for k in range(1, 5)]].to_numpy(), atol=1e-10)


def test_round_trip(tmp_path, small):
    m = StageModel(n_stages="auto", auto_range=[2, 3], seed=0, restarts=1).fit(small)
    path = m.save(tmp_path / "stages.nc")
    back = StageModel.load(path)
    xr.testing.assert_identical(back.to_datatree(), m.to_datatree())
    pd.testing.assert_frame_equal(back.predict(small).frame, m.predict(small).frame)
    pd.testing.assert_frame_equal(back.selection_, m.selection_, check_dtype=False)
    assert back.summary().json == m.summary().json


def test_summary_contents(fitted):
    res = fitted.summary()
    j = res.json
    for key in ("n_stages", "log_likelihood", "aic", "bic", "n_parameters"):
        assert key in j
    assert j["n_stages"] == 4 and len(j["stages"]) == 4
    n_obs = fitted.n_observations_
    assert j["bic"] == pytest.approx(j["n_parameters"] * np.log(n_obs) - 2 * j["log_likelihood"])
    assert j["aic"] == pytest.approx(2 * j["n_parameters"] - 2 * j["log_likelihood"])
    for s in j["stages"]:
        assert {"name", "top_touchpoints", "conversion_rate", "churn_rate"} <= set(s)
        assert s["name"].startswith(s["short"] + ": ")
    assert j["stages"][0]["name"] == "S1: entry (ad, social)"
    assert [s["mean_position"] for s in j["stages"]] == sorted(
        s["mean_position"] for s in j["stages"])


def test_auto_finds_demo_stages():
    from journeymodel.data.datasets import make_demo_data

    js = load_journeys(make_demo_data(2000, seed=0).events)
    m = StageModel(n_stages="auto", auto_range=[3, 5], seed=0).fit(js)
    assert m.n_stages_ == 4
    assert m.selection_["bic"].idxmin() == 1


def test_auto_warns_only_about_the_k_it_keeps(small):
    import warnings

    from journeymodel.errors import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = StageModel(n_stages="auto", auto_range=[2, 3], max_iter=2, restarts=1,
                       seed=0).fit(small)
    said = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert said == [f"HMM EM with {m.n_stages_} stages (chosen by BIC) did not converge in 2 "
                    "iterations; raise max_iter or loosen tol"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        StageModel(n_stages=2, max_iter=2, restarts=1, seed=0).fit(small)
    assert sum(issubclass(w.category, ConvergenceWarning) for w in caught) == 1


@pytest.mark.slow
def test_auto_full_range_finds_demo_stages():
    from journeymodel.data.datasets import make_demo_data

    data = make_demo_data(2000, seed=1)
    m = StageModel(n_stages="auto", seed=0).fit(load_journeys(data.events))
    assert m.n_stages_ == len(data.truth.stages) == 4


def test_errors(small):
    with pytest.raises(OptionError, match="topology must be one of"):
        StageModel(topology="linear").fit(small)
    with pytest.raises(OptionError, match="n_stages must be a whole number"):
        StageModel(n_stages="four").fit(small)
    with pytest.raises(OptionError, match="engine must be one of"):
        StageModel(engine="torch").fit(small)
    with pytest.raises(OptionError, match="auto_range must be"):
        StageModel(n_stages="auto", auto_range=[5, 2]).fit(small)
    with pytest.raises(OptionError, match="restarts and max_iter"):
        StageModel(restarts=0).fit(small)
    empty = journeys_from_codes([[], []], ["censored", "censored"], touchpoints=TPS)
    with pytest.raises(InputError, match="no journey has a touchpoint"):
        StageModel().fit(empty)
    with pytest.raises(NotFittedError, match="not fitted"):
        StageModel().summary()
    with pytest.raises(NotFittedError):
        StageModel().predict(small)


def test_combine_rows_are_distributions():
    B = combine(TRUTH.emission, TRUTH.exit).reshape(4, -1, 5)
    np.testing.assert_allclose(B[:, :, :4].sum((1, 2)), 1.0)
    np.testing.assert_allclose(B[:, :, 4].sum(1), 1.0)


def test_stage_posteriors_line_up_with_the_events(fitted, small):
    """One row per touchpoint event, in the events' order: decode's posteriors without the
    added (direct) steps; what the stages' emotion curve weighs each event by."""
    part = small.take(np.arange(200))
    post = fitted.stage_posteriors(part)
    assert post.shape == (part.n_events, 4)
    np.testing.assert_allclose(post.sum(1), 1.0)
    dec = fitted.decode(part)
    real = dec[dec["touchpoint"] != DIRECT]
    np.testing.assert_allclose(post, real[[f"p_S{k}" for k in range(1, 5)]].to_numpy(),
                               rtol=1e-12)
    with pytest.raises(NotFittedError, match="not fitted"):
        StageModel().stage_posteriors(part)
