"""Model files read with h5py straight into numpy: the groups of a netCDF-4 file as plain arrays.

Opening a model file with xarray costs more than the rest of ``journeymodel attribute`` on a
Markov model: importing xarray makes every new variable check for dask arrays, which imports
``dask.array`` (and SciPy's FFT and special functions with it), and h5netcdf looks up each
variable's dimensions and attributes many times. The model files journeymodel writes use a small
part of netCDF-4, and :func:`read_h5_tree` reads exactly that part with h5py into
:class:`H5Group` objects that offer the part of the ``xarray.DataTree`` / ``xarray.Dataset``
interface the checks (:mod:`journeymodel.io.validate_models`) and the Markov model read:
``attrs``, ``variables``, ``data_vars``, ``coords``, ``sizes``, ``children``, ``subtree``,
``ds[name].dims`` / ``.values`` / ``.dtype``. :meth:`H5Group.to_xarray` gives the xarray
Dataset where one is wanted (a model's experience group), equal to what
``xarray.open_datatree`` decodes.

The reader is strict: anything outside that part (a variable attribute other than the netCDF
bookkeeping and a NaN ``_FillValue`` on floats, CF encodings such as ``scale_factor``,
``coordinates`` or ``dtype``, fixed-length or byte strings, unlimited or shared dimensions,
compound types, attributes of other types) makes it return None, and the caller reads the file
with xarray as before, so a foreign or damaged file gets xarray's decoding and its errors. A
variable may use a dimension of an enclosing group (a posterior's persona axis is the root's):
the group's ``sizes`` then name it, and its labels are the enclosing group's, as DataTree
inherits them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

#: HDF5 attributes netCDF-4 keeps for itself (h5netcdf hides them too).
_HIDDEN = frozenset({"REFERENCE_LIST", "CLASS", "DIMENSION_LIST", "NAME", "_Netcdf4Dimid",
                     "_Netcdf4Coordinates", "_nc3_strict", "_NCProperties"})
#: The NAME of a dimension scale that is only a dimension, not a variable.
_PHONY = b"This is a netCDF dimension but not a netCDF variable."


class Unsupported(Exception):
    """The file uses netCDF-4 beyond what :func:`read_h5_tree` reads (read it with xarray)."""


class H5Variable:
    """One decoded variable: ``dims``, ``values`` (numpy), ``attrs``."""

    __slots__ = ("attrs", "dims", "name", "values")

    def __init__(self, name: str, dims: tuple[str, ...], values: np.ndarray,
                 attrs: dict[str, Any]) -> None:
        self.name, self.dims, self.values, self.attrs = name, dims, values, attrs

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    @property
    def encoding(self) -> dict[str, Any]:
        """No encoding: the values are stored as they are (see :mod:`journeymodel.io.h5write`)."""
        return {}

    @property
    def shape(self) -> tuple[int, ...]:
        return self.values.shape

    @property
    def size(self) -> int:
        return self.values.size


class H5Group:
    """One group of a model file: its variables and attributes, and its child groups."""

    def __init__(self, path: str, variables: dict[str, H5Variable], attrs: dict[str, Any],
                 sizes: dict[str, int], children: dict[str, H5Group] | None = None) -> None:
        self.path, self.variables, self.attrs = path, variables, attrs
        self.sizes = sizes
        self.children = children or {}

    @classmethod
    def from_arrays(cls, data: dict[str, tuple[Any, Any]], coords: dict[str, Any] | None = None,
                    attrs: dict[str, Any] | None = None,
                    children: dict[str, H5Group] | None = None, path: str = "/") -> H5Group:
        """A group from what ``xarray.Dataset(data, coords, attrs)`` takes: ``data`` maps names
        to ``(dims, values)``, ``coords`` each dimension's labels (named after it); values
        become numpy arrays as xarray makes them (lists of text: numpy text)."""
        variables = {}
        for name, (dims, values) in data.items():
            dims = (dims,) if isinstance(dims, str) else tuple(dims)
            variables[name] = H5Variable(name, dims, np.asarray(values), {})
        for name, values in (coords or {}).items():
            variables[name] = H5Variable(name, (name,), np.asarray(values), {})
        sizes = {}
        for var in variables.values():
            if var.values.ndim != len(var.dims):
                raise ValueError(f"{var.name}: {var.values.ndim} axes for dims {var.dims}")
            for dim, n in zip(var.dims, var.values.shape, strict=True):
                if sizes.setdefault(dim, n) != n:
                    raise ValueError(f"{var.name}: dimension {dim!r} of {n}, not {sizes[dim]}")
        children = dict(children or {})
        for name, child in children.items():
            child.rename(f"{path.rstrip('/')}/{name}")
        return cls(path, variables, dict(attrs or {}), sizes, children)

    def rename(self, path: str) -> None:
        """Move this group (and its subgroups) to ``path``."""
        self.path = path
        for name, child in self.children.items():
            child.rename(f"{path.rstrip('/')}/{name}")

    # -- the Dataset side --------------------------------------------------------------------
    def __getitem__(self, name: str) -> Any:
        if name in self.children:
            return self.children[name]
        return self.variables[name]

    def __contains__(self, name: object) -> bool:
        return name in self.variables or name in self.children

    @property
    def coords(self) -> dict[str, H5Variable]:
        """Dimension coordinates: the variables named after their one dimension."""
        return {n: v for n, v in self.variables.items() if v.dims == (n,)}

    @property
    def data_vars(self) -> dict[str, H5Variable]:
        return {n: v for n, v in self.variables.items() if v.dims != (n,)}

    def to_dataset(self, inherit: bool = False) -> H5Group:
        """This group's variables and attributes without its children (dimensions are never
        inherited: :func:`read_h5_tree` refuses variables of a parent group's dimension)."""
        return H5Group(self.path, self.variables, self.attrs, self.sizes)

    # -- the tree side -----------------------------------------------------------------------
    @property
    def subtree(self) -> Iterator[H5Group]:
        """This group and every group below it, breadth first (as ``DataTree.subtree``)."""
        queue = [self]
        while queue:
            node = queue.pop(0)
            yield node
            queue.extend(node.children.values())

    def to_xarray(self) -> xr.Dataset:
        """The group as an xarray Dataset (children left out)."""
        from journeymodel.io.lazydask import import_xarray

        xr = import_xarray()

        return xr.Dataset({n: xr.Variable(v.dims, v.values, v.attrs)
                           for n, v in self.variables.items()}, attrs=dict(self.attrs))

    def to_xarray_tree(self) -> xr.DataTree:
        """The group and its subgroups as an xarray DataTree."""
        from journeymodel.io.lazydask import import_xarray

        xr = import_xarray()

        return xr.DataTree(self.to_xarray(), children={
            name: child.to_xarray_tree() for name, child in self.children.items()})


