"""Where an event log lives: one file, a folder of files, a glob, or an fsspec URL.

A company's log is often many Parquet (or CSV) files partitioned by date in a data lake
(``events/date=2025-01-01/part-0.parquet``). :func:`resolve_source` turns what the user gave
into a :class:`Source`: the list of files, in a fixed (sorted) order, with the filesystem that
opens them and the hive partition values (``date=...``) found in their paths. Reading them is
:func:`journeymodel.data.readers.read_table`'s job (in one process) or
:mod:`journeymodel.scale`'s (on Dask).

- a file: itself (any suffix; the reader recognises Parquet by its signature);
- a folder: every ``.parquet``, ``.pq``, ``.csv``, ``.tsv``, ``.txt`` (and ``.gz`` of the text
  ones) file under it, at any depth, except hidden and ``_``-prefixed files (``_SUCCESS``,
  ``_metadata``);
- a glob: ``events/*.parquet``, ``events/date=*/part-*.parquet``, ``**`` for any depth;
- an URL (``s3://bucket/events/``, ``memory://log.csv``): the same, through fsspec, when the
  filesystem's package (``s3fs``, ``gcsfs``, ``adlfs``, ...) is installed.
"""

from __future__ import annotations

import glob as globlib
import re
from pathlib import Path
from typing import Any, NamedTuple

from journeymodel.errors import InputError

__all__ = ["BYTES_PER_ROW", "EVENT_SUFFIXES", "Source", "available_memory",
           "check_fits_in_memory", "estimated_rows", "hive_values", "is_url", "resolve_source"]

#: File suffixes read as event logs when a folder is given.
EVENT_SUFFIXES = (".parquet", ".pq", ".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")

_GLOB_CHARS = re.compile(r"[*?\[]")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


class Source(NamedTuple):
    """The files of one event log (a named tuple: made in a quarter of the time a frozen
    dataclass takes to define, which every command reading a log paid, issue 20).

    Attributes
    ----------
    name : str
        What the user gave (for messages and the ledger).
    files : tuple of str
        Paths (local) or URL paths (``fs``), sorted; the log's rows are these files' rows in
        this order.
    fs : fsspec filesystem or None
        None for local files.
    root : str
        The folder the files were found under (their hive partitions are read below it).
    single : bool
        The user named one file (not a folder or a glob).
    sizes : tuple of int
        The files' sizes in bytes (empty: unknown).
    """

    name: str
    files: tuple[str, ...]
    fs: Any = None
    root: str = ""
    single: bool = False
    sizes: tuple[int, ...] = ()

    def label(self, path: str) -> str:
        """A file's name for messages: as given for one file, else its full path or URL."""
        if self.single:
            return self.name
        if self.fs is None:
            return path
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        return path if "://" in path else f"{protocol}://{path}"

    def hive(self, path: str) -> dict[str, str]:
        """The ``key=value`` folders between :attr:`root` and ``path``."""
        return hive_values(path, self.root)


def is_url(text: str) -> bool:
    """``s3://...``, ``memory://...``: anything with a scheme other than ``file``."""
    return bool(_URL.match(text)) and not text.startswith("file://")


def hive_values(path: str, root: str = "") -> dict[str, str]:
    """Hive partition values in the folders of ``path`` below ``root``.

    Examples
    --------
    >>> hive_values("lake/events/date=2025-01-02/region=eu/part-0.parquet", "lake/events")
    {'date': '2025-01-02', 'region': 'eu'}
    """
    rel = path[len(root):] if root and path.startswith(root) else path
    parts = rel.replace("\\", "/").strip("/").split("/")[:-1]
    out = {}
    for part in parts:
        key, eq, value = part.partition("=")
        if eq and key:
            out[key] = value
    return out


def resolve_source(source: str | Path) -> Source:
    """The files of the event log ``source`` (a file, folder, glob or URL).

    Raises
    ------
    InputError
        Nothing exists there, a folder holds no event file, or a glob matches none; an URL
        whose filesystem package is missing.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for day in ("2025-01-02", "2025-01-01"):
    ...     (d / f"date={day}").mkdir()
    ...     _ = (d / f"date={day}" / "part-0.csv").write_text("customer_id\\n")
    >>> src = resolve_source(d)
    >>> [Path(f).parent.name for f in src.files], src.hive(src.files[0])
    (['date=2025-01-01', 'date=2025-01-02'], {'date': '2025-01-01'})
    """
    text = str(source)
    if is_url(text):
        return _resolve_url(text)
    if text.startswith("file://"):
        text = text[len("file://"):]
    path = Path(text)
    if _GLOB_CHARS.search(text) and not path.exists():
        files = sorted(f for f in globlib.glob(text, recursive=True) if Path(f).is_file())
        if not files:
            raise InputError("no file matches this pattern", source=text)
        return Source(name=text, files=tuple(files), root=_glob_root(text),
                      sizes=tuple(Path(f).stat().st_size for f in files))
    if not path.exists():
        raise InputError("file not found: does not exist", source=text)
    if path.is_dir():
        files = sorted(str(f) for f in path.rglob("*") if f.is_file() and _is_event_file(
            f.relative_to(path).as_posix()))
        if not files:
            raise InputError("is a directory without Parquet or CSV files "
                             f"({', '.join(EVENT_SUFFIXES[:5])}, ...)", source=text)
        return Source(name=text, files=tuple(files), root=str(path),
                      sizes=tuple(Path(f).stat().st_size for f in files))
    return Source(name=text, files=(text,), root=str(path.parent), single=True,
                  sizes=(path.stat().st_size,))


