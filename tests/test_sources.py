"""Event logs kept as many files (issue 15): a folder, a glob or an fsspec URL is read as one
table, the files in sorted order; the same journeys and ledger as the same rows in one file;
hive partition folders (``date=...``) are no event column unless an option names them; a file
that differs is named."""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_error_line

from journeymodel.data import sources
from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import load_journeys
from journeymodel.data.options import ReadOptions
from journeymodel.data.readers import read_table
from journeymodel.data.sources import hive_values, resolve_source
from journeymodel.errors import InputError


@cache
def demo() -> pd.DataFrame:
    return make_demo_data(120, seed=5).events


def write_by_month(root, kind: str = "parquet") -> pd.DataFrame:
    """The demo log as one file per month under root/date=YYYY-MM/; returns the rows in the
    order the folder is read (months sorted)."""
    df = demo()
    month = pd.to_datetime(df.timestamp).dt.strftime("%Y-%m")
    parts = []
    for key, rows in df.groupby(month, sort=True):
        folder = root / f"date={key}"
        folder.mkdir(parents=True)
        if kind == "parquet":
            rows.to_parquet(folder / "part-0.parquet", index=False)
        else:
            rows.to_csv(folder / "part-0.csv", index=False)
        parts.append(rows)
    return pd.concat(parts, ignore_index=True)


def same_journeys(a, b) -> None:
    assert a.ledger.to_dict() | {"source": ""} == b.ledger.to_dict() | {"source": ""}
    assert a.touchpoints == b.touchpoints and a.personas == b.personas
    np.testing.assert_array_equal(a.codes, b.codes)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    np.testing.assert_array_equal(a.outcome, b.outcome)
    np.testing.assert_array_equal(a.customers[a.customer], b.customers[b.customer])
    assert a.observed_until == b.observed_until


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_folder_reads_like_one_file_of_the_same_rows(tmp_path, kind):
    rows = write_by_month(tmp_path / "events", kind)
    one = tmp_path / f"all.{kind}"
    rows.to_parquet(one, index=False) if kind == "parquet" else rows.to_csv(one, index=False)
    whole = load_journeys(one)
    folder = load_journeys(tmp_path / "events")
    same_journeys(folder, whole)
    assert folder.ledger.rows_read == len(demo())
    assert folder.ledger.source == str(tmp_path / "events")


def test_glob_reads_the_matching_files(tmp_path):
    rows = write_by_month(tmp_path / "events")
    files = sorted((tmp_path / "events").glob("date=*/part-*.parquet"))
    assert len(files) > 3
    got = load_journeys(f"{tmp_path}/events/date=*/part-*.parquet")
    rows.to_parquet(tmp_path / "all.parquet", index=False)
    same_journeys(got, load_journeys(tmp_path / "all.parquet"))
    first_two = f"{tmp_path}/events/date=*/part-*.parquet"
    table, _ = read_table(first_two, ReadOptions())
    assert table.num_rows == len(rows)


def test_ledger_counts_every_row_of_every_file(tmp_path):
    folder = tmp_path / "events"
    folder.mkdir()
    df = demo()
    half = len(df) // 2
    df.iloc[:half].to_csv(folder / "a.csv", index=False)
    bad = df.iloc[half:].copy()
    bad.loc[bad.index[:3], "customer_id"] = None
    bad.to_csv(folder / "b.csv", index=False)
    (folder / "_SUCCESS").write_text("")
    (folder / ".hidden.csv").write_text("junk")
    with pytest.warns(Warning, match="3 missing customer id"):
        js = load_journeys(folder)
    assert js.ledger.rows_read == len(df)
    assert js.ledger.dropped == {"missing_customer": 3}


