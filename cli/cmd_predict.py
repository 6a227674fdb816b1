"""``journeymodel predict M.nc EVENTS``: what comes next for in-flight journeys."""

from pathlib import Path
from typing import Annotated

import typer
from journeymodel.cli.options import EventsArg, JsonFlag, ModelArg, with_read_options


def register(app: typer.Typer, fit: typer.Typer) -> None:
    app.command(name="predict")(predict)


@with_read_options
def predict(
    model: ModelArg,
    events: EventsArg,
    as_json: JsonFlag = False,
    out: Annotated[Path | None, typer.Option(
        "-o", "--out", help="Write one row per in-flight journey to CSV or Parquet.",
        dir_okay=False)] = None,
    read=None,
) -> None:
    """Predict what comes next for in-flight journeys (Markov and stages models).

    For each in-flight (censored) journey in EVENTS: P(conversion), expected remaining steps and
    the next-touchpoint distribution.
    """
    from journeymodel.cli.options import load_journeys_cli, load_model_cli, require
    from journeymodel.cli.output import print_result, write_frame

    from journeymodel.io.outputs import check_table_output

    if out is not None:  # before any work: not over an input, a known format, writable
        check_table_output(out, [model, events, read.config_path], "predictions")
    fitted = load_model_cli(model)
    predict_fn = require(fitted, "predict", "predict")
    result = predict_fn(load_journeys_cli(events, read))
    if out is not None:
        write_frame(result.frame, out)
        typer.echo(f"wrote {len(result.frame)} predictions to {out}", err=True)
        if not as_json:
            return
    print_result(result, as_json=as_json)
