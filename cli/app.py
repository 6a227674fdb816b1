"""The ``journeymodel`` command line.

Every module in this package named ``cmd_*.py`` defines ``register(app, fit)`` and adds its
commands; the app finds them with :mod:`pkgutil`, so commands live one per file and nothing else
must be edited to add one. Command modules import only typer and the standard library at the top;
numpy, pandas, PyMC and the rest load inside the command that needs them, so ``--help`` is quick.
A command whose module is named after it (``pain-points``: ``cmd_pain_points.py``, ``fit
markov``: ``cmd_fit_markov.py``) runs with that module alone imported; help of the app and
anything else import them all.

User errors (bad options, unreadable files, bad data) print one line ``error: ...`` and exit 2;
``--debug`` shows the traceback instead.
"""

import contextlib
import copy
import importlib
import pkgutil
import signal
import sys
import threading
import warnings
from typing import Annotated

import typer

from journeymodel import __version__


def _new_app() -> tuple[typer.Typer, typer.Typer]:
    """An app without commands (the root and its ``fit`` group), as every command sees it."""
    root = typer.Typer(
        name="journeymodel",
        help="Probabilistic customer-journey maps from event logs.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",
    )
    fit = typer.Typer(help="Fit a model to an event log and save it as a netCDF file.",
                      no_args_is_help=True)
    root.add_typer(fit, name="fit")
    root.callback()(_root)
    return root, fit


def _version(value: bool) -> None:
    if value:
        typer.echo(f"journeymodel {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug",
                                        help="Show tracebacks for errors.")] = False,
) -> None:
    """Probabilistic customer-journey maps from event logs."""


def _command_modules() -> list[str]:
    """The names of this package's ``cmd_*`` modules, sorted."""
    return sorted(info.name for info in pkgutil.iter_modules(sys.modules[__package__].__path__)
                  if info.name.startswith("cmd_"))


def _discover(root: typer.Typer, fit: typer.Typer, modules: list[str]) -> None:
    for name in modules:
        importlib.import_module(f"{__package__}.{name}").register(root, fit)


def __getattr__(name: str) -> typer.Typer:
    """``app`` and ``fit_app``: the app with every command (and its ``fit`` group), discovered
    on first use (PEP 562); running one command imports its module alone (:func:`_app_for`)."""
    if name not in ("app", "fit_app"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in globals():
        root, fit = _new_app()
        _discover(root, fit, _command_modules())
        globals().update(app=root, fit_app=fit)
    return globals()[name]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    text = str(message).strip().replace("\n", " ")
    print(f"warning: {text}", file=sys.stderr)


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: raised in the main thread so that every ``finally`` block and
    context manager runs (temporary output files are removed) before the process exits."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def _interrupt(signum: int, frame) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second signal of the same kind ends at once
    raise Interrupted(signum)


@contextlib.contextmanager
def _signals_raise():
    """Turn SIGINT and SIGTERM into :class:`Interrupted` while a command runs; restore the
    previous handlers afterwards (``main`` is also called in-process, by tests)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: run the app, turn user errors into exit code 2 and
    SIGINT / SIGTERM into exit codes 130 / 143 (after clean-up: no partial output remains)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        with _signals_raise():
            code = _run(args)
    except Interrupted as exc:
        print(f"error: interrupted by {exc}; no partial output was left behind", file=sys.stderr)
        code = 128 + exc.signum
    if argv is None:  # the console script, not a caller in this process (tests call main([...]))
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    """End the process at once once a command has finished: its outputs are written, closed
    and renamed into place, so the interpreter's teardown (every module's objects freed one by
    one, pyarrow's and numba's among them: 0.1-0.2 s per process, issue 20) does nothing a user
    needs. Standard streams are flushed and ``atexit`` handlers (logging, dask) still run."""
    import atexit
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (``| head``) or stream: nothing to flush
            pass
    atexit._run_exitfuncs()
    os._exit(code)


def _run(args: list[str]) -> int:
    from journeymodel.errors import JourneyModelError

    debug = "--debug" in args
    warnings.showwarning = _show_warning
    command = typer.main.get_command(_app_for(args))
    try:
        result = command.main(args=args, prog_name="journeymodel", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    except typer.TyperException as exc:  # usage errors: bad option, missing file, ...
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `journeymodel fit`: show help
            print(exc.format_message())
            return 0
        if debug:
            raise
        print(f"error: {_one_line(exc.format_message())}", file=sys.stderr)
        return 2
    except (JourneyModelError, OSError) as exc:
        if debug:
            raise
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


#: Options of the root command that may come before the command's name (--help and --version
#: print the root's help or version, which need every command).
_ROOT_FLAGS = frozenset({"--debug"})


def _app_for(args: list[str]) -> typer.Typer:
    """The app that runs ``args``: where they name a command whose module follows the naming
    of this package (``attribute``: ``cmd_attribute``, ``pain-points``: ``cmd_pain_points``,
    ``fit markov``: ``cmd_fit_markov``), an app with that module's commands alone (importing
    the 15 others and registering their commands costs 10 ms of every command, issue 20);
    anything else (help of the app or of ``fit``, a name that is no command) gets the app with
    every command. Either way :func:`_only_invoked` keeps the invoked command alone."""
    module = _module_named(args)
    if module is not None:
        root, fit = _new_app()
        _discover(root, fit, [module])
        slim = _only_invoked(root, args)
        if slim is not root:  # the module did register the command named
            return slim
    return _only_invoked(__getattr__("app"), args)


def _module_named(args: list[str]) -> str | None:
    """The ``cmd_*`` module named by the command ``args`` invoke, if there is one."""
    rest = list(args)
    while rest and rest[0] in _ROOT_FLAGS:
        rest.pop(0)
    prefix = "cmd_"
    if rest[:1] == ["fit"]:
        rest, prefix = rest[1:], "cmd_fit_"
    if not rest or rest[0].startswith("-"):
        return None
    name = prefix + rest[0].replace("-", "_")
    return name if name in _command_modules() else None


def _only_invoked(group: typer.Typer, args: list[str]) -> typer.Typer:
    """``group`` with only the command (or group of commands) that ``args`` invoke, where
    ``args`` name one of them: building the click command of all 16 commands (their options,
    from the functions' signatures) costs about 60 ms, a tenth of ``attribute M.nc --json``,
    and only the invoked one is used (issue 20). Help, usage lines and errors are the same:
    a command's help shows that command alone, and anything else (``--help`` or
    ``--version`` before a command, no command, a name that is no command, which click
    answers with suggestions among all of them) gets the whole ``group``."""
    rest = list(args)
    while rest and rest[0] in _ROOT_FLAGS:
        rest.pop(0)
    if not rest or rest[0].startswith("-"):
        return group
    name, rest = rest[0], rest[1:]
    commands = [c for c in group.registered_commands if _command_name(c) == name]
    groups = [copy.copy(g) for g in group.registered_groups if g.name == name]
    if not commands and not groups:
        return group
    for sub in groups:  # `fit markov`: the fit group with markov alone
        sub.typer_instance = _only_invoked(sub.typer_instance, rest)
    slim = copy.copy(group)
    slim.registered_commands, slim.registered_groups = commands, groups
    return slim


def _command_name(info) -> str:
    """A registered command's name, as typer derives it when none is given."""
    return info.name or info.callback.__name__.lower().replace("_", "-")


def _one_line(text: str) -> str:
    """The message on one line, without pydantic's "Value error, " prefix (Typer validates
    choices through pydantic: "Invalid value for '--method': Value error, 'foo' is not one of
    'removal', ...")."""
    return " ".join(text.replace("Value error, ", "").split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
