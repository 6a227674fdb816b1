"""A PyMC model's log density compiled for nutpie (journeymodel.fit.logdensity, issue 20)."""

import numpy as np
import pymc as pm
import pytest

from journeymodel.errors import OptionError
from journeymodel.fit import bayes
from journeymodel.fit.logdensity import compile_logdensity


def _model(k, n):
    """A transformed scale, a vector with named dims, data of two ranks and a deterministic."""
    with pm.Model(coords={"group": ["a", "b", "c"]}) as model:
        kk = pm.Data("k", np.asarray(k, dtype=np.int64))
        nn = pm.Data("n", np.asarray(n, dtype=np.int64))
        total = pm.Data("total", np.asarray(float(np.sum(n))))  # 0-d
        sigma = pm.HalfNormal("sigma", 1.0)
        z = pm.Normal("z", 0.0, 1.0, dims="group")
        pm.Deterministic("share", pm.math.sum(nn) / total)
        pm.Binomial("obs", n=nn, logit_p=sigma * z, observed=kk)
    return model


@pytest.fixture(scope="module")
def compiled():
    with bayes.exact_float_math():
        return compile_logdensity(_model([3, 5, 9], [10, 12, 20]))


def _pymc_logp_and_grad(model, point):
    return (float(model.compile_logp()(point)), np.concatenate(
        [np.ravel(g) for g in np.atleast_1d(model.compile_dlogp()(point))]))


def test_logp_and_gradient_agree_with_pymc(compiled):
    """An independent reference: PyMC's own compiled log density and gradient."""
    model = _model([3, 5, 9], [10, 12, 20])
    x = compiled.initial_point(4)
    value, grad = compiled.logp(x, *compiled.arguments())
    point = {"sigma_log__": x[0], "z": x[1:]}
    ref_value, ref_grad = _pymc_logp_and_grad(model, point)
    assert value == pytest.approx(ref_value, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10)


def test_new_data_give_the_log_density_of_the_model_built_on_them(compiled):
    k, n = [1, 0, 7, 2], [4, 6, 8, 9]  # another length too
    x = np.concatenate([compiled.initial_point(1)[:1], [0.3, -0.2, 0.1]])
    model = _model(k[:3], n[:3])
    value, _ = compiled.logp(x, *compiled.arguments({"k": k[:3], "n": n[:3],
                                                     "total": sum(n[:3])}))
    ref, _ = _pymc_logp_and_grad(model, {"sigma_log__": x[0], "z": x[1:]})
    assert value == pytest.approx(ref, rel=1e-12)


def test_stored_variables_and_dims(compiled):
    assert [v.name for v in compiled.free] == ["sigma_log__", "z"]
    assert [v.name for v in compiled.derived] == ["sigma", "share"]
    assert dict((v.name, v.dims) for v in compiled.free)["z"] == ("group",)
    assert compiled.reparameterized == ("sigma_log__",)
    assert list(compiled.coords["group"]) == ["a", "b", "c"]
    x = compiled.initial_point(2)
    sigma, share = compiled.expand(x, *compiled.arguments())
    assert float(sigma) == pytest.approx(np.exp(x[0]))
    assert float(share) == pytest.approx(1.0)


def test_data_are_cast_to_the_compiled_types(compiled):
    """A value of another dtype would make numba compile again: it is cast; 0-d stays 0-d."""
    args = dict(zip(compiled.data_names, compiled.arguments({"k": [1.0, 2.0, 3.0],
                                                              "total": 7}), strict=True))
    assert args["k"].dtype == compiled.data_types["k"][0]
    assert args["total"].shape == ()
    assert args["k"].flags.c_contiguous


@pytest.mark.parametrize("data, match", [
    ({"nope": [1]}, r"no data named 'nope' \(it has k, n, total\)"),
    ({"k": [[1, 2, 3]]}, r"data 'k' must have shape \(None,\).*got \(1, 3\)"),
    ({"total": [1.0, 2.0]}, r"data 'total' must have shape \(\).*got \(2,\)"),
])
def test_bad_data_are_refused(compiled, data, match):
    with pytest.raises(OptionError, match=match):
        compiled.arguments(data)


def test_initial_points_are_seeded(compiled):
    a, b = compiled.initial_point(5), compiled.initial_point(5)
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, compiled.initial_point(6))
    assert a.shape == (compiled.n_dim,) == (4,)
