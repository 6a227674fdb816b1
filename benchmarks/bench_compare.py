"""Time ``journeymodel compare`` on about 1M journeys by week over a year (issue 16: < 10 s).

    .venv/bin/python benchmarks/bench_compare.py [--journeys 1000000] [--by period:7D]

The input is generated here (the demo generator, about 0.16 journeys per customer-day; it is
never written to the repository): the demo log over a year with enough customers for the
asked number of journeys. Prints, best of 3 after a warm-up (imports excluded), the steps of
``compare``: reading the log into journeys, the one counting pass (groups as an extra key), the
posterior comparison of every cell with the false-discovery rule, ranking and intervals; then
the whole command on a Parquet file beside ``describe`` on the same file (reading alone), one
run each in a fresh process, imports included.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from journeymodel.analysis.compare import compare_stats
from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import load_journeys
from journeymodel.stats.groups import grouped_transitions

#: Journeys per demo customer over a year (measured: 2,000 customers, seed 0).
JOURNEYS_PER_CUSTOMER = 3.37


def best(fn, repeat=3):
    out = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--journeys", type=int, default=1_000_000)
    ap.add_argument("--by", default="period:7D")
    args = ap.parse_args()
    customers = int(args.journeys / JOURNEYS_PER_CUSTOMER)
    t0 = time.perf_counter()
    events = make_demo_data(customers, seed=0).events
    print(f"generated {len(events):,} events of {customers:,} customers in "
          f"{time.perf_counter() - t0:.0f} s (not timed below)")
    t_load, js = best(lambda: load_journeys(events), repeat=1)
    t_count, stats = best(lambda: grouped_transitions(js, args.by))
    t_compare, found = best(lambda: compare_stats(stats))
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores, shared); {js.n_journeys:,} "
          f"journeys, {js.n_events:,} events; --by {args.by}: {len(found.groups)} groups, "
          f"{found.tests:,} comparisons, {len(found.differences)} listed")
    rows = [("read the log into journeys (DataFrame)", t_load),
            ("count: one pass, group as an extra key", t_count),
            ("compare: posteriors, FDR rule, rank, intervals", t_compare),
            ("compare() on journeys (count + compare)", t_count + t_compare)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.parquet"
        events.to_parquet(path)
        exe = Path(sys.executable).with_name("journeymodel")
        for name, cmd in (("journeymodel describe events.parquet (reading alone)",
                           ["describe", str(path), "--json"]),
                          (f"journeymodel compare events.parquet --by {args.by}",
                           ["compare", str(path), "--by", args.by, "--json"])):
            t0 = time.perf_counter()
            subprocess.run([str(exe), *cmd], check=True, stdout=subprocess.DEVNULL)
            rows.append((name, time.perf_counter() - t0))
    print(f"{'step':<52} {'seconds':>8}")
    for name, seconds in rows:
        print(f"{name:<52} {seconds:>8.2f}")


if __name__ == "__main__":
    main()
