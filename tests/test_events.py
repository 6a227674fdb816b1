"""Reading event logs: formats, timestamps, the ledger, strict mode."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeymodel.data.events import read_events
from journeymodel.data.journeys import load_journeys
from journeymodel.data.options import ReadOptions, parse_gap
from journeymodel.errors import DataWarning, InputError, OptionError

BASE = pd.DataFrame({
    "customer_id": ["a", "a", "b", "b", "c"],
    "timestamp": ["2025-01-01T10:00:00Z", "2025-01-02", "2025-01-01T12:00:00+02:00",
                  "2025-01-03 08:00", "2025-01-04"],
    "touchpoint": ["email", "conversion", "web", "web", "call"],
    "persona": ["p1", "p1", "p2", "p2", "p1"],
    "value": [None, "120.5", None, None, None],
})


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_csv_delimiter_is_detected(tmp_path, sep):
    path = tmp_path / "events.csv"
    BASE.to_csv(path, sep=sep, index=False)
    table = read_events(path)
    assert table.ledger.rows_read == 5 and table.ledger.rows_used == 5
    assert table.labels == ("call", "conversion", "email", "web")
    assert np.nanmax(table.value) == 120.5


def test_parquet_and_dataframe_give_the_same_journeys(tmp_path):
    path = tmp_path / "events.parquet"
    BASE.to_parquet(path)
    a, b = load_journeys(path), load_journeys(BASE)
    np.testing.assert_array_equal(a.codes, b.codes)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    np.testing.assert_array_equal(a.start, b.start)


def test_timestamps_iso_with_zones_are_utc():
    t = read_events(BASE)
    # b's first event is 12:00+02:00 = 10:00 UTC on 2025-01-01
    ref = pd.Timestamp("2025-01-01T10:00:00Z").value / 1e9
    assert t.time_kind == "datetime"
    assert t.time[2] == ref


def test_datetime_column_epoch_seconds_and_periods():
    ts = pd.to_datetime(["2025-01-01", "2025-01-02"]).tz_localize("Europe/Paris")
    df = pd.DataFrame({"customer_id": ["a", "a"], "timestamp": ts, "touchpoint": ["x", "y"]})
    t = read_events(df)
    assert t.time_kind == "datetime"
    assert t.time[0] == pd.Timestamp("2024-12-31T23:00:00Z").value / 1e9
    epoch = df.assign(timestamp=[1735689600, 1735776000])
    assert read_events(epoch).time_kind == "datetime"
    assert read_events(epoch.assign(timestamp=[1735689600000, 1735776000000])).time[0] == (
        1735689600)
    periods = df.assign(timestamp=[1, 2])
    assert read_events(periods).time_kind == "period"
    assert read_events(periods, timestamps="epoch").time_kind == "datetime"


def test_ledger_counts_each_reason_and_warns_once():
    df = pd.DataFrame({
        "customer_id": ["a", None, "b", "b", "c", "c", " "],
        "timestamp": ["2025-01-01", "2025-01-01", None, "tomorrow", "2025-01-02", "2025-01-02",
                      "2025-01-02"],
        "touchpoint": ["web", "web", "web", "web", "", "email", "web"],
    })
    df = pd.concat([df, df.iloc[[5]]], ignore_index=True)  # an exact duplicate of row 5
    with pytest.warns(DataWarning, match="dropped 6 of 8 rows") as record:
        t = read_events(df)
    assert len(record) == 1
    assert t.ledger.dropped == {"missing_customer": 2, "missing_timestamp": 1,
                                "bad_timestamp": 1, "missing_touchpoint": 1, "duplicate": 1}
    assert t.ledger.rows_used == 2


def test_strict_mode_names_file_row_column_and_value(tmp_path):
    path = tmp_path / "bad.csv"
    bad = BASE.copy()
    bad.loc[3, "timestamp"] = "31/02/2025 noon"
    bad.to_csv(path, index=False)
    with pytest.raises(InputError, match=r"bad\.csv, row 4, column 'timestamp': cannot parse "
                                         r"timestamp \(strict mode\) \(got '31/02/2025 noon'\)"):
        read_events(path, strict=True)


def test_invalid_value_keeps_row_and_is_counted():
    df = BASE.assign(value=[None, "12,5 EUR", None, None, "3"])
    t = read_events(df)
    assert t.ledger.rows_used == 5
    assert t.ledger.invalid_fields == {"value": 1}
    with pytest.raises(InputError, match=r"column 'value': invalid value \(strict mode\)"):
        read_events(df, strict=True)


def test_missing_column_lists_columns_and_option():
    with pytest.raises(InputError, match=r"missing required column 'ts'.*--time-col NAME"):
        read_events(BASE, time_col="ts")
    with pytest.raises(InputError, match="given by --persona-col does not exist"):
        read_events(BASE, persona_col="segment")


def test_empty_inputs(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="empty"):
        read_events(empty)
    header = tmp_path / "header.csv"
    header.write_text("customer_id,timestamp,touchpoint\n")
    with pytest.raises(InputError, match="no rows"):
        read_events(header)
    with pytest.raises(InputError, match="no usable rows"):
        read_events(pd.DataFrame({"customer_id": [None], "timestamp": [1],
                                  "touchpoint": ["x"]}))


def test_not_a_parquet_file(tmp_path):
    path = tmp_path / "x.parquet"
    path.write_text("hello")
    with pytest.raises(InputError, match="cannot read as Parquet"):
        read_events(path)


@pytest.mark.parametrize("gap,kind,expected", [
    ("auto", "datetime", 30 * 86400.0), ("auto", "period", None), ("none", "datetime", None),
    ("12h", "datetime", 43200.0), ("3", "period", 3.0), (7, "period", 7.0)])
def test_parse_gap(gap, kind, expected):
    assert parse_gap(gap, kind) == expected


@pytest.mark.parametrize("gap", ["-1", "soon", "0"])
def test_parse_gap_rejects(gap):
    with pytest.raises(OptionError, match="--gap"):
        parse_gap(gap, "datetime")


def test_sentiment_scale_normalises_and_counts_out_of_scale():
    df = BASE.assign(sentiment=[1, 5, 3, 9, None])
    t = read_events(df, sentiment_scale=(1, 5))
    np.testing.assert_allclose(t.sentiment, [-1, 1, 0, np.nan, np.nan])
    assert t.ledger.invalid_fields == {"sentiment": 1}


# -- the ledger adds up on messy input ------------------------------------------------------

messy_cell = st.one_of(st.none(), st.just(""), st.just("  "), st.sampled_from(["a", "b", "c"]))
messy_time = st.one_of(st.none(), st.just(""), st.just("not a date"),
                       st.sampled_from(["2025-01-01", "2025-01-02T03:00:00Z", "2025-02-10",
                                        "2025-01-02T03:00:00+05:00"]))
messy_tp = st.one_of(st.none(), st.just(""),
                     st.sampled_from(["web", "email", "conversion", "churn", "call"]))
rows = st.lists(st.tuples(messy_cell, messy_time, messy_tp), min_size=1, max_size=40)


clean_rows = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]),
                                st.sampled_from(["2025-01-01", "2025-01-02T03:00:00Z"]),
                                st.sampled_from(["web", "email", "call"])), min_size=1, max_size=20)


@st.composite
def mostly_clean(draw):
    """Clean rows with at most as many messy rows mixed in: the log is always readable, so
    every example checks the ledger (the error path has its own test below)."""
    clean = draw(clean_rows)
    messy = draw(st.lists(st.tuples(messy_cell, messy_time, messy_tp), max_size=len(clean)))
    return draw(st.permutations(clean + messy))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows)
def test_messy_logs_either_read_or_say_why(rows):
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "touchpoint"], dtype=object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        try:
            js = load_journeys(df)
        except InputError as exc:
            assert ("no usable rows" in str(exc) or "no touchpoints" in str(exc)
                    or "timestamps cannot be read" in str(exc))
            return
    assert js.ledger.rows_used + js.ledger.rows_dropped == js.ledger.rows_read == len(df)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=mostly_clean(), observed=st.one_of(st.none(), st.just("2025-01-15")))
def test_ledger_adds_up_on_messy_logs(rows, observed):
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "touchpoint"], dtype=object)
    opts = ReadOptions(observed_until=observed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        js = load_journeys(df, opts)
    led = js.ledger
    assert led.rows_read == len(df)
    assert led.rows_used + led.rows_dropped == led.rows_read
    # every used row is in exactly one journey: touchpoints plus outcome rows
    n_outcome_rows = int(np.isin(js.outcome, [0, 1]).sum())
    assert js.n_events + n_outcome_rows == led.rows_used
    assert (js.lengths >= 0).all() and js.offsets[-1] == js.n_events
    # journeys of one customer are in time order and do not overlap
    same = js.customer[1:] == js.customer[:-1]
    assert (js.start[1:][same] >= js.end[:-1][same]).all()


def _lexsort_reference(customer, time):
    return np.lexsort((np.arange(len(time)), time, customer))


@pytest.mark.parametrize("layout", ["time_sorted", "grouped", "random", "grouped_unsorted"])
@pytest.mark.parametrize("n_customers", [7, 70_000])
@pytest.mark.parametrize("whole", [True, False])
def test_customer_time_order_matches_lexsort(layout, n_customers, whole):
    from journeymodel.data.ordering import customer_time_order

    rng = np.random.default_rng(n_customers)
    n = 200_000
    customer = rng.integers(0, n_customers, n)
    time = rng.integers(0, 500, n).astype(float)  # many ties
    if not whole:
        time += rng.random(n).round(1)
    if layout == "time_sorted":
        time = np.sort(time)
    elif layout == "grouped":
        order = np.lexsort((time, customer))
        customer, time = customer[order], time[order]
    elif layout == "grouped_unsorted":  # grouped by customer, times not in order
        customer = np.sort(customer)
    got = customer_time_order(customer, time)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, _lexsort_reference(customer, time))


def test_customer_time_order_wide_keys_fall_back_to_stable_argsort():
    from journeymodel.data.ordering import customer_time_order

    rng = np.random.default_rng(1)
    customer = rng.integers(0, 3, 1000)
    time = rng.integers(0, 2**40, 1000).astype(float)  # key + row number exceed 63 bits
    time[::7] = time[0]
    np.testing.assert_array_equal(customer_time_order(customer, time),
                                  _lexsort_reference(customer, time))


@pytest.mark.parametrize("row_group_size", [None, 2])  # one dictionary per file or per group
def test_parquet_reads_only_usable_columns_and_gives_the_same_table(tmp_path, row_group_size):
    df = BASE.assign(notes=["x"] * 5, device=["mobile", "desktop", None, "mobile", "tablet"],
                     customer_id=["b ", "a", "b", None, " c"])
    path = tmp_path / "events.parquet"
    df.to_parquet(path, row_group_size=row_group_size)
    from journeymodel.data.readers import read_table

    table, _ = read_table(path, ReadOptions())
    assert "notes" not in table.column_names
    assert str(table.schema.field("touchpoint").type).startswith("dictionary")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # the missing customer id
        a, b = read_events(path), read_events(df)
    for f in ("customer", "customers", "time", "touchpoint", "persona", "device", "row"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert (a.labels, a.personas, a.devices) == (b.labels, b.personas, b.devices)
    assert a.customers.tolist() == ["a", "b", "c"]
    assert a.ledger.dropped == b.ledger.dropped == {"missing_customer": 1}
    # a missing column is reported with every column of the file, as before
    with pytest.raises(InputError, match=r"missing required column 'tp'.*'notes'"):
        read_events(path, touchpoint_col="tp")


@pytest.mark.parametrize("row_group_size", [None, 3])
def test_parquet_clean_customer_ids_keep_first_appearance_order(tmp_path, row_group_size):
    df = pd.DataFrame({"customer_id": ["z", "y", "z", "x", "y", "w", "x"],
                       "timestamp": np.arange(7.0),
                       "touchpoint": ["web", "web", "email", "web", "conversion", "web", "web"]})
    path = tmp_path / "events.parquet"
    df.to_parquet(path, row_group_size=row_group_size)
    a, b = read_events(path), read_events(df)
    assert a.customers.tolist() == b.customers.tolist() == ["z", "y", "x", "w"]
    np.testing.assert_array_equal(a.customer, b.customer)
    np.testing.assert_array_equal(a.row, b.row)
