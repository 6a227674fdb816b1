"""The censored-journeys EM of the Markov fit: plain against SQUAREM steps (issue 20).

    .venv/bin/python benchmarks/censoring_em.py [--events 8000000] [--orders 1 3]

On the tracker-style log of ``benchmarks/bench_ingest.py`` (``make_tracker_log``; in-flight
journeys are those whose last event is within the gap of the end of the log), fitted in this
process: steps and seconds of :func:`~journeymodel.models.markov.censoring.censored_allocation`
with ``accelerate=False`` (plain EM) and True (SQUAREM), and the largest difference of the
expected counts as a share of the censored total. Wall seconds, one process; on a shared
machine they are pessimistic (the load average is printed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import tracker_journeys  # noqa: E402  (the one generator of the log)


def pair_difference(a, b) -> float:
    """Largest |difference| of two expected-count tables over the union of their pairs."""
    f = np.concatenate([a.from_key, b.from_key])
    t = np.concatenate([a.to_key, b.to_key])
    _, pair = np.unique(np.stack([f, t]), axis=1, return_inverse=True)
    signed = np.concatenate([a.count, -b.count])
    return float(np.abs(np.bincount(pair.ravel(), weights=signed)).max(initial=0.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=8_000_000)
    ap.add_argument("--orders", type=int, nargs="+", default=[1, 3])
    args = ap.parse_args()
    from journeymodel.models.markov.censoring import censored_allocation
    from journeymodel.models.markov.model import MarkovJourneyModel
    from journeymodel.stats.transitions import censored_states

    journeys = tracker_journeys(args.events)
    print(f"{'order':>5} {'censored':>9} | {'plain steps':>11} {'s':>6} | {'squarem steps':>13} "
          f"{'s':>6} | {'max diff':>8}")
    for order in args.orders:
        m = MarkovJourneyModel(order=order).fit(journeys)
        cens = censored_states(journeys, order, collapse=m.collapse_repeats)
        out = {}
        for acc in (False, True):
            steps = []
            t0 = time.perf_counter()
            res = censored_allocation(m.counts_, cens, m.holding_, accelerate=acc, steps=steps)
            out[acc] = res, steps[0], time.perf_counter() - t0
        diff = pair_difference(out[True][0], out[False][0]) / cens.count.sum()
        print(f"{order:>5} {cens.count.sum():>9,.0f} | {out[False][1]:>11} {out[False][2]:>6.2f} "
              f"| {out[True][1]:>13} {out[True][2]:>6.2f} | {diff:>8.1e}  "
              f"(load {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