def as_dataset(ds: Any) -> xr.Dataset:
    """``ds`` as an xarray Dataset (an :class:`H5Group` converted, xarray's passed through)."""
    return ds.to_xarray() if isinstance(ds, H5Group) else ds


class TooLarge(Exception):
    """The file's datasets declare more data than ``read_h5_tree``'s ``max_bytes``."""


def read_h5_tree(path: str | os.PathLike, model_types: frozenset[str] | set[str],
                 type_attr: str, *, max_bytes: int | None = None) -> H5Group | None:
    """The groups of the model file ``path`` as :class:`H5Group` objects, or None when the
    file's root attribute ``type_attr`` is not one of ``model_types`` or the file uses
    netCDF-4 beyond what this reader decodes (see the module docstring).

    This function reads every array: the caller checks the file first (it exists, its
    declared sizes are sane), or gives ``max_bytes``: every dataset of the file is listed
    before any array is read, and :class:`TooLarge` is raised, with nothing read, when they
    declare more bytes than that all together, counted as
    :func:`journeymodel.io.validate.declared_bytes` counts them (the file opened once, not
    once for the check and once for the reading: 10-30 ms of ``journeymodel attribute M.nc``
    at order 3, issue 20).
    """
    import warnings

    import h5py

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with h5py.File(path, "r") as f:
                root_attrs = _attrs(f.attrs)
                if root_attrs.get(type_attr) not in model_types:
                    return None
                listing = _listing(f)
                if max_bytes is not None and _declared(listing) > max_bytes:
                    raise TooLarge(str(path))
                dimids: dict[int, str] = {}
                tree = _group(f, listing, "/", root_attrs, dimids, {})
        except TooLarge:
            raise
        except Exception:  # noqa: BLE001 - anything unusual: xarray reads it and says why
            return None
    return None if caught else tree


