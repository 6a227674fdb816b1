"""nutpie without ArviZ (journeymodel.fit.nuts, issue 20): its raw trace as a DataTree."""

import subprocess
import sys

import numpy as np
import pymc as pm
import pytest
import xarray as xr

from journeymodel.fit import bayes
from journeymodel.fit.nuts import batches_tree, import_nutpie

pytest.importorskip("nutpie")


def _build():
    """A transformed scale (left out of the posterior), named and unnamed vector dims, a
    deterministic."""
    with pm.Model(coords={"group": ["a", "b"]}) as model:
        s = pm.HalfNormal("s", 1.0)
        x = pm.Normal("x", 0.0, s, dims="group")
        pm.Deterministic("twice", 2 * x, dims="group")
        pm.Normal("z", 0.0, 1.0, shape=3)
    return model


@pytest.fixture(scope="module")
def raw_and_model():
    compiled = bayes._compile(_build, "nutpie")
    nutpie = import_nutpie()
    raw = nutpie.sample(compiled.nutpie_model(), draws=60, tune=40, chains=2, seed=7,
                        progress_bar=False, save_warmup=False, return_raw_trace=True)
    return raw.get_arrow_trace(), compiled


def test_trace_is_the_tree_nutpie_makes_through_arviz(raw_and_model):
    from nutpie.sample import _arrow_to_arviz

    (draws, stats), compiled = raw_and_model
    ours = batches_tree(draws, stats, reparameterized=compiled.reparameterized,
                        coords=compiled.coords)
    theirs = _arrow_to_arviz(draws, stats, skip_vars=[
        "gradient", "unconstrained_draw", "mass_matrix_inv", "mass_matrix_eigvals",
        "mass_matrix_stds", "divergence_start", "divergence_end", "divergence_momentum",
        "divergence_start_gradient", "transformed_position", "transformed_gradient",
        "transformation_mu"], reparameterized_names=list(compiled.reparameterized),
        coords=compiled.coords, save_warmup=False)
    for group in bayes.POSTERIOR_GROUPS:
        a, b = ours[group].to_dataset(), theirs[group].to_dataset()
        assert list(a.data_vars) == list(b.data_vars)
        for name in a.data_vars:
            assert a[name].dims == b[name].dims and a[name].dtype == b[name].dtype, name
            if a[name].dtype.kind == "O":
                continue
            np.testing.assert_array_equal(a[name].values, b[name].values)
        for dim in a.dims:
            np.testing.assert_array_equal(a[dim].values, b[dim].values)
    post = ours["posterior"]
    assert "s_log__" not in post and post["x"].dims == ("chain", "draw", "group")
    assert post["z"].dims == ("chain", "draw", "z_dim_0")
    assert list(post["group"].values) == ["a", "b"] and post.sizes["draw"] == 60


def test_tuning_rows_are_left_out(raw_and_model):
    (draws, stats), compiled = raw_and_model
    tree = batches_tree(draws, stats, reparameterized=compiled.reparameterized,
                        coords=compiled.coords)
    assert not tree["sample_stats"]["tuning"].values.any()
    assert isinstance(tree, xr.DataTree)


def test_sampling_and_diagnostics_do_not_import_arviz():
    """A fit in a fresh process: no ArviZ, no scipy.stats, no matplotlib."""
    code = (
        "import sys, numpy as np, pymc as pm\n"
        "from journeymodel.fit import bayes\n"
        "def build():\n"
        "    with pm.Model() as m:\n"
        "        pm.Normal('x', 0, 1)\n"
        "    return m\n"
        "s = bayes.sample(build, draws=100, tune=100, chains=2, seed=1, progress=False)\n"
        "d = bayes.diagnose(s.tree)\n"
        "lazy = str('arviz' in sys.modules)\n"
        "print(lazy, 'scipy.stats' in sys.modules, 'matplotlib' in sys.modules, d.draws)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False", "False", "100"]
