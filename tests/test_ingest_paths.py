"""Ingestion's faster routes give the same bits as the plain ones (issue 20): the ids encoded in
one thread while the other columns are read in another, the customer vocabulary built as a str
array from the encoder's packed bytes, the encoder's run ids without np.repeat, and the reuse
of freed memory (journeymodel.data.memory)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import journeymodel.data.encoding as encoding
import journeymodel.data.events as events
import journeymodel.data.memory as memory
from journeymodel.data.columns import encode
from journeymodel.data.encoding import dictionary_encode
from journeymodel.data.events import events_from_table
from journeymodel.data.journeys import build_journeys
from journeymodel.data.options import ReadOptions
from journeymodel.data.ordering import grouped_codes
from journeymodel.errors import InputError

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

ascii_ids = st.one_of(st.from_regex(r"c[0-9]{1,9}", fullmatch=True),
                      st.sampled_from(["c\x00", "ab\x00\x00", "\x00x", "abcdefgh", "a" * 16,
                                       " x", "~"]))


@SETTINGS
@given(st.lists(ascii_ids, min_size=1, max_size=80), st.integers(0, 2**32 - 1))
def test_str_vocabulary_equals_the_object_one(values, seed):
    """The vocabulary built from packed bytes is the object vocabulary's astype(str): same
    values, same width (trailing NULs dropped as numpy drops them), same order."""
    values = list(np.random.default_rng(seed).permutation(np.array(values, dtype=object)))
    found: dict = {}
    enc = dictionary_encode(pa.array(values), min_rows=0, grouped=found)
    reference = np.asarray(enc.dictionary.to_numpy(zero_copy_only=False), dtype=object)
    text = found["unicode"]
    assert text.dtype == reference.astype(str).dtype
    np.testing.assert_array_equal(text, reference.astype(str))
    with pytest.MonkeyPatch.context() as mp:  # the sorting encoder whatever the size
        mp.setattr(encoding, "MIN_ROWS", 0)
        grouped: dict = {}
        codes, vocab = encode(pa.chunked_array([pa.array(values)]), sort=False,
                              grouped=grouped)
        plain_codes, plain_vocab = encode(pa.chunked_array([pa.array(values)]), sort=False)
    if codes is None:  # clean ids: the rows grouped by code instead of codes
        np.testing.assert_array_equal(grouped["order"], np.argsort(plain_codes, kind="stable"))
        codes = grouped_codes(grouped)
    np.testing.assert_array_equal(codes, plain_codes)
    if not any(v != v.strip() or v == "" for v in values):  # clean: the str route was taken
        assert vocab.dtype == plain_vocab.astype(str).dtype
    np.testing.assert_array_equal(vocab.astype(str), plain_vocab.astype(str))


def test_non_ascii_or_null_ids_keep_the_object_vocabulary():
    found: dict = {}
    dictionary_encode(pa.array(["é", "c1", "é"]), min_rows=0, grouped=found)
    assert "unicode" not in found and "order" in found
    found = {}
    dictionary_encode(pa.array(["c2", None, "c1"]), min_rows=0, grouped=found)
    assert found == {}


@SETTINGS
@given(st.lists(st.integers(0, 40), min_size=1, max_size=400))
def test_run_ids_give_the_stable_order_by_code(picks):
    """order and keys (built from run ids and a cumsum) are np.argsort(codes, stable)."""
    values = [f"c{k}" for k in picks]
    found: dict = {}
    enc = dictionary_encode(pa.array(values), min_rows=0, grouped=found)
    codes = np.asarray(enc.indices)
    order = np.argsort(codes, kind="stable")
    np.testing.assert_array_equal(found["order"], order)
    np.testing.assert_array_equal(found["keys"], codes[order])
    assert found["keys"].dtype == np.int64 and found["order"].dtype == np.int64


def _log(seed: int, n: int = 3000) -> pa.Table:
    """A log with every kind of trouble: null and blank ids, bad and missing times, duplicates,
    personas, values with junk, sentiments, devices, NUL in a touchpoint, time ties."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"c{k}" for k in rng.permutation(10**5)[:300]], dtype=object)
    cust = ids[rng.integers(0, len(ids), n)]
    cust[rng.integers(0, n, 5)] = None
    t = rng.integers(0, 40, n).astype(object)  # many ties
    t[rng.integers(0, n, 4)] = None
    tp = rng.choice(np.array(["web", "email", "app\x00", "conversion", "churn"], dtype=object),
                    n, p=[0.4, 0.3, 0.1, 0.15, 0.05])
    value = rng.normal(size=n).round(2).astype(object)
    value[rng.integers(0, n, 3)] = "junk"
    df = pd.DataFrame({
        "customer_id": cust,
        "timestamp": [None if x is None else f"2025-01-{1 + x % 28:02d} 10:{x % 60:02d}:00"
                      for x in t],
        "touchpoint": tp,
        "persona": rng.choice(["a", "b", None], n),
        "value": [str(v) for v in value],
        "sentiment": rng.integers(1, 6, n).astype(float),
        "device": rng.choice(["ios", "web", None], n),
    })
    df = pd.concat([df, df.iloc[10:20]], ignore_index=True)
    return pa.Table.from_pandas(df, preserve_index=False)


