"""The compiled log density across processes without PyMC (fit.logdensity entries, issue 20)."""

import json
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from journeymodel.fit import bayes
from journeymodel.fit.logdensity import entry_path, load_entry

pytest.importorskip("nutpie")

#: A fit in a fresh process: a hierarchical model with a transformed scale, named dims and a
#: deterministic; prints whether PyMC was imported, the compile timings and the draws' bits.
SCRIPT = """
import sys, hashlib, numpy as np
from journeymodel.fit import bayes
def build():
    import pymc as pm
    with pm.Model(coords={"g": ["a", "b", "c"]}) as m:
        k = pm.Data("k", np.array([3, 5, 9])); n = pm.Data("n", np.array([10, 12, 20]))
        s = pm.HalfNormal("s", 1.0); z = pm.Normal("z", 0.0, 1.0, dims="g")
        pm.Deterministic("p", pm.math.invlogit(s * z), dims="g")
        pm.Binomial("obs", n=n, logit_p=s * z, observed=k)
    return m
data = {"k": np.array(sys.argv[2].split(","), dtype=int), "n": np.array([10, 12, 20])}
s = bayes.sample(build, key=("test-entry", sys.argv[1]), data=data, draws=200, tune=200,
                 chains=2, seed=5, progress=False)
post = s.tree["posterior"].to_dataset()
bits = hashlib.sha256(b"".join(post[v].values.tobytes() for v in sorted(post.data_vars)))
from journeymodel.fit.logdensity import entry_path
print("pymc" in sys.modules, entry_path(("test-entry", sys.argv[1]), build), sorted(post.data_vars),
      list(post["g"].values), bits.hexdigest())
"""


def _run(key, k="3,5,9"):
    out = subprocess.run([sys.executable, "-c", SCRIPT, key, k], capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0] == "True", Path(out[1]), out[2:]


@pytest.fixture
def key():
    """A key of its own; its entries removed afterwards."""
    key = uuid.uuid4().hex
    yield key
    for path in ENTRIES.pop(key, ()):
        path.unlink(missing_ok=True)


ENTRIES: dict[str, list[Path]] = {}


@pytest.mark.slow  # three fresh processes: 40-70 s on a busy machine
def test_a_later_process_samples_the_same_posterior_without_pymc(key):
    built, path, first = _run(key)
    ENTRIES[key] = [path]
    assert built and path.exists()
    loaded, _, second = _run(key)
    assert not loaded  # PyMC never imported
    assert second == first  # same draws, bit for bit
    other_built, _, other = _run(key, "1,1,1")  # new data, same compiled model
    assert not other_built and other[-1] != first[-1]


def _build():
    import pymc as pm

    with pm.Model() as m:
        k, n = pm.Data("k", np.array([3, 5, 9])), pm.Data("n", np.array([10, 12, 20]))
        pm.Binomial("obs", n=n, logit_p=pm.Normal("z", 0.0, 1.0), observed=k)
    return m


def test_entries_fall_back_when_they_cannot_serve(key, tmp_path):
    data = {"k": np.array([3, 5, 9]), "n": np.array([10, 12, 20])}
    first = bayes.sample(_build, key=("test-entry", key), data=data, draws=50, tune=50,
                         chains=2, seed=1, progress=False)
    path = entry_path(("test-entry", key), _build)
    ENTRIES[key] = [path]
    loaded = load_entry(path, data)
    assert loaded is not None and loaded.data_names == ("k", "n")
    start = loaded.initial_point(7)
    built = bayes._COMPILED[("nutpie", ("test-entry", key))]
    np.testing.assert_array_equal(start, built.initial_point(7))  # PyMC's jittered start
    np.testing.assert_array_equal(loaded.logp(start, *loaded.arguments())[1],
                                  built.logp(start, *built.arguments(data))[1])
    assert first.tree["posterior"]["z"].shape == (2, 50)
    assert load_entry(path, data) is not None
    assert load_entry(path, {"k": data["k"]}) is None  # a data argument missing
    assert load_entry(tmp_path / "none.json", data) is None
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert load_entry(broken, data) is None
    entry = json.loads(path.read_text())
    entry["logp"]["cache_key"] = "0" * 64  # numba's cache no longer holds the function
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(entry))
    assert load_entry(stale, data) is None


def test_keys_without_stable_text_are_not_recorded():
    assert entry_path(object()) is None
    assert entry_path(("conversion", (3,))) == entry_path(("conversion", (3,)))
    assert entry_path(("conversion", (3,))) != entry_path(("conversion", (4,)))
    assert bayes.sampler_name() == "nutpie"
