"""``journeymodel attribute M.nc``: channel attribution from a fitted Markov model."""

from pathlib import Path
from typing import Annotated

import typer
from journeymodel.cli.options import JsonFlag, ModelArg, SeedOpt

from journeymodel.choices import ATTRIBUTION_METHODS, choice_enum

#: --method's choices, from the library's tuple.
Method = choice_enum("Method", ATTRIBUTION_METHODS)


def register(app: typer.Typer, fit: typer.Typer) -> None:
    app.command(name="attribute")(attribute)


def attribute(
    model: ModelArg,
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
) -> None:
    """Share conversions and conversion value among channels (Markov models)."""
    from journeymodel.cli.options import load_model_cli, require
    from journeymodel.cli.output import print_json, print_result, write_frame

    from journeymodel.errors import OptionError
    from journeymodel.io.outputs import check_table_output
    from journeymodel.models.markov.attribution import INTERVAL_METHODS, check_draws

    check_draws(draws, "--draws")  # bounded before any work
    if intervals not in INTERVAL_METHODS:
        raise OptionError(f"--intervals must be one of {', '.join(INTERVAL_METHODS)} "
                          f"(got {intervals!r})")
    if out is not None:  # before any work: not over an input, a known format, writable
        check_table_output(out, [model], "attribution table")
    fitted = load_model_cli(model)
    fn = require(fitted, "attribute", "attribute")
    extra = {"intervals": intervals} if Method(method).value == "removal" else {}
    if as_json and out is None:  # the JSON alone: no table to build (nor pandas to import)
        found = fitted.attribution(Method(method).value, n_draws=draws, ci=ci, seed=seed,
                                   **extra)
        print_json(found.to_json())  # what attribute()'s Result holds as its json
        return
    result = fn(Method(method).value, n_draws=draws, ci=ci, seed=seed, **extra)
    if out is not None:
        write_frame(result.frame, out)
    print_result(result, as_json=as_json)
