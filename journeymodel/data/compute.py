"""The Arrow compute functions ingestion uses, called without importing ``pyarrow.compute``.

``import pyarrow.compute`` builds a Python wrapper for every one of Arrow's several hundred
kernels: 40-90 ms of every command that reads an event log (issue 20). The few ingestion needs
are called here by name through ``pyarrow._compute.call_function`` (what those wrappers call),
with the same signatures and defaults as their ``pyarrow.compute`` namesakes, so a module reads
``from journeymodel.data import compute as pc`` and calls them as before. Array methods that
call kernels (``Array.cast``, ``.fill_null``, ``.is_valid``) import ``pyarrow.compute`` too:
ingestion calls the functions here instead.

Examples
--------
>>> import pyarrow as pa
>>> cast(pa.array([1, 2]), pa.float64()).to_pylist()
[1.0, 2.0]
>>> utf8_trim_whitespace(pa.array([" a ", None])).to_pylist()
['a', None]
>>> any(equal(pa.array(["x", "y"]), pa.array(["x", "z"]))).as_py()
True
"""

from __future__ import annotations

import pyarrow as pa

try:  # pyarrow's private module: what pyarrow.compute re-exports, without its wrappers
    from pyarrow import _compute as _arrow
except ImportError:  # pragma: no cover - a pyarrow laid out otherwise: the public names
    from pyarrow import compute as _arrow

call_function = _arrow.call_function

__all__ = ["all", "and_", "any", "ascii_rpad", "binary_length", "cast", "dictionary_encode",
           "equal", "extract_regex", "fill_null", "is_null", "is_valid", "list_value_length",
           "match_substring", "min", "not_equal", "or_kleene", "replace_substring",
           "split_pattern_regex", "struct_field", "utf8_trim_whitespace"]


def cast(arr, target_type, safe: bool = True):
    """``pyarrow.compute.cast``: ``arr`` as ``target_type`` (``safe``: overflow checked)."""
    target_type = pa.types.lib.ensure_type(target_type)
    make = _arrow.CastOptions.safe if safe else _arrow.CastOptions.unsafe
    options = make(target_type)
    return call_function("cast", [arr], options)


def fill_null(values, fill_value):
    """``pyarrow.compute.fill_null`` for a fill value that is already an Arrow scalar or array
    (a Python value would need ``pa.scalar``, which imports pandas: see
    :func:`journeymodel.data.arrow_numpy.scalar`)."""
    if not isinstance(fill_value, (pa.Array, pa.ChunkedArray, pa.Scalar)):
        raise TypeError("fill_null takes an Arrow scalar or array (arrow_numpy.scalar)")
    return call_function("coalesce", [values, fill_value])


def _unary(name: str):
    def kernel(values):
        return call_function(name, [values])
    kernel.__name__ = kernel.__qualname__ = name.rstrip("_")
    kernel.__doc__ = f"``pyarrow.compute.{name}`` (its default options)."
    return kernel


def _binary(name: str):
    def kernel(left, right):
        return call_function(name, [left, right])
    kernel.__name__ = kernel.__qualname__ = name
    kernel.__doc__ = f"``pyarrow.compute.{name}``."
    return kernel


is_null = _unary("is_null")
is_valid = _unary("is_valid")
binary_length = _unary("binary_length")
list_value_length = _unary("list_value_length")
utf8_trim_whitespace = _unary("utf8_trim_whitespace")
dictionary_encode = _unary("dictionary_encode")  # nulls stay nulls (null_encoding "mask")
min = _unary("min")  # noqa: A001 (nulls skipped, None when no value: pyarrow's defaults)
any = _unary("any")  # noqa: A001
all = _unary("all")  # noqa: A001
and_ = _binary("and")
or_kleene = _binary("or_kleene")
equal = _binary("equal")
not_equal = _binary("not_equal")


def match_substring(strings, pattern: str):
    """``pyarrow.compute.match_substring``: which values contain ``pattern`` (literal)."""
    return call_function("match_substring", [strings], _arrow.MatchSubstringOptions(pattern))


def replace_substring(strings, pattern: str, replacement: str):
    """``pyarrow.compute.replace_substring``: every ``pattern`` (literal) replaced."""
    return call_function("replace_substring", [strings],
                         _arrow.ReplaceSubstringOptions(pattern, replacement))


def split_pattern_regex(strings, pattern: str):
    """``pyarrow.compute.split_pattern_regex``: each value split at the regex ``pattern``."""
    return call_function("split_pattern_regex", [strings], _arrow.SplitPatternOptions(pattern))


def extract_regex(strings, pattern: str):
    """``pyarrow.compute.extract_regex``: the named groups of ``pattern`` as a struct."""
    return call_function("extract_regex", [strings], _arrow.ExtractRegexOptions(pattern))


def ascii_rpad(strings, width: int, padding: str = " "):
    """``pyarrow.compute.ascii_rpad``: values right-padded to ``width`` bytes."""
    return call_function("ascii_rpad", [strings], _arrow.PadOptions(width, padding))


def struct_field(values, indices):
    """``pyarrow.compute.struct_field``: a child of a struct array (by name or index)."""
    return call_function("struct_field", [values], _arrow.StructFieldOptions(indices))

