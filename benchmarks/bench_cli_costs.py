"""Where `journeymodel fit markov` and `attribute` spend their time, step by step (issue 20).

    .venv/bin/python benchmarks/bench_cli_costs.py [--quick] [--customers 1000000]
        [--orders 1 3]
    .venv/bin/python benchmarks/bench_cli_costs.py --models m1k.nc m100k.nc   # attribute only
    .venv/bin/python benchmarks/bench_cli_costs.py --floor [--against REV] [--runs 7]
        [--customers 1000 100000]

``--floor``: the fixed costs of the one command as a user runs it, ``journeymodel attribute
EVENTS --order 1 --json`` in fresh processes (``python -m journeymodel``), ``--runs`` times on
a tracker log of each ``--customers`` size (default 1,000 and 100,000: at 1,000 the data work
is small, so its time is the floor); with ``--against REV`` the package of git revision ``REV``
runs beside this checkout, interleaved run by run (the same load for both), and their JSON must
be the same bytes. Then where one run's imports go (``-X importtime``, each module's own time
summed by top-level package: typer, numpy, pyarrow, journeymodel, the standard library).

Each command is re-enacted in a fresh process with a timer around each step, in the order
the command runs them (cli/cmd_fit_markov.py, cli/cmd_attribute.py): the imports (the CLI
app, then what the command imports), reading the log into journeys, the statistics
(transition counts with the experience and holding-time statistics), the fit from them (the
censored journeys' EM, the chain, its analytics), the model written as netCDF (building the
data tree, then the file), the summary printed; then loading the model file, the point
estimate, the intervals at the default draws, and printing (the model file's reading split into
the size check, h5py's reading and the checks with the model's construction, and the heavy
libraries the command imported listed last); then the one command
``attribute EVENTS --json`` (the same fit in memory, the attribution, no model file). Each
step shows wall and CPU seconds and its share of the command. ``journeymodel --help`` is timed
in its own process. The processes find compiled ``.pyc`` files, as after ``pip install``.

The data: the tracker-style log of ``benchmarks/bench_ingest.py`` (``make_tracker_log``,
imported), 8 rows per customer. On a shared machine wall times are pessimistic: the load
average is printed beside them, and CPU seconds are the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class Steps:
    """Wall and CPU seconds of named steps, in order."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float]] = []
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def done(self, name: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.rows.append((name, wall - self._wall, cpu - self._cpu))
        self._wall, self._cpu = wall, cpu


def fit_worker(events: str, order: int, out: str) -> list:
    """``fit markov EVENTS --order K -o OUT`` step by step (as cli/cmd_fit_markov.py)."""
    steps = Steps()
    import journeymodel.cli.app  # noqa: F401  (what every command pays first)

    steps.done("import the CLI app")
    from journeymodel.cli.options import load_journeys_cli  # noqa: F401
    from journeymodel.cli.output import print_fit_result

    from journeymodel.data.journeys import load_journeys  # noqa: F401
    from journeymodel.models.markov.model import MarkovJourneyModel  # noqa: F401

    steps.done("import the command's modules")
    model = _fit_steps(steps, events, order)
    from journeymodel.io.persist import model_tree, write_tree

    tree = model_tree(model)
    steps.done("model as a data tree (experience dataset included)")
    from journeymodel.io.outputs import atomic_path

    with atomic_path(Path(out), "model file") as tmp:
        write_tree(tree, tmp, model.model_type)
    steps.done("write the netCDF file")
    import io
    from contextlib import redirect_stdout

    with redirect_stdout(io.StringIO()):
        print_fit_result(model.summary(), Path(out), as_json=False)
    steps.done("summary printed")
    return steps.rows


def _fit_steps(steps: Steps, events: str, order: int):
    """Ingestion, statistics and the fit from them, as ``MarkovJourneyModel.fit`` runs them
    (inside ``reuse_freed_memory``)."""
    from journeymodel.data.journeys import load_journeys
    from journeymodel.data.memory import reuse_freed_memory
    from journeymodel.models.markov.model import MarkovJourneyModel
    from journeymodel.stats.transitions import transition_stats

    journeys = load_journeys(events)
    steps.done("read the log into journeys (ingestion)")
    model = MarkovJourneyModel(order=order)
    with reuse_freed_memory():
        stats = transition_stats(journeys, order, True)
        steps.done("statistics (transitions, experience, holding times)")
        model.fit_stats(stats)
    model._remember(journeys)
    steps.done("fit from the statistics (censored EM, chain, analytics)")
    return model


def one_worker(events: str, order: int) -> list:
    """``attribute EVENTS --order K --json`` step by step (as cli/cmd_attribute.py: fitted in
    memory, no model file)."""
    steps = Steps()
    import journeymodel.cli.app  # noqa: F401

    steps.done("import the CLI app")
    from journeymodel.cli.options import fit_cli  # noqa: F401
    from journeymodel.cli.output import print_json

    from journeymodel.data.journeys import load_journeys  # noqa: F401
    from journeymodel.models.markov.model import MarkovJourneyModel  # noqa: F401

    steps.done("import the command's modules")
    model = _fit_steps(steps, events, order)
    from journeymodel.cli import cmd_attribute

    draws = _default_draws(cmd_attribute.attribute)
    found = model.attribution("removal", n_draws=draws, seed=0)
    steps.done(f"attribution with intervals ({draws:,} draws)")
    import io
    from contextlib import redirect_stdout

    with redirect_stdout(io.StringIO()):
        print_json(found.to_json())
    steps.done("JSON printed")
    return steps.rows


def attribute_worker(model_path: str) -> list:
    """``attribute M.nc --json`` step by step (as cli/cmd_attribute.py and
    ``journeymodel.io.persist.load_model``), and which heavy libraries the command imported."""
    steps = Steps()
    import journeymodel.cli.app  # noqa: F401

    steps.done("import the CLI app")
    import h5py  # noqa: F401  (the model file's reader)
    import numpy  # noqa: F401

    steps.done("import numpy and h5py")
    from journeymodel.cli.output import print_json

    from journeymodel.io.h5tree import read_h5_tree
    from journeymodel.io.persist import H5_FILES, TYPE_ATTR, model_class
    from journeymodel.io.validate import check_file_size
    from journeymodel.io.validate_models import check_tree

    cls = model_class("markov")
    steps.done("import the command's modules (the model class's included)")
    check_file_size(model_path, model_path)
    steps.done("load: declared sizes checked (h5py metadata)")
    tree = read_h5_tree(model_path, H5_FILES, TYPE_ATTR)
    steps.done("load: every group read with h5py into numpy")
    check_tree(tree, "markov", cls, model_path)
    model = cls.from_datatree(tree)
    steps.done("load: checks, the model built")
    from journeymodel.cli import cmd_attribute

    draws = _default_draws(cmd_attribute.attribute)
    # --json: attribution(), no table (nor pandas)
    found = model.attribution("removal", n_draws=draws, seed=0)
    steps.done(f"attribution: point and intervals ({found.intervals or 'none'}, "
               f"--draws {draws:,})")
    import io
    from contextlib import redirect_stdout

    with redirect_stdout(io.StringIO()):
        print_json(found.to_json())
    steps.done("JSON printed")
    heavy = [m for m in HEAVY if m in sys.modules]
    t0, c0 = time.perf_counter(), time.process_time()
    model.attribution("removal", n_draws=0)  # notes, after the total: not in the command
    steps.rows.append((f"(of the attribution, the point estimate alone: "
                       f"{time.perf_counter() - t0:.2f} s wall, "
                       f"{time.process_time() - c0:.2f} s cpu, run again)", None, None))
    steps.rows.append((f"imported: {', '.join(heavy) or 'none'} of {', '.join(HEAVY)}",
                       None, None))
    return steps.rows


#: Libraries whose import costs a tenth of a second or more (scipy.sparse 0.15-0.3 s).
HEAVY = ("scipy.sparse", "scipy.sparse.linalg", "pandas", "xarray", "rich")


def _default_draws(fn) -> int:
    import inspect

    return int(inspect.signature(fn).parameters["draws"].default)


#: The environment of the timed processes: compiled .pyc files, as after pip install.
_ENV: dict[str, str] | None = None


def _compiled_env(tmp: Path) -> dict[str, str]:
    """An environment whose processes read and write ``.pyc`` files in ``tmp``, filled first
    by ``compileall`` for journeymodel and its CLI (without them, with
    ``PYTHONDONTWRITEBYTECODE`` set, every process compiles journeymodel's modules again)."""
    import journeymodel.cli

    import journeymodel

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    folders = [str(Path(m.__file__).parent) for m in (journeymodel, journeymodel.cli)]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *folders], env=env, check=True)
    return env


