"""``journeymodel simulate M.nc -n N -o OUT``: journeys drawn from a fitted model."""

from pathlib import Path
from typing import Annotated

import typer
from journeymodel.cli.options import ModelArg, SeedOpt


def register(app: typer.Typer, fit: typer.Typer) -> None:
    app.command(name="simulate")(simulate)


def simulate(
    model: ModelArg,
    n: Annotated[int, typer.Option("-n", "--journeys", min=1,
                                   help="Number of journeys to simulate.")] = 1000,
    out: Annotated[Path, typer.Option("-o", "--out", dir_okay=False,
                                      help="Event log to write (.parquet or .csv).")] = Path(
        "simulated.parquet"),
    seed: SeedOpt = 0,
) -> None:
    """Simulate N journeys from a fitted Markov or stages model, written as a canonical event log
    (customer_id, timestamp, touchpoint) that `describe` and `fit` read back."""
    from journeymodel.cli.options import load_model_cli, require
    from journeymodel.cli.output import write_frame

    fitted = load_model_cli(model)
    events = require(fitted, "simulate", "simulate")(n, seed=seed)
    write_frame(events, out)
    typer.echo(f"wrote {len(events)} events of {n} simulated journeys to {out}")
