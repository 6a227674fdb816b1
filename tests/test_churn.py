"""Churn models without sampling: data preparation, closed forms, PyTensor likelihoods, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import stats
from scipy.special import beta as B
from scipy.special import gamma as G
from scipy.special import gammaln

from journeymodel.data.journeys import load_journeys
from journeymodel.errors import InputError, NotFittedError, OptionError
from journeymodel.models.churn import data as cd
from journeymodel.models.churn import likelihoods as lk
from journeymodel.models.churn.graph import DATA_KEYS
from journeymodel.models.churn.model import ChurnModel
from journeymodel.stats.customers import customer_stats

DAY = 86400.0


def _log(rows, **kw):
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "touchpoint", "persona"])
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
    return load_journeys(df, **kw)


HAND = [
    ("a", "2024-01-01", "web", "gold"), ("a", "2024-01-05", "conversion", "gold"),
    ("a", "2024-01-05 18:00", "web", "gold"), ("a", "2024-01-05 19:00", "conversion", "gold"),
    ("a", "2024-01-20", "web", "gold"), ("a", "2024-01-20 01:00", "conversion", "gold"),
    ("a", "2024-03-05", "web", "gold"), ("a", "2024-03-05 01:00", "churn", "gold"),
    ("b", "2024-02-01", "email", "basic"), ("b", "2024-02-03", "conversion", "basic"),
    ("c", "2024-02-10", "web", None),
]


# ---------------------------------------------------------------------------------------------
# data preparation


def test_customers_first_churn_conversion_and_persona():
    js = _log(HAND, observed_until="2024-04-01")
    cust = cd.customers_of(customer_stats(js))
    assert cust.ids.tolist() == ["a", "b", "c"]
    t = lambda s: pd.Timestamp(s, tz="UTC").value / 1e9  # noqa: E731
    assert_allclose(cust.first, [t("2024-01-01"), t("2024-02-01"), t("2024-02-10")])
    assert_allclose(cust.converted[:2], [t("2024-01-05"), t("2024-02-03")])
    assert np.isnan(cust.converted[2])
    assert cust.churn[0] == t("2024-03-05 01:00") and np.isnan(cust.churn[1:]).all()
    names = [cust.personas[i] for i in cust.persona]
    assert names == ["gold", "basic", cd.UNKNOWN_PERSONA]
    assert cust.counts().sum() == 3


def test_without_persona_column_everyone_is_one_persona():
    rows = [(c, t, tp) for c, t, tp, _ in HAND]
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "touchpoint"])
    cust = cd.customers_of(customer_stats(load_journeys(df)))
    assert cust.personas == (cd.ALL_PERSONAS,) and (cust.persona == 0).all()


def test_lifetimes_from_first_conversion_and_first_event():
    js = _log(HAND, observed_until="2024-04-01")
    cust = cd.customers_of(customer_stats(js))
    unit = cd.UNIT_SECONDS["D"]
    at_risk, d, churned = cd.lifetimes(cust, js.observed_until, unit, "first_conversion")
    assert at_risk.tolist() == [True, True, False]  # c never converted
    assert_allclose(d, [60 + 1 / 24, 58.0])  # a: Jan 5 -> Mar 5 01:00; b: Feb 3 -> Apr 1
    assert churned.tolist() == [True, False]
    at_risk, d, _ = cd.lifetimes(cust, js.observed_until, unit, "first_event")
    assert at_risk.all() and np.isclose(d[2], 51.0)
    assert cd.resolve_origin("auto", cust) == "first_conversion"



def test_period_counts_nearest_renewal_convention():
    # churned at 0.2 -> T=1, 1.1 -> T=1, 1.6 -> T=2, 3.0 -> T=3; alive at 0.3 -> >0, 2.4 -> >1,
    # 2.6 -> >2
    d = np.array([0.2, 1.1, 1.6, 3.0, 0.3, 2.4, 2.6])
    churned = np.array([1, 1, 1, 1, 0, 0, 0], bool)
    persona = np.array([0, 0, 1, 1, 0, 1, 1])
    lost, alive = cd.period_counts(d, churned, persona, 2)
    assert lost.tolist() == [[2, 0, 0], [0, 1, 1]]
    assert alive.tolist() == [[1, 0, 0, 0], [0, 1, 1, 0]]


def test_rfm_same_day_transactions_count_once():
    js = _log(HAND, observed_until="2024-04-01")
    s = cd.rfm(customer_stats(js), cd.UNIT_SECONDS["D"])
    # a: transaction days Jan 5 (twice), Jan 20 -> x = 1, t_x = 15, T = Jan 5 -> Apr 1 = 87
    # b: Feb 3 only -> x = 0, t_x = 0, T = 58; c: no transaction, not in the cohort
    assert s.index.tolist() == [0, 1]
    assert s.x.tolist() == [1, 0]
    assert_allclose(s.t_x, [15, 0])
    assert_allclose(s.T, [87, 58])
    weeks = cd.rfm(customer_stats(js), cd.UNIT_SECONDS["W"])
    assert_allclose(weeks.T, [87 / 7, 58 / 7])


def test_time_units():
    assert cd.unit_length("datetime", None, "sbg") == ("M", 365.25 / 12 * DAY)
    assert cd.unit_length("datetime", None, "bgnbd") == ("W", 7 * DAY)
    assert cd.unit_length("datetime", "Y", "sbg") == ("Y", 365.25 * DAY)
    assert cd.unit_length("period", None, "sbg") == ("period", 1.0)
    with pytest.raises(OptionError, match="plain period numbers"):
        cd.unit_length("period", "W", "sbg")
    with pytest.raises(OptionError, match="D, W, M, Y"):
        cd.unit_length("datetime", "Q", "sbg")
    with pytest.raises(InputError, match="event times"):
        cd.unit_length("none", None, "sbg")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 30), st.booleans(), st.integers(0, 2)), min_size=2,
                max_size=60), st.integers(1, 59))
def test_period_counts_of_two_parts_add_up(rows, cut):
    d, churned, persona = (np.array(c) for c in zip(*rows, strict=True))
    cut = min(cut, len(d) - 1)
    whole = cd.period_counts(d, churned, persona, 3)
    parts = [cd.period_counts(d[s], churned[s], persona[s], 3)
             for s in (slice(None, cut), slice(cut, None))]
    for i in range(2):
        k = whole[i].shape[1]
        total = sum(np.pad(p[i], ((0, 0), (0, k - p[i].shape[1]))) for p in parts)
        assert_allclose(total, whole[i])
    assert whole[0].sum() + whole[1].sum() == len(d)


# ---------------------------------------------------------------------------------------------
# closed forms against hand-computed values


def test_sbg_closed_forms_by_hand():
    a, b = 0.7, 1.2
    p1 = a / (a + b)
    p2 = a * b / ((a + b) * (a + b + 1))
    s2 = b * (b + 1) / ((a + b) * (a + b + 1))
    assert_allclose(np.exp(lk.sbg_log_pmf(a, b, 1)), p1)
    assert_allclose(np.exp(lk.sbg_log_pmf(a, b, 2)), p2)
    assert_allclose(np.exp(lk.sbg_log_survival(a, b, 2)), s2)
    assert_allclose(np.exp(lk.sbg_log_survival(a, b, 2)), 1 - p1 - p2)
    assert_allclose(lk.sbg_hazard(a, b, 2), p2 / (1 - p1))
    # 3 customers lost in period 1, 1 in period 2, 2 alive after 2 renewals
    ll = lk.sbg_loglik_counts(a, b, np.array([3.0, 1.0]), np.array([0.0, 0.0, 2.0]))
    assert_allclose(ll, 3 * np.log(p1) + np.log(p2) + 2 * np.log(s2))


def test_weibull_against_scipy():
    rng = np.random.default_rng(0)
    d = rng.uniform(0.1, 10, 50)
    churned = rng.random(50) < 0.5
    k, lam = 1.3, 4.0
    ref = np.where(churned, stats.weibull_min.logpdf(d, k, scale=lam),
                   stats.weibull_min.logsf(d, k, scale=lam))
    assert_allclose(lk.weibull_loglik(k, lam, d, churned), ref, rtol=1e-12)


def _bgnbd_direct(r, alpha, a, b, x, t_x, T):
    """FHL (2005) eq. 6 exactly as printed (no logs; small x only)."""
    common = G(r + x) * alpha**r / G(r)
    l1 = B(a, b + x) / B(a, b) * common / (alpha + T) ** (r + x)
    l2 = (x > 0) * B(a + 1, b + x - 1) / B(a, b) * common / (alpha + t_x) ** (r + x)
    return np.log(l1 + l2)


def test_bgnbd_stable_form_against_equation_6():
    x = np.array([0, 1, 2, 5, 10])
    t_x = np.array([0, 3.0, 10.5, 20.0, 30.0])
    T = np.array([12.0, 20.0, 30.0, 38.0, 31.0])
    for p in [(0.243, 4.414, 0.793, 2.426), (2.0, 1.5, 3.0, 0.7)]:
        assert_allclose(lk.bgnbd_loglik(*p, x, t_x, T), _bgnbd_direct(*p, x, t_x, T),
                        rtol=1e-10)


def test_bgnbd_p_alive_by_hand():
    r, al, a, b = 0.5, 2.0, 1.0, 3.0
    x, t_x, T = 2.0, 5.0, 10.0
    expect = 1 / (1 + a / (b + x - 1) * ((al + T) / (al + t_x)) ** (r + x))
    assert_allclose(lk.bgnbd_p_alive(r, al, a, b, x, t_x, T), expect)
    assert lk.bgnbd_p_alive(r, al, a, b, 0.0, 0.0, T) == 1.0


def test_bgnbd_expected_new_matches_monte_carlo():
    """E[X(t)] (eq. 9) equals the mean of (1 - exp(-lambda p t)) / p over the mixing laws."""
    r, al, a, b, t = 0.8, 3.0, 1.5, 2.5, 6.0
    rng = np.random.default_rng(0)
    lam = rng.gamma(r, 1 / al, 2_000_000)
    p = rng.beta(a, b, 2_000_000)
    draws = -np.expm1(-lam * p * t) / p
    se = draws.std() / np.sqrt(draws.size)
    assert abs(lk.bgnbd_expected_new(r, al, a, b, t) - draws.mean()) < 4 * se


def _cdnow():
    path = Path(__file__).parent / "data" / "cdnow_customers_summary.csv"
    if not path.exists():
        import lifetimes
        path = Path(lifetimes.__file__).parent / "datasets" / "cdnow_customers_summary.csv"
    d = pd.read_csv(path)
    return d["frequency"].to_numpy(float), d["recency"].to_numpy(), d["T"].to_numpy()


def test_bgnbd_reproduces_published_cdnow_estimates():
    """Maximum likelihood on the CDNOW sample gives FHL (2005)'s r, alpha, a, b, LL."""
    from scipy.optimize import minimize

    x, t_x, T = _cdnow()
    res = minimize(lambda p: -lk.bgnbd_loglik(*np.exp(p), x, t_x, T).sum(), np.zeros(4),
                   method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-9,
                                                  "maxiter": 4000})
    assert_allclose(np.exp(res.x), [0.243, 4.414, 0.793, 2.426], atol=6e-4)
    assert_allclose(-res.fun, -9582.4, atol=0.05)


