"""Markov journey model: golden cases, dense-solve references, additivity, recovery, persistence."""

from __future__ import annotations

import itertools
from math import factorial

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from journeymodel.data.journeys import journeys_from_codes, load_journeys
from journeymodel.errors import InputError, NotFittedError, OptionError
from journeymodel.models.markov.attribution import channel_masks
from journeymodel.models.markov.model import MarkovJourneyModel
from journeymodel.stats.transitions import count_transitions, decode_keys

TEXTBOOK = (["c1", "c2", "c3"], ["c1"], ["c2", "c3"]), ("conversion", "dropoff", "dropoff")


def random_journeys(seed, n=200, T=4, max_len=6, outcomes=("conversion", "dropoff", "churn",
                                                             "censored"), weights=True):
    rng = np.random.default_rng(seed)
    names = [f"t{i}" for i in range(T)]
    seqs = [list(rng.choice(names, size=rng.integers(0, max_len + 1))) for _ in range(n)]
    outs = list(rng.choice(outcomes, size=n))
    w = rng.integers(1, 4, size=n).astype(float) if weights else None
    return journeys_from_codes(seqs, outs, weights=w, touchpoints=names)


def dense_chain(model):
    P = model.chain_.P.toarray()
    n = model.chain_.n
    return P[:, :n], P[:, n:]


# -- golden case --------------------------------------------------------------------------------

def test_textbook_removal_effects_and_shares_are_exact():
    js = journeys_from_codes(*TEXTBOOK)
    a = MarkovJourneyModel().fit(js).attribution("removal", n_draws=0)
    np.testing.assert_allclose(a.removal_effect, [0.5, 1.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(a.conversions, [0.2, 0.4, 0.4], atol=1e-12)
    assert a.to_json()["channels"]["c1"]["conversions"] == pytest.approx(0.2)


def test_attribute_json_shape():
    m = MarkovJourneyModel().fit(journeys_from_codes(*TEXTBOOK))
    js = m.attribute("removal", n_draws=50).json
    assert set(js) == {"method", "total_conversions", "intervals", "channels"}
    assert js["intervals"] == "draws"  # a 4-state chain: posterior draws (issue 20)
    assert set(js["channels"]["c2"]) == {"removal_effect", "conversions", "conversions_low",
                                         "conversions_high", "value"}
    assert js["channels"]["c2"]["conversions_low"] <= js["channels"]["c2"]["conversions_high"]


# -- chain analytics against a dense solve --------------------------------------------------------

@pytest.mark.parametrize("order", [1, 2, 3])
def test_analytics_match_dense_solve(order):
    m = MarkovJourneyModel(order=order).fit(random_journeys(1))
    Q, R = dense_chain(m)
    n = len(Q)
    N = np.linalg.inv(np.eye(n) - Q)
    conv = m.chain_.absorbing.index("conversion")
    np.testing.assert_allclose(m.p_conversion_, N @ R[:, conv], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(m.expected_steps_, N @ np.ones(n), rtol=1e-10)
    np.testing.assert_allclose(m.absorption_.sum(axis=1), 1.0, atol=1e-10)


@pytest.mark.parametrize("order", [1, 2])
def test_removal_matches_dense_solve_with_states_removed(order):
    """Order-k states holding a removed channel vanish: solving the chain without them gives
    the same P(conversion) as the batched removal solve."""
    m = MarkovJourneyModel(order=order).fit(random_journeys(2))
    Q, R = dense_chain(m)
    conv = m.chain_.absorbing.index("conversion")
    masks = channel_masks(m.state_codes_, 4)
    full = np.linalg.solve(np.eye(len(Q)) - Q, R[:, conv])[0]
    a = m.attribution("removal", n_draws=0)
    for c in range(4):
        keep = ~masks[c]
        assert keep[0]
        assert all(c not in row for row in m.state_codes_[keep])
        x = np.linalg.solve(np.eye(keep.sum()) - Q[np.ix_(keep, keep)], R[keep, conv])
        assert a.removal_effect[c] == pytest.approx(1 - x[0] / full, rel=1e-9, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), order=st.integers(1, 3), prior=st.sampled_from([0, 0.5]))
def test_rows_sum_to_one_and_attribution_sums_to_total(seed, order, prior):
    js = random_journeys(seed, n=60)
    m = MarkovJourneyModel(order=order, prior=prior).fit(js)
    np.testing.assert_allclose(np.asarray(m.chain_.P.sum(axis=1)).ravel(), 1.0, atol=1e-12)
    total = js.outcome_counts()["conversion"]
    for method in ("removal", "first", "last", "linear"):
        a = m.attribution(method, n_draws=0)
        if method == "removal" and a.removal_effect.sum() == 0:
            continue
        direct = js.weight[(js.outcome == 0) & (js.lengths == 0)].sum()
        expect = total - (direct if method != "removal" else 0)
        assert a.conversions.sum() == pytest.approx(expect, rel=1e-9, abs=1e-9)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), order=st.integers(1, 4), cut=st.floats(0.1, 0.9))
