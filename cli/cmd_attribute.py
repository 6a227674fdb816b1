"""``journeymodel attribute M.nc``: channel attribution from a fitted Markov model.

Given an event log instead of a model file (``journeymodel attribute EVENTS.parquet``), the
command fits the Markov model in memory, as ``fit markov`` would with the same options, and
attributes it without writing a model file: one process instead of two, the same output as
``fit markov EVENTS -o m.nc`` then ``attribute m.nc`` (issue 20; what users of
ChannelAttribution's ``markov_model`` expect).
"""

from pathlib import Path
from typing import Annotated

import typer
from journeymodel.cli.cmd_fit_markov import Censored
from journeymodel.cli.options import JsonFlag, SeedOpt, with_read_options

from journeymodel.choices import ATTRIBUTION_METHODS, choice_enum

#: --method's choices, from the library's tuple.
Method = choice_enum("Method", ATTRIBUTION_METHODS)

FITTING = "Fitting an event log (instead of a model file)"
#: The first bytes of the files a model can be: HDF5 (netCDF-4) and classic netCDF.
MODEL_SIGNATURES = (b"\x89HDF\r\n\x1a\n", b"CDF\x01", b"CDF\x02")


def register(app: typer.Typer, fit: typer.Typer) -> None:
    app.command(name="attribute")(attribute)


@with_read_options
def attribute(
    model_or_events: Annotated[str, typer.Argument(
        help="A fitted Markov model file (.nc), or an event log as `fit markov` reads it (the "
        "model is then fitted in memory; no model file is written).", show_default=False)],
    method: Annotated[Method, typer.Option(
        "--method", help="removal: exact removal effects with credible intervals; "
        "first/last/linear touch; shapley: Shapley values on the chain.")] = Method.removal,
    draws: Annotated[int, typer.Option(
        "--draws", min=0, help="Posterior draws for the credible intervals (0: none; at most "
        "100,000). The default keeps the Monte-Carlo error of the interval's width under 1% "
        "of the width.")] = 10_000,
    intervals: Annotated[str, typer.Option(
        "--intervals", help="How removal-effect intervals are made: draws (quantiles of "
        "--draws posterior draws), linear (linearised posterior, exact gradients, no "
        "Monte-Carlo error, the cost of a few solves), auto (draws for small chains, "
        "linear above; by size, so the same every run).")] = "auto",
    ci: Annotated[float, typer.Option("--ci", help="Credible interval mass.")] = 0.94,
    seed: SeedOpt = 0,
    as_json: JsonFlag = False,
    out: Annotated[Path | None, typer.Option(
        "-o", "--out", dir_okay=False, help="Also write the table to CSV or Parquet.")] = None,
    order: Annotated[str | None, typer.Option(
        "--order", help="Window length 1..4, or auto [default: 1].", rich_help_panel=FITTING,
        show_default=False)] = None,
    prior: Annotated[float | None, typer.Option(
        "--prior", help="Dirichlet concentration on every feasible next state [default: 0].",
        rich_help_panel=FITTING, show_default=False)] = None,
    keep_repeats: Annotated[bool, typer.Option(
        "--keep-repeats", help="Repeated touchpoints as self-transitions.",
        rich_help_panel=FITTING)] = False,
    censored: Annotated[Censored | None, typer.Option(
        "--censored", help="In-flight journeys: survival or ignore, as in `fit markov` "
        "[default: survival].", rich_help_panel=FITTING, show_default=False)] = None,
    read=None,
) -> None:
    """Share conversions and conversion value among channels (Markov models)."""
    source = model_or_events
    from journeymodel.cli.options import import_numpy
    from journeymodel.cli.output import print_json, print_result, write_frame

    import_numpy()

    from journeymodel.errors import OptionError
    from journeymodel.models.markov.attribution import INTERVAL_METHODS, check_draws

    check_draws(draws, "--draws")  # bounded before any work
    if intervals not in INTERVAL_METHODS:
        raise OptionError(f"--intervals must be one of {', '.join(INTERVAL_METHODS)} "
                          f"(got {intervals!r})")
    fitting = {"--order": order, "--prior": prior, "--censored": censored,
               "--keep-repeats": keep_repeats or None}
    if out is not None:  # before any work: not over an input, a known format, writable
        from journeymodel.io.outputs import check_table_output

        check_table_output(out, [source, read.config_path], "attribution table")
    model_file = is_model_file(source)
    if model_file:
        from journeymodel.cli.options import current_engine

        fitting["--workers/--cluster"] = current_engine()
        given = [name for name, value in fitting.items() if value is not None]
        if given:
            raise OptionError(f"{', '.join(given)}: only for an event log; {source} is a "
                              "model file, fitted with its own settings")
    with _memory(model_file):
        if model_file:
            fitted = _load(Path(source))
        else:
            fitted = _fit_events(source, read, order, prior, keep_repeats, censored, seed)
        extra = {"intervals": intervals} if Method(method).value == "removal" else {}
        if as_json and out is None:  # the JSON alone: no table to build (nor pandas to import)
            found = fitted.attribution(Method(method).value, n_draws=draws, ci=ci, seed=seed,
                                       **extra)
            print_json(found.to_json())  # what attribute()'s Result holds as its json
            return
        result = fitted.attribute(Method(method).value, n_draws=draws, ci=ci, seed=seed, **extra)
        if out is not None:
            write_frame(result.frame, out)
        print_result(result, as_json=as_json)


def _memory(model_file: bool):
    """The block the command works in. For an event log, one
    :func:`~journeymodel.data.memory.reuse_freed_memory` for the reading, the fit and the draws:
    the draws' arrays (40 MB at order 1) reuse the memory the reading freed instead of faulting
    in fresh pages, and as the command is the process's last work, the free memory is not handed
    back first (issue 20). A model file: none (nor pyarrow's import, 40 ms, which that module
    makes)."""
    if model_file:
        from contextlib import nullcontext

        return nullcontext()
    from journeymodel.data.memory import reuse_freed_memory

    return reuse_freed_memory(release=False)

def is_model_file(source: str) -> bool:
    """Whether ``source`` names a model file rather than an event log: a ``.nc`` name, or a
    file that starts as HDF5 or netCDF does (whatever its name)."""
    path = Path(source)
    if path.suffix.lower() == ".nc":
        return True
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError:  # a folder, a glob, a URL, a missing file: the event log's reader says
        return False
    return head.startswith(MODEL_SIGNATURES)


def _load(path: Path):
    """The model file's model, which must offer attribution."""
    from journeymodel.cli.options import load_model_cli, require

    fitted = load_model_cli(path)
    require(fitted, "attribute", "attribute")
    return fitted


def _fit_events(events: str, read, order, prior, keep_repeats: bool, censored, seed: int):
    """The Markov model of the event log ``events``, fitted as ``fit markov`` fits it with the
    same options (in this process, or on Dask with ``--workers``/``--cluster``), but for what
    attribution does not read (the experience statistics and the chain's analytics, in this
    process: ``MarkovJourneyModel.fit_attribution``); the same attribution."""
    from journeymodel.cli.cmd_fit_markov import markov_model
    from journeymodel.cli.options import fit_attribution_cli

    return fit_attribution_cli(markov_model(order, prior, keep_repeats, censored, seed),
                               events, read)
