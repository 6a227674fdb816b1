"""``journeymodel forecast M.nc``: conversions or retention ahead, with intervals.

Conversion and churn models forecast new journeys or customers (``--journeys``, ``--horizon``
in the model's unit); Markov and stages models forecast the journeys in flight in an event log
(``--from EVENTS --horizon 30D``, :mod:`journeymodel.analysis.forecast`).
"""

from pathlib import Path
from typing import Annotated

import typer
from journeymodel.cli.options import JsonFlag, ModelArg, SeedOpt, with_read_options

#: Model types forecast from the journeys in flight of an event log (``--from``).
IN_FLIGHT = ("markov", "stages")

FromOpt = Annotated[str | None, typer.Option(
    "--from", help="Event log whose journeys in flight are forecast (Markov and stages "
    "models): a file, a folder of files, a glob or an fsspec URL.", show_default=False)]
AsOfOpt = Annotated[str | None, typer.Option(
    "--as-of", help="Forecast as of this time; later events are not used [default: the end "
    "of observation of --from].", show_default=False)]
HorizonOpt = Annotated[str | None, typer.Option(
    "--horizon", help="How far ahead: a duration like 30D, 12h or 2W with --from (periods for "
    "period logs); churn models: periods in the model's time unit.", show_default=False)]


def register(app: typer.Typer, fit: typer.Typer) -> None:
    app.command(name="forecast")(forecast)


@with_read_options
def forecast(
    model: ModelArg,
    horizon: HorizonOpt = None,
    journeys: Annotated[int | None, typer.Option(
        "--journeys", min=1, help="Number of new journeys (conversion models).")] = None,
    events: FromOpt = None,
    as_of: AsOfOpt = None,
    draws: Annotated[int | None, typer.Option(
        "--draws", help="Posterior draws, each with its own chance (with --from) "
        "[default: 200].", show_default=False)] = None,
    as_json: JsonFlag = False,
    out: Annotated[Path | None, typer.Option(
        "-o", "--out", help="Write the forecast table to CSV/Parquet (with --from: one row "
        "per journey in flight; on Dask a new folder of Parquet part files, written by the "
        "workers).")] = None,
    seed: SeedOpt = 0,
    discount_rate: Annotated[float | None, typer.Option(
        "--discount-rate", help="Yearly discount rate of customer lifetime value (bgnbd "
        "churn models fitted with --value-col), 0.1 for 10% [default: 0].",
        show_default=False)] = None,
    read=None,
) -> None:
    """Forecast conversions or retention ahead, with credible intervals.

    Conversion models: expected conversions for new journeys. Churn models: survivors and
    expected transactions ahead. Markov and stages models (--from EVENTS --horizon 30D): the
    journeys in flight continued to the horizon: conversions, churns and drop-offs, and
    conversions per day.
    """
    from journeymodel.cli.options import load_model_cli
    from journeymodel.cli.output import print_result, write_frame
    from journeymodel.cli.scaled import check_parts_output, current_engine

    from journeymodel.io.outputs import check_table_output

    inputs = [model, events, read.config_path]
    if out is not None and current_engine() is not None and events is not None:
        out = check_parts_output(out, inputs, "forecast rows", "forecast")  # before any work
    elif out is not None:  # before any work: not over an input, a known format, writable
        check_table_output(out, inputs, "forecast table")
    fitted = load_model_cli(model)
    if fitted.model_type in IN_FLIGHT:
        if discount_rate is not None:
            from journeymodel.errors import OptionError

            raise OptionError(f"--discount-rate applies to churn models (customer lifetime "
                              f"value), not to a {fitted.model_type} model")
        result = _in_flight(fitted, events, horizon, journeys, as_of, draws, read, seed, out)
        if current_engine() is not None:  # the workers wrote the rows
            out = None
    else:
        if current_engine() is not None:
            from journeymodel.errors import OptionError

            raise OptionError(f"--workers/--cluster read the event log of --from on Dask; a "
                              f"{fitted.model_type} model's forecast reads no event log, "
                              "drop the option")
        result = _ahead(fitted, events, horizon, journeys, as_of, draws, seed, discount_rate)
    if out is not None and result.frame is not None:
        write_frame(result.frame, out)
        typer.echo(f"wrote the forecast to {out}", err=True)
    print_result(result, as_json=as_json)


