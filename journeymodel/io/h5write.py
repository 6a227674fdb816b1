"""Model files written with h5py in the netCDF-4 layout h5netcdf gives them, without xarray's
writer (issue 20).

``DataTree.to_netcdf`` costs ``journeymodel fit markov`` about a second whatever the data:
xarray asks dask which scheduler is active (importing ``dask.distributed``) and h5netcdf looks
up each variable's dimensions and attributes many times. :func:`write_h5_tree` writes the same
HDF5 objects h5netcdf writes for the trees journeymodel builds: a dimension scale per
dimension (``_Netcdf4Dimid``, the "not a netCDF variable" name when no variable carries its
labels), variables in the same creation order with their scales attached, ``_Netcdf4Coordinates``
and ``_Netcdf4Dimid`` where h5netcdf puts them, ``_FillValue`` NaN on floats, numbers as
one-element arrays, text as variable-length UTF-8 and ``_NCProperties`` on the root; the file
is read back to the same values by xarray and by :mod:`journeymodel.io.h5tree`.

A variable of a subgroup may use a dimension of an enclosing group (the persona axis of a
conversion or churn model's posterior is the root's, whose labels DataTree inherits): its axis
gets that group's scale, as h5netcdf attaches it. Trees outside that part (variable
attributes, encodings that change the stored values, non-dimension coordinates, a group that
labels or resizes a dimension of an enclosing one, other types) are left to xarray:
:func:`write_h5_tree` then returns False without creating the file.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from journeymodel.io.h5tree import H5Group

#: The NAME of a dimension scale that is only a dimension (netCDF-4's, as h5netcdf writes it).
NOT_A_VARIABLE = b"This is a netCDF dimension but not a netCDF variable."
#: Encoding keys that change what is stored (xarray would encode the values with them).
_VALUE_ENCODINGS = frozenset({"scale_factor", "add_offset", "units", "calendar",
                              "missing_value", "_Unsigned", "coordinates", "dtype",
                              "_FillValue"})


class _Plan:
    """One group to write: its own dimensions in order (``sizes``: with those of enclosing
    groups its variables use, ``owner``: the group of each), the variables, its attributes."""

    def __init__(self, path: str, ds: xr.Dataset | H5Group, children: list[_Plan],
                 outer: dict[str, tuple[int, str]]) -> None:
        self.path, self.children = path, children
        self.sizes = {str(d): int(n) for d, n in ds.sizes.items()}
        self.dims = {d: n for d, n in self.sizes.items() if d not in outer}
        self.owner = {d: outer[d][1] if d in outer else path for d in self.sizes}
        self.coords = [str(n) for n, v in ds.variables.items() if v.dims == (n,)]
        self.data = [str(n) for n in ds.variables if str(n) not in self.coords]
        self.values = {str(n): _storable(n, v) for n, v in ds.variables.items()}
        self.var_dims = {str(n): tuple(str(d) for d in v.dims) for n, v in ds.variables.items()}
        self.attrs = {str(k): _attr(k, v) for k, v in ds.attrs.items()}


class _Skip(Exception):
    """The tree needs xarray's writer."""


def write_h5_tree(tree: xr.DataTree | H5Group, path: str | os.PathLike) -> bool:
    """Write ``tree`` to ``path`` as netCDF-4 (see the module docstring); False, with nothing
    written, when the tree needs xarray's writer."""
    try:
        plan = _plan(tree, {})
    except _Skip:
        return False
    import h5py

    from journeymodel import __version__

    with h5py.File(path, "w", track_order=True) as f:
        dimids: dict[str, int] = {}
        _write_group(f, f, plan, dimids)
        _string_attr(f, "_NCProperties",
                     f"version=2,journeymodel={__version__},hdf5={h5py.version.hdf5_version},"
                     f"h5py={h5py.__version__}")
    return True


