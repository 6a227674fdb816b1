"""`journeymodel fit segments`, inspect and predict on a segments model, the persona round trip
and user errors, in-process."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import assert_one_error_line


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    from journeymodel.data.mixtures import make_mixture_data

    path = tmp_path_factory.mktemp("segments") / "events.csv"
    make_mixture_data(900, 3, journeys_per_customer=4, seed=7).events.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model_file(events, tmp_path_factory):
    from journeymodel.cli.app import main

    out = tmp_path_factory.mktemp("segments_model") / "s.nc"
    assert main(["fit", "segments", str(events), "-o", str(out), "--segments", "auto",
                 "--auto-range", "2,4", "--json"]) == 0
    return out


def test_fit_prints_segments_and_saves(run_cli, events, tmp_path):
    out = tmp_path / "s.nc"
    code, stdout, _ = run_cli("fit", "segments", events, "-o", out, "--segments", "2",
                              "--restarts", "1")
    assert code == 0, stdout
    assert "Segments" in stdout and "Characteristic paths" in stdout
    assert f"saved {out}" in stdout and out.exists()


def test_censored_ignore_is_the_fit_before_issue_17(run_cli, events, tmp_path):
    """--censored ignore and survival give different fits on a log cut mid-stream; the file
    says which (and keeps the holding times the survival term reads)."""
    from journeymodel.io.persist import load_model

    log = pd.read_csv(events)
    cut = tmp_path / "cut.csv"
    log[log["timestamp"] <= log["timestamp"].sort_values().iloc[len(log) * 2 // 3]].to_csv(
        cut, index=False)
    fits = {}
    for how in ("survival", "ignore"):
        out = tmp_path / f"{how}.nc"
        code, stdout, _ = run_cli("fit", "segments", cut, "-o", out, "--segments", "2",
                                  "--restarts", "1", "--censored", how)
        assert code == 0, stdout
        fits[how] = load_model(out)
    assert fits["survival"].censored_survival_ and fits["survival"].holding_ is not None
    assert not fits["ignore"].censored_survival_
    assert fits["survival"].log_likelihood_ != fits["ignore"].log_likelihood_


def test_inspect_json_has_the_issue_keys(run_cli, model_file):
    code, stdout, _ = run_cli("inspect", model_file, "--json")
    assert code == 0
    j = json.loads(stdout)
    assert j["model_type"] == "segments" and j["n_segments"] == 3
    for key in ("log_likelihood", "bic"):
        assert isinstance(j[key], float)
    assert [s["n_segments"] for s in j["selection"]] == [2, 3, 4]
    assert set(j["selection"][0]) == {"n_segments", "log_likelihood", "bic"}
    best = min(j["selection"], key=lambda s: s["bic"])
    assert best["n_segments"] == j["n_segments"] and best["bic"] == j["bic"]
    shares = [s["share"] for s in j["segments"]]
    assert shares == sorted(shares, reverse=True) and sum(shares) == pytest.approx(1.0)
    for seg in j["segments"]:
        assert {"name", "share", "customers", "conversion_rate", "top_paths",
                "transitions"} <= set(seg)
        assert 0 <= seg["conversion_rate"] <= 1 and seg["top_paths"] and seg["transitions"]


def test_predict_members_file(run_cli, model_file, events, tmp_path):
    out = tmp_path / "members.csv"
    code, _, err = run_cli("predict", model_file, events, "-o", out)
    assert code == 0, err
    members = pd.read_csv(out)
    names = json.loads(run_cli("inspect", model_file, "--json")[1])["segments"]
    names = [s["name"] for s in names]
    assert list(members.columns) == ["customer_id", "segment", "probability",
                                     *[f"p_{n}" for n in names]]
    assert members["customer_id"].is_unique and len(members) == 900
    assert set(members["segment"]) == set(names)


def test_persona_log_feeds_models_by_persona(run_cli, model_file, events, tmp_path):
    log = tmp_path / "personas.csv"
    code, _, err = run_cli("predict", model_file, events, "-o", tmp_path / "m.csv",
                           "--persona-log", log)
    assert code == 0, err
    assert "with a 'persona' column" in err
    written = pd.read_csv(log)
    assert len(written) == len(pd.read_csv(events)) and written["persona"].notna().all()
    from journeymodel.data.journeys import load_journeys

    js = load_journeys(log, persona_col="persona")
    assert len(js.personas) == 3
    code, stdout, _ = run_cli("fit", "markov", log, "-o", tmp_path / "m.nc")
    assert code == 0, stdout


@pytest.mark.slow
def test_persona_log_then_fit_conversion(run_cli, model_file, events, tmp_path):
    """The issue's round trip: the discovered segments as personas of the conversion model."""
    log = tmp_path / "personas.csv"
    assert run_cli("predict", model_file, events, "--persona-log", log)[0] == 0
    code, stdout, _ = run_cli("fit", "conversion", log, "-o", tmp_path / "c.nc",
                              "--persona-col", "persona", "--draws", "200", "--tune", "200",
                              "--chains", "2")
    assert code == 0, stdout


@pytest.mark.parametrize(("args", "match"), [
    (["--segments", "zero"], r"--segments must be a whole number >= 1 or auto \(got 'zero'\)"),
    (["--segments", "auto", "--auto-range", "5,2"], "--auto-range must be LOW,HIGH"),
    (["--segments", "5000"], "fewer than the 5000 segments"),
    (["--censored", "drop"], "--censored"),
])
def test_fit_user_errors(run_cli, events, tmp_path, args, match):
    code, _, err = run_cli("fit", "segments", events, "-o", tmp_path / "s.nc", *args)
    assert_one_error_line(code, err, match)


def test_persona_log_user_errors(run_cli, model_file, events, tmp_path):
    code, _, err = run_cli("predict", model_file, events, "--persona-log", events)
    assert_one_error_line(code, err, "--persona-log .*is the input")
    log = tmp_path / "p.csv"
    assert run_cli("predict", model_file, events, "--persona-log", log)[0] == 0
    code, _, err = run_cli("predict", model_file, log, "--persona-log", tmp_path / "q.csv")
    assert_one_error_line(code, err, "already has a column 'persona'.*--persona-name")
    code, _, err = run_cli("predict", model_file, log, "--persona-log", tmp_path / "q.csv",
                           "--persona-name", "segment")
    assert code == 0, err


def test_persona_log_needs_a_segments_model(run_cli, events, tmp_path):
    markov = tmp_path / "m.nc"
    assert run_cli("fit", "markov", events, "-o", markov)[0] == 0
    code, _, err = run_cli("predict", markov, events, "--persona-log", tmp_path / "p.csv")
    assert_one_error_line(code, err, "--persona-log needs a segments model")


def test_path_table_has_no_customers(run_cli, tmp_path):
    paths = tmp_path / "paths.csv"
    paths.write_text("path,total_conversions,total_null\na > b,3,4\nb,1,2\n")
    code, _, err = run_cli("fit", "segments", paths, "-o", tmp_path / "s.nc")
    assert_one_error_line(code, err, "no customer ids")
