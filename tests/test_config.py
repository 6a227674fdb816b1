"""journeymodel.toml: reading options said once ([read] table), the command line overriding."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from journeymodel.data.config import KEYS, Config, load_config, read_options
from journeymodel.errors import OptionError
from tests.conftest import assert_one_error_line


@pytest.fixture
def events(tmp_path, monkeypatch):
    """A small log with renamed columns and conversions labelled 'purchase', in the cwd."""
    monkeypatch.chdir(tmp_path)
    rows = [("u1", "01/02/2025 10:00", "web"), ("u1", "02/02/2025 10:00", "purchase"),
            ("u2", "01/02/2025 11:00", "email"), ("u2", "03/02/2025 09:00", "web"),
            ("u3", "05/02/2025 08:00", "web"), ("u3", "06/02/2025 08:00", "purchase"),
            ("u4", "20/03/2025 08:00", "email")]
    pd.DataFrame(rows, columns=["user", "when", "what"]).to_csv("ev.csv", index=False)
    return tmp_path / "ev.csv"


CONFIG = """\
[read]
customer_col = "user"
time_col = "when"
touchpoint_col = "what"
conversion_label = ["purchase"]
time_format = "%d/%m/%Y %H:%M"
gap = "30D"
"""


def _describe(run_cli, *args):
    code, out, err = run_cli("describe", *args, "--json")
    assert code == 0, err
    return json.loads(out)


# -- the library -------------------------------------------------------------------------------


def test_no_config_file_is_fine(tmp_path):
    assert load_config(cwd=tmp_path) == Config()


def test_every_key_is_a_reading_option():
    from journeymodel.cli.options import _READ_NAMES

    assert set(KEYS) == set(_READ_NAMES)


def test_load_config_values_as_the_command_line_gives_them(tmp_path):
    path = tmp_path / "journeymodel.toml"
    path.write_text('[read]\nconversion_label = "purchase"\ngap = 3600\n'
                    "observed_until = 2025-06-30\nstrict = true\nsentiment_scale = [1, 5]\n"
                    'timestamps = "epoch"\n')
    config = load_config(cwd=tmp_path)
    assert config.path == path
    assert config.read == {"conversion_label": ["purchase"], "gap": "3600",
                           "observed_until": "2025-06-30", "strict": True,
                           "sentiment_scale": "1,5", "timestamps": "epoch"}


def test_read_options_for_python_users(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(CONFIG)
    options = read_options(path, gap="7D")
    assert options.customer_col == "user" and options.conversion_labels == ("purchase",)
    assert options.gap == "7D" and options.time_format == "%d/%m/%Y %H:%M"


@pytest.mark.parametrize("text, match", [
    ('[read]\ncustomer_cl = "x"\n', r"c.toml: unknown key 'customer_cl' in \[read\] \(did you "
                                    r"mean 'customer_col'\?\)"),
    ('[reed]\ngap = "1D"\n', r"c.toml: unknown table 'reed'; a config file holds one table"),
    ('gap = "1D"\n', r"c.toml: unknown key 'gap'"),
    ("[read]\ngap = [1]\n", r"c.toml: \[read\] gap must be text \(30D, 12h, none\) or a number "
                            r"\(got \[1\]\)"),
    ("[read]\ncustomer_col = 3\n", r"c.toml: \[read\] customer_col must be text \(got 3\)"),
    ("[read]\nconversion_label = [1, 2]\n", r"\[read\] conversion_label must be text or a list"),
    ('[read]\nconversion_label = [" "]\n', r"\[read\] conversion_label must be text or a list"),
    ('[read]\nstrict = "yes"\n', r"\[read\] strict must be true or false \(got 'yes'\)"),
    ('[read]\ntimestamps = "unix"\n', r"\[read\] timestamps must be one of auto, datetime"),
    ("[read]\nsentiment_scale = [1]\n", r"\[read\] sentiment_scale must be two numbers"),
    ("[read]\nobserved_until = [2025]\n", r"\[read\] observed_until must be a date"),
    ('[read]\ngap = "1D"\ngap = "2D"\n', r"c.toml: not valid TOML: .*line 3"),
    ("[read]\ngap = \n", r"c.toml: not valid TOML: Invalid value \(at line 2, column 7\)"),
    ("read = 3\n", r"'read' must be a table"),
])
def test_bad_config_files(tmp_path, text, match):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(OptionError, match=match):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(OptionError, match=r"nope.toml: config file not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(OptionError, match=r"config file is not a file"):
        load_config(tmp_path)


def test_binary_config_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes(b"\xff\xfe[read]")
    with pytest.raises(OptionError, match=r"c.toml: (cannot read the config file|not valid)"):
        load_config(path)


# -- the CLI -----------------------------------------------------------------------------------


def test_config_in_the_working_directory_is_used(events, run_cli):
    (events.parent / "journeymodel.toml").write_text(CONFIG)
    j = _describe(run_cli, "ev.csv")
    assert j["config"] == "journeymodel.toml"
    assert j["rows_used"] == 7 and j["customers"] == 4
    assert j["outcomes"]["conversion"] == 2  # 'purchase' is the conversion label
    code, out, _ = run_cli("describe", "ev.csv")
    assert code == 0 and "reading options from config file journeymodel.toml" in out


def test_without_a_config_file_describe_says_none(events, run_cli):
    code, out, err = run_cli("describe", "ev.csv", "--json")
    assert code == 2  # no customer_id column: the config is what makes this log readable
    assert_one_error_line(code, err, "customer_id")
    (events.parent / "other.toml").write_text(CONFIG)
    j = _describe(run_cli, "ev.csv", "--config", "other.toml")
    assert j["config"] == "other.toml"
    (events.parent / "plain.csv").write_text("customer_id,timestamp,touchpoint\na,1,web\n")
    assert _describe(run_cli, "plain.csv")["config"] is None


def test_command_line_overrides_the_file(events, run_cli):
    (events.parent / "journeymodel.toml").write_text(CONFIG)
    assert _describe(run_cli, "ev.csv")["outcomes"].get("conversion") == 2
    # given on the command line, even equal to a default, the option wins over the file
    j = _describe(run_cli, "ev.csv", "--conversion-label", "conversion")
    assert j["outcomes"].get("conversion", 0) == 0
    # a 1-day gap splits u2's journey (2 days apart) where the file's 30 days does not
    assert _describe(run_cli, "ev.csv", "--gap", "1D")["journeys"] > _describe(
        run_cli, "ev.csv")["journeys"]


def test_config_reaches_fit_commands(events, run_cli):
    (events.parent / "journeymodel.toml").write_text(CONFIG)
    code, out, err = run_cli("fit", "markov", "ev.csv", "-o", "m.nc", "--json")
    assert code == 0, err
    assert json.loads(out)["model"] == "m.nc"


@pytest.mark.parametrize("text, match", [
    ('[read]\ncolumn = "x"\n', r"journeymodel.toml: unknown key 'column' in \[read\]"),
    ("[read]\ngap = \n", r"journeymodel.toml: not valid TOML: .*line 2"),
    ("[read]\nstrict = 1\n", r"journeymodel.toml: \[read\] strict must be true or false"),
])
def test_cli_errors_name_the_file_and_key(events, run_cli, text, match):
    (events.parent / "journeymodel.toml").write_text(text)
    code, out, err = run_cli("describe", "ev.csv")
    assert_one_error_line(code, err, match)


def test_cli_config_option_missing_file(events, run_cli):
    code, _, err = run_cli("describe", "ev.csv", "--config", "missing.toml")
    assert_one_error_line(code, err, "missing.toml: config file not found")


def test_every_event_reading_command_takes_config(run_cli):
    for command in (["describe"], ["fit", "markov"], ["fit", "stages"], ["fit", "conversion"],
                    ["fit", "churn"], ["predict"]):
        code, out, _ = run_cli(*command, "--help")
        assert code == 0 and "--config" in out, command
