"""Where the seconds of the Bayesian fits (and of ``fit stages`` and ``journeymodel demo``) go.

Issue 20, "Bayesian fits at interactive speed": on the 2,000-customer sample data each fit
should take under 8 s with warm compile caches and under 20 s with empty ones, and
``journeymodel demo`` under 20 s warm. Every command runs in a fresh process, as a user runs
it, through the console script's entry point (``journeymodel.cli.app.main``); this script
wraps a few functions in that process to split the wall time into:

============  ================================================================================
imports       first imports of modules (PyMC, PyTensor, nutpie, ArviZ, ...), wherever they occur
reading       the event log to journeys (``load_journeys_cli`` / ``load_journeys``)
build         the PyMC model (the ``build`` callable given to ``bayes.sample``)
graph         log-density and gradient graphs, PyTensor's rewrites and linking
              (``nutpie.compile_pymc_model`` outside its ``numba.cfunc`` before issue 20)
compile       numba compiling, or loading PyTensor's and numba's cached code (the models
              with a hand-written density, ``journeymodel.fit.native``, have no build
              or graph: their numba C callbacks are compiled or loaded here)
tune, draw    nutpie's warm-up and posterior draws (split by their gradient evaluations)
fit           ``StageModel.fit`` (EM; its numba compiling is in ``compile``)
arviz         the trace to a DataTree, R-hat / ESS (``bayes.diagnose``)
netcdf        model files written (``persist.write_tree``: h5py, or ``DataTree.to_netcdf``)
other         the rest: option parsing, statistics, summaries, printing, report
============  ================================================================================

Each phase is counted exclusively (time inside a nested phase goes to the nested one), so the
phases add up to the wall time of the command; ``cpu`` is the process's CPU seconds (all
threads), a steadier figure than wall time when other work shares the machine. ``load`` is
the 1-minute load average when the run started (2 cores here: above 2, wall times stretch).

``plain``: the same command run once more as a user runs it (``python -m journeymodel ...``,
nothing instrumented, the same caches): the instrumented child imports every module it patches
(nutpie, xarray, ...) and wraps every import, so once a command stopped importing them its
instrumented wall time overstates it; the goal is judged on the plain run.

``warm``: the user's caches after an untimed run of the same command; ``cold``: fresh, empty
folders for PyTensor's compile directory (``PYTENSOR_FLAGS=base_compiledir=...``, which holds
its numba cache too) and numba's own (``NUMBA_CACHE_DIR``). ``--before REF`` runs the same
commands on the code of git revision REF too (exported to a temporary folder), and prints
both in one table.

Usage::

    .venv/bin/python benchmarks/bench_bayes.py                      # every case, warm and cold
    .venv/bin/python benchmarks/bench_bayes.py --before 7517e80     # ... and the code before
    .venv/bin/python benchmarks/bench_bayes.py --cases conversion sbg --caches warm
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASES = ("imports", "reading", "build", "graph", "compile", "tune", "draw", "fit", "arviz",
          "netcdf", "other")
CASES = {
    "conversion": ["fit", "conversion", "{events}", "--persona-col", "persona", "-o",
                   "{out}/m.nc"],
    "sbg": ["fit", "churn", "{events}", "--model", "sbg", "--persona-col", "persona", "-o",
            "{out}/m.nc"],
    "weibull": ["fit", "churn", "{events}", "--model", "weibull", "--persona-col", "persona",
                "-o", "{out}/m.nc"],
    "stages": ["fit", "stages", "{events}", "--stages", "auto", "-o", "{out}/m.nc"],
    "demo": ["demo", "--out", "{out}/demo"],
}
#: The goal of issue 20 (seconds): warm, cold; None where the issue sets none.
GOALS = {"conversion": (8, 20), "sbg": (8, 20), "weibull": (8, 20), "stages": (8, 20),
         "demo": (20, None)}


# -- the child: one command, instrumented ------------------------------------------------------


class Clock:
    """Exclusive wall and CPU time per phase on the main thread: entering a phase pauses the
    enclosing one (CPU time is the whole process's, all threads)."""

    def __init__(self) -> None:
        import threading

        self.main = threading.main_thread()
        self.current = threading.current_thread
        self.stack: list[list] = []  # [phase, wall started, cpu started]
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.cpu = dict.fromkeys(PHASES, 0.0)

    def on_main(self) -> bool:
        return self.current() is self.main

    def _charge(self, now: float, cpu: float) -> None:
        top = self.stack[-1]
        self.seconds[top[0]] += now - top[1]
        self.cpu[top[0]] += cpu - top[2]

    def enter(self, phase: str) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        if self.stack:
            self._charge(now, cpu)
        self.stack.append([phase, now, cpu])

    def leave(self) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self._charge(now, cpu)
        self.stack.pop()
        if self.stack:
            self.stack[-1][1:] = [now, cpu]

    def wrap(self, func, phase: str):
        def wrapper(*args, **kwargs):
            if not self.on_main():
                return func(*args, **kwargs)
            self.enter(phase)
            try:
                return func(*args, **kwargs)
            finally:
                self.leave()
        wrapper.__wrapped__ = func
        return wrapper

    def move(self, fraction: float, source: str, target: str, wall: float, cpu: float) -> None:
        """Move ``fraction`` of the ``wall`` and ``cpu`` seconds just charged to ``source``."""
        fraction = max(0.0, min(1.0, fraction))
        for book, spent in ((self.seconds, wall), (self.cpu, cpu)):
            book[source] -= fraction * spent
            book[target] += fraction * spent


def _patch(clock: Clock, module_name: str, attr: str, phase: str) -> None:
    """Wrap ``module.attr`` (a function, or ``Class.method`` given as "Class.method") if it
    exists in this version of the code."""
    import importlib

    try:
        owner = importlib.import_module(module_name)
    except ImportError:
        return
    *path, name = attr.split(".")
    for part in path:
        owner = getattr(owner, part, None)
        if owner is None:
            return
    func = getattr(owner, name, None)
    if func is not None:
        setattr(owner, name, clock.wrap(func, phase))


def _instrument_imports(clock: Clock) -> None:
    import builtins
    import importlib

    real_import, real_import_module = builtins.__import__, importlib.import_module

    def timed_import(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002
        if level or name in sys.modules or not clock.on_main() or (
                clock.stack and clock.stack[-1][0] == "imports"):
            return real_import(name, globals, locals, fromlist, level)
        clock.enter("imports")
        try:
            return real_import(name, globals, locals, fromlist, level)
        finally:
            clock.leave()

    def timed_import_module(name, package=None):
        if name in sys.modules or not clock.on_main() or (
                clock.stack and clock.stack[-1][0] == "imports"):
            return real_import_module(name, package)
        clock.enter("imports")
        try:
            return real_import_module(name, package)
        finally:
            clock.leave()

    builtins.__import__ = timed_import
    importlib.import_module = timed_import_module


def _instrument_sampling(clock: Clock) -> None:
    """nutpie.sample as tune + draw, its trace conversion as arviz. The sampling time is split
    in proportion to the leapfrog steps (gradient evaluations) of tuning and of the draws: all
    steps from the progress callback, the draws' from the trace's ``n_steps``. nutpie is
    imported as the code under test imports it (without ArviZ since issue 20, whose trace
    conversion is ``journeymodel.fit.nuts.batches_tree``)."""
    try:
        from journeymodel.fit.nuts import import_nutpie
    except ImportError:  # code before issue 20's ArviZ-free sampling
        import nutpie
    else:
        nutpie = import_nutpie()
    real_sample = nutpie.sample
    module = sys.modules["nutpie.sample"]
    module._arrow_to_arviz = clock.wrap(module._arrow_to_arviz, "arviz")
    pending: dict[str, float] = {}

    def split(tree) -> None:
        """Move the tuning's share of the sampling just timed from draw to tune."""
        if not pending:
            return
        drawn = float(tree["sample_stats"]["n_steps"].sum())
        total = max(pending["all"], drawn)
        clock.move(1.0 - drawn / total if total else 0.0, "draw", "tune", pending["wall"],
                   pending["cpu"])
        pending.clear()

    def sample(*args, **kwargs):
        inner = kwargs.get("progress_callback")
        steps = {}

        def callback(chains):
            steps["all"] = sum(int(c.total_num_steps) for c in chains)
            if inner is not None:
                inner(chains)

        kwargs["progress_callback"] = callback
        wall, cpu = clock.seconds["draw"], clock.cpu["draw"]
        clock.enter("draw")
        try:
            tree = real_sample(*args, **kwargs)
        finally:
            clock.leave()
        pending.update(all=steps.get("all", 0), wall=clock.seconds["draw"] - wall,
                       cpu=clock.cpu["draw"] - cpu)
        if not kwargs.get("return_raw_trace"):
            split(tree)
        return tree

    nutpie.sample = sample
    nuts = sys.modules.get("journeymodel.fit.nuts")
    if nuts is not None:
        real_tree = nuts.batches_tree

        def batches_tree(*args, **kwargs):
            tree = real_tree(*args, **kwargs)
            split(tree)
            return tree

        nuts.batches_tree = clock.wrap(batches_tree, "arviz")


def _instrument_numba(clock: Clock) -> None:
    import numba
    from numba.core import dispatcher

    real_compile = dispatcher.Dispatcher._compile_for_args
    dispatcher.Dispatcher._compile_for_args = clock.wrap(real_compile, "compile")
    real_cfunc = numba.cfunc

    def cfunc(*args, **kwargs):
        decorate = real_cfunc(*args, **kwargs)
        return clock.wrap(decorate, "compile") if callable(decorate) else decorate

    numba.cfunc = cfunc


def child(case: str, events: str, out: str, result_path: str) -> None:
    """Run one command in this (fresh) process with the phases timed; write them as JSON."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    clock = Clock()
    clock.enter("other")
    _instrument_imports(clock)
    import journeymodel

    _instrument_numba(clock)
    _patch(clock, "journeymodel.cli.options", "load_journeys_cli", "reading")
    _patch(clock, "journeymodel.data.journeys", "load_journeys", "reading")
    _patch(clock, "nutpie", "compile_pymc_model", "graph")
    for name in ("_free_variables", "_graphs", "_shared_inputs", "_compile", "_initial_point"):
        _patch(clock, "journeymodel.fit.logdensity", name, "graph")
    _patch(clock, "journeymodel.fit.bayes", "diagnose", "arviz")
    _patch(clock, "journeymodel.models.stages.model", "StageModel.fit", "fit")
    _patch(clock, "xarray", "DataTree.to_netcdf", "netcdf")
    _patch(clock, "journeymodel.io.persist", "write_tree", "netcdf")  # h5py (issue 20) or xarray
    _instrument_sampling(clock)
    from journeymodel.fit import bayes

    real_bayes_sample = bayes.sample

    def bayes_sample(build, *args, **kwargs):
        return real_bayes_sample(clock.wrap(build, "build") if callable(build) else build,
                                 *args, **kwargs)

    bayes.sample = bayes_sample
    for module in [m for name, m in sys.modules.items() if name.startswith("journeymodel")]:
        if getattr(module, "sample", None) is real_bayes_sample:
            module.sample = bayes_sample
    from journeymodel.cli.app import main

    args = [a.format(events=events, out=out) for a in CASES[case]]
    code = main(args)
    clock.leave()
    result = {"case": case, "code": code, "wall": time.perf_counter() - wall0,
              "cpu": time.process_time() - cpu0, "phases": clock.seconds,
              "cpu_phases": clock.cpu,
              "source": str(Path(journeymodel.__file__).parent.parent)}
    Path(result_path).write_text(json.dumps(result))


# -- the parent: fresh processes, caches, table ------------------------------------------------


def load_average() -> float:
    return os.getloadavg()[0]


def export_revision(ref: str, folder: Path) -> Path:
    """The package of git revision ``ref`` laid out to import from ``folder/pkg`` (``cli/``
    is ``journeymodel.cli`` there, as the installed package maps it)."""
    src = folder / "src"
    src.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    pkg = folder / "pkg"
    shutil.copytree(src / "journeymodel", pkg / "journeymodel")
    shutil.copytree(src / "cli", pkg / "journeymodel" / "cli")
    return pkg


def case_env(caches: str, pythonpath: Path | None, work: Path) -> dict:
    """The environment of a run: the code of ``pythonpath`` (None: this checkout), and for
    ``cold`` fresh, empty compile caches."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    if caches == "cold":
        empty = Path(tempfile.mkdtemp(prefix="cold-", dir=work))
        flags = [f for f in env.get("PYTENSOR_FLAGS", "").split(",")
                 if f and not f.startswith(("base_compiledir", "compiledir"))]
        env["PYTENSOR_FLAGS"] = ",".join([*flags, f"base_compiledir={empty / 'pytensor'}"])
        env["NUMBA_CACHE_DIR"] = str(empty / "numba")
    return env


def plain_run(case: str, events: Path, caches: str, pythonpath: Path | None,
              work: Path) -> tuple[float, float]:
    """Wall and CPU seconds of the command as a user runs it (``python -m journeymodel ...``,
    nothing instrumented; warm: the caches the instrumented runs left, cold: empty ones).
    The instrumented child imports every module it patches (nutpie, xarray, ...) and wraps
    every import, so its wall time overstates commands that no longer import them."""
    import resource

    env = case_env(caches, pythonpath, work)
    out = Path(tempfile.mkdtemp(prefix=f"{case}-plain-", dir=work))
    args = [a.format(events=events, out=out) for a in CASES[case]]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "journeymodel", *args], env=env, cwd=out,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{case} ({caches}, plain) failed:\n{proc.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_case(case: str, events: Path, caches: str, pythonpath: Path | None,
             work: Path) -> dict:
    """One fresh process (after an untimed warm-up run for warm caches), then the same
    command uninstrumented (:func:`plain_run`)."""
    env = case_env(caches, pythonpath, work)
    runs = 2 if caches == "warm" else 1
    for _ in range(runs):
        out = Path(tempfile.mkdtemp(prefix=f"{case}-", dir=work))
        result_path = out / "result.json"
        load = load_average()
        proc = subprocess.run([sys.executable, __file__, "--child", case, str(events),
                               str(out), str(result_path)], env=env, cwd=out,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              check=False)
        if proc.returncode != 0 or not result_path.exists():
            raise RuntimeError(f"{case} ({caches}) failed:\n{proc.stderr[-3000:]}")
    result = json.loads(result_path.read_text())
    plain_wall, plain_cpu = plain_run(case, events, caches, pythonpath, work)
    result.update(caches=caches, load=load, plain_wall=plain_wall, plain_cpu=plain_cpu)
    return result


def table(rows: list[dict], key: str = "phases") -> str:
    """Markdown table of the rows' phases (``key``: "phases" wall, "cpu_phases" CPU)."""
    plain = "plain" if key == "phases" else "plain cpu"
    head = ["case", "code", "caches", "load", *PHASES, "wall", "cpu", plain, "goal"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        goal = GOALS[r["case"]][0 if r["caches"] == "warm" else 1]
        verdict = "" if goal is None else (f"< {goal} s " + ("yes" if r["plain_wall"] < goal
                                                             else "no"))
        cells = [r["case"], r["label"], r["caches"], f"{r['load']:.1f}",
                 *(f"{r[key][p]:.1f}" if r[key][p] >= 0.05 else "-" for p in PHASES),
                 f"{r['wall']:.1f}", f"{r['cpu']:.1f}",
                 f"{r['plain_wall' if key == 'phases' else 'plain_cpu']:.1f}", verdict]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--caches", nargs="+", choices=["warm", "cold"],
                        default=["warm", "cold"])
    parser.add_argument("--before", metavar="REF",
                        help="also run the code of this git revision (before the change)")
    parser.add_argument("--events", type=Path,
                        help="event log (default: `journeymodel sample-data`, 2,000 customers)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-bayes-") as tmp:
        work = Path(tmp)
        events = args.events
        if events is None:
            events = work / "events.parquet"
            subprocess.run([sys.executable, "-m", "journeymodel", "sample-data", "-o",
                            str(events)], check=True, stdout=subprocess.DEVNULL)
        versions = [("after", None)]
        if args.before:
            versions.insert(0, (f"before ({args.before})",
                                export_revision(args.before, work / "before")))
        rows = []
        for case in args.cases:
            for caches in args.caches:
                for label, path in versions:
                    row = run_case(case, events.resolve(), caches, path, work)
                    row["label"] = label
                    rows.append(row)
                    print(f"{case:10} {label:20} {caches:5} wall {row['wall']:6.1f} s  "
                          f"cpu {row['cpu']:6.1f} s  plain {row['plain_wall']:6.1f} s  "
                          f"cpu {row['plain_cpu']:6.1f} s  load {row['load']:.1f}",
                          flush=True)
    print("\nWall seconds by phase:\n")
    print(table(rows))
    print("\nCPU seconds by phase (all threads; steadier than wall time on a busy machine):\n")
    print(table(rows, "cpu_phases"))
    print(f"\n{os.cpu_count()} cores; load: 1-minute load average at the start of each run; "
          "wall, cpu: the instrumented run (its phases add up to them); plain: the same "
          "command as a user runs it, nothing instrumented (the goal is judged on it)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        child(*sys.argv[2:])
    else:
        main()
