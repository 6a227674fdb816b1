"""Run a model's statistics over an event log on Dask: the log's files are read by the
workers, shuffled by customer, cut into journeys per partition and reduced to statistics.

The steps (``docs/scale.md``):

1. **Scan** (one task per file): each file is read and validated as in one process; the
   scan returns its columns and types, its time kind and the last time of a usable row. The
   client unifies the types (a file that differs is named), and fixes the end of observation
   of the whole log (the user's ``--observed-until``, or the last usable time of all files).
2. **Shuffle** by customer id (hash; Dask's own shuffle): each partition holds whole
   customers, their rows in the log's order (file, then row), as in one process.
3. **Map** (one task per partition): the partition's rows go through the in-process code
   (:func:`~journeymodel.data.events.events_from_table`,
   :func:`~journeymodel.data.journeys.build_journeys`) with the whole log's end of
   observation, then through the model's ``stats_of``; the result is a
   :class:`~journeymodel.scale.parts.PartResult` (statistics, ledger, journey facts).
4. **Reduce**: a tree of ``+`` (pairs, then pairs of pairs) on the workers; the client
   receives one result and fits with the model's ``fit_stats``.

Touchpoint, persona and device names need no pass of their own: statistics of parts add on
the sorted union of their names, which is the sorted vocabulary one process builds.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from journeymodel.data.options import ReadOptions
from journeymodel.data.readers import columns_differ
from journeymodel.errors import DataWarning, InputError
from journeymodel.scale.parts import PartResult

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.scale.cluster import Engine

__all__ = ["FILE_COL", "KEY_COL", "ROW_COL", "customer_keys", "map_log", "partition_result",
           "persist_parts", "scan_file", "tree_sum"]

#: Bytes of a worker's memory limit per row of a shuffled partition: the partition's frame,
#: its Arrow table, the validated events and the journeys (a 1M-row partition adds about
#: 180 MiB to its frame's 72 MiB), with room for the shuffle's buffers and the partitions
#: waiting for their reduction. Measured at 16M events on two workers: 1,600 bytes (2M-row
#: partitions with 3GiB) peaked at 2.7 GiB a worker and got 1.5GiB workers restarted; 4,000
#: (400k rows with 1.5GiB) peaked at 0.95 GiB.
BYTES_PER_PARTITION_ROW = 4000
#: Rows of a shuffled partition when the workers have no memory limit.
ROWS_PER_PARTITION = 2_000_000

#: Columns added to every row for the log's order (file index, row in its file), and the
#: hash of its customer id the shuffle partitions on.
FILE_COL, ROW_COL, KEY_COL = "__jm_file", "__jm_row", "__jm_key"


def map_log(source: Any, options: ReadOptions | None, engine: Engine,
            part_fn: Any, *, progress: bool = False) -> PartResult:
    """Sum ``part_fn(journeys)`` over the partitions of the log ``source`` on Dask.

    Parameters
    ----------
    source : str, Path or dask.dataframe.DataFrame
        Where the log lives (file, folder, glob, URL), or a Dask DataFrame of events.
    options : ReadOptions
    engine : Engine
        The cluster (or client) to run on.
    part_fn : callable
        ``JourneySet -> additive statistic`` (e.g. a model's ``stats_of``); run on workers,
        so it must pickle.
    progress : bool
        Show Dask's progress bar on the long steps.

    Returns
    -------
    PartResult
        The whole log's statistics, ledger (counts equal to one process's) and journey facts.
    """
    from journeymodel.scale.cluster import connect

    options = options or ReadOptions()
    with connect(engine) as client:
        frame, name, until, n_parts = _events_frame(source, options, client, progress)
        result = _reduce(frame, n_parts, name, options, until, part_fn, client, progress)
    if result.meta is None:
        raise InputError(f"no usable rows ({result.ledger.summary_line()})", source=name)
    result.ledger.check()
    _warn(name, result)
    return result


# ---------------------------------------------------------------------------------------------
# Pass 1: scan the files


def scan_file(path: str, options: ReadOptions, fs: Any, name: str,
              hive: dict[str, str], client_pid: int = 0) -> dict[str, Any]:
    """What the client needs of one file before the shuffle: its schema, time kind and the
    last time of a usable row (None when none is usable)."""
    from journeymodel.data.events import events_from_table
    from journeymodel.data.readers import read_file

    table = read_file(path, options, fs=fs, name=name, hive=hive)
    schema = _plain_schema(table.schema)
    try:
        with _quiet(client_pid):
            events = events_from_table(table, name, options)
    except InputError as exc:
        if "no usable rows" not in str(exc) and "the event log has no rows" not in str(exc):
            raise
        return {"schema": schema, "kind": None, "last": None, "rows": table.num_rows}
    return {"schema": schema, "kind": events.time_kind, "rows": table.num_rows,
            "last": float(events.observed_until)}


@contextmanager
def _quiet(client_pid: int) -> Iterator[None]:
    """Warnings of a part of the log are not shown (the client warns once for the whole log);
    in a worker process only: ``catch_warnings`` is not thread-safe, and a worker thread of
    the client's own process would undo the client's warning filters."""
    if os.getpid() == client_pid:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _plain_schema(schema: pa.Schema) -> pa.Schema:
    """Dictionary columns as their values' type (files may differ in encoding only)."""
    return pa.schema([pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type)
                               else f.type) for f in schema])


