"""Read an event log (a file, a folder or glob of files, a URL, a DataFrame) into an Arrow
table, or say clearly why not.

CSV (any one-character delimiter, sniffed when not given; ``.gz``), Parquet (recognised by its
signature whatever the suffix) and pandas DataFrames (object columns mixing types are read as
text). Model files, zip archives (Excel) and old Office files given where an event log belongs
are named as such. Used by :mod:`journeymodel.data.events` and :mod:`journeymodel.data.journeys`.
"""

from __future__ import annotations

import csv
import io
import sys
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from journeymodel.data.arrow_numpy import scalar
from journeymodel.data.compute import cast
from journeymodel.errors import InputError, OptionError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from journeymodel.data.options import ReadOptions

#: From this many rows a Parquet file of several row groups is read by two threads.
THREAD_ROWS = 1 << 18


def read_table(source: str | Path | pd.DataFrame, options: ReadOptions) -> tuple[pa.Table, str]:
    """Read ``source`` into an Arrow table; returns the table and a name for messages.

    ``source`` is a DataFrame, an Arrow table, or where the log lives: a file, a folder of
    Parquet/CSV files, a glob or an fsspec URL (:func:`journeymodel.data.sources.
    resolve_source`). The files of a folder or glob are read in sorted order as one table: they
    must have the same columns (an InputError names the file that differs); hive partition
    values in their paths (``date=2025-01-01/``) become a column only where an option names
    it (``--persona-col region``). A log too big for this process's memory is refused with a
    message naming ``--workers`` (:func:`journeymodel.data.sources.check_fits_in_memory`).
    """
    if _is_dataframe(source):
        return _from_pandas(source), "<DataFrame>"
    if isinstance(source, pa.Table):
        return source, "<Table>"
    from journeymodel.data.sources import check_fits_in_memory, resolve_source

    src = resolve_source(source)
    check_fits_in_memory(src)
    if len(src.files) == 1:
        path = src.files[0]
        return read_file(path, options, fs=src.fs, name=src.label(path),
                         hive=src.hive(path)), src.name
    tables = [read_file(f, options, fs=src.fs, name=src.label(f), hive=src.hive(f))
              for f in src.files]
    return concat_files(tables, [src.label(f) for f in src.files]), src.name


def read_file(path: str | Path, options: ReadOptions, *, fs: Any = None,
              name: str | None = None, hive: dict[str, str] | None = None) -> pa.Table:
    """Read one event-log file (local, or through the fsspec filesystem ``fs``).

    ``name`` is the file's name in messages; ``hive`` its partition values, added as text
    columns where an option names a column the file lacks.
    """
    name = str(path) if name is None else name
    if fs is None:
        path = Path(path)
        if not path.exists():
            raise InputError("file not found", source=name)
        if path.is_dir():
            raise InputError("is a directory, expected an event log file", source=name)
        size = path.stat().st_size
    else:
        size = int(fs.size(path) or 0)
    if size == 0:
        raise InputError("the file is empty", source=name)
    sep = _check_sep(options.sep)
    with (open(path, "rb") if fs is None else fs.open(path, "rb")) as fh:
        magic = fh.read(8)
    _refuse_other_files(magic, name)
    suffixes = [s.lower() for s in Path(str(path)).suffixes]
    parquet = magic[:4] == b"PAR1" or bool(suffixes and suffixes[-1] in (".parquet", ".pq"))
    try:
        if parquet:
            table = _read_parquet(path if fs is None else fs.open(path, "rb"), options)
        else:
            table = _read_csv(path, sep, fs=fs, name=name)
    except (pa.ArrowException, UnicodeDecodeError, csv.Error, OSError, EOFError) as exc:
        kind = "Parquet" if parquet else "CSV"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read as {kind}: {first}", source=name) from exc
    return _with_hive(table, hive or {}, options)


def _with_hive(table: pa.Table, hive: dict[str, str], o: ReadOptions) -> pa.Table:
    """Partition values (``region=eu/``) as columns, only those an option names."""
    named = {o.customer_col, o.time_col, o.touchpoint_col, o.persona_col, o.value_col,
             o.sentiment_col, o.device_col} - {None}
    for key, value in hive.items():
        if key in named and key not in table.column_names:
            table = table.append_column(key, pa.repeat(scalar(value, pa.string()),
                                                       table.num_rows))
    return table


def columns_differ(columns: list[str], first: list[str], first_name: str) -> str:
    """How a file's columns differ from the first file's (for an InputError naming it)."""
    missing = [c for c in first if c not in columns]
    extra = [c for c in columns if c not in first]
    text = "; ".join(part for part in (
        f"has no column {', '.join(map(repr, missing))}" if missing else "",
        f"has the extra column {', '.join(map(repr, extra))}" if extra else "") if part)
    return (f"{text or f'has columns {columns}'} (the first file, {first_name}, has {first}); "
            "the files of one event log need the same columns")


