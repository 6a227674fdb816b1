"""The hand-written sBG and Weibull densities (models/churn/native.py, kernels.py) against the
PyMC model.

The PyMC model of ``graph.build_pymc`` is the definition: at random points the hand-written log
density, its gradient, the stored variables and the chains' starts must be PyMC's. PyMC's
functions are compiled in ``FAST_COMPILE`` mode (Python implementations: nothing to compile).
"""

from __future__ import annotations

import numpy as np
import pytest

from journeymodel.models.churn import native
from journeymodel.models.churn.graph import build_pymc

VARIANTS = [  # (model, personas, non-centred coordinates, pooling)
    ("sbg", 1, frozenset(), "partial"),
    ("sbg", 3, frozenset(), "partial"),
    ("sbg", 3, frozenset({"log_concentration"}), "partial"),
    ("sbg", 4, frozenset({"logit_mean_churn", "log_concentration"}), "partial"),
    ("sbg", 5, frozenset({"logit_mean_churn"}), "partial"),
    ("sbg", 3, frozenset(), "none"),
    ("weibull", 1, frozenset(), "partial"),
    ("weibull", 3, frozenset(), "partial"),
    ("weibull", 4, frozenset({"log_shape"}), "partial"),
    ("weibull", 2, frozenset({"log_shape", "log_scale"}), "partial"),
    ("weibull", 3, frozenset(), "none"),
]


def churn_data(model: str, n_personas: int, seed: int = 0) -> dict[str, np.ndarray]:
    return sbg_data(n_personas, seed) if model == "sbg" else weibull_data(n_personas, seed)


def sbg_data(n_personas: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random count cells in the layout of ``churn.data`` (periods 1..12)."""
    rng = np.random.default_rng(seed)
    lost_p, lost_t = np.divmod(rng.choice(n_personas * 12, 6 * n_personas, replace=False), 12)
    alive_p, alive_t = np.divmod(rng.choice(n_personas * 13, 8 * n_personas, replace=False), 13)
    order_l, order_a = np.lexsort((lost_t, lost_p)), np.lexsort((alive_t, alive_p))
    return {"lost_p": lost_p[order_l], "lost_t": lost_t[order_l] + 1.0,
            "lost_n": rng.integers(1, 60, lost_p.size).astype(float),
            "alive_p": alive_p[order_a], "alive_t": alive_t[order_a].astype(float),
            "alive_n": rng.integers(1, 90, alive_p.size).astype(float),
            "prior_loc": np.array([-1.0, 1.0])}


def weibull_data(n_personas: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random rows in the layout of ``churn.data.weibull_rows`` (sorted by persona)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(5, 40, n_personas)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    log_d = rng.normal(1.5, 1.0, offsets[-1])
    weight = rng.integers(1, 4, offsets[-1]).astype(float)
    churned = rng.random(offsets[-1]) < 0.4
    persona = np.repeat(np.arange(n_personas), sizes)
    events = np.bincount(persona, weight * churned, n_personas)
    events_log_d = np.bincount(persona, weight * churned * log_d, n_personas)
    return {"offsets": offsets, "log_d": log_d, "weight": weight, "events": events,
            "events_log_d": events_log_d, "prior_loc": np.array([0.0, 2.0])}


def pymc_functions(model_name, n_p, weak, pooling, data):
    """PyMC's model, its log density and gradient, and its stored variables (Python mode)."""
    import pytensor.tensor as pt
    from pymc.pytensorf import compile as compile_pymc

    model = build_pymc(model_name, n_p, dict(data), data["prior_loc"], weak, pooling=pooling)
    values = [model.rvs_to_values[rv] for rv in model.free_RVs]
    logp = model.logp()
    grad = pt.concatenate([pt.as_tensor(g).ravel() for g in pt.grad(logp, values)])
    free = {v.name for v in values}
    stored = [v for v in model.unobserved_value_vars if v.name not in free]
    f = compile_pymc(values, [logp, grad], mode="FAST_COMPILE")
    g = compile_pymc(values, stored, mode="FAST_COMPILE")
    return model, values, stored, f, g


def split(x, density):
    cuts = np.cumsum([0] + [int(np.prod(v.shape)) for v in density.free])
    return [x[a:b].reshape(v.shape)
            for a, b, v in zip(cuts[:-1], cuts[1:], density.free, strict=True)]


@pytest.mark.parametrize(("model", "n_p", "weak", "pooling"), VARIANTS)
def test_log_density_gradient_and_stored_variables_are_pymcs(model, n_p, weak, pooling):
    data = churn_data(model, n_p, seed=n_p)
    density = native.density(model, n_p, weak, pooling, data)
    _, values, stored, f, g = pymc_functions(model, n_p, weak, pooling, data)
    assert [v.name for v in density.free] == [v.name for v in values]
    assert [v.name for v in density.derived] == [v.name for v in stored]
    rng = np.random.default_rng(7)
    offsets = []
    for _ in range(6):
        x = rng.normal(0.0, 1.0, density.n_dim)
        ref_logp, ref_grad = f(*split(x, density))
        value, grad = density.logp_and_grad(x)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-10)
        offsets.append((value - float(ref_logp), abs(float(ref_logp))))
        ours = density.stored(x)
        for v, ref in zip(stored, g(*split(x, density)), strict=True):
            np.testing.assert_allclose(ours[v.name], ref, rtol=1e-12, atol=1e-14)
    # PyMC's normal log densities carry log(sqrt(2 pi)) in float32 (1.6e-8 off): the log
    # densities differ by that constant, the same at every point (to 1e-10 of the value)
    constant = min(offsets, key=lambda o: o[1])[0]
    assert abs(constant) < 1e-6
    for offset, size in offsets:
        assert abs(offset - constant) <= 1e-10 * size + 1e-9


