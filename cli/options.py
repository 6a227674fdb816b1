"""Options shared by commands, defined once: event-log reading options, common arguments, and
loading inputs (printing lives in :mod:`journeymodel.cli.output`).

:func:`with_read_options` adds every event-log reading option (columns, labels, ``--gap``,
``--observed-until``, ``--strict``, ...) to a command and hands the command one
:class:`journeymodel.data.options.ReadOptions` as its ``read`` argument.
"""

import functools
import inspect
import os
import sys
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

import typer

from journeymodel.choices import TIMESTAMP_KINDS, choice_enum

READING = "Reading the event log"
SCALE = "Bigger than one machine (Dask)"

#: --timestamps' choices, from the library's tuple.
TimestampKind = choice_enum("TimestampKind", TIMESTAMP_KINDS)


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
        "--timestamps", help="How to read times: datetimes/ISO text, epoch numbers "
        "(s, ms, µs or ns, read by size), or plain period numbers.")], TimestampKind.auto),
    ("sentiment_scale", Annotated[str | None, _opt(
        "--sentiment-scale", help="MIN,MAX of the sentiment scale, mapped to -1..1 "
        "[default: inferred from the bulk of the scores: 1,5 or 0,10 or -1,1 ...].")], None),
    ("time_format", Annotated[str | None, _opt(
        "--time-format", help="strftime format of date text, e.g. '%d/%m/%Y %H:%M' (as in "
        "pandas.to_datetime). Default: ISO-8601 or a detected common format.")], None),
]
_READ_NAMES = [name for name, _, _ in _READ_PARAMS]

# The engine: where the log is read and reduced to statistics (docs/scale.md)
_ENGINE_PARAMS: list[tuple[str, Any, Any]] = [
    ("workers", Annotated[int | None, typer.Option(
        "--workers", help="Run on a local Dask cluster of N worker processes (logs bigger "
        "than memory: each worker reads some files, statistics are summed).",
        rich_help_panel=SCALE, show_default=False)], None),
    ("cluster", Annotated[str | None, typer.Option(
        "--cluster", help="Run on the running Dask scheduler at ADDRESS "
        "(tcp://host:8786): a cluster of many machines.", rich_help_panel=SCALE,
        show_default=False)], None),
    ("worker_memory", Annotated[str | None, typer.Option(
        "--worker-memory", help="Memory limit of each local worker (1.5GiB, 800MB); Dask "
        "spills to disk near it [default: the machine's memory shared by the workers].",
        rich_help_panel=SCALE, show_default=False)], None),
]
_ENGINE_NAMES = [name for name, _, _ in _ENGINE_PARAMS]

#: The engine of the running command (set by :func:`with_read_options`).
_ENGINE: ContextVar[Any] = ContextVar("journeymodel_engine", default=None)


def build_read_options(**values: Any):
    """Turn the CLI's reading options into a ReadOptions (validating what typer cannot)."""
    from journeymodel.data.config import to_read_options

    values["timestamps"] = TimestampKind(values["timestamps"]).value
    return to_read_options(values)


ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", help="Config file with a [read] table of these options [default: "
    "journeymodel.toml in the working directory, if there is one].", dir_okay=False,
    rich_help_panel=READING, show_default=False)]


def with_read_options(func):
    """Give ``func`` every reading option and ``--config``; it receives them as
    ``read: ReadOptions``. Options not given on the command line come from the config file
    (``--config FILE``, or ``journeymodel.toml`` in the working directory), then from the
    defaults; ``read.config_path`` names the file used.

    The engine options (``--workers``, ``--cluster``, ``--worker-memory``) come too: they are
    checked, and :func:`fit_cli` and :func:`load_journeys_cli` read them while ``func`` runs."""
    sig = inspect.signature(func)
    own = [p for p in sig.parameters.values() if p.name != "read"]
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                               annotation=annotation)
             for name, annotation, default in _READ_PARAMS + _ENGINE_PARAMS]
    extra.append(inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None,
                                   annotation=ConfigOpt))
    # typer hands a parameter annotated typer.Context the click context (not an option)
    extra.append(inspect.Parameter("read_context", inspect.Parameter.KEYWORD_ONLY,
                                   default=None, annotation=typer.Context))

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> Any:
        given = {k: kwargs.pop(k) for k in _READ_NAMES}
        engine = engine_of(**{k: kwargs.pop(k) for k in _ENGINE_NAMES})
        names = _given_names(kwargs.pop("read_context", None))
        read = read_options_with_config(given, kwargs.pop("config"), names)
        token = _ENGINE.set(engine)
        try:
            return func(read=read, **kwargs)
        finally:
            _ENGINE.reset(token)

    wrapper.__signature__ = sig.replace(parameters=own + extra)
    wrapper.__annotations__ = {p.name: p.annotation for p in own + extra}
    return wrapper


def _given_names(ctx: Any) -> set[str] | None:
    """Names of the reading options given on the command line (or by environment), from the
    click context's parameter sources; None without a context (then every value counts)."""
    if ctx is None:
        return None
    given = set()
    for name in _READ_NAMES:
        source = ctx.get_parameter_source(name)
        if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            given.add(name)
    return given


def read_options_with_config(values: dict[str, Any], config: Path | None,
                             given: set[str] | None = None):
    """ReadOptions from the command line's ``values`` over the config file's ``[read]`` table.

    ``given`` names the options the user typed (they win over the file); the others take the
    file's value when it has one, else their default. ``config`` is ``--config`` (None: look
    for ``journeymodel.toml`` in the working directory).
    """
    from journeymodel.data.config import load_config

    loaded = load_config(config)
    merged = dict(values)
    for key, value in loaded.read.items():
        if given is None or key not in given:
            merged[key] = value
    read = build_read_options(**merged)
    if loaded.path is not None:
        read = read.replace(config_path=str(loaded.path))
    return read


