"""The customer-id encoder (journeymodel.data.encoding): equal ids meet, and its encoding is
pyarrow's (dictionary in first-appearance order, nulls as null indices) and pandas' factorize,
whatever the ids (null, empty, unicode, NUL bytes, long ids that fall back to pyarrow)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import journeymodel.data.encoding as encoding
from journeymodel.data.encoding import dictionary_encode
from journeymodel.data.events import read_events
from journeymodel.data.journeys import load_journeys
from journeymodel.data.options import ReadOptions
from journeymodel.errors import DataWarning

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

ids = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "c1", "c12", "c123456", "c1234567", " c1", "c1 ", "\x00", "c\x00",
                     "é", "日本", "🙂x", "abcdefgh", "abcdefgh\x00", "a" * 16, "a" * 17,
                     "x" * 300]),
    st.from_regex(r"c[0-9]{1,9}", fullmatch=True),
    st.text(max_size=20))


def _chunked(values, cuts, large):
    typ = pa.large_string() if large else pa.string()
    bounds = sorted({0, len(values), *[c % (len(values) + 1) for c in cuts]})
    return pa.chunked_array([pa.array(values[a:b], typ) for a, b in zip(bounds, bounds[1:],
                                                                       strict=False)] or
                            [pa.array([], typ)], typ)


@SETTINGS
@given(st.lists(ids, min_size=1, max_size=60), st.lists(st.integers(0, 60), max_size=3),
       st.booleans(), st.booleans())
def test_encoding_equals_pyarrow_and_pandas_factorize(values, cuts, large, sliced):
    arr = _chunked(values, cuts, large)
    if sliced and len(arr) > 1:
        arr, values = arr.slice(1), values[1:]
    grouped: dict = {}
    enc = dictionary_encode(arr, min_rows=0, grouped=grouped)
    assert enc.equals(pc.dictionary_encode(arr).combine_chunks())
    if grouped:  # found on the sorting route when no id is null: the stable sort by code
        assert None not in values
        order = np.argsort(np.asarray(enc.indices), kind="stable")
        np.testing.assert_array_equal(grouped["order"], order)
        np.testing.assert_array_equal(grouped["keys"], np.asarray(enc.indices)[order])
    codes, uniques = pd.factorize(pd.Series(values, dtype=object))  # None -> -1
    assert enc.indices.fill_null(-1).to_pylist() == codes.tolist()
    assert enc.dictionary.to_pylist() == list(uniques)


@SETTINGS
@given(st.lists(st.from_regex(r"[a-z]{0,2}[0-9]{0,8}", fullmatch=True), min_size=1,
                max_size=200), st.integers(0, 2**32 - 1))
def test_equal_ids_meet(values, seed):
    """Rows with equal ids get equal codes, different ids different codes; the codes run in
    order of first appearance."""
    rng = np.random.default_rng(seed)
    values = list(rng.permutation(np.array(values, dtype=object)))
    enc = dictionary_encode(pa.array(values), min_rows=0)
    codes = np.asarray(enc.indices)
    dictionary = np.array(enc.dictionary.to_pylist(), dtype=object)
    assert (dictionary[codes] == np.array(values, dtype=object)).all()
    assert len(set(dictionary)) == len(dictionary)
    first = pd.Series(np.arange(len(codes))).groupby(codes).min().to_numpy()
    assert (np.diff(first) > 0).all()


def test_long_ids_fall_back_to_pyarrow_random_ones_do_not(monkeypatch):
    """Ids above MAX_BYTES go to pyarrow's encoder; random 16-byte ids (which the exact
    mixed-radix key of before issue 20's hashing found too wide) and short ids are hashed."""
    rng = np.random.default_rng(0)
    random16 = ["".join(chr(c) for c in rng.integers(33, 127, 16)) for _ in range(3000)]
    long_ids = [f"customer-{i:020d}" for i in range(50)]
    calls = []
    real = encoding._pyarrow
    monkeypatch.setattr(encoding, "_pyarrow", lambda a: calls.append(1) or real(a))
    for values in (random16 * 2, long_ids * 3):
        arr = pa.array(values)
        assert dictionary_encode(arr, min_rows=0).equals(pc.dictionary_encode(arr))
    assert len(calls) == 1
    short = pa.array([f"c{i}" for i in range(1000)] * 2)
    assert dictionary_encode(short, min_rows=0).equals(pc.dictionary_encode(short))
    assert len(calls) == 1  # the short ids took the sorting route