def _in_flight(fitted, events, horizon, journeys, as_of, draws, read, seed, out=None):
    """Markov and stages models: the journeys in flight of ``--from`` (on Dask, the workers
    forecast them and write their rows to the folder ``out``)."""
    from journeymodel.cli.scaled import current_engine

    from journeymodel.analysis.forecast import forecast_in_flight, journeys_as_of
    from journeymodel.errors import OptionError

    kind = fitted.model_type
    if events is None:
        raise OptionError(f"a {kind} model forecasts the journeys in flight of an event log: "
                          "give it with --from EVENTS")
    if horizon is None:
        raise OptionError("--horizon is required with --from: a duration like 30D")
    if journeys is not None:
        raise OptionError(f"--journeys applies to conversion models, not to a {kind} model")
    n_draws = 200 if draws is None else draws
    engine = current_engine()
    if engine is None:
        log = journeys_as_of(events, read, as_of)
        forecast = forecast_in_flight(fitted, log, horizon, n_draws=n_draws, seed=seed)
    else:  # the log read and its journeys in flight forecast on the workers
        from journeymodel.scale.inflight import forecast_on_dask

        forecast, log, parts = forecast_on_dask(fitted, events, read, engine, horizon,
                                                as_of=as_of, n_draws=n_draws, seed=seed,
                                                out=out, progress=True)
        if parts is not None:
            typer.echo(f"wrote the forecast of {parts.rows:,} journeys in flight to {out} "
                       f"({len(parts.files):,} Parquet part file"
                       f"{'s' if len(parts.files) != 1 else ''})", err=True)
    result = forecast.to_result()
    if as_of is not None and log.ledger.dropped.get("after_observed_until", 0):
        if engine is None:
            _backtest(forecast, result, events, read)
        else:
            result.notes.append("No backtest on Dask: it compares the forecast with every "
                                "journey after --as-of in one process; run without "
                                "--workers/--cluster for it.")
    seen = fitted.journeys_.observed_until
    if seen == seen and seen > forecast.as_of:  # not NaN, and later than as-of
        result.notes.append("The model was fitted on events after --as-of: a forecast from "
                            "then (and its backtest) has seen part of the future; fit it with "
                            "--observed-until equal to --as-of.")
    return result


def _backtest(forecast, result, events, read) -> None:
    """The log goes on past --as-of: what happened next, beside the forecast (in place)."""
    from journeymodel.cli.options import load_journeys_cli

    from journeymodel.analysis.backtest import backtest

    full = load_journeys_cli(events, read)
    if full.observed_until < forecast.as_of + forecast.horizon:
        result.notes.append("No backtest: the log goes on past --as-of but ends before the "
                            "horizon does.")
        return
    backtest(forecast, full, forecast.start).add_to(result)


def _ahead(fitted, events, horizon, journeys, as_of, draws, seed, discount_rate=None):
    """Conversion and churn models (as before --from existed)."""
    from journeymodel.cli.options import require

    from journeymodel.errors import OptionError

    for name, value in (("--from", events), ("--as-of", as_of), ("--draws", draws)):
        if value is not None:
            raise OptionError(f"{name} applies to markov and stages models (journeys in "
                              f"flight), not to a {fitted.model_type} model")
    extra = {}
    if discount_rate is not None:
        if fitted.model_type != "churn":
            raise OptionError(f"--discount-rate applies to churn models (customer lifetime "
                              f"value), not to a {fitted.model_type} model")
        extra["discount_rate"] = discount_rate
    number = None
    if horizon is not None:
        try:
            number = float(horizon)
        except ValueError:
            raise OptionError(f"--horizon must be a number of periods for a "
                              f"{fitted.model_type} model (got {horizon!r})") from None
    return require(fitted, "forecast", "forecast")(horizon=number, journeys=journeys,
                                                   seed=seed, **extra)
