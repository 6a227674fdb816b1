"""``journeymodel compare EVENTS --by period:7D|device|persona|column:NAME``: what changed,
and for whom."""

from pathlib import Path
from typing import Annotated

import typer
from journeymodel.cli.options import EventsArg, JsonFlag, SeedOpt, with_read_options


def register(app: typer.Typer, fit: typer.Typer) -> None:
    app.command(name="compare")(compare)


def _parse_order(text: str) -> int:
    from journeymodel.errors import OptionError

    if text.strip() in ("1", "2", "3", "4"):
        return int(text)
    raise OptionError(f"--order must be 1, 2, 3 or 4 (got {text!r})")


@with_read_options
def compare(
    events: EventsArg,
    by: Annotated[str, typer.Option(
        "--by", help="Groups: period:LENGTH (1D, 7D, 30D, 1M, 12h; a number for period "
        "timestamps: the period of each step), device (of the touchpoint left), persona, or "
        "column:NAME (the customer's value of any column).", show_default=False)],
    top: Annotated[int, typer.Option("--top", help="How many differences to list.", min=1)
                   ] = 10,
    min_prob: Annotated[float, typer.Option(
        "--min-prob", help="List differences whose posterior probability of the sign shown "
        "(p_diff) is at least this.")] = 0.95,
    fdr: Annotated[float, typer.Option(
        "--fdr", help="False-discovery rate of the Benjamini-Hochberg rule over all "
        "comparisons.")] = 0.05,
    order: Annotated[str, typer.Option(
        "--order", help="Markov order: states are windows of 1..4 touchpoints.")] = "1",
    keep_repeats: Annotated[bool, typer.Option(
        "--keep-repeats", help="Model repeated touchpoints as self-transitions instead of "
        "merging them (as fit markov).")] = False,
    report: Annotated[Path | None, typer.Option(
        "--report", dir_okay=False, help="Also draw the comparison as an HTML page (heat "
        "map of rates with the findings marked, and the findings).")] = None,
    seed: SeedOpt = 0,
    as_json: JsonFlag = False,
    read=None,
) -> None:
    """Compare journeys between periods or segments: what changed, and for whom.

    Every transition (a -> b) and exit rate (a -> conversion, dropoff, churn) of each group is
    compared with all other groups as Bayesian posteriors (Dirichlet rows), ranked by the
    conversions at stake. Listed: differences with p_diff >= --min-prob that also pass the
    Benjamini-Hochberg rule at --fdr over all comparisons made (each with the two-sided tail
    2 x (1 - p_diff)), so on a log where nothing changed a run lists anything at most --fdr of
    the time. Consecutive periods with the same change are one finding with its start and
    end. Steps within the inactivity gap of the end of the log are not compared: whether
    those journeys drop off is not known yet.
    """
    from journeymodel.cli.output import console, print_result

    from journeymodel.analysis.compare import compare as run
    from journeymodel.io.outputs import check_not_input

    if report is not None:
        from journeymodel.report.build import check_output

        check_not_input(report, [events, read.config_path], option="--report")
        check_output(report)
    found = run(events, by, order=_parse_order(order), collapse_repeats=not keep_repeats,
                min_prob=min_prob, fdr=fdr, top=top, seed=seed, options=read)
    result = found.result()
    if read.config_path is not None:
        result.notes.append(f"reading options from config file {read.config_path}")
    if report is not None:
        from journeymodel.report.build import build_compare_report

        built = build_compare_report([found], report)
        result.notes.append(f"wrote {built.path}")
    print_result(result, as_json=as_json)
    if not as_json and not len(found.differences):
        console().print(f"no credible difference by {found.by} among {found.tests:,} "
                        "comparisons")
