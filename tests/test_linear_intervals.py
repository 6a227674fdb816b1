"""Linearised (delta-method) removal-attribution intervals (issue 20): exact gradients by
adjoint solves, agreement with many posterior draws, and the interval-method policy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_error_line

import journeymodel.models.markov.attribution as attr
from journeymodel.data.journeys import journeys_from_codes
from journeymodel.errors import OptionError
from journeymodel.models.markov.chain import adjoint_vectors
from journeymodel.models.markov.model import MarkovJourneyModel


def known_process(n, T=5, seed=0, max_len=12):
    """``n`` journeys of a known first-order chain over ``T`` channels: a random start
    distribution and moves, conversion probability rising with the channel (0.04 .. 0.25),
    drop-off 0.2 at every step (simulated step by step for all journeys at once)."""
    rng = np.random.default_rng(seed)
    names = [f"ch{i}" for i in range(T)]
    move = np.cumsum(rng.dirichlet(np.full(T, 2.0), size=T), axis=1)
    conv = np.linspace(0.04, 0.25, T)
    path = np.full((n, max_len), -1)
    path[:, 0] = rng.choice(T, size=n, p=rng.dirichlet(np.full(T, 3.0)))
    outcome = np.full(n, "dropoff", dtype=object)
    alive = np.arange(n)
    for t in range(max_len):
        s = path[alive, t]
        x = rng.random(len(alive))
        outcome[alive[x < conv[s]]] = "conversion"
        alive = alive[x >= conv[s] + 0.2]
        if t + 1 == max_len or len(alive) == 0:
            break  # journeys still going at max_len drop off
        u = rng.random(len(alive))[:, None]
        path[alive, t + 1] = (u > move[path[alive, t]]).sum(axis=1).clip(0, T - 1)
    seqs = [[names[i] for i in row[row >= 0]] for row in path]
    return journeys_from_codes(seqs, list(outcome), touchpoints=names)


def _p_start(chain, data, removed):
    """P(conversion from start) by a dense solve, transitions into removed states dropped."""
    n = chain.n
    P = np.zeros(chain.conc.shape)
    rows = np.repeat(np.arange(n), np.diff(chain.conc.indptr))
    P[rows, chain.conc.indices] = data
    Q = P[:, :n] * ~removed[None, :]
    r = P[:, n + chain.absorbing.index("conversion")]
    keep = ~removed
    x = np.zeros(n)
    x[keep] = np.linalg.solve(np.eye(keep.sum()) - Q[np.ix_(keep, keep)], r[keep])
    return x[0]


def test_adjoint_gradient_matches_finite_differences():
    """dp/dP_ij = u_i v_j on a 3-state chain (start, a, b), for the full chain and with
    channel b removed, against central differences of a dense solve at every entry."""
    js = journeys_from_codes([["a", "b"], ["b", "a", "b"], ["a"], ["b", "a"], ["a", "a", "b"]],
                             ["conversion", "dropoff", "conversion", "dropoff", "conversion"])
    m = MarkovJourneyModel(censored="ignore", collapse_repeats=False).fit(js)
    chain = m.chain_
    assert chain.n == 3
    removed = np.array([[False, False, False], [False, False, True]])
    conv_col = chain.n + chain.absorbing.index("conversion")
    u, v = adjoint_vectors(chain.conc, chain.n, chain.P.data, conv_col, removed)
    rows = np.repeat(np.arange(chain.n), np.diff(chain.conc.indptr))
    cols = chain.conc.indices
    for s in range(2):
        vcol = np.zeros(chain.conc.shape[1])
        vcol[:chain.n] = v[s]
        vcol[conv_col] = 1.0
        grad = u[s, rows] * vcol[cols]
        fd = np.empty(chain.conc.nnz)
        for e in range(chain.conc.nnz):  # loop over the few entries of a hand-sized chain
            d = np.zeros(chain.conc.nnz)
            d[e] = 1e-6
            fd[e] = (_p_start(chain, chain.P.data + d, removed[s])
                     - _p_start(chain, chain.P.data - d, removed[s])) / 2e-6
        np.testing.assert_allclose(grad, fd, atol=1e-8)
    assert u[1, 2] == 0 and v[1, 2] == 0  # removed state: never visited, converts nothing


@pytest.fixture(scope="module")
def rich():
    return known_process(100_000)


def _compare(model, n_draws, seed=1):
    lin = model.attribution(n_draws=1, intervals="linear")
    mc = model.attribution(n_draws=n_draws, intervals="draws", seed=seed)
    out = []
    for lo, hi in (("conversions_low", "conversions_high"),
                   ("removal_effect_low", "removal_effect_high")):
        width = getattr(mc, hi) - getattr(mc, lo)
        for end in (lo, hi):
            out.append(np.abs(getattr(lin, end) - getattr(mc, end)) / width)
    return lin, np.concatenate(out)


@pytest.mark.parametrize("order", [1, pytest.param(2, marks=pytest.mark.slow),
                                   pytest.param(3, marks=pytest.mark.slow)])
def test_linear_intervals_agree_with_many_draws(rich, order):
    """On a data-rich chain (100,000 journeys of a known process) both ends of every
    channel's removal-effect and conversions interval are within 2% of the width of 40,000
    posterior draws' (whose own Monte-Carlo error per end is about 0.3% of the width)."""
    m = MarkovJourneyModel(order=order, censored="ignore").fit(rich)
    lin, diff = _compare(m, 40_000)
    assert lin.intervals == "linear"
    assert diff.max() < 0.02, diff


