"""Backtests of forecasts of the journeys in flight (issue 17):
:mod:`journeymodel.analysis.backtest`, by hand and on the sample data's known process."""

import numpy as np
import pandas as pd
import pytest
from test_forecast import RATE, ExpHolding

from journeymodel.analysis.backtest import auc, backtest, realized
from journeymodel.analysis.forecast import forecast_in_flight, journeys_as_of
from journeymodel.data.journeys import journeys_from_codes, load_journeys
from journeymodel.errors import OptionError
from journeymodel.models.markov.model import MarkovJourneyModel

AS_OF = "2025-03-01"


def whole_log() -> pd.DataFrame:
    """c0 converts on day 3, c1 drops off on day 6 (last event + 30 days), c2 churns on day
    4, c3 goes on past the 10-day horizon, c4 ended before as-of; z keeps the log going."""
    t = pd.Timestamp
    rows = [("c0", "2025-02-25", "a"), ("c0", "2025-03-04 12:00", "conversion"),
            ("c1", "2025-02-05", "a"),
            ("c2", "2025-02-27", "a"), ("c2", "2025-03-02", "b"), ("c2", "2025-03-05", "churn"),
            ("c3", "2025-02-28", "a"), ("c3", "2025-03-20", "b"),
            ("c3", "2025-03-25", "conversion"),
            ("c4", "2025-02-20", "a"), ("c4", "2025-02-21", "conversion"),
            ("z", "2025-04-30", "a")]
    return pd.DataFrame([(c, t(s, tz="UTC"), w) for c, s, w in rows],
                        columns=["customer_id", "timestamp", "touchpoint"])


def test_realized_outcomes_by_hand():
    cut = journeys_as_of(whole_log(), as_of=AS_OF)
    full = load_journeys(whole_log())
    flight = np.flatnonzero(cut.outcome == 3)
    customers = cut.customers[cut.customer[flight]]
    assert sorted(customers) == ["c0", "c1", "c2", "c3"]
    as_of = cut.observed_until
    code, when = realized(full, customers, cut.start[flight], as_of, as_of + 10 * 86400)
    got = dict(zip(customers, code.tolist(), strict=True))
    assert got == {"c0": 1, "c1": 3, "c2": 2, "c3": 0}
    days = dict(zip(customers, ((when - as_of) // 86400).tolist(), strict=True))
    assert days["c0"] == 3 and days["c1"] == 6 and days["c2"] == 4 and np.isnan(days["c3"])


def test_backtest_beside_the_forecast():
    js = journeys_from_codes([["a"], ["a"], ["a", "b"]], ["conversion", "dropoff", "churn"],
                             weights=[600, 300, 100])
    model = MarkovJourneyModel().fit(js)
    model.holding_ = ExpHolding(("a", "b"), RATE, gap=30 * 86400.0)
    cut = journeys_as_of(whole_log(), as_of=AS_OF)
    f = forecast_in_flight(model, cut, "10D", n_draws=200, seed=0)
    b = backtest(f, load_journeys(whole_log()), f.start)
    assert (b.conversions, b.churns, b.dropoffs) == (1, 1, 1)
    assert b.daily.tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    converted = dict(zip(f.journeys["customer_id"], b.converted.tolist(), strict=True))
    assert converted == {"c0": True, "c1": False, "c2": False, "c3": False}
    p = f.journeys["p_conversion"].to_numpy()
    assert b.scores()["brier"] == pytest.approx(np.mean((p - b.converted) ** 2))
    hit, days = b.coverage()
    daily = f.summary()["daily"]
    assert days == 10
    assert hit == sum(d["low"] <= r <= d["high"] for d, r in zip(daily, b.daily, strict=True))
    result = b.add_to(f.to_result())
    assert result.tables[0][1]["realized"].tolist() == [1, 1, 1]
    assert result.json["backtest"]["coverage"] == {"days_inside": hit, "days": 10,
                                                   "share": hit / 10}
    assert result.notes[-1].startswith(f"Backtest: {hit} of 10 days")
    with pytest.raises(OptionError, match="the log ends before the horizon does"):
        backtest(forecast_in_flight(model, cut, "90D", n_draws=10), load_journeys(
            whole_log()), f.start)


def test_auc_by_hand():
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert auc(np.array([0.5, 0.5]), np.array([1, 0])) == 0.5
    assert np.isnan(auc(np.array([0.5, 0.2]), np.array([1, 1])))


@pytest.mark.slow
def test_backtest_on_a_known_markov_process():
    """The order-1 chain with gamma holding times of tests/known_process.py (the model's own
    family), 3 seeds x 2 cut days, 14 days ahead: the realised conversions fall in their 94%
    interval, the forecast mean is within 10% of what happened over all runs, and about 94%
    of the days are covered (benchmarks/bench_forecast.py --backtest prints the table, with the
    sample generator beside it)."""
    import known_process as kp

    rows = []
    for seed in (1, 2, 3):
        frame = kp.simulate(20_000, seed)
        full = kp.journeys(kp.cut(frame, 400.0))
        for day in (80.0, 140.0):
            cut = kp.journeys(kp.cut(frame, day))
            f = forecast_in_flight(MarkovJourneyModel().fit(cut), cut, "14D", n_draws=200,
                                   seed=0)
            b = backtest(f, full, f.start)
            js = f.summary()["conversions"]
            rows.append((js["mean"], js["low"], js["high"], b.conversions, *b.coverage()))
    mean, low, high, real, hit, days = (np.array(c, float) for c in zip(*rows, strict=True))
    assert ((low <= real) & (real <= high)).mean() >= 5 / 6
    assert mean.sum() == pytest.approx(real.sum(), rel=0.10)
    assert 0.85 <= hit.sum() / days.sum() <= 1.0


@pytest.mark.slow
def test_backtest_of_a_stages_model_on_the_sample_generator():
    """The sample generator is a hidden-stage process: a stages model (its own family) fitted
    up to the cut forecasts the next 30 days within 10% over 2 seeds x 2 cuts, each total in
    its 94% interval, about 94% of the days covered (benchmarks/bench_forecast.py
    --backtest prints 4 seeds x 3 cuts)."""
    from journeymodel.data.datasets import make_demo_data
    from journeymodel.models.stages.model import StageModel

    rows = []
    for seed in (11, 12):
        events = make_demo_data(3000, seed=seed).events
        full = load_journeys(events)
        for as_of in ("2025-08-01", "2025-10-15"):
            cut = journeys_as_of(events, as_of=as_of)
            model = StageModel(n_stages=4, restarts=1, seed=0).fit(cut)
            f = forecast_in_flight(model, cut, "30D", n_draws=200, seed=0)
            b = backtest(f, full, f.start)
            js = f.summary()["conversions"]
            rows.append((js["mean"], js["low"], js["high"], b.conversions, *b.coverage()))
    mean, low, high, real, hit, days = (np.array(c, float) for c in zip(*rows, strict=True))
    assert ((low <= real) & (real <= high)).all()
    assert mean.sum() == pytest.approx(real.sum(), rel=0.10)
    assert 0.85 <= hit.sum() / days.sum() <= 1.0
