"""Holding times (issue 17): the additive statistic, the smoothed empirical fit with back-off,
censored last events allocated by EM, and the contract D's forecast uses (sf, sample, mean,
to_dataset / from_dataset)."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import known_process as kp
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from stats_helpers import split_parts

from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import journeys_from_codes, load_journeys
from journeymodel.errors import ModelFileError, OptionError
from journeymodel.stats.holding import HoldingStats, HoldingTimes, fit_holding, holding_stats

PROPERTY = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
DAY = 86400.0


@cache
def demo():
    return load_journeys(make_demo_data(300, seed=3).events)


@cache
def known(share: float, n: int = 20000, seed: int = 1):
    """The known process with starts over 60 days, cut to leave ``share`` in flight."""
    frame = kp.simulate(n, seed, span=60.0)
    return kp.journeys(kp.cut(frame, kp.cut_for_share(frame, share, span=60.0)))


@st.composite
def split(draw):
    js = demo()
    if draw(st.booleans()):
        js = replace(js, weight=np.random.default_rng(0).choice([0.0, 0.5, 1.0, 2.5],
                                                                js.n_journeys))
    by_customer = draw(st.booleans())
    n = len(js.customers) if by_customer else js.n_journeys
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    parts = split_parts(js, rng.integers(0, draw(st.integers(1, 5)), n), by_customer)
    return js, [parts[i] for i in rng.permutation(len(parts))]


@PROPERTY
@given(split())
def test_parts_add_up_to_the_whole(case):
    whole, parts = case
    total = sum(holding_stats(p) for p in parts)
    assert total.equals(holding_stats(whole))
    a, b = fit_holding(total), fit_holding(holding_stats(whole))
    assert a.touchpoints == b.touchpoints
    assert np.array_equal(a.pair_src, b.pair_src) and np.array_equal(a.pair_dst, b.pair_dst)
    assert np.allclose(a.cdf, b.cdf) and np.allclose(a.p_next, b.p_next)


def test_settings_must_match_and_times_are_needed():
    js = demo()
    s = holding_stats(js)
    with pytest.raises(OptionError, match="same time axis and gap"):
        s + holding_stats(replace(js, gap=7 * DAY))
    with pytest.raises(OptionError, match="holding times need timestamps"):
        holding_stats(journeys_from_codes([["a", "b"]], ["conversion"]))
    assert (0 + s) is s


def test_recovers_known_holding_times_and_dropoff():
    """Complete journeys (nothing in flight): the smoothed distribution is within 0.03 of the
    true gamma survival, its mean within 6%, P(drop-off) within 0.01."""
    h = fit_holding(holding_stats(known(0.0)))
    assert np.allclose(h.p_dropoff, kp.P[:, 4], atol=0.01)
    for a in range(3):
        for k in range(4):
            if kp.P[a, k] == 0:
                continue
            true = sps.gamma(kp.SHAPE[a, k], scale=kp.MEAN_DAYS[a, k] / kp.SHAPE[a, k])
            t = np.array([0.25, 0.5, 1, 2, 4, 8]) * DAY
            assert np.abs(h.sf(a, k, t) - true.sf(t / DAY)).max() < 0.03, (a, k)
            assert h.mean(a, k) / DAY == pytest.approx(kp.MEAN_DAYS[a, k], rel=0.06)


@pytest.mark.parametrize("share", [0.15, 0.4])
def test_censored_last_events_do_not_bias_dropoff(share):
    """Logs cut mid-stream: counting drop-offs among ended journeys only is biased low (by a
    quarter at 40% in flight); EM on the censored last events recovers the truth."""
    js = known(share)
    s = holding_stats(js)
    h = fit_holding(s)
    src, _, table = s.pair_table()
    moves = np.bincount(src, weights=table.sum(axis=1), minlength=3)
    naive = s.dropoff / (moves + s.dropoff)
    assert np.all(naive < kp.P[:, 4] - 0.008)
    assert np.allclose(h.p_dropoff, kp.P[:, 4], atol=0.012)
    true = sps.gamma(kp.SHAPE[0, 1], scale=kp.MEAN_DAYS[0, 1] / kp.SHAPE[0, 1])
    t = np.array([0.5, 2, 5]) * DAY
    assert np.abs(h.sf(0, 1, t) - true.sf(t / DAY)).max() < 0.03


def test_sample_conditions_on_elapsed_time_and_is_seeded():
    h = fit_holding(holding_stats(known(0.0)))
    src, dst = np.zeros(40000, int), np.ones(40000, int)
    elapsed = np.where(np.arange(40000) % 2 == 0, 0.0, 2 * DAY)
    x = h.sample(src, dst, elapsed, np.random.default_rng(5))
    assert np.all(x > elapsed)
    assert np.array_equal(x, h.sample(src, dst, elapsed, np.random.default_rng(5)))
    late = x[elapsed > 0]
    for t in np.array([3.0, 5.0, 8.0]) * DAY:  # P(T > t | T > 2 days) = sf(t) / sf(2 days)
        expect = h.sf(0, 1, t) / h.sf(0, 1, 2 * DAY)
        assert np.mean(late > t) == pytest.approx(expect, abs=0.012)
    fresh = x[elapsed == 0]
    assert np.mean(fresh > DAY) == pytest.approx(h.sf(0, 1, DAY), abs=0.012)
    # past the end of the support (the gap) there is nothing left: the next float above
    beyond = h.sample([0], [1], [20 * DAY], np.random.default_rng(0))
    assert beyond[0] == np.nextafter(20 * DAY, np.inf)


def test_mean_is_the_integral_of_the_survival():
    h = fit_holding(holding_stats(known(0.0)))
    t = np.linspace(0, kp.GAP_DAYS * DAY, 200001)
    for a, k in [(0, 1), (1, 3), (2, 0)]:
        sf = h.sf(a, k, t)
        integral = np.sum((sf[1:] + sf[:-1]) / 2 * np.diff(t))
        assert h.mean(a, k) == pytest.approx(integral, rel=1e-3)


def test_support_ends_at_the_gap():
    h = fit_holding(holding_stats(known(0.0)))
    assert h.gap == kp.GAP_DAYS * DAY
    assert np.all(h.sf([0, 1, 2], [1, 0, 3], h.gap) == 0)
    assert np.all(h.sf([0, 1, 2], [1, 0, 3], 0.0) == 1)


def test_pairs_back_off_to_their_touchpoint():
    """A pair never seen uses its touchpoint's pooled distribution; a pair seen once is pulled
    most of the way towards it (10 pseudo-observations against 1)."""
    js = known(0.0)
    h = fit_holding(holding_stats(js))
    t = np.array([0.5, 1, 2, 4]) * DAY
    # a_web -> a_web never happens (no self-loops): it is a_web's pooled distribution
    assert np.allclose(h.sf(0, 0, t), 1 - h._cdf_at(np.full(4, 1), t))
    one = np.flatnonzero((js.outcome == 2) & (js.lengths == 1))[:1]  # a short drop-off
    tail = replace(js.take(one), outcome=np.array([1], np.int8),
                   end=js.take(one).times + 9 * DAY)  # now a churn 9 days later: seen once
    s = holding_stats(js.take(np.flatnonzero(js.outcome != 2))) + holding_stats(tail)
    h2 = fit_holding(s)
    src = int(tail.codes[0])
    pooled = 1 - h2._cdf_at(np.full(4, 1 + src), t)
    one_seen = h2.sf(src, 4, t)  # (1 x step at 9 days + 10 x pooled) / 11
    assert np.allclose(one_seen, (10 * pooled + 1) / 11, atol=0.01)


def test_round_trip_and_damaged_files(tmp_path):
    h = fit_holding(holding_stats(demo()))
    ds = h.to_dataset()
    ds.to_netcdf(tmp_path / "h.nc")
    back = HoldingTimes.from_dataset(xr.load_dataset(tmp_path / "h.nc"))
    xr.testing.assert_identical(back.to_dataset(), ds)
    t = np.array([60.0, 3600, 86400, 7 * 86400])
    assert np.array_equal(back.sf(0, 1, t), h.sf(0, 1, t))
    with pytest.raises(ModelFileError, match="missing variable 'cdf'"):
        HoldingTimes.from_dataset(ds.drop_vars("cdf"))
    bad = ds.copy(deep=True)
    bad["cdf"].values[3, 5] = 2.0
    with pytest.raises(ModelFileError, match="every cdf row must rise from 0 to 1"):
        HoldingTimes.from_dataset(bad)
    bad = ds.copy(deep=True)
    bad["pair_src"].values[0] = 99
    with pytest.raises(ModelFileError, match="out of range"):
        HoldingTimes.from_dataset(bad)
    with pytest.raises(OptionError, match="src must be in"):
        h.sf(len(h.touchpoints), 0, 1.0)


def test_empty_statistic_fits_a_flat_distribution():
    s = HoldingStats("period", None, ("a",), *(np.zeros(0, np.int64),) * 3, np.zeros(0),
                     np.zeros(1), np.zeros((1, 82)))
    h = fit_holding(s)
    assert h.p_dropoff.tolist() == [1.0]
    assert 0 < float(h.sf(0, 1, 10.0)) < 1


def test_models_carry_holding_times(tmp_path):
    """Markov and stages models have ``holding_`` after fit, fit_stats and load_model, the same
    distributions each way (the contract of issue 17's forecast)."""
    from journeymodel.io.persist import load_model
    from journeymodel.models.markov.model import MarkovJourneyModel
    from journeymodel.models.stages.model import StageModel

    js = demo()
    want = fit_holding(holding_stats(js)).to_dataset()
    for model in (MarkovJourneyModel(order=2), StageModel(n_stages=2, restarts=1, seed=0)):
        fitted = model.fit(js)
        xr.testing.assert_identical(fitted.holding_.to_dataset(), want)
        half = np.arange(js.n_journeys) % 2 == 0
        stats = type(model)(**model.get_params()).stats_of(js.take(half)) + type(model)(
            **model.get_params()).stats_of(js.take(~half))
        from_stats = type(model)(**model.get_params()).fit_stats(stats)
        assert np.allclose(from_stats.holding_.cdf, fitted.holding_.cdf)
        back = load_model(fitted.save(tmp_path / f"{fitted.model_type}.nc"))
        xr.testing.assert_identical(back.holding_.to_dataset(), want)
        assert back.holding_.gap == js.gap and back.holding_.time_kind == "datetime"
    paths = MarkovJourneyModel().fit(journeys_from_codes([["a", "b"]], ["conversion"]))
    assert paths.holding_ is None


@pytest.mark.parametrize("kind", ["datetime", "period"])
def test_bins_from_logarithms_are_exact(kind):
    """bin_of (a logarithm, corrected at the edges) agrees with a binary search everywhere,
    times on an edge and one float either side of it included."""
    from journeymodel.stats.holding import bin_of, grid_edges, support_edges

    rng = np.random.default_rng(0)
    for e in (grid_edges(kind), support_edges(kind, 14 * DAY)):
        inner = e[1:-1][np.isfinite(e[1:-1])]
        t = np.concatenate([inner, np.nextafter(inner, 0), np.nextafter(inner, np.inf),
                            rng.exponential(1e5, 100_000), np.arange(5000.0),
                            [0.0, -1.0, 0.5, 1e12, np.inf]])
        want = np.clip(np.searchsorted(e, t, "right") - 1, 0, len(e) - 2)
        assert np.array_equal(bin_of(t, e), want)


def _reference_quantile(h, rows, u):
    """The inverse CDF by one binary search over the whole offset table (the first version
    of ``HoldingTimes._quantile``, kept as the reference of the guide table)."""
    nb = h.cdf.shape[1]
    flat = (h.cdf + 2.0 * np.arange(len(h.cdf))[:, None]).ravel()
    j = np.searchsorted(flat, (u + 2.0 * rows).ravel(), "right") - 1
    b = np.clip(j - rows.ravel() * nb, 0, nb - 2).reshape(rows.shape)
    c0, c1 = h.cdf[rows, b], h.cdf[rows, b + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip(np.nan_to_num((u - c0) / (c1 - c0), nan=0.0), 0.0, 1.0)
    lo, hi = h.edges[b], h.edges[b + 1]
    with np.errstate(divide="ignore"):
        log_t = np.log(np.maximum(lo, 1e-300)) + frac * np.log(hi / np.maximum(lo, 1e-300))
    return np.where(b == 0, frac * hi, np.exp(log_t))


@pytest.mark.parametrize("which", ["known", "demo"])
def test_quantile_by_guide_table_is_the_binary_search(which):
    """The guide table (built once) finds the same bin as a binary search over the whole
    table, bit for bit, at every cdf value, one float either side of it, 0, 1 and at random;
    and the quantile inverts the cdf."""
    h = fit_holding(holding_stats(known(0.0) if which == "known" else demo()))
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(len(h.cdf)), h.cdf.shape[1])
    at = h.cdf.ravel()
    u = np.concatenate([at, np.nextafter(at, 0), np.nextafter(at, 2), rng.random(len(at)),
                        np.zeros(len(h.cdf)), np.ones(len(h.cdf))])
    u = np.clip(u, 0.0, 1.0)
    rows = np.concatenate([rows, rows, rows, rows, np.arange(len(h.cdf)),
                           np.arange(len(h.cdf))])
    got = h._quantile(rows, u)
    assert np.array_equal(got, _reference_quantile(h, rows, u))
    inner = (u > 1e-6) & (u < 1 - 1e-6)
    assert np.allclose(h._cdf_at(rows[inner], got[inner]), u[inner], atol=1e-9)


def test_sample_without_elapsed_time_is_the_general_case():
    """Moves after the first (elapsed 0) skip F(elapsed): the same draws as the general path
    (F(0) = 0), bit for bit, and the same stream of uniforms from the rng."""
    h = fit_holding(holding_stats(demo()))
    n = 50_000
    rng = np.random.default_rng(1)
    src = rng.integers(0, len(h.touchpoints), n)
    dst = rng.integers(0, len(h.targets), n)
    fast = h.sample(src, dst, np.zeros(n), np.random.default_rng(7))
    general = h.sample(np.append(src, 0), np.append(dst, 0), np.append(np.zeros(n), DAY),
                       np.random.default_rng(7))
    assert np.array_equal(fast, general[:n])
    assert np.all(fast > 0)