def test_linear_intervals_hold_the_point_and_their_range(rich):
    m = MarkovJourneyModel(order=2).fit(rich.take(np.arange(3000)))
    a = m.attribution(n_draws=1, intervals="linear")
    b = m.attribution(n_draws=1, intervals="linear", seed=9)
    np.testing.assert_array_equal(a.conversions_low, b.conversions_low)  # no randomness
    assert np.all((0 <= a.conversions_low) & (a.conversions_low <= a.conversions))
    assert np.all(a.conversions <= a.conversions_high)
    assert np.all(a.conversions_high <= a.total_conversions)
    assert np.all((0 <= a.removal_effect_low) & (a.removal_effect_low <= a.removal_effect))
    assert np.all((a.removal_effect <= a.removal_effect_high) & (a.removal_effect_high <= 1))
    assert np.all(a.conversions_high - a.conversions_low > 0)
    none = m.attribution(n_draws=0, intervals="linear")
    assert np.isnan(none.conversions_low).all() and none.intervals == ""


def test_linear_intervals_on_the_krylov_path_match_the_direct_one(rich, monkeypatch):
    """Chains above 3,000 states take BiCGSTAB (transposed systems too): same intervals."""
    import journeymodel.models.markov.chain as mc

    m = MarkovJourneyModel(order=3).fit(rich.take(np.arange(20_000)))
    direct = m.attribution(n_draws=1, intervals="linear")
    monkeypatch.setattr(mc, "_PRECOND_MAX", 10)
    monkeypatch.setattr(mc, "_DENSE_MAX", 5)
    krylov = m.attribution(n_draws=1, intervals="linear")
    np.testing.assert_allclose(krylov.conversions_low, direct.conversions_low, rtol=1e-8)
    np.testing.assert_allclose(krylov.removal_effect_high, direct.removal_effect_high,
                               rtol=1e-8)


def test_auto_chooses_by_chain_size(rich, monkeypatch):
    m = MarkovJourneyModel(order=1).fit(rich.take(np.arange(3000)))
    assert m.chain_.n * 6 <= attr.AUTO_DRAWS_MAX_WORK
    assert m.attribution(n_draws=50).intervals == "draws"
    monkeypatch.setattr(attr, "AUTO_DRAWS_MAX_WORK", m.chain_.n * 6 - 1)
    res = m.attribute(n_draws=50)
    assert res.json["intervals"] == "linear"
    assert any("normal approximation" in note for note in res.notes)
    with pytest.raises(OptionError, match="intervals must be one of auto, draws, linear"):
        m.attribution(intervals="magic")


def test_python_defaults_follow_the_library_default():
    import inspect

    for name in ("attribution", "attribute"):
        sig = inspect.signature(getattr(MarkovJourneyModel, name))
        assert sig.parameters["n_draws"].default == attr.DEFAULT_DRAWS
        assert sig.parameters["intervals"].default == "auto"


def test_cli_intervals_option(run_cli, tmp_path):
    path = tmp_path / "paths.csv"
    path.write_text("path,total_conversions,total_null\nc1 > c2 > c3,3,1\nc1,1,4\n"
                    "c2 > c3,2,2\nc3 > c1,1,3\n")
    model = tmp_path / "m.nc"
    assert run_cli("fit", "markov", path, "-o", model)[0] == 0
    code, out, err = run_cli("attribute", model, "--json", "--intervals", "linear")
    assert code == 0, err
    js = json.loads(out)
    assert js["intervals"] == "linear"
    c1 = js["channels"]["c1"]
    assert c1["conversions_low"] <= c1["conversions"] <= c1["conversions_high"]
    code, out, err = run_cli("attribute", model, "--json", "--draws", "200")
    assert code == 0 and json.loads(out)["intervals"] == "draws"
    code, out, err = run_cli("attribute", model, "--intervals", "magic")
    assert_one_error_line(code, err, "--intervals must be one of auto, draws, linear")


