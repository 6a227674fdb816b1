"""Churn models fitted by NUTS: parameter recovery at the size of the classic studies,
diagnostics, results, save/load round trips and the CLI.

The fast tests compile three PyMC models once each (sBG with two personas, Weibull with two,
BG/NBD with one); the ``slow`` ones recover parameters at ten times the size and check the
diagnostics on the demo data.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from journeymodel.data.journeys import load_journeys
from journeymodel.errors import ConvergenceWarning, OptionError
from journeymodel.io.persist import load_model
from journeymodel.models.churn import likelihoods as lk
from journeymodel.models.churn.model import ChurnModel
from journeymodel.models.churn.simulate import simulate_bgnbd, simulate_sbg, simulate_weibull

#: Fader & Hardie (2007), "regular" and "high end" cohorts.
SBG_TRUTH = {"regular": {"alpha": 0.704, "beta": 1.182},
             "highend": {"alpha": 0.668, "beta": 3.806}}
#: Fader, Hardie & Lee (2005), CDNOW.
BGNBD_TRUTH = {"cdnow": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}}
WEIBULL_TRUTH = {"early": {"shape": 1.5, "scale": 20.0}, "late": {"shape": 0.8, "scale": 40.0}}


def _fit(df, until, **kw):
    js = load_journeys(df, observed_until=until)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model = ChurnModel(**kw).fit(js)
    problems = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert not problems, problems
    return model


def _assert_recovered(model, truth, *, within=None, names=None):
    ds = model.params()
    for persona, params in truth.items():
        for name, value in params.items():
            cell = ds.sel(persona=persona, param=name)
            assert float(cell["hdi_low"]) <= value <= float(cell["hdi_high"]), (
                persona, name, value, cell.to_dict())
            if within is not None and (names is None or name in names):
                assert abs(float(cell["mean"]) / value - 1) < within, (persona, name, value,
                                                                        float(cell["mean"]))


@pytest.fixture(scope="module")
def sbg_events():
    return simulate_sbg(SBG_TRUTH, 1000, 7, seed=1)


@pytest.fixture(scope="module")
def sbg(sbg_events):
    return _fit(*sbg_events, model="sbg", time_unit="Y", seed=1)


@pytest.fixture(scope="module")
def bgnbd():
    df, until = simulate_bgnbd(BGNBD_TRUTH, 2400, 39, seed=3)
    return (_fit(df, until, model="bgnbd", time_unit="W", seed=3, keep_customers=True), df,
            until)


def test_sbg_recovers_fader_hardie_cohorts(sbg):
    """Two cohorts of 1,000 over 7 yearly periods: truth in the 94% HDI; retention (what the
    data pin down) within 10%. alpha and beta themselves are within 10% only at larger sizes
    (see the slow test): at this size their posterior sd is 15-25%, as in the paper."""
    _assert_recovered(sbg, SBG_TRUTH)
    ret = sbg.retention(periods=7)
    for persona, p in SBG_TRUTH.items():
        true = np.exp(lk.sbg_log_survival(p["alpha"], p["beta"], np.arange(1, 8)))
        got = ret["survival_mean"].sel(persona=persona).values
        np.testing.assert_allclose(got, true, rtol=0.10)
        lo, hi = (ret[f"survival_{s}"].sel(persona=persona).values for s in ("low", "high"))
        assert ((lo <= true) & (true <= hi)).mean() >= 6 / 7
    assert sbg.diagnostics_.ok and sbg.diagnostics_.divergences == 0


def test_sbg_summary_json_and_tables(sbg):
    res = sbg.summary()
    personas = res.json["personas"]
    assert set(personas) == set(SBG_TRUTH)
    assert personas["regular"]["customers"] == 1000
    cell = personas["highend"]["params"]["beta"]
    assert set(cell) == {"median", "mean", "hdi_low", "hdi_high"}
    assert cell["hdi_low"] < cell["median"] < cell["hdi_high"]
    assert res.json["diagnostics"]["converged"] is True
    assert res.json["time_unit"] == "Y" and res.json["origin"] == "first_event"
    assert [t for t, _ in res.tables][1].startswith("Retention")
    hazard = sbg.retention(4)["hazard_mean"].sel(persona="regular").values
    assert (np.diff(hazard) < 0).all()  # sBG hazard falls with tenure


def test_sbg_forecast_and_round_trip(sbg, tmp_path):
    res = sbg.forecast(horizon=3, seed=5)
    frame = res.frame.set_index("persona")
    assert (frame["survivors_mean"] <= frame["active_now"]).all()
    assert (frame["survivors_low"] <= frame["survivors_mean"]).all()
    assert frame.loc["all", "active_now"] == frame.drop("all")["active_now"].sum()
    pd.testing.assert_frame_equal(sbg.forecast(horizon=3, seed=5).frame, res.frame)
    with pytest.raises(OptionError, match="--horizon"):
        sbg.forecast()
    path = sbg.save(tmp_path / "sbg.nc")
    loaded = load_model(path)
    xr.testing.assert_identical(sbg.to_datatree(), loaded.to_datatree())
    pd.testing.assert_frame_equal(loaded.forecast(horizon=3, seed=5).frame, res.frame)
    assert loaded.summary().json == sbg.summary().json


def test_sbg_survivor_forecast_matches_closed_form(sbg):
    """At a horizon of whole periods, survivors = sum of S(m + h) / S(m) over active customers,
    evaluated at the posterior mean parameters ~ posterior mean forecast."""
    c = sbg.cells_
    draws = sbg.forecast(horizon=2, seed=0).frame.set_index("persona")["survivors_mean"]
    for j, persona in enumerate(sbg.personas_):
        a, b = sbg.draws_of("alpha")[:, j], sbg.draws_of("beta")[:, j]
        sel = c["cell_persona"] == j
        m = np.maximum(np.rint(c["cell_age"][sel]) - 1, 0)
        m2 = np.maximum(np.rint(c["cell_age"][sel] + 2) - 1, 0)
        keep = np.exp(lk.sbg_log_survival(a[:, None], b[:, None], m2)
                      - lk.sbg_log_survival(a[:, None], b[:, None], m))
        expect = (keep @ c["cell_count"][sel]).mean()
        assert abs(draws[persona] / expect - 1) < 0.01


def test_weibull_recovers_parameters():
    df, until = simulate_weibull(WEIBULL_TRUTH, 1000, 48, seed=3)
    model = _fit(df, until, model="weibull", time_unit="M", seed=3)
    _assert_recovered(model, WEIBULL_TRUTH, within=0.10)
    surv = model.retention(periods=24)["survival_mean"].sel(persona="early").values
    true = np.exp(lk.weibull_log_survival(1.5, 20.0, np.arange(1, 25)))
    np.testing.assert_allclose(surv, true, atol=0.02)
    res = model.forecast(horizon=6)
    assert res.json["personas"]["all"]["active_now"] > 0


def test_bgnbd_recovers_cdnow_size_sample(bgnbd):
    """About 2,400 customers over 39 weeks: r, alpha, a, b in the 94% HDI; r and alpha within
    10%. (a and b have a posterior sd of about 25% at this size, as their standard errors in
    FHL 2005 do; the slow test checks them within 10% at 25x the size.) Across seeds the
    posterior mean of alpha runs 2-12% high, as does the maximum-likelihood estimate on the
    same data: several purchases on one day count once, which lowers the observed rate."""
    model = bgnbd[0]
    _assert_recovered(model, BGNBD_TRUTH, within=0.10, names={"r", "alpha"})
    assert model.diagnostics_.ok


def test_bgnbd_forecast_per_customer(bgnbd):
    model, df, _ = bgnbd
    res = model.forecast(horizon=13, seed=1)
    frame = res.frame
    assert len(frame) == df["customer_id"].nunique()
    assert frame["p_alive"].between(0, 1).all()
    assert (frame["expected_low"] <= frame["expected_transactions"]).all()
    assert (frame.loc[frame["x"] == 0, "p_alive"] == 1).all()
    # a customer with many repeats long ago is less likely alive than one seen recently
    busy = frame[frame["x"] >= 3]
    stale = busy["t_x"] < busy["T"] - 20
    assert busy.loc[stale, "p_alive"].mean() < busy.loc[~stale, "p_alive"].mean()
    total = res.json["personas"]["all"]["transactions_mean"]
    np.testing.assert_allclose(total, frame["expected_transactions"].sum(), rtol=1e-9)
    assert len(res.json["customers"]) == len(frame)


def test_bgnbd_without_customer_ids(bgnbd, tmp_path):
    model = bgnbd[0]
    anonymous = ChurnModel(**{**model.get_params(), "keep_customers": False})
    for attr in ("posterior_", "personas_", "customers_", "events_", "cells_", "info_",
                 "diagnostics_", "ledger_", "journeys_"):
        setattr(anonymous, attr, getattr(model, attr))
    anonymous.customer_ids_ = None
    loaded = load_model(anonymous.save(tmp_path / "anon.nc"))
    assert "customer_id" not in loaded.to_datatree()["at_risk"].to_dataset()
    res = loaded.forecast(horizon=13, seed=1)
    assert "customers" not in res.json and "customer_id" not in res.frame
    assert res.json["personas"]["all"]["transactions_mean"] == pytest.approx(
        model.forecast(horizon=13, seed=1).json["personas"]["all"]["transactions_mean"])


def test_cli_fit_inspect_forecast(sbg_events, tmp_path, run_cli):
    df, until = sbg_events
    events = tmp_path / "events.csv"
    df.to_csv(events, index=False)
    out = tmp_path / "churn.nc"
    code, stdout, err = run_cli("fit", "churn", events, "-o", out, "--model", "sbg",
                                "--time-unit", "Y", "--observed-until", until, "--seed", "1")
    assert code == 0, err
    assert "Retention" in stdout and "saved" in stdout
    code, stdout, _ = run_cli("inspect", out, "--json")
    info = json.loads(stdout)
    assert info["model_type"] == "churn"
    assert info["personas"]["regular"]["customers"] == 1000
    assert set(info["personas"]["regular"]["params"]["alpha"]) == {"median", "mean",
                                                                   "hdi_low", "hdi_high"}
    assert info["diagnostics"]["converged"] is True
    csv = tmp_path / "forecast.csv"
    code, stdout, err = run_cli("forecast", out, "--horizon", "2", "-o", csv, "--json")
    assert code == 0, err
    assert json.loads(stdout)["personas"]["all"]["active_now"] == pd.read_csv(csv).set_index(
        "persona").loc["all", "active_now"]
    code, _, err = run_cli("forecast", out)
    assert code == 2 and "--horizon" in err


# ---------------------------------------------------------------------------------------------
# slow: larger samples and the demo data


@pytest.mark.slow
def test_sbg_alpha_beta_within_ten_percent_at_ten_times_the_size():
    df, until = simulate_sbg(SBG_TRUTH, 10_000, 7, seed=11)
    model = _fit(df, until, model="sbg", time_unit="Y", seed=11)
    _assert_recovered(model, SBG_TRUTH, within=0.10)


@pytest.mark.slow
def test_bgnbd_all_parameters_within_ten_percent_at_scale():
    """2 x 30,000 customers: every posterior mean within 10% of the truth, and the HDI holds the
    maximum-likelihood estimate on the same customers (scipy on the numpy closed form, no
    PyTensor or NUTS involved). It need not hold the truth: several purchases on one day count
    once (the standard convention, and the issue's), which the continuous-time simulation does
    not know; on these customers that moves the ML estimate of alpha 7% above the truth (4.73
    vs 4.41; 4.47 when every purchase counts), beyond the HDI's half-width of 4%."""
    from scipy.optimize import minimize

    from journeymodel.models.churn import data as cd
    from journeymodel.stats.customers import customer_stats

    truth = {"cdnow": BGNBD_TRUTH["cdnow"], "heavy": {"r": 0.9, "alpha": 6.0, "a": 1.2,
                                                      "b": 4.0}}
    df, until = simulate_bgnbd(truth, 30_000, 39, seed=12)
    model = _fit(df, until, model="bgnbd", time_unit="W", seed=12)
    assert model.diagnostics_.ok
    ds = model.params()
    js = load_journeys(df, observed_until=until)
    stats = customer_stats(js)
    cust = cd.customers_of(stats)
    s = cd.rfm(stats, cd.UNIT_SECONDS["W"])
    for j, persona in enumerate(cust.personas):
        m = cust.persona[s.index] == j
        rfm = (s.x[m], s.t_x[m], s.T[m])
        neg = lambda v, rfm=rfm: -lk.bgnbd_loglik(*np.exp(v), *rfm).sum()  # noqa: E731
        mle = np.exp(minimize(neg, np.zeros(4), method="Nelder-Mead",
                              options={"xatol": 1e-6, "fatol": 1e-8, "maxiter": 4000}).x)
        for name, value, true in zip(("r", "alpha", "a", "b"), mle, truth[persona].values(),
                                     strict=True):
            cell = ds.sel(persona=persona, param=name)
            assert float(cell["hdi_low"]) <= value <= float(cell["hdi_high"]), (
                persona, name, value, cell.to_dict())
            assert abs(float(cell["mean"]) / true - 1) < 0.10, (persona, name,
                                                                 float(cell["mean"]))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sbg", "weibull", "bgnbd"])
def test_diagnostics_pass_on_demo_data(kind):
    from journeymodel.data.datasets import make_demo_data

    demo = make_demo_data(2000, seed=0)
    model = _fit(demo.events, None, model=kind, seed=0)
    assert model.diagnostics_.ok
    if kind == "sbg":  # per-period churn probability of each persona ~ its mean theta
        hazard = model.retention(1)["hazard_mean"].isel(period=0)
        for persona, truth in demo.truth.persona_churn.items():
            assert abs(float(hazard.sel(persona=persona)) / truth["mean_theta"] - 1) < 0.25
