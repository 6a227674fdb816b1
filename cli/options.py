"""Options shared by commands, defined once, and the helpers that print results.

:func:`with_read_options` adds every event-log reading option (columns, labels, ``--gap``,
``--observed-until``, ``--strict``, ...) to a command and hands the command one
:class:`journeymodel.events.ReadOptions` as its ``read`` argument.
"""

import functools
import inspect
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

READING = "Reading the event log"


class TimestampKind(str, Enum):
    auto = "auto"
    datetime = "datetime"
    epoch = "epoch"
    period = "period"


def _opt(*names: str, help: str, **kw: Any) -> Any:
    return typer.Option(*names, help=help, rich_help_panel=READING, **kw)


# name, annotation, default  (the order they appear in --help)
_READ_PARAMS: list[tuple[str, Any, Any]] = [
    ("customer_col", Annotated[str, _opt("--customer-col", help="Customer id column.")],
     "customer_id"),
    ("time_col", Annotated[str, _opt("--time-col", help="Timestamp column.")], "timestamp"),
    ("touchpoint_col", Annotated[str, _opt("--touchpoint-col", help="Touchpoint column.")],
     "touchpoint"),
    ("persona_col", Annotated[str | None, _opt(
        "--persona-col", help="Persona column [default: persona, if present].")], None),
    ("value_col", Annotated[str | None, _opt(
        "--value-col", help="Value (revenue) column [default: value, if present].")], None),
    ("sentiment_col", Annotated[str | None, _opt(
        "--sentiment-col", help="Sentiment score column [default: sentiment, if present].")],
     None),
    ("device_col", Annotated[str | None, _opt(
        "--device-col", help="Device column [default: device, if present].")], None),
    ("conversion_label", Annotated[list[str] | None, _opt(
        "--conversion-label", help="Touchpoint value marking a conversion; repeatable "
        "[default: conversion].")], None),
    ("churn_label", Annotated[str, _opt("--churn-label",
                                        help="Touchpoint value marking a churn.")], "churn"),
    ("gap", Annotated[str, _opt(
        "--gap", help="Inactivity gap that ends a journey: 30D, 12h, a number, or none "
        "[auto: 30D for dates, none for periods].")], "auto"),
    ("observed_until", Annotated[str | None, _opt(
        "--observed-until", help="End of observation; later rows are not used "
        "[default: last timestamp].")], None),
    ("strict", Annotated[bool, _opt("--strict", help="Fail at the first invalid row instead "
                                    "of dropping it.")], False),
    ("sep", Annotated[str | None, _opt("--sep", help="CSV delimiter [default: detected].")],
     None),
    ("timestamps", Annotated[TimestampKind, _opt(
        "--timestamps", help="How to read times: datetimes/ISO text, epoch seconds, "
        "or plain period numbers.")], TimestampKind.auto),
    ("sentiment_scale", Annotated[str | None, _opt(
        "--sentiment-scale", help="MIN,MAX of the sentiment scale, mapped to -1..1 "
        "[default: observed range].")], None),
]
_READ_NAMES = [name for name, _, _ in _READ_PARAMS]


def build_read_options(**values: Any):
    """Turn the CLI's reading options into a ReadOptions (validating what typer cannot)."""
    from journeymodel.errors import OptionError
    from journeymodel.events import ReadOptions

    labels = tuple(values.pop("conversion_label") or ("conversion",))
    if any(not lab.strip() for lab in labels):
        raise OptionError("--conversion-label must not be empty")
    scale = values.pop("sentiment_scale")
    if scale is not None:
        try:
            lo, hi = (float(x) for x in scale.split(","))
        except ValueError:
            raise OptionError(
                f"--sentiment-scale must be MIN,MAX like 1,5 (got {scale!r})") from None
        scale = (lo, hi)
    values["timestamps"] = TimestampKind(values["timestamps"]).value
    return ReadOptions(conversion_labels=labels, sentiment_scale=scale, **values)