def _listing(g: Any) -> tuple[Any, list, list]:
    """The HDF5 group ``g``'s members, its subgroups' listed in turn: ``(g, datasets,
    groups)``, ``datasets`` as ``(name, dataset, attribute names)``, ``groups`` as listings.
    Metadata only (no array is read)."""
    import h5py

    datasets, groups = [], []
    for key in g.id:
        oid = h5py.h5o.open(g.id, key)
        name = key.decode("utf-8")
        if isinstance(oid, h5py.h5g.GroupID):
            groups.append((name, _listing(h5py.Group(oid))))
        elif isinstance(oid, h5py.h5d.DatasetID):
            ds = h5py.Dataset(oid)
            datasets.append((name, ds, _attr_names(ds)))
        else:
            raise Unsupported(f"{name}: neither a group nor a dataset")
    return g, datasets, groups


def _declared(listing: tuple[Any, list, list]) -> int:
    """The bytes the datasets of ``listing`` declare, all together."""
    from journeymodel.io.validate import declared_bytes

    _, datasets, groups = listing
    return (sum(declared_bytes(ds.shape, ds.dtype) for _, ds, _ in datasets)
            + sum(_declared(sub) for _, sub in groups))


def _group(f: Any, listing: tuple[Any, list, list], path: str, attrs: dict[str, Any],
           dimids: dict[int, str], outer: dict[str, tuple[int, str]],
           scale_ids: dict[int, str] | None = None) -> H5Group:
    """Read the HDF5 group of ``listing`` (its :func:`_listing`) and its subgroups.
    ``dimids``: the netCDF dimension ids seen so far (each must be new); ``outer``: the
    dimensions of the enclosing groups (size, HDF5 group name), which this group's variables
    may use but must not define again (xarray would align them); ``scale_ids``: the
    dimension scales of the enclosing groups (object hash -> dimension name). A dimension's
    size is its scale's (an unlimited one's too: every variable along it must have that size).

    Members and attribute names are listed with h5py's low-level calls and only the attributes
    present are read: a model file holds some 70 small datasets, and h5py's high-level
    ``items()``, ``attrs.get`` of a missing name and ``Dataset.name`` cost more than reading
    the data (issue 20)."""
    g, datasets, groups = listing
    scales: dict[str, int] = {}
    scale_ids = dict(scale_ids or {})
    for name, ds, keys in datasets:  # the dimensions of this group: its dimension scales
        if "CLASS" in keys and ds.attrs["CLASS"] == b"DIMENSION_SCALE":
            dimid = int(np.asarray(ds.attrs["_Netcdf4Dimid"]).reshape(()))
            if ds.ndim != 1 or dimid in dimids or name in outer:
                raise Unsupported(f"{name}: not a 1-d dimension of its own")
            scales[name], dimids[dimid] = int(ds.shape[0]), name
            scale_ids[hash(ds.id)] = name
    inner = {**outer, **{name: (n, g.name) for name, n in scales.items()}}
    variables = {}
    for name, ds, keys in datasets:
        var = _variable(f, name, ds, keys, inner, scale_ids)
        if var is not None:
            variables[name] = var
    sizes = {d: n for v in variables.values() for d, n in zip(v.dims, v.shape, strict=True)}
    children = {name: _group(f, sub, f"{path.rstrip('/')}/{name}", _attrs(sub[0].attrs),
                             dimids, inner, scale_ids) for name, sub in groups}
    return H5Group(path, variables, attrs, sizes, children)


def _attr_names(obj: Any) -> set[str]:
    """The names of an HDF5 object's attributes (one low-level call; h5py's ``attrs.keys()``
    opens each attribute)."""
    import h5py

    names: list[bytes] = []
    h5py.h5a.iterate(obj.id, names.append)  # append returns None: iterate on
    return {n.decode("utf-8") for n in names}


