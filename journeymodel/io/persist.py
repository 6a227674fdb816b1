"""Save and load fitted models as netCDF files (data only: loading never runs code).

A model file is one netCDF-4 file holding an xarray DataTree. Its root carries these attributes:

``journeymodel_model_type``
    which model class reads it (``markov``, ``stages``, ``conversion``, ``churn``);
``journeymodel_schema_version``
    the layout version of that model type; a file from a newer schema is refused;
``journeymodel_version``
    the package version that wrote it;
``params``, ``ledger``, ``journeys``
    JSON text: the model's constructor parameters, the input ledger (counts only) and a
    description of the journeys it was fitted on (vocabularies, time axis), never customer ids.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from journeymodel.errors import ModelFileError, OptionError

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from journeymodel.io.h5tree import H5Group
    from journeymodel.models.base import JourneyModel

TYPE_ATTR = "journeymodel_model_type"
SCHEMA_ATTR = "journeymodel_schema_version"
VERSION_ATTR = "journeymodel_version"

#: Model type -> "module:Class". Loading imports only these modules, named here, never a name
#: taken from the file.
MODEL_TYPES = {
    "markov": "journeymodel.models.markov.model:MarkovJourneyModel",
    "stages": "journeymodel.models.stages.model:StageModel",
    "conversion": "journeymodel.models.conversion.model:ConversionModel",
    "churn": "journeymodel.models.churn.model:ChurnModel",
    "segments": "journeymodel.models.segments.model:SegmentModel",
}

#: Model types written with h5py (:func:`journeymodel.io.h5write.write_h5_tree`, the HDF5
#: objects h5netcdf makes of the same tree) and read with h5py into numpy groups
#: (:func:`journeymodel.io.h5tree.read_h5_tree`): every type. Neither imports xarray, nor
#: with it dask, whose first import cost a Bayesian fit about a second (issue 20); a tree
#: either side cannot reproduce exactly goes through xarray and h5netcdf as before.
H5_FILES = frozenset(MODEL_TYPES)
#: Model types whose ``from_datatree`` reads the numpy groups themselves (``fit markov`` and
#: ``attribute`` never import xarray); the groups of the others become the xarray DataTree
#: ``xarray.open_datatree`` would give before they are checked and loaded.
H5_READERS = frozenset({"markov"})


def model_class(model_type: str) -> type[JourneyModel]:
    try:
        target = MODEL_TYPES[model_type]
    except KeyError:
        raise ModelFileError(
            f"unknown model type {model_type!r}; this journeymodel knows {sorted(MODEL_TYPES)}"
        ) from None
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def to_attr(value: Any) -> str:
    """JSON text for a netCDF attribute (netCDF has no dicts, bools or None).

    Raises
    ------
    OptionError
        ``value`` holds something JSON cannot store (a model parameter of another type).
    """
    return json.dumps(value, sort_keys=True, default=_json_default)


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise OptionError(f"cannot store {type(obj).__name__} {_show(obj)} in a model file "
                      "attribute: model parameters must be numbers, text, lists or dicts of them")


def save_model(model: JourneyModel, path: str | Path) -> Path:
    """Write ``model`` to ``path`` as netCDF, atomically: the file is written under a temporary
    name in the same folder and renamed into place when complete, so an error or an interrupt
    leaves no half-written model and no temporary file (see :func:`journeymodel.io.outputs.
    atomic_path`). The file gets normal permissions (``0o666`` less the umask). Models of
    :data:`H5_FILES` are written with h5py (the same HDF5 objects xarray's writer makes),
    others, and trees h5py's writer leaves to it, with xarray.

    Raises
    ------
    ModelFileError
        The folder does not exist, or ``path`` is a folder or cannot be written.
    """
    from journeymodel.io.outputs import atomic_path

    path = Path(path)
    tree = model_tree(model)
    if path.parent and not path.parent.exists():
        raise ModelFileError(f"{path}: the folder {path.parent} does not exist")
    try:
        with atomic_path(path, "model file") as tmp:
            write_tree(tree, tmp, model.model_type)
    except OptionError as exc:
        raise ModelFileError(str(exc)) from None
    return path


def model_tree(model: JourneyModel) -> xr.DataTree | H5Group:
    """What :func:`save_model` writes: numpy groups for :data:`H5_READERS` models that build
    them (no xarray import), the model's xarray DataTree otherwise."""
    groups = model.to_groups() if model.model_type in H5_READERS else None
    if groups is None:
        from journeymodel.io.lazydask import import_xarray

        import_xarray()  # the model's tree in xarray, without importing dask
        return model.to_datatree()
    return groups


def write_tree(tree: xr.DataTree | H5Group, path: str | Path, model_type: str) -> None:
    """Write :func:`model_tree` to ``path`` (no temporary name: :func:`save_model` gives
    one): with h5py for :data:`H5_FILES`, in the layout h5netcdf gives it, else with
    xarray and h5netcdf."""
    from journeymodel.io.h5tree import H5Group
    from journeymodel.io.h5write import write_h5_tree

    if model_type not in H5_FILES or not write_h5_tree(tree, path):
        if isinstance(tree, H5Group):
            tree = tree.to_xarray_tree()
        tree.to_netcdf(path, engine="h5netcdf")


def read_tree(path: str | Path) -> xr.DataTree:
    """Open a model file fully into memory, with clear errors for anything that is not one.

    The file is untrusted: before any array is read, the declared sizes of its variables are
    checked against its size on disk (:func:`journeymodel.io.validate.check_file_size`), so a
    small compressed file cannot expand into gigabytes. Nothing is printed: errors that h5py or
    h5netcdf raise while cleaning up after a damaged file (which Python would print as
    "Exception ignored ...") are collected, and the file is closed in every case.

    Raises
    ------
    ModelFileError
        Missing, a directory, not netCDF/HDF5, damaged, or declaring too much data.
    """
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: file not found")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a directory, expected a model file (.nc)")
    with _quiet_cleanup():
        try:
            return _open_tree(path)
        except ModelFileError:
            raise
        except Exception as exc:  # h5py/netCDF raise many types for damaged or foreign files
            raise ModelFileError(f"{path}: not a readable model file (damaged, or not "
                                 f"netCDF): {_describe(exc)}") from None


