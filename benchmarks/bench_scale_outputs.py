"""Per-customer outputs and describe on Dask (issue 15): ``predict -o`` (the predictions of
every journey in flight written as Parquet), ``forecast -o`` (the journeys in flight continued
30 days under ``--draws`` posterior draws, one row each, and the printed totals) and
``describe`` of a log of N events kept as one Parquet file per day, in one process and on a
local Dask cluster.

Each run is a fresh subprocess, so peak memory (``ru_maxrss``) is that run's alone: the
client's and, on Dask, the largest worker's. The Dask runs must give one process's answers:
the same predictions (all parts read back and sorted by customer) and the same ``describe``
JSON; the table says so. The log is written by ``make_scale_events.py`` into a temporary
folder (or ``--data``) and never committed.

Usage::

    python benchmarks/bench_scale_outputs.py 2M
    python benchmarks/bench_scale_outputs.py 10M --workers 2 --worker-memory 1.5GiB
    python benchmarks/bench_scale_outputs.py 1M --tasks forecast --draws 50
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


def run_once(task: str, mode: str, folder: str, work: str, workers: int, memory: str,
             draws: int = 50) -> dict:
    """One run in this process: wall time, peak memory and what to compare."""
    import warnings

    warnings.simplefilter("ignore")
    from journeymodel.analysis.describe import describe_journeys, describe_summary
    from journeymodel.data.journeys import load_journeys
    from journeymodel.io.outputs import write_frame
    from journeymodel.io.persist import load_model

    model = load_model(Path(work) / "markov.nc") if task != "describe" else None
    out = Path(work) / f"{task}-{mode}{'.parquet' if mode == 'process' else ''}"
    start = time.perf_counter()
    worker_peak, answer = None, None
    if mode == "process":
        journeys = load_journeys(folder)
        if task == "predict":
            write_frame(model.predict(journeys).frame, out)
        elif task == "forecast":
            from journeymodel.analysis.forecast import forecast_in_flight

            forecast = forecast_in_flight(model, journeys, "30D", n_draws=draws, seed=0)
            write_frame(forecast.journeys, out)
            answer = forecast.summary()
        else:
            answer = describe_journeys(journeys).json
    else:
        from journeymodel.scale.cluster import Engine, connect
        from journeymodel.scale.engine import map_log
        from journeymodel.scale.outputs import PredictRows, write_parts
        from journeymodel.stats.summary import journey_summary

        with connect(Engine(workers=workers, worker_memory=memory), say=lambda _: None) as c:
            engine = Engine(client=c)
            if task == "predict":
                write_parts(folder, None, engine, PredictRows(model), out)
            elif task == "forecast":
                from journeymodel.data.options import ReadOptions
                from journeymodel.scale.inflight import forecast_on_dask

                answer = forecast_on_dask(model, folder, ReadOptions(), engine, "30D",
                                          n_draws=draws, seed=0, out=out)[0].summary()
            else:
                result = map_log(folder, None, engine, journey_summary)
                answer = describe_summary(result.stats, result.ledger).json
            peaks = c.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
            worker_peak = max(peaks.values()) / 1024
    wall = time.perf_counter() - start
    return {"wall": wall, "client_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "worker_mib": worker_peak, "answer": answer, "out": str(out)}


def fresh(task: str, mode: str, folder: Path, work: Path, workers: int, memory: str,
          draws: int) -> dict:
    """:func:`run_once` in a new Python process."""
    call = (f"run_once({task!r}, {mode!r}, {str(folder)!r}, {str(work)!r}, {workers}, "
            f"{memory!r}, {draws})")
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"from bench_scale_outputs import run_once; print('RESULT' + json.dumps({call}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT")), None)
    if line is None:
        raise RuntimeError(f"{task} {mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT"):])


def same_predictions(a: str, b: str) -> bool:
    import pandas as pd

    def by(path: str) -> pd.DataFrame:
        return pd.read_parquet(path).sort_values("customer_id", kind="stable").reset_index(
            drop=True)

    return bool(by(a).equals(by(b)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("events", help="number of events: 2M, 500k, ...")
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-memory", default="1.5GiB")
    parser.add_argument("--data", help="folder to keep the log in (default: a temporary one)")
    parser.add_argument("--tasks", default="describe,predict,forecast",
                        help="comma-separated tasks among describe, predict, forecast")
    parser.add_argument("--draws", type=int, default=50, help="posterior draws of forecast")
    args = parser.parse_args()
    n = count(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.data or tmp) / f"events-{n}"
        work = Path(tmp)
        if not folder.exists():
            write_log(n, folder, days=args.days)
        import warnings

        warnings.simplefilter("ignore")
        from journeymodel.models.markov.model import MarkovJourneyModel
        from journeymodel.scale.cluster import Engine
        from journeymodel.scale.fit import fit_scaled

        fit_scaled(MarkovJourneyModel(order=1), folder,
                   engine=Engine(workers=args.workers, worker_memory=args.worker_memory)
                   ).save(work / "markov.nc")
        dask = f"dask, {args.workers} workers of {args.worker_memory}"
        print(f"| {'task':8} | events | run | wall s | client peak MiB | worker peak MiB | "
              "same as one process |")
        print("|---|---|---|---|---|---|---|")
        for task in args.tasks.split(","):
            runs = {mode: fresh(task, mode, folder, work, args.workers, args.worker_memory,
                                args.draws)
                    for mode in ("process", "dask")}
            same = (runs["process"]["answer"] == runs["dask"]["answer"] if task != "predict"
                    else True) and (task == "describe" or same_predictions(
                        runs["process"]["out"], runs["dask"]["out"]))
            for mode, label in (("process", "one process"), ("dask", dask)):
                r = runs[mode]
                peak = "-" if r["worker_mib"] is None else f"{r['worker_mib']:,.0f}"
                print(f"| {task:8} | {n:,} | {label} | {r['wall']:.1f} | "
                      f"{r['client_mib']:,.0f} | {peak} | {'' if mode == 'process' else same} |")


if __name__ == "__main__":
    main()
