"""``journeymodel fit segments EVENTS -o S.nc``: behavioural segments (personas) from journeys."""

from typing import Annotated

import typer
from journeymodel.cli.cmd_fit_stages import parse_range
from journeymodel.cli.options import EventsArg, JsonFlag, OutModel, SeedOpt, with_read_options

from journeymodel.choices import SEGMENT_KINDS, STAGES_CENSORED, choice_enum

Kind = choice_enum("Kind", SEGMENT_KINDS)
#: --censored's choices: the stages (and Markov) models' handling of in-flight journeys.
Censored = choice_enum("Censored", STAGES_CENSORED)


def register(app: typer.Typer, fit: typer.Typer) -> None:
    fit.command(name="segments")(fit_segments)


def parse_segments(text: str):
    """``--segments``: a whole number >= 1, or ``auto``."""
    from journeymodel.errors import OptionError

    value = text.strip().lower()
    if value == "auto":
        return "auto"
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise OptionError(f"--segments must be a whole number >= 1 or auto (got {text!r})")


@with_read_options
def fit_segments(
    events: EventsArg,
    out: OutModel,
    segments: Annotated[str, typer.Option(
        "--segments", help="Number of segments K, or auto (each K of --auto-range, lowest "
        "BIC).")] = "3",
    auto_range: Annotated[str, typer.Option("--auto-range",
                                            help="K range tried by --segments auto.")] = "2,8",
    kind: Annotated[Kind, typer.Option(
        "--kind", help="Each segment's process: markov (a Markov chain over touchpoints with "
        "conversion, churn and drop-off exits) or hmm (a stages HMM).")] = Kind.markov,
    stages: Annotated[int, typer.Option("--stages", min=1,
                                        help="Hidden stages per segment (--kind hmm).")] = 3,
    restarts: Annotated[int, typer.Option("--restarts", min=1,
                                          help="Random EM starts per K (best kept).")] = 3,
    max_iter: Annotated[int, typer.Option("--max-iter", min=1,
                                          help="EM iterations at most.")] = 500,
    censored: Annotated[Censored, typer.Option(
        "--censored", help="In-flight journeys: survival (default) counts that their last "
        "step has not been left yet after the time already spent silent (holding times "
        "fitted on all journeys, shared by the segments); ignore counts nothing for it (the "
        "fit before issue 17: drop-off comes out low on a log cut mid-stream).")
    ] = Censored.survival,
    seed: SeedOpt = 0,
    as_json: JsonFlag = False,
    read=None,
) -> None:
    """Find behavioural segments of customers (a mixture over customers) and save them.

    Every journey of a customer comes from one segment's process; segments are numbered by
    size and named from the touchpoints that distinguish them and their conversion rate.
    `journeymodel predict S.nc EVENTS` gives each customer's segment.
    """
    from journeymodel.cli.options import fit_cli
    from journeymodel.cli.output import print_fit_result

    from journeymodel.io.outputs import check_not_input
    from journeymodel.models.segments.model import SegmentModel

    check_not_input(out, [events, read.config_path])  # never over the log or the config
    model = SegmentModel(n_segments=parse_segments(segments), kind=Kind(kind).value,
                         n_stages=stages, restarts=restarts, seed=seed, max_iter=max_iter,
                         auto_range=parse_range(auto_range),
                         censored=Censored(censored).value)
    _fit_with_progress(model, lambda **kw: fit_cli(model, events, read, **kw))
    model.save(out)
    print_fit_result(model.summary(), out, as_json=as_json)


def _fit_with_progress(model, journeys):
    """Fit, showing each K and restart on stderr (rich status line)."""
    from rich.console import Console

    err = Console(stderr=True, highlight=False)
    with err.status("fitting segments ...") as status:
        def progress(line: str) -> None:
            status.update(f"fitting segments: {line}")

        if callable(journeys):
            return journeys(progress=progress)
        return model.fit(journeys, progress=progress)
