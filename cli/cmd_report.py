"""``journeymodel report M1.nc [M2.nc ...] -o journey-map.html``: the journey map.

One self-contained HTML page (styles and images embedded, nothing fetched from the network),
with a section per model given, and each figure also as PNG with ``--png-dir``.
"""

from pathlib import Path
from typing import Annotated

import typer
from journeymodel.cli.options import JsonFlag, with_read_options

#: The report is the last step of ``journeymodel demo``: it draws the models the others saved.
DEMO_ORDER = 90
REPORT_NAME = "journey-map.html"

ModelsArg = Annotated[list[Path], typer.Argument(
    help="Fitted model files (.nc): any of markov, stages, conversion, churn, in any number.",
    exists=True, dir_okay=False, readable=True, show_default=False)]


def register(app: typer.Typer, fit: typer.Typer) -> None:
    app.command(name="report")(report)


@with_read_options
def report(
    models: ModelsArg,
    out: Annotated[Path, typer.Option("-o", "--out", help="The HTML file to write.",
                                      dir_okay=False)] = Path(REPORT_NAME),
    png_dir: Annotated[Path | None, typer.Option(
        "--png-dir", file_okay=False, help="Also write every figure there as PNG.")] = None,
    title: Annotated[str, typer.Option("--title", help="Title of the page.")
                     ] = "Customer journey map",
    events: Annotated[Path | None, typer.Option(
        "--events", exists=True, dir_okay=False, readable=True,
        help="The event log the models were fitted on: adds its own outcome mix and "
        "touchpoint counts to the data section.")] = None,
    compare: Annotated[list[str] | None, typer.Option(
        "--compare", help="Also compare the --events log by this grouping (as journeymodel "
        "compare --by): period:7D adds \"What changed\", device, persona or column:NAME "
        "\"Where segments differ\". Repeatable.", show_default=False)] = None,
    as_json: JsonFlag = False,
    read=None,
) -> None:
    """Draw the journey map of fitted models as one self-contained HTML page."""
    from journeymodel.cli.options import load_journeys_cli
    from journeymodel.cli.output import print_json

    from journeymodel.io.outputs import check_not_input
    from journeymodel.report.build import build_report, check_output

    inputs = [*models, events, read.config_path]
    check_not_input(out, inputs)  # before any work
    check_not_input(png_dir, inputs, option="--png-dir")
    check_output(out)
    if compare and events is None:
        from journeymodel.errors import OptionError

        raise OptionError("--compare needs the event log: give it with --events")
    with _status("Loading models"):
        named = _load(models)
        journeys = None if events is None else load_journeys_cli(events, read)
    with _status("Comparing groups"):
        comparisons = [_compare(events, journeys, by, read) for by in compare or ()]
    with _status("Drawing the journey map"):
        built = build_report(named, out, title=title, png_dir=png_dir, events=journeys,
                             comparisons=comparisons)
    if as_json:
        print_json({"report": str(built.path), "seconds": round(built.seconds, 2),
                    "sections": [s.id for s in built.sections],
                    "figures": [f.key for f in built.figures],
                    "png": [str(p) for p in built.png_paths]})
        return
    _print_done(built)


def _compare(events: Path, journeys, by: str, read):
    """The comparison of the log by ``by`` (a column is read again from the file)."""
    from journeymodel.analysis.compare import compare
    from journeymodel.stats.groups import parse_by

    source = events if parse_by(by).kind == "column" else journeys
    return compare(source, by, options=read)


def _load(paths: list[Path], load=None) -> dict:
    """The models of ``paths`` by name (``load(path)``: default, read the file)."""
    from journeymodel.cli.options import load_model_cli

    load = load or load_model_cli
    names = [p.name for p in paths]
    if len(set(names)) < len(names):
        names = [str(p) for p in paths]
    return {name: load(p) for name, p in zip(names, paths, strict=True)}


def _status(text: str):
    from rich.console import Console

    return Console(stderr=True).status(text)


def _print_done(built) -> None:
    from journeymodel.cli.output import console

    sections = ", ".join(s.title for s in built.sections)
    console().print(f"wrote {built.path} ({len(built.figures)} figures in "
                    f"{len(built.sections)} sections: {sections}; {built.seconds:.1f} s)")
    if built.png_paths:
        console().print(f"figures as PNG in {built.png_paths[0].parent}/")


def demo_step(events: Path, out_dir: Path, seed: int, run=None) -> Path | None:
    """Draw the models the earlier demo steps saved in out_dir (``*.nc``) into
    out_dir/journey-map.html and print its path (models of ``run`` as they are in memory)."""
    from journeymodel.cli.demo_run import journeys_of, model_at
    from journeymodel.cli.output import console

    from journeymodel.report.build import build_report

    paths = sorted(out_dir.glob("*.nc"))
    if not paths:
        console().print("[bold]journey map[/bold]: no model files in "
                        f"{out_dir}/, nothing to draw")
        return None
    built = build_report(_load(paths, lambda p: model_at(p, run)), out_dir / REPORT_NAME,
                         title="Customer journey map (demo)", events=journeys_of(events, run))
    console().print(f"[bold]journey map[/bold] of {len(paths)} models "
                    f"({', '.join(p.name for p in paths)}): {built.path.resolve()}")
    return built.path