def test_counts_of_two_halves_add_up(seed, order, cut):
    js = random_journeys(seed, n=80)
    k = int(cut * js.n_journeys)
    a = count_transitions(js.take(np.arange(k)), order)
    b = count_transitions(js.take(np.arange(k, js.n_journeys)), order)
    assert (a + b).equals(count_transitions(js, order))


def _reference_counts(js, order, collapse):
    """count_transitions by a plain loop over journeys (independent reference)."""
    from collections import defaultdict

    base, abs_key = len(js.touchpoints) + 1, {0: -1, 1: -3, 2: -2}
    count, value, dsum, dn = (defaultdict(float) for _ in range(4))
    for j in range(js.n_journeys):
        lo, hi = js.offsets[j], js.offsets[j + 1]
        codes, times, w = js.codes[lo:hi], js.times[lo:hi], js.weight[j]
        L = len(codes)
        ends = range(order - 1, L) if L >= order else range(L - 1, L) if L else range(0)
        states = []
        for e in ends:
            window = codes[max(0, e - order + 1):e + 1]
            key = sum(int(c + 1) * base ** (len(window) - 1 - i) for i, c in enumerate(window))
            if not (collapse and states and states[-1][0] == key):
                states.append((key, times[e]))
        prev = 0
        for (key, t), nxt in zip(states, (states[1:] + [None])[:len(states)], strict=True):
            count[prev, key] += w
            prev = key
            d = (nxt[1] - t) if nxt else (js.end[j] - t if js.outcome[j] in (0, 1) else np.nan)
            if np.isfinite(d):
                dsum[key] += d * w
                dn[key] += w
        if js.outcome[j] != 3:
            count[prev, abs_key[js.outcome[j]]] += w
            value[prev, abs_key[js.outcome[j]]] += js.value[j] * w if js.outcome[j] == 0 else 0
    return count, value, dsum, dn


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), order=st.integers(1, 4), collapse=st.booleans(),
       unit=st.booleans())
def test_counts_and_dwell_match_a_loop_reference(seed, order, collapse, unit):
    from dataclasses import replace

    js = random_journeys(seed, n=60, T=3, weights=not unit)
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.exponential(10.0, js.n_events))
    times[rng.random(js.n_events) < 0.05] = np.nan  # unknown times give no dwell
    last = np.where(js.lengths > 0, times[np.maximum(js.offsets[1:] - 1, 0)], 0.0)
    js = replace(js, times=times, end=last + 3.0, time_kind="datetime",
                 value=rng.integers(0, 5, js.n_journeys).astype(float))
    tc = count_transitions(js, order, collapse)
    count, value, dsum, dn = _reference_counts(js, order, collapse)
    pairs = sorted(count)
    assert [tuple(p) for p in zip(tc.from_key.tolist(), tc.to_key.tolist(), strict=True)] == pairs
    np.testing.assert_allclose(tc.count, [count[p] for p in pairs], rtol=1e-12)
    np.testing.assert_allclose(tc.value, [value[p] for p in pairs], rtol=1e-12, atol=1e-12)
    assert tc.dwell_key.tolist() == sorted(dn)
    np.testing.assert_allclose(tc.dwell_sum, [dsum[k] for k in sorted(dn)], rtol=1e-12)
    np.testing.assert_allclose(tc.dwell_n, [dn[k] for k in sorted(dn)], rtol=1e-12)