def _collide(buckets):
    """A hash with ``buckets`` values (0: every value the same hash) in place of SplitMix."""
    def weak(x, tmp):
        x %= np.uint64(max(buckets, 1))
        x <<= np.uint64(60)  # the key keeps the high bits
    return weak


@SETTINGS
@given(st.lists(ids, min_size=1, max_size=60), st.lists(st.integers(0, 60), max_size=3),
       st.sampled_from([0, 2, 7]), st.booleans())
def test_hash_collisions_are_split_exactly(values, cuts, buckets, threads):
    """Distinct ids sharing a hash (forced: a hash of 1, 2 or 7 values) are still told apart
    by the exact comparison of their bytes (in two threads or one, by blocks of 7 rows): the
    encoding and the grouped order are pyarrow's and the stable sort's."""
    arr = _chunked(values, cuts, False)
    real = encoding._hash64, encoding.THREAD_ROWS, encoding.BLOCK
    try:
        encoding._hash64 = _collide(buckets)
        encoding.THREAD_ROWS = 1 if threads else real[1]
        encoding.BLOCK = 7  # several blocks, a block boundary inside most runs
        grouped: dict = {}
        enc = dictionary_encode(arr, min_rows=0, grouped=grouped)
    finally:
        encoding._hash64, encoding.THREAD_ROWS, encoding.BLOCK = real
    assert_encoded_as_pyarrow(arr, enc, grouped)


def assert_encoded_as_pyarrow(arr, enc, grouped: dict) -> None:
    """``enc`` (from ``dictionary_encode(arr, grouped=grouped)``) is pyarrow's encoding, and
    the grouped route's order and keys (where it filled ``grouped``) the stable sort's."""
    assert enc.equals(pc.dictionary_encode(arr).combine_chunks())
    if grouped:
        order = np.argsort(np.asarray(enc.indices), kind="stable")
        np.testing.assert_array_equal(grouped["order"], order)
        np.testing.assert_array_equal(grouped["keys"], np.asarray(enc.indices)[order])


def test_a_collision_taken_for_equal_ids_would_be_caught(monkeypatch):
    """Without the exact check, a hash shared by "c1" and "c2" would merge them: the check
    is what keeps them apart (its comparison removed, the encoding goes wrong)."""
    arr = pa.array(["c1", "c2", "c1", "c3", "c2"])
    monkeypatch.setattr(encoding, "_hash64", _collide(0))
    assert dictionary_encode(arr, min_rows=0).equals(pc.dictionary_encode(arr))
    monkeypatch.setattr(encoding, "_value_changes",
                        lambda row, *a: np.zeros(max(len(row) - 1, 0), bool))
    assert not dictionary_encode(arr, min_rows=0).equals(pc.dictionary_encode(arr))