def test_hive_columns_are_event_columns_only_when_named(tmp_path):
    df = demo().drop(columns=["persona"])
    for region in ("eu", "us"):
        (tmp_path / f"region={region}").mkdir()
        rows = df[df.customer_id.str[-1].isin(list("02468"))] if region == "eu" else df[
            ~df.customer_id.str[-1].isin(list("02468"))]
        rows.to_parquet(tmp_path / f"region={region}" / "p.parquet", index=False)
    table, _ = read_table(tmp_path, ReadOptions())
    assert "region" not in table.column_names
    js = load_journeys(tmp_path, persona_col="region")
    assert js.personas == ("eu", "us")
    assert hive_values("a/b/date=1/x=2/f.parquet", "a/b") == {"date": "1", "x": "2"}


def test_a_file_with_other_columns_is_named(tmp_path):
    write_by_month(tmp_path)
    last = sorted(tmp_path.glob("date=*/*.parquet"))[-1]
    pd.read_parquet(last).rename(columns={"device": "platform"}).to_parquet(last, index=False)
    with pytest.raises(InputError, match=rf"{last}: has no column 'device' \(the first file"
                                         ".*need the same columns"):
        load_journeys(tmp_path)


def test_a_file_with_another_column_type_is_named(tmp_path):
    write_by_month(tmp_path)
    last = sorted(tmp_path.glob("date=*/*.parquet"))[-1]
    pd.read_parquet(last).assign(value="n/a").to_parquet(last, index=False)
    with pytest.raises(InputError, match=rf"{last}, column 'value': is (large_)?string, but "
                                         "double"):
        load_journeys(tmp_path)


def test_empty_folder_and_unmatched_glob(tmp_path):
    with pytest.raises(InputError, match="is a directory without Parquet or CSV files"):
        resolve_source(tmp_path)
    with pytest.raises(InputError, match="no file matches this pattern"):
        resolve_source(f"{tmp_path}/date=*/*.parquet")
    with pytest.raises(InputError, match="does not exist"):
        resolve_source(tmp_path / "missing.csv")


def test_fsspec_url(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    df = demo()
    half = len(df) // 2
    with fs.open("/jm-test/events/a.parquet", "wb") as fh:
        df.iloc[:half].to_parquet(fh, index=False)
    with fs.open("/jm-test/events/b.csv", "wb") as fh:
        fh.write(df.iloc[half:].to_csv(index=False).encode())
    with pytest.raises(InputError, match="memory://.*b.csv, column 'timestamp': is string"):
        load_journeys("memory://jm-test/events")  # Parquet times, CSV text: named
    fs.rm("/jm-test/events/b.csv")
    with fs.open("/jm-test/events/b.parquet", "wb") as fh:
        df.iloc[half:].to_parquet(fh, index=False)
    df.to_parquet(tmp_path / "all.parquet", index=False)
    same_journeys(load_journeys("memory://jm-test/events"),
                  load_journeys(tmp_path / "all.parquet"))
    with pytest.raises(InputError, match="cannot open nosuchfs:// URLs"):
        load_journeys("nosuchfs://bucket/events")
    fs.rm("/jm-test", recursive=True)


def test_a_log_too_big_for_memory_names_workers(tmp_path, monkeypatch):
    write_by_month(tmp_path)
    monkeypatch.setattr(sources, "available_memory", lambda: 1000)
    with pytest.raises(InputError, match=r"about [\d,]+ rows need about .* GiB in one process"
                                         r".*--workers N"):
        load_journeys(tmp_path)


def test_cli_reads_a_folder_and_names_errors(tmp_path, run_cli):
    write_by_month(tmp_path / "events")
    code, out, _ = run_cli("describe", tmp_path / "events", "--json")
    assert code == 0 and f'"rows_read": {len(demo())}' in out
    code, _, err = run_cli("describe", f"{tmp_path}/events/date=1999-*/*.parquet")
    assert_one_error_line(code, err, r"date=1999-\*/\*\.parquet: no file matches")
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("describe", tmp_path / "empty")
    assert_one_error_line(code, err, "empty: is a directory without Parquet or CSV files")
    code, _, err = run_cli("describe", tmp_path / "missing.csv")
    assert_one_error_line(code, err, "missing.csv: file not found")


def test_warnings_name_the_folder(tmp_path):
    write_by_month(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_journeys(tmp_path)  # a clean log: nothing to say
