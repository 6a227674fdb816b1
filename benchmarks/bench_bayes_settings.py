"""How many tuning steps and draws the Bayesian fits need: cost against diagnostics.

Issue 20 asks to choose the sampler's settings by measurement. For each (tune, draws) pair and
seed this fits a model of the 2,000-customer sample data in one process (the compiled model
is reused, so the CPU seconds are the sampling's) and prints the CPU seconds, the largest
R-hat, the smallest bulk ESS and the divergences: the checks every fit applies (R-hat <= 1.01,
bulk ESS >= 400, no divergences).

Usage::

    .venv/bin/python benchmarks/bench_bayes_settings.py --model sbg --seeds 0 1 2
    .venv/bin/python benchmarks/bench_bayes_settings.py --model conversion
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

SETTINGS = ((1000, 1000), (500, 1000), (300, 1000), (500, 500), (300, 500))


def fit(kind: str, journeys, tune: int, draws: int, seed: int):
    from journeymodel.models.churn.model import ChurnModel
    from journeymodel.models.conversion.model import ConversionModel

    if kind == "conversion":
        model = ConversionModel(seed=seed, tune=tune, draws=draws)
    else:
        model = ChurnModel(kind, seed=seed, tune=tune, draws=draws)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(journeys, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sbg", choices=["sbg", "weibull", "conversion"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    from journeymodel.data.datasets import write_sample_events
    from journeymodel.data.journeys import load_journeys

    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "events.parquet"
        write_sample_events(events, n_customers=2000, seed=0)
        journeys = load_journeys(events)
    fit(args.model, journeys, 100, 100, 0)  # compile (or load) once, untimed
    print(f"{args.model}, 4 chains; load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("| tune | draws | seed | cpu s | R-hat max | bulk ESS min | divergences |")
    print("|---|---|---|---|---|---|---|")
    for tune, draws in SETTINGS:
        for seed in args.seeds:
            cpu = time.process_time()
            d = fit(args.model, journeys, tune, draws, seed).diagnostics_
            print(f"| {tune} | {draws} | {seed} | {time.process_time() - cpu:.2f} | "
                  f"{d.r_hat_max:.4f} | {d.ess_bulk_min:,.0f} | {d.divergences} |", flush=True)


if __name__ == "__main__":
    main()
