"""Forecasting the journeys in flight (issue 17): :mod:`journeymodel.analysis.forecast`.

Hand-computed cases use a test double of the holding times with exponential distributions
(:class:`ExpHolding`), whose answers are closed forms: in a one-step chain (touchpoint ``a``,
then conversion with probability ``p`` or drop-off), a journey silent for ``e`` converts next
with probability ``p' = p S(e) / (p S(e) + 1 - p)``, and (memoryless) within ``H`` with
``p' (1 - exp(-rate H))``.
"""

import numpy as np
import pandas as pd
import pytest

from journeymodel.analysis.forecast import (
    continuation_chunks,
    forecast_in_flight,
    journeys_as_of,
    parse_horizon,
    prepare,
)
from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import journeys_from_codes, load_journeys
from journeymodel.errors import OptionError
from journeymodel.models.markov.model import MarkovJourneyModel
from journeymodel.models.stages.model import StageModel

DAY = 86400.0
RATE = 1 / (5 * DAY)  # mean holding time 5 days
P = 0.6


class ExpHolding:
    """Exponential holding times, ``rate`` per (touchpoint, target) (the contract of
    ``journeymodel.stats.holding.HoldingTimes``)."""

    def __init__(self, touchpoints, rate, gap=None):
        self.touchpoints = tuple(touchpoints)
        self.targets = self.touchpoints + ("conversion", "churn")
        self.rate = np.broadcast_to(np.asarray(rate, float),
                                    (len(self.touchpoints), len(self.targets)))
        self.gap = gap
        self.time_kind = "datetime"

    def sf(self, src, dst, t):
        return np.exp(-self.rate[src, dst] * np.asarray(t, float))

    def sample(self, src, dst, elapsed, rng):
        return np.asarray(elapsed, float) + rng.exponential(1.0 / self.rate[src, dst])

    def sample_uniform(self, src, dst, elapsed, u):
        return np.asarray(elapsed, float) - np.log1p(-np.asarray(u, float)) / self.rate[src, dst]

    def mean(self, src, dst):
        return 1.0 / self.rate[src, dst]


def one_step_model(gap=None):
    """Touchpoint ``a``, then conversion (P) or drop-off; 10,000 journeys (draws barely vary)."""
    js = journeys_from_codes([["a"], ["a"]], ["conversion", "dropoff"],
                             weights=[P * 10_000, (1 - P) * 10_000])
    model = MarkovJourneyModel().fit(js)
    model.holding_ = ExpHolding(("a",), RATE, gap=gap)
    return model


def in_flight_log(days_silent, *, gap="none", until="2025-03-01", extra=None):
    """One in-flight journey per entry of ``days_silent`` (its one touchpoint ``a`` that many
    days before ``until``)."""
    end = pd.Timestamp(until, tz="UTC")
    rows = [(f"c{i}", end - pd.Timedelta(days=d), "a") for i, d in enumerate(days_silent)]
    rows += extra or []
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "touchpoint"])
    with pytest.warns(Warning, match="no conversion rows") if not any(
            r[2] == "conversion" for r in rows) else _nothing():
        return load_journeys(frame, observed_until=until, gap=gap)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def p_next_conversion(elapsed_days, gap_days=None):
    e = elapsed_days * DAY
    s = np.exp(-RATE * e)
    if gap_days is not None:
        tail = np.exp(-RATE * gap_days * DAY)
        s = (s - tail) / (1 - tail)
    return P * s / (P * s + 1 - P)


