"""Markov model files read with h5py into numpy (io/h5tree.py, issue 20): the same groups,
values, dtypes, dimensions and attributes as xarray decodes, the same loaded model, and xarray
whenever a file goes beyond what journeymodel writes."""

from __future__ import annotations

import json
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import load_journeys
from journeymodel.io import persist
from journeymodel.io.h5tree import H5Group, as_dataset, read_h5_tree
from journeymodel.io.validate import _first_repeat  # noqa: PLC2701 - the helper under test
from journeymodel.models.markov.model import MarkovJourneyModel

ALL_TYPES = frozenset(persist.MODEL_TYPES)


@pytest.fixture(scope="module")
def demo():
    return load_journeys(make_demo_data(300, seed=3).events)


@pytest.fixture(scope="module")
def files(demo, tmp_path_factory):
    """Markov files of every layout: orders 1 and 3 (experience with sentiment and devices,
    holding times), order auto (an order_selection group), censored journeys ignored, and a
    path table (no timestamps: no holding group)."""
    folder = tmp_path_factory.mktemp("h5tree")
    paths = pd.DataFrame({"path": ["a > b", "b > c > a", "c"], "total_conversions": [3, 1, 0],
                          "total_null": [2, 5, 4]})
    models = {"order1": MarkovJourneyModel(order=1).fit(demo),
              "order3": MarkovJourneyModel(order=3).fit(demo),
              "auto": MarkovJourneyModel(order="auto").fit(demo),
              "ignore": MarkovJourneyModel(order=2, censored="ignore").fit(demo),
              "paths": MarkovJourneyModel(order=1).fit(load_journeys(paths))}
    return {name: m.save(folder / f"{name}.nc") for name, m in models.items()}


def _xarray_tree(path) -> xr.DataTree:
    with xr.open_datatree(path, engine="h5netcdf", decode_times=False,
                          decode_timedelta=False) as tree:
        return tree.load()


@pytest.mark.parametrize("name", ["order1", "order3", "auto", "ignore", "paths"])
def test_groups_equal_what_xarray_decodes(files, name):
    fast = read_h5_tree(files[name], ALL_TYPES, persist.TYPE_ATTR)
    assert isinstance(fast, H5Group)
    assert_groups_match(fast, _xarray_tree(files[name]))


def assert_groups_match(fast: H5Group, slow: xr.DataTree) -> None:
    """Every group of the h5py reading ``fast`` equals xarray's decoding ``slow`` of the same
    file: variables, dimensions, coordinates, dtypes and attributes (with their types)."""
    assert [n.path for n in fast.subtree] == [n.path for n in slow.subtree]
    for node in slow.subtree:
        group = fast if node.path == "/" else fast[node.path.strip("/")]
        ds = node.to_dataset(inherit=False)
        xr.testing.assert_identical(group.to_xarray(), ds)
        assert dict(ds.sizes) == group.sizes
        assert set(ds.coords) == set(group.coords)
        assert set(ds.data_vars) == set(group.data_vars)
        for var, da in ds.variables.items():
            assert group[var].dtype == da.dtype and group[var].dims == da.dims, var
        assert set(group.attrs) == set(node.attrs)
        for key, value in node.attrs.items():
            got = group.attrs[key]
            assert type(got) is type(value), key
            np.testing.assert_array_equal(got, value)


@pytest.mark.parametrize("name", ["order1", "order3", "auto", "ignore", "paths"])
def test_loaded_model_equals_the_xarray_loaded_one(files, name, monkeypatch):
    fast = persist.load_model(files[name])
    monkeypatch.setattr(persist, "H5_FILES", frozenset())  # every file through xarray
    slow = persist.load_model(files[name])
    xr.testing.assert_identical(fast.to_datatree(), slow.to_datatree())
    for method in ("removal", "shapley", "first"):
        assert _text(fast.attribute(method, n_draws=50).json) == _text(
            slow.attribute(method, n_draws=50).json)
    assert _text(fast.summary().json) == _text(slow.summary().json)
    xr.testing.assert_identical(fast.experience_, slow.experience_)
    if name == "auto":
        pd.testing.assert_frame_equal(fast.order_table_, slow.order_table_)