# ---------------------------------------------------------------------------------------------
# Common arguments

EventsArg = Annotated[str, typer.Argument(
    help="Event log: CSV (any delimiter), Parquet, or a ChannelAttribution path table; a file, "
    "a folder of such files, a glob ('events/date=*/*.parquet') or an fsspec URL.",
    show_default=False)]
ModelArg = Annotated[Path, typer.Argument(
    help="A fitted model file (.nc).", exists=True, dir_okay=False, readable=True,
    show_default=False)]
OutModel = Annotated[Path, typer.Option("-o", "--out", help="Where to save the model (.nc).",
                                        dir_okay=False, show_default=False)]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (same seed, same output).")]

# The sampler settings of the Bayesian fits (fit conversion, fit churn)
DrawsOpt = Annotated[int, typer.Option("--draws", help="Posterior draws per chain.")]
TuneOpt = Annotated[int, typer.Option("--tune", help="Tuning steps per chain.")]
ChainsOpt = Annotated[int, typer.Option("--chains", help="Markov chains.")]
TargetAcceptOpt = Annotated[float | None, typer.Option(
    "--target-accept", help="NUTS target acceptance in (0, 1); raise it (0.95, 0.99) when "
    "the fit reports divergences [default: the model's, see its docs].")]


def check_sampling(draws: int, tune: int, chains: int, target_accept: float | None) -> None:
    """Refuse sampler settings no fit can use, before the data are read."""
    from journeymodel.errors import OptionError

    for name, value, low in (("--draws", draws, 1), ("--tune", tune, 0),
                             ("--chains", chains, 1)):
        if value < low:
            raise OptionError(f"{name} must be a whole number >= {low} (got {value})")
    if target_accept is not None and not 0 < target_accept < 1:
        raise OptionError(f"--target-accept must be between 0 and 1 (got {target_accept:g})")


def engine_of(workers: int | None = None, cluster: str | None = None,
              worker_memory: str | None = None):
    """The engine options as a :class:`journeymodel.scale.cluster.Engine` (checked), or None
    when none is given (dask is imported only when one is)."""
    if workers is None and cluster is None and worker_memory is None:
        return None
    from journeymodel.scale.cluster import Engine

    return Engine(workers=workers, cluster=cluster, worker_memory=worker_memory)


def current_engine():
    """The engine (``--workers``/``--cluster``) of the running command, or None."""
    return _ENGINE.get()


def import_numpy() -> None:
    """Import numpy with OpenBLAS's idle threads asleep at once (``OPENBLAS_THREAD_TIMEOUT=4``)
    rather than spinning about 0.1 s after each product: they spin from the moment numpy
    loads, while the command imports and reads on the same cores (Markov commands run their
    products on one thread, :mod:`journeymodel.blas`). The same threads split the same
    products: the same bits. Measured on ``attribute EVENTS --json`` (issue 20), 2 busy cores:
    40-70 ms less CPU at 1k and 100k customers. Only where numpy is not loaded yet and the
    variable is not set; the process's environment is left as it was."""
    if "numpy" in sys.modules or "OPENBLAS_THREAD_TIMEOUT" in os.environ:
        return
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = "4"  # read once, as OpenBLAS loads
    try:
        import numpy  # noqa: F401
    finally:
        del os.environ["OPENBLAS_THREAD_TIMEOUT"]


def load_journeys_cli(events: str | Path, read):
    """Read an event log for a command (errors become ``error:`` lines via the app).

    With ``--workers`` or ``--cluster``, commands that need every journey in one process say
    so (the fits go through :func:`fit_cli`)."""
    from journeymodel.data.journeys import load_journeys

    engine = _ENGINE.get()
    if engine is not None:
        from journeymodel.errors import OptionError

        raise OptionError("--workers/--cluster: this command reads every journey into one "
                          "process; on Dask run `journeymodel fit ...`, `describe`, "
                          "`predict -o` or `forecast --from` (see docs/scale.md), or drop "
                          "the option")
    return load_journeys(events, read)


def fit_cli(model, events: str | Path, read, **fit_kw):
    """Fit ``model`` on the log ``events``: in this process (``model.fit(journeys)``), or on
    Dask with ``--workers``/``--cluster`` (statistics summed over the log's partitions,
    :func:`journeymodel.scale.fit.fit_scaled`). Returns the model."""
    engine = _ENGINE.get()
    if engine is None:
        return model.fit(load_journeys_cli(events, read), **fit_kw)
    from journeymodel.scale.fit import fit_scaled

    return fit_scaled(model, events, read, engine=engine, show_progress=True, **fit_kw)


def fit_attribution_cli(model, events: str | Path, read):
    """:func:`fit_cli` for a model only asked to attribute (``attribute EVENTS``): in this
    process ``model.fit_attribution(journeys)``, which leaves out what attribution does not
    read (the experience statistics, the chain's analytics: issue 20); on Dask the whole fit
    (statistics summed over partitions). The same attribution either way."""
    if _ENGINE.get() is None:  # (attribute runs it within one reuse_freed_memory block)
        return model.fit_attribution(load_journeys_cli(events, read))
    return fit_cli(model, events, read)


def load_model_cli(path: Path):
    from journeymodel.io.persist import load_model

    return load_model(path)


def require(model, method: str, command: str):
    """The model's bound ``method``, or a clear error naming the model types that offer it."""
    from journeymodel.errors import OptionError

    fn = getattr(model, method, None)
    if fn is None:
        raise OptionError(
            f"`journeymodel {command}` does not apply to a {model.model_type} model")
    return fn
