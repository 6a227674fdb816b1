"""Forward-backward, EM and Viterbi of journeymodel.fit.hmm against hand values, brute force
enumeration and hmmlearn's CategoricalHMM."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeymodel.errors import ConvergenceWarning, OptionError
from journeymodel.fit.hmm import (
    HMMParams,
    em,
    filter_last,
    fit_hmm,
    forward_backward,
    n_free_parameters,
    random_params,
    sample,
    viterbi,
)

# hmmlearn 0.3.3 sets ndarray.shape, deprecated in NumPy 2.5 (its warning, not ours)
pytestmark = pytest.mark.filterwarnings("ignore:Setting the shape:DeprecationWarning")


def _hmmlearn(p: HMMParams):
    from hmmlearn.hmm import CategoricalHMM

    K, M = p.emissionprob.shape
    m = CategoricalHMM(n_components=K, n_features=M, implementation="scaling")
    m.startprob_, m.transmat_, m.emissionprob_ = p.startprob, p.transmat, p.emissionprob
    return m


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    p = random_params(4, 9, rng)
    codes, offsets, _ = sample(p, 800, stop_symbols=[7, 8], seed=rng)
    return p, codes, offsets


def _brute_force_ll(seq, p: HMMParams) -> float:
    K = p.n_states
    total = 0.0
    for path in itertools.product(range(K), repeat=len(seq)):
        prob = p.startprob[path[0]] * p.emissionprob[path[0], seq[0]]
        for t in range(1, len(seq)):
            prob *= p.transmat[path[t - 1], path[t]] * p.emissionprob[path[t], seq[t]]
        total += prob
    return np.log(total)


def test_hand_computed_case():
    # start in 0, 0 -> 1 with probability 1/2, state k emits symbol k: P(0, 1, 1) = 1/2 * 1.
    p = HMMParams(np.array([1.0, 0.0]), np.array([[0.5, 0.5], [0.0, 1.0]]),
                  np.array([[1.0, 0.0], [0.0, 1.0]]))
    e = forward_backward(np.array([0, 1, 1, 0, 0]), np.array([0, 3, 5]), p, posteriors=True)
    assert np.allclose(np.exp(e.log_likelihood), [0.5, 0.5])
    assert np.allclose(e.posteriors[:, 0], [1, 0, 0, 1, 1])
    # expected counts: 0->1 once, 1->1 once, 0->0 once
    assert np.allclose(e.trans_counts, [[1, 1], [0, 1]])
    assert np.allclose(e.start_counts, [2, 0])


def test_brute_force_enumeration(data):
    p, codes, offsets = data
    e = forward_backward(codes, offsets, p)
    for j in range(12):
        seq = codes[offsets[j]:offsets[j + 1]]
        if 0 < len(seq) <= 6:
            assert e.log_likelihood[j] == pytest.approx(_brute_force_ll(seq, p), rel=1e-10)


def test_agrees_with_hmmlearn(data):
    p, codes, offsets = data
    lengths = np.diff(offsets)
    ll_ref, post_ref = _hmmlearn(p).score_samples(codes[:, None], lengths)
    e = forward_backward(codes, offsets, p, posteriors=True)
    assert e.log_likelihood.sum() == pytest.approx(ll_ref, rel=1e-6)
    np.testing.assert_allclose(e.posteriors, post_ref, rtol=1e-6, atol=1e-12)
    ll_each = [_hmmlearn(p).score(codes[offsets[j]:offsets[j + 1], None]) for j in range(20)]
    np.testing.assert_allclose(e.log_likelihood[:20], ll_each, rtol=1e-6)


def test_viterbi_agrees_with_hmmlearn(data):
    p, codes, offsets = data
    states, lp = viterbi(codes, offsets, p)
    lp_ref, states_ref = _hmmlearn(p).decode(codes[:, None], np.diff(offsets),
                                             algorithm="viterbi")
    assert lp.sum() == pytest.approx(lp_ref, rel=1e-9)
    assert (states == states_ref).mean() > 0.999  # ties may break differently


def test_filter_last_is_last_posterior(data):
    p, codes, offsets = data
    last, ll = filter_last(codes, offsets, p)
    e = forward_backward(codes, offsets, p, posteriors=True)
    ends = offsets[1:] - 1
    nonempty = np.diff(offsets) > 0
    np.testing.assert_allclose(last[nonempty], e.posteriors[ends[nonempty]], atol=1e-12)
    np.testing.assert_allclose(ll, e.log_likelihood)


def test_weights_equal_repeated_sequences(data):
    p, codes, offsets = data
    w = np.arange(len(offsets) - 1) % 3  # 0, 1, 2 copies
    e_w = forward_backward(codes, offsets, p, w.astype(float))
    from journeymodel.data.journeyset import csr_event_index

    idx = np.repeat(np.arange(len(w)), w)
    lengths = np.diff(offsets)[idx]
    offs = np.concatenate([[0], np.cumsum(lengths)])
    e_r = forward_backward(codes[csr_event_index(offsets, idx)], offs, p)
    assert e_w.total(w.astype(float)) == pytest.approx(e_r.log_likelihood.sum(), rel=1e-12)
    for a, b in [(e_w.trans_counts, e_r.trans_counts), (e_w.emission_counts, e_r.emission_counts),
                 (e_w.start_counts, e_r.start_counts)]:
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_em_step_equals_hmmlearn(data):
    p, codes, offsets = data
    ours = em(codes, offsets, p, max_iter=4, tol=0).params
    ref = _hmmlearn(p)
    ref.set_params(init_params="", params="ste", n_iter=3, tol=-np.inf)
    ref.fit(codes[:, None], np.diff(offsets))
    np.testing.assert_allclose(ours.transmat, ref.transmat_, rtol=1e-6)
    np.testing.assert_allclose(ours.emissionprob, ref.emissionprob_, rtol=1e-6)
    np.testing.assert_allclose(ours.startprob, ref.startprob_, rtol=1e-6, atol=1e-12)


def test_hmmlearn_engine_runs_same_em(data):
    p, codes, offsets = data
    a = fit_hmm(codes, offsets, 3, 9, restarts=1, seed=4, max_iter=5, warn=False)
    b = fit_hmm(codes, offsets, 3, 9, restarts=1, seed=4, max_iter=5, warn=False,
                engine="hmmlearn")
    np.testing.assert_allclose(a.params.emissionprob, b.params.emissionprob, rtol=1e-6)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), k=st.integers(1, 4), m=st.integers(2, 5))
def test_em_log_likelihood_never_decreases(seed, k, m):
    rng = np.random.default_rng(seed)
    truth = random_params(3, m, rng)
    codes, offsets, _ = sample(truth, 60, stop_symbols=[m - 1], max_length=15, seed=rng)
    w = rng.integers(1, 4, size=60).astype(float)
    fit = em(codes, offsets, random_params(k, m, rng), w, max_iter=40, tol=0)
    hist = np.array(fit.history)
    assert (np.diff(hist) >= -1e-9 * np.abs(hist[1:])).all()
    for arr in (fit.params.startprob[None], fit.params.transmat, fit.params.emissionprob):
        np.testing.assert_allclose(arr.sum(1), 1.0)


def test_masks_keep_forbidden_entries_zero(data):
    _, codes, offsets = data
    tmask = np.triu(np.ones((3, 3), bool), -1)
    tmask[2, 0] = False
    smask = np.array([True, False, False])
    fit = fit_hmm(codes, offsets, 3, 9, restarts=2, seed=0, max_iter=30, warn=False,
                  start_mask=smask, trans_mask=tmask)
    assert fit.params.transmat[2, 0] == 0 and (fit.params.startprob[1:] == 0).all()
    assert n_free_parameters(fit.params, start_mask=smask, trans_mask=tmask) == (
        0 + (3 - 1) + (3 - 1) + (2 - 1) + 3 * 8)


def test_restarts_keep_best_and_seed_reproduces(data):
    _, codes, offsets = data
    a = fit_hmm(codes, offsets, 3, 9, restarts=3, seed=5, max_iter=25, warn=False)
    b = fit_hmm(codes, offsets, 3, 9, restarts=3, seed=5, max_iter=25, warn=False)
    assert a.log_likelihood == max(a.restart_log_likelihoods)
    np.testing.assert_array_equal(a.params.emissionprob, b.params.emissionprob)


def test_sample_stops_at_stop_symbols():
    p = HMMParams(np.array([1.0]), np.array([[1.0]]), np.array([[0.6, 0.4]]))
    codes, offsets, states = sample(p, 4000, stop_symbols=[1], seed=0)
    lengths = np.diff(offsets)
    ends = codes[offsets[1:] - 1]
    assert (ends == 1).all() and (np.bincount(codes)[1] == 4000)
    assert lengths.mean() == pytest.approx(1 / 0.4, rel=0.05)  # geometric
    assert (states == 0).all()


def test_convergence_warning(data):
    _, codes, offsets = data
    with pytest.warns(ConvergenceWarning, match="raise max_iter"):
        fit_hmm(codes, offsets, 3, 9, restarts=1, max_iter=2)


def test_errors(data):
    p, codes, offsets = data
    with pytest.raises(OptionError, match="engine must be one of"):
        fit_hmm(codes, offsets, 2, 9, engine="torch")
    with pytest.raises(OptionError, match="weights must be"):
        forward_backward(codes, offsets, p, weights=-np.ones(len(offsets) - 1))
    with pytest.raises(OptionError, match="symbol codes must be in 0..8"):
        forward_backward(codes + 5, offsets, p)
    with pytest.raises(OptionError, match="offsets must rise"):
        forward_backward(codes, offsets[:-1], p)
    with pytest.raises(OptionError, match="whole counts"):
        fit_hmm(codes, offsets, 2, 9, np.full(len(offsets) - 1, 0.5), engine="hmmlearn")
    with pytest.raises(OptionError, match="transmat rows must"):
        HMMParams(p.startprob, p.transmat * 2, p.emissionprob).check()
