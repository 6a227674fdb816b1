"""`journeymodel fit stages`, and inspect/predict/simulate/demo on a stages model, in-process."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import assert_one_error_line


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    from journeymodel.data.datasets import write_sample_events

    path = tmp_path_factory.mktemp("stages") / "events.parquet"
    write_sample_events(path, n_customers=800, seed=2)
    return path


@pytest.fixture(scope="module")
def model_file(events, tmp_path_factory):
    from journeymodel.cli.app import main

    out = tmp_path_factory.mktemp("stages_model") / "m.nc"
    assert main(["fit", "stages", str(events), "-o", str(out), "--stages", "4",
                 "--restarts", "2", "--json"]) == 0
    return out


def test_fit_prints_stages_and_saves(run_cli, events, tmp_path):
    out = tmp_path / "s.nc"
    code, stdout, _ = run_cli("fit", "stages", events, "-o", out, "--stages", "3",
                              "--topology", "funnel", "--restarts", "1")
    assert code == 0, stdout
    assert "Stage transitions" in stdout and f"saved {out}" in stdout
    assert "S1: " in stdout and out.exists()


def test_inspect_json(run_cli, model_file):
    code, stdout, _ = run_cli("inspect", model_file, "--json")
    assert code == 0
    j = json.loads(stdout)
    assert j["model_type"] == "stages" and j["n_stages"] == 4
    for key in ("log_likelihood", "aic", "bic", "n_parameters"):
        assert isinstance(j[key], (int, float))
    for stage in j["stages"]:
        assert stage["top_touchpoints"] and 0 <= stage["conversion_rate"] <= 1
        assert 0 <= stage["churn_rate"] <= 1 and stage["name"].startswith("S")


def test_auto_json_reports_selection(run_cli, events, tmp_path):
    code, stdout, _ = run_cli("fit", "stages", events, "-o", tmp_path / "a.nc", "--stages",
                              "auto", "--auto-range", "2,3", "--restarts", "1", "--json")
    assert code == 0
    sel = json.loads(stdout)["selection"]
    assert [r["n_stages"] for r in sel] == [2, 3]
    assert {"log_likelihood", "aic", "bic", "n_parameters"} <= set(sel[0])


def test_predict_and_simulate(run_cli, model_file, events, tmp_path):
    code, stdout, _ = run_cli("predict", model_file, events, "--json")
    assert code == 0
    preds = json.loads(stdout)["predictions"]
    assert preds and {"customer_id", "p_conversion", "stage", "next_touchpoint"} <= set(preds[0])
    sim = tmp_path / "sim.csv"
    code, stdout, _ = run_cli("simulate", model_file, "-n", "50", "-o", sim, "--seed", "3")
    assert code == 0
    frame = pd.read_csv(sim)
    assert list(frame.columns) == ["customer_id", "timestamp", "touchpoint"]
    code, _, _ = run_cli("describe", sim)
    assert code == 0


def test_hmmlearn_engine_option(run_cli, events, tmp_path):
    code, stdout, err = run_cli("fit", "stages", events, "-o", tmp_path / "h.nc", "--stages",
                                "2", "--restarts", "1", "--max-iter", "3", "--engine",
                                "hmmlearn", "--censored", "ignore", "--json")
    assert code == 0 and "did not converge" in err
    assert json.loads(stdout)["n_iter"] == 3


def test_hmmlearn_engine_cannot_fit_the_survival_term(run_cli, events, tmp_path):
    """The demo log has journeys in flight: hmmlearn cannot complete their expected counts."""
    code, _, err = run_cli("fit", "stages", events, "-o", tmp_path / "h.nc", "--stages", "2",
                           "--restarts", "1", "--engine", "hmmlearn")
    assert code == 2
    assert err.strip().startswith("error: engine 'hmmlearn' cannot fit the survival term")
    assert "--censored ignore" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args, match", [
    (["--stages", "0"], "--stages must be a whole number >= 1 or auto"),
    (["--stages", "many"], "--stages must be a whole number"),
    (["--stages", "auto", "--auto-range", "5,2"], "--auto-range must be LOW,HIGH"),
    (["--topology", "linear"], "linear"),
    (["--engine", "torch"], "torch"),
    (["--censored", "drop"], "drop"),
])
def test_user_errors(run_cli, events, tmp_path, args, match):
    code, _, err = run_cli("fit", "stages", events, "-o", tmp_path / "x.nc", *args)
    assert_one_error_line(code, err, match)


def test_demo_step(events, tmp_path, capsys):
    from journeymodel.cli.cmd_fit_stages import DEMO_ORDER, demo_step

    assert DEMO_ORDER == 20
    path = demo_step(events, tmp_path, 0)
    out = capsys.readouterr().out
    assert path == tmp_path / "stages.nc" and path.exists()
    assert "Hidden journey stages" in out and "Choosing the number of stages" in out