def test_bgnbd_agrees_with_lifetimes():
    import lifetimes
    x, t_x, T = _cdnow()
    fitter = lifetimes.BetaGeoFitter()
    p = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    fitter.params_ = pd.Series(p)
    args = (p["r"], p["alpha"], p["a"], p["b"], x[:200], t_x[:200], T[:200])
    assert_allclose(lk.bgnbd_p_alive(*args),
                    fitter.conditional_probability_alive(x[:200], t_x[:200], T[:200]),
                    rtol=1e-8)
    assert_allclose(lk.bgnbd_expected_future(*args, 39.0),
                    fitter.conditional_expected_number_of_purchases_up_to_time(
                        39.0, x[:200], t_x[:200], T[:200]), rtol=1e-8)


# ---------------------------------------------------------------------------------------------
# PyTensor likelihoods against the numpy closed forms


def _compile(fn, n):
    import pytensor
    import pytensor.tensor as pt

    v = pt.dvector("v")
    out = fn([v[i * n_p:(i + 1) * n_p] for i, n_p in enumerate(n)])
    return pytensor.function([v], [out, pytensor.grad(out, v)])


def test_pytensor_likelihoods_match_numpy():
    rng = np.random.default_rng(1)
    # sBG: two personas
    lost = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 5.0]])
    alive = np.array([[0.0, 0.0, 2.0, 4.0], [1.0, 0.0, 0.0, 7.0]])
    cells = {}
    for name, table, t0 in (("lost", lost, 1), ("alive", alive, 0)):
        p, t = np.nonzero(table)
        cells[name] = (p, (t + t0).astype(float), table[p, t])
    f = _compile(lambda u: lk.pt_sbg_loglik(u[0], u[1], *cells["lost"], *cells["alive"]),
                 [2, 2])
    al, be = np.array([0.7, 2.0]), np.array([1.2, 5.0])
    ref = sum(lk.sbg_loglik_counts(al[i], be[i], lost[i], alive[i]) for i in range(2))
    val, grad = f(np.r_[al, be])
    assert_allclose(val, ref, rtol=1e-12)
    assert np.isfinite(grad).all()
    # Weibull
    d = rng.uniform(0.1, 5, 40)
    ev = (rng.random(40) < 0.5).astype(float)
    per = rng.integers(0, 2, 40)
    w = rng.integers(1, 4, 40).astype(float)
    n = w.astype(int)  # weights as repeated customers
    rows = cd.weibull_rows(np.repeat(per, n), np.repeat(d, n), np.repeat(ev > 0, n), 2)
    f = _compile(lambda u: lk.pt_weibull_loglik(
        u[0], u[1], *(rows[k] for k in DATA_KEYS["weibull"]), n_personas=2), [2, 2])
    k, lam = np.array([1.3, 0.7]), np.array([3.0, 8.0])
    ref = (w * lk.weibull_loglik(k[per], lam[per], d, ev.astype(bool))).sum()
    assert_allclose(f(np.r_[k, lam])[0], ref, rtol=1e-12)


