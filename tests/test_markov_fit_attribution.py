"""MarkovJourneyModel.fit_attribution (issue 20: what ``attribute EVENTS`` fits): the same
attribution as fit(), every method, order and option, on a log with in-flight journeys; the
summary, model file and experience of such a model raise NotFittedError; fit() afterwards
makes the whole model. Also what makes it fast and must not change a bit: no dwell times,
heuristics over converting journeys only, the holding times on another thread, bin_of's
table, the holding EM's rank-block sums, the censored EM's tabled survivals."""

from __future__ import annotations

import json

import known_process as kp
import numpy as np
import pytest

from journeymodel.errors import NotFittedError
from journeymodel.models.markov.model import MarkovJourneyModel
from journeymodel.stats.transitions import transition_stats


def journeys():
    f = kp.simulate(3000, 5, span=60.0, p=kp.P)
    return kp.journeys(kp.cut(f, kp.cut_for_share(f, 0.3, span=60.0)))


@pytest.mark.parametrize("order, options", [
    (1, {}), (2, {"collapse_repeats": False}), (3, {"prior": 0.5}),
    (1, {"censored": "ignore"}), ("auto", {})])
def test_same_attribution_as_fit(order, options):
    js = journeys()
    whole = MarkovJourneyModel(order=order, **options).fit(js)
    part = MarkovJourneyModel(order=order, **options).fit_attribution(js)
    assert part.order_ == whole.order_
    for method, draws in (("removal", 300), ("shapley", 0), ("first", 0), ("linear", 0)):
        a = whole.attribution(method, n_draws=draws, seed=3).to_json()
        b = part.attribution(method, n_draws=draws, seed=3).to_json()
        assert json.dumps(a) == json.dumps(b), method
    assert np.array_equal(part.conversion_value_, whole.conversion_value_)
    assert part.journeys_ == whole.journeys_


def test_summary_file_and_experience_need_the_whole_fit(tmp_path):
    js = journeys()
    m = MarkovJourneyModel().fit_attribution(js)
    for use in (m.summary, lambda: m.save(tmp_path / "m.nc"), lambda: m.experience_):
        with pytest.raises(NotFittedError, match="fitted for attribution only"):
            use()
    assert not (tmp_path / "m.nc").exists()
    m.fit(js)  # the whole fit afterwards: summary and file as usual
    assert m.summary().json["order"] == 1
    assert m.save(tmp_path / "m.nc").exists()


def test_statistics_without_experience_add_up_without_it():
    js = journeys()
    a = transition_stats(js, 1, experience=False)
    b = transition_stats(js, 1)
    assert a.experience is None and (a + b).experience is None
    assert (a + a).equals(transition_stats(js, 1, experience=False) + a)
    assert not a.equals(b)


def test_statistics_without_dwell_count_the_same_transitions():
    """dwell=False (what fit_attribution counts): the same transitions, bit for bit, no dwell
    times (as without timestamps); such counts still add up, chunked or not."""
    from journeymodel.stats.transitions import count_transitions, count_transitions_chunked

    js = journeys()
    for order in (1, 2, 3):
        with_dwell = count_transitions(js, order)
        lean = count_transitions(js, order, dwell=False)
        for name in ("from_key", "to_key", "count", "value"):
            assert getattr(lean, name).tobytes() == getattr(with_dwell, name).tobytes()
        assert len(with_dwell.dwell_key) > 0
        assert len(lean.dwell_key) == len(lean.dwell_sum) == len(lean.dwell_n) == 0
        chunked = count_transitions_chunked(js, order, chunk_events=997, dwell=False)
        assert chunked.equals(lean) and len(chunked.dwell_key) == 0
    m = MarkovJourneyModel().fit_attribution(js)
    assert len(m.counts_.dwell_key) == 0
    assert len(MarkovJourneyModel().fit(js).counts_.dwell_key) > 0


def _heuristics_by_loop(js):
    """First/last/linear totals by a plain loop over journeys (independent reference)."""
    from journeymodel.data.journeyset import CONVERSION

    T = len(js.touchpoints)
    conv, value = np.zeros((3, T)), np.zeros((3, T))
    for j in range(js.n_journeys):
        path = js.codes[js.offsets[j]:js.offsets[j + 1]]
        if js.outcome[j] != CONVERSION or len(path) == 0:
            continue
        w, v = js.weight[j], js.value[j] * js.weight[j]
        for row, credit in ((0, {path[0]: 1.0}), (1, {path[-1]: 1.0})):
            for c, share in credit.items():
                conv[row, c] += w * share
                value[row, c] += v * share
        for c in path:
            conv[2, c] += w / len(path)
            value[2, c] += v / len(path)
    return conv, value


