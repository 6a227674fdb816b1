"""A fast 64-bit hash of many short strings (customer ids) held in Arrow's buffers."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["fnv1a"]

_OFFSET = np.uint64(0xCBF29CE484222325)
_PRIME = np.uint64(0x100000001B3)


@numba.njit(cache=True, nogil=True)
def _fnv1a(offsets: np.ndarray, data: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    for i in range(len(out)):
        h = _OFFSET
        for j in range(offsets[i], offsets[i + 1]):
            h = (h ^ np.uint64(data[j])) * _PRIME
        out[i] = np.int64(h & np.uint64(0x7FFFFFFFFFFFFFFF))


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
    _fnv1a(offsets.astype(np.int64, copy=False), data, out)
    return out