def test_weibull_rows_sufficient_statistics():
    """Rows sorted by persona, churned customers summed per persona (hand-counted)."""
    rows = cd.weibull_rows(np.array([1, 0, 1, 1]), np.array([2.0, 3.0, 2.0, 5.0]),
                           np.array([True, False, True, False]), 3)
    assert rows["offsets"].tolist() == [0, 1, 3, 3]
    assert_allclose(np.exp(rows["log_d"]), [3.0, 2.0, 5.0])
    assert rows["weight"].tolist() == [1.0, 2.0, 1.0]
    assert rows["events"].tolist() == [0.0, 2.0, 0.0]
    assert_allclose(rows["events_log_d"], [0.0, 2 * np.log(2.0), 0.0])


def test_pytensor_bgnbd_matches_numpy_with_compressed_cells():
    x, t_x, T = (np.r_[v, v[:60]] for v in _cdnow_small())  # 60 customers twice
    per = np.arange(len(x)) % 2
    rows = cd.bgnbd_rows(per, x, t_x, T, 2)
    assert rows["weight"].sum() == len(x) and len(rows["weight"]) == len(x) - 60
    f = _compile(lambda u: lk.pt_bgnbd_loglik(
        *u, *(rows[k] for k in DATA_KEYS["bgnbd"]), n_personas=2), [2] * 4)
    prm = np.array([[0.24, 0.4], [4.4, 2.0], [0.79, 1.5], [2.4, 0.9]])
    ref = lk.bgnbd_loglik(*(prm[:, per]), x, t_x, T).sum()
    val, grad = f(prm.ravel())
    assert_allclose(val, ref, rtol=1e-12)
    assert np.isfinite(grad).all()


