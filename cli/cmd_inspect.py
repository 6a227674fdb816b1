"""``journeymodel inspect M.nc``: a saved model's parameters and diagnostics."""

import typer
from journeymodel.cli.options import JsonFlag, ModelArg


def register(app: typer.Typer, fit: typer.Typer) -> None:
    app.command(name="inspect")(inspect)


def inspect(model: ModelArg, as_json: JsonFlag = False) -> None:
    """Print a saved model's parameters, diagnostics and the ledger of its training data."""
    from journeymodel.cli.options import load_model_cli
    from journeymodel.cli.output import print_result

    fitted = load_model_cli(model)
    result = fitted.summary()
    header = {
        "model_type": fitted.model_type,
        "schema_version": fitted.schema_version,
        "params": fitted.get_params(),
        "ledger": fitted.ledger_.to_dict(),
    }
    result.json = {**header, **result.json}
    if not as_json:
        typer.echo(f"{model}: {fitted.model_type} model "
                   f"({', '.join(f'{k}={v}' for k, v in fitted.get_params().items())})")
    print_result(result, as_json=as_json)