def _warm_up(tmp: Path, orders: list[int]) -> None:
    """Every step once, untimed, on a 1,000-customer log: the ``.pyc`` files of the libraries
    the commands import (numpy, h5py, scipy, pyarrow, ...) are then in the
    ``PYTHONPYCACHEPREFIX`` folder of :func:`_compiled_env`, as they are in site-packages
    after pip install; without this, the first process to import each compiled it."""
    events, model = tmp / "warm.parquet", tmp / "warm.nc"
    subprocess.run([sys.executable, __file__, "--worker", "make", "1000", str(events)],
                   check=True, env=_ENV)
    for order in sorted({1, 3, *orders}):
        _child("fit", str(events), str(order), str(model))
        _child("attribute", str(model))
        _child("one", str(events), str(order))


def _child(*args: str) -> list:
    res = subprocess.run([sys.executable, __file__, "--worker", *args], capture_output=True,
                         text=True, check=False, env=_ENV)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def _help_seconds() -> float:
    exe = str(Path(sys.executable).with_name("journeymodel"))
    t0 = time.perf_counter()
    subprocess.run([exe, "--help"], capture_output=True, check=True)
    return time.perf_counter() - t0


def _print(title: str, rows: list) -> None:
    """The steps' table; rows without times are notes, printed after the total."""
    notes = [r[0] for r in rows if r[1] is None]
    rows = [r for r in rows if r[1] is not None]
    total_w = sum(r[1] for r in rows)
    total_c = sum(r[2] for r in rows)
    print(f"\n{title} (load {os.getloadavg()[0]:.1f})")
    print(f"  {'step':<58} {'wall s':>7} {'cpu s':>7} {'share':>6}")
    for name, wall, cpu in rows:
        print(f"  {name:<58} {wall:>7.2f} {cpu:>7.2f} {100 * wall / total_w:>5.0f}%")
    print(f"  {'total':<58} {total_w:>7.2f} {total_c:>7.2f}")
    for note in notes:
        print(f"  {note}")