def test_bgnbd_rows_layout_by_hand():
    rows = cd.bgnbd_rows(np.array([1, 0, 1, 1, 0]), np.array([2.0, 0.0, 0.0, 2.0, 1.0]),
                         np.array([3.0, 0.0, 0.0, 3.0, 1.0]), np.array([5.0, 4.0, 5.0, 5.0, 4.0]),
                         2)
    # persona 0: x=0 row, x=1 row; persona 1: x=0 row, x=2 row (twice)
    assert rows["offsets"].tolist() == [0, 1, 2, 3, 4]
    assert rows["x"].tolist() == [0, 1, 0, 2] and rows["weight"].tolist() == [1, 1, 1, 2]
    assert rows["times"].tolist() == [0.0, 1.0, 3.0, 4.0, 5.0]
    assert rows["times"][rows["t_x_at"]].tolist() == [0.0, 1.0, 0.0, 3.0]
    assert rows["times"][rows["T_at"]].tolist() == [4.0, 4.0, 5.0, 5.0]
    cells = set(zip(rows["cell_p"].tolist(), rows["cell_x"].tolist(), rows["cell_w"].tolist(),
                    strict=True))
    assert cells == {(0, 0, 1.0), (0, 1, 1.0), (1, 0, 1.0), (1, 2, 2.0)}


