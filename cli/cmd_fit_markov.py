"""``journeymodel fit markov EVENTS -o M.nc``: fit an absorbing Markov chain of journeys."""

from pathlib import Path
from typing import Annotated

import typer
from journeymodel.cli.options import EventsArg, JsonFlag, OutModel, SeedOpt, with_read_options

from journeymodel.choices import MARKOV_CENSORED, choice_enum

Censored = choice_enum("Censored", MARKOV_CENSORED)

#: Where the Markov step runs in ``journeymodel demo``.
DEMO_ORDER = 10


def register(app: typer.Typer, fit: typer.Typer) -> None:
    fit.command(name="markov")(fit_markov)


def parse_order(text: str):
    """``--order``'s value: 1..4, or ``"auto"``."""
    from journeymodel.errors import OptionError

    if text.strip().lower() == "auto":
        return "auto"
    if text.strip() in ("1", "2", "3", "4"):
        return int(text)
    raise OptionError(f"--order must be 1, 2, 3, 4 or auto (got {text!r})")


def markov_model(order: str | None, prior: float | None, keep_repeats: bool,
                 censored: "Censored | None", seed: int):
    """The unfitted model of ``fit markov``'s options (None: the option's default; also what
    ``attribute EVENTS`` fits)."""
    from journeymodel.models.markov.model import MarkovJourneyModel

    return MarkovJourneyModel(order=parse_order("1" if order is None else order),
                              prior=0.0 if prior is None else prior,
                              collapse_repeats=not keep_repeats, seed=seed,
                              censored=(censored or Censored.survival).value)


@with_read_options
def fit_markov(
    events: EventsArg,
    out: OutModel,
    order: Annotated[str, typer.Option(
        "--order", help="Window length 1..4, or auto (held-out log-likelihood).")] = "1",
    prior: Annotated[float, typer.Option(
        "--prior", help="Dirichlet concentration on every feasible next state (0: counts).")
    ] = 0.0,
    keep_repeats: Annotated[bool, typer.Option(
        "--keep-repeats", help="Model repeated touchpoints as self-transitions instead of "
        "merging them (ChannelAttribution merges).")] = False,
    holdout: Annotated[float | None, typer.Option(
        "--holdout", help="Hold out this fraction of journeys; report log-loss and AUC of "
        "conversion prediction on them (the saved model is fitted on the rest).")] = None,
    censored: Annotated[Censored, typer.Option(
        "--censored", help="In-flight journeys: survival (default) counts that their last "
        "state has not been left yet after the time already spent there; ignore counts "
        "nothing for it, as ChannelAttribution does (drop-off comes out low on a log cut "
        "mid-stream).")] = Censored.survival,
    seed: SeedOpt = 0,
    as_json: JsonFlag = False,
    read=None,
) -> None:
    """Fit a Markov journey model and save it as a netCDF model file.

    States: the start, windows of the last touchpoints, and the outcomes conversion, dropoff and
    churn.
    """
    from journeymodel.cli.options import fit_cli, import_numpy
    from journeymodel.cli.output import print_fit_result

    from journeymodel.io.outputs import check_not_input

    import_numpy()

    check_not_input(out, [events, read.config_path])  # never over the log or the config
    model = markov_model(order, prior, keep_repeats, censored, seed)
    scores = None
    if holdout is not None:  # in this process, or on Dask with --workers/--cluster
        scores = _fit_holdout(model, events, read, holdout, seed)
    else:
        fit_cli(model, events, read)
    model.save(out)
    result = model.summary()
    if scores is not None:
        from journeymodel.io.table import Table  # no pandas (0.3-0.45 s to import)

        result.json["holdout"] = {"fraction": holdout, **scores}
        result.tables.append(("Held-out conversion prediction (random cut point)",
                              Table({name: [value] for name, value in scores.items()})))
    print_fit_result(result, out, as_json=as_json)


def _fit_holdout(model, events, read, fraction: float, seed: int) -> dict:
    """``--holdout``: fit on the training journeys, score the held-out ones (log-loss, AUC);
    the same split (a hash of each journey) and scores in one process and on Dask."""
    from journeymodel.cli.options import load_journeys_cli
    from journeymodel.cli.scaled import current_engine

    engine = current_engine()
    if engine is None:
        from journeymodel.models.markov.holdout import holdout_stats

        train, test = load_journeys_cli(events, read).split(fraction, seed)
        model.fit(train)
        return holdout_stats(model, test, seed).result()
    from journeymodel.scale.fit import fit_scaled_holdout

    return fit_scaled_holdout(model, events, read, fraction=fraction, seed=seed,
                              engine=engine, show_progress=True)[1]


def demo_step(events: Path, out_dir: Path, seed: int, run=None) -> Path | None:
    """Fit the demo log at the best order, save out_dir/markov.nc, print the attribution
    (``run``: the demo's shared journeys and models, :class:`journeymodel.cli.demo_run.DemoRun`)."""
    from journeymodel.cli.demo_run import journeys_of, saved
    from journeymodel.cli.output import console, print_result

    from journeymodel.models.markov.model import MarkovJourneyModel

    model = MarkovJourneyModel(order="auto", seed=seed).fit(journeys_of(events, run))
    path = saved(model, out_dir / "markov.nc", run)
    console().print(f"[bold]Markov journey model[/bold] (order {model.order_}, "
                    f"{model.state_count_text()}) saved to {path}")
    print_result(model.attribute("removal", n_draws=500, seed=seed), as_json=False)
    return path
