"""Model files: netCDF round trip, schema checks, damaged and foreign files."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from journeymodel.data.journeys import journeys_from_codes
from journeymodel.errors import JourneyModelError, ModelFileError, NotFittedError, OptionError
from journeymodel.io import persist
from journeymodel.models.base import JourneyModel, Result


class TinyModel(JourneyModel):
    """Counts touchpoints; just enough model to exercise persistence."""

    model_type = "tiny"
    schema_version = 2

    def __init__(self, smoothing: float = 1.0, label: str | None = None):
        self.smoothing = smoothing
        self.label = label

    def fit(self, journeys):
        w = np.repeat(journeys.weight, journeys.lengths)
        counts = np.bincount(journeys.codes, weights=w, minlength=len(journeys.touchpoints))
        self.share_ = (counts + self.smoothing) / (counts + self.smoothing).sum()
        self._remember(journeys)
        return self

    def _to_tree(self):
        ds = xr.Dataset({"share": ("touchpoint", self.share_)},
                        coords={"touchpoint": list(self.journeys_.touchpoints)})
        return xr.DataTree(ds)

    def _from_tree(self, tree):
        self.share_ = tree["share"].values

    def summary(self):
        return Result(json={"share": self.share_.tolist()})


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(persist.MODEL_TYPES, "tiny", "test_persist:TinyModel")
    js = journeys_from_codes([["a", "b"], ["b"]], ["conversion", "dropoff"])
    return TinyModel(smoothing=0.5).fit(js)


def test_round_trip_is_identical(tiny, tmp_path):
    path = tiny.save(tmp_path / "m.nc")
    back = persist.load_model(path)
    assert isinstance(back, TinyModel)
    assert back.get_params() == {"smoothing": 0.5, "label": None}
    xr.testing.assert_identical(back.to_datatree(), tiny.to_datatree())
    assert back.ledger_.to_dict() == tiny.ledger_.to_dict()
    attrs = xr.open_datatree(path, engine="h5netcdf").attrs
    assert attrs["journeymodel_model_type"] == "tiny"
    assert int(attrs["journeymodel_schema_version"]) == 2


def test_newer_schema_is_refused(tiny, tmp_path):
    tree = tiny.to_datatree()
    tree.attrs["journeymodel_schema_version"] = 3
    tree.to_netcdf(tmp_path / "new.nc", engine="h5netcdf")
    with pytest.raises(ModelFileError, match=r"newer journeymodel \(schema 3"):
        persist.load_model(tmp_path / "new.nc")


def test_damaged_and_foreign_files(tiny, tmp_path):
    good = tiny.save(tmp_path / "m.nc")
    cut = tmp_path / "cut.nc"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="not a readable model file"):
        persist.load_model(cut)
    text = tmp_path / "events.csv"
    text.write_text("customer_id,timestamp,touchpoint\na,1,web\n")
    with pytest.raises(ModelFileError, match="not a readable model file"):
        persist.load_model(text)
    plain = tmp_path / "plain.nc"
    xr.Dataset({"x": ("i", [1, 2])}).to_netcdf(plain, engine="h5netcdf")
    with pytest.raises(ModelFileError, match="not a journeymodel model file"):
        persist.load_model(plain)
    with pytest.raises(ModelFileError, match="file not found"):
        persist.load_model(tmp_path / "missing.nc")


def test_unknown_type_and_missing_attribute(tiny, tmp_path):
    tree = tiny.to_datatree()
    tree.attrs["journeymodel_model_type"] = "quantum"
    tree.to_netcdf(tmp_path / "q.nc", engine="h5netcdf")
    with pytest.raises(ModelFileError, match="unknown model type 'quantum'"):
        persist.load_model(tmp_path / "q.nc")
    tree = tiny.to_datatree()
    del tree.attrs["ledger"]
    tree.to_netcdf(tmp_path / "l.nc", engine="h5netcdf")
    with pytest.raises(ModelFileError, match="l.nc: damaged tiny model file: attribute 'ledger' is "
                       "missing"):
        persist.load_model(tmp_path / "l.nc")


def test_unfitted_model_cannot_be_saved(tmp_path):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        TinyModel().save(tmp_path / "x.nc")


def test_failed_save_leaves_no_file(tiny, tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        tiny.save(tmp_path / "no" / "such" / "m.nc")
    assert not list(tmp_path.iterdir())


def test_a_parameter_json_cannot_store_is_an_option_error(tmp_path):
    """A parameter value no model file can hold is the user's error, named with its type and
    value, raised before anything is written."""
    js = journeys_from_codes([["a"]], ["conversion"])
    model = TinyModel(label=object()).fit(js)
    with pytest.raises(OptionError, match=r"cannot store object <object object at .*> in a "
                       "model file attribute: model parameters must be numbers, text"):
        model.save(tmp_path / "m.nc")
    assert not list(tmp_path.iterdir())
    with pytest.raises(JourneyModelError, match="cannot store complex"):
        persist.to_attr({"x": [1, 2j]})
    assert persist.to_attr({"b": (1, np.int64(2)), "a": np.array([0.5])}) == (
        '{"a": [0.5], "b": [1, 2]}')


def test_no_pickle_in_the_package():
    import pathlib
    import re

    root = pathlib.Path(persist.__file__).parent
    pattern = re.compile(r"^\s*(import|from)\s+(pickle|cloudpickle|dill|joblib)\b", re.M)
    files = list(root.rglob("*.py")) + list((root.parent / "cli").rglob("*.py"))
    offenders = [str(f) for f in files if pattern.search(f.read_text())]
    assert offenders == []


def test_model_remembers_the_outcome_mix(tiny, tmp_path):
    back = persist.load_model(tiny.save(tmp_path / "m.nc"))
    assert back.journeys_.outcome_counts == {"conversion": 1, "churn": 0, "dropoff": 1,
                                             "censored": 0}


def test_saved_file_has_normal_permissions(tiny, tmp_path):
    import os

    umask = os.umask(0)
    os.umask(umask)
    path = tiny.save(tmp_path / "m.nc")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