def test_heuristic_totals_count_converting_journeys_only():
    """heuristic_totals over converting journeys alone: a plain loop's totals (weights and
    values of both signs), and the same bits as summing every journey's (zero) credit too."""
    from dataclasses import replace

    from journeymodel.data.journeyset import CONVERSION
    from journeymodel.stats.transitions import heuristic_totals

    rng = np.random.default_rng(5)
    js = journeys()
    js = replace(js, weight=rng.uniform(0.2, 3.0, js.n_journeys),
                 value=rng.normal(0.0, 50.0, js.n_journeys))
    conv, value = heuristic_totals(js)
    want_c, want_v = _heuristics_by_loop(js)
    assert np.allclose(conv, want_c, rtol=1e-12) and np.allclose(value, want_v, rtol=1e-12)
    # every journey, zeros for those that do not convert (the sums before issue 20)
    T = len(js.touchpoints)
    ok = (js.outcome == CONVERSION) & (js.lengths > 0)
    w = np.where(ok, js.weight, 0.0)
    v = np.where(ok, js.value * js.weight, 0.0)
    per = np.repeat(1.0 / np.maximum(js.lengths, 1), js.lengths)
    has = js.lengths > 0
    first = js.codes[js.offsets[:-1][has]]
    assert np.bincount(first, weights=w[has], minlength=T).tobytes() == conv[0].tobytes()
    assert np.bincount(first, weights=v[has], minlength=T).tobytes() == value[0].tobytes()
    linear = np.bincount(js.codes, weights=np.repeat(w, js.lengths) * per, minlength=T)
    assert np.allclose(linear, conv[2], rtol=1e-12)


@pytest.mark.parametrize("sort", [True, False])
def test_rank_block_sums_are_add_at_bit_for_bit(sort):
    """The holding-time EM's per-touchpoint sums (issue 20: a block per rank): the same bits
    as np.add.at, whatever the order of the rows; rows without values stay as they were."""
    from journeymodel.stats import holding

    rng = np.random.default_rng(11)
    rows = rng.integers(0, 9, 400)
    rows = np.sort(rows) if sort else rows
    values = rng.lognormal(0, 12, (400, 5)) * rng.choice([-1.0, 1.0], (400, 5))
    want = np.zeros((10, 5))
    np.add.at(want, rows, values)
    got = holding._add_rows(np.zeros((10, 5)), holding._rank_groups(rows), values)
    assert got.tobytes() == want.tobytes()
    empty = holding._rank_groups(np.zeros(0, np.int64))
    assert empty.n_ranks == 0
    assert np.array_equal(holding._add_rows(np.ones((3, 5)), empty, np.zeros((0, 5))),
                          np.ones((3, 5)))


@pytest.mark.parametrize("kind", ["datetime", "period"])
def test_bins_from_the_table_are_exact(kind):
    """bin_of by its bucket table agrees with a binary search on every time: on an edge, one
    float either side, far below and above the grid, negatives, zeros, infinities; NaN in the
    last bin. Edges that the table does not take (a gap's repeated edges) search."""
    from journeymodel.stats.holding import bin_of, grid_edges, support_edges

    rng = np.random.default_rng(2)
    for e in (grid_edges(kind), support_edges(kind, 3600.0), np.array([0.0, 1.0, 2.0, 4.0])):
        inner = e[1:][np.isfinite(e[1:])]
        t = np.concatenate([inner, np.nextafter(inner, -np.inf), np.nextafter(inner, np.inf),
                            -inner, 10.0 ** rng.uniform(-15, 15, 50_000),
                            rng.normal(0, 1e4, 5000),
                            [0.0, -0.0, 5e-324, 1e-300, 1e300, np.inf, -np.inf, np.nan]])
        want = np.clip(np.searchsorted(e, t, "right") - 1, 0, len(e) - 2)
        want[np.isnan(t)] = len(e) - 2
        got = bin_of(t, e)
        assert got.dtype == np.int64 and np.array_equal(got, want)