def _text(payload) -> str:
    """JSON text (NaN equal to NaN, unlike the dicts)."""
    return json.dumps(payload, sort_keys=True, default=str)


def _copy_with(src, dst, edit) -> None:
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "a") as f:
        edit(f)


@pytest.mark.parametrize("edit", [
    lambda f: f["p_conversion"].attrs.__setitem__("units", "1"),  # a CF attribute
    lambda f: f["count_from"].attrs.__setitem__("_FillValue", np.int64(-1)),  # decoded to NaN
    lambda f: f.attrs.__setitem__("order_", np.array([b"x"])),  # an attribute of bytes
    lambda f: f.create_dataset("fixed_text", data=np.array([b"ab"], dtype="S2")),
    lambda f: f["experience"].move("channel", "state"),  # a dimension shared with the root
    # an axis whose last scale is a subgroup's (same size): the scales are matched by object
    lambda f: f["dwell_key"].dims[0].attach_scale(f["experience/channel"]),
], ids=["units", "int-fill", "bytes-attr", "fixed-text", "shared-dim", "child-scale"])
def test_beyond_what_journeymodel_writes_goes_to_xarray(files, tmp_path, edit):
    path = tmp_path / "m.nc"
    _copy_with(files["order1"], path, edit)
    assert read_h5_tree(path, ALL_TYPES, persist.TYPE_ATTR) is None
    try:  # xarray then reads it: the same model or the same error as before issue 20
        persist.load_model(path)
    except persist.ModelFileError as exc:
        assert str(path) in str(exc)


def test_other_model_types_and_foreign_files_are_not_read(files, tmp_path):
    assert read_h5_tree(files["order1"], frozenset({"stages"}), persist.TYPE_ATTR) is None
    text = tmp_path / "text.nc"
    text.write_text("not HDF5")
    assert read_h5_tree(text, ALL_TYPES, persist.TYPE_ATTR) is None
    with pytest.raises(persist.ModelFileError, match="not a readable model file"):
        persist.load_model(text)


