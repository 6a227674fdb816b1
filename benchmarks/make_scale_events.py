"""Write a synthetic event log of N events as one Parquet file per day (``date=YYYY-MM-DD/``),
as a data lake keeps them: every customer's events are spread over many days' files.

About 8 events a customer, 10 channels, 3.5 % conversion and 0.5 % churn rows, a persona per
customer, a value on conversions. Written day by day (memory of one day's rows), seeded; never
committed.

Usage::

    python benchmarks/make_scale_events.py 16M events/ --days 40
    python benchmarks/make_scale_events.py 200000 events/ --days 31 --csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

TOUCHPOINTS = ["web", "email", "search_ad", "social", "reviews", "call", "store", "app",
               "support_chat", "display"]
PERSONAS = ["bargain_hunter", "loyalist", "researcher"]
START = 1_735_689_600  # 2025-01-01 UTC


def count(text: str) -> int:
    """``16M``, ``1.5M``, ``200k`` or a number."""
    text = text.strip().lower()
    scale = {"k": 10**3, "m": 10**6, "g": 10**9}.get(text[-1], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def write_log(n_events: int, out: Path, days: int = 40, seed: int = 0, csv: bool = False,
              rows_per_group: int = 1 << 20) -> list[Path]:
    """Write the log under ``out``; returns the files written."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_customers = max(n_events // 8, 1)
    labels = np.array(TOUCHPOINTS + ["conversion", "churn"])
    p = np.r_[np.full(len(TOUCHPOINTS), 0.96 / len(TOUCHPOINTS)), 0.035, 0.005]
    per_day = np.full(days, n_events // days)
    per_day[: n_events % days] += 1
    files = []
    for day, n in enumerate(per_day):
        customer = rng.integers(0, n_customers, n)
        seconds = np.sort(START + day * 86400 + rng.integers(0, 86400, n))
        tp = rng.choice(len(labels), n, p=p)
        ids = np.char.add("C", np.char.zfill(customer.astype(str), 9))
        value = np.where(labels[tp] == "conversion", np.round(rng.gamma(2.0, 40.0, n), 2),
                         np.nan)
        table = pa.table({
            "customer_id": pa.array(ids),
            "timestamp": pa.array(seconds * 1_000_000, pa.timestamp("us", tz="UTC")),
            "touchpoint": pa.array(labels[tp]),
            "persona": pa.array(np.array(PERSONAS)[customer % len(PERSONAS)]),
            "value": pa.array(value, from_pandas=True),
        })
        date = np.datetime64(START + day * 86400, "s").astype("datetime64[D]")
        folder = out / f"date={date}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / ("part-0.csv" if csv else "part-0.parquet")
        if csv:
            pacsv.write_csv(table, path)
        else:
            pq.write_table(table, path, row_group_size=rows_per_group)
        files.append(path)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", type=count, help="number of events (16M, 200k, ...)")
    parser.add_argument("out", type=Path, help="folder to write (date=.../part-0.parquet)")
    parser.add_argument("--days", type=int, default=40, help="files, one per day")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", action="store_true", help="CSV files instead of Parquet")
    args = parser.parse_args()
    files = write_log(args.events, args.out, args.days, args.seed, args.csv)
    size = sum(f.stat().st_size for f in files)
    print(f"wrote {args.events:,} events in {len(files)} files under {args.out} "
          f"({size / 2**20:,.1f} MiB)")


if __name__ == "__main__":
    main()