def test_elapsed_time_changes_the_forecast_as_computed_by_hand():
    """A customer silent for 20 days is far less likely to convert than one seen yesterday."""
    f = forecast_in_flight(one_step_model(), in_flight_log([1, 20]), "30D", n_draws=4000,
                           seed=1)
    got = f.journeys.set_index("customer_id")["p_conversion"]
    within = 1 - np.exp(-RATE * 30 * DAY)
    assert got["c0"] == pytest.approx(p_next_conversion(1) * within, abs=0.025)
    assert got["c1"] == pytest.approx(p_next_conversion(20) * within, abs=0.01)
    assert got["c1"] < got["c0"] / 10
    # the next event (analytic, no simulation): conversion for c0, drop-off for c1
    nxt = f.journeys.set_index("customer_id")
    assert nxt.loc["c0", "next_touchpoint"] == "conversion"
    assert nxt.loc["c0", "p_next"] == pytest.approx(p_next_conversion(1), rel=1e-3)
    assert nxt.loc["c1", "next_touchpoint"] == "dropoff"
    assert nxt.loc["c1", "p_next"] == pytest.approx(1 - p_next_conversion(20), rel=1e-3)


def test_drop_off_is_declared_at_the_gap_and_holding_times_stay_within_it():
    """Gap 30 days, silent 20: the journey converts (within the gap) or drops off on day 10."""
    f = forecast_in_flight(one_step_model(gap=30 * DAY), in_flight_log([20], gap="30D"),
                           "30D", n_draws=4000, seed=2)
    p_conv = p_next_conversion(20, 30)
    row = f.journeys.iloc[0]
    assert row["p_conversion"] == pytest.approx(p_conv, abs=0.02)
    assert row["p_dropoff"] == pytest.approx(1 - p_conv, abs=0.02)
    assert row["p_conversion"] + row["p_dropoff"] == pytest.approx(1.0)
    # every conversion falls within the 10 days left of the gap
    assert f.daily[:, 10:].sum() == 0 and f.daily.sum() == f.conversions.sum()
    # with a 5-day horizon the drop-off (day 10) lies beyond it
    short = forecast_in_flight(one_step_model(gap=30 * DAY), in_flight_log([20], gap="30D"),
                               "5D", n_draws=500, seed=2)
    assert short.dropoffs.sum() == 0


def test_stages_model_one_stage_matches_the_closed_form():
    js = journeys_from_codes([["a"], ["a"]], ["conversion", "dropoff"],
                             weights=[P * 10_000, (1 - P) * 10_000])
    model = StageModel(n_stages=1, seed=0).fit(js)
    model.holding_ = ExpHolding(("a",), RATE)
    p = model.exitprob_[0, 1] / model.exitprob_[0, [1, 3]].sum()
    assert p == pytest.approx(P, abs=1e-6)
    f = forecast_in_flight(model, in_flight_log([1, 20]), "30D", n_draws=4000, seed=3)
    got = f.journeys["p_conversion"].to_numpy()
    within = 1 - np.exp(-RATE * 30 * DAY)
    assert got[0] == pytest.approx(p_next_conversion(1) * within, abs=0.025)
    assert got[1] == pytest.approx(p_next_conversion(20) * within, abs=0.01)


def two_step_model():
    """a -> b (0.5) or drop-off; b -> conversion (0.8) or drop-off."""
    js = journeys_from_codes([["a", "b"], ["a", "b"], ["a"]], ["conversion", "dropoff",
                                                             "dropoff"],
                             weights=[400, 100, 500])
    model = MarkovJourneyModel().fit(js)
    model.holding_ = ExpHolding(("a", "b"), RATE)
    return model


def test_two_steps_chain_totals_and_days():
    """From a (just seen): P(convert within H) = 0.5 * 0.8 * P(Exp + Exp <= H)."""
    log = in_flight_log([0.0] * 300, extra=[("z", pd.Timestamp("2025-01-01", tz="UTC"), "b")])
    f = forecast_in_flight(two_step_model(), log, "10D", n_draws=200, seed=4)
    h = RATE * 10 * DAY
    erlang = 1 - np.exp(-h) * (1 + h)
    # 300 journeys at a, plus z at b silent 59 days (no gap): converts next w.p. ~0.8 S/(...)
    s = np.exp(-RATE * 59 * DAY)
    z = 0.8 * s / (0.8 * s + 0.2) * (1 - np.exp(-h))
    expected = 300 * 0.5 * 0.8 * erlang + z
    assert f.conversions.mean() == pytest.approx(expected, rel=0.06)
    assert (f.daily.sum(axis=1) == f.conversions).all()
    js = f.summary()
    assert js["conversions"]["low"] <= js["conversions"]["mean"] <= js["conversions"]["high"]
    assert [d["date"] for d in js["daily"]][:2] == ["2025-03-01", "2025-03-02"]
    assert len(js["daily"]) == 10