def _tracker_log(path, pad=False, nulls=True, n=80_000, n_customers=9_000, seed=3,
                 shuffle=False, bad_times=False):
    """Time-ordered log, string ids of mixed length, several row groups, a few null and
    duplicated rows; with ``pad``, a few blank ids and the ids of call rows end in a space;
    with ``shuffle`` rows out of time order, with ``bad_times`` a few missing times."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"c{k}" for k in rng.permutation(10**6)[:n_customers]], dtype=object)
    cust = ids[rng.integers(0, n_customers, n)]
    if nulls:
        cust[rng.integers(0, n, 20)] = None
    if pad:
        cust[rng.integers(0, n, 20)] = ""
    t = np.sort(rng.integers(0, 30 * 86400, n))
    tp = rng.choice(["web", "email", "call", "conversion"], n, p=[0.4, 0.3, 0.26, 0.04])
    df = pd.DataFrame({"customer_id": cust, "timestamp": pd.to_datetime(t, unit="s", utc=True),
                       "touchpoint": tp})
    if pad:
        df.loc[df["touchpoint"] == "call", "customer_id"] += " "
    df = pd.concat([df, df.iloc[100:130]]).sort_values("timestamp", kind="stable")
    if bad_times:
        df.iloc[rng.integers(0, len(df), 15), 1] = pd.NaT
    if shuffle:
        df = df.iloc[rng.permutation(len(df))]
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path,
                   row_group_size=15_000)


def _load(path, monkeypatch, min_rows):
    monkeypatch.setattr(encoding, "MIN_ROWS", min_rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return read_events(path), load_journeys(path)


@pytest.mark.parametrize("kind", ["nulls", "clean", "padded", "clean-shuffled",
                                  "clean-bad-times", "clean-csv", "nulls-csv"])
def test_reading_a_tracker_log_is_unchanged(tmp_path, monkeypatch, kind):
    """Events and journeys equal those of pyarrow's encoder (forced by a huge MIN_ROWS), with
    clean ids (first-appearance customer order; without nulls every row is kept and the
    encoder's own order by customer is used) and with padded ids (sorted order); rows out of
    time order, missing times, and the same log as CSV."""
    path = tmp_path / "log.parquet"
    blank = kind == "padded"
    _tracker_log(path, pad=blank, nulls=not kind.startswith("clean"),
                 shuffle=kind.endswith("shuffled"), bad_times=kind.endswith("bad-times"))
    source = path
    if kind.endswith("csv"):
        source = tmp_path / "log.csv"
        pd.read_parquet(path).to_csv(source, index=False)
    ev_new, js_new = _load(source, monkeypatch, 1 << 16)
    ev_old, js_old = _load(source, monkeypatch, 1 << 40)
    assert ev_new.ledger.dropped == ev_old.ledger.dropped
    if kind.endswith("bad-times"):
        assert ev_new.ledger.dropped["missing_timestamp"] > 0
    else:
        assert ev_new.ledger.dropped["duplicate"] == 30
    assert ev_new.ledger.dropped.get("missing_customer", 0) >= (
        0 if kind.startswith("clean") else 20)
    for name in ("customer", "customers", "time", "touchpoint", "row"):
        np.testing.assert_array_equal(getattr(ev_new, name), getattr(ev_old, name))
    for name in ("codes", "offsets", "outcome", "customer", "customers", "start", "end"):
        np.testing.assert_array_equal(getattr(js_new, name), getattr(js_old, name))
    # equal ids meet: each customer's rows are contiguous, customers in first-appearance order
    # of the log (clean ids), or sorted (ids that needed trimming)
    cust = ev_new.customers[ev_new.customer]
    raw = pq.read_table(path)["customer_id"].to_numpy(zero_copy_only=False)
    assert (cust == np.char.strip(raw[ev_new.row].astype(str))).all()
    assert (np.diff(ev_new.customer) >= 0).all()
    if blank:
        assert (ev_new.customers == np.sort(ev_new.customers)).all()
    else:
        used = set(raw[ev_new.row])  # in order of first appearance in the whole log
        assert ev_new.customers.tolist() == [c for c in pd.unique(raw) if c in used]


@pytest.mark.parametrize("nulls", [False, True])
def test_the_threaded_route_gives_the_same_encoding(monkeypatch, nulls):
    """From THREAD_ROWS rows the bytes, digits and dictionary are made in two threads (one
    chunk or several): the encoding is pyarrow's and the grouped order the stable sort."""
    monkeypatch.setattr(encoding, "THREAD_ROWS", 1)
    monkeypatch.setattr(encoding, "BLOCK", 1000)
    rng = np.random.default_rng(5)
    values = np.array([f"c{k}" for k in rng.integers(0, 3000, 20_000)], dtype=object)
    if nulls:
        values[rng.integers(0, len(values), 50)] = None
    for arr in (pa.chunked_array([pa.array(values)]),
                pa.chunked_array([pa.array(values[:7001]), pa.array(values[7001:])])):
        grouped: dict = {}
        enc = dictionary_encode(arr, min_rows=0, grouped=grouped)
        assert enc.equals(pc.dictionary_encode(arr).combine_chunks())
        assert bool(grouped) is not nulls
        if grouped:
            codes = np.asarray(enc.indices)
            np.testing.assert_array_equal(grouped["order"], np.argsort(codes, kind="stable"))
            np.testing.assert_array_equal(grouped["unicode"], np.asarray(
                enc.dictionary.to_pylist()).astype(str))


def test_a_log_already_grouped_by_customer_keeps_its_rows(monkeypatch):
    """Rows grouped by customer and in time order: the encoder's grouping is the identity, no
    gather; events and journeys equal those of pyarrow's encoder."""
    n_cust, per = 500, 6
    df = pd.DataFrame({
        "customer_id": np.repeat([f"c{k}" for k in range(n_cust)], per),
        "timestamp": np.arange(n_cust * per) * 60,
        "touchpoint": np.tile(["web", "email", "web", "call", "web", "conversion"], n_cust)})
    out = {}
    for min_rows in (0, 1 << 40):
        monkeypatch.setattr(encoding, "MIN_ROWS", min_rows)
        out[min_rows] = read_events(df), load_journeys(df)
    (ev_new, js_new), (ev_old, js_old) = out[0], out[1 << 40]
    np.testing.assert_array_equal(ev_new.row, np.arange(len(df)))
    for name in ("customer", "customers", "time", "touchpoint", "row"):
        np.testing.assert_array_equal(getattr(ev_new, name), getattr(ev_old, name))
    for name in ("codes", "offsets", "outcome", "customer"):
        np.testing.assert_array_equal(getattr(js_new, name), getattr(js_old, name))
    assert js_new.n_journeys == n_cust and (js_new.outcome == 0).all()


def test_a_log_grouped_by_customer_out_of_time_order(monkeypatch):
    """Rows grouped by customer, each customer's in time order, but the log not in time order
    (a transaction log sorted by customer, as exported for lifetimes): the encoder's grouping
    gives no per-row codes and no sort is needed; events, duplicates and journeys equal those
    of pyarrow's encoder. (This layout once failed with "'NoneType' object is not
    subscriptable" in the duplicate check.)"""
    rng = np.random.default_rng(3)
    n_cust = 400
    per = rng.integers(1, 6, n_cust)
    cust = np.repeat([f"c{k}" for k in range(n_cust)], per)
    start = rng.integers(0, 10_000, n_cust)
    steps = rng.integers(0, 3, len(cust)) * 60  # zero steps: same-time rows, some duplicates
    first = np.repeat(np.cumsum(per) - per, per)
    t = np.repeat(start, per) * 60 + (np.cumsum(steps) - np.cumsum(steps)[first])
    df = pd.DataFrame({"customer_id": cust, "timestamp": t, "touchpoint": "conversion",
                       "amount": rng.integers(1, 4, len(cust))})
    assert not (np.diff(df["timestamp"]) >= 0).all()
    opts = ReadOptions(value_col="amount", touchpoints_required=False)
    out = {}
    for min_rows in (0, 1 << 40):
        monkeypatch.setattr(encoding, "MIN_ROWS", min_rows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            out[min_rows] = read_events(df, opts), load_journeys(df, opts)
    (ev_new, js_new), (ev_old, js_old) = out[0], out[1 << 40]
    assert ev_new.ledger.dropped == ev_old.ledger.dropped
    assert ev_new.ledger.dropped.get("duplicate", 0) > 0
    for name in ("customer", "customers", "time", "touchpoint", "row"):
        np.testing.assert_array_equal(getattr(ev_new, name), getattr(ev_old, name))
    for name in ("codes", "offsets", "outcome", "customer", "value"):
        np.testing.assert_array_equal(getattr(js_new, name), getattr(js_old, name))


@SETTINGS
@given(st.lists(ids, min_size=1, max_size=60), st.lists(st.integers(0, 60), max_size=3),
       st.booleans())
def test_packing_by_padding_checks_its_widths(values, cuts, large):
    """The words come from Arrow's byte padding (``ascii_rpad``) where the values' widths
    differ; were the padding to count characters (``utf8_rpad``), non-ASCII values would come
    out wider, and the width check must then gather the words instead: either way the
    encoding is pyarrow's. (Pieces of one width take neither route: switched off here.)"""
    import journeymodel.data.encoding as encoding

    arr = _chunked(values, cuts, large)
    expected = pc.dictionary_encode(arr).combine_chunks()
    kernels = encoding.pc  # journeymodel.data.compute: the kernels the encoder calls
    real_pad, real_gather = kernels.ascii_rpad, encoding._gather_words
    real_width = encoding._same_width
    gathered = []

    def gather(*args):
        gathered.append(1)
        real_gather(*args)

    try:
        kernels.ascii_rpad, encoding._gather_words = pc.utf8_rpad, gather
        encoding._same_width = lambda length, null_count: 0
        assert dictionary_encode(arr, min_rows=0).equals(expected)
    finally:
        kernels.ascii_rpad, encoding._gather_words = real_pad, real_gather
        encoding._same_width = real_width
    packed = all(v is None or len(v.encode()) <= encoding.MAX_BYTES for v in values)
    wider = any(v is not None and len(v.encode()) > len(v) for v in values)
    assert bool(gathered) == (packed and wider)
