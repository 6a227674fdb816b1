"""Arrow columns of an input as numpy arrays: kinds checked, text encoded, numbers parsed.

Shared by the event-log reader (:mod:`journeymodel.data.events`) and the path-table reader
(:mod:`journeymodel.data.paths`). Vectorised with pyarrow and numpy; nothing loops over rows.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from journeymodel.data import compute as pc
from journeymodel.data.arrow_numpy import flags, floats, scalar, texts, values
from journeymodel.data.encoding import dictionary_array, dictionary_encode, group_ids
from journeymodel.data.ordering import lookup
from journeymodel.errors import InputError

__all__ = ["MAX_FIELD", "as_string", "check_kinds", "compact", "encode", "numeric"]


def check_kinds(table: pa.Table, cols: dict[str, str | None], name: str) -> pa.Table:
    """Columns of a kind no event field can hold (lists, structs, maps: Parquet or Arrow input)
    are an InputError naming the column; binary columns are read as UTF-8 text."""
    for key, col in cols.items():
        if col is None:
            continue
        t = table.schema.field(col).type
        base = t.value_type if pa.types.is_dictionary(t) else t
        if pa.types.is_binary(base) or pa.types.is_large_binary(base) or \
                pa.types.is_fixed_size_binary(base):
            try:
                text = pc.cast(pc.cast(table[col], base) if base is not t else table[col],
                               pa.string())
            except pa.ArrowException:
                raise InputError(f"the {key} column holds binary data that is not UTF-8 text",
                                 source=name, column=col) from None
            table = table.set_column(table.schema.get_field_index(col), col, text)
            continue
        if (pa.types.is_nested(base) or pa.types.is_duration(base) or pa.types.is_time(base)
                or pa.types.is_interval(base) or pa.types.is_union(base)):
            raise InputError(f"the {key} column holds values of type {base}; expected text or "
                             "numbers" + (" or dates" if key == "time" else ""),
                             source=name, column=col)
    return table


def as_string(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(arr.type):
        arr = pc.cast(arr, arr.type.value_type)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pc.cast(arr, pa.string())
    return pc.utf8_trim_whitespace(arr)


def encode(arr: pa.ChunkedArray, *, sort: bool = True, dtype=np.int64,
            nul: dict | None = None, key: str = "", grouped: dict | None = None,
            hash_memory=None) -> tuple[np.ndarray, np.ndarray]:
    """Dictionary-encode a column as text: (codes, -1 for null/blank; vocabulary).

    Customer ids (``sort=False``) go through :func:`journeymodel.data.encoding.dictionary_encode`
    (hashing and sorting: many distinct values), the other columns through pyarrow's hash
    table (few distinct values); the encodings are equal.

    With ``nul`` (sorted columns: touchpoint, persona, device, whose names go into model files),
    NUL characters are removed from the names (netCDF cannot store them; a name that becomes
    blank is missing) and ``nul[key]`` receives the mask of rows that held one.

    Encodes first and cleans only the dictionary: whitespace is trimmed there, values that
    become equal are merged, blanks map to -1. With ``sort`` the vocabulary comes out sorted, so
    codes do not depend on row order (touchpoints, personas); without it (customer ids, up to
    millions) a dictionary that is already clean is used as it is, in first-appearance order
    (codes int64); sorted codes come as ``dtype``. In that case, with ``grouped`` (a dict), when
    the sorting encoder (:func:`journeymodel.data.encoding.group_ids`) took the column, no id is
    null and none needs cleaning, ``codes`` is ``None``: ``grouped`` receives ``order`` (the
    rows stably sorted by code) and ``keys`` (their codes in that order) instead, and the
    vocabulary may come as a numpy str array (the same values) instead of objects.
    ``hash_memory``: see :func:`journeymodel.data.encoding.group_ids`.
    """
    found = None
    if pa.types.is_dictionary(arr.type):
        enc = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    elif sort or grouped is not None and (
            found := group_ids(arr, hash_memory=hash_memory)) is None:
        # touchpoints, personas, devices: few values, pyarrow's hash table is in cache (and
        # ids the sorting route cannot take)
        enc = pc.dictionary_encode(arr)
        enc = enc.combine_chunks() if isinstance(enc, pa.ChunkedArray) else enc
    elif found is not None and found["indices"] is None and (
            found.get("plain") or _clean(found["dictionary"])):
        # no null, nothing to clean: the rows grouped by code are all the caller needs
        grouped.update(order=found["order"], keys=found["keys"])
        vocab = found.get("unicode")  # the same text as str, without Python objects
        if vocab is None:
            vocab = texts(found["dictionary"])
        return None, vocab
    else:  # equal to pc.dictionary_encode, faster for short high-cardinality text
        enc = dictionary_encode(arr) if found is None else dictionary_array(found)
    dictionary = pc.cast(enc.dictionary, pa.string()) if not (
        pa.types.is_string(enc.dictionary.type)) else enc.dictionary
    if not sort and _clean(dictionary):
        return values(enc.indices, fill=-1).astype(np.int64), texts(dictionary)
    text = as_string(pa.chunked_array([enc.dictionary]))
    has_nul = None
    if nul is not None and pc.any(pc.match_substring(text, "\x00")).as_py():
        has_nul = np.append(flags(pc.match_substring(text, "\x00")), False)
        text = pc.utf8_trim_whitespace(pc.replace_substring(text, "\x00", ""))
    raw = texts(text)
    raw[np.equal(raw, None)] = ""  # nulls (Arrow text: None, never NaN)
    vocab, remap = np.unique(raw.astype(str), return_inverse=True)
    blank = vocab == ""
    new = np.cumsum(~blank) - 1
    remap = np.append(np.where(blank[remap], -1, new[remap]), -1)  # last slot: null index
    indices = values(enc.indices, fill=len(raw))
    if has_nul is not None:
        nul[key] = lookup(has_nul, indices)
    codes = lookup(remap.astype(dtype), indices)  # by blocks: no 64-bit copy of the indices
    vocab = vocab[~blank].astype(object)
    return codes, vocab


def _clean(dictionary: pa.Array) -> bool:
    """No value of the (text) dictionary has surrounding whitespace or is blank."""
    if not pa.types.is_string(dictionary.type):
        dictionary = pc.cast(dictionary, pa.string())
    shortest = pc.min(pc.binary_length(dictionary)).as_py()  # None: no value
    return bool(pc.all(pc.equal(pc.utf8_trim_whitespace(dictionary), dictionary)).as_py()
                and shortest != 0)


#: Rows :func:`compact` looks at first: a few labels (touchpoints) are usually all among them.
_HEAD = 1 << 12


def compact(codes: np.ndarray, vocab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop vocabulary entries no kept row uses; keeps order, -1 stays -1.

    Examples
    --------
    >>> c, v = compact(np.array([2, -1, 2, 0]), np.array(["a", "b", "c"]))
    >>> c.tolist(), v.tolist()
    ([1, -1, 1, 0], ['a', 'c'])
    """
    used = np.zeros(len(vocab) + 1, bool)
    used[codes[:_HEAD] + 1] = True  # every entry used by the first rows: no pass over all
    if not used[1:].all():
        used[codes + 1] = True
    used = used[1:]
    if used.all():
        return codes, vocab
    new = np.cumsum(used) - 1
    return np.where(codes >= 0, new[np.maximum(codes, 0)], -1), vocab[used]