def _read_numpy_tree(path: str | Path) -> H5Group | None:
    """The model file as numpy groups (:func:`journeymodel.io.h5tree.read_h5_tree`) when it is
    a model of :data:`H5_FILES` written as journeymodel writes them; None otherwise (also for
    a missing or unreadable file: :func:`read_tree` then says what is wrong).

    Raises
    ------
    ModelFileError
        The file declares too much data (:func:`journeymodel.io.validate.check_file_size`).
    """
    import os

    from journeymodel.io.h5tree import TooLarge, read_h5_tree
    from journeymodel.io.validate import check_file_size, declared_bytes_limit

    path = Path(path)
    if not path.is_file():
        return None
    # the declared sizes are checked by the reader before it reads an array (the file opened
    # once); check_file_size then says which variable is too large
    try:
        return read_h5_tree(path, H5_FILES, TYPE_ATTR,
                            max_bytes=declared_bytes_limit(os.path.getsize(path)))
    except TooLarge:
        check_file_size(path, str(path))
        return None  # counted larger by the reader only (a dataset linked twice): xarray's way


def _open_tree(path: Path) -> xr.DataTree:
    import xarray as xr

    from journeymodel.io.validate import check_file_size

    check_file_size(path, str(path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with xr.open_datatree(path, engine="h5netcdf", decode_times=False,
                              decode_timedelta=False) as tree:
            tree = tree.load()
    for w in caught:  # decoding a model file written by journeymodel warns about nothing
        if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning,
                                   FutureWarning)):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        else:
            raise ModelFileError(f"{path}: damaged model file: reading it warned: "
                                 f"{_describe(w.message)}")
    return tree


def _describe(exc: BaseException | Warning) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__


@contextlib.contextmanager
def _quiet_cleanup() -> Iterator[None]:
    """Collect "Exception ignored" reports (h5netcdf's ``File.close`` on a half-opened file)
    instead of printing them, running the garbage collector before leaving."""
    previous = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        yield
    finally:
        gc.collect()
        sys.unraisablehook = previous


def load_model(path: str | Path) -> JourneyModel:
    """Load a fitted model saved by :func:`save_model` (any model type).

    The file is checked before the model is built
    (:func:`journeymodel.io.validate_models.check_tree`): declared sizes, attribute types, JSON
    attributes, array shapes against each other, probabilities finite, in [0, 1] and summing to
    1, parameters of the right type and range. A model file is read with h5py into numpy
    (:mod:`journeymodel.io.h5tree`: the same values, without xarray's reader; a Markov model is
    built from them without importing xarray, other types from the DataTree they make); files
    that use netCDF beyond what journeymodel writes are read with xarray.

    Raises
    ------
    ModelFileError
        The file is missing, damaged, not a journeymodel model, from a newer schema, or fails
        a check; the message names the file and what is wrong.
    """
    from journeymodel.io.validate_models import check_tree

    tree = _read_numpy_tree(path)
    fast = tree is not None
    if tree is None:
        tree = read_tree(path)
    attrs = tree.attrs
    model_type = attrs.get(TYPE_ATTR)
    if model_type is None:
        raise ModelFileError(f"{path}: not a journeymodel model file (no {TYPE_ATTR} attribute)")
    if not isinstance(model_type, str):
        raise ModelFileError(f"{path}: bad {TYPE_ATTR} attribute {_show(model_type)}")
    try:
        cls = model_class(model_type)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    schema = _schema(attrs)
    if schema > cls.schema_version:
        raise ModelFileError(
            f"{path}: written by a newer journeymodel (schema {schema} of {model_type!r}, this "
            f"version reads up to {cls.schema_version}; written by journeymodel "
            f"{str(attrs.get(VERSION_ATTR, '?'))[:40]}); upgrade journeymodel to read it"
        )
    if schema < 1:
        raise ModelFileError(f"{path}: bad {SCHEMA_ATTR} attribute "
                             f"{_show(attrs.get(SCHEMA_ATTR))}")
    if fast and model_type not in H5_READERS:
        from journeymodel.io.lazydask import import_xarray

        import_xarray()
        tree = tree.to_xarray_tree()
    with (contextlib.nullcontext() if fast else _quiet_cleanup()), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # overflow etc. on damaged numbers
        check_tree(tree, model_type, cls, str(path))
        try:
            return cls.from_datatree(tree)
        except ModelFileError as exc:
            raise ModelFileError(f"{path}: {exc}") from None if str(path) not in str(exc) \
                else exc
        except (KeyError, ValueError, TypeError, IndexError, AttributeError, RecursionError,
                OverflowError, RuntimeWarning) as exc:
            raise ModelFileError(f"{path}: damaged {model_type} model file: "
                                 f"{_describe(exc)}") from exc


def _show(value: Any) -> str:
    """A short repr of an attribute value (numpy scalars and arrays as plain Python)."""
    import numpy as np

    if isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist()
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _schema(attrs: dict) -> int:
    import numpy as np

    value = np.asarray(attrs.get(SCHEMA_ATTR, -1))
    if value.size != 1 or value.dtype.kind not in "iu":
        return -1
    return int(value.reshape(()))
