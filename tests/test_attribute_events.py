"""``journeymodel attribute EVENTS``: the model fitted in memory, the same output as ``fit
markov`` then ``attribute`` on its model file (issue 20), and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_error_line
from journeymodel.cli.cmd_attribute import is_model_file


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> Path:
    """A small log with in-flight journeys (the survival censoring matters), a value column
    and repeated touchpoints (generator only)."""
    rng = np.random.default_rng(3)
    rows = []
    for c in range(300):
        t = 1_700_000_000 + rng.uniform(0, 2e7)
        for tp in rng.choice(["email", "web", "call", "store"], size=rng.integers(1, 6)):
            t += rng.exponential(3 * 86400)
            rows.append((f"c{c}", t, tp, 0.0))
        if rng.random() < 0.35:
            rows.append((f"c{c}", t + 3600, "conversion", float(rng.integers(10, 200))))
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "touchpoint", "value"])
    df["timestamp"] = pd.to_datetime(df["timestamp"], unit="s", utc=True)
    path = tmp_path_factory.mktemp("events") / "events.parquet"
    df.to_parquet(path)
    return path


def _two_commands(run_cli, events, tmp_path, fit_args=(), attr_args=()):
    model = tmp_path / "m.nc"
    code, _, err = run_cli("fit", "markov", events, "-o", model, *fit_args)
    assert code == 0, err
    code, out, err = run_cli("attribute", model, *attr_args)
    assert code == 0, err
    return out


@pytest.mark.parametrize("fit_args, attr_args", [
    ((), ("--json",)),
    ((), ()),  # the printed table too
    (("--order", "2", "--keep-repeats", "--censored", "ignore", "--prior", "0.5"),
     ("--json", "--draws", "300", "--seed", "4")),
    (("--order", "auto"), ("--json", "--draws", "0")),
    (("--value-col", "value"), ("--method", "shapley", "--json")),
])
def test_same_output_as_fit_then_attribute(run_cli, events, tmp_path, fit_args, attr_args):
    seed = list(attr_args[attr_args.index("--seed"):][:2]) if "--seed" in attr_args else []
    expected = _two_commands(run_cli, events, tmp_path, (*fit_args, *seed), attr_args)
    code, out, err = run_cli("attribute", events, *fit_args, *attr_args)
    assert code == 0, err
    assert out == expected


def test_writes_no_model_file(run_cli, events, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("attribute", events, "--json", "--draws", "0")
    assert code == 0, err
    assert json.loads(out)["method"] == "removal"
    assert list(tmp_path.iterdir()) == []


def test_table_output_from_events(run_cli, events, tmp_path):
    table = tmp_path / "attribution.csv"
    code, _, err = run_cli("attribute", events, "--draws", "0", "-o", table)
    assert code == 0, err
    assert set(pd.read_csv(table)["channel"]) == {"call", "email", "store", "web"}


def test_model_files_are_recognised_by_name_or_content(events, tmp_path, run_cli):
    model = tmp_path / "m.nc"
    assert run_cli("fit", "markov", events, "-o", model)[0] == 0
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(model.read_bytes())
    assert is_model_file(str(model)) and is_model_file(str(renamed))
    assert not is_model_file(str(events))
    assert not is_model_file(str(tmp_path / "missing.parquet"))
    assert is_model_file(str(tmp_path / "missing.nc"))  # a model, so load_model's error
    assert not is_model_file(str(tmp_path))  # a folder of part files is an event log
    code, out, err = run_cli("attribute", renamed, "--json", "--draws", "0")
    assert code == 0, err


@pytest.mark.parametrize("option", [["--order", "2"], ["--prior", "1"], ["--keep-repeats"],
                                    ["--censored", "ignore"], ["--workers", "2"]])
def test_fitting_options_refused_with_a_model_file(run_cli, events, tmp_path, option):
    model = tmp_path / "m.nc"
    assert run_cli("fit", "markov", events, "-o", model)[0] == 0
    code, out, err = run_cli("attribute", model, *option)
    assert_one_error_line(code, err, rf"{option[0]}.*only for an event log; .*m\.nc is a "
                          "model file")
    assert out == ""


def test_errors_from_an_event_log(run_cli, events, tmp_path):
    code, out, err = run_cli("attribute", tmp_path / "missing.parquet")
    assert_one_error_line(code, err, "missing.parquet")
    code, out, err = run_cli("attribute", events, "--order", "7")
    assert_one_error_line(code, err, r"--order must be 1, 2, 3, 4 or auto \(got '7'\)")
    code, out, err = run_cli("attribute", events, "--customer-col", "who")
    assert_one_error_line(code, err, "who")
    code, out, err = run_cli("attribute", events, "-o", events)
    assert_one_error_line(code, err, "is the input")
    assert code == 2 and out == ""
    missing = tmp_path / "missing.nc"
    code, out, err = run_cli("attribute", missing)
    assert_one_error_line(code, err, r"missing\.nc: file not found")
