"""Property: whatever the event log (random bytes, random CSV text, DataFrames and Parquet
files with random column types and hostile values), reading it gives either journeys whose
ledger adds up (rows read = rows used + rows dropped) or an InputError; never another exception.
"""

from __future__ import annotations

import os
import string
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeymodel.data.journeys import load_journeys
from journeymodel.errors import DataWarning, InputError

#: 40 fixed examples per test in the fast suite (a few seconds); JM_FUZZ_EXAMPLES=2000 runs a
#: deeper random search.
_DEEP = int(os.environ.get("JM_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_DEEP or 40, deadline=None, derandomize=not _DEEP,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

texts = st.one_of(
    st.sampled_from(["web", "email", "conversion", "churn", "", " ", "a\x00b", "\x00", "nan",
                     "inf", "-inf", "1e400", "12,5 EUR", "2025-01-01", "31/01/2025",
                     "01/02/2025", "2300-01-01T00:00:00Z", "1600-01-01", "1735689600",
                     "1735689600000", "20250131", "None", "NULL", "\"quoted, text\"", "é€✓"]),
    st.text(alphabet=string.printable + "\x00é", max_size=12))
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(min_value=-2**63, max_value=2**63 - 1),
                    st.sampled_from([0, 1, 1735689600, 1735689600123, 20250131, 1e300]))
cells = st.one_of(st.none(), texts, numbers, st.binary(max_size=6),
                  st.datetimes(min_value=pd.Timestamp("1700-01-01").to_pydatetime(),
                               max_value=pd.Timestamp("2250-01-01").to_pydatetime()))
COLUMNS = ["customer_id", "timestamp", "touchpoint", "persona", "value", "sentiment", "device"]


def _check(source) -> None:
    """The property: a ledger that adds up, or an InputError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        try:
            js = load_journeys(source)
        except InputError:
            return
    led = js.ledger
    assert led.rows_read == led.rows_used + led.rows_dropped
    assert js.n_events <= led.rows_used
    assert np.isfinite(js.value).all()
    if js.sentiment is not None:
        s = js.sentiment[np.isfinite(js.sentiment)]
        assert ((s >= -1) & (s <= 1)).all()


@st.composite
def frames(draw):
    n = draw(st.integers(min_value=1, max_value=8))
    k = draw(st.integers(min_value=3, max_value=len(COLUMNS)))
    data = {}
    for col in COLUMNS[:k]:
        kind = draw(st.sampled_from(["mixed", "text", "float", "int", "datetime"]))
        if kind == "mixed":
            data[col] = pd.Series(draw(st.lists(cells, min_size=n, max_size=n)), dtype=object)
        elif kind == "text":
            data[col] = pd.Series(draw(st.lists(st.one_of(st.none(), texts), min_size=n,
                                                max_size=n)), dtype=object)
        elif kind == "float":
            data[col] = np.array(draw(st.lists(st.floats(), min_size=n, max_size=n)))
        elif kind == "int":
            data[col] = np.array(draw(st.lists(st.integers(-2**62, 2**62), min_size=n,
                                               max_size=n)), dtype=np.int64)
        else:
            data[col] = pd.to_datetime(draw(st.lists(st.integers(0, 2**40), min_size=n,
                                                     max_size=n)), unit="s")
    return pd.DataFrame(data)


@FUZZ
@given(df=frames())
def test_random_dataframes(df):
    _check(df)


@FUZZ
@given(df=frames())
def test_random_parquet_files(tmp_path_factory, df):
    path = tmp_path_factory.mktemp("fuzz") / "e.parquet"
    try:
        table = pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return  # not every mixed DataFrame can be written as Parquet
    pq.write_table(table, path)
    _check(path)


@FUZZ
@given(header=st.lists(st.sampled_from(COLUMNS + ["x", ""]), min_size=1, max_size=7),
       rows=st.lists(st.lists(st.one_of(texts, numbers.map(str)), max_size=8), max_size=8),
       sep=st.sampled_from([",", ";", "\t", "|"]))
def test_random_csv_text(tmp_path_factory, header, rows, sep):
    lines = [sep.join(header)] + [sep.join(r) for r in rows]
    path = tmp_path_factory.mktemp("fuzz") / "e.csv"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
    _check(path)


@FUZZ
@given(blob=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".parquet", ".gz", ".nc"]))
def test_random_bytes(tmp_path_factory, blob, suffix):
    path = tmp_path_factory.mktemp("fuzz") / f"e{suffix}"
    path.write_bytes(blob)
    _check(path)


@pytest.mark.parametrize("prefix", [b"PAR1", b"\x1f\x8b", b"\x89HDF\r\n\x1a\n", b"CDF\x01"])
def test_truncated_files_with_real_signatures(tmp_path, prefix):
    path = tmp_path / "e.csv"
    path.write_bytes(prefix + bytes(range(40)))
    with pytest.raises(InputError):
        load_journeys(path)
