"""``journeymodel demo``: the whole pipeline on the embedded sample data."""

import importlib
import pkgutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from journeymodel.cli.options import SeedOpt


def register(app: typer.Typer, fit: typer.Typer) -> None:
    app.command(name="demo")(demo)


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

    if customers > MAX_SAMPLE_CUSTOMERS:
        raise OptionError(sample_size_message(customers, "--customers"))
    out.mkdir(parents=True, exist_ok=True)
    events = out / "events.parquet"
    rows = write_sample_events(events, n_customers=customers, seed=seed)
    con = console()
    con.print(f"[bold]journeymodel demo[/bold]: wrote {rows} sample events of {customers} "
              f"customers to {events}")
    print_result(describe_journeys(load_journeys(events), top=8), as_json=False)
    for step in demo_steps():
        step(events, out, seed)
    con.print(f"[bold]done[/bold]: outputs in {out}/")