def test_pytensor_likelihoods_stable_at_huge_concentration():
    """A weakly identified concentration alpha + beta (or a + b) can wander to 1e12 while
    sampling; gammaln differences lose every digit there, the log-sums on a grid do not."""
    lost, alive = np.array([[5.0, 3.0, 2.0]]), np.array([[0.0, 4.0, 1.0, 9.0]])
    cells = {}
    for name, table, t0 in (("lost", lost, 1), ("alive", alive, 0)):
        p, t = np.nonzero(table)
        cells[name] = (p, (t + t0).astype(float), table[p, t])
    f = _compile(lambda u: lk.pt_sbg_loglik(u[0], u[1], *cells["lost"], *cells["alive"]),
                 [1, 1])
    for kappa in (1e6, 1e12, 1e15):
        al, be = 0.2 * kappa, 0.8 * kappa
        # the limit is geometric churn with theta = 0.2
        geo = (lost[0] * (np.log(0.2) + np.arange(3) * np.log(0.8))).sum() + (
            alive[0] * np.arange(4) * np.log(0.8)).sum()
        val, grad = f(np.array([al, be]))
        assert_allclose(val, lk.sbg_loglik_counts(al, be, lost[0], alive[0]), rtol=1e-9)
        assert_allclose(val, geo, rtol=1e-5) and np.isfinite(grad).all()
    x, t_x, T = _cdnow_small()
    rows = cd.bgnbd_rows(np.zeros(len(x), int), x, t_x, T, 1)
    f = _compile(lambda u: lk.pt_bgnbd_loglik(
        *u, *(rows[k] for k in DATA_KEYS["bgnbd"]), n_personas=1), [1] * 4)
    # the limit: drop-out probability p = a / (a + b) = 0.25 for everyone (FHL 2005, eq. 3
    # integrated over lambda only)
    r, alpha, p = 0.24, 4.4, 0.25
    c4 = np.where(x > 0, np.log(p) + (x - 1) * np.log1p(-p), -np.inf)
    limit = (gammaln(r + x) - gammaln(r) + r * np.log(alpha) - (r + x) * np.log(alpha + t_x)
             + np.logaddexp(x * np.log1p(-p) + (r + x) * np.log((alpha + t_x) / (alpha + T)),
                            c4)).sum()
    for kappa in (1e6, 1e12, 1e15):
        prm = np.array([r, alpha, p * kappa, (1 - p) * kappa])
        val, grad = f(prm)
        assert_allclose(val, lk.bgnbd_loglik(*prm, x, t_x, T).sum(), rtol=1e-9)
        assert_allclose(val, limit, rtol=1e-4) and np.isfinite(grad).all()


def _cdnow_small():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 6, 300).astype(float)
    T = rng.uniform(27, 39, 300).round(2)
    t_x = np.where(x > 0, (T * rng.random(300)).round(2), 0.0)
    return x, t_x, T


# ---------------------------------------------------------------------------------------------
# user errors (no sampling: they fail before it)


def test_sbg_without_churn_events_suggests_bgnbd():
    rows = [r for r in HAND if r[2] != "churn"]
    with pytest.raises(InputError, match="none of the .* has one.*--model bgnbd"):
        ChurnModel("sbg").fit(_log(rows))


def test_bgnbd_without_conversions():
    rows = [r for r in HAND if r[2] != "conversion"]
    with pytest.raises(InputError, match="bgnbd needs transactions"):
        ChurnModel("bgnbd").fit(_log(rows))


def test_bad_options_and_unfitted():
    js = _log(HAND)
    with pytest.raises(OptionError, match="model must be one of sbg, weibull, bgnbd"):
        ChurnModel("pareto").fit(js)
    with pytest.raises(OptionError, match="origin must be one of"):
        ChurnModel("sbg", origin="signup").fit(js)
    with pytest.raises(NotFittedError):
        ChurnModel().summary()
    with pytest.raises(NotFittedError):
        ChurnModel().forecast(horizon=3)


def test_path_table_is_refused():
    df = pd.DataFrame({"path": ["a > b", "b"], "total_conversions": [1, 0],
                       "total_null": [2, 1]})
    with pytest.raises(InputError, match="need event times"):
        ChurnModel("sbg").fit(load_journeys(df))


