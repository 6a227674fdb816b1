"""Markov attribution: journeymodel vs ChannelAttribution, side by side in one run.

    .venv/bin/python benchmarks/bench_markov.py [--quick] [--sizes 100000 1000000]
        [--orders 1 2 3] [--repeat N] [--skip-experience]
    .venv/bin/python benchmarks/bench_markov.py --tracker [--quick] [--sizes ...] [--orders 1 3]
    .venv/bin/python benchmarks/bench_markov.py --fit-phases [--sizes 1000 100000] [--orders 1 3]

``--tracker`` (issue 20): as a user runs it. The tracker-style log of
``benchmarks/bench_ingest.py`` (``make_tracker_log``: rows in time order, string ids
``c123456`` as plain strings, 8 row groups, 8 rows per customer; sizes count customers), then
in fresh processes, with default settings: ``journeymodel fit markov EVENTS --order K -o m.nc``
and ``journeymodel attribute m.nc --json``, beside pandas path strings + ChannelAttribution
``markov_model`` on the same file. Also timed alone, to say whose part is whose: reading the
log into journeys (``load_journeys``, the ingestion) and ``attribute --draws 0`` (the point
estimate without intervals). Wall and CPU seconds of the whole process, imports included. In a
separate, labelled row: the one command ``journeymodel attribute EVENTS --order K --json``,
which fits in memory and writes no model file (the same output as the two commands). The
processes find compiled ``.pyc`` files, as after ``pip install``: the children run without
``PYTHONDONTWRITEBYTECODE`` and with a ``PYTHONPYCACHEPREFIX`` in the benchmark's temporary
folder, filled by ``compileall`` first (without them every process compiles journeymodel's
modules again, 0.05-0.2 s).

``--fit-phases`` (issue 20): where a fresh ``journeymodel fit markov EVENTS --order K -o m.nc``
process spends its time, on tracker logs of each size (default 1,000 and 100,000 customers):
Python's start-up, imports, reading the log, the statistics, the holding-time fit, the censored
journeys' EM, the chain and its solve, the summary, the model file, the printing
(``benchmarks/markov_fit_phases.py`` times them inside the process). The smallest log shows the
floor every run pays whatever the data; the fastest of ``--repeat`` runs is shown.

(a) end to end: raw event Parquet -> attribution table. journeymodel: load_journeys + fit +
    exact removal attribution. Peer: pandas builds "a > b > c" path strings per journey,
    aggregates them, then ChannelAttribution.markov_model.
(b) from memory: journeymodel fit + attribution on a JourneySet already in memory (raw journeys,
    not aggregated) vs markov_model on the pre-aggregated path table.
(c) cost of credible intervals: attribution with 200 posterior draws vs the point estimate.

Every measurement runs in its own subprocess; peak memory is that process's ru_maxrss (it
includes the input the process loaded). With ``--repeat N`` each measurement runs N times (each
in a fresh process, both libraries alike) and the fastest is kept: the machine is shared, and
the minimum is the least disturbed run. Each row shows the 1-minute load average when it was
measured. ``--skip-experience`` is a diagnostic: it replaces the experience step that
``MarkovJourneyModel.fit`` also runs (the statistic behind the emotion curves of pain points and
the report, ``journeymodel.stats.experience``) by a no-op, to show what the Markov chain itself
costs.

The synthetic data: journeys of ~8 touchpoints over 10 channels (first-order chain with
channel-dependent conversion), one journey per customer.
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

import numpy as np

CHANNELS = ["display", "email", "organic", "paid_search", "referral", "social", "sms",
            "video", "affiliate", "direct"]


def make_events(n: int, seed: int = 0):
    """Synthetic event log: n customers, one journey each, ~8 touchpoints (vectorised)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    T = len(CHANNELS)
    P = rng.dirichlet(np.full(T, 0.6), size=T)
    L = 1 + rng.poisson(7, n)
    codes = np.empty(int(L.sum()), np.int32)
    offsets = np.concatenate([[0], np.cumsum(L)])
    cur = rng.integers(0, T, n)
    cum = np.cumsum(P, axis=1)
    for step in range(int(L.max())):  # loop over steps, all journeys at once
        alive = np.flatnonzero(L > step)
        codes[offsets[alive] + step] = cur[alive]
        u = rng.random(len(alive))
        cur[alive] = np.minimum((u[:, None] > cum[cur[alive]]).sum(axis=1), T - 1)
    p_conv = np.linspace(0.05, 0.5, T)[codes[offsets[1:] - 1]]
    conv = rng.random(n) < p_conv
    start = 1.6e9 + rng.uniform(0, 3e7, n)
    gaps = rng.exponential(86400.0, len(codes))
    jid = np.repeat(np.arange(n), L)
    t = np.repeat(start, L) + np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[offsets[:-1]] -
                                                           gaps[offsets[:-1]], L)
    cust = np.char.add("c", np.arange(n).astype(str))
    last_t = t[offsets[1:] - 1]
    ev_c = np.concatenate([jid, np.flatnonzero(conv)])
    ev_t = np.concatenate([t, last_t[conv] + 3600.0])
    names = np.array(CHANNELS + ["conversion"])
    ev_tp = np.concatenate([codes, np.full(int(conv.sum()), T)])
    order = np.argsort(ev_t, kind="stable")  # log order, as a real log would arrive
    return pd.DataFrame({"customer_id": cust[ev_c[order]],
                         "timestamp": pd.to_datetime(ev_t[order], unit="s", utc=True),
                         "touchpoint": names[ev_tp[order]]})