def _read(table, monkeypatch, thread_rows):
    monkeypatch.setattr(events, "THREAD_ROWS", thread_rows)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ev = events_from_table(table, "<t>", ReadOptions())
        js = build_journeys(ev)
    return ev, js, [str(w.message) for w in caught]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("min_rows", [0, 1 << 40])
def test_threaded_reading_equals_one_thread(monkeypatch, seed, min_rows):
    """The EventTable, ledger, warnings and journeys are the same whether the ids are encoded
    beside the other columns (THREAD_ROWS = 0) or after them, with either id encoder."""
    monkeypatch.setattr(encoding, "MIN_ROWS", min_rows)
    table = _log(seed)
    ev1, js1, w1 = _read(table, monkeypatch, 1 << 62)
    ev2, js2, w2 = _read(table, monkeypatch, 0)
    assert w1 == w2 and w1
    assert ev1.ledger == ev2.ledger
    for name in ev1.__dataclass_fields__:
        a, b = getattr(ev1, name), getattr(ev2, name)
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype, name
            np.testing.assert_array_equal(a, b)
        elif name != "ledger":
            assert a == b, name
    for name in ("codes", "offsets", "outcome", "customer", "customers", "persona", "start",
                 "end", "value", "times", "device"):
        np.testing.assert_array_equal(getattr(js1, name), getattr(js2, name))


def test_threaded_reading_raises_the_same_error(monkeypatch):
    """An error of the other columns (here: times that are not dates) comes out of the thread
    as it would without it."""
    table = pa.table({"customer_id": ["a", "b"] * 50, "timestamp": ["soon", "later"] * 50,
                      "touchpoint": ["web", "email"] * 50})
    messages = []
    for rows in (1 << 62, 0):
        monkeypatch.setattr(events, "THREAD_ROWS", rows)
        with pytest.raises(InputError, match="timestamp") as info:
            events_from_table(table, "<t>", ReadOptions())
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_reuse_freed_memory_nests_and_restores(monkeypatch):
    """The thresholds are raised once on the way in, restored once by the last one out (also
    on an exception); results are unaffected."""
    calls = []

    class FakeLibc:
        def mallopt(self, option, value):
            calls.append((option, value))
            return 1

        def malloc_trim(self, pad):
            calls.append(("trim", pad))
            return 1

    monkeypatch.setattr(memory, "_LIBC", FakeLibc())
    with memory.reuse_freed_memory():
        with memory.reuse_freed_memory():
            x = np.arange(10).sum()
        assert len(calls) == 3
    assert x == 45
    assert calls == [(-3, memory._HOLD), (-1, memory._HOLD), (-8, 1), (-3, 32 << 20),
                     (-1, 64 << 20), (-8, memory._AFTER_ARENAS), ("trim", 0)]
    with pytest.raises(ValueError, match="boom"), memory.reuse_freed_memory():
        raise ValueError("boom")
    assert memory._depth == 0 and calls[-1] == ("trim", 0) and len(calls) == 14
    # release=False (a block that ends with its process): restored, no trim; the last one
    # out decides
    with memory.reuse_freed_memory(release=False):
        with memory.reuse_freed_memory():
            pass
    assert calls[14:] == [(-3, memory._HOLD), (-1, memory._HOLD), (-8, 1), (-3, 32 << 20),
                          (-1, 64 << 20), (-8, memory._AFTER_ARENAS)]


