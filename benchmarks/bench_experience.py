"""Time the experience step of a fit (emotion curves and switch counts, issue 8).

    .venv/bin/python benchmarks/bench_experience.py [--customers 60000]

Prints, for the demo log with sentiment and device and for the same journeys without them,
the counting step (what `fit` runs), the same statistic counted in 4 parts of the journeys and
summed (what a partitioned log costs: the parts' counting plus the merges, Chan's formula for the
moments), and the labelled dataset built from it (what `pain-points`, `inspect` and saving run),
best of 3, after one warm-up call (imports excluded).
"""

import argparse
import os
import time
from dataclasses import replace

import numpy as np

from journeymodel.analysis.experience import experience_counts, experience_dataset
from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import load_journeys


def best(fn, repeat=3):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=60_000)
    args = ap.parse_args()
    js = load_journeys(make_demo_data(args.customers, seed=0).events)
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores); {js}")
    print(f"{'log':<28} {'counts s':>9} {'4 parts + sum s':>16} {'dataset s':>10}")
    for label, data in (("sentiment + device", js),
                        ("no sentiment, no device", replace(js, sentiment=None, device=None))):
        counts = experience_counts(data)
        t_counts = best(lambda d=data: experience_counts(d))
        parts = [data.take(idx) for idx in np.array_split(np.arange(data.n_journeys), 4)]
        t_parts = best(lambda p=parts: sum(experience_counts(x) for x in p))
        t_data = best(lambda c=counts: experience_dataset(c))
        print(f"{label:<28} {t_counts:>9.3f} {t_parts:>16.3f} {t_data:>10.3f}")


if __name__ == "__main__":
    main()
