"""A fast 64-bit hash of many short strings (customer ids) held in Arrow's buffers."""

from __future__ import annotations

import numpy as np

__all__ = ["fnv1a", "splitmix", "splitmix_inplace", "text_hashes"]

#: From this many bytes :func:`fnv1a` runs compiled (numba, imported then: 0.4 s, and scipy
#: with it); below, numpy passes over the byte positions cost less than that import.
NUMBA_BYTES = 1 << 25

_OFFSET = np.uint64(0xCBF29CE484222325)
_PRIME = np.uint64(0x100000001B3)
_C1 = np.array([0xBF58476D1CE4E5B9], np.uint64)
_C2 = np.array([0x94D049BB133111EB], np.uint64)


_compiled = None


def _numba_fnv1a():
    """The compiled loop (numba imported on first use only)."""
    global _compiled
    if _compiled is None:
        import numba

        @numba.njit(cache=True, nogil=True)
        def _fnv1a(offsets, data, out):  # pragma: no cover
            for i in range(len(out)):
                h = _OFFSET
                for j in range(offsets[i], offsets[i + 1]):
                    h = (h ^ np.uint64(data[j])) * _PRIME
                out[i] = np.int64(h & np.uint64(0x7FFFFFFFFFFFFFFF))

        _compiled = _fnv1a
    return _compiled


def _fnv1a_numpy(offsets: np.ndarray, data: np.ndarray, out: np.ndarray) -> None:
    """The same hashes by one numpy pass per byte position: the strings sorted longest first,
    position j updates the hashes of the strings longer than j (a prefix, contiguous)."""
    n = len(out)
    if n == 0:
        return
    start, length = offsets[:-1], np.diff(offsets)
    order = np.argsort(-length, kind="stable")
    first = start[order]
    longer = n - np.cumsum(np.bincount(length, minlength=int(length.max()) + 1))
    h = np.full(n, _OFFSET, np.uint64)
    for j, count in enumerate(longer[:-1].tolist()):  # strings longer than j: the first count
        part = h[:count]
        part ^= data[first[:count] + j]
        part *= _PRIME
    h &= np.uint64(0x7FFFFFFFFFFFFFFF)
    out[order] = h.view(np.int64)


def fnv1a(offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """FNV-1a of each string ``data[offsets[i]:offsets[i + 1]]``, as non-negative int64.

    Examples
    --------
    >>> data = np.frombuffer(b"abab", np.uint8)
    >>> h = fnv1a(np.array([0, 2, 4]), data)
    >>> bool(h[0] == h[1])
    True
    """
    out = np.empty(len(offsets) - 1, np.int64)
    offsets = offsets.astype(np.int64, copy=False)
    if len(data) >= NUMBA_BYTES:
        _numba_fnv1a()(offsets, data, out)
    else:
        _fnv1a_numpy(offsets, data, out)
    return out


def text_hashes(values: np.ndarray) -> np.ndarray:
    """:func:`fnv1a` of each value's UTF-8 text (customer ids as numpy ``str``), without
    Arrow's ``pa.array`` (which imports pandas): an ASCII ``str`` array is read as its
    code points, other text is encoded by numpy.

    Examples
    --------
    >>> a = text_hashes(np.array(["ab", "é", ""]))
    >>> b = fnv1a(np.array([0, 2, 4, 4]), np.frombuffer("abé".encode(), np.uint8))
    >>> a.tolist() == b.tolist()
    True
    """
    values = np.asarray(values)
    if values.dtype.kind != "U":
        values = values.astype(str)
    n = len(values)
    width = values.dtype.itemsize // 4
    if n == 0 or width == 0:
        return fnv1a(np.zeros(n + 1, np.int64), np.zeros(0, np.uint8))
    points = np.ascontiguousarray(values).view(np.uint32).reshape(n, width)
    if int(points.max()) < 0x80:  # ASCII: one byte per code point
        length = np.strings.str_len(values)
        chars = points
    else:
        encoded = np.strings.encode(values, "utf-8")
        length = np.strings.str_len(encoded)
        chars = encoded.view(np.uint8).reshape(n, encoded.dtype.itemsize)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(length, out=offsets[1:])
    data = chars[np.arange(chars.shape[1]) < length[:, None]].astype(np.uint8)
    return fnv1a(offsets, data)


def splitmix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser of a uint64 array: a bijection that scatters every input bit (a
    new array; wraps modulo 2**64). The held-out split and the forecast's chance hash with it.

    Examples
    --------
    >>> int(splitmix(np.array([0], np.uint64))[0])
    0
    >>> len(set(splitmix(np.arange(1000, dtype=np.uint64)).tolist()))
    1000
    """
    return splitmix_inplace(np.array(z, np.uint64, copy=True))


def splitmix_inplace(z: np.ndarray) -> np.ndarray:
    """:func:`splitmix` in place of the uint64 array ``z`` (returned)."""
    z ^= z >> np.uint64(30)
    z *= _C1
    z ^= z >> np.uint64(27)
    z *= _C2
    z ^= z >> np.uint64(31)
    return z
