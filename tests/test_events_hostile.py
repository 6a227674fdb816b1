"""Hostile event logs (issue 12.2, 12.5, 13.1): every bad input ends in a clear error or an
honest count, and surprises in valid data are said out loud. Library and CLI for each case."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import assert_one_error_line

from journeymodel.data.events import read_events
from journeymodel.data.journeys import load_journeys
from journeymodel.errors import DataWarning, InputError, OptionError

DAY = 86400.0


def _log(n_customers=6, per=4, start="2025-01-01", **extra):
    """A small clean log: customer c<i> has ``per`` web/email rows a day apart, then a
    conversion for even customers."""
    rows = []
    t0 = pd.Timestamp(start, tz="UTC")
    for i in range(n_customers):
        for k in range(per):
            rows.append((f"c{i}", t0 + pd.Timedelta(days=i + k), ["web", "email"][k % 2]))
        if i % 2 == 0:
            rows.append((f"c{i}", t0 + pd.Timedelta(days=i + per), "conversion"))
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "touchpoint"])
    df["timestamp"] = df["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    for k, v in extra.items():
        df[k] = v
    return df


def quiet_read(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return read_events(*args, **kw)


# -- DataWarning lives in errors.py and is exported at the top level ---------------------------

def test_datawarning_import_paths_are_the_same_class():
    import journeymodel
    from journeymodel.errors import DataWarning as A

    assert journeymodel.DataWarning is A and issubclass(A, UserWarning)
    assert "DataWarning" in journeymodel.__all__


# -- NUL characters in names -----------------------------------------------------------------

def test_nul_in_touchpoint_is_removed_and_counted():
    df = _log()
    df.loc[1, "touchpoint"] = "em\x00ail"
    df.loc[2, "touchpoint"] = "\x00"
    with pytest.warns(DataWarning, match=r"1 missing touchpoint.*invalid fields in kept rows: "
                                         r"2 touchpoint.*NUL characters removed"):
        t = read_events(df)
    assert t.ledger.invalid_fields == {"touchpoint": 2}
    assert t.ledger.dropped == {"missing_touchpoint": 1}  # "\x00" alone is blank: missing
    assert "em\x00ail" not in t.labels and set(t.labels) == {"conversion", "email", "web"}
    with pytest.raises(InputError, match=r"row 2, column 'touchpoint': NUL character in the "
                                         r"name \(strict mode\)"):
        read_events(df, strict=True)


def test_nul_in_persona_and_device_is_removed():
    df = _log(persona="p\x00a", device="mo\x00bile")
    t = quiet_read(df)
    assert t.personas == ("pa",) and t.devices == ("mobile",)
    assert t.ledger.invalid_fields == {"persona": len(df), "device": len(df)}


def test_cli_nul_touchpoint_fits_and_saves(run_cli, tmp_path):
    df = _log()
    df.loc[1, "touchpoint"] = "em\x00ail"
    path = tmp_path / "nul.csv"
    df.to_csv(path, index=False)
    code, out, err = run_cli("describe", path)
    assert code == 0, err
    assert "NUL characters removed" in err and "invalid touchpoint (row kept)" in out
    code, out, err = run_cli("fit", "markov", path, "-o", tmp_path / "m.nc")
    assert code == 0, err
    assert (tmp_path / "m.nc").exists()
    code, out, err = run_cli("inspect", tmp_path / "m.nc")
    assert code == 0, err


# -- timestamps outside pandas' nanosecond range -------------------------------------------------

def test_years_1600_and_2300_in_text_are_read_exactly():
    df = _log(n_customers=2, per=2)
    df.loc[0, "timestamp"] = "1600-01-01T00:00:00Z"
    df.loc[1, "timestamp"] = "2300-06-01T12:00:00Z"
    t = quiet_read(df)
    assert t.time_kind == "datetime" and t.ledger.rows_used == len(df)
    assert t.time.min() == pd.Timestamp("1600-01-01", tz="UTC").timestamp()
    assert t.time.max() == pd.Timestamp("2300-06-01T12:00", tz="UTC").timestamp()


@pytest.mark.parametrize("arrow_type", [pa.timestamp("us", tz="UTC"), pa.timestamp("ms"),
                                        pa.date32()])
def test_parquet_dates_in_2300_are_read(tmp_path, arrow_type):
    when = [pd.Timestamp("2025-01-01"), pd.Timestamp("2025-01-02"), pd.Timestamp("2300-01-01")]
    values = ([w.date() for w in when] if arrow_type == pa.date32()
              else [w.to_pydatetime() for w in when])
    table = pa.table({"customer_id": ["a", "a", "b"], "timestamp": pa.array(values, arrow_type),
                      "touchpoint": ["web", "conversion", "web"]})
    path = tmp_path / "e.parquet"
    pq.write_table(table, path)
    t = read_events(path)  # one row in three is no "small tail": no warning
    assert t.time.max() == pd.Timestamp("2300-01-01", tz="UTC").timestamp()
    assert t.time.min() == pd.Timestamp("2025-01-01", tz="UTC").timestamp()


def test_observed_until_before_the_first_event_is_an_error():
    with pytest.raises(InputError, match=r"no usable rows: --observed-until 1600-01-01 is before "
                                         r"the first event \(2025-01-01 00:00:00 UTC\)"):
        read_events(_log(), observed_until="1600-01-01")
    t = quiet_read(_log(), observed_until="2300-01-01")  # after everything: fine
    assert t.observed_until == pd.Timestamp("2300-01-01", tz="UTC").timestamp()


def test_cli_out_of_range_years(run_cli, tmp_path):
    df = _log()
    df.loc[0, "timestamp"] = "2300-01-01T00:00:00Z"
    path = tmp_path / "far.csv"
    df.to_csv(path, index=False)
    code, out, err = run_cli("describe", path, "--json")
    assert code == 0, err
    assert "end of observation" in err and "--observed-until" in err
    code, _, err = run_cli("describe", path, "--observed-until", "1600-01-01")
    assert_one_error_line(code, err, r"far\.csv: no usable rows: --observed-until 1600-01-01 "
                                     r"is before the first event")


# -- epoch seconds mixed with milliseconds ---------------------------------------------------------

def test_epoch_seconds_mixed_with_milliseconds_are_read_by_size():
    base = 1735689600  # 2025-01-01
    df = pd.DataFrame({"customer_id": ["a", "a", "b", "b"],
                       "timestamp": [base, (base + 60) * 1000, base + 120, (base + 180) * 1000],
                       "touchpoint": ["web", "email", "web", "conversion"]})
    with pytest.warns(DataWarning, match=r"mixes epoch units: 2 in seconds \(e\.g\. row 1: "
                                         r"1735689600\), 2 in milliseconds \(e\.g\. row 2: "
                                         r"1735689660000\)"):
        t = read_events(df)
    np.testing.assert_array_equal(np.sort(t.time), base + np.array([0, 60, 120, 180.0]))
    assert any("mixes epoch units" in n for n in t.ledger.notes)
    # one unit only: no note; microseconds are recognised too
    t = quiet_read(df.assign(timestamp=[(base + k) * 10**6 for k in range(4)]))
    assert t.time.min() == base and not t.ledger.notes


def test_cli_mixed_epoch_units(run_cli, tmp_path):
    path = tmp_path / "epoch.csv"
    path.write_text("customer_id,timestamp,touchpoint\na,1735689600,web\n"
                    "a,1735689660000,conversion\n")
    code, out, err = run_cli("describe", path)
    assert code == 0 and "warning: " in err and "mixes epoch units" in err


# -- non-finite values -----------------------------------------------------------------------------

def test_inf_and_nan_values_are_invalid_fields():
    df = _log(n_customers=2, per=2)
    df["value"] = ["inf", "-inf", "nan", "12.5", "1e300"]
    t = quiet_read(df)
    assert t.ledger.invalid_fields == {"value": 4}
    assert np.nansum(t.value) == 12.5 and not np.isinf(t.value).any()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        js = load_journeys(df)
    assert np.isfinite(js.value).all() and js.value.sum() == 12.5


def test_float_inf_is_invalid_but_float_nan_is_missing():
    df = _log(n_customers=2, per=2)
    df["value"] = [np.inf, np.nan, 3.0, -np.inf, 1.0]
    df["sentiment"] = [1.0, np.inf, 5.0, 3.0, np.nan]
    with pytest.warns(DataWarning, match=r"2 value, 1 sentiment"):
        t = read_events(df)
    assert t.ledger.invalid_fields == {"value": 2, "sentiment": 1}
    assert np.isfinite(t.value[~np.isnan(t.value)]).all()


def test_cli_inf_value_is_counted_in_text_output(run_cli, tmp_path):
    df = _log(n_customers=2, per=2)
    df["value"] = ["inf", None, None, "5", None]
    path = tmp_path / "inf.csv"
    df.to_csv(path, index=False)
    code, out, err = run_cli("describe", path)
    assert code == 0
    assert "invalid value (row kept)" in out and "1 value" in err and "'inf'" in err


# -- Parquet/Arrow columns of the wrong kind -------------------------------------------------------

@pytest.mark.parametrize("column,values,match", [
    ("touchpoint", pa.array([["web"], ["email"]]), r"touchpoint column holds values of type list"),
    ("touchpoint", pa.array([{"a": 1}, {"a": 2}]), r"touchpoint column holds values of type "
                                                   r"struct"),
    ("customer_id", pa.array([[1], [2]]), r"customer column holds values of type list"),
    ("timestamp", pa.array([1, 2], pa.duration("s")), r"time column holds values of type "
                                                       r"duration.*or dates"),
    ("touchpoint", pa.array([b"\xff\xfe", b"web"]), r"touchpoint column holds binary data that "
                                                    r"is not UTF-8"),
])
def test_parquet_column_of_the_wrong_kind(tmp_path, column, values, match):
    cols = {"customer_id": pa.array(["a", "b"]), "timestamp": pa.array([1, 2]),
            "touchpoint": pa.array(["web", "email"])}
    cols[column] = values
    path = tmp_path / "w.parquet"
    pq.write_table(pa.table(cols), path)
    with pytest.raises(InputError, match=rf"w\.parquet, column '{column}': the {match}"):
        read_events(path)


def test_binary_utf8_column_is_read_as_text(tmp_path):
    path = tmp_path / "b.parquet"
    pq.write_table(pa.table({"customer_id": pa.array([b"a", b"a"]), "timestamp": [1, 2],
                             "touchpoint": pa.array([b"web", b"conversion"])}), path)
    t = read_events(path)
    assert t.labels == ("conversion", "web") and list(t.customers) == ["a"]


def test_dataframe_with_mixed_object_column_is_read_as_text():
    df = pd.DataFrame({"customer_id": [1, "a", 1, None], "timestamp": [1, 2, 3, 4],
                       "touchpoint": ["web", "web", "conversion", "web"]})
    t = quiet_read(df)
    assert sorted(t.customers) == ["1", "a"] and t.ledger.dropped == {"missing_customer": 1}


def test_cli_parquet_list_column(run_cli, tmp_path):
    path = tmp_path / "l.parquet"
    pq.write_table(pa.table({"customer_id": ["a"], "timestamp": [1],
                             "touchpoint": pa.array([["web"]])}), path)
    assert_one_error_line(*run_cli("describe", path)[::2],
                          r"l\.parquet, column 'touchpoint': the touchpoint column holds values "
                          r"of type list")


# -- --sep -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("sep", [";;", "", "\n", '"'])
def test_sep_must_be_one_character(tmp_path, sep):
    path = tmp_path / "e.csv"
    _log().to_csv(path, index=False)
    with pytest.raises(OptionError, match=r"--sep must be a single character"):
        read_events(path, sep=sep)


def test_sep_backslash_t_means_tab(tmp_path):
    path = tmp_path / "e.tsv"
    _log().to_csv(path, index=False, sep="\t")
    assert read_events(path, sep="\\t").ledger.rows_used == len(_log())


@pytest.mark.parametrize("sep", [";;", ""])
def test_cli_bad_sep(run_cli, tmp_path, sep):
    path = tmp_path / "e.csv"
    _log().to_csv(path, index=False)
    assert_one_error_line(*run_cli("describe", path, "--sep", sep)[::2],
                          r"--sep must be a single character .* \(got '" + sep + "'\\)")


# -- a model file where an event log belongs -------------------------------------------------------

@pytest.mark.parametrize("magic,match", [
    (b"\x89HDF\r\n\x1a\n" + b"\x00" * 100, r"is a model file \(netCDF-4/HDF5\), not an event "
                                            r"log; commands that read a model: inspect"),
    (b"CDF\x01" + b"\x00" * 100, r"is a model file \(netCDF\)"),
    (b"PK\x03\x04" + b"\x00" * 100, r"is a zip archive \(an Excel workbook\?\)"),
])
def test_other_files_are_named(tmp_path, magic, match):
    path = tmp_path / "thing.csv"
    path.write_bytes(magic)
    with pytest.raises(InputError, match=rf"thing\.csv: {match}"):
        read_events(path)


def test_cli_describe_a_model_file(run_cli, tmp_path):
    events = tmp_path / "e.csv"
    _log().to_csv(events, index=False)
    model = tmp_path / "m.nc"
    assert run_cli("fit", "markov", events, "-o", model)[0] == 0
    assert_one_error_line(*run_cli("describe", model)[::2],
                          r"m\.nc: is a model file .*not an event log")


def test_parquet_without_parquet_suffix_is_read(tmp_path):
    path = tmp_path / "events.dat"
    _log().to_parquet(path)
    assert read_events(path).ledger.rows_used == len(_log())


# -- a tail of rows far in the future moves the end of observation (12.5) --------------------------

def _open_journeys(n=200, late=2):
    """``n`` customers with one open journey each in 2025 (the last one on 2025-04-10), plus
    ``late`` customers with a row in 2200."""
    rows = [(f"c{i}", pd.Timestamp("2025-01-01", tz="UTC") + pd.Timedelta(hours=12 * i), "web")
            for i in range(n)]
    rows += [(f"z{i}", pd.Timestamp("2200-01-01", tz="UTC") + pd.Timedelta(days=i), "web")
             for i in range(late)]
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "touchpoint"])
    return df.assign(timestamp=df.timestamp.dt.strftime("%Y-%m-%d %H:%M:%S"))


def test_far_future_tail_is_warned_with_the_option_to_use():
    df = _open_journeys()
    with pytest.warns(DataWarning, match=r"end of observation \(2200-01-02 00:00:00 UTC\) is set "
                                         r"by 2 rows \(0\.99%\) far after all the others, which "
                                         r"end at 2025-04-10 12:00:00 UTC.*set --observed-until "
                                         r"2025-04-10T12:00:00"):
        js = load_journeys(df)
    assert js.outcome_counts()["censored"] == 2  # the harm: 198 open journeys became drop-offs
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always", DataWarning)
        fixed = load_journeys(df, observed_until="2025-04-10T12:00:00")
    assert not [r for r in rec if "end of observation" in str(r.message)]
    # open within 30 days of the real end: customers 139..199 (12 h apart, the last at +99.5 d)
    assert fixed.outcome_counts()["censored"] == 61
    assert fixed.ledger.dropped == {"after_observed_until": 2}


def test_no_tail_warning_on_a_regular_log():
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always", DataWarning)
        load_journeys(_open_journeys(late=0))
        paused = _open_journeys(late=0)  # a log that pauses 60 days, then resumes for 100 rows
        later = paused.assign(customer_id="y" + paused.customer_id, timestamp=(
            pd.to_datetime(paused.timestamp) + pd.Timedelta(days=160)).dt.strftime(
                "%Y-%m-%d %H:%M:%S")).iloc[:100]
        load_journeys(pd.concat([paused, later]))
    assert not [r for r in rec if "end of observation" in str(r.message)]


def test_cli_far_future_tail(run_cli, tmp_path):
    path = tmp_path / "tail.csv"
    _open_journeys().to_csv(path, index=False)
    code, out, err = run_cli("describe", path)
    assert code == 0 and "--observed-until 2025-04-10T12:00:00" in err


# -- sentiment scale inferred from the bulk (12.5) -------------------------------------------------

def test_sentiment_outliers_do_not_rescale_the_scores():
    rng = np.random.default_rng(0)
    n = 400
    scores = rng.integers(1, 6, n).astype(float)
    scores[[7, 11]] = [99, -50]
    df = pd.DataFrame({"customer_id": [f"c{i % 50}" for i in range(n)],
                       "timestamp": np.arange(n) + 1_735_689_600,
                       "touchpoint": "web", "sentiment": scores})
    with pytest.warns(DataWarning, match=r"2 sentiment scores lie outside the scale 1\.\.5 "
                                         r"inferred from the other scores \(e\.g\. row 8: 99\)"):
        t = read_events(df)
    assert any("sentiment scale 1..5 inferred" in n for n in t.ledger.notes)
    assert t.ledger.invalid_fields == {"sentiment": 2}
    ok = np.isfinite(t.sentiment)
    raw = scores[t.row][ok]
    np.testing.assert_allclose(t.sentiment[ok], (raw - 3) / 2)  # 1 -> -1, 3 -> 0, 5 -> 1


@pytest.mark.parametrize("values,scale", [
    ([0, 3, 7, 10, 9, 8], (0, 10)), ([1, 10, 4], (1, 10)), ([0, 55, 100], (0, 100)),
    ([-0.8, 0.2, 0.9], (-1, 1)), ([2, 3, 4], (1, 5)), ([0.1, 0.7], (0, 1)),
    ([-80, 20, 75], (-100, 100))])
def test_common_sentiment_scales_are_recognised(values, scale):
    from journeymodel.data.datachecks import infer_sentiment_scale

    assert infer_sentiment_scale(np.asarray(values, float)) == (tuple(map(float, scale)), True)


def test_sentiment_on_no_common_scale_warns_and_uses_the_range():
    df = _log(n_customers=2, per=2, sentiment=[-3, 2, 0, 1, -1])
    with pytest.warns(DataWarning, match=r"fit no common scale.*-3\.\.2.*--sentiment-scale"):
        t = read_events(df)
    assert np.nanmin(t.sentiment) == -1 and np.nanmax(t.sentiment) == 1


def test_constant_sentiment_uses_the_narrowest_common_scale():
    from journeymodel.data.datachecks import infer_sentiment_scale

    assert infer_sentiment_scale(np.full(10, 4.0)) == ((1.0, 5.0), False)
    t = quiet_read(_log(n_customers=2, per=2, sentiment=4))
    np.testing.assert_allclose(t.sentiment, 0.5)


def test_cli_sentiment_scale_said(run_cli, tmp_path):
    df = _log(n_customers=4, per=3)
    df["sentiment"] = [1, 2, 3, 4, 5] * (len(df) // 5) + [3] * (len(df) % 5)
    path = tmp_path / "s.csv"
    df.to_csv(path, index=False)
    code, out, err = run_cli("describe", path)
    assert code == 0 and "sentiment scale 1..5 inferred" in out


# -- no conversion rows (13.1) ---------------------------------------------------------------------

def test_no_conversion_rows_names_candidates_and_the_option():
    df = _log(n_customers=12)
    df["touchpoint"] = df.touchpoint.replace({"conversion": "checkout_complete"})
    with pytest.warns(DataWarning, match=r"no conversion rows: no touchpoint is labelled "
                                         r"'conversion'.*'checkout_complete' \(its name; ends "
                                         r"100% of the 6 journeys it is in\)\. If one.*"
                                         r"--conversion-label checkout_complete") as rec:
        js = load_journeys(df)
    assert sum("no conversion rows" in str(r.message) for r in rec) == 1
    assert js.outcome_counts()["conversion"] == 0


def test_no_conversion_candidates_by_behaviour_and_value():
    df = _log(n_customers=12)
    df["touchpoint"] = df.touchpoint.replace({"conversion": "thanks"})
    df["value"] = np.where(df.touchpoint == "thanks", 20.0, np.nan)
    with pytest.warns(DataWarning, match=r"'thanks' \(ends 100% of the 6 journeys it is in; "
                                         r"100% of its rows carry a value\)"):
        load_journeys(df)


def test_cli_no_conversions(run_cli, tmp_path):
    df = _log(n_customers=8)
    df["touchpoint"] = df.touchpoint.replace({"conversion": "purchase"})
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    code, out, err = run_cli("describe", path)
    assert code == 0 and "--conversion-label purchase" in err
    assert err.count("no conversion rows") == 1
    code, out, err = run_cli("describe", path, "--conversion-label", "purchase")
    assert "no conversion rows" not in err and "4 conversions" in out


# -- describe says what it counts, and the ledger shows invalid fields (13.1) ----------------------

def test_cli_describe_counts_line_matches_json(run_cli, tmp_path):
    import json

    df = _log(value=None)
    df.loc[0, "value"] = "12,5 EUR"
    path = tmp_path / "v.csv"
    df.to_csv(path, index=False)
    code, out, err = run_cli("describe", path)
    assert code == 0
    assert "invalid value (row kept)" in out and "'12,5 EUR'" in err
    line = next(x for x in out.splitlines() if x.startswith("counts: "))
    code, js_out, _ = run_cli("describe", path, "--json")
    payload = json.loads(js_out)
    o = payload["outcomes"]
    assert payload["counts"] == line
    assert line.startswith(f"counts: {payload['journeys']} journeys = {o['conversion']} "
                           f"conversions + {o['churn']} churns + {o['dropoff']} drop-offs + "
                           f"{o['censored']} censored")
    assert payload["invalid_fields"] == {"value": 1}
