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
    """Simulate N journeys from a fitted Markov or stages model into an event log.

    A canonical event log (customer_id, timestamp, touchpoint) that `describe` and `fit` read
    back. Journeys stream to the file in chunks (bounded memory); the file appears only once it
    is complete.
    """
    from journeymodel.cli.options import load_model_cli, require

    from journeymodel.io.outputs import check_table_output

    check_table_output(out, [model], "simulated event log")  # before any work
    fitted = load_model_cli(model)
    require(fitted, "simulate", "simulate")
    written = _simulate_with_progress(fitted, n, out, seed)
    typer.echo(f"wrote {written.events} events of {n} simulated journeys to {out}")


def _simulate_with_progress(fitted, n: int, out: Path, seed: int):
    """Stream the journeys to ``out``, with a status line on stderr when there are several
    chunks."""
    from rich.console import Console

    from journeymodel.models.simulate import CHUNK_JOURNEYS, simulate_to_file

    if n <= CHUNK_JOURNEYS:
        return simulate_to_file(fitted, n, out, seed=seed)
    err = Console(stderr=True, highlight=False)
    with err.status(f"simulating {n:,} journeys ...") as status:
        def progress(done: int) -> None:
            status.update(f"simulating: {done:,} of {n:,} journeys written")

        return simulate_to_file(fitted, n, out, seed=seed, progress=progress)