def _plan(node: xr.DataTree | H5Group, outer: dict[str, tuple[int, str]]) -> _Plan:
    """The plan of ``node`` and its subgroups; ``outer``: the dimensions of the enclosing
    groups (size, group path), the nearest one's where two share a name."""
    ds = node.to_dataset(inherit=False)
    for name, var in ds.variables.items():
        if var.attrs or set(var.encoding) & _VALUE_ENCODINGS - {"dtype", "_FillValue"}:
            raise _Skip(name)
        if "dtype" in var.encoding and np.dtype(var.encoding["dtype"]) != var.dtype and not (
                var.dtype.kind in "UO" and var.encoding["dtype"] in (str, object)):
            raise _Skip(name)
        fill = var.encoding.get("_FillValue", np.nan if var.dtype.kind == "f" else None)
        if not (fill is None and var.dtype.kind != "f") and not (
                var.dtype.kind == "f" and np.ndim(fill) == 0 and np.isnan(fill)):
            raise _Skip(name)
        if name in var.dims and var.dims != (name,):
            raise _Skip(name)
    if set(ds.coords) - {n for n, v in ds.variables.items() if v.dims == (n,)}:
        raise _Skip("non-dimension coordinates")
    for dim, size in ds.sizes.items():
        if dim in outer and (outer[dim][0] != size or dim in ds.variables):
            raise _Skip(f"dimension {dim}: labelled or resized below an enclosing group")
    inner = {**outer, **{str(d): (int(n), node.path) for d, n in ds.sizes.items()
                         if d not in outer}}
    children = [_plan(child, inner) for child in node.children.values()]
    return _Plan(node.path, ds, children, outer)


def _storable(name: Any, var: Any) -> np.ndarray:
    values = np.asarray(var.values)
    if values.dtype.kind in "iuf":
        return values
    if values.dtype.kind == "U" or (values.dtype.kind == "O" and all(
            isinstance(v, str) for v in values.ravel().tolist())):
        return values.astype(object)
    raise _Skip(f"{name}: type {values.dtype}")


