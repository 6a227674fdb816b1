"""Shared Bayesian machinery: sampling, diagnostics, intervals, storage (journeymodel.fit.bayes)."""

import warnings

import numpy as np
import pymc as pm
import pytest
import xarray as xr

from journeymodel.errors import ConvergenceWarning, OptionError  # noqa: E402
from journeymodel.fit import bayes  # noqa: E402


def _beta_binomial(k=30, n=100):
    """Beta(1, 1) prior, Binomial likelihood: the posterior is Beta(1 + k, 1 + n - k)."""
    def build():
        with pm.Model() as model:
            kk = pm.Data("k", np.array(k, dtype=np.int64))
            nn = pm.Data("n", np.array(n, dtype=np.int64))
            p = pm.Beta("p", 1, 1)
            pm.Binomial("obs", n=nn, p=p, observed=kk)
        return model
    return build


@pytest.fixture(scope="module")
def beta_fit():
    return bayes.sample(_beta_binomial(), key="test-beta", draws=1000, chains=2, seed=3,
                        progress=False)


def test_posterior_matches_closed_form(beta_fit):
    from scipy import stats

    p = beta_fit.tree["posterior"]["p"]
    assert p.dims == ("chain", "draw") and p.shape == (2, 1000)
    exact = stats.beta(31, 71)
    assert abs(float(p.mean()) - exact.mean()) < 4 * exact.std() / np.sqrt(500)
    summary = bayes.interval(p)
    assert exact.cdf(float(summary["hdi_high"])) - exact.cdf(float(summary["hdi_low"])) == (
        pytest.approx(0.94, abs=0.02))
    assert beta_fit.sampler == bayes.sampler_name()
    assert beta_fit.compile_seconds >= 0 and beta_fit.sample_seconds > 0


def test_diagnostics_pass_on_easy_model(beta_fit):
    d = bayes.diagnose(beta_fit.tree)
    assert d.ok, d
    assert d.chains == 2 and d.draws == 1000 and d.divergences == 0
    assert d.r_hat_worst == "p"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bayes.check_convergence(d) is True
    assert set(d.to_dict()) >= {"r_hat_max", "ess_bulk_min", "divergences"}
    assert bayes.Diagnostics.from_dict(d.to_dict()).divergences == 0


def test_same_seed_same_posterior_and_cache_reuses_compiled_model(beta_fit):
    again = bayes.sample(_beta_binomial(), key="test-beta", draws=1000, chains=2, seed=3,
                         progress=False)
    xr.testing.assert_identical(again.tree["posterior"]["p"], beta_fit.tree["posterior"]["p"])
    other = bayes.sample(_beta_binomial(), key="test-beta", draws=1000, chains=2, seed=4,
                         progress=False)
    assert not np.array_equal(other.tree["posterior"]["p"].values,
                              beta_fit.tree["posterior"]["p"].values)


def test_cached_model_takes_new_data():
    # compile once in this test (whatever ran before), then the cached graph takes new data
    bayes.sample(_beta_binomial(), key="test-beta", draws=50, chains=1, seed=0, progress=False)
    fit = bayes.sample(_beta_binomial(), key="test-beta", data={"k": 90, "n": 100},
                       draws=500, chains=2, seed=0, progress=False)
    assert fit.compile_seconds < 0.5  # from the cache
    assert float(fit.tree["posterior"]["p"].mean()) == pytest.approx(91 / 102, abs=0.01)


def test_generator_seed_is_accepted_and_reproducible():
    a = bayes.sample(_beta_binomial(), key="test-beta", draws=200, chains=1,
                     seed=np.random.default_rng(7), progress=False)
    b = bayes.sample(_beta_binomial(), key="test-beta", draws=200, chains=1,
                     seed=np.random.default_rng(7), progress=False)
    assert a.seed == b.seed
    np.testing.assert_array_equal(a.tree["posterior"]["p"], b.tree["posterior"]["p"])


