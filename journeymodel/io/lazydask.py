"""xarray without importing dask until something is a dask array (issue 20).

xarray asks of every array it wraps whether it is a dask array, and to ask it imports
``dask.array`` (with SciPy's FFT and special functions, and ``dask.delayed``) and ``dask``
itself: the first ``xarray.Dataset`` of a process costs about a second when dask is installed,
more than the sampling of a conversion model. Nothing can be a dask array or collection before
dask is imported, so :func:`import_xarray` gives xarray answers that look at ``sys.modules``
first: False while dask is not imported, dask's own answer once it is (the Dask engine of issue
15 imports it, and xarray then recognises its arrays as before). Anything else xarray asks of
its record of dask (its version, the module) imports dask then, as xarray would have.

The two answers are xarray's record of dask in its cache of duck-array modules
(``xarray.namedarray.pycompat``) and the ``is_dask_collection`` that
``xarray.namedarray.utils.is_duck_dask_array`` calls; where an xarray version has them
otherwise, or dask is already imported, nothing is changed.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any


class _DaskArrayCheck(type):
    """``isinstance(x, cls)``: ``x`` is a ``dask.array.Array``, asked only if dask is loaded."""

    def __instancecheck__(cls, obj: Any) -> bool:
        array = getattr(sys.modules.get("dask.array"), "Array", None)
        return array is not None and isinstance(obj, array)

    def __subclasscheck__(cls, sub: type) -> bool:
        array = getattr(sys.modules.get("dask.array"), "Array", None)
        return array is not None and issubclass(sub, array)


class DaskArray(metaclass=_DaskArrayCheck):
    """Stands for ``dask.array.Array`` in ``isinstance`` without importing dask."""


class _DeferredDask:
    """xarray's record of the dask module: ``type`` without importing dask; any other
    attribute from the real record, made (dask imported) when first asked for."""

    type = (DaskArray,)

    def __init__(self, record_class: type) -> None:
        self._record_class = record_class
        self._record: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._record is None:
            self._record = self._record_class("dask")
        return getattr(self._record, name)


def import_xarray() -> ModuleType:
    """The ``xarray`` module, its check for dask arrays deferred (see the module docstring).

    Examples
    --------
    >>> import sys
    >>> xr = import_xarray()
    >>> _ = xr.Dataset({"a": ("x", [1, 2])})
    >>> "dask.array" in sys.modules or "dask" not in sys.modules
    True
    """
    import xarray

    defer_dask_check()
    return xarray


def _deferred_collection_check(check: Any) -> Any:
    """``check`` (dask's ``is_dask_collection`` as xarray calls it), False without dask."""

    def is_dask_collection(x: object) -> bool:
        return "dask" in sys.modules and check(x)

    is_dask_collection.deferred = True
    return is_dask_collection


def defer_dask_check() -> bool:
    """Give xarray the deferred checks for dask; True when it holds them (now or before)."""
    try:
        from xarray.namedarray import pycompat, utils
    except ImportError:  # pragma: no cover - an xarray without namedarray
        return False
    check = getattr(utils, "is_dask_collection", None)
    if callable(check) and not getattr(check, "deferred", False) and "dask" not in sys.modules:
        utils.is_dask_collection = _deferred_collection_check(check)
    cache = getattr(pycompat, "_cached_duck_array_modules", None)
    record_class = getattr(pycompat, "DuckArrayModule", None)
    if not isinstance(cache, dict) or record_class is None:  # pragma: no cover - other xarray
        return False
    if "dask" in cache:
        return isinstance(cache["dask"], _DeferredDask)
    if "dask.array" in sys.modules:  # nothing to save: xarray's own record is as cheap
        return False
    cache["dask"] = _DeferredDask(record_class)
    return True
