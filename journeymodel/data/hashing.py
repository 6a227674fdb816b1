"""A fast 64-bit hash of many short strings (customer ids) held in Arrow's buffers."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["fnv1a", "splitmix", "splitmix_inplace"]

_OFFSET = np.uint64(0xCBF29CE484222325)
_PRIME = np.uint64(0x100000001B3)
_C1 = np.array([0xBF58476D1CE4E5B9], np.uint64)
_C2 = np.array([0x94D049BB133111EB], np.uint64)


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