def test_json_has_exactly_the_keys_of_the_issue():
    f = forecast_in_flight(one_step_model(), in_flight_log([1, 2, 3]), "7D", n_draws=50)
    js = f.summary()
    assert list(js) == ["as_of", "horizon", "in_flight", "conversions", "churns", "dropoffs",
                        "daily"]
    assert js["as_of"] == "2025-03-01T00:00:00+00:00" and js["horizon"] == "7D"
    assert js["in_flight"] == 3
    for key in ("conversions", "churns", "dropoffs"):
        assert list(js[key]) == ["mean", "low", "high"]
    assert list(js["daily"][0]) == ["date", "mean", "low", "high"]
    assert list(f.journeys.columns) == ["customer_id", "p_conversion", "p_churn", "p_dropoff",
                                        "next_touchpoint", "p_next",
                                        "expected_conversion_date"]


def test_same_seed_same_forecast_other_seed_other_draws():
    model, log = one_step_model(), in_flight_log(list(range(1, 40)))
    a = forecast_in_flight(model, log, "30D", n_draws=100, seed=7)
    b = forecast_in_flight(model, log, "30D", n_draws=100, seed=7)
    c = forecast_in_flight(model, log, "30D", n_draws=100, seed=8)
    np.testing.assert_array_equal(a.daily, b.daily)
    pd.testing.assert_frame_equal(a.journeys, b.journeys)
    assert not np.array_equal(a.daily, c.daily)


def test_events_after_as_of_are_never_used(tmp_path):
    """A log that goes on past as-of gives the same forecast as the log cut at as-of."""
    t0 = pd.Timestamp("2025-02-01", tz="UTC")
    before = [("c0", t0, "a"), ("c1", t0 + pd.Timedelta(days=20), "a"),
              ("c2", t0 + pd.Timedelta(days=5), "a"),
              ("c2", t0 + pd.Timedelta(days=5, hours=1), "conversion")]
    after = [("c0", t0 + pd.Timedelta(days=29), "conversion"),
             ("c1", t0 + pd.Timedelta(days=40), "b"), ("c3", t0 + pd.Timedelta(days=35), "a")]
    cols = ["customer_id", "timestamp", "touchpoint"]
    whole = pd.DataFrame(before + after, columns=cols)
    cut = pd.DataFrame(before, columns=cols)
    model = one_step_model()
    log = journeys_as_of(whole, as_of="2025-03-01")
    ref = load_journeys(cut, observed_until="2025-03-01")
    assert log.observed_until == ref.observed_until
    a = forecast_in_flight(model, log, "30D", n_draws=100, seed=0)
    b = forecast_in_flight(model, ref, "30D", n_draws=100, seed=0)
    assert a.n_in_flight == 2  # c0 and c1: c0's conversion after as-of is not seen
    assert sorted(a.journeys["customer_id"]) == ["c0", "c1"]
    np.testing.assert_array_equal(a.daily, b.daily)
    with pytest.raises(OptionError, match="events after the as-of time"):
        forecast_in_flight(model, load_journeys(whole), "30D", as_of=ref.observed_until)


def test_as_of_outside_the_log_is_refused():
    frame = pd.DataFrame({"customer_id": ["a", "b"], "timestamp": ["2025-01-05", "2025-02-01"],
                          "touchpoint": ["x", "conversion"]})
    with pytest.raises(OptionError, match=r"--as-of 2024-12-01 is before the first event"):
        journeys_as_of(frame, as_of="2024-12-01")
    with pytest.raises(OptionError, match=r"--as-of 2025-06-01 is after the end of the log"):
        journeys_as_of(frame, as_of="2025-06-01")
    with pytest.raises(OptionError, match="must be a date"):
        journeys_as_of(frame, as_of="soon")