def test_reuse_freed_memory_lends_arrow_the_system_allocator_and_gives_it_back():
    """Inside the block Arrow allocates with malloc (its freed buffers are reused by numpy);
    afterwards its default pool is what it was."""
    before = pa.default_memory_pool().backend_name
    with memory.reuse_freed_memory():
        with memory.reuse_freed_memory():
            inner = pa.default_memory_pool().backend_name
            table = pa.table({"x": np.arange(10)})
        assert pa.default_memory_pool().backend_name == inner
    assert pa.default_memory_pool().backend_name == before
    assert table["x"].to_pylist() == list(range(10))
    if memory._LIBC is not None:
        assert inner == "system"


def test_reuse_freed_memory_turns_numpy_huge_pages_off_and_back():
    """Inside the block numpy asks for no transparent huge pages (they cost compaction);
    afterwards its setting is what it was, whichever it was."""
    for before in (True, False):
        previous = memory._set_numpy_huge_pages(before)
        try:
            with memory.reuse_freed_memory():
                with memory.reuse_freed_memory():
                    assert memory._set_numpy_huge_pages(False) is False
                assert memory._set_numpy_huge_pages(False) is False
            assert memory._set_numpy_huge_pages(before) is before
        finally:
            memory._set_numpy_huge_pages(previous)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 5),
                          st.sampled_from(["a", "b", "c", None])), min_size=1, max_size=60))
def test_persona_of_each_customer_and_the_conflict_note(rows):
    """Each journey's persona is its customer's first known persona in time order (ties: input
    order), and the note counts the customers with more than one (pandas as the reference)."""
    df = pd.DataFrame(rows, columns=["cust", "timestamp", "persona"])
    df["customer_id"] = "c" + df["cust"].astype(str)
    df["touchpoint"] = "web"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = events_from_table(pa.Table.from_pandas(df.drop(columns="cust"),
                                                    preserve_index=False), "<t>", ReadOptions())
        js = build_journeys(ev)
    ordered = df.sort_values(["cust", "timestamp"], kind="stable")
    known = ordered.dropna(subset=["persona"])
    first = known.groupby("customer_id")["persona"].first()
    got = {ev.customers[c]: (js.personas[p] if p >= 0 else None)
           for c, p in zip(js.customer, js.persona, strict=True)}
    assert got == {c: first.get(c) for c in got}
    conflicts = int((known.groupby("customer_id")["persona"].nunique() > 1).sum())
    notes = [n for n in ev.ledger.notes if "more than one persona" in n]
    assert notes == ([f"{conflicts} customers have more than one persona; each keeps its first "
                      "(in time order)"] if conflicts else [])


def test_persona_when_customers_are_contiguous_but_not_in_code_order():
    """An EventTable whose customers' blocks are not in code order (built by hand) gets the
    same personas per customer as the sorted one."""
    import dataclasses

    df = pd.DataFrame({"customer_id": ["a", "a", "b", "b", "c"], "timestamp": [1, 2, 1, 2, 1],
                       "touchpoint": ["web"] * 5, "persona": [None, "x", "y", "x", "z"]})
    ev = events_from_table(pa.Table.from_pandas(df), "<t>", ReadOptions())
    perm = np.array([4, 2, 3, 0, 1])  # blocks c, b, a
    moved = dataclasses.replace(ev, **{k: getattr(ev, k)[perm] for k in (
        "customer", "time", "touchpoint", "persona", "value", "row")})
    js = build_journeys(moved)
    per_customer = {ev.customers[c]: js.personas[p] for c, p in zip(js.customer, js.persona,
                                                                    strict=True)}
    assert per_customer == {"a": "x", "b": "y", "c": "z"}
    assert "1 customers have more than one persona" in " ".join(moved.ledger.notes)


any_ids = st.one_of(st.none(), ascii_ids, st.text(max_size=9),
                    st.sampled_from(["", "a\x00", "a", "a\x00\x00", "\x00"]))


