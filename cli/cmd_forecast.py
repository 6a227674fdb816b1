"""``journeymodel forecast M.nc``: conversions or retention ahead, with intervals."""

from pathlib import Path
from typing import Annotated

import typer
from journeymodel.cli.options import JsonFlag, ModelArg, SeedOpt


def register(app: typer.Typer, fit: typer.Typer) -> None:
    app.command(name="forecast")(forecast)


def forecast(
    model: ModelArg,
    horizon: Annotated[float | None, typer.Option(
        "--horizon", help="Periods ahead (churn models: in the model's time unit).")] = None,
    journeys: Annotated[int | None, typer.Option(
        "--journeys", min=1, help="Number of new journeys (conversion models).")] = None,
    as_json: JsonFlag = False,
    out: Annotated[Path | None, typer.Option("-o", "--out", dir_okay=False,
                                             help="Write the forecast table to CSV/Parquet.")
                   ] = None,
    seed: SeedOpt = 0,
) -> None:
    """Forecast conversions or retention ahead, with credible intervals.

    Conversion models: expected conversions for new journeys. Churn models: survivors and
    expected transactions ahead.
    """
    from journeymodel.cli.options import load_model_cli, require
    from journeymodel.cli.output import print_result, write_frame

    from journeymodel.io.outputs import check_table_output

    if out is not None:  # before any work: not over the model, a known format, writable
        check_table_output(out, [model], "forecast table")
    fitted = load_model_cli(model)
    result = require(fitted, "forecast", "forecast")(horizon=horizon, journeys=journeys,
                                                      seed=seed)
    if out is not None and result.frame is not None:
        write_frame(result.frame, out)
        typer.echo(f"wrote the forecast to {out}", err=True)
    print_result(result, as_json=as_json)