def test_attribute_json_imports_neither_xarray_nor_pandas(files):
    import subprocess

    code = ("import sys, io, contextlib\n"
            "from journeymodel.cli.app import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    main(['attribute', {str(files['order3'])!r}, '--json'])\n"
            "print(sorted(m for m in ('xarray', 'pandas', 'dask', 'h5netcdf') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_experience_becomes_xarray_when_used(files):
    model = persist.load_model(files["order1"])
    assert isinstance(model.experience_, xr.Dataset)
    assert as_dataset(model.experience_) is model.experience_


labels = st.one_of(
    st.lists(st.integers(-3, 3), max_size=8).map(lambda x: np.array(x, np.int64)),
    st.lists(st.sampled_from([0.5, 1.0, np.nan, -2.0]), max_size=8).map(np.array),
    st.lists(st.sampled_from(["a", "b", "", "ab"]), max_size=8).map(
        lambda x: np.array(x, dtype=str)),
    st.lists(st.sampled_from(["a", 1, 2.5]), max_size=6).map(
        lambda x: np.array(x, dtype=object)),
    st.lists(st.sampled_from([1.5, np.nan, 2.0]), max_size=6).map(
        lambda x: np.array(x, dtype=object)),
)


@settings(max_examples=200, deadline=None)
@given(values=labels)
def test_first_repeated_label_is_pandas_duplicated(values):
    index = pd.Index(values)
    found = _first_repeat(values)
    if index.is_unique:
        assert found is None
    else:
        expected = index[index.duplicated()][0]
        got = found[0]
        assert (got == expected) or (got != got and expected != expected)


def _hdf5_objects(path) -> dict:
    """Every HDF5 object of a file: shape, type, chunks, fill and attributes (references as
    the names they point to; ``_NCProperties`` names the writer, so only its presence)."""
    out = {}
    with h5py.File(path, "r") as f:
        def attrs(obj):
            found = {}
            for key in obj.attrs.keys():
                value = obj.attrs[key]
                if key == "DIMENSION_LIST":
                    value = [[f[r].name for r in axis] for axis in value]
                elif key == "REFERENCE_LIST":
                    value = sorted((f[r[0]].name, int(r[1])) for r in value)
                elif key == "_NCProperties":
                    value = str(value).startswith("b'version=2,")
                found[key] = (repr(value), obj.attrs.get_id(key).shape)
            return found

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = (obj.shape, obj.dtype, obj.maxshape, obj.chunks,
                             repr(obj.fillvalue), attrs(obj))
            else:
                out[name] = (list(obj.keys()), attrs(obj))

        out["/"] = (list(f.keys()), attrs(f))
        f.visititems(visit)
    return out


@pytest.mark.parametrize("name", ["order1", "order3", "auto", "ignore", "paths"])
def test_h5py_writer_makes_the_objects_xarray_makes(files, name, tmp_path):
    from journeymodel.io.h5write import write_h5_tree

    tree = persist.load_model(files[name]).to_datatree()
    assert write_h5_tree(tree, tmp_path / "h5py.nc")
    tree.to_netcdf(tmp_path / "xarray.nc", engine="h5netcdf")
    assert _hdf5_objects(tmp_path / "h5py.nc") == _hdf5_objects(tmp_path / "xarray.nc")
    xr.testing.assert_identical(_xarray_tree(tmp_path / "h5py.nc"), tree)


def test_h5py_writer_leaves_other_trees_to_xarray(files, tmp_path):
    from journeymodel.io.h5write import write_h5_tree

    tree = persist.load_model(files["order1"]).to_datatree()
    tree["p_conversion"].attrs["units"] = "1"
    assert not write_h5_tree(tree, tmp_path / "m.nc")
    assert not (tmp_path / "m.nc").exists()
    persist.write_tree(tree, tmp_path / "m.nc", "markov")  # xarray writes it
    assert _xarray_tree(tmp_path / "m.nc")["p_conversion"].attrs == {"units": "1"}


@pytest.mark.parametrize("name", ["order1", "order3", "ignore", "paths"])
def test_numpy_groups_are_the_datatree(demo, files, name, tmp_path):
    """A fitted model's numpy groups (what save writes, holding times included) convert to
    its DataTree, and the file save writes has the objects xarray's writer makes of it."""
    model = persist.load_model(files[name])
    fresh = (MarkovJourneyModel(**model.get_params()).fit(demo) if name != "paths"
             else persist.load_model(files[name]))
    for m in (fresh, model):
        groups = m.to_groups()  # before to_datatree, which turns the experience into xarray
        assert isinstance(groups, H5Group)
        xr.testing.assert_identical(groups.to_xarray_tree(), m.to_datatree())
        if m.holding_ is not None:
            xr.testing.assert_identical(groups["holding"].to_xarray(), m.holding_.to_dataset())
    fresh.save(tmp_path / "saved.nc")
    fresh.to_datatree().to_netcdf(tmp_path / "xarray.nc", engine="h5netcdf")
    assert _hdf5_objects(tmp_path / "saved.nc") == _hdf5_objects(tmp_path / "xarray.nc")


def test_fit_and_save_import_no_xarray(files, tmp_path):
    import subprocess

    events = tmp_path / "events.parquet"
    make_demo_data(200, seed=1).events.to_parquet(events)
    code = ("import sys, io, contextlib\n"
            "from journeymodel.cli.app import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    main(['fit', 'markov', {str(events)!r}, '-o', {str(tmp_path / 'm.nc')!r}])\n"
            "print(sorted(m for m in ('xarray', 'dask', 'h5netcdf') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
    assert persist.load_model(tmp_path / "m.nc").order_ == 1
