"""Ingestion's first-call economies (issue 20): ids of one width packed by strided loads, row
lengths and validity kept as a constant while they are one, the order and the codes written
over the encoder's own scratch, labels not compacted when every row is kept, absent value and
persona columns as a read-only constant. Each gives what the general route gives: pyarrow's
dictionary encoding, and the same events and journeys as pyarrow's encoder."""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ingest_encoding import assert_encoded_as_pyarrow

import journeymodel.data.encoding as encoding
from journeymodel.data.columns import compact
from journeymodel.data.encoding import dictionary_encode
from journeymodel.data.events import read_events
from journeymodel.data.journeys import load_journeys
from journeymodel.errors import DataWarning

SETTINGS = settings(max_examples=120, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

# bytes of every kind a packed word must keep apart: NUL inside and at the end, non-ASCII
_ALPHABET = st.sampled_from(["a", "b", "0", "9", "\x00", "é", " "])


@st.composite
def same_width_columns(draw):
    """Values of one width in bytes (1..17: one word, two words, and too long to pack), cut
    into chunks, possibly sliced so a chunk's first value is not at its buffer's start."""
    width = draw(st.integers(1, 17))
    pool = draw(st.lists(st.lists(_ALPHABET, min_size=1, max_size=width), min_size=1,
                         max_size=6))
    words = []
    for chars in pool:  # pad or cut each to exactly ``width`` bytes
        text = "".join(chars).encode()[:width]
        words.append((text + b"z" * width)[:width].decode("utf-8", "replace"))
    words = [w for w in words if len(w.encode()) == width] or ["q" * width]
    n = draw(st.integers(1, 80))
    values = [words[i] for i in draw(st.lists(st.integers(0, len(words) - 1), min_size=n,
                                              max_size=n))]
    cuts = sorted(set(draw(st.lists(st.integers(0, n), max_size=3))) | {0, n})
    large = draw(st.booleans())
    typ = pa.large_string() if large else pa.string()
    arr = pa.chunked_array([pa.array(values[a:b], typ)
                            for a, b in zip(cuts, cuts[1:], strict=False) if b > a], typ)
    if draw(st.booleans()) and n > 1:
        arr, values = arr.slice(1), values[1:]
    return arr, values


@SETTINGS
@given(same_width_columns())
def test_ids_of_one_width_encode_as_pyarrow_does(column):
    arr, values = column
    grouped: dict = {}
    enc = dictionary_encode(arr, min_rows=0, grouped=grouped)
    assert enc.equals(pc.dictionary_encode(arr).combine_chunks())
    if grouped:  # the sorting route: the rows stably sorted by code, and their codes
        order = np.argsort(np.asarray(enc.indices), kind="stable")
        np.testing.assert_array_equal(grouped["order"], order)
        np.testing.assert_array_equal(grouped["keys"], np.asarray(enc.indices)[order])
        assert grouped["order"].dtype == grouped["keys"].dtype == np.int64


@SETTINGS
@given(st.lists(st.tuples(st.integers(1, 9), st.integers(1, 30), st.booleans()), min_size=1,
                max_size=5), st.integers(0, 2**32 - 1))
def test_chunks_of_different_widths_and_nulls(chunks, seed):
    """Each chunk of one width, the widths differing between chunks, or a chunk holding a
    null: the lengths are stored from the first chunk that differs, and the validity from the
    first null, with the earlier rows filled in."""
    rng = np.random.default_rng(seed)
    parts = []
    for width, m, null in chunks:
        vals = ["".join(rng.choice(list("abc"), width)) for _ in range(m)]
        if null:
            vals[int(rng.integers(m))] = None
        parts.append(pa.array(vals, pa.string()))
    arr = pa.chunked_array(parts, pa.string())
    enc = dictionary_encode(arr, min_rows=0)
    assert enc.equals(pc.dictionary_encode(arr).combine_chunks())


def test_values_ending_at_the_end_of_the_buffer():
    """The last values' 8-byte loads would read past the text buffer: they come from a padded
    copy of its tail (a buffer holding exactly the values, no slack)."""
    for width in (1, 3, 7, 8, 9, 15, 16):
        values = [f"{k:0{width}d}"[-width:] for k in range(50)]
        data = "".join(values).encode()
        offsets = np.arange(0, len(data) + 1, width, dtype=np.int32)
        arr = pa.Array.from_buffers(pa.string(), len(values),
                                    [None, pa.py_buffer(offsets), pa.py_buffer(data)])
        words = np.empty((-(-width // 8), len(values)), np.uint64)
        raw = np.frombuffer(arr.buffers()[2], np.uint8)
        assert len(raw) == len(data)
        encoding._fixed_width_words(raw, 0, width, words)
        expected = np.empty_like(words)
        padded = pc.ascii_rpad(arr, width=8 * words.shape[0], padding="\x00")
        expected[...] = np.frombuffer(padded.buffers()[2], "<u8").reshape(len(values), -1).T
        np.testing.assert_array_equal(words, expected)


def test_lengths_are_a_constant_while_one_width():
    arr = pa.chunked_array([pa.array(["ab", "cd"]), pa.array(["ef"])])
    length, valid = encoding._lengths(list(arr.chunks), 3)
    assert length.strides == (0,) and valid.strides == (0,)  # no memory per row
    assert length.tolist() == [2, 2, 2] and valid.tolist() == [True] * 3
    arr = pa.chunked_array([pa.array(["ab", "cd"]), pa.array(["e", None])])
    length, valid = encoding._lengths(list(arr.chunks), 4)
    assert length.tolist() == [2, 2, 1, 0] and valid.tolist() == [True, True, True, False]
    assert encoding._lengths([pa.array(["x" * 17])], 1) is None  # too long to pack


def test_compact_looks_past_the_first_rows():
    """A label first used after the rows :func:`compact` looks at first is kept; one never
    used is dropped."""
    codes = np.r_[np.zeros(5000, np.int64), 3, -1]
    new, vocab = compact(codes, np.array(["a", "b", "c", "d"]))
    assert vocab.tolist() == ["a", "d"] and new[-2:].tolist() == [1, -1]
    new, vocab = compact(np.r_[codes[:10], 1], np.array(["a", "b"]))
    assert vocab.tolist() == ["a", "b"] and new is not None


def _tracker_log(path, n_customers: int, per: int, seed: int = 0) -> None:
    """A tracker-style Parquet log: time order, string ids ``c123456`` (one width), several
    row groups, a touchpoint dictionary, some duplicate rows."""
    rng = np.random.default_rng(seed)
    n = n_customers * per
    cust = rng.integers(0, n_customers, n)
    ids = np.char.add("c", (100000 + cust).astype(str))
    t = np.sort(rng.integers(0, 30 * 86400, n)) * 1_000_000
    labels = np.array(["web", "email", "search", "social", "conversion"])
    tp = labels[rng.choice(5, n, p=[0.3, 0.25, 0.2, 0.2, 0.05])]
    dup = rng.integers(0, n - 1, 20)
    ids[dup + 1], t[dup + 1], tp[dup + 1] = ids[dup], t[dup], tp[dup]
    table = pa.table({"customer_id": ids,
                      "timestamp": pa.array(t, pa.timestamp("us", tz="UTC")),
                      "touchpoint": tp})
    pq.write_table(table, path, row_group_size=n // 7 + 1)


def test_tracker_log_journeys_equal_pyarrows_encoder(tmp_path, monkeypatch):
    """100k rows (the sorting route) in time order: events and every array of the journey
    set equal those made with pyarrow's encoder; value and persona (no such columns) are a
    read-only constant."""
    path = tmp_path / "t.parquet"
    _tracker_log(path, 12_500, 8)
    out = {}
    strided = []
    real = encoding._fixed_width_words
    monkeypatch.setattr(encoding, "_fixed_width_words",
                        lambda *args: strided.append(1) or real(*args))
    import journeymodel.data.events as events

    for min_rows, threads in ((0, 1), (0, 1 << 40), (1 << 40, 1 << 40)):
        monkeypatch.setattr(encoding, "MIN_ROWS", min_rows)
        monkeypatch.setattr(events, "THREAD_ROWS", threads)  # 1: ids beside the other columns
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            out[min_rows, threads] = read_events(path), load_journeys(path)
    assert strided  # the ids were packed by strided loads
    for name in ("customer", "time", "touchpoint", "row"):  # in a thread or not: the same
        np.testing.assert_array_equal(getattr(out[0, 1][0], name),
                                      getattr(out[0, 1 << 40][0], name))
    (ev_new, js_new), (ev_old, js_old) = out[0, 1], out[1 << 40, 1 << 40]
    assert ev_new.ledger.dropped == ev_old.ledger.dropped
    assert ev_new.ledger.dropped.get("duplicate", 0) > 0
    for name in ("customer", "customers", "time", "touchpoint", "row", "persona", "value"):
        a, b = getattr(ev_new, name), getattr(ev_old, name)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert ev_new.labels == ev_old.labels
    for name in ("codes", "offsets", "outcome", "weight", "customer", "customers", "persona",
                 "start", "end", "value", "times"):
        a, b = getattr(js_new, name), getattr(js_old, name)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert js_new.touchpoints == js_old.touchpoints
    assert np.isnan(ev_new.value).all() and (ev_new.persona == -1).all()
    with pytest.raises(ValueError, match="read-only"):
        ev_new.value[0] = 1.0


@SETTINGS
@given(same_width_columns(), st.sampled_from([(1, 1 << 40), (1, 1), (1 << 40, 1 << 40)]),
       st.sampled_from([3, 7, 1 << 16]))
def test_threads_and_blocks_give_the_same_encoding(column, thresholds, block):
    """The passes after the sort in two threads or one, the dictionary beside them or
    before (then the order is written over the words), blocks smaller than a run: the same
    encoding and grouped order."""
    arr, values = column
    real = encoding.SORTED_THREAD_ROWS, encoding.THREAD_ROWS, encoding.BLOCK
    try:
        encoding.SORTED_THREAD_ROWS, encoding.THREAD_ROWS = thresholds
        encoding.BLOCK = block
        grouped: dict = {}
        enc = dictionary_encode(arr, min_rows=0, grouped=grouped)
    finally:
        encoding.SORTED_THREAD_ROWS, encoding.THREAD_ROWS, encoding.BLOCK = real
    assert_encoded_as_pyarrow(arr, enc, grouped)


def test_take_rows_gathers_into_the_arrays_given():
    """``out``: arrays of the gather's length and type are filled (no new memory); others,
    and missing ones, are replaced by new arrays."""
    from journeymodel.data.ordering import take_rows

    a, b, c = np.arange(6.0), np.arange(6, dtype=np.int32), np.arange(6, dtype=np.int64)
    index = np.array([5, 0, 3])
    mine = np.zeros(3), np.zeros(3, np.int64)  # the second has the wrong type for b
    got = take_rows([a, b, c], index, out=list(mine))
    assert got[0] is mine[0] and got[1] is not mine[1]
    assert [g.tolist() for g in got] == [[5.0, 0.0, 3.0], [5, 0, 3], [5, 0, 3]]
    assert got[1].dtype == np.int32


def test_build_journeys_lookups_by_blocks(monkeypatch):
    """Outcome and touchpoint codes looked up by blocks smaller than the rows give the
    journeys of one block."""
    import journeymodel.data.ordering as ordering

    rng = np.random.default_rng(5)
    n = 3000
    import pandas as pd

    df = pd.DataFrame({"customer_id": np.sort(rng.integers(0, 300, n)).astype(str),
                       "timestamp": np.arange(n),
                       "touchpoint": rng.choice(["web", "conversion", "email", "ad"], n)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        whole = load_journeys(df)
        monkeypatch.setattr(ordering, "LOOKUP_BLOCK", 7)
        blocks = load_journeys(df)
    for name in ("codes", "offsets", "outcome", "customer", "times"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(blocks, name))
    assert whole.codes.dtype == np.int32


def test_build_journeys_in_two_threads_or_one(monkeypatch):
    """The touchpoint rows' codes, times, sentiment and device taken beside the journeys'
    arrays (from THREAD_ROWS rows) or after them: the same journey set."""
    import pandas as pd

    import journeymodel.data.journeys as journeys

    rng = np.random.default_rng(8)
    n = 2000
    df = pd.DataFrame({"customer_id": rng.integers(0, 200, n).astype(str),
                       "timestamp": rng.integers(0, 10_000, n),
                       "touchpoint": rng.choice(["web", "conversion", "email", "churn"], n),
                       "sentiment": rng.integers(1, 6, n).astype(float),
                       "device": rng.choice(["ios", "web"], n),
                       "value": rng.random(n)})
    out = []
    for rows in (1 << 40, 1):
        monkeypatch.setattr(journeys, "THREAD_ROWS", rows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            out.append(load_journeys(df))
    for name in ("codes", "offsets", "outcome", "customer", "times", "sentiment", "device",
                 "value", "start", "end", "persona"):
        np.testing.assert_array_equal(getattr(out[0], name), getattr(out[1], name))


@pytest.mark.parametrize(("values", "plain"), [
    (["c1", "abcdefgh", "abcdefghi"], True), ([" c1"], False), (["c1 "], False),
    (["abcdefgh\t"], False), (["a\x00"], False), ([""], False), (["x", "y\x7f"], False)])
def test_plain_dictionaries_need_no_trim(values, plain):
    """A dictionary whose values neither are empty nor begin or end with a byte that may be
    whitespace is known clean without Arrow's trim; the encoding is the same either way."""
    arr = pa.array(values)
    packed = encoding._pack(pa.chunked_array([arr]))
    words, length = packed[0], np.asarray(packed[1])
    assert encoding._plain(words, length) is plain
    from journeymodel.data.columns import encode

    codes, vocab = encode(pa.chunked_array([pa.array(values * 3)]), sort=False)
    assert [v.strip() for v in np.asarray(vocab, object)[codes[codes >= 0]]] == [
        v.strip() for v in values * 3 if v.strip()]


def test_ids_with_whitespace_are_trimmed_on_the_sorting_route_too(monkeypatch):
    """Ids that differ only by surrounding whitespace are one customer, on the sorting route
    as on pyarrow's: the plain-dictionary check sends them to the trim."""
    import pandas as pd

    ids = ["c1", "c1 ", " c2", "c2", "c3", "c1"]
    df = pd.DataFrame({"customer_id": ids, "timestamp": range(6),
                       "touchpoint": ["web"] * 5 + ["conversion"]})
    out = []
    for rows in (0, 1 << 40):
        monkeypatch.setattr(encoding, "MIN_ROWS", rows)
        out.append(read_events(df))
    assert list(out[0].customers) == list(out[1].customers) == ["c1", "c2", "c3"]
    np.testing.assert_array_equal(out[0].customer, out[1].customer)


def test_hash_memory_given_or_not_the_same_encoding():
    """Ids hashed into memory given by a callable (the events reader's touched array) or a
    new array: the same grouping; memory of the wrong size or type is not used."""
    from journeymodel.data.encoding import group_ids

    rng = np.random.default_rng(2)
    arr = pa.chunked_array([pa.array([f"c{k}" for k in rng.integers(0, 50, 500)])])
    plain = group_ids(arr, min_rows=0)
    given = np.zeros(500, np.int64)
    for memory in (given, np.zeros(499, np.int64), np.zeros(500, np.float64), None):
        found = group_ids(arr, min_rows=0, hash_memory=lambda m=memory: m)
        np.testing.assert_array_equal(found["order"], plain["order"])
        np.testing.assert_array_equal(found["keys"], plain["keys"])
        assert found["dictionary"].equals(plain["dictionary"])
    found = group_ids(arr, min_rows=0, hash_memory=lambda: given)
    assert np.shares_memory(found["keys"], given)  # the codes end where the hashes were


def test_ingestion_imports_no_numpy_ma(tmp_path):
    """Reading a log into journeys imports no numpy.ma (np.unique and np.union1d of integers
    import it on first use: 9-13 ms of a first call)."""
    import subprocess
    import sys

    path = tmp_path / "t.parquet"
    _tracker_log(path, 300, 8)
    code = ("import sys\nfrom journeymodel.data.journeys import load_journeys\n"
            "import journeymodel.data.encoding as e\ne.MIN_ROWS = 0\n"
            f"load_journeys({str(path)!r})\nprint('numpy.ma' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