def test_window_states_follow_channelattribution():
    js = journeys_from_codes([["a", "b", "c", "d"], ["a", "a", "a", "b"], ["a"]],
                             ["conversion", "dropoff", "conversion"])
    tc = count_transitions(js, 2)
    base = 5
    labels = {k: tuple(r[r >= 0]) for k, r in zip(
        np.union1d(tc.from_key, tc.to_key[tc.to_key > 0]),
        decode_keys(np.union1d(tc.from_key, tc.to_key[tc.to_key > 0]), base, 2), strict=True)}
    pairs = {(labels.get(f, f), labels.get(t, t)) for f, t in zip(tc.from_key, tc.to_key,
                                                                   strict=True)}
    assert ((), (0, 1)) in pairs and ((), (0, 0)) in pairs and ((), (0,)) in pairs
    assert ((0, 0), (0, 1)) in pairs and ((0, 0), (0, 0)) not in pairs  # repeats merged
    assert ((0,), -1) in pairs and ((2, 3), -1) in pairs


def test_keep_repeats_gives_self_transitions():
    js = journeys_from_codes([["a", "a", "b"]], ["conversion"])
    P = MarkovJourneyModel(collapse_repeats=False).fit(js).transition_matrix()
    assert float(P.sel(from_state="a", to_state="a")) == pytest.approx(0.5)


def test_weighted_journeys_equal_repeated_journeys():
    seqs, outs = [["a", "b"], ["b"]], ["conversion", "dropoff"]
    w = MarkovJourneyModel().fit(journeys_from_codes(seqs, outs, weights=[3, 2]))
    r = MarkovJourneyModel().fit(journeys_from_codes(seqs * 1 + [["a", "b"]] * 2 + [["b"]],
                                                     outs + ["conversion"] * 2 + ["dropoff"]))
    xr.testing.assert_allclose(w.transition_matrix(), r.transition_matrix())


def test_censored_journeys_add_transitions_not_absorption():
    js = journeys_from_codes([["a", "b"], ["a", "c"]], ["conversion", "censored"])
    tc = count_transitions(js, 1)
    assert tc.count[tc.to_key < 0].sum() == 1
    assert ((tc.from_key == 1) & (tc.to_key == 3)).any()  # a -> c from the censored journey
    m = MarkovJourneyModel().fit(js)
    assert any("in-flight" in n for n in m.notes_)  # c has no observed exit


# -- uncertainty ----------------------------------------------------------------------------------

def test_intervals_contain_point_and_are_seeded():
    m = MarkovJourneyModel(order=2).fit(random_journeys(3, n=400))
    a = m.attribution(n_draws=300, seed=5)
    b = m.attribution(n_draws=300, seed=5)
    np.testing.assert_array_equal(a.conversions_low, b.conversions_low)
    assert np.all(a.conversions_low <= a.conversions + 1e-9)
    assert np.all(a.conversions <= a.conversions_high + 1e-9)
    c = m.attribution(n_draws=300, seed=6)
    assert not np.array_equal(a.conversions_low, c.conversions_low)


@pytest.mark.parametrize("iterate", [False, True])
def test_draws_do_not_depend_on_batches_or_threads(monkeypatch, iterate):
    """Issue 20: every block of draws has its own stream and the iteration's preconditioner
    comes from the posterior mean, so the intervals are the same in one batch on one thread
    and in batches of 16 on 3 threads (dense path for small chains, iteration for mid-sized)."""
    import journeymodel.models.markov.attribution as ma
    import journeymodel.models.markov.chain as mc

    m = MarkovJourneyModel(order=3).fit(random_journeys(11, n=400))
    monkeypatch.setattr(mc, "STREAM_VARIATES", 1)  # streams of 16 draws: 100 draws make 7
    if iterate:
        monkeypatch.setattr(mc, "_DENSE_MAX", 0)
    monkeypatch.setattr(ma, "pool_threads", lambda: 1)
    one = m.attribution(n_draws=100, seed=7, intervals="draws")
    monkeypatch.setattr(ma, "pool_threads", lambda: 3)
    monkeypatch.setattr(ma, "DRAW_BATCH_BYTES", 1)  # batches of one stream (16 draws)
    many = m.attribution(n_draws=100, seed=7, intervals="draws")
    for name in ("conversions_low", "conversions_high", "removal_effect_low",
                 "removal_effect_high"):
        np.testing.assert_allclose(getattr(many, name), getattr(one, name), rtol=1e-10)
    assert np.all(one.conversions_low < one.conversions_high)


