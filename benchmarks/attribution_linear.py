"""Linearised against Monte-Carlo removal-attribution intervals: time and agreement (issue 20).

    .venv/bin/python benchmarks/attribution_linear.py [--quick]
        [--sizes 100000:1,3,4 1000000:1,3] [--draws 10000] [--max-draw-states 3000]

For each size (journeys) and order, on the tracker-style log of ``benchmarks/bench_ingest.py``
(``make_tracker_log``, 8 events per customer, so about 1 journey per 8 events), fitted in this
process: seconds for the point estimate (``n_draws=0``), for the linearised intervals
(``intervals='linear'``: adjoint solves and the delta method, no Monte-Carlo error) and for
``--draws`` posterior draws (``intervals='draws'``), and how far the linearised interval
ends are from the draws' (median and largest over channels and both ends of the conversions
and removal-effect intervals, in % of the draws' width; the draws' own Monte-Carlo error per
end is about 0.667 / sqrt(draws) of the width: 0.67% at 10,000). Chains with more than
``--max-draw-states`` transient states (order 4) are not drawn: the draws' solves there are
iterative, one per draw and scenario. The ``auto`` column says what ``attribute`` does by
default at that size.

Timings are wall seconds in one process; on a shared machine they are pessimistic (the load
average is printed).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import make_tracker_log  # noqa: E402  (the one generator of the log)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def ends_diff(lin, mc) -> np.ndarray:
    """|linear end - draws end| / draws width, every channel and end, both quantities."""
    out = []
    for lo, hi in (("conversions_low", "conversions_high"),
                   ("removal_effect_low", "removal_effect_high")):
        width = getattr(mc, hi) - getattr(mc, lo)
        ok = width > 0
        for end in (lo, hi):
            out.append(np.abs(getattr(lin, end) - getattr(mc, end))[ok] / width[ok])
    return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100,000 journeys, orders 1 and 3")
    ap.add_argument("--sizes", nargs="+", default=["100000:1,3,4", "1000000:1,3"],
                    help="journeys:orders")
    ap.add_argument("--draws", type=int, default=10_000)
    ap.add_argument("--max-draw-states", type=int, default=3000)
    args = ap.parse_args()
    if args.quick:
        args.sizes = ["100000:1,3"]
    from journeymodel.data.journeys import load_journeys
    from journeymodel.models.markov.attribution import interval_method
    from journeymodel.models.markov.model import MarkovJourneyModel

    print(f"command: {' '.join(sys.argv)}")
    print(f"load average at start: {os.getloadavg()}, cpus: {os.cpu_count()}")
    head = (f"{'journeys':>9} {'order':>5} {'states':>6} {'auto':>6} | {'point s':>7} "
            f"{'linear s':>8} {'draws s':>8} | {'end diff med':>12} {'max':>6}")
    print(head)
    print("-" * len(head))
    for spec in args.sizes:
        size, orders = spec.split(":")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "tracker.parquet"
            make_tracker_log(8 * int(size), path)
            journeys = load_journeys(path)
        for order in (int(o) for o in orders.split(",")):
            model = MarkovJourneyModel(order=order).fit(journeys)
            n = model.chain_.n
            _, point = timed(lambda m=model: m.attribution(n_draws=0))
            lin, t_lin = timed(lambda m=model: m.attribution(n_draws=1, intervals="linear"))
            auto = interval_method(model.chain_, len(model.journeys_.touchpoints))
            if n <= args.max_draw_states:
                mc, t_mc = timed(lambda m=model: m.attribution(
                    n_draws=args.draws, intervals="draws", seed=1))
                d = ends_diff(lin, mc)
                tail = (f"{t_mc:>8.2f} | {100 * np.median(d):>11.2f}% "
                        f"{100 * d.max():>5.2f}%")
            else:
                tail = f"{'-':>8} | {'-':>12} {'-':>6}"
            print(f"{journeys.n_journeys:>9,} {order:>5} {n:>6,} {auto:>6} | {point:>7.3f} "
                  f"{t_lin:>8.3f} {tail}  (load {os.getloadavg()[0]:.1f})", flush=True)
    print(f"\nload average at end: {os.getloadavg()}")
    print(f"draws: {args.draws:,} posterior draws (their own error per end ~"
          f"{100 * 0.667 / np.sqrt(args.draws):.2f}% of the width); end diff: |linear - "
          "draws| per interval end, in % of the draws' width (median, max over channels, "
          "both ends, conversions and removal effects)")


if __name__ == "__main__":
    main()
