"""Model files of every type written and read with h5py (io/h5write.py, io/h5tree.py; issue
20): the HDF5 objects xarray's writer makes of the same tree, read back to what xarray decodes,
the same loaded model; a conversion or churn model's posterior uses the root's persona axis
(a dimension of an enclosing group), which both sides follow as netCDF-4 and DataTree do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import load_journeys
from journeymodel.io import persist
from journeymodel.io.h5tree import H5Group, read_h5_tree
from journeymodel.io.h5write import write_h5_tree
from journeymodel.models.segments.model import SegmentModel
from journeymodel.models.stages.model import StageModel

DATA = Path(__file__).parent / "data"
TYPES = frozenset(persist.MODEL_TYPES)
sys.path.insert(0, str(Path(__file__).parent))
from test_h5tree import _hdf5_objects, _xarray_tree, assert_groups_match  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A file of each model type: the Bayesian ones from tests/data (written by xarray before
    issue 20), stages (auto: a selection group) and segments fitted here."""
    folder = tmp_path_factory.mktemp("h5files")
    journeys = load_journeys(make_demo_data(150, seed=4).events, persona_col="persona")
    out = {name: DATA / f"{name}.nc" for name in ("conversion", "churn")}
    out["stages"] = StageModel(n_stages="auto", auto_range=(2, 3), restarts=1, seed=0).fit(
        journeys).save(folder / "stages.nc")
    out["segments"] = SegmentModel(n_segments=2, restarts=1, seed=0).fit(journeys).save(
        folder / "segments.nc")
    return out


NAMES = ["conversion", "churn", "stages", "segments"]


@pytest.mark.parametrize("name", NAMES)
def test_h5py_writer_makes_the_objects_xarray_makes(files, name, tmp_path):
    tree = persist.load_model(files[name]).to_datatree()
    assert write_h5_tree(tree, tmp_path / "h5py.nc")
    tree.to_netcdf(tmp_path / "xarray.nc", engine="h5netcdf")
    assert _hdf5_objects(tmp_path / "h5py.nc") == _hdf5_objects(tmp_path / "xarray.nc")
    xr.testing.assert_identical(_xarray_tree(tmp_path / "h5py.nc"), tree)


@pytest.mark.parametrize("name", NAMES)
def test_save_writes_the_objects_of_the_xarray_written_file(files, name, tmp_path):
    """A model saved by xarray's writer (as before issue 20), loaded and saved again, has the
    same HDF5 objects (only ``_NCProperties`` names another writer)."""
    src = tmp_path / "xarray.nc"
    persist.load_model(files[name]).to_datatree().to_netcdf(src, engine="h5netcdf")
    saved = persist.load_model(src).save(tmp_path / "saved.nc")
    assert _hdf5_objects(saved) == _hdf5_objects(src)


@pytest.mark.parametrize("name", NAMES)
def test_groups_equal_what_xarray_decodes(files, name):
    fast = read_h5_tree(files[name], TYPES, persist.TYPE_ATTR)
    assert isinstance(fast, H5Group)
    slow = _xarray_tree(files[name])
    assert_groups_match(fast, slow)
    xr.testing.assert_identical(fast.to_xarray_tree(), slow)


def test_posterior_uses_the_root_persona_axis(files):
    """The posterior's persona dimension is the root's scale in the file, and its labels are
    the root's in both readings."""
    import h5py

    with h5py.File(files["conversion"]) as f:
        refs = f["posterior/logit_levels"].attrs["DIMENSION_LIST"]
        assert f[refs[2][0]].name == "/persona"
        assert "persona" not in f["posterior"]
    fast = read_h5_tree(files["conversion"], TYPES, persist.TYPE_ATTR)
    post = fast["posterior"]
    assert post["logit_levels"].dims == ("chain", "draw", "persona")
    assert "persona" not in post.coords and post.sizes["persona"] == 3
    inherited = fast.to_xarray_tree()["posterior"]["logit_levels"]["persona"].values
    np.testing.assert_array_equal(inherited, fast["persona"].values)


@pytest.mark.parametrize("name", NAMES)
def test_loaded_model_equals_the_xarray_loaded_one(files, name, monkeypatch):
    fast = persist.load_model(files[name])
    monkeypatch.setattr(persist, "H5_FILES", frozenset())  # every file through xarray
    slow = persist.load_model(files[name])
    xr.testing.assert_identical(fast.to_datatree(), slow.to_datatree())
    assert _text(fast.summary().json) == _text(slow.summary().json)


@pytest.mark.parametrize("child", [
    H5Group.from_arrays({"n": ("persona", [1, 2])}, coords={"persona": ["a", "b"]}),
    H5Group.from_arrays({"n": ("persona", [1, 2])}),
    H5Group.from_arrays({"n": ("persona", [1, 2, 3])}, coords={"persona": ["a", "b", "c"]}),
], ids=["relabelled", "resized", "labelled-again"])
def test_a_child_that_redefines_an_enclosing_dimension_goes_to_xarray(child, tmp_path):
    """A subgroup that labels or resizes the root's persona axis is beyond the h5py writer
    (xarray aligns or refuses it): nothing is written."""
    tree = H5Group.from_arrays({"k": ("persona", [4, 5, 6])},
                               coords={"persona": ["a", "b", "c"]}, children={"extra": child})
    assert not write_h5_tree(tree, tmp_path / "m.nc")
    assert not (tmp_path / "m.nc").exists()
    inherits = H5Group.from_arrays({"k": ("persona", [4, 5, 6])},
                                   coords={"persona": ["a", "b", "c"]},
                                   children={"extra": H5Group.from_arrays(
                                       {"n": ("persona", [1, 2, 3])})})
    assert write_h5_tree(inherits, tmp_path / "m.nc")
    xr.testing.assert_identical(_xarray_tree(tmp_path / "m.nc"), inherits.to_xarray_tree())


def test_inspect_of_a_bayesian_model_imports_no_dask(files):
    code = ("import sys, io, contextlib\n"
            "from journeymodel.cli.app import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    main(['inspect', {str(files['churn'])!r}, '--json'])\n"
            "print(sorted(m for m in ('dask', 'h5netcdf', 'distributed') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def _text(payload) -> str:
    """JSON text (NaN equal to NaN, unlike the dicts)."""
    return json.dumps(payload, sort_keys=True, default=str)