#: Largest magnitude of a value or score read as a number: beyond 1e15 float64 no longer holds
#: cents, and sums of such values overflow; larger numbers are export errors (invalid fields).
MAX_FIELD = 1e15


def numeric(arr: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Parse a column as float64: (values with NaN for missing or invalid, mask of
    present-but-invalid). Text that is not a number, ``inf``, ``-inf``, ``nan`` written out
    and magnitudes above :data:`MAX_FIELD` are invalid; a null (or a float NaN, pandas'
    missing value) is missing."""
    if pa.types.is_decimal(arr.type) or pa.types.is_boolean(arr.type):
        arr = pc.cast(arr, pa.float64())
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        vals = floats(arr)
        with np.errstate(invalid="ignore"):
            bad = ~(np.abs(vals) <= MAX_FIELD) & ~np.isnan(vals)
        return (np.where(bad, np.nan, vals) if bad.any() else vals), bad
    if pa.types.is_null(arr.type):
        return np.full(len(arr), np.nan), np.zeros(len(arr), bool)
    s = as_string(arr)
    present = flags(pc.and_(pc.is_valid(s), pc.not_equal(s, scalar("", s.type))))
    vals = _text_numbers(s, present)
    if vals is None:  # some text is not a number: pandas tells which
        import pandas as pd

        vals = pd.to_numeric(pd.Series(texts(s)), errors="coerce")
        vals = vals.to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = present & ~(np.abs(vals) <= MAX_FIELD)
    return np.where(bad, np.nan, vals), bad


def _text_numbers(s: pa.ChunkedArray, present: np.ndarray) -> np.ndarray | None:
    """Text read as float64 by Arrow when every present value is a number (nulls NaN):
    what ``pd.to_numeric`` reads for that text (zeros as +0); ``None`` if some value is not
    one, or is blank."""
    if int(np.count_nonzero(present)) != len(s) - s.null_count:
        return None
    try:
        vals = floats(pc.cast(s, pa.float64()))
    except pa.ArrowInvalid:
        return None
    vals += 0.0  # zeros as +0 (pandas reads "-0" as 0.0 or -0.0 by column); others stay
    return vals
