"""Ingestion benchmark: raw event Parquet -> JourneySet, seconds and peak memory.

Each measurement runs in a fresh subprocess so that peak RSS (``ru_maxrss``) belongs to that
step alone. Beside journeymodel it times the minimum any pandas pipeline does on the same file
(read the Parquet, sort by customer and time) as a reference point.

Usage::

    python benchmarks/bench_ingest.py            # 1M and 8M events
    python benchmarks/bench_ingest.py --quick    # 200k events
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

TOUCHPOINTS = ["web", "email", "search_ad", "social", "reviews", "call", "store", "app",
               "support_chat", "display"]


def make_events(n_events: int, path: Path, seed: int = 0) -> None:
    """Synthetic log: ~8 events per customer, string ids, UTC timestamps, 4% outcome rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_customers = max(n_events // 8, 1)
    customer = rng.integers(0, n_customers, n_events)
    ids = np.char.add("C", np.char.zfill(np.arange(n_customers).astype(str), 8))
    seconds = rng.integers(1_735_689_600, 1_735_689_600 + 365 * 86400, n_events)
    labels = np.array(TOUCHPOINTS + ["conversion", "churn"])
    p = np.r_[np.full(len(TOUCHPOINTS), 0.96 / len(TOUCHPOINTS)), 0.035, 0.005]
    tp = rng.choice(len(labels), n_events, p=p)
    table = pa.table({
        "customer_id": pa.DictionaryArray.from_arrays(customer.astype(np.int32), ids)
        .cast(pa.string()),
        "timestamp": pa.array(seconds * 1_000_000, pa.timestamp("us", tz="UTC")),
        "touchpoint": pa.array(labels[tp]),
    })
    pq.write_table(table, path)


def _child(kind: str, path: str) -> None:
    import resource
    import time

    t0 = time.perf_counter()
    if kind == "journeymodel":
        from journeymodel.data.journeys import load_journeys

        js = load_journeys(path)
        n = js.n_journeys
    else:
        import pandas as pd

        df = pd.read_parquet(path).sort_values(["customer_id", "timestamp"], kind="stable")
        n = len(df)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "n": n}))


def measure(kind: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small size")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    sizes = [200_000] if args.quick else [1_000_000, 8_000_000]
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores)")
    header = (f"{'events':>10} {'journeys':>10} {'journeymodel s':>15} {'peak MiB':>9} "
              f"{'pandas read+sort s':>19} {'peak MiB':>9} {'time ratio':>10}")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"events_{n}.parquet"
            make_events(n, path)
            jm = measure("journeymodel", path)
            pdm = measure("pandas", path)
            print(f"{n:>10,} {jm['n']:>10,} {jm['seconds']:>15.2f} {jm['peak_mib']:>9.0f} "
                  f"{pdm['seconds']:>19.2f} {pdm['peak_mib']:>9.0f} "
                  f"{jm['seconds'] / pdm['seconds']:>10.2f}")
    print("journeymodel = read + validate + ledger + sort + segment into a JourneySet; "
          "pandas = read + sort only (no validation, no journeys).")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