def test_intervals_shrink_with_more_data():
    small = MarkovJourneyModel().fit(random_journeys(4, n=200, weights=False))
    big_js = random_journeys(4, n=200, weights=False)
    big = MarkovJourneyModel().fit(big_js.take(np.tile(np.arange(200), 20)))
    w_small = np.ptp(np.stack([small.attribution(n_draws=200).conversions_low,
                               small.attribution(n_draws=200).conversions_high]), axis=0)
    a = big.attribution(n_draws=200)
    w_big = (a.conversions_high - a.conversions_low) / 20
    assert np.all(w_big < w_small)


# -- Shapley --------------------------------------------------------------------------------------

def _brute_shapley(m):
    """Shapley values by enumerating permutations, coalition values by dense solves."""
    Q, R = dense_chain(m)
    conv = m.chain_.absorbing.index("conversion")
    masks = channel_masks(m.state_codes_, len(m.journeys_.touchpoints))
    C = masks.shape[0]

    def v(coal):
        keep = ~masks[[c for c in range(C) if c not in coal]].any(axis=0)
        return np.linalg.solve(np.eye(keep.sum()) - Q[np.ix_(keep, keep)], R[keep, conv])[0]

    phi = np.zeros(C)
    for perm in itertools.permutations(range(C)):
        for i, c in enumerate(perm):
            phi[c] += v(set(perm[:i + 1])) - v(set(perm[:i]))
    return phi / factorial(C)


@pytest.mark.parametrize("order", [1, 2])
def test_shapley_exact_matches_permutation_enumeration(order):
    m = MarkovJourneyModel(order=order).fit(random_journeys(5, n=150))
    phi = _brute_shapley(m)
    a = m.attribution("shapley")
    np.testing.assert_allclose(a.conversions, phi / phi.sum() * m.total_conversions_,
                               rtol=1e-8)


def test_shapley_sampling_agrees_with_exact(monkeypatch):
    import journeymodel.models.markov.attribution as ma

    m = MarkovJourneyModel().fit(random_journeys(6, n=300, T=5))
    exact = m.attribution("shapley")
    monkeypatch.setattr(ma, "SHAPLEY_EXACT_MAX", 2)
    sampled = m.attribution("shapley", n_permutations=3000, seed=1)
    assert "random channel orders" in sampled.note
    half = (sampled.conversions_high - sampled.conversions_low) / 2
    assert np.all(np.abs(sampled.conversions - exact.conversions) <= 2 * half + 1e-9)


# -- prediction, simulation, selection ------------------------------------------------------------

def _event_log(seed, n=3000):
    """An event log with datetimes: a known order-1 chain over three touchpoints."""
    rng = np.random.default_rng(seed)
    P = {"ad": [0.2, 0.5, 0.1, 0.0, 0.2], "web": [0.1, 0.0, 0.4, 0.3, 0.2],
         "call": [0.1, 0.3, 0.0, 0.5, 0.1]}
    names = ["ad", "web", "call", "conversion", "stop"]
    rows = []
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    for c in range(n):  # test-data generator only (the library itself never loops per journey)
        s = rng.choice(["ad", "web"])
        t = t0 + pd.Timedelta(hours=float(rng.uniform(0, 24 * 200)))
        while True:
            rows.append((f"c{c}", t, s))
            nxt = names[rng.choice(5, p=P[s])]
            t += pd.Timedelta(hours=float(rng.exponential(5.0)))
            if nxt == "conversion":
                rows.append((f"c{c}", t, "conversion"))
                break
            if nxt == "stop":
                break
            s = nxt
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "touchpoint"])


@pytest.fixture(scope="module")
def events():
    return _event_log(0)


def test_dwell_times_and_holdout_auc(events):
    js = load_journeys(events, gap="30D", observed_until="2030-01-01")
    m = MarkovJourneyModel().fit(js)
    lab = m.state_labels()
    # repeats are merged: ad -> ad (p = 0.2) makes ad's dwell geometric sums of 5 h gaps
    np.testing.assert_allclose(m.mean_dwell_[[lab.index(s) for s in ("ad", "web", "call")]],
                               np.array([5 / 0.8, 5, 5]) * 3600, rtol=0.1)
    from journeymodel.models.markov.holdout import holdout_stats

    tr, ho = js.split(0.3, 0)
    s = holdout_stats(MarkovJourneyModel().fit(tr), ho, seed=0).result()
    assert s["auc"] > 0.6 and 0 < s["log_loss"] < 0.7


