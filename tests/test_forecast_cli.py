"""``journeymodel forecast M.nc --from EVENTS`` and ``simulate --from`` (issue 17) through the
CLI: output, JSON keys, the as-of cut, the backtest, and user errors (exit 2, one line)."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import assert_one_error_line

DATA = Path(__file__).parent / "data"
CUT = "2025-11-15"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A sample log (2025), a Markov model fitted on it up to CUT, and a conversion model."""
    from journeymodel.cli.app import main

    folder = tmp_path_factory.mktemp("forecast")
    events = folder / "events.parquet"
    assert main(["sample-data", "-o", str(events), "--customers", "600", "--seed", "2"]) == 0
    model = folder / "markov.nc"
    assert main(["fit", "markov", str(events), "-o", str(model), "--observed-until",
                 CUT]) == 0
    conversion = Path(shutil.copy(DATA / "conversion.nc", folder / "conversion.nc"))
    return {"events": events, "markov": model, "conversion": conversion, "folder": folder}


def test_forecast_prints_totals_days_and_says_new_journeys_are_not_counted(files, run_cli):
    code, out, _ = run_cli("forecast", files["markov"], "--from", files["events"],
                           "--horizon", "14D", "--draws", "50")
    assert code == 0
    assert "Forecast of the" in out and "journeys in flight at 2025-12-31" in out
    assert "Conversions per day" in out
    assert "New journeys that start after 2025-12-31" in out and "are not counted" in out


def test_json_keys_and_per_journey_file(files, run_cli, tmp_path):
    out_file = tmp_path / "per_journey.csv"
    code, out, err = run_cli("forecast", files["markov"], "--from", files["events"],
                             "--horizon", "10D", "--draws", "40", "--json", "-o", out_file)
    assert code == 0, err
    js = json.loads(out)
    assert list(js) == ["as_of", "horizon", "in_flight", "conversions", "churns", "dropoffs",
                        "daily"]
    assert js["horizon"] == "10D" and len(js["daily"]) == 10
    assert js["daily"][0]["date"] == js["as_of"][:10]
    for key in ("conversions", "churns", "dropoffs"):
        assert list(js[key]) == ["mean", "low", "high"]
        assert js[key]["low"] <= js[key]["mean"] <= js[key]["high"]
    per = pd.read_csv(out_file)
    assert list(per.columns) == ["customer_id", "p_conversion", "p_churn", "p_dropoff",
                                 "next_touchpoint", "p_next", "expected_conversion_date"]
    assert len(per) == js["in_flight"]
    assert per["p_conversion"].sum() == pytest.approx(js["conversions"]["mean"])


def test_as_of_uses_no_later_event_and_backtests(files, run_cli, tmp_path):
    """--as-of on the whole log gives the forecast made on the log cut there (same seed, same
    numbers), and beside it what happened next."""
    cut = tmp_path / "cut.parquet"
    frame = pd.read_parquet(files["events"])
    frame[frame["timestamp"] <= pd.Timestamp(CUT, tz="UTC")].to_parquet(cut)
    args = ["--horizon", "30D", "--draws", "60", "--json", "--as-of", CUT]
    code, whole, err = run_cli("forecast", files["markov"], "--from", files["events"], *args)
    assert code == 0, err
    code, alone, err = run_cli("forecast", files["markov"], "--from", cut, *args)
    assert code == 0, err
    whole, alone = json.loads(whole), json.loads(alone)
    back = whole.pop("backtest")
    assert whole == alone and "backtest" not in alone
    assert back["coverage"]["days"] == 30
    assert 0 <= back["brier"] <= 1 and 0.5 < back["auc"] <= 1
    assert sum(d["realized"] for d in back["daily"]) == back["realized"]["conversions"]
    code, out, _ = run_cli("forecast", files["markov"], "--from", files["events"],
                           "--horizon", "30D", "--draws", "60", "--as-of", CUT)
    assert "beside what happened" in out and "Backtest:" in out and "realized" in out


def test_same_seed_same_output(files, run_cli):
    args = ("forecast", files["markov"], "--from", files["events"], "--horizon", "7D",
            "--draws", "30", "--json")
    assert run_cli(*args, "--seed", "3")[1] == run_cli(*args, "--seed", "3")[1]
    assert run_cli(*args, "--seed", "3")[1] != run_cli(*args, "--seed", "4")[1]


