"""The CLI builds only the invoked command (cli/app.py ``_only_invoked``, issue 20): what it
prints must be what the app with every command prints."""

import pytest
from journeymodel.cli.app import _command_name, _only_invoked, app
from typer.testing import CliRunner

COMMANDS = sorted(_command_name(c) for c in app.registered_commands)
FIT = sorted(_command_name(c) for g in app.registered_groups if g.name == "fit"
             for c in g.typer_instance.registered_commands)


def run(typer_app, args):
    result = CliRunner().invoke(typer_app, args, env={"COLUMNS": "100"})
    return result.exit_code, result.output


def test_every_command_is_found():
    assert {"attribute", "describe", "report", "sample-data"} <= set(COMMANDS)
    assert {"markov", "churn", "conversion", "stages"} <= set(FIT)


@pytest.mark.parametrize("args", [[name, "--help"] for name in COMMANDS]
                         + [["fit", name, "--help"] for name in FIT]
                         + [["--debug", "attribute", "--help"], ["attribute", "--nope", "x"],
                            ["fit", "markov"], ["describe"]])
def test_a_command_alone_prints_what_the_whole_app_prints(args):
    slim = _only_invoked(app, args)
    assert slim is not app
    assert len(slim.registered_commands) + len(slim.registered_groups) == 1
    assert run(slim, args) == run(app, args)


@pytest.mark.parametrize("args", [[], ["--help"], ["--version"], ["--help", "attribute"],
                                  ["atribute", "x"], ["--debug"]])
def test_anything_else_gets_every_command(args):
    assert _only_invoked(app, args) is app


@pytest.mark.parametrize("args", [["fit"], ["fit", "--help"], ["fit", "markv", "x"]])
def test_fit_without_a_known_model_keeps_every_fit_command(args):
    (fit,) = _only_invoked(app, args).registered_groups
    assert len(fit.typer_instance.registered_commands) == len(FIT)
    assert run(_only_invoked(app, args), args) == run(app, args)


def test_the_app_itself_is_left_whole():
    _only_invoked(app, ["fit", "markov", "x"])
    assert sorted(_command_name(c) for c in app.registered_commands) == COMMANDS
    (fit,) = app.registered_groups
    assert len(fit.typer_instance.registered_commands) == len(FIT)


# ---------------------------------------------------------------------------------------------
# The invoked command's module alone (cli/app.py ``_app_for``): the same output as the app with
# every command, and the other command modules not imported


@pytest.mark.parametrize("args", [[name, "--help"] for name in COMMANDS]
                         + [["fit", name, "--help"] for name in FIT]
                         + [["--debug", "attribute", "--help"], ["attribute", "--nope", "x"],
                            ["fit", "markov"], ["describe"], ["sample-data", "--help"]])
def test_the_invoked_module_alone_prints_what_the_whole_app_prints(args):
    from journeymodel.cli.app import _app_for, _module_named

    assert _module_named(args) is not None
    slim = _app_for(args)
    assert len(slim.registered_commands) + len(slim.registered_groups) == 1
    assert run(slim, args) == run(app, args)


@pytest.mark.parametrize("args", [[], ["--help"], ["--version"], ["--help", "attribute"],
                                  ["atribute", "x"], ["--debug"], ["fit"], ["fit", "--help"],
                                  ["fit", "markv", "x"], ["fit_markov", "x"], ["run", "x"],
                                  ["demo_run"], ["attribute.x"], ["--nope", "attribute"]])
def test_no_command_module_named_gets_the_whole_app(args):
    from journeymodel.cli.app import _app_for

    assert run(_app_for(args), args) == run(app, args)


def test_module_names_follow_the_command_names():
    from journeymodel.cli.app import _module_named

    assert _module_named(["attribute", "m.nc"]) == "cmd_attribute"
    assert _module_named(["--debug", "pain-points", "m.nc"]) == "cmd_pain_points"
    assert _module_named(["fit", "markov", "e.csv"]) == "cmd_fit_markov"
    assert _module_named(["fit", "--help"]) is None
    assert _module_named(["nothing"]) is None
    assert _module_named(["fit_markov"]) == "cmd_fit_markov"  # no command: the app answers


def test_a_command_imports_no_other_command_module():
    import subprocess
    import sys

    code = ("import sys; from journeymodel.cli.app import main; "
            "main(['attribute', '--help']); "
            "print(sorted(m for m in sys.modules if m.startswith('journeymodel.cli.cmd_')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    # cmd_attribute reads --censored's choices from cmd_fit_markov
    assert out == "['journeymodel.cli.cmd_attribute', 'journeymodel.cli.cmd_fit_markov']"
