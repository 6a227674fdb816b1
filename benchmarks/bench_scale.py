"""Scale-out benchmark (issue 15): a Markov fit and its attribution on a log of N events kept
as one Parquet file per day, in one process and on a local Dask cluster.

Each run is a fresh subprocess, so peak memory (``ru_maxrss``) is that run's alone: the
client's (the process that runs the command) and, on Dask, each worker's. The Dask run must
give the same attribution as the process (the largest difference is printed). The logs are
written by ``make_scale_events.py`` into a temporary folder (or ``--data``) and never
committed.

Usage::

    python benchmarks/bench_scale.py                      # 16M: process vs 2 workers of 1.5GiB
    python benchmarks/bench_scale.py --scaling 1M,10M     # Dask cost from 1M to 10M events
    python benchmarks/bench_scale.py --compare 1M         # quick
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from make_scale_events import count, write_log  # noqa: E402


def run_once(mode: str, folder: str, workers: int, memory: str) -> dict:
    """One fit (in this process): wall time, peak memory, attribution, ledger."""
    import warnings

    warnings.simplefilter("ignore")
    from journeymodel.data.journeys import load_journeys
    from journeymodel.models.markov.model import MarkovJourneyModel

    start = time.perf_counter()
    worker_peak = None
    if mode == "process":
        model = MarkovJourneyModel(order=1).fit(load_journeys(folder))
    else:
        from journeymodel.scale.cluster import Engine, connect
        from journeymodel.scale.fit import fit_scaled

        with connect(Engine(workers=workers, worker_memory=memory), say=lambda _: None) as c:
            model = fit_scaled(MarkovJourneyModel(order=1), folder, client=c)
            peaks = c.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
            worker_peak = [p / 1024 for _, p in sorted(peaks.items())]
    attribution = model.attribution("removal", n_draws=0)
    wall = time.perf_counter() - start
    return {"wall": wall, "client_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "worker_mib": worker_peak, "channels": list(attribution.channels),
            "conversions": [float(x) for x in attribution.conversions],
            "rows": model.ledger_.rows_read, "journeys": model.journeys_.n_journeys}


def measure(mode: str, folder: Path, workers: int, memory: str) -> dict:
    load = os.getloadavg()[0]
    out = subprocess.run([sys.executable, __file__, "--one", mode, str(folder), "--workers",
                          str(workers), "--worker-memory", memory],
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{mode} run on {folder} failed:\n{out.stderr[-3000:]}")
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "load": load}


def row(n: int, files: int, mode: str, r: dict, ref: dict | None) -> str:
    diff = "" if ref is None else f"{max(abs(a - b) for a, b in zip(
        r["conversions"], ref["conversions"], strict=True)):.1e}"
    worker = "" if r["worker_mib"] is None else " / ".join(f"{w:,.0f}" for w in r["worker_mib"])
    return (f"| {n:>12,} | {files:>5} | {mode:<22} | {r['wall']:>7.1f} | "
            f"{n / r['wall']:>10,.0f} | {r['client_mib']:>8,.0f} | {worker:>8} | {diff:>8} | "
            f"{r['load']:.1f} |")


HEADER = ("| events       | files | run                    | wall s  | events/s   | client MiB"
          " | worker MiB (each) | max Δ attribution | load |\n"
          "|---|---|---|---|---|---|---|---|---|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", type=count, default=None,
                        help="events of the process-vs-Dask comparison [16M]")
    parser.add_argument("--scaling", default="", help="sizes of the Dask-only rows (1M,10M)")
    parser.add_argument("--days", type=int, default=40, help="files per log (one per day)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-memory", default="1.5GiB")
    parser.add_argument("--data", type=Path, default=None, help="keep the logs here")
    parser.add_argument("--one", nargs=2, metavar=("MODE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_once(args.one[0], args.one[1], args.workers, args.worker_memory)))
        return
    if args.compare is None and not args.scaling:
        args.compare = count("16M")
    root = args.data or Path(tempfile.mkdtemp(prefix="jm-scale-"))
    dask_run = f"dask {args.workers} x {args.worker_memory}"
    print(f"{os.cpu_count()} cores; timings on a shared machine are pessimistic\n")
    print(HEADER)
    if args.compare:
        folder = root / f"events-{args.compare}"
        if not folder.exists():
            write_log(args.compare, folder, args.days)
        ref = measure("process", folder, args.workers, args.worker_memory)
        files = len(list(folder.rglob("*.parquet")))
        print(row(args.compare, files, "one process", ref, None), flush=True)
        got = measure("dask", folder, args.workers, args.worker_memory)
        assert got["channels"] == ref["channels"] and got["rows"] == ref["rows"]
        print(row(args.compare, files, dask_run, got, ref), flush=True)
    for size in [count(s) for s in args.scaling.split(",") if s]:
        folder = root / f"events-{size}"
        if not folder.exists():
            write_log(size, folder, args.days)
        files = len(list(folder.rglob("*.parquet")))
        print(row(size, files, dask_run, measure("dask", folder, args.workers,
                                                 args.worker_memory), None), flush=True)


if __name__ == "__main__":
    main()