@pytest.mark.parametrize(("text", "kind", "message"), [
    ("bad", "datetime", "--horizon must be a duration like 30D"),
    ("30", "datetime", "--horizon needs a unit"),
    ("-3D", "datetime", "--horizon must be"),
    ("none", "datetime", "--horizon must be a duration"),
    ("30D", "period", "--horizon must be a positive number of periods"),
])
def test_bad_horizons(text, kind, message):
    with pytest.raises(OptionError, match=message):
        parse_horizon(text, kind)


def test_models_that_cannot_forecast_in_flight():
    log = in_flight_log([1])
    bare = MarkovJourneyModel().fit(journeys_from_codes([["a"], ["a"]],
                                                        ["conversion", "dropoff"]))
    if hasattr(bare, "holding_"):  # a model fitted on journeys without times has none
        bare.holding_ = None
    with pytest.raises(OptionError, match="no holding times"):
        forecast_in_flight(bare, log, "30D")

    class Other:
        model_type = "conversion"

        def _check_fitted(self):
            pass

    with pytest.raises(OptionError, match="applies to markov and stages models, not to a "
                                          "conversion model"):
        forecast_in_flight(Other(), log, "30D")
    with pytest.raises(OptionError, match="--draws must be"):
        forecast_in_flight(one_step_model(), log, "30D", n_draws=1)


def test_unseen_window_backs_off_to_windows_with_the_same_latest_touchpoint():
    """Order 2: (c > a) was never seen; it backs off to (b > a), the one window ending in a."""
    js = journeys_from_codes([["b", "a"], ["b", "a"], ["c"]], ["conversion", "dropoff",
                                                             "dropoff"], weights=[60, 40, 10])
    model = MarkovJourneyModel(order=2).fit(js)
    model.holding_ = ExpHolding(("a", "b", "c"), RATE)
    end = pd.Timestamp("2025-03-01", tz="UTC")
    rows = [("seen", end - pd.Timedelta(days=2), "b"), ("seen", end - pd.Timedelta(days=1), "a"),
            ("unseen", end - pd.Timedelta(days=2), "c"),
            ("unseen", end - pd.Timedelta(days=1), "a")]
    with pytest.warns(Warning, match="no conversion rows"):
        log = load_journeys(pd.DataFrame(rows, columns=["customer_id", "timestamp",
                                                        "touchpoint"]),
                            observed_until="2025-03-01", gap="none")
    f = forecast_in_flight(model, log, "30D", n_draws=2000, seed=5)
    assert f.n_backed_off == 1
    got = f.journeys.set_index("customer_id")
    assert got.loc["unseen", "p_next"] == pytest.approx(got.loc["seen", "p_next"])
    assert got.loc["unseen", "p_conversion"] == pytest.approx(got.loc["seen", "p_conversion"],
                                                              abs=0.04)
    assert np.isfinite(got["p_conversion"]).all()
    assert any("back off" in note for note in f.to_result().notes)


def test_continuations_are_the_forecasts_paths(tmp_path):
    """The same seed gives the same draws: the continuations' conversions per draw are the
    forecast's, every event lies after as-of and within the horizon."""
    model = two_step_model()
    log = in_flight_log([0.5] * 20)
    f = forecast_in_flight(model, log, "10D", n_draws=30, seed=9)
    frames = list(continuation_chunks(model, log, "10D", n_draws=30, seed=9))
    ev = pd.concat(frames, ignore_index=True)
    conv = ev[ev["touchpoint"] == "conversion"].groupby("draw").size().reindex(
        range(30), fill_value=0)
    np.testing.assert_array_equal(conv.to_numpy(), f.conversions)
    start = pd.Timestamp("2025-03-01", tz="UTC")
    assert (ev["timestamp"] > start).all()
    assert (ev["timestamp"] <= start + pd.Timedelta(days=10)).all()
    assert set(ev["touchpoint"]) <= {"b", "conversion"}
    assert ev["customer_id"].str.match(r"^c\d+~\d\d$").all()
    # each draw of a journey is its own customer, its events in time order
    assert ev.groupby("customer_id")["timestamp"].apply(
        lambda s: s.is_monotonic_increasing).all()