@pytest.fixture(scope="module")
def order3():
    from journeymodel.data.datasets import make_demo_data
    from journeymodel.data.journeys import load_journeys

    model = MarkovJourneyModel(order=3).fit(load_journeys(make_demo_data(600, seed=2).events))
    assert 250 < model.chain_.n <= 1500  # the mid-sized chains' dense inverse
    return model


def dense_reference(chain, removed):
    """Per removal set: expected visits from the start (u) and conversion probabilities (v)
    of the kept states, by two dense solves of the reduced system each."""
    n, csr, mean = chain.n, chain.csr, chain.p_data
    rows, cols = csr.rows(), csr.indices
    conv = n + chain.absorbing.index("conversion")
    A = np.eye(n)
    q = cols < n
    np.add.at(A, (rows[q], cols[q]), -mean[q])
    r = np.bincount(rows[cols == conv], weights=mean[cols == conv], minlength=n)
    u, v = np.zeros(removed.shape), np.zeros(removed.shape)
    for s, gone in enumerate(removed):  # loop over removal sets only
        keep = np.flatnonzero(~gone)
        if gone[0]:
            continue  # no way out of a removed start
        Ak = A[np.ix_(keep, keep)]
        v[s, keep] = np.linalg.solve(Ak, r[keep])
        u[s, keep] = np.linalg.solve(Ak.T, (keep == 0).astype(float))
    return A, u, v


def test_mean_inverse_and_the_adjoint_vectors_of_any_removal_sets(order3):
    """The shared inverse (issue 20) is (I - Q)^-1; the adjoint vectors from it, or made
    without it, match per-set dense solves, for nothing removed, the start removed, one
    channel's states and random sets."""
    from journeymodel.models.markov.chain import mean_inverse

    chain = order3.chain_
    n = chain.n
    rng = np.random.default_rng(3)
    removed = np.vstack([np.zeros(n, bool), np.eye(1, n, 0, dtype=bool),
                         attr.channel_masks(order3.state_codes_,
                                            len(order3.journeys_.touchpoints))[:1],
                         rng.random((3, n)) < 0.3])
    removed[3:, 0] = False
    A, ref_u, ref_v = dense_reference(chain, removed)
    inverse = mean_inverse(chain.csr, n, chain.p_data)
    np.testing.assert_allclose(inverse @ A, np.eye(n), atol=1e-9)
    conv = n + chain.absorbing.index("conversion")
    u, v = adjoint_vectors(chain.csr, n, chain.p_data, conv, removed, inverse=inverse)
    u2, v2 = adjoint_vectors(chain.csr, n, chain.p_data, conv, removed)
    np.testing.assert_array_equal(u, u2)
    np.testing.assert_array_equal(v, v2)
    np.testing.assert_allclose(u, ref_u, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(v, ref_v, rtol=1e-9, atol=1e-12)
    assert not u[1].any() and not v[1].any()  # the start removed: nothing is reached


def test_mean_inverse_only_where_both_solves_use_it(order3):
    from journeymodel.models.markov.chain import mean_inverse

    small = MarkovJourneyModel().fit(known_process(500)).chain_
    assert mean_inverse(small.csr, small.n, small.p_data) is None
    chain = order3.chain_
    assert mean_inverse(chain.csr, chain.n, chain.p_data).shape == (chain.n, chain.n)


def test_linear_intervals_from_the_shared_inverse_are_those_made_alone(order3):
    """removal_attribution makes the inverse once for the point estimate and the intervals:
    the same bits as the point estimate and linear_intervals each making their own."""
    from journeymodel.models.markov.chain import start_values

    chain, n = order3.chain_, order3.chain_.n
    a = order3.attribution(n_draws=1, intervals="linear")
    removed = np.vstack([np.zeros((1, n), bool),
                         attr.channel_masks(order3.state_codes_, len(a.channels))])
    conv = np.repeat(n + chain.absorbing.index("conversion"), 2)
    weights = np.vstack([np.ones(n), order3.conversion_value_])  # as attribution solves
    p = start_values(chain.csr, n, chain.p_data[None, :], conv, weights, removed)
    (lo, hi), (clo, chi) = attr.linear_intervals(chain, removed, p[0, :, 0],
                                                 a.total_conversions, 0.94)
    np.testing.assert_array_equal(a.removal_effect, 1.0 - p[0, 1:, 0] / p[0, 0, 0])
    for got, want in ((a.removal_effect_low, lo), (a.removal_effect_high, hi),
                      (a.conversions_low, clo), (a.conversions_high, chi)):
        np.testing.assert_array_equal(got, want)