def _variable(f: Any, name: str, ds: Any, keys: set[str],
              dims_in_scope: dict[str, tuple[int, str]],
              scale_ids: dict[int, str]) -> H5Variable | None:
    """One dataset decoded as xarray would (None for a dimension without a variable);
    ``keys``: its attribute names; ``dims_in_scope``: the dimensions of this group and the
    enclosing ones (size, group); ``scale_ids``: their scales (object hash -> name)."""
    raw = ds.attrs
    is_scale = "CLASS" in keys and raw["CLASS"] == b"DIMENSION_SCALE"
    if is_scale:
        label = raw["NAME"] if "NAME" in keys else b""
        if isinstance(label, bytes) and label.startswith(_PHONY):
            return None
        coords = np.asarray(raw["_Netcdf4Coordinates"] if "_Netcdf4Coordinates" in keys
                            else raw["_Netcdf4Dimid"]).ravel()
        if "DIMENSION_LIST" in keys or coords.tolist() != [int(np.asarray(
                raw["_Netcdf4Dimid"]).reshape(()))]:
            raise Unsupported(f"{name}: a dimension scale with other dimensions")
        dims: tuple[str, ...] = (name,)
    elif ds.ndim == 0:
        if "DIMENSION_LIST" in keys:
            raise Unsupported(f"{name}: a scalar with dimensions")
        dims = ()
    else:
        dims = _dimension_names(f, name, ds, keys, dims_in_scope, scale_ids)
    if "_nc4_non_coord_" in name or len(set(dims)) != len(dims):
        raise Unsupported(f"{name}: renamed or repeated dimensions")
    if any(dims_in_scope.get(d, (None,))[0] != n for d, n in zip(dims, ds.shape, strict=True)):
        raise Unsupported(f"{name}: a dimension of another group or another size")
    extra = keys - _HIDDEN - {"_FillValue"}
    if extra:
        raise Unsupported(f"{name}: attributes {sorted(extra)}")
    values = _values(ds)
    if "_FillValue" in keys:  # xarray masks the fill value: NaN on floats changes nothing
        fill = np.asarray(raw["_FillValue"])
        if values.dtype.kind != "f" or fill.size != 1 or not np.isnan(fill).all():
            raise Unsupported(f"{name}: a _FillValue xarray would decode")
    return H5Variable(name, dims, values, {})


def _dimension_names(f: Any, name: str, ds: Any, keys: set[str],
                     dims_in_scope: dict[str, tuple[int, str]],
                     scale_ids: dict[int, str]) -> tuple[str, ...]:
    """The dimension of each axis, from the scale attached last (as h5netcdf and netcdf-c),
    which must be the scale of that name in this group or, if it has none, in the nearest
    enclosing group that has one: one of ``scale_ids`` (the scales in scope, by the hash h5py
    compares HDF5 objects with: file and object address)."""
    import h5py

    refs = ds.attrs["DIMENSION_LIST"] if "DIMENSION_LIST" in keys else None
    if refs is None or len(refs) != ds.ndim:
        raise Unsupported(f"{name}: axes without dimensions")
    dims = []
    for axis in refs:
        if len(axis) == 0:
            raise Unsupported(f"{name}: an axis without a dimension")
        dim = scale_ids.get(hash(h5py.h5r.dereference(axis[-1], f.id)))
        if dim is None or dim not in dims_in_scope:
            raise Unsupported(f"{name}: a dimension of another group")
        dims.append(dim)
    return tuple(dims)


def _values(ds: Any) -> np.ndarray:
    """The data as xarray decodes it: numbers as stored, variable-length text as numpy text."""
    import h5py

    dt = ds.dtype
    if dt.kind in "iuf" and h5py.check_enum_dtype(dt) is None:
        return np.asarray(ds[()])
    info = h5py.check_string_dtype(dt)
    if dt.kind == "O" and info is not None and info.length is None and info.encoding == "utf-8":
        text = ds.asstr()[()]
        return np.asarray(text, dtype=str) if np.ndim(text) else np.str_(text)
    raise Unsupported(f"{ds.name}: type {dt}")


def _attrs(raw: Any) -> dict[str, Any]:
    """Attributes as h5netcdf and xarray give them: text as str, one number as a numpy
    scalar, several as an array."""
    import h5py

    out: dict[str, Any] = {}
    for key in raw.keys():
        if key in _HIDDEN:
            continue
        value = raw[key]
        if isinstance(value, str):
            out[key] = value
            continue
        if isinstance(value, h5py.Empty) or not isinstance(value, (np.ndarray, np.generic)):
            raise Unsupported(f"attribute {key}: type {type(value).__name__}")
        value = np.asarray(value)
        if value.dtype.kind not in "iuf" or value.ndim > 1 or value.size == 0:
            raise Unsupported(f"attribute {key}: {value.dtype} of shape {value.shape}")
        out[key] = value[()] if value.ndim == 0 else value[0] if value.size == 1 else value
    return out
