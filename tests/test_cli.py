"""The CLI frame: user errors are one `error:` line and exit 2; --help stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from conftest import assert_one_error_line

EVENTS = pd.DataFrame({
    "customer_id": ["a", "a", "a", "b", "b", "c"],
    "timestamp": ["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-01", "2025-03-01",
                  "2025-03-02"],
    "touchpoint": ["email", "web", "conversion", "web", "call", "web"],
    "persona": ["p1", "p1", "p1", "p2", "p2", "p1"],
})


@pytest.fixture
def events_csv(tmp_path):
    path = tmp_path / "events.csv"
    EVENTS.to_csv(path, index=False)
    return path


def test_describe_json_has_the_documented_keys(run_cli, events_csv):
    code, out, err = run_cli("describe", events_csv, "--json")
    assert code == 0, err
    data = json.loads(out)
    for key in ("rows_read", "rows_used", "rows_dropped", "customers", "journeys", "events",
                "outcomes", "touchpoints", "personas"):
        assert key in data
    assert data["rows_read"] == 6 and data["rows_used"] == 6 and data["rows_dropped"] == {}
    assert data["journeys"] == 4  # a: 1 converting; b: cut by the 30-day gap; c: 1
    assert data["outcomes"] == {"conversion": 1, "churn": 0, "dropoff": 1, "censored": 2}
    assert data["touchpoints"] == {"call": 1, "email": 1, "web": 3}
    assert data["personas"] == {"p1": 2, "p2": 1}


def test_describe_tables(run_cli, events_csv):
    code, out, _ = run_cli("describe", events_csv)
    assert code == 0
    for title in ("Ledger", "Outcomes", "Touchpoints", "paths", "Personas"):
        assert title in out
    assert "email > web" in out


def test_version(run_cli):
    code, out, _ = run_cli("--version")
    assert code == 0 and out.startswith("journeymodel ")


@pytest.mark.parametrize("args,match", [
    (["describe", "{events}", "--bogus"], "No such option: --bogus"),
    (["describe", "{tmp}/missing.csv"], "does not exist"),
    (["describe", "{tmp}/none/*.csv"], "no file matches"),
    (["describe", "{events}", "--time-col", "when"],
     r"missing required column 'when'.*--time-col"),
    (["describe", "{events}", "--gap", "soon"], "--gap must be a duration"),
    (["describe", "{events}", "--observed-until", "someday"], "--observed-until must be a date"),
    (["describe", "{events}", "--timestamps", "weekly"], "Invalid value for '--timestamps'"),
    (["describe", "{events}", "--sentiment-scale", "1-5"], "--sentiment-scale must be MIN,MAX"),
    (["describe", "{events}", "--conversion-label", " "], "--conversion-label must not be empty"),
    (["inspect", "{events}"], "not a readable model file"),
])
def test_user_errors_are_one_line(run_cli, events_csv, tmp_path, args, match):
    args = [a.format(events=events_csv, tmp=tmp_path) for a in args]
    code, _, err = run_cli(*args)
    assert_one_error_line(code, err, match)


def test_strict_mode_error_names_the_row(run_cli, tmp_path):
    path = tmp_path / "bad.csv"
    EVENTS.assign(timestamp=EVENTS.timestamp.where(EVENTS.index != 4, "n/a")).to_csv(
        path, index=False)
    code, _, err = run_cli("describe", path, "--strict")
    assert_one_error_line(code, err, r"bad\.csv, row 5, column 'timestamp'.*'n/a'")
    code, out, err = run_cli("describe", path, "--json")
    assert code == 0
    assert "warning: " in err and json.loads(out)["rows_dropped"] == {"bad_timestamp": 1}


def test_empty_and_malformed_files(run_cli, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert_one_error_line(*run_cli("describe", empty)[::2], "empty")
    binary = tmp_path / "garbage.csv"
    binary.write_bytes(bytes(range(256)) * 10)
    assert_one_error_line(*run_cli("describe", binary)[::2], "garbage.csv")
    header = tmp_path / "header.csv"
    header.write_text("customer_id,timestamp,touchpoint\n")
    assert_one_error_line(*run_cli("describe", header)[::2], "no rows")


def test_debug_shows_the_traceback(tmp_path):
    missing_col = tmp_path / "e.csv"
    missing_col.write_text("who,when,what\na,1,web\n")
    from journeymodel.cli.app import main

    from journeymodel.errors import InputError

    with pytest.raises(InputError):
        main(["--debug", "describe", str(missing_col)])


def test_help_imports_no_heavy_library():
    code = ("import sys, journeymodel.cli.app as a; "
            "heavy = [m for m in ('numpy', 'pandas', 'pyarrow', 'xarray', 'pymc', 'arviz', "
            "'hmmlearn', 'matplotlib', 'scipy') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_console_script_exit_code(tmp_path, events_csv):
    """The installed entry point exits 2 on a user error (not just main()'s return value)."""
    proc = subprocess.run([sys.executable, "-m", "journeymodel", "describe", str(events_csv),
                           "--customer-col", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1


def test_console_script_ends_with_its_outputs_complete(tmp_path, events_csv):
    """The entry point ends the process without the interpreter's teardown (cli.app._exit_now):
    what it printed to a pipe and the files it wrote are whole, the exit code is kept, and
    atexit handlers still run."""
    model = tmp_path / "m.nc"
    fit = subprocess.run([sys.executable, "-m", "journeymodel", "fit", "markov", str(events_csv),
                          "-o", str(model), "--json"], capture_output=True, text=True)
    assert fit.returncode == 0, fit.stderr
    assert json.loads(fit.stdout)["order"] == 1  # the whole JSON reached the pipe
    out = subprocess.run([sys.executable, "-m", "journeymodel", "attribute", str(model),
                          "--json", "--draws", "0"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert set(json.loads(out.stdout)["channels"]) == {"web", "email", "call"}
    code = ("import atexit, sys; atexit.register(lambda: print('atexit ran')); "
            "from journeymodel.cli.app import main; sys.argv = ['journeymodel', 'inspect', "
            f"{str(tmp_path / 'none.nc')!r}]; main()")
    ended = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert ended.returncode == 2
    assert ended.stdout == "atexit ran\n" and ended.stderr.startswith("error: ")


@pytest.mark.parametrize("command", ["conversion", "churn"])
@pytest.mark.parametrize("option, value, match", [
    ("--draws", "0", r"--draws must be a whole number >= 1 \(got 0\)"),
    ("--tune", "-1", r"--tune must be a whole number >= 0 \(got -1\)"),
    ("--chains", "0", r"--chains must be a whole number >= 1 \(got 0\)"),
    ("--target-accept", "1.5", r"--target-accept must be between 0 and 1 \(got 1\.5\)"),
])
def test_bayesian_fits_share_their_sampler_options(run_cli, tmp_path, events_csv, command,
                                                   option, value, match):
    """--draws/--tune/--chains/--target-accept are declared once (cli/options.py) and checked
    the same way by both Bayesian fits, before the log is read: nothing is written."""
    out = tmp_path / "m.nc"
    code, _, err = run_cli("fit", command, events_csv, "-o", out, option, value)
    assert_one_error_line(code, err, match)
    assert not out.exists()


def test_sampler_options_have_one_declaration():
    from journeymodel.cli import cmd_fit_churn, cmd_fit_conversion, options

    for module in (cmd_fit_churn, cmd_fit_conversion):
        hints = module.__dict__
        for name in ("DrawsOpt", "TuneOpt", "ChainsOpt", "TargetAcceptOpt"):
            assert hints[name] is getattr(options, name)