def test_simulate_refit_recovers_transition_matrix(events):
    js = load_journeys(events, gap="30D", observed_until="2030-01-01")
    m = MarkovJourneyModel().fit(js)
    sim = m.simulate(20_000, seed=3)
    assert list(sim.columns[:3]) == ["customer_id", "timestamp", "touchpoint"]
    assert str(sim["timestamp"].dtype).startswith("datetime64")
    pd.testing.assert_frame_equal(sim, m.simulate(20_000, seed=3))
    back = load_journeys(sim, gap="30D", observed_until="2040-01-01")
    m2 = MarkovJourneyModel().fit(back)
    P1, P2 = m.transition_matrix(), m2.transition_matrix().reindex_like(m.transition_matrix())
    visits = np.asarray(m2.chain_.conc.sum(axis=1)).ravel()
    se = np.sqrt(P1 * (1 - P1) / visits[:, None]) + 1e-9
    assert float((abs(P2.fillna(0) - P1) / se).max()) < 5


def test_predict_in_flight(events):
    js = load_journeys(events, gap="30D")  # the last journeys are censored
    m = MarkovJourneyModel(order=2).fit(js)
    r = m.predict(js)
    f = r.frame
    assert len(f) == int((js.outcome == 3).sum()) > 0
    nxt = f.filter(like="next_")
    ok = f["p_conversion"].notna()
    np.testing.assert_allclose(nxt[ok].sum(axis=1), 1.0, atol=1e-9)
    one = f["n_touchpoints"] == 1  # shorter than the order: prefix of first windows
    assert (ok & one).any()
    assert ((f["p_conversion"] >= 0) & (f["p_conversion"] <= 1))[ok].all()


def test_prefix_prediction_is_weighted_average_of_windows():
    js = journeys_from_codes([["a", "b"], ["a", "c"], ["a", "c"], ["a"], ["a"]],
                             ["conversion", "dropoff", "conversion", "censored", "dropoff"])
    m = MarkovJourneyModel(order=2).fit(js)
    from journeymodel.models.markov.predict import state_of_journeys

    r = state_of_journeys(m, js.take([3]))
    # start -> (a,b) 1/5 [p=1], (a,c) 2/5 [p=1/2], (a) 2/5 (the censored one too) [p=0]
    assert r["p_conversion"][0] == pytest.approx(0.2 * 1 + 0.4 * 0.5)
    names = list(m.journeys_.touchpoints) + list(m.chain_.absorbing)
    assert r["next"][0][names.index("c")] == pytest.approx(0.4)
    assert r["next"][0][names.index("b")] == pytest.approx(0.2)
    assert r["next"][0][names.index("dropoff")] == pytest.approx(0.4)


def test_auto_order_selects_and_reports_table(events):
    js = load_journeys(events, gap="30D", observed_until="2030-01-01")
    m = MarkovJourneyModel(order="auto").fit(js)
    t = m.order_table_
    assert list(t["order"]) == [1, 2, 3, 4] and (t["selected"] == "*").sum() == 1
    assert m.order_ == 1  # the data are first order


# -- persistence and errors -----------------------------------------------------------------------

def test_save_load_round_trip_identical(tmp_path, events):
    js = load_journeys(events, gap="30D")
    m = MarkovJourneyModel(order="auto").fit(js)
    path = m.save(tmp_path / "m.nc")
    m2 = MarkovJourneyModel.load(path)
    xr.testing.assert_identical(m.to_datatree(), m2.to_datatree())
    pd.testing.assert_frame_equal(m.predict(js).frame, m2.predict(js).frame)
    pd.testing.assert_frame_equal(m.simulate(50, seed=1), m2.simulate(50, seed=1))
    assert m.attribute(n_draws=20).json == m2.attribute(n_draws=20).json
    assert m.counts_.equals(m2.counts_)


@pytest.mark.parametrize("kwargs, match", [
    ({"order": 5}, "order must be"), ({"order": "two"}, "order must be"),
    ({"prior": -1}, "prior must be")])
def test_bad_parameters(kwargs, match):
    with pytest.raises(OptionError, match=match):
        MarkovJourneyModel(**kwargs).fit(journeys_from_codes(*TEXTBOOK))


def test_user_errors():
    m = MarkovJourneyModel()
    with pytest.raises(NotFittedError, match="not fitted"):
        m.attribution()
    with pytest.raises(InputError, match="no journey has ended"):
        m.fit(journeys_from_codes([["a"]], ["censored"]))
    with pytest.raises(InputError, match="no journey has a touchpoint"):
        m.fit(journeys_from_codes([[]], ["conversion"]))
    m.fit(journeys_from_codes(*TEXTBOOK))
    with pytest.raises(OptionError, match="attribution method"):
        m.attribution("magic")
    with pytest.raises(OptionError, match="ci must be"):
        m.attribution(ci=1.5)
    with pytest.raises(OptionError, match="n must be"):
        m.simulate(0)