def _is_event_file(rel: str) -> bool:
    """Not hidden or ``_``-prefixed at any level, and an event-log suffix."""
    parts = rel.split("/")
    if any(p.startswith((".", "_")) for p in parts):
        return False
    return parts[-1].lower().endswith(EVENT_SUFFIXES)


def _glob_root(pattern: str) -> str:
    """The folders of ``pattern`` before its first wildcard."""
    head = _GLOB_CHARS.split(pattern, 1)[0]
    return head.rsplit("/", 1)[0] if "/" in head else ""


def _resolve_url(url: str) -> Source:
    try:
        import fsspec
        from fsspec.core import url_to_fs
    except ImportError:  # pragma: no cover - fsspec comes with dask
        raise InputError("reading URLs needs the fsspec package", source=url) from None
    try:
        fs, path = url_to_fs(url)
    except (ImportError, ValueError) as exc:
        protocol = url.split("://", 1)[0]
        raise InputError(f"cannot open {protocol}:// URLs here ({exc}); install the "
                         "filesystem's package (s3fs, gcsfs, adlfs, ...)", source=url) from None
    del fsspec
    try:
        if _GLOB_CHARS.search(path) and not fs.exists(path):
            files = sorted(f for f in fs.glob(path) if fs.isfile(f))
            root = _glob_root(path)
            if not files:
                raise InputError("no file matches this pattern", source=url)
        elif not fs.exists(path):
            raise InputError("file not found: does not exist", source=url)
        elif fs.isdir(path):
            root = path.rstrip("/")
            files = sorted(f for f in fs.find(path)
                           if _is_event_file(f[len(root):].lstrip("/")))
            if not files:
                raise InputError("is a directory without Parquet or CSV files", source=url)
        else:
            return Source(name=url, files=(path,), fs=fs, root=path.rsplit("/", 1)[0],
                          single=True, sizes=(int(fs.size(path) or 0),))
        return Source(name=url, files=tuple(files), fs=fs, root=root,
                      sizes=tuple(int(fs.size(f) or 0) for f in files))
    except OSError as exc:
        raise InputError(f"cannot list the files: {exc}", source=url) from None


#: Memory one event row takes in one process, from reading to the journey set (the issue's
#: measurement: 8M events need about 1.4 GiB, about 190 bytes a row).
BYTES_PER_ROW = 190
#: Rows per byte of a CSV file (a short row is about 60 bytes of text).
CSV_ROWS_PER_BYTE = 1 / 60


def estimated_rows(src: Source) -> int:
    """Rows of the log: from the Parquet footers (exact), from the size of CSV files."""
    rows = 0
    for path, size in zip(src.files, src.sizes or (0,) * len(src.files), strict=True):
        rows += _parquet_rows(path, src.fs) if _looks_parquet(path, src.fs) else int(
            size * CSV_ROWS_PER_BYTE * (4 if path.lower().endswith(".gz") else 1))
    return rows


def _looks_parquet(path: str, fs: Any) -> bool:
    try:
        with (open(path, "rb") if fs is None else fs.open(path, "rb")) as fh:
            return fh.read(4) == b"PAR1"
    except OSError:
        return False


def _parquet_rows(path: str, fs: Any) -> int:
    from journeymodel.data.parquet import parquet_file

    try:
        if fs is None:
            return parquet_file(path).metadata.num_rows
        with fs.open(path, "rb") as fh:
            return parquet_file(fh).metadata.num_rows
    except Exception:  # noqa: BLE001 - unreadable files are reported by the reader
        return 0


def available_memory() -> int:
    """Bytes this process can still take (psutil's ``available``; no limit known: a lot).

    On Linux that is ``MemAvailable`` of ``/proc/meminfo``, read here without psutil (whose
    import costs 20 ms of every command)."""
    try:
        with open("/proc/meminfo", "rb") as fh:
            for line in fh:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with dask.distributed
        return 1 << 62
    return int(psutil.virtual_memory().available)


def check_fits_in_memory(src: Source) -> None:
    """Refuse, naming ``--workers``, a log whose rows would not fit in this process.

    Raises
    ------
    InputError
        The estimate (:data:`BYTES_PER_ROW` a row) exceeds the memory available.
    """
    rows = estimated_rows(src)
    need, have = rows * BYTES_PER_ROW, available_memory()
    if need > have:
        raise InputError(
            f"about {rows:,} rows need about {need / 2**30:.1f} GiB in one "
            f"process, more than the {have / 2**30:.1f} GiB available; run it on Dask: "
            "--workers N (local processes, with --worker-memory SIZE) or --cluster ADDRESS",
            source=src.name)
