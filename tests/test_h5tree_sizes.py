"""The model file's declared sizes checked by the h5py reader itself (io/h5tree.py, issue 20):
every dataset is listed before an array is read, a file declaring more than ``max_bytes`` is
refused with nothing read, and ``load_model`` then names the variable as
``check_file_size`` does (the file opened once for the check and the reading)."""

from __future__ import annotations

import h5py
import pytest

from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import load_journeys
from journeymodel.io import h5tree, persist
from journeymodel.io.h5tree import TooLarge, read_h5_tree
from journeymodel.io.validate import check_file_size, declared_bytes
from journeymodel.models.markov.model import MarkovJourneyModel

TYPES = frozenset(persist.MODEL_TYPES)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    js = load_journeys(make_demo_data(200, seed=2).events)
    return MarkovJourneyModel(order=2).fit(js).save(tmp_path_factory.mktemp("s") / "m.nc")


def declared(path) -> int:
    """What every dataset of the file declares, by h5py's own walk of it."""
    sizes = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda _, obj: sizes.append(declared_bytes(obj.shape, obj.dtype))
                     if isinstance(obj, h5py.Dataset) else None)
    return sum(sizes)


def test_a_file_within_the_limit_is_read(model_file):
    total = declared(model_file)
    assert total > 100_000  # text counted as 64 bytes an element, numbers by their size
    assert isinstance(read_h5_tree(model_file, TYPES, persist.TYPE_ATTR, max_bytes=total),
                      h5tree.H5Group)


def test_a_file_over_the_limit_is_refused_before_any_array_is_read(model_file, monkeypatch):
    def no_reading(ds):
        raise AssertionError(f"{ds.name} read")

    monkeypatch.setattr(h5tree, "_values", no_reading)
    with pytest.raises(TooLarge):
        read_h5_tree(model_file, TYPES, persist.TYPE_ATTR, max_bytes=declared(model_file) - 1)


def test_the_huge_variable_is_named_as_check_file_size_names_it(model_file, tmp_path):
    bomb = tmp_path / "bomb.nc"
    bomb.write_bytes(model_file.read_bytes())
    with h5py.File(bomb, "a") as f:
        f.create_dataset("bomb", shape=(3_000_000_000,), dtype="f8", chunks=(1_000_000,),
                         compression="gzip")
    with pytest.raises(persist.ModelFileError) as direct:
        check_file_size(bomb, str(bomb))
    with pytest.raises(persist.ModelFileError) as loaded:
        persist.load_model(bomb)
    assert str(loaded.value) == str(direct.value)
    assert "variable 'bomb' declares 3,000,000,000 elements of float64" in str(loaded.value)


def test_a_dataset_linked_twice_is_counted_twice(model_file, tmp_path):
    """The reader counts what each name holds, h5py's walk each object once: never less, so a
    file check_file_size refuses is refused (load_model then asks check_file_size, which
    names the variable or lets the file go to xarray's reader)."""
    twice = tmp_path / "twice.nc"
    twice.write_bytes(model_file.read_bytes())
    with h5py.File(twice, "a") as f:
        f["holding"]["again"] = f["count"]  # a hard link: the same dataset twice
    total = declared(twice)
    with pytest.raises(TooLarge):
        read_h5_tree(twice, TYPES, persist.TYPE_ATTR, max_bytes=total)