def test_sparse_and_dense_solvers_agree(monkeypatch):
    import journeymodel.models.markov.chain as mc

    m = MarkovJourneyModel(order=2).fit(random_journeys(7, n=300))
    dense = m.attribution(n_draws=30, seed=2, intervals="draws")
    dense_shap = m.attribution("shapley")
    monkeypatch.setattr(mc, "_DENSE_MAX", 0)
    sparse = m.attribution(n_draws=30, seed=2, intervals="draws")
    np.testing.assert_allclose(sparse.removal_effect, dense.removal_effect, rtol=1e-9)
    np.testing.assert_allclose(sparse.conversions_low, dense.conversions_low, rtol=1e-8)
    np.testing.assert_allclose(m.attribution("shapley").conversions, dense_shap.conversions,
                               rtol=1e-8)


def test_chunked_counting_equals_whole():
    from journeymodel.stats.transitions import count_transitions_chunked

    js = random_journeys(8, n=500)
    for order in (1, 3):
        whole = count_transitions(js, order)
        assert count_transitions_chunked(js, order, chunk_events=97).equals(whole)


def test_preconditioned_iteration_matches_direct_solves(monkeypatch):
    """Order-3 chain, a few posterior draws: the mean-preconditioned iteration used for
    intervals of mid-sized chains gives the direct sparse and dense solves' start values."""
    import journeymodel.models.markov.chain as mc
    from journeymodel.models.markov.attribution import channel_masks

    m = MarkovJourneyModel(order=3).fit(random_journeys(11, n=400))
    chain = m.chain_
    removed = np.vstack([np.zeros((1, chain.n), bool),
                         channel_masks(m.state_codes_, len(m.journeys_.touchpoints))])
    data = mc.draw_rows(chain.conc, 12, np.random.default_rng(4))
    conv = np.array([chain.n + chain.absorbing.index("conversion")] * 2)
    weights = np.vstack([np.ones(chain.n), np.linspace(1.0, 50.0, chain.n)])
    rows = np.repeat(np.arange(chain.n), np.diff(chain.conc.indptr))
    q = chain.conc.indices < chain.n
    qr, qc, qd = rows[q], chain.conc.indices[q], data[:, q]
    rhs = np.zeros((12, chain.n, 2))
    sel = chain.conc.indices == conv[0]
    for j in range(2):
        rhs[:, rows[sel], j] = data[:, sel] * weights[j][rows[sel]]
    direct = mc._sparse_start(chain.n, qr, qc, qd, rhs, removed, 0)
    dense = mc._dense_start(chain.n, qr, qc, qd, rhs, removed, 0)
    iterated = mc._iterative_start(chain.n, qr, qc, qd, rhs, removed, 0)
    np.testing.assert_allclose(direct, dense, rtol=1e-9)
    np.testing.assert_allclose(iterated, direct, rtol=1e-10, atol=1e-14)
    assert direct[:, 1:, 0].min() < direct[:, 0, 0].min()  # removals change the values
    keep = np.flatnonzero(~removed[1])  # the iteration itself converges (no fallback used)
    A = np.eye(chain.n)
    A[qr, qc] -= qd.mean(axis=0)
    minv = np.linalg.inv(A[np.ix_(keep, keep)]).astype(np.float32)
    Q = mc.interleaved_blocks(chain.n, qr, qc, qd)
    x, done = mc._precond_iterate(Q, np.ascontiguousarray(rhs.transpose(1, 0, 2)), keep, minv)
    assert done.all()
    np.testing.assert_allclose(x[:, 0], direct[:, 1], rtol=1e-10, atol=1e-14)
    # through the public API: the new path (forced on) vs the direct sparse solves
    monkeypatch.setattr(mc, "_DENSE_MAX", 0)
    monkeypatch.setattr(mc, "_PRECOND_MIN_DRAWS", 1)
    new = m.attribution(n_draws=10, seed=3, intervals="draws")
    monkeypatch.setattr(mc, "_PRECOND_MAX", 0)
    old = m.attribution(n_draws=10, seed=3, intervals="draws")
    np.testing.assert_allclose(new.conversions_low, old.conversions_low, rtol=1e-8)
    np.testing.assert_allclose(new.conversions_high, old.conversions_high, rtol=1e-8)
    np.testing.assert_allclose(new.removal_effect_low, old.removal_effect_low, rtol=1e-8)
    # a draw that cannot converge in the allowed steps falls back to the direct solve
    monkeypatch.setattr(mc, "_ITER_MAX", 1)
    np.testing.assert_allclose(mc._iterative_start(chain.n, qr, qc, qd, rhs, removed, 0),
                               direct, rtol=1e-10, atol=1e-14)


