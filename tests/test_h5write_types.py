"""HDF5 types and dataspaces made once per process by the model-file writer (io/h5write.py,
issue 20): the types are h5py's own for each numpy type, and files written after others are
the same bytes as the first."""

from __future__ import annotations

import h5py
import numpy as np
from h5py import h5t

from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import load_journeys
from journeymodel.io import h5write
from journeymodel.models.markov.model import MarkovJourneyModel


def test_type_ids_are_h5pys_for_each_type():
    for dtype in (np.dtype(np.int32), np.dtype(">f4"), np.dtype(np.float64),
                  np.dtype(np.int64), h5py.string_dtype()):
        for logical in (True, False):
            got = h5write._type_id(dtype, logical=logical)
            assert got.equal(h5t.py_create(dtype, logical=logical)), (dtype, logical)
            assert h5write._type_id(dtype, logical=logical) is got  # made once
    text = h5write._type_id(h5py.string_dtype(), logical=True)
    assert isinstance(text, h5t.TypeStringID) and text.is_variable_str()
    assert h5write._space((1,)).shape == (1,) and h5write._space(()).shape == ()


def test_files_written_one_after_another_are_the_same_bytes(tmp_path):
    js = load_journeys(make_demo_data(150, seed=4).events)
    first = MarkovJourneyModel(order=1).fit(js)
    other = MarkovJourneyModel(order=2).fit(js)
    a = first.save(tmp_path / "a.nc").read_bytes()
    other.save(tmp_path / "other.nc")  # the caches now hold what both wrote
    assert first.save(tmp_path / "b.nc").read_bytes() == a