# ---------------------------------------------------------------------------------------------
# Workers (each in its own process)


def _peer_paths(events_path: str):
    """The peer's preprocessing: path strings per journey with pandas, aggregated."""
    import pandas as pd

    df = pd.read_parquet(events_path).sort_values(["customer_id", "timestamp"], kind="stable")
    is_conv = df["touchpoint"] == "conversion"
    conv = is_conv.groupby(df["customer_id"]).any()
    paths = df.loc[~is_conv].groupby("customer_id")["touchpoint"].agg(" > ".join)
    table = pd.DataFrame({"path": paths, "conv": conv.reindex(paths.index).astype(int)})
    table["null"] = 1 - table["conv"]
    return table.groupby("path", as_index=False)[["conv", "null"]].sum()


def _peer_markov(table, order: int):
    import ChannelAttribution as ca

    return ca.markov_model(table, "path", "conv", var_null="null", order=order,
                           verbose=False, flg_pro=False)


def worker(kind: str, order: int, data: str) -> dict:
    import io
    from contextlib import redirect_stdout

    if os.environ.get("JM_BENCH_SKIP_EXPERIENCE") and kind.startswith("jm"):  # diagnostic
        import journeymodel.stats.transitions as transitions

        counted = transitions.experience_stats  # the experience of no journey, at no cost
        transitions.experience_stats = lambda journeys, **kw: counted(
            journeys.take(np.zeros(0, np.int64)))
    t0 = time.perf_counter()
    out: dict = {}
    with redirect_stdout(io.StringIO()):  # ChannelAttribution prints banners
        if kind == "jm_load":
            from journeymodel.data.journeys import load_journeys

            out["journeys"] = load_journeys(data).n_journeys
        elif kind == "jm_e2e":
            from journeymodel.data.journeys import load_journeys
            from journeymodel.models.markov.model import MarkovJourneyModel

            js = load_journeys(data, gap="3650D")
            m = MarkovJourneyModel(order=order).fit(js)
            res = m.attribute("removal", n_draws=0)
            out["top"] = res.frame.iloc[0]["channel"]
        elif kind == "ca_e2e":
            res = _peer_markov(_peer_paths(data), order)
        elif kind in ("jm_mem", "jm_ci"):
            from journeymodel.models.markov.model import MarkovJourneyModel

            js = _load_arrays(data)
            t0 = time.perf_counter()
            m = MarkovJourneyModel(order=order).fit(js)
            m.attribution("removal", n_draws=0)
            out["fit_point"] = time.perf_counter() - t0
            out["peak_mib_point"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            if kind == "jm_ci":
                t1 = time.perf_counter()
                m.attribution("removal", n_draws=200, seed=0)
                out["intervals"] = time.perf_counter() - t1
            out["states"] = m.chain_.n
        elif kind == "ca_mem":
            import pandas as pd

            table = pd.read_parquet(data)
            t0 = time.perf_counter()
            _peer_markov(table, order)
    out["seconds"] = time.perf_counter() - t0
    out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _save_arrays(js, path: Path) -> None:
    np.savez(path, codes=js.codes, offsets=js.offsets, outcome=js.outcome, weight=js.weight,
             times=js.times, start=js.start, end=js.end, value=js.value,
             touchpoints=np.array(js.touchpoints))


def _load_arrays(path: str):
    from journeymodel.data.journeys import journeys_from_codes

    z = np.load(path)
    base = journeys_from_codes([[]], ["dropoff"], touchpoints=list(z["touchpoints"]))
    from dataclasses import replace

    n = len(z["outcome"])
    return replace(base, codes=z["codes"], offsets=z["offsets"], outcome=z["outcome"],
                   weight=z["weight"], times=z["times"], start=z["start"], end=z["end"],
                   value=z["value"], customer=np.full(n, -1, np.int64),
                   persona=np.full(n, -1, np.int32), time_kind="datetime")


def run(kind: str, order: int, data: Path, repeat: int = 1) -> dict:
    """The fastest of ``repeat`` runs, each in a fresh process (peak memory of that run)."""
    cmd = [sys.executable, __file__, "--worker", kind, str(order), str(data)]
    best = None
    for _ in range(repeat):
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"{kind} order {order} failed:\n{res.stderr[-2000:]}")
        out = json.loads(res.stdout.strip().splitlines()[-1])
        key = out.get("fit_point", out["seconds"])
        if best is None or key < best.get("fit_point", best["seconds"]):
            best = out
    return best