def test_large_chains_by_iteration_match_direct_solves(monkeypatch):
    """Issue 20: chains above _PRECOND_MAX (order 4) are solved by BiCGSTAB, checked to a
    relative residual of 1e-12 (sparse LU fills in almost densely there): the point estimate
    and a few draws equal the direct sparse solves'."""
    import journeymodel.models.markov.chain as mc

    m = MarkovJourneyModel(order=3).fit(random_journeys(11, n=400))
    monkeypatch.setattr(mc, "_DENSE_MAX", 0)
    monkeypatch.setattr(mc, "_PRECOND_MAX", 0)
    new_point = m.attribution(n_draws=0)
    new_draws = m.attribution(n_draws=20, seed=1, intervals="draws")
    monkeypatch.setattr(mc, "_PRECOND_MAX", 10**9)
    monkeypatch.setattr(mc, "_PRECOND_MIN_DRAWS", 10**9)  # direct sparse solves
    old_point = m.attribution(n_draws=0)
    old_draws = m.attribution(n_draws=20, seed=1, intervals="draws")
    np.testing.assert_allclose(new_point.removal_effect, old_point.removal_effect, rtol=1e-9)
    np.testing.assert_allclose(new_point.value, old_point.value, rtol=1e-9)
    np.testing.assert_allclose(new_draws.conversions_low, old_draws.conversions_low, rtol=1e-9)
    np.testing.assert_allclose(new_draws.conversions_high, old_draws.conversions_high,
                               rtol=1e-9)


def test_unseen_window_backs_off_to_the_lower_order():
    """Issue 17: an in-flight window never seen in training takes the values of the windows
    sharing its last touchpoint(s), weighted by visits (before: NaN); an unknown touchpoint
    still gives NaN."""
    from journeymodel.models.markov.predict import state_of_journeys

    train = journeys_from_codes([["a", "b", "c"], ["b", "c"], ["c", "a", "b"], ["a", "b"],
                                 ["b", "a"]],
                                ["conversion", "dropoff", "conversion", "dropoff", "dropoff"])
    m = MarkovJourneyModel(order=2).fit(train)
    labels = m.state_labels()
    flight = journeys_from_codes([["c", "a", "c"], ["a", "x"], ["a", "b"]], ["censored"] * 3)
    res = state_of_journeys(m, flight)
    # (a > c) was never seen: the full windows ending in c are (b > c) only
    bc = labels.index("b > c")
    assert res["p_conversion"][0] == pytest.approx(m.p_conversion_[bc])
    assert res["next"][0] == pytest.approx(state_of_journeys(
        m, journeys_from_codes([["b", "c"]], ["censored"]))["next"][0])
    assert res["backoff"].tolist() == [1, 0, 0]
    assert res["known"].tolist() == [True, False, True]
    assert np.isnan(res["p_conversion"][1])
    assert res["p_conversion"][2] == m.p_conversion_[labels.index("a > b")]
    # (a > a) was never seen; (c > a) and (b > a) end in a: it takes their visit-weighted mean
    res2 = state_of_journeys(m, journeys_from_codes([["b", "a", "a"]], ["censored"]))
    ca, ba = labels.index("c > a"), labels.index("b > a")
    v = np.bincount(np.searchsorted(m.chain_.keys, m.counts_.from_key),
                    weights=m.counts_.count, minlength=m.chain_.n)
    expect = np.average(m.p_conversion_[[ca, ba]], weights=v[[ca, ba]])
    assert res2["p_conversion"][0] == pytest.approx(expect)
    assert np.allclose(res2["next"][0].sum(), 1.0)
    out = m.predict(journeys_from_codes([["c", "a", "c"]], ["censored"]))
    assert out.json["n_backed_off"] == 1 and out.json["n_unknown_state"] == 0
    assert any("back off" in n for n in out.notes)
