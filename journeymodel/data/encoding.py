"""Dictionary encoding of high-cardinality text (customer ids) without a hash table.

``pyarrow.compute.dictionary_encode`` of 8M ids with 1M distinct values costs seconds: every row
probes a hash table far larger than the cache. Short ids (``c123456``, numbers written as text,
up to :data:`MAX_BYTES` bytes) are instead packed into words (Arrow pads them with NUL bytes),
hashed to 64 bits, and one sort of the hashes' high bits (with the row number in the low bits)
brings equal ids together; the values of neighbouring rows are then compared exactly, so ids
that share a hash are told apart (sorted by value within it). The result is the same
dictionary encoding as pyarrow's: the dictionary in first-appearance order, nulls as null
indices. Longer ids fall back to pyarrow.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
import pyarrow as pa

from journeymodel.data import compute as pc
from journeymodel.data.arrow_numpy import flags, int_array, scalar

__all__ = ["BLOCK", "MAX_BYTES", "MIN_ROWS", "SORTED_THREAD_ROWS", "THREAD_ROWS",
           "dictionary_array", "dictionary_encode", "group_ids"]

#: Longest id (in UTF-8 bytes) packed into an integer key; longer ids use pyarrow's encoder.
MAX_BYTES = 16

#: Below this many rows pyarrow's hash table fits in cache and is as fast.
MIN_ROWS = 1 << 16

#: From this many rows, the ids' bytes, hashes and comparisons are made in two threads.
THREAD_ROWS = 1 << 20

#: From this many rows, the passes after the sort (the exact comparisons, the order by first
#: appearance) run in two threads: by then the other columns are read (the thread beside the
#: encoder in :func:`journeymodel.data.events.events_from_table` from 256k rows is done).
SORTED_THREAD_ROWS = 1 << 18

#: Rows per block of the passes over the ids' hashes and values (512 KiB of each array: the
#: passes over a block stay in a core's own cache, and their scratch memory is small).
BLOCK = 1 << 16


def dictionary_encode(arr: pa.ChunkedArray | pa.Array, *, min_rows: int | None = None,
                      grouped: dict | None = None) -> pa.DictionaryArray:
    """``pc.dictionary_encode(arr).combine_chunks()`` for a text column, by sorting.

    Parameters
    ----------
    arr : pyarrow string array (chunked or not)
    min_rows : int, optional
        Shorter columns go to pyarrow directly (default :data:`MIN_ROWS`).
    grouped : dict, optional
        When the sort ran and no value is null, receives ``order`` (the rows stably sorted by
        index: ``np.argsort(indices, kind="stable")``) and ``keys`` (the indices in that
        order), which the sort gives almost for free; and, when also every value is ASCII,
        ``unicode``: the dictionary as a numpy str array (as ``astype(str)`` of its values).

    Returns
    -------
    pyarrow.DictionaryArray
        int32 indices (null where the value is null), the distinct values in order of first
        appearance: equal to pyarrow's encoding.

    Examples
    --------
    >>> enc = dictionary_encode(pa.array(["b", None, "a", "b", ""]), min_rows=0)
    >>> enc.dictionary.to_pylist(), enc.indices.to_pylist()
    (['b', 'a', ''], [0, None, 1, 0, 2])
    """
    chunked = arr if isinstance(arr, pa.ChunkedArray) else pa.chunked_array([arr])
    found = group_ids(chunked, min_rows=min_rows)
    if found is None:
        return _pyarrow(chunked)
    if grouped is not None and found["indices"] is None:
        grouped.update((k, found[k]) for k in ("order", "keys", "unicode") if k in found)
    return dictionary_array(found)


def dictionary_array(found: dict) -> pa.DictionaryArray:
    """:func:`group_ids`'s result as a pyarrow DictionaryArray (the codes put back in row
    order where it gave them grouped)."""
    indices = found["indices"]
    if indices is None:
        indices = np.empty(len(found["order"]), np.int32)
        indices[found["order"]] = found["keys"]
    return pa.DictionaryArray.from_arrays(int_array(indices, found["null"]),
                                          found["dictionary"])


def group_ids(arr: pa.ChunkedArray | pa.Array, *, min_rows: int | None = None,
              hash_memory=None) -> dict | None:
    """The sorting route of :func:`dictionary_encode`, without per-row codes when no value is
    null (at 8M rows they cost a scatter and memory that grouping rows does not need).

    ``hash_memory``, optional: a callable giving a 64-bit integer array of one item per row
    to hash into (it may wait for another thread that touches that memory meanwhile); an
    array of another size or type is not used.

    Returns
    -------
    dict or None
        ``None`` when the column is not text, shorter than ``min_rows`` (default
        :data:`MIN_ROWS`), or some id longer than :data:`MAX_BYTES`: pyarrow's encoder is
        then the one to use. Else ``dictionary`` (the distinct values in order of first
        appearance, a pyarrow array) and ``null`` (mask of null rows, or ``None``); with a
        null, ``indices`` (int32 codes, -1 where null); without one, ``indices`` is ``None``
        and ``order`` (the rows stably sorted by code), ``keys`` (their codes in that order)
        and, when every value is ASCII, ``unicode`` (the dictionary as a numpy str array)
        describe the codes instead; then ``plain`` is True when no value is empty or can
        lose whitespace to a trim (False: not known).
    """
    chunked = arr if isinstance(arr, pa.ChunkedArray) else pa.chunked_array([arr])
    n = len(chunked)
    text = pa.types.is_string(chunked.type) or pa.types.is_large_string(chunked.type)
    if not text or n < max(MIN_ROWS if min_rows is None else min_rows, 1) or n >= 2**31:
        return None
    packed = _pack(chunked)
    if packed is None:
        return None
    return _encode_sorted(chunked, _hash_key(*packed, memory=hash_memory), packed)


def _pyarrow(chunked: pa.ChunkedArray) -> pa.DictionaryArray:
    enc = pc.dictionary_encode(chunked)
    return enc.combine_chunks() if isinstance(enc, pa.ChunkedArray) else enc


def _pack(chunked: pa.ChunkedArray):
    """Each row's bytes as little-endian uint64 words (zero past its end), its length in bytes
    and its validity (:func:`_lengths`); ``None`` when some value is longer than
    :data:`MAX_BYTES`."""
    chunks = [c for c in chunked.chunks if len(c)]
    n = len(chunked)
    found = _lengths(chunks, n)
    if found is None:
        return None
    length, valid = found
    n_words = max(1, -(-_top(length) // 8))
    words = np.empty((n_words, n), np.uint64)
    pieces = _cut(chunks, n // 2)  # a column in one chunk is packed by two threads too
    starts = np.cumsum([0] + [len(piece) for piece in pieces])
    nul = [False] * len(pieces)

    def pack(first: int, stop: int) -> None:  # pieces first..stop-1
        for c in range(first, stop):
            piece, at = pieces[c], int(starts[c])
            m = len(piece)
            offsets = _offsets(piece)
            data = piece.buffers()[2]
            raw = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
            used = raw[int(offsets[0]):int(offsets[-1])]
            nul[c] = bool(used.size) and int(used.min()) == 0  # some value holds a NUL byte
            width = _same_width(length[at:at + m], piece.null_count)
            if width:  # every value of the piece has this many bytes: no padding needed
                _fixed_width_words(raw, int(offsets[0]), width, words[:, at:at + m])
            elif not _pad_words(piece, words[:, at:at + m]):
                for j in range(n_words):
                    _gather_words(raw, offsets[:-1].astype(np.int64) + 8 * j,
                                  length[at:at + m] - 8 * j, words[j, at:at + m])

    middle = int(np.searchsorted(starts, n // 2))
    _in_two_threads(pack, [(0, middle), (middle, len(pieces))], n)
    # a list: the encoder lets go of the arrays as soon as it can
    return [words, length, valid, any(nul)]


def _lengths(chunks: list, n: int):
    """Each row's length in bytes (0 where null) and validity, or ``None`` when some value is
    longer than :data:`MAX_BYTES`. While every value so far has the same length (and none is
    null) they are a read-only constant broadcast over the rows: no memory per row."""
    length = valid = None
    width, at = -1, 0
    for chunk in chunks:
        m = len(chunk)
        part = np.diff(_offsets(chunk))
        if chunk.null_count:
            if valid is None:
                valid = np.ones(n, bool)
            valid[at:at + m] = flags(pc.is_valid(chunk))
            part[~valid[at:at + m]] = 0
        top = int(part.max())
        if top > MAX_BYTES:
            return None
        if length is None and (width < 0 or width == top) and int(part.min()) == top:
            width = top  # one length still: nothing to store
        else:
            if length is None:  # checked below MAX_BYTES before it is stored
                length = np.empty(n, np.int32)
                length[:at] = max(width, 0)
            length[at:at + m] = part
        at += m
    if length is None:
        length = np.broadcast_to(np.int32(max(width, 0)), (n,))
    return length, np.broadcast_to(True, (n,)) if valid is None else valid


def _constant(a: np.ndarray) -> bool:
    """``a`` is one value broadcast over its rows (:func:`_lengths`' constants)."""
    return a.ndim == 1 and a.strides == (0,)


def _all(mask: np.ndarray) -> bool:
    """``mask.all()``, at once for a broadcast constant."""
    return bool(mask[0]) if _constant(mask) and len(mask) else bool(mask.all())


def _top(length: np.ndarray) -> int:
    """``length.max(initial=0)``, at once for a broadcast constant."""
    return int(length[0]) if _constant(length) and len(length) else int(length.max(initial=0))


def _offsets(chunk: pa.Array) -> np.ndarray:
    """The value offsets of a string array (slice included), as numpy, without a copy."""
    off_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    return np.frombuffer(chunk.buffers()[1], off_type)[chunk.offset:chunk.offset + len(chunk) + 1]


def _same_width(length: np.ndarray, null_count: int) -> int:
    """The byte length every value of a piece has (0 if they differ, or some is null)."""
    if null_count or not len(length):
        return 0
    width = int(length[0])
    if _constant(length):
        return width
    return width if int(length.min()) == width == int(length.max()) else 0


def _fixed_width_words(raw: np.ndarray, start: int, width: int, out: np.ndarray) -> None:
    """``out`` (``(n_words, m)``): the ``m`` values of ``width`` bytes each that follow one
    another in ``raw`` from ``start``, as words (zero past each value's end). Each word is an
    unaligned load through a strided view of ``raw``, masked: no copy of the text, no index
    (800k ids ``c123456``: about a tenth of the time of padding them with Arrow). The last
    rows, whose loads would read past the end of ``raw``, come from a zero-padded copy."""
    n_words, m = out.shape
    span = 8 * n_words  # bytes loaded from a value's start
    safe = min(m, max(0, (len(raw) - start - span) // width + 1))
    _strided_words(raw, start, width, out[:, :safe])
    if safe < m:
        begin, stop = start + safe * width, start + m * width
        tail = np.zeros(stop - begin + span, np.uint8)
        tail[:stop - begin] = raw[begin:stop]
        _strided_words(tail, 0, width, out[:, safe:])


def _strided_words(raw: np.ndarray, start: int, width: int, out: np.ndarray) -> None:
    """:func:`_fixed_width_words` for rows whose loads all lie within ``raw``."""
    n_words, m = out.shape
    if not m:
        return
    for j in range(n_words):
        view = np.ndarray((m,), "<u8", buffer=raw, offset=start + 8 * j, strides=(width,))
        np.bitwise_and(view, _LOW_BYTES[min(max(width - 8 * j, 0), 8)], out=out[j])


def _pad_words(piece: pa.Array, out: np.ndarray) -> bool:
    """``out`` (``(n_words, m)``): the values of ``piece`` as words, by Arrow padding each
    value with NUL bytes to ``8 * n_words`` bytes (``ascii_rpad`` counts bytes), so that the
    padded bytes are the words, row after row; nulls as empty values. Less CPU than
    gathering the words with numpy by a fancy index and masks (8M tracker ids, one thread:
    0.08-0.10 s against 0.12-0.14 s, and 0.12 s against 0.29 s in fresh memory).
    Returns False, ``out`` untouched, if the padded values are not all of that width."""
    n_words, m = out.shape
    width = 8 * n_words
    if piece.null_count:
        piece = pc.fill_null(piece, scalar("", piece.type))
    padded = pc.ascii_rpad(piece, width=width, padding="\x00")
    offsets = _offsets(padded)
    if int(offsets[-1]) - int(offsets[0]) != width * m:
        return False
    data = np.frombuffer(padded.buffers()[2], np.uint8)[int(offsets[0]):int(offsets[-1])]
    out[...] = data.view("<u8").reshape(m, n_words).T
    return True


def _cut(chunks: list, row: int) -> list:
    """The arrays ``chunks`` with the one holding ``row`` cut in two there (slices)."""
    out, at = [], 0
    for chunk in chunks:
        m = len(chunk)
        if at < row < at + m:
            out += [chunk.slice(0, row - at), chunk.slice(row - at)]
        else:
            out.append(chunk)
        at += m
    return out


def _in_two_threads(fn, parts: list, n: int, threshold: int | None = None) -> None:
    """``fn(*part)`` for each of the two ``parts`` of the rows: in two threads from
    :data:`THREAD_ROWS` rows (numpy releases the GIL; the machines this runs on have cores
    to spare while it waits for the sort), else one after the other."""
    if n < (THREAD_ROWS if threshold is None else threshold):
        for part in parts:
            fn(*part)
        return
    with ThreadPoolExecutor(1) as pool:
        other = pool.submit(fn, *parts[1])
        try:
            fn(*parts[0])
        finally:
            wait([other])
        other.result()


def _gather_words(raw: np.ndarray, index: np.ndarray, left: np.ndarray,
                  out: np.ndarray) -> None:
    """``out[i]``: the ``left[i]`` (clipped to 0..8) bytes of ``raw`` from ``index[i]`` as a
    little-endian uint64, zero above them. ``index`` is non-decreasing; the few words that
    would read past the end of ``raw`` come from a zero-padded copy of its tail."""
    safe = int(np.searchsorted(index, len(raw) - 8, side="right"))
    if safe:
        view = np.ndarray((len(raw) - 7,), dtype="<u8", buffer=raw, strides=(1,))
        out[:safe] = view[index[:safe]]
    if safe < len(index):
        base = min(int(index[safe]), len(raw))
        tail = np.zeros(len(raw) - base + 16, np.uint8)
        tail[:len(raw) - base] = raw[base:]
        view = np.ndarray((len(tail) - 7,), dtype="<u8", buffer=tail, strides=(1,))
        out[safe:] = view[np.minimum(index[safe:] - base, len(tail) - 8)]
    out &= _LOW_BYTES[np.clip(left, 0, 8)]


#: ``_LOW_BYTES[k]``: the mask keeping the low k bytes of a uint64.
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)


def _hash_key(words, length, valid, nul, memory=None) -> np.ndarray:
    """One int64 per row: the top ``63 - bits`` bits of a 64-bit hash of the row's value
    (validity, length, bytes), shifted left by ``bits``, the row number in the low ``bits``
    bits (``hash << bits | row``: what the encoder sorts). Equal values have equal hashes;
    distinct values may share one (at 1M distinct values and 40 bits, about one pair in two
    logs): :func:`_exact_runs` checks every run.
    The hash is computed in two threads, half the rows each.

    It replaces an exact mixed-radix key (the distinct values of every pair of byte positions
    marked, ranked and combined): the hash and its check cost about as much (8M-row tracker
    log, one thread: 0.24-0.32 s against 0.27-0.33 s), but that key was too wide for ids whose
    bytes vary much (random 16-byte ids went to pyarrow's hash table: seconds at 8M rows)."""
    n = len(length)
    bits = max(int(n - 1).bit_length(), 1)
    shift = np.uint64(64 - (63 - bits))
    steps = np.arange(min(BLOCK, n), dtype=np.uint64)
    key = memory() if memory is not None else None  # (see group_ids)
    if key is None or key.shape != (n,) or key.dtype.itemsize != 8 or key.dtype.kind not in "iu":
        key = np.empty(n, np.uint64)
    key = key.view(np.uint64)

    def hash_rows(lo: int, hi: int) -> None:  # by blocks: the passes stay in the cache
        tmp = np.empty(min(BLOCK, hi - lo), np.uint64)
        for a in range(lo, hi, BLOCK):
            b = min(a + BLOCK, hi)
            h, t = key[a:b], tmp[:b - a]
            np.multiply(length[a:b], _GOLDEN, out=h, dtype=np.uint64, casting="unsafe")
            for j in range(words.shape[0]):
                h ^= words[j, a:b]
                _hash64(h, t)
            if not _all(valid[a:b]):
                h[~valid[a:b]] = _NULL_HASH  # a null is no empty string
            h >>= shift
            h <<= np.uint64(bits)
            np.add(steps[:b - a], np.uint64(a), out=t)  # the row numbers (n < 2**31)
            h |= t

    _in_two_threads(hash_rows, [(0, n // 2), (n // 2, n)], n)
    return key.view(np.int64)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_NULL_HASH = np.uint64(0xD6E8FEB86659FD93)


def _hash64(x: np.ndarray, tmp: np.ndarray) -> None:
    """SplitMix64's finaliser of ``x`` (uint64) in place (``tmp``: scratch of its size)."""
    with np.errstate(over="ignore"):
        for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
            np.right_shift(x, np.uint64(shift), out=tmp)
            x ^= tmp
            x *= np.uint64(mult)
        np.right_shift(x, np.uint64(31), out=tmp)
        x ^= tmp


def _new_hashes(key: np.ndarray, bits: int) -> np.ndarray:
    """Mask of the sorted keys (``hash << bits | row``, non-negative) whose hash differs from
    the previous key's (the first is True): by blocks, with a block of scratch memory."""
    n = len(key)
    start = np.empty(n, bool)
    start[0] = True
    tmp = np.empty(min(BLOCK, n), np.int64)
    for a in range(1, n, BLOCK):  # start[a:b] from keys a-1..b-1
        b = min(a + BLOCK, n)
        t = tmp[:b - a]
        np.bitwise_xor(key[a:b], key[a - 1:b - 1], out=t)  # high bits differ: a new hash
        np.greater_equal(t, 1 << bits, out=start[a:b])
    return start


def _exact_runs(start: np.ndarray, row: np.ndarray, words: np.ndarray, length: np.ndarray,
                valid: np.ndarray, nul: bool) -> np.ndarray:
    """Where a run of equal values starts in the rows sorted by hash (``row``; ``start``: the
    mask of the rows whose hash differs from the previous row's, updated in place and
    returned): a new hash or, within one, a new value (bytes, validity, and length where
    some value holds a NUL byte), compared exactly in that order. Rows of a hash that
    several values share (a collision) are first sorted by value within it, rows kept in
    order (``row`` is reordered in place), so that each value is one run. Returns the mask
    of run starts."""
    new_value = _value_changes(row, words, length, valid, nul)
    clash = new_value & ~start[1:]
    if clash.any():  # distinct values share a hash: sort those hashes' rows by value
        _sort_clashes(row, start, np.flatnonzero(clash) + 1, words, length, valid, nul)
        new_value = _value_changes(row, words, length, valid, nul)
    start[1:] |= new_value
    return start


def _value_columns(rows: np.ndarray, words, length, valid, nul) -> list[np.ndarray]:
    """The columns that make up the values at ``rows`` (gathered)."""
    cols = [np.take(words[j], rows) for j in range(words.shape[0])]
    if not _all(valid):
        cols.append(valid[rows])
    if nul:
        cols.append(length[rows])
    return cols


def _value_changes(row, words, length, valid, nul) -> np.ndarray:
    """``value(row[i + 1]) != value(row[i])`` for each i, exactly; two threads compare half
    the rows each (the gathers in sorted order cost a cache miss per row)."""
    m = max(len(row) - 1, 0)
    changes = np.zeros(m, bool)

    def compare(lo: int, hi: int) -> None:  # changes[lo:hi], from rows lo..hi, by blocks
        for a in range(lo, hi, BLOCK):
            b = min(a + BLOCK, hi)
            for col in _value_columns(row[a:b + 1], words, length, valid, nul):
                changes[a:b] |= col[1:] != col[:-1]

    _in_two_threads(compare, [(0, m // 2), (m // 2, m)], len(row), SORTED_THREAD_ROWS)
    return changes


def _sort_clashes(row, start, clashes, words, length, valid, nul) -> None:
    """Sort the rows of each hash run holding a position of ``clashes`` by (value, row)."""
    first = np.flatnonzero(start)
    stop = np.append(first[1:], len(row))
    runs = np.unique(np.searchsorted(first, clashes, side="right") - 1)
    sizes = stop[runs] - first[runs]
    run_of = np.repeat(np.arange(len(runs)), sizes)
    pos = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    pos += np.repeat(first[runs], sizes)
    rows = row[pos]
    cols = _value_columns(rows, words, length, valid, nul)
    row[pos] = rows[np.lexsort([rows, *cols[::-1], run_of])]


def _encode_sorted(chunked: pa.ChunkedArray, key: np.ndarray, packed: list) -> dict:
    """Sort ``hash << bits | row`` (``key``: :func:`_hash_key`'s); the runs of equal values
    (:func:`_exact_runs`: equal hashes, split where the values differ) start at their first
    appearance; rank the runs by it. The dictionary is rebuilt from the first rows' words.
    Returns :func:`group_ids`'s dict.

    ``key`` is overwritten (it becomes the sorted rows, then their codes) and ``packed``
    (``_pack``'s words, lengths and validity) emptied: each array is let go of once used, to
    keep the peak memory low (at 8M rows, fresh memory costs the kernel about as much as the
    work)."""
    words, length, valid, nul = packed
    packed.clear()
    n = len(key)
    bits = max(int(n - 1).bit_length(), 1)  # as in _hash_key
    key.sort()
    new_hash = _new_hashes(key, bits)
    row = key  # the sorted rows, in place of the keys: int64, the order's own type
    row &= (1 << bits) - 1
    del key
    boundary = _exact_runs(new_hash, row, words, length, valid, nul)
    starts = np.flatnonzero(boundary)
    first = row[starts]  # first row of each run, runs in key order
    keep = valid[first]  # the null run (if any) gets no dictionary entry
    appearance = _by_first_row(np.where(keep, first, n))  # null run last
    n_codes = int(np.count_nonzero(keep))
    rows = first[appearance[:n_codes]]
    out: dict = {"indices": None, "null": None if _all(valid) else ~valid}

    def dictionary(gathered: bool = False) -> None:  # beside the order, in another thread
        nonlocal words, length
        if not gathered:  # the dictionary's words: let go of the rows'
            words, length = words[:, rows], length[rows]
        out["dictionary"] = _strings(words, length, chunked.type)
        if out["null"] is None:
            text = _unicode(words, length)
            if text is not None:
                out["unicode"] = text
                out["plain"] = _plain(words, length)

    if out["null"] is None and SORTED_THREAD_ROWS <= n < THREAD_ROWS:
        # the dictionary's words gathered first, then the rows' words are free memory: the
        # order goes there while the dictionary is made beside it
        spare = words[0].view(np.int64) if len(words) == 1 else None
        words, length = words[:, rows], length[rows]
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(dictionary, True)
            try:
                _grouped_order(out, row, starts, appearance, n, order=spare)
            finally:
                wait([future])
            future.result()
        return out
    if out["null"] is not None or n < THREAD_ROWS:
        spare = words[0].view(np.int64) if len(words) == 1 and out["null"] is None else None
        dictionary()  # then the rows' words are free memory: the order goes there
    else:
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(dictionary)
            try:
                _grouped_order(out, row, starts, appearance, n)
            finally:
                wait([future])
            future.result()
        return out
    if out["null"] is not None:  # each row's code, -1 where null
        code = np.empty(len(first), np.int32)
        code[appearance] = np.arange(len(first), dtype=np.int32)
        code[appearance[n_codes:]] = -1
        run = np.cumsum(boundary, dtype=np.int32)
        run -= 1
        out["indices"] = np.empty(n, np.int32)
        out["indices"][row] = code[run]
        return out
    del boundary
    _grouped_order(out, row, starts, appearance, n, order=spare)
    return out


def _by_first_row(first: np.ndarray) -> np.ndarray:
    """``np.argsort(first)`` for distinct non-negative row numbers (the runs' first rows):
    a sort of ``first << bits | run`` (1M runs: a third to a fifth of the argsort's time).

    Examples
    --------
    >>> _by_first_row(np.array([7, 0, 3])).tolist()
    [1, 2, 0]
    """
    m = len(first)
    bits = max(int(m - 1).bit_length(), 1)  # rows and runs below 2**31: 62 bits at most
    packed = first.astype(np.int64) << bits
    packed |= np.arange(m, dtype=np.int64)
    packed.sort()
    packed &= (1 << bits) - 1
    return packed


def _grouped_order(out: dict, row: np.ndarray, starts: np.ndarray, appearance: np.ndarray,
                   n: int, order: np.ndarray | None = None) -> None:
    """``out["order"]``: the runs of the sorted rows (``row``, runs from ``starts``) moved
    into first-appearance order (``appearance``), rows within a run kept: the stable sort by
    code, by a gather whose source is contiguous within each run; ``out["keys"]``: the codes
    in that order, written over ``row`` (the caller's, no longer needed). ``order``: int64
    memory of ``n`` items to write the order into (a new array by default). By blocks of
    rows (the indices of a block stay in the cache); from :data:`THREAD_ROWS` rows two
    threads make half the rows each."""
    sizes = np.diff(np.append(starts, n))[appearance]
    new_start = np.zeros(len(starts) + 1, np.int64)  # and n after the last run
    np.cumsum(sizes, out=new_start[1:])
    shift = starts[appearance] - new_start[:-1]  # run r's rows come from its rows + shift[r]
    if order is None:
        order = np.empty(n, np.int64)
    steps = np.arange(min(BLOCK, n), dtype=np.int64)

    def runs(a: int, b: int):  # the runs over order[a:b], and how many of their rows it holds
        r0 = int(np.searchsorted(new_start, a, side="right")) - 1
        r1 = int(np.searchsorted(new_start, b, side="left"))
        held = np.minimum(new_start[r0 + 1:r1 + 1], b) - np.maximum(new_start[r0:r1], a)
        return r0, r1, held

    def place(lo: int, hi: int) -> None:
        for a in range(lo, hi, BLOCK):
            b = min(a + BLOCK, hi)
            r0, r1, held = runs(a, b)
            src = np.repeat(shift[r0:r1], held)
            src += steps[:b - a]
            src += a
            np.take(row, src, out=order[a:b], mode="clip")  # valid: no checks, no buffer

    def codes(lo: int, hi: int) -> None:  # once every gather has read ``row``
        for a in range(lo, hi, BLOCK):
            b = min(a + BLOCK, hi)
            r0, r1, held = runs(a, b)
            row[a:b] = np.repeat(steps[:r1 - r0] + r0 if r1 - r0 <= len(steps)
                                 else np.arange(r0, r1), held)

    _in_two_threads(place, [(0, n // 2), (n // 2, n)], n, SORTED_THREAD_ROWS)
    _in_two_threads(codes, [(0, n // 2), (n // 2, n)], n, SORTED_THREAD_ROWS)
    out["order"], out["keys"] = order, row


def _unicode(words: np.ndarray, length: np.ndarray) -> np.ndarray | None:
    """The values as a numpy unicode array (``np.asarray(values, object).astype(str)``), built
    from the packed bytes when every value is ASCII (one UTF-32 unit per byte); else None."""
    m = len(length)
    width = int(length.max(initial=0))
    if m == 0 or width == 0:
        return None
    as_bytes = np.ascontiguousarray(words.T).view(np.uint8).reshape(m, -1)[:, :width]
    if int(as_bytes.max()) >= 0x80:
        return None
    return np.ascontiguousarray(as_bytes, dtype="<u4").view(f"<U{width}").reshape(m)


#: Bytes that may be (or begin) whitespace a trim removes: ASCII controls and space, and
#: every non-ASCII byte.
_MAYBE_SPACE = np.zeros(256, bool)
_MAYBE_SPACE[np.r_[0:33, 127:256]] = True


def _plain(words: np.ndarray, length: np.ndarray) -> bool:
    """No value is empty, and none begins or ends with a byte that may be whitespace (an
    ASCII control or space, or any non-ASCII byte): a dictionary no trim changes. False
    only means "not known"."""
    if not len(length) or int(length.min()) == 0:
        return not len(length)
    first = (words[0] & np.uint64(0xFF)).astype(np.intp)
    at = (length - 1).astype(np.intp)
    word = np.take_along_axis(words, (at // 8)[None, :], axis=0)[0]
    last = ((word >> (8 * (at % 8)).astype(np.uint64)) & np.uint64(0xFF)).astype(np.intp)
    return not (_MAYBE_SPACE[first].any() or _MAYBE_SPACE[last].any())


def _strings(words: np.ndarray, length: np.ndarray, type_: pa.DataType) -> pa.Array:
    """A string array from packed words (``(n_words, m)``) and byte lengths."""
    m = len(length)
    if m == 0:
        return pa.array([], type_)
    large = pa.types.is_large_string(type_)
    offsets = np.zeros(m + 1, np.int64 if large else np.int32)
    np.cumsum(length, out=offsets[1:])
    as_bytes = np.ascontiguousarray(words.T).view(np.uint8).reshape(m, -1)
    width = int(length[0])
    if int(length.min()) == width == int(length.max()):  # one width: no mask
        data = np.ascontiguousarray(as_bytes[:, :width]).reshape(-1)
    else:
        data = as_bytes[np.arange(as_bytes.shape[1]) < length[:, None]]
    return pa.Array.from_buffers(type_, m, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