def concat_files(tables: list[pa.Table], names: list[str]) -> pa.Table:
    """The tables of a log's files as one table, in order; every file must have the first
    file's columns (in any order), of types Arrow can unify (an InputError names the file)."""
    first = tables[0].column_names
    for table, name in zip(tables[1:], names[1:], strict=True):
        if set(table.column_names) != set(first) or len(table.column_names) != len(first):
            raise InputError(columns_differ(table.column_names, first, names[0]), source=name)
    tables = [t.select(first) for t in tables]
    for i, col in enumerate(first):  # dictionaries in some files, plain text in others
        types = {t.schema.field(i).type for t in tables}
        if len(types) > 1 and any(pa.types.is_dictionary(t) for t in types):
            tables = [t.set_column(i, col, cast(t[col], t.schema.field(i).type.value_type))
                      if pa.types.is_dictionary(t.schema.field(i).type) else t
                      for t in tables]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        for table, name in zip(tables[1:], names[1:], strict=True):
            for i, col in enumerate(first):
                a, b = tables[0].schema.field(i).type, table.schema.field(i).type
                if a != b:
                    raise InputError(f"is {b}, but {a} in {names[0]}; the files of one "
                                     "event log need the same column types",
                                     source=name, column=col) from exc
        raise InputError(f"cannot combine the files: {exc}", source=names[0]) from exc


#: File signatures that are not event logs, with what to tell the user.
_SIGNATURES = (
    (b"\x89HDF\r\n\x1a\n", "is a model file (netCDF-4/HDF5), not an event log; commands that "
     "read a model: inspect, attribute, predict, simulate, forecast, pain-points, report"),
    (b"CDF\x01", "is a model file (netCDF), not an event log"),
    (b"CDF\x02", "is a model file (netCDF), not an event log"),
    (b"PK\x03\x04", "is a zip archive (an Excel workbook?), not an event log; export it as "
     "CSV or Parquet"),
    (b"\xd0\xcf\x11\xe0", "is an old Excel/Office file, not an event log; export it as CSV"),
)


def _refuse_other_files(magic: bytes, name: str) -> None:
    for signature, message in _SIGNATURES:
        if magic.startswith(signature):
            raise InputError(message, source=name)


def _check_sep(sep: str | None) -> str | None:
    """``--sep``: one character; ``\\t`` and ``tab`` mean a tab."""
    if sep is None:
        return None
    if sep in ("\\t", "tab", "TAB"):
        return "\t"
    if len(sep) != 1 or sep in "\r\n\"":
        raise OptionError(f"--sep must be a single character such as , ; | or \\t "
                          f"(got {sep!r})")
    return sep