def _file_frame(item: tuple[int, str, str, dict[str, str]], *, options: ReadOptions, fs: Any,
                schema: pa.Schema) -> Any:
    """One file's rows as a pandas DataFrame (Arrow dtypes) in the unified schema, with its
    index and row numbers."""
    import pandas as pd

    from journeymodel.data.readers import read_file

    index, path, name, hive = item
    table = read_file(path, options, fs=fs, name=name, hive=hive)
    table = table.select(schema.names).cast(schema)
    n = table.num_rows
    table = table.append_column(FILE_COL, pa.array(np.full(n, index, np.int32)))
    table = table.append_column(ROW_COL, pa.array(np.arange(n, dtype=np.int64)))
    table = table.append_column(KEY_COL, pa.array(customer_keys(table[options.customer_col])))
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def customer_keys(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A 64-bit hash (FNV-1a) of each customer id as one process reads it (text with the
    whitespace around it trimmed), so that rows of one customer meet in one partition.

    Hashing the text here (compiled, over Arrow's buffers) is ten times faster than pandas
    hashing an Arrow string column in the shuffle.

    Examples
    --------
    >>> k = customer_keys(pa.array(["a1", " a1 ", "b2", None]))
    >>> bool(k[0] == k[1]), bool(k[0] != k[2]), int(k[3])
    (True, True, 0)
    """
    from journeymodel.data.hashing import fnv1a

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = column.cast(pa.string())
    column = pc.utf8_trim_whitespace(column).cast(pa.large_string())
    _, offsets, data = column.buffers()
    n = len(column)
    offsets = np.frombuffer(offsets, np.int64, n + 1, column.offset * 8)
    data = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    keys = fnv1a(offsets, data)
    if column.null_count:
        keys[column.is_null().to_numpy(zero_copy_only=False)] = 0
    return keys


def _events_frame(source: Any, options: ReadOptions, client: Any, progress: bool):
    """The log as a Dask DataFrame of files, its name, the end of observation and the number
    of partitions to shuffle into."""
    import dask.dataframe as dd
    import pandas as pd

    from journeymodel.data.sources import resolve_source

    if isinstance(source, dd.DataFrame):
        return _from_dask_frame(source, options, client)
    src = resolve_source(source)
    items = [(i, f, src.label(f), src.hive(f)) for i, f in enumerate(src.files)]
    pid = os.getpid()
    futures = client.map(lambda it: scan_file(it[1], options, src.fs, it[2], it[3], pid), items,
                         key=[f"journeymodel-scan-{i}" for i in range(len(items))])
    _show(futures, progress, f"scan {len(items):,} files")
    scans = client.gather(futures)
    schema = _unify([s["schema"] for s in scans], [it[2] for it in items])
    until = _end_of_observation(scans, [it[2] for it in items], options)
    meta = schema.empty_table().to_pandas(types_mapper=pd.ArrowDtype)
    meta[FILE_COL] = pd.Series([], dtype=pd.ArrowDtype(pa.int32()))
    meta[ROW_COL] = pd.Series([], dtype=pd.ArrowDtype(pa.int64()))
    meta[KEY_COL] = pd.Series([], dtype=pd.ArrowDtype(pa.int64()))
    frame = dd.from_map(_file_frame, items, meta=meta, options=options, fs=src.fs,
                        schema=schema, label="journeymodel-read", enforce_metadata=False)
    n_rows = sum(s["rows"] for s in scans)
    return frame, src.name, until, _n_partitions(n_rows, client)


def _n_partitions(n_rows: int, client: Any) -> int:
    """Shuffled partitions: as many rows each as the smallest worker's memory limit holds
    (:data:`BYTES_PER_PARTITION_ROW`; :data:`ROWS_PER_PARTITION` without a limit), two per
    worker at least."""
    workers = client.scheduler_info().get("workers", {})
    limits = [w.get("memory_limit") or 0 for w in workers.values()]
    rows = (max(100_000, min(limits) // BYTES_PER_PARTITION_ROW) if limits and min(limits)
            else ROWS_PER_PARTITION)
    return max(2 * max(1, len(workers)), -(-n_rows // rows))


def _from_dask_frame(frame: Any, options: ReadOptions, client: Any):
    """A caller's Dask DataFrame of events: its partitions play the files."""
    import dask
    import pandas as pd

    def number(part: pd.DataFrame, partition_info=None) -> pd.DataFrame:
        part = part.copy()
        part[FILE_COL] = np.int32(partition_info["number"] if partition_info else 0)
        part[ROW_COL] = np.arange(len(part), dtype=np.int64)
        part[KEY_COL] = customer_keys(pa.array(part[options.customer_col], from_pandas=True))
        return part

    frame = frame.map_partitions(number)
    parts = frame.to_delayed()
    scans = client.compute([dask.delayed(_scan_frame)(p, options, os.getpid()) for p in parts],
                           sync=True)
    until = _end_of_observation(scans, [f"<partition {i}>" for i in range(len(scans))],
                                options)
    return frame, "<dask DataFrame>", until, frame.npartitions


def _scan_frame(part: Any, options: ReadOptions, client_pid: int) -> dict[str, Any]:
    from journeymodel.data.events import events_from_table

    table = pa.Table.from_pandas(part.drop(columns=[FILE_COL, ROW_COL, KEY_COL]),
                                 preserve_index=False)
    try:
        with _quiet(client_pid):
            events = events_from_table(table, "<partition>", options)
    except InputError as exc:
        if "no usable rows" not in str(exc) and "the event log has no rows" not in str(exc):
            raise
        return {"kind": None, "last": None}
    return {"kind": events.time_kind, "last": float(events.observed_until)}


def _unify(schemas: list[pa.Schema], names: list[str]) -> pa.Schema:
    """The schema every file is cast to; a file with other columns, or types Arrow cannot
    unify, is named."""
    first = schemas[0]
    for schema, name in zip(schemas[1:], names[1:], strict=True):
        if set(schema.names) != set(first.names) or len(schema) != len(first):
            raise InputError(columns_differ(schema.names, first.names, names[0]), source=name)
    try:
        unified = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        for schema, name in zip(schemas[1:], names[1:], strict=True):
            for field in first:
                other = schema.field(field.name).type
                if other != field.type:
                    raise InputError(f"is {other}, but {field.type} in {names[0]}; the files "
                                     "of one event log need the same column types",
                                     source=name, column=field.name) from exc
        raise
    return pa.schema([unified.field(n) for n in first.names])


def _end_of_observation(scans: list[dict], names: list[str], options: ReadOptions) -> float:
    """The whole log's end of observation (the user's, or the last usable time); every file
    must share one time kind."""
    kinds = {s["kind"] for s in scans} - {None}
    if len(kinds) > 1:
        kind0 = next(s["kind"] for s in scans if s["kind"] is not None)
        other = next(n for s, n in zip(scans, names, strict=True)
                     if s["kind"] not in (None, kind0))
        raise InputError(f"its timestamps are read as {sorted(kinds - {kind0})[0]} times, "
                         f"the other files' as {kind0}; set --timestamps", source=other)
    lasts = [s["last"] for s in scans if s["last"] is not None]
    if not lasts:
        return float("nan")
    return max(lasts)


# ---------------------------------------------------------------------------------------------
# Shuffle, map, reduce


def _reduce(frame: Any, n_parts: int, name: str, options: ReadOptions, until: float,
            part_fn: Any, client: Any, progress: bool) -> PartResult:
    parts = _partition_futures(frame, n_parts, name, options, until, part_fn, client)
    total = tree_sum(client, parts)
    _show(parts, progress, "shuffle by customer, journeys, statistics")
    return total.result()


def _partition_futures(frame: Any, n_parts: int, name: str, options: ReadOptions,
                       until: float, part_fn: Any, client: Any) -> list:
    """The shuffled partitions' :class:`PartResult` as futures (on the workers)."""
    import dask

    shuffled = frame.shuffle(on=KEY_COL, npartitions=n_parts)
    pid = os.getpid()
    return client.compute([dask.delayed(partition_result)(p, name, options, until, part_fn, pid)
                           for p in shuffled.to_delayed()])


def tree_sum(client: Any, futures: list) -> Any:
    """The future of ``futures[0] + futures[1] + ...`` added in a tree on the workers (pairs in
    list order, then pairs of pairs: the same additions, so the same bits, on every run).

    Parameters
    ----------
    client : dask.distributed.Client
    futures : list of Future
        Futures of values with ``+`` (statistics, :class:`PartResult`, E-steps); at least one.
    """
    level = list(futures)
    while len(level) > 1:
        pairs = [client.submit(_plus, level[i], level[i + 1], pure=False)
                 for i in range(0, len(level) - 1, 2)]
        level = pairs + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def _plus(a: Any, b: Any) -> Any:
    return a + b


def persist_parts(source: Any, options: ReadOptions | None, client: Any, part_fn: Any,
                  summary_fn: Any, *, progress: bool = False) -> tuple[list, PartResult]:
    """The log's partitions mapped to ``part_fn(journeys)`` and kept on the workers, for a fit
    that goes back to them (the stages' EM: an E-step per iteration on each partition).

    Parameters
    ----------
    source, options
        As :func:`map_log`.
    client : dask.distributed.Client
        Held open by the caller while it uses the futures.
    part_fn : callable
        ``JourneySet -> statistic`` of one partition (stays on its worker).
    summary_fn : callable
        ``statistic -> additive summary`` (small: what the client needs of the whole log).

    Returns
    -------
    parts : list of Future
        Each partition's :class:`PartResult` (``stats`` is ``part_fn``'s result, None for a
        partition without usable rows), on the workers; never gathered.
    summary : PartResult
        The summaries, ledgers and journey facts of every partition added (in a tree, on
        the workers): the whole log's ledger and facts, as :func:`map_log` gives them.
    """
    options = options or ReadOptions()
    frame, name, until, n_parts = _events_frame(source, options, client, progress)
    parts = _partition_futures(frame, n_parts, name, options, until, part_fn, client)
    summaries = [client.submit(_summarised, p, summary_fn, pure=False) for p in parts]
    total = tree_sum(client, summaries)
    _show(parts, progress, "shuffle by customer, journeys, statistics")
    result = total.result()
    if result.meta is None:
        raise InputError(f"no usable rows ({result.ledger.summary_line()})", source=name)
    result.ledger.check()
    _warn(name, result)
    return parts, result


def _summarised(part: PartResult, summary_fn: Any) -> PartResult:
    return PartResult(None if part.stats is None else summary_fn(part.stats), part.ledger,
                      part.meta)


def partition_result(part: Any, name: str, options: ReadOptions, until: float,
                     part_fn: Any, client_pid: int = 0) -> PartResult:
    """One partition's rows (whole customers) -> its statistics, ledger and journey facts.

    The rows are put back in the log's order (file, row), validated and cut into journeys by
    the in-process code, with the whole log's end of observation.
    """
    from journeymodel.data.events import Ledger, events_from_table
    from journeymodel.data.journeys import build_journeys
    from journeymodel.models.base import JourneyMeta

    if len(part) == 0:
        return PartResult(None, Ledger(source=name), None)
    order = np.lexsort((part[ROW_COL].to_numpy(), part[FILE_COL].to_numpy()))
    table = pa.Table.from_pandas(part.drop(columns=[FILE_COL, ROW_COL, KEY_COL]),
                                 preserve_index=False).take(order)  # the log's order
    del part
    with _quiet(client_pid):  # the client warns once, for the whole log
        try:
            events = events_from_table(table, name, options)
        except InputError as exc:
            if "no usable rows" not in str(exc):
                raise
            return PartResult(None, _ledger_of_unusable(table, name, options, exc), None)
        events = dataclasses.replace(events, observed_until=until)
        journeys = build_journeys(events, options)
        stats = part_fn(journeys) if part_fn is not None else None
    return PartResult(stats, journeys.ledger, JourneyMeta.of(journeys))


def _ledger_of_unusable(table: pa.Table, name: str, options: ReadOptions, error: InputError):
    """The ledger of a partition none of whose rows is usable (each row under its first
    reason, as in one process): counted with one usable row added (a copy of a row whose
    time reads), then taken out again. When no row's time reads, ``error`` is raised."""
    from journeymodel.data.events import Ledger, events_from_table
    from journeymodel.data.timestamps import parse_times

    times = parse_times(table[options.time_col], options.timestamps, options.time_format)
    readable = np.flatnonzero(~(times.missing | times.bad))
    if not len(readable):
        raise error
    probe = table.slice(int(readable[0]), 1)
    columns = {c: probe[c] if c == options.time_col else pa.chunked_array(
        [pa.nulls(1, table.schema.field(c).type)]) for c in table.column_names}
    for col in (options.customer_col, options.touchpoint_col):
        columns[col] = pa.chunked_array([pa.array(["journeymodel-probe"])]).cast(
            table.schema.field(col).type)
    extra = pa.table(columns, schema=table.schema)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ledger = events_from_table(pa.concat_tables([table, extra]), name, options).ledger
        except InputError:
            raise error from None
    return Ledger(source=name, rows_read=ledger.rows_read - 1, rows_used=0,
                  dropped=dict(ledger.dropped), invalid_fields=dict(ledger.invalid_fields))


def _show(futures: list, progress: bool, what: str) -> None:
    """A progress bar (on stderr) while ``futures`` finish; errors surface at ``result()``."""
    if not progress or not futures:
        return
    from dask.distributed import as_completed
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(what, total=len(futures))
        for _ in as_completed(futures):
            bar.advance(task)


def _warn(name: str, result: PartResult) -> None:
    ledger = result.ledger
    dropped = ledger.rows_dropped - ledger.dropped.get("after_observed_until", 0)
    if dropped or ledger.invalid_fields:
        warnings.warn(f"{name}: {ledger.summary_line()}", DataWarning, stacklevel=3)
