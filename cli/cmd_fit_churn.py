"""``journeymodel fit churn EVENTS -o M.nc --model sbg|weibull|bgnbd``: churn by persona."""

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from journeymodel.cli.options import EventsArg, JsonFlag, OutModel, SeedOpt, with_read_options

#: Where the churn step runs in ``journeymodel demo`` (after Markov, stages, conversion).
DEMO_ORDER = 40


class ChurnKind(str, Enum):
    sbg = "sbg"
    weibull = "weibull"
    bgnbd = "bgnbd"


class TimeUnit(str, Enum):
    D = "D"
    W = "W"
    M = "M"
    Y = "Y"


class Origin(str, Enum):
    auto = "auto"
    first_event = "first-event"
    first_conversion = "first-conversion"


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
    draws: Annotated[int, typer.Option("--draws", help="Posterior draws per chain.")] = 1000,
    tune: Annotated[int, typer.Option("--tune", help="Tuning steps per chain.")] = 1000,
    chains: Annotated[int, typer.Option("--chains", help="Markov chains.")] = 4,
    keep_customers: Annotated[bool, typer.Option(
        "--keep-customers", help="bgnbd: store customer ids and (x, t_x, T) in the model "
        "file so forecasts list P(alive) per customer; off by default, so a model file "
        "holds no customer records.")] = False,
    target_accept: Annotated[float | None, typer.Option(
        "--target-accept", help="NUTS target acceptance in (0, 1); raise it (0.95, 0.99) when "
        "the fit reports divergences [default: the model's, see its docs].")] = None,
    seed: SeedOpt = 0,
    as_json: JsonFlag = False,
    read=None,
) -> None:
    """Fit churn by persona (hierarchical Bayesian sBG, Weibull or BG/NBD).

    Saves the model with its posterior (netCDF) and prints parameters, retention and churn
    hazard per persona with 94% credible intervals. Forecast with `journeymodel forecast M.nc
    --horizon H`.
    """
    from journeymodel.cli.options import load_journeys_cli
    from journeymodel.cli.output import print_fit_result

    from journeymodel.io.outputs import check_not_input

    check_not_input(out, [events, read.config_path])  # never over the log or the config
    churn = _model(model, time_unit, origin, draws, tune, chains, keep_customers, seed,
                   target_accept)
    journeys = load_journeys_cli(events, read)
    churn.fit(journeys, progress=True)
    churn.save(out)
    result = churn.summary()
    print_fit_result(result, out, as_json=as_json)


def _model(kind, time_unit, origin, draws: int, tune: int, chains: int, keep: bool, seed: int,
           target_accept: float | None = None):
    """The ChurnModel for the options (checked before the data are read)."""
    from journeymodel.errors import OptionError
    from journeymodel.models.churn.model import ChurnModel

    for name, value, low in (("--draws", draws, 1), ("--tune", tune, 0),
                             ("--chains", chains, 1)):
        if value < low:
            raise OptionError(f"{name} must be a whole number >= {low} (got {value})")
    if target_accept is not None and not 0 < target_accept < 1:
        raise OptionError(f"--target-accept must be between 0 and 1 (got {target_accept:g})")
    return ChurnModel(model=ChurnKind(kind).value,
                      time_unit=None if time_unit is None else TimeUnit(time_unit).value,
                      origin=Origin(origin).value.replace("-", "_"), draws=draws, tune=tune,
                      chains=chains, seed=seed, keep_customers=keep,
                      target_accept=target_accept)


def demo_step(events: Path, out_dir: Path, seed: int) -> Path | None:
    """Fit sBG churn by persona on the demo log, save out_dir/churn.nc, print retention."""
    from journeymodel.cli.output import console, print_result

    from journeymodel.data.journeys import load_journeys
    from journeymodel.models.churn.model import ChurnModel

    model = ChurnModel("sbg", seed=seed).fit(load_journeys(events), progress=True)
    path = model.save(out_dir / "churn.nc")
    console().print(f"[bold]Churn by persona[/bold] (hierarchical shifted-beta-geometric, "
                    f"monthly renewals) saved to {path}")
    print_result(model.summary(), as_json=False)
    return path
