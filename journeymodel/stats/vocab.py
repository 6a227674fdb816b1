"""Vocabularies of statistics: aligning two name tuples so that statistics of any parts add up.

Journeys store touchpoints, personas and devices as codes into sorted name tuples, so two parts
of one log (two files, two Dask partitions) can know different names. Statistics add by mapping
both sides onto the sorted union of their names; as the union of sorted tuples is sorted, the
result does not depend on the order in which parts are added.
"""

from __future__ import annotations

import numpy as np


def align(a: tuple[str, ...], b: tuple[str, ...]
          ) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """The sorted union of two vocabularies and where each side's codes go in it.

    Parameters
    ----------
    a, b : tuple of str
        Vocabularies (each without repeats).

    Returns
    -------
    union : tuple of str
        ``sorted(set(a) | set(b))``.
    index_a, index_b : ndarray of int64
        ``union[index_a[i]] == a[i]`` and ``union[index_b[j]] == b[j]``.

    Examples
    --------
    >>> union, ia, ib = align(("email", "web"), ("call", "web"))
    >>> union, ia.tolist(), ib.tolist()
    (('call', 'email', 'web'), [1, 2], [0, 2])
    """
    union = tuple(sorted(set(a) | set(b)))
    names = np.array(union, dtype=object)
    return (union, np.searchsorted(names, np.array(a, dtype=object)).astype(np.int64),
            np.searchsorted(names, np.array(b, dtype=object)).astype(np.int64))


def union(a: tuple[str, ...], b: tuple[str, ...]
          ) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """:func:`align`, except that equal vocabularies stay as they are
    (no re-sorting: stage names keep their order, and a statistic plus one of the same names
    keeps its layout).

    Examples
    --------
    >>> union(("S2", "S1"), ("S2", "S1"))[0], union(("b",), ("a",))[0]
    (('S2', 'S1'), ('a', 'b'))
    """
    if tuple(a) == tuple(b):
        same = np.arange(len(a), dtype=np.int64)
        return tuple(a), same, same
    return align(tuple(a), tuple(b))


def recode(codes: np.ndarray, index: np.ndarray, missing: int = -1) -> np.ndarray:
    """Codes into a vocabulary mapped through ``index`` (from :func:`align`); ``missing``
    codes (unknown, -1) stay as they are.

    Examples
    --------
    >>> recode(np.array([0, 1, -1]), np.array([2, 5])).tolist()
    [2, 5, -1]
    """
    codes = np.asarray(codes)
    if len(index) == 0:
        return codes.copy()
    out = index[np.where(codes == missing, 0, codes)].astype(codes.dtype, copy=False)
    return np.where(codes == missing, codes, out)
