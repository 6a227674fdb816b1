"""Reading an event log imports no pandas and no pyarrow.compute (issue 20), and the
pandas-free conversions give what pyarrow's own (pandas-backed) ones and pandas' parsers give.

pyarrow's ``to_numpy``, ``pa.array`` and ``pa.scalar`` import pandas on first use (a third of a
second of every command); :mod:`journeymodel.data.arrow_numpy` reads buffers instead, and text
numbers and ISO-8601 times are read by Arrow when it reads all of them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeymodel.data.arrow_numpy import flags, floats, int_array, scalar, texts, values
from journeymodel.data.columns import numeric
from journeymodel.data.journeys import load_journeys
from journeymodel.data.timestamps import detect_format, numeric_times, parse_times

_CHILD = """
import json, sys
from journeymodel.data.journeys import load_journeys
js = load_journeys(sys.argv[1], gap=sys.argv[2])
print(json.dumps({"pandas": "pandas" in sys.modules, "journeys": js.n_journeys,
                  "pyarrow.compute": "pyarrow.compute" in sys.modules}))
"""


def _load_in_fresh_process(path, gap: str = "auto") -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path), gap], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _log(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    start = pd.Timestamp("2025-01-01", tz="UTC")
    return pd.DataFrame({
        "customer_id": [f"c{i}" for i in rng.integers(0, n // 5, n)],
        "timestamp": start + pd.to_timedelta(np.sort(rng.integers(0, 86400 * 60, n)), unit="s"),
        "touchpoint": rng.choice(["web", " email", "search", "conversion", "churn"], n),
        "persona": rng.choice(["a", "b", None], n),
        "value": np.where(rng.random(n) < 0.5, np.nan, rng.random(n) * 100),
        "sentiment": np.where(rng.random(n) < 0.5, np.nan, rng.integers(1, 6, n)),
        "device": rng.choice(["mobile", "desktop", None], n),
    })


@pytest.mark.parametrize("kind, gap", [("parquet-one-group", "auto"),
                                       ("parquet-row-groups", "12h"), ("csv", "30D")])
def test_loading_a_log_leaves_pandas_and_pyarrow_compute_unimported(tmp_path, kind, gap):
    df = _log(4000)
    if kind == "csv":
        path = tmp_path / "events.csv"
        df.to_csv(path, index=False)  # times as "2025-01-01 00:00:00+00:00", numbers as text
    else:
        path = tmp_path / "events.parquet"
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path,
                       row_group_size=None if kind == "parquet-one-group" else 1000)
    got = _load_in_fresh_process(path, gap)
    assert got == {"pandas": False, "journeys": load_journeys(path, gap=gap).n_journeys,
                   "pyarrow.compute": False}  # 40-90 ms of imports (data.compute instead)


@pytest.mark.parametrize("unit", ["D", "d", "days", "day", "h", "H", "hours", "hr", "min",
                                  "m", "M", "minutes", "s", "S", "sec", "seconds", "ms", "us",
                                  "ns", "W", "w", "weeks", "T"])
@pytest.mark.parametrize("count", ["7", "+2", " 12 ", "0", "-3", "1.5", "99999999999"])
def test_gap_durations_read_as_pandas_timedelta_reads_them(unit, count):
    """Whole durations are read without pandas (``30D``, ``12 hours``), the rest by pandas:
    every one as ``pd.Timedelta(text).total_seconds()``, or the same OptionError."""
    import warnings

    from journeymodel.data.options import parse_gap
    from journeymodel.errors import OptionError

    for text in (f"{count}{unit}", f"{count} {unit}"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas' deprecations of "d", "H", "S", "w"
            try:
                ref = pd.Timedelta(text.strip()).total_seconds()
            except ValueError:
                ref = None
            if ref is None or ref <= 0:
                with pytest.raises(OptionError, match="--gap must be"):
                    parse_gap(text, "datetime")
            else:
                assert parse_gap(text, "datetime") == ref


def test_values_flags_texts_agree_with_pyarrow_to_numpy():
    ints = pa.chunked_array([pa.array([1, 2, 3], pa.int16()), pa.array([None, 5], pa.int16())])
    assert values(ints, fill=-1).tolist() == [1, 2, 3, -1, 5]
    assert values(ints.chunk(0).slice(1)).dtype == np.int16
    np.testing.assert_array_equal(values(ints.chunk(0).slice(1)), ints.chunk(0).slice(1)
                                  .to_numpy())
    with pytest.raises(ValueError, match="has nulls"):
        values(ints)
    mixed = pa.chunked_array([pa.array([1.5, None]), pa.array([], pa.float64()),
                              pa.array([-2.0])])
    np.testing.assert_array_equal(floats(mixed), mixed.to_numpy())
    big = pa.array([2**62, None], pa.int64())
    np.testing.assert_array_equal(floats(big), big.to_numpy(zero_copy_only=False))
    when = pa.array([0, 10**9], pa.timestamp("ns", "UTC"))
    assert values(when).tolist() == [0, 10**9]
    bits = pa.array([True, False, None, True] * 5).slice(3)
    np.testing.assert_array_equal(flags(bits), bits.fill_null(False).to_numpy(
        zero_copy_only=False))
    assert texts(pa.chunked_array([["a", None], ["é"]])).tolist() == ["a", None, "é"]


def test_scalars_and_int_arrays_equal_pyarrows():
    for value, type_ in (("", pa.string()), ("é x", pa.large_string()), (-3, pa.int8()),
                         (2.5, pa.float32()), (False, pa.bool_()), (True, pa.bool_()),
                         (7, pa.timestamp("s"))):
        assert scalar(value, type_).equals(pa.scalar(value, type_))
    null = np.arange(70) % 3 == 0
    got = int_array(np.arange(70, dtype=np.int32), null)
    assert got.equals(pa.array(np.arange(70, dtype=np.int32), mask=null))
    assert got.null_count == int(null.sum())


_NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**20, 10**20).map(str),
    st.sampled_from(["-0", "+1", ".5", "5.", "1e400", "1E-5", "nan", "Infinity", "-inf",
                     "00012", "1_000", "0x10", "1,5", "abc", "", " 7 "]),
    st.none())


@settings(max_examples=150, deadline=None)
@given(st.lists(_NUMBER_TEXT, min_size=1, max_size=12))
def test_text_numbers_read_as_pandas_reads_them(cells):
    """Whether Arrow reads the whole column or pandas does, the values and the invalid mask
    are those of ``pd.to_numeric(errors="coerce")`` (the reader before issue 20)."""
    vals, bad = numeric(pa.chunked_array([pa.array(cells, pa.string())]))
    text = pd.Series([None if c is None else c.strip() for c in cells], dtype=object)
    ref = pd.to_numeric(text, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    present = text.notna().to_numpy() & (text != "").to_numpy()
    with np.errstate(invalid="ignore"):
        ref_bad = present & ~(np.abs(ref) <= 1e15)
    np.testing.assert_array_equal(bad, ref_bad)
    # equal as numbers: pandas itself reads "-0" as 0.0 in some columns, -0.0 in others
    np.testing.assert_array_equal(vals, np.where(ref_bad, np.nan, ref))


@pytest.mark.parametrize("cells", [
    ["2025-06-06", "2025-06-06T08:17", None, "2025-06-06 08:17:34.123456789"],
    ["2025-06-06T08:17:34+01:00", "2025-06-06 08:17:34-0530", "2025-06-06T08:17:34.5Z"],
    ["2025-06-06T08:17:34+01", "2025-06-06T08Z", "2025-06-06T08:17:34.123+0530",
     "2025-06-06T08:17:34+14:00", "2025-06-06T08:17:34-00:00"],
    ["2025-06-06T08:17:34Z", "2025-06-06T08:17:34"],  # offsets in some values only
    ["2025-06-06 08:17:34 +01:00", "2025-06-06T08:17:34UTC"],  # pandas reads the first
    ["2025-06-06", "2025-13-01"],  # an impossible month: pandas reads the rest
    ["1600-01-01", "2300-01-01T00:00"],  # beyond datetime64[ns]
    ["1735689600", "1735693200", None],  # epoch seconds as text
    ["3", "-0", "7.5"],  # periods
])
def test_text_times_read_as_pandas_reads_them(cells):
    """Arrow reads these without pandas where it reads every value; the times, the kind and
    the masks are those pandas' parsers give (what the reader did before issue 20)."""
    import warnings

    col = pa.chunked_array([pa.array(cells, pa.string())])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = parse_times(col)
    text = pd.Series(cells, dtype=object)
    missing = text.isna().to_numpy()
    numbers = pd.to_numeric(text[~missing], errors="coerce").notna().mean() > 0.5
    if not numbers:
        assert detect_format(text, missing) == (None, [])  # ISO-8601
        dt = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        bad = ~missing & dt.isna().to_numpy()
        try:  # what the pandas route computes: nanoseconds / 1e9, else the column's unit
            secs = dt.to_numpy(dtype="datetime64[ns]").astype(np.int64) / 1e9
        except (OverflowError, pd.errors.OutOfBoundsDatetime):
            secs = dt.array.asi8 / {"s": 1, "ms": 1e3, "us": 1e6}[dt.dtype.unit]
        np.testing.assert_array_equal(got.time, np.where(missing | bad, np.nan, secs))
        np.testing.assert_array_equal(got.bad, bad)
    else:
        vals = pd.to_numeric(text, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        ref = numeric_times(vals, "auto", missing, ~missing & np.isnan(vals))
        assert got.kind == ref.kind
        np.testing.assert_array_equal(got.time, ref.time)
        np.testing.assert_array_equal(got.bad, ref.bad)
    np.testing.assert_array_equal(got.missing, pc.is_null(col).to_numpy())


def test_data_compute_kernels_equal_pyarrow_compute():
    """Each kernel of journeymodel.data.compute gives what its pyarrow.compute namesake gives
    (same defaults), on chunked text with nulls, blanks and NUL bytes."""
    from journeymodel.data import compute

    text = pa.chunked_array([[" a ", None, "b\x00c", ""], ["12/03/2025", "x > y >z"]])
    flag = pa.chunked_array([[True, None, False], [False, True, None]])
    other = pa.chunked_array([[None, True, True], [False, False, None]])
    cases = [
        ("cast", (pa.array([1, 2**40]), pa.float64())),
        ("cast", (pa.array(["1.5", None]), pa.float64())),
        ("cast", (pa.array([0, 5], pa.timestamp("us", "UTC")), pa.timestamp("ns"))),
        ("is_null", (text,)), ("is_valid", (text,)), ("binary_length", (text,)),
        ("utf8_trim_whitespace", (text,)), ("dictionary_encode", (text,)),
        ("min", (pc.binary_length(text),)), ("min", (pa.array([], pa.int32()),)),
        ("any", (flag,)), ("all", (flag,)), ("and_", (flag, other)),
        ("or_kleene", (flag, other)), ("equal", (text, text)), ("not_equal", (text, text)),
        ("match_substring", (text, "\x00")), ("replace_substring", (text, "\x00", "")),
        ("split_pattern_regex", (text, r"\s*>\s*")), ("ascii_rpad", (text, 8, "\x00")),
        ("list_value_length", (pc.split_pattern_regex(text, r"\s*>\s*"),)),
        ("fill_null", (text, pa.scalar("", pa.string()))),
    ]
    for name, args in cases:
        assert getattr(compute, name)(*args).equals(getattr(pc, name)(*args)), name
    dates = pa.array(["12/03/2025", "1/2/2024", "x"])
    parts = compute.extract_regex(dates, r"^\D*(?P<a>\d{1,2})\D(?P<b>\d{1,2})\D")
    assert parts.equals(pc.extract_regex(dates, r"^\D*(?P<a>\d{1,2})\D(?P<b>\d{1,2})\D"))
    assert compute.struct_field(parts, "b").equals(pc.struct_field(parts, "b"))
    with pytest.raises(pa.ArrowInvalid):
        compute.cast(pa.array([2**40]), pa.int32())  # safe by default, as pyarrow's
    assert compute.cast(pa.array([2**40]), pa.int32(), safe=False).equals(
        pc.cast(pa.array([2**40]), pa.int32(), safe=False))
    with pytest.raises(TypeError, match="Arrow scalar"):
        compute.fill_null(text, "")


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["s", "ms", "us", "ns"]), st.sampled_from([None, "UTC", "Asia/Tokyo"]),
       st.lists(st.integers(-2**63 + 1, 2**63 - 1) | st.integers(-2**40, 2**40),
                min_size=1, max_size=40),
       st.integers(0, 40), st.booleans())
