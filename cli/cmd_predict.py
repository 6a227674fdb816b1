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
        "-o", "--out", help="Write one row per in-flight journey to CSV or Parquet (on Dask: "
        "a new folder of Parquet part files, written by the workers).")] = None,
    persona_log: Annotated[Path | None, typer.Option(
        "--persona-log", help="Segments model: write EVENTS back with a persona column (each "
        "customer's segment) to CSV or Parquet, for fit conversion, fit churn, compare, "
        "report.", dir_okay=False)] = None,
    persona_name: Annotated[str, typer.Option(
        "--persona-name", help="Name of the column --persona-log adds.")] = "persona",
    read=None,
) -> None:
    """Predict what comes next for in-flight journeys, or each customer's segment.

    For each in-flight (censored) journey in EVENTS: P(conversion), expected remaining steps and
    the next-touchpoint distribution (Markov and stages models). With a segments model: one
    row per customer, its most probable segment, that probability and the probability of every
    segment.
    """
    from journeymodel.cli.options import load_journeys_cli, load_model_cli, require
    from journeymodel.cli.output import print_result, write_frame
    from journeymodel.cli.scaled import current_engine

    from journeymodel.io.outputs import check_table_output

    engine = current_engine()
    if engine is not None:
        _predict_on_dask(model, events, out, persona_log, as_json, read, engine)
        return
    if out is not None:  # before any work: not over an input, a known format, writable
        check_table_output(out, [model, events, read.config_path], "predictions")
    if persona_log is not None:
        check_table_output(persona_log, [model, events, read.config_path, out], "event log",
                           option="--persona-log")
    fitted = load_model_cli(model)
    predict_fn = require(fitted, "predict", "predict")
    if persona_log is not None:
        _write_persona_log(fitted, events, persona_log, persona_name, read)
    result = predict_fn(load_journeys_cli(events, read))
    if out is not None:
        write_frame(result.frame, out)
        typer.echo(f"wrote {len(result.frame):,} predictions to {out}", err=True)
        if not as_json:
            return
    print_result(result, as_json=as_json)


def _predict_on_dask(model: Path, events: str, out: Path | None, persona_log: Path | None,
                     as_json: bool, read, engine) -> None:
    """``--workers``/``--cluster``: each partition's predictions computed and written by its
    worker into the folder ``out`` (:func:`journeymodel.scale.outputs.write_parts`)."""
    from journeymodel.cli.options import load_model_cli, require
    from journeymodel.cli.output import print_json
    from journeymodel.cli.scaled import check_parts_output

    from journeymodel.errors import OptionError
    from journeymodel.scale.outputs import PredictRows, predict_json, write_parts

    if persona_log is not None:
        raise OptionError("--persona-log writes the whole event log back from one process; "
                          "on Dask write the segments with -o and join them to the log")
    out = check_parts_output(out, [model, events, read.config_path], "predictions", "predict")
    fitted = load_model_cli(model)
    require(fitted, "predict", "predict")
    _, parts = write_parts(events, read, engine, PredictRows(fitted), out,
                           what="predictions", progress=True)
    typer.echo(f"wrote {parts.rows:,} predictions to {out} ({len(parts.files):,} Parquet "
               f"part file{'s' if len(parts.files) != 1 else ''})", err=True)
    if as_json:
        print_json(predict_json(fitted, parts.summary, out, len(parts.files)))


def _write_persona_log(fitted, events: Path, target: Path, column: str, read) -> None:
    """``--persona-log``: the event log with each customer's segment as a column."""
    from journeymodel.errors import OptionError

    if fitted.model_type != "segments":
        raise OptionError(f"--persona-log needs a segments model (got a {fitted.model_type} "
                          "model); fit one with `journeymodel fit segments`")
    from journeymodel.models.segments.personas import write_persona_log

    rows = write_persona_log(fitted, events, target, read, column=column)
    typer.echo(f"wrote {rows:,} events with a {column!r} column to {target}", err=True)
