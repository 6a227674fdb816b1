"""Ingestion benchmark: raw event Parquet -> JourneySet, seconds and peak memory.

Each measurement runs in a fresh subprocess so that peak RSS (``ru_maxrss``) belongs to that
step alone. Beside journeymodel it times the minimum any pandas pipeline does on the same file
(read the Parquet, sort by customer and time) as a reference point.

The second table is a tracker-style log (issue 20): rows in time order, 8M rows with 1M
distinct string ids ``c123456`` written as plain strings over several row groups (Parquet keeps
no dictionary for them), as trackers export. It times Parquet -> journeys with the customer-id
encoder (:mod:`journeymodel.data.encoding`: ids hashed, sorted, compared exactly) and with
pyarrow's ``dictionary_encode`` (the encoder before issue 20, forced by raising
``MIN_ROWS``), and each encoder alone on the column, each with its wall seconds and its CPU
seconds (user + system, all threads: on a shared machine the wall time grows with the other
jobs, the CPU time much less). The data are generated here and never committed.

Usage::

    python benchmarks/bench_ingest.py              # 1M and 8M events, tracker log 8M rows
    python benchmarks/bench_ingest.py --quick      # 200k events, tracker log 800k rows
    python benchmarks/bench_ingest.py --tracker    # the tracker log only
    python benchmarks/bench_ingest.py --tracker --against HEAD~3   # and that revision beside
    python benchmarks/bench_ingest.py --first-calls 15 --against HEAD~3   # 800k rows, first call

``--against REV`` exports ``journeymodel/`` at git revision ``REV`` (``git archive``) and
times Parquet -> journeys with it too, in the same run on the same file: before and after a
change, measured under the same load; it then checks that the journeys are the same (every
JourneySet field, the vocabularies and the ledger).

The tracker table is followed by where the time goes: the wall seconds of each step of
Parquet -> journeys in one fresh process (imports, the two-thread read, the ids' hashing and
grouping in one thread beside the touchpoints and times in another, the ledger, the order by
customer and its gathers, duplicates, vocabularies, the journey cut), its CPU seconds, and
whether pandas was imported (no ingestion path needs it since issue 20: its import alone cost
a third of a second; ``--quick`` shows these fixed costs at 100k customers, 800k rows).

``--first-calls N`` times what a command pays: the first Parquet -> journeys in a fresh process
(the one ``journeymodel attribute EVENTS`` makes), on the 800k-row tracker log (100k
customers), in N fresh processes (each with --against's revision beside, interleaved): per
step (read, events, journeys) the least and median wall seconds, the median CPU of every
thread and of the main thread alone (the critical path when a core is free), and the page
faults (fresh memory: on the machine of issue 20 about 2 microseconds each).
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


def make_tracker_log(n_events: int, path: Path, seed: int = 0) -> int:
    """Tracker-style log: time order, ``n_events / 8`` distinct ids ``c`` + 6-7 digits as plain
    strings, 8 row groups, 30 days of UTC timestamps. Returns the number of distinct ids."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_customers = max(n_events // 8, 1)
    ids = np.char.add("c", (100_000 + rng.permutation(9 * n_customers)[:n_customers])
                      .astype(str))
    customer = rng.integers(0, n_customers, n_events)
    seconds = np.sort(rng.integers(1_735_689_600, 1_735_689_600 + 30 * 86400, n_events))
    labels = np.array(TOUCHPOINTS + ["conversion", "churn"])
    p = np.r_[np.full(len(TOUCHPOINTS), 0.96 / len(TOUCHPOINTS)), 0.035, 0.005]
    tp = rng.choice(len(labels), n_events, p=p)
    table = pa.table({
        "customer_id": pa.array(ids[customer]),
        "timestamp": pa.array(seconds * 1_000_000, pa.timestamp("us", tz="UTC")),
        "touchpoint": pa.array(labels[tp]),
    })
    pq.write_table(table, path, row_group_size=-(-n_events // 8))
    return int(len(np.unique(customer)))


def tracker_journeys(n_events: int):
    """The tracker-style log of ``n_events`` rows read into journeys (the benchmarks that time
    a model on it print the load average and the sizes first)."""
    from journeymodel.data.journeys import load_journeys

    print(f"command: {' '.join(sys.argv)}")
    print(f"load average at start: {os.getloadavg()}, cpus: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tracker.parquet"
        make_tracker_log(n_events, path)
        journeys = load_journeys(path)
    print(f"{n_events:,} events, {journeys.n_journeys:,} journeys")
    return journeys


def _child(kind: str, path: str) -> None:
    import resource
    import time

    if kind.startswith("make-"):  # data made in a child: the parent's peak RSS stays small
        n = int(kind.rsplit("-", 1)[1])
        if kind.startswith("make-tracker"):
            print(json.dumps({"n_ids": make_tracker_log(n, Path(path))}))
        else:
            make_events(n, Path(path))
            print(json.dumps({}))
        return
    if kind == "phases":
        print(json.dumps(_phases(path)))
        return
    if kind == "first":
        print(json.dumps(_first_call(path)))
        return
    if kind.startswith("dump="):  # the journeys' fields and ledger, for --against's check
        _dump(path, kind.split("=", 1)[1])
        print(json.dumps({}))
        return
    if kind == "journeymodel-pyarrow":  # the encoder before issue 20
        import journeymodel.data.encoding as encoding

        encoding.MIN_ROWS = 1 << 62
        kind = "journeymodel"
    t0 = time.perf_counter()
    cpu0 = _cpu_seconds()
    if kind == "journeymodel":
        from journeymodel.data.journeys import load_journeys

        js = load_journeys(path)
        n = js.n_journeys
    elif kind.startswith("encode"):
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        from journeymodel.data.encoding import dictionary_encode

        col = pq.read_table(path, columns=["customer_id"])["customer_id"]
        t0 = time.perf_counter()
        cpu0 = _cpu_seconds()
        enc = (dictionary_encode(col) if kind == "encode" else
               pc.dictionary_encode(col).combine_chunks())
        n = len(enc.dictionary)
    else:
        import pandas as pd

        df = pd.read_parquet(path).sort_values(["customer_id", "timestamp"], kind="stable")
        n = len(df)
    seconds = time.perf_counter() - t0
    cpu = _cpu_seconds() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mib": peak, "n": n}))


#: The steps of Parquet -> journeys timed by ``--phases``: (module, function, label). The ids
#: are grouped in one thread while the touchpoints and times are read in another.
PHASES = (
    ("journeymodel.data.journeys", "read_table", "read Parquet (2 threads)"),
    ("journeymodel.data.columns", "group_ids", "ids: hash, sort, group [thread 1]"),
    ("journeymodel.data.events", "_other_columns", "touchpoints + times [thread 2]"),
    ("journeymodel.data.events", "parse_times", "  of which times"),
    ("journeymodel.data.events", "_rows_to_keep", "ledger: rows kept"),
    ("journeymodel.data.events", "sort_order", "order by customer, time"),
    ("journeymodel.data.events", "take_rows", "gathers by that order"),
    ("journeymodel.data.events", "duplicate_rows", "duplicates"),
    ("journeymodel.data.events", "compact", "vocabularies"),
    ("journeymodel.data.journeys", "build_journeys", "journey cut (JourneySet)"),
)


def _phases(path: str) -> dict:
    """Wall seconds of each step of :data:`PHASES` (summed over calls), of the imports, and
    the total, in this fresh process."""
    import importlib
    import time

    t0 = time.perf_counter()
    from journeymodel.data.journeys import load_journeys
    seconds = {"imports (numpy, pyarrow, journeymodel)": time.perf_counter() - t0}

    def timed(fn, label):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - start
        return run

    for module, name, label in PHASES:
        mod = importlib.import_module(module)
        seconds.setdefault(label, 0.0)
        setattr(mod, name, timed(getattr(mod, name), label))
    cpu0 = _cpu_seconds()
    t1 = time.perf_counter()
    load_journeys(path)
    seconds["Parquet -> journeys"] = time.perf_counter() - t1
    seconds["CPU s (all threads)"] = _cpu_seconds() - cpu0
    seconds["pandas imported"] = "pandas" in sys.modules
    return seconds


def _first_call(path: str) -> dict:
    """Each step of the first Parquet -> journeys in this process (as ``load_journeys`` runs
    them): wall seconds, CPU seconds of every thread, of the main thread, page faults."""
    import resource
    import time
    import warnings

    import journeymodel.models.markov.model  # noqa: F401 (what `attribute` imports first)
    from journeymodel.data.journeys import build_journeys, events_from_table, read_table
    from journeymodel.data.memory import reuse_freed_memory
    from journeymodel.data.options import ReadOptions

    def now():
        use = resource.getrusage(resource.RUSAGE_SELF)
        return (time.perf_counter(), use.ru_utime + use.ru_stime, time.thread_time(),
                use.ru_minflt)

    marks = [now()]
    with warnings.catch_warnings(), reuse_freed_memory():
        warnings.simplefilter("ignore")
        options = ReadOptions()
        table, name = read_table(path, options)
        marks.append(now())
        events = events_from_table(table, name, options)
        del table
        marks.append(now())
        build_journeys(events, options)
        marks.append(now())
    steps = ("read", "events", "journeys")
    out = {step: [b[k] - a[k] for k in range(4)] for step, a, b in zip(steps, marks, marks[1:],
                                                                       strict=False)}
    out["total"] = [marks[-1][k] - marks[0][k] for k in range(4)]
    return out


def _first_calls(n_runs: int, against: str | None) -> None:
    """The first load of the 800k-row tracker log in ``n_runs`` fresh processes (and as many
    with ``against``'s code, interleaved)."""
    import statistics

    print(f"first Parquet -> journeys in a fresh process (issue 20), {n_runs} runs; load "
          f"average at start: {os.getloadavg()[0]:.2f} (2 cores; other jobs share them)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tracker.parquet"
        n_ids = measure("make-tracker-800000", path)["n_ids"]
        codes = {"now": None}
        if against:
            codes = {against: export_revision(against, Path(tmp) / "before"), "now": None}
        runs: dict = {label: [] for label in codes}
        for code in codes.values():  # a first run each: the .pyc files are written
            measure("first", path, code)
        for _ in range(n_runs):
            for label, code in codes.items():
                runs[label].append(measure("first", path, code))
    print(f"800,000 rows, {n_ids:,} distinct ids; s = seconds (least / median wall; median "
          "CPU of every thread; median CPU of the main thread); faults = median page faults")
    for label, rows in runs.items():
        print(f"  {label}")
        for step in ("read", "events", "journeys", "total"):
            wall, cpu, main, faults = (sorted(r[step][k] for r in rows) for k in range(4))
            print(f"    {step:<9} wall {wall[0]:.3f} / {statistics.median(wall):.3f} s, CPU "
                  f"{statistics.median(cpu):.3f} s, main thread "
                  f"{statistics.median(main):.3f} s, {statistics.median(faults):,.0f} faults")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


#: The JourneySet fields --against compares (with the vocabularies and the ledger).
FIELDS = ("codes", "offsets", "outcome", "weight", "customer", "customers", "persona", "start",
          "end", "value", "times")


def _dump(path: str, out: str) -> None:
    """The journeys of ``path`` written to ``out`` (npz): :data:`FIELDS`, and as text the
    vocabularies, time axis and ledger."""
    import warnings

    from journeymodel.data.journeys import load_journeys

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        js = load_journeys(path)
    meta = {"touchpoints": list(js.touchpoints), "personas": list(js.personas),
            "time_kind": js.time_kind, "observed_until": js.observed_until, "gap": js.gap,
            "ledger": js.ledger.to_dict()}
    np.savez(out, meta=json.dumps(meta), **{f: np.asarray(getattr(js, f)) for f in FIELDS})


def _differ(a_path: Path, b_path: Path) -> list[str]:
    """The fields (and ``meta``) that differ between two :func:`_dump` files."""
    a, b = np.load(a_path), np.load(b_path)
    return [k for k in a.files if not np.array_equal(
        a[k], b[k], equal_nan=a[k].dtype.kind == "f")]


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process, all threads (what the step costs the
    machine, whatever else runs on it)."""
    import resource

    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def measure(kind: str, path: Path, code: Path | None = None) -> dict:
    """Run one step in a fresh process (Linux keeps a process's peak RSS across exec, so
    these children are started by a parent that never holds the data); ``code``: a folder
    holding another ``journeymodel`` package to import instead."""
    env = None
    if code is not None:
        env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(path)],
                         capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def export_revision(rev: str, folder: Path) -> Path:
    """``journeymodel/`` as it was at git revision ``rev``, written under ``folder``."""
    repo = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(repo), "archive", rev, "journeymodel"],
                             capture_output=True, check=True).stdout
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small size")
    parser.add_argument("--tracker", action="store_true", help="the tracker-style log only")
    parser.add_argument("--against", metavar="REV",
                        help="also time Parquet -> journeys with journeymodel at git REV")
    parser.add_argument("--first-calls", type=int, metavar="N",
                        help="the first load in N fresh processes, 800k-row tracker log")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    if args.first_calls:
        _first_calls(args.first_calls, args.against)
        return
    if not args.tracker:
        _plain(args.quick)
    _tracker(800_000 if args.quick else 8_000_000, args.against)


def _tracker(n: int, against: str | None = None) -> None:
    print(f"\ntracker-style log (issue 20), load average at start: {os.getloadavg()[0]:.2f} "
          "(2 cores; other jobs share them, so the timings are pessimistic)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tracker.parquet"
        n_ids = measure(f"make-tracker-{n}", path)["n_ids"]
        rows = [("Parquet -> journeys", measure("journeymodel", path),
                 measure("journeymodel-pyarrow", path)),
                ("encoding the id column alone", measure("encode", path),
                 measure("encode-pyarrow", path))]
        phases = measure("phases", path)
        before = None
        if against:
            code = export_revision(against, Path(tmp) / "before")
            before, after = [measure("journeymodel", path, code)], [rows[0][1]]
            after.append(measure("journeymodel", path))
            before.append(measure("journeymodel", path, code))
            dumps = [Path(tmp) / "before.npz", Path(tmp) / "now.npz"]
            measure(f"dump={dumps[0]}", path, code)
            measure(f"dump={dumps[1]}", path)
            differ = _differ(*dumps)
    print(f"{n:,} rows, {n_ids:,} distinct ids, time order, 8 row groups; "
          f"{rows[0][1]['n']:,} journeys")
    header = (f"{'step':<30} {'hashed keys s':>13} {'CPU s':>6} {'peak MiB':>9} "
              f"{'pyarrow dictionary_encode s':>28} {'CPU s':>6} {'peak MiB':>9} "
              f"{'speed-up':>9}")
    print(header)
    print("-" * len(header))
    for step, new, old in rows:
        print(f"{step:<30} {new['seconds']:>13.2f} {new['cpu']:>6.2f} {new['peak_mib']:>9.0f} "
              f"{old['seconds']:>28.2f} {old['cpu']:>6.2f} {old['peak_mib']:>9.0f} "
              f"{old['seconds'] / new['seconds']:>8.1f}x")
    print("hashed keys = journeymodel.data.encoding (issue 20); pyarrow dictionary_encode = "
          "the encoder before it. Parquet -> journeys = read + validate + ledger + sort + segment. "
          "s = wall seconds; CPU s = user + system seconds of every thread (two cores: the "
          "ids are encoded beside the other columns).")
    _print_phases(phases)
    if before:
        _before_after(against, before, after)
        print(f"  journeys equal to those of {against} (every JourneySet field, vocabularies, "
              f"ledger): {'yes' if not differ else 'NO, ' + ', '.join(differ)}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


def _print_phases(phases: dict) -> None:
    """The wall seconds of each step (one fresh process; the two threads' steps overlap)."""
    print("\nwhere the time goes (wall s, one fresh process; the two threads overlap):")
    pandas = phases.pop("pandas imported", None)
    for label, secs in phases.items():
        print(f"  {label:<42} {secs:>6.2f}")
    if pandas is not None:
        print(f"  pandas imported while loading: {'yes' if pandas else 'no'}")


def _before_after(rev: str, before: list, after: list) -> None:
    """Parquet -> journeys at ``rev`` and now, two fresh processes each, interleaved with the
    other measurements (the best of each, and both)."""
    print(f"\nParquet -> journeys, journeymodel at {rev} and now (two fresh processes each):")
    for label, runs in ((rev, before), ("now", after)):
        best = min(runs, key=lambda r: r["seconds"])
        print(f"  {label:<12} best {best['seconds']:.2f} s wall, {best['cpu']:.2f} s CPU, "
              f"{best['peak_mib']:.0f} MiB peak (runs: "
              + ", ".join(f"{r['seconds']:.2f} s / {r['cpu']:.2f} CPU" for r in runs) + ")")


def _plain(quick: bool) -> None:
    sizes = [200_000] if quick else [1_000_000, 8_000_000]
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores)")
    header = (f"{'events':>10} {'journeys':>10} {'journeymodel s':>15} {'peak MiB':>9} "
              f"{'pandas read+sort s':>19} {'peak MiB':>9} {'time ratio':>10}")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"events_{n}.parquet"
            measure(f"make-events-{n}", path)
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