def test_cli_errors(tmp_path, run_cli):
    from conftest import assert_one_error_line

    no_churn = tmp_path / "nochurn.csv"
    pd.DataFrame([r for r in HAND if r[2] != "churn"],
                 columns=["customer_id", "timestamp", "touchpoint", "persona"]).to_csv(
        no_churn, index=False)
    out = tmp_path / "m.nc"
    code, _, err = run_cli("fit", "churn", no_churn, "-o", out, "--model", "sbg")
    assert_one_error_line(code, err, "use --model bgnbd")
    code, _, err = run_cli("fit", "churn", no_churn, "-o", out, "--model", "weibull",
                           "--draws", "0")
    assert_one_error_line(code, err, "--draws must be")
    periods = tmp_path / "periods.csv"
    pd.DataFrame({"customer_id": ["a", "a", "b"], "timestamp": [1, 3, 2],
                  "touchpoint": ["web", "churn", "web"]}).to_csv(periods, index=False)
    code, _, err = run_cli("fit", "churn", periods, "-o", out, "--time-unit", "W")
    assert_one_error_line(code, err, "plain period numbers")
    code, _, err = run_cli("fit", "churn", no_churn, "-o", out, "--model", "bgnbd",
                           "--observed-until", "yesterday-ish")
    assert_one_error_line(code, err, "--observed-until")
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# how the population level is sampled


def test_pooled_density_integrates_the_population_mean_out():
    """u ~ MvNormal(m 1, sigma^2 I + s^2 J) and mu | u, sigma by the conjugate normal formulas,
    checked against scipy and against numerical integration over mu."""
    import pytensor.tensor as pt
    from scipy import integrate

    from journeymodel.models.churn.graph import mu_given, pooled_logp

    u, sigma, m, s = np.array([0.3, -0.2, 0.9]), 0.4, 0.1, 1.5
    got = pooled_logp(pt.as_tensor(u), pt.as_tensor(sigma), m, s).eval()
    cov = sigma**2 * np.eye(3) + s**2 * np.ones((3, 3))
    assert_allclose(got, stats.multivariate_normal(np.full(3, m), cov).logpdf(u)
                    + 1.5 * np.log(2 * np.pi), rtol=1e-12)
    joint = lambda mu: (stats.norm(mu, sigma).pdf(u).prod()  # noqa: E731
                        * stats.norm(m, s).pdf(mu))
    z = integrate.quad(joint, -10, 10)[0]
    mean = integrate.quad(lambda mu: mu * joint(mu), -10, 10)[0] / z
    var = integrate.quad(lambda mu: (mu - mean) ** 2 * joint(mu), -10, 10)[0] / z
    got_mean, got_sd = (v.eval() for v in mu_given(pt.as_tensor(u), pt.as_tensor(sigma), m, s))
    assert_allclose([got_mean, got_sd], [mean, np.sqrt(var)], rtol=1e-7)


def test_numpy_coordinates_mirror_the_pymc_ones():
    import pytensor.tensor as pt

    from journeymodel.models.churn.graph import PARAMS, published_tensors
    from journeymodel.models.churn.pooling import published

    u = np.array([[0.3, -1.2], [0.5, 2.0], [-0.7, 0.1], [1.4, 3.0]])
    for model, names in PARAMS.items():
        ref = published_tensors(model, [pt.as_tensor(row) for row in u[:len(names)]])
        got = published(model, u)
        for name, value in zip(names, got, strict=True):
            assert_allclose(value, ref[name].eval(), rtol=1e-12)


def test_weakly_identified_coordinates_are_found_from_the_data():
    """Demo data: the BG/NBD concentration log(a + b) is weakly identified (Laplace sd about 1)
    and goes non-centred; the rate, r and mean drop-out, and Weibull's shape and scale, are
    identified (sd < 0.4) and stay centred."""
    from journeymodel.data.datasets import make_demo_data
    from journeymodel.models.churn import graph
    from journeymodel.models.churn import model as ch
    from journeymodel.models.churn import pooling as pooling

    js = load_journeys(make_demo_data(2000, seed=0).events)
    cust = cd.customers_of(customer_stats(js))
    found = {}
    for model, unit in (("bgnbd", "W"), ("weibull", "M")):
        origin = "first_transaction" if model == "bgnbd" else "first_conversion"
        prep = ch.prepare(model, customer_stats(js), cust, cd.UNIT_SECONDS[unit], origin)
        sd = pooling.laplace_sd(model, prep.data, prep.prior_loc,
                                np.array(graph.PRIOR_SCALE[model]), len(cust.personas))
        assert sd.shape == (3, len(graph.COORDS[model])) and np.isfinite(sd).all()
        found[model] = pooling.non_centered(graph.COORDS[model], sd)
    assert found == {"bgnbd": {"log_concentration"}, "weibull": frozenset()}
