"""``journeymodel fit churn EVENTS -o M.nc --model sbg|weibull|bgnbd``: churn by persona."""

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

from journeymodel.choices import CHURN_MODELS, CHURN_ORIGINS, CHURN_TIME_UNITS, choice_enum

#: Where the churn step runs in ``journeymodel demo`` (after Markov, stages, conversion).
DEMO_ORDER = 40

#: --model's, --time-unit's and --origin's choices, from the library's tuples (--origin written
#: with - for _).
ChurnKind = choice_enum("ChurnKind", CHURN_MODELS)
TimeUnit = choice_enum("TimeUnit", CHURN_TIME_UNITS)
Origin = choice_enum("Origin", tuple(o.replace("_", "-") for o in CHURN_ORIGINS))
#: --pooling's choices (journeymodel.models.churn.graph.POOLING, the same for fit conversion).
Pooling = choice_enum("Pooling", ("partial", "none", "complete"))
PoolingOpt = Annotated[Pooling, typer.Option(
    "--pooling", help="How personas share strength: partial (hierarchical), none (each "
    "persona on its own data) or complete (one population for all).")]


def register(app: typer.Typer, fit: typer.Typer) -> None:
    fit.command(name="churn")(fit_churn)


@with_read_options
def fit_churn(
    events: EventsArg,
    out: OutModel,
    model: Annotated[ChurnKind, typer.Option(
        "--model", help="sbg: discrete renewals (contractual, needs churn events); weibull: "
        "continuous time to churn; bgnbd: repeat purchases, no churn events needed.")
    ] = ChurnKind.sbg,
    time_unit: Annotated[TimeUnit | None, typer.Option(
        "--time-unit", help="Unit of periods and parameters: D, W (7 days), M (30.4375 days) "
        "or Y (365.25 days) [default: M for sbg/weibull, W for bgnbd; logs of period numbers "
        "use their own periods].")] = None,
    origin: Annotated[Origin, typer.Option(
        "--origin", help="Where a lifetime starts (sbg, weibull): auto = first conversion if "
        "the log has conversions, else first event.")] = Origin.auto,
    draws: DrawsOpt = 1000,
    tune: TuneOpt = 1000,
    chains: ChainsOpt = 4,
    keep_customers: Annotated[bool, typer.Option(
        "--keep-customers", help="bgnbd: store customer ids and (x, t_x, T) in the model "
        "file so forecasts list P(alive) per customer; off by default, so a model file "
        "holds no customer records.")] = False,
    target_accept: TargetAcceptOpt = None,
    pooling: PoolingOpt = Pooling.partial,
    seed: SeedOpt = 0,
    as_json: JsonFlag = False,
    read=None,
) -> None:
    """Fit churn by persona (hierarchical Bayesian sBG, Weibull or BG/NBD).

    Saves the model with its posterior (netCDF) and prints parameters, retention and churn
    hazard per persona with 94% credible intervals. Forecast with `journeymodel forecast M.nc
    --horizon H`. A plain transaction log (every row a conversion, e.g. `--conversion-label
    purchase`) fits bgnbd; with --value-col, bgnbd also fits the Gamma-Gamma spend model
    (value per repeat transaction), which customer lifetime value needs.
    """
    from journeymodel.cli.options import fit_cli
    from journeymodel.cli.output import print_fit_result

    from journeymodel.io.outputs import check_not_input

    check_not_input(out, [events, read.config_path])  # never over the log or the config
    # an explicit --value-col (or value_col in the config) asks for bgnbd's spend model
    churn = _model(model, time_unit, origin, draws, tune, chains, keep_customers, seed,
                   target_accept, spend=read.value_col is not None,
                   pooling=Pooling(pooling).value)
    # churn models read only conversions and churns: a transaction log (every row a
    # conversion, no touchpoints) is a valid input here, unlike for the journey models
    fit_cli(churn, events, read.replace(touchpoints_required=False), progress=True)
    churn.save(out)
    result = churn.summary()
    print_fit_result(result, out, as_json=as_json)


def _model(kind, time_unit, origin, draws: int, tune: int, chains: int, keep: bool, seed: int,
           target_accept: float | None = None, *, spend: bool = False,
           pooling: str = "partial"):
    """The ChurnModel for the options (checked before the data are read)."""
    from journeymodel.cli.options import check_sampling

    from journeymodel.models.churn.model import ChurnModel

    check_sampling(draws, tune, chains, target_accept)
    return ChurnModel(model=ChurnKind(kind).value,
                      time_unit=None if time_unit is None else TimeUnit(time_unit).value,
                      origin=Origin(origin).value.replace("-", "_"), draws=draws, tune=tune,
                      chains=chains, seed=seed, keep_customers=keep,
                      target_accept=target_accept,
                      spend=spend and ChurnKind(kind).value == "bgnbd", pooling=pooling)


def demo_step(events: Path, out_dir: Path, seed: int, run=None) -> Path | None:
    """Fit sBG churn by persona on the demo log, save out_dir/churn.nc, print retention."""
    from journeymodel.cli.demo_run import journeys_of, saved
    from journeymodel.cli.output import console, print_result

    from journeymodel.models.churn.model import ChurnModel

    model = ChurnModel("sbg", seed=seed).fit(journeys_of(events, run), progress=True)
    path = saved(model, out_dir / "churn.nc", run)
    console().print(f"[bold]Churn by persona[/bold] (hierarchical shifted-beta-geometric, "
                    f"monthly renewals) saved to {path}")
    print_result(model.summary(), as_json=False)
    return path