def test_report_section_draws_the_forecast():
    from journeymodel.report.palette import Palette
    from journeymodel.report.sections.forecast import forecast_section

    f = forecast_in_flight(two_step_model(), in_flight_log([0.5] * 50), "30D", n_draws=50)
    section = forecast_section(f, "Markov", Palette(["a", "b"]))
    assert section.title == "The next 30 days (Markov)"
    assert "are not counted" in section.intro
    (fig,) = section.figures
    assert fig.key == "forecast-daily" and fig.size[0] == 1100
    js = f.summary()["conversions"]
    assert dict(section.facts)["conversions"] == (
        f"{js['mean']:,.1f} [{js['low']:,.0f}, {js['high']:,.0f}]")


def test_no_journey_in_flight():
    frame = pd.DataFrame({"customer_id": ["a", "a"], "timestamp": ["2025-01-01", "2025-01-02"],
                          "touchpoint": ["a", "conversion"]})
    log = load_journeys(frame, gap="none")
    f = forecast_in_flight(one_step_model(), log, "7D", n_draws=10)
    assert f.n_in_flight == 0 and len(f.journeys) == 0
    assert f.summary()["conversions"] == {"mean": 0.0, "low": 0.0, "high": 0.0}
    assert f.daily.shape == (10, 7) and not f.daily.any()
    frames = list(continuation_chunks(one_step_model(), log, "7D", n_draws=3))
    assert sum(len(x) for x in frames) == 0


def test_back_off_agrees_with_predict_when_no_time_has_passed():
    """Just seen (elapsed 0, every survival 1): the next event of a journey in an unseen window
    is predict's backed-off next-event distribution."""
    js = journeys_from_codes([["b", "a"], ["b", "a", "c"], ["d", "a"], ["c"]],
                             ["conversion", "dropoff", "dropoff", "dropoff"],
                             weights=[60, 40, 30, 10])
    model = MarkovJourneyModel(order=2).fit(js)
    model.holding_ = ExpHolding(("a", "b", "c", "d"), RATE)
    end = pd.Timestamp("2025-03-01", tz="UTC")
    rows = [("x", end - pd.Timedelta(days=1), "c"), ("x", end, "a")]
    with pytest.warns(Warning, match="no conversion rows"):
        log = load_journeys(pd.DataFrame(rows, columns=["customer_id", "timestamp",
                                                        "touchpoint"]),
                            observed_until="2025-03-01", gap="none")
    f = forecast_in_flight(model, log, "7D", n_draws=20)
    pred = model.predict(log).frame
    nxt = pred.filter(like="next_").iloc[0]
    assert f.n_backed_off == 1
    assert f.journeys.loc[0, "p_next"] == pytest.approx(nxt.max())
    assert f.journeys.loc[0, "next_touchpoint"] == nxt.idxmax().removeprefix("next_")


