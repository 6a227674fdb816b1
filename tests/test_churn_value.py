"""Customer value (issue 19) without sampling: transaction logs, same-day transactions and their
values, the Gamma-Gamma likelihood against lifetimes, customer lifetime value against a
Monte-Carlo of the fitted process, and the errors a user can cause.

The fitted models (spend recovery, the CLI end to end, pooling) are in
``tests/test_churn_value_fit.py``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from numpy.testing import assert_allclose

from journeymodel.data.journeys import load_journeys
from journeymodel.errors import InputError, OptionError
from journeymodel.models.churn import data as cd
from journeymodel.models.churn import likelihoods as lk
from journeymodel.models.churn import value as cv
from journeymodel.models.churn.graph import DATA_KEYS, POOLING
from journeymodel.models.churn.model import ChurnModel
from journeymodel.models.churn.simulate import simulate_transactions
from journeymodel.stats.customers import customer_stats

#: A plain transaction log: ann buys twice on 2 Jan (one transaction worth 30), then on 9 Jan
#: and 20 Jan; bob once.
TX = pd.DataFrame({
    "customer_id": ["ann", "ann", "ann", "ann", "bob"],
    "date": ["2025-01-02 09:00", "2025-01-02 17:00", "2025-01-09", "2025-01-20", "2025-01-05"],
    "event": ["purchase"] * 5,
    "amount": [10.0, 20.0, 7.0, 5.0, 99.0],
})
READ = {"time_col": "date", "touchpoint_col": "event", "conversion_labels": ("purchase",),
        "value_col": "amount", "observed_until": "2025-01-30"}


def _tx_journeys(**kw):
    return load_journeys(TX, **{**READ, "touchpoints_required": False, **kw})


# ---------------------------------------------------------------------------------------------
# transaction logs


def test_journey_models_refuse_a_transaction_log_and_name_the_churn_fit():
    with pytest.raises(InputError, match=r"every row is an outcome label; the log has no "
                                         r"touchpoints \(labels \['purchase'\]\); a transaction "
                                         r"log .* fit churn --model bgnbd"):
        load_journeys(TX, **READ)


def test_transaction_log_same_day_purchases_are_one_transaction_worth_their_sum():
    js = _tx_journeys()
    assert js.touchpoints == () and js.n_journeys == 5
    stats = customer_stats(js)
    ann = int(np.flatnonzero(stats.ids == "ann")[0])
    mine = stats.day_customer == ann
    assert stats.day_value[mine].tolist() == [30.0, 7.0, 5.0]
    s = cd.rfm(stats, cd.UNIT_SECONDS["W"])
    at = int(np.flatnonzero(s.index == ann)[0])
    assert s.x[at] == 2 and s.t_x[at] == pytest.approx(18 / 7)
    # repeat spend: every day but the first (the Gamma-Gamma model uses repeat purchases only)
    assert cd.repeat_spend(stats)[at] == 12.0
    sp = cd.spend_of(stats, s)
    assert sp.m[at] == 6.0 and sp.use[at] and not sp.use[s.index != ann].any()


def test_day_values_add_up_over_parts_of_a_log():
    df, until = simulate_transactions({"a": {"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 2.5,
                                             "p": 6.0, "q": 4.0, "v": 15.0}}, 300, seed=2)
    js = load_journeys(df, conversion_labels=("purchase",), value_col="amount",
                       observed_until=until, touchpoints_required=False)
    rng = np.random.default_rng(0)
    parts = np.array_split(rng.permutation(js.n_journeys), 3)
    total = sum(customer_stats(js.take(np.sort(p))) for p in parts)
    whole = customer_stats(js)
    assert total.equals(whole)
    assert not total.equals(type(whole)(**{**whole.__dict__,
                                           "day_value": whole.day_value + 1.0}))


def test_cli_journey_model_refuses_a_transaction_log(tmp_path, run_cli):
    from conftest import assert_one_error_line

    path = tmp_path / "tx.csv"
    TX.to_csv(path, index=False)
    code, _, err = run_cli("fit", "markov", path, "-o", tmp_path / "m.nc", "--time-col", "date",
                           "--touchpoint-col", "event", "--conversion-label", "purchase")
    assert_one_error_line(code, err, "every row is an outcome label")


def test_spend_needs_positive_repeat_values():
    js = load_journeys(TX.assign(amount=0.0), **{**READ, "touchpoints_required": False})
    stats = customer_stats(js)
    with pytest.raises(InputError, match=r"spend model needs repeat buyers with positive "
                                         r"transaction values .* --value-col"):
        cd.spend_of(stats, cd.rfm(stats, cd.UNIT_SECONDS["W"]))


def test_option_errors():
    js = _tx_journeys()
    with pytest.raises(OptionError, match=r"spend model \(--value-col\) applies to --model "
                                          r"bgnbd, not sbg"):
        ChurnModel("sbg", spend=True).fit(js)
    with pytest.raises(OptionError, match=r"pooling must be one of partial, none, complete "
                                          r"\(got 'some'\)"):
        ChurnModel("bgnbd", pooling="some").fit(js)
    assert POOLING == ("partial", "none", "complete")


# ---------------------------------------------------------------------------------------------
# Gamma-Gamma against lifetimes and the PyTensor likelihood

GG = {"p": 6.25, "q": 3.74, "v": 15.44}  # Fader, Hardie & Lee (2005b), CDNOW


def _spenders(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 15, n).astype(float)
    m = rng.gamma(4.0, 10.0, n)
    return x, m


def test_gamma_gamma_matches_lifetimes():
    import lifetimes

    x, m = _spenders()
    with warnings.catch_warnings():  # lifetimes sets a filter inside
        nll = lifetimes.GammaGammaFitter._negative_log_likelihood(
            np.log([GG["p"], GG["q"], GG["v"]]), x, m, np.ones_like(x), 0.0)
    assert_allclose(-lk.gg_loglik(GG["p"], GG["q"], GG["v"], x, m).mean(), nll, rtol=1e-12)
    fitter = lifetimes.GammaGammaFitter()
    fitter.params_ = pd.Series(GG)
    assert_allclose(lk.gg_expected_spend(GG["p"], GG["q"], GG["v"], x, m),
                    fitter.conditional_expected_average_profit(x, m), rtol=1e-12)
    assert lk.gg_expected_spend(2.0, 3.0, 10.0, 0.0, 0.0) == pytest.approx(10.0)  # p v/(q-1)


def test_pytensor_gamma_gamma_matches_numpy_with_gradient():
    import pytensor
    import pytensor.tensor as pt
    from scipy.optimize import approx_fprime

    x, m = _spenders(300, seed=1)
    persona = np.r_[np.zeros(120, np.int64), np.ones(180, np.int64)][::-1].copy()
    rows = cd.spend_rows(persona, x, m, 2)
    v = pt.dvector("v")
    out = lk.pt_gg_loglik(v[0:2], v[2:4], v[4:6], *(rows[k] for k in DATA_KEYS["gg"]),
                          n_personas=2)
    f = pytensor.function([v], [out, pytensor.grad(out, v)])
    theta = np.array([6.0, 3.0, 4.0, 2.5, 15.0, 30.0])

    def reference(t):  # full likelihood minus its parameter-free term -sum log m
        total = 0.0
        for k in range(2):
            sel = persona == k
            total += lk.gg_loglik(t[k], t[2 + k], t[4 + k], x[sel], m[sel]).sum()
        return total + np.log(m).sum()

    value, grad = f(theta)
    assert_allclose(value, reference(theta), rtol=1e-10)
    assert_allclose(grad, approx_fprime(theta, reference, 1e-6), rtol=1e-4)


# ---------------------------------------------------------------------------------------------
# customer lifetime value against a Monte-Carlo of the process

PARAMS = {"r": 0.6, "alpha": 5.0, "a": 0.8, "b": 2.5, **GG}
#: (x, t_x, T, m): a loyal recent buyer, a lapsed one, a one-off buyer (population spend)
CUSTOMERS = np.array([[6.0, 30.0, 32.0, 40.0], [4.0, 5.0, 35.0, 20.0], [0.0, 0.0, 20.0, np.nan]])


def _point_model(params=PARAMS, cells=CUSTOMERS, unit="W"):
    """A bgnbd + spend model whose posterior is a point mass at ``params`` (4 equal draws)."""
    model = ChurnModel("bgnbd", spend=True, keep_customers=True)
    post = xr.Dataset({k: (("chain", "draw", "persona"), np.full((1, 4, 1), v))
                       for k, v in params.items()}, coords={"persona": ["all"]})
    model.posterior_ = xr.DataTree.from_dict({"/posterior": post})
    model.personas_ = ("all",)
    model.cells_ = {"cell_persona": np.zeros(len(cells), np.int64), "x": cells[:, 0],
                    "t_x": cells[:, 1], "T": cells[:, 2], "m": cells[:, 3]}
    model.info_ = {"time_unit": unit}
    model.customer_ids_ = np.array([f"c{i}" for i in range(len(cells))])
    model.journeys_ = None  # fitted (the forecast reads only the posterior and the cells)
    return model


def _monte_carlo(c, horizon, rate, year, n=400_000, seed=0):
    """Discounted value of one customer in the horizon, simulated: alive now with P(alive);
    given alive, ``lambda ~ Gamma(r + x, alpha + T)``, drop-out ``p ~ Beta(a, b + x)``, spend
    scale ``nu ~ Gamma(q + p x, v + x m)``; purchases at rate ``lambda``, each followed by
    drop-out with probability ``p``, each worth ``Gamma(p, nu)``, discounted at the end of its
    step. Returns the mean and its standard error."""
    rng = np.random.default_rng(seed)
    x, t_x, T, m = c
    P = PARAMS
    alive = rng.random(n) < lk.bgnbd_p_alive(P["r"], P["alpha"], P["a"], P["b"], x, t_x, T)
    lam = rng.gamma(P["r"] + x, 1.0 / (P["alpha"] + T), n)
    drop = rng.beta(P["a"], P["b"] + x, n)
    mm = 0.0 if np.isnan(m) else m
    nu = rng.gamma(P["q"] + P["p"] * x, 1.0 / (P["v"] + x * mm), n)
    width = cv.steps(horizon)[0]
    now, value = np.zeros(n), np.zeros(n)
    while alive.any():
        now = now + rng.exponential(1.0, n) / lam
        alive &= now < horizon
        step_end = np.ceil(now / width - 1e-12) * width
        worth = rng.gamma(P["p"], 1.0, n) / nu * (1.0 + rate) ** (-step_end / year)
        value += np.where(alive, worth, 0.0)
        alive &= rng.random(n) >= drop
    return value.mean(), value.std() / np.sqrt(n)


@pytest.mark.parametrize("horizon,rate", [(26.0, 0.0), (26.0, 0.15), (5.5, 0.3)])
def test_clv_matches_a_monte_carlo_of_the_process(horizon, rate):
    value = cv.customer_value(_point_model(), horizon, rate, 4, seed=0)
    clv = value.clv[0, value.inverse]
    for i, c in enumerate(CUSTOMERS):
        mean, se = _monte_carlo(c, horizon, rate, 52.0, seed=i)
        assert abs(clv[i] - mean) < 4 * se, (i, clv[i], mean, se)


def test_clv_pieces_and_per_persona_mean():
    model = _point_model()
    value = cv.customer_value(model, 13.0, 0.0, 4, seed=0)
    inv = value.inverse
    P = PARAMS
    x, t_x, T, m = CUSTOMERS.T
    expected = lk.bgnbd_expected_future(P["r"], P["alpha"], P["a"], P["b"], x, t_x, T, 13.0)
    spend = lk.gg_expected_spend(P["p"], P["q"], P["v"], x, np.nan_to_num(m))
    assert_allclose(value.transactions[0, inv], expected, rtol=1e-12)
    assert_allclose(value.spend[0, inv], spend, rtol=1e-12)
    assert_allclose(value.clv[0, inv], expected * spend, rtol=1e-12)
    assert_allclose(value.per_persona(1)[0, 0], (expected * spend).mean(), rtol=1e-12)
    assert len(cv.steps(52.0)) == 12 and cv.steps(3.2).tolist() == pytest.approx(
        [3.2 / 4 * k for k in range(1, 5)])


def test_forecast_json_and_customer_columns_of_a_spend_model():
    model = _point_model()
    res = model.forecast(horizon=26, discount_rate=0.1, seed=0)
    clv = res.json["personas"]["all"]["clv"]
    assert set(clv) == {"mean", "low", "high"} and clv["low"] <= clv["mean"] <= clv["high"]
    want = cv.customer_value(model, 26.0, 0.1, 4, seed=0)
    assert clv["mean"] == pytest.approx(want.clv.mean(), rel=1e-6)
    cols = res.frame.columns.tolist()
    for name in ("p_alive", "expected_spend", "clv"):
        assert {name, f"{name}_low", f"{name}_high"} <= set(cols)
    assert {"customer_id", "expected_transactions"} <= set(cols)


def test_clv_errors():
    plain = _point_model()
    plain.spend = False
    with pytest.raises(OptionError, match=r"customer lifetime value needs a bgnbd churn model "
                                          r"fitted with its spend model"):
        cv.customer_value(plain, 13.0, 0.0, 4, seed=0)
    with pytest.raises(OptionError, match=r"--discount-rate must be >= 0 .* \(got -0.1\)"):
        cv.customer_value(_point_model(), 13.0, -0.1, 4, seed=0)


def test_spend_correlated_with_frequency_is_warned_and_reported():
    from journeymodel.errors import DataWarning
    from journeymodel.models.churn.model import _warn_spend_correlation

    with pytest.warns(DataWarning, match=r"spend per transaction and frequency are correlated "
                                         r"\(Pearson r = 0.45 among repeat buyers"):
        _warn_spend_correlation(0.45)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_spend_correlation(-0.2)
    # the correlation the model reports is Pearson's among repeat buyers with a spend
    js = _tx_journeys()
    stats = customer_stats(js)
    s = cd.rfm(stats, cd.UNIT_SECONDS["W"])
    assert np.isnan(cd.spend_of(stats, s).correlation)  # one repeat buyer: undefined
