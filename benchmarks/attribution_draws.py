"""How many posterior draws the removal-attribution intervals need (issue 20).

    .venv/bin/python benchmarks/attribution_draws.py [--quick] [--events 800000]
        [--orders 1] [--draws 250 500 1000 2000 4000 8000 10000 16000] [--repeats 30]

The 94% credible intervals of ``journeymodel attribute`` are the 3% and 97% quantiles of the
conversions each channel gets in ``D`` posterior draws of the chain's rows: with another seed
they move. For every ``D`` this script runs the attribution with ``--repeats`` seeds and
reports, per channel, the standard deviation over seeds of the interval's width and of each
end, divided by the mean width (the Monte-Carlo error as a share of the width; the table
shows the median over channels and the largest), then the smallest ``D`` of the grid whose
median width error is under 1%, and the time of one attribution beside the point estimate.

For a near-normal posterior the empirical quantiles give ``sd(width) / width`` of about
``sqrt(2 * 0.03 * 0.97 / D) / phi(1.881) / 3.762 = 0.943 / sqrt(D)`` (each end about
``0.667 / sqrt(D)``): the ``theory`` column, which the measured errors follow. It reaches
1% at ``D = 8,900``.

The data: the tracker-style log of ``benchmarks/bench_ingest.py`` (``make_tracker_log``,
imported), ``--events`` rows (8 per customer), fitted in this process at each order.
Timings are wall seconds in one process; on a shared machine they are pessimistic (the
load average is printed).
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

TARGET = 0.01  # Monte-Carlo error of the width, as a share of the width
Z = 1.8807936081512509  # the 97% normal quantile
PHI = float(np.exp(-Z * Z / 2) / np.sqrt(2 * np.pi))


def theory(d: int) -> float:
    """sd(width) / width of the empirical 3%-97% interval of ``d`` normal draws."""
    return float(np.sqrt(2 * 0.03 * 0.97 / d) / PHI / (2 * Z))


def measure(model, draws: list[int], repeats: int) -> list[dict]:
    """Width and end errors (share of the width) and seconds per attribution, for each D."""
    rows = []
    for d in draws:
        low, high, secs = [], [], []
        for r in range(repeats):
            t0 = time.perf_counter()
            a = model.attribution("removal", n_draws=d, seed=1000 + r, intervals="draws")
            secs.append(time.perf_counter() - t0)
            low.append(a.conversions_low)
            high.append(a.conversions_high)
        low, high = np.array(low), np.array(high)
        width = (high - low).mean(axis=0)
        w_err = (high - low).std(axis=0, ddof=1) / width
        end_err = np.maximum(low.std(axis=0, ddof=1), high.std(axis=0, ddof=1)) / width
        rows.append({"draws": d, "width_med": float(np.median(w_err)),
                     "width_max": float(w_err.max()), "end_med": float(np.median(end_err)),
                     "end_max": float(end_err.max()), "seconds": float(np.median(secs)),
                     "theory": theory(d)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="80,000 events, order 1, draws 250-4000, 12 seeds")
    ap.add_argument("--events", type=int, default=800_000)
    ap.add_argument("--orders", type=int, nargs="+", default=[1],
                    help="orders to fit (default 1: the error depends on the draws, not the "
                    "chain; 1,000 draws cost about 1 CPU-second at order 2 and 3 at order 3, "
                    "so check higher orders with fewer --draws and --repeats)")
    ap.add_argument("--draws", type=int, nargs="+",
                    default=[250, 500, 1000, 2000, 4000, 8000, 10000, 16000])
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    if args.quick:
        args.events, args.orders, args.draws, args.repeats = 80_000, [1], [250, 1000, 4000], 12
    from journeymodel.models.markov.model import MarkovJourneyModel

    journeys = tracker_journeys(args.events)
    head = (f"{'order':>5} {'states':>6} {'draws':>6} | {'width err':>9} {'(max)':>6} "
            f"{'theory':>6} | {'end err':>7} {'(max)':>6} | {'s/attr':>7} {'x point':>7}")
    chosen = {}
    for order in args.orders:
        model = MarkovJourneyModel(order=order).fit(journeys)
        t0 = time.perf_counter()
        model.attribution("removal", n_draws=0)
        point = time.perf_counter() - t0
        print(f"\norder {order}: {model.chain_.n:,} states, point estimate {point:.3f} s "
              f"(load {os.getloadavg()[0]:.1f})")
        print(head)
        print("-" * len(head))
        for r in measure(model, args.draws, args.repeats):
            print(f"{order:>5} {model.chain_.n:>6} {r['draws']:>6} | "
                  f"{100 * r['width_med']:>8.2f}% {100 * r['width_max']:>5.2f}% "
                  f"{100 * r['theory']:>5.2f}% | {100 * r['end_med']:>6.2f}% "
                  f"{100 * r['end_max']:>5.2f}% | {r['seconds']:>7.3f} "
                  f"{r['seconds'] / max(point, 1e-9):>6.1f}x", flush=True)
            if r["width_med"] < TARGET and order not in chosen:
                chosen[order] = r["draws"]
    print(f"\nload average at end: {os.getloadavg()}")
    print("width err: sd over seeds of the 94% interval's width / its mean (median over "
          "channels, and the largest); end err: the same for the ends (the larger of the "
          f"two); theory: 0.943 / sqrt(draws). {args.repeats} seeds per row.")
    for order in args.orders:
        print(f"order {order}: smallest draws of the grid with width error under "
              f"{100 * TARGET:.0f}%: {chosen.get(order, 'none')}")
    need = int(np.ceil((theory(1) / TARGET) ** 2))
    print(f"normal posterior: width error under {100 * TARGET:.0f}% from {need:,} draws")


if __name__ == "__main__":
    main()