def test_journey_shorter_than_the_order_continues_as_predict_reads_it():
    """Order 2, in flight after one touchpoint ``b``: the start's windows that begin with b
    (b > a: 100, b > c: 30, b alone: 20, which converted) give its future, as predict says:
    P(conversion) = (100 * 0.6 + 20) / 150."""
    js = journeys_from_codes([["b", "a"], ["b", "a"], ["b"], ["b", "c"]],
                             ["conversion", "dropoff", "conversion", "dropoff"],
                             weights=[6000, 4000, 2000, 3000])
    model = MarkovJourneyModel(order=2).fit(js)
    model.holding_ = ExpHolding(("a", "b", "c"), 1 / (0.1 * DAY))  # fast: all within 60 days
    end = pd.Timestamp("2025-03-01", tz="UTC")
    with pytest.warns(Warning, match="no conversion rows"):
        log = load_journeys(pd.DataFrame([("x", end, "b")], columns=["customer_id", "timestamp",
                                                                     "touchpoint"]),
                            observed_until="2025-03-01", gap="none")
    f = forecast_in_flight(model, log, "60D", n_draws=4000, seed=6)
    pred = model.predict(log).frame
    assert pred.loc[0, "p_conversion"] == pytest.approx(80 / 150)
    assert f.n_backed_off == 0
    assert f.journeys.loc[0, "p_conversion"] == pytest.approx(80 / 150, abs=0.025)
    nxt = pred.filter(like="next_").iloc[0]
    assert f.journeys.loc[0, "p_next"] == pytest.approx(nxt.max())
    assert f.journeys.loc[0, "next_touchpoint"] == nxt.idxmax().removeprefix("next_") == "a"


def test_option_by_option_draws_are_the_reference_draws():
    """The categorical draws made option by option (running sums, gathers from small tables)
    are those of ``inflight._categorical`` on the stacked cumulative weights, bit for bit:
    zeros, ties and a row of zeros included."""
    from journeymodel.analysis import draws as fl

    rng = np.random.default_rng(3)
    w = rng.random((20_000, 6)) * (rng.random((20_000, 6)) < 0.6)
    w[:50] = 0.0
    w[50:100, :3] = 0.25  # ties
    r = np.random.default_rng(9).random(len(w))
    want = fl.categorical(np.cumsum(w, axis=1), r)
    got = fl.categorical_columns(list(np.ascontiguousarray(w.T)), r)
    assert np.array_equal(got, want)
    table = np.cumsum(rng.random((40, 5)) * (rng.random((40, 5)) < 0.7), axis=1)
    row = rng.integers(0, 40, 30_000)
    r = np.random.default_rng(2).random(len(row))
    assert np.array_equal(fl.categorical_rows(table, row, r), fl.categorical(table[row], r))


@pytest.mark.parametrize("budget", [None, 1, 5_000])
def test_markov_moves_by_guide_table_are_the_search_of_each_row(budget, monkeypatch):
    """MarkovProcess.propose finds each move through its guide table: the first entry of the
    particle's row whose running sum within the row is above its uniform (a search of that row
    alone, item by item), bit for bit; with a guide of 256 cells per row, of one (every guess
    searched in its row) or a few."""
    from journeymodel.analysis import inflight as fl
    from journeymodel.analysis.chance import PROPOSE, Chance

    if budget is not None:
        monkeypatch.setattr(fl, "_GUIDE_BUDGET", budget)
    log = journeys_as_of(make_demo_data(400, seed=2).events, as_of="2025-10-01")
    model = MarkovJourneyModel(order=2).fit(log)
    setup = prepare(model, log, "30D")
    proc = setup.process
    params = proc.draw_params(range(7), 0)
    rng = np.random.default_rng(1)
    state = rng.integers(0, proc.n_states, 50_000)
    state = state[np.diff(proc.indptr)[state] > 0]
    d = rng.integers(0, 7, len(state))
    chance = Chance(rng.integers(0, 2**63, len(state)).astype(np.uint64), 3)
    tgt, nxt = proc.propose(state, d, params, chance)
    _, within = fl._row_cdf(params, proc.indptr, proc.n_states)
    within = within.reshape(params.shape)
    x = chance.u(PROPOSE) * (1 - 1e-12)
    entry = np.array([proc.indptr[s] + np.searchsorted(within[k, proc.indptr[s]:
                                                              proc.indptr[s + 1]], xi, "right")
                      for s, k, xi in zip(state[:3000], d[:3000], x[:3000], strict=True)])
    assert np.array_equal(tgt[:3000], proc.target[entry])
    assert np.array_equal(nxt[:3000], proc.next_state[entry])
