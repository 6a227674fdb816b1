"""xarray without dask until a dask array exists (io/lazydask.py, issue 20): its objects are
made without importing dask, and once dask is imported its arrays are dask arrays to xarray as
before."""

from __future__ import annotations

import subprocess
import sys

PROLOGUE = ("import sys\n"
            "import numpy as np\n"
            "from journeymodel.io.lazydask import import_xarray\n"
            "xr = import_xarray()\n"
            "ds = xr.Dataset({'a': (('x', 'y'), np.arange(6.0).reshape(2, 3))},\n"
            "                coords={'x': ['p', 'q']})\n"
            "tree = xr.DataTree.from_dict({'/': ds, '/child': (ds * 2).mean('y')})\n"
            "text = repr(tree) + repr(ds.a.values.sum())\n")


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", PROLOGUE + code], capture_output=True,
                          text=True, check=True).stdout.strip().splitlines()[-1]


def test_xarray_objects_import_no_dask():
    assert _run("print(sorted(m for m in sys.modules if m.split('.')[0] in "
                "('dask', 'distributed')))") == "[]"


def test_dask_arrays_are_recognised_once_dask_is_imported():
    code = ("import dask.array as da\n"
            "from xarray.namedarray.utils import is_duck_dask_array\n"
            "arr = xr.DataArray(da.ones((4, 2), chunks=2), dims=('x', 'y'))\n"
            "print(is_duck_dask_array(arr.data), arr.chunks, float((arr + ds.a.sum()).sum()),\n"
            "      type(arr.data).__module__.split('.')[0], is_duck_dask_array(np.ones(2)))")
    assert _run(code) == "True ((2, 2), (2,)) 128.0 dask False"


def test_deferring_twice_or_after_dask_changes_nothing():
    code = ("from journeymodel.io.lazydask import defer_dask_check\n"
            "first = defer_dask_check()\n"
            "import dask.array\n"
            "print(first, defer_dask_check())")
    assert _run(code) == "True True"
    fresh = subprocess.run(
        [sys.executable, "-c", "import dask.array\n"
         "from journeymodel.io.lazydask import defer_dask_check\n"
         "print(defer_dask_check())"], capture_output=True, text=True, check=True)
    assert fresh.stdout.strip() == "False"