def _cli(args: list[str]) -> dict:
    """Wall and CPU seconds and peak RSS of one ``journeymodel`` command in a fresh process."""
    return _proc([str(Path(sys.executable).with_name("journeymodel")), *args])


#: The environment of the timed processes (:func:`_compiled_env`).
_ENV: dict[str, str] | None = None
#: Whether the untimed warm-up runs of :func:`_bench_tracker` have filled the .pyc folder.
_WARMED = False


def _compiled_env(tmp: Path) -> dict[str, str]:
    """An environment whose processes read and write ``.pyc`` files in ``tmp``, filled first
    by ``compileall`` for journeymodel and its CLI (the state after ``pip install``)."""
    import journeymodel.cli

    import journeymodel

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    folders = [str(Path(m.__file__).parent) for m in (journeymodel, journeymodel.cli)]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *folders], env=env, check=True)
    return env


def _proc(cmd: list[str]) -> dict:
    """Wall seconds, CPU seconds (user + system, the steadier figure on a shared machine) and
    peak RSS of one fresh process, Python's start-up and imports included."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-2000:]}")
    return {"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime,
            "peak_mib": usage.ru_maxrss / 1024}


def _bench_tracker(customers: int, orders, tmp: Path, repeat: int) -> list[dict]:
    """Rows of the as-a-user table for one log size (see the module docstring)."""
    events = tmp / f"tracker_{customers}.parquet"
    subprocess.run([sys.executable, __file__, "--worker", "make_tracker", str(customers),
                    str(events)], check=True)
    load = run("jm_load", 1, events, repeat)
    print(f"tracker log: {8 * customers:,} rows, {customers:,} customers; "
          f"load_journeys {load['seconds']:.2f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    global _WARMED
    if not _WARMED:  # fill the .pyc folder of _compiled_env with every module the commands
        # import (third-party ones included: their site-packages .pyc files are not read under
        # PYTHONPYCACHEPREFIX), or the first timed process pays 3-4 s of compiling them
        warm = tmp / "warm-up.nc"
        _cli(["fit", "markov", str(events), "--order", "1", "-o", str(warm)])
        _cli(["attribute", str(warm), "--json"])
        _cli(["attribute", str(events), "--order", "1", "--json"])
        _proc([sys.executable, __file__, "--worker", "ca_e2e", "1", str(events)])
        _WARMED = True
    rows = []
    for k in orders:
        model = tmp / f"m_{customers}_{k}.nc"
        row = {"n": customers, "order": k, "load_s": load["seconds"],
               "loadavg": [os.getloadavg()[0]]}
        row["fit"] = _best(["fit", "markov", str(events), "--order", str(k), "-o", str(model)],
                           repeat)
        row["attr"] = _best(["attribute", str(model), "--json"], repeat)
        row["attr0"] = _best(["attribute", str(model), "--json", "--draws", "0"], repeat)
        row["loadavg"].append(os.getloadavg()[0])
        row["one"] = _best(["attribute", str(events), "--order", str(k), "--json"], repeat)
        row["ca"] = _best_proc([sys.executable, __file__, "--worker", "ca_e2e", str(k),
                                str(events)], repeat)
        row["loadavg"].append(os.getloadavg()[0])
        print(f"  order {k}: {row}", flush=True)
        rows.append(row)
    return rows


def _best(args: list[str], repeat: int) -> dict:
    """The fastest of ``repeat`` runs of a command (the least disturbed on a shared machine)."""
    return min((_cli(args) for _ in range(repeat)), key=lambda r: r["seconds"])


def _best_proc(cmd: list[str], repeat: int) -> dict:
    """The fastest of ``repeat`` runs of a process."""
    return min((_proc(cmd) for _ in range(repeat)), key=lambda r: r["seconds"])


def _print_tracker(rows) -> None:
    head = (f"{'customers':>9} {'k':>2} | {'fit s':>6} {'(read)':>6} {'attr s':>6} "
            f"{'(pt)':>5} {'jm s':>6} {'jm cpu':>6} {'jm MiB':>6} | {'CA s':>6} {'CA cpu':>6} "
            f"{'CA MiB':>6} | {'ratio':>6} {'(cpu)':>6} | {'CI/pt':>5} | {'load':>9}")
    print(head)
    print("-" * len(head))
    for r in rows:
        jm = r["fit"]["seconds"] + r["attr"]["seconds"]
        cpu = r["fit"]["cpu"] + r["attr"]["cpu"]
        peak = max(r["fit"]["peak_mib"], r["attr"]["peak_mib"])
        print(f"{r['n']:>9,} {r['order']:>2} | {r['fit']['seconds']:>6.2f} {r['load_s']:>6.2f} "
              f"{r['attr']['seconds']:>6.2f} {r['attr0']['seconds']:>5.2f} {jm:>6.2f} "
              f"{cpu:>6.2f} {peak:>6.0f} | {r['ca']['seconds']:>6.2f} {r['ca']['cpu']:>6.2f} "
              f"{r['ca']['peak_mib']:>6.0f} | {r['ca']['seconds'] / jm:>5.1f}x "
              f"{r['ca']['cpu'] / cpu:>5.1f}x | "
              f"{r['attr']['seconds'] / r['attr0']['seconds']:>4.1f}x | "
              f"{min(r['loadavg']):>4.1f}-{max(r['loadavg']):<4.1f}")
    print("jm s = `journeymodel fit markov EVENTS --order k -o m.nc` + `journeymodel attribute "
          "m.nc --json` (defaults), each a fresh process, wall seconds with imports; (read) = "
          "load_journeys alone in a fresh process (the ingestion inside fit); (pt) = "
          "`attribute --json --draws 0`; CI/pt = attr s / (pt). CA s = pandas path strings + "
          "ChannelAttribution markov_model, one fresh process. ratio = CA s / jm s; (cpu) "
          "the same by CPU seconds (user + system of the processes: steadier than wall on a "
          "shared machine). load = 1-minute load average (2 cores) during the row.")
    print("\nSEPARATE ROW, not the two commands above: the one command `journeymodel "
          "attribute EVENTS --order k --json` (fitted in memory, no model file; the same "
          "output as the two commands)")
    for r in rows:
        one = r["one"]
        print(f"{r['n']:>9,} {r['order']:>2} | one command {one['seconds']:>6.2f} s "
              f"{one['cpu']:>6.2f} cpu {one['peak_mib']:>6.0f} MiB | ratio to CA "
              f"{r['ca']['seconds'] / one['seconds']:>5.1f}x ({r['ca']['cpu'] / one['cpu']:.1f}x "
              "cpu)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20k journeys, orders 1-2")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--orders", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per measurement, fastest kept (default 1)")
    ap.add_argument("--skip-experience", action="store_true",
                    help="diagnostic: the Markov fit without its experience step")
    ap.add_argument("--tracker", action="store_true",
                    help="as a user runs it: tracker-style log, fit markov + attribute CLI "
                    "with defaults (orders 1 3 unless --orders)")
    ap.add_argument("--fit-phases", action="store_true",
                    help="phases of a fresh `fit markov` process on tracker logs (sizes 1000 "
                    "100000 and orders 1 3 unless given)")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        kind, order, data = args.worker
        if kind == "make":
            _make(int(order), Path(data))
            return
        if kind == "make_tracker":
            from bench_ingest import make_tracker_log

            make_tracker_log(8 * int(order), Path(data))
            return
        print(json.dumps(worker(kind, int(order), data)))
        return
    if args.tracker:
        _main_tracker(args)
        return
    if args.fit_phases:
        _main_fit_phases(args)
        return
    sizes, orders = ([20_000], [1, 2]) if args.quick else (args.sizes, args.orders)
    if args.skip_experience:
        os.environ["JM_BENCH_SKIP_EXPERIENCE"] = "1"
        print("DIAGNOSTIC: journeymodel's fit runs without its experience step")
    print(f"command: {' '.join(sys.argv)}")
    print(f"load average at start: {os.getloadavg()}, cpus: {os.cpu_count()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            rows += _bench_size(n, orders, Path(tmp), args.repeat)
    print(f"load average at end: {os.getloadavg()}")
    _print(rows)


def _main_tracker(args) -> None:
    given = "--orders" in sys.argv
    sizes = [20_000] if args.quick else args.sizes
    orders = args.orders if given else [1, 3]
    print(f"command: {' '.join(sys.argv)}")
    print(f"load average at start: {os.getloadavg()}, cpus: {os.cpu_count()}")
    rows = []
    global _ENV
    with tempfile.TemporaryDirectory() as tmp:
        _ENV = _compiled_env(Path(tmp))
        for n in sizes:
            rows += _bench_tracker(n, orders, Path(tmp), args.repeat)
    print(f"load average at end: {os.getloadavg()}")
    _print_tracker(rows)


#: The phases of :mod:`markov_fit_phases`, in the order of a run.
FIT_PHASES = ("start+exit", "imports", "load_journeys", "statistics",
              "censored_em", "build_chain", "solve", "summary", "save", "print", "rest")


def _main_fit_phases(args) -> None:
    sizes = args.sizes if "--sizes" in sys.argv else [1_000, 100_000]
    orders = args.orders if "--orders" in sys.argv else [1, 3]
    print(f"command: {' '.join(sys.argv)}")
    print(f"load average at start: {os.getloadavg()}, cpus: {os.cpu_count()}")
    global _ENV
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        _ENV = _compiled_env(Path(tmp))
        script = str(Path(__file__).with_name("markov_fit_phases.py"))
        for n in sizes:
            events = Path(tmp) / f"tracker_{n}.parquet"
            subprocess.run([sys.executable, __file__, "--worker", "make_tracker", str(n),
                            str(events)], check=True)
            for k in orders:
                cmd = [sys.executable, script, str(events), "--order", str(k), "-o",
                       str(Path(tmp) / "m.nc")]
                _phases_run(cmd)  # untimed: fills the .pyc folder
                runs = [_phases_run(cmd) for _ in range(max(args.repeat, 1))]
                best = min(runs, key=lambda r: r["wall"])
                rows.append({"n": n, "order": k, "load": os.getloadavg()[0], **best})
                print(f"  {n:,} customers, order {k}: {rows[-1]}", flush=True)
    print(f"load average at end: {os.getloadavg()}")
    head = (f"{'customers':>9} {'k':>2} | {'wall':>5} {'cpu':>5} | "
            + " ".join(f"{p[:9]:>9}" for p in FIT_PHASES) + " | load")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['n']:>9,} {r['order']:>2} | {r['wall']:>5.2f} {r['cpu']:>5.2f} | "
              + " ".join(f"{r['phases'].get(p, 0.0):>9.3f}" for p in FIT_PHASES)
              + f" | {r['load']:.1f}")
    print("wall, cpu = the whole `fit markov` process (seconds; cpu = user + system); the "
          "phases are wall seconds inside it: start+exit = Python's start before the first "
          "line and its exit after the last (process wall minus the in-process clock), "
          "imports = the CLI, reader and model modules, save and print include importing "
          "h5py and rich, rest = typer's parsing and dispatch and what no timer covers. "
          "Fastest of --repeat runs; load = 1-minute load average (2 cores).")


def _phases_run(cmd: list[str]) -> dict:
    """One run of :mod:`markov_fit_phases`: process wall and CPU, and its phases."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-2000:]}")
    phases = json.loads(err.strip().splitlines()[-1])
    phases["start+exit"] = wall - phases.pop("total")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "phases": phases}


