"""``journeymodel demo``: the whole pipeline on the embedded sample data."""

import importlib
import inspect
import pkgutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from journeymodel.cli.demo_run import DemoRun
from journeymodel.cli.options import SeedOpt


def register(app: typer.Typer, fit: typer.Typer) -> None:
    app.command(name="demo")(demo)


def run_step(step, events: Path, out: Path, seed: int, run: DemoRun) -> Any:
    """``step(events, out, seed)``, with ``run=run`` if the step takes it."""
    if "run" in inspect.signature(step).parameters:
        return step(events, out, seed, run=run)
    return step(events, out, seed)


def demo_steps() -> list:
    """``demo_step`` functions of every command module that has one, in ``DEMO_ORDER``."""
    package = sys.modules[__package__]
    steps = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("cmd_") and info.name != "cmd_demo":
            module = importlib.import_module(f"{__package__}.{info.name}")
            if hasattr(module, "demo_step"):
                steps.append((getattr(module, "DEMO_ORDER", 100), info.name, module.demo_step))
    return [step for _, _, step in sorted(steps, key=lambda s: (s[0], s[1]))]


def demo(
    out: Annotated[Path, typer.Option("--out", file_okay=False,
                                      help="Folder for the sample data, models and report.")
                   ] = Path("demo-output"),
    seed: SeedOpt = 0,
    customers: Annotated[int, typer.Option("--customers", min=50,
                                           help="Customers in the sample data.")] = 2000,
) -> None:
    """Write a sample event log (known ground truth), describe it, and run every model on it."""
    from journeymodel.cli.output import console, print_result

    from journeymodel.analysis.describe import describe_journeys
    from journeymodel.data.datasets import (
        MAX_SAMPLE_CUSTOMERS,
        sample_size_message,
        write_sample_events,
    )
    from journeymodel.data.journeys import load_journeys
    from journeymodel.errors import OptionError
    from journeymodel.io.lazydask import import_xarray

    if customers > MAX_SAMPLE_CUSTOMERS:
        raise OptionError(sample_size_message(customers, "--customers"))
    out.mkdir(parents=True, exist_ok=True)
    events = out / "events.parquet"
    rows = write_sample_events(events, n_customers=customers, seed=seed)
    con = console()
    con.print(f"[bold]journeymodel demo[/bold]: wrote {rows} sample events of {customers} "
              f"customers to {events}")
    import_xarray()  # every xarray object of the steps made without importing dask
    run = DemoRun(load_journeys(events))
    print_result(describe_journeys(run.journeys, top=8), as_json=False)
    for step in demo_steps():
        run_step(step, events, out, seed, run)
    con.print(f"[bold]done[/bold]: outputs in {out}/")
