"""Arrow arrays as numpy arrays without pandas.

pyarrow's own conversions (``Array.to_numpy``, ``ChunkedArray.to_numpy``, ``np.asarray`` of an
Arrow array) go through its pandas converter, which imports pandas on first use: a third of a
second of every command that reads an event log, for a conversion that needs none of it
(issue 20). Here the numbers are read from the arrays' buffers (no copy for a single chunk
without nulls) and the few text values of a dictionary come from ``to_pylist``.

Examples
--------
>>> import numpy as np
>>> import pyarrow as pa
>>> values(pa.chunked_array([pa.array([1, 2], pa.int32()), pa.array([None, 4], pa.int32())]),
...        fill=-1).tolist()
[1, 2, -1, 4]
>>> flags(pa.array([True, None, False])).tolist()
[True, False, False]
>>> texts(pa.array(["a", None])).tolist()
['a', None]
>>> scalar("", pa.string()), scalar(-1, pa.int32()), scalar(True, pa.bool_())
(<pyarrow.StringScalar: ''>, <pyarrow.Int32Scalar: -1>, <pyarrow.BooleanScalar: True>)
>>> int_array(np.array([3, 1, 2]), np.array([False, True, False])).to_pylist()
[3, None, 2]
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from journeymodel.data import compute as pc

__all__ = ["flags", "floats", "int_array", "scalar", "texts", "values"]


def values(arr: pa.Array | pa.ChunkedArray, fill=None, dtype=None) -> np.ndarray:
    """The values of a fixed-width numeric Arrow array (integers, floats, timestamps, dates:
    their stored integers) as one numpy array, nulls replaced by ``fill`` (required when there
    are nulls). ``dtype`` converts the result (``astype``, no copy when it is the same)."""
    if arr.null_count:
        if fill is None:
            raise ValueError("the array has nulls: give the value that replaces them (fill)")
        arr = pc.fill_null(arr, scalar(fill, arr.type))
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    base = _dtype(arr.type)
    parts = [_chunk_values(c, base) for c in chunks if len(c)]
    out = (parts[0] if len(parts) == 1 else np.concatenate(parts) if parts
           else np.zeros(0, base))
    return out if dtype is None else out.astype(dtype, copy=False)


def _dtype(t: pa.DataType) -> np.dtype:
    """The numpy type of the values stored for ``t`` (temporal types: their integers)."""
    kind = ("f" if pa.types.is_floating(t) else "u" if pa.types.is_unsigned_integer(t)
            else "i" if pa.types.is_integer(t) or pa.types.is_temporal(t) else None)
    if kind is None:
        raise TypeError(f"not a fixed-width numeric type: {t}")
    return np.dtype(f"{kind}{t.bit_width // 8}")


def _chunk_values(chunk: pa.Array, dtype: np.dtype) -> np.ndarray:
    data = chunk.buffers()[1]
    return np.frombuffer(data, dtype, count=chunk.offset + len(chunk))[chunk.offset:]


def floats(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An integer or float array as a new float64 array, NaN for nulls (what ``to_numpy``
    gives)."""
    out = values(arr, fill=0).astype(np.float64)
    if arr.null_count:
        out[~flags(pc.is_valid(arr))] = np.nan
    return out


def flags(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array as a numpy bool array, nulls as False."""
    if arr.null_count:
        arr = pc.fill_null(arr, scalar(False, pa.bool_()))
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    out = np.empty(len(arr), bool)
    at = 0
    for chunk in chunks:
        m = len(chunk)
        if m:
            bits = np.frombuffer(chunk.buffers()[1], np.uint8,
                                 count=(chunk.offset + m + 7) // 8)
            out[at:at + m] = np.unpackbits(bits, bitorder="little")[chunk.offset:
                                                                     chunk.offset + m]
        at += m
    return out


def texts(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Text values as a numpy object array of ``str`` (``None`` for nulls): for the few values
    of a dictionary, not for a column of millions (one Python string each)."""
    out = np.empty(len(arr), object)
    out[:] = arr.to_pylist()
    return out


def int_array(vals: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """A numpy integer array as an Arrow array over the same memory (``pa.array(vals,
    mask=null)``, which imports pandas), null where ``null`` is True."""
    vals = np.ascontiguousarray(vals)
    validity, n_null = None, 0
    if null is not None and (n_null := int(np.count_nonzero(null))):
        validity = pa.py_buffer(np.packbits(~np.asarray(null, bool), bitorder="little"))
    return pa.Array.from_buffers(pa.from_numpy_dtype(vals.dtype), len(vals),
                                 [validity, pa.py_buffer(vals)], null_count=n_null)


def scalar(value, type_: pa.DataType) -> pa.Scalar:
    """An Arrow scalar of ``type_`` (text, boolean or fixed-width numeric: temporal types take
    their stored integer) made from buffers: ``pa.scalar`` and a Python value given to a
    compute function import pandas (they check whether the value is a pandas object)."""
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        data = str(value).encode("utf-8")
        offsets = np.array([0, len(data)], np.int64 if pa.types.is_large_string(type_)
                           else np.int32)
        buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    elif pa.types.is_boolean(type_):
        buffers = [None, pa.py_buffer(np.array([1 if value else 0], np.uint8))]
    else:
        buffers = [None, pa.py_buffer(np.array([value], _dtype(type_)))]
    return pa.Array.from_buffers(type_, 1, buffers)[0]
