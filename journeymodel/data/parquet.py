"""Parquet files opened without importing :mod:`pyarrow.parquet`.

``import pyarrow.parquet`` imports ``pyarrow.fs`` (its filesystems, S3's among them, and
:mod:`ssl`): 12 of its 16 ms, paid by every command that reads a Parquet log, which reads local
files or fsspec file objects and needs none of them (issue 20). :func:`parquet_file` opens a
file with the reader :class:`pyarrow.parquet.ParquetFile` wraps (``pyarrow._parquet``, private),
with ``ParquetFile``'s defaults, and offers the part of its interface ingestion uses; where
pyarrow is laid out otherwise it returns a ``ParquetFile`` itself (as
:mod:`journeymodel.data.compute` falls back to ``pyarrow.compute``).

Examples
--------
>>> import pyarrow as pa, tempfile, pathlib
>>> from pyarrow import parquet as pq
>>> path = pathlib.Path(tempfile.mkdtemp()) / "log.parquet"
>>> pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), path)
>>> file = parquet_file(path, read_dictionary=["b"])
>>> file.metadata.num_rows, file.schema_arrow.names
(2, ['a', 'b'])
>>> file.read(columns=["b"]).column("b").type
DictionaryType(dictionary<values=string, indices=int32, ordered=0>)
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

try:  # pyarrow's private reader: what ParquetFile wraps, without pyarrow.fs
    from pyarrow._parquet import ParquetReader as _Reader
except ImportError:  # pragma: no cover - a pyarrow laid out otherwise: the public class
    _Reader = None

__all__ = ["parquet_file"]


def parquet_file(source: str | Path | Any, *, read_dictionary: Sequence[str] | None = None,
                 metadata: Any = None) -> Any:
    """``pyarrow.parquet.ParquetFile(source, read_dictionary=..., metadata=...)``: a local
    file's path or an open binary file (fsspec's), read with ``ParquetFile``'s defaults
    (pre-buffered, Arrow extension types on).

    Parameters
    ----------
    source : str, Path or binary file object
        The Parquet file.
    read_dictionary : sequence of str, optional
        Columns read dictionary-encoded (from Parquet's own dictionaries).
    metadata : pyarrow.parquet.FileMetaData, optional
        The file's footer, already read (not parsed again).

    Returns
    -------
    object
        What the code here uses of a ``ParquetFile``: ``metadata``, ``schema_arrow``,
        ``read(columns=None, use_threads=True)`` and ``read_row_group(i, columns=None,
        use_threads=True)``.
    """
    if _Reader is not None:
        try:
            return _ParquetFile(source, read_dictionary, metadata)
        except TypeError:  # pragma: no cover - a pyarrow whose reader's open() takes other
            pass  # arguments (arrow_extensions_enabled is recent): the public class
    import pyarrow.parquet as pq

    return pq.ParquetFile(source, read_dictionary=read_dictionary, metadata=metadata)


class _ParquetFile:
    """The reading methods of :class:`pyarrow.parquet.ParquetFile` on its reader."""

    def __init__(self, source: str | Path | Any, read_dictionary: Sequence[str] | None,
                 metadata: Any) -> None:
        self.reader = _Reader()
        self.reader.open(source, read_dictionary=read_dictionary, metadata=metadata,
                         pre_buffer=True, arrow_extensions_enabled=True)

    @property
    def metadata(self) -> Any:
        """The file's footer (``pyarrow.parquet.FileMetaData``)."""
        return self.reader.metadata

    @property
    def schema_arrow(self) -> Any:
        """The file's Arrow schema."""
        return self.reader.schema_arrow

    def read(self, columns: Sequence[str] | None = None, use_threads: bool = True) -> Any:
        """The file's ``columns`` (all: None) as an Arrow table."""
        return self.reader.read_all(column_indices=self._indices(columns),
                                    use_threads=use_threads)

    def read_row_group(self, i: int, columns: Sequence[str] | None = None,
                       use_threads: bool = True) -> Any:
        """Row group ``i``'s ``columns`` (all: None) as an Arrow table."""
        return self.reader.read_row_group(i, column_indices=self._indices(columns),
                                          use_threads=use_threads)

    def _indices(self, columns: Sequence[str] | None) -> list[int] | None:
        """The leaf columns of ``columns``, in their order, as ``ParquetFile`` finds them."""
        if columns is None:
            return None
        return [i for name in columns for i in self._leaves.get(name, ())]

    @cached_property
    def _leaves(self) -> dict[str, list[int]]:
        """Column name -> its leaf columns' indices: a top-level column, or a dotted prefix of
        a nested one (``a`` and ``a.b`` for ``a.b.c``)."""
        leaves: dict[str, list[int]] = {}
        for i, path in enumerate(self.reader.column_paths):
            for k in range(1, len(path) + 1):
                leaves.setdefault(".".join(path[:k]), []).append(i)
        return leaves