def floor(sizes: list[int], runs: int, against: str | None, tmp: Path) -> None:
    """``--floor``: fresh ``attribute EVENTS --order 1 --json`` processes, this checkout (and
    revision ``against``) interleaved; min and median wall and CPU seconds; the imports."""
    codes = {"this checkout": _ENV}
    if against:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_bayes import export_revision

        codes[against] = dict(_ENV, PYTHONPATH=str(export_revision(against, tmp / "against")))
    print(f"\nattribute EVENTS --order 1 --json, fresh processes, {runs} runs of each code, "
          "interleaved")
    print(f"  {'log':<20} {'code':<16} {'wall min':>9} {'wall med':>9} {'cpu min':>8} "
          f"{'cpu med':>8}")
    for n in sizes:
        events = tmp / f"floor{n}.parquet"
        subprocess.run([sys.executable, __file__, "--worker", "make", str(n), str(events)],
                       check=True, env=_ENV)
        args = [sys.executable, "-m", "journeymodel", "attribute", str(events), "--order", "1",
                "--json"]
        outputs = {code: _run_once(args, env)[2] for code, env in codes.items()}  # warm .pyc
        if len(set(outputs.values())) != 1:
            raise SystemExit(f"the JSON of {n:,} customers differs between {list(codes)}")
        times: dict[str, list[tuple[float, float]]] = {code: [] for code in codes}
        for _ in range(runs):
            for code, env in codes.items():
                times[code].append(_run_once(args, env)[:2])
        for code, pairs in times.items():
            wall, cpu = sorted(p[0] for p in pairs), sorted(p[1] for p in pairs)
            print(f"  {f'{n:,} customers':<20} {code:<16} {wall[0]:>9.3f} "
                  f"{wall[len(wall) // 2]:>9.3f} {cpu[0]:>8.3f} {cpu[len(cpu) // 2]:>8.3f}")
    print(f"  (load average {os.getloadavg()[0]:.1f}; JSON the same bytes for every code)")
    _import_breakdown(args)