def test_timestamps_read_from_their_buffers_as_by_the_casts(unit, tz, ints, cut, null):
    """Timestamps without nulls in nanoseconds' range are read from the column's buffer by
    blocks: the same seconds as the two casts (to ns, to int64) and their division gave;
    otherwise (nulls, beyond 1677-2262) the casts' route decides, as before."""
    from journeymodel.data import timestamps

    cells = [None if null and i == len(ints) // 2 else v for i, v in enumerate(ints)]
    cut = min(cut, len(cells))
    col = pa.chunked_array([pa.array(cells[:cut], pa.int64()),
                            pa.array(cells[cut:], pa.int64())]).cast(pa.timestamp(unit, tz))
    got = timestamps.parse_times(col)
    missing = np.array([c is None for c in cells])
    try:
        ns = pc.fill_null(pc.cast(pc.cast(col, pa.timestamp("ns")), pa.int64()), 0).to_numpy()
    except pa.ArrowInvalid:  # beyond nanoseconds: read in the column's unit
        assert got.time.dtype == np.float64 and len(got.time) == len(cells)
        return
    ref = np.where(missing, np.nan, ns / 1e9)
    np.testing.assert_array_equal(got.time, ref)
    np.testing.assert_array_equal(got.missing, missing)
    assert got.kind == "datetime" and not got.bad.any()


def test_held_out_split_hashes_ids_as_before_without_pandas_or_numba(tmp_path):
    """``JourneySet.uniforms`` (the held-out split, ``fit markov --order auto``) hashes each
    id's UTF-8 as before (Arrow's buffers, the compiled FNV-1a), for ASCII and other ids,
    now without importing pandas (``pa.array``) or numba (0.4 s, scipy with it)."""
    from journeymodel.data import hashing
    from journeymodel.data.hashing import splitmix

    df = _log(600)
    df.loc[df.index % 7 == 0, "customer_id"] = "é-" + df["customer_id"]
    js = load_journeys(df)
    names = pa.array(np.asarray(js.customers, dtype=object)).cast(pa.large_string())
    _, offsets, data = names.buffers()
    ids = np.empty(len(names), np.int64)
    hashing._numba_fnv1a()(np.frombuffer(offsets, np.int64, len(names) + 1),
                           np.frombuffer(data, np.uint8), ids)
    who = ids[js.customer].astype(np.uint64)
    start = np.ascontiguousarray(js.start, np.float64).view(np.uint64)
    key = splitmix(splitmix(np.full(1, 5, np.uint64)) ^ np.uint64(2))
    ref = (splitmix(who ^ splitmix(start ^ key)) >> np.uint64(11)).astype(np.float64) * 2.0**-53
    np.testing.assert_array_equal(js.uniforms(5, 2), ref)
    path = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pandas(_log(600), preserve_index=False), path)
    code = ("import sys; from journeymodel.data.journeys import load_journeys; "
            f"load_journeys({str(path)!r}).split(0.2, 1); "
            "print(sorted(m for m in ('pandas', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
