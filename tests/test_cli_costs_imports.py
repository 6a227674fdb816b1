"""The fixed costs of a fresh ``journeymodel attribute EVENTS --json`` process (issue 20):
Parquet read without ``pyarrow.parquet`` (and its ``pyarrow.fs``, ``ssl``), no ``tomllib``
without a config file, no output helpers without ``-o``, numpy loaded with OpenBLAS's threads
asleep when idle; each giving what the public, slower path gives."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from journeymodel.data.parquet import parquet_file

NOT_IMPORTED = ("pyarrow.parquet", "pyarrow.fs", "ssl", "tomllib", "journeymodel.io.outputs")


def _fresh(code: str, *args: str, env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def nested(tmp_path_factory):
    """Three row groups; a struct column (two leaves), text for dictionaries, a list column."""
    table = pa.table({
        "customer_id": ["a", "b", "a", "c", "b", "a"],
        "point": pa.array([{"x": i, "y": -i} for i in range(6)]),
        "touchpoint": ["web", "email", "web", "web", "call", "email"],
        "tags": [[1], [], [2, 3], None, [4], [5]],
    })
    path = tmp_path_factory.mktemp("pq") / "nested.parquet"
    pq.write_table(table, path, row_group_size=2)
    return path


@pytest.mark.parametrize("columns", [None, ["touchpoint"], ["point"], ["point.y", "tags"],
                                     ["tags", "customer_id", "point.x"], ["nope"], []])
@pytest.mark.parametrize("dictionary", [None, ["touchpoint", "customer_id"]])
def test_reads_what_parquet_file_reads(nested, columns, dictionary):
    ours = parquet_file(nested, read_dictionary=dictionary)
    theirs = pq.ParquetFile(nested, read_dictionary=dictionary)
    assert ours.metadata.equals(theirs.metadata)
    assert ours.schema_arrow.equals(theirs.schema_arrow)
    assert ours.read(columns=columns).equals(theirs.read(columns=columns))
    for i in range(theirs.metadata.num_row_groups):
        assert ours.read_row_group(i, columns=columns, use_threads=False).equals(
            theirs.read_row_group(i, columns=columns, use_threads=False))


def test_reads_an_open_file_and_a_footer_already_read(nested):
    with open(nested, "rb") as fh:
        first = parquet_file(fh)
        again = parquet_file(fh, read_dictionary=["touchpoint"], metadata=first.metadata)
        assert again.read().equals(pq.read_table(nested, read_dictionary=["touchpoint"]))
    assert parquet_file(str(nested)).read().equals(pq.read_table(nested))


def test_without_the_private_reader_the_public_class_reads_the_same(nested, monkeypatch):
    from journeymodel.data import parquet

    ours = parquet_file(nested, read_dictionary=["touchpoint"])
    monkeypatch.setattr(parquet, "_Reader", None)
    public = parquet_file(nested, read_dictionary=["touchpoint"], metadata=ours.metadata)
    assert isinstance(public, pq.ParquetFile)
    assert public.read(columns=["point", "touchpoint"]).equals(
        ours.read(columns=["point", "touchpoint"]))


def test_a_file_that_is_not_parquet_is_an_arrow_error(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(pa.ArrowInvalid):
        parquet_file(bad)
    with pytest.raises(OSError):
        parquet_file(tmp_path / "missing.parquet")


def test_the_command_imports_none_of_what_it_does_not_use(nested, tmp_path):
    from journeymodel.data.datasets import make_demo_data

    events = tmp_path / "events.parquet"
    make_demo_data(60, seed=2).events.to_parquet(events)
    code = ("import io, json, sys, contextlib\n"
            "from journeymodel.cli.app import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert main(['attribute', sys.argv[1], '--json', '--draws', '50']) == 0\n"
            f"print(json.dumps([m for m in {NOT_IMPORTED!r} if m in sys.modules]))")
    assert _fresh(code, str(events)) == []


def test_a_config_file_is_still_read_with_tomllib(tmp_path):
    from journeymodel.data.config import load_config

    (tmp_path / "journeymodel.toml").write_text('[read]\ncustomer_col = "user"\n')
    assert load_config(cwd=tmp_path).read == {"customer_col": "user"}


def test_no_config_file_is_an_empty_read_only_table(tmp_path):
    from journeymodel.data.config import Config, load_config

    none = load_config(cwd=tmp_path)
    assert none == Config() == Config(None, {}) and none.path is None and dict(none.read) == {}
    with pytest.raises(TypeError):
        none.read["gap"] = "1D"  # shared by every Config without a file


_THREADS = """
import json, os, sys
{load}
from threadpoolctl import threadpool_info
print(json.dumps([sorted((i["internal_api"], i["num_threads"]) for i in threadpool_info()
                         if i["user_api"] == "blas"), "OPENBLAS_THREAD_TIMEOUT" in os.environ]))
"""


def test_numpy_comes_with_the_same_blas_threads_and_the_environment_untouched():
    import os

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    plain = _fresh(_THREADS.format(load="import numpy"), env=env)
    ours = _fresh(_THREADS.format(
        load="from journeymodel.cli.options import import_numpy; import_numpy()"), env=env)
    assert ours == plain
    assert ours[1] is False
