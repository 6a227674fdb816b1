"""``journeymodel fit conversion EVENTS -o M.nc``: conversion rate by persona (Bayesian, PyMC)."""

from pathlib import Path
from typing import Annotated

import typer
from journeymodel.cli.options import (
    ChainsOpt,
    DrawsOpt,
    EventsArg,
    JsonFlag,
    OutModel,
    SeedOpt,
    TargetAcceptOpt,
    TuneOpt,
    with_read_options,
)

from journeymodel.choices import CONVERSION_GROUPINGS, PARAMETERIZATIONS, SAMPLERS, choice_enum

#: Where the conversion step runs in ``journeymodel demo`` (after Markov and stages).
DEMO_ORDER = 30

#: --by's, --parameterization's and --sampler's choices, from the library's tuples (--by: the
#: groupings crossed with persona).
SecondGrouping = choice_enum("SecondGrouping", CONVERSION_GROUPINGS[1:])
Parameterization = choice_enum("Parameterization", PARAMETERIZATIONS)
Sampler = choice_enum("Sampler", SAMPLERS)


#: --pooling's choices (journeymodel.models.conversion.graph.POOLING).
Pooling = choice_enum("Pooling", ("partial", "none", "complete"))
PoolingOpt = Annotated[Pooling, typer.Option(
    "--pooling", help="How personas share strength: partial (hierarchical), none (each "
    "persona on its own data) or complete (one rate for all).")]


def register(app: typer.Typer, fit: typer.Typer) -> None:
    fit.command(name="conversion")(fit_conversion)


@with_read_options
def fit_conversion(
    events: EventsArg,
    out: OutModel,
    by: Annotated[SecondGrouping | None, typer.Option(
        "--by", help="Also group by this (crossed with persona): which first touchpoint "
        "converts which persona.")] = None,
    draws: DrawsOpt = 1000,
    tune: TuneOpt = 1000,
    chains: ChainsOpt = 4,
    parameterization: Annotated[Parameterization, typer.Option(
        "--parameterization", help="Hierarchy form; auto samples the personas in a form "
        "informed by their counts (centred where a persona's data dominate, non-centred where "
        "they are weak) and picks centred or non-centred for the other groupings.")
    ] = Parameterization.auto,
    sampler: Annotated[Sampler | None, typer.Option(
        "--sampler", help="NUTS implementation [default: nutpie if installed, else pymc].")
    ] = None,
    target_accept: TargetAcceptOpt = None,
    pooling: PoolingOpt = Pooling.partial,
    seed: SeedOpt = 0,
    as_json: JsonFlag = False,
    read=None,
) -> None:
    """Fit conversion by persona (hierarchical Bayesian, partial pooling).

    Models the conversion rate of completed journeys. Saves the model with its full posterior
    (netCDF) and prints each persona's rate with a 94% credible interval and P(persona A >
    persona B).
    """
    from journeymodel.cli.options import fit_cli
    from journeymodel.cli.output import print_fit_result

    from journeymodel.io.outputs import check_not_input

    check_not_input(out, [events, read.config_path])  # never over the log or the config
    model = _model(by, draws, tune, chains, parameterization, seed, sampler, target_accept,
                   Pooling(pooling).value)
    fit_cli(model, events, read, progress=True)
    model.save(out)
    result = model.summary()
    print_fit_result(result, out, as_json=as_json)


def _model(by, draws: int, tune: int, chains: int, parameterization, seed: int,
           sampler=None, target_accept: float | None = None, pooling: str = "partial"):
    """The ConversionModel for the options (checking them before the data are read)."""
    from journeymodel.cli.options import check_sampling

    from journeymodel.models.conversion.model import ConversionModel

    check_sampling(draws, tune, chains, target_accept)
    groups = ["persona"] + ([SecondGrouping(by).value] if by is not None else [])
    return ConversionModel(by=groups, draws=draws, tune=tune, chains=chains, seed=seed,
                           parameterization=Parameterization(parameterization).value,
                           sampler=None if sampler is None else Sampler(sampler).value,
                           target_accept=target_accept, pooling=pooling)


def demo_step(events: Path, out_dir: Path, seed: int, run=None) -> Path | None:
    """Fit conversion by persona on the demo log, save out_dir/conversion.nc, print the rates."""
    from journeymodel.cli.demo_run import journeys_of, saved
    from journeymodel.cli.output import console, print_result

    from journeymodel.models.conversion.model import ConversionModel

    model = ConversionModel(seed=seed).fit(journeys_of(events, run), progress=True)
    path = saved(model, out_dir / "conversion.nc", run)
    console().print(f"[bold]Conversion by persona[/bold] (hierarchical Bayesian model, "
                    f"{model.timing_['sampler']}) saved to {path}")
    print_result(model.summary(), as_json=False)
    return path