@SETTINGS
@given(st.lists(any_ids, min_size=1, max_size=80), st.lists(st.integers(0, 80), max_size=4))
def test_two_threads_and_the_length_digit_give_pyarrows_encoding(values, cuts):
    """Gathered in two threads (THREAD_ROWS = 0), over several chunks, with the length digit
    only when some id holds a NUL byte ("a" and "a\\x00" must differ): pyarrow's encoding."""
    bounds = sorted({0, len(values), *[c % (len(values) + 1) for c in cuts]})
    arr = pa.chunked_array([pa.array(values[a:b], pa.string())
                            for a, b in zip(bounds, bounds[1:], strict=False)], pa.string())
    expected = pc.dictionary_encode(arr).combine_chunks()
    for rows in (0, 1 << 40):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(encoding, "THREAD_ROWS", rows)
            found: dict = {}
            assert dictionary_encode(arr, min_rows=0, grouped=found).equals(expected)
            if found:
                order = np.argsort(np.asarray(expected.indices), kind="stable")
                np.testing.assert_array_equal(found["order"], order)


@SETTINGS
@given(st.lists(st.one_of(st.none(), st.integers(-2**62, 2**62)), min_size=1, max_size=50),
       st.lists(st.integers(0, 50), max_size=3), st.sampled_from(["ns", "us", "s"]),
       st.booleans())
def test_typed_times_chunk_by_chunk_equal_the_combined_array(values, cuts, unit, sliced):
    """Arrow timestamps read chunk by chunk into one float array: the same bits as the combined
    int64 nanoseconds divided by 1e9, NaN where missing; out-of-range values take the other
    route as before."""
    from journeymodel.data.timestamps import parse_times

    typ = pa.timestamp(unit, tz="UTC")
    scale = {"ns": 1, "us": 1000, "s": 10**9}[unit]
    values = [None if v is None else v // scale for v in values]
    bounds = sorted({0, len(values), *[c % (len(values) + 1) for c in cuts]})
    arr = pa.chunked_array([pa.array(values[a:b], typ)
                            for a, b in zip(bounds, bounds[1:], strict=False)], typ)
    if sliced and len(arr) > 1:
        arr, values = arr.slice(1), values[1:]
    got = parse_times(arr)
    try:
        ns = pc.cast(pc.cast(arr, pa.timestamp("ns")), pa.int64()).to_numpy(
            zero_copy_only=False)
    except pa.ArrowInvalid:
        return  # outside 1677-2262: the column's own unit, unchanged
    expected = ns.astype(np.float64) / 1e9
    missing = np.array([v is None for v in values])
    expected[missing] = np.nan
    np.testing.assert_array_equal(got.missing, missing)
    assert got.time.tobytes() == expected.tobytes()


@SETTINGS
@given(st.lists(st.one_of(st.none(), st.sampled_from(["web", " web", "app ", "", "é", "x\x00"]),
                          st.text(max_size=4)), min_size=1, max_size=60), st.booleans())
def test_sorted_columns_by_pyarrows_hash_table(values, with_nul):
    """Touchpoint-like columns (sort=True) now go through pyarrow's hash table whatever their
    size: the same codes, vocabulary and NUL mask as through the sorting encoder (its
    encoding given as a dictionary column)."""
    arr = pa.chunked_array([pa.array(values, pa.string())])
    nul_new: dict = {}
    nul_old: dict = {}
    codes, vocab = encode(arr, dtype=np.int32, nul=nul_new if with_nul else None, key="k")
    old = pa.chunked_array([dictionary_encode(arr, min_rows=0)])
    codes_old, vocab_old = encode(old, dtype=np.int32, nul=nul_old if with_nul else None,
                                  key="k")
    assert codes.dtype == codes_old.dtype == np.int32
    np.testing.assert_array_equal(codes, codes_old)
    assert list(vocab) == list(vocab_old) == sorted(set(vocab))
    assert nul_new.keys() == nul_old.keys()
    for k in nul_new:
        np.testing.assert_array_equal(nul_new[k], nul_old[k])
    assert all(c < 0 for c, v in zip(codes, values, strict=True) if v is None)