@pytest.mark.parametrize("n_targets", [12, 600])  # 600: beyond the dense cell space
def test_parts_leave_out_the_entries_named(n_targets):
    """A _group_parts part with entries to leave out counts as the part without them (the
    moves of holding_stats, given as shifted slices of the events)."""
    from journeymodel.stats import holding

    rng = np.random.default_rng(n_targets)
    n, T = 4000, n_targets - 2
    src, dst = rng.integers(0, T, n), rng.integers(0, T, n)
    dt, w = rng.lognormal(8, 3, n), rng.uniform(0.1, 3.0, n)
    dt[rng.random(n) < 0.05] = np.nan
    skip = np.flatnonzero(rng.random(n) < 0.2)
    keep = np.ones(n, bool)
    keep[skip] = False
    edges = holding.grid_edges("datetime")
    for weight in (None, w):
        got = holding._group_parts([(src, dst, dt, weight, skip)], edges, n_targets,
                                   len(edges) - 1)
        want = holding._group_parts([(src[keep], dst[keep], dt[keep],
                                      None if weight is None else weight[keep])],
                                    edges, n_targets, len(edges) - 1)
        for a, b in zip(got, want, strict=True):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_holding_times_on_another_thread_are_the_same_bits(monkeypatch):
    """fit_attribution fits the holding times on a pool thread while it counts transitions:
    the same holding times, expected counts and attribution as one after the other (one
    core), and as fit()."""
    import journeymodel.models.markov.chain as chain

    js = journeys()
    threaded = MarkovJourneyModel(order=2).fit_attribution(js)
    monkeypatch.setattr(chain, "pool_threads", lambda: 1)
    serial = MarkovJourneyModel(order=2).fit_attribution(js)
    whole = MarkovJourneyModel(order=2).fit(js)
    for other in (serial, whole):
        for name in ("cdf", "pair_n", "p_next", "p_dropoff"):
            assert getattr(threaded.holding_, name).tobytes() == (
                getattr(other.holding_, name).tobytes())
        for name in ("from_key", "to_key", "count"):
            assert getattr(threaded.expected_counts_, name).tobytes() == (
                getattr(other.expected_counts_, name).tobytes())
        a = threaded.attribution("removal", n_draws=200, seed=1).to_json()
        assert json.dumps(a) == json.dumps(other.attribution("removal", n_draws=200,
                                                             seed=1).to_json())


def test_an_error_of_the_holding_thread_reaches_the_caller(monkeypatch):
    import journeymodel.stats.holding as holding

    def broken(journeys):
        raise MemoryError("holding statistics")

    monkeypatch.setattr(holding, "holding_stats", broken)
    with pytest.raises(MemoryError, match="holding statistics"):
        MarkovJourneyModel().fit_attribution(journeys())


def test_paths_without_times_fit_without_holding_times():
    """Journeys without timestamps (a path table): no holding times, no thread; the same
    attribution as fit()."""
    from journeymodel.data.journeys import journeys_from_codes

    js = journeys_from_codes([["a", "b"], ["b"], ["a", "c", "b"], ["c"]] * 50,
                             ["conversion", "dropoff", "conversion", "dropoff"] * 50)
    part = MarkovJourneyModel().fit_attribution(js)
    whole = MarkovJourneyModel().fit(js)
    assert part.holding_ is None and whole.holding_ is None
    for method in ("removal", "first", "linear"):
        a = part.attribution(method, n_draws=100, seed=2).to_json()
        b = whole.attribution(method, n_draws=100, seed=2).to_json()
        assert json.dumps(a) == json.dumps(b), method


@pytest.mark.parametrize("collapse", [True, False])
def test_survivals_from_the_table_are_each_entrys_own(collapse):
    """The censored EM's survivals gathered from the (touchpoint, next event, bin) table are
    the same bits as each entry's sf at its bin's middle (the computation they replace)."""
    from journeymodel.models.markov import censoring

    js = journeys()
    for order in (1, 2, 3):
        m = MarkovJourneyModel(order=order, collapse_repeats=collapse).fit_attribution(js)
        h, counts = m.holding_, m.counts_
        base = len(counts.touchpoints) + 1
        keep = np.flatnonzero(counts.to_key != -3)
        f, t = counts.from_key[keep], counts.to_key[keep]
        rng = np.random.default_rng(order)
        entry = rng.integers(0, len(f), 5000)
        bins = rng.integers(0, len(h.edges) - 1, 5000)
        got = censoring._survival(f, t, entry, bins, h, base, order, collapse)
        # each entry on its own, as before the table
        T = len(h.touchpoints)
        e = np.minimum(censoring.bin_middles(h.edges)[bins], np.nextafter(h.edges[-1], 0))
        a = np.where(f == 0, 0, f % base - 1)
        target = np.where(t >= 0, t % base - 1, np.where(t == -1, T, T + 1))
        drop = t == -2
        s_k = np.where(drop[entry], 1.0,
                       h.sf(a[entry], np.where(drop, 0, target)[entry], e))
        start = (f == 0)[entry]
        if collapse:
            r = censoring._repeat_probability(f, a, h, base, order)[entry]
            s_k = r * h.sf(a[entry], a[entry], e) + (1.0 - r) * s_k
        want = np.where(start, 1.0, s_k)
        assert got.tobytes() == want.tobytes()