@pytest.mark.parametrize(("extra", "match"), [
    (["--horizon", "soon"], r"--horizon must be a duration like 30D"),
    (["--horizon", "30"], r"--horizon needs a unit"),
    (["--horizon", "30D", "--as-of", "2024-01-01"], r"--as-of 2024-01-01 is before the first"),
    (["--horizon", "30D", "--as-of", "2027-01-01"], r"--as-of 2027-01-01 is after the end"),
    (["--horizon", "30D", "--draws", "1"], r"--draws must be a whole number >= 2"),
    (["--horizon", "30D", "--journeys", "5"], r"--journeys applies to conversion models"),
])
def test_user_errors(files, run_cli, extra, match):
    code, _, err = run_cli("forecast", files["markov"], "--from", files["events"], *extra)
    assert_one_error_line(code, err, match)


def test_markov_needs_from_and_horizon(files, run_cli):
    code, _, err = run_cli("forecast", files["markov"], "--horizon", "30D")
    assert_one_error_line(code, err, r"a markov model forecasts the journeys in flight.*--from")
    code, _, err = run_cli("forecast", files["markov"], "--from", files["events"])
    assert_one_error_line(code, err, r"--horizon is required with --from")


def test_other_model_types_refuse_from(files, run_cli):
    code, _, err = run_cli("forecast", files["conversion"], "--from", files["events"],
                           "--horizon", "30D")
    assert_one_error_line(code, err, r"--from applies to markov and stages models.*conversion")
    code, _, err = run_cli("forecast", files["conversion"], "--horizon", "3D")
    assert_one_error_line(code, err, r"--horizon must be a number of periods")


def test_simulate_continuations_read_back_by_describe(files, run_cli, tmp_path):
    out = tmp_path / "continuations.parquet"
    code, printed, err = run_cli("simulate", files["markov"], "--from", files["events"],
                                 "--horizon", "30D", "--draws", "3", "-o", out, "--seed", "1")
    assert code == 0, err
    assert "continuing the journeys in flight (3 draws each)" in printed
    ev = pd.read_parquet(out)
    assert list(ev.columns) == ["customer_id", "source_customer", "draw", "timestamp",
                                "touchpoint"]
    assert set(ev["draw"]) <= {0, 1, 2}
    end = pd.read_parquet(files["events"])["timestamp"].max()
    assert (ev["timestamp"] > end).all()
    assert (ev["timestamp"] <= end + pd.Timedelta(days=30)).all()
    code, described, err = run_cli("describe", out)
    assert code == 0, err
    again = tmp_path / "again.parquet"
    run_cli("simulate", files["markov"], "--from", files["events"], "--horizon", "30D",
            "--draws", "3", "-o", again, "--seed", "1")
    pd.testing.assert_frame_equal(pd.read_parquet(again), ev)


def test_simulate_from_needs_a_horizon(files, run_cli, tmp_path):
    code, _, err = run_cli("simulate", files["markov"], "--from", files["events"],
                           "-o", tmp_path / "c.parquet")
    assert_one_error_line(code, err, r"needs both --from EVENTS and --horizon")
    assert not (tmp_path / "c.parquet").exists()


def test_stages_model_forecasts_too(files, run_cli, tmp_path):
    model = tmp_path / "stages.nc"
    code, _, err = run_cli("fit", "stages", files["events"], "-o", model, "--stages", "3",
                           "--observed-until", CUT)
    assert code == 0, err
    code, out, err = run_cli("forecast", model, "--from", files["events"], "--horizon", "14D",
                             "--draws", "40", "--json")
    assert code == 0, err
    js = json.loads(out)
    assert js["in_flight"] > 0 and len(js["daily"]) == 14
    assert js["conversions"]["low"] <= js["conversions"]["mean"] <= js["conversions"]["high"]


def test_a_model_fitted_past_as_of_is_said(files, run_cli, tmp_path):
    whole = tmp_path / "whole.nc"
    assert run_cli("fit", "markov", files["events"], "-o", whole)[0] == 0
    code, out, _ = run_cli("forecast", whole, "--from", files["events"], "--horizon", "7D",
                           "--draws", "20", "--as-of", CUT)
    assert code == 0 and "The model was fitted on events after --as-of" in out
    code, out, _ = run_cli("forecast", files["markov"], "--from", files["events"],
                           "--horizon", "7D", "--draws", "20", "--as-of", CUT)
    assert code == 0 and "fitted on events after" not in out


def test_simulate_from_refuses_other_model_types(files, run_cli, tmp_path):
    code, _, err = run_cli("simulate", files["conversion"], "--from", files["events"],
                           "--horizon", "30D", "-o", tmp_path / "c.parquet")
    assert_one_error_line(code, err, r"applies to markov and stages models, not to a "
                                     r"conversion model")
    assert not (tmp_path / "c.parquet").exists()
