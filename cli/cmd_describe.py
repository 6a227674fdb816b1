"""``journeymodel describe EVENTS``: journeys, outcomes, top paths, ledger."""

from typing import Annotated

import typer
from journeymodel.cli.options import EventsArg, JsonFlag, with_read_options


def register(app: typer.Typer, fit: typer.Typer) -> None:
    app.command(name="describe")(describe)


@with_read_options
def describe(
    events: EventsArg,
    as_json: JsonFlag = False,
    top: Annotated[int, typer.Option("--top", help="How many top paths to list.", min=1)] = 10,
    read=None,
) -> None:
    """Summarise an event log: journeys, outcomes, top paths and the ledger.

    Customers, journeys, events, outcomes, path lengths, top paths, touchpoints, personas, and
    where every input row went (the ledger).
    """
    from journeymodel.cli.options import load_journeys_cli
    from journeymodel.cli.output import print_result
    from journeymodel.cli.scaled import current_engine

    from journeymodel.analysis.describe import describe_journeys, describe_summary

    engine = current_engine()
    if engine is None:
        result = describe_journeys(load_journeys_cli(events, read), top=top)
    else:  # on Dask: the partitions' summaries added (journeymodel.stats.summary)
        from journeymodel.scale.engine import map_log
        from journeymodel.stats.summary import journey_summary

        scaled = map_log(events, read, engine, journey_summary, progress=True)
        result = describe_summary(scaled.stats, scaled.ledger, top=top)
    result.json["config"] = read.config_path  # the config file used (journeymodel.toml), or None
    if read.config_path is not None:
        result.notes.append(f"reading options from config file {read.config_path}")
    print_result(result, as_json=as_json)
