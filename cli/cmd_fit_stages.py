"""``journeymodel fit stages EVENTS -o M.nc``: hidden journey stages (an HMM) from an event log."""

from pathlib import Path
from typing import Annotated

import typer
from journeymodel.cli.options import EventsArg, JsonFlag, OutModel, SeedOpt, with_read_options

from journeymodel.choices import HMM_ENGINES, STAGE_TOPOLOGIES, STAGES_CENSORED, choice_enum

#: Where the stages step runs in ``journeymodel demo`` (after the Markov model).
DEMO_ORDER = 20


#: --topology's, --engine's and --censored's choices, from the library's tuples.
Topology = choice_enum("Topology", STAGE_TOPOLOGIES)
Engine = choice_enum("Engine", HMM_ENGINES)
Censored = choice_enum("Censored", STAGES_CENSORED)


def register(app: typer.Typer, fit: typer.Typer) -> None:
    fit.command(name="stages")(fit_stages)


def parse_stages(text: str):
    """``--stages``: a whole number >= 1, or ``auto``."""
    from journeymodel.errors import OptionError

    value = text.strip().lower()
    if value == "auto":
        return "auto"
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise OptionError(f"--stages must be a whole number >= 1 or auto (got {text!r})")


def parse_range(text: str) -> list[int]:
    """``--auto-range LOW,HIGH`` (or ``LOW..HIGH``)."""
    from journeymodel.errors import OptionError

    parts = text.replace("..", ",").split(",")
    if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
        lo, hi = (int(p) for p in parts)
        if 1 <= lo <= hi:
            return [lo, hi]
    raise OptionError(f"--auto-range must be LOW,HIGH with 1 <= LOW <= HIGH (got {text!r})")


@with_read_options
def fit_stages(
    events: EventsArg,
    out: OutModel,
    stages: Annotated[str, typer.Option(
        "--stages", help="Number of stages K, or auto (each K of --auto-range, lowest BIC).")
    ] = "4",
    topology: Annotated[Topology, typer.Option(
        "--topology", help="free: any transition; funnel: start in the first half of the "
        "stages, move forward or one stage back (stages are numbered in journey order either "
        "way).")] = Topology.free,
    restarts: Annotated[int, typer.Option("--restarts", min=1,
                                          help="Random EM starts per K (best kept).")] = 3,
    auto_range: Annotated[str, typer.Option("--auto-range",
                                            help="K range tried by --stages auto.")] = "2,8",
    max_iter: Annotated[int, typer.Option("--max-iter", min=1,
                                          help="EM iterations at most.")] = 500,
    engine: Annotated[Engine, typer.Option(
        "--engine", help="Forward-backward: numba (fast) or hmmlearn (reference, slow).")
    ] = Engine.numba,
    censored: Annotated[Censored, typer.Option(
        "--censored", help="In-flight journeys: survival (default) counts that their last "
        "step has not been left yet after the time already spent silent; ignore gives it "
        "exit factor 1 (the fit before issue 17: drop-off comes out low on a log cut "
        "mid-stream).")] = Censored.survival,
    seed: SeedOpt = 0,
    as_json: JsonFlag = False,
    read=None,
) -> None:
    """Fit hidden journey stages (an HMM) and save them as a netCDF model file.

    Latent stages emit touchpoints and end journeys in conversion, churn or drop-off; prints the
    stages, numbered in the order journeys go through them.
    """
    from journeymodel.cli.options import fit_cli
    from journeymodel.cli.output import print_fit_result

    from journeymodel.io.outputs import check_not_input
    from journeymodel.models.stages.model import StageModel

    check_not_input(out, [events, read.config_path])  # never over the log or the config
    model = StageModel(n_stages=parse_stages(stages), topology=Topology(topology).value,
                       restarts=restarts, seed=seed, max_iter=max_iter,
                       engine=Engine(engine).value, auto_range=parse_range(auto_range),
                       censored=Censored(censored).value)
    _fit_with_progress(model, lambda **kw: fit_cli(model, events, read, **kw))
    model.save(out)
    result = model.summary()
    print_fit_result(result, out, as_json=as_json)


def _fit_with_progress(model, journeys):
    """Fit, showing each K and restart on stderr (rich status line); ``journeys`` may be a
    function ``fit(progress=...)`` instead (:func:`journeymodel.cli.options.fit_cli`)."""
    from rich.console import Console

    err = Console(stderr=True, highlight=False)
    with err.status("fitting stages ...") as status:
        def progress(line: str) -> None:
            status.update(f"fitting stages: {line}")

        if callable(journeys):
            return journeys(progress=progress)
        return model.fit(journeys, progress=progress)


def demo_step(events: Path, out_dir: Path, seed: int, run=None) -> Path | None:
    """Fit stages on the demo log (K by BIC), save out_dir/stages.nc, print the stages."""
    from journeymodel.cli.demo_run import journeys_of, saved
    from journeymodel.cli.output import console, print_result

    from journeymodel.models.stages.model import StageModel

    model = StageModel(n_stages="auto", auto_range=[2, 6], seed=seed)
    _fit_with_progress(model, journeys_of(events, run))
    path = saved(model, out_dir / "stages.nc", run)
    console().print(f"[bold]Hidden journey stages[/bold] ({model.n_stages_} stages chosen by "
                    f"BIC) saved to {path}")
    result = model.summary()
    result.tables = result.tables[:2] + result.tables[3:]  # stages, transitions, selection
    print_result(result, as_json=False)
    return path
