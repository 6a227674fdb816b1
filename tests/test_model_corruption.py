"""Property: a damaged model file loads as a model that passes every check, or raises
ModelFileError; never another exception, never output on stderr (bit flips, truncation,
attributes rewritten with random JSON or numbers, arrays set to NaN, negative or random values,
arrays of the wrong shape, variables declaring huge sizes).

The fast test runs a handful of examples (each load opens a netCDF file); the slow one many.
"""

from __future__ import annotations

import itertools
import json

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeymodel.errors import ModelFileError
from journeymodel.io.persist import load_model
from tests.model_files import TYPES, add_huge_variable, rewrite, write_model_files

_names = itertools.count()
DEEP = "<100,000 nested [>"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=12)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corrupt")
    files = write_model_files(folder)
    return folder, {kind: files[kind] for kind in TYPES}


def _datasets(path) -> list[str]:
    with h5py.File(path, "r") as f:
        names: list[str] = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset)
                     and o.dtype.kind in "iuf" and o.size else None)
    return sorted(names)


def _attr_targets(path) -> list[tuple[str, str]]:
    with h5py.File(path, "r") as f:
        out = [("/", k) for k in f.attrs if not k.startswith("_")]
        f.visititems(lambda n, o: out.extend((n, k) for k in o.attrs
                                             if isinstance(o, h5py.Group)
                                             and not k.startswith("_")))
    return sorted(out)


@st.composite
def corruptions(draw):
    kind = draw(st.sampled_from(TYPES))
    how = draw(st.sampled_from(["flip", "truncate", "attr_json", "attr_number", "array",
                                "shape", "huge"]))
    payload = draw(json_values | st.just(DEEP))
    return kind, how, draw(st.randoms(use_true_random=False)), payload


def _corrupt(src, dst, how, rnd, payload) -> None:
    data = src.read_bytes()
    if how == "flip":
        buf = bytearray(data)
        for _ in range(rnd.randint(1, 4)):
            buf[rnd.randrange(len(buf))] ^= 1 << rnd.randrange(8)
        dst.write_bytes(bytes(buf))
    elif how == "truncate":
        dst.write_bytes(data[: rnd.randrange(len(data))])
    elif how in ("attr_json", "attr_number"):
        dst.write_bytes(data)
        group, name = rnd.choice(_attr_targets(src))
        if how == "attr_json":
            value = "[" * 100_000 if payload == DEEP else json.dumps(payload)
        else:
            value = rnd.choice([np.nan, np.inf, -np.inf, -1.0, 0.0, 1e300, 2**62, -7])
        with h5py.File(dst, "a") as f:
            f[group].attrs[name] = value
    elif how == "array":
        dst.write_bytes(data)
        name = rnd.choice(_datasets(src))
        with h5py.File(dst, "a") as f:
            ds = f[name]
            flat = ds[...].ravel()
            fill = rnd.choice([np.nan, -1.0, np.inf, 1e12, 0.0, -(2**40)])
            idx = [rnd.randrange(flat.size) for _ in range(rnd.randint(1, 3))]
            if ds.dtype.kind in "iu" and not np.isfinite(fill):
                fill = -1
            flat = flat.astype(np.float64) if ds.dtype.kind == "f" else flat
            flat[idx] = fill if ds.dtype.kind == "f" else np.int64(max(min(fill, 2**62), -2**62))
            ds[...] = flat.reshape(ds.shape)
    elif how == "shape":
        def reshape(nodes, attrs):
            path = rnd.choice(sorted(nodes))
            ds = nodes[path]
            names = [v for v in ds.data_vars if ds[v].ndim >= 1 and ds[v].size]
            if not names:
                return
            var = rnd.choice(names)
            values = ds[var].values.reshape(-1)[: max(ds[var].size - rnd.randint(1, 3), 0)]
            nodes[path] = ds.drop_vars(var).assign({var: ("bad_dim", values)})
        rewrite(src, dst, reshape)
    else:
        add_huge_variable(src, dst, elements=rnd.choice([10**9, 3 * 10**9, 2**40]))


def _check(workdir, case, capfd) -> None:
    folder, files = workdir
    kind, how, rnd, payload = case
    dst = folder / f"c{next(_names)}.nc"
    _corrupt(files[kind], dst, how, rnd, payload)
    capfd.readouterr()
    try:
        model = load_model(dst)
    except ModelFileError as exc:
        assert str(dst) in str(exc)
    else:
        assert model.model_type == kind
        model.summary()  # a model that passed the checks is usable
    assert capfd.readouterr().err == ""
    dst.unlink()


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=corruptions())
def test_corrupted_model_files_load_or_raise_model_file_error(workdir, case, capfd):
    _check(workdir, case, capfd)


@pytest.mark.slow
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=corruptions())
def test_corrupted_model_files_many(workdir, case, capfd):
    _check(workdir, case, capfd)
