"""``journeymodel simulate M.nc -n N -o OUT``: journeys drawn from a fitted model; with
``--from EVENTS --horizon 30D``, the continuations of the journeys in flight."""

from pathlib import Path
from typing import Annotated

import typer
from journeymodel.cli.options import ModelArg, SeedOpt, with_read_options


def register(app: typer.Typer, fit: typer.Typer) -> None:
    app.command(name="simulate")(simulate)


@with_read_options
def simulate(
    model: ModelArg,
    n: Annotated[int, typer.Option("-n", "--journeys", min=1,
                                   help="Number of journeys to simulate.")] = 1000,
    out: Annotated[Path, typer.Option("-o", "--out", dir_okay=False,
                                      help="Event log to write (.parquet or .csv).")] = Path(
        "simulated.parquet"),
    seed: SeedOpt = 0,
    events: Annotated[Path | None, typer.Option(
        "--from", help="Continue the journeys in flight of this event log instead of drawing "
        "new journeys.", exists=True, dir_okay=False, readable=True, show_default=False)
    ] = None,
    horizon: Annotated[str | None, typer.Option(
        "--horizon", help="With --from: how far ahead, a duration like 30D.",
        show_default=False)] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="With --from: continue the journeys in flight at this time; later "
        "events are not used [default: the end of observation].", show_default=False)] = None,
    draws: Annotated[int, typer.Option(
        "--draws", min=1, help="With --from: continuations per journey (each under its own "
        "posterior draw).")] = 1,
    read=None,
) -> None:
    """Simulate N journeys from a fitted Markov or stages model into an event log.

    A canonical event log (customer_id, timestamp, touchpoint) that `describe` and `fit` read
    back. Journeys stream to the file in chunks (bounded memory); the file appears only once it
    is complete. With --from EVENTS --horizon 30D: the journeys in flight continued to the
    horizon, each --draws times (customer_id CUSTOMER~DRAW, with source_customer and draw).
    """
    from journeymodel.cli.options import load_model_cli, require

    from journeymodel.io.outputs import check_table_output

    check_table_output(out, [model, events, read.config_path], "simulated event log")
    fitted = load_model_cli(model)
    if events is not None or horizon is not None or as_of is not None:
        _continue(fitted, events, horizon, as_of, draws, out, read, seed)
        return
    require(fitted, "simulate", "simulate")
    written = _simulate_with_progress(fitted, n, out, seed)
    typer.echo(f"wrote {written.events:,} events of {n:,} simulated journeys to {out}")


def _continue(fitted, events, horizon, as_of, draws, out, read, seed) -> None:
    """The continuations of the journeys in flight of ``--from``, streamed to ``out``."""
    from journeymodel.analysis.forecast import continuation_chunks, journeys_as_of
    from journeymodel.errors import OptionError
    from journeymodel.io.outputs import write_frames

    if events is None or horizon is None:
        raise OptionError("continuing journeys in flight needs both --from EVENTS and "
                          "--horizon (a duration like 30D)")
    log = journeys_as_of(events, read, as_of)
    frames = continuation_chunks(fitted, log, horizon, n_draws=draws, seed=seed)
    _, rows = write_frames(frames, out)
    typer.echo(f"wrote {rows:,} events continuing the journeys in flight ({draws:,} draw"
               f"{'s' if draws > 1 else ''} each) to {out}; new journeys are not simulated")


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
