"""Parquet files of several row groups are read by two threads, one run of row groups each
(issue 20): the table holds the same values as one ``pyarrow.parquet.read_table``, and the
journeys are those of the one-thread read."""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import journeymodel.data.readers as readers
from journeymodel.data.journeys import load_journeys
from journeymodel.data.options import ReadOptions
from journeymodel.errors import DataWarning


def _log(path, sizes, seed=0):
    """A log written as row groups of the given ``sizes`` (a few nulls, a persona column)."""
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    cust = np.array([f"c{k}" for k in rng.integers(0, n // 3 + 1, n)], dtype=object)
    cust[rng.integers(0, n, 3)] = None
    table = pa.table({
        "customer_id": pa.array(cust, pa.string()),
        "timestamp": pa.array(np.sort(rng.integers(0, 10**6, n)) * 10**6,
                              pa.timestamp("us", tz="UTC")),
        "touchpoint": rng.choice(["web", "email", "conversion"], n).tolist(),
        "persona": rng.choice(["a", "b"], n).tolist(),
        "unused": np.arange(n),
    })
    with pq.ParquetWriter(path, table.schema) as writer:
        at = 0
        for size in sizes:
            writer.write_table(table.slice(at, size), row_group_size=size)
            at += size
    return table


@pytest.mark.parametrize("sizes", [[5, 300], [300, 5], [100, 100, 100], [1, 1, 1, 1, 400],
                                   [250]])
def test_two_threads_read_the_same_values(tmp_path, monkeypatch, sizes):
    monkeypatch.setattr(readers, "THREAD_ROWS", 1)
    path = tmp_path / "log.parquet"
    written = _log(path, sizes)
    assert pq.ParquetFile(path).metadata.num_row_groups == len(sizes)
    table, _ = readers.read_table(path, ReadOptions())
    assert table.column_names == ["customer_id", "timestamp", "touchpoint", "persona"]
    assert table.num_rows == sum(sizes)
    if len(sizes) > 1:  # one chunk per row group: nothing concatenated
        assert table["customer_id"].num_chunks == len(sizes)
        assert pa.types.is_dictionary(table["touchpoint"].type)
    for name in table.column_names:
        got = table[name]
        if pa.types.is_dictionary(got.type):
            got = got.cast(got.type.value_type)
        assert got.combine_chunks().equals(written[name].combine_chunks())


def test_halves_cut_at_half_the_rows():
    class Meta:
        def __init__(self, rows):
            self.rows, self.num_row_groups = rows, len(rows)

        def row_group(self, i):
            return type("RowGroup", (), {"num_rows": self.rows[i]})()

    big = readers.THREAD_ROWS
    assert readers._row_group_halves(Meta([big])) is None  # one row group
    assert readers._row_group_halves(Meta([10, 10])) is None  # too few rows
    assert readers._row_group_halves(Meta([big] * 8)) == [range(0, 4), range(4, 8)]
    assert readers._row_group_halves(Meta([big, 1, 1, big])) == [range(0, 2), range(2, 4)]
    assert readers._row_group_halves(Meta([1, 1, big])) == [range(0, 2), range(2, 3)]


def test_journeys_equal_those_of_a_one_thread_read(tmp_path, monkeypatch):
    path = tmp_path / "log.parquet"
    _log(path, [700, 1, 900, 400], seed=4)
    out = []
    for rows in (1, 1 << 62):
        monkeypatch.setattr(readers, "THREAD_ROWS", rows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            out.append(load_journeys(path, persona_col="persona"))
    new, old = out
    assert new.ledger.to_dict() == old.ledger.to_dict()
    assert new.ledger.dropped["missing_customer"] >= 1
    for name in ("codes", "offsets", "outcome", "customer", "customers", "persona", "start",
                 "end", "times", "value"):
        np.testing.assert_array_equal(getattr(new, name), getattr(old, name))
    assert new.touchpoints == old.touchpoints and new.personas == old.personas
