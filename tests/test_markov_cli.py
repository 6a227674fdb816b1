"""Markov model through the CLI, and against ChannelAttribution (skipped if not installed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_error_line

TEXTBOOK = pd.DataFrame({"path": ["c1 > c2 > c3", "c1", "c2 > c3"],
                         "total_conversions": [1, 0, 0], "total_null": [0, 1, 1]})


@pytest.fixture
def textbook(tmp_path) -> Path:
    path = tmp_path / "paths.csv"
    TEXTBOOK.to_csv(path, index=False)
    return path


@pytest.fixture
def events(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    n = 400
    rows = []
    for c in range(n):  # small test log (generator only)
        k = rng.integers(1, 5)
        t = 1_700_000_000 + rng.uniform(0, 3e7)
        for tp in rng.choice(["email", "web", "call"], size=k):
            t += rng.exponential(3600 * 24)
            rows.append((f"c{c}", t, tp))
        if rng.random() < 0.3:
            rows.append((f"c{c}", t + 3600, "conversion"))
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "touchpoint"])
    df["timestamp"] = pd.to_datetime(df["timestamp"], unit="s", utc=True)
    path = tmp_path / "events.parquet"
    df.to_parquet(path)
    return path


def test_fit_attribute_textbook_json(run_cli, textbook, tmp_path):
    model = tmp_path / "m.nc"
    code, out, err = run_cli("fit", "markov", textbook, "-o", model)
    assert code == 0, err
    code, out, err = run_cli("attribute", model, "--json", "--draws", "100")
    assert code == 0, err
    js = json.loads(out)
    assert js["method"] == "removal" and js["total_conversions"] == 1
    ch = js["channels"]
    assert [round(ch[c]["removal_effect"], 12) for c in ("c1", "c2", "c3")] == [0.5, 1, 1]
    assert [round(ch[c]["conversions"], 12) for c in ("c1", "c2", "c3")] == [0.2, 0.4, 0.4]
    for method in ("first", "last", "linear", "shapley"):
        code, out, err = run_cli("attribute", model, "--method", method, "--json")
        assert code == 0 and json.loads(out)["method"] == method


def test_attribute_default_draws_is_the_library_s(run_cli, events, tmp_path):
    """Issue 20: `attribute` draws DEFAULT_DRAWS by default (the Monte-Carlo error of the
    interval width under 1% of the width), and says so in its note."""
    import inspect

    from journeymodel.cli.cmd_attribute import attribute

    from journeymodel.models.markov.attribution import DEFAULT_DRAWS

    assert inspect.signature(attribute).parameters["draws"].default == DEFAULT_DRAWS
    model = tmp_path / "m.nc"
    assert run_cli("fit", "markov", events, "-o", model)[0] == 0
    code, out, err = run_cli("attribute", model)
    assert code == 0, err
    assert f"{DEFAULT_DRAWS:,} posterior draws" in " ".join(out.split())


def test_fit_inspect_predict_simulate(run_cli, events, tmp_path):
    model = tmp_path / "m.nc"
    code, out, err = run_cli("fit", "markov", events, "-o", model, "--order", "auto",
                             "--holdout", "0.25", "--json")
    assert code == 0, err
    js = json.loads(out)
    assert {"log_loss", "auc"} <= set(js["holdout"]) and len(js["order_selection"]) == 4
    code, out, err = run_cli("inspect", model, "--json")
    assert code == 0 and json.loads(out)["model_type"] == "markov"
    code, out, err = run_cli("predict", model, events, "--json")
    assert code == 0, err
    assert json.loads(out)["n_in_flight"] >= 1
    sim = tmp_path / "sim.parquet"
    code, out, err = run_cli("simulate", model, "-n", "300", "-o", sim, "--seed", "2")
    assert code == 0, err
    back = pd.read_parquet(sim)
    assert back["customer_id"].nunique() == 300
    code, out, err = run_cli("fit", "markov", sim, "-o", tmp_path / "m2.nc")
    assert code == 0, err
    code, out, err = run_cli("attribute", model)
    assert code == 0 and "credible intervals" in out


@pytest.mark.parametrize("args, match", [
    (["--order", "7"], "--order must be"),
    (["--prior", "-1"], "prior must be"),
    (["--holdout", "1.5"], "--holdout must be between"),
])
def test_fit_errors(run_cli, textbook, tmp_path, args, match):
    code, out, err = run_cli("fit", "markov", textbook, "-o", tmp_path / "m.nc", *args)
    assert_one_error_line(code, err, match)


def test_attribute_errors(run_cli, textbook, tmp_path):
    model = tmp_path / "m.nc"
    assert run_cli("fit", "markov", textbook, "-o", model)[0] == 0
    assert_one_error_line(*_ce(run_cli("attribute", model, "--ci", "2")), "ci must be")
    assert_one_error_line(*_ce(run_cli("attribute", model, "--method", "magic")), "magic")
    bad = tmp_path / "bad.nc"
    bad.write_text("not a model")
    assert_one_error_line(*_ce(run_cli("attribute", bad)), "not a readable model")


def _ce(result):
    code, out, err = result
    return code, err


# -- ChannelAttribution ---------------------------------------------------------------------------

def _ca_data():
    import importlib.util

    import ChannelAttribution as ca

    spec = importlib.util.find_spec("cypack")
    if spec is None or spec.submodule_search_locations is None:
        pytest.skip("ChannelAttribution's example data (cypack/data/Data.csv) is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "Data.csv"
    if not path.exists():
        pytest.skip("ChannelAttribution's example data is not installed")
    return ca, path


def test_heuristics_match_channelattribution_exactly():
    ca, path = _ca_data()
    from journeymodel.data.journeys import load_journeys
    from journeymodel.models.markov.model import MarkovJourneyModel

    df = pd.read_csv(path, sep=";")
    h = ca.heuristic_models(df, "path", "total_conversions", var_value="total_conversion_value",
                            flg_pro=False).set_index("channel_name")
    m = MarkovJourneyModel().fit(load_journeys(path))
    for method in ("first", "last", "linear"):
        a = m.attribution(method)
        conv = pd.Series(a.conversions, index=a.channels)
        value = pd.Series(a.value, index=a.channels)
        np.testing.assert_allclose(conv[h.index], h[f"{method}_touch_conversions"], rtol=1e-12)
        np.testing.assert_allclose(value[h.index], h[f"{method}_touch_value"], rtol=1e-10)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_removal_matches_channelattribution_within_monte_carlo_error(order):
    """ChannelAttribution simulates; its spread over seeds is its Monte-Carlo error. Our exact
    removal effects and conversions must sit within a few of its standard deviations."""
    ca, path = _ca_data()
    from journeymodel.data.journeys import load_journeys
    from journeymodel.models.markov.model import MarkovJourneyModel

    df = pd.read_csv(path, sep=";")
    a = MarkovJourneyModel(order=order).fit(load_journeys(path)).attribution(n_draws=0)
    ours = pd.DataFrame({"re": a.removal_effect, "conv": a.conversions}, index=a.channels)
    runs = []
    for seed in (0, 1000, 2000, 3000):  # ChannelAttribution seeds runs seed+0..seed+9
        r = ca.markov_model(df, "path", "total_conversions", var_null="total_null",
                            order=order, out_more=True, verbose=False, flg_pro=False,
                            seed=seed, nsim_start=2e5, max_step=1000)
        runs.append(r["removal_effects"].set_index("channel_name")["removal_effect"])
    runs = pd.concat(runs, axis=1).reindex(ours.index).fillna(0.0)
    mean, sd = runs.mean(axis=1), runs.std(axis=1)
    big = ours["re"] > 0.01
    assert (abs(ours["re"] - mean)[big] <= 4 * sd[big] + 0.01 * ours["re"][big]).all(), (
        pd.DataFrame({"ours": ours["re"], "ca_mean": mean, "ca_sd": sd}))
