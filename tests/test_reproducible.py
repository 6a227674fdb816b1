"""Same seed, same posterior, whatever the compile caches hold (issue 12, section 1).

PyTensor compiles a model's log density with numba and caches the pieces on disk
(``base_compiledir``, ``NUMBA_CACHE_DIR``). With numba's fast-math flags, code compiled fresh
and code assembled from cached pieces differed in the last bits, and NUTS turned those bits
into different posteriors for the same seed; :func:`journeymodel.fit.bayes.exact_float_math`
compiles without fast-math. These tests fit in fresh processes, once with empty caches and once
with the caches the first fit filled, and require identical draws, bit for bit, and identical
``inspect --json`` output except the keys that record wall time (:data:`WALL_TIME_KEYS`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

#: Keys of ``inspect --json`` that record wall time (the only ones allowed to differ).
WALL_TIME_KEYS = (("timing", "compile_seconds"), ("timing", "sample_seconds"))
FIT_ARGS = {
    "conversion": ["fit", "conversion", "--persona-col", "persona"],
    "sbg": ["fit", "churn", "--model", "sbg", "--persona-col", "persona"],
    "weibull": ["fit", "churn", "--model", "weibull", "--persona-col", "persona"],
    "bgnbd": ["fit", "churn", "--model", "bgnbd", "--persona-col", "persona"],
}
SAMPLING = ["--seed", "21", "--draws", "150", "--tune", "150", "--chains", "2"]


def _journeymodel(args: list[str], cwd: Path, caches: Path | None) -> str:
    """Run the CLI in a fresh process; ``caches``: a folder for PyTensor's and numba's caches
    (None: the user's own)."""
    env = dict(os.environ)
    if caches is not None:
        flags = [f for f in env.get("PYTENSOR_FLAGS", "").split(",")
                 if f and not f.startswith("base_compiledir")]
        env["PYTENSOR_FLAGS"] = ",".join([*flags, f"base_compiledir={caches / 'pytensor'}"])
        env["NUMBA_CACHE_DIR"] = str(caches / "numba")
    proc = subprocess.run([sys.executable, "-m", "journeymodel", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("repro")
    _journeymodel(["sample-data", "--customers", "300", "--seed", "5", "-o", "s.parquet"],
                  folder, None)
    return folder / "s.parquet"


def _without_wall_time(payload: dict) -> dict:
    out = json.loads(json.dumps(payload))
    for path in WALL_TIME_KEYS:
        node = out
        for key in path[:-1]:
            node = node.get(key, {})
        node.pop(path[-1], None)
    return out


def _assert_same_fit(kind: str, events: Path, tmp_path: Path) -> None:
    caches = tmp_path / "caches"  # empty: the first fit compiles everything afresh
    models = []
    for run in ("cold", "warm"):
        out = tmp_path / f"{run}.nc"
        _journeymodel([*FIT_ARGS[kind], str(events), "-o", str(out), *SAMPLING], tmp_path,
                      caches)
        models.append(out)
    cold, warm = (xr.open_datatree(m) for m in models)
    for group in ("posterior", "sample_stats"):
        a, b = cold[group].to_dataset(), warm[group].to_dataset()
        assert set(a.data_vars) == set(b.data_vars)
        for name in a.data_vars:
            x, y = np.asarray(a[name].values), np.asarray(b[name].values)
            assert x.dtype == y.dtype and x.shape == y.shape, name
            assert x.tobytes() == y.tobytes(), (
                f"{group}/{name} differs between cold and warm caches: max |diff| "
                f"{np.nanmax(np.abs(x.astype(float) - y.astype(float)))}")
    cold.close()
    warm.close()
    inspected = [json.loads(_journeymodel(["inspect", str(m), "--json"], tmp_path, caches))
                 for m in models]
    assert _without_wall_time(inspected[0]) == _without_wall_time(inspected[1])
    for path in WALL_TIME_KEYS:  # the keys named in the docs do exist
        assert path[-1] in inspected[0][path[0]]


@pytest.mark.parametrize("kind", [
    "weibull",  # the cheapest: 51 s for both fits on 2 cores at load 2-3 (fast suite)
    pytest.param("conversion", marks=pytest.mark.slow),  # 57 s
    pytest.param("sbg", marks=pytest.mark.slow),  # about 100 s
    pytest.param("bgnbd", marks=pytest.mark.slow),  # minutes (471 s at load 10)
])
def test_same_seed_same_draws_with_cold_and_warm_caches(kind, events, tmp_path):
    """With empty caches numba compiles all of PyTensor's pieces afresh, so even the cheapest
    model costs most of a minute; one model in the fast suite, every model with -m slow."""
    _assert_same_fit(kind, events, tmp_path)


def test_models_compile_without_fast_math(monkeypatch):
    """The flag is off while the log density compiles and restored afterwards (other PyTensor
    code in the same process keeps the user's setting)."""
    import pymc as pm
    import pytensor

    from journeymodel.fit import bayes, logdensity

    seen = []
    real = logdensity.compile_logdensity
    monkeypatch.setattr(logdensity, "compile_logdensity",
                        lambda model: seen.append(pytensor.config.numba__fastmath) or real(model))
    with pm.Model() as model:
        pm.Normal("x")
    before = pytensor.config.numba__fastmath
    compiled = bayes._compile(model, "nutpie")
    assert seen == [False]
    assert pytensor.config.numba__fastmath == before
    assert compiled.n_dim == 1