@pytest.mark.parametrize(("model", "n_p", "weak", "pooling"), VARIANTS[:4] + VARIANTS[-2:])
def test_chains_start_where_pymcs_start(model, n_p, weak, pooling):
    from pymc.initial_point import make_initial_point_fn

    data = churn_data(model, n_p)
    density = native.density(model, n_p, weak, pooling, data)
    model = build_pymc(model, n_p, dict(data), data["prior_loc"], weak, pooling=pooling)
    start = make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs),
                                  default_strategy="support_point", return_transformed=True)
    for seed in (0, 1, 2**31 - 2):
        point = start(seed)
        ref = np.concatenate([np.ravel(point[v.name]) for v in density.free])
        np.testing.assert_array_equal(density.initial_point(seed), ref)


def test_counts_by_period_are_the_survivors_and_the_lost():
    # persona 0: 2 lost in period 1, 1 lost in period 3, 4 still active after 2 renewals;
    # persona 1: 5 active after 0 renewals (none survived a period yet)
    data = {"lost_p": np.array([0, 0]), "lost_t": np.array([1.0, 3.0]),
            "lost_n": np.array([2.0, 1.0]), "alive_p": np.array([0, 1]),
            "alive_t": np.array([2.0, 0.0]), "alive_n": np.array([4.0, 5.0])}
    n_t, flat = native.sbg_table(data, 2)
    survive, lost = flat.reshape(2, 2, n_t)
    # period 1: 5 survive (1 + 4), 2 lost; period 2: 5 survive; period 3: 0 survive, 1 lost
    np.testing.assert_array_equal(survive, [[5, 5, 0], [0, 0, 0]])
    np.testing.assert_array_equal(lost, [[2, 0, 1], [0, 0, 0]])


def test_keys_without_a_hand_written_density_get_none():
    data = sbg_data(2)
    assert native.native_density(("journeymodel.churn", "bgnbd", 2, ()), data) is None
    assert native.native_density(("journeymodel.churn", "sbg", 2, (), "spend"), data) is None
    assert native.native_density(("journeymodel.churn", "sbg", 2, ()), data) is not None


def test_sampling_the_hand_written_density_gives_the_same_bits_for_a_seed():
    from journeymodel.fit import bayes

    data = sbg_data(3)
    key = ("journeymodel.churn", "sbg", 3, ())
    build = lambda: build_pymc("sbg", 3, data, data["prior_loc"])  # noqa: E731 - never called
    runs = [bayes.sample(build, key=key, data=data, draws=200, tune=200, seed=5,
                         progress=False) for _ in range(2)]
    assert runs[0].timings.keys() == {"numba"}  # not compiled from PyMC
    for name, da in runs[0].tree["posterior"].data_vars.items():
        np.testing.assert_array_equal(da.values, runs[1].tree["posterior"][name].values)
    assert set(runs[0].tree["posterior"].data_vars) == {
        "sigma_logit_mean_churn", "logit_mean_churn", "eta_logit_mean_churn",
        "sigma_log_concentration", "log_concentration", "eta_log_concentration",
        "mu_logit_mean_churn", "mu_log_concentration", "alpha", "beta"}


@pytest.mark.slow
def test_same_seed_same_draws_whether_numba_compiles_or_loads_the_kernels(tmp_path):
    """A fresh numba cache (the callbacks compiled) and the same cache again (loaded): the
    same bits (about 20 s: numba compiles the sBG kernels once)."""
    import os
    import subprocess
    import sys

    script = (
        "import hashlib, numpy as np\n"
        "from journeymodel.fit import bayes\n"
        "import journeymodel.models.churn.graph\n"
        "from tests.test_churn_native import sbg_data\n"
        "data = sbg_data(3)\n"
        "s = bayes.sample(None, key=('journeymodel.churn', 'sbg', 3, ()), data=data,\n"
        "                 draws=100, tune=100, seed=9, progress=False)\n"
        "post = s.tree['posterior']\n"
        "print(hashlib.sha256(b''.join(post[v].values.tobytes() for v in sorted(post.data_vars)"
        ")).hexdigest())\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    runs = [subprocess.run([sys.executable, "-c", script], env=env, cwd=root, check=True,
                           capture_output=True, text=True).stdout.strip() for _ in range(2)]
    assert any((tmp_path / "numba").rglob("*.nbi"))  # the first run wrote numba's cache
    assert runs[0] == runs[1] and len(runs[0]) == 64
