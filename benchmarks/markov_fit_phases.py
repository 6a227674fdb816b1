"""One ``journeymodel fit markov`` (or ``attribute``) process with its phases timed
(``bench_markov.py --fit-phases`` runs it; issue 20).

    .venv/bin/python benchmarks/markov_fit_phases.py EVENTS --order K -o M.nc
    .venv/bin/python benchmarks/markov_fit_phases.py attribute EVENTS --order K --json

Runs the command as ``journeymodel fit markov ...`` (or ``journeymodel attribute ...``) does
(the CLI's ``main``, in this fresh process), with wall-clock timers around its phases, and
prints them as one JSON line on stderr (stdout is the command's). ``statistics`` counts the
transitions on this thread while the holding times (their statistic and EM) are made on a
pool thread: the phase is the wall time of both together (``attribute EVENTS`` fits with
``MarkovJourneyModel.fit_attribution``, which counts less). ``imports`` is the time to import
the CLI, the reader and the model (numpy, pyarrow, typer; what every run pays before reading a
row); the phases after it are the calls named; ``rest`` is what no timer covers (typer's
parsing and dispatch, the imports inside the command, h5py's and rich's included in ``save``
and ``print``). Python's own start-up and exit are outside this process's clock: the parent
adds them (process wall minus ``total``).
"""

import json
import sys
import time

T0 = time.perf_counter()
PHASES: dict[str, float] = {}


def _timed(owner, name: str, label: str) -> None:
    """Wrap ``owner.name`` so that its calls add their wall time to ``PHASES[label]``."""
    func = getattr(owner, name)

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            PHASES[label] = PHASES.get(label, 0.0) + time.perf_counter() - start

    setattr(owner, name, timed)


def main() -> None:
    import journeymodel.cli.output as output
    from journeymodel.cli.app import main as cli_main

    import journeymodel.data.journeys as journeys
    import journeymodel.models.markov.model as markov
    from journeymodel.models.base import JourneyModel

    PHASES["imports"] = time.perf_counter() - T0
    attribute = sys.argv[1:2] == ["attribute"]
    # the statistics and holding times: the counts on this thread, the holding times (their
    # statistic and EM) on a pool thread meanwhile; one wall figure for both
    common = ((journeys, "load_journeys", "load_journeys"),
              (markov, "_stats_and_holding", "statistics"),
              (markov, "censored_allocation", "censored_em"),
              (markov, "build_chain", "build_chain"))
    if attribute:
        phases = (*common, (markov.MarkovJourneyModel, "attribution", "attribution"),
                  (output, "print_json", "print"), (output, "print_result", "print"))
    else:
        phases = (*common, (markov, "fundamental_solve", "solve"),
                  (markov.MarkovJourneyModel, "summary", "summary"),
                  (JourneyModel, "save", "save"), (output, "print_fit_result", "print"))
    for owner, name, label in phases:
        _timed(owner, name, label)
    # main([...]) returns its exit code; with no argument it would end the process itself
    # (os._exit after the command, the console script's way) before the phases are printed
    code = cli_main(sys.argv[1:] if attribute else ["fit", "markov", *sys.argv[1:]])
    if code:
        raise SystemExit(code)
    total = time.perf_counter() - T0
    PHASES["rest"] = total - sum(PHASES.values())
    PHASES["total"] = total
    print(json.dumps(PHASES), file=sys.stderr)
    _end_as_the_console_script(code)


def _end_as_the_console_script(code: int) -> None:
    """End the process as the console script does (``journeymodel.cli.app.main()``): streams
    flushed, ``atexit`` handlers run, then ``os._exit`` without the interpreter's teardown, so
    that start+exit measures what a user waits for."""
    import atexit
    import os

    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":
    main()