def _make(n: int, tmp: Path) -> None:
    """Write the inputs (in a subprocess, so the parent stays small: children inherit the
    parent's ru_maxrss high-water mark)."""
    from journeymodel.data.journeys import load_journeys

    events = tmp / f"events_{n}.parquet"
    df = make_events(n)
    df.to_parquet(events)
    js = load_journeys(events, gap="3650D")
    _save_arrays(js, tmp / f"journeys_{n}.npz")
    _peer_paths(str(events)).to_parquet(tmp / f"paths_{n}.parquet")
    print(f"n={n}: {len(df)} events, {js.n_journeys} journeys", flush=True)


def _bench_size(n: int, orders, tmp: Path, repeat: int = 1) -> list[dict]:
    res = subprocess.run([sys.executable, __file__, "--worker", "make", str(n), str(tmp)],
                         capture_output=True, text=True, check=True)
    print(res.stdout.strip(), flush=True)
    events, arrays, paths = (tmp / f"events_{n}.parquet", tmp / f"journeys_{n}.npz",
                             tmp / f"paths_{n}.parquet")
    rows = []
    for k in orders:
        row = {"n": n, "order": k}
        loads = []
        for kind, data in (("jm_e2e", events), ("ca_e2e", events), ("jm_ci", arrays),
                           ("ca_mem", paths)):
            loads.append(os.getloadavg()[0])
            r = run(kind, k, data, repeat)
            row[kind] = r
            print(f"  order {k} {kind} (load {loads[-1]:.2f}): {r}", flush=True)
        row["load"] = (min(loads), max(loads))
        rows.append(row)
    return rows