def _is_dataframe(source: Any) -> bool:
    """``source`` is a pandas DataFrame. pandas is not imported here: reading a Parquet or
    CSV log does not need it, and no ingestion path imports it (a third of a second; see
    :mod:`journeymodel.data.arrow_numpy`, issue 20)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(source, pandas.DataFrame)


def _from_pandas(df: pd.DataFrame) -> pa.Table:
    """A DataFrame as an Arrow table; object columns mixing types (ids ``1`` and ``"a"``) are
    read as text, and a column Arrow cannot hold is an InputError naming it."""
    if len(set(map(str, df.columns))) != len(df.columns):
        dup = sorted({str(c) for c in df.columns if list(map(str, df.columns)).count(str(c)) > 1})
        raise InputError(f"duplicate column names {dup}", source="<DataFrame>")
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        pass
    arrays = {}
    for col in df.columns:
        series = df[col]
        try:
            arrays[str(col)] = pa.array(series, from_pandas=True)
            continue
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            pass
        try:
            text = [None if _is_missing(v) else (v.decode("utf-8") if isinstance(v, bytes)
                                                   else str(v)) for v in series.tolist()]
            arrays[str(col)] = pa.array(text, pa.string())
        except (pa.ArrowException, UnicodeDecodeError, TypeError, ValueError) as exc:
            raise InputError(f"cannot read the column as text or numbers: {exc}",
                             source="<DataFrame>", column=str(col)) from exc
    return pa.table(arrays)


def _is_missing(v: Any) -> bool:
    import pandas as pd

    try:
        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):  # lists, arrays: not a scalar
        return False


def _read_parquet(path: Path | Any, options: ReadOptions) -> pa.Table:
    """Read only the columns an event log can use, low-cardinality text as dictionaries.

    When a required column (or an optional one named explicitly) is missing, everything is read,
    so that the error lists all columns and an aggregated path table is read whole. Touchpoint,
    persona and device text come dictionary-encoded straight from Parquet's own dictionaries
    (a few distinct values: no string per row is materialised). So do customer ids when the
    file has a single row group (one dictionary; 0.8M rows: 14 ms instead of 39 ms); across
    several row groups, merging their dictionaries costs more than encoding the text.

    Read as by :class:`pyarrow.parquet.ParquetFile` (one chunk per column) rather than
    ``pq.read_table`` (whose dataset scanner cuts the columns into batches of 128k rows): the
    same columns, for about half the CPU (8M-row tracker log of issue 20: 0.8-1.0 s against
    1.2-2.0 s of CPU on a busy machine, pandas already imported); opened by
    :func:`journeymodel.data.parquet.parquet_file`, without ``pyarrow.parquet``'s import.
    """
    from journeymodel.data.parquet import parquet_file

    meta = parquet_file(path)
    schema = meta.schema_arrow
    names = schema.names
    o = options
    required = [o.customer_col, o.time_col, o.touchpoint_col]
    named = [c for c in (o.persona_col, o.value_col, o.sentiment_col, o.device_col)
             if c is not None]
    if len(set(names)) != len(names) or any(c not in names for c in required + named):
        return meta.read()
    persona, value, sentiment, device = (
        c if c is not None else default for c, default in (
            (o.persona_col, "persona"), (o.value_col, "value"),
            (o.sentiment_col, "sentiment"), (o.device_col, "device")))
    columns = list(dict.fromkeys(
        required + [c for c in (persona, value, sentiment, device) if c in names]))
    text = {c for c in columns if pa.types.is_string(schema.field(c).type)
            or pa.types.is_large_string(schema.field(c).type)}
    low_card = [c for c in (o.touchpoint_col, persona, device) if c in text]
    if meta.metadata.num_row_groups == 1 and o.customer_col in text:
        low_card.append(o.customer_col)
    halves = _row_group_halves(meta.metadata) if isinstance(path, (str, Path)) else None
    if halves is None:
        return parquet_file(path, read_dictionary=low_card or None,
                            metadata=meta.metadata).read(columns=columns)
    return _read_halves(path, columns, low_card or None, halves, meta.metadata)


def _row_group_halves(metadata) -> list[range] | None:
    """The row groups cut in two runs of about half the rows each, or ``None`` when the
    file has one row group or fewer than :data:`THREAD_ROWS` rows."""
    k = metadata.num_row_groups
    rows = [metadata.row_group(i).num_rows for i in range(k)]
    total = sum(rows)
    if k < 2 or total < THREAD_ROWS:
        return None
    at, cut = 0, 1
    for i, m in enumerate(rows[:-1]):
        at += m
        cut = i + 1
        if 2 * at >= total:
            break
    return [range(0, cut), range(cut, k)]


def _read_halves(path: Path | str, columns: list[str], dictionary: list[str] | None,
                 halves: list[range], metadata: Any = None) -> pa.Table:
    """The columns of a Parquet file read by two threads, one run of row groups each, kept
    as one chunk per row group (no concatenation: the readers' buffers are the columns).

    Against one ``ParquetFile.read`` (which decodes the row groups one after the other and
    then concatenates them), the three columns of the 8M-row tracker log of issue 20 on a
    busy machine: 0.78-0.85 s of CPU against 0.90-0.96 s, 0.41-0.76 s wall against
    0.90-0.95 s, 350-370 MB peak against 446-450 MB. ``metadata``: the file's footer, when
    already read."""
    from journeymodel.data.parquet import parquet_file

    def read(groups: range) -> list[pa.Table]:
        file = parquet_file(path, read_dictionary=dictionary, metadata=metadata)
        return [file.read_row_group(i, columns=columns, use_threads=False) for i in groups]

    with ThreadPoolExecutor(1) as pool:  # pyarrow decodes without the GIL
        other = pool.submit(read, halves[1])
        try:
            first = read(halves[0])
        finally:
            wait([other])
        return pa.concat_tables(first + other.result())


def _read_csv(path: Path | str, sep: str | None, *, fs: Any = None,
              name: str | None = None) -> pa.Table:
    import gzip

    import pyarrow.csv as pacsv

    name = str(path) if name is None else name
    gz = str(path).lower().endswith(".gz")
    if fs is not None:  # a remote file: its bytes, read once
        with fs.open(path, "rb") as fh:
            data = fh.read()
        source: Any = io.BytesIO(gzip.decompress(data) if gz else data)
        head = source.getvalue()[:65536].decode("utf-8-sig", errors="replace")
    else:
        source = path
        opener = gzip.open if gz else open
        with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
            head = fh.read(65536)
    if not head.strip():
        raise InputError("the file is empty", source=name)
    if sep is None:
        try:
            sep = csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
        except csv.Error:
            sep = ","
    header = next(csv.reader(io.StringIO(head), delimiter=sep))
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise InputError(f"duplicate column names {dup}", source=name)
    return pacsv.read_csv(
        source,
        parse_options=pacsv.ParseOptions(delimiter=sep),
        read_options=pacsv.ReadOptions(use_threads=True, block_size=1 << 24),
        convert_options=pacsv.ConvertOptions(
            column_types={h: pa.string() for h in header},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )
