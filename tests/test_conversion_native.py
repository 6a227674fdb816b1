"""The hand-written conversion density (models/conversion/native.py, kernels.py) against the
PyMC model of ``graph.build_model`` (one grouping, informed persona effects), the definition:
log density (to PyMC's float32 normal constant), gradient, stored variables, chains' starts.
PyMC's functions are compiled in ``FAST_COMPILE`` mode (nothing to compile)."""

from __future__ import annotations

import numpy as np
import pytest

from journeymodel.models.conversion import native
from journeymodel.models.conversion.graph import build_model

COUNTS = [  # (trials, conversions) per level
    ([700, 650, 640], [70, 90, 40]),
    ([12, 3000, 45, 0, 200], [0, 310, 45, 0, 7]),
    ([50], [20]),
]


def pymc_functions(trials, conversions):
    import pytensor.tensor as pt
    from pymc.pytensorf import compile as compile_pymc

    model = build_model((len(trials),), {"levels": "informed"}, np.array(trials),
                        np.array(conversions))
    values = [model.rvs_to_values[rv] for rv in model.free_RVs]
    logp = model.logp()
    grad = pt.concatenate([pt.as_tensor(g).ravel() for g in pt.grad(logp, values)])
    free = {v.name for v in values}
    stored = [v for v in model.unobserved_value_vars if v.name not in free]
    return (model, values, stored, compile_pymc(values, [logp, grad], mode="FAST_COMPILE"),
            compile_pymc(values, stored, mode="FAST_COMPILE"))


@pytest.mark.parametrize(("trials", "conversions"), COUNTS)
def test_log_density_gradient_stored_variables_and_starts_are_pymcs(trials, conversions):
    from pymc.initial_point import make_initial_point_fn

    density = native.density(trials, conversions)
    model, values, stored, f, g = pymc_functions(trials, conversions)
    assert [v.name for v in density.free] == [v.name for v in values]
    assert [v.name for v in density.derived] == [v.name for v in stored]
    rng = np.random.default_rng(3)
    offsets = []
    for _ in range(6):
        x = rng.normal(0.0, 1.0, density.n_dim)
        parts = [np.array(x[0]), np.array(x[1]), x[2:]]
        ref_logp, ref_grad = f(*parts)
        value, grad = density.logp_and_grad(x)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-10)
        offsets.append(value - float(ref_logp))
        ours = density.stored(x)
        for v, ref in zip(stored, g(*parts), strict=True):
            np.testing.assert_allclose(ours[v.name], ref, rtol=1e-12, atol=1e-14)
    # PyMC's normal log densities carry log(sqrt(2 pi)) in float32: a constant offset
    assert np.ptp(offsets) < 1e-9 and abs(offsets[0]) < 1e-6
    start = make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs),
                                  default_strategy="support_point", return_transformed=True)
    for seed in (0, 1, 2**31 - 2):
        point = start(seed)
        ref = np.concatenate([np.ravel(point[v.name]) for v in density.free])
        np.testing.assert_array_equal(density.initial_point(seed), ref)


def test_other_variants_are_compiled_from_pymc():
    data = {"trials": np.array([10, 20]), "conversions": np.array([1, 2])}
    assert native.native_density(("conversion", (2,), (("levels", "informed"),)), data)
    assert native.native_density(("conversion", (2,), (("levels", "centered"),)), data) is None
    assert native.native_density(("conversion", (2, 3), (("levels", "informed"),)),
                                 data) is None
    assert native.native_density(("conversion", (2,), (("levels", "none pooling"),), "none"),
                                 data) is None
