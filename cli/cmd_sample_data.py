"""``journeymodel sample-data -o FILE``: write a sample event log from the demo generator."""

from pathlib import Path
from typing import Annotated

import typer
from journeymodel.cli.options import SeedOpt


def register(app: typer.Typer, fit: typer.Typer) -> None:
    app.command(name="sample-data")(sample_data)


def sample_data(
    out: Annotated[Path, typer.Option("-o", "--out", dir_okay=False,
                                      help="File to write (.csv or .parquet).")],
    customers: Annotated[int, typer.Option("--customers", min=1,
                                           help="Number of customers.")] = 2000,
    seed: SeedOpt = 0,
    problems: Annotated[bool, typer.Option(
        "--problems/--no-problems", help="Plant the demo's pain points (a leaking purchase "
        "stage, support friction, a mobile -> desktop gap).")] = True,
) -> None:
    """Write a realistic sample event log with known ground truth.

    Personas, stages, conversions, churn, drop-offs, sentiment and devices.
    """
    from journeymodel.data.datasets import (
        MAX_SAMPLE_CUSTOMERS,
        sample_size_message,
        write_sample_events,
    )
    from journeymodel.errors import OptionError

    if out.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise OptionError(f"{out}: output must end in .csv or .parquet")
    if customers > MAX_SAMPLE_CUSTOMERS:
        raise OptionError(sample_size_message(customers, "--customers"))
    rows = write_sample_events(out, n_customers=customers, seed=seed, problems=problems)
    typer.echo(f"wrote {rows:,} events of {customers:,} customers to {out}")
