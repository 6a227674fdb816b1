"""Row order of an event log: stable sort by (customer, time), and exact duplicates.

Used by the event-log reader (:mod:`journeymodel.data.events`); the sorts are tuned for
ingestion speed, see :func:`_stable_argsort`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

#: From this many rows, :func:`take_rows` shares its gathers between two threads.
THREAD_ROWS = 1 << 18


#: Rows :func:`lookup` takes at a time.
LOOKUP_BLOCK = 1 << 16


def lookup(table: np.ndarray, codes: np.ndarray, in_place: bool = False) -> np.ndarray:
    """``table[codes]`` for a small table (negative codes count from its end), by blocks of
    rows: ``np.take`` of a small table takes half the time of indexing by an array, and by
    blocks its copy of int32 codes as 64-bit indices stays small (800k rows: 6.4 MB of fresh
    memory otherwise). ``in_place``: written over ``codes`` (of the table's type).

    Examples
    --------
    >>> lookup(np.array([10, 20, 30], np.int32), np.array([2, 0, -1], np.int32)).tolist()
    [30, 10, 30]
    """
    out = codes if in_place else np.empty(len(codes), table.dtype)
    block = np.empty(min(LOOKUP_BLOCK, len(codes)), table.dtype) if in_place else None
    for a in range(0, len(codes), LOOKUP_BLOCK):
        b = min(a + LOOKUP_BLOCK, len(codes))
        if block is None:
            np.take(table, codes[a:b], out=out[a:b], mode="wrap")
        else:
            np.take(table, codes[a:b], out=block[:b - a], mode="wrap")
            out[a:b] = block[:b - a]
    return out


def customer_time_order(customer: np.ndarray, time: np.ndarray) -> np.ndarray:
    """Stable order by (customer, time): ties keep their input order.

    Examples
    --------
    >>> customer_time_order(np.array([1, 0, 1, 0]), np.array([5.0, 7.0, 2.0, 7.0])).tolist()
    [1, 3, 2, 0]
    """
    order = sort_order(customer, time)[0]
    return np.arange(len(time), dtype=np.int64) if order is None else order


def grouped_codes(grouped: dict) -> np.ndarray:
    """Each row's code (int64) from the rows grouped by code (``order``, ``keys``: see
    :func:`sort_order`).

    Examples
    --------
    >>> grouped_codes({"order": np.array([1, 3, 0, 2]), "keys": np.array([0, 0, 1, 1])})
    array([1, 0, 1, 0])
    """
    codes = np.empty(len(grouped["order"]), np.int64)
    codes[grouped["order"]] = grouped["keys"]
    return codes


def sort_order(customer: np.ndarray | None, time: np.ndarray, grouped: dict | None = None):
    """(:func:`customer_time_order`, the customers in that order), where the first is ``None``
    when the rows are already in order and the second ``None`` when not known without a gather.

    ``grouped``, optional: ``order`` (``np.argsort(customer, kind="stable")``) and ``keys``
    (``customer`` in that order) when the encoder found them; used instead of that sort when
    the rows are in time order. ``customer`` may then be ``None`` (made from them only when
    the rows are not in time order).

    Two cheap checks first: a log already grouped by customer in time order needs no sort, and
    a log in time order (as logs are usually written) needs only a stable sort by customer.
    Otherwise one sort on a composite key: times that are whole numbers with a small span are
    used directly, other times are replaced by their rank first.
    """
    n = len(time)
    if n == 0:
        return None, None
    if customer is None:  # the encoder gave the rows grouped by customer instead of codes
        if bool(np.all(time[1:] >= time[:-1])):
            order, keys = grouped["order"], grouped["keys"]
            head = order[:4096]  # most logs fail at once: no 8M temporaries then
            in_order = bool(np.array_equal(head, np.arange(len(head)))
                            and np.all(order[1:] == order[:-1] + 1))
            return (None if in_order else order), keys
        customer = grouped_codes(grouped)
    c = customer.astype(np.int64, copy=False)
    n_cust = int(c.max()) + 1
    time_sorted = bool(np.all(time[1:] >= time[:-1]))
    if time_sorted or bool(np.all(c[1:] >= c[:-1])):
        if time_sorted:
            if bool(np.all(c[1:] >= c[:-1])):
                return None, None
            if grouped and len(grouped["order"]) == n:
                return grouped["order"], grouped["keys"]
            return _stable_argsort(c, n_cust - 1)
        same = c[1:] == c[:-1]
        if bool(np.all(time[1:][same] >= time[:-1][same])):
            return None, None
    lo, hi = float(time.min()), float(time.max())
    if np.array_equal(time, np.floor(time)) and (hi - lo + 1) * n_cust < 2**62:
        rank, span = (time - lo).astype(np.int64), int(hi - lo) + 1
    else:
        _, rank = np.unique(time, return_inverse=True)
        span = int(rank.max()) + 1
    order, keys = _stable_argsort(c * span + rank, n_cust * span - 1)
    if keys is not None:
        keys //= span  # composite key -> customer
    return order, keys


def _stable_argsort(key: np.ndarray, key_max: int):
    """``np.argsort(key, kind="stable")`` for non-negative int64 keys up to ``key_max``, and
    the sorted keys when they come for free (else ``None``).

    Faster routes with the same order: numpy's radix sort of 16-bit digits when keys fit 32 bits
    (one or two stable passes, least significant digit first); otherwise, when key and row
    number fit 63 bits together, a plain sort of ``key << bits | row`` (sorting values is about
    twice as fast as sorting indices, the row number makes ties stable, and the high bits are
    then the sorted keys). Measured at 0.8M rows: 20 ms, 43 ms and 70 ms for the radix, packed
    and plain stable sorts; at 8M rows the two-pass radix is no faster than the packed sort
    (its gathers leave the cache) and needs more memory, so it is used below 2M rows.
    """
    n = len(key)
    if key_max < 2**16:
        return np.argsort(key.astype(np.uint16), kind="stable"), None
    if key_max < 2**32 and n < 2**21:
        order = np.argsort((key & 0xFFFF).astype(np.uint16), kind="stable")
        low_sorted = key[order]
        high = np.argsort((low_sorted >> 16).astype(np.uint16), kind="stable")
        return order[high], low_sorted[high]
    bits = max(int(n - 1).bit_length(), 1)
    if int(key_max).bit_length() + bits > 63:
        return np.argsort(key, kind="stable"), None
    packed = key << bits
    packed |= np.arange(n, dtype=np.int64)
    packed.sort()
    keys = packed >> bits
    packed &= (1 << bits) - 1
    return packed, keys


def duplicate_rows(idx: np.ndarray, customer: np.ndarray, time: np.ndarray, *keys) -> np.ndarray:
    """Mask over ``idx`` of rows repeating an earlier row on every key (NaN equals NaN).

    ``customer`` and ``time`` are already taken at ``idx`` (sorted by customer, time); the other
    ``keys`` are full columns, ``None`` for absent ones (equal in every row). Only groups
    sharing customer and time can hold duplicates, so the full comparison runs on those few rows
    alone."""
    at = np.flatnonzero(time[1:] == time[:-1])  # a row's time repeats the previous row's
    at = at[customer[at + 1] == customer[at]]  # (usually few: then only those compared)
    cand = np.concatenate([at, at + 1])  # the rows of each tie, in order, once each
    cand.sort()  # (np.union1d would do, but imports numpy.ma on first use: 9 ms)
    cand = cand[np.append(True, cand[1:] != cand[:-1])] if len(cand) else cand
    dup = np.zeros(len(idx), bool)
    if cand.size == 0:
        return dup
    cols = [customer[cand], time[cand]] + [k[idx[cand]] for k in keys if k is not None]
    order = np.lexsort(cols[::-1])
    equal = np.ones(len(cand) - 1, bool)
    for c in cols:
        v = c[order]
        eq = v[1:] == v[:-1]
        if v.dtype.kind == "f":
            eq |= np.isnan(v[1:]) & np.isnan(v[:-1])
        equal &= eq
    # among equal rows the first in input order is kept: cand is in (customer, time, row) order
    # and lexsort is stable, so order[1:][equal] are the later copies
    dup[cand[order[1:][equal]]] = True
    return dup


def take_rows(arrays: list[np.ndarray], index: np.ndarray, *, in_place: bool = False,
              out: list[np.ndarray | None] | None = None) -> list[np.ndarray]:
    """``[a[index] for a in arrays]``, ``index`` integers or a boolean mask.

    Integer gathers are cut in two halves of ``index`` done by two threads from
    :data:`THREAD_ROWS` rows (numpy lets go of the GIL; gathering 8M rows by a permutation
    costs a cache miss per row). A mask dropping a few rows (duplicates) copies the runs of
    kept rows as slices: three times faster than boolean indexing at 8M rows; with
    ``in_place`` (arrays the caller owns and no longer needs) the runs are moved within each
    array, returned as its head: no new memory. ``out`` (integer gathers): arrays to gather
    into, one per array (``None``, or one of another length or type: a new one).

    Examples
    --------
    >>> [a.tolist() for a in take_rows([np.array([5, 6, 7]), np.array([0.5, 1.5, 2.5])],
    ...                                np.array([2, 0]))]
    [[7, 5], [2.5, 0.5]]
    >>> a = np.arange(6)
    >>> take_rows([a], np.array([1, 0, 1, 1, 0, 1], bool), in_place=True)[0].tolist()
    [0, 2, 3, 5]
    """
    if index.dtype == bool:
        return [_compress(a, index, in_place) for a in arrays]
    n = len(index)
    given = list(out or [])[:len(arrays)]
    given += [None] * (len(arrays) - len(given))
    out = [o if o is not None and o.shape == (n,) and o.dtype == a.dtype else np.empty(n, a.dtype)
           for a, o in zip(arrays, given, strict=True)]
    half = n // 2

    def gather(lo: int, hi: int) -> None:
        for a, o in zip(arrays, out, strict=True):  # valid indices: clip skips the checks
            np.take(a, index[lo:hi], out=o[lo:hi], mode="clip")  # (and "raise"'s buffer)

    if n < THREAD_ROWS:
        gather(0, n)
        return out
    with ThreadPoolExecutor(1) as pool:
        other = pool.submit(gather, half, n)
        try:
            gather(0, half)
        finally:
            wait([other])
        other.result()
    return out


#: Up to this many dropped rows, :func:`take_rows` copies the runs between them as slices.
FEW_DROPPED = 1024


def _compress(a: np.ndarray, keep: np.ndarray, in_place: bool) -> np.ndarray:
    """``a[keep]``; by slices between the dropped rows when they are few, moved within ``a``
    itself with ``in_place`` (numpy copies overlapping 1-d slices in the safe direction)."""
    dropped = np.flatnonzero(~keep)
    if len(dropped) > FEW_DROPPED:
        return a[keep]
    out = a if in_place else np.empty(len(a) - len(dropped), a.dtype)
    at, to = 0, 0
    for stop in [*dropped.tolist(), len(a)]:  # at most FEW_DROPPED + 1 slices
        out[to:to + stop - at] = a[at:stop]
        to += stop - at
        at = stop + 1
    return out[:to]