def _run_once(args: list[str], env: dict) -> tuple[float, float, bytes]:
    """Wall and CPU seconds (the child's user + system) of one fresh process, its stdout."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(args, capture_output=True, check=True, env=env).stdout
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime), out


def _import_breakdown(args: list[str]) -> None:
    """One run's ``-X importtime``: each module's own microseconds summed by top-level
    package, largest first (the rest of the standard library as one line)."""
    err = subprocess.run([args[0], "-X", "importtime", *args[1:]], capture_output=True,
                         text=True, check=True, env=_ENV).stderr
    groups: dict[str, int] = {}
    for line in err.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        own, _, name = line[len("import time:"):].split("|")
        top = name.strip().split(".")[0].lstrip("_")
        top = top if top in ("typer", "numpy", "pyarrow", "journeymodel", "threadpoolctl",
                             "site") else "the rest (standard library)"
        groups[top] = groups.get(top, 0) + int(own)
    print(f"\nimports of one run (-X importtime, own time by package; total "
          f"{sum(groups.values()) / 1e6:.3f} s)")
    for name, us in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<32} {us / 1e6:>7.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20,000 customers, order 1")
    ap.add_argument("--customers", type=int, nargs="+", default=None,
                    help="customers of the log [1000000; --floor: 1000 100000]")
    ap.add_argument("--orders", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--models", nargs="+", type=Path, metavar="M.nc",
                    help="only the attribute breakdown of these fitted Markov model files")
    ap.add_argument("--floor", action="store_true",
                    help="fresh attribute EVENTS --order 1 --json processes (fixed costs)")
    ap.add_argument("--runs", type=int, default=7, help="--floor: runs of each code")
    ap.add_argument("--against", metavar="REV",
                    help="--floor: also the package of this git revision, interleaved")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "make":
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from bench_ingest import make_tracker_log

            make_tracker_log(8 * int(rest[0]), Path(rest[1]))
            return
        rows = (fit_worker(rest[0], int(rest[1]), rest[2]) if kind == "fit"
                else one_worker(rest[0], int(rest[1])) if kind == "one"
                else attribute_worker(rest[0]))
        print(json.dumps(rows))
        return
    if args.floor:
        args.customers = args.customers or [1_000, 100_000]
    else:
        args.customers = 20_000 if args.quick else (args.customers or [1_000_000])[0]
        args.orders = [1] if args.quick else args.orders
    print(f"command: {' '.join(sys.argv)}")
    print(f"load average at start: {os.getloadavg()}, cpus: {os.cpu_count()}")
    print(f"journeymodel --help: {_help_seconds():.2f} s wall (fresh process)")
    global _ENV
    with tempfile.TemporaryDirectory() as tmp:
        _ENV = _compiled_env(Path(tmp))
        if args.floor:
            floor(args.customers, args.runs, args.against, Path(tmp))
            print(f"\nload average at end: {os.getloadavg()}")
            return
        _warm_up(Path(tmp), args.orders)
        for model in args.models or []:
            _print(f"attribute {model} --json", _child("attribute", str(model.resolve())))
        if args.models:
            print(f"\nload average at end: {os.getloadavg()}")
            return
        events = Path(tmp) / "tracker.parquet"
        subprocess.run([sys.executable, __file__, "--worker", "make", str(args.customers),
                        str(events)], check=True)
        print(f"tracker log: {8 * args.customers:,} rows, {args.customers:,} customers")
        for order in args.orders:
            model = Path(tmp) / f"m{order}.nc"
            _print(f"fit markov --order {order}", _child("fit", str(events), str(order),
                                                         str(model)))
            _print(f"attribute (order {order}) --json",
                   _child("attribute", str(model)))
            _print(f"one command: attribute EVENTS --order {order} --json (no model file)",
                   _child("one", str(events), str(order)))
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
