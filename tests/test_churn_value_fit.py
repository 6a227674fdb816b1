"""Customer value and pooling fitted by NUTS (issue 19): a transaction log through the CLI
(BG/NBD + Gamma-Gamma spend: recovery at the CDNOW size, inspect and forecast keys, the
per-customer file, lifetimes at the posterior mean), and the pooling options of the churn and
conversion models against each persona's own fit and the one-population fit.

Each fit compiles its model once (30-120 s on the shared machine): the module is ``slow``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy.special import expit

from journeymodel.data.journeys import load_journeys
from journeymodel.errors import ModelFileError
from journeymodel.io.persist import load_model
from journeymodel.models.churn import likelihoods as lk
from journeymodel.models.churn.model import ChurnModel
from journeymodel.models.churn.simulate import simulate_sbg, simulate_transactions
from journeymodel.models.conversion.model import ConversionModel

pytestmark = pytest.mark.slow

#: BG/NBD of CDNOW (FHL 2005a) and Gamma-Gamma of CDNOW (FHL 2005b) for one persona, a busier
#: one beside it; 1,180 customers each (about CDNOW's 2,357).
TRUTH = {"cdnow": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426,
                   "p": 6.25, "q": 3.74, "v": 15.44},
         "busy": {"r": 0.6, "alpha": 5.0, "a": 0.6, "b": 3.0, "p": 4.0, "q": 3.0, "v": 20.0}}
SPEND = ("p", "q", "v")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """The CLI on a transaction log: customer_id, timestamp, touchpoint 'purchase', amount."""
    from journeymodel.cli.app import main

    tmp = tmp_path_factory.mktemp("tx")
    df, until = simulate_transactions(TRUTH, 1180, 39, seed=5)
    log = tmp / "tx.csv"
    df.to_csv(log, index=False)
    out = tmp / "m.nc"
    code = main([str(a) for a in ("fit", "churn", log, "-o", out, "--model", "bgnbd",
                                  "--conversion-label", "purchase", "--value-col", "amount",
                                  "--observed-until", until, "--keep-customers",
                                  "--seed", "2")])
    assert code == 0
    return load_model(out), out, df, until


def test_spend_recovered_at_the_cdnow_size(fitted):
    model = fitted[0]
    spend = model.params("spend")
    for persona, truth in TRUTH.items():
        for name in SPEND:
            cell = spend.sel(persona=persona, param=name)
            assert float(cell["hdi_low"]) <= truth[name] <= float(cell["hdi_high"]), (
                persona, name, cell.to_dict())
    assert model.diagnostics_.ok
    assert abs(model.info_["spend"]["correlation"]) < 0.1  # simulated independent


def test_inspect_and_forecast_keys(fitted, tmp_path, run_cli):
    _, out, df, _ = fitted
    code, stdout, err = run_cli("inspect", out, "--json")
    assert code == 0, err
    info = json.loads(stdout)
    entry = info["personas"]["cdnow"]["spend_params"]
    assert set(entry) == set(SPEND)
    assert all(set(entry[k]) == {"mean", "hdi_low", "hdi_high"} for k in SPEND)
    assert info["pooling"] == "partial" and info["params"]["spend"] is True
    csv = tmp_path / "customers.csv"
    code, stdout, err = run_cli("forecast", out, "--horizon", "52", "--discount-rate", "0.1",
                                "--json", "-o", csv)
    assert code == 0, err
    got = json.loads(stdout)
    for persona in (*TRUTH, "all"):
        clv = got["personas"][persona]["clv"]
        assert set(clv) == {"mean", "low", "high"} and clv["low"] <= clv["mean"] <= clv["high"]
    table = pd.read_csv(csv)
    assert len(table) == df["customer_id"].nunique()
    for name in ("p_alive", "expected_transactions", "expected_spend", "clv"):
        assert name in table
    for name in ("p_alive", "expected_spend", "clv"):
        assert (table[f"{name}_low"] <= table[name] + 1e-9).all()
        assert (table[name] <= table[f"{name}_high"] + 1e-9).all()
    # the persona figure is the mean of its customers' CLV
    by = table.groupby("persona")["clv"].mean()
    assert by["cdnow"] == pytest.approx(got["personas"]["cdnow"]["clv"]["mean"], rel=1e-6)


def test_cli_errors_on_spend_options(fitted, tmp_path, run_cli):
    from conftest import assert_one_error_line

    _, _, df, until = fitted
    log = tmp_path / "tx.csv"
    df.to_csv(log, index=False)
    code, _, err = run_cli("fit", "churn", log, "-o", tmp_path / "x.nc", "--model", "bgnbd",
                           "--conversion-label", "purchase", "--value-col", "nothere")
    assert_one_error_line(code, err, "column 'nothere' given by --value-col does not exist")
    code, _, err = run_cli("fit", "conversion", log, "-o", tmp_path / "c.nc",
                           "--conversion-label", "purchase")
    assert_one_error_line(code, err, "every row is an outcome label")


def test_p_alive_and_expected_transactions_agree_with_lifetimes(fitted):
    """lifetimes' BG/NBD at our posterior means gives our closed forms there, and our
    posterior-averaged P(alive) and expected transactions are close to that plug-in; its
    maximum-likelihood fit of each persona lies inside our 94% HDIs."""
    import lifetimes

    model = fitted[0]
    c = model.cells_
    means = model.params()["mean"]
    res = model.forecast(horizon=13, seed=0).frame
    for i, persona in enumerate(model.personas_):
        mine = c["cell_persona"] == i
        x, t_x, T = c["x"][mine], c["t_x"][mine], c["T"][mine]
        p = {k: float(means.sel(param=k, persona=persona)) for k in ("r", "alpha", "a", "b")}
        bgf = lifetimes.BetaGeoFitter()
        bgf.params_ = pd.Series(p)
        alive = bgf.conditional_probability_alive(x, t_x, T)
        expected = bgf.conditional_expected_number_of_purchases_up_to_time(13.0, x, t_x, T)
        assert_allclose(lk.bgnbd_p_alive(*p.values(), x, t_x, T), alive, rtol=1e-8)
        assert_allclose(lk.bgnbd_expected_future(*p.values(), x, t_x, T, 13.0), expected,
                        rtol=1e-8)
        assert np.abs(res["p_alive"].to_numpy()[mine] - alive).max() < 0.05
        assert abs(res["expected_transactions"].to_numpy()[mine].sum() / expected.sum()
                   - 1) < 0.05
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ml = lifetimes.BetaGeoFitter().fit(x, t_x, T).params_
        ds = model.params().sel(persona=persona)
        for k in ("r", "alpha", "a", "b"):
            assert float(ds["hdi_low"].sel(param=k)) <= ml[k] <= float(
                ds["hdi_high"].sel(param=k)), (persona, k, ml[k])


def test_pooling_is_saved_and_checked_on_load(fitted, tmp_path):
    model, out, _, _ = fitted
    tree = model.to_datatree()
    info = json.loads(tree.attrs["info"] if "info" in tree.attrs else tree.to_dataset()
                      .attrs["info"])
    assert info["pooling"] == "partial"
    params = json.loads(tree.attrs["params"])
    tree.attrs["params"] = json.dumps({**params, "pooling": "none"})
    bad = tmp_path / "bad.nc"
    tree.to_netcdf(bad)
    with pytest.raises(ModelFileError, match=r"pooling 'none' \(fit record 'partial'\)"):
        load_model(bad)


# ---------------------------------------------------------------------------------------------
# pooling: two personas of 1,000 customers

SBG = {"short": {"alpha": 1.0, "beta": 3.0}, "long": {"alpha": 0.7, "beta": 4.5}}


@pytest.fixture(scope="module")
def sbg_log():
    df, until = simulate_sbg(SBG, 1000, 8, unit="M", seed=4)
    return load_journeys(df, observed_until=until)


def _churn(js, pooling="partial"):
    model = ChurnModel("sbg", time_unit="M", seed=3, pooling=pooling).fit(js)
    draws = model.draws_of("alpha") / (model.draws_of("alpha") + model.draws_of("beta"))
    return model, draws.mean(axis=0), draws.std(axis=0)


def test_churn_pooling_none_complete_partial(sbg_log):
    js = sbg_log
    none, m_none, sd = _churn(js, "none")
    assert "pooling: none" in "\n".join(none.summary().notes)
    own = []
    for i, persona in enumerate(none.personas_):
        part = js.take(np.flatnonzero(np.asarray(js.personas)[js.persona] == persona))
        _, m_own, _ = _churn(part)
        own.append(m_own[0])
        assert abs(m_none[i] - m_own[0]) < 0.15 * sd[i], (persona, m_none[i], m_own[0])
    one = _churn(replace(js, persona=np.full_like(js.persona, -1), personas=()))
    complete, m_complete, _ = _churn(js, "complete")
    assert_allclose(m_complete, one[1][0], rtol=1e-12)  # the same sampler on the same data
    assert complete.summary().json["pooling"] == "complete"
    _, m_partial, _ = _churn(js)
    # partial pooling pulls each persona from its own estimate towards the population
    for i in range(2):
        assert abs(m_partial[i] - m_complete[0]) < abs(m_none[i] - m_complete[0])


def _posterior_rate(n, k):
    """Posterior mean of expit(theta), theta ~ N(0, 3), k ~ Binomial(n, expit(theta)) by
    quadrature: the independent reference of no and complete pooling."""
    theta = np.linspace(-12, 12, 20001)
    log_post = (-theta**2 / 18 + k * np.log(expit(theta)) + (n - k) * np.log(expit(-theta)))
    w = np.exp(log_post - log_post.max())
    return float((w * expit(theta)).sum() / w.sum())


def test_conversion_pooling_against_quadrature():
    rng = np.random.default_rng(0)
    rows = []
    for persona, rate in (("a", 0.15), ("b", 0.35)):
        for c in range(1000):
            converted = rng.random() < rate
            rows += [(f"{persona}{c}", 1, "web", persona),
                     (f"{persona}{c}", 2, "conversion" if converted else "churn", persona)]
    js = load_journeys(pd.DataFrame(rows, columns=["customer_id", "timestamp", "touchpoint",
                                                   "persona"]))
    fits = {p: ConversionModel(seed=1, pooling=p).fit(js) for p in ("none", "complete",
                                                                    "partial")}
    n, k = fits["none"].counts_.trials, fits["none"].counts_.conversions
    rates = {p: m.rates()["rate_mean"].to_numpy() for p, m in fits.items()}
    for i in range(2):
        assert rates["none"][i] == pytest.approx(_posterior_rate(n[i], k[i]), abs=2e-3)
    assert_allclose(rates["complete"], _posterior_rate(n.sum(), k.sum()), atol=2e-3)
    mid = rates["complete"][0]
    assert all(abs(rates["partial"][i] - mid) < abs(rates["none"][i] - mid) for i in range(2))
    assert "pooling: complete" in "\n".join(fits["complete"].summary().notes)
