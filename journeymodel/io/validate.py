"""Checks of model files before a model is built from them: a model file is untrusted input.

:func:`check_file_size` runs on the HDF5 metadata alone, before any array is read: it refuses a
file whose variables declare more data than the file could plausibly hold (a gzip-compressed
variable may declare billions of elements in a few bytes). The :class:`Checker` and
:func:`check_common` are the tools and the checks every model type shares: attribute types and
sizes, JSON attributes parsed safely, array shapes against each other, probabilities finite, in
[0, 1] and rows summing to 1, the model's parameters of the right type and range. The checks of
each model type, and :func:`~journeymodel.io.validate_models.check_tree` that runs them all on
a loaded :class:`xarray.DataTree`, are in :mod:`journeymodel.io.validate_models`. Every failure
is a :class:`ModelFileError` that names the file and what is wrong.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from journeymodel.errors import ModelFileError, OptionError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import xarray as xr

#: Largest amount of array data a model file may declare, whatever its size on disk.
MAX_DECLARED_BYTES = 2 * 1024**3
#: Declared array data may exceed the file size this many times (compression), plus a floor.
MAX_EXPANSION = 200
EXPANSION_FLOOR = 64 * 1024**2
#: Bytes counted per element of a variable-length string (the Python object it becomes).
_OBJECT_BYTES = 64
#: Longest JSON attribute accepted (characters).
MAX_JSON_CHARS = 64 * 1024**2
#: Tolerance of "sums to 1" and of "in [0, 1]".
TOL = 1e-6


def declared_bytes_limit(file_size: int) -> int:
    """Most array data (bytes) a model file of ``file_size`` bytes may declare."""
    return min(MAX_DECLARED_BYTES, MAX_EXPANSION * file_size + EXPANSION_FLOOR)


def check_file_size(path, source: str) -> None:
    """Refuse a file whose variables declare more data than is sane, from metadata only.

    Reads shapes and dtypes with h5py (no array data). Raises :class:`ModelFileError` when one
    variable or all together declare more than :func:`declared_bytes_limit` of the file size.
    """
    import os

    import h5py

    limit = declared_bytes_limit(os.path.getsize(path))
    total = 0
    with h5py.File(path, "r") as f:
        items: list[tuple[str, Any]] = []
        f.visititems(lambda name, obj: items.append((name, obj))
                     if isinstance(obj, h5py.Dataset) else None)
        for name, obj in items:
            count = math.prod(int(n) for n in (obj.shape or ()))
            total += declared_bytes(obj.shape, obj.dtype)
            if total > limit:
                raise ModelFileError(
                    f"{source}: variable {name!r} declares {count:,} elements of {obj.dtype} "
                    f"({total / 1024**2:,.0f} MiB of data in all), more than a model file of "
                    f"{os.path.getsize(path):,} bytes can hold (limit {limit / 1024**2:,.0f} "
                    "MiB): damaged or hostile file")


def declared_bytes(shape: tuple[int, ...] | None, dtype: np.dtype) -> int:
    """The bytes a dataset of ``shape`` and ``dtype`` declares, as :func:`check_file_size`
    counts them (a variable-length string: the Python object it becomes)."""
    count = math.prod(int(n) for n in (shape or ()))
    return count * (_OBJECT_BYTES if dtype.kind == "O" else max(int(dtype.itemsize), 1))


# ---------------------------------------------------------------------------------------------
# The checker: one per file, with the small checks every model type uses


class Checker:
    """Checks of one loaded model tree; every failure raises ModelFileError naming ``source``."""

    def __init__(self, tree: xr.DataTree, source: str, model_type: str) -> None:
        self.tree, self.source, self.model_type = tree, source, model_type
        self.root = tree.to_dataset(inherit=False)

    def fail(self, what: str) -> None:
        raise ModelFileError(f"{self.source}: damaged {self.model_type} model file: {what}")

    # -- attributes ----------------------------------------------------------------------------
    def json_attr(self, attrs: dict, name: str, kind: type, where: str = "") -> Any:
        """Parse the JSON text attribute ``name`` and check it is a ``kind``."""
        label = f"{where}attribute {name!r}"
        if name not in attrs:
            self.fail(f"{label} is missing")
        text = attrs[name]
        if not isinstance(text, str):
            self.fail(f"{label} must be JSON text (got {type(text).__name__})")
        if len(text) > MAX_JSON_CHARS:
            self.fail(f"{label} is {len(text):,} characters long (limit {MAX_JSON_CHARS:,})")
        try:
            value = json.loads(text)
        except RecursionError:
            self.fail(f"{label} is nested too deeply to be JSON written by journeymodel")
        except ValueError as exc:
            self.fail(f"{label} is not valid JSON ({exc})")
        if not isinstance(value, kind):
            self.fail(f"{label} must be a JSON {_kind_name(kind)} (got {type(value).__name__})")
        return value

    def number_attr(self, attrs: dict, name: str, *, integer: bool = False,
                    low: float | None = None, where: str = "") -> float:
        """A finite scalar number attribute (at least ``low``)."""
        import numpy as np

        label = f"{where}attribute {name!r}"
        if name not in attrs:
            self.fail(f"{label} is missing")
        value = np.asarray(attrs[name])
        if value.size != 1 or value.dtype.kind not in ("iuf" if not integer else "iu"):
            self.fail(f"{label} must be one {'integer' if integer else 'number'} "
                      f"(got {_show(attrs[name])})")
        x = value.reshape(()).item()
        if not math.isfinite(x) or (low is not None and x < low):
            self.fail(f"{label} must be a finite number{f' >= {low}' if low is not None else ''}"
                      f" (got {x!r})")
        return x

    def fields(self, d: dict, spec: dict[str, Any], label: str, *, optional: tuple = (),
               nan_ok: bool = False) -> None:
        """``d[key]`` is of the type(s) ``spec[key]`` for every key (missing: only optional);
        floats finite, or NaN too where ``nan_ok`` (a value the model marks as not available)."""
        for key, types in spec.items():
            if key not in d:
                if key in optional:
                    continue
                self.fail(f"{label} has no {key!r}")
            value = d[key]
            if isinstance(value, bool) and bool not in _as_tuple(types):
                self.fail(f"{label}: {key!r} must be {_kind_name(types)} (got {value!r})")
            if not isinstance(value, types):
                self.fail(f"{label}: {key!r} must be {_kind_name(types)} (got {_show(value)})")
            if isinstance(value, float) and not math.isfinite(value) and not (
                    nan_ok and math.isnan(value)):
                self.fail(f"{label}: {key!r} must be finite (got {value!r})")

    # -- arrays --------------------------------------------------------------------------------
    def var(self, ds: xr.Dataset, name: str, dims: tuple[str, ...], kind: str = "f",
            where: str = "") -> np.ndarray:
        """Values of variable ``name`` with exactly ``dims`` and a dtype kind in ``kind``
        (``f`` floats accept integers too; ``U`` accepts text of any storage)."""
        if name not in ds.variables:
            self.fail(f"{where}variable {name!r} is missing")
        da = ds[name]
        if tuple(da.dims) != tuple(dims):
            self.fail(f"{where}variable {name!r} has dimensions {tuple(da.dims)}, "
                      f"expected {tuple(dims)}")
        values = da.values
        ok = {"f": "fiu", "i": "iu", "U": "OUS"}[kind]
        if values.dtype.kind not in ok:
            self.fail(f"{where}variable {name!r} has type {values.dtype}, expected "
                      f"{ {'f': 'numbers', 'i': 'integers', 'U': 'text'}[kind]}")
        if kind == "U" and values.dtype.kind == "O" and not all(
                isinstance(v, str) for v in values.ravel().tolist()):
            self.fail(f"{where}variable {name!r} must hold text")
        return values

    def finite(self, values: np.ndarray, name: str, *, low: float | None = None,
               high: float | None = None, nan_ok: bool = False) -> np.ndarray:
        """``values`` finite (NaN allowed if ``nan_ok``) and within [low, high]."""
        import numpy as np

        x = np.asarray(values, dtype=np.float64)
        bad = ~(np.isfinite(x) | np.isnan(x)) if nan_ok else ~np.isfinite(x)
        if low is not None:
            bad |= x < low - TOL * max(1.0, abs(low))
        if high is not None:
            bad |= x > high + TOL * max(1.0, abs(high))
        if bad.any():
            i = int(np.flatnonzero(bad.ravel())[0])
            rng = (f" in [{low}, {high}]" if low is not None and high is not None
                   else f" >= {low}" if low is not None else f" <= {high}" if high is not None
                   else "")
            self.fail(f"{name} must be finite{rng}; {int(bad.sum()):,} values are not "
                      f"(first: {float(x.ravel()[i])!r} at flat index {i})")
        return x

    def probabilities(self, values: np.ndarray, name: str, *, rows: bool = True,
                      sums: np.ndarray | None = None) -> np.ndarray:
        """Finite, in [0, 1], and (``rows``) each row (last axis) summing to 1."""
        import numpy as np

        p = self.finite(values, name, low=0.0, high=1.0)
        if rows:
            total = p.sum(axis=-1) if sums is None else sums
            off = np.abs(total - 1.0) > 1e-6 * max(1, p.shape[-1] if p.ndim else 1)
            if np.any(off):
                i = int(np.flatnonzero(np.ravel(off))[0])
                self.fail(f"{name}: rows must sum to 1 ({int(np.sum(off))} do not; row {i} "
                          f"sums to {float(np.ravel(total)[i])!r})")
        return p

    def length(self, ds: xr.Dataset, dim: str, expected: int, what: str) -> None:
        got = ds.sizes.get(dim, 0)
        if got != expected:
            self.fail(f"dimension {dim!r} has {got} entries, expected {expected} ({what})")

    def child(self, name: str) -> xr.Dataset:
        if name not in self.tree.children:
            self.fail(f"the {name!r} group is missing")
        return self.tree[name].to_dataset(inherit=False)


def _as_tuple(types: Any) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def _kind_name(types: Any) -> str:
    names = {dict: "object", list: "array", str: "text", int: "integer", float: "number",
             bool: "boolean", type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in _as_tuple(types))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


NUM = (int, float)
OPT_NUM = (int, float, type(None))


# ---------------------------------------------------------------------------------------------
# What every model file has: parameters, ledger, journeys


def check_common(c: Checker, cls: type) -> None:
    """``params`` (constructor arguments, checked by the model's own ``_check_params``),
    ``ledger`` (counts that add up) and ``journeys`` (vocabularies, counts)."""
    params = c.json_attr(c.tree.attrs, "params", dict)
    allowed = set(cls._param_names())
    unknown = sorted(set(params) - allowed)
    if unknown:
        c.fail(f"'params' has unknown parameters {unknown}")
    for key, value in params.items():
        if isinstance(value, dict) or (isinstance(value, list) and any(
                isinstance(v, (dict, list)) for v in value)):
            c.fail(f"parameter {key!r} must be a number, text or a flat list (got {_show(value)})")
        if isinstance(value, float) and not math.isfinite(value):
            c.fail(f"parameter {key!r} must be finite (got {value!r})")
    try:
        model = cls(**params)
        check = getattr(model, "_check_params", None)
        if check is not None:
            check()
    except (OptionError, TypeError, ValueError) as exc:
        c.fail(f"bad parameters: {exc}")
    _check_ledger(c, c.json_attr(c.tree.attrs, "ledger", dict))
    _check_journeys(c, c.json_attr(c.tree.attrs, "journeys", dict))
    _check_labels(c)


def _check_labels(c: Checker) -> None:
    """Every dimension's labels are distinct in every group (tables and JSON are keyed by them)."""
    for node in c.tree.subtree:
        for dim, var in node.to_dataset(inherit=False).variables.items():
            if tuple(var.dims) != (dim,):  # not a dimension's labels
                continue
            label = _first_repeat(var.values)
            if label is not None:
                label = label[0]
                label = label.item() if hasattr(label, "item") else label  # numpy -> Python
                where = f"group {node.path.lstrip('/')!r}: " if node.path != "/" else ""
                c.fail(f"{where}dimension {dim!r} repeats the label {_show(label)}")


def _first_repeat(values: np.ndarray) -> tuple[Any] | None:
    """``(label,)`` of the first entry equal to an earlier one (NaN equals NaN, as pandas'
    ``Index.duplicated``), or None when all are distinct. Numbers and numpy text by numpy
    (no pandas import), Python objects by pandas."""
    import numpy as np

    if values.dtype.kind == "O":  # Python objects (xarray's decoding only): pandas compares
        import pandas as pd

        index = pd.Index(values)
        return None if index.is_unique else (index[index.duplicated()][0],)
    _, first = np.unique(values, return_index=True)
    if len(first) == len(values):
        return None
    repeated = np.ones(len(values), bool)
    repeated[first] = False
    return (values[int(np.flatnonzero(repeated)[0])],)


def _check_ledger(c: Checker, d: dict) -> None:
    c.fields(d, {"source": str, "rows_read": int, "rows_used": int, "rows_dropped": dict,
                 "invalid_fields": dict, "notes": list}, "'ledger'",
             optional=("source", "rows_dropped", "invalid_fields", "notes"))
    for key in ("rows_dropped", "invalid_fields"):
        for reason, n in d.get(key, {}).items():
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                c.fail(f"'ledger': {key}[{reason!r}] must be a count >= 0 (got {_show(n)})")
    if not all(isinstance(n, str) for n in d.get("notes", [])):
        c.fail("'ledger': notes must be text")
    dropped = sum(d.get("rows_dropped", {}).values())
    if min(d["rows_read"], d["rows_used"]) < 0 or d["rows_read"] != d["rows_used"] + dropped:
        c.fail(f"'ledger' does not add up: read {d['rows_read']}, used {d['rows_used']}, "
               f"dropped {dropped}")


def _check_journeys(c: Checker, d: dict) -> None:
    c.fields(d, {"touchpoints": list, "personas": list, "devices": list, "time_kind": str,
                 "gap": OPT_NUM, "observed_until": OPT_NUM, "n_journeys": int, "n_events": int,
                 "outcome_counts": (dict, type(None))}, "'journeys'",
             optional=("personas", "devices", "outcome_counts"))
    unknown = sorted(set(d) - {"touchpoints", "personas", "devices", "time_kind", "gap",
                               "observed_until", "n_journeys", "n_events", "outcome_counts"})
    if unknown:
        c.fail(f"'journeys' has unknown keys {unknown}")
    for key in ("touchpoints", "personas", "devices"):
        if not all(isinstance(v, str) for v in d.get(key, [])):
            c.fail(f"'journeys': {key} must be a list of text")
    if d["n_journeys"] < 0 or d["n_events"] < 0:
        c.fail("'journeys': n_journeys and n_events must be >= 0")
    for k, v in (d.get("outcome_counts") or {}).items():
        if isinstance(v, bool) or not isinstance(v, NUM) or not math.isfinite(v) or v < 0:
            c.fail(f"'journeys': outcome_counts[{k!r}] must be a count >= 0 (got {_show(v)})")


def check_experience(c: Checker, node: str = "experience") -> None:
    """The optional experience group (pain points): numbers where numbers are expected, counts
    >= 0, means within -1..1 (or NaN where nothing was scored)."""
    if node not in c.tree.children:
        return
    ds = c.tree[node].to_dataset(inherit=False)
    where = f"group {node!r}: "
    for key in ("sentiment_mean", "ci"):  # interval ends may lie outside -1..1 (small n)
        if key in ds.attrs:
            x = _scalar(c, ds.attrs, key, where)
            if not (math.isnan(x) or -1 - TOL <= x <= 1 + TOL):
                c.fail(f"{where}attribute {key!r} must be within -1..1 (got {x!r})")
    for key in ("sentiment_low", "sentiment_high"):
        if key in ds.attrs and math.isinf(_scalar(c, ds.attrs, key, where)):
            c.fail(f"{where}attribute {key!r} must be finite")
    for key in ("scored_events", "events", "has_sentiment", "has_device"):
        if key in ds.attrs:
            c.number_attr(ds.attrs, key, integer=True, low=0, where=where)
    for name, da in ds.data_vars.items():
        dim = _EXPERIENCE_DIMS.get(str(name).split("_", 1)[0])
        if dim is not None and tuple(da.dims) != (dim,):
            c.fail(f"{where}variable {name!r} has dimensions {tuple(da.dims)}, expected "
                   f"({dim!r},)")
        if da.dtype.kind in "OUS":
            continue
        if da.dtype.kind not in "fiub":
            c.fail(f"{where}variable {name!r} has type {da.dtype}")
        counts = name.endswith(("_n", "_events", "_journeys", "_scored", "_converted",
                                "_dropped"))
        if counts:
            c.finite(da.values, f"{where}{name}", low=0.0)
        elif name.endswith("_mean"):
            c.finite(da.values, f"{where}{name}", low=-1.0, high=1.0, nan_ok=True)
        else:
            c.finite(da.values, f"{where}{name}", nan_ok=True)


#: The experience dataset's variables by name prefix -> their one dimension
#: (see :func:`journeymodel.analysis.experience.experience_dataset`).
_EXPERIENCE_DIMS = {"tp": "channel", "pos": "position", "pair": "pair",
                    "dpair": "device_pair", "stage": "stage_label"}


def _scalar(c: Checker, attrs: dict, key: str, where: str) -> float:
    import numpy as np

    value = np.asarray(attrs[key])
    if value.size != 1 or value.dtype.kind not in "iuf":
        c.fail(f"{where}attribute {key!r} must be one number (got {_show(attrs[key])})")
    return float(value.reshape(()))