def _attr(key: Any, value: Any) -> Any:
    """An attribute as h5netcdf stores it: text as is, numbers as a 1-d array."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        raise _Skip(f"attribute {key}: a boolean")
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or arr.ndim > 1 or arr.size == 0:
        raise _Skip(f"attribute {key}: {arr.dtype} of shape {arr.shape}")
    return np.atleast_1d(arr)


def _write_group(f: Any, g: Any, plan: _Plan, dimids: dict[str, int],
                 scales: dict[str, Any] | None = None) -> None:
    """The group's phony dimension scales, its variables (data, then labels), the scales
    attached, its attributes, then its subgroups (h5netcdf's creation order).

    Datasets and attributes are made with h5py's low-level calls, the ones its high-level
    ``create_dataset`` and ``attrs[...] =`` make for these arrays (the same HDF5 objects),
    without their checks and lookups: 0.1 ms an object, half of writing a Markov model
    (72 datasets, 190 attributes; issue 20). ``scales``: every dimension scale written so far,
    by path (the variables of subgroups attach those of enclosing groups)."""
    import h5py

    scales = {} if scales is None else scales
    gid = g["/"].id if isinstance(g, h5py.File) else g.id  # the root group's, as f.attrs
    ids = {}
    for dim, size in plan.dims.items():
        ids[dim] = dimids[_join(plan.path, dim)] = len(dimids)
        if dim not in plan.coords:
            scale = _create(gid, dim, np.empty(size, ">f4"), [size], empty=True)
            h5py.h5ds.set_scale(scale, NOT_A_VARIABLE + f"{size:10}".encode("ascii"))
            _set_attr(scale, "_Netcdf4Dimid", np.array(ids[dim], dtype=np.int32))
            scales[_join(plan.path, dim)] = scale
    ids.update({d: dimids[_join(plan.owner[d], d)] for d in plan.sizes if d not in plan.dims})
    created = {}
    for name in plan.data + plan.coords:
        values = plan.values[name]
        var_dims = plan.var_dims[name]
        created[name] = _create(gid, name, values, [plan.sizes[d] for d in var_dims])
        if name in plan.coords:
            h5py.h5ds.set_scale(created[name], name.encode("utf-8"))
            _set_attr(created[name], "_Netcdf4Coordinates", np.array([ids[name]], np.int32))
            _set_attr(created[name], "_Netcdf4Dimid", np.array(ids[name], dtype=np.int32))
            scales[_join(plan.path, name)] = created[name]
    for name in plan.data:
        var, var_dims = created[name], plan.var_dims[name]
        for axis, dim in enumerate(var_dims):
            h5py.h5ds.attach_scale(var, scales[_join(plan.owner[dim], dim)], axis)
        if var_dims:
            _set_attr(var, "_Netcdf4Coordinates", np.array([ids[d] for d in var_dims],
                                                           np.int32))
            if plan.sizes[var_dims[0]] > 0:
                _set_attr(var, "_Netcdf4Dimid", np.array(ids[var_dims[0]], dtype=np.int32))
        if plan.values[name].dtype.kind == "f":  # xarray's default fill for floats
            _set_attr(var, "_FillValue", np.array([np.nan], plan.values[name].dtype))
    for key, value in plan.attrs.items():
        _set_attr(gid, key, value)
    for child in plan.children:
        name = child.path.rsplit("/", 1)[-1]
        _write_group(f, g.create_group(name, track_order=True), child, dimids, scales)


def _join(path: str, name: str) -> str:
    return f"{path.rstrip('/')}/{name}"


def _name(name: str) -> bytes:
    """An object's name as h5py passes it to HDF5 (ASCII; others are left to xarray)."""
    try:
        return name.encode("ascii")
    except UnicodeEncodeError:
        raise _Skip(f"name {name!r}: not ASCII") from None


def _create(gid: Any, name: str, values: np.ndarray, sizes: list[int], *,
            empty: bool = False) -> Any:
    """A dataset of ``values`` in the group ``gid``, as h5py's ``create_dataset(name,
    data=values, track_order=True)`` makes it (variable-length UTF-8 text for object arrays,
    fill value NaN for floats, unlimited and chunked along empty dimensions); its DatasetID.
    ``empty``: only the shape and type of ``values``, nothing written and no fill value
    (``create_dataset(name, shape=..., dtype=...)``, a dimension's phony scale)."""
    import h5py
    from h5py import h5d, h5p, h5s

    dcpl = h5p.create(h5p.DATASET_CREATE)
    maxshape = None
    if 0 in sizes:
        maxshape = tuple(h5s.UNLIMITED if n == 0 else n for n in sizes)
        dcpl.set_chunk(tuple(1024 if n == 0 else n for n in sizes))
    if values.dtype.kind == "O":
        values = np.asarray(values, order="C").view(h5py.string_dtype())
    else:
        values = np.asarray(values, order="C")
        if values.dtype.kind == "f" and not empty:
            dcpl.set_fill_value(np.array(np.nan))
    dcpl.set_obj_track_times(False)
    dcpl.set_attr_creation_order(h5p.CRT_ORDER_TRACKED | h5p.CRT_ORDER_INDEXED)
    tid = _type_id(values.dtype, logical=True)
    dsid = h5d.create(gid, _name(name), tid, h5s.create_simple(values.shape, maxshape),
                      dcpl=dcpl)
    if not empty:
        dsid.write(h5s.ALL, h5s.ALL, values)
    return dsid


def _set_attr(oid: Any, name: str, value: Any) -> None:
    """An attribute of the object ``oid``, as h5py's ``attrs[name] = value`` writes it (text
    as a variable-length UTF-8 scalar, arrays as they are)."""
    import h5py
    from h5py import h5a

    if isinstance(value, str):
        data = np.array(value, dtype=h5py.string_dtype())
    else:
        data = np.asarray(value, order="C")
    attr = h5a.create(oid, _name(name), _type_id(data.dtype, logical=True), _space(data.shape))
    attr.write(data, mtype=_type_id(data.dtype, logical=False))
    attr.close()


#: HDF5 datatypes and dataspaces made for the arrays written, by numpy type and by shape:
#: transient objects that HDF5 copies into each dataset or attribute it makes with them, so
#: one of each is made once in a process (a model file writes some 200 attributes of a few
#: types; making their types and spaces was half of the 0.1 ms each costs; issue 20).
_TYPE_IDS: dict[tuple[str, bool, bool], Any] = {}
_SPACES: dict[tuple[int, ...], Any] = {}


def _type_id(dtype: np.dtype, *, logical: bool) -> Any:
    """``h5py.h5t.py_create(dtype, logical=logical)``, made once per type (numbers, and
    h5py's variable-length UTF-8 text: the only object type written here)."""
    key = (dtype.str, dtype.kind == "O", logical)
    tid = _TYPE_IDS.get(key)
    if tid is None:
        from h5py import h5t

        tid = _TYPE_IDS[key] = h5t.py_create(dtype, logical=logical)
    return tid


def _space(shape: tuple[int, ...]) -> Any:
    """``h5py.h5s.create_simple(shape)``, made once per shape (an attribute's dataspace)."""
    space = _SPACES.get(shape)
    if space is None:
        from h5py import h5s

        space = _SPACES[shape] = h5s.create_simple(shape)
    return space


def _string_attr(obj: Any, name: str, text: str) -> None:
    """A fixed-length, NUL-terminated ASCII attribute (as netCDF-C writes ``_NCProperties``)."""
    import h5py

    data = text.encode("ascii")
    tid = h5py.h5t.C_S1.copy()
    tid.set_size(len(data) + 1)
    tid.set_strpad(h5py.h5t.STR_NULLTERM)
    tid.set_cset(h5py.h5t.CSET_ASCII)
    space = h5py.h5s.create(h5py.h5s.SCALAR)
    attr = h5py.h5a.create(obj.id, name.encode("ascii"), tid, space)
    attr.write(np.array(data, dtype=f"S{len(data) + 1}"), mtype=tid)
