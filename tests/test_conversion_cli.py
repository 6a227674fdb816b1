"""``journeymodel fit conversion``, ``inspect`` and ``forecast`` on conversion models (issue 5)."""

import json

import numpy as np
import pandas as pd
import pytest
from journeymodel.cli.app import main  # noqa: E402

NAMES = ["analyst", "browser", "champion", "dreamer", "explorer"]
RATES = [0.2, 0.3, 0.4, 0.5, 0.6]


def write_events(path, *, personas=True, n_customers=900, seed=0):
    """An event log: 5 personas with conversion rates 0.2 ... 0.6, one journey per customer.

    (Five personas, like the library tests, so one compiled model serves both test files.)
    """
    rng = np.random.default_rng(seed)
    names = np.array(NAMES)
    rates = np.array(RATES)
    who = rng.integers(0, len(names), n_customers)
    t0 = pd.Timestamp("2025-01-01", tz="UTC")
    rows = []
    for i in range(n_customers):  # small test fixture, not a hot path
        day = t0 + pd.Timedelta(days=int(rng.integers(0, 200)))
        touch = ["email", "search", "social"][int(rng.integers(0, 3))]
        rows.append((f"c{i}", day, touch, names[who[i]]))
        if rng.random() < rates[who[i]]:
            rows.append((f"c{i}", day + pd.Timedelta(hours=2), "conversion", names[who[i]]))
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "touchpoint", "persona"])
    if not personas:
        frame = frame.drop(columns="persona")
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conv")
    events = write_events(folder / "events.csv")
    out = folder / "conv.nc"
    assert main(["fit", "conversion", str(events), "-o", str(out), "--seed", "1",
                 "--persona-col", "persona"]) == 0
    return events, out


def test_fit_inspect_json(fitted, capsys):
    _, out = fitted
    capsys.readouterr()
    assert main(["inspect", str(out), "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["model_type"] == "conversion"
    assert set(js["personas"]) == set(NAMES)
    for name, truth in zip(NAMES, RATES, strict=True):
        entry = js["personas"][name]
        assert entry["conversions"] <= entry["journeys"]
        rate = entry["conversion_rate"]
        assert rate["hdi_low"] < rate["mean"] < rate["hdi_high"]
        assert rate["hdi_low"] - 0.03 < truth < rate["hdi_high"] + 0.03
    d = js["diagnostics"]
    assert d["r_hat_max"] <= 1.01 and d["ess_bulk_min"] >= 400 and d["divergences"] == 0
    assert js["prob_greater"]["explorer"]["analyst"] > 0.99


def test_inspect_tables(fitted, capsys):
    _, out = fitted
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Conversion rate by persona" in text and "champion" in text
    assert "sampling converged" in text


def test_forecast(fitted, capsys, tmp_path):
    _, out = fitted
    capsys.readouterr()
    assert main(["forecast", str(out), "--journeys", "1000", "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["journeys"] == 1000
    assert js["low"] < js["expected_conversions"] < js["high"]
    assert 300 < js["expected_conversions"] < 500  # rates 0.2 ... 0.6 in equal shares
    table = tmp_path / "f.csv"
    assert main(["forecast", str(out), "--journeys", "1000", "-o", str(table)]) == 0
    frame = pd.read_csv(table)
    assert frame["journeys"].iloc[-1] == 1000 and frame["persona"].iloc[-1] == "total"


def test_fit_json_output(fitted, capsys, tmp_path):
    events, _ = fitted
    capsys.readouterr()
    out = tmp_path / "again.nc"
    assert main(["fit", "conversion", str(events), "-o", str(out), "--seed", "1",
                 "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["model"] == str(out) and "personas" in js


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error:")]
    assert len(errors) == 1, err
    return errors[0]


def test_no_persona_column_is_an_error(tmp_path, capsys):
    events = write_events(tmp_path / "nop.csv", personas=False, n_customers=50)
    code = main(["fit", "conversion", str(events), "-o", str(tmp_path / "m.nc")])
    assert code == 2
    assert "no persona column" in _one_error(capsys)
    assert not (tmp_path / "m.nc").exists()


@pytest.mark.parametrize(("args", "match"), [
    (["--draws", "0"], "--draws must be a whole number >= 1"),
    (["--draws", "many"], "Invalid value for '--draws'"),
    (["--chains", "0"], "--chains must be a whole number >= 1"),
    (["--by", "device"], "device"),
    (["--parameterization", "odd"], "'odd' is not one of"),
])
def test_bad_options(fitted, tmp_path, capsys, args, match):
    events, _ = fitted
    code = main(["fit", "conversion", str(events), "-o", str(tmp_path / "m.nc"), *args])
    assert code == 2
    assert match in _one_error(capsys)


def test_forecast_needs_journeys(fitted, capsys):
    _, out = fitted
    assert main(["forecast", str(out), "--horizon", "3"]) == 2
    assert "--journeys N" in _one_error(capsys)
    assert main(["forecast", str(out)]) == 2
    assert "--journeys N" in _one_error(capsys)


def test_fit_inspect_text_says_what_it_counts(fitted, capsys):
    """One line reconciles the model's counts with describe's: conversions among journeys
    whose outcome is known, and what was left out (in flight or started within the gap)."""
    _, out = fitted
    capsys.readouterr()
    assert main(["inspect", str(out), "--json"]) == 0
    counted = json.loads(capsys.readouterr().out)["counted"]
    assert main(["inspect", str(out)]) == 0
    text = " ".join(capsys.readouterr().out.split())  # notes may wrap at the terminal width
    assert (f"counts: {counted['conversions']:,} conversions in {counted['journeys']:,} "
            "journeys whose outcome is known") in text
    left = counted["left_out_in_flight"] + counted["left_out_started_within_gap"]
    assert (f"left out {left:,}" in text) == (left > 0)
    assert "Conversion rate by persona (posterior median, 94% HDI)" in text


@pytest.mark.slow
def test_crossed_by_first_touchpoint(fitted, tmp_path, capsys):
    events, _ = fitted
    out = tmp_path / "crossed.nc"
    assert main(["fit", "conversion", str(events), "-o", str(out), "--by",
                 "first_touchpoint", "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["by"] == ["persona", "first_touchpoint"]
    assert {c["first_touchpoint"] for c in js["cells"]} == {"email", "search", "social"}
    assert js["diagnostics"]["divergences"] == 0
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "persona / first_touchpoint" in " ".join(text.split()) and "analyst / email" in text
    assert "('analyst'" not in text


@pytest.mark.slow
def test_demo_step_on_demo_data(tmp_path, capsys):
    from journeymodel.cli.cmd_fit_conversion import DEMO_ORDER, demo_step

    from journeymodel.data.datasets import write_sample_events
    from journeymodel.io.persist import load_model

    assert DEMO_ORDER == 30
    events = tmp_path / "demo.parquet"
    write_sample_events(events, 2000, seed=0)
    path = demo_step(events, tmp_path, seed=0)
    assert path == tmp_path / "conversion.nc"
    model = load_model(path)
    assert model.diagnostics_.ok, model.diagnostics_  # diagnostics pass on the demo data
    assert "Conversion rate by persona" in capsys.readouterr().out
