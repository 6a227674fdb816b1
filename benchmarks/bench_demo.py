"""Where the seconds of ``journeymodel demo`` go, step by step (issue 20: under 20 s warm).

The demo runs in a fresh process as a user runs it (``journeymodel.cli.app.main``); this script
wraps, in that process, each demo step (the ``demo_step`` of every command module: Markov,
stages, pain points, conversion, churn, report), the sample log's writing and description, and
inside the steps the reading of logs, the saving and loading of model files and the report's
sections, and prints each one's wall and CPU seconds (CPU: the whole process, all threads; a
steadier figure than wall time when other work shares the machine). Rows nested in a step
(reading, files, report sections) are part of that step's time, not added to it.

Usage::

    .venv/bin/python benchmarks/bench_demo.py                   # one warm run (after a warm-up)
    .venv/bin/python benchmarks/bench_demo.py --runs 2 --no-warmup
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Functions timed inside the steps: (module, attribute, row label).
INNER = (
    ("journeymodel.data.journeys", "load_journeys", "  reading a log"),
    ("journeymodel.io.persist", "save_model", "  saving a model"),
    ("journeymodel.io.persist", "load_model", "  loading a model"),
    ("journeymodel.report.build", "_forecast_sections", "  report: forecasts"),
    ("journeymodel.report.sections.pain", "pain_section", "  report: pain points"),
    ("journeymodel.report.sections.data", "data_section", "  report: data"),
)


class Book:
    """Calls, wall and CPU seconds by label."""

    def __init__(self) -> None:
        self.rows: dict[str, list[float]] = {}

    def timed(self, func, label: str):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return func(*args, **kwargs)
            finally:
                row = self.rows.setdefault(label, [0, 0.0, 0.0])
                row[0] += 1
                row[1] += time.perf_counter() - wall
                row[2] += time.process_time() - cpu
        return wrapper


def child(out: str, result: str) -> None:
    """One demo in this process, timed; the rows written to ``result`` as JSON."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    book = Book()
    from journeymodel.cli import cmd_demo

    from journeymodel.report import build

    for module, attr, label in INNER:
        owner = importlib.import_module(module)
        setattr(owner, attr, book.timed(getattr(owner, attr), label))
    build.pain_section = sys.modules["journeymodel.report.sections.pain"].pain_section
    build.data_section = sys.modules["journeymodel.report.sections.data"].data_section
    for target in build.SECTION_BUILDERS.values():
        module, _, name = target.partition(":")
        owner = importlib.import_module(module)
        setattr(owner, name, book.timed(getattr(owner, name), f"  report: {name}"))
    steps = cmd_demo.demo_steps

    def timed_steps():
        return [book.timed(s, f"step {s.__module__.rsplit('.', 1)[-1].removeprefix('cmd_')}")
                for s in steps()]

    cmd_demo.demo_steps = timed_steps
    from journeymodel.cli.app import main

    code = main(["demo", "--out", out])
    rows = {"total": [1, time.perf_counter() - wall0, time.process_time() - cpu0],
            **book.rows}
    Path(result).write_text(json.dumps({"code": code, "rows": rows}))


def run(work: Path) -> dict:
    out, result = work / f"demo-{time.time_ns()}", work / "result.json"
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, __file__, "--child", str(out), str(result)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"demo failed:\n{proc.stderr[-3000:]}")
    found = json.loads(result.read_text())
    found["load"] = load
    return found


def table(results: list[dict]) -> str:
    """Markdown: a row per label, wall and CPU columns per run; "outside the steps" is the
    total less the steps (imports, the sample log written and described, printing)."""
    head = [""] + [f"run {i + 1} {what}" for i in range(len(results)) for what in ("wall", "cpu")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        steps = [v for k, v in r["rows"].items() if k.startswith("step ")]
        r["rows"]["outside the steps"] = [1, r["rows"]["total"][1] - sum(v[1] for v in steps),
                                          r["rows"]["total"][2] - sum(v[2] for v in steps)]
    for label in results[0]["rows"]:
        cells = []
        for r in results:
            n, wall, cpu = r["rows"].get(label, [0, 0.0, 0.0])
            calls = f" ({int(n)}x)" if n > 1 else ""
            cells += [f"{wall:.1f}{calls}", f"{cpu:.1f}"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| load at start | " + " | ".join(f"{r['load']:.1f} | " for r in results)
                 + " |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--no-warmup", action="store_true",
                        help="skip the untimed first run that warms the compile caches")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        work = Path(tmp)
        if not args.no_warmup:
            run(work)
        results = [run(work) for _ in range(args.runs)]
    print("Seconds of `journeymodel demo` (wall | CPU of the whole process, all threads):\n")
    print(table(results))
    print(f"\n{os.cpu_count()} cores; load: 1-minute load average at the start of each run")


if __name__ == "__main__":
    main()
