"""``journeymodel pain-points M.nc [S.nc ...]``: leaks, friction and channel/device gaps."""

from pathlib import Path
from typing import Annotated

import typer
from journeymodel.cli.options import JsonFlag, SeedOpt

DEMO_ORDER = 25  # after the Markov (10) and stages (20) fits


def register(app: typer.Typer, fit: typer.Typer) -> None:
    app.command(name="pain-points")(pain_points)


def pain_points(
    models: Annotated[list[Path], typer.Argument(
        help="Fitted markov and/or stages model files (.nc).", exists=False)],
    top: Annotated[int, typer.Option("--top", help="Items per kind.")] = 10,
    ci: Annotated[float, typer.Option("--ci", help="Interval mass.")] = 0.94,
    min_prob: Annotated[float, typer.Option(
        "--min-prob", help="List leaks and gaps only where the posterior probability that "
        "they are worse than the baseline is at least this.")] = 0.9,
    seed: SeedOpt = 0,
    as_json: JsonFlag = False,
    out: Annotated[Path | None, typer.Option(
        "-o", "--out", dir_okay=False, help="Also write every item to CSV or Parquet.")] = None,
) -> None:
    """Rank what to fix: leaks, friction and channel/device gaps.

    Leaks (where journeys that could convert are lost), friction (lowest sentiment) and
    channel/device gaps (switches followed by drop-off), each with its cost, interval and the
    journeys behind it.
    """
    from journeymodel.cli.options import load_model_cli
    from journeymodel.cli.output import print_result, write_frame

    from journeymodel.analysis.painpoints import check_model, find_pain_points
    from journeymodel.io.outputs import check_table_output

    if out is not None:  # before any work: not over an input, a known format, writable
        check_table_output(out, models, "pain-points table")
    fitted = []
    for path in models:
        fitted.append(load_model_cli(path))
        check_model(fitted[-1], source=str(path))  # errors name the file
    found = find_pain_points(fitted, top=top, seed=seed, ci=ci, min_prob=min_prob)
    result = found.result(ci)
    if out is not None:
        import pandas as pd

        frame = pd.DataFrame([{"category": k, **item} for k, items in found.to_json().items()
                              for item in items])
        write_frame(frame, out)
    print_result(result, as_json=as_json)


def demo_step(events: Path, out_dir: Path, seed: int, run=None) -> None:
    """Print the top three pain points of each kind from the demo's Markov and stages models
    (``run``: the models already in memory, :class:`journeymodel.cli.demo_run.DemoRun`)."""
    from journeymodel.cli.demo_run import model_at
    from journeymodel.cli.output import console, print_result

    from journeymodel.analysis.painpoints import find_pain_points

    paths = [p for p in (out_dir / "markov.nc", out_dir / "stages.nc") if p.exists()]
    if not paths:
        return None
    found = find_pain_points([model_at(p, run) for p in paths], top=3, seed=seed)
    console().print("[bold]Pain points[/bold] (top 3 of each kind; "
                    f"`journeymodel pain-points {' '.join(str(p) for p in paths)}` for all)")
    print_result(found.result(), as_json=False)
    return None
