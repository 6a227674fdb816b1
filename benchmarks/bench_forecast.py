"""Forecasting the journeys in flight (issue 17): speed, and backtests on the known process.

1. **Speed**: 100,000 journeys in flight, a 30-day horizon, 200 posterior draws (issue 17's
   target: under 10 s), for a Markov (order 1) and a stages (K = 4) model. The in-flight
   journeys are those of the sample generator's log cut at 2025-10-01 (about 6,400 at 20,000
   customers), repeated to reach the size (the work per journey does not depend on who it is).
   Times are wall-clock of ``forecast_in_flight`` (the model fit is not timed). Each copy of
   a journey is given its own customer id (chance is keyed by the journey, issue 15: copies
   with one id would share their random numbers). ``--before DIR`` times the code of another
   checkout first (``git archive 34483d4 | tar -x -C DIR``: the simulation before its chance
   was keyed by journey), in a subprocess importing the package from ``DIR``.
2. **Backtests** on two known processes at several seeds and cut dates: a Markov model
   (order 1), and on the sample data also a stages model (K = 4, the generator's own family),
   fitted on the log up to the cut, forecast ahead with 200 draws, beside what the
   rest of the log shows (:func:`journeymodel.analysis.backtest.backtest`): realised
   conversions in their 94% interval, the forecast mean against them, and the share of days
   whose realised conversions fall in the daily 94% interval.

   * ``known Markov``: the order-1 chain with gamma holding times of ``tests/known_process.py``
     (the model's own family: 20,000 journeys over 200 days, a 14-day gap, 14 days ahead);
   * ``sample data``: the sample generator (``journeymodel sample-data``: hidden stages with
     stage-dependent gaps, so an order-1 chain over touchpoints is misspecified), 30 days.

Usage::

    .venv/bin/python benchmarks/bench_forecast.py            # both (a few minutes)
    .venv/bin/python benchmarks/bench_forecast.py --speed    # the speed table only
    .venv/bin/python benchmarks/bench_forecast.py --speed --before /tmp/old  # and the old code
    .venv/bin/python benchmarks/bench_forecast.py --backtest # the backtest table only
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from journeymodel.analysis.backtest import backtest
from journeymodel.analysis.forecast import forecast_in_flight, journeys_as_of
from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import load_journeys
from journeymodel.data.journeyset import CENSORED
from journeymodel.models.markov.model import MarkovJourneyModel
from journeymodel.models.stages.model import StageModel


def speed(n_flight: int = 100_000, draws: int = 200) -> pd.DataFrame:
    events = make_demo_data(20_000, seed=1).events
    cut = journeys_as_of(events, as_of="2025-10-01")
    flight = np.flatnonzero(cut.outcome == CENSORED)
    reps = -(-n_flight // len(flight))
    big = cut.take(np.concatenate([np.flatnonzero(cut.outcome != CENSORED),
                                   np.tile(flight, reps)[:n_flight]]))
    ids = np.array([f"c{i:07d}" for i in range(big.n_journeys)], dtype=object)
    big = replace(big, customer=np.arange(big.n_journeys, dtype=big.customer.dtype),
                  customers=ids)  # every copy its own customer
    rows = []
    for name, model in (("markov (order 1)", MarkovJourneyModel()),
                        ("stages (K = 4)", StageModel(n_stages=4, restarts=1, seed=0))):
        model.fit(cut)
        t0, c0 = time.perf_counter(), time.process_time()
        f = forecast_in_flight(model, big, "30D", n_draws=draws, seed=0)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        js = f.summary()["conversions"]
        rows.append({"model": name, "in_flight": f.n_in_flight, "draws": draws,
                     "horizon": "30D", "seconds": round(seconds, 1),
                     "cpu_seconds": round(cpu, 1),
                     "journey_draws_per_s": f"{f.n_in_flight * draws / seconds:,.0f}",
                     "conversions": f"{js['mean']:,.0f} [{js['low']:,.0f}, {js['high']:,.0f}]"})
    return pd.DataFrame(rows)


def _row(process, seed, as_of, cut, full, horizon, stages: bool = False) -> dict:
    model = (StageModel(n_stages=4, restarts=1, seed=0) if stages else MarkovJourneyModel())
    model.fit(cut)
    f = forecast_in_flight(model, cut, horizon, n_draws=200, seed=0)
    b = backtest(f, full, f.start)
    js = f.summary()["conversions"]
    hit, days = b.coverage()
    return {"process": process, "model": "stages K=4" if stages else "markov 1", "seed": seed,
            "as_of": as_of, "in_flight": f.n_in_flight,
            "forecast": js["mean"], "low_94": js["low"], "high_94": js["high"],
            "realized": b.conversions, "inside": js["low"] <= b.conversions <= js["high"],
            "days_covered": f"{hit}/{days}", "brier": round(b.scores()["brier"], 4),
            "auc": round(b.scores()["auc"], 3)}


def backtests(seeds=(11, 12, 13, 14)) -> pd.DataFrame:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import known_process as kp

    rows = []
    for seed in seeds:
        frame = kp.simulate(20_000, seed)
        full = kp.journeys(kp.cut(frame, 400.0))
        for day in (80.0, 140.0):
            rows.append(_row("known Markov", seed, f"day {day:g}",
                             kp.journeys(kp.cut(frame, day)), full, "14D"))
    for seed in seeds:
        events = make_demo_data(3000, seed=seed).events
        full = load_journeys(events)
        for as_of in ("2025-06-01", "2025-08-01", "2025-10-15"):
            cut = journeys_as_of(events, as_of=as_of)
            for stages in (False, True):
                rows.append(_row("sample data", seed, as_of, cut, full, "30D", stages))
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--backtest", action="store_true")
    parser.add_argument("--before", metavar="DIR", help="also time the package in DIR "
                        "(a checkout of another commit), first")
    parser.add_argument("--table-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.table_only:  # the subprocess of --before
        print(speed().to_string(index=False))
        return
    both = not (args.speed or args.backtest)
    warnings.simplefilter("default")
    print(f"cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}; timings are "
          "pessimistic while other jobs share them")
    if args.speed or both:
        print("\nForecast of 100,000 journeys in flight, 30 days, 200 draws (target < 10 s)")
        if args.before:
            print(f"before ({args.before}):")
            env = {**os.environ, "PYTHONPATH": str(Path(args.before).resolve())}
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "--table-only"],
                           env=env, cwd="/", check=True)
            print("this checkout:")
        print(speed().to_string(index=False))
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    if args.backtest or both:
        table = backtests()
        print("\nBacktests (200 draws)")
        print(table.to_string(index=False))
        for (process, model), part in table.groupby(["process", "model"], sort=False):
            covered = part["days_covered"].str.split("/", expand=True).astype(int).sum()
            print(f"{process}, {model}: realised conversions inside their 94% interval: "
                  f"{part['inside'].sum()} of {len(part)}; forecast mean / realised over all "
                  f"runs: {part['forecast'].sum() / part['realized'].sum():.3f}; days covered: "
                  f"{covered[0]} of {covered[1]} ({covered[0] / covered[1]:.1%})")


if __name__ == "__main__":
    main()