def with_read_options(func):
    """Give ``func`` every reading option; it receives them as ``read: ReadOptions``."""
    sig = inspect.signature(func)
    own = [p for p in sig.parameters.values() if p.name != "read"]
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                               annotation=annotation)
             for name, annotation, default in _READ_PARAMS]

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> Any:
        read = build_read_options(**{k: kwargs.pop(k) for k in _READ_NAMES})
        return func(read=read, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=own + extra)
    wrapper.__annotations__ = {p.name: p.annotation for p in own + extra}
    return wrapper


# ---------------------------------------------------------------------------------------------
# Common arguments

EventsArg = Annotated[Path, typer.Argument(
    help="Event log: CSV (any delimiter), Parquet, or a ChannelAttribution path table.",
    exists=True, dir_okay=False, readable=True, show_default=False)]
ModelArg = Annotated[Path, typer.Argument(
    help="A fitted model file (.nc).", exists=True, dir_okay=False, readable=True,
    show_default=False)]
OutModel = Annotated[Path, typer.Option("-o", "--out", help="Where to save the model (.nc).",
                                        dir_okay=False, show_default=False)]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (same seed, same output).")]


# ---------------------------------------------------------------------------------------------
# Output


def console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def print_frame(title: str, frame, *, max_rows: int = 40) -> None:
    """Print a DataFrame as a rich table (numbers right-aligned, floats to 4 significant)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", title_style="bold")
    index_name = frame.index.name
    show_index = index_name is not None or not _is_range_index(frame)
    if show_index:
        table.add_column(str(index_name or ""), style="bold")
    for col in frame.columns:
        numeric = frame[col].dtype.kind in "iuf"
        table.add_column(str(col), justify="right" if numeric else "left")
    for idx, row in frame.head(max_rows).iterrows():
        cells = [_fmt(v) for v in row.tolist()]
        table.add_row(*([str(idx)] if show_index else []), *cells)
    out = console()
    out.print(table)
    if len(frame) > max_rows:
        out.print(f"... {len(frame) - max_rows} more rows (use --json or -o for all)")


def _is_range_index(frame) -> bool:
    import pandas as pd

    return isinstance(frame.index, pd.RangeIndex)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != v:
            return "-"
        if v == int(v) and abs(v) < 1e12:
            return f"{int(v):,}" if abs(v) >= 1000 else str(int(v))
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    if isinstance(v, int) and abs(v) >= 1000:
        return f"{v:,}"
    return str(v)


def print_result(result, *, as_json: bool) -> None:
    """Print a :class:`journeymodel.models.base.Result` as JSON or as tables."""
    if as_json:
        print_json(result.json)
        return
    for title, frame in result.tables:
        print_frame(title, frame)
    for note in result.notes:
        console().print(note)


def print_fit_result(result, out: Path, *, as_json: bool) -> None:
    """What every ``fit`` command prints: the model's summary (or JSON) and where it was saved."""
    result.json["model"] = str(out)
    if as_json:
        print_json(result.json)
        return
    print_result(result, as_json=False)
    console().print(f"saved {out}")


def write_frame(frame, path: Path) -> Path:
    """Write a DataFrame to CSV or Parquet, chosen by the file suffix."""
    from journeymodel.errors import OptionError

    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    elif suffix in (".csv", ".txt", ".tsv"):
        frame.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
    else:
        raise OptionError(f"{path}: output must end in .csv, .tsv or .parquet")
    return path


def load_journeys_cli(events: Path, read):
    """Read an event log for a command (errors become ``error:`` lines via the app)."""
    from journeymodel.journeys import load_journeys

    return load_journeys(events, read)


def load_model_cli(path: Path):
    from journeymodel.persist import load_model

    return load_model(path)


def require(model, method: str, command: str):
    """The model's bound ``method``, or a clear error naming the model types that offer it."""
    from journeymodel.errors import OptionError

    fn = getattr(model, method, None)
    if fn is None:
        raise OptionError(
            f"`journeymodel {command}` does not apply to a {model.model_type} model")
    return fn