def _print(rows) -> None:
    head = (f"{'n':>9} {'k':>2} | {'(a) jm s':>8} {'CA s':>7} {'ratio':>6} {'jm MiB':>7} "
            f"{'CA MiB':>7} | {'(b) jm s':>8} {'CA s':>7} {'ratio':>6} {'jm MiB':>7} "
            f"{'CA MiB':>7} | {'CI s':>6} {'CI/pt':>6} {'states':>6} | {'load':>9}")
    print(head)
    print("-" * len(head))
    for r in rows:
        a_j, a_c, b_j, b_c = r["jm_e2e"], r["ca_e2e"], r["jm_ci"], r["ca_mem"]
        print(f"{r['n']:>9} {r['order']:>2} | {a_j['seconds']:>8.2f} {a_c['seconds']:>7.2f} "
              f"{a_c['seconds'] / a_j['seconds']:>5.1f}x {a_j['peak_mib']:>7.0f} "
              f"{a_c['peak_mib']:>7.0f} | {b_j['fit_point']:>8.2f} {b_c['seconds']:>7.2f} "
              f"{b_c['seconds'] / b_j['fit_point']:>5.1f}x {b_j['peak_mib_point']:>7.0f} "
              f"{b_c['peak_mib']:>7.0f} | {b_j['intervals']:>6.2f} "
              f"{b_j['intervals'] / b_j['fit_point']:>5.1f}x {b_j['states']:>6} | "
              f"{r['load'][0]:>4.1f}-{r['load'][1]:<4.1f}")
    print("ratio = ChannelAttribution seconds / journeymodel seconds (higher: journeymodel "
          "faster). (b) jm MiB includes the raw journeys (8 events each) held in memory; CA "
          "MiB includes its aggregated path table; (b) jm MiB is the peak before the "
          "intervals. CI = 200 posterior draws of the rows (CI/pt: their time over fit + "
          "point estimate). load = 1-minute load average (2 cores) before the row's runs.")


if __name__ == "__main__":
    main()
