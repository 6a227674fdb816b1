"""Stages EM on Dask (issue 15): the E-step on the workers, the M-step on the client, against
the same fit in one process, on a log of N events kept as one Parquet file per day.

Each run is a fresh subprocess, so its peak memory (``ru_maxrss``) is its own: the client's
(the process that runs the fit) and, on Dask, each worker's. Prints wall time, EM iterations,
the time of one EM iteration (E-step on every partition, summed, plus the M-step) and the
log-likelihoods (equal to 1e-9 relative, the issue's bar). The log is written by
``make_scale_events.py`` into a temporary folder (or ``--data``) and never committed.

Usage::

    python benchmarks/bench_scale_stages.py                 # 2M events, 4 stages, 20 iterations
    python benchmarks/bench_scale_stages.py --events 200k --iterations 10   # quick
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from make_scale_events import count, write_log  # noqa: E402


def run_once(mode: str, folder: str, stages: int, iterations: int, workers: int,
             memory: str) -> dict:
    """One stages fit (in this process): wall time, time per EM iteration, peak memory."""
    import warnings

    warnings.simplefilter("ignore")
    from journeymodel.data.journeys import load_journeys
    from journeymodel.models.stages.model import StageModel

    model = StageModel(n_stages=stages, restarts=1, seed=0, max_iter=iterations, tol=0.0)
    stamps: list[float] = []
    start = time.perf_counter()
    worker_peak = None
    if mode == "process":
        model.fit(load_journeys(folder))
        em_seconds = None
    else:
        from journeymodel.scale.cluster import Engine, connect
        from journeymodel.scale.fit import fit_scaled

        def progress(line: str) -> None:
            if ": E-step " in line:
                stamps.append(time.perf_counter())

        with connect(Engine(workers=workers, worker_memory=memory), say=lambda _: None) as c:
            fit_scaled(model, folder, client=c, progress=progress)
            worker_peak = max(c.run(_peak_mib).values())
        em_seconds = (stamps[-1] - stamps[0]) / max(len(stamps) - 1, 1)
    wall = time.perf_counter() - start
    return {"wall": wall, "iterations": int(model.n_iter_), "em_seconds": em_seconds,
            "log_likelihood": float(model.log_likelihood_), "client_mib": _peak_mib(),
            "worker_mib": worker_peak, "journeys": int(model.journeys_.n_journeys)}


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fresh(args: list[str]) -> dict:
    """:func:`run_once` in a new Python process; its JSON result."""
    out = subprocess.run([sys.executable, __file__, "--run", *args], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="2M")
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--stages", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-memory", default="1.5GiB")
    parser.add_argument("--data", help="folder for the log (default: a temporary one)")
    parser.add_argument("--run", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        mode, folder, stages, iterations, workers, memory = args.run
        print(json.dumps(run_once(mode, folder, int(stages), int(iterations), int(workers),
                                  memory)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.data or tmp) / f"events-{args.events}"
        if not folder.exists():
            write_log(count(args.events), folder, days=args.days)
        common = [str(args.stages), str(args.iterations), str(args.workers), args.worker_memory]
        one = fresh(["process", str(folder), *common])
        dask = fresh(["dask", str(folder), *common])
    label = f"dask, {args.workers} workers of {args.worker_memory}"
    print(f"{count(args.events):,} events, {one['journeys']:,} journeys, {args.stages} stages, "
          f"{args.iterations} EM iterations (tol 0)")
    print("| run | wall s | s per EM iteration | client peak MiB | worker peak MiB |")
    print("|---|---|---|---|---|")
    per = one["wall"] / max(one["iterations"], 1)
    print(f"| one process | {one['wall']:.1f} | {per:.2f} (whole fit / iterations) | "
          f"{one['client_mib']:,.0f} | - |")
    print(f"| {label} | {dask['wall']:.1f} | {dask['em_seconds']:.2f} | "
          f"{dask['client_mib']:,.0f} | {dask['worker_mib']:,.0f} |")
    rel = abs(dask["log_likelihood"] / one["log_likelihood"] - 1)
    print(f"log-likelihood: {one['log_likelihood']:,.6f} in one process, "
          f"{dask['log_likelihood']:,.6f} on Dask (relative difference {rel:.1e})")


if __name__ == "__main__":
    main()
