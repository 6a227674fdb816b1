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

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from journeymodel.errors import ModelFileError

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from journeymodel.models.base import JourneyModel

TYPE_ATTR = "journeymodel_model_type"
SCHEMA_ATTR = "journeymodel_schema_version"
VERSION_ATTR = "journeymodel_version"

#: Model type -> "module:Class". Loading imports only these modules, named here, never a name
#: taken from the file.
MODEL_TYPES = {
    "markov": "journeymodel.models.markov:MarkovJourneyModel",
    "stages": "journeymodel.models.stages:StageModel",
    "conversion": "journeymodel.models.conversion:ConversionModel",
    "churn": "journeymodel.models.churn:ChurnModel",
}


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
    """JSON text for a netCDF attribute (netCDF has no dicts, bools or None)."""
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
    raise TypeError(f"cannot store {type(obj).__name__} in a model file attribute")


def save_model(model: JourneyModel, path: str | Path) -> Path:
    """Write ``model`` to ``path`` as netCDF, atomically: the file is written under a temporary
    name in the same folder and renamed into place when complete, so an error or an interrupt
    leaves no half-written model and no temporary file (see :func:`journeymodel.outputs.
    atomic_path`). The file gets normal permissions (``0o666`` less the umask).

    Raises
    ------
    ModelFileError
        The folder does not exist, or ``path`` is a folder or cannot be written.
    """
    from journeymodel.errors import OptionError
    from journeymodel.outputs import atomic_path

    path = Path(path)
    tree = model.to_datatree()
    if path.parent and not path.parent.exists():
        raise ModelFileError(f"{path}: the folder {path.parent} does not exist")
    try:
        with atomic_path(path, "model file") as tmp:
            tree.to_netcdf(tmp, engine="h5netcdf")
    except OptionError as exc:
        raise ModelFileError(str(exc)) from None
    return path


def read_tree(path: str | Path) -> xr.DataTree:
    """Open a model file fully into memory, with clear errors for anything that is not one."""
    import xarray as xr

    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: file not found")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a directory, expected a model file (.nc)")
    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            tree = tree.load()
    except Exception as exc:  # h5py/netCDF raise many types for damaged or foreign files
        raise ModelFileError(
            f"{path}: not a readable model file (damaged, or not netCDF): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
        ) from exc
    return tree


def load_model(path: str | Path) -> JourneyModel:
    """Load a fitted model saved by :func:`save_model` (any model type).

    Raises
    ------
    ModelFileError
        The file is missing, damaged, not a journeymodel model, or from a newer schema.
    """
    tree = read_tree(path)
    attrs = tree.attrs
    model_type = attrs.get(TYPE_ATTR)
    if model_type is None:
        raise ModelFileError(f"{path}: not a journeymodel model file (no {TYPE_ATTR} attribute)")
    cls = model_class(str(model_type))
    try:
        schema = int(attrs.get(SCHEMA_ATTR, -1))
    except (TypeError, ValueError):
        schema = -1
    if schema > cls.schema_version:
        raise ModelFileError(
            f"{path}: written by a newer journeymodel (schema {schema} of {model_type!r}, this "
            f"version reads up to {cls.schema_version}; written by journeymodel "
            f"{attrs.get(VERSION_ATTR, '?')}); upgrade journeymodel to read it"
        )
    if schema < 1:
        raise ModelFileError(f"{path}: bad {SCHEMA_ATTR} attribute {attrs.get(SCHEMA_ATTR)!r}")
    try:
        return cls.from_datatree(tree)
    except ModelFileError:
        raise
    except (KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: damaged {model_type} model file: {exc}") from exc