@pytest.mark.parametrize(("kw", "match"), [
    ({"draws": 0}, "draws must be an integer >= 1"),
    ({"chains": 0}, "chains must be an integer >= 1"),
    ({"tune": -1}, "tune must be an integer >= 0"),
    ({"draws": 10.5}, "draws must be an integer"),
    ({"sampler": "stan"}, "sampler must be 'nutpie' or 'pymc'"),
])
def test_bad_sampling_options(kw, match):
    with pytest.raises(OptionError, match=match):
        bayes.sample(_beta_binomial(), **kw)


def _fake_tree(values, diverging=None):
    values = np.asarray(values, float)
    chains, draws = values.shape[:2]
    div = np.zeros((chains, draws), bool) if diverging is None else diverging
    return xr.DataTree.from_dict({
        "/posterior": xr.Dataset({"a": (("chain", "draw"), values),
                                  "const": (("chain", "draw"), np.ones((chains, draws)))}),
        "/sample_stats": xr.Dataset({"diverging": (("chain", "draw"), div)}),
    })


def test_stuck_chains_fail_every_check_and_warn_with_remedies():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(4, 100)) + np.arange(4)[:, None] * 3  # chains disagree
    div = np.zeros((4, 100), bool)
    div[0, :5] = True
    d = bayes.diagnose(_fake_tree(values, div))
    assert d.r_hat_max > 1.5 and d.ess_bulk_min < 400 and d.divergences == 5
    assert d.r_hat_worst == "a"  # the constant variable (R-hat NaN) is ignored
    with pytest.warns(ConvergenceWarning, match=r"did not converge: R-hat .* bulk ESS .*"
                      r"5 divergent transitions.*Remedies: more draws"):
        assert bayes.check_convergence(d, what="test model",
                                       remedies=["more draws"]) is False


def test_interval_of_known_draws():
    draws = np.linspace(0, 1, 10001)[None, :]  # uniform: any 94% window has width 0.94
    summary = bayes.interval(xr.DataArray(draws, dims=("chain", "draw")))
    assert float(summary["mean"]) == pytest.approx(0.5)
    assert float(summary["hdi_high"] - summary["hdi_low"]) == pytest.approx(0.94, abs=1e-3)
    with pytest.raises(OptionError, match="interval probability"):
        bayes.interval(xr.DataArray(draws, dims=("chain", "draw")), prob=1.5)


def test_draws_of_flattens_chains_first():
    da = xr.DataArray(np.arange(24).reshape(2, 3, 4), dims=("chain", "draw", "g"))
    out = bayes.draws_of(da.transpose("g", "draw", "chain"))
    assert out.shape == (6, 4)
    np.testing.assert_array_equal(out[0], [0, 1, 2, 3])


def test_storage_round_trip_through_netcdf(beta_fit, tmp_path):
    root = xr.Dataset({"x": ("persona", np.arange(3))},
                      coords={"persona": np.array(["a", "b", "c"], dtype=object)})
    tree = xr.DataTree.from_dict({"/": root, **bayes.storable_groups(beta_fit.tree)})
    path = tmp_path / "m.nc"
    tree.to_netcdf(path, engine="h5netcdf")
    with xr.open_datatree(path, engine="h5netcdf") as back:
        back = back.load()
    xr.testing.assert_identical(back, tree)
    post = bayes.restore_posterior(back)
    assert bayes.diagnose(post) == bayes.diagnose(beta_fit.tree)
    with pytest.raises(KeyError, match="no 'posterior' group"):
        bayes.restore_posterior(xr.DataTree.from_dict({"/": root}))


@pytest.mark.slow
def test_pymc_fallback_sampler():
    fit = bayes.sample(_beta_binomial(), draws=500, tune=500, chains=2, seed=1,
                       progress=False, sampler="pymc")
    assert fit.sampler == "pymc"
    assert float(fit.tree["posterior"]["p"].mean()) == pytest.approx(31 / 102, abs=0.02)
    assert bayes.diagnose(fit.tree).divergences == 0


def test_progress_is_silent_off_a_terminal(capfd):
    """Spinner and progress bar are for a person at a terminal: in a pipe (CI, a log file, the
    docs' transcripts) they print nothing, not even the blank line a finished bar leaves."""
    with bayes._status(True, "Compiling the model"):
        pass
    with bayes._progress_bar(True, "Sampling", 10) as update:
        update([])
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
