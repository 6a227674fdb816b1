"""Dates in other formats (issue 13.1): --time-format, detection of common unambiguous formats,
and an error with two examples when most cannot be read or day/month order is ambiguous."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_error_line

from journeymodel.data.events import read_events
from journeymodel.data.timestamps import FORMATS, detect_format
from journeymodel.errors import DataWarning, InputError

WHEN = pd.to_datetime(["2025-01-31 08:05:09", "2025-02-03 17:45:00", "2025-03-13 23:59:59",
                       "2025-12-01 00:00:00"]).tz_localize("UTC")


def _log(stamps):
    n = len(stamps)
    return pd.DataFrame({"customer_id": ["a", "b"] * (n // 2) + ["a"] * (n % 2),
                         "timestamp": stamps, "touchpoint": ["web"] * (n - 1) + ["conversion"]})


def _seconds(when):
    return np.array([w.timestamp() for w in when])


@pytest.mark.parametrize("fmt", [
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y", "%Y/%m/%d %H:%M", "%d.%m.%Y %H:%M", "%m/%d/%Y %I:%M:%S %p",
    "%d-%b-%Y", "%b %d, %Y", "%a, %d %b %Y %H:%M:%S %z", "%Y%m%d"])
def test_common_formats_are_detected_and_read_exactly(fmt):
    stamps = [w.strftime(fmt) for w in WHEN]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        t = read_events(_log(stamps))
    assert t.time_kind == "datetime" and t.ledger.rows_used == 4
    # what the format keeps of each time, read back by pandas with the format named
    expected = _seconds(pd.to_datetime(stamps, format=fmt, utc=True))
    np.testing.assert_array_equal(np.sort(t.time), np.sort(expected))
    iso = pd.to_datetime(pd.Series(stamps), format="ISO8601", errors="coerce").notna().all()
    if not iso:  # pandas' ISO-8601 reader takes 2025/01/31 too: no note needed then
        assert any(repr(fmt) in n for n in t.ledger.notes), t.ledger.notes


def test_every_candidate_format_is_valid_strftime():
    for fmt in FORMATS:
        text = WHEN[0].strftime(fmt)
        assert pd.to_datetime(pd.Series([text]), format=fmt, errors="coerce").notna().all(), fmt


def test_day_first_is_chosen_when_some_day_is_above_12_anywhere_in_the_column():
    # the first 3000 dates have days <= 12 (both orders read the sample); one later does not
    days = pd.date_range("2025-01-01", periods=12, freq="D").tolist() * 250 + [
        pd.Timestamp("2025-01-25")]
    stamps = pd.Series([d.strftime("%d/%m/%Y") for d in days])
    fmt, notes = detect_format(stamps)
    assert fmt == "%d/%m/%Y"
    month_first = pd.Series([d.strftime("%m/%d/%Y") for d in days])
    assert detect_format(month_first)[0] == "%m/%d/%Y"


def test_ambiguous_day_month_order_is_an_error_with_two_examples():
    with pytest.raises(InputError, match=r"column 'timestamp': dates such as '01/02/2025' and "
                                         r"'03/04/2025' read day-first and month-first alike; "
                                         r"give the format with --time-format '%d/%m/%Y' \(day "
                                         r"first\) or --time-format '%m/%d/%Y' \(month first\)"):
        read_events(_log(["01/02/2025", "03/04/2025", "05/06/2025"]))


def test_time_format_option_resolves_the_ambiguity():
    t = read_events(_log(["01/02/2025", "03/04/2025", "05/06/2025"]), time_format="%m/%d/%Y")
    assert t.time.min() == pd.Timestamp("2025-01-02", tz="UTC").timestamp()
    t = read_events(_log(["01/02/2025", "03/04/2025", "05/06/2025"]), time_format="%d/%m/%Y")
    assert t.time.min() == pd.Timestamp("2025-02-01", tz="UTC").timestamp()


def test_mostly_unreadable_timestamps_stop_with_two_examples():
    with pytest.raises(InputError, match=r"column 'timestamp': 3 of 4 timestamps cannot be read "
                                         r"as dates \(ISO-8601 or a common format\) \(e\.g\. row "
                                         r"1: 'soon', row 2: 'later'\); give their format with "
                                         r"--time-format"):
        read_events(_log(["soon", "later", "2025-01-01", "whenever"]))


def test_a_wrong_time_format_is_named_in_the_error():
    with pytest.raises(InputError, match=r"2 of 2 timestamps cannot be read with --time-format "
                                         r"'%Y-%m-%d' \(e\.g\. row 1: '31/01/2025', row 2: "
                                         r"'01/02/2025'\)"):
        read_events(_log(["31/01/2025", "01/02/2025"]), time_format="%Y-%m-%d")


def test_a_minority_of_bad_timestamps_is_dropped_and_counted():
    stamps = [w.strftime("%d/%m/%Y %H:%M") for w in WHEN] + ["n/a"]
    with pytest.warns(DataWarning, match=r"dropped 1 of 5 rows: 1 unparseable timestamp"):
        t = read_events(_log(stamps))
    assert t.ledger.rows_used == 4


def test_time_format_reads_numbers_as_text():
    df = _log([20250131, 20250203, 20250313])
    t = read_events(df, time_format="%Y%m%d")
    assert t.time_kind == "datetime"
    assert t.time.min() == pd.Timestamp("2025-01-31", tz="UTC").timestamp()


def test_yyyymmdd_numbers_are_dates_unless_periods_are_asked_for():
    df = _log([20250131, 20250203, 20251201])
    t = read_events(df)
    assert t.time_kind == "datetime" and any("'%Y%m%d'" in n for n in t.ledger.notes)
    assert t.time.max() == pd.Timestamp("2025-12-01", tz="UTC").timestamp()
    assert read_events(df, timestamps="period").time_kind == "period"
    assert read_events(_log([20250131, 20251341])).time_kind == "period"  # month 13: no date


def test_observed_until_accepts_the_time_format():
    t = read_events(_log(["31/01/2025", "13/02/2025", "20/02/2025"]), time_format="%d/%m/%Y",
                    observed_until="15/02/2025")
    assert t.observed_until == pd.Timestamp("2025-02-15", tz="UTC").timestamp()


def test_observed_until_is_read_with_the_detected_format():
    stamps = ["31/01/2025", "13/02/2025", "20/03/2025"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        t = read_events(_log(stamps), observed_until="01/03/2025")  # 1 March, day first
    assert t.observed_until == pd.Timestamp("2025-03-01", tz="UTC").timestamp()
    assert t.ledger.dropped == {"after_observed_until": 1}


def test_cli_time_format(run_cli, tmp_path):
    path = tmp_path / "dm.csv"
    _log(["01/02/2025", "03/04/2025", "05/06/2025"]).to_csv(path, index=False)
    code, _, err = run_cli("describe", path)
    assert_one_error_line(code, err, r"dm\.csv, column 'timestamp': dates such as '01/02/2025' "
                                     r"and '03/04/2025' read day-first and month-first alike.*"
                                     r"--time-format '%d/%m/%Y'")
    code, out, err = run_cli("describe", path, "--time-format", "%d/%m/%Y", "--json")
    assert code == 0, err
    import json

    assert json.loads(out)["time"]["first"].startswith("2025-02-01")


def test_cli_detected_format_is_noted(run_cli, tmp_path):
    path = tmp_path / "d.csv"
    _log(["31/01/2025 10:00", "01/02/2025 11:30", "13/02/2025 09:00"]).to_csv(path, index=False)
    code, out, err = run_cli("describe", path)
    assert code == 0, err
    assert "read with the format '%d/%m/%Y %H:%M' (detected" in out


def test_cli_unreadable_timestamps(run_cli, tmp_path):
    path = tmp_path / "u.csv"
    _log(["soon", "later", "never"]).to_csv(path, index=False)
    assert_one_error_line(*run_cli("describe", path)[::2],
                          r"u\.csv, column 'timestamp': 3 of 3 timestamps cannot be read.*row 1: "
                          r"'soon', row 2: 'later'.*--time-format")
